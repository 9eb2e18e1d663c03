/* bench_ensemble.c — per-sample solves (node_ensemble_odeint) against the batch as one
 * big ODE (node_odeint on the concatenated state: one step size, one error norm), on
 *   mlp      dy/dt = MLP(y), a 2-50-2 tanh MLP with random weights (bench_train's shape),
 *   cubic    the true spiral dy/dt = A y³, A = [[-0.1, 2], [-2, -0.1]],
 *   hetero   the linear spiral dy/dt = k_j A y, k_j log-uniform over [1, 100],
 *   mlphet   dy/dt = k_j MLP(y), the MLP of `mlp` with those rates
 * at batch 20 and 512: total NFE (row evaluations), time (best of the reps, the two
 * solvers interleaved), the largest and the median per-sample error against a
 * reference (analytic for hetero; a per-sample node_odeint at rtol 1e-12 otherwise),
 * and the per-sample solver on 1 and 2 threads.
 * Run: ./bench_ensemble [--quick] [--reps N] [--case mlp|cubic|hetero|mlphet] [--group G]
 * (--quick: batch 20 only, one rep; what CI runs)
 */
#define _POSIX_C_SOURCE 199309L
#include <libnode.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const double A[4] = { -0.1, 2.0, -2.0, -0.1 };

#define NT 11              /* output times */
static uint64_t g_group;   /* --group: samples per lock-step group (0 = the default) */

/* ---- cubic and linear spirals, as one big system and as an ensemble ---------- */

typedef struct prob {
    int cubic;
    const double *k;   /* per-sample rate (linear), NULL: 1 */
    size_t n;
} prob;

static void row(const prob *p, size_t j, const double *y, double *dy)
{
    double u = y[0], v = y[1];
    if (p->cubic) {
        u = u * u * u;
        v = v * v * v;
    }
    double k = p->k ? p->k[j] : 1.0;
    dy[0] = k * (A[0] * u + A[1] * v);
    dy[1] = k * (A[2] * u + A[3] * v);
}

static int big_f(void *ctx, double t, const double *y, double *dy)
{
    const prob *p = ctx;
    (void)t;
    for (size_t j = 0; j < p->n; j++)
        row(p, j, y + 2 * j, dy + 2 * j);
    return 0;
}

/* The ensemble sees no sample index: the rate rides along as a third, constant state
   component (dk/dt = 0) in the hetero case, so the rows stay independent. */
typedef struct eprob { int cubic, with_k; } eprob;

static int ens_f(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                 double *dy)
{
    const eprob *p = ctx;
    (void)worker; (void)t;
    size_t d = p->with_k ? 3 : 2;
    for (size_t r = 0; r < n; r++) {
        const double *yr = y + r * d;
        double u = yr[0], v = yr[1], k = p->with_k ? yr[2] : 1.0;
        if (p->cubic) {
            u = u * u * u;
            v = v * v * v;
        }
        dy[r * d] = k * (A[0] * u + A[1] * v);
        dy[r * d + 1] = k * (A[2] * u + A[3] * v);
        if (p->with_k)
            dy[r * d + 2] = 0;
    }
    return 0;
}

/* k_j MLP(y): the big ODE scales the batch's rows, the ensemble carries k_j as a third
   component and evaluates the MLP on the gathered (y_0, y_1) with a workspace per worker. */
typedef struct bigmlp { node_mlp *m; const double *k; size_t n; } bigmlp;

static int bigmlp_f(void *ctx, double t, const double *y, double *dy)
{
    const bigmlp *b = ctx;
    node_mlp_forward(b->m, b->n, t, y, dy);
    for (size_t j = 0; j < b->n; j++) {
        dy[2 * j] *= b->k[j];
        dy[2 * j + 1] *= b->k[j];
    }
    return 0;
}

/* vjp of k_j MLP(y): the MLP's with a scaled by k_j. */
static double g_bigbuf[2][2 * 512];

