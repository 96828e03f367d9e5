"""Safe to expose: every route authenticated and authorised, webhooks by signature alone,
git-credential login with a lockout, injections refused before anything runs, secrets
sealed at rest, and an API whose streams never make anyone else wait."""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

from harness import (ADMIN_TOKEN, AUTH, Server, SlipwayTestCase, free_port, gitea_headers,
                     gitea_push_body, http_call, processes_with_marker, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))

# The permission each route needs. The server's route table must match it exactly, so a new
# route that nobody gave a permission fails here.
EXPECTED_ROUTES = {
    ("GET", "/api/v1/apps"): "read",
    ("POST", "/api/v1/apps"): "manage_apps",
    ("GET", "/api/v1/apps/{app}"): "read",
    ("DELETE", "/api/v1/apps/{app}"): "manage_apps",
    ("PATCH", "/api/v1/apps/{app}"): "manage_apps",
    ("POST", "/api/v1/apps/{app}/deployments"): "deploy",
    ("GET", "/api/v1/apps/{app}/deployments"): "read",
    ("GET", "/api/v1/apps/{app}/releases"): "read",
    ("POST", "/api/v1/apps/{app}/rollback"): "deploy",
    ("POST", "/api/v1/apps/{app}/pause"): "deploy",
    ("POST", "/api/v1/apps/{app}/resume"): "deploy",
    ("POST", "/api/v1/apps/{app}/maintenance"): "deploy",
    ("POST", "/api/v1/apps/{app}/stop"): "deploy",
    ("POST", "/api/v1/apps/{app}/start"): "deploy",
    ("POST", "/api/v1/apps/{app}/restart"): "deploy",
    ("GET", "/api/v1/apps/{app}/rollout"): "read",
    ("POST", "/api/v1/apps/{app}/rollout/promote"): "deploy",
    ("POST", "/api/v1/apps/{app}/rollout/abort"): "deploy",
    ("GET", "/api/v1/deployments"): "read",
    ("GET", "/api/v1/deployments/{id}"): "read",
    ("GET", "/api/v1/deployments/{id}/events"): "view_logs",
    ("GET", "/api/v1/deployments/{id}/stream"): "view_logs",
    ("POST", "/api/v1/deployments/{id}/cancel"): "deploy",
    ("GET", "/api/v1/deployments/{id}/notifications"): "read",
    ("POST", "/api/v1/auth/login"): "none",
    ("POST", "/api/v1/auth/logout"): "read",
    ("GET", "/api/v1/auth/whoami"): "read",
    ("GET", "/api/v1/tokens"): "manage_users",
    ("POST", "/api/v1/tokens"): "manage_users",
    ("DELETE", "/api/v1/tokens/{token}"): "manage_users",
    ("GET", "/api/v1/users"): "manage_users",
    ("POST", "/api/v1/users"): "manage_users",
    ("DELETE", "/api/v1/users/{user}"): "manage_users",
    ("GET", "/api/v1/audit"): "view_audit",
    ("GET", "/api/v1/routes"): "read",
    ("GET", "/api/v1/nodes"): "read",
    ("POST", "/api/v1/nodes/tokens"): "manage_users",
    ("GET", "/api/v1/nodes/{node}"): "read",
    ("POST", "/api/v1/nodes/{node}/drain"): "manage_users",
    ("DELETE", "/api/v1/nodes/{node}"): "manage_users",
    ("GET", "/api/v1/repos"): "read",
    ("GET", "/api/v1/repos/{repo}/branches"): "read",
    ("GET", "/api/v1/environments"): "read",
    ("POST", "/api/v1/environments"): "manage_environments",
    ("GET", "/api/v1/environments/{env}"): "read",
    ("PATCH", "/api/v1/environments/{env}"): "manage_environments",
    ("DELETE", "/api/v1/environments/{env}"): "manage_environments",
    ("GET", "/api/v1/sandboxes"): "read",
    ("POST", "/api/v1/sandboxes"): "manage_sandboxes",
    ("GET", "/api/v1/sandboxes/{sandbox}"): "read",
    ("DELETE", "/api/v1/sandboxes/{sandbox}"): "manage_sandboxes",
    ("POST", "/api/v1/sandboxes/{sandbox}/deploy"): "manage_sandboxes",
    ("POST", "/api/v1/sandboxes/{sandbox}/routes/{service}"): "manage_routes",
    ("POST", "/api/v1/sandboxes/{sandbox}/clone"): "manage_sandboxes",
    ("POST", "/api/v1/sandboxes/{sandbox}/snapshots"): "manage_sandboxes",
    ("GET", "/api/v1/sandboxes/{sandbox}/snapshots"): "read",
    ("POST", "/api/v1/snapshots/{id}/restore"): "manage_sandboxes",
    ("POST", "/api/v1/sandboxes/{sandbox}/suspend"): "manage_sandboxes",
    ("POST", "/api/v1/sandboxes/{sandbox}/resume"): "manage_sandboxes",
    ("GET", "/api/v1/sandboxes/{sandbox}/check"): "read",
    ("GET", "/api/v1/templates"): "read",
    ("POST", "/api/v1/templates"): "manage_templates",
    ("GET", "/api/v1/templates/{template}"): "read",
    ("PUT", "/api/v1/templates/{template}"): "manage_templates",
    ("DELETE", "/api/v1/templates/{template}"): "manage_templates",
}

