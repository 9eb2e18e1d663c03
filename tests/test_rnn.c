/* test_rnn.c — node_rnn (include/libnode/seq.h): one tanh step and one GRU step worked
 * by hand (the GRU also against torch.nn.GRUCell's values), then for every cell kind:
 * backprop through time against central differences of L = Σ w ⊙ hs for every
 * parameter, h0 and x over a masked batch, masked steps, batched = row by row (small,
 * and wide enough for the transposed weight-gradient product), PyTorch's
 * initialisation bounds, allocation-free reuse, refused arguments, and the
 * allocation-failure sweep.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static void assert_message(const node_error *e, const char *want)
{
    if (!strstr(e->message, want))
        print_message("message \"%s\" lacks \"%s\"\n", e->message, want);
    assert_non_null(strstr(e->message, want));
}

/* The kinds every generic test runs over (cmocka's prestate). */
static node_cell_kind KIND_TANH = NODE_CELL_TANH, KIND_GRU = NODE_CELL_GRU;

static node_cell_kind kind_of(void **state) { return *(node_cell_kind *)*state; }

static node_rnn *make(node_cell_kind kind, size_t nin, size_t nh, uint64_t seed)
{
    node_rnn *r = NULL;
    assert_status(node_rnn_create(&r, kind, nin, nh, NULL), NODE_OK);
    node_rnn_init(r, seed);
    return r;
}

/* ---- values ------------------------------------------------------------------------ */

static void test_rnn_one_step_by_hand(void **state)
{
    (void)state;
    node_rnn *r = NULL;
    node_error e;
    assert_status(node_rnn_create(&r, NODE_CELL_TANH, 2, 2, &e), NODE_OK);
    assert_int_equal(e.status, NODE_OK);
    assert_string_equal(e.message, "");
    assert_int_equal(node_rnn_nparams(r), 2 * 4 + 2);
    assert_int_equal(node_rnn_nin(r), 2);
    assert_int_equal(node_rnn_nhidden(r), 2);
    double *p = node_rnn_params(r);
    for (size_t i = 0; i < 10; i++)
        assert_true(p[i] == 0);   /* zero until initialised */
    /* W = [W_x | W_h] row-major, then b */
    const double theta[10] = { 0.1, 0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.05, -0.1 };
    memcpy(p, theta, sizeof theta);
    const double x[2] = { 1, -2 }, h0[2] = { 0.5, -0.25 };
    double hs[4];
    assert_status(node_rnn_forward(r, 1, 1, x, NULL, h0, hs), NODE_OK);
    /* a = b + W_x x + W_h h: 0.05 + 0.1 − 0.4 + 0.15 − 0.1 = −0.2;
                              −0.1 − 0.5 − 1.2 + 0.35 + 0.2 = −1.25 */
    assert_true(hs[0] == 0.5 && hs[1] == -0.25);
    assert_close(hs[2], tanh(-0.2), 1e-15, 0);
    assert_close(hs[3], tanh(-1.25), 1e-15, 0);

    /* h0 NULL: zeros, a = b + W_x x = 0.05 − 0.3, −0.1 − 1.7 */
    assert_status(node_rnn_forward(r, 1, 1, x, NULL, NULL, hs), NODE_OK);
    assert_true(hs[0] == 0 && hs[1] == 0);
    assert_close(hs[2], tanh(-0.25), 1e-15, 0);
    assert_close(hs[3], tanh(-1.8), 1e-15, 0);

    /* backward of L = h1[0] from h0: da = 1 − tanh²(−0.2) on unit 0 only */
    assert_status(node_rnn_forward(r, 1, 1, x, NULL, h0, hs), NODE_OK);
    const double dhs[4] = { 0, 0, 1, 0 };
    double dh0[2], dx[2], dp[10];
    assert_status(node_rnn_backward(r, 1, 1, x, NULL, hs, dhs, dh0, dx, dp), NODE_OK);
    double da = 1 - tanh(-0.2) * tanh(-0.2);
    const double want_dp[10] = { da * 1, da * -2, da * 0.5, da * -0.25, 0, 0, 0, 0, da, 0 };
    for (size_t i = 0; i < 10; i++)
        assert_close(dp[i], want_dp[i], 1e-15, 0);
    assert_close(dx[0], da * 0.1, 1e-15, 0);
    assert_close(dx[1], da * 0.2, 1e-15, 0);
    assert_close(dh0[0], da * 0.3, 1e-15, 0);
    assert_close(dh0[1], da * 0.4, 1e-15, 0);
    /* a direct gradient on hs[0] adds to dh0 */
    const double dhs2[4] = { 2, -1, 1, 0 };
    assert_status(node_rnn_backward(r, 1, 1, x, NULL, hs, dhs2, dh0, NULL, NULL), NODE_OK);
    assert_close(dh0[0], 2 + da * 0.3, 1e-15, 0);
    assert_close(dh0[1], -1 + da * 0.4, 1e-15, 0);
    node_rnn_free(r);
}

