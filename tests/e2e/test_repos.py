"""Repositories per node: a real server and a real `slipway agent` on loopback, each with a
repos.yaml; `slipway repos` and `slipway branches` list them through the nodes, for a path
repository and for http repositories behind basic auth (git-http-backend). The caller's git
credentials (from a git-credential login) reach git for one op and leave no trace in the logs,
the database or the data directories; a password written into repos.yaml is shown redacted.
Every wait is bounded in time."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import harness
from harness import ADMIN_TOKEN, SLIPWAY, Server, free_port, http_call, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
LOGIN_PASSWORD = "Login-pa55-n3ver-kept-anywhere"  # alice's, used through a git login
EMBEDDED_PASSWORD = "Emb3dded-in-repos-yaml-only"  # deploy's, written into the agent's repos.yaml


def git(*args, cwd=None):
    env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="t@example.test", GIT_COMMITTER_NAME="Test",
               GIT_COMMITTER_EMAIL="t@example.test", GIT_CONFIG_NOSYSTEM="1")
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


def make_repo(path, branches, bare=False):
    """A repository at `path` whose `branches` each hold one commit; returns {branch: commit}."""
    work = path if not bare else path + ".work"
    git("init", "-q", "-b", branches[0], work)
    commits = {}
    for b in branches:
        git("checkout", "-q", "-B", b, cwd=work)
        git("commit", "-q", "--allow-empty", "-m", b, cwd=work)
        commits[b] = git("rev-parse", "HEAD", cwd=work)
    if bare:
        git("clone", "-q", "--bare", work, path)
        for b in branches:
            git("-C", path, "branch", "-f", b, commits[b])
    return commits


def files_bytes(root):
    data = b""
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    data += f.read()
    return data


class GitHttp:
    """git_http.py serving the bare repositories under `root` to one user."""

    def __init__(self, root, user, password, repo):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "apps", "git_http.py"), str(self.port),
                                      root, user, password], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: http_call(self.port, "GET", f"/{repo}/info/refs")[0] == 401, what="git http server")

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)


class ReposTest(unittest.TestCase):
    """A server whose own node offers `home`, and an agent `edge-1` offering `shop` (a path),
    `private` (http, alice's credentials needed) and `mirror` (http, credentials in the URL)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="slipway-repos-")
        self.shop = make_repo(os.path.join(self.tmp, "shop"), ["main", "feature/x"])
        self.home = make_repo(os.path.join(self.tmp, "home.git"), ["trunk"], bare=True)
        self.private = make_repo(os.path.join(self.tmp, "srv-a", "private.git"), ["main", "dev"], bare=True)
        self.mirror = make_repo(os.path.join(self.tmp, "srv-b", "mirror.git"), ["stable"], bare=True)
        self.http_a = GitHttp(os.path.join(self.tmp, "srv-a"), "alice", LOGIN_PASSWORD, "private.git")
        self.http_b = GitHttp(os.path.join(self.tmp, "srv-b"), "deploy", EMBEDDED_PASSWORD, "mirror.git")
        self.private_url = f"http://127.0.0.1:{self.http_a.port}/private.git"
        self.mirror_url = f"http://deploy:{EMBEDDED_PASSWORD}@127.0.0.1:{self.http_b.port}/mirror.git"
        server_repos = self.write("server-repos.yaml", f"home: {os.path.join(self.tmp, 'home.git')}\n")
        self.server = Server(os.path.join(self.tmp, "var"),
                             ["--login-repo", self.private_url, "--repos", server_repos]).start()
        self.agent = None
        self.agent_log_path = os.path.join(self.tmp, "agent.log")
        self.agent_data = os.path.join(self.tmp, "agent-data")

    def tearDown(self):
        try:
            self.stop_agent()
            self.server.stop()
        finally:
            self.http_a.close()
            self.http_b.close()
            harness.kill_marked_processes(self.server.data)
            harness.kill_marked_processes(self.agent_data)
            if os.environ.get("SLIPWAY_KEEP_TMP") is None:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- fixtures ------------------------------------------------------------------------

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def agent_repos(self):
        return self.write("repos.yaml", "# repositories on edge-1\n"
                                        f"shop: {os.path.join(self.tmp, 'shop')}\n"
                                        f"private: {self.private_url}\n"
                                        f"mirror: \"{self.mirror_url}\"\n")

    def start_agent(self):
        status, t = self.server.api("POST", "/api/v1/nodes/tokens", {"expires": "1h"})
        self.assertEqual(status, 201, t)
        self.agent_log = open(self.agent_log_path, "ab")
        env = dict(os.environ, SLIPWAY_AGENT_TOKEN=t["token"])
        self.agent = subprocess.Popen(
            [SLIPWAY, "agent", "--server", f"ws://127.0.0.1:{self.server.api_port}/ws/agent", "--name", "edge-1",
             "--labels", "edge", "--data", self.agent_data, "--repos", self.agent_repos()],
            stdout=self.agent_log, stderr=subprocess.STDOUT, env=env)
        wait_until(lambda: self.server.api("GET", "/api/v1/nodes/edge-1")[1].get("state") == "up", timeout=20,
                   interval=0.1, what="edge-1 up")

    def stop_agent(self):
        if self.agent is None:
            return
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(20)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait(5)
        self.agent_log.close()
        self.agent = None

    def cli_json(self, *args, token=ADMIN_TOKEN):
        out = self.server.cli(*args, "--json", token=token, timeout=120)
        self.assertEqual(out.returncode, 0, (out.stdout, out.stderr))
        return json.loads(out.stdout)

    def assert_one_line_error(self, out, *needles):
        self.assertEqual(out.returncode, 2, (out.stdout, out.stderr))
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for n in needles:
            self.assertIn(n, lines[0])

    def login_alice(self):
        """`slipway login --user alice` with her git password (checked against --login-repo); the
        CLI keeps the session in a config dir of its own. Returns the env that uses it."""
        env = {"XDG_CONFIG_HOME": os.path.join(self.tmp, "alice-config")}
        out = subprocess.run([SLIPWAY, "--server", self.server.url, "login", "--user", "alice", "--password-stdin"],
                             input=LOGIN_PASSWORD + "\n", capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in dict(os.environ, **env).items() if k != "SLIPWAY_TOKEN"})
        self.assertEqual(out.returncode, 0, (out.stdout, out.stderr))
        self.assertNotIn(LOGIN_PASSWORD, out.stdout + out.stderr)
        return env

    def cli_as(self, env, *args):
        out = self.server.cli(*args, "--json", token=None, env=env, timeout=120)
        self.assertEqual(out.returncode, 0, (out.stdout, out.stderr))
        return json.loads(out.stdout)

    def branch_map(self, answer):
        return {b["name"]: b["commit"] for b in answer["branches"]}

    # ---- tests ---------------------------------------------------------------------------

    def test_the_servers_own_node_offers_its_repos_without_any_agent(self):
        listed = self.cli_json("repos")
        self.assertEqual(listed["repos"], [{"node": "local", "name": "home", "kind": "path",
                                            "location": os.path.join(self.tmp, "home.git")}])
        self.assertEqual(listed["errors"], [])
        answer = self.cli_json("branches", "home")
        self.assertEqual((answer["node"], answer["repo"], answer["truncated"]), ("local", "home", False))
        self.assertEqual(self.branch_map(answer), self.home)
        status, node = self.server.api("GET", "/api/v1/nodes/local")
        self.assertEqual(node["capabilities"]["repos"], ["home"])

    def test_repos_lists_every_node_and_one_node(self):
        self.start_agent()
        listed = self.cli_json("repos")
        rows = {(r["node"], r["name"]): (r["kind"], r["location"]) for r in listed["repos"]}
        self.assertEqual(rows, {
            ("edge-1", "mirror"): ("url", f"http://deploy:***@127.0.0.1:{self.http_b.port}/mirror.git"),
            ("edge-1", "private"): ("url", self.private_url),
            ("edge-1", "shop"): ("path", os.path.join(self.tmp, "shop")),
            ("local", "home"): ("path", os.path.join(self.tmp, "home.git")),
        })
        self.assertEqual([(r["node"], r["name"]) for r in listed["repos"]],
                         sorted((r["node"], r["name"]) for r in listed["repos"]))
        out = self.server.cli("repos")
        self.assertEqual(out.returncode, 0, out.stderr)
        header, *lines = out.stdout.splitlines()
        self.assertEqual(header.split(), ["NODE", "NAME", "KIND", "LOCATION"])
        self.assertIn(["edge-1", "shop", "path", os.path.join(self.tmp, "shop")], [l.split() for l in lines])
        self.assertNotIn(EMBEDDED_PASSWORD, out.stdout + out.stderr)
        self.assertIn("deploy:***@", out.stdout)
        only = self.cli_json("repos", "--node", "edge-1")
        self.assertEqual(sorted(r["name"] for r in only["repos"]), ["mirror", "private", "shop"])
        self.assertEqual({r["node"] for r in only["repos"]}, {"edge-1"})
        self.assertEqual([r["name"] for r in self.cli_json("repos", "--node", "local")["repos"]], ["home"])
        status, body = self.server.api("GET", "/api/v1/repos?node=edge-1")
        self.assertEqual((status, len(body["repos"])), (200, 3))
        self.assertNotIn(EMBEDDED_PASSWORD, json.dumps(body))

    def test_unknown_nodes_and_repos_are_refused_clearly(self):
        self.start_agent()
        self.assert_one_line_error(self.server.cli("repos", "--node", "nosuch"), "nosuch")
        self.assert_one_line_error(self.server.cli("repos", "--node", "bad/name"))
        self.assert_one_line_error(self.server.cli("branches", "nosuch"), "nosuch")
        self.assert_one_line_error(self.server.cli("branches", "shop", "--node", "local"), "shop")
        self.assert_one_line_error(self.server.cli("branches", "shop", "--node", "nosuch"), "nosuch")
        self.assert_one_line_error(self.server.cli("branches", "Not_A_Name"), "repository")
        out = self.server.cli("branches")
        self.assertEqual(out.returncode, 2, out.stderr)
        for path in ("/api/v1/repos?node=nosuch", "/api/v1/repos/nosuch/branches",
                     "/api/v1/repos/shop/branches?node=local", "/api/v1/repos/Not_A_Name/branches"):
            status, body = self.server.api("GET", path)
            self.assertEqual((status, set(body)), (404, {"error", "detail"}), path)
        status, _ = self.server.api("GET", "/api/v1/repos", token=None)
        self.assertEqual(status, 401)

    def test_branches_of_a_path_repository_through_the_agent(self):
        self.start_agent()
        answer = self.cli_json("branches", "shop")
        self.assertEqual((answer["node"], answer["repo"]), ("edge-1", "shop"))
        self.assertEqual(self.branch_map(answer), self.shop)
        self.assertEqual(self.cli_json("branches", "shop", "--node", "edge-1")["node"], "edge-1")
        out = self.server.cli("branches", "shop")
        self.assertEqual(out.returncode, 0, out.stderr)
        header, *lines = out.stdout.splitlines()
        self.assertEqual(header.split(), ["NAME", "COMMIT"])
        self.assertEqual(sorted(l.split() for l in lines), sorted([n, c] for n, c in self.shop.items()))

    def test_a_viewer_may_list(self):
        self.start_agent()
        status, t = self.server.api("POST", "/api/v1/tokens", {"role": "viewer", "name": "looker"})
        self.assertEqual(status, 201, t)
        self.assertEqual(len(self.cli_json("repos", token=t["token"])["repos"]), 4)
        self.assertEqual(self.branch_map(self.cli_json("branches", "shop", token=t["token"])), self.shop)

    def test_url_credentials_come_from_the_repos_file_or_the_callers_git_login(self):
        self.start_agent()
        self.assertEqual(self.branch_map(self.cli_json("branches", "mirror")), self.mirror)
        # No git login: the git host refuses, and says so without blaming the API token.
        out = self.server.cli("branches", "private")
        self.assert_one_line_error(out, "refused")
        status, body = self.server.api("GET", "/api/v1/repos/private/branches")
        self.assertEqual((status, body["error"]), (403, "forbidden"), body)
        alice = self.login_alice()
        answer = self.cli_as(alice, "branches", "private")
        self.assertEqual((answer["node"], self.branch_map(answer)), ("edge-1", self.private))
        out = self.server.cli("branches", "private", token=None, env=alice)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines()[0].split(), ["NAME", "COMMIT"])

    def test_credentials_leave_no_trace(self):
        self.start_agent()
        alice = self.login_alice()
        self.assertEqual(self.branch_map(self.cli_as(alice, "branches", "private")), self.private)
        self.assertEqual(self.branch_map(self.cli_as(alice, "branches", "mirror")), self.mirror)
        self.assertEqual(self.branch_map(self.cli_as(alice, "branches", "shop")), self.shop)
        self.assertNotIn(EMBEDDED_PASSWORD, json.dumps(self.cli_as(alice, "repos")))
        status, audit = self.server.api("GET", "/api/v1/audit?limit=200")
        self.assertEqual(status, 200)
        # Stopped, so that everything is written: database and WAL, both logs, outboxes.
        self.stop_agent()
        self.server.stop()
        with open(self.server.log_path, "rb") as f:
            server_log = f.read()
        with open(self.agent_log_path, "rb") as f:
            agent_log = f.read()
        stored = files_bytes(self.server.data) + files_bytes(self.agent_data)
        self.assertTrue(os.path.isfile(os.path.join(self.server.data, "slipway.db")))
        self.assertIn(b"edge-1", server_log)
        for secret in (LOGIN_PASSWORD, EMBEDDED_PASSWORD):
            self.assertNotIn(secret, json.dumps(audit))
            self.assertNotIn(secret.encode(), server_log)
            self.assertNotIn(secret.encode(), agent_log)
            self.assertNotIn(secret.encode(), stored)

    def test_a_node_that_is_away_answers_503(self):
        self.start_agent()
        self.assertEqual(self.branch_map(self.cli_json("branches", "shop")), self.shop)
        self.stop_agent()
        wait_until(lambda: self.server.api("GET", "/api/v1/nodes/edge-1")[1].get("state") == "down", timeout=20,
                   interval=0.1, what="edge-1 down")
        for path in ("/api/v1/repos/shop/branches", "/api/v1/repos?node=edge-1",
                     "/api/v1/repos/shop/branches?node=edge-1"):
            status, body = self.server.api("GET", path)
            self.assertEqual((status, set(body)), (503, {"error", "detail"}), (path, body))
        self.assert_one_line_error(self.server.cli("branches", "shop"), "edge-1")
        self.assertEqual([r["node"] for r in self.cli_json("repos")["repos"]], ["local"])

    def test_a_bad_repos_file_stops_the_agent_and_the_server_with_one_line(self):
        bad = self.write("bad.yaml", f"shop: {os.path.join(self.tmp, 'shop')}\nShop: http://u:{EMBEDDED_PASSWORD}@h/r\n")
        cases = {
            "bad.yaml": (bad, ":2:1: "),
            "not-a-repo.yaml": (self.write("not-a-repo.yaml", f"plain: {self.tmp}\n"), ":1:8: "),
            "scheme.yaml": (self.write("scheme.yaml", f"x: ftp://u:{EMBEDDED_PASSWORD}@h/r\n"), ":1:4: "),
            "missing.yaml": (os.path.join(self.tmp, "missing.yaml"), "missing.yaml"),
        }
        for name, (path, where) in cases.items():
            agent = subprocess.run(
                [SLIPWAY, "agent", "--server", "ws://127.0.0.1:1/ws/agent", "--token", "slw_x", "--name", "n1",
                 "--data", os.path.join(self.tmp, "bad-agent"), "--repos", path],
                capture_output=True, text=True, timeout=30)
            server = subprocess.run(
                [SLIPWAY, "server", "--data", os.path.join(self.tmp, "bad-server"), "--api", f"127.0.0.1:{free_port()}",
                 "--gateway", f"127.0.0.1:{free_port()}", "--repos", path],
                capture_output=True, text=True, timeout=30)
            for out in (agent, server):
                self.assertEqual(out.returncode, 2, (name, out.stdout, out.stderr))
                lines = out.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, (name, out.stderr))
                self.assertIn(path + where if where.startswith(":") else where, lines[0])
                self.assertNotIn(EMBEDDED_PASSWORD, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
