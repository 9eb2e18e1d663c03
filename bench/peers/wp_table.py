#!/usr/bin/env python3
"""wp_table.py — a side-by-side Markdown table of libnode's and SciPy's work-precision
runs, from the CSV files of bench_ode and scipy_workprecision.py:
    ./build/bench_ode --csv libnode_wp.csv
    /usr/bin/python3 bench/peers/scipy_workprecision.py --csv scipy_wp.csv
    /usr/bin/python3 bench/peers/wp_table.py libnode_wp.csv scipy_wp.csv [--tols 1e-3,1e-6,1e-9,1e-12]
Columns per pair (libnode method vs SciPy method): NFE, rejected steps, final-state
max-norm error and time per solve, at the same tolerance (rtol = atol = tol).
"""
import argparse
import csv

PAIRS = (("dopri5", "RK45"), ("dop853", "DOP853"))


def load(path):
    rows = {}
    with open(path) as fh:
        for r in csv.DictReader(fh):
            rows[(r["problem"], r["method"], float(r["tol"]))] = r
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("libnode_csv")
    ap.add_argument("scipy_csv")
    ap.add_argument("--tols", default="1e-3,1e-6,1e-9,1e-12")
    a = ap.parse_args()
    lib, sci = load(a.libnode_csv), load(a.scipy_csv)
    tols = [float(x) for x in a.tols.split(",")]
    problems = []
    for (p, _, _) in lib:
        if p not in problems:
            problems.append(p)
    for ours, theirs in PAIRS:
        print(f"\n| problem | tol | {ours} NFE | {theirs} NFE | {ours} rej | {theirs} rej "
              f"| {ours} error | {theirs} error | {ours} µs | {theirs} µs |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in problems:
            for tol in tols:
                l = next((v for (pp, m, t), v in lib.items()
                          if pp == p and m == ours and abs(t / tol - 1) < 1e-6), None)
                s = next((v for (pp, m, t), v in sci.items()
                          if pp == p and m == theirs and abs(t / tol - 1) < 1e-6), None)
                if not l or not s:
                    continue
                print(f"| {p} | {tol:.0e} | {l['nfe']} | {s['nfe']} | {l['nreject']} | "
                      f"{s['nreject']} | {float(l['err']):.2e} | {float(s['err']):.2e} | "
                      f"{1e6 * float(l['time_min_s']):.0f} | {1e6 * float(s['time_min_s']):.0f} |")


if __name__ == "__main__":
    main()