/* One GRU step against torch.nn.GRUCell (float64; the weights below, its biases
   b_ih = (0.01, -0.02, 0.03, -0.04, 0.05, -0.06), b_hh = (0.07, 0.08, -0.09, 0.1,
   -0.11, 0.12)): h1 and the gradients of L = h1[0] − 2 h1[1] that torch.autograd gave
   (torch 1.13.1, printed with %.17g), mapped to libnode's layout. */
static void test_rnn_gru_one_step_by_hand(void **state)
{
    (void)state;
    node_rnn *r = NULL;
    assert_status(node_rnn_create(&r, NODE_CELL_GRU, 2, 2, NULL), NODE_OK);
    assert_int_equal(node_rnn_nparams(r), 2 * (3 * 4 + 4));
    double *p = node_rnn_params(r);
    for (size_t i = 0; i < 32; i++)
        assert_true(p[i] == 0);
    /* W_g rows r0 r1 u0 u1, each [W_ih row | W_hh row]; b_g = b_ih + b_hh (r, u);
       W_xn, b_xn = b_ih's n part; W_hn, b_hn = b_hh's n part */
    const double theta[32] = {
        0.1, 0.2, -0.15, 0.45,    0.3, -0.4, 0.55, -0.65,
        0.5, 0.6, 0.75, 0.05,     -0.7, 0.8, -0.35, -0.25,
        0.01 + 0.07, -0.02 + 0.08, 0.03 - 0.09, -0.04 + 0.1,
        0.9, -1.0, 0.25, 0.35,    0.05, -0.06,
        0.6, 0.4, -0.3, 0.2,      -0.11, 0.12,
    };
    memcpy(p, theta, sizeof theta);
    const double x[2] = { 1, -2 }, h0[2] = { 0.5, -0.25 };
    double hs[4];
    assert_status(node_rnn_forward(r, 1, 1, x, NULL, h0, hs), NODE_OK);
    assert_close(hs[2], 0.79600170468524101, 1e-14, 0);
    assert_close(hs[3], -0.49667489937153853, 1e-14, 0);

    const double dhs[4] = { 0, 0, 1, -2 };
    double dh0[2], dx[2], dp[32];
    assert_status(node_rnn_backward(r, 1, 1, x, NULL, hs, dhs, dh0, dx, dp), NODE_OK);
    const double want[32] = {
        0.00013101493862735254, -0.00026202987725470507,
        6.5507469313676268e-05, -3.2753734656838134e-05,
        0.01491991905680732, -0.029839838113614639,
        0.0074599595284036598, -0.0037299797642018299,
        -0.11896697447706514, 0.23793394895413028,
        -0.05948348723853257, 0.029741743619266285,
        -0.0428559472914593, 0.085711894582918599,
        -0.02142797364572965, 0.010713986822864825,
        0.00013101493862735254, 0.01491991905680732,
        -0.11896697447706514, -0.0428559472914593,
        0.0060679814797538929, -0.012135962959507786,
        -1.332174805407095, 2.66434961081419,
        0.0060679814797538929, -1.332174805407095,
        0.0012121148755574452, -0.00060605743777872258,
        -0.55396403468087174, 0.27698201734043587,
        0.0024242297511148903, -1.1079280693617435,
    };
    for (size_t i = 0; i < 32; i++)
        assert_close(dp[i], want[i], 1e-12, 1e-16);
    assert_close(dx[0], -0.35257776494360138, 1e-13, 0);
    assert_close(dx[1], -0.58393587052664109, 1e-13, 0);
    assert_close(dh0[0], 0.66970675226165044, 1e-13, 0);
    assert_close(dh0[1], -0.39922380286052106, 1e-13, 0);
    node_rnn_free(r);
}

