/* test_cnfdata.c — the CNF example's data (examples/util/cnfdata.c): e^{−z}I₀(z) against
 * a quadrature of its integral, each known density integrating to 1 on a grid, each
 * sampler's histogram against its density (a χ² test), the Monte Carlo entropies
 * against closed forms or thin-ring approximations, and the point-cloud CSV reader on
 * good files and on every malformed case ("path:line: why").
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnfdata.h"

static const double PI = 3.14159265358979323846;

static char dir[] = "/tmp/libnode_cnfdata_XXXXXX";
static char path[4096];

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

static const char *put(const char *name, const char *text)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ---- e^{-z} I0(z) -------------------------------------------------------------------- */

/* e^{-z} I0(z) = (1/2π) ∫_0^{2π} e^{z(cos φ − 1)} dφ: the trapezoid rule on a periodic
   analytic integrand converges geometrically (20000 nodes: to rounding for z <= 1e4). */
static double i0e_quadrature(double z)
{
    const int n = 20000;
    double s = 0;
    for (int k = 0; k < n; k++)
        s += exp(z * (cos(2 * PI * k / n) - 1));
    return s / n;
}

static void test_i0e_matches_its_integral(void **state)
{
    (void)state;
    const double zs[] = { 0, 1e-6, 0.3, 1, 4, 10, 19.9, 20, 20.1, 35, 100, 1e3, 1e4 };
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++)
        assert_close(ex_i0e(zs[i]), i0e_quadrature(zs[i]), 1e-13, 0);
    assert_close(ex_i0e(0), 1.0, 0, 0);
}

/* ---- densities --------------------------------------------------------------------------- */

/* ∫ p over [x0, x1] × [y0, y1] by the midpoint rule with nx × ny cells. */
static double integrate(ex_toy t, double x0, double x1, double y0, double y1, int nx, int ny)
{
    const double hx = (x1 - x0) / nx, hy = (y1 - y0) / ny;
    double s = 0;
    for (int i = 0; i < nx; i++)
        for (int j = 0; j < ny; j++) {
            double x[2] = { x0 + (i + 0.5) * hx, y0 + (j + 0.5) * hy };
            s += exp(ex_toy_log_prob(t, x));
        }
    return s * hx * hy;
}

static void test_densities_integrate_to_one(void **state)
{
    (void)state;
    /* boxes at least 8 noise std beyond the support; cells below σ/4 */
    assert_close(integrate(EX_TOY_CIRCLES, -1.6, 1.6, -1.6, 1.6, 320, 320), 1.0, 1e-8, 0);
    assert_close(integrate(EX_TOY_8GAUSSIANS, -6, 6, -6, 6, 240, 240), 1.0, 1e-8, 0);
    assert_close(integrate(EX_TOY_MOONS, -4.5, 4.5, -3.5, 3.5, 180, 140), 1.0, 1e-6, 0);
    /* cells of 0.1 never straddle a square's edge: exact up to rounding */
    assert_close(integrate(EX_TOY_CHECKERBOARD, -5, 5, -5, 5, 100, 100), 1.0, 1e-12, 0);
    assert_true(isnan(ex_toy_log_prob(EX_TOY_PINWHEEL, (const double[2]){ 0, 0 })));
    assert_false(ex_toy_has_density(EX_TOY_PINWHEEL));
}

/* The circles' density against its definition, the angular integral of a Gaussian
   around each ring (trapezoid rule, periodic: independent of the I0 formula). */
static void test_circles_density_is_the_ring_integral(void **state)
{
    (void)state;
    const double s = 0.06, pts[][2] = { { 0, 0 }, { 0.5, 0.01 }, { 0.3, -0.6 }, { 1, 1 },
                                        { -0.2, 0.7 }, { 1.3, 0 } };
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        double p = 0;
        const int n = 4000;
        for (int ring = 0; ring < 2; ring++) {
            double r = ring ? 0.5 : 1;
            for (int k = 0; k < n; k++) {
                double a = 2 * PI * k / n, dx = pts[i][0] - r * cos(a), dy = pts[i][1] - r * sin(a);
                p += 0.5 / n * exp(-(dx * dx + dy * dy) / (2 * s * s)) / (2 * PI * s * s);
            }
        }
        assert_close(ex_toy_log_prob(EX_TOY_CIRCLES, pts[i]), log(p), 1e-10, 1e-12);
    }
}

/* Histogram of n samples on a bins × bins grid over the toy's extent against n times the
   density's integral over each bin (midpoint rule, sub × sub points per bin); bins that
   expect fewer than 5 are pooled with the mass outside.  χ² with k − 1 degrees of
   freedom stays below k − 1 + 6√(2(k − 1)) but with probability ~1e-7 (normal
   approximation), so a correct sampler fails with a fixed seed essentially never. */
