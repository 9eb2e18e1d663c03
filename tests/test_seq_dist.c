/* test_seq_dist.c — node_rng (xoshiro256** against an independent reference,
 * tests/ref/xoshiro_ref.py; moments of the uniform and normal draws; permutations and
 * their frequencies), node_gaussian_nll and node_kl_normal (closed forms worked by
 * hand, gradients against central differences, masks, every refused argument with its
 * message, overflow with nothing written).
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

/* The upper 1e-6 quantile of χ² with k degrees of freedom (Wilson–Hilferty, within
   about 1 % of the exact value for k >= 3). */
static double chi2_bound(double k)
{
    double a = 2.0 / (9.0 * k), z = 4.753;
    double c = 1.0 - a + z * sqrt(a);
    return k * c * c * c;
}

/* ---- random numbers: the stream --------------------------------------------------- */

/* Values printed by tests/ref/xoshiro_ref.py (Python integers, no libnode). */
static const uint64_t ref_1234[8] = {
    0x0000000000002d00u, 0x0000000000000000u, 0x000000005a007080u, 0x10e0000000009d80u,
    0x10e0b61ce1009d80u, 0x0870021ce143ad00u, 0xe071c3c2e143f089u, 0x75a1690ef7a20380u,
};
static const uint64_t ref_seed0_state[4] = {
    0xe220a8397b1dcdafu, 0x6e789e6aa1b965f4u, 0x06c45d188009454fu, 0xf88bb8a8724c81ecu,
};
static const uint64_t ref_seed0[8] = {
    0x99ec5f36cb75f2b4u, 0xbf6e1f784956452au, 0x1a5f849d4933e6e0u, 0x6aa594f1262d2d2cu,
    0xbba5ad4a1f842e59u, 0xffef8375d9ebcacau, 0x6c160deed2f54c98u, 0x8920ad648fc30a3fu,
};
static const uint64_t ref_seed42_state[4] = {
    0xbdd732262feb6e95u, 0x28efe333b266f103u, 0x47526757130f9f52u, 0x581ce1ff0e4ae394u,
};
static const uint64_t ref_seed42[8] = {
    0x15780b2e0c2ec716u, 0x6104d9866d113a7eu, 0xae17533239e499a1u, 0xecb8ad4703b360a1u,
    0xfde6dc7fe2ec5e64u, 0xc50da53101795238u, 0xb82154855a65ddb2u, 0xd99a2743ebe60087u,
};

/* A uniform draw is the top 53 bits of the 64-bit output, times 2^-53: exact. */
static void assert_uniforms_are(node_rng *r, const uint64_t *ref, size_t n)
{
    double u[8];
    assert_status(node_rng_uniform(r, n, u), NODE_OK);
    for (size_t i = 0; i < n; i++) {
        double want = (double)(ref[i] >> 11) * 0x1p-53;
        if (u[i] != want)
            print_error("draw %zu: %.17g, reference %.17g\n", i, u[i], want);
        assert_true(u[i] == want);
    }
}

static void test_rng_matches_the_reference_algorithm(void **state)
{
    (void)state;
    /* the published small-state case: s = {1, 2, 3, 4} gives 11520, 0, 1509978240 */
    node_rng r = { .s = { 1, 2, 3, 4 } };
    assert_true(ref_1234[0] == 11520u && ref_1234[1] == 0 && ref_1234[2] == 1509978240u);
    assert_uniforms_are(&r, ref_1234, 8);

    assert_status(node_rng_seed(&r, 0), NODE_OK);
    assert_memory_equal(r.s, ref_seed0_state, sizeof r.s);
    assert_uniforms_are(&r, ref_seed0, 8);

    assert_status(node_rng_seed(&r, 42), NODE_OK);
    assert_memory_equal(r.s, ref_seed42_state, sizeof r.s);
    assert_uniforms_are(&r, ref_seed42, 8);

    /* permutations: the second output of {1, 2, 3, 4} is 0, drawn for the bound 7
       (2^64 mod 7 = 2): rejected, so the exact order pins the unbiased method */
    static const size_t perm8[8] = { 6, 2, 3, 4, 5, 7, 1, 0 };
    static const size_t perm10[10] = { 7, 3, 8, 9, 5, 6, 4, 1, 0, 2 };
    size_t idx[10];
    node_rng q = { .s = { 1, 2, 3, 4 } };
    assert_status(node_rng_permutation(&q, 8, idx), NODE_OK);
    assert_memory_equal(idx, perm8, sizeof perm8);
    assert_status(node_rng_seed(&q, 42), NODE_OK);
    assert_status(node_rng_permutation(&q, 10, idx), NODE_OK);
    assert_memory_equal(idx, perm10, sizeof perm10);
}

