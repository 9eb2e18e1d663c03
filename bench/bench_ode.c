/* bench_ode.c — work-precision benchmark of libnode's explicit solvers (adaptive bosh3,
 * dopri5, dop853 at rtol = atol = 1e-3 … 1e-12; rk4 at fixed steps) on classic non-stiff
 * problems: Van der Pol, Lotka–Volterra, the Arenstorf orbit and the two-body problem
 * (Hairer, Nørsett, Wanner, Solving ODEs I, Sec. II.0 and II.10).  Peer script with the
 * same problems and references: bench/peers/scipy_workprecision.py.
 * Run: ./bench_ode [--quick] [--csv FILE] [--check-ref]
 */
#define _POSIX_C_SOURCE 199309L
#include <libnode.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the problems -------------------------------------------------------------- */

/* Van der Pol, mu = 1:  y1' = y2,  y2' = mu (1 - y1^2) y2 - y1. */
static const double vdp_mu = 1.0;

static int f_vanderpol(void *ctx, double t, const double *y, double *dy)
{
    (void)ctx; (void)t;
    dy[0] = y[1];
    dy[1] = vdp_mu * (1.0 - y[0] * y[0]) * y[1] - y[0];
    return 0;
}

/* Lotka–Volterra:  x' = a x - b x y,  y' = -c y + d x y  (a, b, c, d = 1.5, 1, 3, 1). */
static const double lv_a = 1.5, lv_b = 1.0, lv_c = 3.0, lv_d = 1.0;

static int f_lotka(void *ctx, double t, const double *y, double *dy)
{
    (void)ctx; (void)t;
    dy[0] = lv_a * y[0] - lv_b * y[0] * y[1];
    dy[1] = -lv_c * y[1] + lv_d * y[0] * y[1];
    return 0;
}

/* Arenstorf orbit, restricted three-body problem (HNW I, (0.1) of Sec. II.0).  The
   mass ratios are the doubles mu and 1 - mu as computed here (see the references). */
static const double ar_mu = 0.012277471;
#define AR_MUP (1.0 - ar_mu)

static int f_arenstorf(void *ctx, double t, const double *y, double *dy)
{
    (void)ctx; (void)t;
    const double mup = AR_MUP;
    double r1 = (y[0] + ar_mu) * (y[0] + ar_mu) + y[1] * y[1];
    double r2 = (y[0] - mup) * (y[0] - mup) + y[1] * y[1];
    double d1 = r1 * sqrt(r1), d2 = r2 * sqrt(r2);
    dy[0] = y[2];
    dy[1] = y[3];
    dy[2] = y[0] + 2.0 * y[3] - mup * (y[0] + ar_mu) / d1 - ar_mu * (y[0] - mup) / d2;
    dy[3] = y[1] - 2.0 * y[2] - mup * y[1] / d1 - ar_mu * y[1] / d2;
    return 0;
}

/* Two-body problem (GM = 1), eccentricity e = 0.5, starting at pericentre. */
static const double tb_e = 0.5;

static int f_twobody(void *ctx, double t, const double *y, double *dy)
{
    (void)ctx; (void)t;
    double r2 = y[0] * y[0] + y[1] * y[1];
    double r3 = r2 * sqrt(r2);
    dy[0] = y[2];
    dy[1] = y[3];
    dy[2] = -y[0] / r3;
    dy[3] = -y[1] / r3;
    return 0;
}

typedef int (*rhs_fn)(void *, double, const double *, double *);

typedef struct problem {
    const char *name, *desc;
    size_t dim;
    rhs_fn f;
    double t1;             /* t0 = 0 */
    double y0[4];
    long double ref[4];    /* y(t1), see below */
} problem;

/* Reference final states y(t1).  The error measure is the max-norm of the final-state
   error, max_i |y_i(t1) - ref_i|.
   - vanderpol, lotkavolterra, arenstorf: mpmath's Taylor-series integrator (odefun)
     at 30 and at 40 significant digits, agreeing to all digits written here; they are
     recomputed by `scipy_workprecision.py --make-ref`, and --check-ref below checks them
     independently with a long-double classical RK4 and Richardson extrapolation.
   - arenstorf: the exact orbit returns to y0 after one period T, but the problem solved
     here has y0, T, mu and 1 - mu rounded to double; that moves y(T) away from y0 by up to
     4.9e-11 (in y3), so the reference is the solution of the double-rounded problem.
   - twobody: the exact solution, Kepler's equation E - e sin E = t solved by Newton in
     long double (kepler() below); with vy0 = sqrt(3) rounded to double the computed orbit
     differs from it by ~1e-14 (mpmath), below every error measured here. */
