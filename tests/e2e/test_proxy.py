"""Acceptance tests for `slipway gateway`, the production HTTP/1.1 reverse proxy, against real
upstreams (apps/upstream.py) over loopback.

Each test gets fresh upstreams (stable, canary, sandbox) and a fresh gateway with the route
file ROUTES below, two listeners (the main port and the `sandbox-a` route set) and a JSON
access log. Raw-socket helpers read responses exactly (Content-Length, chunked with trailers,
close-delimited, 1xx interim) so the tests see the bytes the gateway really sends.

Every load loop is bounded in count and in time; traffic goes to 127.0.0.1 only; every process,
socket and thread started here is stopped before the test ends.
"""
import base64
import hashlib
import http.client
import http.cookies
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

from harness import SLIPWAY, free_port, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM = os.path.join(HERE, "apps", "upstream.py")
sys.path.insert(0, os.path.join(HERE, "apps"))
import upstream as upstream_app  # noqa: E402  (the same pattern and bodies the upstream serves)

GIB = 1 << 30
BLOCK = 1 << 20
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_sha_cache = {}
_sha_lock = threading.Lock()


def pattern_sha256(size):
    """sha256 of the first `size` bytes of the /download pattern, computed like the upstream."""
    with _sha_lock:
        if size not in _sha_cache:
            block = upstream_app.pattern()
            h = hashlib.sha256()
            left = size
            while left > 0:
                h.update(block[:min(left, BLOCK)] if left < BLOCK else block)
                left -= min(left, BLOCK)
            _sha_cache[size] = h.hexdigest()
        return _sha_cache[size]


