/* test_mlp_act.c — the MLP's building blocks: activation names, values and exact
 * derivatives (tanh against libm over a dense sweep, softplus/sigmoid at ±1000),
 * and the batched layer products against naive sums over every blocking path.
 */
#include "test_util.h"
#include "mlp_fixtures.h"
#include "nn/nn_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* ---- activations ---------------------------------------------------------------- */

/* The registry (nn_internal.h: NODE__ACTIVATIONS) is the one place that knows an
   activation: every entry round-trips name <-> value, names and values are
   unique, every instruction-set level has its kernel; values in no entry are
   refused by every entry point (model files: test_mlp_io.c). */
static void test_activation_registry_round_trips_and_refuses_the_rest(void **state)
{
    (void)state;
    assert_int_equal(NACTS, NODE__NACT);
    for (size_t i = 0; i < NODE__NACT; i++) {
        const node__act_info *e = &node__act_registry[i];
        assert_int_equal(node__act_index((int64_t)e->value), i);
        const char *name = node_activation_name(e->value);
        assert_non_null(name);
        assert_string_equal(name, e->name);
        node_activation a;
        assert_status(node_activation_parse(name, &a), NODE_OK);
        assert_int_equal(a, e->value);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(node__act_registry[j].value, e->value);
            assert_true(strcmp(node__act_registry[j].name, e->name) != 0);
        }
        for (int isa = 0; isa < NODE__NISA; isa++) {
            assert_non_null(node__nn_kernels_for((node__isa)isa)->act[i]);
            assert_non_null(node__nn_kernels_for((node__isa)isa)->act2[i]);
        }
        /* A model of this activation can be made and reports it. */
        size_t sizes[3] = { 2, 3, 2 };
        node_activation acts[2] = { e->value, e->value };
        node_mlp *m;
        assert_status(node_mlp_create(&m, 2, sizes, acts, 0), NODE_OK);
        assert_int_equal(node_mlp_activation(m, 1), e->value);
        node_mlp_free(m);
    }
    assert_string_equal(node_activation_name(NODE_ACT_SOFTPLUS), "softplus");
    int64_t bad[8];
    size_t nbad = non_activations(bad, 8);
    assert_true(nbad >= 5);
    for (size_t i = 0; i < nbad; i++) {
        node_activation v = (node_activation)bad[i];
        assert_null(node_activation_name(v));
        double y[2] = { 0.5, -0.5 }, d[2] = { 7, 7 };
        assert_status(node__act_apply(v, 2, y, d), NODE_EINVAL);
        assert_true(y[0] == 0.5 && d[0] == 7);
        size_t sizes[3] = { 2, 3, 2 };
        node_activation acts[2] = { NODE_ACT_TANH, v };
        node_mlp *m = NULL;
        node_error err;
        assert_status(node_mlp_create_ex(&m, 2, sizes, acts, 0, &err), NODE_EINVAL);
        assert_null(m);
        assert_non_null(strstr(err.message, "acts[1] = "));
        assert_non_null(strstr(err.message, " is not an activation"));
    }
    node_activation a;
    assert_status(node_activation_parse("gelu", &a), NODE_EINVAL);
    assert_status(node_activation_parse("", &a), NODE_EINVAL);
    assert_status(node_activation_parse("Tanh", &a), NODE_EINVAL);
    assert_status(node_activation_parse(NULL, &a), NODE_EINVAL);
    assert_status(node_activation_parse("tanh", NULL), NODE_EINVAL);
}

/* Whether long double is wider than double at run time, not only in <float.h>: under
   valgrind, x87 arithmetic runs in double precision and tanhl is no reference. */
static bool long_double_is_wider(void)
{
    volatile long double one = 1.0L, eps = LDBL_EPSILON;
    return LDBL_MANT_DIG > DBL_MANT_DIG && one + eps != one;
}

