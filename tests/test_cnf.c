/* test_cnf.c — the CNF object of cnf.h against independent references, with flows
 * written here: f(t, z) = A g(z) + c t, g = identity (the linear and affine flows,
 * whose Jacobian A is constant) or tanh (a flow whose divergence depends on z), with
 * θ = [A (row-major), c] and hand-written div and div_vjp.
 *   - Δlog p through the whole solve = −(t1 − t0) tr A exactly; the end points against
 *     the matrix exponential (of an augmented matrix for the affine flow);
 *   - log_prob of a linear flow against the closed-form Gaussian it pushes the base to;
 *   - sample → transport back / log_prob invert to solver tolerance;
 *   - Hutchinson (Rademacher and Gaussian probes): the mean of many per-call estimates
 *     against the exact value, and their variance against its closed form, as
 *     statistical tests with a stated false-alarm rate;
 *   - node_cnf_nll's gradient and transport_grad's dL/dx_in against central finite
 *     differences, adjoint and backprop, exact and both probes (re-seeded per call);
 *   - node_cnf_system with node_odeint against transport;
 *   - every refused argument, growth past max_batch, allocation-free calls, ENOMEM.
 */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

/* ---- the test flow ------------------------------------------------------------------ */

#define MAXD 4

typedef struct tflow {
    size_t D;
    int tanh_g;       /* g = tanh (else identity) */
    double th[MAXD * MAXD + MAXD];   /* A (D × D), c (D) */
    int fail;         /* return 7 from every callback */
} tflow;

static double g0(const tflow *q, double z) { return q->tanh_g ? tanh(z) : z; }
static double g1(const tflow *q, double z)
{
    double s = tanh(z);
    return q->tanh_g ? 1 - s * s : 1;
}
static double g2(const tflow *q, double z)
{
    double s = tanh(z);
    return q->tanh_g ? -2 * s * (1 - s * s) : 0;
}

static void tf_rows(const tflow *q, size_t batch, double t, const double *z, double *dzdt)
{
    const size_t D = q->D;
    const double *A = q->th, *c = q->th + D * D;
    for (size_t r = 0; r < batch; r++)
        for (size_t i = 0; i < D; i++) {
            double s = c[i] * t;
            for (size_t j = 0; j < D; j++)
                s += A[i * D + j] * g0(q, z[r * D + j]);
            dzdt[r * D + i] = s;
        }
}

/* w_j of row r: div = Σ_j w_j g'(z_j), w_j = ε_j Σ_i ε_i A_ij (or A_jj, exact). */
static double tf_w(const tflow *q, const double *eps, size_t r, size_t j)
{
    const size_t D = q->D;
    if (!eps)
        return q->th[j * D + j];
    double s = 0;
    for (size_t i = 0; i < D; i++)
        s += eps[r * D + i] * q->th[i * D + j];
    return s * eps[r * D + j];
}

static int tf_f(void *ctx, size_t batch, double t, const double *z, double *dzdt)
{
    tflow *q = ctx;
    if (q->fail)
        return 7;
    tf_rows(q, batch, t, z, dzdt);
    return 0;
}

static int tf_div(void *ctx, size_t batch, double t, const double *z, const double *eps,
                  double *dzdt, double *div)
{
    tflow *q = ctx;
    if (q->fail)
        return 7;
    if (dzdt)
        tf_rows(q, batch, t, z, dzdt);
    for (size_t r = 0; r < batch; r++) {
        double s = 0;
        for (size_t j = 0; j < q->D; j++)
            s += tf_w(q, eps, r, j) * g1(q, z[r * q->D + j]);
        div[r] = s;
    }
    return 0;
}

static int tf_div_vjp(void *ctx, size_t batch, double t, const double *z, const double *eps,
                      const double *a, const double *b, double *dzdt, double *div,
                      double *vjp_z, double *vjp_p, double *vjp_t)
{
    tflow *q = ctx;
    if (q->fail)
        return 7;
    const size_t D = q->D;
    const double *A = q->th, *c = q->th + D * D;
    if (dzdt || div) {
        int rc = tf_div(ctx, batch, t, z, eps, dzdt, div ? div : vjp_z);
        (void)rc;
    }
    if (vjp_p)
        memset(vjp_p, 0, (D * D + D) * sizeof(double));
    double vt = 0;
    for (size_t r = 0; r < batch; r++) {
        double br = b ? b[r] : 0;
        for (size_t j = 0; j < D; j++) {
            double zj = z[r * D + j], s = 0;
            for (size_t i = 0; i < D; i++)
                s += a[r * D + i] * A[i * D + j];
            vjp_z[r * D + j] = s * g1(q, zj) + br * tf_w(q, eps, r, j) * g2(q, zj);
        }
        for (size_t i = 0; i < D; i++) {
            vt += a[r * D + i] * c[i];
            if (!vjp_p)
                continue;
            vjp_p[D * D + i] += a[r * D + i] * t;
            for (size_t j = 0; j < D; j++) {
                double zj = z[r * D + j];
                double ee = eps ? eps[r * D + i] * eps[r * D + j] : (double)(i == j);
                vjp_p[i * D + j] += a[r * D + i] * g0(q, zj) + br * ee * g1(q, zj);
            }
        }
    }
    if (vjp_t)
        *vjp_t = vt;
    return 0;
}

static node_flow tf_flow(tflow *q)
{
    node_flow f;
    memset(&f, 0, sizeof f);
    f.width = q->D;
    f.nparams = q->D * q->D + q->D;
    f.ctx = q;
    f.f = tf_f;
    f.div = tf_div;
    f.div_vjp = tf_div_vjp;
    return f;
}

