#!/usr/bin/env python3
"""Where the latent ODE's predictive RMSE comes from, series by series.

Reads the predictions CSV that `latent_ode --out DIR` writes (DIR/predictions_nN.csv:
series,t,part,x1,x2,true_x1,true_x2,latent-ode_x1,latent-ode_x2) and prints, over the
predicted points (part != observed): the RMSE against the noisy points (the figure of
Table 2), the median of the per-series RMSEs, the share of the squared error carried
by the 10 worst series and the RMSE without them, and the RMSE of the series whose
true curve reaches |x| > 7 (the clockwise spiral's outer turn) against the others.

    python3 bench/latent_breakdown.py latent_out/predictions_n30.csv [more.csv ...]

Standard library only.
"""
import csv
import math
import sys
from collections import defaultdict


def breakdown(path):
    per = defaultdict(list)   # series -> [(squared error, max |true x|)]
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["part"] == "observed":
                continue
            p = (float(r["latent-ode_x1"]), float(r["latent-ode_x2"]))
            x = (float(r["x1"]), float(r["x2"]))
            tx = (float(r["true_x1"]), float(r["true_x2"]))
            e = (p[0] - x[0]) ** 2 + (p[1] - x[1]) ** 2
            per[r["series"]].append((e, max(abs(tx[0]), abs(tx[1]))))
    if not per:
        raise SystemExit("%s: no predicted points" % path)
    D = 2
    sse = sum(e for v in per.values() for e, _ in v)
    n = sum(len(v) for v in per.values())
    series = sorted((math.sqrt(sum(e for e, _ in v) / (len(v) * D)), s) for s, v in per.items())
    k = min(10, len(series) - 1)
    worst = [s for _, s in series[len(series) - k:]]
    w_sse = sum(e for s in worst for e, _ in per[s])
    w_n = sum(len(per[s]) for s in worst)
    outer = [s for s, v in per.items() if max(m for _, m in v) > 7]
    o_sse = sum(e for s in outer for e, _ in per[s])
    o_n = sum(len(per[s]) for s in outer)

    def rmse(a, b):
        return math.sqrt(a / (b * D)) if b else float("nan")

    print("%s: RMSE %.4f | median series %.4f | %d worst series: %.0f %% of the squared "
          "error, RMSE without them %.4f | %d series reach |x| > 7: RMSE %.4f, the other %d "
          "%.4f" % (path, rmse(sse, n), series[len(series) // 2][0], k, 100 * w_sse / sse,
                    rmse(sse - w_sse, n - w_n), len(outer), rmse(o_sse, o_n),
                    len(per) - len(outer), rmse(sse - o_sse, n - o_n)))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for p in sys.argv[1:]:
        breakdown(p)