static void test_rng_same_seed_same_stream(void **state)
{
    (void)state;
    enum { N = 1001 };
    static double a[N], b[N];
    node_rng r1, r2;
    node_rng_seed(&r1, 12345);
    memset(&r2, 0xAB, sizeof r2);                  /* seeding resets everything */
    node_rng_seed(&r2, 12345);
    assert_memory_equal(&r1, &r2, sizeof r1);
    assert_status(node_rng_uniform(&r1, N, a), NODE_OK);
    assert_status(node_rng_uniform(&r2, N, b), NODE_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_status(node_rng_normal(&r1, N, a), NODE_OK);
    assert_status(node_rng_normal(&r2, N, b), NODE_OK);
    assert_memory_equal(a, b, sizeof a);

    /* a copy of the struct is a fork: both continue the same way */
    node_rng fork = r1;
    node_rng_normal(&r1, N, a);
    node_rng_normal(&fork, N, b);
    assert_memory_equal(a, b, sizeof a);

    /* the spare normal is kept: 1 + 1 draws are the 2 of one call */
    double one[2], two[2];
    node_rng_seed(&r1, 9);
    node_rng_seed(&r2, 9);
    node_rng_normal(&r1, 2, two);
    node_rng_normal(&r2, 1, one);
    assert_int_equal(r2.has_spare, 1);
    node_rng_normal(&r2, 1, one + 1);
    assert_int_equal(r2.has_spare, 0);
    assert_memory_equal(one, two, sizeof one);
}

static void test_rng_different_seeds_differ(void **state)
{
    (void)state;
    enum { S = 64 };
    double first[S][4];
    for (uint64_t seed = 0; seed < S; seed++) {
        node_rng r;
        node_rng_seed(&r, seed == S - 1 ? UINT64_MAX : seed);
        node_rng_uniform(&r, 4, first[seed]);
    }
    for (size_t i = 0; i < S; i++)
        for (size_t j = i + 1; j < S; j++)
            for (size_t k = 0; k < 4; k++)
                assert_true(first[i][k] != first[j][k]);
}

/* ---- random numbers: distributions -------------------------------------------------- */

/* Bounds are five standard errors of each statistic for the fixed seed: a correct
   generator passes them, and any bias of a few standard errors would show. */
static void test_rng_uniform_moments(void **state)
{
    (void)state;
    enum { N = 1000000 };
    double *u = malloc(N * sizeof *u);
    assert_non_null(u);
    node_rng r;
    node_rng_seed(&r, 2024);
    assert_status(node_rng_uniform(&r, N, u), NODE_OK);
    double s1 = 0, s2 = 0, lo = 1, hi = 0;
    size_t below_tenth = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(u[i] >= 0.0 && u[i] < 1.0);
        s1 += u[i];
        lo = fmin(lo, u[i]);
        hi = fmax(hi, u[i]);
        below_tenth += u[i] < 0.1;
    }
    double mean = s1 / N;
    for (size_t i = 0; i < N; i++)
        s2 += (u[i] - mean) * (u[i] - mean);
    double var = s2 / (N - 1);
    assert_true(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / N));
    /* Var of the sample variance of U(0,1): (1/80 − 1/144) / N */
    assert_true(fabs(var - 1.0 / 12) < 5 * sqrt((1.0 / 80 - 1.0 / 144) / N));
    assert_true(lo < 1e-4 && hi > 1 - 1e-4);
    assert_true(fabs((double)below_tenth / N - 0.1) < 5 * sqrt(0.09 / N));
    free(u);
}

