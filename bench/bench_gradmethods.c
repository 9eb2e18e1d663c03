/* bench_gradmethods.c — every gradient method of libnode side by side on three
 * problems: the spiral MLP (torchdiffeq's ode_demo model dy/dt = MLP(y³), 16 rows), a
 * dissipative linear system with eigenvalues -1 ... -1000 in a rotated basis over
 * [0, 5], and the Lorenz system (σ = 10, ρ = 28, β = 8/3) over [0, 5] (about 4.5
 * Lyapunov times; also with outputs every 0.5).  Methods: the backsolve adjoint, with
 * the seminorm, the interpolating adjoint (restarts at ts, and at √steps more points),
 * exact backprop (with its forward re-run, and reversing the forward solve's own
 * recording: opt->record), and checkpointed backprop at three budgets.
 * Columns: relative error (max-norm over [dL/dy0, dL/dθ]) against the exact discrete
 * gradient (plain backprop at the same tolerance) and against a high-accuracy
 * reference (backprop with DOP853 at rtol 1e-12), NFE of the forward solve and of the
 * gradient call (vjp calls count one; backprop's includes its recorded forward
 * re-run) and their ratio, wall time of the gradient call, and the bytes the solver
 * object's workspaces and tape hold after it (their peak: they only grow).
 * Prints one Markdown table, then checkpointed backprop against its budget N on the
 * linear system (extra f evaluations, time, bytes).  Run: ./bench_gradmethods [--quick]
 */
#define _POSIX_C_SOURCE 200809L
#include <libnode.h>
#include "internal.h"

#include "rng.h"
#include "spiral_model.h"   /* examples/util: the ode_demo problem */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- problems --------------------------------------------------------------------- */

#define LD 6   /* the linear system's dimension */

typedef struct linsys {
    double A[LD * LD];
} linsys;

static int lin_f(void *ctx, double t, const double *y, double *dydt)
{
    const linsys *c = ctx;
    (void)t;
    for (int i = 0; i < LD; i++) {
        double v = 0;
        for (int j = 0; j < LD; j++)
            v += c->A[i * LD + j] * y[j];
        dydt[i] = v;
    }
    return 0;
}

static int lin_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vy, double *vp, double *vt)
{
    const linsys *c = ctx;
    if (dydt)
        lin_f(ctx, t, y, dydt);
    for (int j = 0; j < LD; j++) {
        double v = 0;
        for (int i = 0; i < LD; i++)
            v += a[i] * c->A[i * LD + j];
        vy[j] = v;
    }
    if (vp)
        for (int i = 0; i < LD; i++)
            for (int j = 0; j < LD; j++)
                vp[i * LD + j] = a[i] * y[j];
    if (vt)
        *vt = 0;
    return 0;
}

/* A = Q diag(λ) Qᵀ, λ log-spaced from -1 to -1000, Q a product of Householder
   reflections of random vectors. */
static void lin_init(linsys *c)
{
    double Q[LD * LD] = { 0 }, lam[LD];
    for (int i = 0; i < LD; i++) {
        Q[i * LD + i] = 1;
        lam[i] = -pow(1000.0, (double)i / (LD - 1));
    }
    ex_rng r;
    ex_rng_seed(&r, 7);
    for (int k = 0; k < 3; k++) {
        double v[LD], nv = 0;
        for (int i = 0; i < LD; i++) {
            v[i] = ex_rng_normal(&r, 0, 1);
            nv += v[i] * v[i];
        }
        for (int i = 0; i < LD; i++) {   /* Q <- Q (I - 2 v vᵀ / |v|²) */
            double s = 0;
            for (int j = 0; j < LD; j++)
                s += Q[i * LD + j] * v[j];
            for (int j = 0; j < LD; j++)
                Q[i * LD + j] -= 2 * s * v[j] / nv;
        }
    }
    for (int i = 0; i < LD; i++)
        for (int j = 0; j < LD; j++) {
            double v = 0;
            for (int k = 0; k < LD; k++)
                v += Q[i * LD + k] * lam[k] * Q[j * LD + k];
            c->A[i * LD + j] = v;
        }
}

static int lorenz_f(void *ctx, double t, const double *y, double *dydt)
{
    const double *p = ctx;   /* σ, ρ, β */
    (void)t;
    dydt[0] = p[0] * (y[1] - y[0]);
    dydt[1] = y[0] * (p[1] - y[2]) - y[1];
    dydt[2] = y[0] * y[1] - p[2] * y[2];
    return 0;
}