static problem problems[] = {
    { "vanderpol", "Van der Pol, mu = 1, t in [0, 20], y0 = (2, 0)",
      2, f_vanderpol, 20.0, { 2.0, 0.0 },
      { 2.00814976217494859201449067303L, -4.2508875273202146985925079829e-2L } },
    { "lotkavolterra", "Lotka-Volterra, a,b,c,d = 1.5,1,3,1, t in [0, 15], y0 = (1, 1)",
      2, f_lotka, 15.0, { 1.0, 1.0 },
      { 6.34191838849216293038450304716L, 7.32320971837937517944365738303e-1L } },
    { "arenstorf", "Arenstorf orbit, mu = 0.012277471, one period T = 17.0652165601579625...",
      4, f_arenstorf, 17.0652165601579625588917206249,
      { 0.994, 0.0, 0.0, -2.00158510637908252240537862224 },
      { 0.993999999999908840338072090236L, -3.03094302298241833e-13L,
        -4.92853658105505273e-11L, -2.00158510639327023849822360732L } },
    { "twobody", "two-body, e = 0.5, t in [0, 20], y0 = (1-e, 0, 0, sqrt((1+e)/(1-e)))",
      4, f_twobody, 20.0, { 0.5, 0.0, 0.0, 0.0 /* set in main */ }, { 0 } },
};
#define NPROBLEMS (sizeof problems / sizeof problems[0])

/* Position and velocity on the Kepler ellipse (a = 1, GM = 1) at time t from pericentre:
   mean anomaly M = t, E - e sin E = M by Newton, then
   x = cos E - e, y = sqrt(1-e^2) sin E, x' = -sin E / (1 - e cos E), y' = sqrt(1-e^2) cos E / (1 - e cos E). */
static void kepler(long double e, long double t, long double *y)
{
    long double E = t, s = sqrtl(1.0L - e * e);
    for (int it = 0; it < 100; it++) {
        long double dE = (E - e * sinl(E) - t) / (1.0L - e * cosl(E));
        E -= dE;
        if (fabsl(dE) <= 4 * LDBL_EPSILON * fabsl(E))
            break;
    }
    long double den = 1.0L - e * cosl(E);
    y[0] = cosl(E) - e;
    y[1] = s * sinl(E);
    y[2] = -sinl(E) / den;
    y[3] = s * cosl(E) / den;
}

/* ---- --check-ref: an independent long-double classical RK4 ------------------------- */

/* The right-hand sides again, in long double (same coefficients, same doubles). */
static void fl(const problem *p, const long double *y, long double *dy)
{
    if (p->f == f_vanderpol) {
        dy[0] = y[1];
        dy[1] = (long double)vdp_mu * (1.0L - y[0] * y[0]) * y[1] - y[0];
    } else if (p->f == f_lotka) {
        dy[0] = (long double)lv_a * y[0] - (long double)lv_b * y[0] * y[1];
        dy[1] = -(long double)lv_c * y[1] + (long double)lv_d * y[0] * y[1];
    } else if (p->f == f_arenstorf) {
        long double mu = ar_mu, mup = AR_MUP;
        long double r1 = (y[0] + mu) * (y[0] + mu) + y[1] * y[1];
        long double r2 = (y[0] - mup) * (y[0] - mup) + y[1] * y[1];
        long double d1 = r1 * sqrtl(r1), d2 = r2 * sqrtl(r2);
        dy[0] = y[2];
        dy[1] = y[3];
        dy[2] = y[0] + 2.0L * y[3] - mup * (y[0] + mu) / d1 - mu * (y[0] - mup) / d2;
        dy[3] = y[1] - 2.0L * y[2] - mup * y[1] / d1 - mu * y[1] / d2;
    } else {
        long double r2 = y[0] * y[0] + y[1] * y[1], r3 = r2 * sqrtl(r2);
        dy[0] = y[2];
        dy[1] = y[3];
        dy[2] = -y[0] / r3;
        dy[3] = -y[1] / r3;
    }
}

