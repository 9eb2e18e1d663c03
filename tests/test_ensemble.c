/* test_ensemble.c — ensembles (ensemble.h): every sample solved as node_odeint solves it
 * alone (bit for bit: the same steps, the same arithmetic), per-sample output times, a
 * failing sample leaving the others intact, exact backprop against node_odeint_backprop
 * per sample and against central differences, results independent of the thread
 * count and of the group size, the MLP adapter, and refused arguments.
 */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dy/dt = A y³ + (0.1 cos t) e_0 with θ = A (2 × 2), and a third component (constant)
   that tags a sample: tag 1 makes f fail for t > 0.3, tag 2 makes it NaN for t > 0.4,
   tag 3 makes vjp fail. */
typedef struct cub { double A[4]; } cub;

static int cub_f(void *ctx, double t, const double *y, double *dy)
{
    const cub *c = ctx;
    if (y[2] == 1 && t > 0.3)
        return 7;
    double u = y[0] * y[0] * y[0], v = y[1] * y[1] * y[1];
    dy[0] = c->A[0] * u + c->A[1] * v + 0.1 * cos(t);
    dy[1] = c->A[2] * u + c->A[3] * v;
    dy[2] = 0;
    if (y[2] == 2 && t > 0.4)
        dy[1] = NAN;
    return 0;
}

static int cub_vjp(void *ctx, double t, const double *y, const double *a, double *dy,
                   double *vy, double *vp, double *vt)
{
    const cub *c = ctx;
    if (y[2] == 3)
        return 5;
    int rc = dy ? cub_f(ctx, t, y, dy) : 0;
    if (rc)
        return rc;
    double u = y[0] * y[0] * y[0], v = y[1] * y[1] * y[1];
    vy[0] = 3 * y[0] * y[0] * (c->A[0] * a[0] + c->A[2] * a[1]);
    vy[1] = 3 * y[1] * y[1] * (c->A[1] * a[0] + c->A[3] * a[1]);
    vy[2] = 0;
    if (vp) {
        vp[0] = a[0] * u; vp[1] = a[0] * v; vp[2] = a[1] * u; vp[3] = a[1] * v;
    }
    if (vt)
        *vt = -0.1 * sin(t) * a[0];
    return 0;
}

static cub g_cub = { { -0.1, 2.0, -2.0, -0.1 } };

static node_system cub_system(void)
{
    node_system s;
    memset(&s, 0, sizeof s);
    s.dim = 3;
    s.nparams = 4;
    s.ctx = &g_cub;
    s.f = cub_f;
    s.vjp = cub_vjp;
    return s;
}

#define N 9
#define NT 5

/* Ensemble options: zero (every default) but the group size and the thread count. */
static node_ensemble_options ens_options(uint64_t group, int threads)
{
    node_ensemble_options eo;
    memset(&eo, 0, sizeof eo);
    eo.group = group;
    eo.threads = threads;
    return eo;
}

/* The cubic system, batched by the row-by-row adapter, and an ensemble object. */
typedef struct fixture {
    node_system sys;
    node_ensemble_system es;
    node_ensemble *e;
} fixture;

static void fix_open(fixture *f, size_t workers)
{
    f->sys = cub_system();
    assert_status(node_ensemble_system_wrap(&f->sys, workers, &f->es), NODE_OK);
    assert_status(node_ensemble_create(&f->e), NODE_OK);
}

static void fix_close(fixture *f)
{
    node_ensemble_free(f->e);
    node_ensemble_system_free(&f->es);
}

static void initial_states(double *y0)
{
    for (int j = 0; j < N; j++) {   /* amplitudes spread: very different time scales */
        double r = 0.3 + 0.25 * j;
        y0[j * 3 + 0] = r;
        y0[j * 3 + 1] = -0.5 * r;
        y0[j * 3 + 2] = 0;
    }
}

static const double g_ts[NT] = { 0, 0.3, 0.7, 1.1, 1.5 };

