"""What the multi-host suites (test_nodes, test_rollout) share: calling the control plane that
runs in the "cp" network namespace, over its API and its CLI, and enrolling and watching
nodes. A mixin for a unittest.TestCase whose setUpClass sets `cls.cp` (the control plane's
address); the API listens on `API_PORT`."""
import json
import os
import subprocess

from harness import ADMIN_TOKEN, SLIPWAY, wait_until


class ControlPlaneCalls:
    API_PORT = 3452
    # A POST without a body sends "{}" (the API's write routes take JSON) when true; nothing
    # at all when false.
    EMPTY_POST_AS_JSON = False

    @classmethod
    def api(cls, method, path, body=None, token=ADMIN_TOKEN):
        """(status, parsed JSON body, or the raw bytes when it is not JSON)."""
        import http.client
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection(cls.cp, cls.API_PORT, timeout=10)
        try:
            send_empty = cls.EMPTY_POST_AS_JSON and method == "POST"
            data = json.dumps(body or {}) if body is not None or send_empty else None
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            raw = res.read()
            try:
                return res.status, (json.loads(raw) if raw else None)
            except ValueError:
                return res.status, raw
        finally:
            conn.close()

    @classmethod
    def cli(cls, *args, timeout=60):
        env = dict(os.environ, SLIPWAY_TOKEN=ADMIN_TOKEN)
        return subprocess.run([SLIPWAY, "--server", f"http://{cls.cp}:{cls.API_PORT}", *args],
                              capture_output=True, text=True, timeout=timeout, env=env)

    @classmethod
    def enrollment_token(cls, *extra):
        out = cls.cli("nodes", "token", "create", "--json", *extra)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["token"]

    @classmethod
    def node_states(cls):
        out = cls.cli("nodes", "list", "--json")
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        rows = data["nodes"] if isinstance(data, dict) else data
        return {n["name"]: n["state"] for n in rows}

    @classmethod
    def wait_nodes_up(cls, *names, timeout=40):
        wait_until(lambda: all(cls.node_states().get(n, "").startswith("up") for n in names), timeout=timeout,
                   interval=0.2, what=f"nodes {names} up")