static int lorenz_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                      double *vy, double *vp, double *vt)
{
    const double *p = ctx;
    if (dydt)
        lorenz_f(ctx, t, y, dydt);
    vy[0] = -p[0] * a[0] + (p[1] - y[2]) * a[1] + y[1] * a[2];
    vy[1] = p[0] * a[0] - a[1] + y[0] * a[2];
    vy[2] = -y[0] * a[1] - p[2] * a[2];
    if (vp) {
        vp[0] = (y[1] - y[0]) * a[0];
        vp[1] = y[0] * a[1];
        vp[2] = -y[2] * a[2];
    }
    if (vt)
        *vt = 0;
    return 0;
}

/* ---- methods ----------------------------------------------------------------------- */

enum { M_ADJ, M_SEMI, M_INTERP, M_INTERP_CK, M_BP, M_BPREC, M_CK4, M_CKSQ, M_CKQ, NMETH };
static const char *meth_name[NMETH] = {
    "backsolve adjoint", "adjoint + seminorm", "interpolating adjoint",
    "interpolating adjoint, √steps restarts", "exact backprop",
    "exact backprop, recorded forward (opt->record)",
    "checkpointed backprop, N = 4", "checkpointed backprop, N = √steps",
    "checkpointed backprop, N = steps/4"
};

typedef struct problem {
    const char *name;
    node_system sys;
    const double *y0, *ts;
    size_t nt;
    double rtol, atol;
} problem;

typedef struct result {
    node_status st;
    double *g;          /* [dL/dy0 | dL/dθ] */
    int64_t nfe;
    double secs;
    size_t bytes;
} result;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t solver_bytes(const node_solver *s)
{
    return sizeof(double) * (s->ode_cap + s->aug_cap + s->tape_cap + s->work_cap +
                             s->ckpt_cap + s->steps_cap);
}

/* One gradient by method m (checkpoints ck for the checkpointed ones and the
   interpolating adjoint's extra restarts) on a fresh solver object; r->secs keeps the
   best time over calls. */
static void run(const problem *p, int m, int64_t ck, const node_options *o0, const double *ys,
                const double *W, result *r)
{
    size_t n = p->sys.dim;
    node_options o = *o0;
    o.seminorm = m == M_SEMI;
    o.checkpoints = m >= M_CK4 || m == M_INTERP_CK ? ck : 0;
    o.record = m == M_BPREC;
    node_solver *s;
    node_stats st;
    if (node_solver_create(&s) != NODE_OK) {
        r->st = NODE_ENOMEM;
        return;
    }
    if (m == M_BPREC) {   /* the solve that backprop then reverses (not timed) */
        double *yr = malloc(p->nt * n * sizeof *yr);
        r->st = yr ? node_solver_odeint(s, &p->sys, p->y0, p->ts, p->nt, yr, &o, &st)
                   : NODE_ENOMEM;
        if (r->st == NODE_OK && memcmp(yr, ys, p->nt * n * sizeof *yr) != 0)
            r->st = NODE_EINVAL;   /* not the rows given: would re-run */
        free(yr);
        if (r->st != NODE_OK) {
            node_solver_free(s);
            return;
        }
    }
    double t0 = now();
    if (m <= M_SEMI)
        r->st = node_solver_adjoint(s, &p->sys, p->ts, p->nt, ys, W, r->g, r->g + n, NULL, &o,
                                    &st);
    else if (m == M_INTERP || m == M_INTERP_CK)
        r->st = node_solver_adjoint_interp(s, &p->sys, p->ts, p->nt, ys, W, r->g, r->g + n,
                                           NULL, &o, &st);
    else
        r->st = node_solver_backprop(s, &p->sys, p->ts, p->nt, ys, W, r->g, r->g + n, NULL,
                                     &o, &st);
    double dt = now() - t0;
    if (!(r->secs <= dt))
        r->secs = dt;
    r->nfe = st.nfe;
    r->bytes = solver_bytes(s);
    node_solver_free(s);
}

static double relerr(const double *g, const double *ref, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(g[i] - ref[i]));
        s = fmax(s, fabs(ref[i]));
    }
    return e / s;
}

