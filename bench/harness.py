"""What the long-running bench commands share: a hub of their own on a free port.

`bench/fuzz/fuzz.py` and `bench/soak/soak.py` import it (only the standard library). The hub
runs from a fresh data directory with `customers` seeded, identity resolution every second,
introspection for every role and partners' rate limits off; `graphql` adds lines to the
`[graphql]` table.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, binary, workdir, customers, *, subject_prefix, graphql=""):
        self.binary, self.dir = str(binary), Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.subject_prefix = subject_prefix
        self.cfg = self.dir / "c360.toml"
        self.cfg.write_text(f"""listen = "127.0.0.1:{self.port}"
data_dir = "{self.dir / 'data'}"
[seed]
customers = {customers}
[identity]
resolve_interval = "1s"
[graphql]
introspection_roles = ["admin", "agent", "frontend", "analyst", "partner"]
{graphql}
[rate_limits.roles.partner]
operations_per_second = 0
burst = 0
cost_per_second = 0
cost_burst = 0
""")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("C360_")}
        self.log_path = self.dir / "hub.log"
        self.proc = None
        self.starts = 0

    def start(self, timeout=900):
        """Starts the hub (appending to hub.log) and waits until /readyz answers 200."""
        self.starts += 1
        logf = open(self.log_path, "ab")
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        logf.write(f"\n===== start {self.starts} at {stamp} =====\n".encode())
        logf.flush()
        self.proc = subprocess.Popen([self.binary, "--config", str(self.cfg), "serve"], cwd=self.dir, env=self.env,
                                     stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the hub exited at start (code {self.proc.returncode}); see {self.log_path}")
            status, _ = self.get("/readyz", timeout=5)
            if status == 200:
                return self
            time.sleep(0.2)
        raise SystemExit(f"the hub did not get ready in {timeout} s; see {self.log_path}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()

    def close(self, keep):
        """Stops the hub; keeps its directory (data and log) when `keep`, removes it otherwise."""
        self.stop()
        if keep:
            print(f"hub data and log kept in {self.dir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def rss_mib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def token(self, role, partner=None, subject=None, ttl="24h"):
        """A token minted by `c360 token` with the hub's development key (24h: the longest
        the hub accepts by default, auth.max_token_lifetime)."""
        cmd = [self.binary, "--config", str(self.cfg), "token", "--role", role, "--ttl", ttl,
               "--subject", subject or f"{self.subject_prefix}-{role}"]
        if partner:
            cmd += ["--partner", partner]
        return subprocess.run(cmd, cwd=self.dir, env=self.env, check=True, capture_output=True,
                              text=True).stdout.strip()

    def get(self, path, timeout=10):
        """(status, body bytes); status None when the hub did not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except Exception as e:
            return None, str(e).encode()

    def post(self, token, body):
        """POSTs a JSON body (text) to /graphql: (status, decoded response)."""
        req = urllib.request.Request(self.url, data=body.encode(), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def gql(self, token, query, variables=None):
        """The decoded response to one operation."""
        return self.post(token, json.dumps({"query": query, "variables": variables or {}}))[1]
