#!/usr/bin/env python3
"""Phased rollouts: how long a regression serves before the abort, and how many requests the
bad canary answered, against what weight × rate × detection time predicts.

Reuses the acceptance test's hosts (tests/e2e/test_rollout.py: a control plane and three
agents alpha/beta/gamma in network namespaces; root needed). For each analysis interval in
--intervals, ROUNDS times: deploy a good release, then under paced load (RATE req/s through
the gateway) one that answers every 20th request with 500 (5 %) with beta at 10 %. Measured:
detection = the abort event's time − the canary weight event's time; canary requests = the
answers the bad release gave; predicted = 0.10 × RATE × detection. Loopback and the test's
own namespaces only; bounded in time and count.
Usage: sudo python3 bench/rollout_abort.py [--intervals 1,2] [--rounds 2] [--rate 400]
"""
import argparse
import os
import statistics
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
os.chdir(os.path.join(HERE, "..", "tests", "e2e"))

import test_rollout as tr  # noqa: E402
from harness import wait_until  # noqa: E402


class Bench(tr.RolloutTest):
    def runTest(self):  # unittest needs one
        pass

    def round(self, app, interval_s, rate, n):
        app = f"{app}r{n}"  # baseline() creates the app
        beta = tr.beta_stage(bake="30s", max_bake="40s",
                             analysis={"interval": f"{interval_s}s", "min_requests": 10})
        good, bad = f"{app}-g{n}", f"{app}-b{n}"
        self.baseline(app, good, tr.rollout_manifest(app, beta=beta))
        with self.traffic(app, threads=4, max_seconds=120) as load:
            load.period = 4 / rate
            wait_until(lambda: load.count() > 50, timeout=30, what="load")
            d = self.start_deploy(app, bad, tr.rollout_manifest(app, beta=beta, env={"ERROR_EVERY": "20"}))
            d = self.wait_deployment(d["id"])
        records = load.snapshot()
        events = self.events(d["id"])
        weighted = self.event(d["id"], r"canary weight 10%", events)
        aborted = self.event(d["id"], r"^rollout aborted: ", events)
        if d["status"] != "rolled_back" or not weighted or not aborted:
            return None
        detection = (aborted["ts_ms"] - weighted["ts_ms"]) / 1000
        canary = [r for r in records if r[3] == bad]
        window = [r for r in records if weighted["ts_ms"] / 1000 <= r[0] <= aborted["ts_ms"] / 1000]
        measured_rate = len(window) / detection if detection > 0 else 0
        return {"detection_s": detection, "canary_requests": len(canary),
                "canary_errors": sum(1 for r in canary if r[2] == 500),
                "rate": measured_rate, "predicted": 0.10 * measured_rate * detection}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--intervals", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=int, default=400)
    args = ap.parse_args()
    Bench.setUpClass()
    try:
        b = Bench()
        rows = []
        for interval in [int(x) for x in args.intervals.split(",")]:
            app = f"bench{interval}"
            results = [r for r in (b.round(app, interval, args.rate, n) for n in range(args.rounds)) if r]
            if not results:
                print(f"interval {interval}s: no round ended in an abort")
                continue
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            rows.append((interval, len(results), med))
        print("| interval | failure_limit | rounds | detection (median) | canary answers | of which 500 | predicted 0.10 × rate × detection | rate |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for interval, n, m in rows:
            print(f"| {interval} s | 2 | {n} | {m['detection_s']:.2f} s | {m['canary_requests']:.0f} | "
                  f"{m['canary_errors']:.0f} | {m['predicted']:.0f} | {m['rate']:.0f} req/s |")
    finally:
        Bench.tearDownClass()


if __name__ == "__main__":
    main()
