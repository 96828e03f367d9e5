"""Gateway maintenance controls: `slipway pause` holds an app's requests at the gateway until
`slipway resume` (each at most --max, then 503), `slipway maintenance` answers 503 with an
HTML-escaped message, the gateway's own /_slipway/up stays 200, the mode survives a server
restart, and careless or hostile input is refused and changes nothing."""
import json
import time
import unittest

from harness import ADMIN_TOKEN, LoadLoop, SlipwayTestCase, http_call, wait_until

SCRIPT_MESSAGE = 'Back at 5 <script>alert("x")</script> & soon'
ESCAPED_SCRIPT = b"&lt;script&gt;"


class Deployed(SlipwayTestCase):
    """The example app, deployed and serving through the gateway."""

    def setUp(self):
        super().setUp()
        self.create_app()
        d = self.deploy_by_push(self.repo.commit_version("v1"))
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.gateway_get("/")[0], 200)

    def cli_ok(self, *args):
        out = self.server.cli(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def gateway_mode(self):
        status, app = self.server.api("GET", "/api/v1/apps/hello")
        self.assertEqual(status, 200, app)
        return app["gateway"]

    def timed_get(self, path="/", host="hello.localhost", timeout=40):
        started = time.monotonic()
        status, body, _ = http_call(self.server.gw_port, "GET", path, headers={"Host": host},
                                    timeout=timeout)
        return status, body, time.monotonic() - started


class Pause(Deployed):
    def test_pause_under_load_holds_then_serves_every_request(self):
        threads = 20
        # A held request must not time out on the client side: 40 s outlasts any hold here.
        with LoadLoop(self.server.gw_port, threads=threads, max_seconds=15,
                      max_requests=threads * 2000, timeout=40) as load:
            wait_until(lambda: load.completed() >= 100, what="load to flow")
            out = self.cli_ok("pause", "hello", "--max", "30s")
            acknowledged = time.monotonic()
            self.assertEqual(out.strip(), "hello: paused (requests held up to 30s)")
            time.sleep(1.5)
            resuming = time.monotonic()
            # Requests that passed the gate before it closed finish within milliseconds;
            # after that nothing completes until the resume.
            done_while_paused = [r for r in load.snapshot()
                                 if r[1] > acknowledged + 0.2 or r[0] > acknowledged]
            self.assertEqual(done_while_paused, [], "nothing completes while paused")
            out = self.cli_ok("resume", "hello")
            self.assertEqual(out.strip(), "hello: open (requests flow again)")
            wait_until(lambda: any(r[0] > resuming for r in load.snapshot()), timeout=10,
                       what="requests to flow again after the resume")
            time.sleep(0.5)
        self.assertEqual(load.failures, [], "every request got a 200")
        self.assertTrue(all(status == 200 for _, _, status in load.records))
        # Each thread had exactly one request waiting at the gate through the pause.
        held = [r for r in load.records if r[0] < resuming <= r[1]]
        self.assertEqual(len(held), threads, held)
        self.assertTrue(all(ended - started >= 1.2 for started, ended, _ in held), held)
        self.assertEqual(self.gateway_mode()["mode"], "open")

    def test_pause_without_resume_answers_503_after_max(self):
        self.cli_ok("pause", "hello", "--max", "1s")
        self.assertEqual(self.gateway_mode(), {"mode": "paused", "max_ms": 1000, "message": ""})
        status, _, elapsed = self.timed_get()
        self.assertEqual(status, 503)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5.0)
        self.cli_ok("resume", "hello")
        self.assertEqual(self.server.gateway_get("/")[0], 200)


