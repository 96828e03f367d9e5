#!/usr/bin/env python3
"""The agent's outbox on disk against the same outbox in memory, in the same run.

1. Through one op (the executor alone): a worker prints LINES lines as fast as it can through
   an OpExecutor; a thread standing in for the control plane decodes every frame and acks each
   event as it arrives ("acked"), or acks nothing ("unacked": everything stays buffered).
   Events/s from the op frame to its result, memory outbox vs disk outbox, ROUNDS rounds. This
   is the disabled OutboxBench test of tests/agent/outbox_test.cpp.
2. End to end (--e2e N): bench/nodes.py's output measure, a build step `seq 1 N` on a remote
   `slipway agent` over loopback (which keeps its outbox on disk) and on the server's own
   in-process node (memory), lines/s as stored by the control plane.

Prints what it measures; writes nothing. Loopback only; every wait is bounded.
Usage: bench/agent_outbox.py [--e2e LINES]
OUTBOX_TEST selects the test binary (default build/release/tests/outbox_test); SLIPWAY_BIN the
slipway binary for --e2e (default build/release/bin/slipway).
"""
import argparse
import atexit
import os
import re
import subprocess
import sys
import tempfile

import common
import nodes

ROOT = common.harness.ROOT


def executor_rounds(binary):
    out = subprocess.run([binary, "--gtest_also_run_disabled_tests", "--gtest_filter=OutboxBench.*"],
                         capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        sys.exit(f"agent_outbox.py: {binary} failed:\n{out.stdout}\n{out.stderr}")
    rounds = [line for line in out.stdout.splitlines() if re.match(r"round \d+", line)]
    for line in rounds:
        print(line, flush=True)
    return rounds


def end_to_end(lines):
    atexit.register(nodes.cleanup)
    nodes._tmp = tempfile.mkdtemp(prefix="slipway-bench-outbox-")
    result = nodes.deployments(nodes._tmp, [lines], 1)
    for row in result["events"]:
        for side in ("local", "solo"):
            r = row[side]
            print(f"{lines} lines on {side}: {r['build_log_events']} stored in {r['span_ms']} ms, "
                  f"{r['lines_per_s']} lines/s, {r['status']}", flush=True)
        print(f"remote (disk outbox) / local (memory): {row['remote_over_local']}x", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--e2e", type=int, default=0, metavar="LINES", help="also measure end to end")
    args = ap.parse_args()
    if args.e2e and not 1 <= args.e2e <= 1_000_000:
        ap.error("--e2e: 1..1,000,000 lines")
    binary = os.environ.get("OUTBOX_TEST", os.path.join(ROOT, "build", "release", "tests", "outbox_test"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"agent_outbox.py: no test binary at {binary}: build outbox_test or set OUTBOX_TEST")
    print(f"1-minute load average at the start: {os.getloadavg()[0]:.2f}", flush=True)
    executor_rounds(binary)
    if args.e2e:
        end_to_end(args.e2e)
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
