#!/usr/bin/env python3
"""Grammar- and schema-aware fuzzing of the hub's whole request path.

    python3 bench/fuzz/fuzz.py target/debug/c360                      # the CI slice: 3,000 documents, seed 1
    python3 bench/fuzz/fuzz.py target/release/c360 --documents 1000000 --workers 4   # the long run
    python3 bench/fuzz/fuzz.py BINARY --documents N --seed S [--workers W] [--seconds-max T]
                               [--customers C] [--report FILE] [--continue-after-crash] [--keep]

Only the standard library; no cargo. What it does:

1. Starts its own hub (fresh temporary data dir, `--customers` seeded, identity resolution
   every second, introspection for all five roles, partners' rate limits off, batches of up
   to 4 on) and mints one token per role (`fuzz-<role>` subjects; partners alternate between
   `acme-insurance` and `northwind-travel`).
2. Plants canaries in the sources while the hub runs (sqlite3): a CRM customer with unique
   names, email, phone, street, postal code, city and birth date, a CRM note, a shop account
   with the same email and an order, a helpdesk requester with a ticket. It waits until the
   resolver has linked them (admin `customerByEmail`). Which canary a role may see raw is
   derived from policy.toml and the token's scopes (hide: never; mask: never the raw value,
   the masked form's kept parts allowed; partners: nothing, the canary has no consent) and
   checked against real answers before fuzzing starts.
3. Introspects the schema as every role, and checks it against schema.graphql's
   `@privacy`/`@lookup` classes and policy.toml (a field the policy hides must be absent).
4. Sends `--documents` requests from `--workers` processes (keep-alive connections), each
   with its own generator seeded from `--seed` (the same documents in the same order per
   worker for a given seed and worker count; ids come from the seeded demo data):
   * about 80%: documents generated from the role's live schema: random selections, valid
     and invalid argument values (ids of real customers, orders, tickets and campaigns,
     malformed ids, edge-case page sizes, canary values as lookup keys), variables (right,
     wrong and missing), aliases, named and inline fragments (also on wrong or hidden
     types), @skip/@include and unknown directives, several operations, mutations (on
     non-protected customers), introspection, limit probes, and fields the role may not see
     (taken from the admin schema: must fail validation, never answer data);
   * about 20%: byte-level and protocol mutation of such requests: flipped, inserted and
     deleted bytes, truncation, wrong JSON types, huge strings, deep nesting, invalid UTF-8,
     wrong content types and Accept headers, GET with query strings, other methods, batch
     arrays, empty bodies, APQ hashes, missing or forged tokens (signed with the dev key:
     expired, wrong role, partner without partner_id, alg none, ...).
   * about 2% of the rest: bombs, small documents built to make the hub work before its
     limits: fragments that each spread the next one twice (up to 2^60), introspection
     lists nested up to 20 deep or aliased 100 wide, 1,500 operations spreading one
     fan-out fragment. The slowest answer is reported; one over 10 s is a finding.
5. Checks every response: status < 500, a JSON body, `extensions.code` on every error, no
   canary the token may not see (anywhere in the body, unless the request itself carried it;
   in `data` always), no internal details (sqlx, SQLite, panics, Rust debug output, parser
   traces), hidden fields refused, invalid tokens refused.
6. Afterwards: websockets (raw frames) put fragmented messages together, close on a
   message over the body limit (1009, fragmented, before any token) and on frames that
   break the protocol (1002); the hub is alive, /readyz is 200, /metrics answers, a fixed query per role
   answers as before the run, and the hub log has no panic or stack overflow. If the hub
   died, the last requests of every worker are replayed one by one against a restarted hub
   to find the one that kills it. Findings are minimised (delta debugging) and written to
   the report with a curl command.

Exit code 0: no findings; 1: findings; 3: stopped by --seconds-max before all documents.
Output: a summary on stdout, the report (JSON) at --report (default
bench/fuzz/out/fuzz-report.json), reproducer bodies next to it in `<report>.d/`.

The long run (the issue's 1,000,000 documents):

    python3 bench/fuzz/fuzz.py target/release/c360 --documents 1000000 --seed 1 --continue-after-crash

On the 2-core dev machine (2026-12-01) the release build took 200,000 documents in 365 s
(548/s with 3 workers, including ~100 restarts after crashes), so 1M take about 30 minutes;
the CI slice (3,000 documents, debug build) runs in about 30 s. Without
--continue-after-crash a run stops at the first crash (what CI wants); with it, the hub is
restarted on the same data and the run goes on (at most --max-crashes times), and every
crash still counts as a finding. `--seconds-max` bounds a run (default 4 h).
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import queue
import random
import re
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import tomllib
import traceback
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import Hub  # noqa: E402  (bench/harness.py)

ROOT = Path(__file__).resolve().parents[2]
ROLES = ["admin", "agent", "frontend", "analyst", "partner"]
PARTNERS = ["acme-insurance", "northwind-travel"]

# ---------------------------------------------------------------------------- canaries

CANARY = {
    "crm_id": 990000001, "account_id": 99000001, "order_id": 99000000001, "requester_id": 99000001,
    "ticket_id": 99000001,
    "first": "Zyqcanaryfirst", "last": "Vexcanarylast",
    "email": "zyq.canarymail@canarydomain-xq.example", "phone": "+49 151 24681357",
    "birth": "1912-02-29", "street": "Canarystreet 77", "postal": "ZQ-7788", "city": "Canaryville",
    "note": "Canarynote qq7 secret", "order": "SO-CANARY-424242", "ticket": "Canaryticket ww3 subject",
}
# (substring searched for, lowercase; privacy class; may it appear where the class is masked?)
PROBES = [
    ("zyqcanaryfirst", "identity", False),
    ("vexcanarylast", "identity", False),
    ("zyq.canarymail", "contact", False),     # the email's local part: masking keeps one letter
    ("canarydomain-xq", "contact", True),     # the domain survives the email mask
    ("24681357", "contact", False),           # the phone (any format); masked keeps 4 digits
    ("canarystreet", "contact", False),
    ("zq-7788", "contact", False),
    ("canaryville", "contact", True),         # a masked address keeps city and country
    ("1912-02-29", "sensitive", False),       # masked: birthYear only
    ("canarynote", "internal", False),
    ("so-canary-424242", "financial", False),
    ("canaryticket", "service", False),
]
CANARY_EMAILS = [CANARY["email"], CANARY["email"].upper(), " Zyq.CanaryMail@CanaryDomain-XQ.example ",
                 "zyq.canarymail+tag@canarydomain-xq.example"]
CANARY_PHONES = [CANARY["phone"], "+4915124681357", "015124681357", "0049 151 24681357", "0151-246 813 57"]
CANARY_KEYS = ["990000001", "0990000001", "99000001", "00099000001"]

INTERNAL_PATTERNS = [re.compile(p) for p in [
    r"(?i)sqlx", r"(?i)sqlite", r"(?i)panicked", r"thread '", r"[A-Z][A-Za-z]{0,40}Error\(", r"\bSome\(", r"\bOk\(", r"\bErr\(",
    r" --> \d+:\d+", r"\.rs:\d+", r"(?i)stack backtrace", r"unwrap\(\)", r"(?i)no such (table|column)",
    r"(?i)database is locked", r"(?i)syntax error at or near", r"(?i)overflowed its stack",
]]
# Sealed ids and cursors are random-looking base64url: one in a few thousand responses of a
# hundred cursors holds "sqlx" or "Ok(" by chance. Internal details are scanned with them cut.
OPAQUE = re.compile(r"[A-Za-z0-9_-]{24,}")


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- policy oracle

class Policy:
    """What a token may see, from policy.toml and schema.graphql (the repository's copies)."""

    def __init__(self):
        self.p = tomllib.loads((ROOT / "policy.toml").read_text())
        self.classes = {}   # (type, field) -> class
        current = None
        for line in (ROOT / "schema.graphql").read_text().splitlines():
            m = re.match(r"^(?:type|input|interface)\s+(\w+)", line)
            if m:
                current = m.group(1)
            elif line.startswith("}"):
                current = None
            elif current:
                m = re.match(r"^\s+(\w+)\s*[:(].*@(?:privacy|lookup)\(class:\s*(\w+)", line)
                if m:
                    self.classes[(current, m.group(1))] = m.group(2).lower()

    def decision(self, role, scopes, cls):
        req = self.p.get("requires", {}).get(cls)
        if req and req not in scopes:
            return "hide"
        rule = self.p["roles"].get(role, {}).get(cls, "hide")
        if isinstance(rule, dict):
            need = rule["with"] if isinstance(rule["with"], list) else [rule["with"]]
            return rule["then"] if all(s in scopes for s in need) else rule["otherwise"]
        return rule

    def forbidden(self, role, scopes):
        """The probes a token of this role and these scopes must never receive."""
        if role not in ROLES:
            return [p for p, _, _ in PROBES]
        if self.p.get("rows", {}).get(role) == "consented":   # the canary has no consent
            return [p for p, _, _ in PROBES]
        out = []
        for probe, cls, masked_ok in PROBES:
            d = self.decision(role, scopes, cls)
            if d == "hide" or (d == "mask" and not masked_ok):
                out.append(probe)
        return out


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def plant_canaries(data_dir):
    now = now_rfc3339()
    c = CANARY
    with sqlite3.connect(data_dir / "crm.db", timeout=60) as db:
        db.execute("insert into customers (id, first_name, last_name, email, phone, birth_date, gender, street, "
                   "postal_code, city, country, created_at, updated_at) values (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (c["crm_id"], c["first"], c["last"], c["email"], c["phone"], c["birth"], "diverse", c["street"],
                    c["postal"], c["city"], "DE", now, now))
        db.execute("insert into notes (customer_id, author, body, created_at) values (?,?,?,?)",
                   (c["crm_id"], "fuzz", c["note"], now))
    with sqlite3.connect(data_dir / "shop.db", timeout=60) as db:
        db.execute("insert into accounts (id, email, phone, name, country, is_guest, created_at, updated_at) "
                   "values (?,?,?,?,?,?,?,?)",
                   (c["account_id"], c["email"].replace("zyq.", "Zyq."), "0151 24681357",
                    f"{c['first']} {c['last']}", "DE", 0, now, now))
        sku = db.execute("select sku from products order by sku limit 1").fetchone()[0]
        db.execute("insert into orders (id, account_id, number, ordered_at, status, channel, currency, total_cents, "
                   "updated_at) values (?,?,?,?,?,?,?,?,?)",
                   (c["order_id"], c["account_id"], c["order"], now, "paid", "web", "EUR", 4242, now))
        db.execute("insert into order_lines (order_id, line_no, sku, quantity, unit_price_cents) values (?,?,?,?,?)",
                   (c["order_id"], 1, sku, 1, 4242))
    with sqlite3.connect(data_dir / "helpdesk.db", timeout=60) as db:
        db.execute("insert into requesters (id, email, phone, name, created_at, updated_at) values (?,?,?,?,?,?)",
                   (c["requester_id"], c["email"], None, f"{c['first']} {c['last']}", now, now))
        db.execute("insert into tickets (id, requester_id, channel, category, priority, status, subject, opened_at, "
                   "closed_at, csat, updated_at) values (?,?,?,?,?,?,?,?,?,?,?)",
                   (c["ticket_id"], c["requester_id"], "email", "inquiry", "low", "open", c["ticket"], now, None,
                    None, now))


