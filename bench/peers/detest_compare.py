#!/usr/bin/python3
"""detest_compare.py -- libnode against SciPy on the 25 DETEST problems at equal error:
for every libnode point (problem, tolerance) SciPy's NFE is interpolated, piecewise
linearly in log(NFE) against log(error), at libnode's achieved error; ratio = libnode NFE
/ SciPy NFE (< 1: libnode cheaper).  Pairs: bosh3/RK23, dopri5/RK45, dop853/DOP853.
Prints the geometric mean over all points, per class (A-E) and the range, as Markdown.

    ./build/bench_detest --tols eighth --csv libnode_detest.csv
    /usr/bin/python3 bench/peers/detest_compare.py libnode_detest.csv \
        bench/data/detest_scipy.csv [--per-problem] [--max-err 1e-2] [--bootstrap N]

bench/data/detest_scipy.csv is SciPy 1.10.1's run (detest_scipy.py --tols eighth
--range 2,12: 81 tolerances 1e-2 ... 1e-12, a wider range than libnode's 1e-3 ... 1e-10,
so that every libnode point finds SciPy points on both sides; ~25 minutes to remake).

Points enter the means when libnode's error is at most --max-err (looser solutions are
qualitatively wrong on some problems) and inside the range of SciPy's errors (no
extrapolation).  Where SciPy's curve is not monotone, the cheapest segment that brackets
the error is taken (as bench/peers/scipy_workprecision.py does): this favours SciPy.
"""
import argparse
import csv
import math
import sys

PAIRS = (("bosh3", "RK23"), ("dopri5", "RK45"), ("dop853", "DOP853"))
CLASSES = "ABCDE"


def load(path):
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(line for line in fh if not line.startswith("#")):
            if r["status"] != "ok":
                continue
            err = float(r["error"])
            if not (err > 0 and math.isfinite(err)):
                continue
            rows.append(dict(problem=r["problem"], method=r["method"], tol=float(r["tol"]),
                             nfe=int(r["nfe"]), nsteps=int(r["nsteps"]),
                             nreject=int(r["nreject"]), err=err))
    return rows


def interp_nfe(curve, err):
    """NFE of the curve [(err, nfe)] at err, linear in log-log; None outside its range."""
    pts = sorted((math.log(e), math.log(n)) for e, n in curve)
    if len(pts) < 2:
        return None
    x = math.log(err)
    best = None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            y = y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            best = y if best is None else min(best, y)
    return None if best is None else math.exp(best)


def gmean(v):
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def ratios(lib, sci, max_err=1e-2):
    """{(libnode method, scipy method): [(problem, tol, ratio), ...]}"""
    out = {}
    for lm, sm in PAIRS:
        pts = []
        problems = sorted({r["problem"] for r in lib if r["method"] == lm})
        for p in problems:
            curve = [(r["err"], r["nfe"]) for r in sci if r["problem"] == p and r["method"] == sm]
            for r in lib:
                if r["problem"] != p or r["method"] != lm or r["err"] > max_err:
                    continue
                s = interp_nfe(curve, r["err"])
                if s is not None:
                    pts.append((p, r["tol"], r["nfe"] / s))
        if pts:
            out[(lm, sm)] = pts
    return out


def bootstrap(pts, n=2000, seed=1):
    """5 % and 95 % quantiles of the geometric-mean ratio when the problems are drawn
    with replacement (n draws of 25 problems): how much the mean depends on which
    problems make up the set."""
    import random
    rng = random.Random(seed)
    by = {}
    for p, _, x in pts:
        by.setdefault(p, []).append(math.log(x))
    names = sorted(by)
    means = []
    for _ in range(n):
        logs = [v for p in (rng.choice(names) for _ in names) for v in by[p]]
        means.append(math.exp(sum(logs) / len(logs)))
    means.sort()
    return means[int(0.05 * n)], means[int(0.95 * n) - 1]


def summary(lib, sci, max_err=1e-2, nboot=0):
    """Per pair: geometric mean, per-class means, extremes, rejected-step fractions."""
    res = {}
    for (lm, sm), pts in ratios(lib, sci, max_err).items():
        q = [x for _, _, x in pts]
        cls = {c: gmean([x for p, _, x in pts if p[0] == c]) for c in CLASSES}
        per_problem = {}
        for p, _, x in pts:
            per_problem.setdefault(p, []).append(x)
        per_problem = {p: gmean(v) for p, v in per_problem.items()}
        lo = min(pts, key=lambda t: t[2])
        hi = max(pts, key=lambda t: t[2])
        # rejected / attempted steps, SciPy's over libnode's tolerance range only
        tlo = min(r["tol"] for r in lib if r["method"] == lm) * (1 - 1e-9)
        thi = max(r["tol"] for r in lib if r["method"] == lm) * (1 + 1e-9)

        def rej(rows, m):
            sel = [r for r in rows if r["method"] == m and tlo <= r["tol"] <= thi]
            return sum(r["nreject"] for r in sel) / max(1, sum(r["nsteps"] for r in sel))
        res[(lm, sm)] = dict(n=len(q), gmean=gmean(q), cls=cls, lo=lo, hi=hi,
                             per_problem=per_problem,
                             pmin=min(per_problem.items(), key=lambda t: t[1]),
                             pmax=max(per_problem.items(), key=lambda t: t[1]),
                             rej_lib=rej(lib, lm), rej_sci=rej(sci, sm),
                             boot=bootstrap(pts, nboot) if nboot else None)
    return res