static void check_like_odeint(node_method m, double step, uint64_t group)
{
    fixture fx;
    fix_open(&fx, 2);
    node_system sys = fx.sys;
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], ref[NT * 3];
    initial_states(y0);
    node_options o = node_options_default();
    o.method = m;
    o.step = step;
    o.rtol = 1e-6;
    o.atol = 1e-8;
    node_ensemble_options eo;
    memset(&eo, 0, sizeof eo);
    eo.group = group;
    node_stats st[N], tot;
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, &o, &eo, st, &tot), NODE_OK);
    int64_t nfe = 0;
    for (int j = 0; j < N; j++) {
        node_stats rs;
        assert_status(node_odeint(&sys, y0 + 3 * j, g_ts, NT, ref, &o, &rs), NODE_OK);
        assert_memory_equal(ys + j * NT * 3, ref, sizeof ref);   /* bit for bit */
        assert_int_equal(st[j].naccept, rs.naccept);
        assert_int_equal(st[j].nreject, rs.nreject);
        assert_int_equal(st[j].nsteps, rs.nsteps);
        if (step == 0)
            assert_int_equal(st[j].nfe, rs.nfe);
        assert_int_equal(st[j].rows_done, NT);
        assert_true(st[j].t_reached == g_ts[NT - 1]);
        nfe += st[j].nfe;
    }
    assert_int_equal(tot.nfe, nfe);
    assert_string_equal(tot.message, "");
    fix_close(&fx);
}

static void test_equals_node_odeint(void **state)
{
    (void)state;
    check_like_odeint(NODE_DOPRI5, 0, 0);
    check_like_odeint(NODE_DOPRI5, 0, 2);     /* groups of 2 (and a last one of 1) */
    check_like_odeint(NODE_BOSH3, 0, 4);
    check_like_odeint(NODE_DOP853, 0, 0);     /* dense-only stages, FSAL outside the error */
    check_like_odeint(NODE_RK4, 0.05, 3);
    check_like_odeint(NODE_EULER, 0.01, 0);
}

/* Each sample its own output times, some backward, some of one row. */
static void test_per_sample_ts(void **state)
{
    (void)state;
    fixture fx;
    fix_open(&fx, 1);
    node_system sys = fx.sys;
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], ref[NT * 3], ts[N * NT];
    initial_states(y0);
    for (int j = 0; j < N; j++)
        for (int i = 0; i < NT; i++)
            ts[j * NT + i] = (j % 3 == 2 ? -1.0 : 1.0) * (0.1 * j + i * (0.2 + 0.1 * j));
    node_ensemble_options eo;
    memset(&eo, 0, sizeof eo);
    eo.per_sample_ts = 1;
    eo.group = 4;
    node_stats st[N];
    node_ensemble_odeint(e, &es, N, y0, ts, NT, ys, NULL, &eo, st, NULL);
    int ok = 0;
    for (int j = 0; j < N; j++) {
        /* the large amplitudes blow up backward in time: failures as node_odeint's */
        node_stats rs;
        node_status want = node_odeint(&sys, y0 + 3 * j, ts + j * NT, NT, ref, NULL, &rs);
        assert_status(st[j].status, want);
        assert_string_equal(st[j].message, rs.message);
        assert_memory_equal(ys + j * NT * 3, ref, (size_t)rs.rows_done * 3 * sizeof(double));
        ok += want == NODE_OK;
    }
    assert_true(ok >= 7);
    /* nt = 1: y0 only */
    assert_status(node_ensemble_odeint(e, &es, N, y0, ts, 1, ys, NULL, &eo, st, NULL), NODE_OK);
    assert_memory_equal(ys, y0, sizeof y0);
    fix_close(&fx);
}

/* Gradients with per-sample output times (forward and backward in time): backprop and
   the adjoint against node_odeint_backprop / node_odeint_adjoint sample by sample. */
