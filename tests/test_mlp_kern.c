/* test_mlp_kern.c — the MLP's layer products and its fused pass at every compiled
 * instruction-set level, against naive sums written here: every shape class of the
 * kernels (depth 1-4 products, narrow and wide weight gradients, short batches of
 * 1-4 vectors, the transposed weight gradient, row-blocked fusions, odd sizes,
 * batch 1), and whole networks (forward, aᵀ∂f/∂x, aᵀ∂f/∂θ, aᵀ∂f/∂t) from the tiny
 * ode_demo net to a 2-256-2 one in several chunks.
 */
#include "test_util.h"
#include "mlp_fixtures.h"
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- layer products ---------------------------------------------------------------- */

/* O, I, B: each reaches a path of kernels.c (comments: which). */
static const size_t layer_shapes[][3] = {
    { 3, 2, 1 },      /* batch of one: dot products */
    { 256, 2, 256 },  /* depth-2 forward (smallk), narrow-input lane sums, row blocks */
    { 2, 256, 256 },  /* depth-2 input gradient with act' in the stores, narrow-output lane sums */
    { 50, 2, 20 },    /* the demo's layers: short batch, 3 vectors */
    { 2, 50, 20 },
    { 1, 1, 4 },      /* depth 1, one short vector, padding past B */
    { 4, 3, 5 },      /* depth 3 and 4 */
    { 3, 4, 30 },     /* 4 vectors */
    { 7, 5, 33 },     /* past the short-batch path, odd sizes */
    { 16, 40, 100 },  /* 16 outputs: lane sums although past 16k products */
    { 17, 9, 200 },   /* 17 outputs: the transposed weight gradient */
    { 70, 140, 200 }, /* register-blocked products, packing */
    { 9, 63, 47 },    /* depth 63: row-blocked input gradient, not depth <= 4 */
    { 300, 3, 9 },    /* more rows than one L2 block */
};

/* Naive sums in long double, and the sum of magnitudes for the tolerance. */
static void check_sum(double got, long double want, long double mag)
{
    assert_close(got, (double)want, 0, 4e-16 * (double)mag + 1e-300);
}

static void check_layer(const node__nn_kernels *kern, size_t O, size_t I, size_t B)
{
    size_t ld = B == 1 ? 1 : node__padw(B);
    double *W = alloc_d(O * I), *bias = alloc_d(O), *X = alloc_d(I * ld);
    double *Dl = alloc_d(O * ld), *Z = alloc_d(O * ld), *G = alloc_d(I * ld);
    double *GD = alloc_d(I * ld), *D = alloc_d(I * ld);
    double *gW = alloc_d(O * I), *gb = alloc_d(O), *gW0 = alloc_d(O * I), *gb0 = alloc_d(O);
    double *gW1 = alloc_d(O * I), *gb1 = alloc_d(O);
    size_t ns = (ld + I) * node__padw(O) + NODE__PACK;
    double *scratch = alloc_d(ns > 8 * O * (I + 1) ? ns : 8 * O * (I + 1));
    fill(W, O * I, 11);
    fill(bias, O, 12);
    fill(X, I * ld, 13);
    fill(Dl, O * ld, 14);
    fill(D, I * ld, 15);
    for (size_t r = 0; r < I; r++)   /* the padding may hold anything */
        for (size_t b = B; b < ld; b++)
            X[r * ld + b] = NAN;
    for (size_t r = 0; r < O; r++)
        for (size_t b = B; b < ld; b++)
            Dl[r * ld + b] = INFINITY;
    fill(gW0, O * I, 16);
    fill(gb0, O, 17);
    memcpy(gW, gW0, O * I * sizeof *gW);
    memcpy(gb, gb0, O * sizeof *gb);
    kern->layer_fwd(O, I, ld, W, bias, X, Z, scratch);
    kern->layer_bwd_x(O, I, ld, W, Dl, G, scratch);
    kern->layer_bwd_xd(O, I, ld, W, Dl, D, GD, scratch);
    kern->layer_bwd_w(O, I, B, ld, Dl, X, gW, gb, scratch, 1);
    kern->layer_bwd_w(O, I, B, ld, Dl, X, gW1, gb1, scratch, 0);
    for (size_t o = 0; o < O; o++)
        for (size_t b = 0; b < B; b++) {
            long double s = bias[o], a = fabs(bias[o]);
            for (size_t i = 0; i < I; i++) {
                s += (long double)W[o * I + i] * X[i * ld + b];
                a += fabsl((long double)W[o * I + i] * X[i * ld + b]);
            }
            check_sum(Z[o * ld + b], s, a);
        }
    for (size_t i = 0; i < I; i++)
        for (size_t b = 0; b < B; b++) {
            long double s = 0, a = 0;
            for (size_t o = 0; o < O; o++) {
                s += (long double)W[o * I + i] * Dl[o * ld + b];
                a += fabsl((long double)W[o * I + i] * Dl[o * ld + b]);
            }
            check_sum(G[i * ld + b], s, a);
            /* (Wᵀ Δ) ⊙ D: the product rounded once, then multiplied. */
            assert_true(GD[i * ld + b] == G[i * ld + b] * D[i * ld + b]);
        }
    for (size_t o = 0; o < O; o++) {
        long double sb = 0, ab = 0;
        for (size_t b = 0; b < B; b++) {
            sb += Dl[o * ld + b];
            ab += fabs(Dl[o * ld + b]);
        }
        check_sum(gb1[o], sb, ab);
        check_sum(gb[o], sb + gb0[o], ab + fabs(gb0[o]));
        for (size_t i = 0; i < I; i++) {
            long double s = 0, a = 0;
            for (size_t b = 0; b < B; b++) {
                s += (long double)Dl[o * ld + b] * X[i * ld + b];
                a += fabsl((long double)Dl[o * ld + b] * X[i * ld + b]);
            }
            check_sum(gW1[o * I + i], s, a);
            check_sum(gW[o * I + i], s + gW0[o * I + i], a + fabs(gW0[o * I + i]));
        }
    }
    free(W); free(bias); free(X); free(Dl); free(Z); free(G); free(GD); free(D);
    free(gW); free(gb); free(gW0); free(gb0); free(gW1); free(gb1); free(scratch);
}

