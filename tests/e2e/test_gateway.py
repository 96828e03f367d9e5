"""The gateway in front of a real app: forwarded headers, WebSocket passthrough, a clear 502
when the instance dies, and the supervisor bringing it back."""
import json
import os
import signal
import socket
import time
import unittest

from harness import SlipwayTestCase, http_call, processes_with_marker, wait_until

APP = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "echo_app.py")).read()
MANIFEST = """app: hello
run:
  command: python3 echo_app.py
health:
  path: /health
  timeout: 10s
deploy:
  watch_window: 1s
"""


class Gateway(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.create_app()
        sha = self.repo.commit_version("echo", MANIFEST, {"echo_app.py": APP})
        d = self.deploy_by_push(sha)
        self.assertEqual(d["status"], "succeeded", d)

    def test_forwarded_headers(self):
        status, body, _ = self.server.gateway_get("/headers")
        self.assertEqual(status, 200)
        headers = json.loads(body)
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(headers["x-forwarded-proto"], "http")
        self.assertEqual(headers["x-forwarded-host"], "hello.localhost")

    def test_slipway_credentials_never_reach_an_app(self):
        def seen(extra):
            status, body, _ = http_call(self.server.gw_port, "GET", "/headers",
                                        headers={"Host": "hello.localhost", **extra}, timeout=5)
            self.assertEqual(status, 200)
            return json.loads(body)
        h = seen({"Cookie": "a=1; slipway_session=sls_operator; b=2", "Authorization": "Bearer sls_operator"})
        self.assertEqual(h["cookie"], "a=1; b=2")
        self.assertNotIn("authorization", h)
        self.assertNotIn("cookie", seen({"Cookie": "slipway_session=sls_x"}))
        self.assertNotIn("authorization", seen({"Authorization": "Bearer slw_admin"}))
        self.assertEqual(seen({"Authorization": "Bearer app-own-token"})["authorization"], "Bearer app-own-token")

    def test_websocket_upgrade_is_tunnelled(self):
        with socket.create_connection(("127.0.0.1", self.server.gw_port), timeout=5) as s:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: hello.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1024)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            for message in (b"ping", b"\x81\x05hello"):
                s.sendall(message)
                got = b""
                while len(got) < len(message):
                    got += s.recv(1024)
                self.assertEqual(got, message)

    def test_dead_instance_gives_502_then_the_supervisor_restarts_it(self):
        pid = int(self.server.gateway_get("/pid")[1])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: pid not in processes_with_marker(self.server.data), what="instance gone")
        status, body, _ = self.server.gateway_get("/pid")
        self.assertIn(status, (200, 502))  # the supervisor may already have replaced it
        if status == 502:
            self.assertIn(b"Bad Gateway", body)
        wait_until(lambda: self.server.gateway_get("/pid")[0] == 200, timeout=20, what="restarted instance")
        self.assertNotEqual(int(self.server.gateway_get("/pid")[1]), pid)
        status, deployments = self.server.api("GET", "/api/v1/apps/hello/deployments?limit=1")
        latest = deployments["deployments"][0]
        self.assertEqual(latest["type"], "restart")
        status, audit = self.server.api("GET", "/api/v1/audit")
        self.assertIn(("supervisor", "app.restart"), [(a["actor"], a["action"]) for a in audit["audit"]])

    def test_a_stop_racing_the_supervisors_restart_stays_stopped(self):
        """The instance dies and the user stops the app at once, three times over: whichever of
        the stop and the supervisor's restart comes first, the app ends stopped, nothing runs."""
        for round_ in range(3):
            pid = int(self.server.gateway_get("/pid")[1])
            os.kill(pid, signal.SIGKILL)
            deadline = time.time() + 30
            while True:  # 409 while a restart deployment runs: the user tries again
                status, body = self.server.api("POST", "/api/v1/apps/hello/stop")
                if status == 200 or time.time() > deadline:
                    break
                self.assertEqual(status, 409, body)
                time.sleep(0.05)
            self.assertEqual(status, 200, body)
            time.sleep(3)  # several supervisor passes (every 500 ms, first retry after 1 s)
            status, app = self.server.api("GET", "/api/v1/apps/hello")
            self.assertTrue(app["stopped"], (round_, app))
            self.assertIsNone(app["serving"], (round_, app))
            self.assertEqual(self.server.gateway_get("/pid")[0], 503, round_)
            self.assertEqual(processes_with_marker(self.server.data), [], round_)
            status, d = self.server.api("POST", "/api/v1/apps/hello/start")
            self.assertEqual(status, 201, d)
            self.assertEqual(self.server.wait_deployment(d["id"])["status"], "succeeded")


if __name__ == "__main__":
    unittest.main()
