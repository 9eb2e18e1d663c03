#!/usr/bin/python3
"""detest_sweep.py -- the controller study of issue #9: run bench_detest under many
step-size controller settings and score each against SciPy with detest_compare.

Each setting runs bench_detest with --ctl METHOD:NAME=VALUE,... (the step-size
controller constants safety, beta, facmin, facmax of the registry entry replaced for
that run), so any build's bench_detest will do.  Each setting is one run of bench_detest
for one method, so a grid of a few hundred settings takes minutes.

    /usr/bin/python3 bench/peers/detest_sweep.py --bench build/bench_detest \\
        --scipy bench/data/detest_scipy.csv --method bosh3 \\
        --grid beta=0,0.04,0.08 safety=0.8,0.9 [--offsets 0,0.25,0.5,0.75] \\
        [--tols eighth] [--out sweep_bosh3.csv]
The study's results: bench/data/detest_sweep.csv (its alpha and nogrow columns — α
set apart from β, and the step ratio allowed right after a rejection — came from a
scratch build of the controller that read them from the environment; --ctl does not
offer them: on the set they never beat α = 1/q − 0.75β and "no growth").

Prints one line per setting (sorted by the geometric-mean ratio): the overall ratio,
the per-class ratios, the worst problem and the rejected-step fraction.
"""
import argparse
import csv
import itertools
import os
import subprocess
import sys
import tempfile

import detest_compare as dc

PAIR = dict(dc.PAIRS)
# The constants --ctl can set, and the columns of the results CSV.
CTL = ("safety", "beta", "facmin", "facmax")
COLUMNS = ("safety", "beta", "alpha", "facmin", "facmax", "nogrow")


def run(bench, method, tols, setting, extra=()):
    """bench_detest's rows for one method under one controller setting."""
    ctl = []
    if setting:
        ctl = ["--ctl", method + ":" + ",".join(f"{k}={v}" for k, v in setting.items())]
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as tf:
        path = tf.name
    try:
        subprocess.run([bench, "--methods", method, "--tols", tols, "--csv", path, *ctl,
                        *extra], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return dc.load(path)
    finally:
        os.unlink(path)


def score(lib, sci, method):
    s = dc.summary(lib, sci)[(method, PAIR[method])]
    return s


def line(s):
    """ratio [spread over offsets], per-class ratios, worst problem, rejected fraction"""
    return (f"{s['gmean']:.4f} [{s['spread'][0]:.4f}, {s['spread'][1]:.4f}]  "
            + " ".join(f"{c}:{s['cls'][c]:.3f}" for c in dc.CLASSES)
            + f"  worst {s['pmax'][0]} {s['pmax'][1]:.3f}  rej {100 * s['rej_lib']:.1f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True)
    ap.add_argument("--scipy", required=True, help="detest_scipy.py --csv output")
    ap.add_argument("--method", required=True, choices=tuple(PAIR))
    ap.add_argument("--tols", default="eighth")
    ap.add_argument("--grid", nargs="+", default=[], help="name=v1,v2,... (names: "
                    + ", ".join(CTL) + ")")
    ap.add_argument("--offsets", default="0", help="comma-separated grid offsets "
                    "(bench_detest --offset): each setting is scored on every shifted grid "
                    "and the spread printed")
    ap.add_argument("--out", help="append one CSV line per setting here")
    a = ap.parse_args()
    sci = dc.load(a.scipy)
    names, values = [], []
    for g in a.grid:
        k, v = g.split("=")
        if k not in CTL:
            sys.exit(f"unknown name {k}")
        names.append(k)
        values.append([float(x) for x in v.split(",")])
    results = []
    for combo in itertools.product(*values) if values else [()]:
        setting = dict(zip(names, combo))
        offs = [float(x) for x in a.offsets.split(",")]
        libs = [run(a.bench, a.method, a.tols, setting, ("--offset", str(o))) for o in offs]
        scores = [score(lib, sci, a.method) for lib in libs]
        # the first offset's score is the reported one; the others give its spread
        s, lib = scores[0], libs[0]
        s["spread"] = (min(x["gmean"] for x in scores), max(x["gmean"] for x in scores))
        nfe = sum(r["nfe"] for r in lib)
        results.append((setting, s, nfe))
        print(f"{setting}  ratio {line(s)}  nfe {nfe}", file=sys.stderr)
        if a.out:
            new = not os.path.exists(a.out)
            with open(a.out, "a", newline="") as fh:
                w = csv.writer(fh)
                if new:
                    w.writerow(["method", *COLUMNS, "ratio", "ratio_min_offsets", "ratio_max_offsets",
                                *dc.CLASSES, "worst_problem", "worst_ratio", "reject_frac",
                                "nfe", "points"])
                w.writerow([a.method, *[setting.get(k, "") for k in COLUMNS],
                            f"{s['gmean']:.5f}", f"{s['spread'][0]:.5f}", f"{s['spread'][1]:.5f}",
                            *[f"{s['cls'][c]:.4f}" for c in dc.CLASSES],
                            s["pmax"][0], f"{s['pmax'][1]:.4f}", f"{s['rej_lib']:.4f}", nfe,
                            s["n"]])
    print(f"\n{a.method} vs {PAIR[a.method]}, sorted by the geometric-mean NFE ratio:")
    for setting, s, nfe in sorted(results, key=lambda r: r[1]["gmean"]):
        print(f"  {setting}  {line(s)}")


if __name__ == "__main__":
    main()
