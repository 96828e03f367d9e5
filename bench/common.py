"""Shared set-up for the benchmark scripts: a slipway server with the example app deployed,
built on the e2e harness. Loopback only; every loop is bounded."""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def deployed_server(manifest=None):
    """Starts a server and deploys v1 of the example app. Returns (tmp, repo, server)."""
    tmp = tempfile.mkdtemp(prefix="slipway-bench-")
    repo = harness.GitRepo(os.path.join(tmp, "git"))
    server = harness.Server(os.path.join(tmp, "var")).start()
    status, body = server.api("POST", "/api/v1/apps",
                              {"name": "hello", "repo": repo.url, "branch": "main", "secret": "bench-secret"})
    assert status == 201, body
    sha = repo.commit_version("v1", manifest)
    status, res = server.api("POST", "/api/v1/apps/hello/deployments", {"ref": sha})
    d = server.wait_deployment(res["id"])
    assert d["status"] == "succeeded", d
    return tmp, repo, server


def teardown(tmp, repo, server):
    server.stop()
    repo.close()
    harness.kill_marked_processes(server.data)
    subprocess.run(["rm", "-rf", tmp])


def wrk(url, host=None, seconds=10, connections=64, threads=2):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if host:
        cmd[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(pct):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rps, "p50_ms": lat(50), "p99_ms": lat(99),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0}


def now_ms():
    return int(time.time() * 1000)