static int bigmlp_vjp(void *ctx, double t, const double *y, const double *a, double *dy,
                      double *vy, double *vp, double *vt)
{
    const bigmlp *b = ctx;
    double *as = g_bigbuf[0], *o = g_bigbuf[1];
    for (size_t j = 0; j < b->n; j++) {
        as[2 * j] = b->k[j] * a[2 * j];
        as[2 * j + 1] = b->k[j] * a[2 * j + 1];
    }
    node_mlp_vjp(b->m, b->n, t, y, as, o, vy, vp, NULL);
    if (dy)
        for (size_t j = 0; j < b->n; j++) {
            dy[2 * j] = b->k[j] * o[2 * j];
            dy[2 * j + 1] = b->k[j] * o[2 * j + 1];
        }
    if (vt)
        *vt = 0;
    return 0;
}

#define CAP 256
typedef struct emlp {
    const node_mlp *m;
    node_mlp_ws *ws[2];
    double x[2][2 * CAP], o[2][2 * CAP], as[2][2 * CAP], gx[2][2 * CAP];
} emlp;

static int emlp_vjp(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                    const double *a, double *dy, double *vy, double *vp)
{
    emlp *e = ctx;
    (void)t;
    if (n > CAP || worker > 1)
        return 1;
    double *x = e->x[worker], *o = e->o[worker], *as = e->as[worker], *gx = e->gx[worker];
    for (size_t r = 0; r < n; r++) {
        double k = y[3 * r + 2];
        x[2 * r] = y[3 * r];
        x[2 * r + 1] = y[3 * r + 1];
        as[2 * r] = k * a[3 * r];
        as[2 * r + 1] = k * a[3 * r + 1];
    }
    node_mlp_vjp_ws(e->m, e->ws[worker], n, 0, x, as, o, gx, vp, NULL);
    for (size_t r = 0; r < n; r++) {
        double k = y[3 * r + 2];
        vy[3 * r] = gx[2 * r];
        vy[3 * r + 1] = gx[2 * r + 1];
        vy[3 * r + 2] = a[3 * r] * o[2 * r] + a[3 * r + 1] * o[2 * r + 1];
        if (dy) {
            dy[3 * r] = k * o[2 * r];
            dy[3 * r + 1] = k * o[2 * r + 1];
            dy[3 * r + 2] = 0;
        }
    }
    return 0;
}

static int emlp_f(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                  double *dy)
{
    emlp *e = ctx;
    (void)t;
    if (n > CAP || worker > 1)
        return 1;
    double *x = e->x[worker], *o = e->o[worker];
    for (size_t r = 0; r < n; r++) {
        x[2 * r] = y[3 * r];
        x[2 * r + 1] = y[3 * r + 1];
    }
    node_mlp_forward_ws(e->m, e->ws[worker], n, 0, x, o);
    for (size_t r = 0; r < n; r++) {
        dy[3 * r] = y[3 * r + 2] * o[2 * r];
        dy[3 * r + 1] = y[3 * r + 2] * o[2 * r + 1];
        dy[3 * r + 2] = 0;
    }
    return 0;
}

/* y(t) = e^{-0.1 k t} R(2 k t) y0 for the linear spiral. */
static void linear_exact(double k, double t, const double *y0, double *y)
{
    double e = exp(-0.1 * k * t), c = cos(2 * k * t), s = sin(2 * k * t);
    y[0] = e * (c * y0[0] + s * y0[1]);
    y[1] = e * (-s * y0[0] + c * y0[1]);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Largest and median over samples of the largest error over a sample's outputs (rows
   of 2 + extra components; only the first two compared). */
static void errors(const double *ys, size_t stride, const double *ref, size_t rstride,
                   size_t n, size_t nt, double *emax, double *emed)
{
    double *e = malloc(n * sizeof *e);
    for (size_t j = 0; j < n; j++) {
        double m = 0;
        for (size_t i = 0; i < nt; i++)
            for (size_t d = 0; d < 2; d++) {
                double v = fabs(ys[(j * nt + i) * stride + d] - ref[(j * nt + i) * rstride + d]);
                if (v > m)
                    m = v;
            }
        e[j] = m;
    }
    qsort(e, n, sizeof *e, cmpd);
    *emax = e[n - 1];
    *emed = e[n / 2];
    free(e);
}

