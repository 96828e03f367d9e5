"""A real HTTP/1.1 upstream for the gateway's end-to-end tests. Standard library only.

Raw sockets, one thread per connection, keep-alive and pipelining, strict request framing
(Content-Length or chunked, refused when ambiguous). Every request it receives is counted
(the first line of every request head, even a malformed one, is recorded) except /count and
/reset, so a test can prove that a request never reached the app.

    python3 upstream.py --port P --name NAME [--state-file F]

Prints `ready <port>` on stdout once listening (with --port 0 the kernel picks the port).
--state-file F: {"name", "port", "pid"} is written there (atomically) once listening.
Every response carries `X-Upstream: NAME`.

Endpoints (the path decides; the query carries parameters):
  GET  /count              {"count": N, "lines": [last 200 request lines]} (not counted)
  POST /reset              count and lines back to zero (not counted)
  *    /echo, /echo/...    {"name","method","path","headers":[[n,v],...],"length","sha256","id",
                            "http": "1.1"}; HEAD: the same headers, no body
  *    /interim            writes "100 Continue" and "103 Early Hints" before reading the body,
                           then the /echo answer
  *    /status/N           status N; 204 and 304 (with an ETag) have no body
  GET  /sse?n=5&gap=0.3&framing=chunked|close
                           text/event-stream; event k (1..n) is `id: k` + `data: {"k":k,"t":now}`,
                           then a sleep of `gap` seconds (none after the last)
  GET  /download?size=N&framing=length|chunked|close
                           N bytes of the PATTERN (a fixed 1 MiB block repeated, truncated)
  POST/PUT /upload         streams the body through sha256: {"length", "sha256"}
  GET  /trailers           chunked body TRAILER_BODY, trailer X-Checksum: sha256 of the body
  GET  /ws                 Upgrade: websocket → 101 (proper Sec-WebSocket-Accept), then every
                           byte received is echoed back until the peer closes; else 426
  *    /noupgrade          a normal 200 with NOUPGRADE_BODY, even when an Upgrade was asked
  *    /slow?delay=S       reads the body, sleeps S seconds, then the /echo answer
  *    /close              200 "closing\\n" with Connection: close, then closes
  *    /whoami             NAME (text/plain)
  *    /health             "ok"
Anything unparseable gets 400 (or 501 for an unknown transfer coding) and the connection is
closed; the server never dies on client garbage.
"""
import argparse
import base64
import collections
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

BLOCK_SIZE = 1 << 20
_pattern = None
_pattern_lock = threading.Lock()

TRAILER_BODY = [b"first part of a body with a trailer\n", b"second part\n", b"third and last part\n"]
NOUPGRADE_BODY = b"no upgrade here, just a normal response body\n" * 20
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

MAX_HEAD = 1 << 20
MAX_LINE = 64 * 1024


def pattern():
    """The fixed 1 MiB block that /download repeats (tests build the same bytes)."""
    global _pattern
    with _pattern_lock:
        if _pattern is None:
            _pattern = bytes((i * 7 + 3) % 251 for i in range(BLOCK_SIZE))
        return _pattern


class BadRequest(Exception):
    def __init__(self, status, why):
        super().__init__(why)
        self.status = status


class Closed(Exception):
    """The peer closed the connection."""


