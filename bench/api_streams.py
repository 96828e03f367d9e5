#!/usr/bin/env python3
"""/health and webhook latency while N server-sent-event clients follow a running deployment,
against the same probes with no stream open (same server, same run). Loopback only; bounded.
Usage: api_streams.py [N ...]   (default: 50 200)"""
import http.client
import json
import os
import sys
import time

import common

H = common.harness


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def probe(server, sha, repo_url):
    health, hooks = [], []
    for _ in range(200):
        t = time.perf_counter()
        assert H.http_call(server.api_port, "GET", "/health")[0] == 200
        health.append((time.perf_counter() - t) * 1000)
    for _ in range(20):
        body = H.gitea_push_body(sha, clone_url=repo_url)
        t = time.perf_counter()
        status, raw, _ = H.http_call(server.api_port, "POST", "/hooks/gitea/hello", body,
                                     H.gitea_headers(body, "bench-secret"))
        hooks.append((time.perf_counter() - t) * 1000)
        assert status == 202, raw
    return {"health_p50_ms": pct(health, 50), "health_p99_ms": pct(health, 99),
            "webhook_p50_ms": pct(hooks, 50), "webhook_max_ms": max(hooks)}


def open_streams(server, dep, n):
    conns = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", server.api_port, timeout=60)
        c.request("GET", f"/api/v1/deployments/{dep}/stream", headers=H.AUTH)
        assert c.getresponse().status == 200
        conns.append(c)
    return conns


def main():
    counts = [int(a) for a in sys.argv[1:]] or [50, 200]
    manifest = "\n".join(["app: hello", "build: [\"cc -O2 -o server server.c -lpthread\", \"sleep 600\"]",
                          "run: {command: ./server}", "deploy: {timeout: 20m}"]) + "\n"
    tmp, repo, server = common.deployed_server(None)
    results = {}
    try:
        sha = repo.commit_version("slow", manifest)
        status, res = server.api("POST", "/api/v1/apps/hello/deployments", {"ref": sha})
        dep = res["id"]
        H.wait_until(lambda: any(e["stage"] == "build" for e in server.events(dep)), what="build")
        results["0"] = probe(server, sha, repo.url)
        for n in counts:
            # Each round's webhooks queued deployments that supersede each other; the slow one runs.
            conns = open_streams(server, dep, n)
            try:
                results[str(n)] = probe(server, sha, repo.url)
            finally:
                for c in conns:
                    c.close()
        for n in counts:
            r, base = results[str(n)], results["0"]
            r["health_p99_ratio"] = r["health_p99_ms"] / base["health_p99_ms"]
        results["server_rss_kib"] = common.rss_kib(server.proc.pid)
        server.api("POST", f"/api/v1/deployments/{dep}/cancel")
    finally:
        common.teardown(tmp, repo, server)
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "api_streams.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
