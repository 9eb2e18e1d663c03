#!/usr/bin/python3
"""compare_builds.py — two builds of libnode, benchmark by benchmark, in one run: the
only honest way to claim a speed-up on a shared, noisy machine is to run the old and
the new code interleaved, under the same load, and compare the best of N.

Three ways to name the two builds:
  (default)     the default (portable, run-time dispatched) build against a
                -march=native build of the working tree: build-ab-default and
                build-ab-native next to the sources.
  --rev REV     an earlier revision against the working tree: REV is exported with
                `git archive REV | tar -x` into build-ab-rev-<sha>/src (beside the
                tree, ignored by git; reused when it is already there), built in
                Release with the benchmarks into build-ab-rev-<sha>/build, and the
                working tree into build-ab-new.  Ratios are new / old.  A benchmark
                the revision lacks (no such program) is skipped with a note, and so
                are figures only one side prints.
  --dirs a=DIR,b=DIR   any two existing build folders, as they are (ratio b / a).

Then runs bench_mlp, bench_ode, bench_train and bench_gradmethods (--bench to choose)
of both builds alternately (the order flips every round) for --rounds rounds and keeps
the best (smallest) time of each figure per build, the figure least disturbed by other
load.  Prints a markdown table: figure, the two builds, the ratio; then the geometric
mean and the extremes of the ratios.

Usage: /usr/bin/python3 bench/compare_builds.py [--rounds 5] [--rev REV] [--quick]
       [--bench NAME,...] [--jobs 2] [--no-build] [--csv FILE] [--dirs a=DIR,b=DIR]
"""
import argparse
import math
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


def build(src, d, flags, jobs):
    """Configure and build the sources src into d (Release, benchmarks only)."""
    subprocess.run(["cmake", "-S", src, "-B", d] + COMMON + flags, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", d, "-j", str(jobs)], check=True,
                   stdout=subprocess.DEVNULL)
    return d


