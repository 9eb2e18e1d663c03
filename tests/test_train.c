/* test_train.c — losses (against finite differences, masked and not), the four
 * optimizers' first steps against values worked out by hand from PyTorch's
 * documented update rules, clipping, schedules, argument checks, allocation
 * behaviour, and a short adjoint training run that must drive the loss down.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* ---- losses ---------------------------------------------------------------------- */

typedef node_status (*loss_fn)(size_t, const double *, const double *,
                               const unsigned char *, double *, double *);

/* Central differences of the loss in every entry of pred vs the analytic gradient.
   The data keep every residual away from 0, where MAE has its kink. */
static void check_loss_gradient(loss_fn fn, const unsigned char *mask)
{
    enum { N = 12 };
    double pred[N], target[N], grad[N];
    for (int i = 0; i < N; i++) {
        pred[i] = sin(1.3 * i + 0.2) * 1.5;
        target[i] = cos(0.7 * i) + (i % 2 ? 0.31 : -0.27);
    }
    double L;
    assert_status(fn(N, pred, target, mask, &L, grad), NODE_OK);
    const double h = 1e-6;
    for (int i = 0; i < N; i++) {
        double save = pred[i], Lp, Lm;
        pred[i] = save + h;
        assert_status(fn(N, pred, target, mask, &Lp, NULL), NODE_OK);
        pred[i] = save - h;
        assert_status(fn(N, pred, target, mask, &Lm, NULL), NODE_OK);
        pred[i] = save;
        assert_close(grad[i], (Lp - Lm) / (2 * h), 1e-6, 1e-9);
        if (mask && !mask[i])
            assert_true(grad[i] == 0.0);
    }
}

static const unsigned char some_mask[12] = { 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1 };

static void test_loss_mse_gradient_matches_finite_differences(void **state)
{
    (void)state;
    check_loss_gradient(node_loss_mse, NULL);
    check_loss_gradient(node_loss_mse, some_mask);
}

static void test_loss_mae_gradient_matches_finite_differences(void **state)
{
    (void)state;
    check_loss_gradient(node_loss_mae, NULL);
    check_loss_gradient(node_loss_mae, some_mask);
}

static void test_loss_values_by_hand(void **state)
{
    (void)state;
    const double p[4] = { 1, 2, 3, 4 }, y[4] = { 0, 2, 5, 3.5 };
    const unsigned char mask[4] = { 1, 1, 0, 1 };
    double L, g[4];
    /* residuals 1, 0, -2, 0.5 */
    assert_status(node_loss_mse(4, p, y, NULL, &L, g), NODE_OK);
    assert_close(L, (1 + 0 + 4 + 0.25) / 4, 1e-15, 0);
    assert_close(g[2], 2 * -2.0 / 4, 1e-15, 0);
    assert_status(node_loss_mae(4, p, y, NULL, &L, g), NODE_OK);
    assert_close(L, (1 + 0 + 2 + 0.5) / 4, 1e-15, 0);
    assert_close(g[0], 0.25, 1e-15, 0);
    assert_true(g[1] == 0.0);          /* a tie: PyTorch's sign(0) = 0 */
    assert_close(g[2], -0.25, 1e-15, 0);
    /* masked: mean over the 3 observed entries; the masked one has no gradient */
    assert_status(node_loss_mse(4, p, y, mask, &L, g), NODE_OK);
    assert_close(L, (1 + 0 + 0.25) / 3, 1e-15, 0);
    assert_true(g[2] == 0.0);
    assert_close(g[3], 2 * 0.5 / 3, 1e-15, 0);
    assert_status(node_loss_mae(4, p, y, mask, &L, g), NODE_OK);
    assert_close(L, (1 + 0 + 0.5) / 3, 1e-15, 0);
    assert_close(g[3], 1.0 / 3, 1e-15, 0);
}

