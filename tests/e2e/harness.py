"""Test harness for Slipway's end-to-end tests: real server process, real git repos served
by `git daemon`, real HTTP through the gateway. Standard library only.

Every load loop here is bounded in time and in count and targets loopback only.
"""
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLIPWAY = os.environ.get("SLIPWAY_BIN", os.path.join(ROOT, "build", "release", "bin", "slipway"))
EXAMPLE = os.path.join(ROOT, "examples", "hello")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "webhooks")
# Every test server accepts this admin token (SLIPWAY_BOOTSTRAP_TOKEN); AUTH is its header.
ADMIN_TOKEN = "slw-e2e-admin-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def http_call(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        res = conn.getresponse()
        raw = res.read()
        return res.status, raw, dict(res.getheaders())
    finally:
        conn.close()


class GitRepo:
    """A bare repository served by `git daemon` on loopback, and a work tree that pushes to it."""

    def __init__(self, root):
        self.root = root
        self.bare = os.path.join(root, "srv", "hello.git")
        self.work = os.path.join(root, "work")
        os.makedirs(os.path.dirname(self.bare))
        self._git("init", "-q", "--bare", "-b", "main", self.bare, cwd=root)
        self._git("init", "-q", "-b", "main", self.work, cwd=root)
        self.port = free_port()
        self.daemon = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", f"--port={self.port}",
             f"--base-path={os.path.join(root, 'srv')}", os.path.join(root, "srv")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"git://127.0.0.1:{self.port}/hello.git"
        wait_until(lambda: subprocess.run(["git", "ls-remote", self.url], capture_output=True).returncode == 0,
                   what="git daemon")

    def _git(self, *args, cwd=None):
        env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="t@example.test",
                   GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="t@example.test")
        out = subprocess.run(["git", *args], cwd=cwd or self.work, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip()

    def commit_version(self, version, manifest=None, extra_files=None):
        """Commits the example app at `version` with an optional manifest override; returns the sha."""
        for name in ("server.c",):
            shutil.copy(os.path.join(EXAMPLE, name), os.path.join(self.work, name))
        with open(os.path.join(self.work, "VERSION"), "w") as f:
            f.write(version + "\n")
        with open(os.path.join(self.work, "slipway.yaml"), "w") as f:
            f.write(manifest if manifest is not None else default_manifest())
        for name, text in (extra_files or {}).items():
            with open(os.path.join(self.work, name), "w") as f:
                f.write(text)
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", version)
        self._git("push", "-q", self.bare, "HEAD:refs/heads/main")
        return self._git("rev-parse", "HEAD")

    def close(self):
        self.daemon.terminate()
        self.daemon.wait(5)


def default_manifest(env=None, test_steps=None, watch="2s", health_timeout="5s"):
    lines = [
        "app: hello",
        "build:",
        "  - cc -O2 -o server server.c -lpthread",
        "test:",
    ]
    for step in test_steps or ["./server --self-test"]:
        lines.append(f"  - {json.dumps(step)}")
    lines += [
        "run:",
        "  command: ./server",
        "health:",
        "  path: /health",
        f"  timeout: {health_timeout}",
        "  max_latency: 100ms",
        "deploy:",
        f"  watch_window: {watch}",
        "  drain_timeout: 10s",
    ]
    if env:
        lines.append("env:")
        for k, v in env.items():
            lines.append(f"  {k}: {json.dumps(v)}")
    return "\n".join(lines) + "\n"


class Server:
    """One `slipway server` process on free loopback ports with its own data directory."""

    def __init__(self, data_dir, extra_args=None, env=None):
        self.data = data_dir
        self.api_port = free_port()
        self.gw_port = free_port()
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data_dir), os.path.basename(data_dir) + "-server.log")
        self.extra_args = list(extra_args or [])
        self.env = dict(os.environ, SLIPWAY_BOOTSTRAP_TOKEN=ADMIN_TOKEN, **(env or {}))

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SLIPWAY, "server", "--data", self.data, "--api", f"127.0.0.1:{self.api_port}",
             "--gateway", f"127.0.0.1:{self.gw_port}", *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(lambda: http_call(self.api_port, "GET", "/health")[0] == 200, what="server /health")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.api_port}"

    def api(self, method, path, body=None, token=ADMIN_TOKEN, headers=None):
        """One API call as `token` (the admin by default; None for no credential)."""
        h = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None or method == "POST":
            h["Content-Type"] = "application/json"
            body = {} if body is None else body
        h.update(headers or {})
        status, raw, _ = http_call(self.api_port, method, path, body, h)
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, raw

    def cli(self, *args, timeout=120, token=ADMIN_TOKEN, env=None):
        full_env = dict(os.environ, **(env or {}))
        full_env.pop("SLIPWAY_TOKEN", None)
        if token:
            full_env["SLIPWAY_TOKEN"] = token
        return subprocess.run([SLIPWAY, "--server", self.url, *args], capture_output=True, text=True,
                              timeout=timeout, env=full_env)

    def gateway_get(self, path="/", host="hello.localhost"):
        return http_call(self.gw_port, "GET", path, headers={"Host": host}, timeout=5)

    def wait_deployment(self, deployment_id, timeout=90):
        def done():
            status, d = self.api("GET", f"/api/v1/deployments/{deployment_id}")
            return d if status == 200 and d["status"] not in ("queued", "running") else None
        return wait_until(done, timeout=timeout, interval=0.1, what=f"deployment {deployment_id}")

    def events(self, deployment_id):
        status, page = self.api("GET", f"/api/v1/deployments/{deployment_id}/events?limit=5000")
        assert status == 200, page
        return page["events"]

    def serving_version(self):
        status, body, _ = self.gateway_get("/health")
        return json.loads(body)["version"] if status == 200 else None