static void check_histogram(ex_toy t, size_t n, int bins, int sub)
{
    const double e = ex_toy_extent(t), h = 2 * e / bins;
    double *x = malloc(2 * n * sizeof *x), *cnt = calloc((size_t)bins * bins, sizeof *cnt);
    assert_non_null(x);
    assert_non_null(cnt);
    ex_rng r;
    ex_rng_seed(&r, 1234 + (uint64_t)t);
    ex_toy_sample(t, &r, n, x);
    double outside = 0;
    for (size_t i = 0; i < n; i++) {
        double fi = floor((x[2 * i] + e) / h), fj = floor((x[2 * i + 1] + e) / h);
        if (fi >= 0 && fi < bins && fj >= 0 && fj < bins)
            cnt[(int)fi * bins + (int)fj] += 1;
        else
            outside += 1;
    }
    double chi2 = 0, pooled_obs = outside, pooled_exp = n;
    int k = 0;
    for (int i = 0; i < bins; i++)
        for (int j = 0; j < bins; j++) {
            double m = 0;
            for (int a = 0; a < sub; a++)
                for (int b = 0; b < sub; b++) {
                    double p[2] = { -e + (i + (a + 0.5) / sub) * h, -e + (j + (b + 0.5) / sub) * h };
                    m += exp(ex_toy_log_prob(t, p));
                }
            m *= (double)n * h * h / (sub * sub);
            if (m < 5) {
                pooled_obs += cnt[i * bins + j];
                continue;
            }
            pooled_exp -= m;
            chi2 += (cnt[i * bins + j] - m) * (cnt[i * bins + j] - m) / m;
            k++;
        }
    /* the pooled cell: what the counted bins do not expect */
    double rest = pooled_exp;
    if (rest >= 5) {
        chi2 += (pooled_obs - rest) * (pooled_obs - rest) / rest;
        k++;
    }
    double limit = (k - 1) + 6 * sqrt(2.0 * (k - 1));
    if (!(chi2 < limit))
        print_message("%s: chi2 %.1f over %d cells, limit %.1f\n", ex_toy_name(t), chi2, k, limit);
    assert_true(k > 20);
    assert_true(chi2 < limit);
    free(x);
    free(cnt);
}

static void test_samplers_match_densities(void **state)
{
    (void)state;
    check_histogram(EX_TOY_CIRCLES, 100000, 24, 8);
    check_histogram(EX_TOY_8GAUSSIANS, 100000, 24, 6);
    check_histogram(EX_TOY_CHECKERBOARD, 100000, 16, 4);
    check_histogram(EX_TOY_MOONS, 50000, 16, 4);
}

/* Pinwheel has no density here: check E|x|²/4 = E r² + E s² = 1 + 0.3² + 0.1² = 1.1
   within 5 standard errors. */
static void test_pinwheel_second_moment(void **state)
{
    (void)state;
    const size_t n = 100000;
    double *x = malloc(2 * n * sizeof *x), m = 0, m2 = 0;
    assert_non_null(x);
    ex_rng r;
    ex_rng_seed(&r, 5);
    ex_toy_sample(EX_TOY_PINWHEEL, &r, n, x);
    for (size_t i = 0; i < n; i++) {
        double q = (x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1]) / 4;
        m += q;
        m2 += q * q;
    }
    m /= n;
    double se = sqrt((m2 / n - m * m) / n);
    assert_true(fabs(m - 1.1) < 5 * se);
    free(x);
}

/* ---- entropies ------------------------------------------------------------------------- */

static void test_entropies_against_closed_forms(void **state)
{
    (void)state;
    double H, se;
    /* uniform on area 32 */
    assert_int_equal(ex_toy_entropy(EX_TOY_CHECKERBOARD, 1, 1000, &H, &se), 0);
    assert_close(H, log(32.0), 1e-12, 0);
    assert_close(se, 0, 0, 1e-12);
    /* 8 Gaussians 6σ apart: log 8 + log(2πe s²), s = 0.5/1.414, up to the overlap (~1e-3) */
    assert_int_equal(ex_toy_entropy(EX_TOY_8GAUSSIANS, 2, 20000, &H, &se), 0);
    const double s = 0.5 / 1.414;
    assert_true(se > 0 && se < 0.02);
    assert_true(fabs(H - (log(8.0) + 1 + log(2 * PI * s * s))) < 4 * se + 0.005);
    /* two thin rings: log 2 + ½ Σ_r log(2πr) + ½ log(2πe σ²) (0.790; the rings' curvature
       moves it by ~0.005) */
    assert_int_equal(ex_toy_entropy(EX_TOY_CIRCLES, 3, 20000, &H, &se), 0);
    const double thin = log(2.0) + 0.5 * (log(2 * PI) + log(PI)) +
                        0.5 * log(2 * PI * exp(1.0) * 0.06 * 0.06);
    assert_true(fabs(H - thin) < 4 * se + 0.02);
    assert_int_equal(ex_toy_entropy(EX_TOY_PINWHEEL, 1, 100, &H, &se), -1);
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < EX_TOY_COUNT; k++) {
        ex_toy t;
        assert_int_equal(ex_toy_parse(ex_toy_name((ex_toy)k), &t), 0);
        assert_int_equal((int)t, k);
    }
    ex_toy t;
    assert_int_equal(ex_toy_parse("spirals", &t), -1);
    assert_null(ex_toy_name(EX_TOY_COUNT));
}

