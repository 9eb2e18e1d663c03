/* test_grad.c — adjoint and exact backprop on hand-written linear systems
 * y' = A y (+ sin(t) u), against analytic gradients from the matrix exponential
 * (Van Loan 1978, "Computing integrals involving the matrix exponential": the
 * Fréchet derivative as a block of exp([[X, E], [0, X]])) and central differences.
 */
#include "test_util.h"

#include <string.h>

#define N 3                 /* state */
#define M (N + 2)           /* with [sin t, cos t] appended: the time-dependent case */
#define NP (N * N + N)      /* θ = [A (row-major), u] */
#define MAXT 8

/* ---- the system: y' = A y + sin(t) u (u used only when timedep) ------------------ */

typedef struct lin {
    double p[NP];
    int timedep;
    long calls, fail_at;    /* the fail_at-th vjp call (0-based) fails; -1: none */
    int forbid_vp, forbid_vt;   /* fail if asked for vjp_p / vjp_t */
} lin;

static int lin_f(void *ctx, double t, const double *y, double *dydt)
{
    const lin *c = ctx;
    for (int i = 0; i < N; i++) {
        double s = c->timedep ? sin(t) * c->p[N * N + i] : 0;
        for (int j = 0; j < N; j++)
            s += c->p[i * N + j] * y[j];
        dydt[i] = s;
    }
    return 0;
}

static int lin_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vy, double *vp, double *vt)
{
    lin *c = ctx;
    if (c->fail_at >= 0 && c->calls++ == c->fail_at)
        return 7;
    if ((c->forbid_vp && vp) || (c->forbid_vt && vt))
        return 9;
    if (dydt)
        lin_f(ctx, t, y, dydt);
    for (int j = 0; j < N; j++) {
        double s = 0;
        for (int i = 0; i < N; i++)
            s += a[i] * c->p[i * N + j];
        vy[j] = s;
    }
    if (vp) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                vp[i * N + j] = a[i] * y[j];
        if (c->timedep)
            for (int i = 0; i < N; i++)
                vp[N * N + i] = a[i] * sin(t);
    }
    if (vt) {
        double s = 0;
        if (c->timedep)
            for (int i = 0; i < N; i++)
                s += a[i] * c->p[N * N + i];
        *vt = s * cos(t);
    }
    return 0;
}

static void lin_init(lin *c, int timedep)
{
    static const double A[N * N] = { -0.5, 1.0, 0.2, -1.0, -0.3, 0.4, 0.3, -0.2, -0.1 };
    static const double u[N] = { 0.7, -0.3, 0.5 };
    memcpy(c->p, A, sizeof A);
    memcpy(c->p + N * N, u, sizeof u);
    c->timedep = timedep;
    c->calls = 0;
    c->fail_at = -1;
    c->forbid_vp = c->forbid_vt = 0;
}

static node_system lin_system(lin *c)
{
    node_system s = { .dim = N, .nparams = (size_t)(c->timedep ? NP : N * N), .ctx = c,
                      .f = lin_f, .vjp = lin_vjp };
    return s;
}

static const double Y0[N] = { 1.0, -0.5, 0.25 };

/* The loss L = Σ_i w_iᵀ y(t_i), w_i fixed. */
static double weight(size_t i, size_t j) { return sin(1.0 + 1.3 * (double)i + 0.7 * (double)j); }

static void weights(size_t nt, double *W)
{
    for (size_t i = 0; i < nt; i++)
        for (size_t j = 0; j < N; j++)
            W[i * N + j] = weight(i, j);
}

/* ---- analytic gradients from the matrix exponential (long double) ---------------- */

#define MX (2 * M)

