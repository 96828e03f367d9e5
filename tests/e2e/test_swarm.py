"""Swarm runtime against a real single-node swarm on loopback: a 2-replica service, a
start-first update under load with no failed request, and an update whose health fails,
which Swarm rolls back by itself."""
import os
import unittest

import dockerd
from harness import LoadLoop, SlipwayTestCase, wait_until
from test_container import DOCKERFILE, MAKE_TAR


def swarm_manifest(env=None):
    lines = ["app: hello", "build:", '  - "cc -static -O2 -o server server.c -lpthread"', '  - "sh make-image-tar.sh image.tar"',
             "run:", "  runtime: swarm", "  image_tar: image.tar", "  port: 8080", "  replicas: 2",
             '  healthcheck: ["/server", "--probe"]', "  update: {parallelism: 1, monitor: 1s, order: start-first}",
             "health:", "  path: /health", "  timeout: 20s", "deploy:", "  watch_window: 1s"]
    if env:
        lines.append("env:")
        lines += [f'  {k}: "{v}"' for k, v in env.items()]
    return "\n".join(lines) + "\n"


class SwarmRuntime(SlipwayTestCase):
    @classmethod
    def setUpClass(cls):
        dockerd.start()
        cls.joined = dockerd.ensure_swarm()

    @classmethod
    def tearDownClass(cls):
        if cls.joined:
            dockerd.leave_swarm()

    def setUp(self):
        super().setUp()
        self.create_app()

    def tearDown(self):
        dockerd.api("DELETE", "/services/slipway-hello")
        super().tearDown()

    def commit(self, version, manifest):
        return self.repo.commit_version(version, manifest, {"Dockerfile": DOCKERFILE, "make-image-tar.sh": MAKE_TAR})

    def tasks(self):
        status, tasks = dockerd.api("GET", '/tasks?filters={"service":["slipway-hello"],"desired-state":["running"]}')
        return tasks

    def test_start_first_update_under_load_and_swarm_rollback(self):
        d = self.deploy_by_push(self.commit("v1", swarm_manifest()))
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.serving_version(), "v1")
        self.assertEqual(len(self.tasks()), 2)
        events = [e["text"] for e in self.server.events(d["id"])]
        self.assertTrue(any(" running (desired running)" in t for t in events), "task states are events")

        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 200, what="load")
            d2 = self.deploy_by_push(self.commit("v2", swarm_manifest()))
            wait_until(lambda: all(s and s[-1] == "v2" for s in load.sequences), what="load on v2")
        self.assertEqual(d2["status"], "succeeded", d2)
        self.assertEqual(load.failures, [], f"{len(load.failures)} failed of {load.count}")
        status, svc = dockerd.api("GET", "/services/slipway-hello")
        update = svc["Spec"]["UpdateConfig"]
        self.assertEqual((update["Order"], update["FailureAction"]), ("start-first", "rollback"))
        self.assertEqual(svc["Spec"]["Mode"]["Replicated"]["Replicas"], 2)

        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 100, what="load")
            d3 = self.deploy_by_push(self.commit("v3", swarm_manifest(env={"HEALTH_FAIL": "1"})))
        self.assertEqual(d3["status"], "rolled_back", d3)
        self.assertIn("rolled the update back", d3["error"])
        self.assertEqual(load.failures, [])
        self.assertEqual(self.server.serving_version(), "v2")
        images = {t["Spec"]["ContainerSpec"]["Image"].rsplit(":", 1)[1][:1] for t in self.tasks()}
        self.assertEqual(images, {"2"}, "every running task is release 2 again")


if __name__ == "__main__":
    unittest.main()