/* A fixed, non-symmetric A (scaled) and c. */
static void tf_init(tflow *q, size_t D, int tanh_g, double cscale)
{
    memset(q, 0, sizeof *q);
    q->D = D;
    q->tanh_g = tanh_g;
    for (size_t i = 0; i < D; i++) {
        for (size_t j = 0; j < D; j++)
            q->th[i * D + j] = 0.3 * sin(1.0 + 2.3 * (double)i + 0.7 * (double)j * (double)j)
                               - (i == j ? 0.2 : 0.0);
        q->th[D * D + i] = cscale * cos(0.5 + (double)i);
    }
}

static node_cnf_options tight(double tol)
{
    node_cnf_options o = node_cnf_options_default();
    o.ode.rtol = o.ode.atol = tol;
    return o;
}

static node_cnf *make(tflow *q, size_t max_batch, const node_cnf_options *o)
{
    node_flow f = tf_flow(q);
    node_cnf *c = NULL;
    node_error err;
    node_status st = node_cnf_create(&c, &f, max_batch, o, &err);
    if (st != NODE_OK)
        print_error("node_cnf_create: %s\n", err.message);
    assert_status(st, NODE_OK);
    return c;
}

/* ---- references ---------------------------------------------------------------------- */

/* E = exp(M) for an n × n matrix (n <= 8): scaling and squaring of a 30-term Taylor sum. */
static void expm(size_t n, const double *M, double *E)
{
    double S[64], T[64], P[64], norm = 0;
    int k = 0;
    for (size_t i = 0; i < n * n; i++)
        norm += fabs(M[i]);
    while (norm > 0.5) {
        norm /= 2;
        k++;
    }
    double sc = ldexp(1.0, -k);
    for (size_t i = 0; i < n * n; i++) {
        S[i] = M[i] * sc;
        E[i] = (i % (n + 1) == 0);
        T[i] = E[i];
    }
    for (int m = 1; m <= 30; m++) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t l = 0; l < n; l++)
                    s += T[i * n + l] * S[l * n + j];
                P[i * n + j] = s / m;
            }
        for (size_t i = 0; i < n * n; i++) {
            T[i] = P[i];
            E[i] += T[i];
        }
    }
    for (; k > 0; k--) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t l = 0; l < n; l++)
                    s += E[i * n + l] * E[l * n + j];
                P[i * n + j] = s;
            }
        memcpy(E, P, n * n * sizeof(double));
    }
}

static double trace_of(const tflow *q)
{
    double s = 0;
    for (size_t i = 0; i < q->D; i++)
        s += q->th[i * q->D + i];
    return s;
}

/* ---- names and options ------------------------------------------------------------------ */

static void test_trace_names_and_defaults(void **state)
{
    (void)state;
    node_trace_kind k;
    for (int i = 0; i < 3; i++) {
        assert_status(node_trace_parse(node_trace_name((node_trace_kind)i), &k), NODE_OK);
        assert_int_equal(k, i);
    }
    assert_string_equal(node_trace_name(NODE_TRACE_EXACT), "exact");
    assert_string_equal(node_trace_name(NODE_TRACE_RADEMACHER), "rademacher");
    assert_string_equal(node_trace_name(NODE_TRACE_GAUSSIAN), "gaussian");
    assert_null(node_trace_name((node_trace_kind)3));
    assert_null(node_trace_name((node_trace_kind)-1));
    assert_status(node_trace_parse("hutchinson", &k), NODE_OK);
    assert_int_equal(k, NODE_TRACE_RADEMACHER);
    assert_status(node_trace_parse("Exact", &k), NODE_EINVAL);
    assert_status(node_trace_parse(NULL, &k), NODE_EINVAL);
    assert_status(node_trace_parse("exact", NULL), NODE_EINVAL);

    node_cnf_options d = node_cnf_options_default();
    assert_int_equal(d.ode.method, NODE_DOPRI5);
    assert_close(d.ode.rtol, 1e-5, 0, 0);
    assert_close(d.ode.atol, 1e-5, 0, 0);
    assert_close(d.t0, 0, 0, 0);
    assert_close(d.t1, 1, 0, 0);
    assert_close(d.base_var, 1, 0, 0);
    assert_int_equal(d.trace, NODE_TRACE_EXACT);
    assert_int_equal(d.grad, NODE_GRAD_ADJOINT);
    assert_true(d.seed == 0);

    /* a zero struct (and NULL) means exactly the defaults */
    tflow q;
    tf_init(&q, 2, 0, 0);
    node_cnf_options z, got;
    memset(&z, 0, sizeof z);
    node_cnf *c = make(&q, 1, &z);
    assert_status(node_cnf_get_options(c, &got), NODE_OK);
    assert_memory_equal(&got, &d, sizeof d);
    node_cnf_free(c);
    c = make(&q, 1, NULL);
    assert_status(node_cnf_get_options(c, &got), NODE_OK);
    assert_memory_equal(&got, &d, sizeof d);
    /* set / get round trip; the zeros of a partial struct are filled in */
    z.t0 = 2;
    z.t1 = -1;
    z.trace = NODE_TRACE_GAUSSIAN;
    z.grad = NODE_GRAD_BACKPROP;
    z.seed = 9;
    assert_status(node_cnf_set_options(c, &z, NULL), NODE_OK);
    assert_status(node_cnf_get_options(c, &got), NODE_OK);
    assert_close(got.t0, 2, 0, 0);
    assert_close(got.t1, -1, 0, 0);
    assert_close(got.base_var, 1, 0, 0);
    assert_close(got.ode.rtol, 1e-5, 0, 0);
    assert_int_equal(got.trace, NODE_TRACE_GAUSSIAN);
    assert_int_equal(got.grad, NODE_GRAD_BACKPROP);
    assert_status(node_cnf_seed(c, 11), NODE_OK);
    assert_status(node_cnf_get_options(c, &got), NODE_OK);
    assert_true(got.seed == 11);
    node_cnf_free(c);
    node_cnf_free(NULL);
}

