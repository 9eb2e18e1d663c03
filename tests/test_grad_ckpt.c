/* test_grad_ckpt.c — checkpointed exact backprop (opt->checkpoints) and the
 * interpolating adjoint (node_odeint_adjoint_interp).
 *
 * Checkpointed backprop differentiates the same discrete solve as plain backprop, so
 * the reference is plain backprop itself (an independent code path: one full tape
 * against segments rebuilt from saved states), for every method and several budgets.
 * The interpolating adjoint is checked against the matrix exponential's gradient of a
 * linear system (Van Loan 1978, as test_grad.c), backprop and central differences on
 * an MLP, and, on a dissipative linear system, against the analytic gradient where the
 * backsolve adjoint's backward reconstruction of z drifts.
 * Backprop in two calls (node__backprop_record, then node__backprop_reverse: node_cnf's
 * maximum likelihood) against node_solver_backprop, bit for bit, plain and checkpointed.
 */
#include "test_util.h"
#include "internal.h"

#include <string.h>

/* max|got - want| / max|want|. */
static double vrel(const double *got, const double *want, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
        s = fmax(s, fabs(want[i]));
    }
    return e / fmax(s, 1e-300);
}

/* ---- an MLP system with the time input: nonlinear, time-dependent ------------------ */

#define D 2
#define B 3
#define DIM (D * B)
#define NT 4
#define MAXP 64

typedef struct fixture {
    node_mlp *m;
    node_system sys;
    double y0[DIM], W[NT * DIM], ts[NT];
} fixture;

static const double TS_UP[NT] = { 0.0, 0.7, 1.9, 3.0 };
static const double TS_DOWN[NT] = { 1.0, 0.2, -1.1, -2.0 };

