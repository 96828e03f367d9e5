"""Tests for netns.py: hosts as network namespaces on a private bridge. Traffic stays inside the
namespaces created here (and the root namespace's loopback for the negative check)."""
import http.server
import ipaddress
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import netns
from harness import free_port, wait_until

OK, WHY = netns.available()


def start_http_server(hosts, name, directory, port=8000):
    """python -m http.server on 0.0.0.0:port inside host name; returns once it answers."""
    proc = hosts.popen(name, [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(port),
                              "--directory", directory],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: hosts.run(name, [sys.executable, "-c",
                                        f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"],
                                 timeout=5).returncode == 0,
               timeout=10, interval=0.1, what=f"http.server in {name}")
    return proc


def running(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def root_get(port):
    """GET 127.0.0.1:port from the root namespace (no proxies); returns the status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/", timeout=5) as res:
        return res.status


def leftovers(h):
    """Namespaces, links and FORWARD rules of h still present."""
    found = []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    found += [ns for ns in h._ns.values() if ns in listed]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = set(re.findall(r"^\d+:\s+([^:@\s]+)", links, flags=re.M))
    tag = h.bridge[len(netns.BRIDGE_PREFIX):]
    found += [n for n in names if n[len(netns.BRIDGE_PREFIX):].startswith(tag) and n[:3] in ("swb", "swv", "swp")]
    for cmd in filter(None, [os.environ.get("IPTABLES", "iptables")]):
        rules = subprocess.run([cmd, "-w", "5", "-S", "FORWARD"], capture_output=True, text=True).stdout
        found += [r for r in rules.splitlines() if f"-i {h.bridge} " in r]
    return found


@unittest.skipUnless(OK, WHY)
class HostsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="slipway-netns-")
        with open(os.path.join(cls.tmp, "index.txt"), "w") as f:
            f.write("served from b\n")
        cls.hosts = netns.Hosts(["a", "b", "c"])
        cls.server = start_http_server(cls.hosts, "b", cls.tmp)
        cls.url_b = f"http://{cls.hosts.address('b')}:8000/index.txt"

    @classmethod
    def tearDownClass(cls):
        cls.hosts.close()
        subprocess.run(["rm", "-rf", cls.tmp])

    def test_layout(self):
        h = self.hosts
        addrs = [h.address(n) for n in ("a", "b", "c")]
        self.assertEqual(len(set(addrs)), 3)
        for n in ("a", "b", "c"):
            self.assertTrue(h.subnet.overlaps(ipaddress.ip_network(h.address(n) + "/32")))
            self.assertIn(h.ns(n), subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout)
            out = h.run(n, ["ip", "-o", "-4", "addr", "show"]).stdout.decode()
            self.assertIn(f"inet {h.address(n)}/24", out)
            self.assertIn("inet 127.0.0.1/8", out)
            lo = h.run(n, ["ip", "-o", "link", "show", "lo"]).stdout.decode()
            self.assertIn("UP", lo.split(">")[0])
            # Nothing but the private subnet: no default route out of the namespace.
            self.assertNotIn("default", h.run(n, ["ip", "-4", "route"]).stdout.decode())
        self.assertIsNone(h.root_address)

    def test_reachable_between_hosts(self):
        status, body = netns.http_get(self.hosts, "a", self.url_b)
        self.assertEqual((status, body), (200, b"served from b\n"))
        status, body = netns.http_get(self.hosts, "c", self.url_b, headers={"X-Test": "1"})
        self.assertEqual(status, 200)
        status, _ = netns.http_get(self.hosts, "a", f"http://{self.hosts.address('b')}:8000/missing")
        self.assertEqual(status, 404)
        # The server bound 0.0.0.0 inside b: b's own loopback works, and nothing listens on a.
        self.assertEqual(netns.http_get(self.hosts, "b", "http://127.0.0.1:8000/index.txt")[0], 200)
        with self.assertRaises(ConnectionError):
            netns.http_get(self.hosts, "b", f"http://{self.hosts.address('a')}:8000/", timeout=2)

    def test_root_loopback_unreachable(self):
        port = free_port()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"root")

            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            self.assertEqual(root_get(port), 200)   # the server does answer in the root namespace
            with self.assertRaises(OSError):
                netns.http_get(self.hosts, "a", f"http://127.0.0.1:{port}/", timeout=2)
            # And no route to the root namespace's other addresses.
            r = self.hosts.run("a", ["ip", "route", "get", "192.0.2.2"])
            self.assertNotEqual(r.returncode, 0, r.stdout)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_partition_and_heal(self):
        h = self.hosts
        self.assertEqual(netns.http_get(h, "a", self.url_b)[0], 200)
        h.partition("b")
        try:
            started = time.time()
            with self.assertRaises(OSError):
                netns.http_get(h, "a", self.url_b, timeout=2)
            self.assertLess(time.time() - started, 8)
            with self.assertRaises(OSError):   # the other direction too
                netns.http_get(h, "b", f"http://{h.address('c')}:9/", timeout=1)
            # c is not partitioned: a and c still talk (nothing listens: refused, not timed out).
            with self.assertRaises(ConnectionError) as cm:
                netns.http_get(h, "a", f"http://{h.address('c')}:9/", timeout=2)
            self.assertIn("Refused", str(cm.exception))
        finally:
            h.heal("b")
        wait_until(lambda: netns.http_get(h, "a", self.url_b, timeout=2)[0] == 200, timeout=10,
                   what="b reachable after heal")




@unittest.skipUnless(OK, WHY)
class LifecycleTest(unittest.TestCase):
    def test_two_at_once_and_close(self):
        one = netns.Hosts(["x", "y"])
        two = netns.Hosts(["x", "y"])
        try:
            self.assertNotEqual(one.bridge, two.bridge)
            self.assertNotEqual(one.ns("x"), two.ns("x"))
            self.assertFalse(one.subnet.overlaps(two.subnet))
            tmp = tempfile.mkdtemp(prefix="slipway-netns-")
            try:
                with open(os.path.join(tmp, "f"), "w") as f:
                    f.write("two")
                server = start_http_server(two, "y", tmp, port=8001)
                self.assertEqual(netns.http_get(two, "x", f"http://{two.address('y')}:8001/f"), (200, b"two"))
                # one's hosts are on another bridge: two's server is not reachable from them.
                with self.assertRaises(OSError):
                    netns.http_get(one, "x", f"http://{two.address('y')}:8001/f", timeout=1)
                # A child of a popen'ed process (same process group) goes too on close().
                sleeper = two.popen("x", ["sh", "-c", "sleep 300 & wait"])
                grandchild = wait_until(lambda: two.run("x", ["pgrep", "-f", "^sleep 300"]).stdout.split(),
                                        timeout=5, what="sleep started")
            finally:
                subprocess.run(["rm", "-rf", tmp])
            started = time.time()
            two.close()
            self.assertLess(time.time() - started, 10)
            self.assertIsNotNone(server.poll())
            self.assertIsNotNone(sleeper.poll())
            for pid in grandchild:
                self.assertFalse(running(int(pid)), f"sleep {pid} survived close()")
            self.assertEqual(leftovers(two), [])
            two.close()   # twice is fine
            # one is untouched by two's teardown.
            self.assertEqual(one.run("x", ["ip", "-o", "-4", "addr", "show", "eth0"]).returncode, 0)
        finally:
            one.close()
            two.close()
        self.assertEqual(leftovers(one), [])
        with self.assertRaises(RuntimeError):
            one.address("x")

    def test_close_after_partition_and_failed_init(self):
        h = netns.Hosts(["only"])
        h.partition("only")
        h.close()
        self.assertEqual(leftovers(h), [])
        with self.assertRaises(ValueError):
            netns.Hosts(["dup", "dup"])

    def test_stale_leftovers_are_reaped(self):
        """A process killed before close() leaves its namespaces; the next Hosts() removes them."""
        child = subprocess.run(
            [sys.executable, "-c",
             "import os, netns; h = netns.Hosts(['z']); print(h.ns('z'), h.bridge, flush=True); os._exit(0)"],
            cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True, text=True, timeout=30)
        self.assertEqual(child.returncode, 0, child.stderr)
        ns, bridge = child.stdout.split()
        self.assertIn(ns, subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout)
        h = netns.Hosts(["w"])
        h.close()
        self.assertNotIn(ns, subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout)
        self.assertFalse(os.path.exists(f"/sys/class/net/{bridge}"))
        rules = subprocess.run(["iptables", "-w", "5", "-S", "FORWARD"], capture_output=True, text=True).stdout
        self.assertNotIn(f"-i {bridge} ", rules)


if __name__ == "__main__":
    unittest.main()
