/* test_tsdata.c — the latent-ODE example's spirals (examples/util/tsdata.c): the
 * training series that --train-extra lengthens.  With train_extra = k each training
 * series is its window's points (the same as without) followed by up to k points after
 * the window, in increasing time, each one of the spiral's noisy points on the curve;
 * test series and truth do not change; k above the spirals' `extra` is EINVAL.
 */
#include "test_util.h"

#include <string.h>

#include "tsdata.h"

static const ex_spiral_config cfg = { .nspiral = 40, .ntotal = 200, .window = 50,
                                      .extra = 50, .ntest = 6,
                                      .stop = 6 * 3.14159265358979323846, .a = 0.0,
                                      .b = 0.3, .noise = 0.1 };

static void series(const node_tseries *d, size_t i, size_t *n, const double **t,
                   const double **x)
{
    int64_t id;
    node_tseries_get(d, i, &id, n, t, x);
}

static void test_train_extra_appends_points_after_the_window(void **state)
{
    (void)state;
    ex_spirals sp;
    assert_int_equal(ex_spirals_generate(&sp, &cfg, 7), 0);
    const size_t nobs = 12, ntr = cfg.nspiral - cfg.ntest;
    for (size_t k = 0; k <= cfg.extra; k += 25) {
        node_tseries *tr0, *te0, *tt0, *tr, *te, *tt;
        double split0, split;
        node_error err;
        assert_int_equal(ex_spirals_subsample(&sp, nobs, 0, 99, &tr0, &te0, &tt0, &split0, &err),
                         NODE_OK);
        assert_int_equal(ex_spirals_subsample(&sp, nobs, k, 99, &tr, &te, &tt, &split, &err),
                         NODE_OK);
        assert_true(split == split0);
        assert_true(split > sp.t[cfg.window - 1] && split < sp.t[cfg.window]);
        assert_int_equal(node_tseries_count(tr), ntr);
        size_t longer = 0;
        for (size_t i = 0; i < ntr; i++) {
            size_t n0, n;
            const double *t0, *x0, *t, *x;
            series(tr0, i, &n0, &t0, &x0);
            series(tr, i, &n, &t, &x);
            /* the window's points first, bit for bit the ones drawn without extra */
            assert_int_equal(n0, nobs);
            assert_true(n >= n0);
            assert_memory_equal(t, t0, n0 * sizeof *t);
            assert_memory_equal(x, x0, 2 * n0 * sizeof *x);
            assert_true(t[n0 - 1] < split);
            /* then at most k, all on the curve past the window, increasing, each
               one of the spiral's noisy points */
            const size_t on_curve = sp.valid[i] - cfg.window;
            assert_true(n - n0 <= k);
            assert_true(n - n0 <= on_curve);
            if (k > 0 && on_curve >= cfg.extra)
                assert_int_equal(n - n0, k);   /* nothing cut off: all k are there */
            for (size_t j = n0; j < n; j++) {
                assert_true(t[j] > split && t[j] > t[j - 1]);
                size_t idx = (size_t)(t[j] / sp.dt + 0.5);
                assert_true(idx >= cfg.window && idx < sp.valid[i]);
                assert_true(t[j] == sp.t[idx]);
                assert_true(x[2 * j] == sp.noisy[(i * sp.len + idx) * 2]);
                assert_true(x[2 * j + 1] == sp.noisy[(i * sp.len + idx) * 2 + 1]);
            }
            longer += n > n0;
        }
        if (k > 0)
            assert_true(longer > ntr / 2);   /* most windows leave room after them */
        else
            assert_int_equal(longer, 0);
        /* the test series and the truth are the same either way */
        for (size_t i = 0; i < cfg.ntest; i++) {
            size_t na, nb;
            const double *ta, *xa, *tb, *xb;
            series(te0, i, &na, &ta, &xa);
            series(te, i, &nb, &tb, &xb);
            assert_int_equal(na, nb);
            assert_int_equal(na, nobs + cfg.extra);
            assert_memory_equal(ta, tb, na * sizeof *ta);
            assert_memory_equal(xa, xb, 2 * na * sizeof *xa);
            series(tt0, i, &na, &ta, &xa);
            series(tt, i, &nb, &tb, &xb);
            assert_memory_equal(xa, xb, 2 * na * sizeof *xa);
        }
        node_tseries_free(tr0);
        node_tseries_free(te0);
        node_tseries_free(tt0);
        node_tseries_free(tr);
        node_tseries_free(te);
        node_tseries_free(tt);
    }
    node_tseries *a = NULL, *b = NULL, *c = NULL;
    double s;
    node_error err;
    assert_int_equal(ex_spirals_subsample(&sp, nobs, cfg.extra + 1, 99, &a, &b, &c, &s, &err),
                     NODE_EINVAL);
    assert_null(a);
    assert_non_null(strstr(err.message, "train_extra = 51"));
    ex_spirals_free(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_extra_appends_points_after_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