/* Classical RK4 (HNW I, Table II.1.2, left) with n equal steps over [0, p->t1]. */
static void rk4l(const problem *p, long n, long double *y)
{
    size_t d = p->dim;
    long double h = (long double)p->t1 / n, k1[4], k2[4], k3[4], k4[4], z[4];
    for (size_t i = 0; i < d; i++)
        y[i] = p->y0[i];
    for (long s = 0; s < n; s++) {
        fl(p, y, k1);
        for (size_t i = 0; i < d; i++) z[i] = y[i] + 0.5L * h * k1[i];
        fl(p, z, k2);
        for (size_t i = 0; i < d; i++) z[i] = y[i] + 0.5L * h * k2[i];
        fl(p, z, k3);
        for (size_t i = 0; i < d; i++) z[i] = y[i] + h * k3[i];
        fl(p, z, k4);
        for (size_t i = 0; i < d; i++)
            y[i] += h / 6.0L * (k1[i] + 2.0L * k2[i] + 2.0L * k3[i] + k4[i]);
    }
}

/* For each problem: RK4 with n and 2n steps, Richardson's extrapolation
   y_2n + (y_2n - y_n)/15 (the error is O(h^4)), and its distance to the reference. */
static void check_references(void)
{
    printf("Reference check: long-double RK4 with n and 2n steps, Richardson-extrapolated\n");
    printf("%-14s %9s %12s %14s %14s\n", "problem", "n", "|y2n-yn|", "|extrap-ref|",
           "|y2n-ref|");
    for (size_t q = 0; q < NPROBLEMS; q++) {
        const problem *p = &problems[q];
        /* The Arenstorf orbit's close approaches need far smaller steps. */
        long n0 = p->f == f_arenstorf ? 1L << 20 : 1L << 18;
        for (long n = n0; n <= 4 * n0; n <<= 1) {
            long double a[4], b[4];
            rk4l(p, n, a);
            rk4l(p, 2 * n, b);
            long double dab = 0, dx = 0, db = 0;
            for (size_t i = 0; i < p->dim; i++) {
                long double x = b[i] + (b[i] - a[i]) / 15.0L;
                dab = fmaxl(dab, fabsl(b[i] - a[i]));
                dx = fmaxl(dx, fabsl(x - p->ref[i]));
                db = fmaxl(db, fabsl(b[i] - p->ref[i]));
            }
            printf("%-14s %9ld %12.3Le %14.3Le %14.3Le\n", p->name, n, dab, dx, db);
            fflush(stdout);
        }
    }
    /* kepler() in long double against the same solution in 30-digit mpmath. */
    static const long double tb_mp[4] = {
        -0.57804329530353612327514583616L, 0.863384000919419280133573065247L,
        -0.959508373038072735626449003247L, -0.0650491512671209016771935462988L };
    long double yk[4], dk = 0;
    kepler(tb_e, 20.0L, yk);
    for (int i = 0; i < 4; i++)
        dk = fmaxl(dk, fabsl(yk[i] - tb_mp[i]));
    printf("twobody: long-double Kepler/Newton vs 30-digit mpmath: %.3Le\n", dk);
}

/* ---- timing ------------------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per call of p->f in a bare loop, called through a volatile pointer (out of
   line, as the solver calls it) on a fixed state: the throughput cost of f, so the
   overhead derived from it is if anything an upper bound. */
static double time_f(const problem *p)
{
    rhs_fn volatile fp = p->f;
    double y[4], dy[4];
    memcpy(y, p->y0, sizeof y);
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        long n = 1L << 16;
        double dt;
        for (;;) {
            double t0 = now();
            for (long i = 0; i < n; i++) {
                fp(NULL, 0.0, y, dy);
            }
            dt = now() - t0;
            if (dt >= 0.01)
                break;
            n *= 2;
        }
        best = fmin(best, dt / (double)n);
    }
    return best;
}