static void setup(fixture *fx, const double *ts)
{
    size_t sizes[3] = { D, 8, D };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    assert_status(node_mlp_create(&fx->m, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(fx->m, 4321);
    assert_status(node_mlp_system(fx->m, B, &fx->sys), NODE_OK);
    assert_true(fx->sys.nparams <= MAXP);
    for (size_t i = 0; i < DIM; i++)
        fx->y0[i] = cos(0.9 * (double)i + 0.3);
    for (size_t i = 0; i < NT * DIM; i++)
        fx->W[i] = sin(1.7 * (double)i + 0.2);
    memcpy(fx->ts, ts, sizeof fx->ts);
}

static void teardown(fixture *fx)
{
    node_mlp_system_release(fx->m, &fx->sys);
    node_mlp_free(fx->m);
}

typedef struct grads {
    double y0[DIM], p[MAXP], ts[NT];
    node_stats st;
} grads;

static void backprop(fixture *fx, const double *ys, const node_options *o, grads *g)
{
    assert_status(node_odeint_backprop(&fx->sys, fx->ts, NT, ys, fx->W, g->y0, g->p, g->ts, o,
                                       &g->st), NODE_OK);
}

static void assert_same(const grads *got, const grads *want, size_t np, double tol)
{
    assert_true(vrel(got->y0, want->y0, DIM) <= tol);
    assert_true(vrel(got->p, want->p, np) <= tol);
    assert_true(vrel(got->ts, want->ts, NT) <= tol);
}

/* Every method, budgets 1, 2, 3, √steps and more than steps: the gradient of plain
   backprop, with more f evaluations (the recomputed segments) but no more steps. */
static void check_ckpt(node_method method, const double *ts)
{
    fixture fx;
    setup(&fx, ts);
    node_options o = node_options_default();
    o.method = method;
    o.rtol = 1e-8;
    o.atol = 1e-10;
    o.step = method <= NODE_RK4 ? 0.01 : 0;
    o.max_step = 0.1;   /* enough steps for the budgets to differ (dop853 takes long ones) */
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads plain, ck;
    backprop(&fx, ys, &o, &plain);
    int64_t steps = plain.st.naccept;
    assert_true(steps >= 20);
    int64_t budgets[] = { 1, 2, 3, (int64_t)ceil(sqrt((double)steps)), steps - 1, steps,
                          steps + 7, 1000000000 };
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        node_options oc = o;
        oc.checkpoints = budgets[b];
        backprop(&fx, ys, &oc, &ck);
        assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
        assert_int_equal(ck.st.naccept, steps);
        assert_int_equal(ck.st.nsteps, plain.st.nsteps);
        assert_true(ck.st.nfe >= plain.st.nfe);
        /* at most one forward pass more (no stage recomputed twice in the replay) */
        assert_true(ck.st.nfe <= plain.st.nfe + 16 * steps);
    }
    teardown(&fx);
}

static void test_ckpt_euler(void **state) { (void)state; check_ckpt(NODE_EULER, TS_UP); }
static void test_ckpt_midpoint(void **state) { (void)state; check_ckpt(NODE_MIDPOINT, TS_UP); }
static void test_ckpt_rk4(void **state) { (void)state; check_ckpt(NODE_RK4, TS_UP); }
static void test_ckpt_bosh3(void **state) { (void)state; check_ckpt(NODE_BOSH3, TS_UP); }
static void test_ckpt_dopri5(void **state) { (void)state; check_ckpt(NODE_DOPRI5, TS_UP); }
static void test_ckpt_dop853(void **state) { (void)state; check_ckpt(NODE_DOP853, TS_UP); }
static void test_ckpt_backward_in_time(void **state)
{
    (void)state;
    check_ckpt(NODE_DOPRI5, TS_DOWN);
    check_ckpt(NODE_RK4, TS_DOWN);
}

/* The memory bound: with √steps checkpoints, no allocation comes near the plain tape
   (steps × (dim + 2) doubles); plain backprop's largest allocation is that tape. */
static void test_ckpt_memory_is_bounded(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.method = NODE_RK4;
    o.step = 0.002;            /* 1500 steps */
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads plain, ck;
    node_test_alloc_begin(-1);
    backprop(&fx, ys, &o, &plain);
    node_test_alloc_end();
    size_t plain_big = node_test_alloc_largest();
    size_t tape = (size_t)plain.st.naccept * (DIM + 2) * sizeof(double);
    assert_true(plain_big >= tape);
    node_options oc = o;
    oc.checkpoints = (int64_t)sqrt((double)plain.st.naccept);
    node_test_alloc_begin(-1);
    backprop(&fx, ys, &oc, &ck);
    node_test_alloc_end();
    size_t ck_big = node_test_alloc_largest();
    /* the largest piece is the (t, h) list, 2 doubles a step grown by doubling */
    assert_true(ck_big <= 4 * sizeof(double) * (size_t)plain.st.naccept);
    assert_true(ck_big * 2 < tape);
    assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
    teardown(&fx);
}

/* A reused solver gives the same gradient with and without checkpoints, in any order,
   and allocates nothing on a repeated call. */
static void test_ckpt_reused_solver(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads plain, ck;
    backprop(&fx, ys, &o, &plain);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_options oc = o;
    oc.checkpoints = 3;
    for (int rep = 0; rep < 2; rep++) {
        node_test_alloc_begin(-1);
        assert_status(node_solver_backprop(s, &fx.sys, fx.ts, NT, ys, fx.W, ck.y0, ck.p, ck.ts,
                                           &oc, &ck.st), NODE_OK);
        long nalloc = node_test_alloc_end();
        if (rep)
            assert_int_equal(nalloc, 0);
        assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
        assert_status(node_solver_backprop(s, &fx.sys, fx.ts, NT, ys, fx.W, ck.y0, ck.p, ck.ts,
                                           &o, &ck.st), NODE_OK);
        assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
    }
    node_solver_free(s);
    teardown(&fx);
}

/* A system that counts the calls of f and vjp of the one it wraps. */
typedef struct counted {
    const node_system *in;
    long nf, nv;
} counted;

static int counted_f(void *ctx, double t, const double *y, double *dydt)
{
    counted *c = ctx;
    c->nf++;
    return c->in->f(c->in->ctx, t, y, dydt);
}

static int counted_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                       double *vjp_y, double *vjp_p, double *vjp_t)
{
    counted *c = ctx;
    c->nv++;
    return c->in->vjp(c->in->ctx, t, y, a, dydt, vjp_y, vjp_p, vjp_t);
}