# ---------------------------------------------------------------------------- schema

INTROSPECTION = """query IntrospectionQuery { __schema { queryType { name } mutationType { name }
  types { kind name
    fields(includeDeprecated: true) { name args { name defaultValue type { ...T } } type { ...T } }
    inputFields { name defaultValue type { ...T } }
    enumValues(includeDeprecated: true) { name }
    possibleTypes { name } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"""


def conv_type(t):
    if t["kind"] == "NON_NULL":
        return ("!", conv_type(t["ofType"]))
    if t["kind"] == "LIST":
        return ("[]", conv_type(t["ofType"]))
    return t["name"]


def base_name(t):
    while isinstance(t, tuple):
        t = t[1]
    return t


def type_str(t):
    if isinstance(t, tuple):
        return type_str(t[1]) + "!" if t[0] == "!" else "[" + type_str(t[1]) + "]"
    return t


def load_schema(data):
    s = data["__schema"]
    types = {}
    for t in s["types"]:
        types[t["name"]] = {
            "kind": t["kind"],
            "fields": {f["name"]: {"args": {a["name"]: (conv_type(a["type"]), a["defaultValue"]) for a in f["args"]},
                                   "type": conv_type(f["type"])} for f in (t["fields"] or [])},
            "input": {f["name"]: (conv_type(f["type"]), f["defaultValue"]) for f in (t["inputFields"] or [])},
            "enum": [e["name"] for e in (t["enumValues"] or [])],
            "possible": [p["name"] for p in (t["possibleTypes"] or [])],
        }
    return {"query": s["queryType"]["name"], "mutation": (s.get("mutationType") or {}).get("name"), "types": types}


# ---------------------------------------------------------------------------- values

class Enum(str):
    pass


class Var(str):
    pass


class Raw(str):
    pass


