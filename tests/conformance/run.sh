#!/usr/bin/env bash
# GraphQL over HTTP conformance: starts a hub on a free port over a fresh embedded
# deployment, runs the graphql-http audit suite (tests/conformance/audit.mjs) against it
# with an admin token, and fails on any MUST or SHOULD not met. Needs node and npm.
# Usage: tests/conformance/run.sh [path/to/c360]  (default: target/release/c360)
set -euo pipefail
c360="$(realpath "${1:-$(dirname "$0")/../../target/release/c360}")"
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export C360_DATA_DIR="$data" C360_SEED__CUSTOMERS=50 C360_INSIGHTS__REFRESH_INTERVAL=0s C360_INSIGHTS__UPDATE_INTERVAL=0s
"$c360" serve --listen "127.0.0.1:$port" > "$data/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 120); do
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$port/readyz" 2> /dev/null && break
  kill -0 $server 2>/dev/null || { cat "$data/serve.log" >&2; exit 1; }
  sleep 0.5
done
token="$("$c360" token --role admin | tail -1)"
node audit.mjs "http://127.0.0.1:$port/graphql" "$token"
