#!/usr/bin/env python3
"""The Python `lifetimes` fits on the CDNOW sample, timed like `cargo bench --bench insights`
(median of the runs): the baseline the issue measures c360's fit against.

    bash bench/lifetimes.sh      # installs lifetimes in bench/.venv, runs both, prints the ratio
"""
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def summary():
    """x, t_x, T (weeks) and the repeat mean spend as of 1997-09-30, the reference README's way."""
    rows = pd.read_csv(ROOT / "tests/fixtures/cdnow/CDNOW_sample.txt", sep=r"\s+", header=None,
                       names=["master", "sample", "date", "cds", "dollars"], dtype={"date": str})
    rows["day"] = pd.to_datetime(rows["date"], format="%Y%m%d")
    end = pd.Timestamp("1997-09-30")
    rows = rows[rows["day"] <= end]
    days = rows.groupby(["sample", "day"], as_index=False)["dollars"].sum().sort_values(["sample", "day"])
    out = []
    for _, g in days.groupby("sample"):
        first, last = g["day"].iloc[0], g["day"].iloc[-1]
        x = len(g) - 1
        out.append((x, (last - first).days / 7, (end - first).days / 7, g["dollars"].iloc[1:].mean() if x else 0.0))
    return pd.DataFrame(out, columns=["frequency", "recency", "T", "monetary_value"])


def timed(fit):
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, result


def main():
    data = summary()
    bgnbd_ms, bgf = timed(lambda: BetaGeoFitter(penalizer_coef=0.0).fit(data["frequency"], data["recency"], data["T"]))
    repeat = data[data["frequency"] > 0]
    spend_ms, ggf = timed(lambda: GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"]))
    print(json.dumps({
        "customers": len(data),
        "bgnbd_fit_ms": round(bgnbd_ms, 3),
        "gamma_gamma_fit_ms": round(spend_ms, 3),
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