static void bench_problem(const problem *p, int reps)
{
    size_t n = p->sys.dim, ng = n + p->sys.nparams;
    double *ys = malloc(p->nt * n * sizeof *ys), *W = malloc(p->nt * n * sizeof *W);
    double *gref = malloc(ng * sizeof *gref), *gexact = malloc(ng * sizeof *gexact);
    if (!ys || !W || !gref || !gexact) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < p->nt * n; i++)
        W[i] = i < n ? 0 : cos(0.37 * (double)i + 0.1);   /* L = Σ_{i>=1} W_i·y(t_i) */

    /* the high-accuracy reference: DOP853 backprop at rtol 1e-12 */
    node_options oref = node_options_default();
    oref.method = NODE_DOP853;
    oref.rtol = 1e-12;
    oref.atol = 1e-14 * p->atol / 1e-8;
    node_stats st;
    if (node_odeint(&p->sys, p->y0, p->ts, p->nt, ys, &oref, &st) != NODE_OK ||
        node_odeint_backprop(&p->sys, p->ts, p->nt, ys, W, gref, gref + n, NULL, &oref,
                             &st) != NODE_OK) {
        fprintf(stderr, "%s: reference failed: %s\n", p->name, st.message);
        exit(1);
    }

    node_options o = node_options_default();   /* dopri5 */
    o.rtol = p->rtol;
    o.atol = p->atol;
    double fwd_secs = INFINITY;
    for (int k = 0; k < reps; k++) {
        double t0 = now();
        if (node_odeint(&p->sys, p->y0, p->ts, p->nt, ys, &o, &st) != NODE_OK) {
            fprintf(stderr, "%s: forward failed: %s\n", p->name, st.message);
            exit(1);
        }
        fwd_secs = fmin(fwd_secs, now() - t0);
    }
    int64_t fwd_nfe = st.nfe, steps = st.naccept;
    int64_t sq = (int64_t)ceil(sqrt((double)steps)), q = steps / 4 > 0 ? steps / 4 : 1;
    int64_t ck[NMETH];
    result r[NMETH];
    for (int m = 0; m < NMETH; m++) {
        ck[m] = m == M_CK4 ? 4 : m == M_CKSQ || m == M_INTERP_CK ? sq : q;
        r[m] = (result){ .st = NODE_OK, .g = m == M_BP ? gexact : malloc(ng * sizeof(double)),
                         .secs = NAN };
        if (!r[m].g) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    /* rounds over all methods, the best time of each (a shared machine's noise) */
    for (int k = 0; k < reps; k++)
        for (int m = 0; m < NMETH; m++)
            if (r[m].st == NODE_OK)
                run(p, m, ck[m], &o, ys, W, &r[m]);
    if (r[M_BP].st != NODE_OK) {
        fprintf(stderr, "%s: backprop failed\n", p->name);
        exit(1);
    }
    printf("| **%s** (dim %zu, %zu params, dopri5 rtol %g, %lld steps, forward %lld NFE, "
           "%.3g ms) | | | | | | | |\n", p->name, n, p->sys.nparams, p->rtol,
           (long long)steps, (long long)fwd_nfe, 1e3 * fwd_secs);
    for (int m = 0; m < NMETH; m++) {
        char name[80];
        if (m == M_INTERP_CK)
            snprintf(name, sizeof name, "interpolating adjoint, %lld restarts (√steps)",
                     (long long)ck[m]);
        else if (m >= M_CK4)
            snprintf(name, sizeof name, "checkpointed backprop, N = %lld%s", (long long)ck[m],
                     m == M_CK4 ? "" : m == M_CKSQ ? " (√steps)" : " (steps/4)");
        else
            snprintf(name, sizeof name, "%s", meth_name[m]);
        if (r[m].st != NODE_OK)
            printf("| %s | fails: %s | | | | | | |\n", name, node_strerror(r[m].st));
        else
            printf("| %s | %.2e | %.2e | %lld | %.2f | %.3g | %.2f | %zu |\n", name,
                   relerr(r[m].g, gexact, ng), relerr(r[m].g, gref, ng), (long long)r[m].nfe,
                   (double)r[m].nfe / (double)fwd_nfe, 1e3 * r[m].secs,
                   r[m].secs / r[M_BP].secs, r[m].bytes);
        if (m != M_BP)
            free(r[m].g);
    }
    free(ys);
    free(W);
    free(gref);
    free(gexact);
}

/* Checkpointed backprop against its budget N on one problem: f evaluations beyond
   plain backprop's (relative), time relative to plain, workspace bytes. */