/* ---- BPTT against central differences ---------------------------------------------- */

enum { NIN = 3, NH = 4, B = 3, K = 6, MAXP = NH * (3 * (NIN + NH) + 4) };

/* Row 0 steps every time; row 1 skips steps 0, 2 and 3; row 2 skips step 5 (the last)
   and step 1. */
static const unsigned char mask[K * B] = {
    1, 0, 1,
    1, 1, 0,
    1, 0, 1,
    1, 0, 1,
    1, 1, 1,
    1, 1, 0,
};

static double loss(node_rnn *r, const double *xs, const double *h0, const double *w)
{
    double hs[(K + 1) * B * NH];
    assert_status(node_rnn_forward(r, K, B, xs, mask, h0, hs), NODE_OK);
    double L = 0;
    for (size_t i = 0; i < (K + 1) * B * NH; i++)
        L += w[i] * hs[i];
    return L;
}

/* Central difference of the loss in *v. */
static double cd(node_rnn *r, const double *xs, const double *h0, const double *w, double *v)
{
    double h = 1e-6, keep = *v;
    *v = keep + h;
    double up = loss(r, xs, h0, w);
    *v = keep - h;
    double dn = loss(r, xs, h0, w);
    *v = keep;
    return (up - dn) / (2 * h);
}

static void test_rnn_bptt_matches_central_differences(void **state)
{
    node_cell_kind kind = kind_of(state);
    node_rnn *r = make(kind, NIN, NH, 11);
    size_t np = node_rnn_nparams(r);
    assert_int_equal(np, kind == NODE_CELL_GRU ? NH * (3 * (NIN + NH) + 4)
                                               : NH * (NIN + NH + 1));
    double *theta = node_rnn_params(r);
    /* weights ~ U(±1.5): the tanh units reach their curved part */
    for (size_t i = 0; i < np; i++)
        theta[i] *= 3;
    node_rng g;
    node_rng_seed(&g, 4);
    double xs[K * B * NIN], h0[B * NH], w[(K + 1) * B * NH];
    node_rng_normal(&g, K * B * NIN, xs);
    node_rng_normal(&g, B * NH, h0);
    node_rng_normal(&g, (K + 1) * B * NH, w);

    double hs[(K + 1) * B * NH], dh0[B * NH], dxs[K * B * NIN], dp[MAXP];
    assert_status(node_rnn_forward(r, K, B, xs, mask, h0, hs), NODE_OK);
    assert_status(node_rnn_backward(r, K, B, xs, mask, hs, w, dh0, dxs, dp), NODE_OK);

    for (size_t i = 0; i < np; i++)
        assert_close(dp[i], cd(r, xs, h0, w, &theta[i]), 1e-6, 1e-8);
    for (size_t i = 0; i < B * NH; i++)
        assert_close(dh0[i], cd(r, xs, h0, w, &h0[i]), 1e-6, 1e-8);
    for (size_t k = 0; k < K; k++)
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < NIN; i++) {
                size_t at = (k * B + b) * NIN + i;
                if (!mask[k * B + b])
                    assert_true(dxs[at] == 0);   /* exactly: x_k was not read */
                assert_close(dxs[at], cd(r, xs, h0, w, &xs[at]), 1e-6, 1e-8);
            }

    /* each output may be left out, the others unchanged */
    double dp2[MAXP], dh02[B * NH];
    assert_status(node_rnn_backward(r, K, B, xs, mask, hs, w, NULL, NULL, dp2), NODE_OK);
    assert_memory_equal(dp, dp2, np * sizeof(double));
    assert_status(node_rnn_backward(r, K, B, xs, mask, hs, w, dh02, NULL, NULL), NODE_OK);
    assert_memory_equal(dh0, dh02, sizeof dh0);
    node_rnn_free(r);
}