static void test_rng_normal_moments(void **state)
{
    (void)state;
    enum { N = 1000000 };
    double *z = malloc(N * sizeof *z);
    assert_non_null(z);
    node_rng r;
    node_rng_seed(&r, 77);
    assert_status(node_rng_normal(&r, N, z), NODE_OK);
    double s1 = 0;
    size_t tail = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(isfinite(z[i]));
        s1 += z[i];
        tail += fabs(z[i]) > 2.0;
    }
    double mean = s1 / N, m2 = 0, m4 = 0;
    for (size_t i = 0; i < N; i++) {
        double d = (z[i] - mean) * (z[i] - mean);
        m2 += d;
        m4 += d * d;
    }
    m2 /= N;
    m4 /= N;
    assert_true(fabs(mean) < 5 / sqrt((double)N));
    assert_true(fabs(m2 - 1) < 5 * sqrt(2.0 / N));
    assert_true(fabs(m4 / (m2 * m2) - 3) < 5 * sqrt(24.0 / N));   /* kurtosis */
    double p2 = 0.04550026389635842;                                    /* P(|Z| > 2) */
    assert_true(fabs((double)tail / N - p2) < 5 * sqrt(p2 * (1 - p2) / N));
    free(z);
}

static void test_rng_permutation_is_uniform(void **state)
{
    (void)state;
    node_rng r;
    node_rng_seed(&r, 5);
    /* every draw is a permutation; the first entry is uniform over 0..9 (χ², 9 dof) */
    enum { N = 10, T = 100000 };
    size_t idx[N];
    double first[N] = { 0 }, last[N] = { 0 };
    for (size_t t = 0; t < T; t++) {
        assert_status(node_rng_permutation(&r, N, idx), NODE_OK);
        int seen[N] = { 0 };
        for (size_t i = 0; i < N; i++) {
            assert_true(idx[i] < N);
            seen[idx[i]]++;
        }
        for (size_t i = 0; i < N; i++)
            assert_int_equal(seen[i], 1);
        first[idx[0]]++;
        last[idx[N - 1]]++;
    }
    double c1 = 0, c2 = 0, e = (double)T / N;
    for (size_t i = 0; i < N; i++) {
        c1 += (first[i] - e) * (first[i] - e) / e;
        c2 += (last[i] - e) * (last[i] - e) / e;
    }
    assert_true(c1 < chi2_bound(N - 1));
    assert_true(c2 < chi2_bound(N - 1));

    /* all 24 orders of 4 items equally likely (χ², 23 dof) */
    double count[4][4][4][4];
    memset(count, 0, sizeof count);
    enum { T4 = 240000 };
    for (size_t t = 0; t < T4; t++) {
        node_rng_permutation(&r, 4, idx);
        count[idx[0]][idx[1]][idx[2]][idx[3]]++;
    }
    double c4 = 0, e4 = (double)T4 / 24;
    size_t distinct = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 4; c++)
                for (size_t d = 0; d < 4; d++)
                    if (a != b && a != c && a != d && b != c && b != d && c != d) {
                        c4 += (count[a][b][c][d] - e4) * (count[a][b][c][d] - e4) / e4;
                        distinct += count[a][b][c][d] > 0;
                    }
    assert_int_equal(distinct, 24);
    assert_true(c4 < chi2_bound(23));

    /* n = 0 and n = 1 */
    assert_status(node_rng_permutation(&r, 0, NULL), NODE_OK);
    idx[0] = 7;
    assert_status(node_rng_permutation(&r, 1, idx), NODE_OK);
    assert_int_equal(idx[0], 0);
}

static void test_rng_invalid_arguments(void **state)
{
    (void)state;
    node_rng r;
    double d[2];
    size_t i[2];
    assert_status(node_rng_seed(NULL, 1), NODE_EINVAL);
    node_rng_seed(&r, 1);
    assert_status(node_rng_uniform(NULL, 2, d), NODE_EINVAL);
    assert_status(node_rng_normal(NULL, 2, d), NODE_EINVAL);
    assert_status(node_rng_permutation(NULL, 2, i), NODE_EINVAL);
    node_rng before = r;
    assert_status(node_rng_uniform(&r, 2, NULL), NODE_EINVAL);
    assert_status(node_rng_normal(&r, 2, NULL), NODE_EINVAL);
    assert_status(node_rng_permutation(&r, 2, NULL), NODE_EINVAL);
    assert_memory_equal(&r, &before, sizeof r);   /* a refused call draws nothing */
    assert_status(node_rng_uniform(&r, 0, NULL), NODE_OK);
    assert_status(node_rng_normal(&r, 0, NULL), NODE_OK);
    assert_memory_equal(&r, &before, sizeof r);
}

