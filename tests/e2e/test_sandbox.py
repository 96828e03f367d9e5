"""Sandboxes end to end, with the three-service demo of examples/sandbox-demo: a feature branch
of one service deployed next to the shared environment, reached through the sandbox's own port
and through the shared gateway with X-Slipway-Sandbox; a route flip under load; the rendered
config file; containers on a per-sandbox network; clone, snapshot, suspend, delete; 20
concurrent creates; a secret that never leaks; careless users.

One server, one shared environment (entry, account and payment deployed from main) and two
sandboxes (alpha: account's feature-login; beta: payment's feature-pay) shared by the tests,
which run in order (test_1 … test_9). Every wait has a deadline; every load loop is bounded
in time and count and targets loopback only."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import dockerd
import harness
from harness import ROOT, Server, http_call, wait_until

DEMO = os.path.join(ROOT, "examples", "sandbox-demo")
GATEWAY_PORTS = (28081, 28199)
SERVICE_PORTS = (29001, 29199)
SERVICES = ("entry", "account", "payment")
SECRET = "sbx-secret-" + uuid.uuid4().hex  # in sandbox alpha's environment only
HOOK_SECRET = "sandbox-e2e-webhook-secret"
DEPLOY_TIMEOUT = 300


def versions(answer):
    """(entry, account, payment) versions of the entry's answer."""
    calls = answer.get("calls", {})
    return (answer.get("version"), calls.get("account", {}).get("version"),
            calls.get("payment", {}).get("version"))


def get_json(port, headers=None, path="/"):
    status, raw, _ = http_call(port, "GET", path, headers=headers or {}, timeout=10)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def port_is_free(port):
    """True when nothing listens on 127.0.0.1:port (it can be bound)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def instance_pids(data_dir, apps):
    """Live pids of this server's instances of `apps` (their SLIPWAY_APP)."""
    wanted = {f"SLIPWAY_APP={a}".encode() for a in apps}
    found = []
    for pid in harness.processes_with_marker(data_dir):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if wanted & set(f.read().split(b"\0")):
                    found.append(pid)
        except OSError:
            pass
    return found


def environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class AccountLoad:
    """GETs on a sandbox's port from a few threads, bounded in time and count. Records, per
    thread, the sequence of account versions seen (consecutive repeats folded) and every
    failure (a non-200, an error in the answer, a broken connection)."""

    def __init__(self, port, threads=4, max_seconds=20, max_requests=2000):
        self.port, self.deadline = port, time.time() + max_seconds
        self.per_thread = max_requests // threads
        self.sequences = [[] for _ in range(threads)]
        self.failures, self.count = [], 0
        self.stop_flag = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for w in self._workers:
            w.join(30)

    def _run(self, index):
        conn, seq = None, self.sequences[index]
        for _ in range(self.per_thread):
            if self.stop_flag.is_set() or time.time() > self.deadline:
                break
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/")
                res = conn.getresponse()
                body = res.read()
                answer = json.loads(body)
                account = versions(answer)[1]
                if res.status != 200 or account is None:
                    raise RuntimeError(f"HTTP {res.status}: {body[:300]!r}")
                if not seq or seq[-1] != account:
                    seq.append(account)
                with self._lock:
                    self.count += 1
            except Exception as e:  # noqa: BLE001 - every error is a failed request
                with self._lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


