#!/usr/bin/env python3
"""Service alerts, measured (issue 33): how long from a source's commit to delivery at a
subscribed client, and what idle subscriptions cost.

    python3 bench/alerts/alerts.py target/release/c360            # the full run
    python3 bench/alerts/alerts.py target/debug/c360 --ci         # CI's slice (~40 s)

The hub runs on the embedded SQLite default (its own data directory, `customers`
seeded) with the default poll interval (1 s). This script writes to the helpdesk's
database as the helpdesk would: each event is a ticket with a satisfaction score of 1
(a `LOW_SATISFACTION` alert), committed at a steady rate; a subscriber over Server-Sent
Events (graphql-sse) reports when each arrives. Then `--idle` subscriptions of mixed
roles (admin, agent, frontend, analyst) stay open: the hub's RSS and CPU with them, and
the time one alert takes to reach all of them. Only the standard library.
"""

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import Hub  # noqa: E402

FOLLOW = ("subscription { serviceAlerts(kinds: [LOW_SATISFACTION]) "
          "{ cursor node { kind ticket { subject } } } }")
IDLE = "subscription { serviceAlerts(kinds: [LOW_SATISFACTION]) { node { kind customer { id } } } }"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def pct(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Stream:
    """One graphql-sse stream over a raw connection: each `next` event's arrival time and
    payload go to `on_event`."""

    def __init__(self, port, token, query, on_event):
        self.port, self.token, self.query, self.on_event = port, token, query, on_event
        self.opened = asyncio.get_running_loop().create_future()
        self.task = None
        self.writer = None

    async def run(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer = writer
        body = json.dumps({"query": self.query}).encode()
        writer.write((f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                      f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            self.opened.set_exception(RuntimeError(f"stream refused: {status!r}"))
            return
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.opened.set_result(True)
        name, data, buffer = None, [], b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            at = time.time()
            buffer += chunk
            # Chunked transfer encoding: strip the size lines, keep the event text.
            text = buffer
            buffer = b""
            for line in text.split(b"\n"):
                line = line.rstrip(b"\r")
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data.append(line[5:].strip().decode())
                elif line == b"" and name:
                    if name == "next":
                        self.on_event(at, json.loads("".join(data)))
                    name, data = None, []

    def start(self):
        self.task = asyncio.create_task(self.run())
        return self

    def close(self):
        if self.writer:
            self.writer.close()
        if self.task:
            self.task.cancel()


def now_text():
    return datetime.now(timezone.utc).isoformat()


class Helpdesk:
    """Writes tickets into the hub's embedded helpdesk database, as the helpdesk would."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("pragma busy_timeout = 30000")
        self.next_id = (self.db.execute("select coalesce(max(id), 0) from tickets").fetchone()[0] or 0) + 1_000_000

    def poor_score(self, requester, subject):
        ticket_id = self.next_id
        self.next_id += 1
        at = now_text()
        self.db.execute(
            "insert into tickets (id, requester_id, channel, category, priority, status, subject, opened_at, "
            "closed_at, csat, updated_at) values (?, ?, 'email', 'inquiry', 'normal', 'solved', ?, ?, null, 1, ?)",
            (ticket_id, requester, subject, at, at))
        return time.time()


def linked_requesters(hub, token):
    page = hub.gql(token, "{ customers(first: 100) { edges { node { sourceRecords { source key } } } } }")
    keys = []
    for edge in page["data"]["customers"]["edges"]:
        keys += [int(r["key"]) for r in edge["node"]["sourceRecords"] if r["source"] == "HELPDESK"]
    if not keys:
        raise SystemExit("no helpdesk requester linked to a customer")
    return keys


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 10 ms


async def latency(hub, token, helpdesk, requesters, events, rate):
    committed, received = {}, {}

    def on_event(at, payload):
        node = payload.get("data", {}).get("serviceAlerts", {}).get("node") or {}
        subject = (node.get("ticket") or {}).get("subject")
        if subject and subject not in received:
            received[subject] = at

    stream = Stream(hub.port, token, FOLLOW, on_event).start()
    await stream.opened
    await asyncio.sleep(1.5)
    log(f"latency: {events} events at {rate}/s, one subscriber (SSE), poll interval 1 s")
    started = time.time()
    for i in range(events):
        subject = f"bench-{i}"
        committed[subject] = helpdesk.poor_score(random.choice(requesters), subject)
        target = started + (i + 1) / rate
        await asyncio.sleep(max(0.0, target - time.time()))
    deadline = time.time() + 30
    while len(received) < events and time.time() < deadline:
        await asyncio.sleep(0.1)
    stream.close()
    delays = [received[s] - committed[s] for s in committed if s in received]
    return {"events": events, "rate_per_s": rate, "delivered": len(delays),
            "p50_ms": round(pct(delays, 50) * 1e3, 1), "p99_ms": round(pct(delays, 99) * 1e3, 1),
            "max_ms": round(max(delays) * 1e3, 1) if delays else None,
            "mean_ms": round(statistics.mean(delays) * 1e3, 1) if delays else None}


async def idle(hub, tokens, helpdesk, requesters, count):
    arrivals = {}
    payloads = {}
    rss_before = hub.rss_mib()
    streams = []
    log(f"idle: opening {count} subscriptions (admin, agent, frontend, analyst in turn)")
    started = time.time()
    for i in range(count):
        token = tokens[i % len(tokens)]
        def on_event(at, payload, i=i):
            payloads.setdefault(i, payload)
            arrivals.setdefault(i, at)

        streams.append(Stream(hub.port, token, IDLE, on_event).start())
        if i % 200 == 199:
            await asyncio.gather(*(s.opened for s in streams[-200:]))
    await asyncio.gather(*(s.opened for s in streams))
    opened_s = time.time() - started
    await asyncio.sleep(3)
    rss_after = hub.rss_mib()
    cpu0, t0 = cpu_seconds(hub.proc.pid), time.time()
    await asyncio.sleep(10)
    idle_cpu = (cpu_seconds(hub.proc.pid) - cpu0) / (time.time() - t0)
    log("idle: one alert to all of them")
    committed = helpdesk.poor_score(random.choice(requesters), "bench-fanout")
    deadline = time.time() + 60
    while len(arrivals) < count and time.time() < deadline:
        await asyncio.sleep(0.05)
    delays = [at - committed for at in arrivals.values()]
    # Every subscriber's first event is the fan-out's alert: anything else (an error
    # when it opened, say) is a failure of the run.
    wrong = [p for p in payloads.values() if (p.get("data") or {}).get("serviceAlerts") is None]
    if wrong:
        log(f"{len(wrong)} subscriptions got something else first, e.g. {wrong[0]}")
    for s in streams:
        s.close()
    return {"subscriptions": count, "opened_in_s": round(opened_s, 1), "rss_before_mib": round(rss_before, 1),
            "rss_with_mib": round(rss_after, 1),
            "kib_per_subscription": round((rss_after - rss_before) * 1024 / count, 1),
            "idle_cpu_percent": round(idle_cpu * 100, 2), "delivered_to": len(arrivals),
            "wrong_first_events": len(wrong), "first_ms": round(min(delays) * 1e3, 1) if delays else None,
            "p50_ms": round(pct(delays, 50) * 1e3, 1), "all_ms": round(max(delays) * 1e3, 1) if delays else None}


async def main_async(args, hub):
    admin = hub.token("admin")
    tokens = [admin, hub.token("agent"), hub.token("frontend"), hub.token("analyst")]
    requesters = linked_requesters(hub, admin)
    helpdesk = Helpdesk(hub.dir / "data" / "helpdesk.db")
    report = {"latency": await latency(hub, admin, helpdesk, requesters, args.events, args.rate)}
    log("latency:", report["latency"])
    report["idle"] = await idle(hub, tokens, helpdesk, requesters, args.idle)
    log("idle:", report["idle"])
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--idle", type=int, default=5000, help="idle subscriptions")
    parser.add_argument("--ci", action="store_true", help="CI's slice: 200 customers, 100 events, 300 idle")
    parser.add_argument("--keep", action="store_true", help="keep the hub's data and log")
    args = parser.parse_args()
    if args.ci:
        args.customers, args.events, args.rate, args.idle = 200, 100, 20.0, 300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.idle * 2 + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    random.seed(7)
    # Thousands of subscriptions from four tokens: over the per-token cap, which is not
    # what this measures.
    hub = Hub(Path(args.binary).resolve(), tempfile.mkdtemp(prefix="c360-alerts-"), args.customers,
              subject_prefix="alerts", graphql=f"max_subscriptions_per_token = {args.idle + 10}")
    failed = True
    try:
        log(f"starting the hub with {args.customers} customers")
        hub.start()
        report = asyncio.run(main_async(args, hub))
        out = Path(__file__).resolve().parent / "out"
        out.mkdir(exist_ok=True)
        (out / "alerts-report.json").write_text(json.dumps(report, indent=2))
        lat, idl = report["latency"], report["idle"]
        print(f"\n== c360 alerts: {args.customers} customers, poll interval 1 s")
        print(f"latency: {lat['delivered']}/{lat['events']} delivered at {lat['rate_per_s']}/s: "
              f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms (commit to SSE client)")
        print(f"idle:    {idl['subscriptions']} subscriptions: {idl['kib_per_subscription']} KiB each "
              f"(RSS {idl['rss_before_mib']} -> {idl['rss_with_mib']} MiB), idle CPU {idl['idle_cpu_percent']}%, "
              f"one alert to all in {idl['all_ms']} ms (first {idl['first_ms']} ms, p50 {idl['p50_ms']} ms), "
              f"delivered to {idl['delivered_to']}")
        failed = (lat["delivered"] < lat["events"] or idl["delivered_to"] < idl["subscriptions"]
                  or idl["wrong_first_events"] > 0)
        print("FAILED: not every event reached every subscriber" if failed else "OK")
    finally:
        hub.close(keep=args.keep or failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
