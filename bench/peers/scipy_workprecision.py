#!/usr/bin/python3
"""scipy_workprecision.py -- SciPy's solve_ivp (RK45, DOP853) on the work-precision
problems of bench/bench_ode.c: same problems, tolerances (rtol = atol = tol), error
measure (max-norm of the final-state error) and reference values as the C program.

Run:  /usr/bin/python3 bench/peers/scipy_workprecision.py [--quick] [--csv FILE]
                                                          [--compare LIBNODE_CSV]
      /usr/bin/python3 bench/peers/scipy_workprecision.py --make-ref [--dps N]
--compare reads the CSV of `bench_ode --csv FILE` and prints, per problem, libnode's
NFE against SciPy's NFE interpolated (log-log) to the same achieved error, as Markdown.
--make-ref recomputes the reference values with mpmath (Taylor-series odefun, N digits).
"""
import argparse
import csv
import math
import statistics
import sys
import time

import numpy as np

# ---- problems: the same definitions as bench/bench_ode.c ----------------------------

# Van der Pol, mu = 1.
VDP_MU = 1.0


def f_vanderpol(t, y):
    return np.array([y[1], VDP_MU * (1.0 - y[0] * y[0]) * y[1] - y[0]])


# Lotka-Volterra x' = a x - b x y, y' = -c y + d x y.
LV_A, LV_B, LV_C, LV_D = 1.5, 1.0, 3.0, 1.0


def f_lotka(t, y):
    return np.array([LV_A * y[0] - LV_B * y[0] * y[1], -LV_C * y[1] + LV_D * y[0] * y[1]])


# Arenstorf orbit (HNW I, eq. (0.1) of Sec. II.0).  mu and 1 - mu are the doubles that
# the C program computes: the orbit is so sensitive that rounding 1 - mu moves the final
# state by ~5e-11, so the reference is for exactly these double coefficients.
AR_MU = 0.012277471
AR_MUP = 1.0 - AR_MU


def f_arenstorf(t, y):
    y1, y2, v1, v2 = y
    r1 = (y1 + AR_MU) ** 2 + y2 * y2
    r2 = (y1 - AR_MUP) ** 2 + y2 * y2
    d1 = r1 * math.sqrt(r1)
    d2 = r2 * math.sqrt(r2)
    return np.array([v1, v2,
                     y1 + 2.0 * v2 - AR_MUP * (y1 + AR_MU) / d1 - AR_MU * (y1 - AR_MUP) / d2,
                     y2 - 2.0 * v1 - AR_MUP * y2 / d1 - AR_MU * y2 / d2])


# Two-body problem, eccentricity 0.5, starting at pericentre (a = 1, GM = 1, period 2 pi).
TB_E = 0.5


def f_twobody(t, y):
    r2 = y[0] * y[0] + y[1] * y[1]
    r3 = r2 * math.sqrt(r2)
    return np.array([y[2], y[3], -y[0] / r3, -y[1] / r3])


AR_T = 17.0652165601579625588917206249

# name, f, t1, y0, reference y(t1).  How the references were obtained: see --make-ref
# and the comment above `problems[]` in bench/bench_ode.c (same numbers).
PROBLEMS = [
    ("vanderpol", f_vanderpol, 20.0, [2.0, 0.0],
     [2.00814976217494859201449067303, -0.0425088752732021469859250798290]),
    ("lotkavolterra", f_lotka, 15.0, [1.0, 1.0],
     [6.34191838849216293038450304716, 0.732320971837937517944365738303]),
    ("arenstorf", f_arenstorf, AR_T, [0.994, 0.0, 0.0, -2.00158510637908252240537862224],
     [0.993999999999908840338072090236, -3.03094302298241833e-13,
      -4.92853658105505273e-11, -2.00158510639327023849822360732]),
    ("twobody", f_twobody, 20.0, [1.0 - TB_E, 0.0, 0.0, math.sqrt((1.0 + TB_E) / (1.0 - TB_E))],
     [-0.57804329530353612327514583616, 0.863384000919419280133573065247,
      -0.959508373038072735626449003247, -0.0650491512671209016771935462988]),
]

TOLS = [10.0 ** -k for k in range(3, 13)]
QUICK_TOLS = [1e-3, 1e-6, 1e-9]
SUMMARY_MAX_ERR = 1e-2   # above this the Arenstorf orbit is lost: leave such points out
STAGES = {"RK45": 6, "DOP853": 12}   # f evaluations per attempted step (FSAL counted once)


