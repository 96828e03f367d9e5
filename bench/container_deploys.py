#!/usr/bin/env python3
"""Container and swarm deploys against a real dockerd.

1. N back-to-back container deploys under continuous load through the gateway: failed
   requests, and per deploy the orchestration overhead = webhook → new version serving,
   minus build/test steps, image build and the container's start-to-healthy time.
2. The floor: a bare Engine API create + start of the same image to its first HTTP 200,
   measured in the same run (what `docker run` + a curl loop would cost).
3. Swarm: time from the service update to convergence (2 replicas, start-first).
Usage: bench/container_deploys.py [deploys]
"""
import json
import os
import statistics
import sys
import time

import common

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import dockerd  # noqa: E402
from test_container import DOCKERFILE, MAKE_TAR, container_manifest  # noqa: E402
from test_swarm import swarm_manifest  # noqa: E402

H = common.harness
count = int(sys.argv[1]) if len(sys.argv) > 1 else 50


def times(events):
    t = {}
    for e in events:
        t.setdefault((e["stage"], e["state"]), e["ts_ms"])
    return t


def span(t, stage, end_stage=None):
    return t[(end_stage or stage, "succeeded")] - t[(stage, "started")]


def bare_run_ms(image):
    port = H.free_port()
    t0 = time.perf_counter()
    status, c = dockerd.api("POST", "/containers/create", {
        "Image": image, "Env": ["PORT=8080"], "ExposedPorts": {"8080/tcp": {}},
        "HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}, "Init": True}})
    dockerd.api("POST", f"/containers/{c['Id']}/start")
    H.wait_until(lambda: H.http_call(port, "GET", "/health", timeout=1)[0] == 200, interval=0.002, timeout=30)
    ms = (time.perf_counter() - t0) * 1000
    dockerd.api("DELETE", f"/containers/{c['Id']}?force=1")
    return ms


def deploy(server, repo, version, manifest):
    sha = repo.commit_version(version, manifest, {"Dockerfile": DOCKERFILE, "make-image-tar.sh": MAKE_TAR})
    body = H.gitea_push_body(sha)
    sent = common.now_ms()
    status, raw, _ = H.http_call(server.api_port, "POST", "/hooks/gitea/hello", body, H.gitea_headers(body, "bench-secret"))
    d = server.wait_deployment(json.loads(raw)["deployment_id"], timeout=180)
    assert d["status"] == "succeeded", d
    return sent, d, times(server.events(d["id"]))


started_daemon = dockerd.start()
results = {}
manifest = container_manifest(watch="300ms")
tmp, repo, server = common.deployed_server(None)
try:
    server.api("DELETE", "/api/v1/apps/hello")
    server.api("POST", "/api/v1/apps", {"name": "hello", "repo": repo.url, "branch": "main", "secret": "bench-secret"})
    deploy(server, repo, "v1", manifest)
    overheads, totals, images, starts = [], [], [], []
    with H.LoadLoop(server.gw_port, threads=4, max_seconds=count * 20 + 60, max_requests=50_000_000) as load:
        H.wait_until(lambda: load.count > 100, what="load")
        for i in range(count):
            sent, d, t = deploy(server, repo, f"v{i + 2}", manifest)
            serving = t[("switch", "succeeded")]
            image = t[("release", "succeeded")] - t[("release", "started")]
            start = t[("verify", "succeeded")] - t[("start", "started")]
            work = span(t, "build") + span(t, "test") + image + start
            totals.append(serving - sent)
            images.append(image)
            starts.append(start)
            overheads.append(serving - sent - work)
        requests = load.count
        # The floor is measured under the same load as the deploys.
        status, app = server.api("GET", "/api/v1/apps/hello")
        tag = f"slipway/hello:{app['release']['number']}-{app['release']['commit'][:7]}"
        floor = statistics.median(bare_run_ms(tag) for _ in range(10))
    results["container"] = {
        "deploys": count, "requests_during_deploys": requests, "failed_requests": len(load.failures),
        "failure_samples": load.failures[:5],
        "webhook_to_serving_ms_median": statistics.median(totals),
        "image_build_ms_median": statistics.median(images),
        "container_start_to_healthy_ms_median": statistics.median(starts),
        "bare_create_start_to_200_ms_median": round(floor, 1),
        "orchestration_overhead_ms_median": statistics.median(overheads),
    }
    # Swarm: convergence time of a start-first update of 2 replicas.
    joined = dockerd.ensure_swarm()
    try:
        server.api("DELETE", "/api/v1/apps/hello")
        server.api("POST", "/api/v1/apps", {"name": "hello", "repo": repo.url, "branch": "main", "secret": "bench-secret"})
        deploy(server, repo, "s1", swarm_manifest())
        converge = []
        for i in range(5):
            sent, d, t = deploy(server, repo, f"s{i + 2}", swarm_manifest())
            converge.append(t[("verify", "succeeded")] - t[("start", "started")])
        results["swarm"] = {"updates": len(converge), "update_to_converged_ms_median": statistics.median(converge),
                            "replicas": 2, "monitor": "1s", "order": "start-first"}
        dockerd.api("DELETE", "/services/slipway-hello")
    finally:
        if joined:
            dockerd.leave_swarm()
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "containers.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
finally:
    common.teardown(tmp, repo, server)
    for c in dockerd.containers(f"slipway.home={os.path.realpath(server.data)}"):
        dockerd.api("DELETE", f"/containers/{c['Id']}?force=1")