static void test_loss_all_masked_is_zero(void **state)
{
    (void)state;
    const double p[3] = { 1, 2, 3 }, y[3] = { 3, 2, 1 };
    const unsigned char none[3] = { 0, 0, 0 };
    double L = -1, g[3] = { 7, 7, 7 };
    assert_status(node_loss_mse(3, p, y, none, &L, g), NODE_OK);
    assert_true(L == 0.0 && g[0] == 0.0 && g[1] == 0.0 && g[2] == 0.0);
    L = -1;
    g[1] = 7;
    assert_status(node_loss_mae(3, p, y, none, &L, g), NODE_OK);
    assert_true(L == 0.0 && g[1] == 0.0);
}

static void test_loss_rejects_invalid_arguments(void **state)
{
    (void)state;
    const double p[2] = { 1, 2 };
    double L, g[2];
    loss_fn fns[2] = { node_loss_mse, node_loss_mae };
    for (int k = 0; k < 2; k++) {
        assert_status(fns[k](0, p, p, NULL, &L, g), NODE_EINVAL);
        assert_status(fns[k](2, NULL, p, NULL, &L, g), NODE_EINVAL);
        assert_status(fns[k](2, p, NULL, NULL, &L, g), NODE_EINVAL);
        assert_status(fns[k](2, p, p, NULL, NULL, g), NODE_EINVAL);
    }
}

/* ---- optimizers: first steps by hand ---------------------------------------------- */

static node_optim *make(node_optim_config c, size_t n)
{
    node_optim *o = NULL;
    assert_status(node_optim_create(&o, n, &c), NODE_OK);
    assert_non_null(o);
    return o;
}

static node_optim_config defaults(node_optim_kind k)
{
    node_optim_config c;
    assert_status(node_optim_defaults(k, &c), NODE_OK);
    return c;
}

static void test_optim_defaults_are_pytorchs(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_RMSPROP);
    assert_close(c.lr, 1e-2, 0, 0);
    assert_close(c.alpha, 0.99, 0, 0);
    assert_close(c.eps, 1e-8, 0, 0);
    assert_true(c.momentum == 0 && c.weight_decay == 0 && !c.centered);
    c = defaults(NODE_OPTIM_ADAM);
    assert_close(c.lr, 1e-3, 0, 0);
    assert_close(c.beta1, 0.9, 0, 0);
    assert_close(c.beta2, 0.999, 0, 0);
    assert_true(c.weight_decay == 0 && !c.amsgrad);
    c = defaults(NODE_OPTIM_ADAMW);
    assert_close(c.weight_decay, 1e-2, 0, 0);
    c = defaults(NODE_OPTIM_SGD);
    assert_true(c.momentum == 0 && c.dampening == 0 && !c.nesterov && c.weight_decay == 0);
    node_optim_kind k;
    for (int i = NODE_OPTIM_SGD; i <= NODE_OPTIM_ADAMW; i++) {
        assert_status(node_optim_parse(node_optim_name((node_optim_kind)i), &k), NODE_OK);
        assert_int_equal(k, i);
    }
    assert_status(node_optim_parse("adagrad", &k), NODE_EINVAL);
    assert_null(node_optim_name((node_optim_kind)9));
}

static void test_sgd_plain_step(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_SGD);
    c.lr = 0.1;
    node_optim *o = make(c, 2);
    double th[2] = { 1, -2 };
    const double g[2] = { 0.5, -1 };
    assert_status(node_optim_step(o, th, g), NODE_OK);
    assert_close(th[0], 0.95, 1e-15, 0);
    assert_close(th[1], -1.9, 1e-15, 0);
    node_optim_free(o);
}