static void test_per_sample_ts_gradients(void **state)
{
    (void)state;
    fixture fx;
    fix_open(&fx, 1);
    double y0[N * 3], ys[N * NT * 3], ts[N * NT], w[N * NT * 3], dy0[N * 3], dp[4];
    initial_states(y0);
    for (int j = 0; j < N; j++)
        for (int i = 0; i < NT; i++)
            ts[j * NT + i] = (j < 3 ? -1.0 : 1.0) * (0.05 * j + i * (0.1 + 0.03 * j));
    for (int i = 0; i < N * NT * 3; i++)
        w[i] = cos(0.3 * i);
    node_ensemble_options eo;
    memset(&eo, 0, sizeof eo);
    eo.per_sample_ts = 1;
    eo.group = 4;
    node_options o = node_options_default();
    o.rtol = 1e-10;
    o.atol = 1e-12;
    o.seminorm = 1;
    assert_status(node_ensemble_odeint(fx.e, &fx.es, N, y0, ts, NT, ys, &o, &eo, NULL, NULL),
                  NODE_OK);
    for (int adj = 0; adj < 2; adj++) {
        node_status (*grad)(node_ensemble *, const node_ensemble_system *, size_t,
                            const double *, size_t, const double *, const double *, double *,
                            double *, const node_options *, const node_ensemble_options *,
                            node_stats *, node_stats *) =
            adj ? node_ensemble_adjoint : node_ensemble_backprop;
        assert_status(grad(fx.e, &fx.es, N, ts, NT, ys, w, dy0, dp, &o, &eo, NULL, NULL),
                      NODE_OK);
        double sum[4] = { 0, 0, 0, 0 };
        for (int j = 0; j < N; j++) {
            double ry0[3], rp[4];
            const double *tj = ts + j * NT, *yj = ys + j * NT * 3, *wj = w + j * NT * 3;
            assert_status(adj ? node_odeint_adjoint(&fx.sys, tj, NT, yj, wj, ry0, rp, NULL, &o,
                                                    NULL)
                              : node_odeint_backprop(&fx.sys, tj, NT, yj, wj, ry0, rp, NULL, &o,
                                                     NULL), NODE_OK);
            for (int d = 0; d < 2; d++)
                assert_close(dy0[3 * j + d], ry0[d], 1e-7, 1e-9);
            for (int i = 0; i < 4; i++)
                sum[i] += rp[i];
        }
        for (int i = 0; i < 4; i++)
            assert_close(dp[i], sum[i], 1e-7, 1e-9);
    }
    fix_close(&fx);
}

/* Samples 2 (f fails) and 5 (NaN) stop with their own status; the others are intact. */
static void test_failing_samples_leave_others_intact(void **state)
{
    (void)state;
    fixture fx;
    fix_open(&fx, 1);
    node_system sys = fx.sys;
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], ref[NT * 3];
    initial_states(y0);
    y0[2 * 3 + 2] = 1;
    y0[5 * 3 + 2] = 2;
    node_stats st[N], tot;
    node_status s = node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, NULL, NULL, st, &tot);
    assert_status(s, NODE_ECALLBACK);
    assert_status(st[2].status, NODE_ECALLBACK);
    assert_int_equal(st[2].callback_rc, 7);
    assert_non_null(strstr(st[2].message, "f returned 7 at t = "));
    assert_status(st[5].status, NODE_ENONFINITE);
    assert_non_null(strstr(tot.message, "sample 2: f returned 7"));
    assert_int_equal(tot.callback_rc, 7);
    for (int j = 0; j < N; j++) {
        node_stats rs;
        node_status want = node_odeint(&sys, y0 + 3 * j, g_ts, NT, ref, NULL, &rs);
        assert_status(st[j].status, want);
        assert_int_equal(st[j].rows_done, rs.rows_done);
        assert_true(st[j].t_reached == rs.t_reached);
        assert_memory_equal(ys + j * NT * 3, ref, (size_t)rs.rows_done * 3 * sizeof(double));
        if (want != NODE_OK)
            assert_string_equal(st[j].message, rs.message);
    }
    fix_close(&fx);
}

/* L = Σ_j Σ_i w_ij · ys[j][i] for fixed weights: dL/dys = w. */
static double loss_of(const double *ys, const double *w, size_t n)
{
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += w[i] * ys[i];
    return L;
}

