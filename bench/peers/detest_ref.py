#!/usr/bin/python3
"""detest_ref.py -- reference end values y(20) of the 25 DETEST problems
(detest_problems.py), written to bench/data/detest_ref.csv for bench_detest.c and
detest_scipy.py.

Every reference is for the problem exactly as the benchmarks pose it: the coefficients
and initial values are the doubles of the programs (mpmath's mpf(float) is exact).
  * 20 problems have closed-form solutions (A1-A5, B2, B4, B5, C1-C4, D1-D5, E1, E4,
    E5), evaluated in mpmath at 50 digits; where the double data differ from the exact
    data (D: 1 - e and sqrt((1+e)/(1-e)) rounded; E1: y0 rounded) the closed form is
    fitted to the double data (D: the Kepler ellipse through the rounded state; E1: the
    combination of sin x / sqrt x and cos x / sqrt x through the rounded y0).
  * All 25 are also integrated by an extrapolation method of our own (Gragg-Bulirsch-Stoer:
    modified midpoint rule, step-number sequence 2, 4, 6, ..., 24, Aitken-Neville
    extrapolation in h^2, adaptive macro steps) in mpmath at 40 digits, at two local
    tolerances 1e-26 and 1e-32.  The tighter run is the reference for the 5 problems
    without a closed form (B1, B3, C5, E2, E3).
Checks printed (and required by --check): the two extrapolation runs agree, the
extrapolation agrees with every closed form, and everything agrees with the 16-digit end
values of Enright & Pryce's DETEST package (values for the decimal data, so the rounded
double data may move them by ~1e-15).  All differences use the benchmarks' error measure
|a - b| / max(1, |b|).

Run:  /usr/bin/python3 bench/peers/detest_ref.py [--out bench/data/detest_ref.csv]
      (about 5-10 minutes on one core; --only A1,B3 for a subset, without writing)
"""
import argparse
import sys
import time

import mpmath as mp

import detest_problems as dp

mpf = mp.mpf

# ---- Gragg-Bulirsch-Stoer extrapolation in mpmath ---------------------------------------


def gbs(f, y0, t1, tol, kmax=12):
    """Integrate y' = f(t, y) from 0 to t1; returns (y(t1), macro steps, f evaluations)."""
    nseq = [2 * (j + 1) for j in range(kmax)]
    t, y = mpf(0), [mpf(v) for v in y0]
    t1 = mpf(t1)
    H = mpf("0.01")
    nfe = steps = attempts = 0
    expo = mpf(1) / (2 * kmax - 1)
    while t < t1:
        last = t + H >= t1
        if last:
            H = t1 - t
        f0 = f(t, y, mp)
        nfe += 1
        T = []
        for j, n in enumerate(nseq):
            h = H / n
            z0, z1 = y, [a + h * b for a, b in zip(y, f0)]
            for m in range(1, n):
                fz = f(t + m * h, z1, mp)
                z0, z1 = z1, [a + 2 * h * b for a, b in zip(z0, fz)]
            nfe += n - 1
            row = [z1]
            for k in range(1, j + 1):
                r = (mpf(n) / nseq[j - k]) ** 2 - 1
                row.append([a + (a - b) / r for a, b in zip(row[k - 1], T[j - 1][k - 1])])
            T.append(row)
        err = max(abs(a - b) / max(1, abs(a)) for a, b in zip(T[-1][-1], T[-1][-2]))
        if err <= tol:
            t = t1 if last else t + H
            y = T[-1][-1]
            steps += 1
        fac = mpf(4) if err == 0 else min(mpf(4), max(mpf("0.2"), mpf("0.8") * (tol / err) ** expo))
        H *= fac
        attempts += 1
        # the runs here need at most ~300 macro steps: far more means a broken f or method
        if H < mpf("1e-12") or attempts > 20000:
            raise RuntimeError(f"extrapolation: step {float(H):.1e} at t = {float(t):.6g} "
                               f"after {attempts} attempts")
    return y, steps, nfe


# ---- closed forms -----------------------------------------------------------------------