static void sweep(const problem *p, int reps)
{
    size_t n = p->sys.dim, ng = n + p->sys.nparams;
    double *ys = malloc(p->nt * n * sizeof *ys), *W = malloc(p->nt * n * sizeof *W);
    result plain = { .g = malloc(ng * sizeof(double)), .secs = NAN };
    result r = { .g = malloc(ng * sizeof(double)) };
    if (!ys || !W || !plain.g || !r.g) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < p->nt * n; i++)
        W[i] = i < n ? 0 : cos(0.37 * (double)i + 0.1);
    node_options o = node_options_default();
    o.rtol = p->rtol;
    o.atol = p->atol;
    node_stats st;
    if (node_odeint(&p->sys, p->y0, p->ts, p->nt, ys, &o, &st) != NODE_OK) {
        fprintf(stderr, "%s: forward failed: %s\n", p->name, st.message);
        exit(1);
    }
    int64_t steps = st.naccept;
    for (int k = 0; k < reps; k++)
        run(p, M_BP, 0, &o, ys, W, &plain);
    printf("\n%s, %lld steps: checkpointed backprop against its budget N (plain backprop: "
           "%lld NFE, %.3g ms, %zu bytes)\n\n", p->name, (long long)steps,
           (long long)plain.nfe, 1e3 * plain.secs, plain.bytes);
    printf("| N | extra NFE / plain's | time / plain | workspace bytes | bytes / plain |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    int64_t Ns[] = { 1, 2, 4, 16, (int64_t)ceil(sqrt((double)steps)), steps / 4, steps };
    for (size_t i = 0; i < sizeof Ns / sizeof Ns[0]; i++) {
        r.secs = NAN;
        for (int k = 0; k < reps; k++)
            run(p, M_CK4, Ns[i], &o, ys, W, &r);
        if (r.st != NODE_OK || relerr(r.g, plain.g, ng) != 0) {
            fprintf(stderr, "N = %lld: failed or differs from plain backprop\n",
                    (long long)Ns[i]);
            exit(1);
        }
        printf("| %lld | %.3f | %.2f | %zu | %.2f |\n", (long long)Ns[i],
               (double)(r.nfe - plain.nfe) / (double)plain.nfe, r.secs / plain.secs, r.bytes,
               (double)r.bytes / (double)plain.bytes);
    }
    free(ys);
    free(W);
    free(plain.g);
    free(r.g);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }
    int reps = quick ? 1 : 21;
    printf("| method | rel. err vs exact discrete | rel. err vs reference | gradient NFE | "
           "NFE grad / fwd | time (ms) | time / backprop | workspace bytes |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");

    /* the spiral MLP: 16 rows from the demo's true_y0 region, t in [0, 10] */
    enum { B = 16, NT_S = 11 };
    node_mlp *mlp;
    size_t sizes[3] = { 2, 50, 2 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    ex_cubic_model cm = { 0 };
    problem sp = { .name = "spiral MLP", .nt = NT_S, .rtol = 1e-7, .atol = 1e-9 };
    if (node_mlp_create(&mlp, 2, sizes, acts, 0) != NODE_OK || node_mlp_reserve(mlp, B) ||
        ex_cubic_init(&cm, mlp, B, &sp.sys)) {
        fprintf(stderr, "spiral model: out of memory\n");
        return 1;
    }
    ex_rng rng;
    ex_rng_seed(&rng, 1);
    ex_mlp_init_normal(mlp, &rng, 0.5);
    double y0s[2 * B], tss[NT_S];
    for (int i = 0; i < B; i++) {
        double a = 2 * 3.14159265358979 * i / B;
        y0s[2 * i] = 2 * cos(a);
        y0s[2 * i + 1] = 2 * sin(a);
    }
    for (int i = 0; i < NT_S; i++)
        tss[i] = i;
    sp.y0 = y0s;
    sp.ts = tss;
    bench_problem(&sp, reps);
    ex_cubic_free(&cm);
    node_mlp_free(mlp);

    /* the dissipative linear system */
    linsys lc;
    lin_init(&lc);
    double y0l[LD], tsl[2] = { 0, 5 };
    for (int i = 0; i < LD; i++)
        y0l[i] = 1.0 - 0.3 * i;
    problem lp = { .name = "linear, λ = -1 ... -1000", .y0 = y0l, .ts = tsl, .nt = 2,
                   .rtol = 1e-7, .atol = 1e-9 };
    lp.sys = (node_system){ .dim = LD, .nparams = LD * LD, .ctx = &lc, .f = lin_f,
                            .vjp = lin_vjp };
    bench_problem(&lp, reps);
    problem lp_sweep = lp;

    /* Lorenz */
    double pl[3] = { 10, 28, 8.0 / 3 }, y0z[3] = { 1, 1, 20 }, tsz[2] = { 0, 5 };
    problem zp = { .name = "Lorenz, t in [0, 5]", .y0 = y0z, .ts = tsz, .nt = 2,
                   .rtol = 1e-7, .atol = 1e-9 };
    zp.sys = (node_system){ .dim = 3, .nparams = 3, .ctx = pl, .f = lorenz_f,
                            .vjp = lorenz_vjp };
    bench_problem(&zp, reps);
    /* the same with outputs every 0.5: the backsolve adjoint restarts z from ys[i] */
    double tsz2[11];
    for (int i = 0; i < 11; i++)
        tsz2[i] = 0.5 * i;
    zp.name = "Lorenz, 11 outputs over [0, 5]";
    zp.ts = tsz2;
    zp.nt = 11;
    bench_problem(&zp, reps);
    sweep(&lp_sweep, reps);
    return 0;
}