static void test_rnn_masked_steps_hold_the_state(void **state)
{
    node_cell_kind kind = kind_of(state);
    node_rnn *r = make(kind, NIN, NH, 3);
    double xs[K * B * NIN], hs[(K + 1) * B * NH], hs2[(K + 1) * B * NH];
    node_rng g;
    node_rng_seed(&g, 6);
    node_rng_normal(&g, K * B * NIN, xs);
    assert_status(node_rnn_forward(r, K, B, xs, mask, NULL, hs), NODE_OK);
    for (size_t k = 0; k < K; k++)
        for (size_t b = 0; b < B; b++) {
            const double *h = hs + (k * B + b) * NH, *hn = hs + ((k + 1) * B + b) * NH;
            if (mask[k * B + b])
                assert_memory_not_equal(h, hn, NH * sizeof(double));
            else
                assert_memory_equal(h, hn, NH * sizeof(double));
        }
    /* a masked x is not read: a NaN there changes nothing */
    for (size_t k = 0; k < K; k++)
        for (size_t b = 0; b < B; b++)
            if (!mask[k * B + b])
                for (size_t i = 0; i < NIN; i++)
                    xs[(k * B + b) * NIN + i] = NAN;
    assert_status(node_rnn_forward(r, K, B, xs, mask, NULL, hs2), NODE_OK);
    assert_memory_equal(hs, hs2, sizeof hs);
    /* mask NULL: every row steps every time, the same as a mask of ones */
    unsigned char ones[K * B];
    memset(ones, 1, sizeof ones);
    node_rng_normal(&g, K * B * NIN, xs);
    assert_status(node_rnn_forward(r, K, B, xs, NULL, NULL, hs), NODE_OK);
    assert_status(node_rnn_forward(r, K, B, xs, ones, NULL, hs2), NODE_OK);
    assert_memory_equal(hs, hs2, sizeof hs);
    node_rnn_free(r);
}

/* The batch is B independent sequences: each row equals its own batch-1 run, and so do
   the gradients (dparams summed over rows), to rounding. */
static void test_rnn_batch_rows_are_independent(void **state)
{
    node_cell_kind kind = kind_of(state);
    node_rnn *r = make(kind, NIN, NH, 21);
    size_t np = node_rnn_nparams(r);
    node_rng g;
    node_rng_seed(&g, 22);
    double xs[K * B * NIN], h0[B * NH], w[(K + 1) * B * NH];
    node_rng_normal(&g, K * B * NIN, xs);
    node_rng_normal(&g, B * NH, h0);
    node_rng_normal(&g, (K + 1) * B * NH, w);
    double hs[(K + 1) * B * NH], dp[MAXP], dh0[B * NH];
    assert_status(node_rnn_forward(r, K, B, xs, mask, h0, hs), NODE_OK);
    assert_status(node_rnn_backward(r, K, B, xs, mask, hs, w, dh0, NULL, dp), NODE_OK);
    double sum[MAXP] = { 0 };
    for (size_t b = 0; b < B; b++) {
        double x1[K * NIN], w1[(K + 1) * NH], hs1[(K + 1) * NH], dp1[MAXP];
        double dh01[NH];
        unsigned char m1[K];
        for (size_t k = 0; k < K; k++) {
            memcpy(x1 + k * NIN, xs + (k * B + b) * NIN, NIN * sizeof(double));
            m1[k] = mask[k * B + b];
        }
        for (size_t k = 0; k <= K; k++)
            memcpy(w1 + k * NH, w + (k * B + b) * NH, NH * sizeof(double));
        assert_status(node_rnn_forward(r, K, 1, x1, m1, h0 + b * NH, hs1), NODE_OK);
        /* to rounding: a batch goes through the blocked products, one row through
           dot products (the MLP's kernels), which sum in another order */
        for (size_t k = 0; k <= K; k++)
            for (size_t j = 0; j < NH; j++)
                assert_close(hs1[k * NH + j], hs[(k * B + b) * NH + j], 1e-14, 1e-15);
        assert_status(node_rnn_backward(r, K, 1, x1, m1, hs1, w1, dh01, NULL, dp1), NODE_OK);
        for (size_t j = 0; j < NH; j++)
            assert_close(dh01[j], dh0[b * NH + j], 1e-13, 1e-14);
        for (size_t i = 0; i < np; i++)
            sum[i] += dp1[i];
    }
    for (size_t i = 0; i < np; i++)
        assert_close(dp[i], sum[i], 1e-13, 1e-13);
    node_rnn_free(r);
}

/* A batch wide enough that the weight gradient goes through the transposed product
   (node__bwdw_transposed) against the same rows one at a time (lane sums): the cells'
   scratch holds either form. */