def kepler_from_apsis(x0, v0, t):
    """Two-body problem (GM = 1) from y = (x0, 0, 0, v0) with x0 > 0, v0 > 0: the state at
    time t on the Kepler ellipse through that state (an apsis: velocity normal to
    position)."""
    x0, v0 = mpf(x0), mpf(v0)
    energy = v0 ** 2 / 2 - 1 / x0
    a = -1 / (2 * energy)
    if x0 <= a:   # pericentre
        e = 1 - x0 / a
        M0 = mpf(0)
    else:         # apocentre: start half an orbit later
        e = x0 / a - 1
        M0 = mp.pi
    n = a ** mpf(-1.5)
    M = M0 + n * t
    E = M
    for _ in range(200):
        dE = (E - e * mp.sin(E) - M) / (1 - e * mp.cos(E))
        E -= dE
        if abs(dE) < mpf(10) ** (-mp.mp.dps + 3):
            break
    s = mp.sqrt(1 - e * e)
    den = 1 - e * mp.cos(E)
    x, y = a * (mp.cos(E) - e), a * s * mp.sin(E)
    vx, vy = -a * n * mp.sin(E) / den, a * n * s * mp.cos(E) / den
    if M0 != 0:   # reflect: the ellipse's pericentre lies on the negative x axis
        x, y, vx, vy = -x, -y, -vx, -vy
    return [x, y, vx, vy]


def expm_solution(A, y0, t):
    E = mp.expm(mp.matrix(A) * t)
    v = E * mp.matrix([mpf(c) for c in y0])
    return [v[i] for i in range(len(y0))]


def tridiag_matrix(n):
    return [[-2 if i == j else 1 if abs(i - j) == 1 else 0 for j in range(n)] for i in range(n)]


def closed_forms():
    """{problem: function returning y(20) in mpmath} for the problems with one."""
    t = mpf(20)
    cf = {}
    cf["A1"] = lambda: [mp.exp(-t)]
    cf["A2"] = lambda: [1 / mp.sqrt(1 + t)]
    cf["A3"] = lambda: [mp.exp(mp.sin(t))]
    cf["A4"] = lambda: [20 / (1 + 19 * mp.exp(-t / 4))]

    def a5():
        # y' = (y - t)/(y + t) is homogeneous; its solutions are the logarithmic spirals
        # r = c exp(-theta) in polar coordinates (t, y) = r (cos theta, sin theta); through
        # (0, 4): r = 4 exp(pi/2 - theta).  At t = 20 the spiral has turned past theta = 0.
        g = lambda yv: mp.sqrt(t * t + yv * yv) - 4 * mp.exp(mp.pi / 2 - mp.atan2(yv, t))
        return [mp.findroot(g, mpf("-0.79"))]
    cf["A5"] = a5
    cf["B2"] = lambda: expm_solution([[-1, 1, 0], [1, -2, 1], [0, 1, -1]], [2, 0, 1], t)
    # B4: in polar coordinates r' = -y3, phi' = 1, y3' = cos(phi): r = 2 + cos t, phi = t.
    cf["B4"] = lambda: [(2 + mp.cos(t)) * mp.cos(t), (2 + mp.cos(t)) * mp.sin(t), mp.sin(t)]
    # B5: Euler's equations of a rigid body: Jacobi's sn, cn, dn with parameter m = 0.51.
    cf["B5"] = lambda: [mp.ellipfun("sn", t, m=mpf(dp.B5_K)),
                        mp.ellipfun("cn", t, m=mpf(dp.B5_K)),
                        mp.ellipfun("dn", t, m=mpf(dp.B5_K))]

    def c1():
        # A decay chain: y_i = exp(-t) t^(i-1)/(i-1)! (i <= 9), y10 = 1 - sum.
        y = [mp.exp(-t) * t ** i / mp.factorial(i) for i in range(9)]
        return y + [1 - mp.fsum(y)]
    cf["C1"] = c1

    def c2():
        # y_i = exp(-t) (1 - exp(-t))^(i-1) (i <= 9), y10 = 1 - sum.
        u = mp.exp(-t)
        y = [u * (1 - u) ** i for i in range(9)]
        return y + [1 - mp.fsum(y)]
    cf["C2"] = c2
    cf["C3"] = lambda: expm_solution(tridiag_matrix(10), [1] + [0] * 9, t)
    cf["C4"] = lambda: expm_solution(tridiag_matrix(51), [1] + [0] * 50, t)
    for k, e in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        y0 = dp.orbit_y0(e)
        cf["D%d" % (k + 1)] = (lambda y0=y0: kepler_from_apsis(y0[0], y0[3], t))

    def e1():
        # x = t + 1; y = (A sin x + B cos x) / sqrt(x) through the (double) y0 at x = 1.
        y0, yp0 = mpf(0.6713967071418030), mpf(0.09540051444747446)
        # y(1) = A s + B c;  y'(1) = A (c - s/2) + B (-s - c/2),  s = sin 1, c = cos 1
        s, c = mp.sin(1), mp.cos(1)
        A, B = mp.lu_solve(mp.matrix([[s, c], [c - s / 2, -s - c / 2]]), mp.matrix([y0, yp0]))
        x = t + 1
        sx, cx, rx = mp.sin(x), mp.cos(x), mp.sqrt(x)
        y = (A * sx + B * cx) / rx
        yp = (A * cx - B * sx) / rx - y / (2 * x)
        return [y, yp]
    cf["E1"] = e1

    def e4():
        # y2' = c - b y2^2: y2 = sqrt(c/b) tanh(sqrt(b c) t), y1 = 30 + log(cosh(sqrt(b c) t))/b
        c, b = mpf(0.032), mpf(0.4)
        w = mp.sqrt(b * c)
        return [30 + mp.log(mp.cosh(w * t)) / b, mp.sqrt(c / b) * mp.tanh(w * t)]
    cf["E4"] = e4

    def e5():
        # asinh(y2) = log(25 / (25 - t)); y1 = integral of y2.
        q = 25 - t
        y2 = (25 / q - q / 25) / 2
        y1 = (25 * mp.log(25 / q) + (q * q - 625) / 50) / 2
        return [y1, y2]
    cf["E5"] = e5
    return cf