/* ---- exact log-densities --------------------------------------------------------------- */

/* Linear flow: z(t) = e^{A(t−t_from)} z0 and Δlog p = −(t_to − t_from) tr A, both
   directions; affine flow f = A z + c t: Δlog p the same, z from the exponential of
   the augmented matrix [[A, c, 0], [0, 0, 1], [0, 0, 0]] acting on [z, t, 1]. */
static void test_linear_and_affine_dlogp_exact(void **state)
{
    (void)state;
    enum { D = 3, B = 4 };
    const double x[B * D] = { 0.5, -1, 2, 0, 0.3, -0.7, 1.5, 1.5, 0.2, -2, 0.1, 0.9 };
    const double spans[][2] = { { 0, 1.5 }, { 1.5, 0.5 }, { 0.25, 1.25 }, { -1, -2.5 } };
    for (int affine = 0; affine < 2; affine++) {
        tflow q;
        tf_init(&q, D, 0, affine ? 0.8 : 0.0);
        node_cnf_options o = tight(1e-11);
        node_cnf *c = make(&q, B, &o);
        for (size_t s = 0; s < sizeof spans / sizeof spans[0]; s++) {
            double t0 = spans[s][0], t1 = spans[s][1], y[B * D], dl[B];
            node_stats st;
            assert_status(node_cnf_transport(c, B, x, t0, t1, y, dl, &st), NODE_OK);
            assert_true(st.nfe > 0);
            assert_string_equal(st.message, "");
            /* the (D+2) augmented matrix times (t1 − t0) */
            const size_t n = D + 2;
            double M[25] = { 0 }, E[25];
            for (size_t i = 0; i < D; i++) {
                for (size_t j = 0; j < D; j++)
                    M[i * n + j] = q.th[i * D + j] * (t1 - t0);
                M[i * n + D] = q.th[D * D + i] * (t1 - t0);
            }
            M[D * n + D + 1] = t1 - t0;
            expm(n, M, E);
            for (size_t r = 0; r < B; r++) {
                assert_close(dl[r], -(t1 - t0) * trace_of(&q), 1e-9, 1e-10);
                for (size_t i = 0; i < D; i++) {
                    double want = E[i * n + D] * t0 + E[i * n + D + 1];
                    for (size_t j = 0; j < D; j++)
                        want += E[i * n + j] * x[r * D + j];
                    assert_close(y[r * D + i], want, 1e-8, 1e-9);
                }
            }
        }
        node_cnf_free(c);
    }
}

/* log p(x) of a linear flow from N(0, v I) at t0 to t1 is N(x; 0, v M Mᵀ), M = e^{AT}:
   log p = −½ |M⁻¹x|² / v − log(2π v) − log |det M| (D = 2, M inverted in closed form). */
static void test_log_prob_linear_is_the_pushed_gaussian(void **state)
{
    (void)state;
    enum { D = 2, B = 5 };
    tflow q;
    tf_init(&q, D, 0, 0);
    q.th[0] = 0.4;
    q.th[1] = -0.9;
    q.th[2] = 0.6;
    q.th[3] = -0.3;
    node_cnf_options o = tight(1e-11);
    o.t0 = 0.5;
    o.t1 = 1.7;
    o.base_var = 0.37;
    const double T = o.t1 - o.t0, v = o.base_var;
    node_cnf *c = make(&q, 2, &o);   /* B > max_batch: grows */
    const double x[B * D] = { 0.1, 0.2, -1, 0.5, 2, -1.5, 0, 0, 0.7, 0.7 };
    double lp[B], M[4], AT[4];
    for (int i = 0; i < 4; i++)
        AT[i] = q.th[i] * T;
    expm(2, AT, M);
    double det = M[0] * M[3] - M[1] * M[2];
    node_stats st;
    assert_status(node_cnf_log_prob(c, B, x, lp, &st), NODE_OK);
    for (size_t r = 0; r < B; r++) {
        const double *p = x + r * D;
        double u0 = (M[3] * p[0] - M[1] * p[1]) / det, u1 = (-M[2] * p[0] + M[0] * p[1]) / det;
        double want = -0.5 * (u0 * u0 + u1 * u1) / v - log(2 * 3.14159265358979323846 * v)
                      - log(fabs(det));
        assert_close(lp[r], want, 1e-9, 1e-9);
    }
    node_cnf_free(c);
}

/* Samples moved back land on their base points; log_prob of the samples is the logp
   sample reported; log_prob integrates to about 1 is not claimed, only consistency. */
static void test_sample_then_log_prob_inverts(void **state)
{
    (void)state;
    enum { D = 2, B = 16 };
    for (int trace = 0; trace < 3; trace++) {
        tflow q;
        tf_init(&q, D, 1, 0.5);
        node_cnf_options o = tight(1e-10);
        o.t1 = 1.3;
        o.base_var = 0.6;
        o.trace = (node_trace_kind)trace;
        node_cnf *c = make(&q, B, &o);
        node_rng rng;
        node_rng_seed(&rng, 5);
        double z0[B * D], x[B * D], lp[B], z[B * D], dl[B], lp2[B];
        assert_status(node_cnf_sample(c, &rng, B, z0, x, lp, NULL), NODE_OK);
        /* the base draws have the base's variance, roughly (not a test of the rng) */
        assert_status(node_cnf_transport(c, B, x, o.t1, o.t0, z, dl, NULL), NODE_OK);
        for (size_t k = 0; k < B * D; k++)
            assert_close(z[k], z0[k], 0, 1e-8);
        if (trace == NODE_TRACE_EXACT) {
            assert_status(node_cnf_log_prob(c, B, x, lp2, NULL), NODE_OK);
            for (size_t r = 0; r < B; r++)
                assert_close(lp2[r], lp[r], 0, 1e-8);
        }
        /* without z0_out and logp it still samples */
        assert_status(node_cnf_sample(c, &rng, B, NULL, x, NULL, NULL), NODE_OK);
        node_cnf_free(c);
    }
}