static void test_sgd_momentum_dampening_weight_decay_by_hand(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_SGD);
    c.lr = 0.1;
    c.momentum = 0.9;
    c.dampening = 0.5;
    c.weight_decay = 0.1;
    node_optim *o = make(c, 1);
    double th = 1;
    const double g[3] = { 1, 2, -1 };
    /* t1: g = 1 + 0.1·1 = 1.1;  b = g (no dampening on the first step);  θ = 1 - 0.11 */
    assert_status(node_optim_step(o, &th, &g[0]), NODE_OK);
    assert_close(th, 0.89, 1e-14, 0);
    /* t2: g = 2 + 0.089 = 2.089;  b = 0.9·1.1 + 0.5·2.089 = 2.0345;  θ = 0.89 - 0.20345 */
    assert_status(node_optim_step(o, &th, &g[1]), NODE_OK);
    assert_close(th, 0.68655, 1e-14, 0);
    /* t3: g = -1 + 0.068655 = -0.931345;  b = 0.9·2.0345 - 0.5·0.931345 = 1.3653775;
       θ = 0.68655 - 0.13653775 */
    assert_status(node_optim_step(o, &th, &g[2]), NODE_OK);
    assert_close(th, 0.55001225, 1e-13, 0);
    node_optim_free(o);
}

static void test_sgd_nesterov_by_hand(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_SGD);
    c.lr = 0.1;
    c.momentum = 0.9;
    c.nesterov = 1;
    node_optim *o = make(c, 1);
    double th = 1;
    const double g[2] = { 1, 2 };
    /* t1: b = 1;  g + μb = 1.9;  θ = 1 - 0.19 */
    assert_status(node_optim_step(o, &th, &g[0]), NODE_OK);
    assert_close(th, 0.81, 1e-14, 0);
    /* t2: b = 0.9 + 2 = 2.9;  g + μb = 2 + 2.61 = 4.61;  θ = 0.81 - 0.461 */
    assert_status(node_optim_step(o, &th, &g[1]), NODE_OK);
    assert_close(th, 0.349, 1e-14, 0);
    node_optim_free(o);
}

static void test_rmsprop_defaults_by_hand(void **state)
{
    (void)state;
    node_optim *o = make(defaults(NODE_OPTIM_RMSPROP), 1);   /* lr 0.01, α 0.99 */
    double th = 0.5;
    const double g[2] = { 1, 2 };
    /* t1: v = 0.01·1 = 0.01;  θ = 0.5 - 0.01·1/(0.1 + 1e-8) */
    assert_status(node_optim_step(o, &th, &g[0]), NODE_OK);
    double want = 0.5 - 0.01 / (0.1 + 1e-8);
    assert_close(th, want, 1e-14, 0);
    /* t2: v = 0.99·0.01 + 0.01·4 = 0.0499;  θ -= 0.01·2/(√0.0499 + 1e-8) */
    assert_status(node_optim_step(o, &th, &g[1]), NODE_OK);
    want -= 0.02 / (sqrt(0.0499) + 1e-8);
    assert_close(th, want, 1e-14, 0);
    node_optim_free(o);
}

static void test_rmsprop_centered_momentum_eps_outside_sqrt(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_RMSPROP);
    c.lr = 0.1;
    c.alpha = 0.9;
    c.momentum = 0.5;
    c.centered = 1;
    c.eps = 0.1;   /* large, so that where it goes shows */
    node_optim *o = make(c, 1);
    double th = 1;
    const double g[2] = { 1, 3 };
    /* t1: v = 0.1;  ḡ = 0.1;  ṽ = 0.1 - 0.01 = 0.09;  g/(√ṽ + ε) = 1/0.4 = 2.5;
       b = 2.5;  θ = 1 - 0.25 */
    assert_status(node_optim_step(o, &th, &g[0]), NODE_OK);
    assert_close(th, 0.75, 1e-14, 0);
    /* t2: v = 0.09 + 0.9 = 0.99;  ḡ = 0.09 + 0.3 = 0.39;  ṽ = 0.99 - 0.1521 = 0.8379;
       b = 0.5·2.5 + 3/(√0.8379 + 0.1);  θ = 0.75 - 0.1·b */
    assert_status(node_optim_step(o, &th, &g[1]), NODE_OK);
    assert_close(th, 0.75 - 0.1 * (1.25 + 3 / (sqrt(0.8379) + 0.1)), 1e-14, 0);
    node_optim_free(o);
}