static void check_backprop(node_method m, double step, int threads, double *dp_out)
{
    fixture fx;
    fix_open(&fx, 2);
    node_system sys = fx.sys;
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], w[N * NT * 3], dy0[N * 3], dp[4];
    initial_states(y0);
    for (int i = 0; i < N * NT * 3; i++)
        w[i] = sin(0.7 * i + 0.3);
    node_options o = node_options_default();
    o.method = m;
    o.step = step;
    o.rtol = 1e-8;
    o.atol = 1e-10;
    node_ensemble_options eo = ens_options(4, threads);
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, &o, &eo, NULL, NULL), NODE_OK);
    node_stats st[N];
    assert_status(node_ensemble_backprop(e, &es, N, g_ts, NT, ys, w, dy0, dp, &o, &eo, st, NULL),
                  NODE_OK);
    for (int j = 0; j < N; j++) {
        assert_int_equal(st[j].rows_done, 0);
        assert_true(st[j].t_reached == g_ts[0]);
        assert_true(st[j].nfe > 0);
    }
    /* against node_odeint_backprop sample by sample */
    double sum[4] = { 0, 0, 0, 0 };
    for (int j = 0; j < N; j++) {
        double ry0[3], rp[4];
        assert_status(node_odeint_backprop(&sys, g_ts, NT, ys + j * NT * 3, w + j * NT * 3, ry0,
                                           rp, NULL, &o, NULL), NODE_OK);
        for (int d = 0; d < 3; d++)
            assert_close(dy0[j * 3 + d], ry0[d], 1e-10, 1e-12);
        for (int i = 0; i < 4; i++)
            sum[i] += rp[i];
    }
    for (int i = 0; i < 4; i++)
        assert_close(dp[i], sum[i], 1e-10, 1e-12);
    /* against central differences of the loss (parameters, and y0 of sample 3) */
    double yp[N * NT * 3];
    for (int i = 0; i < 4; i++) {
        double keep = g_cub.A[i], hh = 1e-6;
        g_cub.A[i] = keep + hh;
        assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, yp, &o, &eo, NULL, NULL),
                      NODE_OK);
        double Lp = loss_of(yp, w, N * NT * 3);
        g_cub.A[i] = keep - hh;
        assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, yp, &o, &eo, NULL, NULL),
                      NODE_OK);
        double Lm = loss_of(yp, w, N * NT * 3);
        g_cub.A[i] = keep;
        assert_close(dp[i], (Lp - Lm) / (2 * hh), 1e-5, 1e-6);
    }
    for (int d = 0; d < 2; d++) {
        double y0p[N * 3], hh = 1e-6;
        memcpy(y0p, y0, sizeof y0);
        y0p[3 * 3 + d] += hh;
        assert_status(node_ensemble_odeint(e, &es, N, y0p, g_ts, NT, yp, &o, &eo, NULL, NULL),
                      NODE_OK);
        double Lp = loss_of(yp, w, N * NT * 3);
        y0p[3 * 3 + d] -= 2 * hh;
        assert_status(node_ensemble_odeint(e, &es, N, y0p, g_ts, NT, yp, &o, &eo, NULL, NULL),
                      NODE_OK);
        double Lm = loss_of(yp, w, N * NT * 3);
        assert_close(dy0[3 * 3 + d], (Lp - Lm) / (2 * hh), 1e-5, 1e-6);
    }
    if (dp_out)
        memcpy(dp_out, dp, sizeof dp);
    fix_close(&fx);
}

/* The adjoint: against node_odeint_adjoint (seminorm) per sample and against central
   differences of the loss; thread count and group size change no bit. */
static void adjoint_grad_m(node_method m, int threads, uint64_t group, double *dy0, double *dp)
{
    fixture fx;
    fix_open(&fx, 2);
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], w[N * NT * 3];
    initial_states(y0);
    for (int i = 0; i < N * NT * 3; i++)
        w[i] = sin(0.7 * i + 0.3);
    node_options o = node_options_default();
    o.method = m;
    o.rtol = 1e-10;
    o.atol = 1e-12;
    node_ensemble_options eo = ens_options(group, threads);
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, &o, &eo, NULL, NULL), NODE_OK);
    node_stats st[N];
    assert_status(node_ensemble_adjoint(e, &es, N, g_ts, NT, ys, w, dy0, dp, &o, &eo, st, NULL),
                  NODE_OK);
    for (int j = 0; j < N; j++) {
        assert_int_equal(st[j].rows_done, 0);
        assert_true(st[j].t_reached == g_ts[0]);
    }
    fix_close(&fx);
}

static void adjoint_grad(int threads, uint64_t group, double *dy0, double *dp)
{
    adjoint_grad_m(NODE_DOPRI5, threads, group, dy0, dp);
}

/* DOP853's adjoint (its FSAL stage outside the error estimate) against DOPRI5's: both
   near the exact gradient at these tolerances. */
static void test_adjoint_dop853(void **state)
{
    (void)state;
    double a[N * 3], pa[4], b[N * 3], pb[4];
    adjoint_grad_m(NODE_DOP853, 1, 0, a, pa);
    adjoint_grad_m(NODE_DOPRI5, 1, 0, b, pb);
    for (int i = 0; i < N * 3; i++)
        assert_close(a[i], b[i], 1e-7, 1e-9);
    for (int i = 0; i < 4; i++)
        assert_close(pa[i], pb[i], 1e-7, 1e-9);
}

