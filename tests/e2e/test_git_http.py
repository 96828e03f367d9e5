"""Fetching over http:// with credentials: they reach git through the askpass helper and
never show up in the API, the events or the server log."""
import os
import subprocess
import sys
import unittest

from harness import SlipwayTestCase, free_port, http_call, wait_until

PASSWORD = "s3cr3t-Tok3n-never-logged"


class GitOverHttp(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        root = os.path.dirname(self.repo.bare)
        self.http = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "git_http.py"),
                                      str(self.port), root, "deployer", PASSWORD])
        wait_until(lambda: http_call(self.port, "GET", "/hello.git/info/refs")[0] == 401, what="git http server")
        self.sha = self.repo.commit_version("v1")

    def tearDown(self):
        self.http.terminate()
        self.http.wait(5)
        super().tearDown()

    def create(self, password):
        url = f"http://deployer:{password}@127.0.0.1:{self.port}/hello.git"
        status, body = self.server.api("POST", "/api/v1/apps", {"name": "hello", "repo": url, "secret": self.secret})
        self.assertEqual(status, 201, body)
        self.assertNotIn(password, str(body))
        self.assertIn("deployer:***@", body["repo"])

    def assert_not_leaked(self, deployment_id):
        status, d = self.server.api("GET", f"/api/v1/deployments/{deployment_id}")
        self.assertNotIn(PASSWORD, str(d))
        for e in self.server.events(deployment_id):
            self.assertNotIn(PASSWORD, e["text"])
        with open(self.server.log_path, errors="replace") as f:
            self.assertNotIn(PASSWORD, f.read())
        status, audit = self.server.api("GET", "/api/v1/audit")
        self.assertNotIn(PASSWORD, str(audit))

    def test_deploys_with_credentials_that_never_leak(self):
        self.create(PASSWORD)
        d = self.deploy_by_push(self.sha)
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.serving_version(), "v1")
        self.assert_not_leaked(d["id"])

    def test_wrong_password_fails_at_fetch_clearly(self):
        self.create("wrong-password")
        d = self.deploy_by_push(self.sha)
        self.assertEqual((d["status"], d["stage"]), ("failed", "fetch"), d)
        self.assertIn("git fetch exited", d["error"])
        texts = " ".join(e["text"] for e in self.server.events(d["id"]))
        self.assertIn("Authentication failed", texts)
        self.assertNotIn("wrong-password", texts)


if __name__ == "__main__":
    unittest.main()