class SandboxSuite(unittest.TestCase):
    maxDiff = None

    # ---- fixtures ------------------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="slipway-e2e-sandbox-")
        cls.server = None
        cls.started_dockerd = False
        cls.sandboxes = set()  # every name this suite created, deleted in tearDownClass
        try:
            cls.repos = os.path.join(cls.tmp, "repos")
            subprocess.run(["sh", os.path.join(DEMO, "make-repos.sh"), cls.repos], check=True,
                           capture_output=True, timeout=60)
            ranges = ["--sandbox-gateway-ports", "%d-%d" % GATEWAY_PORTS,
                      "--sandbox-service-ports", "%d-%d" % SERVICE_PORTS]
            cls.server = Server(os.path.join(cls.tmp, "var"), extra_args=ranges).start()
            cls.gw = cls.server.gw_port
            cls.make_shared_environment()
            cls.create_sandboxes_in_parallel({
                "alpha": ["--env", "alpha-env", "--service", "entry=branch:main",
                          "--service", "account=branch:feature-login", "--service", "payment=upstream"],
                "beta": ["--service", "entry=branch:main", "--service", "account=upstream",
                         "--service", "payment=branch:feature-pay"],
            })
        except BaseException:
            cls.print_log_tail()
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server and cls.server.proc and cls.server.proc.poll() is None:
            for name in sorted(cls.sandboxes):
                try:
                    cls.cli("sandbox", "delete", name, timeout=120)
                except subprocess.TimeoutExpired:
                    print(f"sandbox delete {name} timed out", file=sys.stderr)
            cls.server.stop()
        if cls.server:
            harness.kill_marked_processes(cls.server.data)
            if dockerd.answering():
                home = os.path.realpath(cls.server.data)
                for c in dockerd.containers(f"slipway.home={home}"):
                    dockerd.api("DELETE", f"/containers/{c['Id']}?force=1")
                for name in cls.sandboxes:
                    dockerd.api("DELETE", f"/networks/sandbox-{name}")
        for c in cls.probe_containers():
            dockerd.api("DELETE", f"/containers/{c['Id']}?force=1")
        if cls.started_dockerd:
            dockerd.stop()
        if os.environ.get("SLIPWAY_KEEP_TMP") is None:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def probe_containers(cls):
        if not cls.started_dockerd and not dockerd.answering():
            return []
        try:
            return dockerd.containers(f"slipway.e2e.probe={cls.tmp}")
        except (OSError, AssertionError):
            return []

    @classmethod
    def print_log_tail(cls, lines=80):
        if not cls.server:
            return
        try:
            with open(cls.server.log_path, "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return
        print(f"\n---- last {len(tail)} lines of {cls.server.log_path} ----", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)

    def run(self, result=None):
        """Prints the server log's tail under a failing test."""
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > before:
            self.print_log_tail()
        return result

    @classmethod
    def cli(cls, *args, timeout=120):
        return cls.server.cli(*args, timeout=timeout)

    @classmethod
    def cli_ok(cls, *args, timeout=120):
        out = cls.cli(*args, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"slipway {' '.join(args)} exited {out.returncode}: {out.stdout}{out.stderr}")
        return out.stdout

    @classmethod
    def upstream(cls, app):
        return f"http://{app}.localhost:{cls.gw}"

    @classmethod
    def make_shared_environment(cls):
        cls.cli_ok("env", "create", "shared", "--var", f"ACCOUNT_URL={cls.upstream('account')}",
                   "--var", f"PAYMENT_URL={cls.upstream('payment')}")
        cls.cli_ok("env", "create", "alpha-env", "--var", "GREETING=hello", "--secret", f"API_KEY={SECRET}")
        for app in SERVICES:
            cls.cli_ok("apps", "create", app, "--repo", os.path.join(cls.repos, app), "--secret", HOOK_SECRET,
                       "--upstream", cls.upstream(app), "--env", "shared")
        for app in SERVICES:
            cls.cli_ok("deploy", app, timeout=DEPLOY_TIMEOUT)

    @classmethod
    def create_sandboxes_in_parallel(cls, specs, extra=("--wait",)):
        """Runs `sandbox create NAME ARGS --wait` for every spec at once; raises on a failure."""
        outs = {}

        def create(name, args):
            try:
                outs[name] = cls.cli("sandbox", "create", name, *args, *extra, timeout=DEPLOY_TIMEOUT)
            except subprocess.TimeoutExpired as e:
                outs[name] = subprocess.CompletedProcess(e.cmd, -1, "", f"timed out after {e.timeout} s")

        cls.sandboxes.update(specs)
        threads = [threading.Thread(target=create, args=item) for item in specs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEPLOY_TIMEOUT + 10)
        for name in specs:
            out = outs.get(name) or subprocess.CompletedProcess([], -1, "", "never finished")
            if out.returncode != 0:
                raise AssertionError(f"sandbox create {name} exited {out.returncode}: {out.stdout}{out.stderr}")
        return outs

    @classmethod
    def show(cls, name):
        out = cls.cli("sandbox", "show", name, "--json")
        if out.returncode != 0:
            raise AssertionError(f"sandbox show {name}: {out.stderr}")
        return json.loads(out.stdout)

    def service(self, shown, name):
        match = [s for s in shown["services"] if s["name"] == name]
        self.assertEqual(len(match), 1, shown)
        return match[0]

    def wait_running(self, name, timeout=DEPLOY_TIMEOUT):
        def running():
            s = self.show(name)
            if s["status"] == "failed":
                raise AssertionError(f"sandbox {name} failed: {s}")
            return s if s["status"] == "running" else None
        return wait_until(running, timeout=timeout, interval=0.5, what=f"sandbox {name} running")

    def answer_through(self, port, headers=None, expect=200):
        status, body = get_json(port, headers)
        self.assertEqual(status, expect, body)
        return body

    def wait_answer(self, port, wanted, headers=None, timeout=30):
        def answered():
            status, body = get_json(port, headers)
            return body if status == 200 and versions(body) == wanted else None
        return wait_until(answered, timeout=timeout, interval=0.2, what=f"{wanted} on port {port}")

    def assert_gone(self, name, apps):
        """Nothing of sandbox `name` is left: no record, process, port, container, network or
        directory."""
        out = self.cli("sandbox", "show", name, "--json")
        self.assertEqual(out.returncode, 2, f"sandbox {name} still shown: {out.stdout}")
        wait_until(lambda: not instance_pids(self.server.data, apps), timeout=30, what=f"{name}'s processes gone")
        listed = json.loads(self.cli_ok("sandbox", "list", "--json"))
        rows = listed["sandboxes"] if isinstance(listed, dict) else listed
        self.assertNotIn(name, [r["name"] for r in rows])
        status, body = self.server.api("GET", "/api/v1/apps")
        self.assertEqual(status, 200, body)
        app_names = [a["name"] for a in (body["apps"] if isinstance(body, dict) else body)]
        self.assertFalse(set(apps) & set(app_names), app_names)
        for root, dirs, _ in os.walk(self.server.data):
            for d in dirs:
                self.assertNotIn(name, d, f"{os.path.join(root, d)} is left behind")
        if dockerd.answering():
            home = os.path.realpath(self.server.data)
            left = [c["Names"] for c in dockerd.containers(f"slipway.home={home}")
                    if any(f"sandbox-{name}-" in n for n in c["Names"])
                    or c.get("Labels", {}).get("slipway.app", "") in apps]
            self.assertEqual(left, [])
            self.assertEqual(dockerd.api("GET", f"/networks/sandbox-{name}")[0], 404)

    # ---- 1. ports and the header reach each sandbox's versions -----------------------------

    def test_1_each_sandbox_port_serves_its_own_mix_and_the_header_reaches_it_on_the_shared_gateway(self):
        alpha, beta = self.show("alpha"), self.show("beta")
        for s in (alpha, beta):
            self.assertEqual((s["status"], s["health"], s["entry"]), ("running", "healthy", "entry"), s)
            self.assertTrue(GATEWAY_PORTS[0] <= s["port"] <= GATEWAY_PORTS[1], s)
            for svc in s["services"]:
                self.assertTrue(SERVICE_PORTS[0] <= svc["port"] <= SERVICE_PORTS[1], svc)
        self.assertNotEqual(alpha["port"], beta["port"])
        ports = [svc["port"] for s in (alpha, beta) for svc in s["services"]]
        self.assertEqual(len(ports), len(set(ports)), "service ports are distinct")
        account = self.service(alpha, "account")
        self.assertEqual((account["branch"], account["route"]), ("feature-login", "sandbox"), account)
        tip = subprocess.run(["git", "-C", os.path.join(self.repos, "account"), "rev-parse", "feature-login"],
                             capture_output=True, text=True, check=True).stdout.strip()
        self.assertTrue(len(account["commit"]) >= 7 and tip.startswith(account["commit"]), (tip, account))
        self.assertEqual(self.service(alpha, "payment")["route"], "upstream")

        a = self.answer_through(alpha["port"])
        self.assertEqual(versions(a), ("main", "feature-login", "main"), a)
        b = self.answer_through(beta["port"])
        self.assertEqual(versions(b), ("main", "main", "feature-pay"), b)
        # A service port leads to the sandbox's instance or to the upstream.
        self.assertEqual(self.answer_through(account["port"])["version"], "feature-login")
        self.assertEqual(self.answer_through(self.service(alpha, "payment")["port"])["version"], "main")

        shared = {"Host": f"entry.localhost:{self.gw}"}
        via_header = self.answer_through(self.gw, dict(shared, **{"X-Slipway-Sandbox": "alpha"}))
        self.assertEqual(versions(via_header), ("main", "feature-login", "main"), via_header)
        self.assertEqual(via_header["calls"]["account"]["sandbox"], "alpha", "the entry forwarded the header")
        via_baggage = self.answer_through(self.gw, dict(shared, baggage="slipway-sandbox=beta"))
        self.assertEqual(versions(via_baggage), ("main", "main", "feature-pay"), via_baggage)
        plain = self.answer_through(self.gw, shared)
        self.assertEqual(versions(plain), ("main", "main", "main"), plain)
        unknown = self.answer_through(self.gw, dict(shared, **{"X-Slipway-Sandbox": "no-such-sandbox"}))
        self.assertEqual(versions(unknown), ("main", "main", "main"), unknown)

    # ---- 2. config rendering --------------------------------------------------------------

    def test_2_the_config_file_is_rendered_reloaded_and_read_back(self):
        config = self.show("alpha")["config"]
        self.assertEqual((config.get("rendered"), config.get("reloaded"), config.get("read_back_matches")),
                         (True, True, True), config)
        routes = config["map"]
        self.assertEqual(routes["payment"], self.upstream("payment"))
        self.assertTrue(routes["account"].startswith("http://"), routes)
        self.assertNotEqual(routes["account"], self.upstream("account"))
        alpha = self.show("alpha")
        status, read_back = get_json(alpha["port"], path="/_routes")
        self.assertEqual((status, read_back), (200, routes))
        # beta renders its own map: its account is the upstream, its payment its own instance.
        beta = self.show("beta")["config"]
        self.assertTrue(beta.get("read_back_matches"), beta)
        self.assertEqual(beta["map"]["account"], self.upstream("account"))
        self.assertNotEqual(beta["map"]["payment"], self.upstream("payment"))

    # ---- 3. a route flip under load -------------------------------------------------------

    def test_3_a_route_flip_under_load_fails_no_request_and_switches_once(self):
        port = self.show("alpha")["port"]
        alpha_apps = ["sandbox-alpha-entry", "sandbox-alpha-account"]
        pids = sorted(instance_pids(self.server.data, alpha_apps))
        self.assertEqual(len(pids), 2, "alpha runs two instances")
        with AccountLoad(port) as load:
            wait_until(lambda: load.count >= 100, timeout=10, what="load before the flip")
            self.cli_ok("sandbox", "route", "alpha", "account", "--to", "upstream")
            flipped_at = load.count
            wait_until(lambda: all(s and s[-1] == "main" for s in load.sequences), timeout=10,
                       what="every thread on the upstream account")
            wait_until(lambda: load.count >= flipped_at + 100, timeout=10, what="load after the flip")
        self.assertEqual(load.failures, [], f"{len(load.failures)} failed of {load.count}")
        for seq in load.sequences:
            self.assertEqual(seq, ["feature-login", "main"], "exactly one switch")

        alpha = self.show("alpha")
        self.assertEqual(self.service(alpha, "account")["route"], "upstream")
        self.assertEqual(alpha["config"]["map"]["account"], self.upstream("account"), alpha["config"])
        self.assertTrue(alpha["config"]["read_back_matches"], alpha["config"])
        self.assertEqual(get_json(port, path="/_routes"), (200, alpha["config"]["map"]))
        via_header = self.answer_through(self.gw, {"Host": "entry.localhost", "X-Slipway-Sandbox": "alpha"})
        self.assertEqual(versions(via_header), ("main", "main", "main"), "the header follows the route")

        # And back the other way; neither flip restarted an instance.
        self.cli_ok("sandbox", "route", "alpha", "account", "--to", "sandbox")
        self.wait_answer(port, ("main", "feature-login", "main"), timeout=10)
        self.assertEqual(sorted(instance_pids(self.server.data, alpha_apps)), pids, "no instance was restarted")
        self.assertNotEqual(self.show("alpha")["config"]["map"]["account"], self.upstream("account"))

    # ---- 4. containers on a network of their own ------------------------------------------

    def start_dockerd_or_skip(self):
        if dockerd.answering():
            return
        if not shutil.which("dockerd") or os.geteuid() != 0:
            self.skipTest("no Docker daemon answers and none can be started here")
        try:
            type(self).started_dockerd = dockerd.start()
        except (OSError, RuntimeError) as e:
            self.skipTest(f"dockerd could not be started: {e}")

    def container_of(self, app):
        home = os.path.realpath(self.server.data)
        mine = [c for c in dockerd.containers(f"slipway.home={home}") if c["Labels"].get("slipway.app") == app]
        self.assertEqual(len(mine), 1, f"one container of {app}: {mine}")
        return mine[0]

    def exec_in(self, container_id, cmd, timeout=20):
        """Runs `cmd` in a running container; its exit code."""
        status, ex = dockerd.api("POST", f"/containers/{container_id}/exec",
                                 {"Cmd": cmd, "AttachStdout": False, "AttachStderr": False})
        self.assertEqual(status, 201, ex)
        status, _ = dockerd.api("POST", f"/exec/{ex['Id']}/start", {"Detach": True})
        self.assertEqual(status, 200)

        def finished():
            info = dockerd.api("GET", f"/exec/{ex['Id']}/json")[1]
            return info if not info["Running"] and info.get("ExitCode") is not None else None
        return wait_until(finished, timeout=timeout, interval=0.1, what=f"exec {cmd}")["ExitCode"]

    def probe(self, image, network, url):
        """Runs `svc --get url` in a new container on `network`; its exit code."""
        status, c = dockerd.api("POST", "/containers/create",
                                {"Image": image, "Cmd": ["--get", url], "Labels": {"slipway.e2e.probe": self.tmp},
                                 "HostConfig": {"NetworkMode": network}})
        self.assertEqual(status, 201, c)
        try:
            status, body = dockerd.api("POST", f"/containers/{c['Id']}/start")
            self.assertEqual(status, 204, body)
            status, body = dockerd.api("POST", f"/containers/{c['Id']}/wait", timeout=30)
            self.assertEqual(status, 200, body)
            return body["StatusCode"]
        finally:
            dockerd.api("DELETE", f"/containers/{c['Id']}?force=1")

    def test_4_container_services_reach_each_other_by_name_on_their_sandbox_network_only(self):
        self.start_dockerd_or_skip()
        crepos = os.path.join(self.tmp, "container-repos")
        subprocess.run(["sh", os.path.join(DEMO, "make-repos.sh"), "--container", crepos], check=True,
                       capture_output=True, timeout=60)
        for svc in SERVICES:
            self.cli_ok("apps", "create", f"c-{svc}", "--repo", os.path.join(crepos, svc), "--secret", HOOK_SECRET,
                        "--upstream", self.upstream(f"c-{svc}"))
        # Here the services are the apps c-entry, c-account and c-payment: the entry calls those.
        entry_repo = os.path.join(crepos, "entry")
        manifest = os.path.join(entry_repo, "slipway.yaml")
        with open(manifest) as f:
            text = f.read()
        with open(manifest, "w") as f:
            f.write(text.replace("CALLS: account,payment", "CALLS: c-account,c-payment"))
        subprocess.run(["git", "-C", entry_repo, "-c", "user.name=t", "-c", "user.email=t@example.test",
                        "commit", "-qam", "calls c-account, c-payment"], check=True, capture_output=True)
        self.create_sandboxes_in_parallel({
            "gamma": ["--service", "c-entry=branch:main",
                      "--service", "c-account=branch:feature-login", "--service", "c-payment=branch:main"],
            "delta": ["--service", "c-payment=branch:feature-pay"],
        })
        status, network = dockerd.api("GET", "/networks/sandbox-gamma")
        self.assertEqual(status, 200, network)
        entry, account, payment = (self.container_of(f"sandbox-gamma-c-{s}") for s in SERVICES)
        self.assertEqual({entry["Id"], account["Id"], payment["Id"]} - set(network["Containers"]), set(),
                         "all three on sandbox-gamma")
        endpoints = {c["Id"][:12]: dockerd.api("GET", f"/containers/{c['Id']}/json")[1]["NetworkSettings"]["Networks"]
                     for c in (entry, account, payment)}
        self.assertEqual(self.exec_in(account["Id"], ["/svc", "--get", "http://sandbox-gamma-c-payment:8080/health"]), 0,
                         f"account reaches payment by name; endpoints: {endpoints}")
        self.assertEqual(self.exec_in(payment["Id"], ["/svc", "--get", "http://sandbox-gamma-c-account:8080/health"]), 0,
                         f"payment reaches account by name; endpoints: {endpoints}")

        self.assertEqual(dockerd.api("GET", "/networks/sandbox-delta")[0], 200)
        image = account["Image"]
        self.assertEqual(self.probe(image, "sandbox-gamma", "http://sandbox-gamma-c-account:8080/health"), 0,
                         "the probe works on gamma's own network")
        self.assertNotEqual(self.probe(image, "sandbox-delta", "http://sandbox-gamma-c-account:8080/health"), 0,
                            "another sandbox's network cannot resolve gamma's services")
        gamma_ip = network["Containers"][account["Id"]]["IPv4Address"].split("/")[0]
        self.assertNotEqual(self.probe(image, "sandbox-delta", f"http://{gamma_ip}:8080/health"), 0,
                            "nor reach them by address")

        # The entry's own calls go by name too: its <SERVICE>_URL inside the network.
        answer = self.answer_through(self.show("gamma")["port"])
        self.assertEqual((answer["version"], answer["calls"]["c-account"].get("version"),
                          answer["calls"]["c-payment"].get("version")), ("main", "feature-login", "main"), answer)

        for name in ("gamma", "delta"):
            self.cli_ok("sandbox", "delete", name)
            self.sandboxes.discard(name)
        self.assert_gone("gamma", [f"sandbox-gamma-c-{s}" for s in SERVICES])
        self.assert_gone("delta", ["sandbox-delta-c-payment"])

    # ---- 5. clone, snapshot, suspend, resume, delete --------------------------------------

    def test_5_clone_snapshot_restore_suspend_resume_and_delete_leave_nothing_behind(self):
        alpha = self.show("alpha")
        expected = versions(self.answer_through(alpha["port"]))
        self.assertEqual(expected, ("main", "feature-login", "main"))

        self.sandboxes.update({"alpha2", "alpha3"})
        self.cli_ok("sandbox", "clone", "alpha", "alpha2")
        alpha2 = self.wait_running("alpha2")
        self.assertNotEqual(alpha2["port"], alpha["port"])
        self.wait_answer(alpha2["port"], expected)

        snap = json.loads(self.cli_ok("sandbox", "snapshot", "alpha", "--json"))
        self.cli_ok("sandbox", "restore", str(snap["id"] if isinstance(snap, dict) else snap), "--as", "alpha3")
        alpha3 = self.wait_running("alpha3")
        self.assertNotIn(alpha3["port"], (alpha["port"], alpha2["port"]))
        commits = {s["name"]: s["commit"] for s in alpha["services"] if s["branch"]}
        self.assertEqual({s["name"]: s["commit"] for s in alpha3["services"] if s["branch"]}, commits)
        self.wait_answer(alpha3["port"], expected)

        alpha_apps = [f"sandbox-alpha-{s}" for s in ("entry", "account")]
        self.assertEqual(len(instance_pids(self.server.data, alpha_apps)), 2, "alpha runs two instances")
        self.cli_ok("sandbox", "suspend", "alpha")
        self.assertEqual(self.show("alpha")["status"], "suspended")
        wait_until(lambda: not instance_pids(self.server.data, alpha_apps), timeout=30, what="alpha's instances stopped")
        try:
            status, _, _ = http_call(alpha["port"], "GET", "/", timeout=5)
            self.assertEqual(status, 503, "a suspended sandbox's port answers 503 or refuses")
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            pass
        self.cli_ok("sandbox", "resume", "alpha")
        self.wait_answer(alpha["port"], expected, timeout=120)
        self.assertEqual(self.wait_running("alpha", timeout=120)["port"], alpha["port"], "the same port")

        for shown in (alpha2, alpha3):
            name = shown["name"]
            self.cli_ok("sandbox", "delete", name)
            self.sandboxes.discard(name)
            self.assert_gone(name, [f"sandbox-{name}-{s}" for s in SERVICES])
            for port in [shown["port"]] + [s["port"] for s in shown["services"]]:
                wait_until(lambda: port_is_free(port), timeout=10, what=f"port {port} of {name} closed")
        self.assertEqual(versions(self.answer_through(alpha["port"])), expected, "alpha untouched")

    # ---- 6. concurrent creates ------------------------------------------------------------

    def test_6_twenty_concurrent_creates_get_twenty_distinct_ports(self):
        names = [f"burst-{i:02d}" for i in range(20)]
        self.create_sandboxes_in_parallel(
            {n: ["--service", "account=upstream", "--service", "payment=upstream"] for n in names}, extra=())
        shown = [self.show(n) for n in names]
        ports = [s["port"] for s in shown]
        self.assertEqual(len(set(ports)), 20, ports)
        service_ports = [svc["port"] for s in shown for svc in s["services"]]
        self.assertEqual(len(set(service_ports)), 40, service_ports)
        self.assertFalse(set(ports) & set(service_ports))
        for s in shown:
            self.assertTrue(GATEWAY_PORTS[0] <= s["port"] <= GATEWAY_PORTS[1], s)
        # Upstream-only: the sandbox's port serves the shared account.
        wait_until(lambda: get_json(shown[0]["port"])[1]["version"] == "main", timeout=10,
                   what="the shared account through an upstream-only sandbox")

        outs = {}

        def delete(name):
            outs[name] = self.cli("sandbox", "delete", name)

        threads = [threading.Thread(target=delete, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(130)
        self.assertEqual({n: o.returncode for n, o in outs.items()}, {n: 0 for n in names},
                         {n: o.stderr for n, o in outs.items() if o.returncode})
        self.sandboxes.difference_update(names)
        listed = json.loads(self.cli_ok("sandbox", "list", "--json"))
        rows = listed["sandboxes"] if isinstance(listed, dict) else listed
        self.assertFalse({r["name"] for r in rows} & set(names))
        for port in ports + service_ports:
            wait_until(lambda: port_is_free(port), timeout=10, what=f"port {port} closed")

    # ---- 7. a secret never leaks ----------------------------------------------------------

    def test_7_an_environment_secret_reaches_the_instances_and_nothing_else(self):
        pids = instance_pids(self.server.data, ["sandbox-alpha-entry"])
        self.assertTrue(pids, "alpha's entry runs")
        self.assertIn(f"API_KEY={SECRET}".encode(), environ_of(pids[0]), "the secret is injected")

        seen = {}
        paths = ["/api/v1/sandboxes", "/api/v1/sandboxes/alpha", "/api/v1/sandboxes/alpha/snapshots",
                 "/api/v1/sandboxes/alpha/check", "/api/v1/apps", "/api/v1/environments",
                 "/api/v1/environments/alpha-env",
                 "/api/v1/templates", "/api/v1/audit?limit=1000", "/api/v1/deployments?limit=1000"]
        paths += [f"/api/v1/apps/{a}" for a in (*SERVICES, "sandbox-alpha-entry", "sandbox-alpha-account")]
        paths += [f"/api/v1/apps/{a}/deployments" for a in ("sandbox-alpha-entry", "sandbox-alpha-account")]
        for path in paths:
            seen[path] = self.server.api("GET", path)
        deployments = []
        for a in ("sandbox-alpha-entry", "sandbox-alpha-account"):
            status, body = seen[f"/api/v1/apps/{a}/deployments"]
            self.assertEqual(status, 200, body)
            deployments += [d["id"] for d in (body["deployments"] if isinstance(body, dict) else body)]
        self.assertTrue(deployments, "alpha's deployments are listed")
        for d in deployments:
            seen[f"deployment {d}"] = self.server.api("GET", f"/api/v1/deployments/{d}")
            seen[f"events {d}"] = self.server.api("GET", f"/api/v1/deployments/{d}/events?limit=5000")
        self.assertEqual(seen["/api/v1/sandboxes/alpha"][0], 200)
        for what, (status, body) in seen.items():
            self.assertNotIn(SECRET, json.dumps(body) if not isinstance(body, bytes) else body.decode(errors="replace"),
                             f"the secret is in {what}")
        for args in (("sandbox", "show", "alpha", "--json"), ("sandbox", "list", "--json"), ("apps", "list", "--json"),
                     ("sandbox", "check", "alpha", "--json"),
                     ("env", "show", "alpha-env", "--json"), ("env", "list", "--json")):
            out = self.cli(*args)
            self.assertNotIn(SECRET, out.stdout + out.stderr, f"the secret is in slipway {' '.join(args)}")
        for name in ("slipway.db", "slipway.db-wal", "slipway.db-journal"):
            path = os.path.join(self.server.data, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    self.assertNotIn(SECRET.encode(), f.read(), f"the secret is in {name} in the clear")
        with open(self.server.log_path, "rb") as f:
            self.assertNotIn(SECRET.encode(), f.read(), "the secret is in the server log")

    # ---- 8. careless users ----------------------------------------------------------------

    def assert_usage_error(self, out, *needles):
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        for needle in needles:
            self.assertIn(needle, out.stderr)

    def test_8_careless_users_get_one_clear_line_and_nothing_is_created(self):
        self.assert_usage_error(self.cli("sandbox", "create", "oops", "--service", "nosuch=upstream"), "nosuch")
        self.assert_usage_error(self.cli("sandbox", "route", "alpha", "nosuch", "--to", "upstream"), "nosuch")
        self.assert_usage_error(self.cli("sandbox", "route", "alpha", "account", "--to", "elsewhere"), "elsewhere")
        self.assert_usage_error(self.cli("sandbox", "route", "no-such-sandbox", "account", "--to", "upstream"))
        self.assert_usage_error(self.cli("sandbox", "create", "oops", "--service", "account=branch:"))
        self.assert_usage_error(self.cli("sandbox", "create", "oops"))
        self.assert_usage_error(self.cli("sandbox", "create", "alpha", "--service", "account=upstream"), "alpha")
        for bad in ("../x", "a" * 200, "Alpha", "-x", "a b", "a/b"):
            self.assert_usage_error(self.cli("sandbox", "create", bad, "--service", "account=upstream"))

        body = {"name": "alpha", "services": [{"name": "account", "upstream": True}]}
        status, answer = self.server.api("POST", "/api/v1/sandboxes", body)
        self.assertEqual(status, 409, answer)
        self.assertEqual(set(answer), {"error", "detail"}, answer)
        for bad in ("../x", "a" * 200):
            status, answer = self.server.api("POST", "/api/v1/sandboxes", dict(body, name=bad))
            self.assertEqual(status, 400, answer)
            self.assertEqual(set(answer), {"error", "detail"}, answer)

        self.assert_usage_error(self.cli("sandbox", "list", "--status", "bogus"), "status")
        # Apps a sandbox stands on are not deleted from under it.
        self.assert_usage_error(self.cli("apps", "delete", "account"), "alpha")
        self.assert_usage_error(self.cli("apps", "delete", "sandbox-alpha-account"), "sandbox delete alpha")
        status, answer = self.server.api("DELETE", "/api/v1/apps/payment")
        self.assertEqual(status, 409, answer)
        self.assertEqual(set(answer), {"error", "detail"}, answer)

        listed = json.loads(self.cli_ok("sandbox", "list", "--json"))
        rows = listed["sandboxes"] if isinstance(listed, dict) else listed
        self.assertEqual({r["name"] for r in rows}, self.sandboxes, "no half-made sandbox stays behind")
        self.assertEqual(self.service(self.show("alpha"), "account")["route"], "sandbox", "alpha unchanged")
        self.assertEqual(versions(self.answer_through(self.show("alpha")["port"])), ("main", "feature-login", "main"))

    # ---- 9. a manifest that names its app -------------------------------------------------

    def test_9_a_manifest_naming_its_shared_app_deploys_in_a_sandbox(self):
        # `app: account` in slipway.yaml is right for the shared app and must not stop the
        # same repository from deploying as sandbox-<sandbox>-account.
        repo = os.path.join(self.repos, "account")
        git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.test"]
        subprocess.run([*git, "checkout", "-qb", "named", "feature-login"], check=True, capture_output=True)
        try:
            with open(os.path.join(repo, "slipway.yaml")) as f:
                text = f.read()
            with open(os.path.join(repo, "slipway.yaml"), "w") as f:
                f.write("app: account\n" + text)
            subprocess.run([*git, "commit", "-qam", "app: account"], check=True, capture_output=True)
        finally:
            subprocess.run([*git, "checkout", "-q", "main"], check=True, capture_output=True)
        self.create_sandboxes_in_parallel({"named": ["--service", "account=branch:named"]})
        self.assertEqual(self.answer_through(self.show("named")["port"])["version"], "feature-login")
        self.cli_ok("sandbox", "delete", "named")
        self.sandboxes.discard("named")
        self.assert_gone("named", ["sandbox-named-account"])

    # ---- 9b, 9c. deletes after the switch, names that collide ------------------------------------------------

    def test_9b_a_delete_after_the_switch_waits_for_the_deployment_and_leaves_nothing(self):
        status, body = self.server.api("POST", "/api/v1/sandboxes", {
            "name": "late", "services": [{"name": "entry", "branch": "main"},
                                         {"name": "account", "branch": "feature-login"}]})
        self.assertEqual(status, 201, body)
        self.sandboxes.add("late")

        def switched():
            status, page = self.server.api("GET", "/api/v1/apps/sandbox-late-account/deployments")
            rows = page["deployments"] if isinstance(page, dict) else page
            return status == 200 and any(d["stage"] in ("watch", "drain") and d["status"] == "running"
                                         for d in rows)
        wait_until(switched, timeout=DEPLOY_TIMEOUT, interval=0.05, what="late's account in its watch")
        started = time.time()
        out = self.cli("sandbox", "delete", "late", timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertLess(time.time() - started, 60)
        self.sandboxes.discard("late")
        self.assert_gone("late", ["sandbox-late-entry", "sandbox-late-account"])

    def test_9c_a_create_that_collides_with_another_sandboxs_app_takes_nothing_from_it(self):
        # Sandbox `alph-a` with service `account` and sandbox `alph` with service `a-account`
        # both name the app sandbox-alph-a-account. And no user app may take such a name.
        self.assert_usage_error(self.cli("apps", "create", "sandbox-squat", "--repo",
                                         os.path.join(self.repos, "account"), "--secret", HOOK_SECRET), "sandbox-")
        self.cli_ok("apps", "create", "a-account", "--repo", os.path.join(self.repos, "account"),
                    "--secret", HOOK_SECRET, "--upstream", self.upstream("account"))
        try:
            self.create_sandboxes_in_parallel({"alph-a": ["--service", "account=branch:feature-login"]})
            port = self.show("alph-a")["port"]
            self.assertEqual(self.answer_through(port)["version"], "feature-login")
            out = self.cli("sandbox", "create", "alph", "--service", "a-account=branch:main")
            self.assert_usage_error(out, "sandbox-alph-a-account")
            self.assertEqual(self.answer_through(port)["version"], "feature-login", "alph-a keeps its app")
            self.assertEqual(self.show("alph-a")["status"], "running")
            self.assertEqual(self.cli("sandbox", "show", "alph").returncode, 2, "no half-made sandbox")
            self.cli_ok("sandbox", "delete", "alph-a")
            self.sandboxes.discard("alph-a")
            self.assert_gone("alph-a", ["sandbox-alph-a-account"])
        finally:
            self.cli("apps", "delete", "a-account")

    def test_9d_a_push_to_a_sandboxs_branch_redeploys_its_copy_only(self):
        repo = os.path.join(self.repos, "account")
        git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.test"]
        subprocess.run([*git, "checkout", "-q", "feature-login"], check=True, capture_output=True)
        try:
            with open(os.path.join(repo, "VERSION"), "w") as f:
                f.write("feature-login-2\n")
            subprocess.run([*git, "commit", "-qam", "feature-login-2"], check=True, capture_output=True)
            sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                                 text=True).stdout.strip()
        finally:
            subprocess.run([*git, "checkout", "-q", "main"], check=True, capture_output=True)
        shared_before = self.server.api("GET", "/api/v1/apps/account/deployments")[1]
        body = harness.gitea_push_body(sha, branch="feature-login", clone_url=repo)
        headers = harness.gitea_headers(body, HOOK_SECRET, delivery="sandbox-push-" + uuid.uuid4().hex)
        status, raw, _ = http_call(self.server.api_port, "POST", "/hooks/gitea/account", body, headers)
        self.assertEqual(status, 202, raw)
        answer = json.loads(raw)
        self.assertIn("1 sandbox deployment queued", answer["detail"], answer)
        d = self.server.wait_deployment(answer["deployment_id"], timeout=DEPLOY_TIMEOUT)
        self.assertEqual((d["app"], d["commit"], d["status"]), ("sandbox-alpha-account", sha, "succeeded"), d)
        self.wait_running("alpha")
        self.assertEqual(versions(self.answer_through(self.show("alpha")["port"])),
                         ("main", "feature-login-2", "main"))
        self.assertEqual(self.server.api("GET", "/api/v1/apps/account/deployments")[1], shared_before,
                         "the shared app, tracking main, is not deployed")
        self.assertEqual(versions(self.answer_through(self.gw, {"Host": "entry.localhost"})),
                         ("main", "main", "main"))
        # The same delivery again is a duplicate: nothing more is queued.
        before = self.server.api("GET", "/api/v1/apps/sandbox-alpha-account/deployments")[1]
        status, raw, _ = http_call(self.server.api_port, "POST", "/hooks/gitea/account", body, headers)
        self.assertEqual(status, 200, raw)
        self.assertEqual(json.loads(raw).get("outcome"), "duplicate", raw)
        self.assertEqual(self.server.api("GET", "/api/v1/apps/sandbox-alpha-account/deployments")[1], before)


if __name__ == "__main__":
    unittest.main()
