"""The deploy loop on one machine: signed webhook → pipeline → zero-downtime switch through
the gateway, failed verify, watch-window rollback, failing tests, manual rollback."""
import os
import time
import unittest

from harness import LoadLoop, SlipwayTestCase, default_manifest, processes_with_marker, wait_until


class DeployLoop(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.create_app()
        self.v1 = self.repo.commit_version("v1")
        d = self.deploy_by_push(self.v1)
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(d["commit"], self.v1)
        self.assertEqual(self.server.serving_version(), "v1")

    def test_push_of_v2_switches_with_no_failed_request(self):
        v2 = self.repo.commit_version("v2")
        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 200, what="load to warm up")
            d = self.deploy_by_push(v2)
            wait_until(lambda: all(s and s[-1] == "v2" for s in load.sequences), what="all load threads on v2")
            time.sleep(0.3)
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(load.failures, [], f"{len(load.failures)} failed requests of {load.count}")
        self.assertGreater(load.count, 500)
        for seq in load.sequences:
            self.assertEqual(seq, ["v1", "v2"], "each connection sees v1 then v2, once, never back")
        self.assertEqual(self.server.serving_version(), "v2")
        # The old instance is gone, only v2's runs.
        pids = processes_with_marker(self.server.data)
        self.assertEqual(len(pids), 1, pids)

    def test_failing_health_fails_at_verify_and_v1_keeps_serving(self):
        bad = self.repo.commit_version("v3-bad", default_manifest(env={"HEALTH_FAIL": "1"}, health_timeout="1s"))
        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 100, what="load")
            d = self.deploy_by_push(bad)
        self.assertEqual(d["status"], "failed", d)
        self.assertEqual(d["stage"], "verify")
        self.assertIn("/health", d["error"])
        self.assertEqual(load.failures, [])
        for seq in load.sequences:
            self.assertEqual(seq, ["v1"])
        self.assertEqual(self.server.serving_version(), "v1")
        self.assertEqual(len(processes_with_marker(self.server.data)), 1)

    def test_health_failing_inside_watch_window_rolls_back(self):
        flaky = self.repo.commit_version("v4-flaky", default_manifest(env={"HEALTH_FAIL_AFTER_MS": "1200"}, watch="4s"))
        d = self.deploy_by_push(flaky)
        self.assertEqual(d["status"], "rolled_back", d)
        self.assertIn("watch", d["error"])
        self.assertEqual(self.server.serving_version(), "v1")
        states = [(e["stage"], e["state"]) for e in self.server.events(d["id"])]
        self.assertIn(("switch", "succeeded"), states)
        self.assertIn(("watch", "failed"), states)
        wait_until(lambda: len(processes_with_marker(self.server.data)) == 1, what="flaky instance stopped")

    def test_failing_test_step_fails_at_test_and_starts_nothing(self):
        bad = self.repo.commit_version("v5", default_manifest(test_steps=["echo checking; exit 3"]))
        d = self.deploy_by_push(bad)
        self.assertEqual(d["status"], "failed", d)
        self.assertEqual(d["stage"], "test")
        self.assertIn("exited with 3", d["error"])
        events = self.server.events(d["id"])
        self.assertIn("checking", [e["text"] for e in events if e["state"] == "log"])
        self.assertNotIn("start", {e["stage"] for e in events})
        status, releases = self.server.api("GET", "/api/v1/apps/hello/releases")
        self.assertEqual([r["number"] for r in releases["releases"]], [1])
        self.assertEqual(self.server.serving_version(), "v1")

    def test_cli_rollback_serves_previous_release_without_rebuilding(self):
        v2 = self.repo.commit_version("v2")
        self.assertEqual(self.deploy_by_push(v2)["status"], "succeeded")
        self.assertEqual(self.server.serving_version(), "v2")
        out = self.server.cli("rollback", "hello")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("succeeded", out.stdout)
        self.assertEqual(self.server.serving_version(), "v1")
        status, deployments = self.server.api("GET", "/api/v1/apps/hello/deployments?limit=1")
        rollback = deployments["deployments"][0]
        self.assertEqual(rollback["type"], "rollback")
        stages = {e["stage"] for e in self.server.events(rollback["id"]) if e["state"] == "log"}
        self.assertNotIn("build", stages, "a rollback runs no build step")
        status, releases = self.server.api("GET", "/api/v1/apps/hello/releases")
        current = [r["number"] for r in releases["releases"] if r["current"]]
        self.assertEqual(current, [1])
        self.assertEqual(len(releases["releases"]), 2, "rollback created no new release")

    def test_cli_deploy_streams_stages_and_exit_codes(self):
        self.repo.commit_version("v6")
        out = self.server.cli("deploy", "hello")
        self.assertEqual(out.returncode, 0, out.stderr)
        for stage in ("fetch", "checkout", "build", "test", "release", "start", "verify", "switch", "drain"):
            self.assertIn(f"✓ {stage}", out.stdout)
        self.assertIn("self-test: version v6 ok", out.stdout)
        self.repo.commit_version("v7", default_manifest(test_steps=["exit 1"]))
        out = self.server.cli("deploy", "hello")
        self.assertEqual(out.returncode, 1, "a failed deployment exits 1")
        out = self.server.cli("deploy", "no-such-app")
        self.assertEqual(out.returncode, 2)
        self.assertIn("does not exist", out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
