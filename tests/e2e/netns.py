"""Several "hosts" for end-to-end tests: network namespaces joined by a Linux bridge.

    hosts = Hosts(["cp", "alpha", "beta"])
    srv = hosts.popen("beta", [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8080"])
    status, body = http_get(hosts, "alpha", f"http://{hosts.address('beta')}:8080/")
    hosts.partition("beta"); ...; hosts.heal("beta")
    hosts.close()

Layout of one Hosts object (tag = base36(pid) "-" base36(counter), unique per instance):

    root namespace:  bridge  swb<tag>           (no IP address unless root_reachable=True)
                     veths   swv<tag>-<i>       (one bridge port per host, i = index of the host)
    namespace slw-<pid>-<counter>-<host>:  lo (up) and eth0 (the veth peer) with 10.A.B.<i+2>/24

The hosts see each other and nothing else: no default route, and the bridge has no address, so
the root namespace (its loopback included) is unreachable. Traffic stays on the bridge.

Bridge netfilter: with br_netfilter loaded and net.bridge.bridge-nf-call-iptables=1 (Docker
does both, and sets the iptables FORWARD policy to DROP), frames crossing a bridge traverse the
FORWARD chain and would be dropped. The global sysctl is not touched (Docker relies on it) and a
per-bridge nf_call_iptables=0 cannot override it; instead each Hosts inserts
`FORWARD -i swb<tag> -o swb<tag> -j ACCEPT` (with a comment) into the iptables in use, and into
legacy iptables too when its tables are loaded and its FORWARD chain filters, and deletes the
rule in close(). The rule is inserted even while bridge-nf is off, so Docker starting mid-test
(loading br_netfilter, setting DROP) does not cut the hosts apart.

Requires root and iproute2. Leftovers of a process that died without running close() (SIGKILL,
ctest timeout) are reaped by the next Hosts() on the machine: every name carries the owner pid.
Standard library only.
"""
import atexit
import fcntl
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

NS_PREFIX = "slw-"          # namespaces: slw-<pid>-<counter>-<host>
BRIDGE_PREFIX = "swb"       # bridges:    swb<b36 pid>-<b36 counter>
VETH_PREFIX = "swv"         # root-side veths: swv<b36 pid>-<b36 counter>-<b36 index>
PEER_PREFIX = "swp"         # namespace-side veths before they are renamed eth0 inside the namespace
RULE_COMMENT = "slipway-e2e-netns"
IFACE = "eth0"
_HOST_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_LOCK_PATH = os.path.join("/run/lock" if os.path.isdir("/run/lock") else "/tmp", "slipway-e2e-netns.lock")

_counter = itertools.count()
_live = set()               # (pid, counter) of this process's open Hosts objects
_live_lock = threading.Lock()