def export_rev(rev):
    """git archive REV | tar -x into build-ab-rev-<sha>/src; returns (sha, folder)."""
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", rev + "^{commit}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    top = os.path.join(ROOT, "build-ab-rev-" + sha[:12])
    src = os.path.join(top, "src")
    if not os.path.isfile(os.path.join(src, "CMakeLists.txt")):
        os.makedirs(src, exist_ok=True)
        arch = subprocess.Popen(["git", "-C", ROOT, "archive", sha], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", src], stdin=arch.stdout, check=True)
        arch.stdout.close()
        if arch.wait() != 0:
            raise SystemExit("compare_builds: git archive %s failed" % rev)
    return sha, top


def run(d, prog, args):
    """The program's output, or None if it fails (noted by the caller)."""
    out = subprocess.run([os.path.join(d, prog)] + args, capture_output=True, text=True)
    if out.returncode != 0:
        return None
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


def parse_gradmethods(text):
    """The time (ms) column of each method under each problem's heading row."""
    figs = {}
    problem = None
    for line in text.splitlines():
        m = re.match(r"^\| \*\*(.+?)\*\*", line)
        if m:
            problem = m.group(1)
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if problem and len(cells) == 8 and re.match(r"^[\d.e+-]+$", cells[5]):
            figs["grad %s: %s ms" % (problem, cells[0])] = float(cells[5])
    return figs


# name, arguments, --quick arguments, parser
BENCHES = [
    ("bench_mlp", [], ["--quick"], parse_mlp),
    ("bench_ode", [], ["--quick"], parse_ode),
    ("bench_train", [], ["--quick"], parse_train),
    ("bench_gradmethods", [], ["--quick"], parse_gradmethods),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--csv")
    ap.add_argument("--dirs", help="a=DIR,b=DIR: compare these builds as they are (b / a)")
    ap.add_argument("--rev", help="an earlier revision (any git name) against the working tree")
    ap.add_argument("--quick", action="store_true", help="the benchmarks' --quick runs")
    ap.add_argument("--bench", help="comma-separated subset of: " +
                    ",".join(b[0] for b in BENCHES))
    ap.add_argument("--jobs", type=int, default=2, help="parallel build jobs (default 2)")
    a = ap.parse_args()
    dirs = {}
    if a.dirs:
        for kv in a.dirs.split(","):
            k, v = kv.split("=", 1)
            dirs[k] = os.path.abspath(v)
    elif a.rev:
        sha, top = export_rev(a.rev)
        old, new = "old %s" % sha[:9], "new"
        bold, bnew = os.path.join(top, "build"), os.path.join(ROOT, "build-ab-new")
        if not a.no_build:
            print("building %s (%s) in %s, the working tree in %s" % (a.rev, sha[:9], bold, bnew),
                  file=sys.stderr)
            build(os.path.join(top, "src"), bold, [], a.jobs)
            build(ROOT, bnew, [], a.jobs)
        dirs = {old: bold, new: bnew}
    else:
        for name, flags in BUILDS.items():
            d = os.path.join(ROOT, "build-ab-" + name)
            dirs[name] = d if a.no_build else build(ROOT, d, flags, a.jobs)
    names = list(dirs)
    if len(names) != 2:
        raise SystemExit("compare_builds: two builds are needed, got %s" % names)
    base, other = names[0], names[1]
    benches = BENCHES
    if a.bench:
        want = a.bench.split(",")
        unknown = [w for w in want if w not in [b[0] for b in BENCHES]]
        if unknown:
            raise SystemExit("compare_builds: --bench %s: no such benchmark (%s)"
                             % (",".join(unknown), ",".join(b[0] for b in BENCHES)))
        benches = [b for b in BENCHES if b[0] in want]
    notes = []
    runnable = []
    for b in benches:
        missing = [n for n in names if not os.path.isfile(os.path.join(dirs[n], b[0]))]
        if missing:
            notes.append("%s skipped: not built in %s" % (b[0], ", ".join(missing)))
        else:
            runnable.append(b)
    best = {name: {} for name in names}
    for r in range(a.rounds):
        for prog, args, qargs, parse in runnable:
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                text = run(dirs[name], prog, qargs if a.quick else args)
                if text is None:
                    note = "%s failed in %s (its figures from other rounds only)" % (prog, name)
                    if note not in notes:
                        notes.append(note)
                    continue
                figs = parse(text)
                for k, v in figs.items():
                    b = best[name]
                    b[k] = min(b.get(k, v), v)
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    keys = [k for k in best[base] if k in best[other]]
    only = [(n, k) for n in names for k in best[n] if k not in best[names[1 - names.index(n)]]]
    if only:
        notes.append("%d figure(s) printed by one build only, left out (e.g. %s: %s)"
                     % (len(only), only[0][0], only[0][1]))
    rows = []
    print("| figure | %s | %s | %s / %s |" % (base, other, other, base))
    print("|---|---:|---:|---:|")
    for k in keys:
        n, d = best[base][k], best[other][k]
        ratio = d / n if n > 0 else float("nan")
        rows.append((k, n, d, ratio))
        print("| %s | %.4g | %.4g | %.3f |" % (k, n, d, ratio))
    ratios = [r[3] for r in rows if r[3] == r[3] and r[3] > 0]
    if ratios:
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        worst = max(rows, key=lambda r: r[3])
        bestr = min(rows, key=lambda r: r[3])
        print("\n%d figures, best of %d rounds; geometric mean %s/%s %.3f; highest %.3f (%s); "
              "lowest %.3f (%s)" % (len(ratios), a.rounds, other, base, gm, worst[3], worst[0],
                                    bestr[3], bestr[0]))
    for note in notes:
        print("note: " + note)
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("figure,%s,%s,ratio\n" % (base, other))
            for k, n, d, r in rows:
                f.write("\"%s\",%g,%g,%g\n" % (k, n, d, r))


if __name__ == "__main__":
    main()