/* E = exp(X) (m × m), scaling and squaring with a Taylor series. */
static void expm(int m, const long double *X, long double *E)
{
    long double nrm = 0, S[MX * MX], T[MX * MX], U[MX * MX];
    for (int i = 0; i < m; i++) {
        long double r = 0;
        for (int j = 0; j < m; j++)
            r += fabsl(X[i * m + j]);
        if (r > nrm)
            nrm = r;
    }
    int sq = 0;
    while (nrm > 0.25L) {
        nrm /= 2;
        sq++;
    }
    long double scale = ldexpl(1.0L, -sq);
    for (int i = 0; i < m * m; i++) {
        S[i] = X[i] * scale;
        E[i] = T[i] = (i % (m + 1) == 0);
    }
    for (int k = 1; k < 40; k++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                long double s = 0;
                for (int l = 0; l < m; l++)
                    s += T[i * m + l] * S[l * m + j];
                U[i * m + j] = s / k;
            }
        memcpy(T, U, sizeof(long double) * (size_t)(m * m));
        for (int i = 0; i < m * m; i++)
            E[i] += T[i];
    }
    for (int q = 0; q < sq; q++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                long double s = 0;
                for (int l = 0; l < m; l++)
                    s += E[i * m + l] * E[l * m + j];
                U[i * m + j] = s;
            }
        memcpy(E, U, sizeof(long double) * (size_t)(m * m));
    }
}

/* The system as z' = B z on z = [y, sin t, cos t] (m = M) or z = y (m = N).
   With τ_i = t_i - t0 and Z0 = z(t0):  y(t_i) = [e^{Bτ} Z0]_y,
   dL/dz0 = Σ e^{Bᵀτ} W_i,  dL/dB = Σ upper-right block of
   exp([[Bᵀτ, τ W_i Z0ᵀ], [0, Bᵀτ]]) (Fréchet derivative, Van Loan),
   dL/dt_i = W_iᵀ B e^{Bτ} Z0 (i ≥ 1),
   dL/dt0 = Σ W_iᵀ e^{Bτ} (dZ0/dt0 - B Z0)  (the t0-shift of every τ and of Z0). */
static void analytic(const lin *c, const double *ts, size_t nt, const double *W,
                     double *ys, double *gy0, double *gp, double *gts)
{
    int m = c->timedep ? M : N;
    long double B[M * M] = { 0 }, Z0[M] = { 0 }, dZ0[M] = { 0 };
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            B[i * m + j] = c->p[i * N + j];
        if (c->timedep)
            B[i * m + N] = c->p[N * N + i];
        Z0[i] = Y0[i];
    }
    if (c->timedep) {
        B[N * m + N + 1] = 1;
        B[(N + 1) * m + N] = -1;
        Z0[N] = sinl(ts[0]);
        Z0[N + 1] = cosl(ts[0]);
        dZ0[N] = cosl(ts[0]);
        dZ0[N + 1] = -sinl(ts[0]);
    }
    long double G[M * M] = { 0 }, gz[M] = { 0 }, g0 = 0;
    for (size_t k = 0; k < nt; k++) {
        long double tau = (long double)ts[k] - ts[0], X[MX * MX] = { 0 }, E[MX * MX];
        const double *w = W + k * N;
        int m2 = 2 * m;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                X[i * m2 + j] = X[(m + i) * m2 + m + j] = B[j * m + i] * tau;
                X[i * m2 + m + j] = i < N ? tau * w[i] * Z0[j] : 0;
            }
        expm(m2, X, E);
        /* e^{Bᵀτ} is the top-left block; e^{Bτ} its transpose. */
        long double z[M], Bz[M], dz[M];
        for (int i = 0; i < m; i++) {
            z[i] = dz[i] = 0;
            for (int j = 0; j < m; j++) {
                z[i] += E[j * m2 + i] * Z0[j];
                dz[i] += E[j * m2 + i] * dZ0[j];
            }
        }
        for (int i = 0; i < m; i++) {
            Bz[i] = 0;
            for (int j = 0; j < m; j++)
                Bz[i] += B[i * m + j] * z[j];
        }
        long double gt = 0;
        for (int i = 0; i < N; i++) {
            ys[k * N + i] = (double)z[i];
            gt += w[i] * Bz[i];
            /* for k = 0, t_k is t0 itself and τ stays 0 */
            g0 += w[i] * (k == 0 ? dz[i] : dz[i] - Bz[i]);
        }
        if (k > 0)
            gts[k] = (double)gt;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < N; j++)
                gz[i] += E[i * m2 + j] * w[j];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
                G[i * m + j] += E[i * m2 + m + j];
    }
    gts[0] = (double)g0;
    for (int i = 0; i < N; i++) {
        gy0[i] = (double)gz[i];
        for (int j = 0; j < N; j++)
            gp[i * N + j] = (double)G[i * m + j];
        if (c->timedep)
            gp[N * N + i] = (double)G[i * m + N];
    }
}