def pattern_bytes(size):
    block = upstream_app.pattern()
    return (block * (size // BLOCK + 1))[:size]


def pattern_chunks(size, piece=64 * 1024):
    """The first `size` bytes of the pattern in `piece`-sized views (small pieces keep
    http.client's chunk framing cheap)."""
    block = memoryview(upstream_app.pattern())
    sent = 0
    while sent < size:
        start = sent % BLOCK
        n = min(piece, size - sent, BLOCK - start)
        yield block[start:start + n]
        sent += n


# ---------------------------------------------------------------------------------------------
# Responses and raw-socket clients


class Response:
    def __init__(self, status, reason=b"", version=b"HTTP/1.1", headers=(), body=b"", raw_head=b""):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = list(headers)  # [(name, value)] as received
        self.body = body
        self.raw_head = raw_head
        self.interim = []   # 1xx heads (Response) received before this final one
        self.trailers = []  # [(name, value)] after a chunked body
        self.elapsed = 0.0

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body[:300]!r}>"


def request_bytes(method, target, host="web.test", headers=(), body=b"", version="1.1"):
    """A request head (+ body). Adds Content-Length for a body unless a framing header is given."""
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = {k.lower() for k, _ in headers}
    lines += [f"{k}: {v}" for k, v in headers]
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawClient:
    """One TCP connection; sends bytes and reads responses exactly as they come."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_tolerant(self, data):
        """Sends; the gateway may answer and close before reading everything (then False)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, n=256 * 1024):
        if self.eof:
            return False
        try:
            data = self.sock.recv(n)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > (1 << 20):
                raise AssertionError("a line longer than 1 MiB")
            if not self._fill():
                raise EOFError("connection closed in the middle of a line")

    def read_head(self, timeout=None):
        """One response head (interim or final) as a Response without a body."""
        self.sock.settimeout(timeout or self.timeout)
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if not self._fill():
                raise EOFError(f"connection closed before a complete response head; got {bytes(self.buf[:300])!r}")
        raw = bytes(self.buf[:i])
        del self.buf[:i + 4]
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise AssertionError(f"not an HTTP/1.x status line: {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise AssertionError(f"malformed response header line {line!r}")
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return Response(int(parts[1]), parts[2] if len(parts) > 2 else b"", parts[0], headers, raw_head=raw)

    @staticmethod
    def framing(head, method):
        if method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200:
            return "none", 0
        te = head.all("transfer-encoding")
        if te:
            codings = [c.strip().lower() for c in ",".join(te).split(",")]
            return ("chunked", 0) if codings[-1] == "chunked" else ("close", 0)
        cl = head.all("content-length")
        if cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise AssertionError(f"bad Content-Length in a response: {cl!r}")
            return "length", int(cl[0])
        return "close", 0

    def _exact(self, n):
        left = n
        while left > 0:
            if self.buf:
                take = min(left, len(self.buf))
                piece = bytes(self.buf[:take])
                del self.buf[:take]
            else:
                try:
                    piece = self.sock.recv(min(left, BLOCK))
                except ConnectionResetError:
                    piece = b""
                if not piece:
                    self.eof = True
                    raise EOFError(f"connection closed with {left} of {n} body bytes missing")
            left -= len(piece)
            yield piece

    def iter_body(self, head, method="GET", timeout=None):
        """Yields the body's bytes as they arrive (chunked decoded); sets head.trailers."""
        self.sock.settimeout(timeout or self.timeout)
        kind, n = self.framing(head, method)
        if kind == "length":
            yield from self._exact(n)
        elif kind == "chunked":
            while True:
                line = self._line()
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self._line()
                        if not t:
                            return
                        name, _, value = t.partition(b":")
                        head.trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
                yield from self._exact(size)
                if self._line() != b"":
                    raise AssertionError("chunk data not followed by CRLF")
        elif kind == "close":
            if self.buf:
                yield bytes(self.buf)
                self.buf.clear()
            while True:
                try:
                    data = self.sock.recv(BLOCK)
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.eof = True
                    return
                yield data

    def read_response(self, method="GET", timeout=None):
        """The final response (1xx interim heads are collected in .interim; 101 is final)."""
        t0 = time.time()
        interim = []
        while True:
            head = self.read_head(timeout)
            if 100 <= head.status < 200 and head.status != 101:
                interim.append(head)
                continue
            break
        head.body = b"".join(self.iter_body(head, method, timeout))
        head.interim = interim
        head.elapsed = time.time() - t0
        return head

    def wait_closed(self, timeout):
        """True when the peer closes (EOF or reset) within `timeout`. Bytes received meanwhile
        stay in self.buf."""
        deadline = time.time() + timeout
        while not self.eof:
            left = deadline - time.time()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                self._fill()
            except (socket.timeout, TimeoutError):
                return False
        return True

    def quiet_for(self, seconds):
        """Whatever bytes arrive within `seconds` (b"" when the connection stays quiet)."""
        before = len(self.buf)
        self.wait_closed(seconds)
        return bytes(self.buf[before:])


def connect(port, timeout=10):
    """An http.client connection with Nagle off (a body sent after its head is not held back)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def call(port, method, path, host="web.test", headers=None, body=None, timeout=10):
    """One request on a fresh http.client connection."""
    conn = connect(port, timeout)
    try:
        h = {"Host": host} if host is not None else {}
        h.update(headers or {})
        t0 = time.time()
        conn.request(method, path, body=body, headers=h)
        res = conn.getresponse()
        r = Response(res.status, res.reason.encode(), b"HTTP/1.1", res.getheaders(), res.read())
        r.elapsed = time.time() - t0
        return r
    finally:
        conn.close()


def keepalive_get(conn, path, host, headers=None):
    h = {"Host": host}
    h.update(headers or {})
    conn.request("GET", path, headers=h)
    res = conn.getresponse()
    return Response(res.status, res.reason.encode(), b"HTTP/1.1", res.getheaders(), res.read())


def run_threads(targets, timeout):
    """Starts one thread per callable and joins them all within `timeout` seconds."""
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.time() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
    alive = [t for t in threads if t.is_alive()]
    if alive:
        raise AssertionError(f"{len(alive)} worker threads still running after {timeout}s")


# ---------------------------------------------------------------------------------------------
# Processes


class Upstream:
    """One apps/upstream.py process on a free loopback port."""

    def __init__(self, tmp, name, port=None):
        self.tmp, self.name = tmp, name
        self.port = port or free_port()
        self.proc = None

    def start(self):
        out = os.path.join(self.tmp, f"upstream-{self.name}.out")
        if os.path.exists(out):
            os.unlink(out)
        self.log = open(os.path.join(self.tmp, f"upstream-{self.name}.log"), "ab")
        self.stdout = open(out, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-S", UPSTREAM, "--port", str(self.port), "--name", self.name,
             "--state-file", os.path.join(self.tmp, f"upstream-{self.name}.json")],
            stdout=self.stdout, stderr=self.log)
        return self

    def wait_ready(self):
        out = os.path.join(self.tmp, f"upstream-{self.name}.out")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"upstream {self.name} exited with {self.proc.returncode}")
            with open(out) as f:
                return f.read().startswith(f"ready {self.port}")
        wait_until(ready, timeout=15, what=f"upstream {self.name} ready")
        return self

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def count(self):
        r = call(self.port, "GET", "/count", host="upstream.test", timeout=5)
        assert r.status == 200, r
        return r.json()

    def reset(self):
        assert call(self.port, "POST", "/reset", host="upstream.test", timeout=5).status == 200

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (getattr(self, "log", None), getattr(self, "stdout", None)):
            if f:
                f.close()


class Gateway:
    """One `slipway gateway` process: its listeners, its log (stdout+stderr), its access log."""

    def __init__(self, tmp, routes_path, listens, args=()):
        self.tmp = tmp
        self.routes_path = routes_path
        self.listens = listens  # [(port, set or None)]
        self.args = list(args)
        self.log_path = os.path.join(tmp, "gateway.log")
        self.access_log = os.path.join(tmp, "access.log")
        self.proc = None
        self.log = None

    def command(self):
        cmd = [SLIPWAY, "gateway", "--routes", self.routes_path]
        for port, route_set in self.listens:
            cmd += ["--listen", f"127.0.0.1:{port}" + (f"={route_set}" if route_set else "")]
        return cmd + ["--access-log", self.access_log, *self.args]

    def start(self, timeout=15):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        pending = [p for p, _ in self.listens]
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            if time.time() > deadline:
                raise AssertionError(f"gateway not up on {pending} after {timeout}s: {self.log_text()[-2000:]}")
            try:
                if call(pending[0], "GET", "/_slipway/up", host="anything.test", timeout=2).status == 200:
                    pending.pop(0)
                    continue
            except OSError:
                pass
            time.sleep(0.05)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def access_text(self):
        try:
            with open(self.access_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.log:
            self.log.close()
            self.log = None


ROUTES = """\
routes:
  - name: web
    hosts: [web.test, "*.web.test"]
    to: {stable}
  - name: web-api
    hosts: [web.test]
    path: /api
    to: {canary}
  - name: web-qa
    hosts: [web.test]
    priority: 10
    when:
      header: {{X-Slipway-Sandbox: qa-login}}
    to: {sandbox}
  - name: web-bag
    hosts: [web.test]
    priority: 10
    when:
      baggage: {{sandbox: qa-login}}
    to: {sandbox}
  - name: web-ab
    hosts: [web.test]
    priority: 10
    when:
      cookie: {{ab: b}}
    to: {sandbox}
  - name: split
    hosts: [split.test]
    sides:
      - {{name: stable, weight: 90, to: {stable}}}
      - {{name: canary, weight: 10, to: [{canary}]}}
  - name: sticky
    hosts: [sticky.test]
    sticky: {{cookie: slipway_web}}
    sides:
      - {{name: stable, weight: 50, to: {stable}}}
      - {{name: canary, weight: 50, to: [{canary}]}}
  - name: sticky-h
    hosts: [sticky-h.test]
    sticky: {{header: X-User}}
    sides:
      - {{name: stable, weight: 50, to: {stable}}}
      - {{name: canary, weight: 50, to: {canary}}}
  - name: rr
    hosts: [rr.test]
    to: [{stable}, {canary}]
  - name: small
    hosts: [small.test]
    max_body: 1KiB
    to: {stable}
  - name: dead
    hosts: [dead.test]
    to: {dead}
  - name: blackhole
    hosts: [blackhole.test]
    to: {blackhole}
  - name: only-a
    hosts: [web.test, only-a.test]
    listener: sandbox-a
    to: {canary}
"""

SMUGGLED = b"GET /echo?id=smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n"


class ProxyCase(unittest.TestCase):
    """Fresh upstreams and a fresh gateway per test; everything stopped in tearDown."""

    GATEWAY_ARGS = ["--threads", "2", "--header-timeout", "3s"]
    UPSTREAMS = ("stable", "canary", "sandbox")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="slipway-proxy-")
        self.up = {}
        self.gateway = None
        self.clients = []
        self.blackhole = []
        try:
            # A listener whose accept queue is full: connecting to it hangs (no refusal).
            hole = socket.socket()
            self.blackhole.append(hole)
            hole.bind(("127.0.0.1", 0))
            hole.listen(0)
            self.blackhole.append(socket.create_connection(hole.getsockname(), timeout=2))
            self.blackhole_port = hole.getsockname()[1]
            for name in self.UPSTREAMS:
                self.up[name] = Upstream(self.tmp, name).start()
            for u in self.up.values():
                u.wait_ready()
            self.dead_port = free_port()
            self.port = free_port()
            self.port_a = free_port()
            self.routes_path = os.path.join(self.tmp, "routes.yaml")
            self.write_routes(self.routes_yaml())
            self.gateway = Gateway(self.tmp, self.routes_path, [(self.port, None), (self.port_a, "sandbox-a")],
                                   self.GATEWAY_ARGS).start()
        except BaseException:
            self._stop_all()
            raise

    def tearDown(self):
        self._stop_all()

    def _stop_all(self):
        for c in self.clients + self.blackhole:
            c.close()
        self.clients, self.blackhole = [], []
        try:
            if self.gateway:
                self.gateway.stop()
        finally:
            for u in self.up.values():
                u.stop()
            if os.environ.get("SLIPWAY_KEEP_TMP") is None:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ----
    def routes_yaml(self, **override):
        ports = {name: u.addr for name, u in self.up.items()}
        ports["dead"] = f"127.0.0.1:{self.dead_port}"
        ports["blackhole"] = f"127.0.0.1:{self.blackhole_port}"
        ports.update(override)
        return ROUTES.format(**ports)

    def write_routes(self, text):
        tmp = self.routes_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.routes_path)

    def raw(self, port=None, timeout=10.0):
        c = RawClient(port or self.port, timeout)
        self.clients.append(c)
        return c

    def get(self, path, host="web.test", **kw):
        return call(self.port, "GET", path, host=host, **kw)

    def counts(self):
        return {name: u.count()["count"] for name, u in self.up.items()}

    def all_lines(self):
        return {name: u.count()["lines"] for name, u in self.up.items()}

    def reset_upstreams(self):
        for u in self.up.values():
            u.reset()

    def assert_echo(self, resp, rid, body=b"", method=None, upstream="stable"):
        self.assertEqual(resp.status, 200, resp)
        data = resp.json()
        self.assertEqual(data["id"], rid, resp)
        self.assertEqual(data["name"], upstream)
        self.assertEqual(data["length"], len(body))
        self.assertEqual(data["sha256"], hashlib.sha256(body).hexdigest())
        if method:
            self.assertEqual(data["method"], method)
        return data


def header_values(echo, name):
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


# ---------------------------------------------------------------------------------------------
# Acceptance 1: Expect: 100-continue and interim responses


class ExpectContinue(ProxyCase):
    def expect_post(self, c, path, rid, body, host="web.test"):
        """POST with Expect: 100-continue: the head, wait for the 100, then the body."""
        c.send(request_bytes("POST", f"{path}?id={rid}", host,
                             [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        t0 = time.time()
        first = c.read_head(timeout=3)
        self.assertEqual(first.status, 100, f"expected 100 Continue before sending the body, got {first!r}")
        self.assertEqual(first.raw_head.split(b"\r\n")[0], b"HTTP/1.1 100 Continue")
        self.assertLess(time.time() - t0, 2.0)
        c.send(body)
        return c.read_response()

    def test_expect_100_continue_to_interim_and_echo(self):
        c = self.raw()
        for path in ("/interim", "/echo"):
            with self.subTest(path=path):
                rid = uuid.uuid4().hex
                body = f"body of {rid} ".encode() * 50
                r = self.expect_post(c, path, rid, body)
                self.assert_echo(r, rid, body, "POST")
                self.assertNotIn(r.status, (100, 103))
                for interim in r.interim:
                    self.assertIn(interim.status, (100, 103), interim)
        # The connection stays usable: no interim response is left over or taken as final.
        rid = uuid.uuid4().hex
        c.send(request_bytes("GET", f"/echo?id={rid}"))
        self.assert_echo(c.read_response(), rid)
        self.assertEqual(c.quiet_for(0.3), b"")

    def test_interim_103_from_the_upstream_is_not_the_final_response(self):
        c = self.raw()
        rid = uuid.uuid4().hex
        body = b"x" * 1000
        c.send(request_bytes("POST", f"/interim?id={rid}", body=body))
        r = c.read_response()
        self.assert_echo(r, rid, body, "POST")
        for interim in r.interim:
            self.assertIn(interim.status, (100, 103), interim)
            if interim.status == 103:
                self.assertEqual(interim.header("Link"), "</a.css>; rel=preload")
        rid = uuid.uuid4().hex
        c.send(request_bytes("GET", f"/interim?id={rid}"))
        self.assert_echo(c.read_response(), rid, b"", "GET")

    def test_100_mixed_requests_each_get_their_own_id(self):
        before = self.counts()["stable"]
        results, failures = [], []
        lock = threading.Lock()

        def worker(w):
            c = RawClient(self.port, timeout=10)
            try:
                for k in range(20):
                    rid = f"w{w}-k{k}-{uuid.uuid4().hex}"
                    body = f"payload {rid} ".encode() * (k + 1)
                    kind = (w + k) % 4
                    try:
                        if kind == 0:
                            c.send(request_bytes("GET", f"/echo?id={rid}"))
                            r, body = c.read_response(), b""
                        elif kind in (1, 2):
                            path = "/echo" if kind == 1 else "/interim"
                            c.send(request_bytes("POST", f"{path}?id={rid}", "web.test",
                                                 [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
                            first = c.read_head(timeout=3)
                            if first.status != 100:
                                raise AssertionError(f"no 100 Continue: {first!r}")
                            c.send(body)
                            r = c.read_response()
                        else:
                            c.send(request_bytes("POST", f"/interim?id={rid}", body=body))
                            r = c.read_response()
                        data = r.json() if r.status == 200 else {}
                        ok = (r.status == 200 and data.get("id") == rid and data.get("length") == len(body)
                              and data.get("sha256") == hashlib.sha256(body).hexdigest())
                        with lock:
                            results.append((rid, ok))
                            if not ok:
                                failures.append((kind, rid, r))
                    except Exception as e:  # noqa: BLE001 - every error is a failed request
                        with lock:
                            failures.append((kind, rid, repr(e)))
                        c.close()
                        c = RawClient(self.port, timeout=10)
            finally:
                c.close()

        run_threads([lambda w=w: worker(w) for w in range(5)], timeout=60)
        self.assertEqual(failures, [])
        self.assertEqual(len(results), 100)
        self.assertEqual(len({rid for rid, _ in results}), 100)
        self.assertEqual(self.counts()["stable"] - before, 100, "each request reaches the app exactly once")

    def test_expect_refused_with_413_before_the_body(self):
        before = self.counts()["stable"]
        c = self.raw()
        c.send(request_bytes("POST", "/echo?id=too-big", "small.test",
                             [("Content-Length", str(1 << 20)), ("Expect", "100-continue")]))
        first = c.read_head(timeout=3)
        self.assertEqual(first.status, 413, f"expected 413 instead of 100 Continue: {first!r}")
        # Without Expect: a body over max_body is refused, one under it passes.
        c = self.raw()
        c.send_tolerant(request_bytes("POST", "/echo?id=big", "small.test", body=b"b" * 2048))
        r = c.read_response()
        self.assertEqual(r.status, 413, r)
        r = call(self.port, "POST", "/echo?id=fits", host="small.test", body=b"s" * 512)
        self.assert_echo(r, "fits", b"s" * 512, "POST")
        self.assertEqual(self.counts()["stable"] - before, 1, self.up["stable"].count()["lines"])


# ---------------------------------------------------------------------------------------------
# Acceptance 2: responses without a body, then reuse of the connection


class BodilessResponses(ProxyCase):
    def test_head_204_304_have_no_body_and_the_connection_is_reused(self):
        c = self.raw()
        rid_header = [("X-Request-Id", "head-check-0001")]
        c.send(request_bytes("GET", "/echo", headers=rid_header))
        get = c.read_response()
        self.assertEqual(get.status, 200, get)
        steps = [("HEAD", "/echo", 200), ("GET", "/status/204", 204), ("GET", "/status/304", 304),
                 ("HEAD", "/download?size=5000000&framing=chunked", 200),
                 ("HEAD", "/download?size=5000000&framing=length", 200)]
        for method, path, status in steps:
            with self.subTest(method=method, path=path):
                t0 = time.time()
                c.send(request_bytes(method, path, headers=rid_header))
                r = c.read_response(method, timeout=2)
                self.assertLess(time.time() - t0, 2.0)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.body, b"")
                self.assertEqual(c.quiet_for(0.3), b"", "no body bytes after a bodiless response")
                self.assertFalse(c.eof, "the connection must stay open")
                if path == "/echo":
                    self.assertEqual(r.header("Content-Type"), "application/json")
                    # The same headers as GET: its JSON says "HEAD" instead of "GET", one byte more.
                    self.assertEqual(int(r.header("Content-Length")), len(get.body) + 1)
                if status == 304:
                    self.assertEqual(r.header("ETag"), '"v1"')
                if status in (204, 304):
                    self.assertIsNone(r.header("Transfer-Encoding"))
                if "framing=length" in path:
                    self.assertEqual(r.header("Content-Length"), "5000000")
        rid = uuid.uuid4().hex
        c.send(request_bytes("GET", f"/echo?id={rid}"))
        self.assert_echo(c.read_response(timeout=2), rid, b"", "GET")


# ---------------------------------------------------------------------------------------------
# Acceptance 3: streaming both ways


class Streaming(ProxyCase):
    def test_sse_events_are_flushed_as_written(self):
        for framing in ("chunked", "close"):
            with self.subTest(framing=framing):
                c = self.raw(timeout=10)
                c.send(request_bytes("GET", f"/sse?n=5&gap=0.3&framing={framing}",
                                     headers=[("Accept", "text/event-stream")]))
                head = c.read_head()
                self.assertEqual(head.status, 200, head)
                self.assertTrue(head.header("Content-Type", "").startswith("text/event-stream"), head)
                events, pending = [], b""
                for piece in c.iter_body(head):
                    pending += piece
                    while b"\n\n" in pending:
                        event, pending = pending.split(b"\n\n", 1)
                        events.append((time.time(), event))
                self.assertEqual(pending, b"")
                self.assertEqual(len(events), 5, events)
                stamps = []
                for k, (arrived, event) in enumerate(events, start=1):
                    lines = event.decode().split("\n")
                    self.assertEqual(lines[0], f"id: {k}")
                    data = json.loads(lines[1][len("data: "):])
                    self.assertEqual(data["k"], k)
                    stamps.append((arrived, data["t"]))
                self.assertLess(stamps[0][0], stamps[-1][1], "event 1 must arrive before the last is written")
                for k in range(4):
                    self.assertLess(stamps[k][0], stamps[k + 1][1], f"event {k + 1} arrived late (buffered)")

    def download(self, size, framing):
        c = self.raw(timeout=30)
        c.send(request_bytes("GET", f"/download?size={size}&framing={framing}"))
        head = c.read_head()
        self.assertEqual(head.status, 200, head)
        h, n = hashlib.sha256(), 0
        for piece in c.iter_body(head):
            h.update(piece)
            n += len(piece)
        return head, n, h.hexdigest()

    def test_1gib_download_length_and_chunked(self):
        expected = pattern_sha256(GIB)
        for framing in ("length", "chunked"):
            with self.subTest(framing=framing):
                t0 = time.time()
                head, n, digest = self.download(GIB, framing)
                self.assertEqual(n, GIB)
                self.assertEqual(digest, expected)
                if framing == "length":
                    self.assertEqual(head.header("Content-Length"), str(GIB))
                self.assertLess(time.time() - t0, 90)

    def test_close_delimited_download(self):
        size = 5 * BLOCK + 12345
        head, n, digest = self.download(size, "close")
        self.assertEqual(n, size)
        self.assertEqual(digest, pattern_sha256(size))

    def test_1gib_upload_chunked_and_content_length(self):
        expected = pattern_sha256(GIB)
        for mode in ("chunked", "length"):
            with self.subTest(mode=mode):
                conn = connect(self.port, timeout=60)
                try:
                    headers = {"Host": "web.test", "Content-Type": "application/octet-stream"}
                    if mode == "length":
                        headers["Content-Length"] = str(GIB)
                    conn.request("PUT" if mode == "length" else "POST", "/upload", body=pattern_chunks(GIB),
                                 headers=headers)
                    res = conn.getresponse()
                    body = res.read()
                finally:
                    conn.close()
                self.assertEqual(res.status, 200, body[:300])
                self.assertEqual(json.loads(body), {"length": GIB, "sha256": expected})

    def test_trailers_pass_through(self):
        c = self.raw()
        c.send(request_bytes("GET", "/trailers", headers=[("TE", "trailers")]))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Transfer-Encoding", "").lower(), "chunked")
        self.assertEqual(r.body, b"".join(upstream_app.TRAILER_BODY))
        self.assertIn(("x-checksum", hashlib.sha256(r.body).hexdigest()),
                      [(k.lower(), v) for k, v in r.trailers], r.trailers)
        # The connection is still good after the trailer section.
        c.send(request_bytes("GET", "/echo?id=after-trailers"))
        self.assert_echo(c.read_response(), "after-trailers")


# ---------------------------------------------------------------------------------------------
# Acceptance 4: malformed requests, smuggling, slowloris

MALFORMED = [
    ("cl_and_te", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("two_content_lengths", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\n"
                            b"Content-Length: 4\r\n\r\nabcd", (400,)),
    ("content_length_list", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4, 4\r\n\r\nabcd", (400,)),
    ("content_length_sign", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: +4\r\n\r\nabcd", (400,)),
    ("unknown_coding", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
     (400, 501)),
    ("coding_list", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     (400, 501)),
    ("obs_fold", b"GET /echo HTTP/1.1\r\nHost: web.test\r\nX-Folded: a\r\n b\r\n\r\n", (400,)),
    ("nul_in_value", b"GET /echo HTTP/1.1\r\nHost: web.test\r\nX-Bad: a\x00b\r\n\r\n", (400,)),
    ("control_in_value", b"GET /echo HTTP/1.1\r\nHost: web.test\r\nX-Bad: a\x01b\r\n\r\n", (400,)),
    ("escape_in_value", b"GET /echo HTTP/1.1\r\nHost: web.test\r\nX-Bad: a\x1b[31mb\r\n\r\n", (400,)),
    ("space_before_colon", b"GET /echo HTTP/1.1\r\nHost: web.test\r\nX-Name : v\r\n\r\n", (400,)),
    ("two_hosts", b"GET /echo HTTP/1.1\r\nHost: web.test\r\nHost: other.test\r\n\r\n", (400,)),
    ("no_host", b"GET /echo HTTP/1.1\r\nX-Any: 1\r\n\r\n", (400,)),
    ("bad_request_line", b"GET  /echo HTTP/1.1\r\nHost: web.test\r\n\r\n", (400,)),
    ("head_over_64k", b"GET /echo HTTP/1.1\r\nHost: web.test\r\n"
                      + b"".join(b"X-Big-%d: " % i + b"a" * 34000 + b"\r\n" for i in range(2)) + b"\r\n", (431,)),
    ("over_100_headers", b"GET /echo HTTP/1.1\r\nHost: web.test\r\n"
                         + b"".join(b"X-H-%d: v\r\n" % i for i in range(101)) + b"\r\n", (431,)),
    ("target_over_8k", b"GET /echo?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: web.test\r\n\r\n", (414,)),
]

SMUGGLING = [
    ("cl_te", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\nG" + SMUGGLED[1:]),
    ("te_cl", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
              b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"),
    ("te_case", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\nTransfer-Encoding: Chunked\r\n\r\n"
                b"0\r\n\r\n" + SMUGGLED),
    ("te_twice", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("te_space_colon", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding : chunked\r\n"
                       b"Content-Length: 4\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("te_vtab", b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: \x0bchunked\r\nContent-Length: 4\r\n"
                b"\r\n0\r\n\r\n" + SMUGGLED),
]


class Malformed(ProxyCase):
    def test_malformed_requests_are_answered_by_the_gateway(self):
        before = self.counts()
        for name, data, statuses in MALFORMED:
            with self.subTest(case=name):
                c = self.raw(timeout=5)
                c.send_tolerant(data + SMUGGLED)
                r = c.read_response(timeout=5)
                self.assertIn(r.status, statuses, r)
                self.assertTrue(c.wait_closed(3), f"{name}: the gateway must close the connection")
                self.assertEqual(bytes(c.buf), b"", f"{name}: nothing may follow the error response")
        self.assertEqual(self.counts(), before, self.all_lines())

    def test_smuggling_attempts_never_reach_the_app(self):
        before = self.counts()
        for name, data in SMUGGLING:
            with self.subTest(case=name):
                c = self.raw(timeout=5)
                c.send_tolerant(data)
                r = c.read_response(timeout=5)
                self.assertIn(r.status, (400, 501), r)
                self.assertTrue(c.wait_closed(3), f"{name}: the gateway must close the connection")
                self.assertEqual(bytes(c.buf), b"")
        self.assertEqual(self.counts(), before, self.all_lines())
        # A broken chunked body after a good head may reach the app as one request, never two.
        for name, body in (("bad_chunk_size", b"zz\r\n"), ("chunk_overflow", b"1" * 40 + b"\r\n"),
                           ("chunk_no_crlf", b"4\r\nabcdXY0\r\n\r\n")):
            with self.subTest(case=name):
                self.reset_upstreams()
                c = self.raw(timeout=5)
                c.send_tolerant(b"POST /echo HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + body + SMUGGLED)
                self.assertTrue(c.wait_closed(5), f"{name}: the gateway must close the connection")
                self.assertNotIn(b"HTTP/1.1 200", bytes(c.buf))
                lines = self.all_lines()
                self.assertLessEqual(sum(len(v) for v in lines.values()), 1, lines)
                self.assertFalse(any("smuggled" in line for v in lines.values() for line in v), lines)

    def test_a_chunked_body_that_looks_like_a_request_stays_a_body(self):
        before = self.counts()["stable"]
        body = SMUGGLED * 3
        c = self.raw()
        c.send(b"POST /upload HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        self.assertEqual(self.counts()["stable"] - before, 1)
        self.assertFalse(any("smuggled" in line for line in self.up["stable"].count()["lines"]))

    def test_absolute_form_is_routed_by_its_authority(self):
        c = self.raw()
        c.send(b"GET http://web.test/echo?id=abs HTTP/1.1\r\nHost: other.test\r\n\r\n")
        r = c.read_response()
        data = self.assert_echo(r, "abs")
        self.assertEqual(data["path"], "/echo?id=abs")
        self.assertEqual(header_values(data, "Host"), ["web.test"])

    def test_slowloris_never_blocks_other_clients(self):
        before = self.counts()
        slow, opened, closed, answers = [], {}, {}, {}
        sel = selectors.DefaultSelector()
        try:
            for i in range(200):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                opened[s] = time.time()
                s.sendall(b"GET /echo?id=slow-%d HTTP/1.1\r\nHost: web.test\r\nX-Slow: " % i)
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                slow.append(s)
            normal = []

            def normal_requests():
                for i in range(50):
                    try:
                        r = self.get(f"/echo?id=normal-{i}", timeout=5)
                        normal.append((r.status, r.elapsed, r.json().get("id") if r.status == 200 else None))
                    except Exception as e:  # noqa: BLE001 - a failed request is recorded
                        normal.append((None, 99.0, repr(e)))
                    time.sleep(0.03)
            worker = threading.Thread(target=normal_requests, daemon=True)
            worker.start()
            deadline = time.time() + 12
            next_byte = time.time() + 1.0
            while len(closed) < len(slow) and time.time() < deadline:
                for key, _ in sel.select(timeout=0.1):
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        answers[s] = answers.get(s, b"") + data
                        continue
                    closed[s] = time.time()
                    sel.unregister(s)
                if time.time() >= next_byte:
                    next_byte += 1.0
                    for s in slow:
                        if s not in closed:
                            try:
                                s.send(b"a")
                            except (BlockingIOError, InterruptedError):
                                pass
                            except OSError:
                                closed[s] = time.time()
                                sel.unregister(s)
            worker.join(15)
            self.assertFalse(worker.is_alive())
        finally:
            sel.close()
            for s in slow:
                s.close()
        self.assertEqual(len(normal), 50)
        for i, (status, elapsed, rid) in enumerate(normal):
            self.assertEqual((status, rid), (200, f"normal-{i}"))
            self.assertLess(elapsed, 1.0, f"normal request {i} took {elapsed:.2f}s")
        self.assertEqual(len(closed), 200, "every slow connection is closed after --header-timeout")
        lifetimes = sorted(closed[s] - opened[s] for s in slow)
        self.assertGreaterEqual(lifetimes[0], 2.5, "closed before the 3 s header timeout")
        self.assertLessEqual(lifetimes[-1], 6.0, "not closed soon after the 3 s header timeout")
        for data in answers.values():
            self.assertRegex(data[:16], rb"^HTTP/1\.[01] 408 ", data[:200])
        after = self.counts()
        self.assertEqual(after["stable"] - before["stable"], 50, self.up["stable"].count()["lines"][-60:])
        self.assertFalse(any("slow-" in line for line in self.up["stable"].count()["lines"]))


# ---------------------------------------------------------------------------------------------
# Acceptance 5: routing — weighted sides, stickiness, predicates, reload under load


class Routing(ProxyCase):
    def test_weighted_sides_split_90_10(self):
        tally = {}
        failures = []
        lock = threading.Lock()
        deadline = time.time() + 120

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            local = {}
            try:
                for _ in range(2500):
                    if time.time() > deadline:
                        break
                    try:
                        r = keepalive_get(conn, "/whoami", "split.test")
                        if r.status != 200:
                            raise AssertionError(r)
                        name = r.body.decode()
                        local[name] = local.get(name, 0) + 1
                    except Exception as e:  # noqa: BLE001
                        with lock:
                            failures.append(repr(e))
                        conn.close()
            finally:
                conn.close()
                with lock:
                    for k, v in local.items():
                        tally[k] = tally.get(k, 0) + v

        run_threads([worker] * 4, timeout=150)
        self.assertEqual(failures, [])
        self.assertEqual(sum(tally.values()), 10000, tally)
        self.assertEqual(set(tally), {"stable", "canary"}, tally)
        share = tally["canary"] / 10000
        self.assertGreaterEqual(share, 0.08, tally)
        self.assertLessEqual(share, 0.12, tally)

    def test_sticky_cookie_keeps_a_client_on_its_side(self):
        def cookie_from(r):
            for value in r.all("Set-Cookie"):
                jar = http.cookies.SimpleCookie()
                jar.load(value)
                if "slipway_web" in jar:
                    return jar["slipway_web"].value
            return None

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            r = keepalive_get(conn, "/whoami", "sticky.test")
            self.assertEqual(r.status, 200, r)
            cookie = cookie_from(r)
            self.assertIsNotNone(cookie, f"the gateway sets the sticky cookie: {r.headers}")
            side = r.body.decode()
            for _ in range(200):
                r = keepalive_get(conn, "/whoami", "sticky.test", {"Cookie": f"other=1; slipway_web={cookie}"})
                self.assertEqual((r.status, r.body.decode()), (200, side))
                cookie = cookie_from(r) or cookie
        finally:
            conn.close()
        sides, cookies = set(), set()
        for i in range(50):
            r = call(self.port, "GET", "/whoami", host="sticky.test")
            c = cookie_from(r)
            self.assertIsNotNone(c)
            name = r.body.decode()
            sides.add(name)
            cookies.add(c)
            for _ in range(3):
                again = call(self.port, "GET", "/whoami", host="sticky.test", headers={"Cookie": f"slipway_web={c}"})
                self.assertEqual(again.body.decode(), name)
        self.assertEqual(sides, {"stable", "canary"})
        self.assertGreaterEqual(len(cookies), 2)
        # A stale cookie is replaced and the client then sticks to its new side.
        r = call(self.port, "GET", "/whoami", host="sticky.test", headers={"Cookie": "slipway_web=no-such-side"})
        self.assertEqual(r.status, 200)
        fresh = cookie_from(r)
        self.assertIsNotNone(fresh, "a stale sticky cookie is replaced")
        for _ in range(5):
            again = call(self.port, "GET", "/whoami", host="sticky.test", headers={"Cookie": f"slipway_web={fresh}"})
            self.assertEqual(again.body.decode(), r.body.decode())

    def test_sticky_header_keeps_a_user_on_its_side(self):
        seen = {}
        for u in range(40):
            names = {call(self.port, "GET", "/whoami", host="sticky-h.test",
                          headers={"X-User": f"user-{u}"}).body.decode() for _ in range(5)}
            self.assertEqual(len(names), 1, f"user-{u} switched sides: {names}")
            seen[u] = names.pop()
        self.assertEqual(set(seen.values()), {"stable", "canary"})

    def test_header_predicate_routes_to_the_sandbox(self):
        self.reset_upstreams()
        for i in range(30):
            name = "X-Slipway-Sandbox" if i % 2 else "x-slipway-sandbox"
            r = self.get("/whoami", headers={name: "qa-login"})
            self.assertEqual((r.status, r.body), (200, b"sandbox"))
        for i in range(30):
            self.assertEqual(self.get("/whoami").body, b"stable")
        for i in range(10):
            self.assertEqual(self.get("/whoami", headers={"X-Slipway-Sandbox": "qa-other"}).body, b"stable")
        # The predicate route sees the path, and wins over the /api route (higher priority).
        r = self.get("/echo?id=qa", headers={"X-Slipway-Sandbox": "qa-login"})
        self.assert_echo(r, "qa", upstream="sandbox")
        self.assertEqual(self.get("/api/x", headers={"X-Slipway-Sandbox": "qa-login"}).header("X-Upstream"), "sandbox")
        self.assertEqual(self.get("/api/x").header("X-Upstream"), "canary")
        self.assertEqual(self.counts(), {"stable": 40, "canary": 1, "sandbox": 32})

    def test_baggage_and_cookie_predicates(self):
        self.reset_upstreams()
        to_sandbox = ["sandbox=qa-login", "userId=alice,sandbox=qa-login", "userId=alice, sandbox=qa-login;ttl=30",
                      "sandbox=qa%2Dlogin"]
        to_stable = ["sandbox=qa-other", "mysandbox=qa-login", "userId=qa-login", "sandbox=qa-login-2"]
        for value in to_sandbox:
            self.assertEqual(self.get("/whoami", headers={"baggage": value}).body, b"sandbox", value)
        for value in to_stable:
            self.assertEqual(self.get("/whoami", headers={"baggage": value}).body, b"stable", value)
        for value in ("ab=b", "x=1; ab=b", "ab=b; y=2"):
            self.assertEqual(self.get("/whoami", headers={"Cookie": value}).body, b"sandbox", value)
        for value in ("ab=bb", "xab=b", "ab=a"):
            self.assertEqual(self.get("/whoami", headers={"Cookie": value}).body, b"stable", value)
        self.assertEqual(self.counts(), {"stable": len(to_stable) + 3, "canary": 0, "sandbox": len(to_sandbox) + 3})

    def test_round_robin_pool(self):
        self.reset_upstreams()
        names = [self.get("/whoami", host="rr.test").body.decode() for _ in range(100)]
        self.assertEqual(set(names), {"stable", "canary"})
        self.assertGreaterEqual(names.count("stable"), 40, names)
        self.assertGreaterEqual(names.count("canary"), 40, names)

    def test_host_matching(self):
        for host, expected in (("web.test", 200), ("WEB.TEST", 200), (f"web.test:{self.port}", 200),
                               ("a.web.test", 200), ("web.test.", None),
                               ("xweb.test", 404), ("nobody.test", 404)):
            with self.subTest(host=host):
                r = self.get("/whoami", host=host)
                if expected is None:  # a trailing dot may be normalised or not
                    self.assertIn(r.status, (200, 404))
                    continue
                self.assertEqual(r.status, expected, r)
                if expected == 200:
                    self.assertEqual(r.body, b"stable")

    def test_path_prefix_on_segment_boundary(self):
        for path, upstream in (("/api", "canary"), ("/api/", "canary"), ("/api/x/y?z=1", "canary"),
                               ("/apix", "stable"), ("/ap", "stable"), ("/", "stable"), ("/whoami", "stable")):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.header("X-Upstream"), upstream, r)

    def test_listener_route_sets(self):
        def whoami(port, host):
            r = call(port, "GET", "/whoami", host=host)
            return r.status, r.body if r.status == 200 else b""
        self.assertEqual(whoami(self.port, "web.test"), (200, b"stable"))
        self.assertEqual(whoami(self.port_a, "web.test"), (200, b"canary"))
        self.assertEqual(whoami(self.port_a, "only-a.test"), (200, b"canary"))
        self.assertEqual(whoami(self.port, "only-a.test")[0], 404)
        self.assertEqual(whoami(self.port_a, "split.test")[0], 404)
        self.assertEqual(call(self.port_a, "GET", "/_slipway/up", host="whatever.test").status, 200)

    def test_route_change_under_load(self):
        sequences = [[] for _ in range(4)]
        failures = []
        done = [0]
        lock = threading.Lock()
        deadline = time.time() + 90

        def worker(i):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                for _ in range(500):
                    if time.time() > deadline:
                        break
                    try:
                        r = keepalive_get(conn, "/whoami", "web.test")
                        if r.status != 200:
                            raise AssertionError(r)
                        sequences[i].append(r.body.decode())
                    except Exception as e:  # noqa: BLE001
                        with lock:
                            failures.append(repr(e))
                        conn.close()
                    with lock:
                        done[0] += 1
            finally:
                conn.close()

        def reloader():
            wait_until(lambda: done[0] >= 400, timeout=60, interval=0.005, what="load before the reload")
            self.write_routes(self.routes_yaml(stable=self.up["canary"].addr))
            self.gateway.signal(signal.SIGHUP)

        run_threads([lambda i=i: worker(i) for i in range(4)] + [reloader], timeout=120)
        self.assertEqual(failures, [])
        self.assertEqual(sum(len(s) for s in sequences), 2000)
        wait_until(lambda: self.get("/whoami").body == b"canary", timeout=5, what="the new route")
        for _ in range(20):
            self.assertEqual(self.get("/whoami").body, b"canary")
        self.assertTrue(any("stable" in seq for seq in sequences))
        for seq in sequences:
            switched = seq.index("canary") if "canary" in seq else len(seq)
            self.assertEqual(set(seq[switched:]) - {"canary"}, set(), "back to the old target after the reload")

    def test_invalid_reload_keeps_the_old_routes(self):
        self.assertEqual(self.get("/whoami").body, b"stable")
        size = len(self.gateway.log_text())
        self.write_routes("routes:\n  - name: web\n    hosts: [web.test\n    to: nowhere\n")
        self.gateway.signal(signal.SIGHUP)
        wait_until(lambda: len(self.gateway.log_text()) > size, timeout=5, what="a log line about the bad file")
        self.assertIsNone(self.gateway.proc.poll(), "an invalid route file must not stop the gateway")
        for _ in range(10):
            self.assertEqual(self.get("/whoami").body, b"stable")
        self.write_routes(self.routes_yaml(stable=self.up["sandbox"].addr))
        self.gateway.signal(signal.SIGHUP)
        wait_until(lambda: self.get("/whoami").body == b"sandbox", timeout=5, what="the reloaded route")


# ---------------------------------------------------------------------------------------------
# Corners


class Corners(ProxyCase):
    def test_up_on_any_host_and_escaped_404(self):
        for host in ("web.test", "nobody.test", "anything"):
            self.assertEqual(self.get("/_slipway/up", host=host).status, 200, host)
        r = self.get("/", host="nobody.test")
        self.assertEqual(r.status, 404)
        self.assertTrue(r.header("Content-Type", "").startswith("text/html"), r)
        for evil in (b"x<script>", b'x"><img/src=x/onerror=alert(1)>'):
            with self.subTest(host=evil):
                c = self.raw()
                c.send(b"GET / HTTP/1.1\r\nHost: " + evil + b"\r\nConnection: close\r\n\r\n")
                r = c.read_response()
                self.assertIn(r.status, (400, 404), r)
                raw = r.raw_head + r.body
                self.assertNotIn(b"<script", raw)
                self.assertNotIn(b"<img", raw)
                if r.status == 404 and b"script" in r.body:
                    self.assertIn(b"&lt;script&gt;", r.body)

    def test_forwarded_headers(self):
        data = self.assert_echo(self.get("/echo?id=f1"), "f1")
        self.assertEqual(header_values(data, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_values(data, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header_values(data, "X-Forwarded-Host"), ["web.test"])
        data = self.assert_echo(self.get("/echo?id=f2", headers={"X-Forwarded-For": "203.0.113.7"}), "f2")
        xff = header_values(data, "X-Forwarded-For")
        self.assertEqual(len(xff), 1, xff)
        self.assertEqual([p.strip() for p in xff[0].split(",")], ["203.0.113.7", "127.0.0.1"])

    def test_request_id_kept_when_valid_else_generated(self):
        valid = str(uuid.uuid4())
        r = self.get("/echo?id=r1", headers={"X-Request-Id": valid})
        data = self.assert_echo(r, "r1")
        self.assertEqual(header_values(data, "X-Request-Id"), [valid])
        self.assertEqual(r.header("X-Request-Id"), valid)
        generated = set()
        for sent in (None, "has spaces in it", "a" * 300, "", "semi;colon"):
            with self.subTest(sent=sent):
                r = self.get("/echo?id=r2", headers={"X-Request-Id": sent} if sent is not None else {})
                data = self.assert_echo(r, "r2")
                seen = header_values(data, "X-Request-Id")
                self.assertEqual(len(seen), 1, seen)
                self.assertNotEqual(seen[0], sent)
                self.assertRegex(seen[0], REQUEST_ID)
                self.assertEqual(r.header("X-Request-Id"), seen[0], "the response carries the same id")
                generated.add(seen[0])
        self.assertEqual(len(generated), 5, "a fresh id per request")

    def test_hop_by_hop_headers_removed(self):
        c = self.raw()
        c.send(request_bytes("GET", "/echo?id=hop", headers=[
            ("Connection", "keep-alive, X-Secret-Hop, TE"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"), ("TE", "deflate"), ("Upgrade", "h2c"), ("X-Keep", "yes")]))
        data = self.assert_echo(c.read_response(), "hop")
        names = {k.lower() for k, _ in data["headers"]}
        for gone in ("x-secret-hop", "keep-alive", "proxy-connection", "upgrade"):
            self.assertNotIn(gone, names, data["headers"])
        self.assertEqual(header_values(data, "X-Keep"), ["yes"])
        for value in header_values(data, "Connection"):  # the gateway's own, if any
            self.assertIn(value.lower(), ("keep-alive", "close"), data["headers"])
        for value in header_values(data, "TE"):  # the gateway's own, if any
            self.assertEqual(value.lower(), "trailers", data["headers"])

    def test_websocket_echo_through_the_tunnel(self):
        before = self.counts()["stable"]
        c = self.raw()
        key = base64.b64encode(os.urandom(16)).decode()
        c.send(request_bytes("GET", "/ws", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                    ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]))
        r = c.read_head()
        self.assertEqual(r.status, 101, r)
        self.assertEqual(r.header("Upgrade", "").lower(), "websocket")
        accept = base64.b64encode(hashlib.sha1(key.encode() + upstream_app.WS_GUID).digest()).decode()
        self.assertEqual(r.header("Sec-WebSocket-Accept"), accept)
        frame = b"\x81\x85\x37\xfa\x21\x3d" + bytes(b ^ m for b, m in zip(b"Hello", b"\x37\xfa\x21\x3d\x37"))
        for message in (frame, os.urandom(65536), b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n"):
            c.send(message)
            got = bytearray(c.buf)
            c.buf.clear()
            c.sock.settimeout(5)
            while len(got) < len(message):
                data = c.sock.recv(65536)
                self.assertTrue(data, "tunnel closed early")
                got += data
            self.assertEqual(bytes(got), message)
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.wait_closed(5), "the tunnel closes when both sides are done")
        self.assertEqual(self.counts()["stable"] - before, 1)

    def test_upgrade_refused_by_the_upstream_gives_the_full_200(self):
        c = self.raw()
        c.send(request_bytes("GET", "/noupgrade", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                           ("Sec-WebSocket-Version", "13")]))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, upstream_app.NOUPGRADE_BODY)
        if not c.wait_closed(0.3):  # kept open: it is still plain HTTP
            c.send(request_bytes("GET", "/echo?id=after-noupgrade"))
            self.assert_echo(c.read_response(), "after-noupgrade")

    def test_pipelined_requests_come_back_in_order(self):
        ids = [uuid.uuid4().hex for _ in range(5)]
        c = self.raw()
        c.send(request_bytes("GET", f"/echo?id={ids[0]}") + request_bytes("GET", f"/echo?id={ids[1]}")
               + request_bytes("GET", f"/echo?id={ids[2]}"))
        for rid in ids[:3]:
            self.assert_echo(c.read_response(), rid)
        c.send(request_bytes("POST", f"/echo?id={ids[3]}", body=b"pipelined body")
               + request_bytes("HEAD", f"/echo?id={ids[4]}") + request_bytes("GET", "/status/204")
               + request_bytes("GET", f"/echo?id={ids[0]}"))
        self.assert_echo(c.read_response(), ids[3], b"pipelined body", "POST")
        head = c.read_response("HEAD")
        self.assertEqual((head.status, head.body), (200, b""))
        self.assertEqual(c.read_response().status, 204)
        self.assert_echo(c.read_response(), ids[0])
        self.assertEqual(c.quiet_for(0.3), b"")

    def test_route_with_nothing_listening_gives_502(self):
        r = self.get("/whoami", host="dead.test")
        self.assertEqual(r.status, 502, r)
        self.assertLess(r.elapsed, 2.0)

    def test_killed_upstream_gives_502_then_recovers(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.assertEqual(keepalive_get(conn, "/whoami", "web.test").body, b"stable")
            self.up["stable"].kill()
            self.up["stable"].stop()  # closes its log files
            r = keepalive_get(conn, "/whoami", "web.test")
            self.assertEqual(r.status, 502, r)
            r = call(self.port, "GET", "/whoami", host="web.test")
            self.assertEqual(r.status, 502, r)
            self.assertLess(r.elapsed, 3.0)
        finally:
            conn.close()
        self.up["stable"] = Upstream(self.tmp, "stable", port=self.up["stable"].port).start().wait_ready()
        wait_until(lambda: self.get("/whoami").body == b"stable", timeout=10, what="recovery")

    def test_upstream_close_then_next_request_works(self):
        c = self.raw()
        for i in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                r = keepalive_get(conn, "/close", "web.test")
                self.assertEqual((r.status, r.body), (200, b"closing\n"))
                r = keepalive_get(conn, f"/echo?id=next-{i}", "web.test")  # http.client reconnects if closed
                self.assert_echo(r, f"next-{i}")
            finally:
                conn.close()
            c.send(request_bytes("GET", "/close"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"closing\n"))
            if c.wait_closed(0.2):
                c = self.raw()
            c.send(request_bytes("GET", f"/echo?id=raw-{i}"))
            self.assert_echo(c.read_response(), f"raw-{i}")
            self.assert_echo(self.get(f"/echo?id=fresh-{i}"), f"fresh-{i}")

    def test_an_instance_that_hangs_up_fails_over_for_safe_requests_only(self):
        # A port that accepts and closes at once, as a port proxy whose app is gone does.
        hangup = socket.socket()
        self.blackhole.append(hangup)
        hangup.bind(("127.0.0.1", 0))
        hangup.listen(64)
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    c, _ = hangup.accept()
                except OSError:
                    return
                c.close()
        threading.Thread(target=serve, daemon=True).start()
        addr = f"127.0.0.1:{hangup.getsockname()[1]}"
        try:
            self.write_routes(self.routes_yaml() + f"  - name: hang\n    hosts: [hang.test]\n    to: [{addr}, {self.up['stable'].addr}]\n"
                              f"  - name: hang-only\n    hosts: [hang-only.test]\n    to: [{addr}]\n")
            self.gateway.signal(signal.SIGHUP)
            wait_until(lambda: self.get("/whoami", host="hang-only.test").status == 502, timeout=5, what="reload")
            for _ in range(20):  # round robin starts on each side in turn: every GET is answered
                r = self.get("/whoami", host="hang.test")
                self.assertEqual((r.status, r.body), (200, b"stable"))
            statuses = [call(self.port, "POST", "/echo", host="hang.test", body=b"x" * 10).status for _ in range(20)]
            self.assertIn(502, statuses, "a POST is never sent twice")
            self.assertIn(200, statuses)
            r = self.get("/whoami", host="hang-only.test")
            self.assertEqual(r.status, 502)
            self.assertIn(b"closed the connection", r.body)
        finally:
            stop.set()

    def test_http10_gets_no_chunked_response(self):
        cases = [("/trailers", b"".join(upstream_app.TRAILER_BODY)),
                 ("/download?size=3000000&framing=chunked", pattern_bytes(3000000)),
                 ("/sse?n=2&gap=0.05&framing=chunked", None), ("/whoami", b"stable")]
        for path, expected in cases:
            with self.subTest(path=path):
                c = self.raw()
                c.send(request_bytes("GET", path, version="1.0"))
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.version.startswith(b"HTTP/1."))
                self.assertIsNone(r.header("Transfer-Encoding"), r.headers)
                if expected is None:
                    self.assertEqual(r.body.count(b"\n\n"), 2, r.body)
                    self.assertTrue(r.body.startswith(b"id: 1\n"), r.body)
                else:
                    self.assertEqual(r.body, expected)
                self.assertTrue(c.wait_closed(3), "HTTP/1.0 without keep-alive: the gateway closes")
        # HTTP/1.0 keep-alive: either honoured with a delimited body or the connection closes.
        c = self.raw()
        c.send(request_bytes("GET", "/echo?id=ka10", version="1.0", headers=[("Connection", "keep-alive")]))
        r = c.read_response()
        self.assert_echo(r, "ka10")
        if r.header("Content-Length") is not None and not c.wait_closed(0.3):
            c.send(request_bytes("GET", "/echo?id=ka10b", version="1.0", headers=[("Connection", "keep-alive")]))
            self.assert_echo(c.read_response(), "ka10b")

    def test_slipway_tokens_never_forwarded_or_logged(self):
        token = "slw_" + uuid.uuid4().hex
        session = "sls_" + uuid.uuid4().hex
        r = self.get("/echo?id=tok", headers={"Authorization": f"Bearer {token}"})
        data = self.assert_echo(r, "tok")
        self.assertNotIn(token, r.body.decode())
        self.assertEqual(header_values(data, "Authorization"), [])
        r = self.get("/echo?id=own", headers={"Authorization": "Bearer app-own-token"})
        self.assertEqual(header_values(self.assert_echo(r, "own"), "Authorization"), ["Bearer app-own-token"])
        r = self.get("/echo?id=sess", headers={"Authorization": f"Bearer {session}"})
        self.assertNotIn(session, r.body.decode())
        self.assertEqual(self.get("/", host="nobody.test", headers={"Authorization": f"Bearer {token}"}).status, 404)
        c = self.raw()
        c.send_tolerant(b"GET /echo HTTP/1.1\r\nHost: web.test\r\nAuthorization: Bearer " + token.encode()
                        + b"\r\nX-Bad: a\x01b\r\n\r\n")
        self.assertEqual(c.read_response().status, 400)
        wait_until(lambda: "/echo" in self.gateway.access_text(), timeout=5, what="the access log")
        time.sleep(0.5)
        for text in (self.gateway.log_text(), self.gateway.access_text()):
            self.assertNotIn(token, text)
            self.assertNotIn(session, text)

    def test_access_log_has_one_json_line_per_request(self):
        tag = uuid.uuid4().hex[:12]
        sent = [("GET", f"/echo/{tag}-1", "web.test", None, 200),
                ("POST", f"/echo/{tag}-2", "web.test", b"posted", 200),
                ("HEAD", f"/echo/{tag}-3", "web.test", None, 200),
                ("GET", f"/{tag}-4", "nobody.test", None, 404),
                ("GET", f"/missing/{tag}-5", "web.test", None, 404),
                ("GET", f"/whoami/{tag}-6", "dead.test", None, 502)]
        for method, path, host, body, status in sent:
            self.assertEqual(call(self.port, method, path, host=host, body=body).status, status, path)

        def entries():
            out = []
            for line in self.gateway.access_text().splitlines():
                if line.strip():
                    out.append(json.loads(line))  # every line is one JSON object
            return out

        def logged():
            found = {}
            for e in entries():
                for method, path, _, _, status in sent:
                    if str(e.get("path", "")).startswith(path):
                        found[path] = e
            return found if len(found) == len(sent) else None
        found = wait_until(logged, timeout=5, what="access log lines for every request")
        for method, path, _, _, status in sent:
            e = found[path]
            self.assertIsInstance(e, dict)
            self.assertEqual(int(e["status"]), status, e)
            self.assertEqual(e["method"], method, e)
            self.assertEqual(e["path"], path, e)


# ---------------------------------------------------------------------------------------------
# Timeouts and limits (their own gateway flags)


class Timeouts(ProxyCase):
    GATEWAY_ARGS = ["--header-timeout", "3s", "--upstream-timeout", "2s", "--idle-timeout", "2s",
                    "--connect-timeout", "1s"]

    def test_connect_timeout(self):
        t0 = time.time()
        done = []
        worker = threading.Thread(target=lambda: done.append(self.get("/whoami", host="blackhole.test")), daemon=True)
        worker.start()
        time.sleep(0.2)
        self.assertEqual(self.get("/whoami").body, b"stable", "other routes are not held up")
        worker.join(10)
        self.assertEqual(len(done), 1)
        self.assertIn(done[0].status, (502, 504), done[0])
        self.assertGreaterEqual(time.time() - t0, 0.8)
        self.assertLess(done[0].elapsed, 3.5, "answered soon after --connect-timeout 1s")

    def test_slow_upstream_gives_504(self):
        r = self.get("/slow?delay=5&id=slow")
        self.assertEqual(r.status, 504, r)
        self.assertGreaterEqual(r.elapsed, 1.5)
        self.assertLess(r.elapsed, 3.5)
        self.assertEqual(self.get("/whoami").body, b"stable")
        self.assert_echo(self.get("/slow?delay=0.5&id=fast-enough"), "fast-enough")

    def test_idle_keepalive_is_closed(self):
        c = self.raw()
        t0 = time.time()
        for i in range(8):  # activity every 0.5 s keeps it open past the idle timeout
            c.send(request_bytes("GET", f"/echo?id=busy-{i}"))
            self.assert_echo(c.read_response(), f"busy-{i}")
            time.sleep(0.5)
        self.assertGreater(time.time() - t0, 3.0)
        self.assertFalse(c.eof)
        idle_from = time.time()
        self.assertTrue(c.wait_closed(6), "an idle keep-alive connection is closed")
        idle = time.time() - idle_from
        self.assertGreaterEqual(idle, 1.0)
        self.assertLess(idle, 5.0)
        self.assertEqual(bytes(c.buf), b"")


class Limits(ProxyCase):
    GATEWAY_ARGS = ["--threads", "2", "--header-timeout", "3s", "--max-connections", "20"]

    def test_max_connections(self):
        time.sleep(0.3)  # the readiness probes' connections are gone
        held = [self.raw(timeout=5) for _ in range(20)]
        for i, c in enumerate(held):
            c.send(request_bytes("GET", f"/echo?id=held-{i}"))
            self.assert_echo(c.read_response(), f"held-{i}")
        for i in range(5):
            t0 = time.time()
            extra = self.raw(timeout=5)
            extra.send_tolerant(request_bytes("GET", f"/echo?id=extra-{i}"))
            self.assertTrue(extra.wait_closed(2.0), "an extra connection is refused or closed quickly")
            self.assertLess(time.time() - t0, 2.5)
            if extra.buf:
                self.assertRegex(bytes(extra.buf), rb"^HTTP/1\.1 (503|429) ", bytes(extra.buf[:200]))
        for i, c in enumerate(held):  # the existing connections still work
            c.send(request_bytes("GET", f"/echo?id=again-{i}"))
            self.assert_echo(c.read_response(), f"again-{i}")
        for c in held[:10]:
            c.close()
        wait_until(lambda: self.get("/whoami", timeout=2).status == 200, timeout=5, what="a free slot")
        self.assertFalse(any("extra-" in line for line in self.up["stable"].count()["lines"]))


# ---------------------------------------------------------------------------------------------
# Broken apps and hostile clients: each test reproduces a way to make one client's response
# reach another, or a credential reach an app, and checks it no longer does.


class Hostile(ProxyCase):
    GATEWAY_ARGS = ["--threads", "1", "--header-timeout", "3s"]

    def test_unsolicited_bytes_on_an_idle_upstream_never_reach_the_next_client(self):
        for round_ in range(5):
            self.assertEqual(self.get("/inject?delay=0.03").status, 200)
            time.sleep(0.08)  # the app has written its unasked-for response by now
            for i in range(4):
                r = self.get(f"/echo?id=victim-{round_}-{i}")
                self.assertNotIn(b"INJECTED", r.body)
                self.assert_echo(r, f"victim-{round_}-{i}")

    def test_a_body_the_app_did_not_read_is_never_answered_to_another_client(self):
        smuggled = request_bytes("GET", "/echo?id=smuggled", host="x")
        for round_ in range(5):
            r = call(self.port, "POST", "/reject-early", body=smuggled,
                     headers={"Content-Type": "text/plain"})
            self.assertEqual(r.status, 401)
            for i in range(4):
                v = self.get(f"/echo?id=victim-{round_}-{i}")
                self.assert_echo(v, f"victim-{round_}-{i}")

    def test_slipway_credentials_in_any_spelling_are_stripped(self):
        for value in ("bearer slw_abc", "BEARER slw_abc", "Bearer   slw_abc", "Bearer\tsls_abc"):
            echo = self.get("/echo?id=a", headers={"Authorization": value}).json()
            self.assertEqual(header_values(echo, "authorization"), [], value)
        echo = self.get("/echo?id=c", headers={"Cookie": "x=1,slipway_session=abc; slipway_session = d; y=2"}).json()
        cookies = " ".join(header_values(echo, "cookie"))
        self.assertNotIn("slipway_session", cookies)
        self.assertIn("x=1", cookies)
        self.assertIn("y=2", cookies)

    def test_request_trailers_never_reach_the_app(self):
        body = b"5\r\nhello\r\n0\r\nAuthorization: Bearer slw_trailer\r\nCookie: slipway_session=t\r\n\r\n"
        c = self.raw()
        c.send(request_bytes("POST", "/echo?id=tr", headers=[("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
        data = self.assert_echo(r, "tr", body=b"hello")
        self.assertEqual(data["trailers"], [])
        self.assertNotIn("slw_trailer", json.dumps(data))

    def test_max_body_counts_the_body_not_its_chunk_framing(self):
        def chunked(sizes):
            return b"".join(b"%x\r\n" % n + b"a" * n + b"\r\n" for n in sizes) + b"0\r\n\r\n"
        for sizes, want in (([1024], 200), ([512, 512], 200), ([1] * 200, 200), ([1025], 413),
                            ([600, 425], 413)):
            c = self.raw()
            c.send_tolerant(request_bytes("POST", "/echo?id=m", host="small.test",
                                          headers=[("Transfer-Encoding", "chunked")]) + chunked(sizes))
            self.assertEqual(c.read_response().status, want, sizes)

    def test_upgrade_only_to_what_was_offered_and_never_for_http10(self):
        c = self.raw()
        c.send(request_bytes("GET", "/switch-anyway", headers=[("Connection", "Upgrade"), ("Upgrade", "h2c")]))
        self.assertEqual(c.read_response().status, 502)
        c = self.raw()
        c.send(request_bytes("GET", "/echo?id=ten", version="1.0",
                             headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        r = c.read_response()
        echo = self.assert_echo(r, "ten")
        self.assertEqual(header_values(echo, "upgrade"), [], "an HTTP/1.0 Upgrade is ignored")

    def test_hosts_that_are_not_host_port_are_refused(self):
        for host in ("web.test:abc", "web.test:99999", "web.test:", "[::1", "web.test:80:80"):
            c = self.raw()
            c.send(request_bytes("GET", "/echo?id=h", host=host))
            self.assertEqual(c.read_response().status, 400, host)
        self.assertEqual(self.counts()["stable"], 0)

    def test_a_storm_of_interim_responses_is_cut_off(self):
        c = self.raw()
        c.send(request_bytes("GET", "/interim-storm?n=200"))
        r = c.read_response()
        self.assertEqual(r.status, 502)
        self.assertLessEqual(len(r.interim), 16)
        self.assert_echo(self.get("/echo?id=after"), "after")


# ---------------------------------------------------------------------------------------------
# Process lifecycle: signals and startup errors


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="slipway-proxy-life-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def routes(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_gateway(self, *args, timeout=10):
        p = subprocess.Popen([SLIPWAY, "gateway", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise AssertionError(f"gateway still running after {timeout}s: {err[-500:]!r}")
        return p.returncode, err.decode(errors="replace")

    def test_sigterm_and_sigint_exit_0(self):
        path = self.routes("ok.yaml", "routes:\n  - name: web\n    hosts: [web.test]\n    to: 127.0.0.1:1\n")
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                port = free_port()
                with open(os.path.join(self.tmp, "gw.log"), "ab") as log:
                    p = subprocess.Popen([SLIPWAY, "gateway", "--routes", path, "--listen", f"127.0.0.1:{port}"],
                                         stdout=log, stderr=subprocess.STDOUT)
                self.procs.append(p)
                wait_until(lambda: p.poll() is None and call(port, "GET", "/_slipway/up", timeout=2).status == 200,
                           timeout=15, what="gateway up")
                p.send_signal(sig)
                self.assertEqual(p.wait(10), 0)

    def test_startup_errors_exit_2_with_one_line(self):
        bad_yaml = self.routes("routes-syntax.yaml", "routes:\n  - name: web\n    hosts: [web.test\n")
        dup = self.routes("routes-dup.yaml", "routes:\n  - name: web\n    hosts: [a.test]\n    to: 127.0.0.1:1\n"
                                             "  - name: web\n    hosts: [b.test]\n    to: 127.0.0.1:2\n")
        no_name = self.routes("routes-noname.yaml", "routes:\n  - hosts: [a.test]\n    to: 127.0.0.1:1\n")
        bad_size = self.routes("routes-size.yaml", "routes:\n  - name: web\n    hosts: [a.test]\n"
                                                   "    max_body: lots\n    to: 127.0.0.1:1\n")
        good = self.routes("routes-good.yaml", "routes:\n  - name: web\n    hosts: [a.test]\n    to: 127.0.0.1:1\n")
        port = f"127.0.0.1:{free_port()}"
        cases = [
            ("no_routes_flag", ["--listen", port], None, None),
            ("syntax", ["--routes", bad_yaml, "--listen", port], "routes-syntax.yaml", None),
            ("duplicate", ["--routes", dup, "--listen", port], "routes-dup.yaml", 5),
            ("no_name", ["--routes", no_name, "--listen", port], "routes-noname.yaml", None),
            ("bad_size", ["--routes", bad_size, "--listen", port], "routes-size.yaml", 4),
            ("missing_file", ["--routes", os.path.join(self.tmp, "nope.yaml"), "--listen", port], "nope.yaml", None),
            ("unknown_flag", ["--routes", good, "--listen", port, "--no-such-flag"], None, None),
            ("bad_listen", ["--routes", good, "--listen", "not-an-address"], None, None),
            ("bad_duration", ["--routes", good, "--listen", port, "--header-timeout", "soon"], None, None),
        ]
        for name, args, mention, line in cases:
            with self.subTest(case=name):
                code, err = self.run_gateway(*args)
                self.assertEqual(code, 2, err)
                lines = [x for x in err.splitlines() if x.strip()]
                self.assertTrue(lines, "a startup error says why on stderr")
                if mention:  # a route file problem: one line naming the file
                    self.assertEqual(len(lines), 1, err)
                    self.assertTrue(lines[0].startswith("slipway: "), err)
                    self.assertIn(mention, lines[0])
                if line is not None:
                    self.assertRegex(lines[0], re.escape(mention) + f":{line}(:\\d+)?: ")


if __name__ == "__main__":
    unittest.main()