typedef struct result {
    node_status st;
    node_stats stats;
    double err;             /* max-norm of the final-state error */
    double tmed, tmin;      /* seconds per solve: median and min over batches */
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One configuration: solve once for the statistics and the error, then (unless quick)
   time batches of repeated solves, each >= 10 ms, 5 batches (>= 50 ms in all).  The
   solver object keeps its workspace, so the timed solves allocate nothing. */
static result run(node_solver *slv, const problem *p, const node_options *opt, int quick)
{
    node_system sys = { .dim = p->dim, .f = p->f };
    const double ts[2] = { 0.0, p->t1 };
    double ys[8];
    result r;
    memset(&r, 0, sizeof r);
    double t0 = now();
    r.st = node_solver_odeint(slv, &sys, p->y0, ts, 2, ys, opt, &r.stats);
    r.tmed = r.tmin = now() - t0;
    r.err = NAN;
    if (r.st != NODE_OK)
        return r;
    r.err = 0;
    for (size_t i = 0; i < p->dim; i++)
        r.err = fmax(r.err, (double)fabsl(ys[p->dim + i] - p->ref[i]));
    if (quick)
        return r;
    long reps = (long)ceil(0.01 / fmax(r.tmin, 1e-9));
    double tb[5];
    for (int b = 0; b < 5; b++) {
        t0 = now();
        for (long k = 0; k < reps; k++)
            (void)node_solver_odeint(slv, &sys, p->y0, ts, 2, ys, opt, NULL);
        tb[b] = (now() - t0) / (double)reps;
    }
    qsort(tb, 5, sizeof tb[0], cmp_double);
    r.tmed = tb[2];
    r.tmin = tb[0];
    return r;
}

/* ---- main -------------------------------------------------------------------------- */

typedef struct row {
    size_t problem;
    node_method method;
    double tol;             /* adaptive methods */
    long n;                 /* rk4: number of steps */
    double tf;              /* seconds per f evaluation of this problem */
    result r;
} row;

/* Solver overhead per attempted step: the time of a step minus its f evaluations. */
static double overhead(const row *w)
{
    double steps = w->r.stats.nsteps > 0 ? (double)w->r.stats.nsteps : 1.0;
    return (w->r.tmed - (double)w->r.stats.nfe * w->tf) / steps;
}

static void print_row(const row *w)
{
    char tag[24];
    if (w->n > 0)
        snprintf(tag, sizeof tag, "%ld", w->n);
    else
        snprintf(tag, sizeof tag, "%.0e", w->tol);
    const node_stats *s = &w->r.stats;
    printf("%-7s %7s %8ld %7ld %6ld", node_method_name(w->method), tag, s->nfe, s->nsteps,
           s->nreject);
    if (w->r.st != NODE_OK) {
        printf("  failed: %s\n", node_strerror(w->r.st));
        return;
    }
    double ovh = overhead(w);
    printf(" %10.3e %8.1f [%7.1f] %10.1f %7.2f\n", w->r.err, 1e6 * w->r.tmed,
           1e6 * w->r.tmin, 1e9 * ovh, ovh / w->tf);
}

static void csv_row(FILE *csv, const row *w)
{
    double ovh = overhead(w);
    fprintf(csv, "%s,%s,%.17g,%ld,%ld,%ld,%ld,%ld,%.17g,%.9g,%.9g,%.9g,%.6g,%.6g,%s\n",
            problems[w->problem].name, node_method_name(w->method), w->tol, w->n,
            w->r.stats.nfe, w->r.stats.nsteps, w->r.stats.naccept, w->r.stats.nreject,
            w->r.err, w->r.tmed, w->r.tmin, w->tf, 1e9 * ovh, ovh / w->tf,
            w->r.st == NODE_OK ? "ok" : node_strerror(w->r.st));
}

#define MAXROWS (NPROBLEMS * (3 * 10 + 11))

int main(int argc, char **argv)
{
    int quick = 0, check = 0;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--check-ref") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            csv_path = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--csv FILE] [--check-ref]\n", argv[0]);
            return 2;
        }
    }

    /* The two-body initial velocity and exact final state. */
    problem *tb = &problems[NPROBLEMS - 1];
    tb->y0[3] = sqrt((1.0 + tb_e) / (1.0 - tb_e));
    long double yk[4];
    kepler(tb_e, tb->t1, yk);
    for (int i = 0; i < 4; i++)
        tb->ref[i] = yk[i];

    if (check) {
        check_references();
        return 0;
    }

    static const node_method adaptive[] = { NODE_BOSH3, NODE_DOPRI5, NODE_DOP853 };
    static const double quick_tols[] = { 1e-3, 1e-6, 1e-9 };
    static const long quick_n[] = { 256, 4096 };
    size_t ntol = quick ? 3 : 10, nfix = quick ? 2 : 11;

    node_solver *slv = NULL;
    if (node_solver_create(&slv) != NODE_OK) {
        fprintf(stderr, "node_solver_create failed\n");
        return 1;
    }

    printf("libnode %s work-precision benchmark%s\n", node_version(), quick ? " (--quick)" : "");
    printf("err: max-norm of the final-state error against the reference; rtol = atol = tol.\n"
           "time: per solve (node_solver_odeint, workspace reused), median [min] of 5 batches\n"
           "  of >= 10 ms%s.\n"
           "ovh: solver overhead, time per attempted step minus its f evaluations (timed in a\n"
           "  bare loop), in ns and in multiples of one f evaluation.\n",
           quick ? " (--quick: a single solve, timings unreliable)" : "");

    static row rows[MAXROWS];
    size_t nrows = 0, cheapest = 0;
    double tfs[NPROBLEMS];
    for (size_t q = 0; q < NPROBLEMS; q++) {
        const problem *p = &problems[q];
        double tf = time_f(p);
        tfs[q] = tf;
        if (tf < tfs[cheapest])
            cheapest = q;
        printf("\n== %s: %s\n   one f evaluation: %.1f ns\n", p->name, p->desc, 1e9 * tf);
        printf("%-7s %7s %8s %7s %6s %10s %18s %10s %7s\n", "method", "tol|N", "nfe", "steps",
               "rej", "err", "time_us med [min]", "ovh_ns/st", "ovh/f");
        for (size_t m = 0; m < 4; m++) {
            size_t nk = m < 3 ? ntol : nfix;
            for (size_t k = 0; k < nk; k++) {
                row *w = &rows[nrows++];
                node_options opt = node_options_default();
                w->problem = q;
                w->tf = tf;
                if (m < 3) {
                    opt.method = w->method = adaptive[m];
                    opt.rtol = opt.atol = w->tol = quick ? quick_tols[k] : pow(10.0, -3.0 - (double)k);
                    w->n = 0;
                } else {
                    opt.method = w->method = NODE_RK4;
                    w->n = quick ? quick_n[k] : 64L << k;
                    w->tol = 0;
                    opt.step = p->t1 / (double)w->n;
                }
                w->r = run(slv, p, &opt, quick);
                print_row(w);
                fflush(stdout);
            }
        }
    }
    node_solver_free(slv);

    /* Overhead per step with the cheapest right-hand side: median over the rows. */
    printf("\nSolver overhead per attempted step with the cheapest f (%s, %.1f ns per f),\n"
           "median over the rows of each method:\n", problems[cheapest].name,
           1e9 * tfs[cheapest]);
    for (size_t m = 0; m < 4; m++) {
        node_method meth = m < 3 ? adaptive[m] : NODE_RK4;
        double v[16];
        size_t nv = 0;
        for (size_t i = 0; i < nrows; i++)
            if (rows[i].problem == cheapest && rows[i].method == meth && rows[i].r.st == NODE_OK
                && nv < 16)
                v[nv++] = overhead(&rows[i]);
        if (nv == 0)
            continue;
        qsort(v, nv, sizeof v[0], cmp_double);
        double med = nv % 2 ? v[nv / 2] : 0.5 * (v[nv / 2 - 1] + v[nv / 2]);
        printf("  %-7s %8.1f ns/step = %6.2f f evaluations\n", node_method_name(meth),
               1e9 * med, med / tfs[cheapest]);
    }

    if (csv_path) {
        FILE *csv = fopen(csv_path, "w");
        if (!csv) {
            perror(csv_path);
            return 1;
        }
        fprintf(csv, "problem,method,tol,nsteps_fixed,nfe,nsteps,naccept,nreject,err,"
                     "time_med_s,time_min_s,f_s,overhead_ns_per_step,overhead_per_f,status\n");
        for (size_t i = 0; i < nrows; i++)
            csv_row(csv, &rows[i]);
        if (fclose(csv) != 0) {
            perror(csv_path);
            return 1;
        }
        printf("\nwrote %s\n", csv_path);
    }
    return 0;
}