def self_test():
    """Power laws NFE = c err^-1/p are straight lines in log-log, so interpolation is exact:
    libnode curves at 0.9 (bosh3), 1.0 (dopri5) and 1.1 (dop853) times SciPy's cost, on
    errors between SciPy's, must come out at exactly those ratios, in every class; points
    above --max-err or outside SciPy's range must be left out."""
    sci, lib = [], []
    for p in ("A1", "C3", "E5"):
        for (lm, sm), c, q in zip(PAIRS, (0.9, 1.0, 1.1), (3, 5, 8)):
            for k in range(12):
                e = 10.0 ** (-1 - 0.8 * k)
                sci.append(dict(problem=p, method=sm, tol=e, nfe=1e3 * e ** (-1 / q),
                                nsteps=10, nreject=1, err=e))
                e2 = e * 10 ** -0.3
                lib.append(dict(problem=p, method=lm, tol=e, nfe=c * 1e3 * e2 ** (-1 / q),
                                nsteps=10, nreject=0, err=e2))
            lib.append(dict(problem=p, method=lm, tol=1, nfe=1, nsteps=1, nreject=0, err=0.5))
            lib.append(dict(problem=p, method=lm, tol=1e-12, nfe=1, nsteps=1, nreject=0, err=1e-11))
    res = summary(lib, sci)
    ok = True
    for (lm, sm), c in zip(PAIRS, (0.9, 1.0, 1.1)):
        s = res[(lm, sm)]
        # per problem: 12 points, less k = 0 (error 0.05 > max_err) and k = 11 (below
        # SciPy's smallest error); the two extra points (0.5 and 1e-11) are out too
        good = (s["n"] == 3 * 10 and abs(s["gmean"] / c - 1) < 1e-9
                and all(abs(s["cls"][k] / c - 1) < 1e-9 for k in "ACE"))
        print(f"self-test {lm}/{sm}: {s['n']} points, ratio {s['gmean']:.12f} (expected {c}): "
              f"{'ok' if good else 'FAILED'}")
        ok &= good
    return ok


def main():
    if "--self-test" in sys.argv[1:]:
        sys.exit(0 if self_test() else 1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libnode_csv")
    ap.add_argument("scipy_csv")
    ap.add_argument("--max-err", type=float, default=1e-2)
    ap.add_argument("--per-problem", action="store_true")
    ap.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                    help="problems resampled N times for the 90 %% interval (0: none)")
    a = ap.parse_args()
    lib, sci = load(a.libnode_csv), load(a.scipy_csv)
    res = summary(lib, sci, a.max_err, a.bootstrap)
    if not res:
        sys.exit("no comparable points")
    print("| libnode / SciPy | points | all (geo. mean) | 90 % over problem sets | A | B | C "
          "| D | E | problems: best – worst | single points: min – max | rejected steps |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|---|")
    for (lm, sm), s in res.items():
        c = s["cls"]
        b = f"{s['boot'][0]:.3f} – {s['boot'][1]:.3f}" if s["boot"] else "–"
        print(f"| {lm} / {sm} | {s['n']} | **{s['gmean']:.3f}** | {b} | "
              + " | ".join(f"{c[k]:.3f}" for k in CLASSES)
              + f" | {s['pmin'][1]:.3f} ({s['pmin'][0]}) – {s['pmax'][1]:.3f} ({s['pmax'][0]})"
              f" | {s['lo'][2]:.2f} ({s['lo'][0]}, {s['lo'][1]:.1e}) – "
              f"{s['hi'][2]:.2f} ({s['hi'][0]}, {s['hi'][1]:.1e})"
              f" | {100 * s['rej_lib']:.1f} % / {100 * s['rej_sci']:.1f} % |")
    if a.per_problem:
        names = sorted({p for s in res.values() for p in s["per_problem"]})
        print("\n| problem | " + " | ".join(f"{lm} / {sm}" for lm, sm in res) + " |")
        print("|---|" + "---:|" * len(res))
        for p in names:
            print(f"| {p} | " + " | ".join(
                f"{s['per_problem'][p]:.3f}" if p in s["per_problem"] else "–"
                for s in res.values()) + " |")


if __name__ == "__main__":
    main()
