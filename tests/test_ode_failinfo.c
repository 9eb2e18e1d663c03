/* test_ode_failinfo.c — what a failed solve reports: for each kind of failure (f's
 * non-zero return, max_steps, step-size underflow, tolerances no step can meet, NaN/Inf
 * not cured, NaN in a stage only dense output uses, a dim no array can have) the status,
 * the message (its key content), callback_rc, t_reached (the end of the last accepted
 * step) and rows_done (with rows 0 .. rows_done-1 of ys holding their values).
 */
#include "test_util.h"
#include "internal.h"
#include "ode_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* t as the solver writes it in messages: the shortest of %.15g / %.17g that reads back. */
static const char *tfmt(char *buf, double t)
{
    snprintf(buf, 32, "%.15g", t);
    if (strtod(buf, NULL) != t)
        snprintf(buf, 32, "%.17g", t);
    return buf;
}

#define assert_contains(msg, sub)                                                           \
    do {                                                                                    \
        if (!strstr((msg), (sub)))                                                          \
            fail_msg("message \"%s\" does not contain \"%s\"", (msg), (sub));               \
    } while (0)

/* The accepted steps of a solve (through the observer exact backprop uses): ends[j] is
   where step j ended. */
typedef struct ends_rec { double t[1 << 16]; long n; } ends_rec;

static int rec_step_start(void *ctx, double t, double h, const double *y)
{
    (void)h;
    (void)y;
    ends_rec *e = ctx;
    if (e->n == 1 << 16)
        return 1;
    if (e->n > 0)
        e->t[e->n - 1] = t;   /* the previous step ended where this one starts */
    e->t[e->n++] = NAN;
    return 0;
}

static void step_ends(const node_system *sys, const double *y0, const double *ts, size_t nt,
                      double *ys, const node_options *in, ends_rec *e)
{
    node_options o;
    assert_status(node__options_resolve(in, &o, NULL), NODE_OK);
    o.max_steps = 1000000;
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node__ode ode = { sys->dim, sys->f, sys->ctx, NULL, NULL };
    node__observer obs = { e, rec_step_start, NULL, NULL, NULL };
    node_stats st;
    memset(&st, 0, sizeof st);
    e->n = 0;
    assert_status(node__integrate(s, &ode, y0, ts, nt, ys, &o, &st, &obs), NODE_OK);
    assert_true(e->n > 0);
    e->t[e->n - 1] = ts[nt - 1];
    node_solver_free(s);
}

/* Rows valid after a failure at t_reached: row 0 and every ts[i] up to t_reached. */
static int64_t rows_upto(const double *ts, size_t nt, double t_reached)
{
    double dir = ts[nt - 1] > ts[0] ? 1 : -1;
    int64_t n = 1;
    while ((size_t)n < nt && dir * (ts[n] - t_reached) <= 0)
        n++;
    return n;
}

/* Fixed steps of 0.25 with outputs on step ends only (no dense stage): a failure in call
   k of f is in stage (k-1) % s of step (k-1) / s, everything is known exactly. */
static void test_failure_details_callback_fixed_steps(void **state)
{
    (void)state;
    double y0[3] = { 1, -2, 0.5 }, ts[5] = { 0, 0.5, 1, 1.5, 2 }, ys[15], good[15];
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = node__tableau_get(all_methods[m]);
        if (tab->err_order > 0)
            continue;
        node_options o = opts(all_methods[m], 1e-6, 0.25);
        counter c0 = { 0, 0 };
        node_system sys0 = sys_of(3, decay, &c0);
        assert_status(node_odeint(&sys0, y0, ts, 5, good, &o, NULL), NODE_OK);
        for (long k = 1; k <= c0.calls; k++) {
            counter c = { 0, k };
            node_system sys = sys_of(3, decay, &c);
            node_stats st;
            memset(ys, 0, sizeof ys);
            assert_status(node_odeint(&sys, y0, ts, 5, ys, &o, &st), NODE_ECALLBACK);
            long step = (k - 1) / tab->s;
            int stage = (int)((k - 1) % tab->s);
            char want[128], b[32];
            snprintf(want, sizeof want, "f returned 7 at t = %s",
                     tfmt(b, 0.25 * (double)step + tab->c[stage] * 0.25));
            assert_string_equal(st.message, want);
            assert_int_equal(st.status, NODE_ECALLBACK);
            assert_int_equal(st.callback_rc, 7);
            assert_int_equal(st.naccept, step);
            assert_true(st.t_reached == 0.25 * (double)step);
            assert_int_equal(st.rows_done, 1 + step / 2);
            assert_memory_equal(ys, good, (size_t)st.rows_done * 3 * sizeof(double));
        }
    }
}

