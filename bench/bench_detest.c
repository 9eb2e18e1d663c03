/* bench_detest.c — NFE, steps, rejections and final error of bosh3, dopri5 and dop853 on
 * the 25 non-stiff DETEST problems, classes A–E, t in [0, 20] (Hull, Enright, Fellen &
 * Sedgwick, SIAM J. Numer. Anal. 9 (1972) 603–637), rtol = atol = tol, as CSV.  The same
 * problems for SciPy and the comparison at equal error: bench/peers/detest_*.py.
 * Run: ./bench_detest [--quick] [--csv FILE] [--tols decade|quarter|eighth] [--offset F]
 *                     [--methods bosh3,dopri5,dop853] [--problems A1,B2,...] [--ref FILE]
 *                     [--ctl METHOD:safety=S,beta=B,facmin=F,facmax=G,q=Q ...]
 * --ctl runs METHOD with other step-size controller constants than the registry's (the
 * controller study of bench/peers/detest_sweep.py); it reaches into the library's
 * internals (node_solver.tableau), as only a benchmark may.
 */
#include <libnode.h>
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the problems -------------------------------------------------------------- */

#define MAXDIM 51

/* Class A: single equations. */
static int f_a1(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; dy[0] = -y[0]; return 0; }
static int f_a2(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; dy[0] = -0.5 * y[0] * y[0] * y[0]; return 0; }
static int f_a3(void *c, double t, const double *y, double *dy)
{ (void)c; dy[0] = y[0] * cos(t); return 0; }
static int f_a4(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; dy[0] = y[0] * (20 - y[0]) / 80; return 0; }
static int f_a5(void *c, double t, const double *y, double *dy)
{ (void)c; dy[0] = (y[0] - t) / (y[0] + t); return 0; }

/* Class B: small systems. */
static int f_b1(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    dy[0] = 2 * (y[0] - y[0] * y[1]);
    dy[1] = -(y[1] - y[0] * y[1]);
    return 0;
}
static int f_b2(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    dy[0] = -y[0] + y[1];
    dy[1] = y[0] - 2 * y[1] + y[2];
    dy[2] = y[1] - y[2];
    return 0;
}
static int f_b3(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    dy[0] = -y[0];
    dy[1] = y[0] - y[1] * y[1];
    dy[2] = y[1] * y[1];
    return 0;
}
static int f_b4(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    double r = sqrt(y[0] * y[0] + y[1] * y[1]);
    dy[0] = -y[1] - y[0] * y[2] / r;
    dy[1] = y[0] - y[1] * y[2] / r;
    dy[2] = y[0] / r;
    return 0;
}
/* Euler's equations of a rigid body without external forces. */
static int f_b5(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    dy[0] = y[1] * y[2];
    dy[1] = -y[0] * y[2];
    dy[2] = -0.51 * y[0] * y[1];
    return 0;
}

/* Class C: moderate systems.  C1: a radioactive decay chain; C2: the same with rates
   1..9; C3, C4: the heat equation's tridiagonal matrix (-1, 2, -1 up to sign), n = 10, 51. */
static int f_c1(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    dy[0] = -y[0];
    for (int i = 1; i < 9; i++)
        dy[i] = y[i - 1] - y[i];
    dy[9] = y[8];
    return 0;
}
static int f_c2(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    dy[0] = -y[0];
    for (int i = 1; i < 9; i++)
        dy[i] = i * y[i - 1] - (i + 1) * y[i];
    dy[9] = 9 * y[8];
    return 0;
}
static void tridiag(int n, const double *y, double *dy)
{
    dy[0] = -2 * y[0] + y[1];
    for (int i = 1; i < n - 1; i++)
        dy[i] = y[i - 1] - 2 * y[i] + y[i + 1];
    dy[n - 1] = y[n - 2] - 2 * y[n - 1];
}
static int f_c3(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; tridiag(10, y, dy); return 0; }
static int f_c4(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; tridiag(51, y, dy); return 0; }

/* C5: the five outer planets about the sun: positions y[3i..3i+2], velocities
   y[15+3i..]; y_i'' = k2 (-(m0 + m_i) y_i / r_i^3 + sum_{j != i} m_j ((y_j - y_i) / d_ij^3
   - y_j / r_j^3)). */