static void test_layer_products_every_shape_and_level(void **state)
{
    (void)state;
    for (int isa = 0; isa < NODE__NISA; isa++) {
        if (!node__isa_usable((node__isa)isa))
            continue;
        for (size_t s = 0; s < sizeof layer_shapes / sizeof layer_shapes[0]; s++)
            check_layer(node__nn_kernels_for((node__isa)isa), layer_shapes[s][0],
                        layer_shapes[s][1], layer_shapes[s][2]);
    }
}

/* ---- whole networks ---------------------------------------------------------------- */

static long double act_val(node_activation a, long double z)
{
    switch (a) {
    case NODE_ACT_TANH: return tanhl(z);
    case NODE_ACT_SIGMOID: return 1.0L / (1.0L + expl(-z));
    default: return z;   /* identity */
    }
}

static long double act_der(node_activation a, long double z)
{
    long double y = act_val(a, z);
    switch (a) {
    case NODE_ACT_TANH: return 1.0L - y * y;
    case NODE_ACT_SIGMOID: return y * (1.0L - y);
    default: return 1.0L;
    }
}

/* One sample through the network, naively (long double), and its reverse pass:
   adds aᵀ∂y/∂θ to gp and writes y, aᵀ∂y/∂x (gx) and aᵀ∂y/∂t (*gt). */
static void naive_sample(const node_mlp *m, double t, const double *x, const double *a,
                         long double *y, long double *gx, long double *gp, long double *gt)
{
    size_t L = m->nlayers, w = m->maxw + 1;
    long double *h = calloc((L + 1) * w, sizeof *h), *z = calloc(L * w, sizeof *z);
    long double *g = calloc(w, sizeof *g), *g2 = calloc(w, sizeof *g2);
    assert_true(h && z && g && g2);
    for (size_t i = 0; i < m->sizes[0]; i++)
        h[i] = x[i];
    if (m->time_input)
        h[m->sizes[0]] = t;
    for (size_t k = 0; k < L; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        const double *W = m->theta + m->woff[k], *b = W + O * I;
        for (size_t o = 0; o < O; o++) {
            long double s = b[o];
            for (size_t i = 0; i < I; i++)
                s += (long double)W[o * I + i] * h[k * w + i];
            z[k * w + o] = s;
            h[(k + 1) * w + o] = act_val(m->acts[k], s);
        }
    }
    size_t nL = m->sizes[L];
    for (size_t o = 0; o < nL; o++) {
        y[o] = h[L * w + o];
        g[o] = a[o];
    }
    for (size_t k = L; k-- > 0;) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        const double *W = m->theta + m->woff[k];
        long double *gW = gp + m->woff[k], *gb = gW + O * I;
        for (size_t i = 0; i < I; i++)
            g2[i] = 0;
        for (size_t o = 0; o < O; o++) {
            long double gz = g[o] * act_der(m->acts[k], z[k * w + o]);
            gb[o] += gz;
            for (size_t i = 0; i < I; i++) {
                gW[o * I + i] += gz * h[k * w + i];
                g2[i] += (long double)W[o * I + i] * gz;
            }
        }
        memcpy(g, g2, w * sizeof *g);
    }
    for (size_t i = 0; i < m->sizes[0]; i++)
        gx[i] = g[i];
    *gt = m->time_input ? g[m->sizes[0]] : 0;
    free(h); free(z); free(g); free(g2);
}

