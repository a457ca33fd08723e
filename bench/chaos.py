#!/usr/bin/env python3
"""The chaos test: three c360 replicas behind HAProxy, the hub store on a three-node
Galera cluster (or PostgreSQL), the sources on PostgreSQL, under mixed load; faults one
after another; then the invariants.

    python3 bench/chaos.py target/release/c360              # the full run (about 6 minutes)
    python3 bench/chaos.py target/debug/c360 --ci           # the CI slice (about 80 seconds)
    python3 bench/chaos.py BINARY [--hub galera|postgres] [--customers N] [--clients C]
                                  [--phase-seconds S] [--faults F,F,...] [--report FILE] [--keep]

Only the standard library, `psql`, the `mariadb` client and the `deploy/` scripts (which
install HAProxy, and rsync for Galera, from Debian's packages when missing). PostgreSQL
(127.0.0.1:5432, trust) and NATS (127.0.0.1:4222) must be running; the test makes its
own databases and NATS subject and removes them after.

The topology (`deploy/README.md`): the four sources in one PostgreSQL database (a schema
each), the helpdesk's connections through a TCP proxy of this script's own (to blackhole,
slow or reset it); the hub store on Galera behind HAProxy's single-writer MySQL frontend;
three replicas (`c360 serve`) sharing a configuration, NATS for the bus; HAProxy in front,
checking `/readyz`.

The load (`--clients` threads, each on its own keep-alive connection to HAProxy): reads
by admin, agent, frontend, analyst and a partner; agents' notes and consent grants and
revocations; and a writer that adds customers to the CRM, so identity resolution runs
all along. Every response is recorded: its status, GraphQL error codes, latency, and
`x-request-id`.

The faults (each: inject, hold `--phase-seconds`, heal, settle `--phase-seconds`):
  replica      SIGKILL a replica; start it again
  galera-node  SIGKILL the Galera node HAProxy writes to; start it again (it rejoins by IST)
  lease-holder SIGKILL the replica holding identity resolution's lease in the middle of a
               burst of new CRM records; start it again
  blackhole    the helpdesk's proxy forwards nothing (connections hang); then passes again
  slow         the helpdesk's proxy delays each answer by 400 ms
  reset        the helpdesk's proxy resets every connection, and new ones, for the hold
For each: requests, the share that failed entirely (no data: HTTP error, transport error,
or `data` null) and the seconds in which some did (100 ms slots), the share with any
GraphQL error (a source's fields failing), p50 and p99 latency, the time from the fault
(and from its heal) to the last failed request, and from the heal to the last error.

The invariants, checked once the load has stopped, resolution has caught up with the
writer, and the replicas have shut down:
  audit      every response that revealed an email (admin, agent, partner) has its
             audit row (by request id): 0 lost
  notes      every acknowledged note is in the CRM; every acknowledged consent grant and
             revocation is in the consent ledger
  jobs       identity resolution's lease was taken by more than one replica over the run
             and no take's writes were lost or doubled: every CRM record is linked once,
             no golden customer is without links, no merged customer was merged again
  records    every CRM record the writer added (the burst included) is linked
  revocation a partner token revoked through HAProxy is refused by every replica within
             1.5 s (the bus over NATS, the synced read on Galera)
Exit code 0 when every invariant holds; the report (JSON) goes to --report (default
bench/chaos/out/chaos-report.json).
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PG_ADMIN = os.environ.get("C360_TEST_POSTGRES_URL", "postgres://root@127.0.0.1:5432/test")
NATS = os.environ.get("C360_TEST_NATS_URL", "nats://127.0.0.1:4222")
SOURCES = ["crm", "shop", "helpdesk", "marketing"]
FAULTS = ["replica", "galera-node", "lease-holder", "blackhole", "slow", "reset"]

PROFILE = ("query($id: ID!) { customer(id: $id) { id displayName email phone address { city country } "
           "purchaseSummary { orderCount } serviceSummary { ticketCount openTickets } } }")
FRONTEND = ("query($id: ID!) { customer(id: $id) { id displayName email "
            "orders(first: 3) { edges { node { number status } } } serviceSummary { ticketCount } } }")
ANALYST = ("query($id: ID!) { customer(id: $id) { id birthYear purchaseSummary { orderCount } "
           "serviceSummary { ticketCount openTickets } } }")
SEGMENTS = "{ segments { segment customers suppressed } }"
PARTNER = "query($id: ID!) { customer(id: $id) { id displayName email } }"
NOTE = "mutation($id: ID!, $body: String!) { addNote(customerId: $id, body: $body) { body } }"
GRANT = ("mutation($id: ID!, $purpose: String!) { grantConsent(customerId: $id, partner: \"northwind-travel\", "
         "purpose: $purpose) { id } }")
REVOKE = ("mutation($id: ID!, $purpose: String!) { revokeConsent(customerId: $id, partner: \"northwind-travel\", "
          "purpose: $purpose) { id } }")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CommandFailed(Exception):
    pass


def run(cmd, **kw):
    """Run a command; a failure raises with the command's own stderr, so the log says why."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-40:])
        raise CommandFailed(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{tail}")
    return done.stdout


def psql(url, sql):
    out = run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
    return [line.split("|") for line in out.splitlines() if line]


def pg_url(db, schema=None, port=5432):
    base = PG_ADMIN.rsplit("/", 1)[0].replace(":5432", f":{port}")
    return f"{base}/{db}" + (f"?options=-c%20search_path%3D{schema}" if schema else "")


# ---------------------------------------------------------------- the helpdesk's proxy


class Proxy:
    """A TCP proxy with faults: `pass`, `blackhole` (nothing is forwarded, connections
    hang), `slow` (each chunk from the server waits `delay`), `reset` (every connection,
    and each new one, is reset)."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.mode, self.delay = "pass", 0.4
        self.lock = threading.Lock()
        self.conns = set()
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode):
        with self.lock:
            self.mode = mode
            doomed = list(self.conns) if mode == "reset" else []
        for sock in doomed:
            self._reset(sock)

    @staticmethod
    def _reset(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        except OSError:
            pass

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            if self.mode == "reset":
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.update([client, upstream])
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src, dst, answers):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.mode == "blackhole":
                    time.sleep(0.05)
                if answers and self.mode == "slow":
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard(src)
                self.conns.discard(dst)
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


# ---------------------------------------------------------------- the topology


class Topology:
    def __init__(self, args):
        self.args = args
        self.binary = str(Path(args.binary).resolve())
        self.dir = Path(tempfile.mkdtemp(prefix="c360-chaos-"))
        self.tag = f"c360_chaos_{os.getpid()}"
        self.replicas = []  # [(port, Popen, log path)]
        self.galera_dir = self.dir / "galera"
        self.haproxy_dir = self.dir / "haproxy"
        self.galera_base = 14306 + (os.getpid() % 50) * 10
        self.http_port = free_port()
        self.mysql_port = free_port() if args.hub == "galera" else None
        self.proxy = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("C360_")}

    # --- databases
    def hub_sql(self, sql):
        if self.args.hub == "galera":
            cmd = ["mariadb", "-h127.0.0.1", f"-P{self.mysql_port}", "-uc360", "-pc360", "-N", "-B", "-e", sql,
                   self.tag]
            return [line.split("\t") for line in run(cmd).splitlines() if line]
        return psql(pg_url(self.tag, "hub"), sql)

    def source_sql(self, sql, schema="crm"):
        return psql(pg_url(self.tag, schema), sql)

    def up(self):
        a = self.args
        log(f"workdir {self.dir}")
        psql(PG_ADMIN, f"create database {self.tag}")
        psql(pg_url(self.tag), "; ".join(f"create schema {s}" for s in SOURCES + ["hub"]))
        self.proxy = Proxy(5432)
        if a.hub == "galera":
            started = time.time()
            self.galera_up()
            log(f"Galera up in {time.time() - started:.0f} s (nodes on {self.galera_base}..{self.galera_base + 2})")
            nodes = [f"127.0.0.1:{self.galera_base + i}" for i in range(3)]
            hap = ["--mysql", str(self.mysql_port)] + [x for n in nodes for x in ("--node", n)]
            run(["bash", str(DEPLOY / "haproxy.sh"), "up", str(self.haproxy_dir), "--http", str(self.http_port)]
                + [x for p in self.replica_ports() for x in ("--replica", f"127.0.0.1:{p}")] + hap)
            run(["mariadb", "-h127.0.0.1", f"-P{self.mysql_port}", "-uc360", "-pc360", "-e",
                 f"create database {self.tag}"])
            hub = f"mysql://c360:c360@127.0.0.1:{self.mysql_port}/{self.tag}"
        else:
            run(["bash", str(DEPLOY / "haproxy.sh"), "up", str(self.haproxy_dir), "--http", str(self.http_port)]
                + [x for p in self.replica_ports() for x in ("--replica", f"127.0.0.1:{p}")])
            hub = pg_url(self.tag, "hub")
        (self.dir / "ids.key").write_bytes(os.urandom(32))
        sources = "\n".join(
            f'{s} = "{pg_url(self.tag, s, self.proxy.port if s == "helpdesk" else 5432)}"' for s in SOURCES)
        self.cfg = self.dir / "c360.toml"
        self.cfg.write_text(f"""data_dir = "{self.dir / 'data'}"
hub = "{hub}"
shutdown_timeout = "5s"
[sources]
{sources}
[seed]
customers = {a.customers}
on_empty = false
[identity]
resolve_interval = "1s"
batch_size = 100
lease = "5s"
[insights]
update_interval = "0s"
[database]
# Three replicas of five pools, the jobs' child processes, the bus and this script share
# one PostgreSQL (max_connections 100) in --hub postgres: 3 x 5 x 4 leaves room.
max_connections = 4
health_interval = "1s"
acquire_timeout = "1s"
[database.breaker]
open = "5s"
window = "3s"
[database.statement_timeouts]
helpdesk = "2s"
[bus]
nats = "{NATS}"
subject = "c360.chaos.{uuid.uuid4().hex}"
[ids]
key_file = "{self.dir / 'ids.key'}"
[rate_limits.roles.partner]
operations_per_second = 0
burst = 0
cost_per_second = 0
cost_burst = 0
""")
        started = time.time()
        self.c360("migrate", "--sources")
        self.c360("seed", "--customers", str(a.customers))
        self.c360("fit")
        log(f"seeded {a.customers} customers, resolved and fitted in {time.time() - started:.0f} s")
        for i in range(3):
            self.start_replica(i)
        self.wait_balanced()

    def replica_ports(self):
        if not hasattr(self, "_ports"):
            self._ports = [free_port() for _ in range(3)]
        return self._ports

    def c360(self, *args):
        return run([self.binary, "--config", str(self.cfg), *args], cwd=self.dir, env=self.env)

    def start_replica(self, i):
        port = self.replica_ports()[i]
        path = self.dir / f"replica{i}.log"
        logf = open(path, "ab")
        proc = subprocess.Popen([self.binary, "--config", str(self.cfg), "serve", "--listen", f"127.0.0.1:{port}"],
                                cwd=self.dir, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
        if len(self.replicas) <= i:
            self.replicas.append(None)
        self.replicas[i] = (port, proc, path)
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"replica {i} exited at start; see {path}")
            if http_status(port, "/readyz") == 200:
                return
            time.sleep(0.2)
        raise SystemExit(f"replica {i} did not get ready; see {path}")

    def replica_id(self, i):
        """The replica's lease holder id, from its log line `serving GraphQL`."""
        for line in reversed(self.replicas[i][2].read_text(errors="replace").splitlines()):
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            if "serving GraphQL" in line and "replica=" in line:
                return line.split("replica=")[1].split()[0].strip('"')
        return None

    def kill_replica(self, i):
        proc = self.replicas[i][1]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def wait_balanced(self):
        """Until HAProxy sees every replica up again (its checks: 500 ms, rise 2)."""
        deadline = time.time() + 30
        while time.time() < deadline and http_status(self.http_port, "/readyz") != 200:
            time.sleep(0.2)
        time.sleep(1.5)

    def galera_up(self):
        """Start the cluster; once more on other ports if the first try fails (a port taken
        by something else on the machine, say), printing why."""
        for attempt in (1, 2):
            try:
                run(["bash", str(DEPLOY / "galera.sh"), "up", str(self.galera_dir), str(self.galera_base)])
                return
            except CommandFailed as e:
                log(f"Galera did not start (attempt {attempt}): {e}")
                subprocess.run(["bash", str(DEPLOY / "galera.sh"), "down", str(self.galera_dir), "--purge"],
                               capture_output=True)
                if attempt == 2:
                    raise
                self.galera_base = 14306 + ((os.getpid() + 17 + int(time.time())) % 50) * 10

    def galera(self, *args):
        return run(["bash", str(DEPLOY / "galera.sh"), *args])

    def down(self):
        for port, proc, _ in self.replicas:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for port, proc, _ in self.replicas:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def clean(self, keep):
        subprocess.run(["bash", str(DEPLOY / "haproxy.sh"), "down", str(self.haproxy_dir)], capture_output=True)
        if self.args.hub == "galera" and self.galera_dir.exists():
            subprocess.run(["bash", str(DEPLOY / "galera.sh"), "down", str(self.galera_dir)], capture_output=True)
        subprocess.run(["psql", "-qAtX", PG_ADMIN, "-c", f"drop database if exists {self.tag} with (force)"],
                       capture_output=True)
        if keep:
            log(f"logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def http_status(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return None


# ---------------------------------------------------------------- the load


class Load:
    def __init__(self, topo, tokens, ids, consented, clients, seed):
        self.topo, self.tokens, self.ids, self.consented = topo, tokens, ids, consented
        self.clients, self.rng = clients, random.Random(seed)
        self.results, self.lock = [], threading.Lock()
        self.stop = threading.Event()
        self.granted = []  # purposes acknowledged, for revocations
        self.crm_next = int(topo.source_sql("select coalesce(max(id), 0) + 1 from customers")[0][0])
        self.added = []  # CRM ids the writer added
        self.burst = 0  # records the writer adds at once next time
        self.burst_ids = []  # the last burst, once written

    def start(self):
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(self.clients)]
        self.threads.append(threading.Thread(target=self.writer, daemon=True))
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def pick(self, rng):
        r = rng.random()
        cid = rng.choice(self.ids)
        if r < 0.20:
            return "admin", "profile", PROFILE, {"id": cid}
        if r < 0.35:
            return "agent", "profile", PROFILE, {"id": cid}
        if r < 0.55:
            return "frontend", "profile", FRONTEND, {"id": cid}
        if r < 0.65:
            return "analyst", "customer", ANALYST, {"id": cid}
        if r < 0.70:
            return "analyst", "segments", SEGMENTS, {}
        if r < 0.85:
            return "partner", "profile", PARTNER, {"id": rng.choice(self.consented)}
        if r < 0.93:
            return "agent", "note", NOTE, {"id": cid, "body": f"chaos note {uuid.uuid4()}"}
        with self.lock:
            revoke = self.granted and rng.random() < 0.3
            purpose = self.granted.pop(rng.randrange(len(self.granted))) if revoke else None
        if purpose:
            return "agent", "revoke", REVOKE, purpose
        return "agent", "grant", GRANT, {"id": cid, "purpose": f"chaos-{uuid.uuid4().hex[:20]}"}

    def client(self, n):
        rng = random.Random(self.rng.random() + n)
        conn = None
        while not self.stop.is_set():
            role, op, doc, variables = self.pick(rng)
            if op == "revoke":  # (customer id, purpose) of an acknowledged grant
                variables = {"id": variables[0], "purpose": variables[1]}
            body = json.dumps({"query": doc, "variables": variables})
            started = time.time()
            record = {"t": started, "role": role, "op": op}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.topo.http_port, timeout=15)
                conn.request("POST", "/graphql", body=body, headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {self.tokens[role]}"})
                response = conn.getresponse()
                raw = response.read()
                record["status"] = response.status
                record["request_id"] = response.getheader("x-request-id")
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
                try:
                    decoded = json.loads(raw)
                except ValueError:
                    decoded = {}
            except (OSError, http.client.HTTPException) as e:
                record["status"], decoded = None, {}
                record["transport"] = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            record["latency"] = time.time() - started
            data = decoded.get("data") if isinstance(decoded, dict) else None
            errors = decoded.get("errors") or [] if isinstance(decoded, dict) else []
            record["codes"] = sorted({(e.get("extensions") or {}).get("code", "?") for e in errors})
            root = next(iter(data.values()), None) if isinstance(data, dict) and data else None
            record["ok"] = record["status"] == 200 and not errors
            record["failed"] = record["status"] != 200 or root is None
            if root is not None and op == "profile" and role in ("admin", "agent", "partner"):
                email = root.get("email")
                record["revealed"] = bool(email) and "*" not in email
            if not errors and root is not None:
                if op == "note":
                    record["note"] = variables["body"]
                elif op == "grant":
                    record["purpose"] = variables["purpose"]
                    with self.lock:
                        self.granted.append((variables["id"], variables["purpose"]))
                elif op == "revoke":
                    record["purpose"] = variables["purpose"]
            with self.lock:
                self.results.append(record)

    def writer(self):
        """Adds a CRM customer every 100 ms (and `burst` at once when asked), so identity
        resolution has work all along."""
        while not self.stop.is_set():
            with self.lock:
                n, self.burst = 1 + self.burst, 0
                ids = list(range(self.crm_next, self.crm_next + n))
                self.crm_next += n
            try:
                self.topo.source_sql(
                    "insert into customers select i, 'Chaos', 'Person' || i, 'chaos.' || i || '@example.org', "
                    f"null, null, null, null, null, null, 'DE', now(), now() from generate_series({ids[0]}, {ids[-1]}) i")
                with self.lock:
                    self.added.extend(ids)
                    if n > 1:
                        self.burst_ids = ids
            except CommandFailed as e:
                log(f"the CRM writer failed: {e}")
            time.sleep(0.1)

    def window(self, start, end):
        with self.lock:
            return [r for r in self.results if start <= r["t"] < end]


ALERTS = ("subscription($after: String) { serviceAlerts(kinds: [LOW_SATISFACTION], after: $after) "
          "{ cursor node { number } } }")


class AlertWatch:
    """Service alerts through the faults: a writer commits a ticket with a poor score to
    the helpdesk every 250 ms (one `LOW_SATISFACTION` alert each), and a subscriber
    follows them over Server-Sent Events through HAProxy, resuming with `after` (its last
    cursor) whenever its stream breaks. At the end every ticket must be in the log once,
    and every alert of the log must have reached the subscriber exactly once. Its first
    stream is on replica 1, which the replica fault kills."""

    def __init__(self, topo, token):
        self.topo, self.token = topo, token
        self.stop = threading.Event()  # the subscriber's
        self.stop_writing = threading.Event()
        self.lock = threading.Lock()
        self.requesters = [int(r[0]) for r in topo.hub_sql(
            "select source_key from identity_links where source = 'helpdesk' order by source_key")]
        self.next_ticket = 9_000_000
        self.inserted = []  # ticket ids committed
        self.received = {}  # alert number -> times received
        self.cursor = None
        self.reconnects = 0
        self.opened = threading.Event()

    def start(self):
        self.threads = [threading.Thread(target=self.writer, daemon=True),
                        threading.Thread(target=self.subscriber, daemon=True)]
        for t in self.threads:
            t.start()

    def writer(self):
        rng = random.Random(7)
        # The subscription's start is fixed when its stream first runs: begin after it.
        self.opened.wait(30)
        time.sleep(2)
        while not self.stop_writing.is_set():
            ticket = self.next_ticket
            self.next_ticket += 1
            try:
                self.topo.source_sql(
                    "insert into tickets (id, requester_id, channel, category, priority, status, subject, opened_at, "
                    f"closed_at, csat, updated_at) values ({ticket}, {rng.choice(self.requesters)}, 'email', 'inquiry', "
                    "'normal', 'solved', 'chaos alert', now(), null, 1, now())", schema="helpdesk")
                with self.lock:
                    self.inserted.append(ticket)
            except CommandFailed as e:
                log(f"the helpdesk writer failed: {e}")
            time.sleep(0.25)

    def subscriber(self):
        while not self.stop.is_set():
            try:
                self.follow()
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if not self.stop.is_set():
                self.reconnects += 1
                time.sleep(0.3)

    def follow(self):
        # First straight to replica 1, which the replica fault kills (so the stream must
        # resume elsewhere); then through HAProxy.
        port = self.topo.replica_ports()[1] if self.reconnects == 0 else self.topo.http_port
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        body = json.dumps({"query": ALERTS, "variables": {"after": self.cursor}})
        c.request("POST", "/graphql", body=body, headers={
            "Content-Type": "application/json", "Accept": "text/event-stream",
            "Authorization": f"Bearer {self.token}"})
        r = c.getresponse()
        if r.status != 200:
            r.read()
            return
        self.opened.set()
        event, data = None, []
        while not self.stop.is_set():
            line = r.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and event:
                if event == "complete":
                    return
                payload = json.loads("".join(data))
                edge = (payload.get("data") or {}).get("serviceAlerts")
                if edge:
                    with self.lock:
                        number = edge["node"]["number"]
                        self.received[number] = self.received.get(number, 0) + 1
                        self.cursor = edge["cursor"]
                event, data = None, []

    def finish(self, within=60):
        """Stops writing; waits (at most `within`) until the log has every ticket's alert and
        the subscriber every alert of the log; then the invariant."""
        self.stop_writing.set()
        self.threads[0].join(30)
        deadline = time.time() + within
        logged = {}
        while time.time() < deadline:
            logged = {int(r[1]): int(r[0]) for r in self.topo.hub_sql(
                "select id, source_key from alerts where kind = 'LOW_SATISFACTION' and source = 'helpdesk'")}
            with self.lock:
                done = all(t in logged for t in self.inserted) and all(n in self.received for n in logged.values())
            if done:
                break
            time.sleep(0.5)
        self.stop.set()
        with self.lock:
            missing_alerts = [t for t in self.inserted if t not in logged]
            undelivered = [n for n in logged.values() if n not in self.received]
            twice = [n for n, times in self.received.items() if times > 1]
            unknown = [n for n in self.received if n not in set(logged.values())]
            return {"ok": not (missing_alerts or undelivered or twice or unknown), "tickets": len(self.inserted),
                    "alerts": len(logged), "received": sum(self.received.values()),
                    "tickets_without_alert": len(missing_alerts), "undelivered": len(undelivered),
                    "received_twice": len(twice), "received_unknown": len(unknown),
                    "stream_reconnects": self.reconnects, "undelivered_examples": sorted(undelivered)[:10]}


def summary(records, fault_at, healed_at):
    n = len(records)
    lat = sorted(r["latency"] for r in records)
    failed = [r for r in records if r["failed"]]
    with_errors = [r for r in records if not r["ok"]]
    last_failure = max((r["t"] + r["latency"] for r in failed), default=None)
    last_error = max((r["t"] + r["latency"] for r in with_errors), default=None)
    # Seconds with failures (100 ms slots): a count of failed requests says little when a
    # load balancer with no replica left answers 503 in a millisecond.
    failing_slots = {int((r["t"] + r["latency"]) * 10) for r in failed}
    codes, by_op = {}, {}
    for r in with_errors:
        for c in r["codes"] or [r.get("transport") or f"HTTP {r['status']}"]:
            codes[c] = codes.get(c, 0) + 1
            key = f"{r['role']} {r['op']}: {c}"
            by_op[key] = by_op.get(key, 0) + 1
    return {
        "requests": n,
        "failed": len(failed),
        "failed_share": round(len(failed) / n, 4) if n else None,
        "failing_seconds": round(len(failing_slots) / 10, 1),
        "with_errors_share": round(len(with_errors) / n, 4) if n else None,
        "p50_ms": round(lat[n // 2] * 1000, 1) if n else None,
        "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 1) if n else None,
        "last_failure_after_fault_s": round(last_failure - fault_at, 2) if last_failure else 0,
        "last_failure_after_heal_s": round(max(0.0, last_failure - healed_at), 2) if last_failure else 0,
        "last_error_after_heal_s": round(max(0.0, last_error - healed_at), 2) if last_error else 0,
        "error_codes": codes,
        "errors_by_operation": by_op,
    }


# ---------------------------------------------------------------- faults


def lease_holder(topo):
    rows = topo.hub_sql("select holder from job_leases where name = 'resolve' and expires_at > "
                        + ("utc_timestamp()" if topo.args.hub == "galera" else "now()"))
    return rows[0][0] if rows else None


def fault_replica(topo, load, hold):
    log("fault: SIGKILL replica 1")
    topo.kill_replica(1)
    time.sleep(hold)
    topo.start_replica(1)
    return {}


def fault_galera_node(topo, load, hold):
    log("fault: SIGKILL Galera node 1 (HAProxy's writer)")
    topo.galera("kill", str(topo.galera_dir), "1")
    time.sleep(hold)
    started = time.time()
    topo.galera("start", str(topo.galera_dir), "1")
    rejoin = time.time() - started
    log(f"node 1 rejoined in {rejoin:.1f} s")
    return {"rejoin_s": round(rejoin, 1)}


def linked_count(topo, keys):
    rows = topo.hub_sql("select count(*) from identity_links where source = 'crm' and source_key in ("
                        + ", ".join(f"'{k}'" for k in keys) + ")")
    return int(rows[0][0])


def fault_lease_holder(topo, load, hold):
    """A burst of CRM records (resolved in batches of 100); once some of it is linked and
    not all, the replica holding the lease is killed."""
    ids = {topo.replica_id(i): i for i in range(3)}
    ids.pop(None, None)
    with load.lock:
        load.burst, load.burst_ids = 3000, []
    deadline, victim, linked = time.time() + 60, None, 0
    while time.time() < deadline and victim is None:
        with load.lock:
            burst = [str(i) for i in load.burst_ids]
        if burst:
            linked = linked_count(topo, burst)
            if linked == len(burst):
                raise SystemExit("the burst was resolved before its lease holder could be caught: a larger burst?")
            holder = lease_holder(topo) if linked else None
            victim = ids.get(holder)
        time.sleep(0.02)
    if victim is None:
        raise SystemExit("no replica was caught holding identity resolution's lease mid-burst within 60 s")
    log(f"fault: SIGKILL replica {victim}, holding identity resolution's lease ({linked} of {len(burst)} linked)")
    topo.kill_replica(victim)
    killed = time.time()
    # Recovered when every record of the burst is linked (another replica took over).
    linked_at = None
    while time.time() < killed + 120:
        if linked_count(topo, burst) == len(burst):
            linked_at = time.time()
            break
        time.sleep(0.2)
    time.sleep(max(0.0, hold - (time.time() - killed)))
    topo.start_replica(victim)
    after = round(linked_at - killed, 1) if linked_at else None
    return {"victim": victim, "linked_when_killed": linked, "burst": len(burst), "burst_linked_after_kill_s": after}


def proxy_fault(mode):
    def inject(topo, load, hold):
        log(f"fault: the helpdesk's proxy: {mode}")
        topo.proxy.set(mode)
        time.sleep(hold)
        topo.proxy.set("pass")
        return {}
    return inject


FAULT_FNS = {"replica": fault_replica, "galera-node": fault_galera_node, "lease-holder": fault_lease_holder,
             "blackhole": proxy_fault("blackhole"), "slow": proxy_fault("slow"), "reset": proxy_fault("reset")}


# ---------------------------------------------------------------- invariants


def catch_up(topo, within=60):
    """Once the writer has stopped: seconds until identity resolution has linked every
    CRM record (None: not within `within`)."""
    started = time.time()
    while time.time() < started + within:
        total = int(topo.source_sql("select count(*) from customers")[0][0])
        linked = int(topo.hub_sql("select count(*) from identity_links where source = 'crm'")[0][0])
        if linked >= total:
            return round(time.time() - started, 1)
        time.sleep(0.2)
    return None


def check_revocation(topo):
    """A partner token revoked through HAProxy: how long until every replica refuses it."""
    token = topo.c360("token", "--role", "partner", "--partner", "acme-insurance", "--subject", "chaos-revoked",
                      "--ttl", "1h").strip()
    jti = json.loads(_b64(token.split(".")[1]))["jti"]
    for port, _, _ in topo.replicas:
        assert post(port, token, "{ __typename }")[0] == 200
    admin = topo.c360("token", "--role", "admin", "--subject", "chaos-admin").strip()
    status, body = post(topo.http_port, admin,
                        "mutation($v: String!) { revokeTokens(kind: TOKEN_ID, value: $v) { kind } }", {"v": jti})
    if status != 200 or body.get("errors") or not body.get("data"):
        raise SystemExit(f"revokeTokens through HAProxy failed: HTTP {status} {body}")
    revoked = time.time()
    refused = {}
    while time.time() < revoked + 5 and len(refused) < 3:
        for i, (port, _, _) in enumerate(topo.replicas):
            if i not in refused and post(port, token, "{ __typename }")[0] == 401:
                refused[i] = round(time.time() - revoked, 3)
        time.sleep(0.01)
    slowest = max(refused.values()) if len(refused) == 3 else None
    return {"ok": slowest is not None and slowest <= 1.5, "refused_after_s": refused}


def _b64(part):
    import base64
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def post(port, token, query, variables=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/graphql", body=json.dumps({"query": query, "variables": variables or {}}),
              headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, {}


def chunks(items, n=500):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def check_invariants(topo, load):
    out = {}
    revealed = [r["request_id"] for r in load.results if r.get("revealed") and r.get("request_id")]
    audited = set()
    for part in chunks(sorted(set(revealed))):
        rows = topo.hub_sql("select distinct request_id from audit_log where request_id in ("
                            + ", ".join(f"'{x}'" for x in part) + ")")
        audited.update(r[0] for r in rows)
    lost = [x for x in set(revealed) if x not in audited]
    out["audit"] = {"ok": not lost, "revealing_responses": len(set(revealed)), "lost": len(lost),
                    "examples": lost[:5]}

    notes = [r["note"] for r in load.results if r.get("note")]
    stored = {row[0] for row in topo.source_sql("select body from notes where body like 'chaos note %'")}
    grants = [r["purpose"] for r in load.results if r.get("op") == "grant" and r.get("purpose")]
    revokes = [r["purpose"] for r in load.results if r.get("op") == "revoke" and r.get("purpose")]
    ledger = {row[0]: row[1] for row in topo.source_sql(
        "select purpose, coalesce(revoked_at::text, '') from consents where purpose like 'chaos-%'")}
    missing_notes = [n for n in notes if n not in stored]
    missing_grants = [p for p in grants if p not in ledger]
    unrevoked = [p for p in revokes if not ledger.get(p)]
    out["writes"] = {"ok": not (missing_notes or missing_grants or unrevoked), "notes": len(notes),
                     "notes_missing": len(missing_notes), "grants": len(grants), "grants_missing": len(missing_grants),
                     "revocations": len(revokes), "revocations_missing": len(unrevoked)}

    crm = {row[0] for row in topo.source_sql("select id::text from customers")}
    linked = {}
    for row in topo.hub_sql("select source_key, customer_id from identity_links where source = 'crm'"):
        linked.setdefault(row[0], []).append(row[1])
    unlinked = [k for k in crm if k not in linked]
    doubled = [k for k, v in linked.items() if len(v) > 1]
    orphans = int(topo.hub_sql("select count(*) from customers c where not exists "
                               "(select 1 from identity_links l where l.customer_id = c.id)")[0][0])
    remerged = int(topo.hub_sql("select count(*) from customer_aliases a join customer_aliases b "
                                "on b.old_id = a.customer_id")[0][0])
    takes = topo.hub_sql("select token, writes from job_leases where name = 'resolve'")
    holders = set()
    for i in range(3):
        text = topo.replicas[i][2].read_text(errors="replace")
        if "resolved new records" in text:
            holders.add(i)
    lost_lease = sum(p[2].read_text(errors="replace").count("lost the lease") for p in topo.replicas)
    added = [str(i) for i in load.added]
    out["jobs"] = {"ok": not (unlinked or doubled or orphans or remerged), "crm_records": len(crm),
                   "unlinked": len(unlinked), "linked_twice": len(doubled), "customers_without_links": orphans,
                   "merged_again": remerged, "resolve_lease_takes": int(takes[0][0]) if takes else 0,
                   "fenced_batches": int(takes[0][1]) if takes else 0,
                   "replicas_that_resolved": sorted(holders), "writes_refused_for_a_lost_lease": lost_lease}
    out["records"] = {"ok": all(k in linked for k in added), "added": len(added),
                      "unlinked": sum(1 for k in added if k not in linked)}
    return out


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", type=Path)
    ap.add_argument("--hub", choices=["galera", "postgres"], default="galera")
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--phase-seconds", type=float, default=20)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--ci", action="store_true", help="the CI slice: 300 customers, 3 s phases")
    ap.add_argument("--seed", type=int, default=360)
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "chaos" / "out" / "chaos-report.json")
    ap.add_argument("--keep", action="store_true", help="keep the logs and data directories")
    args = ap.parse_args()
    if args.ci:
        args.customers, args.phase_seconds, args.clients = 300, 3, 6
    faults = [f for f in args.faults.split(",") if f]
    if args.hub != "galera" and faults == FAULTS:
        faults.remove("galera-node")
    wrong = [f for f in faults if f not in FAULT_FNS or (f == "galera-node" and args.hub != "galera")]
    if wrong:
        raise SystemExit(f"unknown faults (galera-node needs --hub galera): {wrong}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    topo = Topology(args)
    report = {"hub": args.hub, "customers": args.customers, "clients": args.clients,
              "phase_seconds": args.phase_seconds, "faults": {}}
    ok = False
    try:
        topo.up()
        tokens = {r: topo.c360("token", "--role", r, "--subject", f"chaos-{r}").strip()
                  for r in ["admin", "agent", "frontend", "analyst"]}
        tokens["partner"] = topo.c360("token", "--role", "partner", "--partner", "acme-insurance",
                                      "--subject", "chaos-partner").strip()
        _, d = post(topo.http_port, tokens["admin"], "{ customers(first: 100) { edges { node { id } } } }")
        ids = [e["node"]["id"] for e in d["data"]["customers"]["edges"]]
        _, d = post(topo.http_port, tokens["partner"], "{ customers(first: 100) { edges { node { id } } } }")
        consented = [e["node"]["id"] for e in d["data"]["customers"]["edges"]]
        if not ids or not consented:
            raise SystemExit("no customers, or none consenting to acme-insurance: the seed?")
        load = Load(topo, tokens, ids, consented, args.clients, args.seed)
        load.start()
        # Subscribed while the stream is opened again: the watch's subscriber also starts
        # from the log's end, so nothing before it counts.
        watch = AlertWatch(topo, tokens["admin"])
        watch.start()
        phase = args.phase_seconds
        time.sleep(phase)
        report["baseline"] = summary(load.window(time.time() - phase, time.time()), time.time(), time.time())
        log(f"baseline: {report['baseline']}")
        for name in faults:
            fault_at = time.time()
            facts = FAULT_FNS[name](topo, load, phase)
            healed_at = time.time()
            topo.wait_balanced()
            time.sleep(phase)
            facts.update(summary(load.window(fault_at, time.time()), fault_at, healed_at))
            report["faults"][name] = facts
            log(f"{name}: {facts}")
        load.finish()
        report["alerts"] = watch.finish()
        report["resolution_caught_up_s"] = catch_up(topo)
        report["revocation"] = check_revocation(topo)
        topo.down()
        report["invariants"] = check_invariants(topo, load)
        report["invariants"]["revocation"] = report.pop("revocation")
        report["invariants"]["alerts"] = report.pop("alerts")
        ok = all(v["ok"] for v in report["invariants"].values())
        for name, v in report["invariants"].items():
            log(f"invariant {name}: {'holds' if v['ok'] else 'BROKEN'} {v}")
    finally:
        topo.down()
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
        topo.clean(args.keep or not ok)
    log(f"report: {args.report}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