/* max|got - want| / max|want|: a vector's relative error. */
static double vrel(const double *got, const double *want, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
        s = fmax(s, fabs(want[i]));
    }
    return e / fmax(s, 1e-300);
}

/* ---- gradients against the analytic ones ------------------------------------------ */

typedef node_status (*grad_fn)(const node_system *, const double *, size_t, const double *,
                               const double *, double *, double *, double *,
                               const node_options *, node_stats *);

static void check_analytic_opt(grad_fn grad, int timedep, node_options o, const double *ts,
                               size_t nt);

static void check_analytic(grad_fn grad, int timedep, node_method method, const double *ts,
                           size_t nt, int seminorm)
{
    node_options o = node_options_default();
    o.method = method;
    o.rtol = o.atol = 1e-12;
    o.seminorm = seminorm;
    check_analytic_opt(grad, timedep, o, ts, nt);
}

static void check_analytic_opt(grad_fn grad, int timedep, node_options o, const double *ts,
                               size_t nt)
{
    lin c;
    lin_init(&c, timedep);
    node_system sys = lin_system(&c);
    double W[MAXT * N], ys[MAXT * N], yw[MAXT * N], gy0[N], gp[NP], gts[MAXT];
    double ay0[N], ap[NP], ats[MAXT];
    weights(nt, W);
    analytic(&c, ts, nt, W, yw, ay0, ap, ats);
    assert_status(node_odeint(&sys, Y0, ts, nt, ys, &o, NULL), NODE_OK);
    assert_true(vrel(ys, yw, nt * N) < 1e-9);     /* the forward pass and expm agree */
    node_stats st;
    assert_status(grad(&sys, ts, nt, ys, W, gy0, gp, gts, &o, &st), NODE_OK);
    assert_true(st.nfe > 0);
    double e1 = vrel(gy0, ay0, N), e2 = vrel(gp, ap, sys.nparams), e3 = vrel(gts, ats, nt);
    if (e1 > 1e-6 || e2 > 1e-6 || e3 > 1e-6)
        print_message("rel errors: dLdy0 %.3g dLdp %.3g dLdts %.3g\n", e1, e2, e3);
    assert_true(e1 < 1e-6);
    assert_true(e2 < 1e-6);
    assert_true(e3 < 1e-6);
}

static const double TS_UP[] = { 0.0, 0.3, 1.1, 1.7, 2.5 };
static const double TS_DOWN[] = { 1.0, 0.6, -0.4, -1.5 };

static void test_adjoint_linear_matches_expm(void **state)
{
    (void)state;
    check_analytic(node_odeint_adjoint, 0, NODE_DOPRI5, TS_UP, 5, 0);
    check_analytic(node_odeint_adjoint, 0, NODE_DOP853, TS_UP, 5, 0);
    check_analytic(node_odeint_adjoint, 0, NODE_DOPRI5, TS_DOWN, 4, 0);
}

static void test_adjoint_seminorm_matches_expm(void **state)
{
    (void)state;
    check_analytic(node_odeint_adjoint, 0, NODE_DOPRI5, TS_UP, 5, 1);
    check_analytic(node_odeint_adjoint, 1, NODE_DOP853, TS_DOWN, 4, 1);
}

static void test_adjoint_time_dependent_matches_expm(void **state)
{
    (void)state;
    check_analytic(node_odeint_adjoint, 1, NODE_DOPRI5, TS_UP, 5, 0);
    check_analytic(node_odeint_adjoint, 1, NODE_DOP853, TS_DOWN, 4, 0);
}

static void test_fixed_step_adjoint_matches_expm(void **state)
{
    (void)state;
    node_options o = node_options_default();
    o.method = NODE_RK4;
    o.step = 1e-3;     /* RK4's error, ~h^4, is far below the 1e-6 asked for */
    check_analytic_opt(node_odeint_adjoint, 1, o, TS_UP, 5);
    check_analytic_opt(node_odeint_backprop, 1, o, TS_DOWN, 4);
}