static void test_rnn_wide_batch_matches_rows(void **state)
{
    node_cell_kind kind = kind_of(state);
    enum { WI = 3, WH = 24, WB = 41, WK = 3 };
    node_rnn *r = make(kind, WI, WH, 31);
    size_t np = node_rnn_nparams(r);
    node_rng g;
    node_rng_seed(&g, 32);
    double *xs = malloc(WK * WB * WI * sizeof(double));
    double *w = malloc((WK + 1) * WB * WH * sizeof(double));
    double *hs = malloc((WK + 1) * WB * WH * sizeof(double));
    double *dp = malloc(np * sizeof(double)), *dp1 = malloc(np * sizeof(double));
    double *sum = calloc(np, sizeof(double)), *dxs = malloc(WK * WB * WI * sizeof(double));
    assert_true(xs && w && hs && dp && dp1 && sum && dxs);
    node_rng_normal(&g, WK * WB * WI, xs);
    node_rng_normal(&g, (WK + 1) * WB * WH, w);
    assert_status(node_rnn_forward(r, WK, WB, xs, NULL, NULL, hs), NODE_OK);
    assert_status(node_rnn_backward(r, WK, WB, xs, NULL, hs, w, NULL, dxs, dp), NODE_OK);
    for (size_t b = 0; b < WB; b++) {
        double x1[WK * WI], w1[(WK + 1) * WH], hs1[(WK + 1) * WH], dx1[WK * WI];
        for (size_t k = 0; k < WK; k++)
            memcpy(x1 + k * WI, xs + (k * WB + b) * WI, WI * sizeof(double));
        for (size_t k = 0; k <= WK; k++)
            memcpy(w1 + k * WH, w + (k * WB + b) * WH, WH * sizeof(double));
        assert_status(node_rnn_forward(r, WK, 1, x1, NULL, NULL, hs1), NODE_OK);
        for (size_t k = 0; k <= WK; k++)
            for (size_t j = 0; j < WH; j++)
                assert_close(hs1[k * WH + j], hs[(k * WB + b) * WH + j], 1e-13, 1e-14);
        assert_status(node_rnn_backward(r, WK, 1, x1, NULL, hs1, w1, NULL, dx1, dp1),
                      NODE_OK);
        for (size_t k = 0; k < WK; k++)
            for (size_t i = 0; i < WI; i++)
                assert_close(dx1[k * WI + i], dxs[(k * WB + b) * WI + i], 1e-12, 1e-13);
        for (size_t i = 0; i < np; i++)
            sum[i] += dp1[i];
    }
    for (size_t i = 0; i < np; i++)
        assert_close(dp[i], sum[i], 1e-12, 1e-12);
    free(xs); free(w); free(hs); free(dp); free(dp1); free(sum); free(dxs);
    node_rnn_free(r);
}

static void test_rnn_init_is_pytorchs_uniform(void **state)
{
    node_cell_kind kind = kind_of(state);
    node_rnn *r = make(kind, 5, 16, 1), *r2 = make(kind, 5, 16, 1), *r3 = make(kind, 5, 16, 2);
    size_t np = node_rnn_nparams(r);
    double *p = node_rnn_params(r), bound = 1.0 / sqrt(16.0), lo = 1, hi = -1;
    for (size_t i = 0; i < np; i++) {
        assert_true(fabs(p[i]) <= bound);
        lo = fmin(lo, p[i]);
        hi = fmax(hi, p[i]);
    }
    /* 352 (tanh) or 1072 (GRU) draws spread over the whole interval */
    assert_true(lo < -0.9 * bound && hi > 0.9 * bound);
    assert_memory_equal(p, node_rnn_params(r2), np * sizeof(double));
    assert_memory_not_equal(p, node_rnn_params(r3), np * sizeof(double));
    node_rnn_free(r);
    node_rnn_free(r2);
    node_rnn_free(r3);
}

/* ---- resources ------------------------------------------------------------------------ */

