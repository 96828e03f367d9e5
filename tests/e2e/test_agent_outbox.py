"""The agent's outbox on disk, end to end: a `slipway server` and one `slipway agent` on
loopback; the agent is killed with SIGKILL while a build step prints lines, and started again
on the same --data before the op lease runs out. The op that was running must not run again,
the deployment must end in a true state (failed: interrupted, or node lost), and the build log
must hold every line it stored once, in order, without a gap. Every wait is bounded in time."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import ADMIN_TOKEN, SLIPWAY, GitRepo, default_manifest, wait_until

LINES = 80
SLOW_BUILD = f"for i in $(seq 1 {LINES}); do echo tick $i; sleep 0.1; done"


def manifest(app):
    text = default_manifest(watch="1s").replace("app: hello", f"app: {app}")
    text = text.replace("build:\n", "build:\n" + f"  - {json.dumps(SLOW_BUILD)}\n", 1)
    return "nodes: [solo]\n" + text


class AgentOutboxTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="slw-outbox-")
        self.data = os.path.join(self.tmp, "solo-data")
        self.repo = GitRepo(os.path.join(self.tmp, "git"))
        # A long lease: a deployment that fails fast failed because of the restart, not the lease.
        self.server = harness.Server(os.path.join(self.tmp, "cp-data"), extra_args=["--node-lease", "60s"])
        self.server.start()
        out = self.server.cli("nodes", "token", "create", "--json", timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.token = json.loads(out.stdout)["token"]
        self.agent = None
        self.log = open(os.path.join(self.tmp, "solo.log"), "ab")

    def tearDown(self):
        if self.agent and self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait(10)
        self.server.stop()
        for d in (self.data, self.server.data):
            harness.kill_marked_processes(d)
        self.repo.close()
        self.log.close()
        if not os.environ.get("SLW_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_agent(self):
        self.agent = subprocess.Popen(
            [SLIPWAY, "agent", "--server", f"ws://127.0.0.1:{self.server.api_port}/ws/agent", "--name", "solo",
             "--labels", "solo", "--data", self.data],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SLIPWAY_AGENT_TOKEN=self.token))

    def node_state(self):
        out = self.server.cli("nodes", "list", "--json", timeout=30)
        data = json.loads(out.stdout)
        rows = data["nodes"] if isinstance(data, dict) else data
        return {n["name"]: n["state"] for n in rows}.get("solo", "")

    def outbox_files(self):
        box = os.path.join(self.data, "outbox")
        return sorted(f for f in os.listdir(box) if f.endswith(".op")) if os.path.isdir(box) else []

    def events(self, deployment_id):
        return self.server.events(deployment_id)

    def test_agent_killed_mid_build_and_restarted_runs_nothing_twice(self):
        self.start_agent()
        wait_until(lambda: self.node_state().startswith("up"), timeout=30, interval=0.2, what="solo up")
        self.repo.commit_version("v1-kiln", manifest=manifest("kiln"))
        status, body = self.server.api("POST", "/api/v1/apps", {
            "name": "kiln", "repo": self.repo.bare, "branch": "main", "secret": "s3cret-kiln-0123456789"})
        self.assertEqual(status, 201, body)
        status, d = self.server.api("POST", "/api/v1/apps/kiln/deployments", {})
        self.assertEqual(status, 201, d)
        wait_until(lambda: any(e["text"] == "tick 5" for e in self.events(d["id"])), timeout=60, interval=0.1,
                   what="tick 5 stored")

        self.agent.send_signal(signal.SIGKILL)
        self.agent.wait(10)
        self.assertTrue(self.outbox_files(), "the killed agent left its running op on disk")
        harness.kill_marked_processes(self.data)  # the orphaned build step, as a reboot would
        self.start_agent()

        started = time.time()
        d = self.server.wait_deployment(d["id"], timeout=90)
        self.assertEqual(d["status"], "failed", d)
        error = d.get("error") or ""
        self.assertTrue("interrupted" in error or "node solo lost" in error, error)
        if "interrupted" in error:
            self.assertLess(time.time() - started, 45, "failed by the restart, well before the 60 s lease")

        events = self.events(d["id"])
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(set(seqs)), "event seqs strictly increase")
        ticks = [e["text"] for e in events if e["text"].startswith("tick ")]
        self.assertTrue(ticks, "some ticks were stored")
        self.assertEqual(ticks, [f"tick {i}" for i in range(1, len(ticks) + 1)],
                         "each tick once, in order, no gap: the step did not start over")
        self.assertLess(len(ticks), LINES, "the step did not run to its end")
        # Acked after the restart, the op's file goes away.
        wait_until(lambda: self.outbox_files() == [], timeout=30, interval=0.2, what="the outbox drained")
        self.assertTrue(self.agent.poll() is None, "the restarted agent keeps running")


if __name__ == "__main__":
    unittest.main()