/* ---- Gaussian NLL ------------------------------------------------------------------ */

#define HALF_LOG_2PI (0.5 * log(2 * 3.14159265358979323846))

static void test_nll_closed_form(void **state)
{
    (void)state;
    const double x[3] = { 1, 2, -1 }, mu[3] = { 0.5, 2, 1 };
    const double lv[3] = { 0, log(4.0), -1 };
    double c = HALF_LOG_2PI, nll;
    /* 0.25/2 + 0 + c;  0 + ½ log 4 + c;  4 / (2 e^-1) − ½ + c */
    double want = 0.125 + log(2.0) + (2 * exp(1.0) - 0.5) + 3 * c;
    assert_status(node_gaussian_nll(3, x, mu, lv, 0, NULL, &nll, NULL, NULL, NULL), NODE_OK);
    assert_close(nll, want, 1e-14, 0);

    /* gradients: (μ − x)/σ² and ½ − (x − μ)²/(2σ²) */
    double g[3], gv[3];
    assert_status(node_gaussian_nll(3, x, mu, lv, 0, NULL, &nll, g, gv, NULL), NODE_OK);
    assert_close(g[0], -0.5, 1e-15, 0);
    assert_close(g[1], 0, 0, 1e-300);
    assert_close(g[2], 2 * exp(1.0), 1e-15, 0);
    assert_close(gv[0], 0.5 - 0.125, 1e-15, 0);
    assert_close(gv[1], 0.5, 1e-15, 0);
    assert_close(gv[2], 0.5 - 2 * exp(1.0), 1e-15, 0);

    /* logvar NULL: the constant, σ² = 1/4 for every entry (logvar_const is not read
       when logvar is given: a NaN there is fine) */
    double lc = log(0.25);
    want = (0.25 + 0 + 4) * 2 + 3 * (0.5 * lc + c);
    assert_status(node_gaussian_nll(3, x, mu, NULL, lc, NULL, &nll, g, NULL, NULL), NODE_OK);
    assert_close(nll, want, 1e-14, 0);
    assert_close(g[0], -2, 1e-15, 0);
    assert_close(g[2], 8, 1e-15, 0);
    double lv4[3] = { lc, lc, lc };
    double nll2;
    assert_status(node_gaussian_nll(3, x, mu, lv4, NAN, NULL, &nll2, NULL, NULL, NULL),
                  NODE_OK);
    assert_close(nll2, nll, 1e-15, 0);

    /* the mask: entry 1 left out, its NaN never read, its gradients 0 */
    const unsigned char mask[3] = { 1, 0, 1 };
    const double xn[3] = { 1, NAN, -1 }, mun[3] = { 0.5, INFINITY, 1 };
    const double lvn[3] = { 0, NAN, -1 };
    g[1] = gv[1] = 99;
    assert_status(node_gaussian_nll(3, xn, mun, lvn, 0, mask, &nll, g, gv, NULL), NODE_OK);
    assert_close(nll, 0.125 + (2 * exp(1.0) - 0.5) + 2 * c, 1e-14, 0);
    assert_true(g[1] == 0 && gv[1] == 0);
    assert_close(g[2], 2 * exp(1.0), 1e-15, 0);

    /* no entries: 0 */
    assert_status(node_gaussian_nll(0, x, mu, NULL, 0, NULL, &nll, NULL, NULL, NULL), NODE_OK);
    assert_true(nll == 0);
}

static double nll_of(size_t n, const double *x, const double *mu, const double *lv, double lc,
                     const unsigned char *mask)
{
    double v;
    assert_status(node_gaussian_nll(n, x, mu, lv, lc, mask, &v, NULL, NULL, NULL), NODE_OK);
    return v;
}

