"""API surfaces a user reads: the live event stream (SSE and long poll, resumable by seq),
/metrics, /health, the audit trail, gateway error pages."""
import http.client
import json
import threading
import unittest

from harness import AUTH, SlipwayTestCase, http_call, wait_until


def read_sse(port, path, headers=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers={**AUTH, **(headers or {})})
    res = conn.getresponse()
    assert res.status == 200, res.status
    assert res.getheader("Content-Type") == "text/event-stream"
    events, current = [], {}
    for raw in res:
        line = raw.decode().rstrip("\n")
        if not line:
            if current:
                events.append(current)
                if current.get("event") == "end":
                    break
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    conn.close()
    return events


class Api(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.create_app()
        self.v1 = self.repo.commit_version("v1")

    def test_stream_is_live_and_resumes_without_gap_or_duplicate(self):
        status, res = self.push_webhook(self.v1)
        dep = res["deployment_id"]
        live = {}
        reader = threading.Thread(target=lambda: live.setdefault("events", read_sse(
            self.server.api_port, f"/api/v1/deployments/{dep}/stream")))
        reader.start()
        final = self.server.wait_deployment(dep)
        reader.join(60)
        self.assertEqual(final["status"], "succeeded")
        stream = [e for e in live["events"] if e.get("event") == "deployment"]
        seqs = [int(e["id"]) for e in stream]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "every event once, in order")
        self.assertEqual(live["events"][-1]["event"], "end")
        self.assertEqual(json.loads(live["events"][-1]["data"])["status"], "succeeded")
        stored = self.server.events(dep)
        self.assertEqual(len(stored), len(seqs))
        # Resume from the middle with Last-Event-ID: exactly the rest.
        middle = len(seqs) // 2
        rest = read_sse(self.server.api_port, f"/api/v1/deployments/{dep}/stream", {"Last-Event-ID": str(middle)})
        self.assertEqual([int(e["id"]) for e in rest if e.get("event") == "deployment"], seqs[middle:])
        # Long poll pages the same way.
        status, page = self.server.api("GET", f"/api/v1/deployments/{dep}/events?after={middle}&limit=3")
        self.assertEqual([e["seq"] for e in page["events"]], seqs[middle:middle + 3])
        self.assertFalse(page["done"] and middle + 3 < len(seqs))

    def test_metrics_health_and_audit(self):
        self.assertEqual(self.deploy_by_push(self.v1)["status"], "succeeded")
        for _ in range(5):
            self.assertEqual(self.server.gateway_get("/")[0], 200)
        status, raw, headers = http_call(self.server.api_port, "GET", "/metrics", headers=AUTH)
        text = raw.decode()
        self.assertEqual(status, 200)
        self.assertIn('slipway_webhooks_received_total{provider="gitea",event="push",outcome="queued"} 1', text)
        self.assertIn('slipway_deployments_total{runtime="process",status="succeeded"} 1', text)
        self.assertIn("slipway_deployment_duration_seconds_count", text)
        self.assertIn("slipway_api_request_duration_seconds_bucket", text)
        gw = [l for l in text.splitlines() if l.startswith('slipway_gateway_requests_total{app="hello"')]
        self.assertEqual(len(gw), 1)
        self.assertGreaterEqual(float(gw[0].split()[-1]), 5)
        status, health = self.server.api("GET", "/health")
        self.assertEqual(health["store"], "ok")
        self.assertEqual(health["agent"]["status"], "ok")
        status, audit = self.server.api("GET", "/api/v1/audit")
        actions = [a["action"] for a in audit["audit"]]
        self.assertIn("app.create", actions)
        self.assertIn("deployment.succeeded", actions)

    def test_gateway_pages_for_unknown_host_and_app_without_release(self):
        status, body, _ = self.server.gateway_get("/", host="nobody.localhost")
        self.assertEqual(status, 404)
        self.assertIn(b"nobody.localhost", body)
        status, body, _ = self.server.gateway_get("/")
        self.assertEqual(status, 503, "app exists but nothing is deployed yet")

    def test_cancel_queued_and_superseded_deployments(self):
        # Three quick deployments: the middle one is superseded by the last while queued.
        status, a = self.server.api("POST", "/api/v1/apps/hello/deployments", {"ref": "main"})
        wait_until(lambda: self.server.api("GET", f"/api/v1/deployments/{a['id']}")[1]["status"] == "running",
                   what="first deployment running")
        status, b = self.server.api("POST", "/api/v1/apps/hello/deployments", {"ref": "main"})
        status, c = self.server.api("POST", "/api/v1/apps/hello/deployments", {"ref": "main"})
        self.assertEqual(self.server.wait_deployment(b["id"])["status"], "cancelled")
        self.assertIn(f"superseded by deployment #{c['id']}", self.server.wait_deployment(b["id"])["error"])
        status, err = self.server.api("POST", f"/api/v1/deployments/{b['id']}/cancel")
        self.assertEqual(status, 409)
        self.server.wait_deployment(a["id"])
        self.server.wait_deployment(c["id"])


if __name__ == "__main__":
    unittest.main()
