/* test_net.c — networks of layers (net.h): every layer's VJP (inputs, parameters,
 * t) against central differences, with stride, padding and odd sizes; convolution
 * against a naive loop written here; group normalisation against its formula;
 * softmax cross-entropy (value, gradient, accuracy); a dense network against the
 * MLP of the same parameters; a network as ODE dynamics through the adjoint
 * against exact backprop; thread counts; no allocation once reserved; refusals.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static double *alloc_d(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* Deterministic values in (-1, 1), away from 0 (ReLU kinks) by at least 0.02. */
static void fill(double *v, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15u + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) * 0x1p-53;
        double v0 = 0.02 + 0.98 * u;
        v[i] = (s & 1) ? v0 : -v0;
    }
}

static size_t in_size(const node_net *n)
{
    size_t c, h, w;
    node_net_in_shape(n, &c, &h, &w);
    return c * h * w;
}

static size_t out_size(const node_net *n)
{
    size_t c, h, w;
    node_net_out_shape(n, &c, &h, &w);
    return c * h * w;
}

/* L = Σ a ⊙ net(t, x) */
static double lossf(node_net *n, size_t batch, double t, const double *x, const double *a)
{
    size_t m = batch * out_size(n);
    double *y = alloc_d(m);
    assert_status(node_net_forward(n, batch, t, x, y), NODE_OK);
    double s = 0.0;
    for (size_t i = 0; i < m; i++)
        s += a[i] * y[i];
    free(y);
    return s;
}

/* vjp_x, vjp_p, vjp_t against central differences of L, every entry. */
static void check_vjp(node_net *n, size_t batch, double t, double tol)
{
    size_t ni = batch * in_size(n), no = batch * out_size(n), np = node_net_nparams(n);
    double *x = alloc_d(ni), *a = alloc_d(no), *gx = alloc_d(ni), *gp = alloc_d(np + 1);
    double *y = alloc_d(no), *y2 = alloc_d(no);
    fill(x, ni, 11);
    fill(a, no, 12);
    fill(gp, np, 13);   /* overwritten */
    double gt = 42.0;
    assert_status(node_net_vjp(n, batch, t, x, a, y, gx, gp, &gt), NODE_OK);
    assert_status(node_net_forward(n, batch, t, x, y2), NODE_OK);
    for (size_t i = 0; i < no; i++)
        assert_true(y[i] == y2[i]);
    const double h = 1e-6;
    /* the inputs, then the parameters: v[i] ± h against g[i] */
    double *vs[2] = { x, node_net_params(n) }, *gs[2] = { gx, gp };
    size_t ns[2] = { ni, np };
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < ns[w]; i++) {
            double v0 = vs[w][i];
            vs[w][i] = v0 + h;
            double lp = lossf(n, batch, t, x, a);
            vs[w][i] = v0 - h;
            double lm = lossf(n, batch, t, x, a);
            vs[w][i] = v0;
            assert_close(gs[w][i], (lp - lm) / (2 * h), tol, tol);
        }
    double lp = lossf(n, batch, t + h, x, a), lm = lossf(n, batch, t - h, x, a);
    assert_close(gt, (lp - lm) / (2 * h), tol, tol);
    free(x); free(a); free(gx); free(gp); free(y); free(y2);
}

static node_net *make(size_t c, size_t h, size_t w)
{
    node_net *n = NULL;
    assert_status(node_net_create(&n, c, h, w, NULL), NODE_OK);
    return n;
}

/* Random parameters (group norm's γ, β too). */
static void randomize(node_net *n, uint64_t seed)
{
    fill(node_net_params(n), node_net_nparams(n), seed);
}