static void test_adam_bias_correction_and_eps_by_hand(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_ADAM);
    c.lr = 0.1;
    c.eps = 0.1;   /* large: ε after the bias-corrected √ shows in every digit */
    node_optim *o = make(c, 2);
    double th[2] = { 0, 3 };
    const double g[3][2] = { { 1, 0 }, { -2, 0 }, { 0.5, 0 } };
    /* t1: m = 0.1, v = 0.001;  m̂ = 1, v̂ = 1;  θ = -0.1·1/(1 + 0.1) */
    assert_status(node_optim_step(o, th, g[0]), NODE_OK);
    double want = -0.1 / 1.1;
    assert_close(th[0], want, 1e-14, 0);
    assert_close(th[1], 3, 0, 0);          /* zero gradient: m = v = 0, no move */
    /* t2: m = 0.09 - 0.2 = -0.11;  v = 0.000999 + 0.004 = 0.004999;
       m̂ = -0.11/0.19;  v̂ = 0.004999/0.001999 */
    assert_status(node_optim_step(o, th, g[1]), NODE_OK);
    want -= 0.1 * (-0.11 / 0.19) / (sqrt(0.004999 / 0.001999) + 0.1);
    assert_close(th[0], want, 1e-13, 0);
    /* t3: m = -0.099 + 0.05 = -0.049;  v = 0.004994001 + 0.00025 = 0.005244001;
       1 - β₁³ = 0.271;  1 - β₂³ = 0.002997001 */
    assert_status(node_optim_step(o, th, g[2]), NODE_OK);
    want -= 0.1 * (-0.049 / 0.271) / (sqrt(0.005244001 / 0.002997001) + 0.1);
    assert_close(th[0], want, 1e-12, 0);
    long t;
    assert_status(node_optim_get_step(o, &t), NODE_OK);
    assert_int_equal(t, 3);
    node_optim_free(o);
}

static void test_adam_amsgrad_keeps_max_second_moment(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_ADAM);
    c.lr = 0.1;
    c.beta2 = 0.5;   /* so that v falls on the second step */
    c.amsgrad = 1;
    node_optim *o = make(c, 1);
    double th = 0;
    const double g[2] = { 2, 0.1 };
    /* t1: m = 0.2, v = 2, v_max = 2;  m̂ = 2, v̂ = 2/0.5 = 4;  θ = -0.1·2/(2 + 1e-8) */
    assert_status(node_optim_step(o, &th, &g[0]), NODE_OK);
    double want = -0.2 / (2 + 1e-8);
    assert_close(th, want, 1e-14, 0);
    /* t2: m = 0.18 + 0.01 = 0.19, m̂ = 0.19/0.19 = 1;  v = 1 + 0.005 = 1.005 < v_max = 2;
       v̂ = 2/(1 - 0.25) */
    assert_status(node_optim_step(o, &th, &g[1]), NODE_OK);
    want -= 0.1 * 1 / (sqrt(2 / 0.75) + 1e-8);
    assert_close(th, want, 1e-14, 0);
    node_optim_free(o);
}

static void test_adam_l2_vs_adamw_decoupled_decay(void **state)
{
    (void)state;
    /* Adam with λ = 0.5 at θ = 1, gradient 1: g = 1.5, m̂ = 1.5, v̂ = 2.25;
       θ = 1 - 0.1·1.5/(1.5 + 1e-8). */
    node_optim_config c = defaults(NODE_OPTIM_ADAM);
    c.lr = 0.1;
    c.weight_decay = 0.5;
    node_optim *o = make(c, 1);
    double th = 1;
    const double one = 1;
    assert_status(node_optim_step(o, &th, &one), NODE_OK);
    assert_close(th, 1 - 0.1 * 1.5 / (1.5 + 1e-8), 1e-14, 0);
    node_optim_free(o);
    /* AdamW: θ = 1·(1 - 0.1·0.5) = 0.95 first, then Adam on the raw gradient:
       m̂ = 1, v̂ = 1;  θ = 0.95 - 0.1/(1 + 1e-8). */
    c.kind = NODE_OPTIM_ADAMW;
    o = make(c, 1);
    th = 1;
    assert_status(node_optim_step(o, &th, &one), NODE_OK);
    assert_close(th, 0.95 - 0.1 / (1 + 1e-8), 1e-14, 0);
    node_optim_free(o);
}