static const double c5_k2 = 2.95912208286, c5_m0 = 1.00000597682;
static const double c5_m[5] = { 0.000954786104043, 0.000285583733151, 0.0000437273164546,
                                0.0000517759138449, 0.00000277777777778 };
static int f_c5(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    double rinv3[5], dinv3[5][5];
    for (int i = 0; i < 5; i++) {
        double p = y[3 * i] * y[3 * i] + y[3 * i + 1] * y[3 * i + 1] + y[3 * i + 2] * y[3 * i + 2];
        rinv3[i] = 1 / (p * sqrt(p));
        dinv3[i][i] = 0;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) {
            double a = y[3 * i] - y[3 * j], b = y[3 * i + 1] - y[3 * j + 1],
                   d = y[3 * i + 2] - y[3 * j + 2];
            double p = a * a + b * b + d * d;
            dinv3[i][j] = dinv3[j][i] = 1 / (p * sqrt(p));
        }
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 3; k++) {
            double s = -(c5_m0 + c5_m[i]) * y[3 * i + k] * rinv3[i];
            for (int j = 0; j < 5; j++)
                if (j != i)
                    s += c5_m[j] * ((y[3 * j + k] - y[3 * i + k]) * dinv3[i][j]
                                    - y[3 * j + k] * rinv3[j]);
            dy[3 * i + k] = y[15 + 3 * i + k];
            dy[15 + 3 * i + k] = c5_k2 * s;
        }
    return 0;
}

/* Class D: the two-body problem, eccentricity 0.1 … 0.9 (initial values in main). */
static int f_orbit(void *c, double t, const double *y, double *dy)
{
    (void)c; (void)t;
    double p = y[0] * y[0] + y[1] * y[1], r3 = p * sqrt(p);
    dy[0] = y[2];
    dy[1] = y[3];
    dy[2] = -y[0] / r3;
    dy[3] = -y[1] / r3;
    return 0;
}

/* Class E: second-order equations as systems.  E1: Bessel's equation of order 1/2 in
   x = t + 1; E2: Van der Pol, mu = 1; E3: Duffing's equation, forced; E4, E5: y1 does
   not act on y2. */
static int f_e1(void *c, double t, const double *y, double *dy)
{
    (void)c;
    double x = t + 1;
    dy[0] = y[1];
    dy[1] = -(y[1] / x + (1 - 0.25 / (x * x)) * y[0]);
    return 0;
}
static int f_e2(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; dy[0] = y[1]; dy[1] = (1 - y[0] * y[0]) * y[1] - y[0]; return 0; }
static int f_e3(void *c, double t, const double *y, double *dy)
{
    (void)c;
    dy[0] = y[1];
    dy[1] = y[0] * y[0] * y[0] / 6 - y[0] + 2 * sin(2.78535 * t);
    return 0;
}
static int f_e4(void *c, double t, const double *y, double *dy)
{ (void)c; (void)t; dy[0] = y[1]; dy[1] = 0.032 - 0.4 * y[1] * y[1]; return 0; }
static int f_e5(void *c, double t, const double *y, double *dy)
{ (void)c; dy[0] = y[1]; dy[1] = sqrt(1 + y[1] * y[1]) / (25 - t); return 0; }

typedef int (*rhs_fn)(void *, double, const double *, double *);

typedef struct problem {
    const char *name;
    size_t dim;
    rhs_fn f;
    double y0[MAXDIM];       /* zero beyond what is listed; D and C5 set in init_problems */
    double ref[MAXDIM];      /* y(20), read from the reference file */
    int nref;
} problem;