static void test_rnn_allocation_free_on_reuse(void **state)
{
    node_cell_kind kind = kind_of(state);
    node_rnn *r = make(kind, NIN, NH, 5);
    double xs[K * B * NIN] = { 0 }, hs[(K + 1) * B * NH], w[(K + 1) * B * NH] = { 0 };
    double dp[MAXP], dxs[K * B * NIN];
    /* the first calls may grow the scratch */
    assert_status(node_rnn_forward(r, K, B, xs, mask, NULL, hs), NODE_OK);
    assert_status(node_rnn_backward(r, K, B, xs, mask, hs, w, NULL, dxs, dp), NODE_OK);
    node_test_alloc_begin(-1);
    for (int rep = 0; rep < 3; rep++) {
        assert_status(node_rnn_forward(r, K, B, xs, mask, NULL, hs), NODE_OK);
        assert_status(node_rnn_backward(r, K, B, xs, mask, hs, w, NULL, dxs, dp), NODE_OK);
        /* a smaller batch fits the scratch too */
        assert_status(node_rnn_forward(r, K, 1, xs, NULL, NULL, hs), NODE_OK);
        assert_status(node_rnn_backward(r, K, 1, xs, NULL, hs, w, NULL, dxs, dp), NODE_OK);
    }
    assert_int_equal(node_test_alloc_end(), 0);
    node_rnn_free(r);
}

static void test_rnn_allocation_failure_sweep(void **state)
{
    node_cell_kind kind = kind_of(state);
    double xs[K * B * NIN] = { 0 }, hs[(K + 1) * B * NH], w[(K + 1) * B * NH];
    double dp[MAXP];
    for (size_t i = 0; i < (K + 1) * B * NH; i++)
        w[i] = 1;
    for (long k = 0;; k++) {
        node_test_alloc_begin(k);
        node_rnn *r = NULL;
        node_status st = node_rnn_create(&r, kind, NIN, NH, NULL);
        if (st == NODE_OK) {
            node_rnn_init(r, 1);
            st = node_rnn_forward(r, K, B, xs, mask, NULL, hs);
            if (st == NODE_OK)
                st = node_rnn_backward(r, K, B, xs, mask, hs, w, NULL, NULL, dp);
        } else {
            assert_null(r);
        }
        node_rnn_free(r);
        long n = node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
        if (k >= n) {
            assert_status(st, NODE_OK);   /* nothing failed: done */
            assert_true(k >= 3);          /* object, parameters, scratch */
            break;
        }
        assert_status(st, NODE_ENOMEM);
    }
}

/* ---- refused arguments --------------------------------------------------------------- */