/* The solve recorded once and reversed later: node_odeint's rows and
   node_odeint_backprop's gradients, bit for bit, without the re-run's evaluations;
   plain and checkpointed, forward and backward in time, adaptive and fixed steps.
   dopri5 without checkpoints keeps the stages: its reverse pass calls no f, only
   vjp.  Reversing what was not recorded (a fresh solver, another nt) is refused. */
static void test_record_then_reverse_is_backprop(void **state)
{
    (void)state;
    const node_method methods[] = { NODE_DOPRI5, NODE_RK4 };
    const int64_t budgets[] = { 0, 3 };
    for (int dir = 0; dir < 2; dir++)
        for (size_t mi = 0; mi < 2; mi++)
            for (size_t bi = 0; bi < 2; bi++) {
                fixture fx;
                setup(&fx, dir ? TS_DOWN : TS_UP);
                counted cnt = { &fx.sys, 0, 0 };
                node_system ws = fx.sys;
                ws.ctx = &cnt;
                ws.f = counted_f;
                ws.vjp = counted_vjp;
                node_options o = node_options_default();
                o.method = methods[mi];
                o.step = methods[mi] == NODE_RK4 ? 0.05 : 0;
                o.checkpoints = budgets[bi];
                const bool stages = methods[mi] == NODE_DOPRI5 && budgets[bi] == 0;
                double ys[NT * DIM], yr[NT * DIM];
                node_stats fs, rs;
                assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, &fs), NODE_OK);
                grads want, got;
                backprop(&fx, ys, &o, &want);
                node_solver *s;
                assert_status(node_solver_create(&s), NODE_OK);
                assert_status(node__backprop_record(s, &ws, fx.y0, fx.ts, NT, yr, &o, &rs),
                              NODE_OK);
                assert_memory_equal(yr, ys, sizeof ys);
                assert_int_equal(rs.nfe, fs.nfe);
                for (int rep = 0; rep < 2; rep++) {   /* a second reverse: the same */
                    cnt.nf = cnt.nv = 0;
                    assert_status(node__backprop_reverse(s, &ws, fx.ts, NT, yr, fx.W, got.y0,
                                                         got.p, got.ts, &o, &got.st), NODE_OK);
                    assert_memory_equal(got.y0, want.y0, sizeof got.y0);
                    assert_memory_equal(got.p, want.p, fx.sys.nparams * sizeof(double));
                    assert_memory_equal(got.ts, want.ts, sizeof got.ts);
                    assert_int_equal(got.st.nfe, cnt.nf + cnt.nv);
                    if (stages)   /* the stages were recorded: vjp calls alone */
                        assert_int_equal(cnt.nf, 0);
                    /* backprop's count has the re-run in it: the solve's */
                    assert_int_equal(got.st.nfe, want.st.nfe - fs.nfe);
                }
                assert_status(node__backprop_reverse(s, &ws, fx.ts, NT - 1, yr, fx.W,
                                                     got.y0, got.p, NULL, &o, &got.st),
                              NODE_EINVAL);
                assert_non_null(strstr(got.st.message, "no recorded solve"));
                node_solver_free(s);
                assert_status(node_solver_create(&s), NODE_OK);
                assert_status(node__backprop_reverse(s, &ws, fx.ts, NT, yr, fx.W, got.y0,
                                                     got.p, NULL, &o, &got.st), NODE_EINVAL);
                node_solver_free(s);
                teardown(&fx);
            }
}

/* Failing allocations in the checkpointed path: NODE_ENOMEM, nothing leaks. */
static void test_ckpt_failing_allocations_leak_nothing(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.checkpoints = 2;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads g;
    node_test_alloc_begin(-1);
    backprop(&fx, ys, &o, &g);
    long total = node_test_alloc_end();
    for (long k = 0; k < total; k++) {
        node_test_alloc_begin(k);
        node_status st = node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts,
                                              &o, &g.st);
        node_test_alloc_end();
        assert_status(st, NODE_ENOMEM);
        assert_int_equal(node_test_alloc_live(), 0);
        assert_true(g.st.message[0] != '\0');
    }
    teardown(&fx);
}

