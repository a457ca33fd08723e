#!/usr/bin/env python3
"""The hardening issue's attacks against one or more builds, side by side: how long each
takes, what it answers, how the hub's memory moves, and whether another client is served
meanwhile.

    python3 bench/attacks.py target/release/c360 [/tmp/c360-base ...] [--customers 300]

Each binary runs on its own fresh demo data (bench/harness.py). The attacks are bounded so
that an unprotected build still finishes: introspection nests 8 lists (not the issue's 15,
which took a 23 GB process down), slow clients are watched for 20 s.
"""

import argparse
import base64
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Hub  # noqa: E402


def timed_post(hub, token, body):
    started = time.time()
    status, answer = hub.post(token, json.dumps(body))
    codes = sorted({e.get("extensions", {}).get("code", "?") for e in answer.get("errors", [])})
    limit = [e["message"] for e in answer.get("errors", []) if e.get("extensions", {}).get("code") == "LIMIT_EXCEEDED"]
    return time.time() - started, status, ",".join(codes + [f"({m})" for m in limit[:1]]) or "data"


def healthz_while(hub, work):
    """Runs `work` while another client asks /healthz every 50 ms: (result, slowest healthz)."""
    slowest, done = [0.0], threading.Event()

    def probe():
        while not done.is_set():
            started = time.time()
            hub.get("/healthz", timeout=30)
            slowest[0] = max(slowest[0], time.time() - started)
            time.sleep(0.05)

    t = threading.Thread(target=probe)
    t.start()
    try:
        result = work()
    finally:
        done.set()
        t.join()
    return result, slowest[0]


def open_for(port, head, watch=20.0):
    """Sends `head` and nothing more: seconds until the hub closes the connection (None: still
    open after `watch`)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    s.settimeout(watch)
    started = time.time()
    try:
        while s.recv(4096):
            pass
        return round(time.time() - started, 1)
    except socket.timeout:
        return None
    finally:
        s.close()


def websocket_init(port, size):
    """A `connection_init` of `size` bytes with a bad token: (seconds, what came back)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    payload = json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer x", "pad": "x" * size}})
    data = payload.encode()
    # In frames of 4 MiB (each under the usual frame limit), as one message.
    step = 4 << 20
    parts = [data[i:i + step] for i in range(0, len(data), step)]
    started = time.time()
    try:
        for i, part in enumerate(parts):
            mask = os.urandom(4)
            first = (0x80 if i == len(parts) - 1 else 0) | (0x1 if i == 0 else 0x0)
            s.sendall(bytes([first, 0x80 | 127]) + len(part).to_bytes(8, "big") + mask +
                      bytes(b ^ mask[j % 4] for j, b in enumerate(part)))
        reply = s.recv(64)
    except OSError as e:
        reply = type(e).__name__.encode()
    s.close()
    return round(time.time() - started, 2), reply[:24]


def attack(binary, customers):
    work = tempfile.mkdtemp(prefix="c360-attacks-")
    hub = Hub(binary, work, customers, subject_prefix="attack")
    # Partners held to 1 operation a second with a burst of 10, as an operator would.
    hub.cfg.write_text(hub.cfg.read_text().replace("operations_per_second = 0\nburst = 0",
                                                   "operations_per_second = 1\nburst = 10"))
    hub.start()
    out = {}
    try:
        admin, partner = hub.token("admin"), hub.token("partner", "acme-insurance")
        rss0 = hub.rss_mib()

        frags = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(26))
        bomb = {"query": "query { ...F0 } " + frags + " fragment F26 on Query { __typename }"}
        (took, status, codes), slow = healthz_while(hub, lambda: timed_post(hub, partner, bomb))
        out["fragments doubling 26 deep (partner)"] = f"{took:.2f} s, {status} {codes}; healthz at most {slow:.2f} s"

        inner = "name"
        for i in range(8):
            inner = ("possibleTypes" if i % 2 == 0 else "interfaces") + " { " + inner + " }"
        deep = {"query": '{ __type(name: "Node") { ' + inner + " } }"}
        before = hub.rss_mib()
        (took, status, codes), slow = healthz_while(hub, lambda: timed_post(hub, admin, deep))
        out["introspection, 8 nested lists (admin)"] = (f"{took:.2f} s, {status} {codes}, RSS +{hub.rss_mib() - before:.0f}"
                                                        f" MiB; healthz at most {slow:.2f} s")

        # Each operation within every limit (32,768 fields under one root field, through
        # five fragments each spreading the next eight times), and walked in full unless
        # only the one that runs is.
        frags = " ".join(f"fragment G{i} on CustomerConnection {{ {' '.join([f'...G{i + 1}'] * 8)} }}"
                         for i in range(5)) + " fragment G5 on CustomerConnection { totalCount }"
        ops = " ".join(f"query Op{i} {{ customers(first: 1) {{ ...G0 }} }}" for i in range(1000))
        many = {"query": ops + " " + frags, "operationName": "Op7"}
        (took, status, codes), slow = healthz_while(hub, lambda: timed_post(hub, admin, many))
        out["1,000 operations over one fan-out (admin)"] = f"{took:.2f} s, {status} {codes}; healthz at most {slow:.2f} s"
        alone = {"query": "query Op7 { customers(first: 1) { ...G0 } } " + frags}
        took, status, codes = timed_post(hub, admin, alone)
        out["the same operation alone (admin)"] = f"{took:.2f} s, {status} {codes}"

        deep_doc = {"query": "{ customers(first: 1) { edges { node { " + "orders(first: 1) { edges { node { " * 12 +
                    "id" + " } } }" * 12 + " } } } }"}
        answers = [timed_post(hub, partner, deep_doc)[2] for _ in range(40)]
        out["40 over-limit documents in a burst (partner)"] = ", ".join(
            f"{c} x{answers.count(c)}" for c in sorted(set(answers)))

        out["headers trickled in (seconds until closed)"] = str(open_for(
            hub.port, b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
        out["a body trickled in (seconds until closed)"] = str(open_for(
            hub.port, b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"query\""))
        before = hub.rss_mib()
        took, reply = websocket_init(hub.port, 30 << 20)
        out["websocket connection_init of 30 MiB, bad token"] = (f"{took} s, RSS +{hub.rss_mib() - before:.0f} MiB, "
                                                                 f"reply {reply!r}")
        out["RSS (MiB) at start, at end"] = f"{rss0:.0f}, {hub.rss_mib():.0f}"
    finally:
        hub.stop()
        hub.close(keep=False)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--customers", type=int, default=300)
    args = ap.parse_args()
    results = {b: attack(b, args.customers) for b in args.binaries}
    names = list(next(iter(results.values())))
    for name in names:
        print(f"- {name}")
        for b in args.binaries:
            print(f"    {b}: {results[b].get(name)}")


if __name__ == "__main__":
    main()