/* Adaptive methods with outputs between steps: t_reached is the end of the last accepted
   step of the same solve without the failure, rows_done counts the rows up to it (DOP853
   may also fail in its dense-only stages, before the rows of that step). */
static void test_failure_details_callback_adaptive(void **state)
{
    (void)state;
    double y0[3] = { 1, -2, 0.5 }, ts[9] = { 0, 0.1, 0.3, 0.35, 0.9, 1.2, 1.7, 2.5, 3 };
    double ys[27], good[27];
    static ends_rec e;
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-6, 0);
        counter c0 = { 0, 0 };
        node_system sys0 = sys_of(3, decay, &c0);
        step_ends(&sys0, y0, ts, 9, good, &o, &e);
        for (long k = 1; k <= c0.calls; k += 3) {
            counter c = { 0, k };
            node_system sys = sys_of(3, decay, &c);
            node_stats st;
            assert_status(node_odeint(&sys, y0, ts, 9, ys, &o, &st), NODE_ECALLBACK);
            assert_contains(st.message, "f returned 7 at t = ");
            assert_int_equal(st.callback_rc, 7);
            double want_t = st.naccept > 0 ? e.t[st.naccept - 1] : ts[0];
            assert_true(st.t_reached == want_t);
            int64_t all = rows_upto(ts, 9, want_t);
            int64_t before = st.naccept > 1 ? rows_upto(ts, 9, e.t[st.naccept - 2]) : 1;
            if (!(st.rows_done == all ||
                  (adaptive[m] == NODE_DOP853 && st.rows_done == before)))
                fail_msg("%s, failure at call %ld: rows_done %lld, want %lld",
                         node_method_name(adaptive[m]), k, (long long)st.rows_done,
                         (long long)all);
            assert_memory_equal(ys, good, (size_t)st.rows_done * 3 * sizeof(double));
        }
    }
}

static void test_failure_details_max_steps(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[5] = { 0, 0.01, 1, 2, 100 }, ys[10], good[10];
    node_system sys = sys_of(2, oscillator, NULL);
    static ends_rec e;
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-8, 0);
        step_ends(&sys, y0, ts, 5, good, &o, &e);
        o.max_steps = 10;
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 5, ys, &o, &st), NODE_EMAXSTEPS);
        assert_int_equal(st.nsteps, 10);
        assert_true(st.t_reached == e.t[st.naccept - 1]);
        char want[128], b[32];
        snprintf(want, sizeof want, "max_steps = 10 reached at t = %s, before the end time 100",
                 tfmt(b, st.t_reached));
        assert_string_equal(st.message, want);
        assert_int_equal(st.callback_rc, 0);
        assert_int_equal(st.rows_done, rows_upto(ts, 5, st.t_reached));
        assert_true(st.rows_done >= 2);
        assert_memory_equal(ys, good, (size_t)st.rows_done * 2 * sizeof(double));
    }
    /* fixed steps: refused before any work */
    node_options o = opts(NODE_RK4, 1e-8, 0.01);
    o.max_steps = 20;
    node_stats st;
    assert_status(node_odeint(&sys, y0, ts, 5, ys, &o, &st), NODE_EMAXSTEPS);
    assert_contains(st.message, "max_steps = 20 is fewer than the 10000 steps of 0.01");
    assert_true(st.t_reached == 0);
    assert_int_equal(st.rows_done, 1);
    assert_int_equal(st.nfe, 0);
}

/* max_steps bounds the steps attempted in one call: a solve that takes S attempts passes
   with max_steps = S, call after call on the same solver, and fails with S - 1. */
static void test_max_steps_is_per_call(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[3] = { 0, 4, 9 }, ys[6];
    node_system sys = sys_of(2, oscillator, NULL);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-6, is_adaptive(all_methods[m]) ? 0 : 0.1);
        node_stats st;
        assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, &st), NODE_OK);
        o.max_steps = st.nsteps;
        for (int call = 0; call < 3; call++)
            assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, NULL), NODE_OK);
        o.max_steps = st.nsteps - 1;
        assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys, &o, NULL), NODE_EMAXSTEPS);
    }
    node_solver_free(s);
}

