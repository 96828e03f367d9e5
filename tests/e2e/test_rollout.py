"""Phased rollouts end to end: a control plane in one network namespace and three agents in
three others (tests/e2e/netns.py), labelled alpha, beta and gamma, one rollout stage each:

    alpha (weight 0) → beta (canary weight 10, bake with analysis) → gamma (the full switch)

Each test deploys its own app: a first deployment of the baseline (no baseline yet, so it goes
to every stage's nodes at once), then the candidate rolls out through the stages while a
bounded load loop goes through the gateway. The example app's knobs make a bad candidate:
ERROR_EVERY=20 (5% of requests answer 500) and EXTRA_LATENCY_MS=200.

What is checked: the canary's share of the traffic during the bake, aborts on the error rate
and on p95 within the analysis intervals, the policies for an inconclusive bake (abort,
promote, pause), promote and abort by hand, the signed webhook notification, a control plane
killed mid-bake, and careless use of the CLI, the API and the manifest.

Every load loop is bounded in time and count and targets only the test's own namespaces (the
gateway in the control plane's namespace, an instance from inside its own namespace); the
webhook receiver listens on the loopback of the control plane's namespace."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import harness
import netns
from cluster import ControlPlaneCalls
from harness import ADMIN_TOKEN, SLIPWAY, GitRepo, default_manifest, wait_until

LEASE = "20s"             # --node-lease
API_PORT = 3452           # in the control plane's namespace
GW_PORT = 8080
HOOK_PORT = 9911          # the webhook receiver, on the control plane namespace's loopback
HOOK_SECRET = "hook-secret-" + uuid.uuid4().hex
HOOK_PATH = "/hook-" + uuid.uuid4().hex[:12]   # a URL is never shown: only "webhook 127.0.0.1"
NODES = {"alpha": "n-alpha", "beta": "n-beta", "gamma": "n-gamma"}  # host (= label) → node name
HOST_OF = {node: host for host, node in NODES.items()}

# The analysis every bake with traffic uses: a verdict every 2 s, at least 10 requests on each
# side per interval (the load loops give the 10% canary several times that), two failing
# intervals in a row abort.
ANALYSIS = {"interval": "2s", "min_requests": 10, "max_error_rate_increase": 0.01, "failure_limit": 2}

# A receiver for the control plane's notifications: one JSON line per request (path, headers,
# body in base64) appended to the file in argv[2]. Standard library only.
RECEIVER = r"""
import base64, http.server, json, sys
port, out = int(sys.argv[1]), sys.argv[2]
class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        rec = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": base64.b64encode(body).decode()}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
"""


# ---- manifests ---------------------------------------------------------------------------

def _yaml(d, indent):
    pad = " " * indent
    for k, v in d.items():
        if isinstance(v, dict):
            yield f"{pad}{k}:"
            yield from _yaml(v, indent + 2)
        elif isinstance(v, (list, tuple)):
            yield f"{pad}{k}: [{', '.join(str(x) for x in v)}]"
        else:
            yield f"{pad}{k}: {v}"


def _items(key, entries):
    """`key:` and a YAML list of mappings under it."""
    lines = [f"{key}:"]
    for entry in entries:
        body = list(_yaml(entry, 4))
        body[0] = "  - " + body[0][4:]
        lines += body
    return lines


def beta_stage(weight=10, bake="8s", max_bake=None, on_inconclusive=None, analysis=None):
    stage = {"nodes": ["beta"], "weight": weight, "bake": bake}
    if max_bake:
        stage["max_bake"] = max_bake
    if on_inconclusive:
        stage["on_inconclusive"] = on_inconclusive
    if analysis is not False:
        stage["analysis"] = dict(ANALYSIS, **(analysis or {}))
    return stage


def rollout_manifest(app, beta=None, env=None, notify=None):
    """The example app's manifest for `app` with the three stages (beta's from beta_stage)."""
    text = default_manifest(env=env, watch="1s").replace("app: hello", f"app: {app}", 1)
    stages = [{"nodes": ["alpha"], "weight": 0}, beta if beta is not None else beta_stage(),
              {"nodes": ["gamma"]}]
    lines = ["rollout:"] + ["  " + line for line in _items("stages", stages)]
    if notify:
        lines += _items("notify", notify)
    return text + "\n".join(lines) + "\n"


def position(text, needle):
    """(line, column), 1-based, of the first `needle` in text."""
    before = text[:text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


# ---- traffic -----------------------------------------------------------------------------

class Traffic:
    """Keep-alive GETs through the gateway from several threads, bounded in time and count and
    paced to about `rate` requests/s in all (unpaced, four threads take both cores of a small
    machine away from the deployment they watch; 400/s gives a 10% canary 80 requests per 2 s
    interval, eight times min_requests). Every answer is recorded as (started, ended, status,
    version, instance) with wall-clock seconds (comparable with the events' ts_ms); version is
    the app's X-Version (None for an answer the app did not give), instance its X-Instance. A
    request that gets no answer is recorded with status None."""

    def __init__(self, address, port, host, threads=4, rate=400, max_seconds=90, max_requests=100000, timeout=10):
        self.address, self.port, self.host, self.timeout = address, port, host, timeout
        self.period = threads / rate
        self.deadline = time.time() + max_seconds
        self.max_per_thread = max_requests // threads
        self.stop_flag = threading.Event()
        self.records = []
        self.errors = []
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_flag.set()
        for w in self._workers:
            w.join(self.timeout + 20)

    def count(self):
        with self._lock:
            return len(self.records)

    def snapshot(self):
        with self._lock:
            return list(self.records)

    def _run(self):
        conn = None
        n = 0
        next_at = time.monotonic()
        while not self.stop_flag.is_set() and time.time() < self.deadline and n < self.max_per_thread:
            n += 1
            next_at = max(next_at + self.period, time.monotonic())  # a slow answer is not made up for
            started = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)
                conn.request("GET", "/", headers={"Host": self.host})
                res = conn.getresponse()
                res.read()
                rec = (started, time.time(), res.status, res.getheader("X-Version"), res.getheader("X-Instance"))
                if res.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every error is a failed request
                rec = (started, time.time(), None, None, None)
                with self._lock:
                    self.errors.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)  # a refused connection (gateway down) is not retried in a tight loop
            with self._lock:
                self.records.append(rec)
            pause = next_at - time.monotonic()
            if pause > 0:
                self.stop_flag.wait(pause)
        if conn is not None:
            conn.close()


def failed(records):
    """Answers that are not a 200 from the app."""
    return [r for r in records if r[2] != 200]


class Watch:
    """Samples, every `every` seconds until stopped (at most max_seconds), the versions of the
    app's instance processes in every agent's namespace and the app's serving instances in
    GET /api/v1/apps/{app}. Read-only: it only looks."""

    def __init__(self, case, app, every=0.25, max_seconds=90):
        self.case, self.app, self.every = case, app, every
        self.deadline = time.time() + max_seconds
        self.processes = {host: set() for host in NODES}   # host → versions of instance processes seen
        self.views = []                                    # serving instances as listed, each sample
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(30)

    def _run(self):
        while not self.stop_flag.is_set() and time.time() < self.deadline:
            for host in NODES:
                try:
                    self.processes[host] |= set(self.case.instance_versions(host, self.app))
                except Exception:  # noqa: BLE001 - a process gone between listing and reading
                    pass
            try:
                self.views.append(self.case.instances(self.app))
            except Exception:  # noqa: BLE001 - the API busy for a moment; the next sample counts
                pass
            self.stop_flag.wait(self.every)


# ---- the suite -----------------------------------------------------------------------------

@unittest.skipUnless(netns.available()[0], "network namespaces are not available")
class RolloutTest(ControlPlaneCalls, unittest.TestCase):
    """One control plane, three agents and a webhook receiver, shared by the tests; each test
    deploys its own app (a baseline first, then the rollout)."""
    EMPTY_POST_AS_JSON = True
    API_PORT = API_PORT

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="slw-rollout-")
        cls.hosts = None
        cls.server = None
        cls.receiver = None
        cls.agents = {}
        cls.logs = []
        cls.repo = None
        try:
            cls.hosts = netns.Hosts(["cp", *NODES], root_reachable=True)
            cls.cp = cls.hosts.address("cp")
            cls.repo = GitRepo(os.path.join(cls.tmp, "git"))
            cls.hook_file = os.path.join(cls.tmp, "hooks.jsonl")
            open(cls.hook_file, "w").close()
            cls.receiver = cls.hosts.popen("cp", [sys.executable, "-I", "-c", RECEIVER, str(HOOK_PORT), cls.hook_file],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(lambda: netns.http_get(cls.hosts, "cp", f"http://127.0.0.1:{HOOK_PORT}/")[0] == 501,
                       timeout=20, what="webhook receiver")
            cls.start_server()
            token = cls.enrollment_token()
            for host in NODES:
                cls.start_agent(host, token)
            cls.wait_nodes_up(*NODES.values())
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for proc in cls.agents.values():
            if proc.poll() is None:
                proc.kill()
        if cls.server and cls.server.poll() is None:
            cls.server.kill()
        if cls.hosts:
            cls.hosts.close()
        harness.kill_marked_processes(os.path.join(cls.tmp, "cp-data"))
        for host in NODES:
            harness.kill_marked_processes(os.path.join(cls.tmp, host + "-data"))
        if cls.repo:
            cls.repo.close()
        for log in cls.logs:
            log.close()
        if not os.environ.get("SLW_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- fixtures ------------------------------------------------------------------------

    @classmethod
    def start_server(cls):
        log = open(os.path.join(cls.tmp, "cp.log"), "ab")
        cls.logs.append(log)
        env = dict(os.environ, SLIPWAY_BOOTSTRAP_TOKEN=ADMIN_TOKEN)
        cls.server = cls.hosts.popen(
            "cp", [SLIPWAY, "server", "--data", os.path.join(cls.tmp, "cp-data"), "--api", f"{cls.cp}:{API_PORT}",
                   "--gateway", f"{cls.cp}:{GW_PORT}", "--node-lease", LEASE],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_until(lambda: cls.api("GET", "/health")[0] == 200, timeout=30, what="server /health")

    @classmethod
    def start_agent(cls, host, token):
        log = open(os.path.join(cls.tmp, host + ".log"), "ab")
        cls.logs.append(log)
        cls.agents[host] = cls.hosts.popen(
            host, [SLIPWAY, "agent", "--server", f"ws://{cls.cp}:{API_PORT}/ws/agent", "--token", token,
                   "--name", NODES[host], "--labels", host, "--data", os.path.join(cls.tmp, host + "-data"),
                   "--advertise", cls.hosts.address(host)],
            stdout=log, stderr=subprocess.STDOUT)

    # ---- apps and deployments ----------------------------------------------------------

    def create_app(self, app):
        status, body = self.api("POST", "/api/v1/apps", {"name": app, "repo": self.repo.bare, "branch": "main",
                                                         "secret": "s3cret-" + app + "-0123456789"})
        self.assertEqual(status, 201, body)

    def start_deploy(self, app, version, manifest):
        """Commits `version` with `manifest` and queues its deployment; returns the deployment."""
        sha = self.repo.commit_version(version, manifest=manifest)
        status, d = self.api("POST", f"/api/v1/apps/{app}/deployments", {"ref": sha})
        self.assertEqual(status, 201, d)
        return d

    def wait_deployment(self, deployment_id, timeout=150):
        def done():
            status, d = self.api("GET", f"/api/v1/deployments/{deployment_id}")
            return d if status == 200 and d["status"] not in ("queued", "running") else None
        return wait_until(done, timeout=timeout, interval=0.2, what=f"deployment {deployment_id}")

    def baseline(self, app, version, manifest):
        """Creates `app` and deploys `version` first: with nothing serving yet it goes to every
        stage's node at once. Returns the deployment."""
        self.create_app(app)
        d = self.wait_deployment(self.start_deploy(app, version, manifest)["id"])
        self.assertEqual(d["status"], "succeeded", d)
        self.assert_serving_everywhere(app, version)
        return d

    def events(self, deployment_id):
        status, page = self.api("GET", f"/api/v1/deployments/{deployment_id}/events?limit=5000")
        self.assertEqual(status, 200, page)
        return page["events"]

    def event(self, deployment_id, pattern, events=None):
        """The first event whose text matches the regular expression, or None."""
        for e in events if events is not None else self.events(deployment_id):
            if re.search(pattern, e["text"]):
                return e
        return None

    def wait_event(self, deployment_id, pattern, timeout=60):
        return wait_until(lambda: self.event(deployment_id, pattern), timeout=timeout, interval=0.1,
                          what=f"event /{pattern}/")

    def rollout_status(self, app):
        """`slipway rollout status APP --json`, parsed (None when it fails)."""
        out = self.cli("rollout", "status", app, "--json", timeout=20)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def wait_rollout(self, app, state, stage=2, timeout=60, extra=lambda s: True):
        def ok():
            s = self.rollout_status(app)
            return s if s and s.get("state") == state and s.get("stage") == stage and extra(s) else None
        return wait_until(ok, timeout=timeout, interval=0.2, what=f"rollout of {app} {state} at stage {stage}")

    # ---- what is running where ----------------------------------------------------------

    def instances(self, app):
        """The app's serving instances as GET /api/v1/apps/{app} lists them."""
        status, body = self.api("GET", f"/api/v1/apps/{app}")
        self.assertEqual(status, 200, body)
        return (body.get("serving") or {}).get("instances", [])

    def instance_version(self, instance):
        """Asks the instance itself, from inside its node's namespace (remote instances listen on
        every address of their namespace)."""
        host = HOST_OF[instance["node"]]
        status, body = netns.http_get(self.hosts, host, f"http://127.0.0.1:{instance['port']}/health", timeout=5)
        self.assertEqual(status, 200, body)
        return json.loads(body)["version"]

    def instance_versions(self, host, app):
        """The versions of `app`'s instance processes running in the host's namespace: processes
        named `server` (not its --self-test or --probe), read from the VERSION file in their
        working directory (the release). Versions of this suite's apps start with "<app>-"."""
        out = subprocess.run(["ip", "netns", "pids", self.hosts.ns(host)], capture_output=True, text=True,
                             timeout=10).stdout.split()
        found = []
        for pid in out:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "server":
                        continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
                if b"--self-test" in args or b"--probe" in args:
                    continue
                with open(os.path.join(os.readlink(f"/proc/{pid}/cwd"), "VERSION")) as f:
                    version = f.read().strip()
            except OSError:
                continue
            if version.startswith(app + "-"):
                found.append(version)
        return found

    def assert_serving_everywhere(self, app, version):
        """One serving instance on each of the three nodes, each answering `version` itself."""
        listed = self.instances(app)
        self.assertEqual(sorted(i["node"] for i in listed), sorted(NODES.values()), listed)
        for i in listed:
            self.assertEqual(self.instance_version(i), version, i)

    def wait_only_version_running(self, app, version, hosts=tuple(NODES), timeout=40):
        """Every instance process of `app` on `hosts` runs `version` (the others drained/stopped),
        and there is one on each."""
        def ok():
            seen = {h: self.instance_versions(h, app) for h in hosts}
            return seen if all(v and set(v) == {version} for v in seen.values()) else None
        return wait_until(ok, timeout=timeout, interval=0.3, what=f"only {version} running on {hosts}")

    def gateway_versions(self, app, n):
        """`n` sequential GETs of / through the gateway on one keep-alive connection: the X-Version
        of each answer (the status too when not 200)."""
        seen = []
        conn = http.client.HTTPConnection(self.cp, GW_PORT, timeout=10)
        try:
            for _ in range(n):
                conn.request("GET", "/", headers={"Host": f"{app}.localhost"})
                res = conn.getresponse()
                res.read()
                v = res.getheader("X-Version")
                seen.append(v if res.status == 200 else f"HTTP {res.status} {v}")
        finally:
            conn.close()
        return seen

    def traffic(self, app, threads=4, max_seconds=90):
        return Traffic(self.cp, GW_PORT, f"{app}.localhost", threads=threads, max_seconds=max_seconds)

    def hooks(self):
        """Every notification the receiver got: (path, headers, raw body, parsed body)."""
        got = []
        with open(self.hook_file) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written
                rec = json.loads(line)
                raw = base64.b64decode(rec["body"])
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                got.append((rec["path"], rec["headers"], raw, parsed))
        return got

    def assert_one_line(self, out, code, *needles):
        self.assertEqual(out.returncode, code, (out.stdout, out.stderr))
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for bad in ("Traceback", "terminate called", "what():", "Segmentation"):
            self.assertNotIn(bad, out.stdout + out.stderr)
        for n in needles:
            self.assertIn(n.lower(), lines[0].lower())

    # ---- careless users ------------------------------------------------------------------

    def test_0_promote_and_abort_without_a_rollout_and_bad_manifests(self):
        # No such app: one line, exit 2 (as every failed call), no crash.
        for verb in ("promote", "abort"):
            self.assert_one_line(self.cli("rollout", verb, "NOPE"), 2, "NOPE")
        out = self.cli("rollout", "status", "NOPE")
        self.assertNotEqual(out.returncode, 0)
        self.assert_one_line(out, out.returncode, "NOPE")
        # Bad usage: exit 2, one line.
        for args in (("rollout", "status"), ("rollout", "promote"), ("rollout", "abort"),
                     ("rollout", "promote", "a", "b")):
            self.assert_one_line(self.cli(*args), 2)
        for method, path in (("GET", "/api/v1/apps/NOPE/rollout"), ("POST", "/api/v1/apps/NOPE/rollout/promote"),
                             ("POST", "/api/v1/apps/NOPE/rollout/abort")):
            status, body = self.api(method, path)
            self.assertIn(status, (404, 409), (path, body))
            self.assertEqual(set(body), {"error", "detail"}, (path, body))
        # An app that exists, with no rollout ever: 404 for the status, 409 for promote/abort.
        app = "idle"
        self.create_app(app)
        status, body = self.api("GET", f"/api/v1/apps/{app}/rollout")
        self.assertEqual((status, set(body)), (404, {"error", "detail"}), body)
        for verb in ("promote", "abort"):
            status, body = self.api("POST", f"/api/v1/apps/{app}/rollout/{verb}")
            self.assertEqual((status, set(body)), (409, {"error", "detail"}), (verb, body))
            self.assert_one_line(self.cli("rollout", verb, app), 2, f"no rollout in progress for {app}")
        # Out-of-range stage fields: the deployment fails at checkout, naming file:line:column
        # (of the value, as every manifest error does), and nothing starts.
        for bad, needle, field in (
                (beta_stage(weight=101), "weight: 101", "weight"),
                (beta_stage(analysis={"interval": "0s"}), "interval: 0s", "interval")):
            text = rollout_manifest(app, beta=bad)
            line, col = position(text, needle)
            col += len(needle.split(": ")[0]) + 2
            d = self.wait_deployment(self.start_deploy(app, f"{app}-bad-{field}", text)["id"])
            self.assertEqual(d["status"], "failed", d)
            self.assertEqual(d["stage"], "checkout", d)
            self.assertIn(f"slipway.yaml:{line}:{col}", d["error"], (text, d["error"]))
            self.assertIn(field, d["error"])
        self.assertEqual(self.instances(app), [])

    # ---- 1. a healthy canary goes through every stage --------------------------------------

    def test_1_healthy_release_passes_every_stage_with_a_ten_percent_canary(self):
        app = "hello"
        manifest = rollout_manifest(app, beta=beta_stage(bake="8s", max_bake="30s"))
        first = self.baseline(app, f"{app}-v1", manifest)
        texts = [e["text"] for e in self.events(first["id"])]
        self.assertFalse([t for t in texts if "canary weight" in t or re.search(r"stage \d/\d", t)],
                         "a first deployment does not roll out in stages")
        v2 = f"{app}-v2"
        with self.traffic(app, threads=4, max_seconds=120) as load:
            wait_until(lambda: load.count() > 100, timeout=30, what="load running")
            d = self.start_deploy(app, v2, manifest)
            # During beta's bake: the status says so, with the canary's and baseline's figures.
            status = self.wait_rollout(app, "baking", timeout=90,
                                       extra=lambda s: (s.get("canary") or {}).get("requests", 0) > 0)
            d = self.wait_deployment(d["id"])
            time.sleep(0.5)
        self.assertEqual(d["status"], "succeeded", d)
        records = load.snapshot()
        self.assertEqual(failed(records), [], f"{len(failed(records))} failed of {len(records)}: {load.errors[:5]}")

        self.assertEqual(status["deployment_id"], d["id"], status)
        self.assertEqual(status["weight"], 10, status)
        self.assertEqual(status["bake_ms"], 8000, status)
        self.assertEqual(len(status["stages"]), 3, status)
        self.assertEqual(status["stages"][0]["state"], "done", status)
        self.assertEqual(status["stages"][1]["weight"], 10, status)
        for side in ("canary", "baseline"):
            for key in ("requests", "errors", "error_rate", "p95_ms"):
                self.assertIn(key, status[side], status)
            self.assertGreater(status[side]["requests"], 0, status)
            self.assertEqual(status[side]["errors"], 0, status)

        # Events: beta's canary weight, then its promotion; every interval of the bake passed.
        events = self.events(d["id"])
        weighted = self.event(d["id"], r"^stage 2/3 \(beta\): deployed on n-beta; canary weight 10%", events)
        promoted = self.event(d["id"], r"^stage 2/3 \(beta\): promoted", events)
        self.assertIsNotNone(weighted, [e["text"] for e in events])
        self.assertIsNotNone(promoted, [e["text"] for e in events])
        self.assertEqual(weighted["stage"], "rollout")
        verdicts = [e["text"] for e in events if re.search(r"^stage 2/3 \(beta\): interval \d+: ", e["text"])]
        self.assertTrue(verdicts, [e["text"] for e in events])
        self.assertFalse([t for t in verdicts if ": fail" in t], verdicts)
        self.assertGreaterEqual(promoted["ts_ms"] - weighted["ts_ms"], 8000 - 500, "promoted after the bake")

        # The canary's share between the weight and the promotion (a quarter of a second off
        # each end for the route change to land): 10% ± 3.
        start, end = weighted["ts_ms"] / 1000 + 0.25, promoted["ts_ms"] / 1000 - 0.25
        during = [r[3] for r in records if r[0] >= start and r[1] <= end]
        self.assertGreater(len(during), 300, f"only {len(during)} requests during the bake")
        share = during.count(v2) / len(during)
        self.assertTrue(0.07 <= share <= 0.13, f"canary share {share:.3f} of {len(during)}")
        self.assertEqual(set(during), {f"{app}-v1", v2})
        # Stage 1 has weight 0: nothing of v2 answered well before beta's canary weight.
        early = [r for r in records if r[3] == v2 and r[1] < weighted["ts_ms"] / 1000 - 1.0]
        self.assertEqual(early, [], "v2 answered while stage 1 (weight 0) ran")

        # All three nodes serve v2, and only v2 runs; the gateway answers v2 only.
        self.assert_serving_everywhere(app, v2)
        self.wait_only_version_running(app, v2)
        self.assertEqual(set(self.gateway_versions(app, 50)), {v2})
        status, final = self.api("GET", f"/api/v1/apps/{app}/rollout")
        self.assertEqual(status, 200, final)
        self.assertEqual((final["state"], final["deployment_id"]), ("succeeded", d["id"]), final)

    # ---- 2. a canary with errors is aborted, and the webhook says so -----------------------

    def test_2_error_rate_aborts_within_two_intervals_and_notifies(self):
        app = "errs"
        notify = [{"kind": "webhook", "url": f"http://127.0.0.1:{HOOK_PORT}{HOOK_PATH}",
                   "secret": json.dumps(HOOK_SECRET)}]
        beta = beta_stage(bake="20s", max_bake="40s")
        v2, v3 = f"{app}-v2", f"{app}-v3"
        self.baseline(app, v2, rollout_manifest(app, beta=beta, notify=notify))
        before = {i["node"]: i for i in self.instances(app)}
        with Watch(self, app, every=0.3) as watch, self.traffic(app, threads=4, max_seconds=120) as load:
            wait_until(lambda: load.count() > 100, timeout=30, what="load running")
            d = self.start_deploy(app, v3, rollout_manifest(app, beta=beta, notify=notify,
                                                            env={"ERROR_EVERY": "20"}))
            d = self.wait_deployment(d["id"])
            time.sleep(1)
        self.assertEqual(d["status"], "rolled_back", d)
        self.assertIn("stage 2/3 (beta) aborted", d["error"])
        self.assertIn("error rate", d["error"])
        records = load.snapshot()

        # Aborted within two analysis intervals (and a second) of the bake's start.
        events = self.events(d["id"])
        texts = [e["text"] for e in events]
        weighted = self.event(d["id"], r"^stage 2/3 \(beta\): deployed on n-beta; canary weight 10%", events)
        aborted = self.event(d["id"], r"^rollout aborted: ", events)
        self.assertIsNotNone(weighted, texts)
        self.assertIsNotNone(aborted, texts)
        self.assertLessEqual(aborted["ts_ms"] - weighted["ts_ms"], 2 * 2000 + 1000, texts)
        self.assertTrue([t for t in texts if re.search(r"^stage 2/3 \(beta\): interval \d+: fail", t)], texts)
        self.assertIsNone(self.event(d["id"], r"^stage 3/3", events), "gamma's stage never began")

        # The canary answered (some 500s among them); gamma never ran v3 nor answered with it.
        v3_answers = [r for r in records if r[3] == v3]
        self.assertTrue(v3_answers, "the canary got traffic")
        self.assertTrue([r for r in v3_answers if r[2] == 500], "and failed some of it")
        # The abort moves the route back before it stops the canary: no request is cut.
        self.assertFalse([r for r in records if r[3] not in (v2, v3)], "every answer is the app's")
        self.assertFalse([r for r in records if r[2] != 200 and r[3] != v3], "only the canary failed requests")
        self.assertIn(v3, watch.processes["beta"], "v3 ran on beta (the watch sees instances)")
        self.assertNotIn(v3, watch.processes["gamma"], "v3 never ran on gamma")
        gamma = str(before[NODES["gamma"]]["instance_id"])
        v3_instances = {r[4] for r in v3_answers}
        self.assertNotIn(gamma, v3_instances, "gamma's instance never answered v3")
        self.assertTrue(watch.views, "the app was listed during the rollout")
        for view in watch.views:
            # Whatever else the listing shows mid-rollout, on gamma only its v2 instance.
            on_gamma = {str(i["instance_id"]) for i in view if i["node"] == NODES["gamma"]}
            self.assertLessEqual(on_gamma, {gamma}, view)
            if d.get("release_id") is not None:
                self.assertFalse([i for i in view if i["node"] == NODES["gamma"]
                                  and i.get("release_id") == d["release_id"]], view)
        now = {i["node"]: str(i["instance_id"]) for i in self.instances(app)}
        self.assertEqual(now.get(NODES["gamma"]), gamma, "gamma's instance was never replaced")

        # Back to v2: the instances on alpha and beta answer v2 themselves (gamma's never
        # stopped), no v3 process is left on any node, and the gateway answers v2 only.
        self.assert_serving_everywhere(app, v2)
        self.wait_only_version_running(app, v2)
        self.assertEqual(set(self.gateway_versions(app, 100)), {v2})

        # The notification: signed with the secret, carrying the analysis figures.
        def rolled_back():
            return [h for h in self.hooks() if h[3] and h[3].get("deployment_id") == d["id"]
                    and h[1].get("x-slipway-event") == "rolled_back"]
        path, headers, raw, body = wait_until(rolled_back, timeout=45, interval=0.2, what="rolled_back webhook")[0]
        self.assertEqual(path, HOOK_PATH)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        self.assertRegex(headers.get("x-slipway-delivery", ""), r"^[0-9a-fA-F-]{32,36}$")
        expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        self.assertTrue(hmac.compare_digest(headers.get("x-slipway-signature", ""), expected), headers)
        self.assertEqual((body["event"], body["app"], body["status"], body["stage"]),
                         ("rolled_back", app, "rolled_back", "rollout"), body)
        self.assertEqual(body["commit"], d["commit"])
        self.assertIn("error rate", body["error"])
        analysis = body["analysis"]
        self.assertEqual((analysis["stage"], analysis["verdict"]), (2, "fail"), analysis)
        self.assertTrue(analysis["reason"])
        self.assertGreater(analysis["canary"]["requests"], 0, analysis)
        self.assertGreater(analysis["canary"]["errors"], 0, analysis)
        self.assertGreater(analysis["baseline"]["requests"], 0, analysis)
        self.assertGreater(analysis["canary"]["error_rate"], analysis["baseline"]["error_rate"], analysis)
        kinds = {h[1].get("x-slipway-event") for h in self.hooks() if h[3] and h[3].get("deployment_id") == d["id"]}
        self.assertLessEqual({"started", "aborted", "rolled_back"}, kinds)
        self.assertNotIn("succeeded", kinds)

        # The secret and the URL are shown nowhere: events, API answers, the server's log.
        _, deployment = self.api("GET", f"/api/v1/deployments/{d['id']}")
        _, rollout = self.api("GET", f"/api/v1/apps/{app}/rollout")
        with open(os.path.join(self.tmp, "cp.log"), "rb") as f:
            log = f.read().decode(errors="replace")
        for where, text in (("events", json.dumps(events)), ("deployment", json.dumps(deployment)),
                            ("rollout", json.dumps(rollout)), ("server log", log)):
            self.assertNotIn(HOOK_SECRET, text, where)
            self.assertNotIn(HOOK_PATH, text, where)

    # ---- 3. a slow canary is aborted on p95 -------------------------------------------------

    def test_3_latency_aborts_naming_p95(self):
        app = "slow"
        beta = beta_stage(bake="20s", max_bake="40s", analysis={"max_p95_ratio": 3.0, "max_p95_ms": 150})
        v1, v4 = f"{app}-v1", f"{app}-v4"
        self.baseline(app, v1, rollout_manifest(app, beta=beta))
        # More threads: a canary request holds its thread for 200 ms.
        with self.traffic(app, threads=8, max_seconds=120) as load:
            wait_until(lambda: load.count() > 100, timeout=30, what="load running")
            d = self.start_deploy(app, v4, rollout_manifest(app, beta=beta, env={"EXTRA_LATENCY_MS": "200"}))
            d = self.wait_deployment(d["id"])
        self.assertEqual(d["status"], "rolled_back", d)
        self.assertIn("stage 2/3 (beta) aborted", d["error"])
        self.assertIn("p95", d["error"])
        records = load.snapshot()
        # A slow canary is slow, not failing; at most one request per load thread in flight
        # to it when it is stopped may be cut.
        self.assertLessEqual(len(failed(records)), 8, failed(records)[:10])
        self.assertFalse([r for r in failed(records) if r[3] == v1], "the baseline failed nothing")
        slow = [r[1] - r[0] for r in records if r[3] == v4]
        self.assertTrue(slow and min(slow) >= 0.2, "the canary answered, each after 200 ms")
        aborted = self.wait_event(d["id"], r"^rollout aborted: .*p95", timeout=10)
        self.assertEqual(aborted["stage"], "rollout")
        self.assert_serving_everywhere(app, v1)
        self.wait_only_version_running(app, v1)
        self.assertEqual(set(self.gateway_versions(app, 50)), {v1})

    # ---- 4. no traffic during the bake: inconclusive, then the policy ------------------------

    def inconclusive(self, app, policy):
        """Baseline v1, then v2 whose beta bake sees no traffic at all: every interval is
        inconclusive until max_bake. Returns (deployment, v1, v2) with the deployment queued."""
        beta = beta_stage(bake="2s", max_bake="5s", on_inconclusive=policy,
                          analysis={"interval": "1s", "min_requests": 5})
        v1, v2 = f"{app}-v1", f"{app}-v2"
        self.baseline(app, v1, rollout_manifest(app, beta=beta))
        return self.start_deploy(app, v2, rollout_manifest(app, beta=beta)), v1, v2

    def test_4a_inconclusive_with_abort_rolls_back(self):
        d, v1, _ = self.inconclusive("inc-abort", "abort")
        d = self.wait_deployment(d["id"])
        self.assertEqual(d["status"], "rolled_back", d)
        self.assertIn("inconclusive", d["error"])
        events = self.events(d["id"])
        self.assertTrue([e for e in events if re.search(r"^stage 2/3 \(beta\): interval \d+: inconclusive", e["text"])],
                        [e["text"] for e in events])
        self.assertIsNone(self.event(d["id"], r"^stage 3/3", events))
        self.assert_serving_everywhere("inc-abort", v1)
        self.wait_only_version_running("inc-abort", v1)

    def test_4b_inconclusive_with_promote_succeeds(self):
        d, _, v2 = self.inconclusive("inc-promote", "promote")
        d = self.wait_deployment(d["id"])
        self.assertEqual(d["status"], "succeeded", d)
        events = self.events(d["id"])
        self.assertIsNotNone(self.event(d["id"], r"^stage 2/3 \(beta\): promoted", events))
        self.assertFalse([e for e in events if re.search(r"interval \d+: (pass|fail)", e["text"])],
                         "no traffic, so no interval passed or failed")
        self.assert_serving_everywhere("inc-promote", v2)
        self.wait_only_version_running("inc-promote", v2)

    def test_4c_inconclusive_with_pause_waits_for_promote(self):
        app = "inc-pause"
        d, _, v2 = self.inconclusive(app, "pause")
        status = self.wait_rollout(app, "paused", timeout=60)
        self.assertEqual(status["deployment_id"], d["id"], status)
        self.wait_event(d["id"], r"^stage 2/3 \(beta\): paused: inconclusive after [\d.]+s \(.*\); "
                                 r"waiting for rollout promote or abort", timeout=10)
        time.sleep(1.5)  # paused means paused: still there a moment later
        _, running = self.api("GET", f"/api/v1/deployments/{d['id']}")
        self.assertEqual(running["status"], "running", running)
        self.assertEqual(self.rollout_status(app)["state"], "paused")
        out = self.cli("rollout", "promote", app)
        self.assertEqual(out.returncode, 0, out.stderr)
        d = self.wait_deployment(d["id"])
        self.assertEqual(d["status"], "succeeded", d)
        self.assert_serving_everywhere(app, v2)
        self.wait_only_version_running(app, v2)

    def test_4d_abort_by_hand_during_the_bake(self):
        app = "by-hand"
        beta = beta_stage(bake="60s", max_bake="60s")
        v1, v2 = f"{app}-v1", f"{app}-v2"
        self.baseline(app, v1, rollout_manifest(app, beta=beta))
        d = self.start_deploy(app, v2, rollout_manifest(app, beta=beta))
        self.wait_rollout(app, "baking", timeout=90)
        asked = time.time()
        out = self.cli("rollout", "abort", app)
        self.assertEqual(out.returncode, 0, out.stderr)
        d = self.wait_deployment(d["id"], timeout=60)
        self.assertLess(time.time() - asked, 20, "an abort does not wait for the bake")
        self.assertEqual(d["status"], "rolled_back", d)
        self.assertIn("stage 2/3 (beta) aborted", d["error"])
        self.assertIsNotNone(self.event(d["id"], r"^rollout aborted: "))
        self.assert_serving_everywhere(app, v1)
        self.wait_only_version_running(app, v1)
        self.assertEqual(set(self.gateway_versions(app, 50)), {v1})
        # Nothing to abort or promote any more; the last rollout's status stays readable.
        for verb in ("abort", "promote"):
            self.assert_one_line(self.cli("rollout", verb, app), 2, f"no rollout in progress for {app}")
            status, body = self.api("POST", f"/api/v1/apps/{app}/rollout/{verb}")
            self.assertEqual((status, set(body)), (409, {"error", "detail"}), body)
        status, body = self.api("GET", f"/api/v1/apps/{app}/rollout")
        self.assertEqual(status, 200, body)
        self.assertIn(body["state"], ("aborted", "rolled_back"), body)

    def test_4e_a_newer_push_ends_the_rollout_in_progress(self):
        app = "superseded"
        beta = beta_stage(bake="60s", max_bake="60s", analysis=False)
        v1, v2, v3 = f"{app}-v1", f"{app}-v2", f"{app}-v3"
        self.baseline(app, v1, rollout_manifest(app, beta=beta))
        d2 = self.start_deploy(app, v2, rollout_manifest(app, beta=beta))
        self.wait_rollout(app, "baking", timeout=90)
        d3 = self.start_deploy(app, v3, rollout_manifest(app, beta=beta_stage(bake="1s", analysis=False)))
        d2 = self.wait_deployment(d2["id"], timeout=60)
        self.assertEqual(d2["status"], "rolled_back", d2)
        self.assertIn(f"aborted by deployment #{d3['id']}, which supersedes it", d2["error"])
        d3 = self.wait_deployment(d3["id"], timeout=120)
        self.assertEqual(d3["status"], "succeeded", d3)
        self.assert_serving_everywhere(app, v3)
        self.wait_only_version_running(app, v3)

    # ---- 5. the control plane dies mid-bake --------------------------------------------------

    def test_5_control_plane_killed_during_the_bake(self):
        cls = type(self)
        app = "phoenix"
        beta = beta_stage(bake="12s", max_bake="30s")
        v1, v2 = f"{app}-v1", f"{app}-v2"
        self.baseline(app, v1, rollout_manifest(app, beta=beta))
        with self.traffic(app, threads=4, max_seconds=150) as load:
            wait_until(lambda: load.count() > 100, timeout=30, what="load running")
            d = self.start_deploy(app, v2, rollout_manifest(app, beta=beta))
            self.wait_rollout(app, "baking", timeout=90)
            wait_until(lambda: any(r[3] == v2 for r in load.snapshot()), timeout=20, what="the canary answering")
            cls.server.send_signal(signal.SIGKILL)
            cls.server.wait(10)
            cls.start_server()
            self.wait_nodes_up(*NODES.values(), timeout=60)  # they redial by themselves
            d = self.wait_deployment(d["id"], timeout=120)
        self.assertIn(d["status"], ("rolled_back", "succeeded"), d)
        serving = v1 if d["status"] == "rolled_back" else v2
        # Never half-routed: every answer now comes from one version.
        self.assertEqual(set(self.gateway_versions(app, 200)), {serving}, d)
        self.wait_only_version_running(app, serving)
        self.assert_serving_everywhere(app, serving)
        status, body = self.api("GET", f"/api/v1/apps/{app}/rollout")
        self.assertEqual(status, 200, body)
        self.assertIn(body["state"], ("rolled_back", "aborted", "succeeded"), body)
        # The record reads in words too (no live figures after a restart).
        out = self.cli("rollout", "status", app)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(body["state"], out.stdout)


if __name__ == "__main__":
    unittest.main()