/* The relative error of every output against the naive pass, scaled by the largest
   magnitude of its kind (the sums cancel; 1e-13 of the scale is many ulps of
   agreement, and an indexing slip is an O(1) error). */
static void check_close_all(const double *got, const long double *want, size_t n)
{
    long double scale = 1e-300L;
    for (size_t i = 0; i < n; i++)
        if (fabsl(want[i]) > scale)
            scale = fabsl(want[i]);
    for (size_t i = 0; i < n; i++)
        assert_close(got[i], (double)want[i], 0, 1e-13 * (double)scale);
}

static void check_network(const node__nn_kernels *kern, size_t L, const size_t *sizes,
                          const node_activation *acts, int time_input, size_t batch)
{
    node_mlp *m;
    assert_status(node_mlp_create(&m, L, sizes, acts, time_input), NODE_OK);
    node_mlp_init(m, 7);
    m->kern = kern;
    size_t n0 = sizes[0], nL = sizes[L], P = node_mlp_nparams(m);
    double *x = alloc_d(batch * n0), *a = alloc_d(batch * nL), *y = alloc_d(batch * nL);
    double *y2 = alloc_d(batch * nL), *gx = alloc_d(batch * n0), *gp = alloc_d(P), gt = 0;
    long double *ry = calloc(batch * nL, sizeof *ry), *rgx = calloc(batch * n0, sizeof *rgx);
    long double *rgp = calloc(P, sizeof *rgp), rgt = 0;
    assert_true(ry && rgx && rgp);
    fill(x, batch * n0, 21);
    fill(a, batch * nL, 22);
    fill(gp, P, 23);   /* overwritten */
    double t = 0.375;
    for (size_t b = 0; b < batch; b++) {
        long double gtb;
        naive_sample(m, t, x + b * n0, a + b * nL, ry + b * nL, rgx + b * n0, rgp, &gtb);
        rgt += gtb;
    }
    assert_status(node_mlp_forward(m, batch, t, x, y2), NODE_OK);
    assert_status(node_mlp_vjp(m, batch, t, x, a, y, gx, gp, time_input ? &gt : NULL),
                  NODE_OK);
    assert_memory_equal(y, y2, batch * nL * sizeof *y);   /* f alone: the same bits */
    check_close_all(y, ry, batch * nL);
    check_close_all(gx, rgx, batch * n0);
    check_close_all(gp, rgp, P);
    if (time_input)
        assert_close(gt, (double)rgt, 1e-12, 1e-14);
    free(x); free(a); free(y); free(y2); free(gx); free(gp);
    free(ry); free(rgx); free(rgp);
    node_mlp_free(m);
}

static void test_networks_match_naive_pass_every_level(void **state)
{
    (void)state;
    const node_activation th[3] = { NODE_ACT_TANH, NODE_ACT_IDENTITY, NODE_ACT_IDENTITY };
    const node_activation mix[3] = { NODE_ACT_SIGMOID, NODE_ACT_TANH, NODE_ACT_TANH };
    static const struct { size_t L, sizes[4]; int mix, time; } nets[] = {
        { 2, { 2, 2, 2 }, 0, 0 },        /* the tiny net: every product of depth 2 */
        { 2, { 2, 50, 2 }, 0, 0 },       /* ode_demo */
        { 2, { 2, 256, 2 }, 0, 1 },      /* the wide setting, with time */
        { 2, { 1, 17, 1 }, 1, 0 },       /* depth 1, act' in every layer */
        { 3, { 3, 7, 5, 4 }, 1, 1 },     /* odd sizes, three layers */
        { 2, { 4, 9, 3 }, 0, 1 },        /* 4 in, 3 out: every narrow transposition */
        { 2, { 50, 50, 50 }, 0, 0 },     /* mid size */
    };
    static const size_t batches[] = { 1, 3, 4, 5, 20, 33, 300 };
    for (int isa = 0; isa < NODE__NISA; isa++) {
        if (!node__isa_usable((node__isa)isa))
            continue;
        const node__nn_kernels *kern = node__nn_kernels_for((node__isa)isa);
        for (size_t n = 0; n < sizeof nets / sizeof nets[0]; n++)
            for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
                check_network(kern, nets[n].L, nets[n].sizes, nets[n].mix ? mix : th,
                              nets[n].time, batches[b]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_products_every_shape_and_level),
        cmocka_unit_test(test_networks_match_naive_pass_every_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
