"""Environments: named variables, secrets and files that reach an app's instances at deploy,
driven through the real server and CLI. A secret's value is written once (from stdin) and then
never seen again: not in any API answer, the CLI's output, the server's log, the database file
or its WAL, nor the audit trail. Only the instance's own environment holds it."""
import hashlib
import json
import os
import subprocess
import unittest
import uuid

from harness import ADMIN_TOKEN, SLIPWAY, SlipwayTestCase, wait_until

SECRET = "env-secret-" + uuid.uuid4().hex
FILE_TEXT = "[db]\nhost = db.internal\n"

# Answers its environment's names, the variable's value, and whether the secret and the file
# are there (their SHA-256, never the secret itself).
PROBE = r'''
import hashlib, http.server, json, os

def digest(data):
    return hashlib.sha256(data).hexdigest() if data is not None else None

class Probe(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok"
        else:
            secret = os.environ.get("DB_PASSWORD")
            path = "config/app.ini"
            content = open(path, "rb").read() if os.path.isfile(path) else None
            body = json.dumps({
                "names": sorted(os.environ),
                "greeting": os.environ.get("GREETING"),
                "secret_sha256": digest(secret.encode()) if secret is not None else None,
                "file_sha256": digest(content),
            }).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Probe).serve_forever()
'''