static void test_optim_reset_and_lr(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_ADAM);
    node_optim *o = make(c, 3), *fresh = make(c, 3);
    double a[3] = { 1, 2, 3 }, b[3] = { 1, 2, 3 };
    const double g[3] = { 0.3, -0.2, 0.1 }, g2[3] = { -1, 4, 0.5 };
    for (int i = 0; i < 3; i++)
        assert_status(node_optim_step(o, a, g), NODE_OK);
    double lr;
    assert_status(node_optim_set_lr(o, 0.25), NODE_OK);
    assert_status(node_optim_get_lr(o, &lr), NODE_OK);
    assert_close(lr, 0.25, 0, 0);
    assert_status(node_optim_set_lr(o, -1), NODE_EINVAL);
    assert_status(node_optim_set_lr(o, NAN), NODE_EINVAL);
    assert_status(node_optim_get_lr(o, &lr), NODE_OK);
    assert_close(lr, 0.25, 0, 0);
    assert_status(node_optim_reset(o), NODE_OK);
    long t = -1;
    assert_status(node_optim_get_step(o, &t), NODE_OK);
    assert_int_equal(t, 0);
    /* after reset: the same move as a fresh optimizer with the same rate */
    assert_status(node_optim_set_lr(fresh, 0.25), NODE_OK);
    memcpy(b, a, sizeof a);
    assert_status(node_optim_step(o, a, g2), NODE_OK);
    assert_status(node_optim_step(fresh, b, g2), NODE_OK);
    for (int i = 0; i < 3; i++)
        assert_true(a[i] == b[i]);
    node_optim_free(o);
    node_optim_free(fresh);
}

static void test_optim_step_allocates_nothing(void **state)
{
    (void)state;
    for (int k = NODE_OPTIM_SGD; k <= NODE_OPTIM_ADAMW; k++) {
        node_optim_config c = defaults((node_optim_kind)k);
        c.momentum = k <= NODE_OPTIM_RMSPROP ? 0.9 : 0;
        c.centered = 1;
        c.amsgrad = 1;
        node_optim *o = make(c, 100);
        double th[100], g[100];
        for (int i = 0; i < 100; i++) {
            th[i] = i * 0.01;
            g[i] = sin(i);
        }
        node_test_alloc_begin(-1);
        for (int it = 0; it < 5; it++)
            assert_status(node_optim_step(o, th, g), NODE_OK);
        double n;
        assert_status(node_clip_grad_norm(100, g, 1.0, &n), NODE_OK);
        assert_status(node_optim_reset(o), NODE_OK);
        assert_int_equal(node_test_alloc_end(), 0);
        node_optim_free(o);
    }
}

static void test_optim_create_out_of_memory_leaks_nothing(void **state)
{
    (void)state;
    node_optim_config c = defaults(NODE_OPTIM_ADAM);
    for (long k = 0;; k++) {
        node_optim *o = NULL;
        node_test_alloc_begin(k);
        node_status st = node_optim_create(&o, 50, &c);
        node_optim_free(o);
        long n = node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
        if (st == NODE_OK) {
            assert_true(n <= k);
            break;
        }
        assert_status(st, NODE_ENOMEM);
        assert_null(o);
    }
}

