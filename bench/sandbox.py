#!/usr/bin/env python3
"""Sandboxes: what a sandbox costs against the plain deployment and API call it is made of,
measured in the same run with the three-service demo of examples/sandbox-demo (native).

1. Create: `slipway sandbox create S --service account=branch:feature-login --service
   entry=upstream --service payment=upstream --wait`, wall time minus the build stage of its
   deployment; the peer is `slipway deploy account` (a plain redeploy, waited for by the CLI)
   minus its build stage. Delete time is reported beside it.
2. Flip: `POST /api/v1/sandboxes/S/routes/account` to upstream and back; the API call's time
   and the time until the sandbox's port answers with the other version (polled); the peer is
   the API's floor, an authenticated `GET /api/v1/auth/whoami` (`sandbox show`'s call, which
   probes each service's health, beside it).
3. Memory: the server's RSS growth per idle sandbox (three upstream services, nothing
   deployed) over N sandboxes; the peer is the growth per app over N `apps create`.

Loopback only; every loop is bounded in count and time; every process is killed on exit.
Usage: bench/sandbox.py [ROUNDS] [N]   (default 5 20); results in bench/results/sandbox.json.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import common

H = common.harness
DEMO = os.path.join(H.ROOT, "examples", "sandbox-demo")
SERVICES = ("entry", "account", "payment")


def cli_ok(server, *args, timeout=300):
    out = server.cli(*args, timeout=timeout)
    assert out.returncode == 0, f"slipway {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def stage_ms(server, deployment_id, stage):
    ts = [e["ts_ms"] for e in server.events(deployment_id) if e["stage"] == stage]
    return max(ts) - min(ts) if ts else 0


def last_deployment(server, app):
    status, body = server.api("GET", f"/api/v1/apps/{app}/deployments")
    assert status == 200, body
    rows = body["deployments"] if isinstance(body, dict) else body
    return max(rows, key=lambda d: d["id"])


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def shared_environment(server, repos):
    for app in SERVICES:
        cli_ok(server, "apps", "create", app, "--repo", os.path.join(repos, app), "--secret", "bench-hook",
               "--upstream", f"http://{app}.localhost:{server.gw_port}")
    for app in SERVICES:
        cli_ok(server, "deploy", app)


def create_rounds(server, rounds):
    plain, sandbox, deletes = [], [], []
    for i in range(rounds):
        ms = timed(lambda: cli_ok(server, "deploy", "account"))
        d = last_deployment(server, "account")
        assert d["status"] == "succeeded", d
        plain.append(ms - stage_ms(server, d["id"], "build"))
        name = f"bench{i}"
        ms = timed(lambda: cli_ok(server, "sandbox", "create", name, "--service", "account=branch:feature-login",
                                  "--service", "entry=upstream", "--service", "payment=upstream", "--wait"))
        d = last_deployment(server, f"sandbox-{name}-account")
        assert d["status"] == "succeeded", d
        sandbox.append(ms - stage_ms(server, d["id"], "build"))
        deletes.append(timed(lambda: cli_ok(server, "sandbox", "delete", name)))
    return {"plain_deploy_ms": statistics.median(plain), "sandbox_create_ms": statistics.median(sandbox),
            "ratio": statistics.median(sandbox) / statistics.median(plain),
            "sandbox_delete_ms": statistics.median(deletes), "rounds": rounds}


def account_version(port):
    status, raw, _ = H.http_call(port, "GET", "/", timeout=5)
    return json.loads(raw).get("version") if status == 200 else None


def flip_rounds(server, rounds):
    cli_ok(server, "sandbox", "create", "flip", "--service", "account=branch:feature-login",
           "--service", "entry=upstream", "--service", "payment=upstream", "--wait")
    port = json.loads(cli_ok(server, "sandbox", "show", "flip", "--json"))["port"]
    calls, visible, floor, show = [], [], [], []
    for i in range(rounds * 2):
        to = "upstream" if i % 2 == 0 else "sandbox"
        before = account_version(port)
        t = time.perf_counter()
        status, body = server.api("POST", "/api/v1/sandboxes/flip/routes/account", {"to": to})
        calls.append((time.perf_counter() - t) * 1000)
        assert status == 200, body
        for _ in range(5000):  # bounded: 5000 polls, a few seconds at most
            if account_version(port) != before:
                break
        visible.append((time.perf_counter() - t) * 1000)
        for _ in range(20):
            floor.append(timed(lambda: server.api("GET", "/api/v1/auth/whoami")))
            show.append(timed(lambda: server.api("GET", "/api/v1/sandboxes/flip")))
    cli_ok(server, "sandbox", "delete", "flip")
    return {"flip_call_ms": statistics.median(calls), "flip_visible_ms": statistics.median(visible),
            "api_floor_ms": statistics.median(floor), "show_ms": statistics.median(show),
            "ratio": statistics.median(calls) / statistics.median(floor), "flips": rounds * 2}


def memory(server, n):
    pid = server.proc.pid
    time.sleep(1)
    base = common.rss_kib(pid)
    for i in range(n):
        cli_ok(server, "apps", "create", f"idle-app-{i}", "--repo", os.path.join(server.data, "..", "repos", "entry"),
               "--secret", "bench-hook")
    time.sleep(1)
    apps = common.rss_kib(pid)
    for i in range(n):
        cli_ok(server, "sandbox", "create", f"idle{i}", *[a for s in SERVICES for a in ("--service", f"{s}=upstream")])
    time.sleep(3)  # a janitor tick or two
    sandboxes = common.rss_kib(pid)
    for i in range(n):
        cli_ok(server, "sandbox", "delete", f"idle{i}")
    return {"n": n, "per_app_kib": (apps - base) / n, "per_sandbox_kib": (sandboxes - apps) / n,
            "rss_before_kib": base, "rss_after_kib": sandboxes}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    tmp = tempfile.mkdtemp(prefix="slipway-bench-sandbox-")
    server = None
    try:
        repos = os.path.join(tmp, "repos")
        subprocess.run(["sh", os.path.join(DEMO, "make-repos.sh"), repos], check=True, capture_output=True,
                       timeout=60)
        server = H.Server(os.path.join(tmp, "var"), extra_args=[
            "--sandbox-gateway-ports", "38081-38999", "--sandbox-service-ports", "39001-39999"]).start()
        shared_environment(server, repos)
        results = {"create": create_rounds(server, rounds), "flip": flip_rounds(server, rounds),
                   "memory": memory(server, n), "date": time.strftime("%Y-%m-%d")}
    finally:
        if server:
            server.stop()
            H.kill_marked_processes(server.data)
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "sandbox.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
