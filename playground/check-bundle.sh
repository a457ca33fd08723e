#!/usr/bin/env bash
# Fails when the playground's unit tests fail (`npm test`), or when the committed bundle
# (playground/dist) is not what its sources and lockfile build: `npm ci`, `npm run build`,
# then no change and no new file under dist/.
#
#   playground/check-bundle.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
cd "$here"

timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null
timeout 300 npm test --silent
timeout 600 npm run build --silent >/dev/null

cd "$repo"
status=0
if ! git diff --exit-code --stat -- playground/dist; then
  echo "check-bundle: playground/dist differs from what its sources build: run 'npm ci && npm run build' in playground/ and commit dist/" >&2
  status=1
fi
untracked=$(git ls-files --others --exclude-standard -- playground/dist)
if [ -n "$untracked" ]; then
  echo "check-bundle: files in playground/dist that are not committed:" >&2
  echo "$untracked" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "check-bundle: playground/dist matches its sources"
exit "$status"