static void test_optim_rejects_invalid_arguments(void **state)
{
    (void)state;
    node_optim *o = NULL;
    node_optim_config c = defaults(NODE_OPTIM_SGD), bad;
    assert_status(node_optim_defaults((node_optim_kind)42, &c), NODE_EINVAL);
    assert_status(node_optim_defaults(NODE_OPTIM_SGD, NULL), NODE_EINVAL);
    assert_status(node_optim_create(NULL, 3, &c), NODE_EINVAL);
    assert_status(node_optim_create(&o, 3, NULL), NODE_EINVAL);
    assert_status(node_optim_create(&o, 0, &c), NODE_EINVAL);
    bad = c; bad.lr = -1;              assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.lr = INFINITY;        assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.weight_decay = -0.1;  assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.momentum = -0.5;      assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.nesterov = 1;         assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.nesterov = 1; bad.momentum = 0.9; bad.dampening = 0.1;
    assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.kind = (node_optim_kind)7; assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    c = defaults(NODE_OPTIM_RMSPROP);
    bad = c; bad.alpha = 1.0;          assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.eps = -1e-8;          assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    c = defaults(NODE_OPTIM_ADAMW);
    bad = c; bad.beta1 = 1.0;          assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.beta2 = -0.1;         assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    bad = c; bad.beta2 = NAN;          assert_status(node_optim_create(&o, 3, &bad), NODE_EINVAL);
    assert_null(o);

    o = make(c, 2);
    double th[2] = { 1, 2 }, g[2] = { 0, 0 }, lr;
    long t;
    assert_status(node_optim_step(NULL, th, g), NODE_EINVAL);
    assert_status(node_optim_step(o, NULL, g), NODE_EINVAL);
    assert_status(node_optim_step(o, th, NULL), NODE_EINVAL);
    assert_status(node_optim_get_step(o, &t), NODE_OK);
    assert_int_equal(t, 0);                       /* failed calls changed nothing */
    assert_status(node_optim_set_lr(NULL, 0.1), NODE_EINVAL);
    assert_status(node_optim_get_lr(NULL, &lr), NODE_EINVAL);
    assert_status(node_optim_get_lr(o, NULL), NODE_EINVAL);
    assert_status(node_optim_get_step(NULL, &t), NODE_EINVAL);
    assert_status(node_optim_reset(NULL), NODE_EINVAL);
    assert_status(node_optim_parse(NULL, &c.kind), NODE_EINVAL);
    node_optim_free(o);
    node_optim_free(NULL);
}

/* ---- clipping and schedules ---------------------------------------------------- */

static void test_clip_grad_norm(void **state)
{
    (void)state;
    double g[2] = { 3, 4 }, n = 0;
    /* ‖g‖ = 5 > 1: scaled by 1/(5 + 1e-6), as torch.nn.utils.clip_grad_norm_ */
    assert_status(node_clip_grad_norm(2, g, 1.0, &n), NODE_OK);
    assert_close(n, 5, 1e-15, 0);
    assert_close(g[0], 3 / (5 + 1e-6), 1e-15, 0);
    assert_close(g[1], 4 / (5 + 1e-6), 1e-15, 0);
    /* below the limit: untouched */
    double h[2] = { 3, 4 };
    assert_status(node_clip_grad_norm(2, h, 10.0, &n), NODE_OK);
    assert_true(h[0] == 3 && h[1] == 4);
    assert_status(node_clip_grad_norm(2, h, INFINITY, NULL), NODE_OK);
    /* huge entries: no overflow in the norm */
    double big[2] = { 3e200, -4e200 };
    assert_status(node_clip_grad_norm(2, big, 1.0, &n), NODE_OK);
    assert_close(n, 5e200, 1e-14, 0);
    assert_close(big[1], -0.8, 1e-12, 0);
    /* non-finite: reported, gradient left alone */
    double bad[3] = { 1, NAN, 2 };
    assert_status(node_clip_grad_norm(3, bad, 1.0, &n), NODE_ENONFINITE);
    assert_true(isnan(n) && bad[0] == 1 && bad[2] == 2);
    double zero[2] = { 0, 0 };
    assert_status(node_clip_grad_norm(2, zero, 1.0, &n), NODE_OK);
    assert_true(n == 0 && zero[0] == 0);
    assert_status(node_clip_grad_norm(0, g, 1.0, &n), NODE_EINVAL);
    assert_status(node_clip_grad_norm(2, NULL, 1.0, &n), NODE_EINVAL);
    assert_status(node_clip_grad_norm(2, g, 0.0, &n), NODE_EINVAL);
    assert_status(node_clip_grad_norm(2, g, NAN, &n), NODE_EINVAL);
}