/* ---- Hutchinson ------------------------------------------------------------------------ */

/* Per-row estimates of many calls at one point: their mean must lie within 5 standard
   errors of the exact Δlog p (a false alarm has probability < 1e-6 under the normal
   approximation, which 20000 draws of a bounded or light-tailed variable justify).
   For the linear flow the estimate is −T εᵀAε, of variance 2T² Σ_{i≠j} S_ij²
   (Rademacher) or 2T² |S|_F² (Gaussian), S = (A + Aᵀ)/2: the sample variance must lie
   within 5 of its standard errors (from the sample's fourth moment). */
static void test_hutchinson_is_unbiased_with_the_right_variance(void **state)
{
    (void)state;
    enum { D = 3, B = 500, K = 40 };
    for (int linear = 0; linear < 2; linear++)
        for (int trace = 1; trace <= 2; trace++) {
            tflow q;
            tf_init(&q, D, !linear, 0.3);
            node_cnf_options o = tight(1e-9);
            o.seed = 1234 + (uint64_t)trace;
            node_cnf *c = make(&q, B, &o);
            static double x[B * D], y[B * D], dl[B];
            for (size_t r = 0; r < B; r++) {
                x[r * D] = 0.4;
                x[r * D + 1] = -0.8;
                x[r * D + 2] = 1.1;
            }
            double exact;
            assert_status(node_cnf_transport(c, 1, x, 0, 1, y, dl, NULL), NODE_OK);
            exact = dl[0];
            o.trace = (node_trace_kind)trace;
            assert_status(node_cnf_set_options(c, &o, NULL), NODE_OK);
            double s1 = 0, s2 = 0, s4 = 0, first = 0;
            for (int k = 0; k < K; k++) {
                assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, NULL), NODE_OK);
                if (k == 0)
                    first = dl[0];
                for (size_t r = 0; r < B; r++) {
                    double e = dl[r] - exact;
                    s1 += dl[r];
                    s2 += e * e;
                    s4 += e * e * e * e;
                }
            }
            const double N = (double)B * K, mean = s1 / N, var = s2 / N;
            const double se = sqrt(var / N);
            if (!(fabs(mean - exact) < 5 * se))
                print_error("%s, %s: mean %.6g, exact %.6g, se %.3g\n",
                            linear ? "linear" : "tanh", node_trace_name(o.trace), mean, exact,
                            se);
            assert_true(fabs(mean - exact) < 5 * se);
            assert_true(var > 0);
            if (linear) {
                double ss = 0;
                for (size_t i = 0; i < D; i++)
                    for (size_t j = 0; j < D; j++)
                        if (trace == NODE_TRACE_GAUSSIAN || i != j) {
                            double sij = 0.5 * (q.th[i * D + j] + q.th[j * D + i]);
                            ss += sij * sij;
                        }
                const double want = 2 * ss, se_var = sqrt((s4 / N - var * var) / N);
                if (!(fabs(var - want) < 5 * se_var))
                    print_error("%s: variance %.6g, want %.6g, se %.3g\n",
                                node_trace_name(o.trace), var, want, se_var);
                assert_true(fabs(var - want) < 5 * se_var);
            }
            /* re-seeding replays the probes; without it they differ */
            assert_status(node_cnf_seed(c, o.seed), NODE_OK);
            assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, NULL), NODE_OK);
            assert_close(dl[0], first, 0, 0);
            double again = dl[0];
            assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, NULL), NODE_OK);
            assert_true(dl[0] != again);
            node_cnf_free(c);
        }
}

/* ---- gradients ---------------------------------------------------------------------------- */

/* nll(θ) with the probe of seed 42. */
static double nll_at(node_cnf *c, size_t B, const double *x)
{
    double nll;
    assert_status(node_cnf_seed(c, 42), NODE_OK);
    assert_status(node_cnf_nll(c, B, x, &nll, NULL, NULL, NULL, NULL), NODE_OK);
    return nll;
}

/* dnll/dθ of node_cnf_nll against central differences of node_cnf_nll (h = 1e-5),
   for adjoint and backprop, exact trace and both probes; the tanh flow, so that the
   divergence depends on z and ∂div/∂z enters the gradient. */
static void test_nll_gradient_matches_finite_differences(void **state)
{
    (void)state;
    enum { D = 2, B = 3, P = D * D + D };
    const double x[B * D] = { 0.3, -0.4, 1.2, 0.8, -0.9, 0.1 };
    for (int how = 0; how < 2; how++)
        for (int trace = 0; trace < 3; trace++) {
            tflow q;
            tf_init(&q, D, 1, 0.6);
            node_cnf_options o = tight(1e-12);
            o.t0 = 0.2;
            o.t1 = 1.0;
            o.base_var = 0.7;
            o.trace = (node_trace_kind)trace;
            o.grad = (node_grad_method)how;
            node_cnf *c = make(&q, B, &o);
            double nll, grad[P];
            int64_t nf = -1, nb = -1;
            node_stats st;
            assert_status(node_cnf_seed(c, 42), NODE_OK);
            assert_status(node_cnf_nll(c, B, x, &nll, grad, &nf, &nb, &st), NODE_OK);
            assert_true(nf > 0 && nb > 0);
            assert_true(nf == st.nfe);
            assert_close(nll, nll_at(c, B, x), 0, 0);
            for (size_t k = 0; k < P; k++) {
                const double h = 1e-5, th = q.th[k];
                q.th[k] = th + h;
                double up = nll_at(c, B, x);
                q.th[k] = th - h;
                double dn = nll_at(c, B, x);
                q.th[k] = th;
                double fd = (up - dn) / (2 * h);
                if (fabs(grad[k] - fd) > 1e-6 + 1e-5 * fabs(fd))
                    print_error("%s, %s: dnll/dtheta[%zu] = %.10g, fd %.10g\n",
                                how ? "backprop" : "adjoint", node_trace_name(o.trace), k,
                                grad[k], fd);
                assert_close(grad[k], fd, 1e-5, 1e-6);
            }
            node_cnf_free(c);
        }
}