static void test_nll_gradients_match_central_differences(void **state)
{
    (void)state;
    enum { N = 9 };
    double x[N], mu[N], lv[N], g[N], gv[N];
    unsigned char mask[N];
    node_rng r;
    node_rng_seed(&r, 31);
    node_rng_normal(&r, N, x);
    node_rng_normal(&r, N, mu);
    node_rng_normal(&r, N, lv);
    for (size_t i = 0; i < N; i++)
        mask[i] = i % 4 != 1;
    for (int masked = 0; masked < 2; masked++) {
        const unsigned char *m = masked ? mask : NULL;
        double nll;
        assert_status(node_gaussian_nll(N, x, mu, lv, 0, m, &nll, g, gv, NULL), NODE_OK);
        for (size_t i = 0; i < N; i++) {
            double h = 1e-6, keep = mu[i];
            mu[i] = keep + h;
            double up = nll_of(N, x, mu, lv, 0, m);
            mu[i] = keep - h;
            double dn = nll_of(N, x, mu, lv, 0, m);
            mu[i] = keep;
            assert_close(g[i], (up - dn) / (2 * h), 1e-6, 1e-8);
            keep = lv[i];
            lv[i] = keep + h;
            up = nll_of(N, x, mu, lv, 0, m);
            lv[i] = keep - h;
            dn = nll_of(N, x, mu, lv, 0, m);
            lv[i] = keep;
            assert_close(gv[i], (up - dn) / (2 * h), 1e-6, 1e-8);
            if (m && !m[i])
                assert_true(g[i] == 0 && gv[i] == 0);
        }
        /* the constant log-variance: dmu only */
        double lc = -0.7;
        assert_status(node_gaussian_nll(N, x, mu, NULL, lc, m, &nll, g, NULL, NULL), NODE_OK);
        for (size_t i = 0; i < N; i++) {
            double h = 1e-6, keep = mu[i];
            mu[i] = keep + h;
            double up = nll_of(N, x, mu, NULL, lc, m);
            mu[i] = keep - h;
            double dn = nll_of(N, x, mu, NULL, lc, m);
            mu[i] = keep;
            assert_close(g[i], (up - dn) / (2 * h), 1e-6, 1e-8);
        }
    }
}

/* A refused NLL call: its status, a message with `want`, and nll, dmu, dlogvar as
   they were. */
static void assert_nll_refused(size_t n, const double *x, const double *mu, const double *lv,
                               double lc, const unsigned char *mask, bool with_nll,
                               bool with_dmu, bool with_dlv, node_status st, const char *want)
{
    double nll = -7.25, g[4], gv[4], g0[4];
    for (size_t i = 0; i < 4; i++)
        g[i] = gv[i] = g0[i] = 100.0 + (double)i;
    node_error e;
    assert_status(node_gaussian_nll(n, x, mu, lv, lc, mask, with_nll ? &nll : NULL,
                                    with_dmu ? g : NULL, with_dlv ? gv : NULL, &e), st);
    assert_int_equal(e.status, st);
    assert_message(&e, want);
    assert_true(nll == -7.25);
    assert_memory_equal(g, g0, sizeof g);
    assert_memory_equal(gv, g0, sizeof gv);
}