static void test_schedules_by_hand(void **state)
{
    (void)state;
    double lr;
    node_sched s = node_sched_constant(0.3);
    assert_status(node_sched_lr(&s, 1000, &lr), NODE_OK);
    assert_close(lr, 0.3, 0, 0);

    s.kind = NODE_SCHED_STEP;
    s.lr0 = 1;
    s.step_size = 3;
    s.gamma = 0.5;
    const double want_step[8] = { 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25 };
    for (long it = 0; it < 8; it++) {
        assert_status(node_sched_lr(&s, it, &lr), NODE_OK);
        assert_close(lr, want_step[it], 1e-15, 0);
    }

    s.kind = NODE_SCHED_COSINE;
    s.lr0 = 1;
    s.lr_min = 0.1;
    s.T = 4;
    assert_status(node_sched_lr(&s, 0, &lr), NODE_OK);
    assert_close(lr, 1, 1e-15, 0);
    assert_status(node_sched_lr(&s, 1, &lr), NODE_OK);
    assert_close(lr, 0.1 + 0.9 * (1 + sqrt(0.5)) / 2, 1e-15, 0);
    assert_status(node_sched_lr(&s, 2, &lr), NODE_OK);
    assert_close(lr, 0.55, 1e-15, 0);
    assert_status(node_sched_lr(&s, 4, &lr), NODE_OK);
    assert_close(lr, 0.1, 1e-15, 0);
    assert_status(node_sched_lr(&s, 40, &lr), NODE_OK);   /* stays at lr_min */
    assert_close(lr, 0.1, 1e-15, 0);

    node_optim *o = make(defaults(NODE_OPTIM_SGD), 1);
    assert_status(node_optim_schedule(o, &s, 2), NODE_OK);
    assert_status(node_optim_get_lr(o, &lr), NODE_OK);
    assert_close(lr, 0.55, 1e-15, 0);

    node_sched bad = s;
    bad.T = 0;
    assert_status(node_sched_lr(&bad, 1, &lr), NODE_EINVAL);
    assert_status(node_optim_schedule(o, &bad, 1), NODE_EINVAL);
    bad = s;
    bad.kind = NODE_SCHED_STEP;
    bad.step_size = 0;
    assert_status(node_sched_lr(&bad, 1, &lr), NODE_EINVAL);
    bad.step_size = 2;
    bad.gamma = -1;
    assert_status(node_sched_lr(&bad, 1, &lr), NODE_EINVAL);
    bad = s;
    bad.lr0 = -1;
    assert_status(node_sched_lr(&bad, 1, &lr), NODE_EINVAL);
    bad = s;
    bad.kind = (node_sched_kind)9;
    assert_status(node_sched_lr(&bad, 1, &lr), NODE_EINVAL);
    assert_status(node_sched_lr(NULL, 1, &lr), NODE_EINVAL);
    assert_status(node_sched_lr(&s, 1, NULL), NODE_EINVAL);
    assert_status(node_optim_schedule(NULL, &s, 1), NODE_EINVAL);
    node_optim_free(o);
}

/* ---- a short training run ----------------------------------------------------------- */

/* y' = -θ y for a state of 3 independent components (a batch of 3 samples). */
static int decay_f(void *ctx, double t, const double *y, double *dydt)
{
    (void)t;
    double th = *(const double *)ctx;
    for (int i = 0; i < 3; i++)
        dydt[i] = -th * y[i];
    return 0;
}