# ---- running ----------------------------------------------------------------------

def run_one(name, f, t1, y0, ref, method, tol, min_time, max_reps):
    from scipy.integrate import solve_ivp
    times = []
    reps = 0
    total = 0.0
    while True:
        t0 = time.perf_counter()
        sol = solve_ivp(f, (0.0, t1), y0, method=method, rtol=tol, atol=tol)
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
        reps += 1
        if total >= min_time or reps >= max_reps:
            break
    if sol.status != 0:
        return dict(problem=name, method=method, tol=tol, nfe=sol.nfev, naccept=-1,
                    nreject=-1, err=float("nan"), time_med_s=statistics.median(times),
                    time_min_s=min(times), status=sol.message)
    yend = sol.y[:, -1]
    err = max(abs(float(yend[i]) - ref[i]) for i in range(len(ref)))
    naccept = len(sol.t) - 1
    # nfev = f(t0, y0) + 1 for the initial step guess + STAGES per attempted step.
    nreject = (sol.nfev - 2) // STAGES[method] - naccept
    return dict(problem=name, method=method, tol=tol, nfe=sol.nfev, naccept=naccept,
                nreject=nreject, err=err, time_med_s=statistics.median(times),
                time_min_s=min(times), status="ok")


def run_all(quick, csv_path):
    tols = QUICK_TOLS if quick else TOLS
    rows = []
    for name, f, t1, y0, ref in PROBLEMS:
        print(f"\n== {name}: t in [0, {t1:.17g}], y0 = {y0}")
        print(f"{'method':8s} {'tol':>7s} {'nfe':>8s} {'accept':>7s} {'reject':>6s} "
              f"{'err':>10s} {'time_ms':>10s}")
        for method in ("RK45", "DOP853"):
            for tol in tols:
                r = run_one(name, f, t1, y0, ref, method, tol,
                            0.0 if quick else 0.05, 1 if quick else 50)
                rows.append(r)
                print(f"{method:8s} {tol:7.0e} {r['nfe']:8d} {r['naccept']:7d} "
                      f"{r['nreject']:6d} {r['err']:10.3e} {1e3 * r['time_med_s']:10.3f}"
                      + ("" if r["status"] == "ok" else "  " + r["status"]))
    if csv_path:
        keys = ["problem", "method", "tol", "nfe", "naccept", "nreject", "err",
                "time_med_s", "time_min_s", "status"]
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({k: (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in keys})
        print(f"\nwrote {csv_path}")
    return rows


# ---- comparison with libnode's CSV ------------------------------------------------

def interp_nfe(curve, err):
    """NFE of a work-precision curve [(err, nfe), ...] at the given error, by
    piecewise-linear interpolation of log(nfe) against log(err); None outside."""
    pts = sorted((math.log10(e), math.log10(n)) for e, n in curve if e > 0 and math.isfinite(e))
    if len(pts) < 2:
        return None
    x = math.log10(err)
    if x < pts[0][0] or x > pts[-1][0]:
        return None
    # The curve may be non-monotone in error (tolerance proportionality is not exact);
    # take the cheapest segment that brackets the error.
    best = None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            y = y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            best = y if best is None else min(best, y)
    return 10.0 ** best


def compare(rows, libnode_csv):
    lib = []
    with open(libnode_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            lib.append(r)
    pairs = [("dopri5", "RK45"), ("dop853", "DOP853")]
    print("\n## libnode vs SciPy: NFE at equal achieved error\n")
    print("Error = max-norm of the final-state error against the reference; SciPy's NFE is")
    print("interpolated in log-log to libnode's achieved error (\"–\" = outside SciPy's range).")
    print("ratio = libnode NFE / SciPy NFE (< 1: libnode cheaper).\n")
    summary = []
    for name, *_ in PROBLEMS:
        print(f"\n### {name}\n")
        print("| tol | libnode method | error | libnode NFE | SciPy method | SciPy NFE at same error | ratio |")
        print("|---|---|---|---|---|---|---|")
        for lm, sm in pairs:
            curve = [(r["err"], r["nfe"]) for r in rows
                     if r["problem"] == name and r["method"] == sm and r["status"] == "ok"]
            ratios = []
            for r in lib:
                if r["problem"] != name or r["method"] != lm or r["status"] != "ok":
                    continue
                err, nfe = float(r["err"]), int(r["nfe"])
                s = interp_nfe(curve, err) if err > 0 else None
                if s is not None and err <= SUMMARY_MAX_ERR:
                    ratios.append((nfe / s, float(r["tol"])))
                ratio = "–" if s is None else f"{nfe / s:.2f}"
                sn = "–" if s is None else f"{s:.0f}"
                print(f"| {float(r['tol']):.0e} | {lm} | {err:.2e} | {nfe} | {sm} | {sn} | {ratio} |")
            summary.append((name, lm, sm, ratios))
    print(f"\n### Summary (points with error <= {SUMMARY_MAX_ERR:g} inside SciPy's range)\n")
    print("| problem | libnode vs SciPy | points | geometric-mean ratio | best | worst (at tol) |")
    print("|---|---|---|---|---|---|")
    for name, lm, sm, ratios in summary:
        if not ratios:
            print(f"| {name} | {lm} vs {sm} | 0 | – | – | – |")
            continue
        gm = math.exp(sum(math.log(q) for q, _ in ratios) / len(ratios))
        worst = max(ratios)
        best = min(ratios)
        print(f"| {name} | {lm} vs {sm} | {len(ratios)} | {gm:.2f} | {best[0]:.2f} | "
              f"{worst[0]:.2f} ({worst[1]:.0e}) |")


# ---- reference values ---------------------------------------------------------------

def make_ref(dps):
    """Recompute the reference final states with mpmath's Taylor-series integrator
    (odefun) at dps digits, independent of libnode and of SciPy.  The coefficients and
    initial values are the doubles the benchmarks use (mp.mpf(float) is exact)."""
    import mpmath as mp
    mp.mp.dps = dps
    mpf = mp.mpf
    three_half = mpf(3) / 2

    def vdp(t, y):
        return [y[1], mpf(VDP_MU) * (1 - y[0] ** 2) * y[1] - y[0]]

    def lv(t, y):
        return [mpf(LV_A) * y[0] - mpf(LV_B) * y[0] * y[1],
                -mpf(LV_C) * y[1] + mpf(LV_D) * y[0] * y[1]]

    mu, mup = mpf(AR_MU), mpf(AR_MUP)

    def ar(t, y):
        y1, y2, v1, v2 = y
        d1 = ((y1 + mu) ** 2 + y2 ** 2) ** three_half
        d2 = ((y1 - mup) ** 2 + y2 ** 2) ** three_half
        return [v1, v2, y1 + 2 * v2 - mup * (y1 + mu) / d1 - mu * (y1 - mup) / d2,
                y2 - 2 * v1 - mup * y2 / d1 - mu * y2 / d2]

    def tb(t, y):
        r3 = (y[0] ** 2 + y[1] ** 2) ** three_half
        return [y[2], y[3], -y[0] / r3, -y[1] / r3]

    for (name, _, t1, y0, _), g in zip(PROBLEMS, (vdp, lv, ar, tb)):
        t0 = time.time()
        sol = mp.odefun(g, 0, [mpf(v) for v in y0])
        y = sol(mpf(t1))
        print(f"{name} (mpmath odefun, {dps} digits, {time.time() - t0:.0f} s):")
        for v in y:
            print(f"    {mp.nstr(v, 30, min_fixed=-1, max_fixed=1)}")
        sys.stdout.flush()

    # Two-body: the exact solution for the exact initial state (e = 1/2,
    # vy0 = sqrt(3) exactly), by Newton on Kepler's equation E - e sin E = M, M = t.
    e = mpf(1) / 2
    M = mpf(20)
    E = M
    for _ in range(100):
        E = E - (E - e * mp.sin(E) - M) / (1 - e * mp.cos(E))
    den = 1 - e * mp.cos(E)
    s = mp.sqrt(1 - e * e)
    print("twobody exact (Kepler's equation by Newton):")
    for v in (mp.cos(E) - e, s * mp.sin(E), -mp.sin(E) / den, s * mp.cos(E) / den):
        print(f"    {mp.nstr(v, 30, min_fixed=-1, max_fixed=1)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 tolerances, one repetition")
    ap.add_argument("--csv", metavar="FILE", help="write the results as CSV")
    ap.add_argument("--compare", metavar="LIBNODE_CSV", help="compare with bench_ode --csv")
    ap.add_argument("--make-ref", action="store_true", help="recompute references (mpmath)")
    ap.add_argument("--dps", type=int, default=30, help="digits for --make-ref")
    a = ap.parse_args()
    if a.make_ref:
        make_ref(a.dps)
        return
    rows = run_all(a.quick, a.csv)
    if a.compare:
        compare(rows, a.compare)


if __name__ == "__main__":
    main()