static void test_failure_details_step_size(void **state)
{
    (void)state;
    double y0 = 1, ts[4] = { 0, 0.5, 0.9, 2 }, ys[4];
    node_system sys = sys_of(1, blowup, NULL);
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-6, 0);
        node_stats st;
        assert_status(node_odeint(&sys, &y0, ts, 4, ys, &o, &st), NODE_ESTEPSIZE);
        assert_true(fabs(st.t_reached - 1) < 1e-3);   /* at the singularity */
        char want[128], b[32];
        snprintf(want, sizeof want, " at t = %s is below ", tfmt(b, st.t_reached));
        assert_contains(st.message, "step size ");
        assert_contains(st.message, want);
        assert_contains(st.message,
                        "what floating point resolves here (rtol = 1e-06, atol = 1e-06)");
        assert_int_equal(st.rows_done, 3);
        for (int i = 0; i < 3; i++)
            assert_close(ys[i], 1 / (1 - ts[i]), 1e-4, 0);
    }
}

/* Tolerances no step can meet: the scaled error overflows to +Inf from finite values, a
   rejection (not a NaN); the step then shrinks to the smallest one a solve from t = 0
   can resolve (16 ulp of the span) within a few rejections. */
static void test_impossible_tolerances_end_in_step_size_promptly(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ys[4];
    node_system sys = sys_of(2, oscillator, NULL);
    static const double spans[][2] = { { 0, 1 }, { 0, -3 }, { 1000, 1001 } };
    for (int m = 0; m < 3; m++)
        for (int j = 0; j < 3; j++) {
            node_options o = opts(adaptive[m], 1e-300, 0);
            node_stats st;
            assert_status(node_odeint(&sys, y0, spans[j], 2, ys, &o, &st), NODE_ESTEPSIZE);
            assert_contains(st.message, "(rtol = 1e-300, atol = 1e-300)");
            assert_true(st.nsteps >= 1 && st.nsteps <= 30);
            assert_int_equal(st.naccept, 0);
            assert_true(st.t_reached == spans[j][0]);
            assert_int_equal(st.rows_done, 1);
            /* the first step given: the same */
            o.step = 0.1;
            assert_status(node_odeint(&sys, y0, spans[j], 2, ys, &o, &st), NODE_ESTEPSIZE);
            assert_true(st.nsteps <= 30);
        }
}

static void test_failure_details_nonfinite(void **state)
{
    (void)state;
    double y0 = 1, ts[3] = { 0, 0.25, 1 }, ys[3];
    int on = 1;
    node_system sys = sys_of(1, fragile, &on);   /* NaN for t > 0.5 */
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-6, 0);
        node_stats st;
        assert_status(node_odeint(&sys, &y0, ts, 3, ys, &o, &st), NODE_ENONFINITE);
        char want[128], b[32];
        snprintf(want, sizeof want, "f returned NaN or Inf near t = %s and ",
                 tfmt(b, st.t_reached));
        assert_contains(st.message, want);
        assert_contains(st.message, "smaller steps");
        assert_contains(st.message, "did not avoid it");
        assert_true(st.t_reached > 0.45 && st.t_reached <= 0.5);
        assert_int_equal(st.rows_done, 2);
        assert_close(ys[1], exp(-0.25), 1e-5, 0);
    }
    /* at the initial point */
    double bad = 0.1, ts2[2] = { 0, 0.1 };
    node_stats st;
    node_options o = opts(NODE_DOPRI5, 1e-6, 0);
    assert_status(node_odeint(&sys, &bad, ts2, 2, ys, &o, &st), NODE_ENONFINITE);
    assert_string_equal(st.message, "f returned NaN or Inf at t = 0, the start of the solve "
                                    "(ts[0], y0)");
    assert_true(st.t_reached == 0);
    assert_int_equal(st.rows_done, 1);
    /* a fixed step is not retried */
    node_system sys2 = sys_of(1, fragile, NULL);   /* NaN for y < 0.55 */
    o = opts(NODE_RK4, 1e-6, 0.25);
    double ts3[3] = { 0, 0.25, 1 };
    assert_status(node_odeint(&sys2, &y0, ts3, 3, ys, &o, &st), NODE_ENONFINITE);
    assert_contains(st.message, "the step from t = 0.5 to 0.75 gave NaN or Inf");
    assert_true(st.t_reached == 0.5);
    assert_int_equal(st.rows_done, 2);
    assert_close(ys[1], exp(-0.25), 1e-4, 0);
}

/* f is NaN on its `nan_at`-th call only (0: never); counts its calls. */
typedef struct nan_once { long calls, nan_at; } nan_once;

static int decay_nan_once(void *ctx, double t, const double *y, double *dydt)
{
    nan_once *c = ctx;
    (void)t;
    dydt[0] = ++c->calls == c->nan_at ? NAN : -y[0];
    return 0;
}