static problem problems[] = {
    { "A1", 1, f_a1, { 1 }, { 0 }, 0 },
    { "A2", 1, f_a2, { 1 }, { 0 }, 0 },
    { "A3", 1, f_a3, { 1 }, { 0 }, 0 },
    { "A4", 1, f_a4, { 1 }, { 0 }, 0 },
    { "A5", 1, f_a5, { 4 }, { 0 }, 0 },
    { "B1", 2, f_b1, { 1, 3 }, { 0 }, 0 },
    { "B2", 3, f_b2, { 2, 0, 1 }, { 0 }, 0 },
    { "B3", 3, f_b3, { 1, 0, 0 }, { 0 }, 0 },
    { "B4", 3, f_b4, { 3, 0, 0 }, { 0 }, 0 },
    { "B5", 3, f_b5, { 0, 1, 1 }, { 0 }, 0 },
    { "C1", 10, f_c1, { 1 }, { 0 }, 0 },
    { "C2", 10, f_c2, { 1 }, { 0 }, 0 },
    { "C3", 10, f_c3, { 1 }, { 0 }, 0 },
    { "C4", 51, f_c4, { 1 }, { 0 }, 0 },
    { "C5", 30, f_c5, {
        3.42947415189, 3.35386959711, 1.35494901715,
        6.64145542550, 5.97156957878, 2.18231499728,
        11.2630437207, 14.6952576794, 6.27960525067,
        -30.1552268759, 1.65699966404, 1.43785752721,
        -21.1238353380, 28.4465098142, 15.3882659679,
        -0.557160570446, 0.505696783289, 0.230578543901,
        -0.415570776342, 0.365682722812, 0.169143213293,
        -0.325325669158, 0.189706021964, 0.0877265322780,
        -0.0240476254170, -0.287659532608, -0.117219543175,
        -0.176860753121, -0.216393453025, -0.0148647893090 }, { 0 }, 0 },
    { "D1", 4, f_orbit, { 0 }, { 0 }, 0 },
    { "D2", 4, f_orbit, { 0 }, { 0 }, 0 },
    { "D3", 4, f_orbit, { 0 }, { 0 }, 0 },
    { "D4", 4, f_orbit, { 0 }, { 0 }, 0 },
    { "D5", 4, f_orbit, { 0 }, { 0 }, 0 },
    { "E1", 2, f_e1, { 0.6713967071418030, 0.09540051444747446 }, { 0 }, 0 },
    { "E2", 2, f_e2, { 2, 0 }, { 0 }, 0 },
    { "E3", 2, f_e3, { 0, 0 }, { 0 }, 0 },
    { "E4", 2, f_e4, { 30, 0 }, { 0 }, 0 },
    { "E5", 2, f_e5, { 0, 0 }, { 0 }, 0 },
};
#define NPROBLEMS (sizeof problems / sizeof problems[0])
#define T1 20.0

static void init_problems(void)
{
    static const double ecc[5] = { 0.1, 0.3, 0.5, 0.7, 0.9 };
    for (int k = 0; k < 5; k++) {
        double *y0 = problems[15 + k].y0;
        y0[0] = 1 - ecc[k];
        y0[3] = sqrt((1 + ecc[k]) / (1 - ecc[k]));
    }
}

/* ---- references ------------------------------------------------------------------ */

/* Lines "problem,component,y_ref,source"; '#' lines and the header are skipped. */
static int read_refs(const char *path)
{
    FILE *fh = fopen(path, "r");
    if (!fh)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, fh)) {
        if (line[0] == '#' || strncmp(line, "problem,", 8) == 0)
            continue;
        char *c1 = strchr(line, ',');
        if (!c1)
            continue;
        *c1 = '\0';
        char *end;
        long comp = strtol(c1 + 1, &end, 10);
        if (*end != ',')
            continue;
        double v = strtod(end + 1, NULL);
        for (size_t q = 0; q < NPROBLEMS; q++)
            if (strcmp(problems[q].name, line) == 0 && comp >= 0
                && (size_t)comp < problems[q].dim) {
                problems[q].ref[comp] = v;
                problems[q].nref++;
            }
    }
    fclose(fh);
    for (size_t q = 0; q < NPROBLEMS; q++)
        if ((size_t)problems[q].nref != problems[q].dim) {
            fprintf(stderr, "%s: %d of %zu reference values for %s\n", path, problems[q].nref,
                    problems[q].dim, problems[q].name);
            return -2;
        }
    return 0;
}

/* The error measure: max_i |y_i - ref_i| / max(1, |ref_i|). */
static double scaled_error(const problem *p, const double *y)
{
    double e = 0;
    for (size_t i = 0; i < p->dim; i++)
        e = fmax(e, fabs(y[i] - p->ref[i]) / fmax(1.0, fabs(p->ref[i])));
    return e;
}

/* ---- running ------------------------------------------------------------------- */

typedef struct result {
    node_status st;
    node_stats stats;
    double err;
} result;

/* Registry entries with the controller constants of --ctl (used: nonzero method). */
static node__tableau custom[3];
static int ncustom;

/* "dopri5:safety=0.85,beta=0.02": copy the method's registry entry into custom[] and
   change the named constants.  0, or -1 with a message. */