/* adjoint_rtol/atol govern the backward solve: looser means fewer evaluations
   and a gradient about that accurate. */
static void test_adjoint_tolerances_apply_to_backward_solve(void **state)
{
    (void)state;
    lin c;
    lin_init(&c, 1);
    node_system sys = lin_system(&c);
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-12;
    double W[5 * N], ys[5 * N], yw[5 * N], g[N], gp[NP], gt[5], ay0[N], ap[NP], ats[5];
    weights(5, W);
    analytic(&c, TS_UP, 5, W, yw, ay0, ap, ats);
    assert_status(node_odeint(&sys, Y0, TS_UP, 5, ys, &o, NULL), NODE_OK);
    node_stats tight, loose;
    assert_status(node_odeint_adjoint(&sys, TS_UP, 5, ys, W, g, gp, gt, &o, &tight), NODE_OK);
    o.adjoint_rtol = o.adjoint_atol = 1e-5;
    assert_status(node_odeint_adjoint(&sys, TS_UP, 5, ys, W, g, gp, gt, &o, &loose), NODE_OK);
    assert_true(loose.nfe < tight.nfe);
    double e = vrel(gp, ap, NP);
    assert_true(e < 1e-3);
    assert_true(e > 1e-12);   /* it really was solved more loosely */
}

static void test_backprop_linear_matches_expm(void **state)
{
    (void)state;
    check_analytic(node_odeint_backprop, 0, NODE_DOPRI5, TS_UP, 5, 0);
    check_analytic(node_odeint_backprop, 0, NODE_DOP853, TS_UP, 5, 0);
    check_analytic(node_odeint_backprop, 0, NODE_DOP853, TS_DOWN, 4, 0);
}

static void test_backprop_time_dependent_matches_expm(void **state)
{
    (void)state;
    check_analytic(node_odeint_backprop, 1, NODE_DOPRI5, TS_UP, 5, 0);
    check_analytic(node_odeint_backprop, 1, NODE_DOP853, TS_DOWN, 4, 0);
}

/* ---- central differences (Richardson-extrapolated) -------------------------------- */

static double loss(const lin *c, const double *y0, const double *ts, size_t nt,
                   const node_options *o)
{
    lin cc = *c;
    node_system sys = lin_system(&cc);
    double ys[MAXT * N], W[MAXT * N];
    weights(nt, W);
    assert_status(node_odeint(&sys, y0, ts, nt, ys, o, NULL), NODE_OK);
    double L = 0;
    for (size_t i = 0; i < nt * N; i++)
        L += W[i] * ys[i];
    return L;
}

/* d/dx of loss at x = *v (v points into y0, θ or ts): central differences
   D(δ) extrapolated as (4 D(δ/2) - D(δ)) / 3. */
static double fd(lin *c, double *y0, double *ts, size_t nt, const node_options *o,
                 double *v, double delta)
{
    double x = *v, D[2];
    for (int r = 0; r < 2; r++) {
        double d = delta / (r + 1);
        *v = x + d;
        double lp = loss(c, y0, ts, nt, o);
        *v = x - d;
        double lm = loss(c, y0, ts, nt, o);
        *v = x;
        D[r] = (lp - lm) / (2 * d);
    }
    return (4 * D[1] - D[0]) / 3;
}

