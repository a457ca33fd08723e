#!/usr/bin/env python3
"""A soak at 80% of the measured peak throughput, with mixed roles.

    python3 bench/soak/soak.py target/release/c360                     # 10 minutes, 10,000 customers
    python3 bench/soak/soak.py target/debug/c360 --seconds 30 --customers 500    # the CI slice
    python3 bench/soak/soak.py BINARY [--minutes M | --seconds S] [--customers N] [--clients C]
                                      [--peak-seconds P] [--load 0.8] [--report FILE]

Only the standard library and wrk (installed with apt-get when missing, as bench/compare.py
does). What it does:

1. Starts its own hub (fresh temporary data dir, `--customers` seeded, partners' rate limits
   off) and mints tokens for admin, frontend, analyst and a partner (acme-insurance).
2. Writes a mixed workload (one request per line, drawn from a seeded generator): profile
   by id, a page of customers with their orders, segment and lifecycle summaries, a
   partner's consenting customers; shares: admin 25%, frontend 35%, analyst 25%, partner
   15%. Every distinct request is checked once (no errors, data present).
3. Warms up (half of `--peak-seconds`, unpaced), then measures the peak: wrk with
   `--clients` connections as fast as it goes for `--peak-seconds`.
4. Paces wrk to `--load` (80%) of that peak: wrk's `delay()` per request, calibrated in three
   short runs; the achieved rate and its share of the peak are reported (wrk paces by
   per-connection sleeps, so the share can drift a few points as latency changes).
5. Soaks for the duration at that rate, sampling the hub's RSS (VmRSS) every 5 s. Counts
   non-2xx answers, transport errors and responses with GraphQL `errors`.
6. Reports RSS at the start (after warm-up and calibration), the maximum and the end, and
   whether memory stayed flat: end <= start x 1.2 + 8 MiB.

Exit code 0: no errors and flat memory; 1 otherwise. The report (JSON) goes to --report
(default bench/soak/out/soak-report.json).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import Hub  # noqa: E402  (bench/harness.py)

ROOT = Path(__file__).resolve().parents[2]
LUA = Path(__file__).resolve().parent / "mixed.lua"
ROLES = ["admin", "frontend", "analyst", "partner"]
SHARES = {"admin": 25, "frontend": 35, "analyst": 25, "partner": 15}

PROFILE = ("query($id: ID!) { customer(id: $id) { id displayName email phone birthYear address { city country } "
           "purchaseSummary { orderCount totalSpent { amount currency } } } }")
PAGE = ("query($after: String) { customers(first: 20, after: $after) { totalCount edges { cursor node { id displayName "
        "orders(first: 5) { edges { node { number orderedAt status total { amount currency } } } } } } } }")
SEGMENTS = ("{ segments { segment customers revenueShare averagePredictedClv averageChurnRisk suppressed } "
            "lifecycleDistribution { stage customers share suppressed } }")
ANALYST_CUSTOMER = ("query($id: ID!) { customer(id: $id) { id birthYear purchaseSummary { orderCount totalSpent { amount } } "
                    "orders(first: 5) { edges { node { orderedAt status lines { sku quantity } } } } "
                    "serviceSummary { ticketCount openTickets } } }")
ANALYST_PAGE = ("query($after: String) { customers(first: 20, after: $after) { edges { cursor node { id birthYear "
                "orders(first: 5) { edges { node { orderedAt status } } } } } } }")
PARTNER_PROFILE = "query($id: ID!) { customer(id: $id) { id displayName email phone address { city country } } }"
PARTNER_PAGE = "{ customers(first: 10) { totalCount edges { node { id displayName email } } } }"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def install_wrk():
    if shutil.which("wrk") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        log("$ apt-get install -y -q wrk")
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)


def workload(hub, tokens, rng, n):
    """Lines '<token index>\\t<body>' and the distinct bodies to check first."""
    ids, cursors, after = [], [None], None
    while len(ids) < 2000:
        _, d = hub.post(tokens["admin"], json.dumps({"query": "query($a: String) { customers(first: 100, after: $a) "
                                                              "{ edges { cursor node { id } } } }",
                                                     "variables": {"a": after}}))
        edges = d["data"]["customers"]["edges"]
        if not edges:
            break
        ids += [e["node"]["id"] for e in edges]
        cursors += [e["cursor"] for e in edges[::20]]
        after = edges[-1]["cursor"]
    _, d = hub.post(tokens["partner"], json.dumps({"query": "{ customers(first: 100) { edges { node { id } } } }"}))
    consented = [e["node"]["id"] for e in d["data"]["customers"]["edges"]]
    if not consented:
        raise SystemExit("the partner sees no customer: no consents in the seed?")
    index = {r: i + 1 for i, r in enumerate(ROLES)}
    ops = {
        "admin": [(PROFILE, "id", 5), (PAGE, "cursor", 2), (SEGMENTS, None, 1)],
        "frontend": [(PROFILE, "id", 6), (PAGE, "cursor", 2)],
        "analyst": [(ANALYST_CUSTOMER, "id", 4), (ANALYST_PAGE, "cursor", 2), (SEGMENTS, None, 2)],
        "partner": [(PARTNER_PROFILE, "pid", 4), (PARTNER_PAGE, None, 1)],
    }
    roles = [r for r in ROLES for _ in range(SHARES[r])]
    lines, checks = [], {}
    for _ in range(n):
        role = rng.choice(roles)
        doc, kind, _w = rng.choices(ops[role], weights=[w for _, _, w in ops[role]])[0]
        variables = {"id": rng.choice(ids)} if kind == "id" else {"after": rng.choice(cursors)} if kind == "cursor" \
            else {"id": rng.choice(consented)} if kind == "pid" else {}
        body = json.dumps({"query": doc, "variables": variables})
        lines.append(f"{index[role]}\t{body}")
        checks.setdefault((role, doc), body)
    return lines, checks


def run_wrk(hub, bodies, tokens, clients, seconds, delay_ms, sampler=None):
    cmd = ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), f"http://127.0.0.1:{hub.port}", "--", str(bodies), f"{delay_ms:.3f}"] + \
        [tokens[r] for r in ROLES]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        if sampler:
            sampler()
        time.sleep(0.5)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {err}{out}")
    r = json.loads(out.strip().splitlines()[-1])
    r["rate"] = r["requests"] / (r["duration_us"] / 1e6)
    r["all_errors"] = sum(r["errors"].values()) - r["errors"]["status"] + r["non2xx"] + r["graphql_errors"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", type=Path)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--seconds", type=float, help="the soak's length in seconds (instead of --minutes)")
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--peak-seconds", type=float, help="length of the peak measurement (default 20 s; 5 s for soaks "
                                                        "under 2 minutes)")
    ap.add_argument("--load", type=float, default=0.8, help="the soak's share of the peak")
    ap.add_argument("--seed", type=int, default=360)
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "soak" / "out" / "soak-report.json")
    ap.add_argument("--keep", action="store_true", help="keep the hub's temporary directory")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    soak_s = args.seconds if args.seconds is not None else args.minutes * 60
    short = soak_s < 120
    peak_s = args.peak_seconds or (5 if short else 20)
    calib_s = 3 if short else 8
    binary = args.binary.resolve()
    if not binary.exists():
        raise SystemExit(f"no such binary: {binary}")
    install_wrk()
    work = Path(tempfile.mkdtemp(prefix="c360-soak-"))
    hub = Hub(binary, work, args.customers, subject_prefix="soak")
    failed = False
    try:
        t0 = time.time()
        log(f"starting the hub ({binary}), {args.customers} customers, in {work} ...")
        hub.start()
        log(f"  ready in {time.time() - t0:.1f} s")
        tokens = {r: hub.token(r) for r in ROLES if r != "partner"}
        tokens["partner"] = hub.token("partner", "acme-insurance")
        deadline = time.time() + 600       # segments need the first insight fit
        while True:
            _, d = hub.post(tokens["admin"], json.dumps({"query": "{ insightModel { id } }"}))
            if d.get("data"):
                break
            if time.time() > deadline:
                raise SystemExit(f"the insight models were not fitted in 600 s: {d}")
            time.sleep(1)
        log(f"  insights fitted after {time.time() - t0:.1f} s")
        lines, checks = workload(hub, tokens, random.Random(args.seed), 20_000)
        for (role, doc), body in checks.items():
            status, d = hub.post(tokens[role], body)
            if status != 200 or d.get("errors") or not d.get("data") or any(v is None for v in d["data"].values()):
                raise SystemExit(f"{role}: the workload's request fails: {body[:200]} -> {status} {json.dumps(d)[:500]}")
        bodies = work / "bodies.tsv"
        bodies.write_text("\n".join(lines) + "\n")
        shares = {r: sum(1 for l in lines if l.startswith(f"{i + 1}\t")) / len(lines) for i, r in enumerate(ROLES)}
        log("workload: " + ", ".join(f"{r} {s:.0%}" for r, s in shares.items()) + f", {len(checks)} kinds, checked")

        log(f"warm-up: {args.clients} clients as fast as possible for {peak_s / 2:.0f} s ...")
        warm = run_wrk(hub, bodies, tokens, args.clients, peak_s / 2, 0)
        log(f"  {warm['rate']:.0f} req/s, errors {warm['all_errors']}, RSS {hub.rss_mib():.0f} MiB")
        log(f"peak: {args.clients} clients as fast as possible for {peak_s:.0f} s ...")
        peak = run_wrk(hub, bodies, tokens, args.clients, peak_s, 0)
        log(f"  {peak['rate']:.0f} req/s, p50 {peak['p50_us'] / 1000:.1f} ms, p99 {peak['p99_us'] / 1000:.1f} ms, "
            f"errors {peak['all_errors']}, RSS {hub.rss_mib():.0f} MiB")
        target = args.load * peak["rate"]
        # The per-connection period is C / target; a response takes about the latency, wrk sleeps the rest.
        delay = max(0.0, args.clients / target * 1000 - peak["p50_us"] / 1000 * 0.6)
        calib = []
        for i in range(3):
            r = run_wrk(hub, bodies, tokens, args.clients, calib_s, delay)
            calib.append({"delay_ms": round(delay, 3), "rate": round(r["rate"], 1), "errors": r["all_errors"]})
            log(f"  calibration {i + 1}: delay {delay:.2f} ms -> {r['rate']:.0f} req/s (target {target:.0f})")
            delay = max(0.0, delay + args.clients * 1000 * (1 / target - 1 / max(r["rate"], 1)))

        samples = []
        last = [0.0]

        def sample():
            if time.time() - last[0] >= 5:
                last[0] = time.time()
                samples.append((round(time.time() - t_soak, 1), round(hub.rss_mib(), 1)))

        rss_start = hub.rss_mib()
        log(f"soak: {soak_s:.0f} s at {target:.0f} req/s (delay {delay:.2f} ms), RSS at start {rss_start:.1f} MiB ...")
        t_soak = time.time()
        soak = run_wrk(hub, bodies, tokens, args.clients, soak_s, delay, sample)
        rss_end = hub.rss_mib()
        samples.append((round(time.time() - t_soak, 1), round(rss_end, 1)))
        rss_max = max([rss_start] + [s for _, s in samples])
        bound = rss_start * 1.2 + 8
        flat = rss_end <= bound
        alive = hub.proc.poll() is None
        errors = warm["all_errors"] + peak["all_errors"] + soak["all_errors"] + sum(c["errors"] for c in calib)
        report = {
            "binary": str(binary), "customers": args.customers, "clients": args.clients, "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "workload_shares": shares,
            "peak": {"seconds": peak_s, "rate": round(peak["rate"], 1), "p50_ms": peak["p50_us"] / 1000,
                     "p99_ms": peak["p99_us"] / 1000, "errors": peak["all_errors"]},
            "target_rate": round(target, 1), "calibration": calib,
            "soak": {"seconds": soak_s, "delay_ms": round(delay, 3), "requests": soak["requests"],
                     "rate": round(soak["rate"], 1), "share_of_peak": round(soak["rate"] / peak["rate"], 3),
                     "p50_ms": soak["p50_us"] / 1000, "p99_ms": soak["p99_us"] / 1000,
                     "transport_errors": {k: v for k, v in soak["errors"].items() if k != "status"},
                     "non2xx": soak["non2xx"], "graphql_errors": soak["graphql_errors"],
                     "first_error": soak["sample"]},
            "rss_mib": {"start": round(rss_start, 1), "max": round(rss_max, 1), "end": round(rss_end, 1),
                        "bound": round(bound, 1), "flat": flat, "samples": samples},
            "errors_total": errors, "hub_alive": alive,
        }
        failed = errors > 0 or not flat or not alive
        report["ok"] = not failed
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2))
        s = report["soak"]
        print(f"\n== c360 soak: {report['customers']:,} customers, {args.clients} clients, {os.cpu_count()} cores")
        print(f"peak:   {report['peak']['rate']:.0f} req/s (p50 {report['peak']['p50_ms']:.1f} ms, "
              f"p99 {report['peak']['p99_ms']:.1f} ms, {peak_s:.0f} s)")
        print(f"soak:   {s['seconds']:.0f} s at {s['rate']:.0f} req/s = {s['share_of_peak']:.0%} of peak "
              f"(target {args.load:.0%}), {s['requests']:,} requests, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")
        print(f"errors: {errors} (non-2xx {s['non2xx']}, GraphQL errors {s['graphql_errors']}, transport "
              f"{sum(s['transport_errors'].values())}; peak and calibration included)"
              + (f"; first: {s['first_error']}" if s["first_error"] else ""))
        print(f"RSS:    start {rss_start:.1f} MiB, max {rss_max:.1f} MiB, end {rss_end:.1f} MiB; bound "
              f"{bound:.1f} MiB (start x 1.2 + 8): {'flat' if flat else 'GREW'}")
        print(f"hub:    {'alive' if alive else 'DIED'}; report {args.report}")
        print("OK" if not failed else "FAILED")
    finally:
        hub.close(keep=args.keep or failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