static void test_conv_vjp_stride_pad_odd(void **state)
{
    (void)state;
    /* 3 × 5 × 7, kernel 4, stride 2, pad 1, bias and time channel: 2 × 3 output */
    node_net *n = make(3, 5, 7);
    assert_status(node_net_add_conv2d(n, 4, 4, 4, 2, 1, 1, 1, NULL), NODE_OK);
    size_t c, h, w;
    node_net_out_shape(n, &c, &h, &w);
    assert_int_equal(c, 4);
    assert_int_equal(h, 2);
    assert_int_equal(w, 3);
    assert_int_equal(node_net_nparams(n), 4 * 4 * 4 * 4 + 4);
    randomize(n, 1);
    check_vjp(n, 3, 0.3, 1e-7);
    node_net_free(n);
    /* non-square kernel, stride 3, no bias, no time; then 3 × 3 pad 1 with time */
    n = make(2, 7, 5);
    assert_status(node_net_add_conv2d(n, 3, 3, 2, 3, 2, 0, 0, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, 2, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    randomize(n, 2);
    check_vjp(n, 2, -0.4, 1e-7);
    node_net_free(n);
}

static void test_dense_groupnorm_pool_vjp(void **state)
{
    (void)state;
    node_net *n = make(4, 3, 3);
    assert_status(node_net_add_groupnorm(n, 2, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_RELU, NULL), NODE_OK);
    assert_status(node_net_add_avgpool(n, NULL), NODE_OK);
    assert_status(node_net_add_flatten(n, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 3, 1, 1, NULL), NODE_OK);
    assert_int_equal(node_net_nlayers(n), 5);
    randomize(n, 3);
    check_vjp(n, 3, 0.8, 1e-7);
    node_net_free(n);
    /* dense straight from a C × H × W sample, no bias, t an input; every activation */
    n = make(2, 3, 2);
    assert_status(node_net_add_dense(n, 5, 0, 1, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_TANH, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 4, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_SOFTPLUS, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 4, 1, 0, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_ELU, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 3, 1, 0, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_SILU, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_SIGMOID, NULL), NODE_OK);
    assert_int_equal(node_net_nparams(n), 13 * 5 + 7 * 4 + 5 * 4 + 5 * 3);
    randomize(n, 4);
    check_vjp(n, 5, 0.1, 1e-7);
    node_net_free(n);
}

static void test_resblock_vjp(void **state)
{
    (void)state;
    node_net *n = make(4, 3, 5);
    assert_status(node_net_add_resblock(n, 2, NULL), NODE_OK);
    assert_int_equal(node_net_nlayers(n), 1);
    assert_int_equal(node_net_nparams(n), 2 * (4 * 4 * 9) + 4 * 4);
    size_t c, h, w;
    node_net_out_shape(n, &c, &h, &w);
    assert_true(c == 4 && h == 3 && w == 5);
    randomize(n, 5);
    check_vjp(n, 2, 0.0, 1e-7);
    node_net_free(n);
}

/* The downsampling stage of the ODE-Net in small: conv, group norm, ReLU, strided
   convs; the forward of several chunks (batch 9 > the chunk of a 3 × 3 output). */
static void test_stack_vjp(void **state)
{
    (void)state;
    node_net *n = make(1, 9, 9);
    assert_status(node_net_add_conv2d(n, 4, 3, 3, 1, 0, 1, 0, NULL), NODE_OK);
    assert_status(node_net_add_groupnorm(n, 2, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_RELU, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, 4, 4, 4, 2, 1, 1, 0, NULL), NODE_OK);
    assert_status(node_net_add_resblock(n, 4, NULL), NODE_OK);
    assert_status(node_net_add_avgpool(n, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 3, 1, 0, NULL), NODE_OK);
    node_net_init(n, 7);
    check_vjp(n, 2, 0.0, 1e-7);
    node_net_free(n);
}

/* out[b][o][y][x] = bias[o] + Σ W[o][c][i][j] in[c][y s + i − p][x s + j − p], the
   time channel (c = C) holding t, zero outside. */
static void naive_conv(size_t B, size_t C, size_t H, size_t W, size_t O, size_t kh, size_t kw,
                       size_t s, size_t p, int bias, int time, double t, const double *th,
                       const double *x, double *y, size_t *oh_, size_t *ow_)
{
    size_t oh = (H + 2 * p - kh) / s + 1, ow = (W + 2 * p - kw) / s + 1, Ct = C + (time != 0);
    for (size_t b = 0; b < B; b++)
        for (size_t o = 0; o < O; o++)
            for (size_t yy = 0; yy < oh; yy++)
                for (size_t xx = 0; xx < ow; xx++) {
                    double acc = bias ? th[O * Ct * kh * kw + o] : 0.0;
                    for (size_t c = 0; c < Ct; c++)
                        for (size_t i = 0; i < kh; i++)
                            for (size_t j = 0; j < kw; j++) {
                                long iy = (long)(yy * s + i) - (long)p;
                                long ix = (long)(xx * s + j) - (long)p;
                                if (iy < 0 || ix < 0 || iy >= (long)H || ix >= (long)W)
                                    continue;
                                double v = c == C ? t
                                         : x[((b * C + c) * H + (size_t)iy) * W + (size_t)ix];
                                acc += th[((o * Ct + c) * kh + i) * kw + j] * v;
                            }
                    y[((b * O + o) * oh + yy) * ow + xx] = acc;
                }
    *oh_ = oh;
    *ow_ = ow;
}

static void check_conv_naive(size_t B, size_t C, size_t H, size_t W, size_t O, size_t kh,
                             size_t kw, size_t s, size_t p, int bias, int time)
{
    node_net *n = make(C, H, W);
    assert_status(node_net_add_conv2d(n, O, kh, kw, s, p, bias, time, NULL), NODE_OK);
    randomize(n, 21);
    size_t oh, ow, osz = out_size(n);
    double *x = alloc_d(B * C * H * W), *y = alloc_d(B * osz), *r = alloc_d(B * osz);
    fill(x, B * C * H * W, 22);
    assert_status(node_net_forward(n, B, 0.37, x, y), NODE_OK);
    naive_conv(B, C, H, W, O, kh, kw, s, p, bias, time, 0.37, node_net_params(n), x, r, &oh, &ow);
    assert_int_equal(O * oh * ow, osz);
    assert_close(node_net_flops(n), (double)(O * oh * ow * (C + (time != 0)) * kh * kw), 0, 0);
    for (size_t i = 0; i < B * osz; i++)
        assert_close(y[i], r[i], 1e-13, 1e-13);
    free(x); free(y); free(r);
    node_net_free(n);
}

static void test_conv_against_naive_loop(void **state)
{
    (void)state;
    check_conv_naive(3, 2, 5, 7, 3, 4, 4, 2, 1, 1, 1);
    check_conv_naive(30, 3, 4, 3, 5, 3, 3, 1, 1, 0, 1);    /* several chunks */
    check_conv_naive(2, 2, 16, 15, 4, 3, 2, 1, 0, 1, 0);   /* one sample a chunk */
    check_conv_naive(5, 1, 6, 6, 2, 6, 6, 1, 0, 1, 0);     /* kernel = input */
    check_conv_naive(4, 2, 3, 3, 2, 1, 1, 2, 3, 1, 1);     /* more padding than input */
    check_conv_naive(131, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1);   /* the ODE block's shape */
}

static void test_groupnorm_formula(void **state)
{
    (void)state;
    size_t C = 6, H = 3, W = 4, G = 3, B = 2, HW = H * W, cpg = C / G;
    node_net *n = make(C, H, W);
    assert_status(node_net_add_groupnorm(n, G, NULL), NODE_OK);
    node_net_init(n, 1);
    double *th = node_net_params(n);
    for (size_t i = 0; i < C; i++) {   /* init: γ = 1, β = 0 */
        assert_true(th[i] == 1.0 && th[C + i] == 0.0);
        th[i] = 0.5 + 0.1 * (double)i;
        th[C + i] = -0.3 + 0.05 * (double)i;
    }
    double *x = alloc_d(B * C * HW), *y = alloc_d(B * C * HW);
    fill(x, B * C * HW, 5);
    for (size_t i = 0; i < B * C * HW; i++)
        x[i] = 3.0 * x[i] + 10.0;   /* an offset the normalisation removes */
    assert_status(node_net_forward(n, B, 0.0, x, y), NODE_OK);
    for (size_t b = 0; b < B; b++)
        for (size_t g = 0; g < G; g++) {
            const double *xg = x + (b * C + g * cpg) * HW;
            double mu = 0, var = 0;
            for (size_t i = 0; i < cpg * HW; i++)
                mu += xg[i] / (double)(cpg * HW);
            for (size_t i = 0; i < cpg * HW; i++)
                var += (xg[i] - mu) * (xg[i] - mu) / (double)(cpg * HW);
            for (size_t i = 0; i < cpg * HW; i++) {
                size_t ch = g * cpg + i / HW;
                double want = (xg[i] - mu) / sqrt(var + 1e-5) * th[ch] + th[C + ch];
                assert_close(y[(b * C + g * cpg) * HW + i], want, 1e-12, 1e-12);
            }
        }
    free(x); free(y);
    node_net_free(n);
}

static void test_softmax_xent(void **state)
{
    (void)state;
    const size_t B = 3, K = 4;
    double l[12] = { 0.1, 2.0, -1.0, 0.5,   3.0, 3.0, 1.0, 0.0,   -0.2, 0.3, 0.25, 1.5 };
    int32_t lab[3] = { 1, 1, 0 };
    double loss, d[12];
    size_t correct;
    assert_status(node_softmax_xent(B, K, l, lab, &loss, d, &correct, NULL), NODE_OK);
    double want = 0;
    for (size_t b = 0; b < B; b++) {
        double z = 0;
        for (size_t j = 0; j < K; j++)
            z += exp(l[b * K + j]);
        want += -log(exp(l[b * K + (size_t)lab[b]]) / z) / (double)B;
    }
    assert_close(loss, want, 1e-14, 0);
    assert_int_equal(correct, 1);   /* row 1's tie goes to the first: label 1 misses */
    const double h = 1e-6;
    for (size_t i = 0; i < B * K; i++) {
        double v = l[i], lp, lm;
        l[i] = v + h;
        assert_status(node_softmax_xent(B, K, l, lab, &lp, NULL, NULL, NULL), NODE_OK);
        l[i] = v - h;
        assert_status(node_softmax_xent(B, K, l, lab, &lm, NULL, NULL, NULL), NODE_OK);
        l[i] = v;
        assert_close(d[i], (lp - lm) / (2 * h), 1e-8, 1e-9);
    }
    /* stable for huge logits: log-sum-exp */
    double big[2] = { 1000.0, 0.0 };
    int32_t one = 1;
    assert_status(node_softmax_xent(1, 2, big, &one, &loss, d, NULL, NULL), NODE_OK);
    assert_close(loss, 1000.0, 1e-15, 0);
    assert_close(d[0], 1.0, 1e-15, 0);
    /* refusals, each named */
    node_error e;
    int32_t badlab[3] = { 0, 4, 0 };
    assert_status(node_softmax_xent(B, K, l, badlab, &loss, NULL, NULL, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "labels[1]"));
    badlab[1] = -1;
    assert_status(node_softmax_xent(B, K, l, badlab, &loss, NULL, NULL, &e), NODE_EINVAL);
    l[5] = NAN;
    assert_status(node_softmax_xent(B, K, l, lab, &loss, NULL, NULL, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "logits[1][1]"));
    l[5] = 3.0;
    assert_status(node_softmax_xent(0, K, l, lab, &loss, NULL, NULL, &e), NODE_EINVAL);
    assert_status(node_softmax_xent(B, 0, l, lab, &loss, NULL, NULL, &e), NODE_EINVAL);
    assert_status(node_softmax_xent(B, K, NULL, lab, &loss, NULL, NULL, &e), NODE_EINVAL);
    assert_status(node_softmax_xent(B, K, l, NULL, &loss, NULL, NULL, &e), NODE_EINVAL);
    assert_status(node_softmax_xent(B, K, l, lab, NULL, NULL, NULL, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "loss"));
}

/* A network of dense layers computes the MLP of the same parameters. */
static void test_dense_net_equals_mlp(void **state)
{
    (void)state;
    size_t sizes[4] = { 3, 8, 6, 3 };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_SOFTPLUS, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 9);
    node_net *n = make(3, 1, 1);
    assert_status(node_net_add_dense(n, 8, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_TANH, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 6, 1, 0, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_SOFTPLUS, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 3, 1, 0, NULL), NODE_OK);
    size_t np = node_mlp_nparams(m);
    assert_int_equal(node_net_nparams(n), np);
    memcpy(node_net_params(n), node_mlp_params(m), np * sizeof(double));
    const size_t B = 37;
    double *x = alloc_d(3 * B), *a = alloc_d(3 * B), *y1 = alloc_d(3 * B), *y2 = alloc_d(3 * B);
    double *gx1 = alloc_d(3 * B), *gx2 = alloc_d(3 * B), *gp1 = alloc_d(np), *gp2 = alloc_d(np);
    double gt1, gt2;
    fill(x, 3 * B, 1);
    fill(a, 3 * B, 2);
    assert_status(node_mlp_vjp(m, B, 0.25, x, a, y1, gx1, gp1, &gt1), NODE_OK);
    assert_status(node_net_vjp(n, B, 0.25, x, a, y2, gx2, gp2, &gt2), NODE_OK);
    for (size_t i = 0; i < 3 * B; i++) {
        assert_close(y2[i], y1[i], 1e-13, 1e-14);
        assert_close(gx2[i], gx1[i], 1e-12, 1e-13);
    }
    for (size_t i = 0; i < np; i++)
        assert_close(gp2[i], gp1[i], 1e-12, 1e-12);
    assert_close(gt2, gt1, 1e-12, 1e-12);
    assert_status(node_mlp_forward(m, B, 0.25, x, y1), NODE_OK);
    assert_status(node_net_forward(n, B, 0.25, x, y2), NODE_OK);
    for (size_t i = 0; i < 3 * B; i++)
        assert_close(y2[i], y1[i], 1e-13, 1e-14);
    free(x); free(a); free(y1); free(y2); free(gx1); free(gx2); free(gp1); free(gp2);
    node_net_free(n);
    node_mlp_free(m);
}

/* dL/dy0, dL/dθ, dL/dt of L = Σ c ⊙ y(1) for a conv net as dynamics, batch 2: the
   adjoint (tight tolerances) against exact backprop through the same solver. */
static void test_ode_adjoint_vs_backprop(void **state)
{
    (void)state;
    node_net *n = make(2, 4, 3);
    assert_status(node_net_add_conv2d(n, 3, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_groupnorm(n, 1, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_TANH, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, 2, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    node_net_init(n, 3);
    const size_t B = 2, dim = B * 24, np = node_net_nparams(n);
    node_system sys;
    assert_status(node_net_system(n, B, &sys), NODE_OK);
    assert_int_equal(sys.dim, dim);
    assert_int_equal(sys.nparams, np);
    double ts[2] = { 0.0, 1.0 };
    double *ys = alloc_d(2 * dim), *dL = alloc_d(2 * dim);
    double *g0a = alloc_d(dim), *g0b = alloc_d(dim), *gpa = alloc_d(np), *gpb = alloc_d(np);
    double gta[2], gtb[2];
    fill(ys, dim, 4);
    fill(dL + dim, dim, 5);
    node_options o = node_options_default();
    o.rtol = 1e-10;
    o.atol = 1e-10;
    assert_status(node_odeint(&sys, ys, ts, 2, ys, &o, NULL), NODE_OK);
    assert_status(node_odeint_adjoint(&sys, ts, 2, ys, dL, g0a, gpa, gta, &o, NULL), NODE_OK);
    assert_status(node_odeint_backprop(&sys, ts, 2, ys, dL, g0b, gpb, gtb, &o, NULL), NODE_OK);
    for (size_t i = 0; i < dim; i++)
        assert_close(g0a[i], g0b[i], 1e-6, 1e-7);
    for (size_t i = 0; i < np; i++)
        assert_close(gpa[i], gpb[i], 1e-6, 1e-7);
    assert_close(gta[0], gtb[0], 1e-6, 1e-7);
    assert_close(gta[1], gtb[1], 1e-6, 1e-7);
    /* a network whose output shape differs is no dynamics */
    assert_status(node_net_add_avgpool(n, NULL), NODE_OK);
    assert_status(node_net_system(n, B, &sys), NODE_EINVAL);
    free(ys); free(dL); free(g0a); free(g0b); free(gpa); free(gpb);
    node_net_free(n);
}

/* ---- the ODE-Net's ODE block: every parameter through a solve ---------------------

   odenet's block (examples/util/odenet_model.c): GN, act, ConcatConv 3 × 3 (bias, time
   channel), GN, act, ConcatConv, GN, here with smooth activations (softplus, tanh: no
   kinks for the differences to straddle), two channels in a group (as odenet's 64
   channels in 32 groups), 5 × 5 maps, batch 2.  The last GN's γ, β are small: slow
   dynamics, which RK4 follows closely at a few steps.  L = Σ c ⊙ y(1) of a fixed-step
   RK4 solve (fixed steps: the differences of an adaptive solve would see its step-size
   choices jump). */

#define OB_C 2

static node_net *ode_block(void)
{
    node_net *n = make(OB_C, 5, 5);
    assert_status(node_net_add_groupnorm(n, 1, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_SOFTPLUS, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, OB_C, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_groupnorm(n, 1, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_TANH, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, OB_C, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_groupnorm(n, 1, NULL), NODE_OK);
    node_net_init(n, 5);
    size_t conv = (OB_C + 1) * 9 * OB_C + OB_C, gn = 2 * OB_C;
    assert_int_equal(node_net_nparams(n), 3 * gn + 2 * conv);
    /* γ and β away from 1 and 0 (the last GN's at a fifth) */
    double *p = node_net_params(n), v[2 * OB_C];
    for (size_t g = 0; g < 3; g++) {
        fill(v, gn, 40 + g);
        for (size_t i = 0; i < gn; i++)
            p[g * (gn + conv) + i] = ((i < OB_C ? 1.0 : 0.0) + 0.5 * v[i]) * (g == 2 ? 0.2 : 1.0);
    }
    return n;
}

static double ode_loss(const node_system *sys, const double *y0, const double *c,
                       const node_options *o, double t0, double t1)
{
    size_t dim = sys->dim;
    double ts[2] = { t0, t1 }, *ys = alloc_d(2 * dim), L = 0.0;
    assert_status(node_odeint(sys, y0, ts, 2, ys, o, NULL), NODE_OK);
    for (size_t i = 0; i < dim; i++)
        L += c[i] * ys[dim + i];
    free(ys);
    return L;
}

/* dL/dθ, dL/dy0 of the solve (method `backprop`: exact backprop, else the adjoint)
   against central differences of L: every parameter (each GN's γ and β, each conv's
   weights — the time channel's included — and bias) every `every`-th entry, and every
   entry of y0; the adjoint's dL/dt0 and dL/dt1 too.  Backprop is the exact gradient of the
   discrete solve (tight); the adjoint that of the ODE (to RK4's error at step). */
static void check_ode_block(int backprop, double step, size_t every, double rtol)
{
    node_net *n = ode_block();
    const size_t B = 2, np = node_net_nparams(n);
    node_system sys;
    assert_status(node_net_system(n, B, &sys), NODE_OK);
    size_t dim = sys.dim;
    node_options o = node_options_default();
    o.method = NODE_RK4;
    o.step = step;
    double ts[2] = { 0.0, 1.0 };
    double *ys = alloc_d(2 * dim), *dL = alloc_d(2 * dim), *g0 = alloc_d(dim);
    double *gp = alloc_d(np), gt[2] = { 0.0, 0.0 };
    fill(ys, dim, 6);
    fill(dL + dim, dim, 7);
    assert_status(node_odeint(&sys, ys, ts, 2, ys, &o, NULL), NODE_OK);
    assert_status(backprop ? node_odeint_backprop(&sys, ts, 2, ys, dL, g0, gp, gt, &o, NULL)
                           : node_odeint_adjoint(&sys, ts, 2, ys, dL, g0, gp, gt, &o, NULL),
                  NODE_OK);
    const double h = 1e-6;
    double *th = node_net_params(n), *vs[2] = { th, ys }, *gs[2] = { gp, g0 };
    size_t ns[2] = { np, dim };
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < ns[w]; i += w == 0 ? every : 1) {
            double v0 = vs[w][i];
            vs[w][i] = v0 + h;
            double lp = ode_loss(&sys, ys, dL + dim, &o, 0.0, 1.0);
            vs[w][i] = v0 - h;
            double lm = ode_loss(&sys, ys, dL + dim, &o, 0.0, 1.0);
            vs[w][i] = v0;
            assert_close(gs[w][i], (lp - lm) / (2 * h), rtol, rtol * 1e-2);
        }
    if (!backprop) {   /* dL/dt1 = cᵀ f(1, y(1)); dL/dt0 through the time channel */
        const double ht = 1e-4;
        for (int k = 0; k < 2; k++) {
            double lp = ode_loss(&sys, ys, dL + dim, &o, k ? 0.0 : ht, 1.0 + (k ? ht : 0.0));
            double lm = ode_loss(&sys, ys, dL + dim, &o, k ? 0.0 : -ht, 1.0 - (k ? ht : 0.0));
            assert_close(gt[k], (lp - lm) / (2 * ht), rtol, rtol * 1e-2);
        }
    }
    free(ys); free(dL); free(g0); free(gp);
    node_net_free(n);
}

static void test_ode_block_backprop_fd(void **state)
{
    (void)state;
    check_ode_block(1, 0.25, 1, 1e-6);
}

static void test_ode_block_adjoint_fd(void **state)
{
    (void)state;
    check_ode_block(0, 1.0 / 8, 1, 1e-4);
}

/* A vjp right after a forward pass at the same (t, x) reuses its activations: the
   same bits as a vjp alone; a change of t, of x or of θ in between is seen (the
   results are those of a vjp alone at the new point). */
static void vjp_all(node_net *n, size_t B, double t, const double *x, const double *a,
                    double *out)
{
    size_t no = B * out_size(n), ni = B * in_size(n), np = node_net_nparams(n);
    assert_status(node_net_vjp(n, B, t, x, a, out, out + no, out + no + ni,
                               out + no + ni + np), NODE_OK);
}

static void test_vjp_after_forward_same_bits(void **state)
{
    (void)state;
    node_net *n = ode_block();
    const size_t B = 3, ni = B * in_size(n), no = B * out_size(n), np = node_net_nparams(n);
    const size_t m = no + ni + np + 1;
    double *x = alloc_d(ni), *a = alloc_d(no), *y = alloc_d(no);
    double *ref = alloc_d(m), *got = alloc_d(m), *cold = alloc_d(m);
    fill(x, ni, 21);
    fill(a, no, 22);
    double *th = node_net_params(n);
    for (int change = 0; change < 4; change++) {
        double t = 0.3;
        vjp_all(n, B, t, x, a, ref);   /* no forward before it */
        assert_status(node_net_forward(n, B, t, x, y), NODE_OK);
        if (change == 1)
            t = 0.3000001;
        else if (change == 2)
            x[ni / 2] += 1e-3;
        else if (change == 3)
            th[np - 1] += 1e-3;   /* the caller writes θ in place */
        vjp_all(n, B, t, x, a, got);
        vjp_all(n, B, t, x, a, cold);   /* after a vjp: no forward kept */
        assert_memory_equal(got, cold, m * sizeof *got);
        if (change == 0)
            assert_memory_equal(got, ref, m * sizeof *got);
        else   /* the new point's results, not the stale ones */
            assert_memory_not_equal(got, ref, m * sizeof *got);
        x[ni / 2] -= change == 2 ? 1e-3 : 0.0;
        th[np - 1] -= change == 3 ? 1e-3 : 0.0;
    }
    free(x); free(a); free(y); free(ref); free(got); free(cold);
    node_net_free(n);
}

/* Threads 1 and 2: forward and vjp_x bit for bit, parameter gradients to summation
   order.  (Without OpenMP both run on the caller's thread: trivially equal.) */
static void test_threads_same_results(void **state)
{
    (void)state;
    node_net *n = make(3, 6, 6);
    assert_status(node_net_add_conv2d(n, 8, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_groupnorm(n, 4, NULL), NODE_OK);
    assert_status(node_net_add_act(n, NODE_ACT_RELU, NULL), NODE_OK);
    assert_status(node_net_add_resblock(n, 2, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, 3, 3, 3, 1, 1, 0, 1, NULL), NODE_OK);
    node_net_init(n, 11);
    const size_t B = 13, sz = 3 * 36, np = node_net_nparams(n);
    double *x = alloc_d(B * sz), *a = alloc_d(B * sz);
    double *y[2], *gx[2], *gp[2], gt[2];
    fill(x, B * sz, 1);
    fill(a, B * sz, 2);
    for (int k = 0; k < 2; k++) {
        y[k] = alloc_d(B * sz);
        gx[k] = alloc_d(B * sz);
        gp[k] = alloc_d(np);
        assert_status(node_net_set_threads(n, k + 1), NODE_OK);
        assert_status(node_net_reserve(n, B), NODE_OK);
        node_test_alloc_begin(-1);
        assert_status(node_net_vjp(n, B, 0.5, x, a, y[k], gx[k], gp[k], &gt[k]), NODE_OK);
        assert_status(node_net_forward(n, B, 0.5, x, y[k]), NODE_OK);
        long allocs = node_test_alloc_end();
        if (!node_net_openmp())
            assert_int_equal(allocs, 0);   /* (an OpenMP runtime may allocate its pool) */
    }
    assert_memory_equal(y[0], y[1], B * sz * sizeof(double));
    assert_memory_equal(gx[0], gx[1], B * sz * sizeof(double));
    for (size_t i = 0; i < np; i++)
        assert_close(gp[1][i], gp[0][i], 1e-12, 1e-14);
    assert_close(gt[1], gt[0], 1e-12, 1e-14);
#ifdef _OPENMP
    /* called from inside a parallel region (by its main thread), where the nested
       team has one thread: every sample is still computed, the same numbers */
    assert_status(node_net_set_threads(n, 2), NODE_OK);
    memset(y[1], 0, B * sz * sizeof(double));
    memset(gx[1], 0, B * sz * sizeof(double));
#   pragma omp parallel num_threads(2)
    {
#       pragma omp master
        {
            assert_status(node_net_vjp(n, B, 0.5, x, a, y[1], gx[1], gp[1], &gt[1]), NODE_OK);
        }
    }
    assert_memory_equal(y[0], y[1], B * sz * sizeof(double));
    assert_memory_equal(gx[0], gx[1], B * sz * sizeof(double));
#endif
    /* 0 = the runtime's count: the same numbers */
    assert_status(node_net_set_threads(n, 0), NODE_OK);
    assert_status(node_net_forward(n, B, 0.5, x, y[1]), NODE_OK);
    assert_memory_equal(y[0], y[1], B * sz * sizeof(double));
    for (int k = 0; k < 2; k++) {
        free(y[k]); free(gx[k]); free(gp[k]);
    }
    free(x); free(a);
    node_net_free(n);
}

/* Once reserved for a batch, forward, vjp and the system allocate nothing for any
   batch up to it (one thread). */
static void test_no_allocation_once_reserved(void **state)
{
    (void)state;
    node_net *n = make(2, 5, 5);
    assert_status(node_net_add_conv2d(n, 4, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    assert_status(node_net_add_resblock(n, 2, NULL), NODE_OK);
    assert_status(node_net_add_conv2d(n, 2, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    node_net_init(n, 1);
    size_t np = node_net_nparams(n), sz = 50;
    double *x = alloc_d(20 * sz), *y = alloc_d(20 * sz), *gx = alloc_d(20 * sz), *gp = alloc_d(np);
    double gt;
    fill(x, 20 * sz, 3);
    node_system sys;
    assert_status(node_net_reserve(n, 20), NODE_OK);
    assert_status(node_net_system(n, 20, &sys), NODE_OK);
    node_test_alloc_begin(-1);
    for (size_t b = 1; b <= 20; b += 19) {
        assert_status(node_net_forward(n, b, 0.1, x, y), NODE_OK);
        assert_status(node_net_vjp(n, b, 0.1, x, x, y, gx, gp, &gt), NODE_OK);
    }
    assert_int_equal(sys.f(sys.ctx, 0.2, x, y), 0);
    assert_int_equal(sys.vjp(sys.ctx, 0.2, x, x, y, gx, gp, &gt), 0);
    assert_int_equal(node_test_alloc_end(), 0);
    /* a failed allocation is reported, and the network stays usable */
    node_net *m = make(2, 5, 5);
    assert_status(node_net_add_conv2d(m, 2, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);
    node_test_alloc_begin(0);
    assert_status(node_net_forward(m, 3, 0.0, x, y), NODE_ENOMEM);
    node_test_alloc_end();
    assert_status(node_net_forward(m, 3, 0.0, x, y), NODE_OK);
    node_net_free(m);
    free(x); free(y); free(gx); free(gp);
    node_net_free(n);
}

/* PyTorch's defaults: U(±1/√fan_in) for weights and biases (the time channel in
   fan_in), group norm's γ = 1, β = 0; the same values for a seed. */
static void test_init(void **state)
{
    (void)state;
    node_net *n = make(3, 4, 4);
    assert_status(node_net_add_conv2d(n, 5, 3, 3, 1, 1, 1, 1, NULL), NODE_OK);   /* fan 36 */
    assert_status(node_net_add_groupnorm(n, 5, NULL), NODE_OK);
    assert_status(node_net_add_flatten(n, NULL), NODE_OK);
    assert_status(node_net_add_dense(n, 7, 1, 0, NULL), NODE_OK);               /* fan 80 */
    node_net_init(n, 5);
    const double *p = node_net_params(n);
    size_t nc = 5 * 36 + 5, ng = 10, nd = 7 * 81, k = 0;
    assert_int_equal(node_net_nparams(n), nc + ng + nd);
    double mx = 0;
    for (size_t i = 0; i < nc; i++, k++) {
        assert_true(fabs(p[k]) <= 1.0 / 6.0);
        mx = fabs(p[k]) > mx ? fabs(p[k]) : mx;
    }
    assert_true(mx > 0.8 / 6.0);   /* the whole range is used */
    for (size_t i = 0; i < ng; i++, k++)
        assert_true(p[k] == (i < 5 ? 1.0 : 0.0));
    for (size_t i = 0; i < nd; i++, k++)
        assert_true(fabs(p[k]) <= 1.0 / sqrt(80.0));
    double *copy = alloc_d(k);
    memcpy(copy, p, k * sizeof *copy);
    node_net_init(n, 5);
    assert_memory_equal(copy, p, k * sizeof *copy);
    node_net_init(n, 6);
    assert_true(copy[0] != p[0]);
    free(copy);
    node_net_free(n);
}

static void test_refused_arguments(void **state)
{
    (void)state;
    node_error e;
    node_net *n = NULL;
    assert_status(node_net_create(NULL, 1, 1, 1, &e), NODE_EINVAL);
    assert_status(node_net_create(&n, 0, 1, 1, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "c is 0"));
    assert_null(n);
    assert_status(node_net_create(&n, 1, 1, (size_t)1 << 40, &e), NODE_EINVAL);
    n = make(3, 5, 7);
    assert_status(node_net_add_conv2d(n, 4, 3, 3, 1, 1, 1, 0, NULL), NODE_OK);
    size_t np = node_net_nparams(n);
    /* each refused, and n unchanged */
    assert_status(node_net_add_conv2d(n, 0, 3, 3, 1, 1, 1, 0, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "out_ch"));
    assert_status(node_net_add_conv2d(n, 2, 3, 3, 0, 1, 1, 0, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "stride"));
    assert_status(node_net_add_conv2d(n, 2, 8, 3, 1, 1, 1, 0, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "larger than the padded input"));
    assert_status(node_net_add_conv2d(n, 2, 3, 10, 1, 1, 1, 0, &e), NODE_EINVAL);
    assert_status(node_net_add_groupnorm(n, 3, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "groups = 3"));
    assert_status(node_net_add_groupnorm(n, 0, &e), NODE_EINVAL);
    assert_status(node_net_add_resblock(n, 3, &e), NODE_EINVAL);
    assert_status(node_net_add_act(n, (node_activation)77, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "not an activation"));
    assert_status(node_net_add_act(n, (node_activation)-1, &e), NODE_EINVAL);
    assert_status(node_net_add_dense(n, 0, 1, 0, &e), NODE_EINVAL);
    assert_status(node_net_add_dense(NULL, 3, 1, 0, &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "n is NULL"));
    assert_int_equal(node_net_nlayers(n), 1);
    assert_int_equal(node_net_nparams(n), np);
    /* evaluation */
    double x[4 * 35 * 2] = { 0 }, y[4 * 35 * 2];
    assert_status(node_net_forward(NULL, 1, 0, x, y), NODE_EINVAL);
    assert_status(node_net_forward(n, 0, 0, x, y), NODE_EINVAL);
    assert_status(node_net_forward(n, 1, 0, NULL, y), NODE_EINVAL);
    assert_status(node_net_forward(n, 1, 0, x, NULL), NODE_EINVAL);
    assert_status(node_net_vjp(n, 1, 0, x, NULL, y, y, NULL, NULL), NODE_EINVAL);
    assert_status(node_net_vjp(n, 1, 0, x, NULL, y, NULL, NULL, NULL), NODE_OK);
    assert_status(node_net_reserve(n, 0), NODE_EINVAL);
    assert_status(node_net_reserve(NULL, 1), NODE_EINVAL);
    assert_status(node_net_set_threads(n, -1), NODE_EINVAL);
    assert_status(node_net_set_threads(NULL, 1), NODE_EINVAL);
    node_system sys;
    assert_status(node_net_system(n, 1, &sys), NODE_EINVAL);   /* 4 channels out, 3 in */
    assert_status(node_net_system(n, 1, NULL), NODE_EINVAL);
    assert_status(node_net_system(NULL, 1, &sys), NODE_EINVAL);
    /* queries on NULL */
    assert_int_equal(node_net_nparams(NULL), 0);
    assert_null(node_net_params(NULL));
    assert_int_equal(node_net_nlayers(NULL), 0);
    size_t c = 9;
    node_net_out_shape(NULL, &c, NULL, NULL);
    assert_int_equal(c, 0);
    node_net_init(NULL, 1);
    node_net_free(NULL);
    node_net_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_vjp_stride_pad_odd),
        cmocka_unit_test(test_dense_groupnorm_pool_vjp),
        cmocka_unit_test(test_resblock_vjp),
        cmocka_unit_test(test_stack_vjp),
        cmocka_unit_test(test_conv_against_naive_loop),
        cmocka_unit_test(test_groupnorm_formula),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_dense_net_equals_mlp),
        cmocka_unit_test(test_ode_adjoint_vs_backprop),
        cmocka_unit_test(test_ode_block_backprop_fd),
        cmocka_unit_test(test_ode_block_adjoint_fd),
        cmocka_unit_test(test_vjp_after_forward_same_bits),
        cmocka_unit_test(test_threads_same_results),
        cmocka_unit_test(test_no_allocation_once_reserved),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_refused_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