static void test_adjoint_gradients(void **state)
{
    (void)state;
    double dy0[N * 3], dp[4], dy0b[N * 3], dpb[4];
    adjoint_grad(1, 4, dy0, dp);
    /* against node_odeint_adjoint with the seminorm */
    node_system sys = cub_system();
    double y0[N * 3], ys[N * NT * 3], w[N * NT * 3], sum[4] = { 0, 0, 0, 0 };
    initial_states(y0);
    for (int i = 0; i < N * NT * 3; i++)
        w[i] = sin(0.7 * i + 0.3);
    node_options o = node_options_default();
    o.rtol = 1e-10;
    o.atol = 1e-12;
    o.seminorm = 1;
    for (int j = 0; j < N; j++) {
        double ry0[3], rp[4];
        assert_status(node_odeint(&sys, y0 + 3 * j, g_ts, NT, ys + j * NT * 3, &o, NULL), NODE_OK);
        assert_status(node_odeint_adjoint(&sys, g_ts, NT, ys + j * NT * 3, w + j * NT * 3, ry0, rp,
                                          NULL, &o, NULL), NODE_OK);
        for (int d = 0; d < 2; d++)
            assert_close(dy0[j * 3 + d], ry0[d], 1e-7, 1e-9);
        for (int i = 0; i < 4; i++)
            sum[i] += rp[i];
    }
    for (int i = 0; i < 4; i++)
        assert_close(dp[i], sum[i], 1e-7, 1e-9);
    /* against central differences (forward solves at a tight tolerance) */
    for (int i = 0; i < 4; i++) {
        double keep = g_cub.A[i], hh = 1e-6, L[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            g_cub.A[i] = keep + (sgn ? -hh : hh);
            L[sgn] = 0;
            for (int j = 0; j < N; j++) {
                assert_status(node_odeint(&sys, y0 + 3 * j, g_ts, NT, ys + j * NT * 3, &o, NULL),
                              NODE_OK);
            }
            L[sgn] = loss_of(ys, w, N * NT * 3);
        }
        g_cub.A[i] = keep;
        assert_close(dp[i], (L[0] - L[1]) / (2 * hh), 1e-5, 1e-6);
    }
    /* threads and group sizes: the same bits (groups of 4 either way for dL/dθ's sum) */
    adjoint_grad(2, 4, dy0b, dpb);
    assert_memory_equal(dy0, dy0b, sizeof dy0);
    assert_memory_equal(dp, dpb, sizeof dp);
    adjoint_grad(1, 2, dy0b, dpb);
    assert_memory_equal(dy0, dy0b, sizeof dy0);   /* per sample: the group does not matter */
}

/* The default group (group = 0) is 256 samples for a small state (ens_api.c): dL/dθ,
   summed group by group, has the bits of group = 256 whatever the thread count, and
   not those of groups of 64 (another summation order). */
static void backprop_big(uint64_t group, int threads, double *dp)
{
    enum { M = 300 };
    fixture fx;
    fix_open(&fx, 2);
    static double y0[M * 3], ys[M * NT * 3], w[M * NT * 3], dy0[M * 3];
    for (int j = 0; j < M; j++) {
        double r = 0.3 + 0.007 * j;
        y0[j * 3 + 0] = r;
        y0[j * 3 + 1] = -0.5 * r + 0.001 * (j % 7);
        y0[j * 3 + 2] = 0;
    }
    for (int i = 0; i < M * NT * 3; i++)
        w[i] = sin(0.7 * i + 0.3);
    node_options o = node_options_default();
    o.rtol = 1e-8;
    o.atol = 1e-10;
    node_ensemble_options eo = ens_options(group, threads);
    assert_status(node_ensemble_odeint(fx.e, &fx.es, M, y0, g_ts, NT, ys, &o, &eo, NULL,
                                       NULL), NODE_OK);
    assert_status(node_ensemble_backprop(fx.e, &fx.es, M, g_ts, NT, ys, w, dy0, dp, &o, &eo,
                                         NULL, NULL), NODE_OK);
    fix_close(&fx);
}

