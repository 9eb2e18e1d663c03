#!/usr/bin/python3
"""compare_builds.py — the default (portable, run-time dispatched) build against a
-march=native build of the same tree, benchmark by benchmark, in one run.

Builds build-ab-default (default options) and build-ab-native (-DLIBNODE_NATIVE=ON)
next to the sources, then runs bench_mlp, bench_ode and bench_train
of both builds alternately for --rounds rounds and keeps the best (smallest) time of
each figure per build, which is the figure least disturbed by other load.  Prints a
markdown table: figure, native, default, default / native.

Usage: /usr/bin/python3 bench/compare_builds.py [--rounds 5] [--no-build] [--csv FILE]
       [--dirs native=DIR,default=DIR]   (any two existing build folders instead, e.g.
                                          an older commit's build as "native")
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDS = {
    "native": ["-DLIBNODE_NATIVE=ON"],
    "default": ["-DLIBNODE_NATIVE=OFF"],
}
COMMON = ["-DCMAKE_BUILD_TYPE=Release", "-DLIBNODE_BUILD_TESTS=OFF",
          "-DLIBNODE_BUILD_EXAMPLES=OFF", "-DLIBNODE_BUILD_BENCH=ON"]


def build(name, flags):
    d = os.path.join(ROOT, "build-ab-" + name)
    subprocess.run(["cmake", "-S", ROOT, "-B", d] + COMMON + flags, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", d, "-j", str(os.cpu_count() or 2)], check=True,
                   stdout=subprocess.DEVNULL)
    return d


def run(d, prog, args):
    out = subprocess.run([os.path.join(d, prog)] + args, check=True, capture_output=True,
                         text=True)
    return out.stdout + out.stderr


def parse_mlp(text):
    figs = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\d+-\d+-\d+)( \*)?\s+([\d.]+)\s+([\d.]+)\s", text, re.M):
        key = "mlp %s batch %s%s" % (m.group(2), m.group(1), " (node_mlp_vjp)" if m.group(3) else "")
        figs[key + " f us"] = float(m.group(4))
        figs[key + " vjp us"] = float(m.group(5))
    return figs


def parse_ode(text):
    figs = {}
    problem = None
    for line in text.splitlines():
        m = re.match(r"^== (\w+):", line)
        if m:
            problem = m.group(1)
            continue
        m = re.match(r"^(bosh3|dopri5|dop853|rk4)\s+(\S+)\s+\d+\s+\d+\s+\d+\s+\S+\s+([\d.]+)", line)
        if m and problem:
            figs["ode %s %s %s us" % (problem, m.group(1), m.group(2))] = float(m.group(3))
            continue
        m = re.match(r"^\s+(bosh3|dopri5|dop853|rk4)\s+([\d.]+) ns/step", line)
        if m:
            figs["ode overhead %s ns/step" % m.group(1)] = float(m.group(2))
    return figs


def parse_train(text):
    figs = {}
    for m in re.finditer(r"^\| (\w+): [^|]*\| ([\w+]+) \| ([\d.]+) \|", text, re.M):
        figs["train %s %s ms/iter" % (m.group(1), m.group(2))] = float(m.group(3))
    return figs


BENCHES = [
    ("bench_mlp", [], parse_mlp),
    ("bench_ode", [], parse_ode),
    ("bench_train", [], parse_train),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--csv")
    ap.add_argument("--dirs", help="native=DIR,default=DIR: compare these builds as they are")
    a = ap.parse_args()
    dirs = {}
    if a.dirs:
        for kv in a.dirs.split(","):
            k, v = kv.split("=", 1)
            dirs[k] = os.path.abspath(v)
    else:
        for name, flags in BUILDS.items():
            dirs[name] = (os.path.join(ROOT, "build-ab-" + name) if a.no_build
                          else build(name, flags))
    best = {name: {} for name in BUILDS}
    for r in range(a.rounds):
        for prog, args, parse in BENCHES:
            order = list(BUILDS) if r % 2 == 0 else list(reversed(list(BUILDS)))
            for name in order:
                figs = parse(run(dirs[name], prog, args))
                for k, v in figs.items():
                    b = best[name]
                    b[k] = min(b.get(k, v), v)
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    keys = [k for k in best["native"] if k in best["default"]]
    rows = []
    print("| figure | native | default | default / native |")
    print("|---|---:|---:|---:|")
    for k in keys:
        n, d = best["native"][k], best["default"][k]
        ratio = d / n if n > 0 else float("nan")
        rows.append((k, n, d, ratio))
        print("| %s | %.4g | %.4g | %.3f |" % (k, n, d, ratio))
    ratios = [r[3] for r in rows if r[3] == r[3]]
    if ratios:
        import math
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        worst = max(rows, key=lambda r: r[3])
        print("\n%d figures; geometric mean default/native %.3f; worst %.3f (%s)"
              % (len(ratios), gm, worst[3], worst[0]))
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("figure,native,default,ratio\n")
            for k, n, d, r in rows:
                f.write("%s,%g,%g,%g\n" % (k, n, d, r))


if __name__ == "__main__":
    main()
