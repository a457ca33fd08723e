#!/usr/bin/env python3
"""The hub's resident memory after its first start on the embedded default, and after a
restart over the same data.

    python3 bench/first_start.py target/release/c360                  # 10,000 customers
    python3 bench/first_start.py target/release/c360 --customers 100000

On a fresh data directory `serve` seeds the demo data, resolves identities and fits the
insight models (in child processes, `c360 job …`). This waits until the fit is logged,
lets the hub idle a few seconds, and prints its RSS; then restarts it over the same data
and prints the RSS again. The two should be close: what the jobs needed is gone with them.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Hub  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds between the fit and the reading")
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="c360-first-start-")
    hub = Hub(Path(args.binary).resolve(), workdir, args.customers, subject_prefix="first-start")
    try:
        started = time.time()
        hub.start(timeout=args.timeout)
        while b"insight models fitted" not in hub.log_path.read_bytes():
            if time.time() - started > args.timeout or not hub.alive():
                raise SystemExit(f"no fit logged; see {hub.log_path}")
            time.sleep(0.2)
        fitted = time.time() - started
        time.sleep(args.idle)
        first = hub.rss_mib()
        hub.stop()
        hub.start(timeout=args.timeout)
        time.sleep(args.idle)
        restarted = hub.rss_mib()
        print(f"{args.customers} customers: seeded, resolved and fitted in {fitted:.1f} s; "
              f"RSS after the first start {first:.1f} MiB, after a restart {restarted:.1f} MiB")
    finally:
        hub.close(keep=False)


if __name__ == "__main__":
    main()