static void test_default_group(void **state)
{
    (void)state;
    double d0[4], d256[4], d64[4], d0t[4];
    backprop_big(0, 1, d0);
    backprop_big(256, 1, d256);
    backprop_big(64, 1, d64);
    backprop_big(0, 2, d0t);
    assert_memory_equal(d0, d256, sizeof d0);
    assert_memory_equal(d0, d0t, sizeof d0);
    assert_memory_not_equal(d0, d64, sizeof d0);
    for (int i = 0; i < 4; i++)
        assert_close(d0[i], d64[i], 1e-12, 1e-14);
}

/* Gradients with samples that fail (2: f in the forward re-run, 6: vjp): their status
   and a NaN row; the others' dL/dy0 and dL/dθ as computed without them. */
static void check_grad_failures(bool adjoint)
{
    fixture fx;
    fix_open(&fx, 1);
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], w[N * NT * 3], dy0[N * 3], dp[4];
    double y0k[N * 3], wk[N * NT * 3], ysk[N * NT * 3], dy0k[N * 3], dpk[4];
    initial_states(y0);
    for (int i = 0; i < N * NT * 3; i++)
        w[i] = sin(0.7 * i + 0.3);
    node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, NULL, NULL, NULL, NULL);
    /* the others alone */
    int nk = 0;
    for (int j = 0; j < N; j++) {
        if (j == 2 || j == 6)
            continue;
        memcpy(y0k + 3 * nk, y0 + 3 * j, 3 * sizeof(double));
        memcpy(ysk + nk * NT * 3, ys + j * NT * 3, NT * 3 * sizeof(double));
        memcpy(wk + nk * NT * 3, w + j * NT * 3, NT * 3 * sizeof(double));
        nk++;
    }
    node_status (*grad)(node_ensemble *, const node_ensemble_system *, size_t, const double *,
                        size_t, const double *, const double *, double *, double *,
                        const node_options *, const node_ensemble_options *, node_stats *,
                        node_stats *) = adjoint ? node_ensemble_adjoint : node_ensemble_backprop;
    assert_status(grad(e, &es, (size_t)nk, g_ts, NT, ysk, wk, dy0k, dpk, NULL, NULL, NULL, NULL),
                  NODE_OK);
    ys[2 * NT * 3 + 2] = 1;   /* tag the rows the gradients read */
    for (int i = 0; i < NT; i++) {
        ys[(2 * NT + i) * 3 + 2] = 1;
        ys[(6 * NT + i) * 3 + 2] = 3;
    }
    node_stats st[N], tot;
    assert_status(grad(e, &es, N, g_ts, NT, ys, w, dy0, dp, NULL, NULL, st, &tot),
                  NODE_ECALLBACK);
    assert_non_null(strstr(st[6].message, "sys->vjp returned 5"));
    assert_int_equal(st[6].callback_rc, 5);
    assert_status(st[2].status, NODE_ECALLBACK);
    assert_true(isnan(dy0[2 * 3]) && isnan(dy0[6 * 3]));
    nk = 0;
    for (int j = 0; j < N; j++) {
        if (j == 2 || j == 6)
            continue;
        assert_status(st[j].status, NODE_OK);
        for (int d = 0; d < 3; d++)
            assert_close(dy0[3 * j + d], dy0k[3 * nk + d], 1e-12, 1e-14);
        nk++;
    }
    for (int i = 0; i < 4; i++)
        assert_close(dp[i], dpk[i], 1e-12, 1e-14);
    fix_close(&fx);
}

static void test_gradient_failures_leave_others_intact(void **state)
{
    (void)state;
    check_grad_failures(false);
    check_grad_failures(true);
}

static void test_backprop_gradients(void **state)
{
    (void)state;
    check_backprop(NODE_DOPRI5, 0, 1, NULL);
    check_backprop(NODE_DOP853, 0, 1, NULL);
    check_backprop(NODE_BOSH3, 0, 1, NULL);
    check_backprop(NODE_RK4, 0.04, 1, NULL);   /* fixed steps, Hermite dense output */
}