/* Gradients of L = ½ Σ |y(ts_i)|² (dL/dys = ys): exact backprop and the adjoint
   (seminorm), the big ODE's against the ensemble's (1 thread): time (best of reps),
   evaluations (rows of f and vjp), and how far apart the two dL/dθ are. */
static void grad_times(const char *name, const node_system *big, const node_ensemble_system *es,
                       node_ensemble *e, size_t n, size_t d, const double *ts,
                       const double *ysb, const double *yse, const node_options *o0, int reps)
{
    size_t np = es->nparams;
    double *wb = malloc(n * 2 * NT * sizeof *wb), *we = malloc(n * d * NT * sizeof *we);
    double *gb = malloc(n * 2 * sizeof *gb), *ge = malloc(n * d * sizeof *ge);
    double *pb = malloc(np * sizeof *pb), *pe = malloc(np * sizeof *pe);
    memcpy(wb, ysb, n * 2 * NT * sizeof *wb);
    for (size_t i = 0; i < n * NT; i++)
        for (size_t c = 0; c < d; c++)
            we[i * d + c] = c < 2 ? yse[i * d + c] : 0;
    node_options o = *o0;
    o.seminorm = 1;
    node_ensemble_options e1;
    memset(&e1, 0, sizeof e1);
    e1.threads = 1;
    e1.group = g_group;
    for (int adj = 0; adj < 2; adj++) {
        double tb = INFINITY, te = INFINITY;
        node_stats sb, se;
        for (int rep = 0; rep < (reps + 1) / 2; rep++) {
            double t0 = now();
            if (adj)
                node_odeint_adjoint(big, ts, NT, ysb, wb, gb, pb, NULL, &o, &sb);
            else
                node_odeint_backprop(big, ts, NT, ysb, wb, gb, pb, NULL, &o, &sb);
            double t1 = now();
            if (adj)
                node_ensemble_adjoint(e, es, n, ts, NT, yse, we, ge, pe, &o, &e1, NULL, &se);
            else
                node_ensemble_backprop(e, es, n, ts, NT, yse, we, ge, pe, &o, &e1, NULL, &se);
            double t2 = now();
            tb = fmin(tb, t1 - t0);
            te = fmin(te, t2 - t1);
        }
        double num = 0, den = 0;
        for (size_t i = 0; i < np; i++) {
            num += (pe[i] - pb[i]) * (pe[i] - pb[i]);
            den += pb[i] * pb[i];
        }
        printf("  %-6s %4zu %-8s | NFE big %9lld ens %9lld | big %8.2f ms  ens %8.2f ms  "
               "%5.2fx | |dθ_ens - dθ_big| / |dθ_big| = %.1e%s\n", name, n,
               adj ? "adjoint" : "backprop", (long long)sb.nfe * (long long)n,
               (long long)se.nfe, 1e3 * tb, 1e3 * te, tb / te, sqrt(num / den),
               sb.status || se.status ? " (a solve failed)" : "");
    }
    fflush(stdout);
    free(wb); free(we); free(gb); free(ge); free(pb); free(pe);
}

typedef struct result {
    double t_big, t_ens1, t_ens2;
    long long nfe_big, nfe_ens;
    double emax_big, emed_big, emax_ens, emed_ens;
} result;

static void print(const char *name, size_t n, const result *r)
{
    printf("%-7s %5zu | %9lld %9lld | %8.2f %8.2f %6.2fx | %8.2f %5.2fx | %8.1e %8.1e | %8.1e %8.1e\n",
           name, n, r->nfe_big, r->nfe_ens, 1e3 * r->t_big, 1e3 * r->t_ens1,
           r->t_big / r->t_ens1, 1e3 * r->t_ens2, r->t_ens1 / r->t_ens2, r->emax_big,
           r->emed_big, r->emax_ens, r->emed_ens);
    fflush(stdout);
}