class Maintenance(Deployed):
    def test_message_is_escaped_and_resume_serves_again(self):
        out = self.cli_ok("maintenance", "hello", "--message", SCRIPT_MESSAGE)
        self.assertEqual(out.count("\n"), 1, out)
        self.assertEqual(self.gateway_mode(),
                         {"mode": "maintenance", "max_ms": 30000, "message": SCRIPT_MESSAGE})
        status, body, _ = self.server.gateway_get("/")
        self.assertEqual(status, 503)
        self.assertIn(ESCAPED_SCRIPT, body)
        self.assertIn(b"&amp; soon", body)
        self.assertNotIn(b"<script>", body)
        self.cli_ok("resume", "hello")
        status, body, _ = self.server.gateway_get("/")
        self.assertEqual(status, 200)
        self.assertIn(b"hello from v1", body)

    def test_gateway_up_answers_during_maintenance(self):
        self.cli_ok("maintenance", "hello", "--message", "upgrading the database")
        self.assertEqual(self.server.gateway_get("/")[0], 503)
        for host in ("hello.localhost", "no-such-app.example"):
            status, body, _ = self.server.gateway_get("/_slipway/up", host=host)
            self.assertEqual(status, 200, (host, body))

    def test_maintenance_and_pause_survive_a_server_restart(self):
        self.cli_ok("maintenance", "hello", "--message", SCRIPT_MESSAGE)
        self.server.kill()
        self.server.start()
        self.assertEqual(self.gateway_mode()["mode"], "maintenance")
        self.assertEqual(self.gateway_mode()["message"], SCRIPT_MESSAGE)
        status, body, _ = self.server.gateway_get("/")
        self.assertEqual(status, 503)
        self.assertIn(ESCAPED_SCRIPT, body)
        self.cli_ok("pause", "hello", "--max", "2s")
        self.server.stop()
        self.server.start()
        self.assertEqual(self.gateway_mode(), {"mode": "paused", "max_ms": 2000, "message": ""})
        status, _, elapsed = self.timed_get()
        self.assertEqual(status, 503, "a restored pause holds again with the same max")
        self.assertGreaterEqual(elapsed, 1.8)
        self.cli_ok("resume", "hello")
        self.server.kill()
        self.server.start()
        self.assertEqual(self.gateway_mode()["mode"], "open")
        self.assertEqual(self.server.gateway_get("/")[0], 200)