static void test_nll_invalid_arguments(void **state)
{
    (void)state;
    const double x[3] = { 1, 2, 3 }, mu[3] = { 0, 0, 0 }, lv[3] = { 0, 0, 0 };
    const node_status E = NODE_EINVAL;
    assert_nll_refused(3, NULL, mu, lv, 0, NULL, true, true, true, E, "x is NULL");
    assert_nll_refused(3, x, NULL, lv, 0, NULL, true, true, true, E, "mu is NULL");
    assert_nll_refused(3, x, mu, lv, 0, NULL, false, true, true, E, "nll is NULL");
    assert_nll_refused(3, x, mu, NULL, 0, NULL, true, true, true, E,
                       "dlogvar is given but logvar is NULL");
    assert_nll_refused(3, x, mu, NULL, NAN, NULL, true, true, false, E,
                       "logvar_const = nan is not finite");
    assert_nll_refused(3, x, mu, NULL, INFINITY, NULL, true, false, false, E,
                       "logvar_const = inf");
    const double xb[3] = { 1, NAN, 3 }, mub[3] = { 0, 0, -INFINITY }, lvb[3] = { 0, INFINITY, 0 };
    assert_nll_refused(3, xb, mu, lv, 0, NULL, true, true, true, E,
                       "x[1] = nan at an observed entry is not finite");
    assert_nll_refused(3, x, mub, lv, 0, NULL, true, true, true, E,
                       "mu[2] = -inf at an observed entry is not finite");
    assert_nll_refused(3, x, mu, lvb, 0, NULL, true, true, true, E,
                       "logvar[1] = inf at an observed entry is not finite");
    const unsigned char m1[3] = { 1, 1, 0 };
    assert_nll_refused(3, xb, mu, lv, 0, m1, true, true, true, E, "x[1]");
    /* err NULL is fine */
    double nll;
    assert_status(node_gaussian_nll(3, NULL, mu, lv, 0, NULL, &nll, NULL, NULL, NULL), E);
}

static void test_nll_overflow_is_refused_with_nothing_written(void **state)
{
    (void)state;
    const node_status F = NODE_ENONFINITE;
    /* (x − μ)² overflows */
    const double x[2] = { 0, 1e200 }, mu[2] = { 0, -1e200 }, lv[2] = { 0, 0 };
    assert_nll_refused(2, x, mu, lv, 0, NULL, true, true, true, F,
                       "overflows at entry 1");
    /* σ tiny: exp(−v/2) overflows */
    const double x2[2] = { 0, 1 }, lv2[2] = { 0, -1500 }, z[3] = { 0, 0, 0 };
    assert_nll_refused(2, x2, z, lv2, 0, NULL, true, false, false, F, "overflows");
    /* the sum of finite terms overflows: each ½ e² is 0.72e308 */
    const double x3[3] = { 1.2e154, -1.2e154, 1.2e154 };
    assert_nll_refused(3, x3, z, NULL, 0, NULL, true, true, false, F, "overflows at entry 2");
    /* the value is finite but ∂/∂μ = (μ − x)/σ² is not: refused only when asked for */
    const double x4[1] = { 1e-200 }, mu4[1] = { 0 }, lv4[1] = { -1400 };
    double nll;
    assert_status(node_gaussian_nll(1, x4, mu4, lv4, 0, NULL, &nll, NULL, NULL, NULL), NODE_OK);
    assert_true(isfinite(nll));
    assert_nll_refused(1, x4, mu4, lv4, 0, NULL, true, true, false, F, "gradient");
}

/* ---- KL ------------------------------------------------------------------------------ */