static void check_fd(grad_fn grad, int timedep, node_options o, const double *ts_in,
                     size_t nt, double delta, double tol, bool ends)
{
    lin c;
    lin_init(&c, timedep);
    node_system sys = lin_system(&c);
    double ts[MAXT], y0[N], W[MAXT * N], ys[MAXT * N], gy0[N], gp[NP], gts[MAXT];
    memcpy(ts, ts_in, nt * sizeof(double));
    memcpy(y0, Y0, sizeof y0);
    weights(nt, W);
    assert_status(node_odeint(&sys, y0, ts, nt, ys, &o, NULL), NODE_OK);
    assert_status(grad(&sys, ts, nt, ys, W, gy0, gp, gts, &o, NULL), NODE_OK);
    double want[NP];
    for (size_t i = 0; i < N; i++)
        want[i] = fd(&c, y0, ts, nt, &o, &y0[i], delta);
    assert_true(vrel(gy0, want, N) < tol);
    for (size_t i = 0; i < sys.nparams; i++)
        want[i] = fd(&c, y0, ts, nt, &o, &c.p[i], delta);
    assert_true(vrel(gp, want, sys.nparams) < tol);
    /* Output times: t0 and the last one move the step grid, so a fixed-step
       discrete map is differentiated only in the interior ones (ends == false). */
    for (size_t i = 0; i < nt; i++) {
        if (!ends && (i == 0 || i == nt - 1))
            continue;
        double g = fd(&c, y0, ts, nt, &o, &ts[i], delta);
        assert_close(gts[i], g, tol, tol * 1e-2);
    }
}

static void test_dLdts_match_central_differences(void **state)
{
    (void)state;
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-12;
    for (int td = 0; td < 2; td++) {
        check_fd(node_odeint_adjoint, td, o, TS_UP, 5, 1e-3, 1e-6, true);
        check_fd(node_odeint_adjoint, td, o, TS_DOWN, 4, 1e-3, 1e-6, true);
        check_fd(node_odeint_backprop, td, o, TS_UP, 5, 1e-3, 1e-6, true);
        check_fd(node_odeint_backprop, td, o, TS_DOWN, 4, 1e-3, 1e-6, true);
    }
}

static void test_fixed_step_backprop_is_exact_gradient_of_discrete_map(void **state)
{
    (void)state;
    /* Outputs fall between steps: the dense (Hermite) output is differentiated too. */
    static const double ts_up[] = { 0.0, 0.25, 0.73, 1.05, 1.3 };
    static const double ts_down[] = { 0.5, 0.27, -0.31, -0.6 };
    node_method ms[] = { NODE_EULER, NODE_MIDPOINT, NODE_RK4 };
    for (int k = 0; k < 3; k++)
        for (int td = 0; td < 2; td++) {
            node_options o = node_options_default();
            o.method = ms[k];
            o.step = 0.1;
            check_fd(node_odeint_backprop, td, o, ts_up, 5, 1e-3, 1e-8, false);
            check_fd(node_odeint_backprop, td, o, ts_down, 4, 1e-3, 1e-8, false);
        }
}

/* ---- special cases ---------------------------------------------------------------- */

static void test_single_output_time(void **state)
{
    (void)state;
    lin c;
    lin_init(&c, 1);
    node_system sys = lin_system(&c);
    double ts[1] = { 0.3 }, W[N], gy0[N], gp[NP], gts[1] = { 5 };
    weights(1, W);
    grad_fn fns[2] = { node_odeint_adjoint, node_odeint_backprop };
    for (int k = 0; k < 2; k++) {
        memset(gp, 0xff, sizeof gp);
        assert_status(fns[k](&sys, ts, 1, Y0, W, gy0, gp, gts, NULL, NULL), NODE_OK);
        for (int i = 0; i < N; i++)
            assert_close(gy0[i], W[i], 0, 0);
        for (size_t i = 0; i < sys.nparams; i++)
            assert_close(gp[i], 0, 0, 0);
        assert_close(gts[0], 0, 0, 0);
    }
}