static void test_tanh_matches_libm_over_dense_sweep(void **state)
{
    (void)state;
    enum { N = 400001 };
    double *x = alloc_d(N), *y = alloc_d(N);
    double worst = 0, worst_l = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N; i++)   /* linear over [-25, 25], then logarithmic */
            x[i] = pass == 0 ? -25.0 + 50.0 * (double)i / (N - 1)
                             : (i % 2 ? -1 : 1) * pow(10.0, -310.0 + 311.5 * (double)i / (N - 1));
        node__tanh_array(N, x, y);
        for (size_t i = 0; i < N; i++) {
            double r = tanh(x[i]);
            assert_true(fabs(y[i]) <= 1.0);
            worst = fmax(worst, fabs(y[i] - r) / fmax(fabs(r), DBL_MIN));
            long double rl = tanhl((long double)x[i]);
            worst_l = fmax(worst_l, (double)(fabsl((long double)y[i] - rl) / fabsl(rl)));
        }
    }
    /* Within 2 ulp of the exact value (test_act_accuracy.c); libm's own error (about
       1.3 ulp) adds. */
    assert_true(worst <= 6e-16);
    if (long_double_is_wider())
        assert_true(worst_l <= 4e-16);
    double sp[6] = { 0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-300 }, out[6];
    node__tanh_array(6, sp, out);
    assert_true(out[0] == 0.0 && !signbit(out[0]));
    assert_true(out[1] == 0.0 && signbit(out[1]));
    assert_true(out[2] == 1.0 && out[3] == -1.0);
    assert_true(isnan(out[4]));
    assert_true(out[5] == 1e-300);
    free(x);
    free(y);
}

static double act_ref(node_activation a, double z)
{
    switch (a) {
    case NODE_ACT_IDENTITY: return z;
    case NODE_ACT_TANH:     return tanh(z);
    case NODE_ACT_RELU:     return z > 0 ? z : 0;
    case NODE_ACT_SOFTPLUS: return z > 30 ? z + exp(-z) : log1p(exp(z));
    case NODE_ACT_SIGMOID:  return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
    case NODE_ACT_ELU:      return z > 0 ? z : expm1(z);
    case NODE_ACT_SILU:     return z * (z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)));
    }
    /* A registry entry without a reference here: add its formula above. */
    print_error("no reference formula for activation %d (%s)\n", (int)a,
                node_activation_name(a) ? node_activation_name(a) : "?");
    fail();
    return NAN;
}

/* The second derivative, in closed form in z. */
static double act_ref2(node_activation a, double z)
{
    double s = z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)), th = tanh(z);
    switch (a) {
    case NODE_ACT_IDENTITY: return 0;
    case NODE_ACT_TANH:     return -2 * th * (1 - th * th);
    case NODE_ACT_RELU:     return 0;
    case NODE_ACT_SOFTPLUS: return s * (1 - s);
    case NODE_ACT_SIGMOID:  return s * (1 - s) * (1 - 2 * s);
    case NODE_ACT_ELU:      return z > 0 ? 0 : exp(z);
    case NODE_ACT_SILU:     return s * (1 - s) * (2 + z * (1 - 2 * s));
    }
    /* A registry entry without a second derivative here: add its formula above. */
    print_error("no reference second derivative for activation %d (%s)\n", (int)a,
                node_activation_name(a) ? node_activation_name(a) : "?");
    fail();
    return NAN;
}

/* Every registry entry's second derivative, at every instruction-set level this CPU
   runs, against central differences of its first derivative (the kernel's own d)
   and against the closed form. */
static void test_activations_second_derivatives(void **state)
{
    (void)state;
    enum { N = 2001 };
    double z[N], y[N], d[N], dd[N], yp[N], dp[N], ym[N], dm[N];
    const double h = 1e-5;
    for (size_t run = 0; run < NODE__NISA * NACTS; run++) {
        size_t ai = run % NACTS;
        node__isa isa = (node__isa)(run / NACTS);
        if (!node__isa_usable(isa))
            continue;
        const node__nn_kernels *kern = node__nn_kernels_for(isa);
        node_activation a = all_acts[ai];
        for (size_t i = 0; i < N; i++) {
            z[i] = y[i] = dd[i] = -12.0 + 24.0 * (double)i / (N - 1) + 1e-4;  /* off kinks */
            yp[i] = z[i] + h;
            ym[i] = z[i] - h;
        }
        kern->act[ai](N, y, d);
        kern->act[ai](N, yp, dp);
        kern->act[ai](N, ym, dm);
        kern->act2[ai](N, dd, y, d);
        for (size_t i = 0; i < N; i++) {
            assert_close(dd[i], (dp[i] - dm[i]) / (2 * h), 1e-6, 1e-8);
            /* act' near saturation: 1 - y has lost the digits y rounded off */
            assert_close(dd[i], act_ref2(a, z[i]), 1e-9, 1e-15);
        }
    }
}

