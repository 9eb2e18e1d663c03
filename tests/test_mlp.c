/* test_mlp.c — the MLP dynamics module: shapes and arguments, deterministic init,
 * forward values by hand, vjp against central differences (every activation, with
 * and without time input, several batches and depths, through node_mlp_vjp and the
 * node_system and node_mlp_vjp_ws), a solve of a linear net against its closed form,
 * and the failing-allocator sweeps.  Workspaces and systems: test_mlp_ws.c;
 * activations and kernels: test_mlp_act.c.
 */
#include "test_util.h"
#include "mlp_fixtures.h"
#include "nn/nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arguments and shapes -------------------------------------------------------- */

static void test_create_rejects_bad_arguments(void **state)
{
    (void)state;
    size_t sizes[3] = { 2, 4, 2 }, zero[3] = { 2, 0, 2 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_activation bad[2] = { NODE_ACT_TANH, (node_activation)99 };
    node_mlp *m = (node_mlp *)&m;   /* must stay untouched on failure */
    node_mlp *keep = m;
    assert_status(node_mlp_create(NULL, 2, sizes, acts, 0), NODE_EINVAL);
    assert_status(node_mlp_create(&m, 0, sizes, acts, 0), NODE_EINVAL);
    assert_status(node_mlp_create(&m, 2, NULL, acts, 0), NODE_EINVAL);
    assert_status(node_mlp_create(&m, 2, sizes, NULL, 0), NODE_EINVAL);
    assert_status(node_mlp_create(&m, 2, zero, acts, 0), NODE_EINVAL);
    assert_status(node_mlp_create(&m, 2, sizes, bad, 0), NODE_EINVAL);
    assert_ptr_equal(m, keep);
    node_mlp_free(NULL);
    /* The _ex form says which argument and why. */
    node_error err;
    assert_status(node_mlp_create_ex(&m, 2, zero, acts, 0, &err), NODE_EINVAL);
    assert_int_equal(err.status, NODE_EINVAL);
    assert_string_equal(err.message, "sizes[1] is 0");
    assert_status(node_mlp_create_ex(&m, 2, sizes, bad, 0, &err), NODE_EINVAL);
    assert_string_equal(err.message, "acts[1] = 99 is not an activation");
    node_activation neg[2] = { (node_activation)-1, NODE_ACT_TANH };
    assert_status(node_mlp_create_ex(&m, 2, sizes, neg, 0, &err), NODE_EINVAL);
    char want[80];   /* -1 or 4294967295: the enum's type is the compiler's choice */
    snprintf(want, sizeof want, "acts[0] = %lld is not an activation", (long long)neg[0]);
    assert_string_equal(err.message, want);
    assert_status(node_mlp_create_ex(&m, 0, sizes, acts, 0, &err), NODE_EINVAL);
    assert_string_equal(err.message, "nlayers is 0");
    assert_status(node_mlp_create_ex(&m, 2, NULL, acts, 0, &err), NODE_EINVAL);
    assert_string_equal(err.message, "sizes is NULL");
    assert_status(node_mlp_create_ex(&m, 2, sizes, NULL, 0, &err), NODE_EINVAL);
    assert_string_equal(err.message, "acts is NULL");
    assert_status(node_mlp_create_ex(NULL, 2, sizes, acts, 0, &err), NODE_EINVAL);
    assert_string_equal(err.message, "out is NULL");
    size_t huge[3] = { SIZE_MAX / 4, SIZE_MAX / 4, 2 };
    assert_status(node_mlp_create_ex(&m, 2, huge, acts, 0, &err), NODE_ENOMEM);
    assert_string_equal(err.message, "sizes describe more than SIZE_MAX parameters");
    assert_ptr_equal(m, keep);
    assert_status(node_mlp_create_ex(&m, 2, zero, acts, 0, NULL), NODE_EINVAL);
    assert_status(node_mlp_create_ex(&m, 2, sizes, acts, 0, &err), NODE_OK);
    assert_int_equal(err.status, NODE_OK);
    assert_string_equal(err.message, "");
    node_mlp_free(m);
}

static void test_shapes_and_parameter_layout(void **state)
{
    (void)state;
    size_t sizes[4] = { 3, 5, 4, 3 };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_RELU, NODE_ACT_SILU };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, 1), NODE_OK);
    /* (3+1+1)*5 + (5+1)*4 + (4+1)*3 */
    assert_int_equal(node_mlp_nparams(m), 25 + 24 + 15);
    assert_int_equal(node_mlp_nlayers(m), 3);
    for (size_t k = 0; k <= 3; k++)
        assert_int_equal(node_mlp_size(m, k), sizes[k]);
    assert_int_equal(node_mlp_size(m, 4), 0);
    assert_int_equal(node_mlp_activation(m, 1), NODE_ACT_RELU);
    assert_int_equal(node_mlp_activation(m, 3), NODE_ACT_IDENTITY);
    assert_int_equal(node_mlp_time_input(m), 1);
    assert_int_equal(node_mlp_nparams(NULL), 0);
    assert_null(node_mlp_params(NULL));
    assert_int_equal(node_mlp_nlayers(NULL), 0);
    assert_int_equal(node_mlp_size(NULL, 0), 0);
    assert_int_equal(node_mlp_time_input(NULL), 0);
    const double *p = node_mlp_params(m);
    for (size_t i = 0; i < node_mlp_nparams(m); i++)
        assert_true(p[i] == 0.0);   /* parameters start at zero */
    node_mlp_free(m);
}