static void test_kl_closed_form_and_gradients(void **state)
{
    (void)state;
    const double mu[3] = { 0, 1, -2 }, lv[3] = { 0, log(2.0), -1 };
    double kl, g[3], gv[3];
    assert_status(node_kl_normal(3, mu, lv, &kl, g, gv, NULL), NODE_OK);
    /* ½ (σ² + μ² − 1 − log σ²): 0;  ½ (2 + 1 − 1 − log 2);  ½ (e^-1 + 4 − 1 + 1) */
    assert_close(kl, 0.5 * (2 - log(2.0)) + 0.5 * (exp(-1.0) + 4), 1e-15, 0);
    assert_close(g[1], 1, 1e-15, 0);
    assert_close(g[2], -2, 1e-15, 0);
    assert_true(gv[0] == 0);
    assert_close(gv[1], 0.5, 1e-15, 0);
    assert_close(gv[2], 0.5 * (exp(-1.0) - 1), 1e-15, 0);

    /* both sides of the switch from the series to expm1 at |v| = ½ */
    const double v2[2] = { 0.25, -0.75 }, z2[2] = { 0, 0 };
    assert_status(node_kl_normal(2, z2, v2, &kl, NULL, NULL, NULL), NODE_OK);
    assert_close(kl, 0.5 * (exp(0.25) - 1.25) + 0.5 * (exp(-0.75) - 0.25), 1e-14, 0);

    /* accurate where σ² is near 1: KL of N(0, e^1e-9) is ½ (e^v − 1 − v) ≈ v²/4 */
    const double tiny[1] = { 1e-9 }, zero[1] = { 0 };
    assert_status(node_kl_normal(1, zero, tiny, &kl, NULL, NULL, NULL), NODE_OK);
    assert_close(kl, 0.25e-18 + 1e-27 / 12, 1e-12, 0);

    /* central differences at random points */
    enum { N = 6 };
    double m[N], v[N];
    node_rng r;
    node_rng_seed(&r, 8);
    node_rng_normal(&r, N, m);
    node_rng_normal(&r, N, v);
    double dg[N], dgv[N];
    assert_status(node_kl_normal(N, m, v, &kl, dg, dgv, NULL), NODE_OK);
    for (size_t i = 0; i < N; i++) {
        double h = 1e-6, up, dn, keep = m[i];
        m[i] = keep + h;
        node_kl_normal(N, m, v, &up, NULL, NULL, NULL);
        m[i] = keep - h;
        node_kl_normal(N, m, v, &dn, NULL, NULL, NULL);
        m[i] = keep;
        assert_close(dg[i], (up - dn) / (2 * h), 1e-6, 1e-8);
        keep = v[i];
        v[i] = keep + h;
        node_kl_normal(N, m, v, &up, NULL, NULL, NULL);
        v[i] = keep - h;
        node_kl_normal(N, m, v, &dn, NULL, NULL, NULL);
        v[i] = keep;
        assert_close(dgv[i], (up - dn) / (2 * h), 1e-6, 1e-8);
    }
}

static void assert_kl_refused(size_t n, const double *mu, const double *lv, bool with_kl,
                              node_status st, const char *want)
{
    double kl = -7.25, g[4], gv[4], g0[4];
    for (size_t i = 0; i < 4; i++)
        g[i] = gv[i] = g0[i] = 100.0 + (double)i;
    node_error e;
    assert_status(node_kl_normal(n, mu, lv, with_kl ? &kl : NULL, g, gv, &e), st);
    assert_int_equal(e.status, st);
    assert_message(&e, want);
    assert_true(kl == -7.25);
    assert_memory_equal(g, g0, sizeof g);
    assert_memory_equal(gv, g0, sizeof gv);
}

static void test_kl_invalid_arguments_and_overflow(void **state)
{
    (void)state;
    const double mu[2] = { 0, 1 }, lv[2] = { 0, 0 };
    assert_kl_refused(2, NULL, lv, true, NODE_EINVAL, "mu is NULL");
    assert_kl_refused(2, mu, NULL, true, NODE_EINVAL, "logvar is NULL");
    assert_kl_refused(2, mu, lv, false, NODE_EINVAL, "kl is NULL");
    const double mub[2] = { 0, NAN }, lvb[2] = { -INFINITY, 0 };
    assert_kl_refused(2, mub, lv, true, NODE_EINVAL, "mu[1] = nan is not finite");
    assert_kl_refused(2, mu, lvb, true, NODE_EINVAL, "logvar[0] = -inf is not finite");
    const double big[2] = { 0, 800 }, huge[2] = { 1e200, 0 };
    assert_kl_refused(2, mu, big, true, NODE_ENONFINITE, "the KL overflows at entry 1");
    assert_kl_refused(2, huge, lv, true, NODE_ENONFINITE, "the KL overflows at entry 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_matches_the_reference_algorithm),
        cmocka_unit_test(test_rng_same_seed_same_stream),
        cmocka_unit_test(test_rng_different_seeds_differ),
        cmocka_unit_test(test_rng_uniform_moments),
        cmocka_unit_test(test_rng_normal_moments),
        cmocka_unit_test(test_rng_permutation_is_uniform),
        cmocka_unit_test(test_rng_invalid_arguments),
        cmocka_unit_test(test_nll_closed_form),
        cmocka_unit_test(test_nll_gradients_match_central_differences),
        cmocka_unit_test(test_nll_invalid_arguments),
        cmocka_unit_test(test_nll_overflow_is_refused_with_nothing_written),
        cmocka_unit_test(test_kl_closed_form_and_gradients),
        cmocka_unit_test(test_kl_invalid_arguments_and_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