static void test_optional_outputs_and_no_parameters(void **state)
{
    (void)state;
    lin c;
    lin_init(&c, 1);
    node_system sys = lin_system(&c);
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-11;
    double ys[5 * N], W[5 * N], gy0[N], gp[NP], gts[5], ref_y0[N], ref_ts[5];
    weights(5, W);
    assert_status(node_odeint(&sys, Y0, TS_UP, 5, ys, &o, NULL), NODE_OK);
    grad_fn fns[2] = { node_odeint_adjoint, node_odeint_backprop };
    for (int k = 0; k < 2; k++) {
        assert_status(fns[k](&sys, TS_UP, 5, ys, W, ref_y0, gp, ref_ts, &o, NULL), NODE_OK);
        /* dLdp and dLdts NULL: the rest unchanged (to the tolerance: the adjoint's
           error norm has fewer blocks). */
        c.forbid_vp = c.forbid_vt = 1;      /* no parameter or time work is asked for */
        assert_status(fns[k](&sys, TS_UP, 5, ys, W, gy0, NULL, NULL, &o, NULL), NODE_OK);
        c.forbid_vp = c.forbid_vt = 0;
        assert_true(vrel(gy0, ref_y0, N) < 1e-8);
        assert_status(fns[k](&sys, TS_UP, 5, ys, W, gy0, NULL, gts, &o, NULL), NODE_OK);
        assert_true(vrel(gts, ref_ts, 5) < 1e-8);
        /* nparams == 0 with a dLdp buffer: refused (a silent no-op would hide a
           mis-built system), and the message says why. */
        node_system s0 = sys;
        s0.nparams = 0;
        gp[0] = 42;
        c.forbid_vp = 1;
        node_stats st;
        assert_status(fns[k](&s0, TS_UP, 5, ys, W, gy0, gp, gts, &o, &st), NODE_EINVAL);
        assert_non_null(strstr(st.message, "nparams = 0"));
        assert_close(gp[0], 42, 0, 0);
        assert_status(fns[k](&s0, TS_UP, 5, ys, W, gy0, NULL, gts, &o, NULL), NODE_OK);
        assert_true(vrel(gy0, ref_y0, N) < 1e-8);
        c.forbid_vp = 0;
    }
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    lin c;
    lin_init(&c, 0);
    node_system sys = lin_system(&c), bad;
    double ts[3] = { 0, 1, 2 }, ys[3 * N] = { 0 }, W[3 * N] = { 0 }, g[N], gp[NP], gt[3];
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    grad_fn fns[2] = { node_odeint_adjoint, node_odeint_backprop };
    for (int k = 0; k < 2; k++) {
        grad_fn fn = fns[k];
        assert_status(fn(NULL, ts, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        bad = sys; bad.vjp = NULL;
        assert_status(fn(&bad, ts, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        bad = sys; bad.f = NULL;
        assert_status(fn(&bad, ts, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        bad = sys; bad.dim = 0;
        assert_status(fn(&bad, ts, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, NULL, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, ts, 0, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, ts, 3, NULL, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, ts, 3, ys, NULL, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, ts, 3, ys, W, NULL, gp, gt, NULL, NULL), NODE_EINVAL);
        double nm[3] = { 0, 2, 1 }, eq[3] = { 0, 1, 1 }, nan3[3] = { 0, NAN, 2 };
        assert_status(fn(&sys, nm, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, eq, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        assert_status(fn(&sys, nan3, 3, ys, W, g, gp, gt, NULL, NULL), NODE_EINVAL);
        node_options o = node_options_default();
        o.rtol = -1;
        assert_status(fn(&sys, ts, 3, ys, W, g, gp, gt, &o, NULL), NODE_EINVAL);
        o = node_options_default();
        o.adjoint_atol = -1;
        assert_status(fn(&sys, ts, 3, ys, W, g, gp, gt, &o, NULL), NODE_EINVAL);
        o = node_options_default();
        o.method = (node_method)99;
        assert_status(fn(&sys, ts, 3, ys, W, g, gp, gt, &o, NULL), NODE_EINVAL);
        o = node_options_default();
        o.method = NODE_RK4;          /* a fixed method needs a step */
        assert_status(fn(&sys, ts, 3, ys, W, g, gp, gt, &o, NULL), NODE_EINVAL);
    }
    assert_status(node_solver_adjoint(NULL, &sys, ts, 3, ys, W, g, gp, gt, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_solver_backprop(NULL, &sys, ts, 3, ys, W, g, gp, gt, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_solver_adjoint(s, &sys, ts, 0, ys, W, g, gp, gt, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_solver_backprop(s, NULL, ts, 3, ys, W, g, gp, gt, NULL, NULL),
                  NODE_EINVAL);
    node_solver_free(s);
}

/* A time-dependent linear system solved on TS_UP, with its loss weights. */
typedef struct fixture {
    lin c;
    node_system sys;
    double ys[5 * N], W[5 * N], g[N], gp[NP], gt[5];
} fixture;

static void fixture_init(fixture *fx, const node_options *o)
{
    lin_init(&fx->c, 1);
    fx->sys = lin_system(&fx->c);
    weights(5, fx->W);
    assert_status(node_odeint(&fx->sys, Y0, TS_UP, 5, fx->ys, o, NULL), NODE_OK);
}

/* Adjoint (backprop == 0) or backprop, through s or (s == NULL) a temporary solver. */
static node_status grad(int backprop, node_solver *s, fixture *fx, const node_options *o,
                        node_stats *st)
{
    if (!s)
        return (backprop ? node_odeint_backprop : node_odeint_adjoint)(
            &fx->sys, TS_UP, 5, fx->ys, fx->W, fx->g, fx->gp, fx->gt, o, st);
    return (backprop ? node_solver_backprop : node_solver_adjoint)(
        s, &fx->sys, TS_UP, 5, fx->ys, fx->W, fx->g, fx->gp, fx->gt, o, st);
}

static void test_failing_vjp_stops_with_ecallback(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NULL);
    for (int k = 0; k < 2; k++)
        for (long at = 0; at < 40; at += 13) {
            fx.c.calls = 0;
            fx.c.fail_at = at;
            node_stats st;
            assert_status(grad(k, NULL, &fx, NULL, &st), NODE_ECALLBACK);
            assert_true(st.nfe > 0);
        }
}

/* ---- memory ---------------------------------------------------------------------- */

static void test_failing_allocations_leak_nothing(void **state)
{
    (void)state;
    fixture fx;
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-10;
    o.max_step = 0.01;         /* 250 steps: the backprop tape grows more than once */
    fixture_init(&fx, &o);
    /* Fail the at-th allocation, at = 0, 1, ... until the call goes through, both
       with a temporary solver (use_solver 0) and a solver object, which must stay
       usable after the failure. */
    for (int use_solver = 0; use_solver < 2; use_solver++)
        for (int k = 0; k < 2; k++) {
            node_status rc = NODE_ENOMEM;
            for (long at = 0; rc != NODE_OK; at++) {
                assert_true(at < 1000);
                node_solver *s = NULL;
                node_test_alloc_begin(at);
                rc = use_solver ? node_solver_create(&s) : NODE_OK;
                if (rc == NODE_OK)
                    rc = grad(k, s, &fx, &o, NULL);
                long live = node_test_alloc_live();
                node_test_alloc_end();
                if (rc != NODE_OK)
                    assert_status(rc, NODE_ENOMEM);
                if (s) {
                    if (rc != NODE_OK)
                        assert_status(grad(k, s, &fx, &o, NULL), NODE_OK);
                    node_solver_free(s);
                } else {
                    assert_int_equal(live, 0);
                }
            }
        }
}

static void test_second_call_on_solver_allocates_nothing(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, NULL);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    for (int k = 0; k < 2; k++) {
        assert_status(grad(k, s, &fx, NULL, NULL), NODE_OK);
        node_test_alloc_begin(-1);
        node_status rc = grad(k, s, &fx, NULL, NULL);
        long n = node_test_alloc_end();
        assert_status(rc, NODE_OK);
        assert_int_equal(n, 0);
    }
    node_solver_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adjoint_linear_matches_expm),
        cmocka_unit_test(test_adjoint_seminorm_matches_expm),
        cmocka_unit_test(test_adjoint_time_dependent_matches_expm),
        cmocka_unit_test(test_fixed_step_adjoint_matches_expm),
        cmocka_unit_test(test_adjoint_tolerances_apply_to_backward_solve),
        cmocka_unit_test(test_backprop_linear_matches_expm),
        cmocka_unit_test(test_backprop_time_dependent_matches_expm),
        cmocka_unit_test(test_dLdts_match_central_differences),
        cmocka_unit_test(test_fixed_step_backprop_is_exact_gradient_of_discrete_map),
        cmocka_unit_test(test_single_output_time),
        cmocka_unit_test(test_optional_outputs_and_no_parameters),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_failing_vjp_stops_with_ecallback),
        cmocka_unit_test(test_failing_allocations_leak_nothing),
        cmocka_unit_test(test_second_call_on_solver_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
