/* test_ode_fail.c — the solver core's failure paths: every status (max steps, step-size
 * underflow, NaN/Inf cured or not, callback failure), every invalid argument, the
 * failing-allocator sweep and workspace reuse without allocation.  What a failure
 * reports (message, callback_rc, t_reached, rows_done): test_ode_failinfo.c.
 */
#include "test_util.h"
#include "internal.h"
#include "ode_fixtures.h"

#include <string.h>

/* ---- problems ------------------------------------------------------------------------ */

/* y' = -y (dim 1) */
static int scalar_decay(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    (void)t;
    dydt[0] = -y[0];
    return 0;
}

/* ---- failures ------------------------------------------------------------------------------ */

static void test_max_steps_reached(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[2] = { 0, 100 }, ys[4];
    node_system sys = sys_of(2, oscillator, NULL);
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-8, is_adaptive(all_methods[m]) ? 0 : 0.01);
        o.max_steps = 20;
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 2, ys, &o, &st), NODE_EMAXSTEPS);
        assert_true(st.nsteps <= 20);
    }
}

static void test_step_size_underflow_at_a_singularity(void **state)
{
    (void)state;
    double y0 = 1, ts[2] = { 0, 2 }, ys[2];
    node_system sys = sys_of(1, blowup, NULL);
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-6, 0);
        node_stats st;
        node_status got = node_odeint(&sys, &y0, ts, 2, ys, &o, &st);
        assert_status(got, NODE_ESTEPSIZE);
        assert_true(st.naccept > 10);
    }
}

/* y' = -50 (y - cos t) from y(0) = 3, but f is NaN for |y| > 10: the solution stays in
   [0.8, 3], only the stages of a too-large (unstable) step leave it. */
static int stiffish(void *ctx, double t, const double *y, double *dydt)
{
    if (fabs(y[0]) > 10) {
        ((counter *)ctx)->calls++;
        dydt[0] = NAN;
    } else {
        dydt[0] = -50 * (y[0] - cos(t));
    }
    return 0;
}

static void test_nonfinite_cured_by_smaller_steps(void **state)
{
    (void)state;
    double y0 = 3, ts[2] = { 0, 0.5 }, ys[2];
    /* exact: y_p = (2500 cos t + 50 sin t) / 2501 plus a decaying transient */
    double yp0 = 2500.0 / 2501, yp = (2500 * cos(0.5) + 50 * sin(0.5)) / 2501;
    double want = yp + (y0 - yp0) * exp(-25.0);
    for (int m = 0; m < 3; m++) {
        counter nans = { 0, 0 };
        node_system sys = sys_of(1, stiffish, &nans);
        node_options o = opts(adaptive[m], 1e-8, 0.5);   /* first step: the whole span */
        node_stats st;
        assert_status(node_odeint(&sys, &y0, ts, 2, ys, &o, &st), NODE_OK);
        assert_true(nans.calls >= 1);                   /* f did return NaN... */
        assert_true(st.nreject >= 1);                   /* ...and the step was retried */
        assert_close(ys[1], want, 0, 1e-6);
    }
}

static void test_nonfinite_that_no_step_cures(void **state)
{
    (void)state;
    double y0 = 1, ts[2] = { 0, 1 }, ys[2];
    int on = 1;
    node_system sys = sys_of(1, fragile, &on);
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-6, 0);
        assert_status(node_odeint(&sys, &y0, ts, 2, ys, &o, NULL), NODE_ENONFINITE);
    }
    /* NaN at the initial point */
    double bad = 0.1, ts2[2] = { 0, 0.1 };
    node_options o = opts(NODE_DOPRI5, 1e-6, 0);
    assert_status(node_odeint(&sys, &bad, ts2, 2, ys, &o, NULL), NODE_ENONFINITE);
    /* fixed-step methods fail at once */
    node_system sys2 = sys_of(1, fragile, NULL);
    for (int m = 0; m < 3; m++) {
        node_options of = opts(all_methods[m], 1e-6, 0.5);
        node_stats st;
        assert_status(node_odeint(&sys2, &y0, ts, 2, ys, &of, &st), NODE_ENONFINITE);
        assert_int_equal(st.nreject, 0);                 /* no retry */
        assert_int_equal(st.nsteps, st.naccept + 1);     /* the failing step */
    }
}

