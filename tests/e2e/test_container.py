"""Container runtime against a real dockerd: v1 → v2 with zero failed requests, broken images
that never take traffic, the offline image-tarball path, and a daemon that goes away in the
middle of a deployment."""
import os
import threading
import time
import unittest

import dockerd
from harness import LoadLoop, SlipwayTestCase, processes_with_marker, wait_until


def container_manifest(source="dockerfile: Dockerfile", env=None, build=None, watch="2s", health_timeout="10s"):
    lines = ["app: hello", "build:"]
    for step in build or ["cc -static -O2 -o server server.c -lpthread"]:
        lines.append(f"  - {step!r}".replace("'", '"'))
    lines += ["run:", "  runtime: container", f"  {source}", "  port: 8080", "  memory: 64MiB",
              "health:", "  path: /health", f"  timeout: {health_timeout}",
              "deploy:", f"  watch_window: {watch}", "  drain_timeout: 10s"]
    if env:
        lines.append("env:")
        lines += [f'  {k}: "{v}"' for k, v in env.items()]
    return "\n".join(lines) + "\n"


def read(path):
    with open(path) as f:
        return f.read()


EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "hello")
DOCKERFILE = read(os.path.join(EXAMPLE, "Dockerfile"))
MAKE_TAR = read(os.path.join(EXAMPLE, "make-image-tar.sh"))