static int decay_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                     double *vjp_y, double *vjp_p, double *vjp_t)
{
    (void)t;
    double th = *(const double *)ctx, s = 0;
    for (int i = 0; i < 3; i++) {
        if (dydt)
            dydt[i] = -th * y[i];
        vjp_y[i] = -th * a[i];
        s -= a[i] * y[i];
    }
    if (vjp_p)
        *vjp_p = s;
    if (vjp_t)
        *vjp_t = 0;
    return 0;
}

static void test_adjoint_training_learns_decay_rate(void **state)
{
    (void)state;
    enum { NT = 8, D = 3 };
    const double y0[D] = { 1, -2, 0.5 }, theta_true = 0.7;
    double ts[NT], data[NT * D], ys[NT * D], dLdys[NT * D], dLdy0[D], grad, L, L0 = 0;
    for (int i = 0; i < NT; i++) {
        ts[i] = 0.25 * i;
        for (int j = 0; j < D; j++)
            data[i * D + j] = y0[j] * exp(-theta_true * ts[i]);
    }
    double theta = 0.1;
    node_system sys = { .dim = D, .nparams = 1, .ctx = &theta, .f = decay_f, .vjp = decay_vjp };
    node_solver *s = NULL;
    assert_status(node_solver_create(&s), NODE_OK);
    node_optim_config c = defaults(NODE_OPTIM_ADAM);
    c.lr = 0.05;
    node_optim *o = make(c, 1);
    for (int it = 0; it < 60; it++) {
        assert_status(node_solver_odeint(s, &sys, y0, ts, NT, ys, NULL, NULL), NODE_OK);
        assert_status(node_loss_mse(NT * D, ys, data, NULL, &L, dLdys), NODE_OK);
        if (it == 0)
            L0 = L;
        assert_status(node_solver_adjoint(s, &sys, ts, NT, ys, dLdys, dLdy0, &grad, NULL,
                                          NULL, NULL), NODE_OK);
        assert_status(node_optim_step(o, &theta, &grad), NODE_OK);
    }
    assert_status(node_solver_odeint(s, &sys, y0, ts, NT, ys, NULL, NULL), NODE_OK);
    assert_status(node_loss_mse(NT * D, ys, data, NULL, &L, NULL), NODE_OK);
    /* 60 Adam steps of 0.05 take θ from 0.1 to near 0.7: the loss falls >= 100×. */
    assert_true(L < L0 / 100);
    assert_close(theta, theta_true, 0.05, 0);
    node_optim_free(o);
    node_solver_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_mse_gradient_matches_finite_differences),
        cmocka_unit_test(test_loss_mae_gradient_matches_finite_differences),
        cmocka_unit_test(test_loss_values_by_hand),
        cmocka_unit_test(test_loss_all_masked_is_zero),
        cmocka_unit_test(test_loss_rejects_invalid_arguments),
        cmocka_unit_test(test_optim_defaults_are_pytorchs),
        cmocka_unit_test(test_sgd_plain_step),
        cmocka_unit_test(test_sgd_momentum_dampening_weight_decay_by_hand),
        cmocka_unit_test(test_sgd_nesterov_by_hand),
        cmocka_unit_test(test_rmsprop_defaults_by_hand),
        cmocka_unit_test(test_rmsprop_centered_momentum_eps_outside_sqrt),
        cmocka_unit_test(test_adam_bias_correction_and_eps_by_hand),
        cmocka_unit_test(test_adam_amsgrad_keeps_max_second_moment),
        cmocka_unit_test(test_adam_l2_vs_adamw_decoupled_decay),
        cmocka_unit_test(test_optim_reset_and_lr),
        cmocka_unit_test(test_optim_step_allocates_nothing),
        cmocka_unit_test(test_optim_create_out_of_memory_leaks_nothing),
        cmocka_unit_test(test_optim_rejects_invalid_arguments),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_schedules_by_hand),
        cmocka_unit_test(test_adjoint_training_learns_decay_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