/* ---- point-cloud CSV ----------------------------------------------------------------------- */

static void test_points_csv_reads_good_files(void **state)
{
    (void)state;
    char msg[512];
    double *x = NULL;
    size_t n = 0, d = 0;
    const char *p = put("good.csv", "\xEF\xBB\xBFx,y,z\r\n1, 2 ,3\r\n\r\n-4.5,5e-1,6\r\n");
    assert_int_equal(ex_points_read_csv(p, &x, &n, &d, msg, sizeof msg), 0);
    assert_int_equal(n, 2);
    assert_int_equal(d, 3);
    const double want[6] = { 1, 2, 3, -4.5, 0.5, 6 };
    for (int i = 0; i < 6; i++)
        assert_close(x[i], want[i], 0, 0);
    free(x);
    unlink(p);
    p = put("one.csv", "v\n0.25\n7\n");
    assert_int_equal(ex_points_read_csv(p, &x, &n, &d, msg, sizeof msg), 0);
    assert_int_equal(n, 2);
    assert_int_equal(d, 1);
    assert_close(x[1], 7, 0, 0);
    free(x);
    /* write, read back */
    const double pts[4] = { 0.1, -1e-300, 3.25, 1.0 / 3 };
    assert_int_equal(ex_points_write_csv(p, pts, 2, 2), 0);
    assert_int_equal(ex_points_read_csv(p, &x, &n, &d, msg, sizeof msg), 0);
    assert_int_equal(n, 2);
    assert_int_equal(d, 2);
    assert_memory_equal(x, pts, sizeof pts);
    free(x);
    unlink(p);
}

static void test_points_csv_refuses_malformed_files(void **state)
{
    (void)state;
    static const struct { const char *text, *want; } cases[] = {
        { "", ":1: empty file" },
        { "\n  \n", ":3: empty file" },
        { "x,y\n", ":2: no points after the header" },
        { "1,2\n3,4\n", ":1: expected a header line" },
        { "x,y\n1,2\n3\n", ":3: 1 column, expected 2" },
        { "x,y\n1,2\n3,4,5\n", ":3: 3 columns, expected 2" },
        { "x,y\n1,\n", ":2: column 2 is empty" },
        { "x,y\n1,abc\n", ":2: column 2: 'abc' is not a number" },
        { "x,y\n1,2x\n", ":2: column 2: '2x' is not a number" },
        { "x,y\n1,2\nnan,1\n", ":3: column 1: 'nan' is not finite" },
        { "x,y\n1,inf\n", ":2: column 2: 'inf' is not finite" },
        { "x,y\n1,1e999\n", ":2: column 2: '1e999' is not finite" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512] = "";
        double *x = (double *)&msg;   /* must stay untouched */
        size_t n = 77, d = 77;
        const char *p = put("bad.csv", cases[i].text);
        assert_int_equal(ex_points_read_csv(p, &x, &n, &d, msg, sizeof msg), -1);
        if (!strstr(msg, cases[i].want) || strncmp(msg, p, strlen(p)) != 0)
            print_message("case %zu: \"%s\" lacks \"%s\"\n", i, msg, cases[i].want);
        assert_non_null(strstr(msg, cases[i].want));
        assert_int_equal(strncmp(msg, p, strlen(p)), 0);
        assert_ptr_equal(x, (double *)&msg);
        assert_int_equal(n, 77);
        assert_int_equal(d, 77);
        unlink(p);
    }
    char msg[512];
    double *x = NULL;
    size_t n, d;
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    assert_int_equal(ex_points_read_csv(path, &x, &n, &d, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "missing.csv: "));
    assert_null(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i0e_matches_its_integral),
        cmocka_unit_test(test_densities_integrate_to_one),
        cmocka_unit_test(test_circles_density_is_the_ring_integral),
        cmocka_unit_test(test_samplers_match_densities),
        cmocka_unit_test(test_pinwheel_second_moment),
        cmocka_unit_test(test_entropies_against_closed_forms),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_points_csv_reads_good_files),
        cmocka_unit_test(test_points_csv_refuses_malformed_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