# What each role holds (docs/SECURITY.md), written out independently of the server's table.
ROLE_PERMISSIONS = {
    "admin": {"read", "view_logs", "deploy", "manage_apps", "manage_sandboxes", "manage_templates",
              "manage_routes", "manage_environments", "manage_users", "view_audit"},
    "backend": {"read", "view_logs", "deploy", "manage_apps", "manage_sandboxes", "manage_templates",
                "manage_routes", "manage_environments"},
    "qa": {"read", "view_logs", "manage_sandboxes", "manage_routes"},
    "viewer": {"read"},
}

# Placeholders name things that do not exist, so an allowed call changes nothing.
FILL = {"{app}": "ghost", "{id}": "999999", "{token}": "no-such-token", "{user}": "no-such-user",
        "{node}": "no-such-node", "{repo}": "no-such-repo", "{env}": "no-such-env",
        "{sandbox}": "no-such-sandbox", "{service}": "no-such-service", "{template}": "no-such-template"}


def fill(pattern):
    for k, v in FILL.items():
        pattern = pattern.replace(k, v)
    return pattern


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def files_bytes(root):
    data = b""
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    data += f.read()
    return data


class Permissions(SlipwayTestCase):
    def token(self, role, expires=None):
        body = {"role": role, "name": f"{role}-{time.time_ns()}"}
        if expires:
            body["expires"] = expires
        status, t = self.server.api("POST", "/api/v1/tokens", body)
        self.assertEqual(status, 201, t)
        return t

    def test_every_route_by_every_credential(self):
        status, table = self.server.api("GET", "/api/v1/routes")
        self.assertEqual(status, 200, table)
        served = {(r["method"], r["pattern"]): r["permission"] for r in table["routes"]}
        self.assertEqual(served, EXPECTED_ROUTES, "every route has exactly the expected permission")
        tokens = {role: self.token(role)["token"] for role in ROLE_PERMISSIONS}
        expired = self.token("admin", expires="1s")["token"]
        revoked = self.token("admin")
        self.assertEqual(self.server.api("DELETE", f"/api/v1/tokens/{revoked['name']}")[0], 200)
        time.sleep(1.2)
        for (method, pattern), permission in EXPECTED_ROUTES.items():
            path = fill(pattern)
            for label, token in (("none", None), ("expired", expired), ("revoked", revoked["token"])):
                status, body = self.server.api(method, path, token=token)
                if permission == "none":
                    self.assertNotIn(status, (401, 403), (method, path, label, body))
                else:
                    self.assertEqual(status, 401, (method, path, label, body))
                    self.assertEqual(set(body), {"error", "detail"})
            for role, token in tokens.items():
                status, body = self.server.api(method, path, token=token)
                if permission == "none" or permission in ROLE_PERMISSIONS[role]:
                    self.assertNotIn(status, (401, 403), (method, path, role, body))
                else:
                    self.assertEqual(status, 403, (method, path, role, body))
                    self.assertIn(permission, body["detail"])

    def test_metrics_needs_a_token_and_refusals_are_audited(self):
        self.assertEqual(http_call(self.server.api_port, "GET", "/metrics")[0], 401)
        self.assertEqual(http_call(self.server.api_port, "GET", "/metrics", headers=AUTH)[0], 200)
        viewer = self.token("viewer")
        status, _ = self.server.api("POST", "/api/v1/apps", {"name": "x"}, token=viewer["token"])
        self.assertEqual(status, 403)
        status, audit = self.server.api("GET", f"/api/v1/audit?actor={viewer['name']}")
        entry = audit["audit"][0]
        self.assertEqual((entry["source"], entry["outcome"]), ("127.0.0.1", "denied: forbidden"))
        out = self.server.cli("audit", "--actor", viewer["name"], "--since", "1h")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("denied: forbidden", out.stdout)

    def test_cli_tokens_and_flags_after_the_verb(self):
        out = self.server.cli("token", "create", "--role", "qa", "--name", "qa-cli", "--expires", "30d")
        self.assertEqual(out.returncode, 0, out.stderr)
        token = out.stdout.strip()
        self.assertTrue(token.startswith("slw_"))
        self.assertEqual(self.server.cli("status", "--json", token=token).returncode, 0)
        listed = self.server.cli("token", "list", "--json")
        self.assertNotIn(token, listed.stdout, "a token is shown only once")
        self.assertEqual(self.server.cli("token", "revoke", "qa-cli").returncode, 0)
        out = self.server.cli("status", token=token)
        self.assertEqual(out.returncode, 2)
        self.assertIn("revoked", out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)
        out = self.server.cli("status", token=None, env={"HOME": self.tmp, "XDG_CONFIG_HOME": ""})
        self.assertEqual(out.returncode, 2)
        self.assertIn("SLIPWAY_TOKEN", out.stderr)
        # slipway login keeps server + token in a private file for the next commands.
        home = {"HOME": self.tmp, "XDG_CONFIG_HOME": ""}
        self.assertEqual(self.server.cli("login", env=home).returncode, 0)
        config = os.path.join(self.tmp, ".config", "slipway", "config")
        self.assertEqual(os.stat(config).st_mode & 0o777, 0o600)
        out = subprocess.run([os.environ.get("SLIPWAY_BIN", "slipway"), "whoami"], capture_output=True,
                             text=True, env=dict(os.environ, SLIPWAY_SERVER="", SLIPWAY_TOKEN="", **home))
        self.assertIn("admin", out.stdout + out.stderr)