def available():
    """(True, "") when this machine can run Hosts, else (False, reason) for unittest.skip."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    if shutil.which("ip") is None:
        return False, "iproute2 (ip) is not installed"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"`ip netns` does not work: {r.stderr.strip()}"
    return True, ""


def _b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_is_gone(pid, counter):
    """A leftover is stale when its owner process is gone, or when it carries this process's pid
    but no open Hosts of this process owns it (a dead process whose pid was reused by us)."""
    if pid == os.getpid():
        with _live_lock:
            return (pid, counter) not in _live
    return not _pid_alive(pid)


class _Lock:
    """Machine-wide lock: subnet choice, creation and teardown of concurrent Hosts never interleave."""

    def __enter__(self):
        self.fd = os.open(_LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# ---- iptables ---------------------------------------------------------------------------------

def _iptables_commands():
    """The iptables binaries whose FORWARD chain bridged IPv4 traffic may traverse."""
    cmds = []
    main = shutil.which("iptables")
    if main:
        cmds.append(main)
        version = subprocess.run([main, "-V"], capture_output=True, text=True).stdout
        main_is_legacy = "legacy" in version
    else:
        main_is_legacy = False
    legacy = shutil.which("iptables-legacy")
    if legacy and not main_is_legacy:
        # Only when legacy tables are already loaded: listing them would load the modules.
        try:
            with open("/proc/net/ip_tables_names") as f:
                loaded = "filter" in f.read().split()
        except OSError:
            loaded = False
        if loaded:
            chain = subprocess.run([legacy, "-w", "5", "-S", "FORWARD"], capture_output=True, text=True).stdout
            if chain.strip() != "-P FORWARD ACCEPT":
                cmds.append(legacy)
    return cmds


def _forward_rule(bridge):
    return ["FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", RULE_COMMENT, "-j", "ACCEPT"]


def _bridge_nf_on():
    try:
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _forward_drops(cmd):
    r = subprocess.run([cmd, "-w", "5", "-S", "FORWARD"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() != "-P FORWARD ACCEPT"


# ---- reaping leftovers ------------------------------------------------------------------------

def _reap_stale():
    """Delete namespaces, veths, bridges and FORWARD rules left by dead owners. Call under _Lock."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"^{NS_PREFIX}(\d+)-(\d+)-", name)
        if m and _owner_is_gone(int(m.group(1)), int(m.group(2))):
            _kill_namespace_pids(name, grace=0)
            _ip("netns", "delete", name, check=False)
    links = _ip("-o", "link", "show", check=False).stdout
    for name in re.findall(r"^\d+:\s+([^:@\s]+)", links, flags=re.M):
        for prefix in (VETH_PREFIX, PEER_PREFIX, BRIDGE_PREFIX):
            m = re.match(rf"^{prefix}([0-9a-z]+)-([0-9a-z]+)(?:-[0-9a-z]+)?$", name)
            if m and _owner_is_gone(int(m.group(1), 36), int(m.group(2), 36)):
                _ip("link", "delete", name, check=False)
    for cmd in filter(None, {shutil.which("iptables"), shutil.which("iptables-legacy")}):
        if cmd.endswith("legacy"):
            try:
                with open("/proc/net/ip_tables_names") as f:
                    if "filter" not in f.read().split():
                        continue
            except OSError:
                continue
        rules = subprocess.run([cmd, "-w", "5", "-S", "FORWARD"], capture_output=True, text=True).stdout
        for rule in rules.splitlines():
            if RULE_COMMENT not in rule:
                continue
            m = re.search(rf"-i ({BRIDGE_PREFIX}([0-9a-z]+)-([0-9a-z]+)) ", rule)
            if m and _owner_is_gone(int(m.group(2), 36), int(m.group(3), 36)):
                subprocess.run([cmd, "-w", "5", "-D", *_forward_rule(m.group(1))], capture_output=True)


def _kill_namespace_pids(ns, grace):
    """Every process living in namespace ns (started by anyone): SIGTERM, then SIGKILL."""
    def pids():
        out = _ip("netns", "pids", ns, check=False).stdout.split()
        return [int(p) for p in out if p.isdigit() and int(p) != os.getpid()]
    found = pids()
    if not found:
        return
    if grace > 0:
        for pid in found:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.time() + grace
        while time.time() < deadline and pids():
            time.sleep(0.05)
    for pid in pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ---- subnets ----------------------------------------------------------------------------------