/* transport_grad of L = Σ w ⊙ x_out + Σ u ⊙ dlogp: dL/dx_in and dL/dθ against central
   differences of transports (same probe: re-seeded), both methods, both directions. */
static void test_transport_grad_matches_finite_differences(void **state)
{
    (void)state;
    enum { D = 2, B = 2, P = D * D + D };
    const double w[B * D] = { 0.7, -1.1, 0.4, 0.25 }, u[B] = { 1.3, -0.6 };
    for (int how = 0; how < 2; how++)
        for (int trace = 0; trace < 3; trace += 2) {
            tflow q;
            tf_init(&q, D, 1, 0.6);
            node_cnf_options o = tight(1e-12);
            o.trace = (node_trace_kind)trace;
            o.grad = (node_grad_method)how;
            node_cnf *c = make(&q, B, &o);
            double x[B * D] = { 0.3, -0.4, 1.2, 0.8 };
            const double t0 = 1.4, t1 = 0.1;
            double y[B * D], dl[B], gx[B * D], gp[P];
            assert_status(node_cnf_seed(c, 3), NODE_OK);
            assert_status(node_cnf_transport(c, B, x, t0, t1, y, dl, NULL), NODE_OK);
            assert_status(node_cnf_transport_grad(c, B, x, t0, t1, y, dl, w, u, gx, gp, NULL),
                          NODE_OK);
            double *v[2] = { x, q.th };
            const double *g[2] = { gx, gp };
            const size_t n[2] = { B * D, P };
            for (int which = 0; which < 2; which++)
                for (size_t k = 0; k < n[which]; k++) {
                    const double h = 1e-5, keep = v[which][k];
                    double L[2];
                    for (int side = 0; side < 2; side++) {
                        v[which][k] = keep + (side ? -h : h);
                        assert_status(node_cnf_seed(c, 3), NODE_OK);
                        assert_status(node_cnf_transport(c, B, x, t0, t1, y, dl, NULL),
                                      NODE_OK);
                        L[side] = 0;
                        for (size_t i = 0; i < B * D; i++)
                            L[side] += w[i] * y[i];
                        for (size_t r = 0; r < B; r++)
                            L[side] += u[r] * dl[r];
                    }
                    v[which][k] = keep;
                    assert_close(g[which][k], (L[0] - L[1]) / (2 * h), 1e-5, 1e-6);
                }
            /* dL_ddlogp NULL is zero; outputs may be NULL */
            double gx0[B * D], gx1[B * D];
            const double zero[B] = { 0 };
            assert_status(node_cnf_seed(c, 3), NODE_OK);
            assert_status(node_cnf_transport(c, B, x, t0, t1, y, dl, NULL), NODE_OK);
            assert_status(node_cnf_transport_grad(c, B, x, t0, t1, y, dl, w, NULL, gx0, NULL,
                                                  NULL), NODE_OK);
            assert_status(node_cnf_transport_grad(c, B, x, t0, t1, y, dl, w, zero, gx1, NULL,
                                                  NULL), NODE_OK);
            assert_memory_equal(gx0, gx1, sizeof gx0);
            assert_status(node_cnf_transport_grad(c, B, x, t0, t1, y, dl, w, u, NULL, NULL,
                                                  NULL), NODE_OK);
            node_cnf_free(c);
        }
}

/* ---- the system ---------------------------------------------------------------------------- */

static void test_system_matches_transport(void **state)
{
    (void)state;
    enum { D = 3, B = 3 };
    tflow q;
    tf_init(&q, D, 1, 0.4);
    node_cnf_options o = tight(1e-9);
    node_cnf *c = make(&q, B, &o);
    const double x[B * D] = { 0.1, 0.2, 0.3, -1, 0.5, 0.25, 2, -0.5, 0 };
    double y[B * D], dl[B], y0[B * (D + 1)], ys[2 * B * (D + 1)];
    const double ts[2] = { 0, 1 };
    assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, NULL), NODE_OK);
    node_system sys;
    assert_status(node_cnf_system(c, B, NULL, &sys), NODE_OK);
    assert_int_equal(sys.dim, B * (D + 1));
    assert_int_equal(sys.nparams, D * D + D);
    for (size_t r = 0; r < B; r++) {
        memcpy(y0 + r * (D + 1), x + r * D, D * sizeof(double));
        y0[r * (D + 1) + D] = 0;
    }
    assert_status(node_odeint(&sys, y0, ts, 2, ys, &o.ode, NULL), NODE_OK);
    const double *e = ys + B * (D + 1);
    for (size_t r = 0; r < B; r++) {
        for (size_t j = 0; j < D; j++)
            assert_close(e[r * (D + 1) + j], y[r * D + j], 1e-12, 1e-14);
        assert_close(e[r * (D + 1) + D], dl[r], 1e-12, 1e-14);
    }
    node_cnf_free(c);

    /* with a probe of the caller's, on the linear flow: ℓ(T) = −T εᵀAε exactly */
    tf_init(&q, D, 0, 0);
    c = make(&q, B, &o);
    const double eps[B * D] = { 1, -1, 1, 0.5, 2, -1.5, -1, -1, 1 };
    assert_status(node_cnf_system(c, B, eps, &sys), NODE_OK);
    assert_status(node_odeint(&sys, y0, ts, 2, ys, &o.ode, NULL), NODE_OK);
    for (size_t r = 0; r < B; r++) {
        double s = 0;
        for (size_t i = 0; i < D; i++)
            for (size_t j = 0; j < D; j++)
                s += eps[r * D + i] * q.th[i * D + j] * eps[r * D + j];
        assert_close(ys[B * (D + 1) + r * (D + 1) + D], -s, 1e-8, 1e-10);
    }
    /* a larger batch than reserved grows */
    assert_status(node_cnf_system(c, 7, NULL, &sys), NODE_OK);
    assert_int_equal(sys.dim, 7 * (D + 1));
    node_cnf_free(c);
}