def gitea_push_body(commit, branch="main", clone_url=""):
    """The real Gitea push payload from the corpus, pointed at our commit."""
    with open(os.path.join(FIXTURES, "gitea", "push.json"), "rb") as f:
        payload = json.loads(f.read())
    payload["ref"] = f"refs/heads/{branch}"
    payload["after"] = commit
    payload["head_commit"]["id"] = commit
    payload["repository"]["clone_url"] = clone_url
    return json.dumps(payload, indent=2).encode()


def gitea_headers(body, secret, event="push", delivery=None):
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Gitea-Event": event, "X-Gitea-Event-Type": event,
            "X-Gitea-Delivery": delivery or str(uuid.uuid4()), "X-Gitea-Signature": sig,
            "X-Hub-Signature-256": "sha256=" + sig}


class LoadLoop:
    """Keep-alive GETs through the gateway from several threads, bounded in time and count.
    Records, per thread, the sequence of versions seen, every answered request as
    (started, ended, status) on the monotonic clock, and every failure. `timeout` bounds one
    request (raise it when requests may be held at the gateway)."""

    def __init__(self, port, host="hello.localhost", threads=4, max_seconds=120, max_requests=400000,
                 timeout=10, address="127.0.0.1"):
        self.port, self.host, self.timeout, self.address = port, host, timeout, address
        self.threads = threads
        self.deadline = time.time() + max_seconds
        self.max_per_thread = max_requests // threads
        self.stop_flag = threading.Event()
        self.sequences = [[] for _ in range(threads)]
        self.failures = []
        self.records = []
        self.instances = {}  # X-Instance of the answering instance → count (example app)
        self.count = 0
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for w in self._workers:
            w.join(self.timeout + 20)

    def completed(self):
        with self._lock:
            return len(self.records)

    def snapshot(self):
        with self._lock:
            return list(self.records)

    def _run(self, index):
        conn = None
        seq = self.sequences[index]
        n = 0
        while not self.stop_flag.is_set() and time.time() < self.deadline and n < self.max_per_thread:
            n += 1
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)
                conn.request("GET", "/", headers={"Host": self.host})
                res = conn.getresponse()
                body = res.read().decode(errors="replace")
                with self._lock:
                    self.records.append((started, time.monotonic(), res.status))
                if res.status != 200:
                    self._fail(f"HTTP {res.status}: {body[:200]}")
                    continue
                version = body.strip().rsplit(" ", 1)[-1]
                if not seq or seq[-1] != version:
                    seq.append(version)
                instance = res.getheader("X-Instance", "")
                with self._lock:
                    self.count += 1
                    self.instances[instance] = self.instances.get(instance, 0) + 1
            except Exception as e:  # noqa: BLE001 - every error is a failed request
                self._fail(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _fail(self, what):
        with self._lock:
            self.failures.append(what)


class SlipwayTestCase(unittest.TestCase):
    """Per-test temp dir, git repo and server; everything is torn down, processes included."""

    secret = "e2e-webhook-secret"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="slipway-e2e-")
        self.repo = GitRepo(os.path.join(self.tmp, "git"))
        self.server = Server(os.path.join(self.tmp, "var")).start()

    def tearDown(self):
        try:
            self.server.stop()
        finally:
            self.repo.close()
            kill_marked_processes(self.server.data)
            if os.environ.get("SLIPWAY_KEEP_TMP") is None:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def create_app(self, name="hello"):
        status, body = self.server.api("POST", "/api/v1/apps",
                                       {"name": name, "repo": self.repo.url, "branch": "main", "secret": self.secret})
        self.assertEqual(status, 201, body)
        return body

    def push_webhook(self, commit, delivery=None, app="hello"):
        body = gitea_push_body(commit, clone_url=self.repo.url)
        status, raw, _ = http_call(self.server.api_port, "POST", f"/hooks/gitea/{app}", body,
                                   gitea_headers(body, self.secret, delivery=delivery))
        return status, json.loads(raw)

    def deploy_by_push(self, commit):
        status, body = self.push_webhook(commit)
        self.assertEqual(status, 202, body)
        return self.server.wait_deployment(body["deployment_id"])


def processes_with_marker(data_dir):
    """Pids whose environment carries this server's SLIPWAY_HOME marker."""
    marker = f"SLIPWAY_HOME={os.path.realpath(data_dir)}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat") as s:
                        if s.read().rsplit(")", 1)[1].split()[0] != "Z":
                            found.append(int(entry))
        except OSError:
            pass
    return found


def kill_marked_processes(data_dir):
    for pid in processes_with_marker(data_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
