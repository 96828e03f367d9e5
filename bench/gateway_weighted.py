#!/usr/bin/env python3
"""What weighted routing costs the gateway: a route with two weighted sides (90/10, as a
rollout's canary stage sets) against a route to a single target, with nginx proxying to one
upstream as the peer, in the same run.

One `slipway gateway` (--threads N) carries both routes, told apart by Host:
  single.test → upstream A
  split.test  → sides stable (weight 90) → A, canary (weight 10) → B
The upstreams are one nginx worker listening on two ports (A and B), each returning the same
100-byte body with an X-Upstream header naming the port, so both gateway routes load the same
upstream process the same way. The peer is nginx with N workers proxying to A through a
`keepalive 256` pool (as in bench/gateway_vs_nginx.py).

wrk -t2 --latency (as bench/gateway_vs_nginx.py), keep-alive, a 1 s warm-up then SECONDS per
run, the three in turn (the order rotating every round), ROUNDS rounds; the best round of each
is kept (wrk, the upstream and the proxy share the machine, so the best round is the least
disturbed one) and the median is shown too. CPU per request is the proxy's utime+stime over the
run divided by the requests served. Before the runs, 2,000 sequential requests through
split.test check that the split is 90/10 (canary share within 10% ± 2).

Loopback only; every wrk run is bounded by its duration, every other loop by its count.
Usage: bench/gateway_weighted.py [--seconds 5] [--rounds 3] [--connections 64] [--threads 1]
Writes bench/results/gateway_weighted.json.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import tempfile

import common

H = common.harness
BIN = os.environ.get("SLIPWAY_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                 "release", "bin", "slipway"))


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def nginx(tmp, name, body):
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"user root;\ndaemon off;\npid {tmp}/{name}.pid;\nerror_log {tmp}/{name}-error.log;\n{body}")
    return subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_up(port, host="up.test", path="/"):
    H.wait_until(lambda: H.http_call(port, "GET", path, headers={"Host": host})[0] in (200, 404),
                 timeout=15, what=f"port {port}")


def upstreams(tmp):
    a, b = H.free_port(), H.free_port()
    body = "x" * 100
    servers = "".join(f"""
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ add_header X-Upstream {name}; return 200 "{body}"; }} }}""" for name, port in (("a", a), ("b", b)))
    proc = nginx(tmp, "upstreams", f"""worker_processes 1;
events {{ worker_connections 4096; }}
http {{ access_log off;{servers} }}
""")
    wait_up(a)
    wait_up(b)
    return proc, a, b


def nginx_proxy(tmp, workers, up):
    port = H.free_port()
    proc = nginx(tmp, "proxy", f"""worker_processes {workers};
events {{ worker_connections 8192; }}
http {{ access_log off;
  upstream app {{ server 127.0.0.1:{up}; keepalive 256; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }} }}
""")
    wait_up(port)
    return proc, port, lambda: children(proc.pid) or [proc.pid]


def gateway(tmp, threads, a, b):
    port = H.free_port()
    routes = os.path.join(tmp, "routes.yaml")
    with open(routes, "w") as f:
        f.write(f"""routes:
  - name: single
    hosts: [single.test]
    to: 127.0.0.1:{a}
  - name: split
    hosts: [split.test]
    sides:
      - {{name: stable, weight: 90, to: 127.0.0.1:{a}}}
      - {{name: canary, weight: 10, to: [127.0.0.1:{b}]}}