# ---- Enright & Pryce's end values (16 digits, for the decimal data) -----------------------

EP = {
    "A1": [2.061153622438558e-09], "A2": [0.2182178902359887], "A3": [2.491650271850414],
    "A4": [17.73016648131483], "A5": [-0.7887826688964196],
    "B1": [0.6761876008576667, 0.1860816099640036],
    "B2": [1.000000001030576, 1.000000000000000, 0.9999999989694235],
    "B3": [2.061153488557776e-09, 5.257228022048349e-02, 0.9474277177183630],
    "B4": [0.9826950928005993, 2.198447081694832, 0.9129452507276399],
    "B5": [-0.9396570798729192, -0.3421177754000779, 0.7414126596199957],
    "C1": [2.061153622240064e-09, 4.122307244619555e-08, 4.122307244716968e-07,
           2.748204829855288e-06, 1.374102414941961e-05, 5.496409659803266e-05,
           1.832136553274552e-04, 5.234675866508716e-04, 1.308668966628220e-03,
           9.979127409508656e-01],
    "C2": [2.061153577984930e-09, 2.061153573736588e-09, 2.061153569488245e-09,
           2.061153565239902e-09, 2.061153560991560e-09, 2.061153556743217e-09,
           2.061153552494874e-09, 2.061153548246532e-09, 2.061153543998189e-09,
           9.999999814496180e-01],
    "C3": [2.948119211022058e-03, 5.635380154844266e-03, 7.829072515926013e-03,
           9.348257908594937e-03, 1.007943610301970e-02, 9.982674171429909e-03,
           9.088693332766085e-03, 7.489115195185912e-03, 5.322964130953349e-03,
           2.762434379029886e-03],
    "C4": [3.124111453721466e-03, 6.015416842150318e-03, 8.470021834842650e-03,
           1.033682931733337e-02, 1.153249572873923e-02, 1.204549525737964e-02,
           1.192957068015293e-02, 1.128883207111195e-02, 1.025804501391024e-02,
           8.982017581934167e-03, 7.597500902492453e-03, 6.219920556824985e-03,
           4.935916341009131e-03, 3.801432544256119e-03, 2.844213677587894e-03,
           2.069123394222672e-03, 1.464687282843915e-03, 1.009545263941126e-03,
           6.779354330227017e-04, 4.437815269118510e-04, 2.833264542938954e-04,
           1.765005798796805e-04, 1.073342592697238e-04, 6.374497601777217e-05,
           3.698645309704183e-05, 2.097466832643746e-05, 1.162956710412555e-05,
           6.306710405783322e-06, 3.346286430868515e-06, 1.737760074184334e-06,
           8.835366904275847e-07, 4.399520411127637e-07, 2.146181897152360e-07,
           1.025981211654928e-07, 4.807864068784215e-08, 2.209175152474847e-08,
           9.956251263138180e-09, 4.402193653748924e-09, 1.910149382204028e-09,
           8.135892921473050e-10, 3.402477118549235e-10, 1.397485617545782e-10,
           5.638575303049199e-11, 2.235459707956947e-11, 8.710498036398032e-12,
           3.336554275346643e-12, 1.256679567784939e-12, 4.654359053128788e-13,
           1.693559145599857e-13, 5.996593816663054e-14, 1.891330702629865e-14],
    "C5": [-4.792730224323733, -2.420550725448973, -9.212509306014886e-01,
           -4.217310404035213, 7.356202947498970, 3.223785985421212,
           4.035559443262270, 1.719865528670555e+01, 7.478910794233703,
           -2.998759326324844e+01, -4.107310937550929, -9.277008321754407e-01,
           -2.442125302518482e+01, 2.381459045746554e+01, 1.492096306951359e+01,
           3.499208963063806e-01, -5.748487687912825e-01, -2.551694020879149e-01,
           -5.237040978903326e-01, -2.493000463579661e-01, -8.045341642044464e-02,
           -3.875289237334110e-01, 5.648603288767891e-02, 3.023606472143342e-02,
           4.133856546712445e-02, -2.862393029841379e-01, -1.183032405136207e-01,
           -1.511986457359206e-01, -2.460068894318766e-01, -3.189687411323877e-02],
    "D1": [2.198835352008397e-01, 9.427076846341813e-01, -9.787659841058176e-01,
           3.287977990962036e-01],
    "D2": [-1.777027357140412e-01, 9.467784719905892e-01, -1.030294163192969,
           1.211074890053952e-01],
    "D3": [-5.780432953035361e-01, 8.633840009194193e-01, -9.595083730380727e-01,
           -6.504915126712089e-02],
    "D4": [-9.538990293416394e-01, 6.907409024219432e-01, -8.212674270877433e-01,
           -1.539574259125825e-01],
    "D5": [-1.295266250987574, 4.003938963792321e-01, -6.775390924707566e-01,
           -1.270838154278686e-01],
    "E1": [1.456723600728308e-01, -9.883500195574063e-02],
    "E2": [2.008149762174948, -4.250887527320057e-02],
    "E3": [-1.004178858647128e-01, 2.411400132095954e-01],
    "E4": [3.395091444646555e+01, 2.767822659672869e-01],
    "E5": [1.411797390542629e+01, 2.400000000000002],
}