class ContainerRuntime(SlipwayTestCase):
    @classmethod
    def setUpClass(cls):
        dockerd.start()

    def setUp(self):
        super().setUp()
        self.create_app()

    def tearDown(self):
        for c in dockerd.containers(f"slipway.home={os.path.realpath(self.server.data)}"):
            dockerd.api("DELETE", f"/containers/{c['Id']}?force=1")
        super().tearDown()

    def commit(self, version, manifest):
        return self.repo.commit_version(version, manifest, {"Dockerfile": DOCKERFILE, "make-image-tar.sh": MAKE_TAR})

    def my_containers(self):
        return dockerd.containers(f"slipway.home={os.path.realpath(self.server.data)}")

    def test_v1_to_v2_under_load_then_broken_images_never_serve(self):
        d = self.deploy_by_push(self.commit("v1", container_manifest()))
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.serving_version(), "v1")
        v2 = self.commit("v2", container_manifest())
        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 200, what="load")
            d = self.deploy_by_push(v2)
            wait_until(lambda: all(s and s[-1] == "v2" for s in load.sequences), what="load on v2")
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(load.failures, [], f"{len(load.failures)} failed of {load.count}")
        for seq in load.sequences:
            self.assertEqual(seq, ["v1", "v2"])
        mine = self.my_containers()
        self.assertEqual(len(mine), 1, "the v1 container is gone")
        status, info = dockerd.api("GET", f"/containers/{mine[0]['Id']}/json")
        labels = info["Config"]["Labels"]
        self.assertEqual(labels["slipway.app"], "hello")
        self.assertEqual(labels["slipway.release"], "2")
        self.assertEqual(labels["slipway.deployment"], str(d["id"]))
        self.assertEqual(info["Name"], "/slipway-hello-2")
        binding = info["HostConfig"]["PortBindings"]["8080/tcp"][0]
        self.assertEqual(binding["HostIp"], "127.0.0.1")
        self.assertEqual(info["HostConfig"]["Memory"], 64 << 20)

        # v3 exits at once; v4 never gets healthy. Neither takes traffic nor stays behind.
        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 100, what="load")
            d3 = self.deploy_by_push(self.commit("v3", container_manifest(env={"CRASH": "1"})))
            d4 = self.deploy_by_push(self.commit("v4", container_manifest(env={"HEALTH_FAIL": "1"}, health_timeout="2s")))
        self.assertEqual((d3["status"], d3["stage"]), ("failed", "verify"), d3)
        self.assertIn("exited", d3["error"])
        logs = [e["text"] for e in self.server.events(d3["id"]) if e["state"] == "log"]
        self.assertTrue(any("crashing on purpose" in l for l in logs), "the container's output is in the events")
        self.assertEqual((d4["status"], d4["stage"]), ("failed", "verify"), d4)
        self.assertEqual(load.failures, [])
        self.assertEqual(self.server.serving_version(), "v2")
        names = [c["Names"][0] for c in self.my_containers()]
        self.assertEqual(names, ["/slipway-hello-2"])

    def test_offline_image_tarball_from_the_build_step(self):
        manifest = container_manifest(source="image_tar: image.tar",
                                      build=["cc -static -O2 -o server server.c -lpthread", "sh make-image-tar.sh image.tar"])
        d = self.deploy_by_push(self.commit("v1", manifest))
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.serving_version(), "v1")
        texts = [e["text"] for e in self.server.events(d["id"])]
        self.assertTrue(any("Loaded image: hello:v1" in t for t in texts), texts)
        status, img = dockerd.api("GET", "/images/slipway%2Fhello:1-" + d["commit"][:7] + "/json")
        self.assertEqual(status, 200)

    def test_manual_rollback_restarts_the_retained_image(self):
        self.assertEqual(self.deploy_by_push(self.commit("v1", container_manifest()))["status"], "succeeded")
        self.assertEqual(self.deploy_by_push(self.commit("v2", container_manifest()))["status"], "succeeded")
        out = self.server.cli("rollback", "hello")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(self.server.serving_version(), "v1")
        self.assertEqual([c["Names"][0] for c in self.my_containers()], ["/slipway-hello-1"])

    def test_restart_stop_and_start_the_current_container(self):
        self.assertEqual(self.deploy_by_push(self.commit("v1", container_manifest()))["status"], "succeeded")
        before = [c["Id"] for c in self.my_containers()]
        with LoadLoop(self.server.gw_port) as load:
            wait_until(lambda: load.count > 100, what="load")
            out = self.server.cli("restart", "hello")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(load.failures, [], "a restart is a zero-downtime replacement")
        after = [c["Id"] for c in self.my_containers()]
        self.assertEqual(len(after), 1)
        self.assertNotEqual(after, before)
        out = self.server.cli("stop", "hello")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.server.gateway_get("/")[0], 503)
        self.assertEqual(self.my_containers(), [])
        out = self.server.cli("stop", "hello")
        self.assertEqual(out.returncode, 2)
        self.assertIn("not running", out.stderr)
        self.server.kill()  # a stopped app stays stopped across a server restart
        self.server.start()
        self.assertEqual(self.server.gateway_get("/")[0], 503)
        out = self.server.cli("start", "hello")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(self.server.serving_version(), "v1")
        self.assertEqual(len(self.my_containers()), 1)

    def test_orphan_containers_are_reaped_at_start_and_missing_images_are_clear(self):
        d = self.deploy_by_push(self.commit("v1", container_manifest()))
        self.assertEqual(d["status"], "succeeded", d)
        home = os.path.realpath(self.server.data)
        tag = "slipway/hello:1-" + d["commit"][:7]
        status, stray = dockerd.api("POST", "/containers/create?name=slipway-hello-stray",
                                    {"Image": tag, "Labels": {"slipway.home": home, "slipway.app": "hello"}})
        self.assertEqual(status, 201, stray)
        self.server.kill()
        self.server.start()
        names = [c["Names"][0] for c in self.my_containers()]
        self.assertEqual(names, ["/slipway-hello-1"], "the stray is gone, the serving container adopted")
        status, info = dockerd.api("GET", "/containers/slipway-hello-1/json")
        self.assertEqual(info["RestartCount"], 0, "adopted, not killed and revived by its restart policy")
        self.assertEqual(self.server.serving_version(), "v1")
        d = self.deploy_by_push(self.commit("v2", container_manifest(source="image: no-such-image:latest")))
        self.assertEqual((d["status"], d["stage"]), ("failed", "release"), d)
        self.assertIn("no-such-image:latest", d["error"])
        self.assertIn("not on this node", d["error"])
        self.assertEqual(self.server.serving_version(), "v1")

    def test_daemon_stopped_mid_deployment_fails_clearly_then_recovers(self):
        if not dockerd.started_here():
            self.skipTest("dockerd was started outside this test; it is not ours to stop")
        self.assertEqual(self.deploy_by_push(self.commit("v1", container_manifest()))["status"], "succeeded")
        slow = container_manifest(build=["cc -static -O2 -o server server.c -lpthread", "sleep 3"])
        status, res = self.push_webhook(self.commit("v2", slow))
        wait_until(lambda: any(e["stage"] == "build" and e["text"] == "$ sleep 3" for e in self.server.events(res["deployment_id"])),
                   what="build step running")
        dockerd.stop()
        d = self.server.wait_deployment(res["deployment_id"])
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["stage"], "release")
        self.assertIn("Docker daemon is not reachable", d["error"])
        status, rel = self.server.api("GET", "/api/v1/apps/hello/releases")
        self.assertEqual([r["number"] for r in rel["releases"]], [1], "the half-made release is not offered")
        dockerd.restart()
        d = self.deploy_by_push(self.commit("v3", container_manifest()))
        self.assertEqual(d["status"], "succeeded", d)
        self.assertEqual(self.server.serving_version(), "v3")


if __name__ == "__main__":
    unittest.main()
