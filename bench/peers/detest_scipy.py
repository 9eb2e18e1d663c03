#!/usr/bin/python3
"""detest_scipy.py -- SciPy's solve_ivp (RK23, RK45, DOP853) on the 25 non-stiff DETEST
problems of bench/bench_detest.c: same problems (detest_problems.py), tolerances
(rtol = atol = tol), references (bench/data/detest_ref.csv) and error measure
max_i |y_i(20) - ref_i| / max(1, |ref_i|).  Writes the CSV that detest_compare.py reads:
problem, method, tol, nfe, nsteps (attempted), nreject, error, status.

Run:  /usr/bin/python3 bench/peers/detest_scipy.py --csv scipy_detest.csv
          [--tols decade|quarter|eighth] [--range LO,HI] [--methods RK23,RK45,DOP853]
          [--problems A1,B2]
      One core: quarter decades 1e-3 ... 1e-10 ~1.5 minutes, eighth decades ~4 minutes;
      bench/data/detest_scipy.csv was made with --tols eighth --range 2,12 (~25 minutes,
      mostly RK23 at the tightest tolerances).
"""
import argparse
import csv
import math
import os
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

import detest_problems as dp

STAGES = {"RK23": 3, "RK45": 6, "DOP853": 12}   # f evaluations per attempted step
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REF = os.path.join(HERE, "..", "data", "detest_ref.csv")


def solve(f, y0, method, tol):
    fun = lambda t, y: np.array(f(t, y, math))
    return solve_ivp(fun, (0.0, dp.T1), np.array(y0, dtype=float), method=method,
                     rtol=tol, atol=tol)


def run_one(name, f, y0, ref, method, tol):
    sol = solve(f, y0, method, tol)
    if sol.status != 0:
        return dict(problem=name, method=method, tol=tol, nfe=sol.nfev, nsteps=-1,
                    nreject=-1, error=float("nan"), status=sol.message)
    naccept = len(sol.t) - 1
    # nfev = f(t0, y0) + 1 for the initial step's guess + STAGES per attempted step
    nsteps = (sol.nfev - 2) // STAGES[method]
    return dict(problem=name, method=method, tol=tol, nfe=sol.nfev, nsteps=nsteps,
                nreject=nsteps - naccept, error=dp.scaled_error(sol.y[:, -1], ref),
                status="ok")


def check_definitions(refs):
    """The Python definitions against the references: DOP853 at 1e-13 within 1e-10."""
    worst, bad = 0.0, False
    for name, f, y0 in dp.PROBLEMS:
        sol = solve(f, y0, "DOP853", 1e-13)
        err = dp.scaled_error(sol.y[:, -1], refs[name]) if sol.status == 0 else math.inf
        worst = max(worst, err)
        if not err <= 1e-10:
            print(f"definition check: {name}: DOP853 at 1e-13 gives error {err:.3e}",
                  file=sys.stderr)
            bad = True
    print(f"definition check (DOP853 at 1e-13 vs references): worst error {worst:.2e}: "
          f"{'FAILED' if bad else 'ok'}", file=sys.stderr)
    return not bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", metavar="FILE", help="write the results here (default stdout)")
    ap.add_argument("--tols", choices=tuple(dp.GRIDS), default="quarter")
    ap.add_argument("--range", default="3,10", metavar="LO,HI",
                    help="tolerances 10^-LO ... 10^-HI (default 3,10; a wider range than "
                    "libnode's lets every libnode point find SciPy points on both sides)")
    ap.add_argument("--methods", default="RK23,RK45,DOP853")
    ap.add_argument("--problems", default=None)
    ap.add_argument("--ref", default=DEFAULT_REF)
    a = ap.parse_args()
    refs = dp.load_ref(a.ref)
    if not check_definitions(refs):
        sys.exit(1)
    names = a.problems.split(",") if a.problems else dp.NAMES
    keys = ["problem", "method", "tol", "nfe", "nsteps", "nreject", "error", "status"]
    out = open(a.csv, "w", newline="") if a.csv else sys.stdout
    w = csv.DictWriter(out, fieldnames=keys)
    w.writeheader()
    t0 = time.time()
    for name, f, y0 in dp.PROBLEMS:
        if name not in names:
            continue
        for method in a.methods.split(","):
            for tol in dp.tolerances(a.tols, *(float(x) for x in a.range.split(","))):
                r = run_one(name, f, y0, refs[name], method, tol)
                r["tol"] = f"{tol:.6g}"
                r["error"] = f"{r['error']:.6e}"
                w.writerow(r)
            out.flush()
        if a.csv:
            print(f"{name} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    if a.csv:
        out.close()


if __name__ == "__main__":
    main()
