"""A server SIGKILLed mid-deployment and started again: every deployment ends in a true
state, the last good release serves without a rebuild, and no orphan process is left."""
import os
import signal
import unittest

from harness import SlipwayTestCase, default_manifest, processes_with_marker, wait_until


def stage_started(server, deployment_id, stage):
    return any(e["stage"] == stage and e["state"] == "started" for e in server.events(deployment_id))


class Restart(SlipwayTestCase):
    def setUp(self):
        super().setUp()
        self.create_app()
        v1 = self.repo.commit_version("v1")
        self.assertEqual(self.deploy_by_push(v1)["status"], "succeeded")
        self.v1_pids = processes_with_marker(self.server.data)
        self.assertEqual(len(self.v1_pids), 1)

    def restart(self):
        self.server.kill()
        self.server.start()

    def assert_v1_serves_alone(self):
        self.assertEqual(self.server.serving_version(), "v1")
        wait_until(lambda: processes_with_marker(self.server.data) == self.v1_pids, timeout=10,
                   what="only the v1 instance left")

    def test_killed_during_build(self):
        sha = self.repo.commit_version("v2", default_manifest().replace(
            "build:\n", "build:\n  - echo building; sleep 60\n"))
        status, res = self.push_webhook(sha)
        self.assertEqual(status, 202)
        wait_until(lambda: stage_started(self.server, res["deployment_id"], "build"), what="build to start")
        wait_until(lambda: len(processes_with_marker(self.server.data)) > 1, what="build step running")
        self.restart()
        d = self.server.wait_deployment(res["deployment_id"], timeout=5)
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["stage"], "build")
        self.assertIn("interrupted", d["error"])
        self.assert_v1_serves_alone()

    def test_killed_during_verify_of_a_started_instance(self):
        sha = self.repo.commit_version("v2", default_manifest(env={"HEALTH_FAIL": "1"}, health_timeout="60s"))
        status, res = self.push_webhook(sha)
        wait_until(lambda: stage_started(self.server, res["deployment_id"], "verify"), what="verify to start")
        self.assertEqual(len(processes_with_marker(self.server.data)), 2)
        self.restart()
        d = self.server.wait_deployment(res["deployment_id"], timeout=5)
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["stage"], "verify")
        self.assert_v1_serves_alone()

    def test_serving_instance_gone_too_restarts_release_without_rebuild(self):
        self.server.kill()
        for pid in self.v1_pids:
            os.kill(pid, signal.SIGKILL)
        self.server.start()
        self.assertEqual(self.server.serving_version(), "v1")
        status, deployments = self.server.api("GET", "/api/v1/deployments")
        self.assertEqual(len(deployments["deployments"]), 1, "no new deployment, no rebuild")
        status, releases = self.server.api("GET", "/api/v1/apps/hello/releases")
        self.assertEqual(len(releases["releases"]), 1)
        self.assertEqual(len(processes_with_marker(self.server.data)), 1)

    def test_next_deployment_after_restart_succeeds(self):
        self.restart()
        v2 = self.repo.commit_version("v2")
        d = self.deploy_by_push(v2)
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.serving_version(), "v2")
        wait_until(lambda: len(processes_with_marker(self.server.data)) == 1, what="v1 drained")


if __name__ == "__main__":
    unittest.main()