static void test_forward_and_vjp_reject_bad_arguments(void **state)
{
    (void)state;
    size_t sizes[2] = { 2, 3 };
    node_activation acts[1] = { NODE_ACT_TANH };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 1, sizes, acts, 0), NODE_OK);
    double x[2] = { 0 }, y[3], a[3] = { 0 }, g[2];
    assert_status(node_mlp_forward(NULL, 1, 0, x, y), NODE_EINVAL);
    assert_status(node_mlp_forward(m, 0, 0, x, y), NODE_EINVAL);
    assert_status(node_mlp_forward(m, 1, 0, NULL, y), NODE_EINVAL);
    assert_status(node_mlp_forward(m, 1, 0, x, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp(m, 1, 0, x, NULL, y, g, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp(m, 0, 0, x, a, y, g, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp(m, 1, 0, NULL, a, y, g, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_reserve(NULL, 4), NODE_EINVAL);
    assert_status(node_mlp_reserve(m, 0), NODE_EINVAL);
    assert_status(node_mlp_reserve(m, SIZE_MAX), NODE_ENOMEM);
    assert_status(node_mlp_reserve(m, SIZE_MAX / 64), NODE_ENOMEM);
    assert_status(node_mlp_forward(m, SIZE_MAX / 2, 0, x, y), NODE_ENOMEM);
    node_system sys;
    assert_status(node_mlp_system(m, 1, &sys), NODE_EINVAL);   /* 2 inputs, 3 outputs */
    assert_status(node_mlp_system(NULL, 1, &sys), NODE_EINVAL);
    node_mlp_free(m);
    size_t sq[2] = { 2, 2 };
    assert_status(node_mlp_create(&m, 1, sq, acts, 0), NODE_OK);
    assert_status(node_mlp_system(m, 0, &sys), NODE_EINVAL);
    assert_status(node_mlp_system(m, 1, NULL), NODE_EINVAL);
    node_mlp_free(m);
}

/* ---- initialisation ------------------------------------------------------------ */

static void test_init_is_deterministic_and_pytorch_scaled(void **state)
{
    (void)state;
    size_t sizes[3] = { 3, 7, 2 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m1, *m2;
    assert_status(node_mlp_create(&m1, 2, sizes, acts, 1), NODE_OK);
    assert_status(node_mlp_create(&m2, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(m1, 12345);
    node_mlp_init(m2, 12345);
    size_t n = node_mlp_nparams(m1);
    assert_memory_equal(node_mlp_params(m1), node_mlp_params(m2), n * sizeof(double));
    node_mlp_init(m2, 12346);
    assert_memory_not_equal(node_mlp_params(m1), node_mlp_params(m2), n * sizeof(double));

    /* Layer 1: fan_in 4 (3 + time) → bound 1/2 for 7*4 + 7 values; layer 2: 1/√7. */
    const double *p = node_mlp_params(m1);
    double lo = 0, hi = 0;
    for (size_t i = 0; i < 35; i++) {
        assert_true(fabs(p[i]) <= 0.5);
        lo = fmin(lo, p[i]);
        hi = fmax(hi, p[i]);
    }
    assert_true(lo < -0.3 && hi > 0.3);   /* spread over the interval */
    for (size_t i = 35; i < n; i++)
        assert_true(fabs(p[i]) <= 1.0 / sqrt(7.0));

    /* The stream is SplitMix64: its first output for seed 0 is 0xE220A8397B1DCDAF
       (the reference implementation's published value), mapped to [-b, b). */
    node_mlp_init(m1, 0);
    double u = (double)(0xE220A8397B1DCDAFu >> 11) * 0x1p-53;
    assert_true(p[0] == (2.0 * u - 1.0) * 0.5);
    node_mlp_init(NULL, 1);
    node_mlp_free(m1);
    node_mlp_free(m2);
}

/* ---- forward by hand --------------------------------------------------------------- */

static void test_forward_matches_hand_computed_values(void **state)
{
    (void)state;
    /* 2 inputs + t -> 2 tanh -> 1 identity. */
    size_t sizes[3] = { 2, 2, 1 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 1), NODE_OK);
    double theta[] = {
        0.5, -1.0, 0.25,     /* W1 row 0: x0, x1, t */
        2.0, 0.0, -0.5,      /* W1 row 1 */
        0.1, -0.2,           /* b1 */
        1.5, -3.0,           /* W2 */
        0.75                 /* b2 */
    };
    assert_int_equal(node_mlp_nparams(m), 11);
    memcpy(node_mlp_params(m), theta, sizeof theta);
    double x[4] = { 1.0, 2.0, -0.5, 0.25 }, t = 0.4, y[2];
    assert_status(node_mlp_forward(m, 2, t, x, y), NODE_OK);
    for (int b = 0; b < 2; b++) {
        double h0 = tanh(0.5 * x[2 * b] - 1.0 * x[2 * b + 1] + 0.25 * t + 0.1);
        double h1 = tanh(2.0 * x[2 * b] + 0.0 * x[2 * b + 1] - 0.5 * t - 0.2);
        assert_close(y[b], 1.5 * h0 - 3.0 * h1 + 0.75, 1e-15, 1e-15);
    }
    /* Row 0 by hand: h0 = tanh(0.5 - 2 + 0.1 + 0.1) = tanh(-1.3). */
    assert_close(y[0], 1.5 * tanh(-1.3) - 3.0 * tanh(1.6) + 0.75, 1e-15, 1e-15);
    node_mlp_free(m);
}

/* ---- vjp against central differences ----------------------------------------------- */

typedef struct {
    node_mlp *m;
    size_t batch, nin, nout;
    double t;
    const double *x, *a;
} fd_ctx;

/* L = Σ a ⊙ MLP(t, x). */
static double loss(const fd_ctx *c, const double *x, double t)
{
    double *y = alloc_d(c->batch * c->nout);
    assert_status(node_mlp_forward(c->m, c->batch, t, x, y), NODE_OK);
    double s = 0;
    for (size_t i = 0; i < c->batch * c->nout; i++)
        s += c->a[i] * y[i];
    free(y);
    return s;
}

/* Max over a vector of |g - fd| / max(|fd|_inf, 1e-3). */
static void check_fd(const fd_ctx *c, const double *gx, const double *gp, double gt,
                     int has_time)
{
    const double h = 1e-6;
    size_t nx = c->batch * c->nin, np = node_mlp_nparams(c->m);
    double *x = alloc_d(nx), *fx = alloc_d(nx), *fp = alloc_d(np);
    memcpy(x, c->x, nx * sizeof *x);
    double sx = 1e-3, sp = 1e-3;
    for (size_t i = 0; i < nx; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double lp = loss(c, x, c->t);
        x[i] = x0 - h;
        double lm = loss(c, x, c->t);
        x[i] = x0;
        fx[i] = (lp - lm) / (2 * h);
        sx = fmax(sx, fabs(fx[i]));
    }
    double *p = node_mlp_params(c->m);
    for (size_t j = 0; j < np; j++) {
        double p0 = p[j];
        p[j] = p0 + h;
        double lp = loss(c, x, c->t);
        p[j] = p0 - h;
        double lm = loss(c, x, c->t);
        p[j] = p0;
        fp[j] = (lp - lm) / (2 * h);
        sp = fmax(sp, fabs(fp[j]));
    }
    double ft = (loss(c, x, c->t + h) - loss(c, x, c->t - h)) / (2 * h);
    for (size_t i = 0; i < nx; i++)
        assert_close(gx[i], fx[i], 0, 1e-7 * sx);
    for (size_t j = 0; j < np; j++)
        assert_close(gp[j], fp[j], 0, 1e-7 * sp);
    if (has_time)
        assert_close(gt, ft, 0, 1e-7 * fmax(fabs(ft), 1e-3));
    else
        assert_true(gt == 0.0);
    free(x);
    free(fx);
    free(fp);
}

/* One network, every output of node_mlp_vjp and (for square nets) of the system's
   vjp checked against differences of the forward pass. */
static void check_network(size_t nlayers, const size_t *sizes, const node_activation *acts,
                          int time_input, size_t batch, unsigned seed)
{
    node_mlp *m;
    assert_status(node_mlp_create(&m, nlayers, sizes, acts, time_input), NODE_OK);
    node_mlp_init(m, seed);
    /* Larger weights make the nonlinearities bite (the init keeps |z| small). */
    double *p = node_mlp_params(m);
    for (size_t j = 0; j < node_mlp_nparams(m); j++)
        p[j] *= 2.5;
    size_t nin = sizes[0], nout = sizes[nlayers], np = node_mlp_nparams(m);
    double *x = alloc_d(batch * nin), *a = alloc_d(batch * nout);
    fill(x, batch * nin, seed + 1);
    fill(a, batch * nout, seed + 2);
    double *y = alloc_d(batch * nout), *yf = alloc_d(batch * nout);
    double *gx = alloc_d(batch * nin), *gp = alloc_d(np), *gx2 = alloc_d(batch * nin);
    double gt = 123.0;
    fd_ctx c = { m, batch, nin, nout, 0.3, x, a };
    fill(gp, np, 99);   /* outputs are overwritten, not accumulated */
    assert_status(node_mlp_vjp(m, batch, c.t, x, a, y, gx, gp, &gt), NODE_OK);
    assert_status(node_mlp_forward(m, batch, c.t, x, yf), NODE_OK);
    assert_memory_equal(y, yf, batch * nout * sizeof *y);
    check_fd(&c, gx, gp, gt, time_input);
    /* Without the parameter part: the same vjp_x. */
    assert_status(node_mlp_vjp(m, batch, c.t, x, a, NULL, gx2, NULL, NULL), NODE_OK);
    assert_memory_equal(gx, gx2, batch * nin * sizeof *gx);
    /* The caller's workspace on a const model: the same bits. */
    {
        const node_mlp *cm = m;
        node_mlp_ws *w;
        assert_status(node_mlp_ws_create(NULL, 0, &w), NODE_OK);
        double *y2 = alloc_d(batch * nout), *gp2 = alloc_d(np), gt2 = -1.0;
        fill(gp2, np, 98);
        assert_status(node_mlp_vjp_ws(cm, w, batch, c.t, x, a, y2, gx2, gp2, &gt2), NODE_OK);
        assert_memory_equal(y2, y, batch * nout * sizeof *y);
        assert_memory_equal(gx2, gx, batch * nin * sizeof *gx);
        assert_memory_equal(gp2, gp, np * sizeof *gp);
        assert_true(gt2 == gt);
        memset(y2, 0, batch * nout * sizeof *y2);
        assert_status(node_mlp_forward_ws(cm, w, batch, c.t, x, y2), NODE_OK);
        assert_memory_equal(y2, yf, batch * nout * sizeof *y);
        node_mlp_ws_free(w);
        free(y2);
        free(gp2);
    }

    if (nin == nout) {
        node_system sys;
        assert_status(node_mlp_system(m, batch, &sys), NODE_OK);
        assert_int_equal(sys.dim, batch * nin);
        assert_int_equal(sys.nparams, np);
        double *dydt = alloc_d(batch * nout), *vy = alloc_d(batch * nin), *vp = alloc_d(np);
        double vt = 7.0;
        fill(vp, np, 5);
        assert_int_equal(sys.f(sys.ctx, c.t, x, dydt), 0);
        assert_memory_equal(dydt, yf, batch * nout * sizeof *y);
        memset(dydt, 0, batch * nout * sizeof *dydt);
        assert_int_equal(sys.vjp(sys.ctx, c.t, x, a, dydt, vy, vp, &vt), 0);
        assert_memory_equal(dydt, yf, batch * nout * sizeof *y);   /* vjp's dydt is f */
        assert_memory_equal(vy, gx, batch * nin * sizeof *vy);
        assert_memory_equal(vp, gp, np * sizeof *vp);
        assert_true(vt == gt);
        /* NULL vjp_p: the same vjp_y, and vjp_p's memory untouched. */
        double *vy2 = alloc_d(batch * nin);
        fill(vp, np, 6);
        double first = vp[0];
        assert_int_equal(sys.vjp(sys.ctx, c.t, x, a, NULL, vy2, NULL, NULL), 0);
        assert_memory_equal(vy2, vy, batch * nin * sizeof *vy);
        assert_true(vp[0] == first);
        free(vy2);
        free(dydt);
        free(vy);
        free(vp);
    }
    free(x);
    free(a);
    free(y);
    free(yf);
    free(gx);
    free(gx2);
    free(gp);
    node_mlp_free(m);
}

static void test_vjp_matches_central_differences_every_activation(void **state)
{
    (void)state;
    static const size_t batches[] = { 1, 3, 5, 20 };
    for (size_t ai = 0; ai < NACTS; ai++)
        for (int ti = 0; ti <= 1; ti++)
            for (size_t bi = 0; bi < 4; bi++) {
                node_activation a1[1] = { all_acts[ai] };
                size_t s1[2] = { 3, 3 };
                check_network(1, s1, a1, ti, batches[bi], 10u + (unsigned)ai);
                node_activation a2[2] = { all_acts[ai], NODE_ACT_IDENTITY };
                size_t s2[3] = { 2, 6, 2 };
                check_network(2, s2, a2, ti, batches[bi], 20u + (unsigned)ai);
                node_activation a3[3] = { all_acts[ai], all_acts[(ai + 3) % NACTS],
                                          all_acts[ai] };
                size_t s3[4] = { 3, 18, 5, 3 };
                check_network(3, s3, a3, ti, batches[bi], 30u + (unsigned)ai);
            }
}

static void test_vjp_non_square_and_wide_shapes(void **state)
{
    (void)state;
    /* Widths past the 16-lane dot products and batches past one 24-column panel. */
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_SOFTPLUS };
    size_t s[3] = { 21, 37, 4 };
    check_network(2, s, acts, 1, 1, 7);
    check_network(2, s, acts, 0, 2, 8);
    check_network(2, s, acts, 1, 37, 9);
    size_t sq[3] = { 5, 33, 5 };
    check_network(2, sq, acts, 1, 50, 11);
    /* Large enough for packed strips and the transposed weight gradient. */
    size_t big[3] = { 8, 40, 8 };
    check_network(2, big, acts, 1, 60, 12);
}

/* ---- systems ------------------------------------------------------------------------ */

static void test_system_reads_current_parameters(void **state)
{
    (void)state;
    size_t sizes[2] = { 2, 2 };
    node_activation acts[1] = { NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 1, sizes, acts, 0), NODE_OK);
    node_system sys;
    assert_status(node_mlp_system(m, 1, &sys), NODE_OK);
    double y[2] = { 1, 2 }, f[2];
    assert_int_equal(sys.f(sys.ctx, 0, y, f), 0);
    assert_true(f[0] == 0.0 && f[1] == 0.0);
    double *p = node_mlp_params(m);
    p[0] = 3.0;   /* W[0][0] */
    p[5] = -1.0;  /* b[1] */
    assert_int_equal(sys.f(sys.ctx, 0, y, f), 0);
    assert_true(f[0] == 3.0 && f[1] == -1.0);
    node_mlp_free(m);
}

/* y' = W y + b with W = [[-1, 2], [-2, -1]]: y(t) = e^{Wt}(y0 - c) + c, c = -W⁻¹ b,
   e^{Wt} = e^{-t} [[cos 2t, sin 2t], [-sin 2t, cos 2t]]. */
static void test_linear_net_under_odeint_matches_closed_form(void **state)
{
    (void)state;
    size_t sizes[2] = { 2, 2 };
    node_activation acts[1] = { NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 1, sizes, acts, 0), NODE_OK);
    double theta[6] = { -1, 2, -2, -1, 0.5, -1.5 };
    memcpy(node_mlp_params(m), theta, sizeof theta);
    node_system sys;
    assert_status(node_mlp_system(m, 2, &sys), NODE_OK);
    /* W⁻¹ = [[-1, -2], [2, -1]] / 5. */
    double c[2] = { -(-1 * 0.5 - 2 * -1.5) / 5, -(2 * 0.5 - 1 * -1.5) / 5 };
    double y0[4] = { 1.0, 0.0, -0.5, 2.0 }, ts[3] = { 0.0, 0.7, 1.5 }, ys[12];
    node_options opt = node_options_default();
    opt.rtol = 1e-10;
    opt.atol = 1e-12;
    assert_status(node_odeint(&sys, y0, ts, 3, ys, &opt, NULL), NODE_OK);
    for (size_t i = 0; i < 3; i++)
        for (size_t b = 0; b < 2; b++) {
            double t = ts[i], e = exp(-t), cs = cos(2 * t), sn = sin(2 * t);
            double d0 = y0[2 * b] - c[0], d1 = y0[2 * b + 1] - c[1];
            assert_close(ys[4 * i + 2 * b], e * (cs * d0 + sn * d1) + c[0], 1e-8, 1e-9);
            assert_close(ys[4 * i + 2 * b + 1], e * (-sn * d0 + cs * d1) + c[1], 1e-8, 1e-9);
        }
    node_mlp_free(m);
}

/* ---- failing allocations ---------------------------------------------------------- */

static void test_create_system_forward_survive_failing_allocations(void **state)
{
    (void)state;
    size_t sizes[4] = { 3, 9, 7, 3 };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_SILU, NODE_ACT_IDENTITY };
    double y[30], f[30];
    fill(y, 30, 1);
    bool done = false;
    for (long k = 0; !done && k < 100; k++) {
        node_test_alloc_begin(k);
        node_mlp *m = NULL;
        node_status st = node_mlp_create(&m, 3, sizes, acts, 1);
        node_system s1, s10;
        if (st == NODE_OK)
            st = node_mlp_system(m, 1, &s1);
        if (st == NODE_OK)
            st = node_mlp_system(m, 10, &s10);
        if (st == NODE_OK)
            st = node_mlp_forward(m, 10, 0.0, y, f);
        if (st == NODE_OK)
            st = node_mlp_forward(m, 10, 0.0, y, f);
        if (st == NODE_OK)
            done = true;
        else
            assert_status(st, NODE_ENOMEM);
        if (st == NODE_OK) {   /* the object stays usable after any failure */
            assert_int_equal(s1.f(s1.ctx, 0.0, y, f), 0);
        }
        node_mlp_free(m);
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(done);

    /* A failed system or forward leaves the mlp usable. */
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, 0), NODE_OK);
    node_system sys;
    node_test_alloc_begin(0);
    assert_status(node_mlp_system(m, 4, &sys), NODE_ENOMEM);
    node_test_alloc_end();
    node_test_alloc_begin(0);
    assert_status(node_mlp_forward(m, 10, 0.0, y, f), NODE_ENOMEM);
    node_test_alloc_end();
    assert_status(node_mlp_system(m, 4, &sys), NODE_OK);
    assert_int_equal(sys.f(sys.ctx, 0.0, y, f), 0);
    node_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_bad_arguments),
        cmocka_unit_test(test_shapes_and_parameter_layout),
        cmocka_unit_test(test_forward_and_vjp_reject_bad_arguments),
        cmocka_unit_test(test_init_is_deterministic_and_pytorch_scaled),
        cmocka_unit_test(test_forward_matches_hand_computed_values),
        cmocka_unit_test(test_vjp_matches_central_differences_every_activation),
        cmocka_unit_test(test_vjp_non_square_and_wide_shapes),
        cmocka_unit_test(test_system_reads_current_parameters),
        cmocka_unit_test(test_linear_net_under_odeint_matches_closed_form),
        cmocka_unit_test(test_create_system_forward_survive_failing_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