def dist(a, b):
    return max(abs(mpf(x) - mpf(y)) / max(1, abs(mpf(y))) for x, y in zip(a, b))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="CSV to write (default: none)")
    ap.add_argument("--only", default=None, help="comma-separated problems (no CSV)")
    ap.add_argument("--dps", type=int, default=40)
    ap.add_argument("--check", action="store_true", help="exit 1 if a check fails")
    a = ap.parse_args()
    names = a.only.split(",") if a.only else dp.NAMES
    mp.mp.dps = 50
    cf = closed_forms()
    exact = {k: v() for k, v in cf.items() if k in names}
    mp.mp.dps = a.dps
    rows, ok = [], True
    print(f"{'problem':7s} {'GBS steps':>9s} {'GBS nfe':>8s} {'|gbs26-gbs32|':>13s} "
          f"{'|gbs-exact|':>12s} {'|ref-E&P|':>10s} {'sec':>5s}  reference")
    for name, f, y0 in dp.PROBLEMS:
        if name not in names:
            continue
        t0 = time.time()
        ya, _, _ = gbs(f, y0, dp.T1, mpf("1e-26"))
        yb, steps, nfe = gbs(f, y0, dp.T1, mpf("1e-32"))
        d_gbs = dist(ya, yb)
        d_ex = dist(yb, exact[name]) if name in exact else None
        ref = exact.get(name, yb)
        d_ep = dist(ref, EP[name])
        src = "closed form" if name in exact else "extrapolation (GBS, tol 1e-32)"
        print(f"{name:7s} {steps:9d} {nfe:8d} {float(d_gbs):13.2e} "
              f"{'-' if d_ex is None else '%12.2e' % float(d_ex):>12s} {float(d_ep):10.2e} "
              f"{time.time() - t0:5.0f}  {src}")
        sys.stdout.flush()
        ok &= d_gbs < 1e-22 and (d_ex is None or d_ex < 1e-24) and d_ep < 1e-13
        for i, v in enumerate(ref):
            rows.append((name, i, mp.nstr(v, 25, min_fixed=1, max_fixed=0), src))
    if a.out and not a.only:
        with open(a.out, "w") as fh:
            fh.write("# y(20) of the non-stiff DETEST problems (bench/peers/detest_problems.py),\n"
                     "# made by bench/peers/detest_ref.py: closed forms where they exist,\n"
                     "# otherwise Gragg-Bulirsch-Stoer extrapolation in 40-digit mpmath.\n")
            fh.write("problem,component,y_ref,source\n")
            for r in rows:
                fh.write(f"{r[0]},{r[1]},{r[2]},{r[3]}\n")
        print(f"wrote {a.out}")
    print("all checks passed" if ok else "CHECK FAILED")
    if a.check and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
