#!/usr/bin/env python3
"""Back-to-back deploys under continuous load through the gateway, plus the orchestration
overhead of each deploy, rollback time and server memory.

For every deploy: webhook POSTed → new version serving (switch event). Overhead = that time
minus the build and test stages minus the new instance's start-to-healthy time (the work the
app itself needs). The floor for start-to-healthy is a bare fork/exec of the same binary to its
first HTTP 200, measured in the same run.
Usage: bench/deploys_under_load.py [deploys]
"""
import json
import os
import statistics
import subprocess
import sys
import time

import common

H = common.harness
count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
manifest = H.default_manifest(watch="300ms")
tmp, repo, server = common.deployed_server(manifest)


def stage_times(events):
    t = {}
    for e in events:
        t.setdefault((e["stage"], e["state"]), e["ts_ms"])
    return t


def bare_start_ms(release_dir):
    """fork/exec of the app binary → first HTTP 200, the floor for 'start'."""
    port = H.free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen(["./server"], cwd=release_dir, env=dict(os.environ, PORT=str(port)),
                         stdout=subprocess.DEVNULL)
    H.wait_until(lambda: H.http_call(port, "GET", "/health")[0] == 200, interval=0.001)
    ms = (time.perf_counter() - t0) * 1000
    p.terminate()
    p.wait()
    return ms


try:
    idle_rss = common.rss_kib(server.proc.pid)
    overheads, totals, starts, fetches = [], [], [], []
    with H.LoadLoop(server.gw_port, threads=4, max_seconds=count * 8 + 60, max_requests=50_000_000) as load:
        H.wait_until(lambda: load.count > 100, what="load")
        for i in range(count):
            sha = repo.commit_version(f"v{i + 2}", manifest)
            body = H.gitea_push_body(sha)
            sent = common.now_ms()
            status, raw, _ = H.http_call(server.api_port, "POST", "/hooks/gitea/hello", body,
                                         H.gitea_headers(body, "bench-secret"))
            dep = json.loads(raw)["deployment_id"]
            d = server.wait_deployment(dep, timeout=120)
            assert d["status"] == "succeeded", d
            t = stage_times(server.events(dep))
            serving = t[("switch", "succeeded")]
            work = (t[("build", "succeeded")] - t[("build", "started")]) + \
                   (t[("test", "succeeded")] - t[("test", "started")]) + \
                   (t[("verify", "succeeded")] - t[("start", "started")])
            totals.append(serving - sent)
            starts.append(t[("verify", "succeeded")] - t[("start", "started")])
            fetches.append(t[("fetch", "succeeded")] - t[("fetch", "started")])
            overheads.append(serving - sent - work)
        requests = load.count
        assert not load.stop_flag.is_set() and load.count < load.max_per_thread * load.threads, "load ran out early"
        # The floor is measured under the same load as the deploys.
        status, rel = server.api("GET", "/api/v1/apps/hello/releases")
        release_dir = [r["path"] for r in rel["releases"] if r["current"]][0]
        floor = statistics.median(bare_start_ms(release_dir) for _ in range(20))
    failures = len(load.failures)
    # Rollback: POST → previous release serving.
    rollbacks = []
    for _ in range(5):
        t0 = common.now_ms()
        status, rel = server.api("GET", "/api/v1/apps/hello/releases")
        other = [r["number"] for r in rel["releases"] if not r["current"]][0]
        status, d = server.api("POST", "/api/v1/apps/hello/rollback", {"release": other})
        assert status == 201, d
        d = server.wait_deployment(d["id"])
        assert d["status"] == "succeeded", d
        rollbacks.append(stage_times(server.events(d["id"]))[("switch", "succeeded")] - t0)
    results = {
        "deploys": count,
        "requests_during_deploys": requests,
        "failed_requests": failures,
        "failure_samples": load.failures[:5],
        "webhook_to_serving_ms_median": statistics.median(totals),
        "orchestration_overhead_ms_median": statistics.median(overheads),
        "orchestration_overhead_ms_p90": sorted(overheads)[int(len(overheads) * 0.9) - 1],
        "git_fetch_ms_median": statistics.median(fetches),
        "instance_start_to_healthy_ms_median": statistics.median(starts),
        "bare_process_start_to_200_ms_median": round(floor, 2),
        "rollback_to_serving_ms_median": statistics.median(rollbacks),
        "server_rss_kib_idle_one_app": idle_rss,
        "server_rss_kib_after": common.rss_kib(server.proc.pid),
    }
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "deploys.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
finally:
    common.teardown(tmp, repo, server)