class Listeners(SlipwayTestCase):
    def test_webhooks_need_only_their_signature_and_the_hooks_listener_serves_nothing_else(self):
        self.server.stop()
        hooks_port = free_port()
        self.server = Server(self.server.data + "2", ["--hooks", f"127.0.0.1:{hooks_port}"]).start()
        self.create_app()
        v1 = self.repo.commit_version("v1")
        for port in (self.server.api_port, hooks_port):
            body = gitea_push_body(v1, clone_url=self.repo.url)
            status, raw, _ = http_call(port, "POST", "/hooks/gitea/hello", body, gitea_headers(body, self.secret))
            self.assertEqual(status, 202, raw)
            status, raw, _ = http_call(port, "POST", "/hooks/gitea/hello", body, gitea_headers(body, "wrong-secret"))
            self.assertEqual(status, 401)
        self.assertEqual(http_call(hooks_port, "GET", "/api/v1/apps", headers=AUTH)[0], 404)
        self.assertEqual(http_call(hooks_port, "GET", "/metrics", headers=AUTH)[0], 404)
        self.assertEqual(http_call(hooks_port, "GET", "/health")[0], 200)


class GitCredentialLogin(SlipwayTestCase):
    PASSWORD = "Git-Pa55word-n3ver-written"

    def setUp(self):
        super().setUp()
        self.git_port = free_port()
        self.http = subprocess.Popen([sys.executable, os.path.join(HERE, "apps", "git_http.py"), str(self.git_port),
                                      os.path.dirname(self.repo.bare), "alice", self.PASSWORD])
        wait_until(lambda: http_call(self.git_port, "GET", "/hello.git/info/refs")[0] == 401, what="git http")
        self.repo.commit_version("v1")
        self.server.stop()
        url = f"http://127.0.0.1:{self.git_port}/hello.git"
        self.server = Server(self.server.data + "2", ["--login-repo", url, "--login-role", "backend"]).start()
        self.outputs = []

    def tearDown(self):
        self.http.terminate()
        self.http.wait(5)
        super().tearDown()

    def login(self, password):
        status, raw, headers = http_call(self.server.api_port, "POST", "/api/v1/auth/login",
                                         {"username": "alice", "password": password},
                                         {"Content-Type": "application/json"})
        self.outputs.append(raw + json.dumps(headers).encode())
        return status, json.loads(raw), headers

    def test_login_session_lockout_and_no_trace_of_the_password(self):
        status, body, headers = self.login(self.PASSWORD)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["role"], "backend")
        cookie = headers["Set-Cookie"]
        for attr in ("HttpOnly", "SameSite=Strict", "Max-Age=43200"):
            self.assertIn(attr, cookie)
        session = {"Cookie": cookie.split(";")[0]}
        status, me = self.server.api("GET", "/api/v1/auth/whoami", token=None, headers=session)
        self.assertEqual((status, me["name"], me["kind"]), (200, "alice", "session"))
        # A cookie-authenticated write needs the CSRF token, and JSON.
        app = {"name": "csrf", "repo": self.repo.url, "secret": "0123456789"}
        status, _ = self.server.api("POST", "/api/v1/apps", app, token=None, headers=session)
        self.assertEqual(status, 403)
        status, _ = self.server.api("POST", "/api/v1/apps", app, token=None,
                                    headers={**session, "X-CSRF-Token": body["csrf_token"]})
        self.assertEqual(status, 201)
        status, raw, _ = http_call(self.server.api_port, "POST", "/api/v1/apps", b"{}",
                                   {**session, "X-CSRF-Token": body["csrf_token"], "Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        # The session's git credentials fetch for alice (the app's URL carries none).
        self.server.api("POST", "/api/v1/apps", {"name": "private", "secret": "0123456789",
                                                 "repo": f"http://127.0.0.1:{self.git_port}/hello.git"})
        status, d = self.server.api("POST", "/api/v1/apps/private/deployments", {}, token=None,
                                    headers={**session, "X-CSRF-Token": body["csrf_token"]})
        self.assertEqual(status, 201, d)
        done = self.server.wait_deployment(d["id"])
        self.assertNotEqual(done["stage"], "fetch", done)
        # Logout ends the session.
        status, _ = self.server.api("POST", "/api/v1/auth/logout", token=None,
                                    headers={**session, "X-CSRF-Token": body["csrf_token"]})
        self.assertEqual(status, 200)
        self.assertEqual(self.server.api("GET", "/api/v1/auth/whoami", token=None, headers=session)[0], 401)
        # Wrong passwords: 401 each, then a lockout that even the right password meets.
        for i in range(10):
            status, body, _ = self.login(f"wrong-{i}")
            self.assertEqual(status, 401, body)
        status, body, _ = self.login(self.PASSWORD)
        self.assertEqual(status, 429, body)
        self.assertIn("locked", body["detail"])
        # No trace of the password: responses, events, audit, log, data dir.
        status, audit = self.server.api("GET", "/api/v1/audit?actor=alice")
        self.assertTrue(any(a["outcome"].startswith("failed") for a in audit["audit"]))
        self.outputs.append(json.dumps(audit).encode())
        self.outputs.append(json.dumps(self.server.events(d["id"])).encode())
        self.server.stop()
        with open(self.server.log_path, "rb") as f:
            self.outputs.append(f.read())
        self.outputs.append(files_bytes(self.server.data))
        hits = [i for i, out in enumerate(self.outputs) if self.PASSWORD.encode() in out]
        self.assertEqual(hits, [])


class Injections(SlipwayTestCase):
    def test_hostile_input_is_refused_and_nothing_runs(self):
        marker = os.path.join(self.tmp, "pwned")
        for repo in (f"--upload-pack=touch {marker}; false", f"ext::sh -c touch% {marker}",
                     "ssh://-oProxyCommand=touch%20x/r", "git@host:org/r.git", "relative/path"):
            status, body = self.server.api("POST", "/api/v1/apps", {"name": "evil", "repo": repo, "secret": "whatever1"})
            self.assertEqual(status, 400, (repo, body))
            self.assertNotIn(marker, body["detail"])
        status, body = self.server.api("POST", "/api/v1/apps", {"name": "evil", "repo": self.repo.url,
                                                                "branch": "--foo", "secret": "whatever1"})
        self.assertEqual(status, 400, body)
        self.create_app()
        for ref in ("-x", f"--output={marker}", "a..b", "main\nx", "refs/heads/@{1}"):
            status, body = self.server.api("POST", "/api/v1/apps/hello/deployments", {"ref": ref})
            self.assertEqual(status, 400, (ref, body))
        # Without a credential, or cross-site from a browser: refused before anything happens.
        status, raw, _ = http_call(self.server.api_port, "POST", "/api/v1/apps",
                                   json.dumps({"name": "evil", "repo": self.repo.url, "secret": "whatever1"}).encode(),
                                   {"Content-Type": "text/plain", "Origin": "http://evil.example"})
        self.assertIn(status, (401, 403))
        status, raw, _ = http_call(self.server.api_port, "POST", "/api/v1/apps",
                                   json.dumps({"name": "evil", "repo": self.repo.url, "secret": "whatever1"}).encode(),
                                   {**AUTH, "Content-Type": "application/json", "Origin": "http://evil.example"})
        self.assertEqual(status, 403)
        self.assertEqual(self.server.api("GET", "/api/v1/apps/evil")[0], 404)
        self.assertFalse(os.path.exists(marker))

    def test_route_hijack_is_a_conflict(self):
        self.create_app()
        for hosts, prefix in ((["hello.localhost"], ""), (["HELLO.localhost"], "")):
            status, body = self.server.api("POST", "/api/v1/apps", {"name": "thief", "repo": self.repo.url,
                                                                    "secret": "whatever1", "hosts": hosts,
                                                                    "path_prefix": prefix})
            self.assertEqual(status, 409, body)
            self.assertIn("hello", body["detail"])
        status, body = self.server.api("POST", "/api/v1/apps", {"name": "thief", "repo": self.repo.url,
                                                                "secret": "whatever1", "hosts": ["hello.localhost"],
                                                                "path_prefix": "/api"})
        self.assertEqual(status, 201, body)
        for bad in (["<script>"], ["a..b"], ["-x.com"], ["x" * 300]):
            status, body = self.server.api("POST", "/api/v1/apps", {"name": "bad", "repo": self.repo.url,
                                                                    "secret": "whatever1", "hosts": bad})
            self.assertEqual(status, 400, (bad, body))

    def test_alias_bomb_fails_at_checkout_without_eating_memory(self):
        self.create_app()
        chunk = "x" * 10_000
        lines = ["app: hello", f"a: &a \"{chunk}\"", "build:"] + ["  - *a"] * 6000 + ["run: {command: ./server}"]
        bomb = "\n".join(lines) + "\n"
        self.assertLess(len(bomb), 256 * 1024)
        sha = self.repo.commit_version("bomb", manifest=bomb)
        d = self.deploy_by_push(sha)
        self.assertEqual((d["status"], d["stage"]), ("failed", "checkout"), d)
        self.assertIn("size", d["error"])
        self.assertLess(rss_mib(self.server.proc.pid), 100)
        status, raw, _ = http_call(self.server.api_port, "GET", "/api/v1/deployments", headers=AUTH)
        self.assertLess(len(raw), 100_000)

    def test_deploy_timeout_covers_build_steps(self):
        self.create_app()
        manifest = "\n".join(["app: hello", "build: [\"sleep 30\"]", "run: {command: ./server}",
                              "deploy: {timeout: 2s}"]) + "\n"
        sha = self.repo.commit_version("slow", manifest=manifest)
        started = time.time()
        d = self.deploy_by_push(sha)
        self.assertEqual((d["status"], d["stage"]), ("failed", "build"), d)
        self.assertIn("timed out", d["error"])
        self.assertLess(time.time() - started, 20, "ended long before the step would have")
        wait_until(lambda: not processes_with_marker(self.server.data), what="the step's process group gone")
        builds = os.path.join(self.server.data, "builds", "hello")
        self.assertEqual(os.listdir(builds) if os.path.isdir(builds) else [], [], "failed build dir removed")


class HostileRepository(SlipwayTestCase):
    def test_build_steps_never_see_the_servers_secrets(self):
        self.create_app()
        manifest = "\n".join(["app: hello", "build: [\"env; exit 1\"]", "run: {command: ./server}"]) + "\n"
        d = self.deploy_by_push(self.repo.commit_version("env", manifest=manifest))
        self.assertEqual(d["status"], "failed")
        text = json.dumps(self.server.events(d["id"]))
        self.assertIn("SLIPWAY_APP=hello", text, "the step's environment was printed")
        self.assertNotIn(ADMIN_TOKEN, text)
        self.assertNotIn("SLIPWAY_BOOTSTRAP_TOKEN", text)

    def test_a_replayed_push_of_an_old_commit_does_not_roll_back(self):
        self.create_app()
        v1 = self.repo.commit_version("v1")
        self.repo.commit_version("v2")
        d = self.deploy_by_push(v1)
        self.assertEqual(d["status"], "failed", d)
        self.assertIn("stale push", d["error"])
        body = gitea_push_body("--upload-pack=x", clone_url=self.repo.url)
        status, raw, _ = http_call(self.server.api_port, "POST", "/hooks/gitea/hello", body,
                                   gitea_headers(body, self.secret))
        self.assertEqual(status, 400, raw)

    def test_a_login_repository_anyone_may_read_lets_nobody_in(self):
        self.server.stop()
        self.server = Server(self.server.data + "2", ["--login-repo", self.repo.url]).start()
        status, body = self.server.api("POST", "/api/v1/auth/login", {"username": "anyone", "password": "whatever"},
                                       token=None)
        self.assertEqual(status, 503, body)
        self.assertIn("without credentials", body["detail"])

    def test_head_has_no_body_and_keeps_the_connection_usable(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.api_port, timeout=5)
        conn.request("HEAD", "/health")
        res = conn.getresponse()
        self.assertEqual((res.status, res.read()), (200, b""))
        conn.request("GET", "/health")
        res = conn.getresponse()
        self.assertEqual(json.loads(res.read())["status"], "ok")
        conn.close()
        # Anonymous callers cannot tell routes that exist from routes that do not.
        self.assertEqual(self.server.api("GET", "/api/v1/no-such-route", token=None)[0], 401)
        self.assertEqual(self.server.api("PATCH", "/api/v1/apps", token=None)[0], 401)



class SecretsAtRest(SlipwayTestCase):
    def test_database_and_responses_hold_no_secret(self):
        password = "Repo-Pa55-with@sign"
        token_like = "ghp_tok3nNeverShown"
        status, body = self.server.api("POST", "/api/v1/apps", {
            "name": "creds", "repo": f"https://deployer:{password}@127.0.0.1:1/r.git", "secret": "webhook-Secr3t-xyz"})
        self.assertEqual(status, 201, body)
        status, other = self.server.api("POST", "/api/v1/apps", {
            "name": "tok", "repo": f"https://{token_like}@127.0.0.1:1/r.git", "secret": "webhook-Secr3t-abc"})
        self.assertEqual(status, 201, other)
        status, created = self.server.api("POST", "/api/v1/tokens", {"role": "viewer"})
        seen = json.dumps([body, other, self.server.api("GET", "/api/v1/apps")[1]])
        for secret in (password, "@sign", token_like, "webhook-Secr3t"):
            self.assertNotIn(secret, seen)
        self.assertEqual(body["secret"], "set")
        d = self.server.api("POST", "/api/v1/apps/creds/deployments", {})[1]
        self.server.wait_deployment(d["id"])
        events = json.dumps(self.server.events(d["id"]))
        self.assertNotIn(password, events)
        self.assertEqual(os.stat(self.server.data).st_mode & 0o777, 0o700)
        self.server.stop()
        raw = b""
        for name in os.listdir(self.server.data):
            if name.startswith("slipway.db"):
                self.assertEqual(os.stat(os.path.join(self.server.data, name)).st_mode & 0o777, 0o600)
                with open(os.path.join(self.server.data, name), "rb") as f:
                    raw += f.read()
        self.assertGreater(len(raw), 0)
        for secret in (password, token_like, "webhook-Secr3t-xyz", "webhook-Secr3t-abc", created["token"],
                       ADMIN_TOKEN):
            self.assertNotIn(secret.encode(), raw, secret)


class ManyClients(SlipwayTestCase):
    def test_fifty_streams_do_not_slow_health_or_webhooks(self):
        self.create_app()
        manifest = "\n".join(["app: hello", "build: [\"cc -O2 -o server server.c -lpthread\", \"sleep 8\"]",
                              "run: {command: ./server}", "deploy: {timeout: 2m}"]) + "\n"
        sha = self.repo.commit_version("slow-build", manifest=manifest)
        status, res = self.push_webhook(sha)
        dep = res["deployment_id"]
        wait_until(lambda: any(e["stage"] == "build" for e in self.server.events(dep)), what="build running")
        conns = []
        for _ in range(50):
            c = http.client.HTTPConnection("127.0.0.1", self.server.api_port, timeout=30)
            c.request("GET", f"/api/v1/deployments/{dep}/stream", headers=AUTH)
            res = c.getresponse()
            self.assertEqual(res.status, 200)
            conns.append((c, res))
        try:
            slowest = 0
            for _ in range(20):
                t = time.monotonic()
                self.assertEqual(http_call(self.server.api_port, "GET", "/health", timeout=5)[0], 200)
                slowest = max(slowest, time.monotonic() - t)
            body = gitea_push_body(sha, clone_url=self.repo.url)
            t = time.monotonic()
            status, raw, _ = http_call(self.server.api_port, "POST", "/hooks/gitea/hello", body,
                                       gitea_headers(body, self.secret))
            webhook = time.monotonic() - t
            self.assertEqual(status, 202, raw)
            self.assertLess(slowest, 1.0)
            self.assertLess(webhook, 1.0)
            print(f"\n  50 open streams: slowest /health {slowest * 1000:.1f} ms, webhook {webhook * 1000:.1f} ms")
        finally:
            for c, _ in conns:
                c.close()

    def test_stream_of_a_finished_deployment_ends_at_once(self):
        self.create_app()
        d = self.deploy_by_push(self.repo.commit_version("v1"))
        t = time.monotonic()
        status, raw, _ = http_call(self.server.api_port, "GET", f"/api/v1/deployments/{d['id']}/stream",
                                   headers=AUTH, timeout=10)
        self.assertEqual(status, 200)
        self.assertIn(b"event: end", raw)
        self.assertLess(time.monotonic() - t, 5)


if __name__ == "__main__":
    unittest.main()