/* A vjp failing in a late segment stops the checkpointed pass with its value. */
typedef struct failing {
    node_system inner;
    long calls, fail_at;
} failing;

static int failing_f(void *ctx, double t, const double *y, double *dydt)
{
    failing *c = ctx;
    return c->inner.f(c->inner.ctx, t, y, dydt);
}

static int failing_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                       double *vy, double *vp, double *vt)
{
    failing *c = ctx;
    if (c->calls++ == c->fail_at)
        return 5;
    return c->inner.vjp(c->inner.ctx, t, y, a, dydt, vy, vp, vt);
}

static void test_ckpt_failing_vjp(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    failing fc = { fx.sys, 0, 40 };
    node_system sys = { .dim = DIM, .nparams = fx.sys.nparams, .ctx = &fc, .f = failing_f,
                        .vjp = failing_vjp };
    node_options o = node_options_default();
    o.checkpoints = 3;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads g;
    assert_status(node_odeint_backprop(&sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts, &o, &g.st),
                  NODE_ECALLBACK);
    assert_int_equal(g.st.callback_rc, 5);
    assert_non_null(strstr(g.st.message, "sys->vjp returned 5"));
    assert_true(g.st.t_reached > fx.ts[0] && g.st.t_reached < fx.ts[NT - 1]);
    teardown(&fx);
}

/* ---- the interpolating adjoint ----------------------------------------------------- */

/* A symmetric linear system y' = A y, A = Q diag(λ) Qᵀ with Q a rotation, θ = A
   (row-major, all n² entries as free parameters).  For L = Σ_i W_iᵀ y(t_i), with
   τ_i = t_i - t0 (Higham, "Functions of Matrices", §10.6: the Fréchet derivative of
   exp in the eigenbasis):
     dL/dy0 = Σ_i Q e^{Λτ_i} Qᵀ W_i,
     dL/dA  = Σ_i Q ((Qᵀ W_i y0ᵀ Q) ∘ Φ(τ_i)) Qᵀ,  Φ_kl = (e^{λ_k τ} - e^{λ_l τ})/(λ_k - λ_l),
     dL/dt_i = W_iᵀ A y(t_i) (i >= 1),  dL/dt0 = -Σ_{i>=1} dL/dt_i (autonomous). */
#define LN 3

typedef struct sym {
    double lam[LN], Q[LN * LN], A[LN * LN];
} sym;

static void sym_init(sym *c, const double *lam)
{
    /* Q = product of three Givens rotations */
    double Q[LN * LN] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 };
    const double ang[3] = { 0.7, -0.4, 1.1 };
    const int pr[3][2] = { { 0, 1 }, { 1, 2 }, { 0, 2 } };
    for (int r = 0; r < 3; r++) {
        int p = pr[r][0], q = pr[r][1];
        double cs = cos(ang[r]), sn = sin(ang[r]);
        for (int i = 0; i < LN; i++) {
            double a = Q[i * LN + p], b = Q[i * LN + q];
            Q[i * LN + p] = cs * a - sn * b;
            Q[i * LN + q] = sn * a + cs * b;
        }
    }
    memcpy(c->Q, Q, sizeof Q);
    memcpy(c->lam, lam, sizeof c->lam);
    for (int i = 0; i < LN; i++)
        for (int j = 0; j < LN; j++) {
            double v = 0;
            for (int k = 0; k < LN; k++)
                v += Q[i * LN + k] * lam[k] * Q[j * LN + k];
            c->A[i * LN + j] = v;
        }
}

static int sym_f(void *ctx, double t, const double *y, double *dydt)
{
    const sym *c = ctx;
    (void)t;
    for (int i = 0; i < LN; i++) {
        double v = 0;
        for (int j = 0; j < LN; j++)
            v += c->A[i * LN + j] * y[j];
        dydt[i] = v;
    }
    return 0;
}

