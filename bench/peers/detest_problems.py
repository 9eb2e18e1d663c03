"""detest_problems.py -- the 25 problems of the non-stiff DETEST set, classes A-E
(Hull, Enright, Fellen & Sedgwick, "Comparing numerical methods for ordinary
differential equations", SIAM J. Numer. Anal. 9 (1972) 603-637; the same problems as in
Enright & Pryce's DETEST package, ACM TOMS 13 (1987) 1-27), every one on t in [0, 20].

Shared by detest_scipy.py (SciPy), detest_ref.py (the mpmath references) and
detest_compare.py; bench/bench_detest.c has the same definitions in C, with the same
double constants.  Each right-hand side takes a module M that provides sqrt, sin and cos
(math for floats, mpmath for the references), so that one definition serves both.

The error measure used by both benchmarks: the final-state error scaled componentwise,
    err = max_i |y_i(20) - ref_i| / max(1, |ref_i|),
an absolute error for components below 1 and a relative error above.
"""

T1 = 20.0

# ---- class A: single equations ---------------------------------------------------------


def a1(t, y, M):
    return [-y[0]]


def a2(t, y, M):
    return [-0.5 * y[0] * y[0] * y[0]]


def a3(t, y, M):
    return [y[0] * M.cos(t)]


def a4(t, y, M):
    return [y[0] * (20 - y[0]) / 80]


def a5(t, y, M):
    return [(y[0] - t) / (y[0] + t)]


# ---- class B: small systems --------------------------------------------------------------


def b1(t, y, M):
    return [2 * (y[0] - y[0] * y[1]), -(y[1] - y[0] * y[1])]


def b2(t, y, M):
    return [-y[0] + y[1], y[0] - 2 * y[1] + y[2], y[1] - y[2]]


def b3(t, y, M):
    return [-y[0], y[0] - y[1] * y[1], y[1] * y[1]]


def b4(t, y, M):
    r = M.sqrt(y[0] * y[0] + y[1] * y[1])
    return [-y[1] - y[0] * y[2] / r, y[0] - y[1] * y[2] / r, y[0] / r]


B5_K = 0.51


def b5(t, y, M):
    return [y[1] * y[2], -y[0] * y[2], -B5_K * y[0] * y[1]]


# ---- class C: moderate systems -----------------------------------------------------------


def c1(t, y, M):
    # y1' = -y1, yi' = y(i-1) - yi (i = 2..9), y10' = y9  (radioactive decay chain)
    return [-y[0]] + [y[i - 1] - y[i] for i in range(1, 9)] + [y[8]]


def c2(t, y, M):
    # y1' = -y1, yi' = (i-1) y(i-1) - i yi (i = 2..9), y10' = 9 y9
    return [-y[0]] + [i * y[i - 1] - (i + 1) * y[i] for i in range(1, 9)] + [9 * y[8]]


def tridiag(y):
    n = len(y)
    return ([-2 * y[0] + y[1]] + [y[i - 1] - 2 * y[i] + y[i + 1] for i in range(1, n - 1)]
            + [y[n - 2] - 2 * y[n - 1]])


def c3(t, y, M):
    return tridiag(y)


def c4(t, y, M):
    return tridiag(y)


# C5: the five outer planets about the sun (Jupiter ... Pluto): positions y[3i..3i+2] of
# body i, velocities y[15+3i..]; k2 the gravitational constant, m0 the sun with the inner
# planets and m_i the planets' masses (solar masses), as DETEST gives them.
C5_K2 = 2.95912208286
C5_M0 = 1.00000597682
C5_M = [0.000954786104043, 0.000285583733151, 0.0000437273164546, 0.0000517759138449,
        0.00000277777777778]
C5_Y0 = [3.42947415189, 3.35386959711, 1.35494901715,
         6.64145542550, 5.97156957878, 2.18231499728,
         11.2630437207, 14.6952576794, 6.27960525067,
         -30.1552268759, 1.65699966404, 1.43785752721,
         -21.1238353380, 28.4465098142, 15.3882659679,
         -0.557160570446, 0.505696783289, 0.230578543901,
         -0.415570776342, 0.365682722812, 0.169143213293,
         -0.325325669158, 0.189706021964, 0.0877265322780,
         -0.0240476254170, -0.287659532608, -0.117219543175,
         -0.176860753121, -0.216393453025, -0.0148647893090]