static void test_callback_failure_stops_at_once(void **state)
{
    (void)state;
    double y0[3] = { 1, 1, 1 }, ts[3] = { 0, 1, 2 }, ys[9];
    for (int m = 0; m < NMETHODS; m++) {
        for (long k = 1; k <= 12; k += 5) {
            counter c = { 0, k };
            node_system sys = sys_of(3, decay, &c);
            node_options o = opts(all_methods[m], 1e-6, 0.1);
            node_stats st;
            assert_status(node_odeint(&sys, y0, ts, 3, ys, &o, &st), NODE_ECALLBACK);
            assert_int_equal(c.calls, k);   /* not called again after the failure */
            assert_int_equal(st.nfe, k);
        }
    }
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[3] = { 0, 1, 2 }, ys[6];
    node_system sys = sys_of(2, oscillator, NULL);
    node_options o = node_options_default();
    assert_status(node_odeint(NULL, y0, ts, 3, ys, &o, NULL), NODE_EINVAL);
    node_system nof = sys;
    nof.f = NULL;
    assert_status(node_odeint(&nof, y0, ts, 3, ys, &o, NULL), NODE_EINVAL);
    node_system zero = sys;
    zero.dim = 0;
    assert_status(node_odeint(&zero, y0, ts, 3, ys, &o, NULL), NODE_EINVAL);
    assert_status(node_odeint(&sys, NULL, ts, 3, ys, &o, NULL), NODE_EINVAL);
    assert_status(node_odeint(&sys, y0, NULL, 3, ys, &o, NULL), NODE_EINVAL);
    assert_status(node_odeint(&sys, y0, ts, 3, NULL, &o, NULL), NODE_EINVAL);
    assert_status(node_odeint(&sys, y0, ts, 0, ys, &o, NULL), NODE_EINVAL);
    /* ts: repeated, non-monotone, NaN, Inf */
    double bad_ts[][3] = { { 0, 1, 1 }, { 0, 2, 1 }, { 1, 0, 2 }, { 0, NAN, 2 },
                           { 0, 1, INFINITY }, { -INFINITY, 0, 1 }, { 0, 0, 0 } };
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++)
        assert_status(node_odeint(&sys, y0, bad_ts[i], 3, ys, &o, NULL), NODE_EINVAL);
    double nan_ts = NAN;
    assert_status(node_odeint(&sys, y0, &nan_ts, 1, ys, &o, NULL), NODE_EINVAL);
    /* y0 with NaN / Inf */
    double bad_y0[2][2] = { { NAN, 0 }, { 0, -INFINITY } };
    for (int i = 0; i < 2; i++)
        assert_status(node_odeint(&sys, bad_y0[i], ts, 3, ys, &o, NULL), NODE_EINVAL);
    /* options */
    node_options bad[16];
    int nb = 0;
    for (int i = 0; i < 16; i++)
        bad[i] = node_options_default();
    bad[nb++].rtol = 0;
    bad[nb++].atol = -1e-9;
    bad[nb++].rtol = NAN;
    bad[nb++].atol = INFINITY;
    bad[nb].method = NODE_RK4, bad[nb++].step = 0;          /* fixed method without step */
    bad[nb].method = NODE_EULER, bad[nb++].step = -0.1;
    bad[nb].method = NODE_MIDPOINT, bad[nb++].step = NAN;
    bad[nb++].method = (node_method)17;                     /* unknown method */
    bad[nb++].step = -1;
    bad[nb++].step = INFINITY;
    bad[nb++].max_step = -1;
    bad[nb++].max_step = NAN;
    bad[nb++].max_steps = -5;
    bad[nb++].adjoint_rtol = -1;
    bad[nb++].adjoint_atol = NAN;
    for (int i = 0; i < nb; i++) {
        if (node_odeint(&sys, y0, ts, 3, ys, &bad[i], NULL) != NODE_EINVAL)
            fail_msg("invalid options case %d accepted", i);
        node_options r;
        assert_status(node__options_resolve(&bad[i], &r, NULL), NODE_EINVAL);
    }
    /* the solver entry points */
    node_solver *s;
    assert_status(node_solver_create(NULL), NODE_EINVAL);
    assert_status(node_solver_create(&s), NODE_OK);
    assert_status(node_solver_odeint(NULL, &sys, y0, ts, 3, ys, &o, NULL), NODE_EINVAL);
    assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys, &bad[0], NULL), NODE_EINVAL);
    assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, NULL), NODE_OK);
    node_solver_free(s);
    node_solver_free(NULL);
    /* check_ts */
    assert_status(node__check_ts(ts, 3, NULL), NODE_OK);
    assert_status(node__check_ts(NULL, 3, NULL), NODE_EINVAL);
    assert_status(node__check_ts(ts, 0, NULL), NODE_EINVAL);
}