/* ---- refusals ------------------------------------------------------------------------------ */

static void says(const char *msg, const char *what)
{
    if (!strstr(msg, what))
        print_error("message \"%s\" does not name \"%s\"\n", msg, what);
    assert_non_null(strstr(msg, what));
}

static void create_refused(const node_flow *f, const node_cnf_options *o, const char *what)
{
    node_cnf *c = NULL;
    node_error err;
    assert_status(node_cnf_create(&c, f, 2, o, &err), NODE_EINVAL);
    assert_null(c);
    assert_int_equal(err.status, NODE_EINVAL);
    says(err.message, what);
}

static void test_create_and_options_refusals(void **state)
{
    (void)state;
    tflow q;
    tf_init(&q, 2, 0, 0);
    node_flow f = tf_flow(&q), bad;
    node_error err;
    assert_status(node_cnf_create(NULL, &f, 1, NULL, &err), NODE_EINVAL);
    says(err.message, "out");
    create_refused(NULL, NULL, "flow");
    bad = f;
    bad.width = 0;
    create_refused(&bad, NULL, "width");
    bad = f;
    bad.f = NULL;
    create_refused(&bad, NULL, "flow->f");
    bad = f;
    bad.div = NULL;
    create_refused(&bad, NULL, "flow->div");
    bad = f;
    bad.div_vjp = NULL;
    create_refused(&bad, NULL, "div_vjp");
    bad = f;
    bad.reserved_[7] = 1;
    create_refused(&bad, NULL, "reserved");

    node_cnf_options o = node_cnf_options_default();
    o.reserved_[2] = 1;
    create_refused(&f, &o, "reserved");
    o = node_cnf_options_default();
    o.t0 = NAN;
    create_refused(&f, &o, "t0");
    o = node_cnf_options_default();
    o.t1 = INFINITY;
    create_refused(&f, &o, "t1");
    o = node_cnf_options_default();
    o.base_var = -1;
    create_refused(&f, &o, "base_var");
    o.base_var = NAN;
    create_refused(&f, &o, "base_var");
    o.base_var = INFINITY;
    create_refused(&f, &o, "base_var");
    o = node_cnf_options_default();
    o.trace = (node_trace_kind)3;
    create_refused(&f, &o, "trace");
    o = node_cnf_options_default();
    o.grad = (node_grad_method)2;
    create_refused(&f, &o, "grad");
    o = node_cnf_options_default();
    o.ode.rtol = -1;
    create_refused(&f, &o, "rtol");
    o = node_cnf_options_default();
    o.ode.method = NODE_RK4;   /* a fixed method without a step */
    create_refused(&f, &o, "step");
    o = node_cnf_options_default();
    o.ode.reserved_[0] = 1;
    create_refused(&f, &o, "reserved");

    node_cnf *c = make(&q, 0, NULL);   /* max_batch 0: grows on first use */
    node_cnf_options got, before;
    assert_status(node_cnf_get_options(c, &before), NODE_OK);
    o = node_cnf_options_default();
    o.base_var = -2;
    assert_status(node_cnf_set_options(c, &o, &err), NODE_EINVAL);
    says(err.message, "base_var");
    assert_status(node_cnf_get_options(c, &got), NODE_OK);
    assert_memory_equal(&got, &before, sizeof got);   /* unchanged */
    assert_status(node_cnf_set_options(NULL, &o, &err), NODE_EINVAL);
    says(err.message, "c is NULL");
    assert_status(node_cnf_set_options(c, NULL, &err), NODE_OK);   /* the defaults */
    assert_string_equal(err.message, "");
    assert_status(node_cnf_get_options(NULL, &got), NODE_EINVAL);
    assert_status(node_cnf_get_options(c, NULL), NODE_EINVAL);
    assert_status(node_cnf_seed(NULL, 1), NODE_EINVAL);
    node_system sys;
    assert_status(node_cnf_system(NULL, 1, NULL, &sys), NODE_EINVAL);
    assert_status(node_cnf_system(c, 0, NULL, &sys), NODE_EINVAL);
    assert_status(node_cnf_system(c, 1, NULL, NULL), NODE_EINVAL);
    node_cnf_free(c);
}

static void refused(node_status st, const node_stats *s, const char *what)
{
    assert_status(st, NODE_EINVAL);
    assert_int_equal(s->status, NODE_EINVAL);
    says(s->message, what);
}