# The build step echoes the secret if it gets it: the event log must show it redacted.
MANIFEST = """app: hello
build:
  - sh -c 'echo "build sees ${DB_PASSWORD:-no secret}"'
run:
  command: python3 probe.py
health:
  path: /health
  timeout: 10s
deploy:
  watch_window: 1s
  drain_timeout: 5s
"""


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Environments(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.ini = os.path.join(self.tmp, "app.ini")
        with open(self.ini, "w") as f:
            f.write(FILE_TEXT)

    def cli(self, *args, stdin="", timeout=120):
        """The CLI as the admin, `stdin` on its standard input."""
        env = dict(os.environ, SLIPWAY_TOKEN=ADMIN_TOKEN)
        return subprocess.run([SLIPWAY, "--server", self.server.url, *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout, env=env)

    def cli_ok(self, *args, stdin=""):
        out = self.cli(*args, stdin=stdin)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertNotIn(SECRET, out.stdout + out.stderr)
        return out.stdout

    def cli_error(self, *args, code=2, needle=""):
        out = self.cli(*args)
        self.assertEqual(out.returncode, code, out.stdout + out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        self.assertIn(needle, out.stderr)
        self.assertNotIn(SECRET, out.stdout + out.stderr)
        return out.stderr

    def make_staging(self):
        """staging: GREETING (variable), DB_PASSWORD (secret, read from stdin), config/app.ini."""
        self.cli_ok("env", "create", "staging", "--var", "GREETING=hello from staging",
                    "--secret", "DB_PASSWORD=-", "--file", f"config/app.ini={self.ini}", stdin=SECRET + "\n")

    def make_app(self):
        self.cli_ok("apps", "create", "hello", "--repo", self.repo.url, "--secret", self.secret,
                    "--upstream", "http://hello.shared.internal:8080", "--env", "staging")

    # ---- the API and the CLI ----------------------------------------------------------------

    def test_create_show_change_and_delete_through_the_cli(self):
        self.make_staging()
        shown = json.loads(self.cli_ok("env", "show", "staging", "--json"))
        self.assertEqual(shown["vars"], {"GREETING": "hello from staging"})
        self.assertEqual(shown["secrets"], ["DB_PASSWORD"])
        self.assertEqual(shown["files"], ["config/app.ini"])
        human = self.cli_ok("env", "show", "staging")
        self.assertIn("GREETING=hello from staging", human)
        self.assertIn("DB_PASSWORD", human)
        listed = json.loads(self.cli_ok("env", "list", "--json"))
        self.assertEqual([e["name"] for e in listed["environments"]], ["staging"])
        self.assertIn("staging", self.cli_ok("env", "list"))

        # set: a second secret from a file, a variable; unset: by name.
        key_file = os.path.join(self.tmp, "key")
        with open(key_file, "w") as f:
            f.write(SECRET + "-2\n")
        self.cli_ok("env", "set", "staging", "--secret-file", f"API_KEY={key_file}", "--var", "MODE=qa")
        self.cli_ok("env", "unset", "staging", "MODE")
        status, env = self.server.api("GET", "/api/v1/environments/staging")
        self.assertEqual(status, 200, env)
        self.assertEqual(env["secrets"], ["API_KEY", "DB_PASSWORD"])
        self.assertNotIn("MODE", env["vars"])

        # An app references it: delete is refused naming the app, until the app lets go.
        self.make_app()
        err = self.cli_error("env", "delete", "staging", needle="app 'hello'")
        self.assertIn("used by", err)
        self.cli_ok("apps", "set", "hello", "--no-env")
        self.cli_ok("env", "delete", "staging")
        self.cli_error("env", "show", "staging", needle="does not exist")

    def test_apps_carry_an_upstream_and_an_environment(self):
        self.make_staging()
        self.make_app()
        status, app = self.server.api("GET", "/api/v1/apps/hello")
        self.assertEqual(status, 200, app)
        self.assertEqual(app["upstream"], "http://hello.shared.internal:8080")
        self.assertEqual(app["environment"], "staging")
        out = self.cli_ok("apps", "set", "hello", "--upstream", "http://10.0.0.7:9000")
        self.assertIn("http://10.0.0.7:9000", out)
        status, app = self.server.api("PATCH", "/api/v1/apps/hello", {"environment": None})
        self.assertEqual((status, app["environment"], app["upstream"]), (200, "", "http://10.0.0.7:9000"))
        # Refusals: a bad upstream (400), an unknown environment (404), nothing to change.
        for body, code in (({"upstream": "https://x"}, 400), ({"upstream": "http://u:p@x"}, 400),
                           ({"environment": "nosuch"}, 404), ({"environment": 7}, 400), ({}, 400),
                           ({"colour": "red"}, 400)):
            status, err = self.server.api("PATCH", "/api/v1/apps/hello", body)
            self.assertEqual(status, code, (body, err))
            self.assertEqual(set(err), {"error", "detail"})
        status, err = self.server.api("POST", "/api/v1/apps", {
            "name": "other", "repo": self.repo.url, "secret": self.secret, "environment": "nosuch"})
        self.assertEqual(status, 404, err)
        self.assertIn("nosuch", err["detail"])
        status, err = self.server.api("POST", "/api/v1/apps", {
            "name": "other", "repo": self.repo.url, "secret": self.secret, "upstream": "http://x/?q=1"})
        self.assertEqual(status, 400, err)
        self.cli_error("apps", "set", "hello", needle="nothing to change")
        self.cli_error("apps", "set", "hello", "--env", "staging", "--no-env")
        audit = self.server.api("GET", "/api/v1/audit?limit=1000")[1]["audit"]
        self.assertIn("app.set", [a["action"] for a in audit])

    def test_bad_requests_name_the_field_and_never_a_value(self):
        self.make_staging()
        cases = [
            ("POST", "/api/v1/environments", {"name": "x", "vars": {"A": 1}}, 400, "vars.A"),
            ("POST", "/api/v1/environments", {"name": "x", "secrets": ["A"]}, 400, "secrets"),
            ("POST", "/api/v1/environments", {"name": "x", "files": {"a": {"b": "c"}}}, 400, "files.a"),
            ("POST", "/api/v1/environments", {"name": 5}, 400, "name"),
            ("POST", "/api/v1/environments", {"name": "x", "colour": "red"}, 400, "colour"),
            ("POST", "/api/v1/environments", {"name": "Bad Name"}, 400, "environment name"),
            ("POST", "/api/v1/environments", {"name": "x", "vars": {"PORT": "1"}}, 400, "PORT"),
            ("POST", "/api/v1/environments", {"name": "x", "files": {"../etc/passwd": "x"}}, 400, ".."),
            ("POST", "/api/v1/environments", {"name": "staging"}, 409, "already exists"),
            ("PATCH", "/api/v1/environments/staging", {"unset": "A"}, 400, "unset"),
            ("PATCH", "/api/v1/environments/staging", {"unset": [1]}, 400, "unset[0]"),
            ("PATCH", "/api/v1/environments/staging", {"unset": ["NOPE"]}, 404, "NOPE"),
            ("PATCH", "/api/v1/environments/staging", {}, 400, "nothing to change"),
            ("PATCH", "/api/v1/environments/staging", {"secrets": {"S": SECRET + "\u0000"}}, 400, "NUL"),
            ("PATCH", "/api/v1/environments/nosuch", {"vars": {"A": "1"}}, 404, "does not exist"),
            ("GET", "/api/v1/environments/nosuch", None, 404, "does not exist"),
            ("DELETE", "/api/v1/environments/nosuch", None, 404, "does not exist"),
        ]
        for method, path, body, code, needle in cases:
            status, err = self.server.api(method, path, body)
            self.assertEqual(status, code, (method, path, body, err))
            self.assertEqual(set(err), {"error", "detail"}, err)
            self.assertIn(needle, err["detail"], (body, err))
            self.assertNotIn(SECRET, json.dumps(err))
        status, raw = self.server.api("POST", "/api/v1/environments", None,
                                      headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        # A viewer reads, and may not write.
        status, viewer = self.server.api("POST", "/api/v1/tokens", {"role": "viewer", "name": "v"})
        self.assertEqual(status, 201, viewer)
        self.assertEqual(self.server.api("GET", "/api/v1/environments/staging", token=viewer["token"])[0], 200)
        self.assertEqual(self.server.api("PATCH", "/api/v1/environments/staging", {"vars": {"A": "1"}},
                                         token=viewer["token"])[0], 403)
        # The CLI: one line, exit 2, for each careless use.
        self.cli_error("env", "create", "x", "--var", "NOEQUALS", needle="--var expects KEY=VALUE")
        self.cli_error("env", "create", "x", "--secret", SECRET, needle="--secret expects")
        self.cli_error("env", "create", "x", "--secret", "A=-", "--secret", "B=-", needle="only one")
        self.cli_error("env", "create", "x", "--file", "a=/nonexistent/file", needle="cannot read")
        self.cli_error("env", "create", "x", "--var", "A=1", "--var", "A=2", needle="given twice")
        self.cli_error("env", "create", "Bad/Name", needle="environment names")
        self.cli_error("env", "set", "staging", needle="nothing to set")
        self.cli_error("env", "set", "staging", "--var", "HOST=x", needle="HOST")
        self.cli_error("env", "unset", "staging", "NOPE", needle="NOPE")
        self.cli_error("env", "create", "staging", needle="already exists")

    # ---- deploy: the instance sees it all; nothing else sees the secret -----------------------

    def test_instance_sees_the_environment_and_the_secret_stays_hidden(self):
        self.make_staging()
        self.make_app()
        sha = self.repo.commit_version("v1", MANIFEST, {"probe.py": PROBE})
        out = self.cli("deploy", "hello", timeout=180)
        self.assertNotIn(SECRET, out.stdout + out.stderr)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        status, body, _ = self.server.gateway_get("/")
        self.assertEqual(status, 200, body)
        seen = json.loads(body)
        self.assertIn("GREETING", seen["names"])
        self.assertIn("DB_PASSWORD", seen["names"])
        self.assertEqual(seen["greeting"], "hello from staging")
        self.assertEqual(seen["secret_sha256"], sha256(SECRET), "the secret arrives whole (newline stripped)")
        self.assertEqual(seen["file_sha256"], sha256(FILE_TEXT), "the file lands in the release")

        answers = {}
        paths = ["/api/v1/environments", "/api/v1/environments/staging", "/api/v1/apps", "/api/v1/apps/hello",
                 "/api/v1/apps/hello/deployments", "/api/v1/apps/hello/releases", "/api/v1/deployments?limit=1000",
                 "/api/v1/audit?limit=1000"]
        for path in paths:
            answers[path] = self.server.api("GET", path)
        deployments = [d["id"] for d in answers["/api/v1/deployments?limit=1000"][1]["deployments"]]
        self.assertTrue(deployments)
        for d in deployments:
            answers[f"deployment {d}"] = self.server.api("GET", f"/api/v1/deployments/{d}")
            answers[f"events {d}"] = self.server.api("GET", f"/api/v1/deployments/{d}/events?limit=5000")
        for what, (status, body) in answers.items():
            self.assertEqual(status, 200, (what, body))
            self.assertNotIn(SECRET, json.dumps(body), f"the secret is in {what}")
        build_lines = [e["text"] for d in deployments for e in self.server.events(d) if "build sees" in e["text"]]
        self.assertTrue(build_lines, "the build step ran")
        audit = answers["/api/v1/audit?limit=1000"][1]["audit"]
        env_entries = [a for a in audit if a["target"] == "env/staging"]
        self.assertEqual([a["action"] for a in env_entries], ["env.create"])
        self.assertIn("DB_PASSWORD", json.dumps(env_entries[0]["detail"]))
        for args in (("env", "show", "staging"), ("env", "list"), ("apps", "show", "hello"),
                     ("status", "hello"), ("logs", "hello")):
            self.cli_ok(*args)

        self.server.stop()  # flushes the log; the WAL may stay
        with open(self.server.log_path, "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read(), "the secret is in the server's log or output")
        found_db = False
        for name in ("slipway.db", "slipway.db-wal", "slipway.db-journal"):
            path = os.path.join(self.server.data, name)
            if os.path.exists(path):
                found_db = found_db or name == "slipway.db"
                with open(path, "rb") as f:
                    data = f.read()
                self.assertNotIn(SECRET.encode(), data, f"the secret is in {name} in the clear")
                self.assertNotIn(FILE_TEXT.encode(), data, f"the file is in {name} in the clear")
        self.assertTrue(found_db)
        self.server.start()  # for tearDown's stop
        wait_until(lambda: self.server.api("GET", "/api/v1/environments/staging")[0] == 200,
                   what="the environment after a restart")


if __name__ == "__main__":
    unittest.main()
