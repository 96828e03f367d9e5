#!/usr/bin/env python3
"""Nodes and agents: what remote agents cost the control plane, and what the agent protocol
costs a deployment, against peers measured in the same run on the same machine.

1. Idle cost: one `slipway server`; its RSS and CPU over a window with 0 agents (the
   baseline), then with N `slipway agent` processes connected (heartbeats only); the time
   from the first agent started to all N shown up by `nodes list --json`; the agents' RSS.
2. Output through one op's event stream: a build step printing LINES short lines, on a remote
   agent (`nodes: [solo]`) and on the server's own in-process node (no `nodes:`); lines/s
   between the first and the last "build" log event.
3. Transport overhead: created → completed of the example app, median of REDEPLOYS
   redeploys (alternating), on the local node and on a remote agent over loopback.

Loopback only; every wait and loop is bounded; every process started here is killed on exit.
Usage: bench/nodes.py [--agents N] [--window S] [--lines N,N] [--redeploys N] [--no-docs]
       bench/nodes.py --from-json bench/results/nodes.json   (render the section again, run nothing)
SLIPWAY_BIN selects the binary (default build/release/bin/slipway).
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import common

H = common.harness
ROOT = H.ROOT
DOCS = os.path.join(ROOT, "docs", "benchmarks.md")
SECTION = "## Nodes and agents"
TICK = os.sysconf("SC_CLK_TCK")

# Everything started here, for the cleanup that runs on any exit.
_agents = []      # Popen of every agent
_servers = []     # harness.Server
_data_dirs = []   # data dirs whose marked processes (instances, builds) are killed at the end
_tmp = None


def cleanup():
    global _tmp
    # A second Ctrl-C or SIGTERM must not cut the cleanup short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for p in _agents:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 10
    for p in _agents:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    _agents.clear()
    for s in _servers:
        try:
            if s.proc and s.proc.poll() is None:
                s.stop()
        except Exception:  # noqa: BLE001 - cleanup goes on
            if s.proc and s.proc.poll() is None:
                s.proc.kill()
    _servers.clear()
    for d in _data_dirs:
        H.kill_marked_processes(d)
    _data_dirs.clear()
    if _tmp and os.environ.get("SLIPWAY_KEEP_TMP") is None:
        shutil.rmtree(_tmp, ignore_errors=True)
        _tmp = None


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through finally, then atexit


# ---- measuring a process ---------------------------------------------------------------------

def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def measure_idle(server_pid, agent_pids, window):
    """RSS of the server and the agents, and CPU over `window` seconds (% of one core)."""
    pids = [server_pid, *agent_pids]
    t0, c0 = time.monotonic(), {p: cpu_ticks(p) for p in pids}
    time.sleep(window)
    t1, c1 = time.monotonic(), {p: cpu_ticks(p) for p in pids}
    wall = t1 - t0

    def pct(ps):
        return 100.0 * sum(c1[p] - c0[p] for p in ps) / TICK / wall

    agent_rss = [common.rss_kib(p) for p in agent_pids]
    return {"window_s": round(wall, 2),
            "server_rss_kib": common.rss_kib(server_pid),
            "server_cpu_pct": round(pct([server_pid]), 3),
            "agents_cpu_pct_total": round(pct(agent_pids), 3) if agent_pids else 0.0,
            "agents_rss_kib_total": sum(agent_rss),
            "agent_rss_kib_median": statistics.median(agent_rss) if agent_rss else 0}


# ---- fixtures ---------------------------------------------------------------------------------

class Server(H.Server):
    """harness.Server, with stdin from /dev/null (nothing started here reads the caller's)."""

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [H.SLIPWAY, "server", "--data", self.data, "--api", f"127.0.0.1:{self.api_port}",
             "--gateway", f"127.0.0.1:{self.gw_port}", *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        H.wait_until(lambda: self.proc.poll() is None and H.http_call(self.api_port, "GET", "/health")[0] == 200,
                     timeout=20, what="server /health")
        return self

    def cli(self, *args, timeout=120):
        env = dict(os.environ, SLIPWAY_TOKEN=H.ADMIN_TOKEN)
        return subprocess.run([H.SLIPWAY, "--server", self.url, *args], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def start_server(data):
    _data_dirs.append(data)
    server = Server(data)
    _servers.append(server)
    return server.start()


def enrollment_token(server):
    out = server.cli("nodes", "token", "create", "--json", timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"nodes token create failed: {out.stderr.strip()}")
    return json.loads(out.stdout)["token"]


def start_agent(server, token, name, labels, data, log_dir):
    _data_dirs.append(data)
    with open(os.path.join(log_dir, name + ".log"), "ab") as log:
        p = subprocess.Popen([H.SLIPWAY, "agent", "--server", f"ws://127.0.0.1:{server.api_port}/ws/agent",
                              "--token", token, "--name", name, "--labels", labels, "--data", data],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    _agents.append(p)
    return p


def node_states(server):
    out = server.cli("nodes", "list", "--json", timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"nodes list failed: {out.stderr.strip()}")
    data = json.loads(out.stdout)
    rows = data["nodes"] if isinstance(data, dict) else data
    return {n["name"]: n["state"] for n in rows}


def wait_nodes_up(server, names, procs, timeout):
    names = set(names)

    def ready():
        dead = [p.args[p.args.index("--name") + 1] for p in procs if p.poll() is not None]
        if dead:
            raise SystemExit(f"agents exited early: {dead[:5]} (logs in the temp dir; SLIPWAY_KEEP_TMP=1 keeps it)")
        states = node_states(server)
        return sum(1 for n in names if states.get(n, "").startswith("up")) == len(names)
    H.wait_until(ready, timeout=timeout, interval=0.2, what=f"{len(names)} nodes up")


class Repo:
    """A bare repository (the app's repo, by local path) and a work tree that pushes to it."""

    def __init__(self, root):
        self.bare = os.path.join(root, "repo.git")
        self.work = os.path.join(root, "work")
        os.makedirs(root)
        self._git("init", "-q", "--bare", "-b", "main", self.bare, cwd=root)
        self._git("init", "-q", "-b", "main", self.work, cwd=root)

    def _git(self, *args, cwd=None):
        env = dict(os.environ, GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@example.test",
                   GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@example.test")
        out = subprocess.run(["git", *args], cwd=cwd or self.work, env=env, capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr}")
        return out.stdout.strip()

    def commit(self, version, manifest):
        shutil.copy(os.path.join(H.EXAMPLE, "server.c"), os.path.join(self.work, "server.c"))
        with open(os.path.join(self.work, "VERSION"), "w") as f:
            f.write(version + "\n")
        with open(os.path.join(self.work, "slipway.yaml"), "w") as f:
            f.write(manifest)
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", version)
        self._git("push", "-q", self.bare, "HEAD:refs/heads/main")
        return self._git("rev-parse", "HEAD")


def manifest(app, nodes=None, extra_build=None):
    text = H.default_manifest(watch="300ms").replace("app: hello", f"app: {app}", 1)
    text = text.replace("deploy:\n", "deploy:\n  timeout: 4m\n", 1)
    if extra_build:
        text = text.replace("build:\n", "build:\n" + "".join(f"  - {json.dumps(b)}\n" for b in extra_build), 1)
    if nodes:
        text = f"nodes: [{', '.join(nodes)}]\n" + text
    return text


def create_app(server, root, name, text):
    repo = Repo(os.path.join(root, name))
    sha = repo.commit("v1", text)
    status, body = server.api("POST", "/api/v1/apps", {"name": name, "repo": repo.bare, "branch": "main",
                                                       "secret": "bench-secret-" + name + "-0123456789"})
    if status != 201:
        raise RuntimeError(f"creating app {name}: {status} {body}")
    return repo, sha


def deploy(server, app, sha, timeout=240, must_succeed=True):
    status, d = server.api("POST", f"/api/v1/apps/{app}/deployments", {"ref": sha})
    if status != 201:
        raise RuntimeError(f"deploying {app}: {status} {d}")
    d = server.wait_deployment(d["id"], timeout=timeout)
    if must_succeed and d["status"] != "succeeded":
        raise RuntimeError(f"deployment {d['id']} of {app} {d['status']}: {d.get('error')}")
    return d


def all_events(server, dep, max_pages=1000, timeout=120):
    """Every event of a finished deployment, paged with after/limit (bounded in pages and time)."""
    events, after, deadline = [], 0, time.time() + timeout
    for _ in range(max_pages):
        if time.time() > deadline:
            raise RuntimeError(f"reading the events of deployment {dep} took over {timeout} s")
        status, page = server.api("GET", f"/api/v1/deployments/{dep}/events?after={after}&limit=5000")
        if status != 200:
            raise RuntimeError(f"events of deployment {dep}: {status} {page}")
        events += page["events"]
        if page["done"] or not page["events"]:
            return events
        after = page["next"]
    raise RuntimeError(f"deployment {dep} has more than {max_pages} pages of events")


def build_rate(server, d, lines):
    """Lines/s between the first and the last stored build log event; a failed deployment is
    reported with what reached the store before it failed."""
    events = all_events(server, d["id"])
    logs = [e for e in events if e["stage"] == "build" and e["state"] == "log"]
    numbers = [e for e in logs if e["text"].isdigit()]
    first, last = (logs[0]["ts_ms"], logs[-1]["ts_ms"]) if logs else (0, 0)
    span = max(1, last - first)
    r = {"deployment_id": d["id"], "status": d["status"], "error": d.get("error") or "",
         "build_log_events": len(logs), "seq_lines_seen": len(numbers), "lines_expected": lines,
         "span_ms": span, "lines_per_s": round(len(logs) * 1000 / span) if logs else 0,
         "deploy_ms": d["completed_ms"] - d["created_ms"]}
    if d["status"] != "succeeded" and logs:
        r["last_line_to_end_ms"] = d["completed_ms"] - last  # how long the stream sat stalled
    return r


def stage_spans(events, created_ms, completed_ms):
    """Milliseconds per stage, from its first event to the next stage's first event (the last
    one to completion), so that they add up to created → completed; 'queue' is created → the
    first event."""
    firsts = []
    for e in events:
        if not firsts or e["stage"] not in [st for st, _ in firsts]:
            firsts.append((e["stage"], e["ts_ms"]))
    out = {"queue": firsts[0][1] - created_ms} if firsts else {}
    for i, (st, t) in enumerate(firsts):
        out[st] = (firsts[i + 1][1] if i + 1 < len(firsts) else completed_ms) - t
    return out


def median_spans(runs):
    keys = []
    for r in runs:
        keys += [k for k in r if k not in keys]
    return {k: statistics.median(r.get(k, 0) for r in runs) for k in keys}


# ---- the three measurements --------------------------------------------------------------------

def idle_cost(tmp, agents, window):
    server = start_server(os.path.join(tmp, "idle-cp"))
    token = enrollment_token(server)
    time.sleep(3)  # let start-up settle
    baseline = measure_idle(server.proc.pid, [], window)
    print(f"idle, 0 agents: {baseline}", flush=True)
    log_dir = os.path.join(tmp, "agent-logs")
    os.makedirs(log_dir)
    names = [f"n{i:03d}" for i in range(1, agents + 1)]
    t0 = time.monotonic()
    procs = [start_agent(server, token, n, "bench," + n, os.path.join(tmp, "agents", n), log_dir) for n in names]
    wait_nodes_up(server, names, procs, timeout=max(60, agents))
    all_up = time.monotonic() - t0
    print(f"{agents} agents up in {all_up:.2f} s", flush=True)
    time.sleep(6)  # past one heartbeat period (5 s), so the window sees steady state
    loaded = measure_idle(server.proc.pid, [p.pid for p in procs], window)
    print(f"idle, {agents} agents: {loaded}", flush=True)
    states = node_states(server)
    up = sum(1 for n in names if states.get(n, "").startswith("up"))
    fan = fan_out(server, tmp, names)
    print(f"fan-out: {fan}", flush=True)
    # Stop these agents and this server before the next part, so they cost it nothing.
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    server.stop()
    return {"agents": agents, "all_up_s": round(all_up, 2), "still_up_after_window": up,
            "baseline": baseline, "with_agents": loaded, "fan_out": fan,
            "rss_ratio": round(loaded["server_rss_kib"] / baseline["server_rss_kib"], 2),
            "rss_growth_per_agent_kib": round((loaded["server_rss_kib"] - baseline["server_rss_kib"]) / agents, 1)}


def fan_out(server, tmp, names):
    """One deployment to a single agent, then one to all of them (manifest `nodes: [bench]`):
    created → succeeded, each fetching, building (cc), starting and verifying on every node."""
    one_text = manifest("fanone", nodes=[names[0]])
    _, sha = create_app(server, os.path.join(tmp, "fan-repos"), "fanone", one_text)
    t0 = time.monotonic()
    one = deploy(server, "fanone", sha, timeout=600)
    one_s = time.monotonic() - t0
    _, sha = create_app(server, os.path.join(tmp, "fan-repos"), "fanall", manifest("fanall", nodes=["bench"]))
    t0 = time.monotonic()
    d = deploy(server, "fanall", sha, timeout=900, must_succeed=False)
    all_s = time.monotonic() - t0
    status, app = server.api("GET", "/api/v1/apps/fanall")
    serving = len(app["serving"]["instances"]) if status == 200 and app.get("serving") else 0
    return {"nodes": len(names), "one_node_s": round(one_s, 2), "all_nodes_s": round(all_s, 2),
            "ratio": round(all_s / one_s, 2), "status": d["status"], "error": d.get("error", ""),
            "serving_instances": serving, "one_status": one["status"]}


def deployments(tmp, line_counts, redeploys):
    server = start_server(os.path.join(tmp, "deploy-cp"))
    token = enrollment_token(server)
    log_dir = os.path.join(tmp, "solo-logs")
    os.makedirs(log_dir)
    solo_data = os.path.join(tmp, "solo-data")
    solo = [start_agent(server, token, "solo", "solo", solo_data, log_dir)]
    wait_nodes_up(server, ["solo"], solo, timeout=30)

    def restart_solo():
        """A fresh agent process (same name and data), so that one failed op cannot leave the
        next measurement with a half-working link."""
        solo[0].terminate()
        try:
            solo[0].wait(10)
        except subprocess.TimeoutExpired:
            solo[0].kill()
            solo[0].wait()
        solo[0] = start_agent(server, token, "solo", "solo", solo_data, log_dir)
        wait_nodes_up(server, ["solo"], solo, timeout=60)

    apps = os.path.join(tmp, "apps")

    def flood_manifest(app, nodes, lines):
        return manifest(app, nodes, [f"seq 1 {lines}"])

    specs = {"plain-solo": manifest("plain-solo", ["solo"]), "plain-local": manifest("plain-local"),
             "flood-solo": flood_manifest("flood-solo", ["solo"], line_counts[0]),
             "flood-local": flood_manifest("flood-local", None, line_counts[0])}
    repos = {name: create_app(server, apps, name, text) for name, text in specs.items()}

    # 3. Deploy time of the example app: one first deploy each (the clone), then redeploys of a
    # new commit each, local and remote alternating.
    for app in ("plain-local", "plain-solo"):
        deploy(server, app, repos[app][1])
    times = {"local": [], "solo": []}
    stages = {"local": [], "solo": []}
    for i in range(redeploys):
        for side in (("local", "solo") if i % 2 == 0 else ("solo", "local")):
            app = f"plain-{side}"
            sha = repos[app][0].commit(f"v{i + 2}", specs[app])
            d = deploy(server, app, sha)
            times[side].append(d["completed_ms"] - d["created_ms"])
            stages[side].append(stage_spans(all_events(server, d["id"]), d["created_ms"], d["completed_ms"]))
    print(f"redeploys: {times}", flush=True)

    # 2. Output rate: for each line count, the local node then the remote agent (same server,
    # same run). A remote flood may fail; it is reported, and the agent restarted before the next.
    floods = []
    for k, lines in enumerate(line_counts):
        row = {"lines": lines}
        for side in ("local", "solo"):
            app = f"flood-{side}"
            sha = repos[app][1] if k == 0 else repos[app][0].commit(
                f"flood-{lines}", flood_manifest(app, ["solo"] if side == "solo" else None, lines))
            d = deploy(server, app, sha, timeout=300, must_succeed=(side == "local"))
            row[side] = build_rate(server, d, lines)
            print(f"{lines} lines on {side}: {row[side]}", flush=True)
            if side == "solo" and d["status"] != "succeeded" and k + 1 < len(line_counts):
                restart_solo()
        row["remote_over_local"] = round(row["solo"]["lines_per_s"] / max(1, row["local"]["lines_per_s"]), 2)
        floods.append(row)

    server.stop()
    solo[0].terminate()
    solo[0].wait(10)
    return {
        "events": floods,
        "deploy": {"redeploys": redeploys, "local_ms": times["local"], "remote_ms": times["solo"],
                   "local_ms_median": statistics.median(times["local"]),
                   "remote_ms_median": statistics.median(times["solo"]),
                   "remote_over_local": round(statistics.median(times["solo"]) / statistics.median(times["local"]), 2),
                   "stage_ms_median": {side: median_spans(stages[side]) for side in ("local", "solo")}},
    }


# ---- report ---------------------------------------------------------------------------------------

def machine():
    model = "unknown"
    mem_kib = 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout.strip() or str(os.cpu_count())
    return {"nproc": int(nproc), "model": model, "mem_gib": round(mem_kib / 2**20), "kernel": platform.release(),
            "loadavg_1m_start": round(os.getloadavg()[0], 2), "date": datetime.date.today().isoformat()}


def mib(kib):
    return f"{kib / 1024:,.1f} MiB"


def fmt_int(n):
    return f"{int(round(n)):,}"


def para(text):
    """One paragraph wrapped at 96 columns, like the rest of docs/benchmarks.md."""
    return textwrap.fill(text, width=96, break_long_words=False, break_on_hyphens=False)


def fan_out_lines(idle):
    f = idle.get("fan_out")
    if not f:
        return []
    verdict = (f"succeeded, {f['serving_instances']} instances serving behind one gateway pool"
               if f["status"] == "succeeded" else f"{f['status']}: {f['error']}")
    return [para(f"**One deployment to all {f['nodes']} agents** (`nodes: [bench]`; each node fetches, builds the "
                 f"example with `cc`, starts and verifies its own instance, the switch moves them together): "
                 f"created → {f['status']} in **{f['all_nodes_s']:.1f} s**, against {f['one_node_s']:.2f} s for "
                 f"the same deployment to one agent (**{f['ratio']:.1f}×**); {verdict}. The {f['nodes']} builds "
                 f"share the machine's cores, so most of the ratio is compile time, not dispatch."), ""]


def markdown(r, cmd):
    m, idle, ev, dep = r["machine"], r["idle"], r["events"], r["deploy"]
    b, w = idle["baseline"], idle["with_agents"]
    n = idle["agents"]
    out = [SECTION, "",
           para(f"`{cmd}` ({m['date']}; {m['nproc']} CPUs, {m['model']}, {m['mem_gib']} GiB, Linux "
                f"{m['kernel']}; 1-minute load average {m['loadavg_1m_start']:g} at the start and "
                f"{m.get('loadavg_1m_end', 0):g} at the end of the run; loopback only, agents and server "
                f"sharing the two cores; about {r.get('elapsed_s', 0) / 60:.1f} minutes; results in "
                f"`bench/results/nodes.json`). Each agent is its own `slipway agent` process dialing "
                f"`ws://127.0.0.1:PORT/ws/agent` with an enrollment token from `nodes token create`; "
                f"heartbeats go every 5 s each way (the default 60 s lease / 8, at most 5 s)."),
           "",
           para(f"**Idle cost of {n} agents.** The same server before and after they connect; CPU is "
                f"utime+stime from `/proc/PID/stat` over a {b['window_s']:.0f} s window, in % of one core, "
                f"RSS is VmRSS:"),
           "",
           "| | server RSS | server CPU | the agents |",
           "|---|---:|---:|---|",
           f"| 0 agents (baseline) | {mib(b['server_rss_kib'])} | {b['server_cpu_pct']:.2f}% | — |",
           f"| {n} agents, heartbeats only | {mib(w['server_rss_kib'])} (**{idle['rss_ratio']:.2f}×**, "
           f"+{idle['rss_growth_per_agent_kib']:.0f} KiB per agent) | {w['server_cpu_pct']:.2f}% | "
           f"{mib(w['agents_rss_kib_total'])} RSS in all, {mib(w['agent_rss_kib_median'])} median per agent; "
           f"{w['agents_cpu_pct_total']:.2f}% CPU in all ({w['agents_cpu_pct_total'] / n:.2f}% each) |",
           "",
           *fan_out_lines(idle),
           para(f"From the first agent started to all {n} shown `up` by `nodes list --json`: "
                f"**{idle['all_up_s']:.1f} s**; {idle['still_up_after_window']} of {n} were still up after "
                f"the window." + (f" Idle, the {n} agents together use more CPU than the server spends on "
                                  f"them." if w["agents_cpu_pct_total"] > w["server_cpu_pct"] - b["server_cpu_pct"]
                                  else "")),
           "",
           para("**Output through one op's event stream.** A build step `seq 1 N` (then the example app's "
                "build, test and start); lines/s between the first and the last `build` log event as stored, "
                "read back through the events API (`GET /api/v1/deployments/ID/events?after=SEQ&limit=5000`, "
                "paged). For each line count the local node runs first, then the remote agent (`nodes: [solo]`):"),
           "",
           "| lines printed | node | build log events stored | span | lines/s | remote / local | deployment |",
           "|---:|---|---:|---:|---:|---:|---|"]
    failed = []
    for row in ev:
        for label, key in (("local (in-process pipe)", "local"), ("remote agent over loopback", "solo")):
            e = row[key]
            ratio = "1.00×" if key == "local" else f"**{row['remote_over_local']:.2f}×**"
            if e["status"] == "succeeded":
                outcome = f"succeeded, {e['deploy_ms'] / 1000:.1f} s"
            else:
                failed.append((row["lines"], label, e))
                outcome = f"**{e['status']}** after {e['deploy_ms'] / 1000:.1f} s: `{e['error']}`"
            out.append(f"| {fmt_int(row['lines'])} | {label} | {fmt_int(e['build_log_events'])} | "
                       f"{e['span_ms'] / 1000:.2f} s | {fmt_int(e['lines_per_s'])} | {ratio} | {outcome} |")
    for lines, label, e in failed:
        text = (f"With {fmt_int(lines)} lines the {label.split(' (')[0]} stopped after "
                f"{fmt_int(e['build_log_events'])} stored lines and the deployment failed "
                f"{e.get('last_line_to_end_ms', 0) / 1000:.0f} s after the last one (its lines/s is over the "
                f"lines that arrived).")
        if e["build_log_events"] and "lost" in e["error"]:
            text += (" What the code shows: the agent hands each output line's event frame to its "
                     "WebSocket as it comes (`seq` prints far faster than the link drains). Once 8 MiB of "
                     "frames are queued (`WsClientOptions::max_queued_bytes`), `SendText` refuses one and "
                     "`OpExecutor::SendLocked` drops its sender, keeping the rest \"for the next "
                     "connection\". But the agent's heartbeats still go out on that connection, so it never "
                     "ends: the op's remaining events and its result are never sent, the control plane hears "
                     "nothing more of the op and gives it up after the 60 s lease (`node solo lost`), and "
                     "removing the build directory, the next op on that agent, waits out a second lease. The "
                     "local node's in-process pipe has no such bound.")
        out += ["", para(text)]
    sm = dep.get("stage_ms_median", {})
    out += ["",
            para(f"**Transport overhead.** Created → completed (`created_ms` → `completed_ms` of the "
                 f"deployment) of the example app: fetch, `cc` build, self-test, start, verify, switch, "
                 f"300 ms watch, drain. Median of {dep['redeploys']} redeploys each after a first deploy, a "
                 f"new commit every time, local and remote alternating:"),
            "",
            "| node | median | all runs | ratio |",
            "|---|---:|---|---:|",
            f"| local (in-process pipe) | {fmt_int(dep['local_ms_median'])} ms | "
            f"{', '.join(fmt_int(x) for x in dep['local_ms'])} ms | 1.00× |",
            f"| remote agent over loopback | {fmt_int(dep['remote_ms_median'])} ms | "
            f"{', '.join(fmt_int(x) for x in dep['remote_ms'])} ms | **{dep['remote_over_local']:.2f}×** |"]
    if sm.get("local") and sm.get("solo"):
        stages = list(sm["local"]) + [k for k in sm["solo"] if k not in sm["local"]]
        out += ["", para("Where the time goes: median ms per stage, from the stage's first event to the next "
                         "stage's first (`queue` is created → the first event); each run's stages add up to its "
                         "total:"), "",
                "| node | " + " | ".join(stages) + " |",
                "|---|" + "---:|" * len(stages),
                "| local | " + " | ".join(fmt_int(sm["local"].get(k, 0)) for k in stages) + " |",
                "| remote | " + " | ".join(fmt_int(sm["solo"].get(k, 0)) for k in stages) + " |"]
    out += ["",
            para("Both nodes speak the same protocol (the local node's frames go through an in-process pipe, "
                 "a remote agent's through a WebSocket to another process), so the ratios are what the socket "
                 "and the second process add. Not measured: the same figures from before `fca5650`, which "
                 "moved the local node onto the protocol; that needs a second build of the earlier commit."),
            ""]
    return "\n".join(out)


def write_docs(section):
    with open(DOCS) as f:
        text = f.read()
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        start += 1
        nxt = re.search(r"^## ", text[start + len(SECTION):], re.M)
        end = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:start] + section + ("\n" if nxt else "") + text[end:]
    with open(DOCS, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def main():
    global _tmp
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--window", type=float, default=20.0, help="idle measuring window, seconds")
    ap.add_argument("--lines", default="50000,200000", help="comma-separated line counts for the output test")
    ap.add_argument("--redeploys", type=int, default=5)
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite the section in docs/benchmarks.md")
    ap.add_argument("--from-json", metavar="FILE", help="run nothing: render FILE (a nodes.json) again")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        section = markdown(results, results.get("command", "python3 bench/nodes.py"))
        print(section)
        if not args.no_docs:
            write_docs(section)
        return
    try:
        line_counts = [int(x) for x in args.lines.split(",") if x.strip()]
    except ValueError:
        ap.error("--lines: comma-separated integers")
    if not (1 <= args.agents <= 500 and 1 <= args.window <= 120 and line_counts and all(1 <= n <= 1_000_000 for n in line_counts)
            and 1 <= args.redeploys <= 20):
        ap.error("bounds: agents 1..500, window 1..120 s, lines 1..1e6, redeploys 1..20")
    if not (os.path.isfile(H.SLIPWAY) and os.access(H.SLIPWAY, os.X_OK)):
        sys.exit(f"nodes.py: no slipway binary at {H.SLIPWAY}: build it (make build) or set SLIPWAY_BIN")
    for tool in ("git", "cc", "seq"):
        if shutil.which(tool) is None:
            sys.exit(f"nodes.py: {tool} is needed and not on PATH")

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _tmp = tempfile.mkdtemp(prefix="slipway-bench-nodes-")
    started = time.monotonic()
    try:
        results = {"machine": machine(), "binary": H.SLIPWAY}
        results["idle"] = idle_cost(_tmp, args.agents, args.window)
        results.update(deployments(_tmp, line_counts, args.redeploys))
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        results["machine"]["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    finally:
        cleanup()
    cmd = "python3 bench/nodes.py"
    defaults = {"agents": 100, "window": 20.0, "lines": "50000,200000", "redeploys": 5}
    for k, v in defaults.items():
        if getattr(args, k) != v:
            cmd += f" --{k} {getattr(args, k):g}" if isinstance(v, float) else f" --{k} {getattr(args, k)}"
    results["command"] = cmd
    os.makedirs(common.RESULTS, exist_ok=True)
    with open(os.path.join(common.RESULTS, "nodes.json"), "w") as f:
        json.dump(results, f, indent=2)
    section = markdown(results, cmd)
    print()
    print(section)
    print(f"(took {results['elapsed_s']} s; results in bench/results/nodes.json)")
    if not args.no_docs:
        write_docs(section)
        print(f"updated {os.path.relpath(DOCS, os.getcwd())}")


if __name__ == "__main__":
    main()