/* ---- memory -------------------------------------------------------------------------------- */

static void test_failing_allocator_sweep(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[3] = { 0, 1, 2 }, ys[6];
    node_system sys = sys_of(2, oscillator, NULL);
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-6, 0.1);
        node_status st = NODE_ENOMEM;
        long k;
        for (k = 0; st == NODE_ENOMEM && k < 20; k++) {
            node_test_alloc_begin(k);
            st = node_odeint(&sys, y0, ts, 3, ys, &o, NULL);
            long live = node_test_alloc_live();
            node_test_alloc_end();
            assert_int_equal(live, 0);
            assert_true(st == NODE_OK || st == NODE_ENOMEM);
        }
        assert_status(st, NODE_OK);
        /* the solver object: create + odeint + free */
        st = NODE_ENOMEM;
        for (k = 0; st == NODE_ENOMEM && k < 20; k++) {
            node_test_alloc_begin(k);
            node_solver *s = NULL;
            st = node_solver_create(&s);
            if (st == NODE_OK) {
                st = node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, NULL);
                node_solver_free(s);
            } else {
                assert_null(s);
            }
            long live = node_test_alloc_live();
            node_test_alloc_end();
            assert_int_equal(live, 0);
        }
        assert_status(st, NODE_OK);
    }
}

static void test_solver_reuse_allocates_nothing(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[3] = { 0, 1, 2 }, ys[6];
    node_system sys = sys_of(2, oscillator, NULL);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-6, 0.1);
        assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, NULL), NODE_OK);
        node_test_alloc_begin(-1);
        node_status st = node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, NULL);
        long n = node_test_alloc_end();
        assert_status(st, NODE_OK);
        assert_int_equal(n, 0);
    }
    /* a smaller problem after a larger one: nothing either */
    double z0 = 1, zs[3];
    node_system small = sys_of(1, scalar_decay, NULL);
    node_test_alloc_begin(-1);
    node_status st = node_solver_odeint(s, &small, &z0, ts, 3, zs, NULL, NULL);
    long n = node_test_alloc_end();
    assert_status(st, NODE_OK);
    assert_int_equal(n, 0);
    node_solver_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_steps_reached),
        cmocka_unit_test(test_step_size_underflow_at_a_singularity),
        cmocka_unit_test(test_nonfinite_cured_by_smaller_steps),
        cmocka_unit_test(test_nonfinite_that_no_step_cures),
        cmocka_unit_test(test_callback_failure_stops_at_once),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_failing_allocator_sweep),
        cmocka_unit_test(test_solver_reuse_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