/* Thread count changes nothing (with OpenMP; one thread otherwise). */
static void test_thread_count_invariance(void **state)
{
    (void)state;
    double dp1[4], dp2[4];
    check_backprop(NODE_DOPRI5, 0, 1, dp1);
    check_backprop(NODE_DOPRI5, 0, 2, dp2);
    assert_memory_equal(dp1, dp2, sizeof dp1);

    fixture fx;
    fix_open(&fx, 2);
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], a[N * NT * 3], b[N * NT * 3];
    initial_states(y0);
    node_ensemble_options eo = ens_options(2, 1);
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, a, NULL, &eo, NULL, NULL), NODE_OK);
    eo.threads = 2;
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, b, NULL, &eo, NULL, NULL), NODE_OK);
    assert_memory_equal(a, b, sizeof a);
    fix_close(&fx);
}

/* The MLP adapter: each row at its own time (time_input), as node_odeint of the MLP
   alone; its parameter gradient against node_odeint_backprop summed over samples. */
static void test_mlp_adapter(void **state)
{
    (void)state;
    size_t sizes[3] = { 2, 16, 2 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 5);
    node_ensemble_system es;
    assert_status(node_mlp_ensemble(m, 3, 2, &es), NODE_OK);   /* calls of 3 rows at most */
    node_system one;
    assert_status(node_mlp_system(m, 1, &one), NODE_OK);
    node_ensemble *e;
    assert_status(node_ensemble_create(&e), NODE_OK);
    enum { n = 7 };
    double y0[n * 2], ys[n * NT * 2], ref[NT * 2], w[n * NT * 2], dy0[n * 2];
    size_t np = node_mlp_nparams(m);
    double *dp = malloc(np * sizeof *dp), *sum = calloc(np, sizeof *sum),
           *rp = malloc(np * sizeof *rp);
    for (int i = 0; i < n * 2; i++)
        y0[i] = sin(1.3 * i + 0.2);
    for (int i = 0; i < n * NT * 2; i++)
        w[i] = cos(0.9 * i);
    node_options o = node_options_default();
    o.rtol = 1e-9;
    o.atol = 1e-11;
    assert_status(node_ensemble_odeint(e, &es, n, y0, g_ts, NT, ys, &o, NULL, NULL, NULL),
                  NODE_OK);
    for (int j = 0; j < n; j++) {
        assert_status(node_odeint(&one, y0 + 2 * j, g_ts, NT, ref, &o, NULL), NODE_OK);
        for (int i = 0; i < NT * 2; i++)
            assert_close(ys[j * NT * 2 + i], ref[i], 1e-8, 1e-10);
    }
    assert_status(node_ensemble_backprop(e, &es, n, g_ts, NT, ys, w, dy0, dp, &o, NULL, NULL,
                                         NULL), NODE_OK);
    for (int j = 0; j < n; j++) {
        double ry0[2];
        assert_status(node_odeint_backprop(&one, g_ts, NT, ys + j * NT * 2, w + j * NT * 2, ry0,
                                           rp, NULL, &o, NULL), NODE_OK);
        for (size_t i = 0; i < np; i++)
            sum[i] += rp[i];
        for (int d = 0; d < 2; d++)
            assert_close(dy0[2 * j + d], ry0[d], 1e-6, 1e-8);
    }
    for (size_t i = 0; i < np; i++)
        assert_close(dp[i], sum[i], 1e-6, 1e-8);
    free(dp);
    free(sum);
    free(rp);
    node_ensemble_free(e);
    node_mlp_free(m);
}

/* Every allocation failing in turn: NODE_ENOMEM (for the call or the samples), never a
   crash or a leak, and success once none fails. */
