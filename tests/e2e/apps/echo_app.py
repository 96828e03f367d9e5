"""An upstream for gateway tests, deployed by Slipway like any app (runtime: process).

GET /health -> 200; GET /headers -> the request headers as JSON; GET /pid -> its pid;
an Upgrade: websocket request -> 101, then every byte received is echoed back.
Standard library only; listens on 127.0.0.1:$PORT."""
import json
import os
import socketserver


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, target, _ = line.decode().split(" ", 2)
            headers = {}
            while True:
                h = self.rfile.readline().decode().rstrip("\r\n")
                if not h:
                    break
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            if length:
                self.rfile.read(length)
            if headers.get("upgrade", "").lower() == "websocket":
                self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                self.wfile.flush()
                while True:
                    data = self.connection.recv(4096)
                    if not data:
                        return
                    self.connection.sendall(data)
            if target == "/headers":
                body = json.dumps(headers).encode()
            elif target == "/pid":
                body = str(os.getpid()).encode()
            else:
                body = b'{"status":"ok"}'
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            self.wfile.write(body)
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