def render(v):
    if v is None:
        return "null"
    if isinstance(v, (Enum, Raw)):
        return str(v)
    if isinstance(v, Var):
        return "$" + v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or v == v and abs(v) != float("inf") else "1e999"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(render(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {render(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


def to_json(v):
    if isinstance(v, Raw):
        s = str(v)
        try:
            return json.loads(s)
        except ValueError:
            return s
    if isinstance(v, (Enum, Var)):
        return str(v)
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    return v


TEXTS = ["", "a", "hello world", "Ünïcödé ß 中文 😀 עברית", "\u200b\u200d\u202e", "line\nbreak\ttab", "\x00\x01\x1f",
         "' OR '1'='1", "\"; drop table notes; --", "%s%n%x{0}{}", "\\", "${jndi:ldap://x}", "<script>x</script>",
         "a" * 300, "%", "_", "NULL", "null", "true", "0", "-1", "1e999", "\ud7ff\ue000", "ﬀ", "İ", "💥" * 50]


class Gen:
    """One worker's document generator: everything random comes from self.r."""

    def __init__(self, rng, ctx):
        self.r, self.c = rng, ctx

    # -- scalars -----------------------------------------------------------------------

    def text(self, maxlen=200):
        r = self.r
        k = r.random()
        if k < 0.4:
            return r.choice(TEXTS)
        alphabet = r.choice(["abcdefghijklmnopqrstuvwxyz", "AZaz09 -_.@+", "{}[]()$@!:=\"\\,|&#/",
                             "éßø中😀\u0301\u200b", "".join(chr(i) for i in range(1, 32)), "0123456789"])
        n = r.choice([1, 3, 8, 20, 60, maxlen])
        return "".join(r.choice(alphabet) for _ in range(n))

    def rand_b64(self, s):
        return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=" if self.r.random() < 0.7 else "")

    def bad_id(self):
        r = self.r
        c = self.c
        k = r.randrange(14)
        if k == 0:
            return ""
        if k == 1:
            return self.text(40)
        if k == 2:
            return self.rand_b64(r.choice(["Customer:", "Order:", "Ticket:", "Campaign:", "Note:", "Foo:1"]) +
                                 r.choice(["", "x", "-1", "0", "99999999999999999999", "../../", "%00", "é"]))
        if k == 3:
            return self.rand_b64(f"Customer:{r.getrandbits(128):032x}")
        if k == 4:
            return base64.b64encode(bytes(r.getrandbits(8) for _ in range(r.randrange(1, 40)))).decode()
        # Near-misses of real ids come from the customers mutations may touch (`id==` and
        # any changed character are refused: ids are sealed), and a mutation must never reach the
        # customers the baseline watches (the million-document run granted one a consent).
        if k == 5:
            i = r.choice(c["mutable_ids"] or ["x"])
            pos = r.randrange(len(i))
            return i[:pos] + r.choice("AZaz09-_=+/") + i[pos + 1:]
        if k == 6:
            return "A" * r.choice([100, 1000, 20000])
        if k == 7:
            return r.choice(c["mutable_ids"] or ["x"]) + "=="
        if k == 8:
            return r.choice(["Q3VzdG9tZXI6", "T3JkZXI6", "VGlja2V0Og", "=", "====", "Q3VzdG9tZXI6MQ"])
        if k == 9:
            return self.rand_b64("Order:" + str(r.choice([-1, 0, 2 ** 63, 2 ** 64, 10 ** 30])))
        if k == 10:
            return self.rand_b64("Customer:" + self.text(30))
        if k == 11:
            return self.rand_b64("Campaign:" + str(r.randrange(-5, 10 ** 6)))
        if k == 12:
            return r.choice(c["order_ids"] or ["x"])[::-1]
        return str(r.randrange(-10, 10 ** 6))

    def id_value(self, field, mut):
        r, c = self.r, self.c
        if mut:
            if field == "eraseCustomer":
                return r.choice(c["erasable_ids"]) if r.random() < 0.15 else self.bad_id()
            return r.choice(c["mutable_ids"]) if r.random() < 0.8 else self.bad_id()
        k = r.random()
        if k < 0.4:
            return r.choice(c["customer_ids"])
        if k < 0.5:
            return c["canary_id"]
        if k < 0.55:
            return r.choice(c["protected_ids"])
        if k < 0.7:
            return r.choice(c["order_ids"] + c["ticket_ids"] + c["campaign_ids"] + [c["canary_order_id"],
                                                                                     c["canary_ticket_id"]])
        return self.bad_id()

    def string_value(self, name, field, mut):
        r, c = self.r, self.c
        k = r.random()
        if name == "email":
            if k < 0.35:
                return r.choice(c["emails"])
            if k < 0.6 and not mut:
                return r.choice(CANARY_EMAILS)
            return r.choice(["nope", "@", "a@", "@b.c", "x" * 400 + "@y.z", "a@b", "ä@ö.de", self.text(40) + "@x.de",
                             "", " ", "a@b.c" * 100])
        if name == "phone":
            if k < 0.35:
                return r.choice(c["phones"])
            if k < 0.6 and not mut:
                return r.choice(CANARY_PHONES)
            return r.choice(["", "+", "0", "+999999999999999999", "abc", "+49 (0)151", "1" * 60, self.text(20)])
        if name == "after":
            if k < 0.5:
                return r.choice(c["cursors"])
            if k < 0.7:
                return r.choice(c["order_cursors"] or c["cursors"])
            return r.choice(["", "x", self.rand_b64("cursor:1"), self.rand_b64(self.text(20)), "Zm9v", "A" * 2000])
        if name == "key":
            if k < 0.5:
                return r.choice(c["source_keys"])[1]
            if k < 0.7 and not mut:
                return r.choice(CANARY_KEYS)
            return r.choice(["", "0", "-1", "00000", "99999999999999999999999", self.text(20), "1e3", " 1"])
        if name == "partner":
            return r.choice(PARTNERS * 3 + ["fz-p-%x" % r.getrandbits(24), "", "a" * 65, "bad partner!", "ÄCME",
                                            "acme-insurance ", "ACME-INSURANCE"])
        if name == "purpose":
            return r.choice(["offers", "travel", "fz-%x" % r.getrandbits(16), "", "x" * 70, "bad purpose!"])
        if name == "value":          # revokeTokens: never one of our subjects, token ids or partners
            return r.choice(["rv-%x" % r.getrandbits(32), "", "rv-" + "x" * 300])
        if name == "subject":
            return r.choice(["fuzz-admin", "fuzz-agent", "developer", self.text(20)])
        if name == "name":           # __type(name:)
            return r.choice(c["all_type_names"] + ["Foo", "", "__Schema", "__Type", "Query", "Mutation"])
        return self.text()

    def int_value(self, name):
        r = self.r
        if name in ("first", "last"):
            return r.choice([1, 1, 2, 3, 5, 10, 10, 20, 0, 50, 100] if r.random() < 0.9 else
                            [-1, 101, 1000, 2 ** 31 - 1, -2 ** 31, Raw("2147483648"), Raw("99999999999"), Raw("-0")])
        if name == "days":
            return r.choice([1, 30, 365, 3650, 0, 3651, -5, 2 ** 31 - 1])
        if name == "months":
            return r.choice([1, 12, 120, 0, 121, -1, 2 ** 31 - 1])
        if name == "points":
            return r.choice([1, 2, 10, 100, 0, -1, 1000, 10 ** 6, 2 ** 31 - 1])
        return r.choice([0, 1, -1, 7, 100, 2 ** 31 - 1, -2 ** 31, Raw("2147483648")])

    def scalar_value(self, tn, name, field, mut):
        r = self.r
        if tn == "ID":
            return self.id_value(field, mut)
        if tn == "String":
            return self.string_value(name, field, mut)
        if tn == "Int":
            return self.int_value(name)
        if tn == "Float":
            return r.choice([0.0, 0.01, 0.5, 1.0, 1.5, -0.1, 1e308, -1e308, 5e-324, 100.0, 12, Raw("1e999"),
                             Raw("-1e999"), Raw("0.0000000000000000000000001")])
        if tn == "Boolean":
            return r.random() < 0.5
        if tn == "DateTime":
            return r.choice(["2026-01-01T00:00:00Z", "2025-06-30T12:00:00+02:00", now_rfc3339(), "2026-13-01T00:00:00Z",
                             "yesterday", "", "2026-01-01", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
                             "2026-01-01T00:00:00+25:00", "1970-01-01T00:00:00Z", "+275760-09-13T00:00:00Z"])
        if tn == "NaiveDate":
            return r.choice(["2026-11-01", "2025-01-01", "2026-06-15", "2026-02-30", "2026-11-01T00:00:00Z", "",
                             "0001-01-01", "9999-12-31", "+275760-09-13", "1800-01-01", "2000-01-01", "2026-1-1"])
        if tn == "JSON":
            return r.choice([{}, [], 1, "x", None])
        return self.text(20)

    def wrong_value(self):
        r = self.r
        return r.choice([123, -1, 1.5, True, None, "str", Enum("FOO"), [1, 2], {"a": 1}, Raw("99999999999999999999"),
                         [[]], {"first": 1}, "", Enum("null_"), Raw("$undeclared")])

    def value(self, t, name, field, mut, schema, depth=0):
        r = self.r
        if isinstance(t, tuple) and t[0] == "!":
            if r.random() < 0.015:
                return None
            return self.value(t[1], name, field, mut, schema, depth)
        if r.random() < 0.04:
            return self.wrong_value()
        if isinstance(t, tuple):       # list
            if r.random() < 0.3 or depth > 3:
                return self.value(t[1], name, field, mut, schema, depth + 1)
            return [self.value(t[1], name, field, mut, schema, depth + 1) for _ in range(r.choice([0, 1, 1, 2, 3]))]
        T = schema["types"].get(t)
        kind = T["kind"] if T else "SCALAR"
        if kind == "ENUM":
            if r.random() < 0.93 and T["enum"]:
                return Enum(r.choice(T["enum"]))
            return r.choice([Enum("FOO"), Enum(r.choice(T["enum"] or ["X"]).lower()), r.choice(T["enum"] or ["X"])])
        if kind == "INPUT_OBJECT":
            if depth > 3:
                return {}
            out = {}
            for k, (ft, _) in T["input"].items():
                if r.random() < 0.4:
                    out[k] = self.value(ft, k, field, mut, schema, depth + 1)
            if r.random() < 0.05:
                out[r.choice(["foo", "first"])] = 1
            admin_t = self.c["schemas"]["admin"]["types"].get(t)
            if admin_t and r.random() < 0.15:
                extra = [k for k in admin_t["input"] if k not in T["input"]]
                if extra:
                    k = r.choice(extra)
                    out[k] = self.value(admin_t["input"][k][0], k, field, mut, self.c["schemas"]["admin"], depth + 1)
                    self.doc["hidden"] = True
            return out
        return self.scalar_value(t, name, field, mut)

    # -- documents -----------------------------------------------------------------------

    def new_doc(self, role):
        self.role = role
        self.schema = self.c["schemas"][role]
        self.doc = {"vars": {}, "var_defs": [], "frags": [], "n": 0, "hidden": False,
                    "max_depth": self.r.choice([2, 3, 3, 4, 4, 5, 5, 6, 7, 9, 12, 17])}

    def fresh(self, prefix):
        self.doc["n"] += 1
        return f"{prefix}{self.doc['n']}"

    def arg(self, name, t, field, mut):
        r = self.r
        hidden_before = self.doc["hidden"]
        v = self.value(t, name, field, mut, self.schema)
        if r.random() < 0.3 and not isinstance(v, Raw):
            var = self.fresh("v")
            k = r.random()
            decl = type_str(t)
            if k < 0.06:
                decl = r.choice(["String", "Int", "ID!", "Boolean", "[String]", "Foo", "CustomerFilter", "Float!"])
            elif k < 0.1:
                decl = decl.rstrip("!")
            default = ""
            if r.random() < 0.05:
                default = " = " + render(self.value(t, name, field, mut, self.schema))
            self.doc["var_defs"].append(f"${var}: {decl}{default}")
            k = r.random()
            if k < 0.9:
                self.doc["vars"][var] = to_json(v)
            elif k < 0.95:
                self.doc["vars"][var] = to_json(self.wrong_value())
                self.doc["hidden"] = hidden_before
            else:
                self.doc["hidden"] = hidden_before
            return Var(var)
        return v

    def directives(self):
        r = self.r
        if r.random() > 0.06:
            return ""
        k = r.random()
        if k < 0.7:
            cond = r.random() < 0.5
            if r.random() < 0.3:
                var = self.fresh("d")
                self.doc["var_defs"].append(f"${var}: Boolean" + ("!" if r.random() < 0.5 else ""))
                if r.random() < 0.9:
                    self.doc["vars"][var] = r.choice([cond, cond, "yes", None, 1])
                return f" @{r.choice(['skip', 'include'])}(if: ${var})"
            return f" @{r.choice(['skip', 'include'])}(if: {render(cond)})"
        return r.choice([" @foo", " @deprecated", " @skip", " @include(if: 1)", " @skip(if: true) @skip(if: false)",
                         " @specifiedBy(url: \"x\")", " @include(when: true)"])

    def field(self, tname, depth, mut):
        r = self.r
        T = self.schema["types"].get(tname)
        if T is None or not T["fields"] or r.random() < 0.04:
            return "__typename" + self.directives()
        names = list(T["fields"])
        admin_t = self.c["schemas"]["admin"]["types"].get(tname)
        hidden = [f for f in (admin_t["fields"] if admin_t else {}) if f not in T["fields"]]
        if hidden and r.random() < 0.03:
            fname = r.choice(hidden)
            self.doc["hidden"] = True
            f = admin_t["fields"][fname]
            bt = base_name(f["type"])
            args = ""
            req = [(a, at) for a, (at, dv) in f["args"].items() if isinstance(at, tuple) and at[0] == "!" and dv is None]
            if req:
                args = "(" + ", ".join(f"{a}: {render(self.value(at, a, fname, mut, self.c['schemas']['admin']))}"
                                       for a, at in req) + ")"
            sub = "" if self.c["schemas"]["admin"]["types"].get(bt, {}).get("kind") in ("SCALAR", "ENUM") else \
                " { __typename }"
            return f"{fname}{args}{sub}"
        if r.random() < 0.01:
            return r.choice(["fooBar", "customer_id", "Customer", "password", "__schema", "__type"]) + \
                r.choice(["", " { id }"])
        fname = r.choice(names)
        f = T["fields"][fname]
        out = ""
        if r.random() < 0.08:
            out = r.choice([self.fresh("a"), r.choice(names), "id", "__typename"]) + ": "
        out += fname
        args = []
        for a, (at, dv) in f["args"].items():
            required = isinstance(at, tuple) and at[0] == "!" and dv is None
            if (required and r.random() < 0.97) or (not required and r.random() < 0.4):
                args.append(f"{a}: {render(self.arg(a, at, fname, mut))}")
        if r.random() < 0.02:
            args.append(f"{r.choice(['foo', 'first', 'id', 'after'])}: {render(self.wrong_value())}")
        if args:
            out += "(" + ", ".join(args) + ")"
        out += self.directives()
        bt = base_name(f["type"])
        BT = self.schema["types"].get(bt)
        leaf = BT is None or BT["kind"] in ("SCALAR", "ENUM")
        if leaf:
            if r.random() < 0.01:
                out += " { id }"
            return out
        if r.random() < 0.01:
            return out      # an object without a selection
        return out + " { " + self.selection(bt, depth + 1, mut) + " }"

    def selection(self, tname, depth, mut):
        r = self.r
        T = self.schema["types"].get(tname)
        if depth >= self.doc["max_depth"] or T is None:
            leaves = [f for f, d in (T["fields"] if T else {}).items()
                      if self.schema["types"].get(base_name(d["type"]), {}).get("kind") in ("SCALAR", "ENUM")
                      and not any(isinstance(at, tuple) and at[0] == "!" and dv is None
                                  for at, dv in d["args"].values())]
            return r.choice(leaves) if leaves and r.random() < 0.8 else "__typename"
        items = []
        for _ in range(r.choice([1, 1, 2, 2, 3, 4, 6])):
            k = r.random()
            if k < 0.07:
                items.append(self.inline_fragment(tname, depth, mut))
            elif k < 0.11:
                items.append(self.fragment_spread(tname, depth, mut))
            else:
                items.append(self.field(tname, depth, mut))
        if T["kind"] in ("INTERFACE", "UNION") and r.random() < 0.8:
            items.append(self.inline_fragment(tname, depth, mut))
        return " ".join(items)

    def type_condition(self, tname):
        r = self.r
        T = self.schema["types"].get(tname)
        k = r.random()
        if T and T["possible"] and k < 0.8:
            return r.choice(T["possible"])
        if k < 0.9:
            return tname
        objects = [n for n, t in self.schema["types"].items() if t["kind"] == "OBJECT" and not n.startswith("__")]
        admin_only = [n for n in self.c["schemas"]["admin"]["types"] if n not in self.schema["types"]]
        if admin_only and r.random() < 0.3:
            self.doc["hidden"] = True
            return r.choice(admin_only)
        return r.choice(objects + ["Foo", "String"])

    def inline_fragment(self, tname, depth, mut):
        r = self.r
        if r.random() < 0.1:
            return "..." + self.directives() + " { " + self.selection(tname, depth + 1, mut) + " }"
        cond = self.type_condition(tname)
        target = cond if cond in self.schema["types"] else tname
        return f"... on {cond}{self.directives()} {{ " + self.selection(target, depth + 1, mut) + " }"

    def fragment_spread(self, tname, depth, mut):
        r = self.r
        name = self.fresh("F")
        cond = self.type_condition(tname) if r.random() < 0.3 else tname
        target = cond if cond in self.schema["types"] else tname
        body = self.selection(target, depth + 1, mut)
        if r.random() < 0.02:
            body += f" ...{name}"       # a cycle
        self.doc["frags"].append(f"fragment {name} on {cond} {{ {body} }}")
        if r.random() < 0.02:
            self.doc["frags"].append(f"fragment {name} on {cond} {{ __typename }}")   # a duplicate
        return f"...{name}{self.directives()}"

    def operation(self, name):
        r = self.r
        self.doc["var_defs"] = []
        kind, root = "query", self.schema["query"]
        k = r.random()
        if k < 0.1 and self.schema["mutation"] and self.schema["types"].get(self.schema["mutation"], {}).get("fields"):
            kind, root = "mutation", self.schema["mutation"]
        elif k < 0.11:
            kind = "subscription"
        mut = kind == "mutation"
        n = r.choice([1, 1, 1, 2, 2, 3]) if not mut else 1
        sel = " ".join(self.field(root, 1, mut) for _ in range(n))
        defs = "(" + ", ".join(self.doc["var_defs"]) + ")" if self.doc["var_defs"] else ""
        if kind == "query" and not name and not defs and r.random() < 0.6:
            return "{ " + sel + " }"
        return f"{kind}{' ' + name if name else ''}{defs} {{ {sel} }}"

    def canary_doc(self):
        """A lookup of the canary by every key the role may know, selecting all it may ask."""
        r, s = self.r, self.schema
        Q = s["types"][s["query"]]["fields"]
        cust = s["types"].get("Customer", {}).get("fields", {})
        parts = []
        for f, d in cust.items():
            bt = base_name(d["type"])
            kind = s["types"].get(bt, {}).get("kind")
            if kind in ("SCALAR", "ENUM"):
                if not d["args"]:
                    parts.append(f)
            elif bt == "Address":
                parts.append(f + " { " + " ".join(s["types"]["Address"]["fields"]) + " }")
            elif f in ("orders", "tickets", "notes"):
                leaves = [x for x, dd in s["types"][bt.replace("Connection", "")]["fields"].items()
                          if s["types"].get(base_name(dd["type"]), {}).get("kind") in ("SCALAR", "ENUM")]
                parts.append(f"{f}(first: 5) {{ totalCount edges {{ node {{ {' '.join(leaves)} }} }} }}")
            elif f == "sourceRecords":
                parts.append("sourceRecords { source key }")
        r.shuffle(parts)
        sel = " ".join(parts[:r.randint(1, max(1, len(parts)))]) or "id"
        lookups = []
        if "customer" in Q:
            lookups.append(f'customer(id: {json.dumps(self.c["canary_id"])})')
        if "node" in Q:
            lookups.append(f'node(id: {json.dumps(self.c["canary_id"])})')
        if "customerByEmail" in Q:
            lookups.append(f"customerByEmail(email: {json.dumps(r.choice(CANARY_EMAILS))})")
        if "customerByPhone" in Q:
            lookups.append(f"customerByPhone(phone: {json.dumps(r.choice(CANARY_PHONES))})")
        if "customerBySourceKey" in Q:
            src, key = r.choice([("CRM", "990000001"), ("SHOP", "99000001"), ("HELPDESK", "99000001")])
            lookups.append(f'customerBySourceKey(source: {src}, key: "{key}")')
        if "customers" in Q:
            lookups.append("customers(first: 100)")
        look = r.choice(lookups)
        if look.startswith("customers"):
            return f"{{ {look} {{ totalCount edges {{ node {{ {sel} }} }} }} }}"
        if look.startswith("node"):
            return f"{{ {look} {{ id ... on Customer {{ {sel} }} }} }}"
        if r.random() < 0.3:
            return f"query {{ x: {look} {{ ...C }} }} fragment C on Customer {{ {sel} }}"
        return f"{{ {look} {{ {sel} }} }}"

    def limit_doc(self):
        r = self.r
        k = r.randrange(9)
        if k == 0:
            return "{ " + " ".join(f"a{i}: __typename" for i in range(r.choice([29, 30, 31, 60]))) + " }"
        if k == 1:
            return "{ " + " ".join("__typename" for _ in range(r.choice([19, 20, 21, 40]))) + " }"
        if k == 2:
            return "{ __typename" + " @include(if: true)" * r.choice([49, 50, 51, 200]) + " }"
        if k == 3:
            n = r.choice([13, 14, 15, 16, 40, 200])
            return "{ " + "... on Query { " * n + "__typename" + " }" * n + " }"
        if k == 4:
            return ("{ customers(first: 100) { edges { node { orders(first: 100) { edges { node { lines { sku } } } }"
                    " tickets(first: 100) { totalCount } } } } }")
        if k == 5:
            return "{ " + "__typename " * r.choice([14990, 15001, 20000]) + "}"
        if k == 6:
            return "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
        if k == 7:
            n = r.choice([5, 20, 30])
            frags = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
            return "{ ...F0 } " + frags + f" fragment F{n} on Query {{ __typename }}"
        return "{ paretoCurve(points: " + str(r.choice([1000, 100000, 2 ** 31 - 1])) + ") { customers } }"

    def introspection_doc(self):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            return INTROSPECTION
        if k == 1:
            name = r.choice(self.c["all_type_names"])
            return f'{{ __type(name: "{name}") {{ name kind fields {{ name args {{ name }} }} inputFields {{ name }} }} }}'
        if k == 2:
            return "{ __schema { types { name fields { name type { name ofType { name } } } } directives { name } } }"
        return "{ __schema { queryType { fields { name args { name defaultValue } } } mutationType { fields { name } } } }"

    def document(self, role):
        """One request body (a dict) for this role, and whether it names hidden fields."""
        r = self.r
        self.new_doc(role)
        k = r.random()
        op_name = None
        if k < 0.05:
            q = self.canary_doc()
        elif k < 0.08:
            q = self.limit_doc()
        elif k < 0.11:
            q = self.introspection_doc()
        else:
            nops = 1 if r.random() < 0.9 else r.choice([2, 3])
            names = [None] if nops == 1 and r.random() < 0.7 else [self.fresh("Op") for _ in range(nops)]
            # Which operations name hidden fields (with the fragments each spreads): of a
            # document of several, only the one that runs is validated and run.
            ops, hides = [], {}
            for n in names:
                self.doc["hidden"] = False
                ops.append(self.operation(n))
                hides[n] = self.doc["hidden"]
            q = " ".join(ops + self.doc["frags"])
            if r.random() < 0.02:
                self.doc["hidden"] = False
                q += " " + self.operation(names[0])     # a duplicate operation name
                hides[names[0]] = hides[names[0]] or self.doc["hidden"]
            kk = r.random()
            if len(names) > 1 or names[0]:
                op_name = r.choice([n for n in names if n]) if kk < 0.8 else (None if kk < 0.9 else "Nope")
            elif kk < 0.05:
                op_name = "Nope"
            # One operation: it runs whatever the name says (or nothing does). Several:
            # the one named, or none.
            self.doc["hidden"] = any(hides.values()) if len(names) == 1 else hides.get(op_name, False)
        body = {"query": q}
        if self.doc["vars"] or r.random() < 0.3:
            body["variables"] = self.doc["vars"]
        if op_name is not None or r.random() < 0.05:
            body["operationName"] = op_name
        if r.random() < 0.02:
            body["extensions"] = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(q.encode()).hexdigest()}}
        return body, self.doc["hidden"]

    # -- requests ------------------------------------------------------------------------

    def token_for(self, role):
        if role == "partner":
            return self.r.choice(self.c["partner_tokens"])
        return self.c["tokens"][role]

    def request(self):
        """A request: dict(method, path, headers, body, role, scopes, expect, kind)."""
        r = self.r
        role = r.choice(ROLES)
        body, hidden = self.document(role)
        token = self.token_for(role)
        req = {"method": "POST", "path": "/graphql", "role": role, "scopes": self.c["scopes"][role],
               "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
               "body": json.dumps(body, ensure_ascii=r.random() < 0.5).encode("utf-8", "surrogatepass"),
               "hidden": hidden, "expect": None, "kind": "grammar"}
        if r.random() < 0.2:
            req["hidden"] = False      # mutated: the document may not even parse any more
            self.mutate(req, body)
        elif r.random() < 0.02:
            req["hidden"] = False
            self.bomb(req)
        return req

    def bomb(self, req):
        """Small documents built to make the hub work before its limits: fragments that
        double, introspection that multiplies, a thousand operations spreading fan-outs."""
        r = self.r
        req["kind"] = "bomb"
        k = r.randrange(4)
        if k == 0:      # each fragment spreads the next one twice
            n = r.randint(10, 60)
            frags = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
            query = "query { ...F0 } " + frags + f" fragment F{n} on Query {{ __typename }}"
            body = {"query": query}
        elif k == 1:    # introspection lists nested in each other
            hops = r.randint(2, 20)
            inner = "name"
            for i in range(hops):
                inner = ("possibleTypes" if i % 2 == 0 else "interfaces") + " { " + inner + " }"
            body = {"query": '{ __type(name: "Node") { ' + inner + " } }"}
        elif k == 2:    # introspection aliased wide
            n = r.choice([5, 30, 100])
            aliases = " ".join(f"f{i}: fields {{ args {{ name type {{ name }} }} }}" for i in range(n))
            body = {"query": "{ __schema { types { " + aliases + " } } }"}
        else:           # many operations, each spreading the same fan-out
            n = r.choice([10, 300, 1500])
            fan = "__typename"
            for _ in range(r.randint(2, 5)):
                fan = "... on Query { " + " ".join([fan] * 8) + " }"
            ops = " ".join(f"query Op{i} {{ ...F }}" for i in range(n))
            body = {"query": ops + " fragment F on Query { " + fan + " }", "operationName": f"Op{r.randrange(n)}"}
        req["body"] = json.dumps(body).encode()

    def mutate(self, req, body):
        r = self.r
        k = r.randrange(17)
        b = req["body"]
        req["kind"] = "bytes"
        if k == 0:      # flip bits
            b = bytearray(b)
            for _ in range(r.randint(1, 8)):
                if b:
                    b[r.randrange(len(b))] ^= 1 << r.randrange(8)
            req["body"] = bytes(b)
        elif k == 1:    # insert bytes
            for _ in range(r.randint(1, 5)):
                pos = r.randrange(len(b) + 1)
                ins = r.choice([b"\x00", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"{", b"}", b"[", b"\"", b"\\", b"\\u",
                                b"\\ud800", b"$", b"...", b"\n", bytes([r.randrange(256)]) * r.randint(1, 30)])
                b = b[:pos] + ins + b[pos:]
            req["body"] = b
        elif k == 2:    # delete a range
            if b:
                i = r.randrange(len(b))
                b = b[:i] + b[i + r.randint(1, 40):]
            req["body"] = b
        elif k == 3:    # truncate
            req["body"] = b[:r.randrange(len(b) + 1)]
        elif k == 4:    # duplicate a range
            if b:
                i = r.randrange(len(b))
                j = min(len(b), i + r.randint(1, 200))
                b = b[:j] + b[i:j] * r.randint(1, 20) + b[j:]
            req["body"] = b
        elif k == 5:    # wrong JSON types
            field = r.choice(["query", "variables", "operationName", "extensions"])
            body = dict(body)
            body[field] = r.choice([1, -1.5, None, True, [], {}, "", [body.get("query")], {"query": "x"}, "{}",
                                    "[]", "null", 2 ** 70])
            req["body"] = json.dumps(body).encode()
        elif k == 6:    # huge strings
            n = r.choice([10_000, 100_000, 500_000, 1_048_000, 1_100_000])
            kind = r.random()
            if kind < 0.4:
                body = dict(body, query="{ customerByEmail(email: \"" + "a" * n + "@x.de\") { id } }")
            elif kind < 0.7:
                body = dict(body, variables={"x": "y" * n})
            else:
                body = dict(body, query=body.get("query", "") + " #" + "c" * n)
            req["body"] = json.dumps(body).encode()
        elif k == 7:    # deep nesting
            n = r.choice([50, 128, 129, 200, 400, 1000, 5000, 7400, 20000])
            kind = r.randrange(5)
            if kind == 0:
                req["body"] = b'{"query":"{ __typename }","variables":{"a":' + b"[" * n + b"]" * n + b"}}"
            elif kind == 1:
                req["body"] = json.dumps({"query": "{ " + "a { " * n + "b" + " }" * n + " }"}).encode()
            elif kind == 2:
                req["body"] = json.dumps({"query": "{ customers(filter: " + "[" * n + "]" * n + ") { totalCount } }"}).encode()
            elif kind == 3:
                req["body"] = json.dumps({"query": "{ customers(filter: " + "{a: " * n + "1" + "}" * n +
                                                   ") { totalCount } }"}).encode()
            else:
                req["body"] = b"[" * n + b"]" * n
        elif k == 8:    # invalid UTF-8 in the document
            q = body.get("query", "{ __typename }").encode()
            pos = r.randrange(len(q) + 1)
            bad = r.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
            req["body"] = b'{"query":"' + q[:pos].replace(b'"', b'\\"') + bad + q[pos:].replace(b'"', b'\\"') + b'"}'
        elif k == 9:    # content types and accept headers
            if r.random() < 0.5:
                req["headers"]["Content-Type"] = r.choice(
                    ["text/plain", "application/graphql", "application/x-www-form-urlencoded", "multipart/form-data",
                     "application/json; charset=latin1", "APPLICATION/JSON", "application/json, text/html",
                     "application/graphql-response+json", "", "application/json;;", "x" * 3000])
                if r.random() < 0.2:
                    del req["headers"]["Content-Type"]
            else:
                req["headers"]["Accept"] = r.choice(
                    ["application/graphql-response+json", "application/json", "text/html", "*/*",
                     "application/json;q=0", "application/graphql-response+json;q=0.1, application/json",
                     "image/png", "", "*/*;q=abc"])
        elif k == 10:   # GET with a query string
            params = {"query": body.get("query", "")}
            if "variables" in body:
                params["variables"] = json.dumps(body["variables"]) if r.random() < 0.8 else r.choice(
                    ["[]", "x", "{", "null", "1"])
            if body.get("operationName"):
                params["operationName"] = body["operationName"]
            qs = urllib.parse.urlencode(params)
            if r.random() < 0.2:
                qs = r.choice(["query=%zz", "query=%", "query=%ff%fe", "&&&", "query", "query=" + "a" * 100_000,
                               "query={__typename}&query={__typename}", qs + "&extensions=%7B"])
            req.update(method="GET", path="/graphql?" + qs, body=b"")
            req["headers"].pop("Content-Type", None)
        elif k == 11:   # other methods
            req["method"] = r.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"])
        elif k == 12:   # batches
            n = r.choice([0, 1, 2, 4, 5, 50])
            items = [body] * n
            if r.random() < 0.3 and items:
                items[0] = r.choice([1, None, [], "x", {"query": "mutation { __typename }"}, [body]])
            req["body"] = json.dumps(items).encode()
        elif k == 13:   # empty or odd bodies
            req["body"] = r.choice([b"", b" ", b"{}", b"null", b"[]", b"\"\"", b"0", b"{\"query\":\"\"}",
                                    b"{\"query\":\"   \"}", b"\xef\xbb\xbf{\"query\":\"{__typename}\"}",
                                    b"{\"query\":\"{__typename}\"}{\"query\":\"x\"}", b"\x00"])
        elif k == 14:   # persisted queries
            body = dict(body)
            h = r.choice([hashlib.sha256(body.get("query", "").encode()).hexdigest(), "0" * 64, "x", "",
                          hashlib.sha256(b"{ __typename }").hexdigest(), "A" * 64])
            body["extensions"] = {"persistedQuery": {"version": r.choice([1, 1, 2, "1", None]), "sha256Hash": h}}
            if r.random() < 0.5:
                body.pop("query", None)
            req["body"] = json.dumps(body).encode()
        elif k == 15:   # no token, or a broken one
            tok = req["headers"]["Authorization"][7:]
            req["headers"]["Authorization"] = r.choice(
                ["", "Bearer", "Bearer ", "Basic YTpi", "bearer " + tok, "Bearer " + tok[:-3] + "abc",
                 "Bearer " + tok + "x", "Bearer " + tok.split(".")[0], "Bearer " + "a." * 5000,
                 "Bearer  " + tok, "Token " + tok])
            if r.random() < 0.3:
                del req["headers"]["Authorization"]
            # Other spellings of the scheme may be accepted or not: either is fine.
            req["expect"] = None if req["headers"].get("Authorization", "") in ("bearer " + tok, "Bearer  " + tok) \
                else "refused"
            req["kind"] = "auth"
        else:           # forged tokens, signed with the development key
            self.forge(req)
        return req

    def forge(self, req):
        r = self.r
        req["kind"] = "forged"
        now = int(time.time())
        role = req["role"]
        claims = {"iss": "c360", "aud": "c360", "sub": "fz-forged-%x" % r.getrandbits(16), "role": role,
                  "scope": " ".join(self.c["scopes"][role]), "iat": now - 10, "exp": now + 3600,
                  "jti": "fz-%x" % r.getrandbits(64)}
        if role == "partner":
            claims["partner_id"] = r.choice(PARTNERS)
        header = {"typ": "JWT", "alg": "HS256", "kid": "dev"}
        invalid = True
        k = r.randrange(18)
        if k == 0:
            claims["exp"] = now - 3600
        elif k == 1:
            claims["nbf"] = now + 3600
        elif k == 2:
            claims["iat"] = now + 3600
        elif k == 3:
            claims.pop("sub")
        elif k == 4:
            claims["sub"] = ""
        elif k == 5:
            claims["role"] = r.choice(["superadmin", "Admin", "ADMIN", "", "root", None, 1, ["admin"]])
        elif k == 6:
            claims.pop("role")
        elif k == 7:
            if role == "partner":
                claims.pop("partner_id")
            else:
                claims["partner_id"] = "acme-insurance"
        elif k == 8:
            claims["iss"] = "evil"
        elif k == 9:
            claims["aud"] = r.choice(["other", ["other"]])
        elif k == 10:
            claims.pop("exp")
        elif k == 11:
            header["alg"] = "none"
        elif k == 12:
            header["kid"] = r.choice(["other", "../dev"])
        elif k == 13:
            claims["exp"] = r.choice(["tomorrow", -1, None])
        else:           # valid tokens with other claims: scopes, purposes, partners
            invalid = False
            if k == 14:
                claims["scope"] = " ".join(r.sample(ALL_SCOPES, r.randint(0, len(ALL_SCOPES))))
            elif k == 15:
                claims["scope"] = r.choice(["", "pii:read", "customers:read pii:read", "customers:read customers:read",
                                            "*", "customers:* pii:*", "CUSTOMERS:READ pii:read"])
            elif k == 16 and role == "partner":
                claims["purpose"] = r.choice(["offers", "travel", "other", ""])
                invalid = None  # an empty purpose: accepted or refused, either is fine
            else:
                claims["sub"] = r.choice(["fuzz-admin", "x" * 300, "é", "fz sub"])
        h = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")
        p = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        if header["alg"] == "none":
            sig = b""
        else:
            sig = base64.urlsafe_b64encode(hmac.new(self.c["dev_key"], h + b"." + p, hashlib.sha256).digest()).rstrip(b"=")
        req["headers"]["Authorization"] = "Bearer " + (h + b"." + p + b"." + sig).decode()
        scope = claims.get("scope")
        req["role"] = claims.get("role") if isinstance(claims.get("role"), str) else "?"
        req["scopes"] = scope.split() if isinstance(scope, str) else []
        req["expect"] = "refused" if invalid else None
        req["kind"] = "forged"


ALL_SCOPES = ["customers:read", "orders:read", "tickets:read", "campaigns:read", "insights:read", "pii:read",
              "notes:write", "consent:write"]


# ---------------------------------------------------------------------------- checking

def request_text(req):
    t = req["body"].decode("utf-8", "replace") + " " + urllib.parse.unquote_plus(req["path"])
    try:
        t += " " + json.dumps(json.loads(req["body"]))   # escapes as the hub may write them
    except Exception:
        pass
    return t.lower()


def strings_in(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from strings_in(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings_in(x)


def normalise(msg):
    msg = re.sub(r", found .*", ", found …", msg[:300])
    msg = re.sub(r'"[^"]*"|`[^`]*`', "…", msg)
    msg = re.sub(r"\d+", "#", msg)
    return msg[:70]


def check(req, status, headers, body, ctx):
    """Findings for one exchange: a list of (kind, signature-detail)."""
    out = []
    if status is None:
        return [("no-response", body.decode("utf-8", "replace")[:80])]
    if status >= 500:
        out.append(("5xx", f"HTTP {status}"))
    if req["method"] == "HEAD" or status in (204, 304):
        return out
    # A request line past hyper's limit (a GET query string over 64 KiB) is refused by the
    # HTTP layer before any handler, with an empty 414 (README, "Errors"): allowed.
    if status == 414 and not body:
        return out
    text = body.decode("utf-8", "replace")
    low = text.lower()
    reqtext = request_text(req)
    try:
        doc = json.loads(body)
    except ValueError:
        out.append(("non-json-body", f"HTTP {status} {headers.get('content-type', '')} {text[:40]!r}"))
        doc = None
    responses = doc if isinstance(doc, list) else [doc] if doc is not None else []
    for resp in responses:
        if not isinstance(resp, dict):
            out.append(("bad-response-shape", f"HTTP {status} {type(resp).__name__}"))
            continue
        for e in resp.get("errors") or []:
            code = e.get("extensions", {}).get("code") if isinstance(e, dict) and isinstance(e.get("extensions"), dict) else None
            if not isinstance(code, str):
                out.append(("error-without-code", normalise(str(e.get("message") if isinstance(e, dict) else e))))
        if req.get("hidden") and resp.get("data") is not None:
            out.append(("hidden-field-answered", req["role"]))
        if req.get("expect") == "refused" and status == 200 and resp.get("data") is not None:
            out.append(("invalid-token-accepted", req["kind"]))
    if req.get("expect") == "refused" and status not in (401, 400, 404, 405, 406, 413, 414, 415, 431):
        out.append(("invalid-token-not-401", f"HTTP {status}"))
    scanned = OPAQUE.sub("<opaque>", text)
    for pat in INTERNAL_PATTERNS:
        m = pat.search(scanned)
        if m and not pat.search(reqtext):
            out.append(("internal-detail", pat.pattern))
    # canaries
    forbidden = ctx["policy"].forbidden(req["role"], req["scopes"])
    for probe in forbidden:
        if probe in low and probe not in reqtext:
            out.append(("canary-leak", f"{req['role']}: {probe}"))
    data_values = []
    for resp in responses:
        if isinstance(resp, dict) and resp.get("data") is not None:
            data_values.extend(s.lower() for s in strings_in(resp["data"]))
    if data_values:
        joined = "\n".join(data_values)
        for probe in forbidden:
            if probe in joined:
                out.append(("canary-leak-in-data", f"{req['role']}: {probe}"))
        if req["role"] not in ("admin", "agent"):
            for gid in ctx["canary_gids_lower"] if ctx["policy"].p["rows"].get(req["role"]) == "consented" else []:
                if gid in joined:
                    out.append(("canary-leak-in-data", f"{req['role']}: canary id"))
    return sorted(set(out))


def codes_of(body):
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    out = []
    for resp in doc if isinstance(doc, list) else [doc]:
        if isinstance(resp, dict):
            for e in resp.get("errors") or []:
                if isinstance(e, dict) and isinstance(e.get("extensions"), dict):
                    out.append(str(e["extensions"].get("code")))
    return out


class Client:
    def __init__(self, port, timeout=60):
        self.port, self.timeout = port, timeout
        self.conn = None

    def send(self, req):
        """(status, headers, body); status None when there was no answer."""
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                self.conn.request(req["method"], req["path"], body=req["body"] if req["body"] or req["method"] in
                                  ("POST", "PUT", "PATCH") else None, headers=req["headers"])
                resp = self.conn.getresponse()
                body = resp.read()
                headers = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close:
                    self.close()
                return resp.status, headers, body
            except ConnectionRefusedError as e:
                self.close()
                return None, {}, f"connection refused: {e}".encode()
            except (http.client.HTTPException, OSError) as e:
                self.close()
                if attempt == 1:
                    if len(req["body"]) > 1024 * 1024 and isinstance(e, (BrokenPipeError, ConnectionResetError)):
                        return 413, {}, b'{"note":"the hub closed the connection on a body over 1 MiB"}'
                    return None, {}, f"{type(e).__name__}: {e}".encode()
        return None, {}, b"unreachable"

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---------------------------------------------------------------------------- workers

CTX = {}    # set before the workers fork


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------- websocket

def ws_open(port, token=None):
    """A raw websocket on /graphql (graphql-transport-ws): (socket, HTTP status)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    key = base64.b64encode(random.randbytes(16)).decode()
    lines = ["GET /graphql HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: graphql-transport-ws"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return sock, int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0


def ws_frame(opcode, payload, fin=True, masked=True):
    """One client frame (masked, as clients must send them, unless told not to)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    length = bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big") if n < 65536 else \
        bytes([127]) + n.to_bytes(8, "big")
    if not masked:
        return head + length + payload
    mask = random.randbytes(4)
    return head + bytes([length[0] | 0x80]) + length[1:] + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read(sock):
    """The next frame from the hub: (opcode, payload); (None, b"") when the connection ends,
    ("timeout", b"") when the hub says nothing for 15 s."""
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data
    try:
        b0, b1 = exactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(exactly(2), "big")
        elif n == 127:
            n = int.from_bytes(exactly(8), "big")
        return b0 & 0x0F, exactly(n)
    except TimeoutError:
        return "timeout", b""
    except (OSError, ConnectionError):
        return None, b""


def ws_until(sock, want):
    """Reads frames until one of opcode `want` (or the end): its payload, None at the end,
    "timeout" when the hub stays silent."""
    for _ in range(20):
        opcode, payload = ws_read(sock)
        if opcode is None or opcode == "timeout":
            return opcode
        if opcode == want:
            return payload
    return None


def websocket_probes(port, admin):
    """Fragmented and oversized frames, and frames that break the protocol: each must be
    answered as the protocol says and leave the hub serving. name -> "ok" or the problem."""
    out = {}

    def fragments(text, parts):
        data = text.encode()
        step = max(1, len(data) // parts)
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        return b"".join(ws_frame(0x1 if i == 0 else 0x0, c, fin=i == len(chunks) - 1) for i, c in enumerate(chunks))

    try:
        sock, status = ws_open(port)
        init = json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {admin}"}})
        sock.sendall(fragments(init, 3))
        ack = ws_until(sock, 0x1)
        sub = json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
        sock.sendall(fragments(sub, 4))
        nxt = ws_until(sock, 0x1)
        ok = status == 101 and isinstance(ack, bytes) and b"connection_ack" in ack and isinstance(nxt, bytes) \
            and b'"Query"' in nxt
        out["fragmented messages are put together"] = "ok" if ok else f"status {status}, {ack!r}, {nxt!r}"
        sock.close()
    except OSError as e:
        out["fragmented messages are put together"] = f"{type(e).__name__}: {e}"

    probes = {
        # 2 MiB in 64 KiB fragments, before any token: closed at the 1 MiB limit (1009).
        "a message over the body limit closes the connection":
            (b"".join(ws_frame(0x1 if i == 0 else 0x0, b"x" * 65536, fin=i == 31) for i in range(32)), {1009}),
        "a reserved opcode is a protocol error": (ws_frame(0x3, b"x"), {1002}),
        "an unmasked client frame is a protocol error": (ws_frame(0x1, b"{}", masked=False), {1002}),
        "a continuation without a start is a protocol error": (ws_frame(0x0, b"x"), {1002}),
    }
    for name, (frames, codes) in probes.items():
        try:
            sock, status = ws_open(port)
            try:
                sock.sendall(frames)
            except OSError:
                pass    # the hub may close before it has read everything
            close = ws_until(sock, 0x8)
            code = int.from_bytes(close[:2], "big") if isinstance(close, bytes) and len(close) >= 2 else close
            # A connection ended without a close frame (reset mid-write) is refused too.
            out[name] = "ok" if status == 101 and (code in codes or close is None) else f"status {status}, close {code}"
            sock.close()
        except OSError as e:
            out[name] = f"{type(e).__name__}: {e}"
    return out


def worker(w, count, seed, deadline, progress, stop, results, crashes, crashq, keep_going):
    ctx = CTX
    rng = random.Random(f"{seed}/{w}")
    gen = Gen(rng, ctx)
    client = Client(ctx["port"])
    st = {"sent": 0, "by_role": {}, "by_kind": {}, "status": {}, "codes": {}, "findings": {}, "last": [],
          "hub_down": False, "seconds": 0.0}
    t0 = time.time()
    last = []
    try:
        for i in range(count):
            if stop.is_set() or time.time() > deadline:
                break
            req = gen.request()
            seen_crashes = crashes.value
            sent_at = time.time()
            status, headers, body = client.send(req)
            took = time.time() - sent_at
            if req["kind"] == "bomb":
                st["bomb_seconds"] = max(st.get("bomb_seconds", 0.0), took)
            last.append((i, req))
            del last[:-12]
            if status is None:
                # Did the hub die (this request, or another worker's)? The main process notices
                # within a fraction of a second and counts it.
                t_wait = time.time() + 3
                while time.time() < t_wait and crashes.value == seen_crashes and port_open(ctx["port"]):
                    time.sleep(0.1)
                if crashes.value != seen_crashes or not port_open(ctx["port"]):
                    st["hub_down"] = True
                    st["sent"] += 1
                    st["status"]["crash"] = st["status"].get("crash", 0) + 1
                    crashq.put((w, [serialise(r_, w, i_) for i_, r_ in last]))
                    last.clear()
                    client.close()
                    if not keep_going:
                        stop.set()
                        break
                    # wait for the restart
                    while not stop.is_set() and time.time() < deadline and (
                            crashes.value == seen_crashes or not port_open(ctx["port"]) or
                            crashes.value > ctx["restarted"][0].value):
                        time.sleep(0.2)
                    continue
            st["sent"] += 1
            role_key = req["role"] if req["role"] in ROLES else "other"
            st["by_role"][role_key] = st["by_role"].get(role_key, 0) + 1
            st["by_kind"][req["kind"]] = st["by_kind"].get(req["kind"], 0) + 1
            st["status"][str(status)] = st["status"].get(str(status), 0) + 1
            for c in codes_of(body):
                st["codes"][c] = st["codes"].get(c, 0) + 1
            # A bomb answered slowly is the hub working before its limits (once 2^n steps).
            slow = [("slow-bomb", f"{took:.1f} s")] if req["kind"] == "bomb" and took > 10 else []
            for kind, detail in check(req, status, headers, body, ctx) + slow:
                sig = f"{kind} | {detail}"
                f = st["findings"].setdefault(sig, {"kind": kind, "count": 0, "examples": []})
                f["count"] += 1
                if len(f["examples"]) < 2:
                    f["examples"].append({"request": serialise(req, w, i), "status": status,
                                          "response": body[:3000].decode("utf-8", "replace")})
            if i % 50 == 0:
                progress[w] = st["sent"]
        progress[w] = st["sent"]
    except Exception:
        st["crash"] = traceback.format_exc()
    st["seconds"] = time.time() - t0
    st["last"] = [serialise(r_, w, i_) for i_, r_ in last]
    results.put((w, st))


def serialise(req, w=None, i=None):
    return {"worker": w, "index": i, "method": req["method"], "path": req["path"], "role": req["role"],
            "kind": req["kind"], "headers": req["headers"], "body_b64": base64.b64encode(req["body"]).decode(),
            "body_text": req["body"][:2000].decode("utf-8", "replace"), "hidden": req.get("hidden"),
            "expect": req.get("expect"), "scopes": req["scopes"]}


def deserialise(s):
    return {"method": s["method"], "path": s["path"], "role": s["role"], "kind": s["kind"], "headers": s["headers"],
            "body": base64.b64decode(s["body_b64"]), "hidden": s["hidden"], "expect": s["expect"],
            "scopes": s["scopes"]}


# ---------------------------------------------------------------------------- setup

def admin_pools(hub, admin, partner_token):
    ids, emails, phones, cursors, keys, order_ids, ticket_ids, campaign_ids, order_cursors = ([] for _ in range(9))
    after = None
    while len(ids) < 400:
        d = hub.gql(admin, """query($a: String) { customers(first: 100, after: $a) { edges { cursor node { id email phone
            sourceRecords { source key } orders(first: 2) { edges { cursor node { id } } }
            tickets(first: 2) { edges { node { id } } }
            campaignResponses(first: 2) { edges { node { campaign { id } } } } } } } }""", {"a": after})
        edges = d["data"]["customers"]["edges"]
        if not edges:
            break
        for e in edges:
            n = e["node"]
            ids.append(n["id"])
            cursors.append(e["cursor"])
            if n["email"]:
                emails.append(n["email"])
            if n["phone"]:
                phones.append(n["phone"])
            keys += [(s["source"], s["key"]) for s in n["sourceRecords"]]
            order_ids += [o["node"]["id"] for o in n["orders"]["edges"]]
            order_cursors += [o["cursor"] for o in n["orders"]["edges"]]
            ticket_ids += [t["node"]["id"] for t in n["tickets"]["edges"]]
            campaign_ids += [c["node"]["campaign"]["id"] for c in n["campaignResponses"]["edges"] if c["node"]["campaign"]]
        after = edges[-1]["cursor"]
    d = hub.gql(partner_token, "{ customers(first: 50) { edges { node { id } } } }")
    consented = [e["node"]["id"] for e in d["data"]["customers"]["edges"]]
    return dict(customer_ids=ids, emails=emails, phones=phones, cursors=cursors, source_keys=keys or [("CRM", "1")],
                order_ids=order_ids, ticket_ids=ticket_ids, campaign_ids=sorted(set(campaign_ids)),
                order_cursors=order_cursors, consented=consented)


BASELINE_FIELDS = ["id", "displayName", "firstName", "lastName", "email", "phone", "birthDate", "birthYear", "gender",
                   "address { street postalCode city country }",
                   "orders(first: 3) { totalCount edges { node { number total { amount currency } } } }",
                   "tickets(first: 3) { totalCount edges { node { subject status } } }"]


def baseline_query(schema):
    cust = schema["types"].get("Customer", {}).get("fields", {})
    sel = " ".join(f for f in BASELINE_FIELDS if f.split("(")[0].split(" ")[0] in cust)
    return f"query($id: ID!) {{ a: customer(id: $id) {{ {sel} }} }}"


def baseline(hub, ctx):
    out = {}
    for role in ROLES:
        q = baseline_query(ctx["schemas"][role])
        tok = ctx["tokens"][role] if role != "partner" else ctx["partner_tokens"][0]
        out[role] = [hub.gql(tok, q, {"id": i}) for i in ctx["protected_ids"]]
        for r in out[role]:
            r.pop("extensions", None)
    return out


def schema_policy_findings(ctx, policy):
    found = []
    for role in ROLES:
        scopes = ctx["scopes"][role]
        types = ctx["schemas"][role]["types"]
        for (tname, fname), cls in sorted(policy.classes.items()):
            if tname not in types:
                continue
            fields = set(types[tname]["fields"]) | set(types[tname]["input"])
            d = policy.decision(role, scopes, cls)
            if d == "hide" and fname in fields:
                found.append(f"{role}: {tname}.{fname} (class {cls}) is hidden by the policy but in the schema")
            if d != "hide" and fname not in fields:
                found.append(f"{role}: {tname}.{fname} (class {cls}, {d}) is missing from the schema")
    return found


def verify_canary_oracle(hub, ctx, policy):
    """Each role's view of the canary, against what the policy says it may and may not see."""
    problems, notes = [], []
    for role in ROLES:
        s = ctx["schemas"][role]
        cust = s["types"].get("Customer", {}).get("fields", {})
        sel = []
        for f, d in cust.items():
            bt = base_name(d["type"])
            kind = s["types"].get(bt, {}).get("kind")
            if kind in ("SCALAR", "ENUM") and not d["args"]:
                sel.append(f)
        if "address" in cust:
            sel.append("address { " + " ".join(s["types"]["Address"]["fields"]) + " }")
        for f, inner in [("orders", "number"), ("tickets", "subject"), ("notes", "body")]:
            if f in cust:
                sel.append(f"{f}(first: 5) {{ edges {{ node {{ {inner} }} }} }}")
        tok = ctx["tokens"][role] if role != "partner" else ctx["partner_tokens"][0]
        resp = hub.gql(tok, f"query($id: ID!) {{ customer(id: $id) {{ {' '.join(sel)} }} }}", {"id": ctx["canary_id"]})
        text = json.dumps(resp).lower()
        forbidden = policy.forbidden(role, ctx["scopes"][role])
        leaked = [p for p in forbidden if p in text]
        if leaked:
            problems.append(f"{role} sees {leaked} of the canary: {json.dumps(resp)[:500]}")
        expected = [p for p, _, _ in PROBES if p not in forbidden]
        missing = [p for p in expected if p not in text]
        notes.append(f"{role}: forbidden {len(forbidden)} probes, sees {len(expected) - len(missing)}/{len(expected)}"
                     f" allowed" + (f" (not shown: {missing})" if missing else ""))
    # The detector must fire: the admin answer holds every probe.
    admin_text = json.dumps(hub.gql(ctx["tokens"]["admin"], """query($id: ID!) { customer(id: $id) { displayName email
        phone birthDate address { street postalCode city } notes { edges { node { body } } }
        orders { edges { node { number } } } tickets { edges { node { subject } } } } }""",
                                    {"id": ctx["canary_id"]})).lower()
    absent = [p for p, _, _ in PROBES if p not in admin_text]
    if absent:
        raise SystemExit(f"the canary is not fully visible to admin (probes {absent}); the oracle would be blind")
    return problems, notes


# ---------------------------------------------------------------------------- minimising

def ddmin(data, test, budget):
    """Complement-only delta debugging: a smaller `data` for which test() still holds."""
    n = 2
    while len(data) >= 2 and budget[0] > 0:
        chunk = -(-len(data) // n)
        reduced = False
        for i in range(n):
            cand = data[:i * chunk] + data[(i + 1) * chunk:]
            if not cand:
                continue
            budget[0] -= 1
            if test(cand):
                data, n, reduced = cand, max(n - 1, 2), True
                break
            if budget[0] <= 0:
                break
        if not reduced:
            if n >= len(data):
                break
            n = min(len(data), n * 2)
    return data


def minimise(req, test, budget_n):
    """Shrinks the document (when the body is a JSON request) or the raw body."""
    budget = [budget_n]
    try:
        body = json.loads(req["body"])
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("query"), str) and body["query"]:
        for key in ["extensions", "operationName", "variables"]:
            if key in body:
                cand = {k: v for k, v in body.items() if k != key}
                if test(dict(req, body=json.dumps(cand).encode())):
                    body = cand
        def with_query(q):
            return dict(req, body=json.dumps(dict(body, query=q)).encode())
        words = re.findall(r"\s*\S+", body["query"])     # words first, then characters
        q = "".join(ddmin(words, lambda ws: test(with_query("".join(ws))), budget))
        q = ddmin(q, lambda q: test(with_query(q)), budget)
        return with_query(q)
    return dict(req, body=ddmin(req["body"], lambda b: test(dict(req, body=b)), budget))


def curl_for(req, path):
    headers = dict(req["headers"])
    if req["kind"] not in ("auth", "forged") and "Authorization" in headers:
        headers["Authorization"] = "Bearer $TOKEN"
    h = " ".join("-H " + json.dumps(f"{k}: {v}")[:300] for k, v in headers.items())
    data = f" --data-binary @{path}" if req["body"] else ""
    return f"curl -s -X {req['method']} 'http://127.0.0.1:8360{req['path'][:300]}' {h}{data}"


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", type=Path)
    ap.add_argument("--documents", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--customers", type=int, default=300)
    ap.add_argument("--seconds-max", type=float, default=4 * 3600)
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "fuzz" / "out" / "fuzz-report.json")
    ap.add_argument("--continue-after-crash", action="store_true",
                    help="restart the hub when it dies and go on (the long run); the CI slice stops at a crash")
    ap.add_argument("--max-crashes", type=int, default=50, help="with --continue-after-crash: give up after this many")
    ap.add_argument("--keep", action="store_true", help="keep the hub's temporary directory (data and log)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))    # so that `finally` stops the hub
    binary = args.binary.resolve()
    if not binary.exists():
        raise SystemExit(f"no such binary: {binary}")
    policy = Policy()
    work = Path(tempfile.mkdtemp(prefix="c360-fuzz-"))
    hub = Hub(binary, work, args.customers, subject_prefix="fuzz", graphql="max_batch = 4")
    t_start = time.time()
    findings_setup = []
    report = {"binary": str(binary), "documents": args.documents, "seed": args.seed, "workers": args.workers}
    exit_code = 0
    try:
        log(f"starting the hub ({binary}) in {work} ...")
        hub.start()
        tokens = {r: hub.token(r) for r in ROLES if r != "partner"}
        partner_tokens = [hub.token("partner", p, subject=f"fuzz-partner-{p}") for p in PARTNERS]
        tokens["partner"] = partner_tokens[0]
        scopes = {r: jwt_claims(t).get("scope", "").split() for r, t in tokens.items()}
        dev_key = (work / "data" / "dev-signing.key").read_bytes()
        h, p, s = tokens["admin"].split(".")
        if base64.urlsafe_b64encode(hmac.new(dev_key, f"{h}.{p}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode() != s:
            raise SystemExit("cannot reproduce the development key's signatures; forged-token fuzzing would be wrong")
        log("planting canaries ...")
        plant_canaries(work / "data")
        deadline = time.time() + 120
        canary = None
        while time.time() < deadline:
            d = hub.gql(tokens["admin"], """query($e: String!) { customerByEmail(email: $e) { id sourceRecords { source }
                orders { edges { node { id } } } tickets { edges { node { id } } } } }""", {"e": CANARY["email"]})
            c = (d.get("data") or {}).get("customerByEmail")
            if c and {s["source"] for s in c["sourceRecords"]} >= {"CRM", "SHOP", "HELPDESK"} and c["orders"]["edges"] \
                    and c["tickets"]["edges"]:
                canary = c
                break
            time.sleep(0.5)
        if canary is None:
            raise SystemExit(f"the resolver did not link the canary records in 120 s: {d}")
        log("introspecting as every role ...")
        schemas = {}
        for role in ROLES:
            d = hub.gql(tokens[role], INTROSPECTION)
            if "data" not in d or not d["data"]:
                raise SystemExit(f"introspection as {role} failed: {json.dumps(d)[:500]}")
            schemas[role] = load_schema(d["data"])
        pools = admin_pools(hub, tokens["admin"], partner_tokens[0])
        consented = [i for i in pools["consented"] if i != canary["id"]][:2]
        others = [i for i in pools["customer_ids"] if i not in pools["consented"] and i != canary["id"]]
        protected = [canary["id"]] + consented + others[:2]
        mutable = [i for i in pools["customer_ids"] if i not in protected]
        ctx = dict(pools, port=hub.port, tokens=tokens, partner_tokens=partner_tokens, scopes=scopes,
                   schemas=schemas, canary_id=canary["id"], canary_order_id=canary["orders"]["edges"][0]["node"]["id"],
                   canary_ticket_id=canary["tickets"]["edges"][0]["node"]["id"], protected_ids=protected,
                   mutable_ids=mutable, erasable_ids=mutable[-20:], dev_key=dev_key, policy=policy,
                   all_type_names=sorted(schemas["admin"]["types"]))
        ctx["canary_gids_lower"] = [canary["id"].lower(), ctx["canary_order_id"].lower(),
                                    ctx["canary_ticket_id"].lower()]
        ctx["customer_ids"] = [i for i in ctx["customer_ids"] if i != canary["id"]]
        for p_ in schema_policy_findings(ctx, policy):
            findings_setup.append({"kind": "schema-policy-mismatch", "detail": p_})
        problems, notes = verify_canary_oracle(hub, ctx, policy)
        for n in notes:
            log("  oracle " + n)
        for p_ in problems:
            findings_setup.append({"kind": "canary-leak", "detail": p_})
        report["oracle"] = notes
        before = baseline(hub, ctx)
        CTX.clear()
        CTX.update(ctx)

        # -- fuzzing ---------------------------------------------------------------------
        W = max(1, args.workers)
        per = [args.documents // W + (1 if w < args.documents % W else 0) for w in range(W)]
        mpc = mp.get_context("fork")
        progress = mpc.Array("q", W)
        stop = mpc.Event()
        results = mpc.Queue()
        crashq = mpc.Queue()
        crashes = mpc.Value("q", 0)
        restarted = mpc.Value("q", 0)
        CTX["restarted"] = [restarted]
        t0 = time.time()
        deadline = t_start + args.seconds_max
        log(f"fuzzing: {args.documents} documents, seed {args.seed}, {W} workers (setup took {t0 - t_start:.1f} s)")
        procs = [mpc.Process(target=worker, args=(w, per[w], args.seed, deadline, progress, stop, results, crashes,
                                                  crashq, args.continue_after_crash), daemon=True)
                 for w in range(W)]
        for p_ in procs:
            p_.start()
        stats = {}
        crash_events = []      # exit status, log tail
        crash_reports = []     # (worker, its last requests) from workers whose request got no answer
        last_print = t0
        rss_start = rss_max = hub.rss_mib()
        while len(stats) < W:
            if hub.alive():
                try:
                    rss_max = max(rss_max, hub.rss_mib())
                except OSError:
                    pass
            try:
                w, st = results.get(timeout=0.2)
                stats[w] = st
            except queue.Empty:
                pass
            while True:
                try:
                    crash_reports.append(crashq.get_nowait())
                except queue.Empty:
                    break
            if not hub.alive() and (not crash_events or crash_events[-1]["restarted"]):
                code = hub.proc.returncode
                tail = re.sub(r"\x1b\[[0-9;]*m", "", hub.log_path.read_text(errors="replace")[-1500:])
                crash_events.append({"exit_status": code, "at_documents": sum(progress[:]), "log_tail": tail,
                                     "last_requests": {}, "restarted": False})
                crashes.value += 1
                log(f"THE HUB DIED (exit status {code}) after about {sum(progress[:])} documents")
                if args.continue_after_crash and len(crash_events) <= args.max_crashes:
                    time.sleep(1)       # let the workers hand in their last requests
                    hub.start()
                    crash_events[-1]["restarted"] = True
                    restarted.value = crashes.value
                else:
                    stop.set()
            if time.time() - last_print > 10:
                done = sum(progress[:])
                el = time.time() - t0
                log(f"  {done:,} / {args.documents:,} documents, {done / el:.0f}/s, {el:.0f} s"
                    + (f", {len(crash_events)} crashes" if crash_events else ""))
                last_print = time.time()
            if time.time() > deadline + 120:
                stop.set()
            if not any(p_.is_alive() for p_ in procs) and results.empty():
                time.sleep(1)
                if results.empty():
                    break
        for p_ in procs:
            p_.join(30)
        while True:
            try:
                crash_reports.append(crashq.get_nowait())
            except queue.Empty:
                break
        elapsed = time.time() - t0
        hub_died = bool(crash_events)

        # -- aggregate -------------------------------------------------------------------
        agg = {"sent": 0, "by_role": {}, "by_kind": {}, "status": {}, "codes": {}, "bomb_seconds": 0.0}
        findings = {}
        for w in sorted(stats):
            st = stats[w]
            if st.get("crash"):
                findings_setup.append({"kind": "fuzzer-error", "detail": st["crash"]})
            agg["sent"] += st["sent"]
            agg["bomb_seconds"] = max(agg["bomb_seconds"], st.get("bomb_seconds", 0.0))
            for key in ["by_role", "by_kind", "status", "codes"]:
                for k, v in st[key].items():
                    agg[key][k] = agg[key].get(k, 0) + v
            for sig, f in st["findings"].items():
                g = findings.setdefault(sig, {"kind": f["kind"], "count": 0, "examples": []})
                g["count"] += f["count"]
                g["examples"] = (g["examples"] + f["examples"])[:3]
            hub_died = hub_died or st["hub_down"]

        # -- the hub afterwards ----------------------------------------------------------
        after = {}
        if crash_events:
            first = crash_events[0]
            # Requests without an answer first (the first crashes'), then every worker's last ones.
            pending = [x for _, last in crash_reports[:6] for x in reversed(last)] + \
                [x for w in sorted(stats) for x in reversed(stats[w]["last"])]
            cands, seen = [], set()
            for x in pending:
                key = (x["worker"], x["index"])
                if key not in seen:
                    seen.add(key)
                    cands.append(deserialise(x))
            findings["hub-died | the hub process exited"] = {
                "kind": "hub-died", "count": len(crash_events), "exit_status": first["exit_status"],
                "log_tail": first["log_tail"], "at_documents": [e["at_documents"] for e in crash_events],
                "reproducer": triage_crash(hub, cands),
                "in_flight": [{"worker": c_["worker"], "kind": c_["kind"], "role": c_["role"], "method": c_["method"],
                               "path": c_["path"][:200], "body": c_["body_text"][:400]}
                              for _, last in crash_reports[:3] for c_ in last[-3:]]}
            for sig in [k for k in findings if k.startswith("no-response")]:
                findings[sig]["note"] = "the hub died during the run: requests in flight got no answer"
        if not hub.alive():
            after["alive"] = False
        else:
            after["alive"] = True
            ws = websocket_probes(ctx["port"], ctx["tokens"]["admin"])
            after["websocket"] = ws
            for name, problem in ws.items():
                if problem != "ok":
                    findings[f"websocket | {name}"] = {"kind": "websocket", "count": 1, "detail": problem}
            status, _ = hub.get("/readyz")
            after["readyz"] = status
            if status != 200:
                findings["after | /readyz"] = {"kind": "not-ready-after", "count": 1, "detail": status}
            status, text = hub.get("/metrics")
            after["metrics"] = status
            if status != 200 or b"c360_" not in text:
                findings["after | /metrics"] = {"kind": "metrics-broken-after", "count": 1, "detail": status}
            now_ = baseline(hub, ctx)
            for role in ROLES:
                if now_[role] != before[role]:
                    findings[f"after | baseline {role}"] = {
                        "kind": "answer-changed", "count": 1,
                        "before": json.dumps(before[role])[:3000], "after": json.dumps(now_[role])[:3000]}
            after["baseline"] = "same" if all(now_[r] == before[r] for r in ROLES) else "changed"
        logtext = hub.log_path.read_text(errors="replace")
        for pat in ["panicked", "overflowed its stack", "fatal runtime error"]:
            n = logtext.count(pat)
            if n:
                lines = [l for l in logtext.splitlines() if pat in l][:5]
                findings[f"log | {pat}"] = {"kind": "log-" + pat.split()[0], "count": n, "lines": lines}
        after["log_errors"] = sum(1 for l in logtext.splitlines() if " ERROR" in l)
        after["log_error_samples"] = [re.sub(r"\x1b\[[0-9;]*m", "", l)[:300]
                                      for l in logtext.splitlines() if " ERROR" in l][:10]

        # -- minimise --------------------------------------------------------------------
        rdir = Path(str(args.report) + ".d")
        shutil.rmtree(rdir, ignore_errors=True)
        rdir.mkdir(parents=True, exist_ok=True)
        n_min = 0
        for sig, f in sorted(findings.items()):
            if not f.get("examples") or not hub.alive() or (hub_died and f["kind"] == "no-response"):
                continue
            ex = f["examples"][0]
            req = deserialise(ex["request"])
            if n_min < 12:
                n_min += 1
                client = Client(hub.port)

                def reproduces(cand, sig=sig, client=client):
                    st_, hd, bd = client.send(cand)
                    return any(f"{k} | {d}" == sig for k, d in check(cand, st_, hd, bd, ctx))

                if reproduces(req):
                    small = minimise(req, reproduces, 150)
                    st_, _, bd = client.send(small)
                    f["minimal"] = {"request": serialise(small), "status": st_,
                                    "response": bd[:2000].decode("utf-8", "replace")}
                    req = small
                else:
                    f["minimal"] = "did not reproduce on its own"
                client.close()
            path = rdir / f"finding-{len(list(rdir.iterdir())) + 1}.body"
            path.write_bytes(req["body"])
            f["curl"] = curl_for(req, path) + (f"   # TOKEN: c360 token --role {req['role']}"
                                               if req["role"] in ROLES else "")

        crash = findings.get("hub-died | the hub process exited")
        if crash and isinstance(crash.get("reproducer"), dict):
            req = deserialise(crash["reproducer"]["request"])
            path = rdir / "crash.body"
            path.write_bytes(req["body"])
            crash["curl"] = curl_for(req, path) + (f"   # TOKEN: c360 token --role {req['role']}"
                                                   if req["role"] in ROLES else "")

        # No request may take the hub's memory (introspection once took 23 GB): a bound far
        # above what the largest body (1 MiB) per worker can explain.
        if rss_max > rss_start + 512:
            findings["rss | the hub grew by more than 512 MiB"] = {
                "kind": "memory", "count": 1, "detail": f"{rss_start:.0f} -> {rss_max:.0f} MiB"}
        all_findings = findings_setup + [dict(f, signature=sig) for sig, f in sorted(findings.items())]
        summary = {
            "documents_sent": agg["sent"], "documents_requested": args.documents, "seconds": round(elapsed, 1),
            "rate_per_second": round(agg["sent"] / elapsed, 1) if elapsed else None,
            "by_role": dict(sorted(agg["by_role"].items())), "by_kind": dict(sorted(agg["by_kind"].items())),
            "status": dict(sorted(agg["status"].items())),
            "error_codes": dict(sorted(agg["codes"].items(), key=lambda kv: -kv[1])),
            "after": after, "hub_died": hub_died, "slowest_bomb_seconds": round(agg["bomb_seconds"], 2),
            "rss_mib": {"start": round(rss_start), "max": round(rss_max)},
            "findings": len(all_findings), "setup_seconds": round(t0 - t_start, 1),
        }
        report.update(summary=summary, findings=all_findings)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print_summary(summary, all_findings, args.report)
        if all_findings:
            exit_code = 1
        elif agg["sent"] < args.documents:
            log(f"stopped after {agg['sent']} of {args.documents} documents (--seconds-max)")
            exit_code = 3
    finally:
        hub.close(keep=args.keep or exit_code)
    sys.exit(exit_code)


def triage_crash(hub, candidates):
    """Replays the requests in flight before a crash one at a time on a restarted hub (same
    data) until one kills it; then shrinks that request, restarting the hub after each kill."""
    def kills(req):
        if not hub.alive():
            hub.start()
        c = Client(hub.port, timeout=30)
        c.send(req)
        c.close()
        time.sleep(0.3)
        return not hub.alive()

    try:
        for req in candidates:
            if kills(req):
                small = minimise(req, kills, 60)
                return {"request": serialise(small), "original": serialise(req),
                        "note": "each of these kills a fresh hub on its own"}
        return "no single request of the last ones kills the hub on its own"
    except SystemExit as e:
        return f"triage stopped: {e}"
    finally:
        if not hub.alive():
            try:
                hub.start()
            except SystemExit:
                pass


def print_summary(s, findings, report):
    print(f"\n== c360 fuzz: {s['documents_sent']:,} documents in {s['seconds']} s ({s['rate_per_second']}/s), "
          f"setup {s['setup_seconds']} s")
    print("by role:   " + ", ".join(f"{k} {v:,}" for k, v in s["by_role"].items()))
    print("by kind:   " + ", ".join(f"{k} {v:,}" for k, v in s["by_kind"].items()))
    print(f"bombs:     the slowest answered in {s['slowest_bomb_seconds']} s; hub RSS {s['rss_mib']['start']} MiB at the "
          f"start, at most {s['rss_mib']['max']} MiB")
    print("status:    " + ", ".join(f"{k} {v:,}" for k, v in s["status"].items()))
    print("codes:     " + ", ".join(f"{k} {v:,}" for k, v in s["error_codes"].items()))
    print(f"after:     hub {'DIED' if s['hub_died'] else 'alive'}, {json.dumps(s['after'], ensure_ascii=False)[:400]}")
    print(f"findings:  {len(findings)}")
    for f in findings:
        print(f"  - [{f['kind']}] x{f.get('count', 1)}  {f.get('signature', f.get('detail', ''))[:150]}")
        m = f.get("minimal") or f.get("reproducer")
        if isinstance(m, dict):
            print(f"      minimal: {m['request']['method']} {m['request']['path'][:80]} {m['request']['body_text'][:200]!r}")
            print(f"      -> {m.get('status', 'the hub dies')} {m.get('response', '')[:200]!r}")
        elif f.get("examples"):
            ex = f["examples"][0]
            print(f"      e.g.: {ex['request']['method']} {ex['request']['path'][:80]} {ex['request']['body_text'][:200]!r}")
            print(f"      -> {ex['status']} {ex['response'][:200]!r}")
    print(f"report:    {report}")


if __name__ == "__main__":
    main()