/* A NaN from f in a stage only dense output uses — a fixed method's f(t+h, ynew) on the
   last step, DOP853's stages 13-15 — makes the row NaN: never returned with NODE_OK.
   The dense stages are the last calls of a solve whose last output lies inside its last
   step. */
static void test_nan_in_dense_only_stage_is_not_ok(void **state)
{
    (void)state;
    double y0 = 1, ts[4] = { 0, 0.5, 0.95, 1 }, ys[4], good[4];
    for (int m = 0; m < NMETHODS; m++) {
        const node__tableau *tab = node__tableau_get(all_methods[m]);
        if (tab->s_dense == tab->s)
            continue;   /* no dense-only stage */
        node_options o = opts(all_methods[m], 1e-9, 0.3);   /* steps end 0.3 .. 0.9, 1 */
        if (tab->err_order > 0)
            o.step = 0.5;   /* DOP853: steps [0, 0.5], [0.5, 1] */
        nan_once c0 = { 0, 0 };
        node_system sys0 = sys_of(1, decay_nan_once, &c0);
        assert_status(node_odeint(&sys0, &y0, ts, 4, good, &o, NULL), NODE_OK);
        int ndense = tab->s_dense - tab->s;
        for (int j = 0; j < ndense; j++) {
            nan_once c = { 0, c0.calls - j };
            node_system sys = sys_of(1, decay_nan_once, &c);
            node_stats st;
            assert_status(node_odeint(&sys, &y0, ts, 4, ys, &o, &st), NODE_ENONFINITE);
            assert_contains(st.message, "dense output at ts[2] = 0.95 is NaN or Inf");
            assert_contains(st.message, "in the step from t = ");
            assert_contains(st.message, "to 1)");
            assert_int_equal(st.rows_done, 2);
            assert_true(st.t_reached == 1);   /* the step was accepted */
            assert_memory_equal(ys, good, 2 * sizeof(double));
        }
    }
}

/* DOP853's dense stages on a step that is not the last: f is NaN in a window around
   t = 0.6 that only stage 14 (c = 1/5) of the step [0.5, 1] meets. */
static int decay_nan_window(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    dydt[0] = fabs(t - 0.6) < 0.005 ? NAN : -y[0];
    return 0;
}

static void test_nan_in_dop853_dense_stage_of_any_step(void **state)
{
    (void)state;
    double y0 = 1, ts[5] = { 0, 0.25, 0.75, 1, 1.5 }, ys[5];
    node_system sys = sys_of(1, decay_nan_window, NULL);
    node_options o = opts(NODE_DOP853, 1e3, 0.5);   /* every step accepted */
    o.max_step = 0.5;                              /* steps [0, .5], [.5, 1], [1, 1.5] */
    node_stats st;
    assert_status(node_odeint(&sys, &y0, ts, 5, ys, &o, &st), NODE_ENONFINITE);
    assert_contains(st.message, "dense output at ts[2] = 0.75 is NaN or Inf");
    assert_contains(st.message, "step from t = 0.5 to 1)");
    assert_int_equal(st.rows_done, 2);
    assert_int_equal(st.naccept, 2);
    assert_true(st.t_reached == 1);
    assert_close(ys[1], exp(-0.25), 1e-6, 0);
}

/* A sys->dim too large for any array is refused before y0 is read (ASan would catch a
   read past the one element given). */
static void test_huge_dim_refused_before_reading_y0(void **state)
{
    (void)state;
    double y0[1] = { 1 }, ts[2] = { 0, 1 }, ys[2];
    static const size_t dims[] = { SIZE_MAX, SIZE_MAX / 8 + 1, NODE__MAX_DIM + 1 };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        node_system sys = sys_of(dims[i], decay, NULL);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 2, ys, NULL, &st), NODE_EINVAL);
        assert_contains(st.message, "sys->dim = ");
        assert_true(isnan(st.t_reached));
        assert_int_equal(st.rows_done, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_details_callback_fixed_steps),
        cmocka_unit_test(test_failure_details_callback_adaptive),
        cmocka_unit_test(test_failure_details_max_steps),
        cmocka_unit_test(test_max_steps_is_per_call),
        cmocka_unit_test(test_failure_details_step_size),
        cmocka_unit_test(test_impossible_tolerances_end_in_step_size_promptly),
        cmocka_unit_test(test_failure_details_nonfinite),
        cmocka_unit_test(test_nan_in_dense_only_stage_is_not_ok),
        cmocka_unit_test(test_nan_in_dop853_dense_stage_of_any_step),
        cmocka_unit_test(test_huge_dim_refused_before_reading_y0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
