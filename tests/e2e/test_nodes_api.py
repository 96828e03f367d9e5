"""Node management through the API and the CLI: the in-process `local` node, drain and undrain,
remove, and enrollment tokens (shown once, never stored, logged or audited in the clear, always
expiring, and no good as API credentials)."""
import json
import os
import time
import unittest

from harness import AUTH, SlipwayTestCase, http_call


def files_bytes(root):
    data = b""
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data += f.read()
    return data


class NodesApi(SlipwayTestCase):
    def cli_json(self, *args, token=None):
        kwargs = {"token": token} if token else {}
        out = self.server.cli(*args, "--json", **kwargs)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def assert_one_line_error(self, out, *needles):
        self.assertEqual(out.returncode, 2, (out.stdout, out.stderr))
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for n in needles:
            self.assertIn(n, lines[0].lower())

    def node(self, name):
        return {n["name"]: n for n in self.cli_json("nodes", "list")["nodes"]}[name]

    def viewer_token(self):
        status, t = self.server.api("POST", "/api/v1/tokens", {"role": "viewer", "name": f"viewer-{time.time_ns()}"})
        self.assertEqual(status, 201, t)
        return t["token"]

    def test_the_local_node_is_listed_up(self):
        local = self.node("local")
        self.assertEqual(local["state"], "up")
        self.assertFalse(local["drained"])
        self.assertGreater(local["last_seen_ms"], 0)
        self.assertGreater(local["first_seen_ms"], 0)
        out = self.server.cli("nodes", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        header, *rows = out.stdout.splitlines()
        self.assertEqual(header.split(), ["NAME", "STATE", "LABELS", "ADDRESS", "AGENT", "LAST-SEEN"])
        self.assertTrue(any(r.split()[:2] == ["local", "up"] for r in rows), out.stdout)
        shown = self.cli_json("nodes", "show", "local")
        self.assertEqual((shown["name"], shown["state"]), ("local", "up"))
        status, body = self.server.api("GET", "/api/v1/nodes/local")
        self.assertEqual((status, body["name"]), (200, "local"))

    def test_unknown_nodes_and_the_local_node_cannot_be_removed(self):
        self.assert_one_line_error(self.server.cli("nodes", "show", "nosuch"), "not exist")
        self.assert_one_line_error(self.server.cli("nodes", "drain", "nosuch"), "not exist")
        self.assert_one_line_error(self.server.cli("nodes", "remove", "nosuch"), "not exist")
        self.assert_one_line_error(self.server.cli("nodes", "remove", "local"), "local")
        status, body = self.server.api("GET", "/api/v1/nodes/nosuch")
        self.assertEqual((status, set(body)), (404, {"error", "detail"}))
        status, body = self.server.api("DELETE", "/api/v1/nodes/local")
        self.assertEqual((status, set(body)), (400, {"error", "detail"}))
        self.assertEqual(self.node("local")["state"], "up")

    def test_drain_and_undrain_round_trip(self):
        drained = self.cli_json("nodes", "drain", "local")
        self.assertTrue(drained["drained"])
        self.assertTrue(self.node("local")["drained"])
        out = self.server.cli("nodes", "list")
        self.assertIn("up,drained", out.stdout)
        self.assertFalse(self.cli_json("nodes", "drain", "local", "--undo")["drained"])
        self.assertFalse(self.node("local")["drained"])
        self.assertNotIn("drained", self.server.cli("nodes", "list").stdout)
        out = self.server.cli("nodes", "drain", "local")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("drained", out.stdout)
        status, body = self.server.api("POST", "/api/v1/nodes/local/drain", {"drained": False})
        self.assertEqual((status, body["drained"]), (200, False))
        status, audit = self.server.api("GET", "/api/v1/audit?limit=50")
        actions = [a["action"] for a in audit["audit"] if a["target"] == "node/local"]
        self.assertEqual(actions, ["node.undrain", "node.drain", "node.undrain", "node.drain"])

    def test_enrollment_token_is_shown_once_and_never_kept_in_the_clear(self):
        created = self.cli_json("nodes", "token", "create")
        token = created["token"]
        self.assertTrue(token.startswith("slw_"), created)
        self.assertRegex(created["name"], r"^node-[0-9a-f]{8}$")
        hours = (created["expires_ms"] / 1000 - time.time()) / 3600
        self.assertTrue(23.9 < hours <= 24.0, hours)
        week = self.cli_json("nodes", "token", "create", "--expires", "7d")
        self.assertTrue(6.9 < (week["expires_ms"] / 1000 - time.time()) / 86400 <= 7)
        out = self.server.cli("nodes", "token", "create", "--expires", "30d")
        self.assertEqual(out.returncode, 0, out.stderr)
        human, *hint = out.stdout.splitlines()
        self.assertTrue(human.startswith("slw_"), out.stdout)
        self.assertIn(f"slipway agent --server ws://127.0.0.1:{self.server.api_port}/ws/agent --token {human}",
                      "\n".join(hint))
        status, audit = self.server.api("GET", "/api/v1/audit?limit=100")
        self.assertEqual(status, 200)
        self.assertEqual(len([a for a in audit["audit"] if a["action"] == "node.token.create"]), 3)
        status, tokens = self.server.api("GET", "/api/v1/tokens")
        kinds = {t["name"]: t["kind"] for t in tokens["tokens"]}
        self.assertEqual(kinds[created["name"]], "node")
        self.server.stop()  # everything written: the database, its WAL, the log
        raw = json.dumps(audit) + json.dumps(tokens)
        with open(self.server.log_path, "rb") as f:
            log = f.read()
        stored = files_bytes(self.server.data)
        self.assertTrue(os.path.isfile(os.path.join(self.server.data, "slipway.db")))
        for t in (token, week["token"], human):
            self.assertNotIn(t, raw)
            self.assertNotIn(t.encode(), log)
            self.assertNotIn(t.encode(), stored)
            self.assertNotIn(t[4:].encode(), stored)

    def test_enrollment_tokens_always_expire_within_thirty_days(self):
        for bad in ("0", "never", "-5m", "40d", "banana", "31d", ""):
            out = self.server.cli("nodes", "token", "create", f"--expires={bad}")
            self.assert_one_line_error(out)
            self.assertEqual(out.stdout, "")
        for bad in ("0", "-5m", "40d", "banana"):
            self.assert_one_line_error(self.server.cli("nodes", "token", "create", "--expires", bad))
        for body in ({"expires": "never"}, {"expires": 5}, {"expires": "721h"}):
            status, answer = self.server.api("POST", "/api/v1/nodes/tokens", body)
            self.assertEqual((status, set(answer)), (400, {"error", "detail"}), body)
        status, answer = self.server.api("POST", "/api/v1/nodes/tokens", {"expires": "720h"})
        self.assertEqual(status, 201, answer)

    def test_an_enrollment_token_is_not_an_api_token(self):
        token = self.cli_json("nodes", "token", "create")["token"]
        status, raw, _ = http_call(self.server.api_port, "GET", "/api/v1/apps",
                                   headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(status, 401, raw)
        self.assertEqual(set(json.loads(raw)), {"error", "detail"})
        self.assertEqual(self.server.cli("nodes", "list", token=token).returncode, 2)

    def test_a_viewer_may_look_but_not_change(self):
        viewer = self.viewer_token()
        listed = self.cli_json("nodes", "list", token=viewer)
        self.assertIn("local", [n["name"] for n in listed["nodes"]])
        self.assertEqual(self.cli_json("nodes", "show", "local", token=viewer)["name"], "local")
        for args in (("nodes", "token", "create"), ("nodes", "drain", "local"),
                     ("nodes", "drain", "local", "--undo"), ("nodes", "remove", "local")):
            self.assert_one_line_error(self.server.cli(*args, token=viewer), "manage_users")
        for method, path in (("POST", "/api/v1/nodes/tokens"), ("POST", "/api/v1/nodes/local/drain"),
                             ("DELETE", "/api/v1/nodes/local")):
            status, body = self.server.api(method, path, token=viewer)
            self.assertEqual((status, set(body)), (403, {"error", "detail"}), (method, path))
        self.assertFalse(self.node("local")["drained"])

    def test_malformed_bodies_are_refused(self):
        headers = dict(AUTH, **{"Content-Type": "application/json"})
        routes = (("POST", "/api/v1/nodes/tokens"), ("POST", "/api/v1/nodes/local/drain"),
                  ("DELETE", "/api/v1/nodes/local"), ("DELETE", "/api/v1/nodes/nosuch"))
        for method, path in routes:
            for body in (b"{not json", b"[1, 2]", b'"text"'):
                status, raw, _ = http_call(self.server.api_port, method, path, body, headers)
                self.assertEqual(status, 400, (method, path, body, raw))
                self.assertEqual(set(json.loads(raw)), {"error", "detail"})
        status, body = self.server.api("POST", "/api/v1/nodes/local/drain", {"drained": "yes"})
        self.assertEqual((status, set(body)), (400, {"error", "detail"}))
        self.assertFalse(self.node("local")["drained"])
        self.assertEqual(self.node("local")["state"], "up")


if __name__ == "__main__":
    unittest.main()