def _used_networks():
    """IPv4 networks in use in the root namespace (addresses and routes) and by other Hosts."""
    nets = []
    for line in _ip("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        m = re.search(r"\binet (\d+\.\d+\.\d+\.\d+/\d+)", line)
        if m:
            nets.append(ipaddress.ip_network(m.group(1), strict=False))
    for line in _ip("-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("local", "broadcast", "unreachable", "blackhole", "prohibit", "throw", "multicast"):
            first = line.split()[1] if len(line.split()) > 1 else ""
        if first and first != "default":
            try:
                nets.append(ipaddress.ip_network(first, strict=False))
            except ValueError:
                pass
    # Bridges of other Hosts carry their subnet in their alias (they have no address).
    for name in os.listdir("/sys/class/net"):
        if name.startswith(BRIDGE_PREFIX):
            try:
                with open(f"/sys/class/net/{name}/ifalias") as f:
                    m = re.search(r"net=(\S+)", f.read())
                if m:
                    nets.append(ipaddress.ip_network(m.group(1)))
            except (OSError, ValueError):
                pass
    return nets


def _choose_subnet(pid, counter):
    """10.<200+k>.<x>.0/24, k in 0..55, starting from a slot derived from pid and counter."""
    slots = 56 * 256
    used = _used_networks()
    start = (pid * 7919 + counter * 257) % slots
    for step in range(slots):
        slot = (start + step) % slots
        net = ipaddress.ip_network(f"10.{200 + slot // 256}.{slot % 256}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.200-255.x.0/24 subnet for the test hosts")


# ---- Hosts ------------------------------------------------------------------------------------

class Hosts:
    """N hosts: each a network namespace with a veth to one bridge in the root namespace, its own
    address in a private /24, loopback up. Created in __init__, torn down by close() (also at
    interpreter exit, and safe to call twice). Names are unique per instance (pid + counter) and
    the subnet does not overlap any address/route of the root namespace nor another Hosts.

    root_reachable=True gives the bridge the subnet's .1 (see root_address) so the hosts can reach
    services the root namespace binds on that address (or 0.0.0.0); off by default."""

    def __init__(self, names, root_reachable=False):
        names = list(names)
        if not names:
            raise ValueError("Hosts needs at least one host name")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate host names: {names}")
        for n in names:
            if not _HOST_NAME.match(n):
                raise ValueError(f"bad host name {n!r} (letters, digits, _ . - only)")
        if len(names) > 200:
            raise ValueError("at most 200 hosts")
        self.names = names
        self.pid = os.getpid()
        self.counter = next(_counter)
        tag = f"{_b36(self.pid)}-{_b36(self.counter)}"
        self.bridge = f"{BRIDGE_PREFIX}{tag}"
        self._ns = {n: f"{NS_PREFIX}{self.pid}-{self.counter}-{n}" for n in names}
        self._veth = {n: f"{VETH_PREFIX}{tag}-{_b36(i)}" for i, n in enumerate(names)}
        self._procs = []
        self._rules = []            # iptables binaries holding our FORWARD rule
        self._closed = False
        self.root_address = None
        with _live_lock:
            _live.add((self.pid, self.counter))
        atexit.register(self.close)
        try:
            with _Lock():
                _reap_stale()
                self.subnet = _choose_subnet(self.pid, self.counter)
                self._addr = {n: str(self.subnet.network_address + i + 2) for i, n in enumerate(names)}
                self._create(root_reachable)
        except BaseException:
            self.close()
            raise

    def _create(self, root_reachable):
        prefix = self.subnet.prefixlen
        _ip("link", "add", self.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _ip("link", "set", self.bridge, "alias", f"{RULE_COMMENT} pid={self.pid} net={self.subnet}")
        for cmd in _iptables_commands():
            r = subprocess.run([cmd, "-w", "5", "-I", *_forward_rule(self.bridge)], capture_output=True, text=True)
            if r.returncode == 0:
                self._rules.append(cmd)
            elif _bridge_nf_on() and _forward_drops(cmd):
                raise RuntimeError(f"{cmd}: cannot insert the FORWARD ACCEPT rule for {self.bridge}: {r.stderr.strip()}")
        if root_reachable:
            self.root_address = str(self.subnet.network_address + 1)
            _ip("addr", "add", f"{self.root_address}/{prefix}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, n in enumerate(self.names):
            ns, veth, peer = self._ns[n], self._veth[n], f"{PEER_PREFIX}{self._veth[n][len(VETH_PREFIX):]}"
            _ip("netns", "add", ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("link", "set", peer, "netns", ns)
            _ip("-n", ns, "link", "set", peer, "name", IFACE)
            _ip("-n", ns, "addr", "add", f"{self._addr[n]}/{prefix}", "dev", IFACE)
            _ip("-n", ns, "link", "set", IFACE, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    # -- queries --

    def _check(self, name):
        if name not in self._ns:
            raise KeyError(f"no host {name!r} (hosts: {self.names})")
        if self._closed:
            raise RuntimeError("Hosts is closed")

    def address(self, name):
        """The host's IPv4 address, e.g. "10.213.7.2"."""
        self._check(name)
        return self._addr[name]

    def ns(self, name):
        """The namespace's name, for `ip netns exec NAME ...` / `ip -n NAME ...`."""
        self._check(name)
        return self._ns[name]

    def veth(self, name):
        """The root-namespace (bridge-side) end of the host's link."""
        self._check(name)
        return self._veth[name]

    # -- processes --

    def argv(self, name, argv):
        """argv wrapped to run inside the host's namespace."""
        self._check(name)
        return ["ip", "netns", "exec", self._ns[name], *argv]

    def popen(self, name, argv, **kwargs):
        """Starts argv inside the namespace; close() kills it (and its process group) if still alive.
        The process gets its own session unless start_new_session is given."""
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.argv(name, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, name, argv, timeout=30, **kwargs):
        """Runs argv inside the namespace to completion (output captured unless redirected)."""
        if not {"stdout", "stderr", "capture_output"} & kwargs.keys():
            kwargs["capture_output"] = True
        return subprocess.run(self.argv(name, argv), timeout=timeout, **kwargs)

    # -- faults --

    def partition(self, name):
        """Cuts the host off: its bridge port goes down, so frames drop in both directions."""
        self._check(name)
        _ip("link", "set", self._veth[name], "down")

    def heal(self, name):
        self._check(name)
        _ip("link", "set", self._veth[name], "up")

    # -- teardown --

    def close(self):
        """Kills the processes started here (SIGTERM, then SIGKILL after a short grace) and any other
        process left in the namespaces, then deletes the namespaces, veths, bridge and FORWARD rule."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001 - interpreter shutting down
            pass
        errors = []
        alive = [p for p in self._procs if p.poll() is None]
        for p in alive:
            _signal_group(p, signal.SIGTERM)
        deadline = time.time() + 2.0
        for p in alive:
            try:
                p.wait(max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for p in self._procs:
            _signal_group(p, signal.SIGKILL)   # also the children of exited leaders
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                errors.append(f"pid {p.pid} survived SIGKILL")
        with _Lock():
            for n, ns in self._ns.items():
                if os.path.exists(f"/run/netns/{ns}"):
                    _kill_namespace_pids(ns, grace=0.5)
                    r = _ip("netns", "delete", ns, check=False)
                    if r.returncode != 0:
                        errors.append(r.stderr.strip())
            for veth in self._veth.values():
                if os.path.exists(f"/sys/class/net/{veth}"):
                    _ip("link", "delete", veth, check=False)
            if os.path.exists(f"/sys/class/net/{self.bridge}"):
                r = _ip("link", "delete", self.bridge, check=False)
                if r.returncode != 0:
                    errors.append(r.stderr.strip())
            for cmd in self._rules:
                while subprocess.run([cmd, "-w", "5", "-D", *_forward_rule(self.bridge)],
                                     capture_output=True).returncode == 0:
                    pass
            self._rules = []
        with _live_lock:
            _live.discard((self.pid, self.counter))
        if errors:
            raise RuntimeError("Hosts.close: " + "; ".join(errors))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _signal_group(proc, sig):
    try:
        pgid = os.getpgid(proc.pid)
    except OSError:
        pgid = None
    try:
        if pgid is not None and pgid == proc.pid:
            os.killpg(pgid, sig)       # its own session/group: the children go too
        elif proc.poll() is None:
            proc.send_signal(sig)
    except OSError:
        pass


# ---- HTTP from inside a namespace ---------------------------------------------------------------

_HTTP_CHILD = r"""
import http.client, json, sys, urllib.parse
url, headers, timeout, method = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
body = sys.stdin.buffer.read() if sys.argv[5] == "1" else None
u = urllib.parse.urlsplit(url)
cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
try:
    conn = cls(u.hostname, u.port, timeout=timeout)
    conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body=body, headers=headers)
    res = conn.getresponse()
    data = res.read()
except Exception as e:
    sys.stderr.write(f"{type(e).__name__}: {e}")
    sys.exit(3)
sys.stdout.buffer.write(b"%d\n" % res.status + data)
"""


def http_get(hosts, from_name, url, headers=None, timeout=5, method="GET", body=None):
    """HTTP request from inside host from_name's namespace (no proxies). Returns (status, body bytes)
    for any HTTP status; raises ConnectionError (or TimeoutError) when no response arrives."""
    argv = [sys.executable, "-I", "-c", _HTTP_CHILD, url, json.dumps(headers or {}), str(timeout), method,
            "1" if body is not None else "0"]
    try:
        r = subprocess.run(hosts.argv(from_name, argv), input=body if body is not None else b"",
                           capture_output=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"GET {url} from {from_name}: no answer in {timeout}s") from e
    if r.returncode == 3:
        msg = r.stderr.decode(errors="replace").strip()
        cls = TimeoutError if msg.startswith(("TimeoutError", "timeout")) else ConnectionError
        raise cls(f"{method} {url} from {from_name}: {msg}")
    if r.returncode != 0:
        raise RuntimeError(f"http_get child failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    status, _, data = r.stdout.partition(b"\n")
    return int(status), data
