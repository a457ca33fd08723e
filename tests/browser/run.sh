#!/usr/bin/env bash
# The playground's browser test: starts the given hub binary on a free loopback port with
# a fresh data directory, and drives the page it serves in headless Chromium.
#
#   tests/browser/run.sh <path-to-c360-binary>
#
# Needs Node 20+ and npm (playwright-core from npm, no browser download) and Debian's
# chromium (installed with apt-get when missing). Screenshots, the downloaded CSV and a
# JSON report go to tests/browser/artifacts/. With E2E_README_SCREENSHOT=1 it also
# renews playground/screenshot.png.
set -euo pipefail

bin=${1:?usage: tests/browser/run.sh <path-to-c360-binary>}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -x "$bin" ] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get update -qq
  timeout 900 apt-get install -y -qq chromium >/dev/null
fi

(cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null)

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
work=$(mktemp -d)
hub_pid=
cleanup() {
  status=$?
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
    kill "$hub_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$hub_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$hub_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/hub.log" ]; then
    echo "run.sh: the hub's last log lines:" >&2
    tail -n 30 "$work/hub.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT INT TERM

# Partners may introspect here (off by default), and groups under 300 customers are
# withheld from analysts, so that the demo data has suppressed segments to mark.
cat > "$work/c360.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$work/data"

[graphql]
introspection_roles = ["admin", "agent", "frontend", "analyst", "partner"]

[insights]
min_group_size = 300
TOML

# C360_* variables would override the configuration: the hub gets none of the caller's.
unset_c360=()
for name in $(compgen -e | grep '^C360_' || true); do unset_c360+=(-u "$name"); done
env "${unset_c360[@]}" "$bin" --config "$work/c360.toml" serve >"$work/hub.log" 2>&1 &
hub_pid=$!

base="http://127.0.0.1:$port"
echo "run.sh: hub pid $hub_pid at $base; waiting for /readyz"
node -e "
const deadline = Date.now() + 120000;
(async () => {
  for (;;) {
    try { if ((await fetch('$base/readyz')).ok) return; } catch {}
    if (Date.now() > deadline) { console.error('run.sh: the hub was not ready within 120 s'); process.exit(1); }
    await new Promise((r) => setTimeout(r, 250));
  }
})();
"
kill -0 "$hub_pid" 2>/dev/null || { echo "run.sh: the hub exited" >&2; exit 1; }

E2E_C360_BIN="$bin" E2E_C360_CONFIG="$work/c360.toml" \
  timeout 240 node "$here/e2e.mjs" "$base"