static void test_call_refusals(void **state)
{
    (void)state;
    enum { D = 2, B = 2 };
    tflow q;
    tf_init(&q, D, 1, 0.3);
    node_cnf *c = make(&q, B, NULL);
    double x[B * D] = { 0.1, 0.2, 0.3, 0.4 }, y[B * D], dl[B], g[B * D], gp[6], lp[B], nll;
    node_stats s;
    node_rng rng;
    node_rng_seed(&rng, 1);

    /* transport */
    refused(node_cnf_transport(NULL, B, x, 0, 1, y, dl, &s), &s, "c is NULL");
    refused(node_cnf_transport(c, 0, x, 0, 1, y, dl, &s), &s, "batch");
    refused(node_cnf_transport(c, B, NULL, 0, 1, y, dl, &s), &s, "x_in");
    refused(node_cnf_transport(c, B, x, 0, 1, NULL, dl, &s), &s, "x_out");
    refused(node_cnf_transport(c, B, x, 0, 1, y, NULL, &s), &s, "dlogp");
    refused(node_cnf_transport(c, B, x, 1, 1, y, dl, &s), &s, "t_from = t_to");
    refused(node_cnf_transport(c, B, x, NAN, 1, y, dl, &s), &s, "t_from");
    refused(node_cnf_transport(c, B, x, 0, INFINITY, y, dl, &s), &s, "t_to");
    x[3] = NAN;
    refused(node_cnf_transport(c, B, x, 0, 1, y, dl, &s), &s, "x_in[1][1]");
    refused(node_cnf_log_prob(c, B, x, lp, &s), &s, "x[1][1]");
    refused(node_cnf_nll(c, B, x, &nll, gp, NULL, NULL, &s), &s, "x[1][1]");
    x[3] = 0.4;

    /* transport_grad: nothing to differentiate yet */
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, g, NULL, g, gp, &s), &s,
            "no transport");
    assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, &s), NODE_OK);
    assert_status(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), NODE_OK);
    refused(node_cnf_transport_grad(NULL, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "c is");
    refused(node_cnf_transport_grad(c, 0, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "batch");
    refused(node_cnf_transport_grad(c, 1, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "batch = 1");
    refused(node_cnf_transport_grad(c, B, x, 0, 2, y, dl, x, NULL, g, gp, &s), &s, "t_to");
    refused(node_cnf_transport_grad(c, B, x, 1, 0, y, dl, x, NULL, g, gp, &s), &s, "t_from");
    refused(node_cnf_transport_grad(c, B, NULL, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "x_in");
    refused(node_cnf_transport_grad(c, B, x, 0, 1, NULL, dl, x, NULL, g, gp, &s), &s, "x_out");
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, NULL, x, NULL, g, gp, &s), &s, "dlogp");
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, NULL, NULL, g, gp, &s), &s,
            "dL_dxout");
    double keep = x[2];
    x[2] = nextafter(keep, 1);   /* one ulp off is a different point */
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "x_in[1][0]");
    x[2] = keep;
    keep = y[1];
    y[1] = 7;
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "x_out[0][1]");
    y[1] = keep;
    keep = dl[1];
    dl[1] = NAN;
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s, "dlogp[1]");
    dl[1] = keep;
    double bad[B * D] = { 0, 0, INFINITY, 0 }, badl[B] = { 0, NAN };
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, bad, NULL, g, gp, &s), &s,
            "dL_dxout[1][0]");
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, badl, g, gp, &s), &s,
            "dL_ddlogp[1]");
    assert_status(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, NULL), NODE_OK);
    /* options changed since: forgotten */
    assert_status(node_cnf_set_options(c, NULL, NULL), NODE_OK);
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s,
            "no transport");
    /* a failed transport forgets too */
    assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, &s), NODE_OK);
    q.fail = 1;
    assert_status(node_cnf_transport(c, B, x, 0, 1, y, dl, &s), NODE_ECALLBACK);
    assert_int_equal(s.callback_rc, 7);
    q.fail = 0;
    refused(node_cnf_transport_grad(c, B, x, 0, 1, y, dl, x, NULL, g, gp, &s), &s,
            "no transport");

    /* log_prob, nll, sample */
    refused(node_cnf_log_prob(NULL, B, x, lp, &s), &s, "c is NULL");
    refused(node_cnf_log_prob(c, 0, x, lp, &s), &s, "batch");
    refused(node_cnf_log_prob(c, B, NULL, lp, &s), &s, "x is NULL");
    refused(node_cnf_log_prob(c, B, x, NULL, &s), &s, "logp");
    int64_t nf = 5, nb = 5;
    refused(node_cnf_nll(NULL, B, x, &nll, gp, &nf, &nb, &s), &s, "c is NULL");
    assert_true(nf == 0 && nb == 0);
    refused(node_cnf_nll(c, 0, x, &nll, gp, NULL, NULL, &s), &s, "batch");
    refused(node_cnf_nll(c, B, NULL, &nll, gp, NULL, NULL, &s), &s, "x is NULL");
    refused(node_cnf_nll(c, B, x, NULL, gp, NULL, NULL, &s), &s, "nll");
    refused(node_cnf_sample(NULL, &rng, B, NULL, y, NULL, &s), &s, "c is NULL");
    refused(node_cnf_sample(c, &rng, 0, NULL, y, NULL, &s), &s, "batch");
    refused(node_cnf_sample(c, NULL, B, NULL, y, NULL, &s), &s, "rng");
    refused(node_cnf_sample(c, &rng, B, NULL, NULL, NULL, &s), &s, "x is NULL");
    rng.reserved_[0] = 1;
    refused(node_cnf_sample(c, &rng, B, NULL, y, NULL, &s), &s, "rng");
    node_rng_seed(&rng, 1);
    /* callbacks' failures come back as NODE_ECALLBACK, in every pass */
    q.fail = 1;
    assert_status(node_cnf_log_prob(c, B, x, lp, &s), NODE_ECALLBACK);
    assert_status(node_cnf_sample(c, &rng, B, NULL, y, lp, &s), NODE_ECALLBACK);
    q.fail = 0;
    /* refusals wrote nothing; the object still works, also without stats */
    assert_status(node_cnf_nll(c, B, x, &nll, gp, NULL, NULL, NULL), NODE_OK);
    assert_status(node_cnf_log_prob(c, B, x, lp, NULL), NODE_OK);
    assert_close(nll, -0.5 * (lp[0] + lp[1]), 1e-12, 0);
    node_cnf_free(c);
}