""")
    proc = subprocess.Popen([BIN, "gateway", "--routes", routes, "--listen", f"127.0.0.1:{port}",
                             "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    H.wait_until(lambda: H.http_call(port, "GET", "/_slipway/up", headers={"Host": "up.test"})[0] == 200,
                 timeout=15, what="gateway up")
    return proc, port, lambda: [proc.pid]


def split_check(port, host, n):
    """n sequential keep-alive GETs: how many each upstream answered (and any other status)."""
    seen = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(n):
            conn.request("GET", "/", headers={"Host": host})
            res = conn.getresponse()
            res.read()
            key = res.getheader("X-Upstream", "?") if res.status == 200 else f"HTTP {res.status}"
            seen[key] = seen.get(key, 0) + 1
    finally:
        conn.close()
    return seen


def run_load(port, host, pids, seconds, connections, threads):
    url = f"http://127.0.0.1:{port}/"
    common.wrk(url, host=host, seconds=1, connections=connections, threads=threads)  # warm-up: pools filled
    before = cpu_ticks(pids)
    r = common.wrk(url, host=host, seconds=seconds, connections=connections, threads=threads)
    ticks = cpu_ticks(pids) - before
    requests = r["rps"] * seconds
    r["cpu_us_per_request"] = round(ticks / os.sysconf("SC_CLK_TCK") * 1e6 / requests, 2) if requests else None
    return r


def summarize(runs):
    best = max(runs, key=lambda r: r["rps"])
    return {"best": best,
            "median": {k: round(statistics.median(r[k] for r in runs), 3)
                       for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")},
            "rounds_rps": [r["rps"] for r in runs],
            "errors": sum(r["non2xx"] + r["socket_errors"] for r in runs)}


def ratio(a, b):
    return round(a / b, 3) if b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5, help="seconds per run (after a 1 s warm-up)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="gateway threads = nginx proxy workers")
    args = ap.parse_args()
    if not 1 <= args.seconds <= 60 or not 1 <= args.rounds <= 10:
        ap.error("--seconds 1..60 and --rounds 1..10 (the run stays bounded)")
    tmp = tempfile.mkdtemp(prefix="slipway-gw-weighted-")
    procs = []
    wrk_threads = 2
    try:
        up, a, b = upstreams(tmp)
        procs.append(up)
        ngx, ngx_port, ngx_pids = nginx_proxy(tmp, args.threads, a)
        procs.append(ngx)
        gw, gw_port, gw_pids = gateway(tmp, args.threads, a, b)
        procs.append(gw)
        split = split_check(gw_port, "split.test", 2000)
        single = split_check(gw_port, "single.test", 200)
        peer = split_check(ngx_port, "single.test", 200)
        share = split.get("b", 0) / 2000
        assert set(split) == {"a", "b"} and 0.08 <= share <= 0.12, f"the 90/10 split is off: {split}"
        assert single == {"a": 200} and peer == {"a": 200}, (single, peer)

        subjects = {"nginx": (ngx_port, "single.test", ngx_pids),
                    "single": (gw_port, "single.test", gw_pids),
                    "weighted": (gw_port, "split.test", gw_pids)}
        runs = {k: [] for k in subjects}
        order = list(subjects)
        for i in range(args.rounds):
            for name in order[i % 3:] + order[:i % 3]:
                port, host, pids = subjects[name]
                runs[name].append(run_load(port, host, pids(), args.seconds, args.connections, wrk_threads))
        s = {k: summarize(v) for k, v in runs.items()}
        best = {k: v["best"] for k, v in s.items()}
        results = {
            "seconds": args.seconds, "rounds": args.rounds, "connections": args.connections,
            "threads": args.threads, "split_check": {"requests": 2000, "by_upstream": split, "canary_share": share},
            "runs": s,
            "ratios_best": {
                "weighted_vs_single_rps": ratio(best["weighted"]["rps"], best["single"]["rps"]),
                "weighted_vs_single_p50": ratio(best["weighted"]["p50_ms"], best["single"]["p50_ms"]),
                "weighted_vs_single_p99": ratio(best["weighted"]["p99_ms"], best["single"]["p99_ms"]),
                "weighted_vs_single_cpu": ratio(best["weighted"]["cpu_us_per_request"],
                                                best["single"]["cpu_us_per_request"]),
                "single_vs_nginx_rps": ratio(best["single"]["rps"], best["nginx"]["rps"]),
                "weighted_vs_nginx_rps": ratio(best["weighted"]["rps"], best["nginx"]["rps"]),
                "single_vs_nginx_p99": ratio(best["single"]["p99_ms"], best["nginx"]["p99_ms"]),
                "weighted_vs_nginx_p99": ratio(best["weighted"]["p99_ms"], best["nginx"]["p99_ms"])},
            "ratios_median": {
                "weighted_vs_single_rps": ratio(s["weighted"]["median"]["rps"], s["single"]["median"]["rps"]),
                "single_vs_nginx_rps": ratio(s["single"]["median"]["rps"], s["nginx"]["median"]["rps"]),
                "weighted_vs_nginx_rps": ratio(s["weighted"]["median"]["rps"], s["nginx"]["median"]["rps"])},
        }
        try:
            with open("/proc/loadavg") as f:
                results["loadavg_after"] = f.read().split()[:3]
        except OSError:
            pass
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        subprocess.run(["rm", "-rf", tmp])
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "gateway_weighted.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
