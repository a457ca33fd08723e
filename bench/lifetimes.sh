#!/usr/bin/env bash
# c360's insight fits against the Python `lifetimes` package on the CDNOW sample, in one
# run: installs lifetimes 0.11.3 into bench/.venv (pip), times both (median of the runs),
# prints the ratios. A benchmark, not a test: it is not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet "lifetimes==0.11.3"
fi
rust="$(cargo bench --quiet --bench insights 2>/dev/null)"
echo "$rust"
python="$(bench/.venv/bin/python bench/lifetimes_fit.py 20)"
echo "$python"
ms() { echo "$rust" | awk -v what="$1" '$0 ~ what { for (i = 1; i <= NF; i++) if ($i == "ms") { print $(i-1); exit } }'; }
py() { echo "$python" | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
python3 - "$(ms 'BG/NBD fit')" "$(py bgnbd_fit_ms)" "$(ms 'Gamma-Gamma fit')" "$(py gamma_gamma_fit_ms)" <<'PY'
import sys
c_bg, p_bg, c_gg, p_gg = map(float, sys.argv[1:])
print(f"BG/NBD fit:      c360 {c_bg:.3f} ms, lifetimes {p_bg:.3f} ms: {p_bg / c_bg:.0f}x")
print(f"Gamma-Gamma fit: c360 {c_gg:.3f} ms, lifetimes {p_gg:.3f} ms: {p_gg / c_gg:.0f}x")
PY