REASONS = {100: "Continue", 101: "Switching Protocols", 103: "Early Hints", 200: "OK", 201: "Created",
           202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
           426: "Upgrade Required", 500: "Internal Server Error", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.lines = collections.deque(maxlen=200)

    def record(self, line):
        with self.lock:
            self.count += 1
            self.lines.append(line)

    def snapshot(self):
        with self.lock:
            return {"count": self.count, "lines": list(self.lines)}

    def reset(self):
        with self.lock:
            self.count = 0
            self.lines.clear()


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version  # "1.0" or "1.1"
        self.headers = headers  # [(name, value)] as received
        split = urllib.parse.urlsplit(target)
        self.path = split.path if target.startswith("/") else (split.path or "/")
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.framing = "none"
        self.length = 0
        self.trailers = []

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def tokens(self, name):
        out = []
        for v in self.all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def param(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def keep_alive(self):
        conn = self.tokens("connection")
        if self.version == "1.0":
            return "keep-alive" in conn
        return "close" not in conn


TOKEN_CHARS = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Connection:
    def __init__(self, sock, server):
        self.sock = sock
        self.server = server
        self.buf = bytearray()

    # ---- reading ----
    def _recv(self, n=256 * 1024):
        try:
            data = self.sock.recv(n)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            raise Closed()
        return data

    def read_head(self):
        """The next request head (without the empty line) or None on a clean close."""
        while True:
            # Leading empty lines before a request line are allowed (RFC 9112 §2.2).
            while self.buf.startswith(b"\r\n"):
                del self.buf[:2]
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadRequest(431, "head too large")
            try:
                self.buf += self._recv()
            except Closed:
                if self.buf.strip(b"\r\n"):
                    self.server.stats.record("(incomplete) " + bytes(self.buf[:200]).decode("latin-1"))
                return None

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > MAX_LINE:
                raise BadRequest(400, "line too long")
            self.buf += self._recv()

    def read_exact_into(self, n, sink):
        """Feeds exactly n body bytes to sink(piece), never holding more than one read."""
        while n > 0:
            if self.buf:
                take = min(n, len(self.buf))
                sink(bytes(self.buf[:take]))
                del self.buf[:take]
                n -= take
                continue
            data = self._recv(min(n, 256 * 1024))
            if len(data) > n:  # cannot happen with min(); kept for safety
                self.buf += data[n:]
                data = data[:n]
            sink(data)
            n -= len(data)

    def read_body(self, req, sink):
        """Reads the request body by its framing, feeding sink; returns the body length."""
        if req.framing == "length":
            self.read_exact_into(req.length, sink)
            return req.length
        if req.framing != "chunked":
            return 0
        total = 0
        while True:
            line = self.read_line()
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not size_text or len(size_text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise BadRequest(400, "bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                while True:
                    t = self.read_line()
                    if not t:
                        return total
                    name, sep, value = t.partition(b":")
                    if not sep or not name or any(c not in TOKEN_CHARS for c in name):
                        raise BadRequest(400, "bad trailer")
                    req.trailers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
            self.read_exact_into(size, sink)
            total += size
            if self.read_line() != b"":
                raise BadRequest(400, "chunk not followed by CRLF")

    # ---- writing ----
    def send(self, data):
        self.sock.sendall(data)

    def head_bytes(self, status, headers, version="1.1"):
        lines = [f"HTTP/{version} {status} {REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append(f"X-Upstream: {self.server.name}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def respond(self, req, status, body=b"", content_type="text/plain", headers=(), close=False):
        """A complete response with Content-Length (none for 1xx/204/304); HEAD gets no body."""
        h = list(headers)
        if status not in (204, 304) and status >= 200:
            h.append(("Content-Type", content_type))
            h.append(("Content-Length", str(len(body))))
        if close:
            h.append(("Connection", "close"))
        elif req is not None and req.version == "1.0" and req.keep_alive:
            h.append(("Connection", "keep-alive"))
        send_body = body if (req is None or req.method != "HEAD") and status not in (204, 304) else b""
        self.send(self.head_bytes(status, h) + send_body)
        return not close

    # ---- the request loop ----
    def serve(self):
        while True:
            try:
                head = self.read_head()
            except Closed:
                return
            if head is None:
                return
            try:
                req = self.parse(head)
            except BadRequest as e:
                self.respond(None, e.status, (str(e) + "\n").encode(), close=True)
                return
            try:
                keep = self.handle(req)
            except BadRequest as e:
                self.respond(None, e.status, (str(e) + "\n").encode(), close=True)
                return
            if not keep or not req.keep_alive:
                return

    def parse(self, head):
        lines = head.split(b"\r\n")
        first = lines[0].decode("latin-1")
        path_only = first.split(" ")[1].split("?")[0] if first.count(" ") >= 2 else ""
        if path_only not in ("/count", "/reset"):
            self.server.stats.record(first[:1000])
        parts = first.split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1] or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest(400, "bad request line")
        if any(c not in TOKEN_CHARS for c in parts[0].encode("latin-1")):
            raise BadRequest(400, "bad method")
        headers = []
        for raw in lines[1:]:
            if raw[:1] in (b" ", b"\t"):
                raise BadRequest(400, "obs-fold")
            name, sep, value = raw.partition(b":")
            if not sep or not name or any(c not in TOKEN_CHARS for c in name):
                raise BadRequest(400, "bad header name")
            value = value.strip(b" \t")
            if any(c < 0x20 and c != 0x09 or c == 0x7F for c in value):
                raise BadRequest(400, "control character in a header value")
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        req = Request(parts[0], parts[1], parts[2][5:], headers)
        if req.version == "1.1" and len(req.all("host")) != 1:
            raise BadRequest(400, "Host missing or repeated")
        te = req.all("transfer-encoding")
        cl = req.all("content-length")
        if te and cl:
            raise BadRequest(400, "both Content-Length and Transfer-Encoding")
        if te:
            if [t.strip().lower() for t in ",".join(te).split(",")] != ["chunked"]:
                raise BadRequest(501, "unsupported transfer coding")
            req.framing = "chunked"
        elif cl:
            if len(cl) != 1 or not cl[0].isdigit() or not cl[0].isascii() or len(cl[0]) > 18:
                raise BadRequest(400, "bad Content-Length")
            req.length = int(cl[0])
            req.framing = "length" if req.length else "none"
        return req

    def maybe_continue(self, req):
        if req.framing != "none" and req.version == "1.1" and \
                (req.header("expect") or "").lower() == "100-continue":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def consume(self, req):
        h = hashlib.sha256()
        n = self.read_body(req, h.update)
        return n, h.hexdigest()

    def echo_body(self, req, length, digest):
        return json.dumps({
            "name": self.server.name, "method": req.method, "path": req.target,
            "headers": [[k, v] for k, v in req.headers], "length": length, "sha256": digest,
            "id": req.param("id"), "http": req.version, "trailers": req.trailers,
        }).encode()

    def handle(self, req):
        p = req.path
        if p == "/count" and req.method == "GET":
            self.consume(req)
            return self.respond(req, 200, json.dumps(self.server.stats.snapshot()).encode(), "application/json")
        if p == "/reset" and req.method == "POST":
            self.consume(req)
            self.server.stats.reset()
            return self.respond(req, 200, b'{"ok": true}', "application/json")
        if p == "/interim":
            if req.version == "1.1":
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n"
                          b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            n, d = self.consume(req)
            return self.respond(req, 200, self.echo_body(req, n, d), "application/json")
        if p == "/ws":
            return self.websocket(req)
        if p == "/reject-early":
            # A careless app: refuses before reading the body, then takes the body's bytes for
            # its next request (the request loop goes on reading this connection).
            return self.respond(req, 401, b"no\n")
        if p == "/inject":
            # A broken app: after a correct answer it writes a response nobody asked for.
            self.consume(req)
            self.respond(req, 200, b"injected soon\n")
            time.sleep(float(req.param("delay", "0.05")))
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nINJECTED!")
            return True
        if p == "/interim-storm":
            self.consume(req)
            n = int(req.param("n", "100"))
            self.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" * n)
            return self.respond(req, 200, b"after the storm\n")
        if p == "/switch-anyway":
            # Switches to websocket whatever the client offered.
            self.consume(req)
            self.send(self.head_bytes(101, [("Upgrade", "websocket"), ("Connection", "Upgrade")]))
            return False
        self.maybe_continue(req)
        if p == "/upload":
            if req.method not in ("POST", "PUT"):
                self.consume(req)
                return self.respond(req, 405, b"POST or PUT\n", headers=[("Allow", "POST, PUT")])
            n, d = self.consume(req)
            return self.respond(req, 200, json.dumps({"length": n, "sha256": d}).encode(), "application/json")
        n, d = self.consume(req)
        if p == "/echo" or p.startswith("/echo/"):
            return self.respond(req, 200, self.echo_body(req, n, d), "application/json")
        if p.startswith("/status/"):
            try:
                code = int(p[len("/status/"):])
            except ValueError:
                code = 0
            if not 200 <= code <= 599:
                return self.respond(req, 400, b"status must be 200..599\n")
            headers = [("ETag", '"v1"')] if code == 304 else []
            return self.respond(req, code, f"status {code}\n".encode(), headers=headers)
        if p == "/sse":
            return self.sse(req)
        if p == "/download":
            return self.download(req)
        if p == "/trailers":
            return self.trailers(req)
        if p == "/noupgrade":
            return self.respond(req, 200, NOUPGRADE_BODY)
        if p == "/slow":
            time.sleep(float(req.param("delay", "1")))
            return self.respond(req, 200, self.echo_body(req, n, d), "application/json")
        if p == "/close":
            self.respond(req, 200, b"closing\n", close=True)
            return False
        if p == "/whoami":
            return self.respond(req, 200, self.server.name.encode())
        if p == "/health":
            return self.respond(req, 200, b"ok\n")
        return self.respond(req, 404, b"not found\n")

    def framing_of(self, req, default):
        framing = req.param("framing", default)
        if framing not in ("length", "chunked", "close"):
            raise BadRequest(400, "framing must be length, chunked or close")
        if framing == "chunked" and req.version == "1.0":
            framing = "close"  # no chunked coding towards an HTTP/1.0 client
        return framing

    def stream_head(self, req, framing, content_type, extra=()):
        h = [("Content-Type", content_type), *extra]
        if framing == "chunked":
            h.append(("Transfer-Encoding", "chunked"))
        elif framing == "close":
            h.append(("Connection", "close"))
        self.send(self.head_bytes(200, h))

    def chunk(self, framing, data):
        if not data:
            return
        if framing == "chunked":
            self.send(b"%x\r\n" % len(data))
            self.send(data)
            self.send(b"\r\n")
        else:
            self.send(data)

    def sse(self, req):
        framing = self.framing_of(req, "chunked")
        if framing == "length":
            raise BadRequest(400, "sse framing is chunked or close")
        n = int(req.param("n", "5"))
        gap = float(req.param("gap", "0.3"))
        self.stream_head(req, framing, "text/event-stream", [("Cache-Control", "no-cache")])
        if req.method == "HEAD":
            return framing != "close"
        for k in range(1, n + 1):
            event = f"id: {k}\ndata: {json.dumps({'k': k, 't': time.time()})}\n\n".encode()
            self.chunk(framing, event)
            if k < n:
                time.sleep(gap)
        if framing == "chunked":
            self.send(b"0\r\n\r\n")
            return True
        return False

    def download(self, req):
        size = int(req.param("size", "0"))
        framing = self.framing_of(req, "length")
        extra = [("Content-Length", str(size))] if framing == "length" else []
        self.stream_head(req, framing, "application/octet-stream", extra)
        if req.method == "HEAD":
            return framing != "close"
        block = memoryview(pattern())
        left = size
        while left > 0:
            piece = block[:min(left, BLOCK_SIZE)]
            self.chunk(framing, piece)
            left -= len(piece)
        if framing == "chunked":
            self.send(b"0\r\n\r\n")
        return framing != "close"

    def trailers(self, req):
        if req.version == "1.0":
            return self.respond(req, 200, b"".join(TRAILER_BODY))
        self.send(self.head_bytes(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                                        ("Trailer", "X-Checksum")]))
        if req.method == "HEAD":
            return True
        h = hashlib.sha256()
        for part in TRAILER_BODY:
            h.update(part)
            self.chunk("chunked", part)
            time.sleep(0.01)
        self.send(b"0\r\nX-Checksum: " + h.hexdigest().encode() + b"\r\n\r\n")
        return True

    def websocket(self, req):
        key = req.header("sec-websocket-key")
        if (req.header("upgrade") or "").lower() != "websocket" or "upgrade" not in req.tokens("connection") \
                or not key:
            self.consume(req)
            return self.respond(req, 426, b"websocket upgrade required\n",
                                headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")])
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.send(self.head_bytes(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                        ("Sec-WebSocket-Accept", accept)]))
        if self.buf:
            self.send(bytes(self.buf))
            self.buf.clear()
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return False
            if not data:
                try:
                    self.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return False
            self.send(data)


class Server:
    def __init__(self, port, name):
        self.name = name
        self.stats = Stats()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]

    def serve_forever(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                time.sleep(0.01)
                continue
            threading.Thread(target=self.connection, args=(sock,), daemon=True).start()

    def connection(self, sock):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            Connection(sock, self).serve()
        except (Closed, ConnectionError, BrokenPipeError, TimeoutError):
            pass
        except Exception as e:  # noqa: BLE001 - one connection's failure never stops the server
            print(f"upstream {self.name}: connection error: {e!r}", file=sys.stderr, flush=True)
        finally:
            try:
                sock.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--state-file")
    args = ap.parse_args()
    server = Server(args.port, args.name)
    if args.state_file:
        tmp = args.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"name": args.name, "port": server.port, "pid": os.getpid()}, f)
        os.replace(tmp, args.state_file)
    print(f"ready {server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