static int sym_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vy, double *vp, double *vt)
{
    const sym *c = ctx;
    if (dydt)
        sym_f(ctx, t, y, dydt);
    for (int j = 0; j < LN; j++) {
        double v = 0;
        for (int i = 0; i < LN; i++)
            v += a[i] * c->A[i * LN + j];
        vy[j] = v;
    }
    if (vp)
        for (int i = 0; i < LN; i++)
            for (int j = 0; j < LN; j++)
                vp[i * LN + j] = a[i] * y[j];
    if (vt)
        *vt = 0;
    return 0;
}

/* x = Qᵀ v (tr = 1) or Q v (tr = 0) */
static void qmul(const sym *c, int tr, const double *v, double *x)
{
    for (int i = 0; i < LN; i++) {
        double s = 0;
        for (int k = 0; k < LN; k++)
            s += (tr ? c->Q[k * LN + i] : c->Q[i * LN + k]) * v[k];
        x[i] = s;
    }
}

static void sym_analytic(const sym *c, const double *y0, const double *ts, size_t nt,
                         const double *W, double *gy0, double *gA, double *gts)
{
    memset(gy0, 0, LN * sizeof(double));
    memset(gA, 0, LN * LN * sizeof(double));
    double sum_t = 0;
    for (size_t i = 0; i < nt; i++) {
        double tau = ts[i] - ts[0], qw[LN], qy[LN], e[LN], x[LN], v[LN], yi[LN];
        qmul(c, 1, W + i * LN, qw);
        qmul(c, 1, y0, qy);
        for (int k = 0; k < LN; k++) {
            e[k] = exp(c->lam[k] * tau);
            x[k] = e[k] * qw[k];
        }
        qmul(c, 0, x, v);
        for (int k = 0; k < LN; k++)
            gy0[k] += v[k];
        double M[LN * LN];   /* (Qᵀ W y0ᵀ Q) ∘ Φ */
        for (int k = 0; k < LN; k++)
            for (int l = 0; l < LN; l++) {
                double phi = c->lam[k] == c->lam[l]
                                 ? tau * e[k] : (e[k] - e[l]) / (c->lam[k] - c->lam[l]);
                M[k * LN + l] = qw[k] * qy[l] * phi;
            }
        for (int a = 0; a < LN; a++)
            for (int b = 0; b < LN; b++) {
                double s2 = 0;
                for (int k = 0; k < LN; k++)
                    for (int l = 0; l < LN; l++)
                        s2 += c->Q[a * LN + k] * M[k * LN + l] * c->Q[b * LN + l];
                gA[a * LN + b] += s2;
            }
        /* y(t_i) = Q e^{Λτ} Qᵀ y0; dL/dt_i = W_iᵀ A y(t_i) */
        for (int k = 0; k < LN; k++)
            x[k] = e[k] * qy[k] * c->lam[k];
        qmul(c, 0, x, yi);   /* A y(t_i) */
        double d = 0;
        for (int k = 0; k < LN; k++)
            d += W[i * LN + k] * yi[k];
        if (i > 0) {
            gts[i] = d;
            sum_t += d;
        }
    }
    gts[0] = -sum_t;
}

typedef struct lin_run {
    sym c;
    node_system sys;
    double y0[LN], W[8 * LN], ys[8 * LN];
    double gy0[LN], gA[LN * LN], gts[8];      /* analytic */
    double y0b[LN], Ab[LN * LN], tsb[8];      /* computed */
    node_stats st;
} lin_run;

static void lin_setup(lin_run *r, const double *lam, const double *ts, size_t nt,
                      const node_options *o)
{
    sym_init(&r->c, lam);
    r->sys = (node_system){ .dim = LN, .nparams = LN * LN, .ctx = &r->c, .f = sym_f,
                            .vjp = sym_vjp };
    for (int i = 0; i < LN; i++)
        r->y0[i] = 1.0 - 0.6 * i;
    for (size_t i = 0; i < nt * LN; i++)
        r->W[i] = cos(0.8 * (double)i + 0.5);
    assert_status(node_odeint(&r->sys, r->y0, ts, nt, r->ys, o, NULL), NODE_OK);
    sym_analytic(&r->c, r->y0, ts, nt, r->W, r->gy0, r->gA, r->gts);
}

