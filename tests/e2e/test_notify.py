"""Notifications seen from outside the server: the --notify file's start-up errors (exit 2,
one line naming file:line:column, never the URL's path or the secret) and
GET /api/v1/deployments/{id}/notifications (404 {error, detail} for an unknown deployment, the
deployment's records otherwise). Deliveries themselves are unit-tested
(tests/notify/notify_test.cpp). Every wait is bounded in time."""
import os
import subprocess
import unittest

from harness import SLIPWAY, Server, SlipwayTestCase, free_port

PATH_TOKEN = "T0SECRETPATH"
SECRET = "s3cret-SIGNING-key"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class NotifyFile(SlipwayTestCase):
    def start_with(self, notify_file):
        data = os.path.join(self.tmp, "other-var")
        return subprocess.run(
            [SLIPWAY, "server", "--data", data, "--api", f"127.0.0.1:{free_port()}",
             "--gateway", f"127.0.0.1:{free_port()}", "--notify", notify_file],
            capture_output=True, text=True, timeout=60)

    def test_a_bad_file_is_a_startup_error_that_shows_no_secret(self):
        cases = [
            (f"targets:\n  - kind: slack\n    url: ftp://hooks.example.com/{PATH_TOKEN}\n", ":3:10: ",
             "url: the scheme must be http:// or https://"),
            (f"targets:\n  - kind: slack\n    url: https://hooks.example.com/{PATH_TOKEN}\n"
             f"    secret: {SECRET}\n", ":4:13: ", "secret:"),
            (f"targets:\n  - kind: webhook\n    url: https://hooks.example.com/{PATH_TOKEN}\n"
             "    events: [deployed]\n", ":4:13: ", "unknown event 'deployed'"),
        ]
        for text, where, says in cases:
            path = write(os.path.join(self.tmp, "notify.yaml"), text)
            out = self.start_with(path)
            self.assertEqual(out.returncode, 2, out.stderr)
            lines = out.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, out.stderr)
            self.assertTrue(lines[0].startswith(f"error: {path}{where}"), lines[0])
            self.assertIn(says, lines[0])
            self.assertNotIn(PATH_TOKEN, out.stderr + out.stdout)
            self.assertNotIn(SECRET, out.stderr + out.stdout)
        missing = self.start_with(os.path.join(self.tmp, "no-such.yaml"))
        self.assertEqual(missing.returncode, 2, missing.stderr)
        self.assertIn("no-such.yaml", missing.stderr)


class NotificationsApi(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        # A server with server-wide targets (nothing listens there): it starts, and its log
        # never shows their URLs' paths or the secret.
        self.server.stop()
        notify = write(os.path.join(self.tmp, "notify.yaml"),
                       "targets:\n"
                       f"  - {{name: ci, kind: webhook, url: 'http://127.0.0.1:{free_port()}/{PATH_TOKEN}',"
                       f" secret: {SECRET}}}\n"
                       f"  - {{name: chat, kind: slack, url: 'https://hooks.slack.invalid/{PATH_TOKEN}',"
                       " events: [failed], apps: [hello]}\n")
        self.server = Server(self.server.data, extra_args=["--notify", notify]).start()

    def test_lists_a_deployments_records_and_404s_an_unknown_one(self):
        status, body = self.server.api("GET", "/api/v1/deployments/999999/notifications")
        self.assertEqual(status, 404, body)
        self.assertEqual(body["error"], "not_found")
        self.assertIn("detail", body)
        status, body = self.server.api("GET", "/api/v1/deployments/x/notifications")
        self.assertEqual(status, 400, body)

        self.create_app()
        final = self.deploy_by_push(self.repo.commit_version("v1"))
        self.assertEqual(final["status"], "succeeded")
        status, body = self.server.api("GET", f"/api/v1/deployments/{final['id']}/notifications")
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body["notifications"], list)
        for record in body["notifications"]:
            self.assertEqual(record["deployment_id"], final["id"])
            self.assertNotIn(PATH_TOKEN, str(record))
            self.assertNotIn(SECRET, str(record))
        status, _ = self.server.api("GET", f"/api/v1/deployments/{final['id']}/notifications", token=None)
        self.assertEqual(status, 401)

        self.server.stop()
        with open(self.server.log_path, "rb") as f:
            log = f.read().decode(errors="replace")
        self.assertNotIn(PATH_TOKEN, log)
        self.assertNotIn(SECRET, log)
        self.server.start()  # for tearDown


if __name__ == "__main__":
    unittest.main()
