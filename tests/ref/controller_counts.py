#!/usr/bin/python3
"""controller_counts.py -- an independent re-implementation, in Python, of the adaptive
Runge-Kutta driver (HNW I, Section II.4; the step-size control of Hairer's dopri5.f:
PI controller h_new = h * safety * err^-alpha * err_old^beta, alpha = 1/q - 0.75 beta,
no growth right after a rejection, the I part only on rejection, the automatic first
step of the book with its RMS norm), with exact rational tableaus.  It recomputes the
BS3 and DOPRI5 rows of EXPECTED COUNTS in tests/test_ode_control.c from the controller
constants alone, without libnode.  (Its DOPRI5 rows reproduce Hairer's dopri5.f run with
the same constants; the DOP853 rows of the test come from Hairer's dop853.f, which is
not part of this repository.)

    /usr/bin/python3 tests/ref/controller_counts.py            # the table, current constants
    /usr/bin/python3 tests/ref/controller_counts.py --bs3 0.9,0,0.2,10 --dopri5 0.85,0.02,0.2,10
"""
import argparse
import math
from fractions import Fraction as F


def bs3():
    c = [0, F(1, 2), F(3, 4), 1]
    A = [[], [F(1, 2)], [0, F(3, 4)], [F(2, 9), F(1, 3), F(4, 9)]]
    b = [F(2, 9), F(1, 3), F(4, 9), 0]
    bh = [F(7, 24), F(1, 4), F(1, 3), F(1, 8)]
    return c, A, b, [x - y for x, y in zip(b, bh)], 3


def dopri5():
    c = [0, F(1, 5), F(3, 10), F(4, 5), F(8, 9), 1, 1]
    A = [[], [F(1, 5)], [F(3, 40), F(9, 40)], [F(44, 45), F(-56, 15), F(32, 9)],
         [F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)],
         [F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)],
         [F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84)]]
    b = A[6] + [0]
    bh = [F(5179, 57600), 0, F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100),
          F(1, 40)]
    return c, A, b, [x - y for x, y in zip(b, bh)], 5


def problem(name):
    """The problems of test_ode_control.c: (dim, y0, f, t1)."""
    if name == "stiffish":
        return 1, [3.0], lambda t, y: [-50 * (y[0] - math.cos(t))], 10.0
    if name == "expsin":
        return 1, [1.0], lambda t, y: [y[0] * math.cos(t)], 20.0
    if name == "vanderpol":
        return 2, [2.0, 0.0], lambda t, y: [y[1], (1 - y[0] * y[0]) * y[1] - y[0]], 20.0
    if name == "arenstorf":
        mu = 0.012277471
        mup = 1.0 - mu

        def f(t, y):
            r1 = (y[0] + mu) * (y[0] + mu) + y[1] * y[1]
            r2 = (y[0] - mup) * (y[0] - mup) + y[1] * y[1]
            d1 = r1 * math.sqrt(r1)
            d2 = r2 * math.sqrt(r2)
            return [y[2], y[3], y[0] + 2.0 * y[3] - mup * (y[0] + mu) / d1 - mu * (y[0] - mup) / d2,
                    y[1] - 2.0 * y[2] - mup * y[1] / d1 - mu * y[1] / d2]
        return 4, [0.994, 0.0, 0.0, -2.00158510637908252240537862224], f, \
            17.0652165601579625588917206249
    raise ValueError(name)


def run(method, ctl, pname, tol, h0):
    c, A, b, e, q = method()
    safe, beta, fmin, fmax = ctl
    c = [float(x) for x in c]
    A = [[float(x) for x in r] for r in A]
    b = [float(x) for x in b]
    e = [float(x) for x in e]
    n, y, f, t1 = problem(pname)
    calls = [0]

    def fc(t, y):
        calls[0] += 1
        return f(t, y)

    def norm(v, y0, y1):
        return math.sqrt(sum((v[i] / (tol + tol * max(abs(y0[i]), abs(y1[i])))) ** 2
                             for i in range(n)) / n)
    t = 0.0
    k0 = fc(t, y)
    if h0 == 0:
        d0, d1 = norm(y, y, y), norm(k0, y, y)
        h = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        h = min(h, t1)
        f1 = fc(t + h, [y[i] + h * k0[i] for i in range(n)])
        d2 = norm([f1[i] - k0[i] for i in range(n)], y, y) / h
        der = max(d1, d2)
        h1 = max(1e-6, h * 1e-3) if der <= 1e-15 else (0.01 / der) ** (1.0 / q)
        h = min(100 * h, h1, t1)
    else:
        h = min(h0, t1)
    alpha = 1.0 / q - 0.75 * beta
    errold, rejected, nstep, nacc = 1e-4, False, 0, 0
    s = len(c)
    while True:
        last = False
        if t + 1.01 * h - t1 >= 0:
            h, last = t1 - t, True
        nstep += 1
        k = [k0]
        for i in range(1, s):
            yi = [y[d] + h * sum(A[i][j] * k[j][d] for j in range(i)) for d in range(n)]
            k.append(fc(t + c[i] * h, yi))
        ynew = [y[d] + h * sum(b[j] * k[j][d] for j in range(s)) for d in range(n)]
        err = norm([h * sum(e[j] * k[j][d] for j in range(s)) for d in range(n)], y, ynew)
        if err <= 1:
            nacc += 1
            t = t1 if last else t + h
            y, k0 = ynew, k[s - 1]
            if last:
                return calls[0], nstep, nacc
            fac = safe * err ** (-alpha) * errold ** beta if err > 0 else fmax
            fac = min(fmax, max(fmin, fac))
            if rejected:
                fac = min(fac, 1.0)
            errold, rejected = max(err, 1e-4), False
            h *= fac
        else:
            h *= min(1.0, max(fmin, safe * err ** (-alpha)))
            rejected = True


# The rows of EXPECTED COUNTS: (method, problem index of test_ode_control.c, tol, step).
PROBLEMS = ["stiffish", "expsin", "arenstorf", "vanderpol"]
ROWS = {
    "bosh3": [(0, 1e-3, 0), (1, 1e-8, 0), (2, 1e-4, 0.5), (3, 1e-6, 0.01)],
    "dopri5": [(0, 1e-3, 0), (0, 1e-6, 0), (1, 1e-8, 0), (2, 1e-4, 0.5), (2, 1e-7, 1e-3),
               (3, 1e-6, 0.01)],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bs3", default="0.9,0,0.2,10", help="safety,beta,facmin,facmax")
    ap.add_argument("--dopri5", default="0.85,0.02,0.2,10", help="safety,beta,facmin,facmax")
    a = ap.parse_args()
    ctl = {"bosh3": tuple(map(float, a.bs3.split(","))),
           "dopri5": tuple(map(float, a.dopri5.split(",")))}
    meth = {"bosh3": bs3, "dopri5": dopri5}
    enum = {"bosh3": "NODE_BOSH3, ", "dopri5": "NODE_DOPRI5,"}
    for m in ("bosh3", "dopri5"):
        for p, tol, step in ROWS[m]:
            nfe, nst, nacc = run(meth[m], ctl[m], PROBLEMS[p], tol, step)
            print("    { %s %d, %-5s %-6s %s %s %d }," % (
                enum[m], p, "%g," % tol, "%g," % step, ("%d," % nfe).ljust(5),
                ("%d," % nst).ljust(6), nacc))


if __name__ == "__main__":
    main()