typedef node_status (*grad_fn)(const node_system *, const double *, size_t, const double *,
                               const double *, double *, double *, double *,
                               const node_options *, node_stats *);

/* The largest relative error of the three gradients against the analytic ones. */
static double lin_err(lin_run *r, grad_fn fn, const double *ts, size_t nt,
                      const node_options *o, node_status *st)
{
    *st = fn(&r->sys, ts, nt, r->ys, r->W, r->y0b, r->Ab, r->tsb, o, &r->st);
    if (*st != NODE_OK)
        return INFINITY;
    double e = vrel(r->y0b, r->gy0, LN);
    e = fmax(e, vrel(r->Ab, r->gA, LN * LN));
    return fmax(e, vrel(r->tsb, r->gts, nt));
}

static void test_interp_linear_matches_analytic(void **state)
{
    (void)state;
    static const double lam[LN] = { -0.5, -1.0, -2.0 };
    static const double ts_up[4] = { 0.0, 0.4, 1.1, 1.5 }, ts_down[4] = { 1.0, 0.3, -0.2, -0.8 };
    const double *tss[2] = { ts_up, ts_down };
    node_method methods[] = { NODE_DOPRI5, NODE_DOP853, NODE_BOSH3, NODE_RK4 };
    for (int d = 0; d < 2; d++)
        for (size_t mi = 0; mi < 4; mi++)
            for (int64_t ck = 0; ck <= 5; ck += 5)
                for (int semi = 0; semi <= 1; semi++) {
                    node_options o = node_options_default();
                    o.method = methods[mi];
                    o.rtol = o.atol = 1e-10;
                    o.step = methods[mi] == NODE_RK4 ? 0.005 : 0;
                    o.checkpoints = ck;
                    o.seminorm = semi;
                    lin_run r;
                    lin_setup(&r, lam, tss[d], 4, &o);
                    node_status st;
                    double e = lin_err(&r, node_odeint_adjoint_interp, tss[d], 4, &o, &st);
                    assert_status(st, NODE_OK);
                    if (e > 1e-7)
                        print_error("%s dir %d ck %lld semi %d: %g\n",
                                    node_method_name(o.method), d, (long long)ck, semi, e);
                    assert_true(e <= 1e-7);
                    /* the backward pass calls vjp only */
                    assert_true(r.st.nfe > 0);
                }
}

/* Dissipative: eigenvalues -1, -6, -25 over [0, 2], one interval.  Backward, z' = A z
   grows like e^{25 t}: the backsolve adjoint's reconstruction of z amplifies the
   forward error in the fast component by about e^{50} ≈ 5e21, and dL/dA (which needs
   z) is wrong by orders of magnitude (or the solve fails).  The interpolating adjoint
   reads z from a forward re-solve and stays at the tolerance; backprop as well. */
static void test_interp_no_drift_where_backsolve_drifts(void **state)
{
    (void)state;
    static const double lam[LN] = { -1.0, -6.0, -25.0 };
    static const double ts[2] = { 0.0, 2.0 };
    node_options o = node_options_default();
    o.rtol = 1e-8;
    o.atol = 1e-10;
    lin_run r;
    lin_setup(&r, lam, ts, 2, &o);
    node_status st;
    double e_back = lin_err(&r, node_odeint_adjoint, ts, 2, &o, &st);
    double e_interp = lin_err(&r, node_odeint_adjoint_interp, ts, 2, &o, &st);
    assert_status(st, NODE_OK);
    double e_bp = lin_err(&r, node_odeint_backprop, ts, 2, &o, &st);
    assert_status(st, NODE_OK);
    print_message("dissipative: backsolve %.3g, interpolating %.3g, backprop %.3g\n",
                  e_back, e_interp, e_bp);
    assert_true(e_interp <= 1e-4);
    assert_true(e_bp <= 1e-4);
    assert_true(e_back >= 1.0);     /* drift: no correct digit (or a failure, Inf) */
    o.checkpoints = 4;
    assert_true(lin_err(&r, node_odeint_adjoint_interp, ts, 2, &o, &st) <= 1e-4);
}