class HostileInput(SlipwayTestCase):
    """Bad input gets a clear refusal (CLI exit 2 and one line; API 400/403/404 with
    {error, detail}) and changes nothing. No deployment is needed for this."""

    def setUp(self):
        super().setUp()
        self.create_app()

    def assert_open(self):
        status, app = self.server.api("GET", "/api/v1/apps/hello")
        self.assertEqual(status, 200, app)
        self.assertEqual(app["gateway"], {"mode": "open", "max_ms": 30000, "message": ""})

    def assert_cli_refused(self, *args, needle):
        out = self.server.cli(*args)
        self.assertEqual(out.returncode, 2, (args, out.stdout, out.stderr))
        self.assertEqual(out.stdout, "", args)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, (args, out.stderr))
        self.assertIn(needle, lines[0], args)

    def assert_api_refused(self, path, body, status, token=None):
        kwargs = {"token": token} if token else {}
        got, answer = self.server.api("POST", path, body, **kwargs)
        self.assertEqual(got, status, (path, body, answer))
        self.assertEqual(set(answer), {"error", "detail"}, answer)
        self.assertTrue(answer["detail"])

    def test_cli_refuses_bad_input(self):
        self.assert_cli_refused("pause", "hello", "--max", "0s", needle="between 1s and 1h")
        self.assert_cli_refused("pause", "hello", "--max", "2h", needle="between 1s and 1h")
        self.assert_cli_refused("pause", "hello", "--max", "abc", needle="duration")
        self.assert_cli_refused("pause", "hello", "--max", "30", needle="duration")
        self.assert_cli_refused("maintenance", "hello", needle="--message")
        self.assert_cli_refused("maintenance", "hello", "--message", "", needle="1 to 1024 bytes")
        self.assert_cli_refused("maintenance", "hello", "--message", "x" * 1025,
                                needle="1 to 1024 bytes")
        self.assert_cli_refused("maintenance", "hello", "--message", "two\nlines",
                                needle="control characters")
        self.assert_cli_refused("pause", "ghost", needle="'ghost' does not exist")
        self.assert_cli_refused("resume", "ghost", needle="'ghost' does not exist")
        self.assert_cli_refused("maintenance", "ghost", "--message", "m", needle="does not exist")
        self.assert_open()

    def test_api_refuses_bad_input(self):
        for body in ({"max": "0s"}, {"max": "2h"}, {"max": "abc"}, {"max": "30"}, {"max": ""},
                     {"max": 30}, {"max": "1e3s"}, {"max": "-5s"}, {"max": " 5s"},
                     {"max": "99999999999999999999999s"}):
            self.assert_api_refused("/api/v1/apps/hello/pause", body, 400)
        for body in ({}, {"message": ""}, {"message": None}, {"message": 5}, {"message": "x" * 1025},
                     {"message": "bell\u0007"}, {"message": "nul\u0000"}, {"message": "c1\u0085"},
                     {"message": "tab\there"}):
            self.assert_api_refused("/api/v1/apps/hello/maintenance", body, 400)
        self.assert_api_refused("/api/v1/apps/ghost/pause", {}, 404)
        self.assert_api_refused("/api/v1/apps/ghost/resume", {}, 404)
        self.assert_api_refused("/api/v1/apps/ghost/maintenance", {"message": "m"}, 404)
        status, raw, _ = http_call(self.server.api_port, "POST", "/api/v1/apps/hello/pause",
                                   b"{not json", {"Authorization": f"Bearer {ADMIN_TOKEN}",
                                                  "Content-Type": "application/json"})
        self.assertEqual(status, 400, raw)
        self.assert_open()

    def test_boundaries_are_accepted(self):
        for text, ms in (("1s", 1000), ("1h", 3600000), ("1500ms", 1500), ("2.5s", 2500)):
            status, answer = self.server.api("POST", "/api/v1/apps/hello/pause", {"max": text})
            self.assertEqual(status, 200, answer)
            self.assertEqual(answer, {"app": "hello",
                                      "gateway": {"mode": "paused", "max_ms": ms, "message": ""}})
        status, answer = self.server.api("POST", "/api/v1/apps/hello/pause", {})
        self.assertEqual(answer["gateway"]["max_ms"], 30000, answer)
        message = "é" * 512  # 1024 bytes of UTF-8
        status, answer = self.server.api("POST", "/api/v1/apps/hello/maintenance",
                                         {"message": message})
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["gateway"]["message"], message)
        out = self.server.cli("--json", "resume", "hello")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["gateway"]["mode"], "open")
        self.assert_open()
        status, listed = self.server.api("GET", "/api/v1/apps")
        self.assertEqual(listed["apps"][0]["gateway"]["mode"], "open")

    def test_viewer_is_forbidden_and_changes_are_audited(self):
        status, viewer = self.server.api("POST", "/api/v1/tokens",
                                         {"role": "viewer", "name": f"viewer-{time.time_ns()}"})
        self.assertEqual(status, 201, viewer)
        for verb, body in (("pause", {"max": "5s"}), ("resume", {}),
                           ("maintenance", {"message": "m"})):
            self.assert_api_refused(f"/api/v1/apps/hello/{verb}", body, 403, token=viewer["token"])
        out = self.server.cli("pause", "hello", token=viewer["token"])
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("deploy", out.stderr)
        self.assert_open()
        for args in (("pause", "hello", "--max", "5s"), ("maintenance", "hello", "--message", "m"),
                     ("resume", "hello")):
            self.assertEqual(self.server.cli(*args).returncode, 0, args)
        status, audit = self.server.api("GET", "/api/v1/audit?app=hello")
        self.assertEqual(status, 200, audit)
        ours = [(a["action"], a["outcome"], a["detail"]) for a in audit["audit"]
                if a["action"].startswith("app.") and a["action"] != "app.create"]
        self.assertEqual([a for a, _, _ in ours], ["app.resume", "app.maintenance", "app.pause"])
        self.assertTrue(all(outcome == "ok" for _, outcome, _ in ours))
        self.assertEqual(ours[2][2], {"from": "open", "max_ms": 5000})
        self.assertEqual(ours[1][2], {"from": "paused", "message": "m"})
        self.assertEqual(ours[0][2], {"from": "maintenance"})


if __name__ == "__main__":
    unittest.main()