/* Every registry entry's kernel, at every instruction-set level this CPU runs,
   against its formula and the formula's central difference. */
static void test_activations_values_and_derivatives(void **state)
{
    (void)state;
    enum { N = 2001 };
    double z[N], y[N], d[N];
    for (size_t run = 0; run < NODE__NISA * NACTS; run++) {
        size_t ai = run % NACTS;
        node__isa isa = (node__isa)(run / NACTS);
        if (!node__isa_usable(isa))
            continue;
        const node__nn_kernels *kern = node__nn_kernels_for(isa);
        node_activation a = all_acts[ai];
        for (size_t i = 0; i < N; i++)
            z[i] = y[i] = -12.0 + 24.0 * (double)i / (N - 1) + 1e-4;   /* off relu's kink */
        kern->act[ai](N, y, d);
        for (size_t i = 0; i < N; i++) {
            assert_close(y[i], act_ref(a, z[i]), 1e-15, 1e-300);
            double h = 1e-5;
            double fd = (act_ref(a, z[i] + h) - act_ref(a, z[i] - h)) / (2 * h);
            assert_close(d[i], fd, 1e-8, 1e-9);
        }
        /* Without d: the same values. */
        double y2[N];
        memcpy(y2, z, sizeof y2);
        kern->act[ai](N, y2, NULL);
        assert_memory_equal(y, y2, sizeof y2);
    }
}

static void test_softplus_and_sigmoid_stay_finite_at_extremes(void **state)
{
    (void)state;
    double z[4] = { 1000.0, -1000.0, 745.5, -745.5 }, y[4], d[4];
    memcpy(y, z, sizeof y);
    node__act_apply(NODE_ACT_SOFTPLUS, 4, y, d);
    assert_close(y[0], 1000.0, 1e-16, 0);
    assert_true(y[1] == 0.0);           /* e^-1000 underflows */
    assert_close(y[2], 745.5, 1e-16, 0);
    assert_close(y[3], exp(-745.5), 0, 1e-323);
    assert_true(d[0] == 1.0 && d[1] == 0.0);
    memcpy(y, z, sizeof y);
    node__act_apply(NODE_ACT_SIGMOID, 4, y, d);
    assert_true(y[0] == 1.0 && y[1] == 0.0);
    assert_true(d[0] == 0.0 && d[1] == 0.0);
    for (int i = 0; i < 4; i++)
        assert_true(isfinite(y[i]) && isfinite(d[i]));
    /* Deep in the tail the value is e^z, subnormal results included. */
    double t[3] = { -700.0, -720.0, -740.0 }, s[3];
    node__sigmoid_array(3, t, s);
    for (int i = 0; i < 3; i++)
        assert_close(s[i], exp(t[i]), 1e-12, 1e-322);
    memcpy(y, z, sizeof y);
    node__act_apply(NODE_ACT_SILU, 4, y, d);
    assert_close(y[0], 1000.0, 1e-16, 0);
    assert_true(y[1] == -0.0 || y[1] == 0.0);
    assert_close(d[0], 1.0, 1e-16, 0);
    memcpy(y, z, sizeof y);
    node__act_apply(NODE_ACT_ELU, 4, y, d);
    assert_true(y[1] == -1.0 && d[1] >= 0.0 && d[1] < 1e-300);
    double e[3] = { -1e-5, 0.3, -30.0 }, eo[3];
    node__expm1_array(3, e, eo);
    for (int i = 0; i < 3; i++)
        assert_close(eo[i], expm1(e[i]), 3e-16, 0);
}

/* ---- layer products ---------------------------------------------------------------- */

/* The layer products against naive sums, over shapes that reach every blocking
   path: batch of one, column tails of 8 and 16, K past one cache block (128), rows
   past one L2 block (256), packed strips, and both weight-gradient routes. */