/* The MLP (time input: f depends on t): the interpolating adjoint agrees with backprop
   at a tight tolerance and with central differences of the solve, both directions of
   time, with and without the seminorm and extra restarts. */
static double mlp_loss(fixture *fx, const node_options *o)
{
    double ys[NT * DIM];
    assert_status(node_odeint(&fx->sys, fx->y0, fx->ts, NT, ys, o, NULL), NODE_OK);
    double L = 0;
    for (size_t i = 0; i < NT * DIM; i++)
        L += fx->W[i] * ys[i];
    return L;
}

static double fd(fixture *fx, const node_options *o, double *v, double delta)
{
    double x = *v;
    *v = x + delta;
    double lp = mlp_loss(fx, o);
    *v = x - delta;
    double lm = mlp_loss(fx, o);
    *v = x;
    return (lp - lm) / (2 * delta);
}

static void check_interp_mlp(const double *ts, int seminorm, int64_t ck)
{
    fixture fx;
    setup(&fx, ts);
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-10;
    o.seminorm = seminorm;
    o.checkpoints = ck;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads bp, ia;
    node_options ob = o;
    ob.checkpoints = 0;
    backprop(&fx, ys, &ob, &bp);
    assert_status(node_odeint_adjoint_interp(&fx.sys, fx.ts, NT, ys, fx.W, ia.y0, ia.p, ia.ts,
                                             &o, &ia.st), NODE_OK);
    size_t np = fx.sys.nparams;
    assert_true(vrel(ia.y0, bp.y0, DIM) < 1e-6);
    assert_true(vrel(ia.p, bp.p, np) < 1e-6);
    assert_true(vrel(ia.ts, bp.ts, NT) < 1e-6);
    /* central differences: y0[1], three parameters, ts[0] and ts[2] */
    double fdv[6], got[6] = { ia.y0[1], ia.p[0], ia.p[np / 2], ia.p[np - 1], ia.ts[0],
                              ia.ts[2] };
    fdv[0] = fd(&fx, &o, &fx.y0[1], 1e-5);
    double *theta = node_mlp_params(fx.m);
    fdv[1] = fd(&fx, &o, &theta[0], 1e-5);
    fdv[2] = fd(&fx, &o, &theta[np / 2], 1e-5);
    fdv[3] = fd(&fx, &o, &theta[np - 1], 1e-5);
    fdv[4] = fd(&fx, &o, &fx.ts[0], 1e-5);
    fdv[5] = fd(&fx, &o, &fx.ts[2], 1e-5);
    for (int i = 0; i < 6; i++)
        assert_close(got[i], fdv[i], 1e-5, 1e-7);
    teardown(&fx);
}

static void test_interp_mlp_matches_backprop_and_fd(void **state)
{
    (void)state;
    check_interp_mlp(TS_UP, 0, 0);
    check_interp_mlp(TS_DOWN, 0, 0);
    check_interp_mlp(TS_UP, 1, 0);
    check_interp_mlp(TS_UP, 0, 7);
}

/* Reused solver: the same answer twice, no allocation the second time; a failing vjp
   stops with its value; bad arguments are refused as by the adjoint. */