/* A flow whose vjp fails: the backward pass's failure is reported by nll. */
static int fail_vjp(void *ctx, size_t batch, double t, const double *z, const double *eps,
                    const double *a, const double *b, double *dzdt, double *div,
                    double *vjp_z, double *vjp_p, double *vjp_t)
{
    (void)ctx, (void)batch, (void)t, (void)z, (void)eps, (void)a, (void)b, (void)dzdt;
    (void)div, (void)vjp_z, (void)vjp_p, (void)vjp_t;
    return 9;
}

static void test_backward_failure_is_reported(void **state)
{
    (void)state;
    tflow q;
    tf_init(&q, 2, 1, 0);
    node_flow f = tf_flow(&q);
    f.div_vjp = fail_vjp;
    for (int how = 0; how < 2; how++) {
        node_cnf_options o = node_cnf_options_default();
        o.grad = (node_grad_method)how;
        node_cnf *c = NULL;
        assert_status(node_cnf_create(&c, &f, 1, &o, NULL), NODE_OK);
        const double x[2] = { 0.5, 0.5 };
        double nll, g[6];
        int64_t nb = -1;
        node_stats s;
        assert_status(node_cnf_nll(c, 1, x, &nll, g, NULL, &nb, &s), NODE_ECALLBACK);
        assert_int_equal(s.status, NODE_ECALLBACK);
        assert_int_equal(s.callback_rc, 9);
        says(s.message, how ? "backprop" : "adjoint");
        /* the loss alone needs no vjp */
        assert_status(node_cnf_nll(c, 1, x, &nll, NULL, NULL, NULL, &s), NODE_OK);
        node_cnf_free(c);
    }
}

/* ---- workspaces -------------------------------------------------------------------------- */

static void test_no_allocation_once_sized_and_enomem(void **state)
{
    (void)state;
    enum { D = 2, B = 6 };
    tflow q;
    tf_init(&q, D, 1, 0.3);
    for (int how = 0; how < 2; how++) {
        node_cnf_options o = node_cnf_options_default();
        o.grad = (node_grad_method)how;
        o.trace = NODE_TRACE_RADEMACHER;
        node_cnf *c = make(&q, 2, &o);
        double x[B * D], y[B * D], dl[B], g[B * D], gp[6], lp[B], nll;
        for (size_t k = 0; k < B * D; k++)
            x[k] = 0.3 * sin((double)k);
        node_rng rng;
        node_rng_seed(&rng, 2);
        /* B > max_batch grows (the first nll's result is right: it is the mean of
           log_prob's); then nothing is allocated at B or less */
        assert_status(node_cnf_seed(c, 1), NODE_OK);
        assert_status(node_cnf_nll(c, B, x, &nll, gp, NULL, NULL, NULL), NODE_OK);
        assert_status(node_cnf_seed(c, 1), NODE_OK);
        assert_status(node_cnf_log_prob(c, B, x, lp, NULL), NODE_OK);
        double mean = 0;
        for (size_t r = 0; r < B; r++)
            mean += lp[r] / B;
        assert_close(nll, -mean, 1e-12, 1e-14);
        assert_status(node_cnf_sample(c, &rng, B, NULL, y, lp, NULL), NODE_OK);
        node_test_alloc_begin(-1);
        for (int rep = 0; rep < 2; rep++) {
            assert_status(node_cnf_seed(c, 1), NODE_OK);
            assert_status(node_cnf_nll(c, B, x, &nll, gp, NULL, NULL, NULL), NODE_OK);
            assert_status(node_cnf_transport(c, 3, x, 1, 0, y, dl, NULL), NODE_OK);
            assert_status(node_cnf_transport_grad(c, 3, x, 1, 0, y, dl, x, dl, g, gp, NULL),
                          NODE_OK);
            assert_status(node_cnf_log_prob(c, B, x, lp, NULL), NODE_OK);
            assert_status(node_cnf_sample(c, &rng, B, NULL, y, lp, NULL), NODE_OK);
        }
        long n = node_test_alloc_end();
        if (how == NODE_GRAD_ADJOINT)
            assert_int_equal(n, 0);   /* backprop's tape may grow with a longer solve */
        node_cnf_free(c);
    }

    /* every failed allocation of create and of a first call: ENOMEM, no leak */
    bool done = false;
    for (long k = 0; !done && k < 100; k++) {
        node_cnf *c = NULL;
        node_error err;
        node_test_alloc_begin(k);
        node_flow f = tf_flow(&q);
        node_status st = node_cnf_create(&c, &f, 3, NULL, &err);
        if (st == NODE_OK) {
            double x[4 * D] = { 0 }, nll, gp[6];
            node_stats s;
            st = node_cnf_nll(c, 4, x, &nll, gp, NULL, NULL, &s);
            if (st == NODE_OK)
                done = true;
            else
                assert_status(st, NODE_ENOMEM);
            node_cnf_free(c);
        } else {
            assert_status(st, NODE_ENOMEM);
            assert_null(c);
            assert_true(err.message[0] != '\0');
        }
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_names_and_defaults),
        cmocka_unit_test(test_linear_and_affine_dlogp_exact),
        cmocka_unit_test(test_log_prob_linear_is_the_pushed_gaussian),
        cmocka_unit_test(test_sample_then_log_prob_inverts),
        cmocka_unit_test(test_hutchinson_is_unbiased_with_the_right_variance),
        cmocka_unit_test(test_nll_gradient_matches_finite_differences),
        cmocka_unit_test(test_transport_grad_matches_finite_differences),
        cmocka_unit_test(test_system_matches_transport),
        cmocka_unit_test(test_create_and_options_refusals),
        cmocka_unit_test(test_call_refusals),
        cmocka_unit_test(test_backward_failure_is_reported),
        cmocka_unit_test(test_no_allocation_once_sized_and_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