static void test_layer_kernels_match_naive_products(void **state)
{
    (void)state;
    static const size_t shapes[][3] = {   /* O, I, B */
        { 3, 2, 1 }, { 37, 29, 1 }, { 50, 2, 20 }, { 2, 50, 20 }, { 9, 7, 8 }, { 5, 3, 13 },
        { 33, 17, 16 }, { 40, 64, 30 }, { 300, 20, 9 }, { 20, 300, 40 },
        { 70, 140, 200 }, { 8, 8, 64 }
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        size_t O = shapes[si][0], I = shapes[si][1], B = shapes[si][2];
        size_t ld = B == 1 ? 1 : node__padw(B);
        double *W = alloc_d(O * I), *bias = alloc_d(O), *X = alloc_d(I * ld);
        double *Dl = alloc_d(O * ld), *Z = alloc_d(O * ld), *G = alloc_d(I * ld);
        double *gW = alloc_d(O * I), *gb = alloc_d(O);
        size_t ns = (ld + I) * node__padw(O) + NODE__PACK;
        double *scratch = alloc_d(ns > 8 * O * (I + 1) ? ns : 8 * O * (I + 1));
        fill(W, O * I, 1);
        fill(bias, O, 2);
        fill(X, I * ld, 3);
        fill(Dl, O * ld, 4);
        for (size_t r = 0; r < I; r++)   /* the padding may hold anything */
            for (size_t b = B; b < ld; b++)
                X[r * ld + b] = NAN;
        for (size_t r = 0; r < O; r++)
            for (size_t b = B; b < ld; b++)
                Dl[r * ld + b] = INFINITY;
        fill(gW, O * I, 5);   /* the weight gradient accumulates */
        fill(gb, O, 6);
        double *gW0 = alloc_d(O * I), *gb0 = alloc_d(O);
        memcpy(gW0, gW, O * I * sizeof *gW);
        memcpy(gb0, gb, O * sizeof *gb);
        node__layer_fwd(O, I, ld, W, bias, X, Z, scratch);
        node__layer_bwd_x(O, I, ld, W, Dl, G, scratch);
        node__layer_bwd_w(O, I, B, ld, Dl, X, gW, gb, scratch, 1);
        for (size_t o = 0; o < O; o++)
            for (size_t b = 0; b < B; b++) {
                double s = bias[o], a = fabs(bias[o]);
                for (size_t i = 0; i < I; i++) {
                    s += W[o * I + i] * X[i * ld + b];
                    a += fabs(W[o * I + i] * X[i * ld + b]);
                }
                assert_close(Z[o * ld + b], s, 0, 1e-15 * a);
            }
        for (size_t i = 0; i < I; i++)
            for (size_t b = 0; b < B; b++) {
                double s = 0, a = 0;
                for (size_t o = 0; o < O; o++) {
                    s += W[o * I + i] * Dl[o * ld + b];
                    a += fabs(W[o * I + i] * Dl[o * ld + b]);
                }
                assert_close(G[i * ld + b], s, 0, 1e-15 * a);
            }
        for (size_t o = 0; o < O; o++) {
            double sb = gb0[o], ab = fabs(gb0[o]);
            for (size_t b = 0; b < B; b++) {
                sb += Dl[o * ld + b];
                ab += fabs(Dl[o * ld + b]);
            }
            assert_close(gb[o], sb, 0, 1e-15 * ab);
            for (size_t i = 0; i < I; i++) {
                double s = gW0[o * I + i], a = fabs(s);
                for (size_t b = 0; b < B; b++) {
                    s += Dl[o * ld + b] * X[i * ld + b];
                    a += fabs(Dl[o * ld + b] * X[i * ld + b]);
                }
                assert_close(gW[o * I + i], s, 0, 1e-15 * a);
            }
        }
        free(W); free(bias); free(X); free(Dl); free(Z); free(G);
        free(gW); free(gb); free(gW0); free(gb0); free(scratch);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_registry_round_trips_and_refuses_the_rest),
        cmocka_unit_test(test_tanh_matches_libm_over_dense_sweep),
        cmocka_unit_test(test_activations_values_and_derivatives),
        cmocka_unit_test(test_activations_second_derivatives),
        cmocka_unit_test(test_softplus_and_sigmoid_stay_finite_at_extremes),
        cmocka_unit_test(test_layer_kernels_match_naive_products),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