static void test_interp_reuse_failure_and_arguments(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.checkpoints = 3;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    grads g1, g2;
    assert_status(node_solver_adjoint_interp(s, &fx.sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p,
                                             g1.ts, &o, &g1.st), NODE_OK);
    node_test_alloc_begin(-1);
    assert_status(node_solver_adjoint_interp(s, &fx.sys, fx.ts, NT, ys, fx.W, g2.y0, g2.p,
                                             g2.ts, &o, &g2.st), NODE_OK);
    assert_int_equal(node_test_alloc_end(), 0);
    assert_same(&g2, &g1, fx.sys.nparams, 0);
    node_solver_free(s);

    failing fc = { fx.sys, 0, 30 };
    node_system sys = { .dim = DIM, .nparams = fx.sys.nparams, .ctx = &fc, .f = failing_f,
                        .vjp = failing_vjp };
    assert_status(node_odeint_adjoint_interp(&sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p, g1.ts,
                                             &o, &g1.st), NODE_ECALLBACK);
    assert_int_equal(g1.st.callback_rc, 5);
    assert_non_null(strstr(g1.st.message, "sys->vjp returned 5"));

    /* allocation failures: ENOMEM, nothing leaks */
    node_test_alloc_begin(-1);
    assert_status(node_odeint_adjoint_interp(&fx.sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p, g1.ts,
                                             &o, &g1.st), NODE_OK);
    long total = node_test_alloc_end();
    for (long k = 0; k < total; k++) {
        node_test_alloc_begin(k);
        node_status st = node_odeint_adjoint_interp(&fx.sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p,
                                                    g1.ts, &o, &g1.st);
        node_test_alloc_end();
        assert_status(st, NODE_ENOMEM);
        assert_int_equal(node_test_alloc_live(), 0);
    }

    assert_status(node_odeint_adjoint_interp(NULL, fx.ts, NT, ys, fx.W, g1.y0, g1.p, g1.ts, &o,
                                             &g1.st), NODE_EINVAL);
    assert_status(node_odeint_adjoint_interp(&fx.sys, fx.ts, NT, ys, NULL, g1.y0, g1.p, g1.ts,
                                             &o, &g1.st), NODE_EINVAL);
    assert_status(node_solver_adjoint_interp(NULL, &fx.sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p,
                                             g1.ts, &o, &g1.st), NODE_EINVAL);
    o.checkpoints = -2;
    assert_status(node_odeint_adjoint_interp(&fx.sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p, g1.ts,
                                             &o, &g1.st), NODE_EINVAL);
    assert_non_null(strstr(g1.st.message, "opt->checkpoints = -2"));
    o.checkpoints = 0;
    o.max_steps = 3;
    assert_status(node_odeint_adjoint_interp(&fx.sys, fx.ts, NT, ys, fx.W, g1.y0, g1.p, g1.ts,
                                             &o, &g1.st), NODE_EMAXSTEPS);
    assert_non_null(strstr(g1.st.message, "max_steps"));
    teardown(&fx);
}

/* ---- refused options ----------------------------------------------------------------- */

static void test_negative_checkpoints_refused(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.checkpoints = -1;
    double ys[NT * DIM];
    node_stats st;
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, &st), NODE_EINVAL);
    assert_non_null(strstr(st.message, "opt->checkpoints = -1"));
    o.checkpoints = 0;
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, NULL, NULL), NODE_OK);
    o.checkpoints = INT64_MIN;
    grads g;
    assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts, &o,
                                       &g.st), NODE_EINVAL);
    assert_non_null(strstr(g.st.message, "opt->checkpoints"));
    assert_status(node_odeint_adjoint(&fx.sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts, &o,
                                      &g.st), NODE_EINVAL);
    assert_non_null(strstr(g.st.message, "opt->checkpoints"));
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_then_reverse_is_backprop),
        cmocka_unit_test(test_ckpt_euler),
        cmocka_unit_test(test_ckpt_midpoint),
        cmocka_unit_test(test_ckpt_rk4),
        cmocka_unit_test(test_ckpt_bosh3),
        cmocka_unit_test(test_ckpt_dopri5),
        cmocka_unit_test(test_ckpt_dop853),
        cmocka_unit_test(test_ckpt_backward_in_time),
        cmocka_unit_test(test_ckpt_memory_is_bounded),
        cmocka_unit_test(test_ckpt_reused_solver),
        cmocka_unit_test(test_ckpt_failing_allocations_leak_nothing),
        cmocka_unit_test(test_ckpt_failing_vjp),
        cmocka_unit_test(test_interp_linear_matches_analytic),
        cmocka_unit_test(test_interp_no_drift_where_backsolve_drifts),
        cmocka_unit_test(test_interp_mlp_matches_backprop_and_fd),
        cmocka_unit_test(test_interp_reuse_failure_and_arguments),
        cmocka_unit_test(test_negative_checkpoints_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
