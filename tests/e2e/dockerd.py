"""The Docker daemon for the container tests: uses the one that answers, or starts Debian's
dockerd and stops it again at exit, leaving the machine as it was found. Plus a tiny Engine
API client (over the unix socket) so tests inspect what Slipway created."""
import atexit
import http.client
import json
import os
import socket
import subprocess
import time

SOCKET = "/var/run/docker.sock"
_started = {}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def api(method, path, body=None, timeout=30):
    conn = _UnixConnection(SOCKET, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, "/v1.41" + path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        res = conn.getresponse()
        raw = res.read()
        try:
            return res.status, json.loads(raw) if raw else None
        except ValueError:
            return res.status, raw
    finally:
        conn.close()


def answering():
    try:
        return api("GET", "/_ping", timeout=2)[0] == 200
    except OSError:
        return False


def start(log_path="/tmp/slipway-test-dockerd.log"):
    """Starts dockerd if none answers. Returns True when this process started it."""
    if answering():
        return False
    log = open(log_path, "ab")
    proc = subprocess.Popen(["dockerd", "--host", "unix://" + SOCKET], stdout=log, stderr=subprocess.STDOUT)
    _started["proc"] = proc
    _started["log"] = log
    deadline = time.time() + 60
    while time.time() < deadline:
        if answering():
            atexit.register(stop)
            return True
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd exited with {proc.returncode}; see {log_path}")
        time.sleep(0.2)
    raise RuntimeError(f"dockerd did not answer within 60 s; see {log_path}")


def started_here():
    return "proc" in _started and _started["proc"].poll() is None


def stop():
    proc = _started.get("proc")
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if _started.get("log"):
        _started.pop("log").close()


def restart():
    """Stops the daemon this process started and starts it again."""
    stop()
    _started.pop("proc", None)
    start()


def containers(label):
    status, body = api("GET", "/containers/json?all=1&filters=" + json.dumps({"label": [label]}).replace(" ", ""))
    assert status == 200, body
    return body


def ensure_swarm():
    """Makes this daemon a single-node swarm on loopback. Returns True when it did (the
    caller then leaves the swarm again)."""
    status, info = api("GET", "/info")
    if info.get("Swarm", {}).get("LocalNodeState") == "active":
        return False
    status, body = api("POST", "/swarm/init", {"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})
    if status != 200:
        raise RuntimeError(f"swarm init failed: {body}")
    return True


def leave_swarm():
    api("POST", "/swarm/leave?force=1", timeout=60)
