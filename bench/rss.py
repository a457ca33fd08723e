#!/usr/bin/env python3
"""The resident memory of one c360 server under load, over time.

    python3 bench/rss.py q1,q3                         # PostgreSQL, 100,000 customers
    BIN=/tmp/c360-old python3 bench/rss.py q1          # another build, same data
    WRAP="heaptrack -o /tmp/heap/c360" BIN=target/release/c360 python3 bench/rss.py q1
                                                       # a heap profile: build with
                                                       # --features system-allocator

Serves the admin hub on bench/compare.py's data set (seeded when missing), prints its RSS
idle, then after each of ROUNDS (3) loads of SECS (20) seconds per operation with 32
clients, and after two idle seconds: growth from load to load is what a cache or a leak
looks like. Extra arguments KEY=VALUE go to the server's environment.
"""

import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as c  # noqa: E402


def main():
    ops = sys.argv[1].split(",") if len(sys.argv) > 1 else ["q1", "q3"]
    db, env = c.prepare_data("postgres", 100_000, 20, False)
    env.update(dict(kv.split("=", 1) for kv in sys.argv[2:]))
    port = c.free_port()
    binary = os.environ.get("BIN", str(c.C360))
    server = c.Server("c360 admin", os.environ.get("WRAP", "").split() + [binary, "--listen", f"127.0.0.1:{port}"],
                      env, port)
    server.wait_ready()
    print("idle", round(server.rss_mib()), "MiB", flush=True)
    ids, emails = c.sample_keys("postgres", db, 5_000, random.Random(360))
    token = c.token(env, "admin")
    sealed = c.c360_ids(c.C360, tuple(env.items()), tuple(ids))
    cursors = c.cursors(server, token, False)
    work = Path(tempfile.mkdtemp(prefix="c360-rss-"))
    try:
        for op in ops:
            bodies = work / f"{op}.txt"
            bodies.write_text("\n".join(c.bodies(op, False, ids, emails, cursors, random.Random(1), 2_000, sealed)))
            for i in range(int(os.environ.get("ROUNDS", "3"))):
                r = c.load(server, token, bodies, 32, int(os.environ.get("SECS", "20")))
                print(op, "load", i + 1, round(r["rps"]), "req/s", round(r["rss"]), "MiB", flush=True)
            time.sleep(2)
            print(op, "two seconds idle", round(server.rss_mib()), "MiB", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