def c5(t, y, M):
    # y_i'' = k2 (-(m0 + m_i) y_i / r_i^3
    #             + sum_{j != i} m_j ((y_j - y_i) / d_ij^3 - y_j / r_j^3))
    rinv3 = []
    for i in range(5):
        p = y[3 * i] ** 2 + y[3 * i + 1] ** 2 + y[3 * i + 2] ** 2
        rinv3.append(1 / (p * M.sqrt(p)))
    dinv3 = [[0] * 5 for _ in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            p = ((y[3 * i] - y[3 * j]) ** 2 + (y[3 * i + 1] - y[3 * j + 1]) ** 2
                 + (y[3 * i + 2] - y[3 * j + 2]) ** 2)
            dinv3[i][j] = dinv3[j][i] = 1 / (p * M.sqrt(p))
    acc = []
    for i in range(5):
        for c in range(3):
            s = -(C5_M0 + C5_M[i]) * y[3 * i + c] * rinv3[i]
            for j in range(5):
                if j != i:
                    s += C5_M[j] * ((y[3 * j + c] - y[3 * i + c]) * dinv3[i][j]
                                    - y[3 * j + c] * rinv3[j])
            acc.append(C5_K2 * s)
    return list(y[15:30]) + acc


# ---- class D: orbit equations (two-body problem, eccentricity e) -------------------------


def orbit(t, y, M):
    p = y[0] * y[0] + y[1] * y[1]
    r3 = p * M.sqrt(p)
    return [y[2], y[3], -y[0] / r3, -y[1] / r3]


def orbit_y0(e):
    import math
    return [1 - e, 0.0, 0.0, math.sqrt((1 + e) / (1 - e))]


# ---- class E: higher-order equations -----------------------------------------------------


def e1(t, y, M):
    # Bessel's equation of order 1/2 in x = t + 1: y = sqrt(2 / (pi x)) sin x
    x = t + 1
    return [y[1], -(y[1] / x + (1 - 0.25 / (x * x)) * y[0])]


def e2(t, y, M):
    # Van der Pol, mu = 1
    return [y[1], (1 - y[0] * y[0]) * y[1] - y[0]]


E3_W = 2.78535


def e3(t, y, M):
    # Duffing's equation, forced
    return [y[1], y[0] * y[0] * y[0] / 6 - y[0] + 2 * M.sin(E3_W * t)]


def e4(t, y, M):
    return [y[1], 0.032 - 0.4 * y[1] * y[1]]


def e5(t, y, M):
    return [y[1], M.sqrt(1 + y[1] * y[1]) / (25 - t)]


# name, f, y0 (doubles, exactly as bench_detest.c has them)
PROBLEMS = [
    ("A1", a1, [1.0]),
    ("A2", a2, [1.0]),
    ("A3", a3, [1.0]),
    ("A4", a4, [1.0]),
    ("A5", a5, [4.0]),
    ("B1", b1, [1.0, 3.0]),
    ("B2", b2, [2.0, 0.0, 1.0]),
    ("B3", b3, [1.0, 0.0, 0.0]),
    ("B4", b4, [3.0, 0.0, 0.0]),
    ("B5", b5, [0.0, 1.0, 1.0]),
    ("C1", c1, [1.0] + [0.0] * 9),
    ("C2", c2, [1.0] + [0.0] * 9),
    ("C3", c3, [1.0] + [0.0] * 9),
    ("C4", c4, [1.0] + [0.0] * 50),
    ("C5", c5, list(C5_Y0)),
    ("D1", orbit, orbit_y0(0.1)),
    ("D2", orbit, orbit_y0(0.3)),
    ("D3", orbit, orbit_y0(0.5)),
    ("D4", orbit, orbit_y0(0.7)),
    ("D5", orbit, orbit_y0(0.9)),
    ("E1", e1, [0.6713967071418030, 0.09540051444747446]),
    ("E2", e2, [2.0, 0.0]),
    ("E3", e3, [0.0, 0.0]),
    ("E4", e4, [30.0, 0.0]),
    ("E5", e5, [0.0, 0.0]),
]

NAMES = [p[0] for p in PROBLEMS]


def load_ref(path):
    """{problem: [y_ref as float, ...]} from detest_ref.csv (problem,component,y_ref)."""
    import csv
    ref = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(line for line in fh if not line.startswith("#")):
            ref.setdefault(r["problem"], []).append((int(r["component"]), float(r["y_ref"])))
    return {k: [v for _, v in sorted(vs)] for k, vs in ref.items()}


def scaled_error(y, ref):
    return max(abs(float(a) - b) / max(1.0, abs(b)) for a, b in zip(y, ref))


GRIDS = {"decade": 1, "quarter": 4, "eighth": 8}


def tolerances(grid, lo=3, hi=10):
    """rtol = atol = tol = 10^(-lo - k/d), k = 0 .. (hi - lo) d: 1e-3 ... 1e-10 at d points
    a decade by default (bench_detest.c computes the same with pow(10, -3 - k/d))."""
    d = GRIDS[grid]
    return [10.0 ** (-lo - k / d) for k in range(round((hi - lo) * d) + 1)]