static int parse_ctl(const char *arg)
{
    char buf[256];
    if (strlen(arg) >= sizeof buf || ncustom == 3)
        return -1;
    strcpy(buf, arg);
    char *colon = strchr(buf, ':');
    node_method m;
    if (!colon)
        return -1;
    *colon = '\0';
    if (node_method_parse(buf, &m) != NODE_OK) {
        fprintf(stderr, "--ctl: unknown method %s\n", buf);
        return -1;
    }
    const node__tableau *tab = node__tableau_get(m);
    if (!tab->e) {
        fprintf(stderr, "--ctl: %s has no step-size controller\n", buf);
        return -1;
    }
    node__tableau *c = &custom[ncustom++];
    *c = *tab;
    for (char *kv = strtok(colon + 1, ","); kv; kv = strtok(NULL, ",")) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        double v = atof(eq + 1);
        if (strcmp(kv, "safety") == 0)      c->ctl.safety = v;
        else if (strcmp(kv, "beta") == 0)   c->ctl.beta = v;
        else if (strcmp(kv, "facmin") == 0) c->ctl.facmin = v;
        else if (strcmp(kv, "facmax") == 0) c->ctl.facmax = v;
        else if (strcmp(kv, "q") == 0)      c->ctl.q = (int)v;
        else {
            fprintf(stderr, "--ctl: unknown constant %s (safety, beta, facmin, facmax, q)\n", kv);
            return -1;
        }
    }
    return 0;
}

static result solve(node_solver *slv, const problem *p, node_method m, double tol)
{
    slv->tableau = NULL;
    for (int i = 0; i < ncustom; i++)
        if (custom[i].method == m)
            slv->tableau = &custom[i];
    node_system sys = { .dim = p->dim, .f = p->f };
    const double ts[2] = { 0.0, T1 };
    double ys[2 * MAXDIM];
    node_options opt = node_options_default();
    opt.method = m;
    opt.rtol = opt.atol = tol;
    result r;
    memset(&r, 0, sizeof r);
    r.st = node_solver_odeint(slv, &sys, p->y0, ts, 2, ys, &opt, &r.stats);
    r.err = r.st == NODE_OK ? scaled_error(p, ys + p->dim) : NAN;
    return r;
}

/* The C definitions against the references: dop853 at 1e-13 must come within 1e-10 of
   every reference (a wrong coefficient or initial value misses by far more). */
static int check_definitions(node_solver *slv)
{
    int bad = 0;
    double worst = 0;
    for (size_t q = 0; q < NPROBLEMS; q++) {
        result r = solve(slv, &problems[q], NODE_DOP853, 1e-13);
        if (r.st != NODE_OK || !(r.err <= 1e-10)) {
            fprintf(stderr, "definition check: %s: dop853 at 1e-13 gives error %.3e (%s)\n",
                    problems[q].name, r.err, node_strerror(r.st));
            bad = 1;
        }
        worst = fmax(worst, r.err);
    }
    fprintf(stderr, "definition check (dop853 at 1e-13 vs references): worst error %.2e: %s\n",
            worst, bad ? "FAILED" : "ok");
    return bad;
}

static int in_list(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *s = list; (s = strstr(s, name)) != NULL; s += n)
        if ((s == list || s[-1] == ',') && (s[n] == ',' || s[n] == '\0'))
            return 1;
    return 0;
}

/* The reference file: --ref, else data/detest_ref.csv beside this source file (CMake
   compiles it by its absolute path), else bench/data/detest_ref.csv from the top. */
static int load_refs(const char *arg)
{
    if (arg)
        return read_refs(arg) == 0 ? 0 : (fprintf(stderr, "cannot read %s\n", arg), -1);
    char path[4096];
    const char *src = __FILE__, *slash = strrchr(src, '/');
    if (slash && (size_t)(slash - src) + 32 < sizeof path) {
        snprintf(path, sizeof path, "%.*s/data/detest_ref.csv", (int)(slash - src), src);
        int rc = read_refs(path);
        if (rc != -1)
            return rc;
    }
    if (read_refs("bench/data/detest_ref.csv") == 0)
        return 0;
    fprintf(stderr, "cannot find detest_ref.csv: give --ref FILE\n");
    return -1;
}

