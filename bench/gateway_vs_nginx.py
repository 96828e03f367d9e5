#!/usr/bin/env python3
"""The gateway against nginx as the peer proxy: same upstream, same run, same load.

The upstream is nginx returning a 100-byte body (one worker). The peer is nginx as a reverse
proxy with an upstream keep-alive pool and as many workers as `slipway gateway` has threads
(1 and 2). wrk -t2 with keep-alive at -c64 and -c256 drives each in turn, alternating, several
rounds; the best round of each is kept (the machine is shared by load generator, upstream and
proxy, so the best round is the least disturbed one); each run follows a one-second warm-up. CPU time per request is the proxy's
utime+stime over the run divided by the requests served.

Then a 1 GiB download through each (nginx with proxy_buffering off, so it streams too):
throughput and the growth of the proxy's peak RSS.

Usage: bench/gateway_vs_nginx.py [seconds-per-run] [rounds]
Writes bench/results/gateway.json.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import common

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BIN = os.environ.get("SLIPWAY_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin", "slipway"))
free_port = common.harness.free_port


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_http(port):
    common.harness.wait_until(lambda: common.harness.http_call(port, "GET", "/")[0] in (200, 404), what=f"port {port}")


def nginx(tmp, name, body):
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"user root;\ndaemon off;\npid {tmp}/{name}.pid;\nerror_log {tmp}/{name}-error.log;\n{body}")
    return subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def upstream(tmp):
    port = free_port()
    big = os.path.join(tmp, "www", "big.bin")
    os.makedirs(os.path.dirname(big))
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # sparse: served from the page cache, no disk involved
    body = "x" * 100
    proc = nginx(tmp, "upstream", f"""worker_processes 1;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on;
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000; root {tmp}/www;
    location = / {{ return 200 "{body}"; }} }} }}
""")
    wait_http(port)
    return proc, port


def nginx_proxy(tmp, workers, up_port):
    port = free_port()
    proc = nginx(tmp, f"proxy{workers}", f"""worker_processes {workers};
events {{ worker_connections 8192; }}
http {{ access_log off;
  upstream app {{ server 127.0.0.1:{up_port}; keepalive 256; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }}
    location = /big.bin {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; }} }} }}
""")
    wait_http(port)
    return proc, port, lambda: children(proc.pid) or [proc.pid]


def slipway_gateway(tmp, threads, up_port):
    port = free_port()
    routes = os.path.join(tmp, "routes.yaml")
    with open(routes, "w") as f:
        f.write(f"routes:\n  - name: bench\n    hosts: ['*']\n    to: 127.0.0.1:{up_port}\n")
    proc = subprocess.Popen([BIN, "gateway", "--routes", routes, "--listen", f"127.0.0.1:{port}",
                             "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port)
    return proc, port, lambda: [proc.pid]


def run_load(port, pids, connections):
    # A one-second warm-up first: both proxies then start with their upstream pools filled
    # (the gateway closes upstream connections idle for 4 s, which the other proxy's turn is).
    common.wrk(f"http://127.0.0.1:{port}/", seconds=1, connections=connections)
    before = cpu_ticks(pids)
    r = common.wrk(f"http://127.0.0.1:{port}/", seconds=SECONDS, connections=connections)
    ticks = cpu_ticks(pids) - before
    requests = r["rps"] * SECONDS
    r["cpu_us_per_request"] = round(ticks / os.sysconf("SC_CLK_TCK") * 1e6 / requests, 2) if requests else None
    r["rss_kib"] = sum(status_kib(p, "VmRSS") for p in pids)
    return r


def download(port, pids):
    hwm_before = sum(status_kib(p, "VmHWM") for p in pids)
    rss_before = sum(status_kib(p, "VmRSS") for p in pids)
    t0 = time.monotonic()
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", f"http://127.0.0.1:{port}/big.bin"],
                         capture_output=True, text=True, timeout=120).stdout
    seconds = time.monotonic() - t0
    assert int(out) == 1 << 30, out
    hwm_after = sum(status_kib(p, "VmHWM") for p in pids)
    return {"mib_per_s": round(1024 / seconds, 1), "seconds": round(seconds, 2),
            "peak_rss_growth_kib": max(0, hwm_after - max(hwm_before, rss_before))}


def best(runs):
    return max(runs, key=lambda r: r["rps"])


def main():
    tmp = tempfile.mkdtemp(prefix="slipway-gw-bench-")
    up, up_port = upstream(tmp)
    procs = [up]
    results = {"seconds": SECONDS, "rounds": ROUNDS, "sizes": {}}
    try:
        for threads in (1, 2):
            ngx, ngx_port, ngx_pids = nginx_proxy(tmp, threads, up_port)
            gw, gw_port, gw_pids = slipway_gateway(tmp, threads, up_port)
            procs += [ngx, gw]
            for conns in (64, 256):
                runs = {"nginx": [], "slipway": []}
                for _ in range(ROUNDS):
                    runs["nginx"].append(run_load(ngx_port, ngx_pids(), conns))
                    runs["slipway"].append(run_load(gw_port, gw_pids(), conns))
                n, s = best(runs["nginx"]), best(runs["slipway"])
                results["sizes"][f"{threads}t-c{conns}"] = {
                    "nginx": n, "slipway": s, "rps_ratio": round(s["rps"] / n["rps"], 3),
                    "p99_ratio": round(s["p99_ms"] / n["p99_ms"], 3),
                    "all_rounds_rps": {k: [r["rps"] for r in v] for k, v in runs.items()}}
            results["sizes"][f"{threads}t-download-1GiB"] = {
                "nginx": download(ngx_port, ngx_pids()), "slipway": download(gw_port, gw_pids())}
            for p in (ngx, gw):
                p.terminate()
                p.wait(10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        subprocess.run(["rm", "-rf", tmp])
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "gateway.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