static void test_allocation_failures(void **state)
{
    (void)state;
    node_system sys = cub_system();
    double y0[N * 3], ys[N * NT * 3], w[N * NT * 3], dy0[N * 3], dp[4];
    initial_states(y0);
    for (int i = 0; i < N * NT * 3; i++)
        w[i] = 0.1;
    node_ensemble_options eo = ens_options(4, 1);
    for (long k = 0;; k++) {
        node_test_alloc_begin(k);
        node_ensemble_system es;
        node_ensemble *e = NULL;
        node_status s = node_ensemble_system_wrap(&sys, 1, &es);
        if (s == NODE_OK) {
            s = node_ensemble_create(&e);
            if (s == NODE_OK)
                s = node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, NULL, &eo, NULL, NULL);
            if (s == NODE_OK)
                s = node_ensemble_backprop(e, &es, N, g_ts, NT, ys, w, dy0, dp, NULL, &eo,
                                           NULL, NULL);
            if (s == NODE_OK)
                s = node_ensemble_adjoint(e, &es, N, g_ts, NT, ys, w, dy0, dp, NULL, &eo,
                                          NULL, NULL);
            node_ensemble_free(e);
            node_ensemble_system_free(&es);
        }
        long live = node_test_alloc_live();
        long count = node_test_alloc_end();
        assert_int_equal(live, 0);
        if (s == NODE_OK) {
            assert_true(k >= count);   /* nothing failed */
            break;
        }
        assert_status(s, NODE_ENOMEM);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    fixture fx;
    fix_open(&fx, 1);
    node_ensemble_system es = fx.es;
    node_ensemble *e = fx.e;
    double y0[N * 3], ys[N * NT * 3], dy0[N * 3], dp[4];
    initial_states(y0);
    node_stats tot;
    assert_status(node_ensemble_odeint(NULL, &es, N, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_string_equal(tot.message, "the ensemble object is NULL");
    assert_status(node_ensemble_odeint(e, NULL, N, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_string_equal(tot.message, "sys is NULL");
    assert_status(node_ensemble_odeint(e, &es, 0, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_non_null(strstr(tot.message, "n = 0"));
    assert_status(node_ensemble_odeint(e, &es, N, NULL, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_string_equal(tot.message, "y0 is NULL");
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, NULL, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_string_equal(tot.message, "ys is NULL");
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, 0, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    double ts[N * NT];
    for (int j = 0; j < N; j++)
        for (int i = 0; i < NT; i++)
            ts[j * NT + i] = i;
    node_ensemble_system huge = es;
    huge.dim = SIZE_MAX / 1024;   /* one sample fits, nine do not */
    assert_status(node_ensemble_odeint(e, &huge, N, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_non_null(strstr(tot.message, "do not fit in memory"));
    huge = es;
    huge.reserved_[0] = 1;
    assert_status(node_ensemble_odeint(e, &huge, N, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_non_null(strstr(tot.message, "sys has non-zero reserved fields"));
    ts[4 * NT + 2] = 1;   /* sample 4: ts[2] = ts[1] */
    node_ensemble_options eo;
    memset(&eo, 0, sizeof eo);
    eo.per_sample_ts = 1;
    assert_status(node_ensemble_odeint(e, &es, N, y0, ts, NT, ys, NULL, &eo, NULL, &tot),
                  NODE_EINVAL);
    assert_non_null(strstr(tot.message, "sample 4: ts[2] = ts[1]"));
    eo.per_sample_ts = 0;
    eo.reserved_[3] = 1;
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, NULL, &eo, NULL, &tot),
                  NODE_EINVAL);
    assert_non_null(strstr(tot.message, "eopt has non-zero reserved fields"));
    y0[7 * 3 + 1] = NAN;
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_EINVAL);
    assert_non_null(strstr(tot.message, "y0[7][1] = nan"));
    initial_states(y0);
    assert_status(node_ensemble_odeint(e, &es, N, y0, g_ts, NT, ys, NULL, NULL, NULL, &tot),
                  NODE_OK);
    assert_status(node_ensemble_backprop(e, &es, N, g_ts, NT, ys, NULL, dy0, dp, NULL, NULL,
                                         NULL, &tot), NODE_EINVAL);
    assert_string_equal(tot.message, "dLdys is NULL");
    node_ensemble_system nov = es;
    nov.vjp = NULL;
    assert_status(node_ensemble_backprop(e, &nov, N, g_ts, NT, ys, ys, dy0, dp, NULL, NULL,
                                         NULL, &tot), NODE_EINVAL);
    assert_non_null(strstr(tot.message, "sys->vjp is NULL"));
    assert_status(node_ensemble_create(NULL), NODE_EINVAL);
    node_ensemble_free(NULL);
    node_ensemble_system_free(NULL);
    fix_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_node_odeint),
        cmocka_unit_test(test_per_sample_ts),
        cmocka_unit_test(test_per_sample_ts_gradients),
        cmocka_unit_test(test_failing_samples_leave_others_intact),
        cmocka_unit_test(test_backprop_gradients),
        cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_adjoint_gradients),
        cmocka_unit_test(test_default_group),
        cmocka_unit_test(test_adjoint_dop853),
        cmocka_unit_test(test_gradient_failures_leave_others_intact),
        cmocka_unit_test(test_mlp_adapter),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
