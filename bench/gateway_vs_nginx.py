#!/usr/bin/env python3
"""Gateway throughput and latency against nginx, same upstream, same run.

The upstream is the example app as Slipway deployed it. wrk -t2 -c64 keep-alive drives:
the upstream directly, nginx (2 workers, as many as the gateway has threads; keepalive upstream pool) and the Slipway gateway. RSS is the
nginx worker's and the whole slipway server's (control plane included).
Usage: bench/gateway_vs_nginx.py [seconds]
"""
import json
import os
import subprocess
import sys
import time

import common

seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
tmp, repo, server = common.deployed_server()
try:
    status, app = server.api("GET", "/api/v1/apps/hello")
    port = app["serving"]["port"]
    nginx_port = common.harness.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  upstream app {{ server 127.0.0.1:{port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{nginx_port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    common.harness.wait_until(lambda: common.harness.http_call(nginx_port, "GET", "/")[0] == 200, what="nginx")
    try:
        results = {}
        results["direct"] = common.wrk(f"http://127.0.0.1:{port}/", seconds=seconds)
        results["nginx"] = common.wrk(f"http://127.0.0.1:{nginx_port}/", seconds=seconds)
        results["slipway"] = common.wrk(f"http://127.0.0.1:{server.gw_port}/", host="hello.localhost", seconds=seconds)
        worker = subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True).stdout.split()
        results["nginx"]["rss_kib"] = sum(common.rss_kib(int(p)) for p in worker) + common.rss_kib(nginx.pid)
        results["slipway"]["rss_kib"] = common.rss_kib(server.proc.pid)
    finally:
        nginx.terminate()
        nginx.wait(10)
    base = results["direct"]["rps"]
    for k in results:
        results[k]["ratio_to_direct"] = round(results[k]["rps"] / base, 3)
    results["slipway_vs_nginx_rps"] = round(results["slipway"]["rps"] / results["nginx"]["rps"], 3)
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "gateway.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
finally:
    common.teardown(tmp, repo, server)