int main(int argc, char **argv)
{
    int quick = 0, per_decade = 4;
    double offset = 0;
    const char *csv_path = NULL, *ref_path = NULL, *methods = NULL, *plist = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc)
            csv_path = argv[++i];
        else if (strcmp(argv[i], "--ref") == 0 && i + 1 < argc)
            ref_path = argv[++i];
        else if (strcmp(argv[i], "--methods") == 0 && i + 1 < argc)
            methods = argv[++i];
        else if (strcmp(argv[i], "--offset") == 0 && i + 1 < argc)
            offset = atof(argv[++i]);
        else if (strcmp(argv[i], "--problems") == 0 && i + 1 < argc)
            plist = argv[++i];
        else if (strcmp(argv[i], "--ctl") == 0 && i + 1 < argc) {
            if (parse_ctl(argv[++i]) != 0) {
                fprintf(stderr, "bad --ctl %s\n", argv[i]);
                return 2;
            }
        }
        else if (strcmp(argv[i], "--tols") == 0 && i + 1 < argc
                 && (per_decade = strcmp(argv[i + 1], "decade") == 0    ? 1
                                  : strcmp(argv[i + 1], "quarter") == 0 ? 4
                                  : strcmp(argv[i + 1], "eighth") == 0  ? 8 : 0) > 0)
            i++;
        else {
            fprintf(stderr, "usage: %s [--quick] [--csv FILE] [--tols decade|quarter|eighth] "
                            "[--offset F] "
                            "[--methods bosh3,dopri5,dop853] [--problems A1,B2,...] "
                            "[--ref FILE] [--ctl METHOD:NAME=VALUE,...]\n", argv[0]);
            return 2;
        }
    }
    init_problems();
    if (load_refs(ref_path) != 0)
        return 1;

    node_solver *slv = NULL;
    if (node_solver_create(&slv) != NODE_OK) {
        fprintf(stderr, "node_solver_create failed\n");
        return 1;
    }
    int rc = check_definitions(slv);

    FILE *out = stdout;
    if (csv_path && !(out = fopen(csv_path, "w"))) {
        perror(csv_path);
        node_solver_free(slv);
        return 1;
    }
    /* tol = 10^(-3 - (k + offset)/d), k = 0 .. 7d: 1e-3 ... 1e-10 at d = 1, 4 (default)
       or 8 points a decade (--offset, a fraction of a grid step, shifts the grid: the
       spread of the results over shifted grids shows how much luck is in them);
       --quick: 1e-3, 1e-6, 1e-9. */
    int d = quick ? 1 : per_decade, nk = quick ? 3 : 7 * d + 1, step = quick ? 3 : 1;
    static const node_method all[] = { NODE_BOSH3, NODE_DOPRI5, NODE_DOP853 };
    int64_t total_nfe[3] = { 0 }, total_rej[3] = { 0 };
    int failed = 0;
    fprintf(out, "problem,method,tol,nfe,nsteps,nreject,error,status\n");
    for (size_t q = 0; q < NPROBLEMS; q++) {
        const problem *p = &problems[q];
        if (!in_list(plist, p->name))
            continue;
        for (int m = 0; m < 3; m++) {
            if (!in_list(methods, node_method_name(all[m])))
                continue;
            for (int k = 0; k < nk; k++) {
                double tol = pow(10.0, -3.0 - ((double)(k * step) + offset) / d);
                result r = solve(slv, p, all[m], tol);
                fprintf(out, "%s,%s,%.6g,%lld,%lld,%lld,%.6e,%s\n", p->name,
                        node_method_name(all[m]), tol, (long long)r.stats.nfe,
                        (long long)r.stats.nsteps, (long long)r.stats.nreject, r.err,
                        r.st == NODE_OK ? "ok" : node_strerror(r.st));
                total_nfe[m] += r.stats.nfe;
                total_rej[m] += r.stats.nreject;
                failed += r.st != NODE_OK;
            }
        }
    }
    node_solver_free(slv);
    if (out != stdout) {
        if (fclose(out) != 0) {
            perror(csv_path);
            return 1;
        }
        printf("wrote %s\n", csv_path);
        for (int m = 0; m < 3; m++)
            if (total_nfe[m] > 0)
                printf("%-7s total nfe %lld, rejected steps %lld\n", node_method_name(all[m]),
                       (long long)total_nfe[m], (long long)total_rej[m]);
    }
    if (failed)
        fprintf(stderr, "%d solves failed\n", failed);
    return rc || failed ? 1 : 0;
}