static void test_rnn_invalid_arguments(void **state)
{
    (void)state;
    node_rnn *r = (node_rnn *)&r;   /* a sentinel: a refused create leaves *out alone */
    node_error e;
    assert_status(node_rnn_create(NULL, NODE_CELL_TANH, 1, 1, &e), NODE_EINVAL);
    assert_message(&e, "out is NULL");
    assert_status(node_rnn_create(&r, (node_cell_kind)0, 1, 1, &e), NODE_EINVAL);
    assert_message(&e, "kind = 0 is not a cell kind");
    assert_status(node_rnn_create(&r, (node_cell_kind)77, 1, 1, &e), NODE_EINVAL);
    assert_message(&e, "kind = 77");
    assert_status(node_rnn_create(&r, NODE_CELL_TANH, 0, 1, &e), NODE_EINVAL);
    assert_message(&e, "nin = 0");
    assert_status(node_rnn_create(&r, NODE_CELL_TANH, 1, 0, &e), NODE_EINVAL);
    assert_message(&e, "nhidden = 0");
    assert_status(node_rnn_create(&r, NODE_CELL_TANH, SIZE_MAX / 2, 4, &e), NODE_EINVAL);
    assert_message(&e, "too many parameters");
    assert_status(node_rnn_create(&r, NODE_CELL_TANH, 4, (size_t)1 << 40, &e), NODE_EINVAL);
    assert_message(&e, "too many parameters");
    assert_status(node_rnn_create(&r, NODE_CELL_GRU, SIZE_MAX / 4, 4, &e), NODE_EINVAL);
    assert_message(&e, "too many parameters");
    assert_status(node_rnn_create(&r, NODE_CELL_GRU, 4, (size_t)1 << 31, &e), NODE_EINVAL);
    assert_message(&e, "too many parameters");
    assert_true(r == (node_rnn *)&r);

    assert_int_equal(node_rnn_nparams(NULL), 0);
    assert_int_equal(node_rnn_nin(NULL), 0);
    assert_int_equal(node_rnn_nhidden(NULL), 0);
    assert_null(node_rnn_params(NULL));
    node_rnn_init(NULL, 1);
    node_rnn_free(NULL);

    r = make(NODE_CELL_TANH, 2, 3, 1);
    double xs[8] = { 0 }, hs[3 * 2 * 3], dhs[3 * 2 * 3] = { 0 };
    const node_status E = NODE_EINVAL;
    assert_status(node_rnn_forward(NULL, 2, 2, xs, NULL, NULL, hs), E);
    assert_status(node_rnn_forward(r, 0, 2, xs, NULL, NULL, hs), E);
    assert_status(node_rnn_forward(r, 2, 0, xs, NULL, NULL, hs), E);
    assert_status(node_rnn_forward(r, 2, 2, NULL, NULL, NULL, hs), E);
    assert_status(node_rnn_forward(r, 2, 2, xs, NULL, NULL, NULL), E);
    assert_status(node_rnn_forward(r, SIZE_MAX / 4, 2, xs, NULL, NULL, hs), E);
    assert_status(node_rnn_forward(r, 2, 2, xs, NULL, NULL, hs), NODE_OK);
    assert_status(node_rnn_backward(NULL, 2, 2, xs, NULL, hs, dhs, NULL, NULL, NULL), E);
    assert_status(node_rnn_backward(r, 0, 2, xs, NULL, hs, dhs, NULL, NULL, NULL), E);
    assert_status(node_rnn_backward(r, 2, 0, xs, NULL, hs, dhs, NULL, NULL, NULL), E);
    assert_status(node_rnn_backward(r, 2, 2, NULL, NULL, hs, dhs, NULL, NULL, NULL), E);
    assert_status(node_rnn_backward(r, 2, 2, xs, NULL, NULL, dhs, NULL, NULL, NULL), E);
    assert_status(node_rnn_backward(r, 2, 2, xs, NULL, hs, NULL, NULL, NULL, NULL), E);
    assert_status(node_rnn_backward(r, SIZE_MAX / 4, 2, xs, NULL, hs, dhs, NULL, NULL, NULL),
                  E);

    /* a NaN read by a step makes the states non-finite: refused */
    xs[1] = NAN;
    assert_status(node_rnn_forward(r, 2, 2, xs, NULL, NULL, hs), NODE_ENONFINITE);
    const unsigned char m[4] = { 0, 1, 1, 1 };   /* row 0 skips step 0: x[0..1] unread */
    assert_status(node_rnn_forward(r, 2, 2, xs, m, NULL, hs), NODE_OK);
    const double h0[6] = { 0, INFINITY, 0, 0, 0, 0 };
    xs[1] = 0;
    assert_status(node_rnn_forward(r, 2, 2, xs, NULL, h0, hs), NODE_ENONFINITE);

    /* an Inf in dhs: NODE_ENONFINITE, dh0 and dparams left as they were */
    assert_status(node_rnn_forward(r, 2, 2, xs, NULL, NULL, hs), NODE_OK);
    dhs[9] = INFINITY;
    double dh0[6], dp[3 * 6], keep0[6], keepp[3 * 6];
    for (size_t i = 0; i < 6; i++)
        dh0[i] = keep0[i] = 5.0 + (double)i;
    for (size_t i = 0; i < 18; i++)
        dp[i] = keepp[i] = -1.0 - (double)i;
    assert_status(node_rnn_backward(r, 2, 2, xs, NULL, hs, dhs, dh0, NULL, dp),
                  NODE_ENONFINITE);
    assert_memory_equal(dh0, keep0, sizeof dh0);
    assert_memory_equal(dp, keepp, sizeof dp);
    node_rnn_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rnn_one_step_by_hand),
        cmocka_unit_test(test_rnn_gru_one_step_by_hand),
#define BOTH(t) cmocka_unit_test_prestate(t, &KIND_TANH), cmocka_unit_test_prestate(t, &KIND_GRU)
        BOTH(test_rnn_bptt_matches_central_differences),
        BOTH(test_rnn_masked_steps_hold_the_state),
        BOTH(test_rnn_batch_rows_are_independent),
        BOTH(test_rnn_wide_batch_matches_rows),
        BOTH(test_rnn_init_is_pytorchs_uniform),
        BOTH(test_rnn_allocation_free_on_reuse),
        BOTH(test_rnn_allocation_failure_sweep),
        cmocka_unit_test(test_rnn_invalid_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
