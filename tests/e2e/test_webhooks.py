"""Webhook intake against a running server: signatures, replays, malformed bodies, unknown
apps, other providers' real payloads, and a manifest error reported with file:line:column."""
import hashlib
import hmac
import json
import os
import unittest
import uuid

from harness import AUTH, FIXTURES, SlipwayTestCase, gitea_headers, gitea_push_body, http_call


def deployments(server):
    status, body = server.api("GET", "/api/v1/deployments?limit=100")
    assert status == 200, body
    return body["deployments"]


class Webhooks(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.create_app()
        self.v1 = self.repo.commit_version("v1")

    def post(self, path, body, headers):
        status, raw, _ = http_call(self.server.api_port, "POST", path, body, headers)
        return status, json.loads(raw)

    def test_tampered_signature_is_401_and_queues_nothing(self):
        body = gitea_push_body(self.v1)
        headers = gitea_headers(body, self.secret)
        tampered = body.replace(b'"main"', b'"mainx"', 1) if b'"main"' in body else body + b" "
        status, err = self.post("/hooks/gitea/hello", tampered, headers)
        self.assertEqual(status, 401)
        self.assertEqual(err["error"], "unauthorized")
        self.assertIn("signature", err["detail"])
        status, err = self.post("/hooks/gitea/hello", body, gitea_headers(body, "wrong-secret"))
        self.assertEqual(status, 401)
        headers.pop("X-Gitea-Signature")
        status, err = self.post("/hooks/gitea/hello", body, headers)
        self.assertEqual(status, 401)
        self.assertEqual(deployments(self.server), [])

    def test_replayed_delivery_queues_one_deployment(self):
        delivery = str(uuid.uuid4())
        status, first = self.push_webhook(self.v1, delivery=delivery)
        self.assertEqual(status, 202, first)
        status, again = self.push_webhook(self.v1, delivery=delivery)
        self.assertEqual(status, 200, again)
        self.assertEqual(again["outcome"], "duplicate")
        self.assertEqual(len(deployments(self.server)), 1)
        self.server.wait_deployment(first["deployment_id"])

    def test_malformed_json_is_400(self):
        body = b'{"ref": "refs/heads/main", "after": '
        status, err = self.post("/hooks/gitea/hello", body, gitea_headers(body, self.secret))
        self.assertEqual(status, 400)
        self.assertEqual(err["error"], "invalid")
        self.assertIn("JSON", err["detail"])
        self.assertEqual(deployments(self.server), [])

    def test_unknown_app_and_provider_are_404(self):
        body = gitea_push_body(self.v1)
        status, err = self.post("/hooks/gitea/nope", body, gitea_headers(body, self.secret))
        self.assertEqual(status, 404)
        self.assertIn("nope", err["detail"])
        status, err = self.post("/hooks/sourceforge/hello", body, gitea_headers(body, self.secret))
        self.assertEqual(status, 404)

    def test_oversized_body_is_413(self):
        body = b'{"pad": "' + b"x" * (2 << 20) + b'"}'
        status, err = self.post("/hooks/gitea/hello", body, gitea_headers(body, self.secret))
        self.assertEqual(status, 413)

    def test_github_ping_and_untracked_branch(self):
        with open(os.path.join(FIXTURES, "github", "ping.json"), "rb") as f:
            ping = f.read()
        sig = "sha256=" + hmac.new(self.secret.encode(), ping, hashlib.sha256).hexdigest()
        status, body = self.post("/hooks/github/hello", ping,
                                 {"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()),
                                  "X-Hub-Signature-256": sig})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["outcome"], "pong")
        other = gitea_push_body(self.v1, branch="feature/x")
        status, body = self.post("/hooks/gitea/hello", other, gitea_headers(other, self.secret))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["outcome"], "ignored")
        self.assertEqual(deployments(self.server), [])

    def test_forgejo_push_deploys_that_commit(self):
        with open(os.path.join(FIXTURES, "forgejo", "push.json"), "rb") as f:
            payload = json.loads(f.read())
        payload["after"] = self.v1
        payload["ref"] = "refs/heads/main"
        body = json.dumps(payload).encode()
        sig = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        status, res = self.post("/hooks/forgejo/hello", body,
                                {"X-Forgejo-Event": "push", "X-Forgejo-Delivery": str(uuid.uuid4()),
                                 "X-Forgejo-Signature": sig})
        self.assertEqual(status, 202, res)
        d = self.server.wait_deployment(res["deployment_id"])
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(d["commit"], self.v1)

    def test_manifest_error_fails_with_file_line_column(self):
        broken = "app: hello\nrun:\n  command: ./server\nhealth:\n  timeout: soon\n"
        sha = self.repo.commit_version("v2", broken)
        d = self.deploy_by_push(sha)
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["stage"], "checkout")
        self.assertIn("slipway.yaml:5:12", d["error"])
        texts = [e["text"] for e in self.server.events(d["id"])]
        self.assertTrue(any("slipway.yaml:5:12" in t for t in texts), texts)
        # The CLI reports the same without deploying, exit 2, one line.
        path = os.path.join(self.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write(broken)
        out = self.server.cli("manifest", "check", path)
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stderr.strip(), "bad.yaml:5:12: health.timeout: expected a duration like 10s or 500ms")

    def test_api_errors_are_json_with_status(self):
        status, err = self.server.api("POST", "/api/v1/apps", {"name": "Bad Name", "repo": "x", "secret": "longenough"})
        self.assertEqual(status, 400)
        self.assertEqual(set(err), {"error", "detail"})
        status, err = self.server.api("POST", "/api/v1/apps", {"name": "hello", "repo": "/srv/x", "secret": "longenough"})
        self.assertEqual(status, 409)
        status, raw, _ = http_call(self.server.api_port, "POST", "/api/v1/apps", b"{nope",
                                   {"Content-Type": "application/json", **AUTH})
        self.assertEqual(status, 400)
        status, err = self.server.api("GET", "/api/v1/deployments/abc")
        self.assertEqual(status, 400)
        status, err = self.server.api("GET", "/api/v1/deployments/999")
        self.assertEqual(status, 404)
        status, body = self.server.api("GET", "/api/v1/apps/hello")
        self.assertNotIn(self.secret, json.dumps(body), "the webhook secret is never rendered")


if __name__ == "__main__":
    unittest.main()