/* One case: kind 0 mlp, 1 cubic, 2 hetero, 3 mlphet. */

static void bench_case(int kind, size_t n, int reps, node_mlp *mlp)
{
    bool is_mlp = kind == 0 || kind == 3, het = kind >= 2;
    double T = het ? 2.0 : 5.0, ts[NT];
    for (int i = 0; i < NT; i++)
        ts[i] = T * i / (NT - 1);
    size_t d = het ? 3 : 2;
    double *y0 = malloc(n * d * sizeof *y0), *ybig0 = malloc(n * 2 * sizeof *ybig0);
    double *k = malloc(n * sizeof *k);
    uint64_t s = 12345 + n;
    for (size_t j = 0; j < n; j++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        double u = (double)(s >> 11) / 9007199254740992.0;
        s = s * 6364136223846793005u + 1442695040888963407u;
        double v = (double)(s >> 11) / 9007199254740992.0;
        double r = is_mlp ? 2.0 : 0.5 + u, a = 6.283185307179586 * v;
        y0[j * d] = ybig0[2 * j] = is_mlp ? r * (2 * u - 1) : r * cos(a);
        y0[j * d + 1] = ybig0[2 * j + 1] = is_mlp ? r * (2 * v - 1) : r * sin(a);
        k[j] = pow(100.0, (double)j / (double)(n > 1 ? n - 1 : 1));   /* 1 .. 100 */
        if (d == 3)
            y0[j * d + 2] = k[j];
    }
    node_options o = node_options_default();
    o.rtol = 1e-6;
    o.atol = 1e-8;

    /* systems */
    prob P = { kind == 1, kind == 2 ? k : NULL, n };
    eprob EP = { kind == 1, kind == 2 };
    node_system big;
    memset(&big, 0, sizeof big);
    node_ensemble_system es;
    memset(&es, 0, sizeof es);
    bigmlp BM = { mlp, k, n };
    static emlp EM;
    EM.m = mlp;
    if (kind == 0) {
        node_mlp_system(mlp, n, &big);
        node_mlp_ensemble(mlp, 256, 2, &es);
    } else if (kind == 3) {
        big.dim = 2 * n;
        big.ctx = &BM;
        big.f = bigmlp_f;
        big.vjp = bigmlp_vjp;
        big.nparams = node_mlp_nparams(mlp);
        for (int i = 0; i < 2; i++)
            if (!EM.ws[i])
                node_mlp_ws_create(mlp, CAP, &EM.ws[i]);
        es.dim = 3;
        es.ctx = &EM;
        es.f = emlp_f;
        es.vjp = emlp_vjp;
        es.nparams = node_mlp_nparams(mlp);
        es.max_rows = CAP;
        es.workers = 2;
    } else {
        big.dim = 2 * n;
        big.ctx = &P;
        big.f = big_f;
        es.dim = d;
        es.ctx = &EP;
        es.f = ens_f;
        es.workers = 2;
    }

    /* reference */
    double *ref = malloc(n * NT * d * sizeof *ref);
    size_t rstride = kind == 2 ? 2 : d;
    if (kind == 2) {
        for (size_t j = 0; j < n; j++)
            for (int i = 0; i < NT; i++)
                linear_exact(k[j], ts[i], ybig0 + 2 * j, ref + (j * NT + i) * 2);
    } else {
        node_options ro = o;
        ro.rtol = 1e-12;
        ro.atol = 1e-14;
        ro.method = NODE_DOP853;
        node_ensemble *e;
        node_ensemble_create(&e);
        node_ensemble_odeint(e, &es, n, y0, ts, NT, ref, &ro, NULL, NULL, NULL);
        node_ensemble_free(e);
    }

    double *ysb = malloc(n * 2 * NT * sizeof *ysb), *yse = malloc(n * d * NT * sizeof *yse);
    double *ybr = malloc(n * NT * 2 * sizeof *ybr);
    node_ensemble *e;
    node_ensemble_create(&e);
    node_ensemble_options e1, e2;
    memset(&e1, 0, sizeof e1);
    e1.threads = 1;
    e1.group = g_group;
    e2 = e1;
    e2.threads = 2;
    result r;
    memset(&r, 0, sizeof r);
    r.t_big = r.t_ens1 = r.t_ens2 = INFINITY;
    /* the big ODE and the 1-thread ensemble interleaved; the 2-thread runs after them
       (OpenMP's idle threads spin a while after a parallel region: on a busy machine
       they would take a core from a 1-thread run that followed) */
    for (int rep = 0; rep < 2 * reps; rep++) {
        node_stats sb, se;
        if (rep >= reps) {
            double t2 = now();
            node_ensemble_odeint(e, &es, n, y0, ts, NT, yse, &o, &e2, NULL, NULL);
            r.t_ens2 = fmin(r.t_ens2, now() - t2);
            continue;
        }
        double t0 = now();
        node_odeint(&big, ybig0, ts, NT, ysb, &o, &sb);
        double t1 = now();
        node_ensemble_odeint(e, &es, n, y0, ts, NT, yse, &o, &e1, NULL, &se);
        double t2 = now();
        r.t_big = fmin(r.t_big, t1 - t0);
        r.t_ens1 = fmin(r.t_ens1, t2 - t1);
        r.nfe_big = (long long)sb.nfe * (long long)n;
        r.nfe_ens = (long long)se.nfe;
        if (sb.status != NODE_OK || se.status != NODE_OK)
            fprintf(stderr, "solve failed: %s / %s\n", sb.message, se.message);
    }
    /* big ODE rows: ysb is nt × (n·2); regroup to n × nt × 2 */
    for (size_t j = 0; j < n; j++)
        for (int i = 0; i < NT; i++)
            for (int c = 0; c < 2; c++)
                ybr[(j * NT + i) * 2 + c] = ysb[(size_t)i * 2 * n + 2 * j + c];
    errors(ybr, 2, ref, rstride, n, NT, &r.emax_big, &r.emed_big);
    errors(yse, d, ref, rstride, n, NT, &r.emax_ens, &r.emed_ens);
    const char *names[4] = { "mlp", "cubic", "hetero", "mlphet" };
    print(names[kind], n, &r);
    if (is_mlp && n == 512)
        grad_times(names[kind], &big, &es, e, n, d, ts, ysb, yse, &o, reps);
    node_ensemble_free(e);
    free(ref);
    free(y0); free(ybig0); free(k); free(ysb); free(yse); free(ybr);
}

