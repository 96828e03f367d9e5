"""Nodes over real network namespaces: a control plane in one host, agents in two others, all
joined by a bridge (tests/e2e/netns.py). The agents dial ws://<cp>/ws/agent; builds and
instances run in their namespaces; the gateway in the control plane's namespace serves them.
Every load loop is bounded in time and count and targets the test's own namespaces."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
import netns
from cluster import ControlPlaneCalls
from harness import ADMIN_TOKEN, SLIPWAY, GitRepo, LoadLoop, default_manifest, wait_until

LEASE = "20s"  # --node-lease: ops on a silent node fail after this


def manifest(nodes, build=None, watch="1s"):
    """The example app's manifest placed on `nodes`, with optional extra build steps."""
    text = default_manifest(watch=watch)
    if build:
        text = text.replace("build:\n", "build:\n" + "".join(f"  - {json.dumps(b)}\n" for b in build), 1)
    return f"nodes: [{', '.join(nodes)}]\n" + text


SLOW_BUILD = "for i in $(seq 1 24); do echo tick $i; sleep 0.5; done"


@unittest.skipUnless(netns.available()[0], "network namespaces are not available")
class NodesTest(ControlPlaneCalls, unittest.TestCase):
    """One control plane and two agents, shared by the tests (each deploys its own app)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="slw-nodes-")
        cls.hosts = netns.Hosts(["cp", "alpha", "beta"], root_reachable=True)
        cls.cp = cls.hosts.address("cp")
        cls.repo = GitRepo(os.path.join(cls.tmp, "git"))
        cls.server = None
        cls.agents = {}
        cls.logs = []
        cls.start_server()
        cls.token = cls.enrollment_token()
        for name in ("alpha", "beta"):
            cls.start_agent(name)
        cls.wait_nodes_up("alpha", "beta")

    @classmethod
    def tearDownClass(cls):
        for proc in cls.agents.values():
            proc.kill()
        if cls.server:
            cls.server.kill()
        cls.hosts.close()
        harness.kill_marked_processes(os.path.join(cls.tmp, "cp-data"))
        for name in ("alpha", "beta"):
            harness.kill_marked_processes(os.path.join(cls.tmp, name + "-data"))
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
            "cp", [SLIPWAY, "server", "--data", os.path.join(cls.tmp, "cp-data"), "--api", f"{cls.cp}:3452",
                   "--gateway", f"{cls.cp}:8080", "--node-lease", LEASE],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_until(lambda: cls.api("GET", "/health")[0] == 200, timeout=20, what="server /health")

    @classmethod
    def start_agent(cls, name, token=None):
        log = open(os.path.join(cls.tmp, name + ".log"), "ab")
        cls.logs.append(log)
        cls.agents[name] = cls.hosts.popen(
            name, [SLIPWAY, "agent", "--server", f"ws://{cls.cp}:3452/ws/agent", "--token", token or cls.token,
                   "--name", name, "--labels", name + ",web", "--data", os.path.join(cls.tmp, name + "-data"),
                   "--advertise", cls.hosts.address(name)],
            stdout=log, stderr=subprocess.STDOUT)
        return cls.agents[name]

    def create_app(self, name, sha_manifest):
        self.repo.commit_version("v1-" + name, manifest=sha_manifest.replace("app: hello", f"app: {name}"))
        status, body = self.api("POST", "/api/v1/apps", {"name": name, "repo": self.repo.bare, "branch": "main",
                                                          "secret": "s3cret-" + name + "-0123456789"})
        self.assertEqual(status, 201, body)

    def deploy(self, app, wait=True, **body):
        status, d = self.api("POST", f"/api/v1/apps/{app}/deployments", body)
        self.assertEqual(status, 201, d)
        return self.wait_deployment(d["id"]) if wait else d

    def wait_deployment(self, deployment_id, timeout=120):
        def done():
            status, d = self.api("GET", f"/api/v1/deployments/{deployment_id}")
            return d if status == 200 and d["status"] not in ("queued", "running") else None
        return wait_until(done, timeout=timeout, interval=0.2, what=f"deployment {deployment_id}")

    def events(self, deployment_id):
        status, page = self.api("GET", f"/api/v1/deployments/{deployment_id}/events?limit=5000")
        self.assertEqual(status, 200, page)
        return page["events"]

    def wait_event(self, deployment_id, text, timeout=60):
        wait_until(lambda: any(text in e["text"] for e in self.events(deployment_id)), timeout=timeout,
                   interval=0.1, what=f"event {text!r}")

    def get_from(self, host, app, path="/health"):
        return netns.http_get(self.hosts, host, f"http://{self.cp}:8080{path}", headers={"Host": f"{app}.localhost"})

    # ---- acceptance ----------------------------------------------------------------------

    def test_1_placed_on_beta_only_and_redeploy_under_load(self):
        self.create_app("shop", manifest(["beta"]))
        d = self.deploy("shop")
        self.assertEqual(d["status"], "succeeded", d)
        beta = os.path.join(self.tmp, "beta-data", "releases", "shop")
        alpha = os.path.join(self.tmp, "alpha-data", "releases", "shop")
        self.assertTrue(os.path.isdir(beta) and os.listdir(beta), "the release is on beta")
        self.assertFalse(os.path.exists(alpha), "nothing of shop on alpha")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "cp-data", "releases", "shop")))
        status, body = self.get_from("alpha", "shop")
        self.assertEqual(status, 200, body)
        self.repo.commit_version("v2-shop", manifest=manifest(["beta"]).replace("app: hello", "app: shop"))
        with LoadLoop(8080, host="shop.localhost", threads=4, max_seconds=90, max_requests=200000,
                      address=self.cp) as load:
            wait_until(lambda: load.completed() > 50, timeout=20, what="load running")
            d = self.deploy("shop")
            time.sleep(1)
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(load.failures, [], f"{len(load.failures)} failed of {load.completed()}")
        self.assertTrue(any("v2-shop" in seq for s in load.sequences for seq in s))

    def test_2_on_both_nodes_balanced_and_redeployed_under_load(self):
        text = manifest(["web"]).replace("app: hello", "app: cart")
        self.create_app("cart", manifest(["web"]))
        d = self.deploy("cart")
        self.assertEqual(d["status"], "succeeded", d)
        for node in ("alpha", "beta"):
            releases = os.path.join(self.tmp, node + "-data", "releases", "cart")
            self.assertTrue(os.path.isdir(releases) and os.listdir(releases), f"a release on {node}")
        status, app = self.api("GET", "/api/v1/apps/cart")
        self.assertEqual(status, 200, app)
        self.assertEqual(sorted(i["node"] for i in app["serving"]["instances"]), ["alpha", "beta"])
        first = {str(i["instance_id"]) for i in app["serving"]["instances"]}
        self.repo.commit_version("v2-cart", manifest=text)
        with LoadLoop(8080, host="cart.localhost", threads=4, max_seconds=90, max_requests=200000,
                      address=self.cp) as load:
            wait_until(lambda: load.completed() > 400, timeout=30, what="load running")
            balanced = dict(load.instances)
            d = self.deploy("cart")
            time.sleep(1)
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(load.failures, [], f"{len(load.failures)} failed of {load.completed()}")
        # Before the redeploy: both nodes' instances answered, neither starved.
        self.assertEqual(set(balanced) & first, first, balanced)
        total = sum(balanced[i] for i in first)
        for i in first:
            self.assertGreater(balanced[i] / total, 0.25, balanced)
        status, app = self.api("GET", "/api/v1/apps/cart")
        second = {str(i["instance_id"]) for i in app["serving"]["instances"]}
        self.assertEqual(len(second), 2)
        self.assertFalse(second & first, "both nodes were replaced")
        self.assertTrue(second <= set(load.instances), (second, load.instances))
        for node in ("alpha", "beta"):
            status, body = self.get_from(node, "cart", "/")
            self.assertEqual(status, 200, body)
        # --nodes overrides the manifest, every time (the placement travels with the queue entry).
        for _ in range(2):
            d = self.deploy("cart", nodes=["alpha"])
            self.assertEqual(d["status"], "succeeded", d)
            status, app = self.api("GET", "/api/v1/apps/cart")
            self.assertEqual([i["node"] for i in app["serving"]["instances"]], ["alpha"], app)
        d = self.deploy("cart", nodes=["nobody"])
        self.assertEqual(d["status"], "failed", d)
        self.assertIn("no connected node carries the labels [nobody]", d["error"])
        status, body = self.api("POST", "/api/v1/apps/cart/deployments", {"nodes": ["a\u0000b"]})
        self.assertEqual(status, 400, body)

    def test_2b_one_by_one_runs_a_node_after_the_other_and_a_failure_spares_the_rest(self):
        text = manifest(["web"]).replace("app: hello", "app: till")
        one_by_one = text.replace("deploy:\n", "deploy:\n  strategy: one-by-one\n", 1)
        self.create_app("till", one_by_one)
        d = self.deploy("till")
        self.assertEqual(d["status"], "succeeded", d)
        builds = [e["text"] for e in self.events(d["id"]) if e["stage"] == "build" and "$ cc" in e["text"]]
        self.assertEqual([t.split("]")[0] for t in builds], ["[alpha", "[beta"], builds)
        # Broken on the first node: the second one never builds.
        broken = one_by_one.replace("build:\n", "build:\n  - exit 3\n", 1)
        self.repo.commit_version("v2-till", manifest=broken)
        d = self.deploy("till")
        self.assertEqual(d["status"], "failed", d)
        self.assertIn("node alpha", d["error"])
        self.assertFalse(any(e["text"].startswith("[beta]") for e in self.events(d["id"]) if e["stage"] == "build"))
        status, body = self.get_from("alpha", "till", "/")
        self.assertEqual(status, 200, body)

    def test_3_agent_killed_during_a_build_fails_with_node_lost(self):
        self.create_app("kiln", manifest(["alpha"], build=[SLOW_BUILD]))
        d = self.deploy("kiln", wait=False)
        self.wait_event(d["id"], "tick 3")
        killed_at = time.time()
        self.agents["alpha"].send_signal(signal.SIGKILL)
        self.agents["alpha"].wait(5)
        d = self.wait_deployment(d["id"], timeout=60)
        self.assertEqual(d["status"], "failed", d)
        self.assertIn("node alpha lost", d["error"])
        self.assertLess(time.time() - killed_at, 20 + 15, "failed within the lease (and a margin)")
        self.assertEqual(self.node_states()["alpha"], "down")
        status, running = self.api("GET", "/api/v1/deployments?status=running")
        self.assertEqual(status, 200)
        self.assertEqual([x for x in running.get("deployments", running) if x.get("app") == "kiln"], [])
        self.start_agent("alpha")
        self.wait_nodes_up("alpha")

    def test_4_partition_mid_deployment_loses_and_doubles_no_event(self):
        self.create_app("tide", manifest(["beta"], build=[SLOW_BUILD]))
        d = self.deploy("tide", wait=False)
        self.wait_event(d["id"], "tick 2")
        self.hosts.partition("beta")
        time.sleep(10)
        self.hosts.heal("beta")
        d = self.wait_deployment(d["id"], timeout=120)
        self.assertIn(d["status"], ("succeeded", "failed"), d)
        ticks = [e["text"] for e in self.events(d["id"]) if e["text"].startswith("tick ")]
        self.assertEqual(ticks, [f"tick {i}" for i in range(1, 25)], "every line once, in order")
        self.assertEqual(d["status"], "succeeded", d)
        self.wait_nodes_up("beta")

    def test_5_control_plane_killed_mid_deployment(self):
        cls = type(self)
        self.create_app("mill", manifest(["beta"]))
        self.assertEqual(self.deploy("mill")["status"], "succeeded")
        self.repo.commit_version("v2-mill", manifest=manifest(["beta"], build=[SLOW_BUILD]).replace(
            "app: hello", "app: mill"))
        d = self.deploy("mill", wait=False)
        self.wait_event(d["id"], "tick 2")
        cls.server.send_signal(signal.SIGKILL)
        cls.server.wait(10)
        cls.start_server()
        self.wait_nodes_up("alpha", "beta", timeout=60)  # they redial by themselves
        d = self.wait_deployment(d["id"], timeout=60)
        self.assertEqual(d["status"], "failed", d)
        self.assertIn("restart", d["error"])
        status, body = self.get_from("alpha", "mill")
        self.assertEqual(status, 200, body)
        self.assertIn(b"v1-mill", body)

    def test_6_wrong_expired_and_revoked_tokens_are_refused_and_audited(self):
        expired = self.enrollment_token("--expires", "1s")
        revoked = self.cli("nodes", "token", "create", "--json")
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        revoked = json.loads(revoked.stdout)
        self.assertEqual(self.api("DELETE", f"/api/v1/tokens/{revoked['name']}")[0], 200)
        time.sleep(1.5)
        for label, token in (("wrong", "slw_" + "0" * 40), ("expired", expired), ("revoked", revoked["token"])):
            proc = self.hosts.popen("alpha", [SLIPWAY, "agent", "--server", f"ws://{self.cp}:3452/ws/agent",
                                              "--token", token, "--name", "intruder", "--data",
                                              os.path.join(self.tmp, "intruder")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 2, (label, err))
            self.assertIn(b"refused", err, label)
            self.assertNotIn(token.encode(), out + err, label)
        self.assertNotIn("intruder", self.node_states())
        status, audit = self.api("GET", "/api/v1/audit?limit=200")
        self.assertEqual(status, 200, audit)
        denied = [e for e in audit["audit"] if e["action"] == "node.connect" and e["outcome"].startswith("denied")]
        self.assertGreaterEqual(len(denied), 3, denied)
        text = json.dumps(audit)
        for token in (expired, revoked["token"]):
            self.assertNotIn(token, text)


    def test_7_a_name_stays_with_its_token_and_revoking_cuts_the_agent_off(self):
        other = self.enrollment_token()
        impostor = self.hosts.popen("alpha", [SLIPWAY, "agent", "--server", f"ws://{self.cp}:3452/ws/agent",
                                              "--name", "beta", "--data", os.path.join(self.tmp, "impostor")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=dict(os.environ, SLIPWAY_AGENT_TOKEN=other))
        _, err = impostor.communicate(timeout=30)
        self.assertEqual(impostor.returncode, 2, err)
        self.assertIn(b"enrolled with another token", err)
        self.assertTrue(self.node_states()["beta"].startswith("up"), "the real beta stays")
        out = self.cli("nodes", "token", "create", "--json")
        gamma_token = json.loads(out.stdout)
        gamma = self.hosts.popen("alpha", [SLIPWAY, "agent", "--server", f"ws://{self.cp}:3452/ws/agent",
                                           "--name", "gamma", "--data", os.path.join(self.tmp, "gamma")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(os.environ, SLIPWAY_AGENT_TOKEN=gamma_token["token"]))
        self.wait_nodes_up("gamma")
        self.assertEqual(self.api("DELETE", f"/api/v1/tokens/{gamma_token['name']}")[0], 200)
        _, err = gamma.communicate(timeout=30)
        self.assertEqual(gamma.returncode, 2, err)
        self.assertIn(b"revoked", err)
        self.assertEqual(self.node_states()["gamma"], "down")


if __name__ == "__main__":
    unittest.main()