int main(int argc, char **argv)
{
    int reps = 5, quick = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
            reps = 1;
        } else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            g_group = (uint64_t)atol(argv[++i]);
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1) {
                fprintf(stderr, "bench_ensemble: --reps must be >= 1\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_ensemble [--quick] [--reps N] [--case mlp|cubic|hetero|mlphet] [--group G]\n");
            return 2;
        }
    }
    size_t sizes[3] = { 2, 50, 2 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m;
    if (node_mlp_create(&m, 2, sizes, acts, 0) != NODE_OK)
        return 1;
    node_mlp_init(m, 1);
    printf("dopri5, rtol 1e-6, atol 1e-8, %d reps (best); isa %s\n", reps, node_isa_name());
    printf("case    batch |  NFE big   NFE ens |  big ms  ens1 ms  speedup| ens2 ms  2thr  | "
           "big err max/med   | ens err max/med\n");
    size_t ns[2] = { 20, 512 };
    const char *names[4] = { "mlp", "cubic", "hetero", "mlphet" };
    for (int kind = 0; kind < 4; kind++)
        for (int b = 0; b < (quick ? 1 : 2); b++)
            if (!only || strcmp(only, names[kind]) == 0)
                bench_case(kind, ns[b], reps, m);
    node_mlp_free(m);
    return 0;
}
