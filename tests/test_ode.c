/* test_ode.c — the explicit ODE solver core: closed-form problems, observed orders
 * of convergence (fixed steps, and the embedded pairs' main solutions at fixed
 * steps), tolerance proportionality, dense output, both directions of time and the
 * observer contract used by backprop.  Failure paths: test_ode_fail.c.
 */
#include "test_util.h"
#include "internal.h"
#include "ode_fixtures.h"

#include <stdlib.h>
#include <string.h>

/* ---- problems with closed-form solutions (more in ode_fixtures.h) --------------------- */

/* the linear spiral y' = A y, A = [[-0.1, 2], [-2, -0.1]]:
   y(t) = e^{-0.1 t} [[cos 2t, sin 2t], [-sin 2t, cos 2t]] y(0) */
static int spiral(void *ctx, double t, const double *y, double *dydt)
{
    if (ctx)
        ((counter *)ctx)->calls++;
    (void)t;
    dydt[0] = -0.1 * y[0] + 2 * y[1];
    dydt[1] = -2 * y[0] - 0.1 * y[1];
    return 0;
}

static void spiral_exact(double t, const double *y0, double *y)
{
    double e = exp(-0.1 * t), c = cos(2 * t), s = sin(2 * t);
    y[0] = e * (c * y0[0] + s * y0[1]);
    y[1] = e * (-s * y0[0] + c * y0[1]);
}

/* Nonlinear, non-autonomous scalar problems for the orders:
   A: y' = -2t y², y = 1/(1+t²);   E: y' = y cos t, y = e^{sin t} (y(0) = 1). */
static int prob_a(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    dydt[0] = -2 * t * y[0] * y[0];
    return 0;
}
static double exact_a(double t) { return 1 / (1 + t * t); }
static int prob_e(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    dydt[0] = y[0] * cos(t);
    return 0;
}
static double exact_e(double t) { return exp(sin(t)); }
/* B: y' = cos(t) y², y = 1/(1 - sin t) (y(0) = 1). */
static int prob_b(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    dydt[0] = cos(t) * y[0] * y[0];
    return 0;
}
static double exact_b(double t) { return 1 / (1 - sin(t)); }

/* An adaptive method forced to fixed steps h: every step is accepted (huge tolerance)
   and max_step = h, so it runs its main solution at steps of h. */
static node_options fixed_steps(node_method m, double h)
{
    node_options o = opts(m, 1e10, h);
    if (is_adaptive(m))
        o.max_step = h;
    return o;
}

/* ---- closed-form cases ----------------------------------------------------------------- */

static void test_exponential_decay_all_methods(void **state)
{
    (void)state;
    double y0[3] = { 1, -2, 0.5 }, ts[4] = { 0, 0.5, 1.25, 2 }, ys[12];
    node_system sys = sys_of(3, decay, NULL);
    /* the step / tolerance and the error each method must reach */
    static const double step[] = { 1e-4, 1e-3, 1e-2, 0, 0, 0 };
    static const double want[] = { 1e-3, 1e-5, 1e-8, 1e-6, 1e-6, 1e-6 };
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-7, step[m]);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 4, ys, &o, &st), NODE_OK);
        static const double rate[3] = { 1, 2, 0.5 };
        for (int i = 0; i < 4; i++)
            for (int d = 0; d < 3; d++)
                assert_close(ys[i * 3 + d], y0[d] * exp(-rate[d] * ts[i]), 0, want[m]);
        assert_true(st.nfe > 0 && st.naccept > 0 && st.nsteps == st.naccept + st.nreject);
    }
}

static void test_harmonic_oscillator_dopri5_defaults(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[6] = { 0, 0.3, 1, 3.3, 7, 10 }, ys[12];
    node_system sys = sys_of(2, oscillator, NULL);
    assert_status(node_odeint(&sys, y0, ts, 6, ys, NULL, NULL), NODE_OK);
    for (int i = 0; i < 6; i++) {
        assert_close(ys[2 * i], cos(ts[i]), 0, 1e-6);
        assert_close(ys[2 * i + 1], -sin(ts[i]), 0, 1e-6);
    }
}

static void test_linear_spiral_every_adaptive_method(void **state)
{
    (void)state;
    double y0[2] = { 2, 0 }, ts[3] = { 0, 5, 25 }, ys[6], ex[2];
    node_system sys = sys_of(2, spiral, NULL);
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-9, 0);
        assert_status(node_odeint(&sys, y0, ts, 3, ys, &o, NULL), NODE_OK);
        for (int i = 0; i < 3; i++) {
            spiral_exact(ts[i], y0, ex);
            assert_close(ys[2 * i], ex[0], 0, 1e-7);
            assert_close(ys[2 * i + 1], ex[1], 0, 1e-7);
        }
    }
}

/* ---- observed orders ------------------------------------------------------------------ */

/* Least-squares slope of log err against log h. */
static double slope(const double *h, const double *err, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        double x = log(h[i]), y = log(err[i]);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

typedef struct order_case {
    node_method method;
    int (*f)(void *, double, const double *, double *);
    double (*exact)(double);
    double T;
    int n[4];         /* numbers of steps, in the asymptotic range above roundoff */
} order_case;

/* Error at T (dense = 0), or the largest error at the dense outputs placed at
   θ = 0.37 of every step (dense = 1). */
static double order_error(const order_case *oc, int nsteps, int dense)
{
    double h = oc->T / nsteps;
    int nt = dense ? nsteps + 2 : 2;
    double *ts = malloc((size_t)nt * sizeof *ts), *ys = malloc((size_t)nt * sizeof *ys);
    assert_non_null(ts);
    assert_non_null(ys);
    ts[0] = 0;
    for (int j = 0; dense && j < nsteps; j++)
        ts[j + 1] = (j + 0.37) * h;
    ts[nt - 1] = oc->T;
    double y0 = 1;
    node_system sys = sys_of(1, oc->f, NULL);
    node_options o = fixed_steps(oc->method, h);
    node_stats st;
    assert_status(node_odeint(&sys, &y0, ts, (size_t)nt, ys, &o, &st), NODE_OK);
    assert_int_equal(st.naccept, nsteps);
    assert_int_equal(st.nreject, 0);
    double err = 0;
    if (dense)
        for (int i = 1; i < nt - 1; i++)
            err = fmax(err, fabs(ys[i] - oc->exact(ts[i])));
    else
        err = fabs(ys[nt - 1] - oc->exact(oc->T));
    free(ts);
    free(ys);
    return err;
}

static void check_orders(const order_case *cases, int ncases, int dense)
{
    for (int c = 0; c < ncases; c++) {
        const order_case *oc = &cases[c];
        const node__tableau *tab = node__tableau_get(oc->method);
        double h[4], err[4];
        for (int i = 0; i < 4; i++) {
            h[i] = oc->T / oc->n[i];
            err[i] = order_error(oc, oc->n[i], dense);
        }
        double p = slope(h, err, 4);
        /* the interpolant's local error h^(q+1) against the global error h^p */
        int want = dense ? (tab->dense_order + 1 < tab->order ? tab->dense_order + 1 : tab->order)
                         : tab->order;
        if (fabs(p - want) > 0.2)
            fail_msg("%s %s: observed order %.3f, want %d (errors %.2e .. %.2e)", tab->name,
                     dense ? "dense" : "step", p, want, err[0], err[3]);
    }
}

static const order_case step_cases[] = {
    { NODE_EULER, prob_a, exact_a, 2, { 80, 160, 320, 640 } },
    { NODE_MIDPOINT, prob_a, exact_a, 2, { 40, 80, 160, 320 } },
    { NODE_RK4, prob_a, exact_a, 2, { 10, 20, 40, 80 } },
    { NODE_BOSH3, prob_a, exact_a, 2, { 20, 40, 80, 160 } },
    /* DOPRI5's small leading error constant: the h^5 term dominates only late */
    { NODE_DOPRI5, prob_e, exact_e, 10, { 64, 90, 128, 181 } },
    { NODE_DOP853, prob_b, exact_b, 1, { 11, 16, 23, 32 } },
};

static void test_observed_order_of_every_method_at_fixed_steps(void **state)
{
    (void)state;
    check_orders(step_cases, (int)(sizeof step_cases / sizeof step_cases[0]), 0);
}

static const order_case dense_cases[] = {
    { NODE_EULER, prob_a, exact_a, 2, { 80, 160, 320, 640 } },
    { NODE_MIDPOINT, prob_a, exact_a, 2, { 40, 80, 160, 320 } },
    { NODE_RK4, prob_a, exact_a, 2, { 20, 40, 80, 160 } },
    { NODE_BOSH3, prob_a, exact_a, 2, { 20, 40, 80, 160 } },
    { NODE_DOPRI5, prob_e, exact_e, 10, { 64, 90, 128, 181 } },
    { NODE_DOP853, prob_e, exact_e, 10, { 32, 45, 64, 90 } },
};

static void test_observed_order_of_dense_output(void **state)
{
    (void)state;
    check_orders(dense_cases, (int)(sizeof dense_cases / sizeof dense_cases[0]), 1);
}

/* ---- tolerance proportionality and dense output --------------------------------------- */

static void test_error_scales_with_tolerance(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[2] = { 0, 10 }, ys[4], ex[2];
    node_system sys = sys_of(2, spiral, NULL);
    spiral_exact(10, y0, ex);
    for (int m = 0; m < 3; m++) {
        double prev = INFINITY;
        long prev_nfe = 0;
        for (int k = 3; k <= 10; k++) {
            double tol = pow(10, -k);
            node_options o = opts(adaptive[m], tol, 0);
            node_stats st;
            assert_status(node_odeint(&sys, y0, ts, 2, ys, &o, &st), NODE_OK);
            double err = fmax(fabs(ys[2] - ex[0]), fabs(ys[3] - ex[1]));
            /* within 100x of the tolerance, falling with it, costing more */
            if (err > 100 * tol || !(err < prev) || st.nfe <= prev_nfe)
                fail_msg("%s tol %g: error %.3g (previous %.3g), nfe %ld (previous %ld)",
                         node_method_name(adaptive[m]), tol, err, prev, st.nfe, prev_nfe);
            prev = err;
            prev_nfe = st.nfe;
        }
    }
}

static void test_dense_output_between_steps_is_accurate(void **state)
{
    (void)state;
    enum { NT = 401 };
    static double ts[NT], ys[2 * NT];
    double y0[2] = { 1, 0.5 }, ex[2];
    for (int i = 0; i < NT; i++)
        ts[i] = 12.0 * i / (NT - 1);
    node_system sys = sys_of(2, spiral, NULL);
    for (int m = 0; m < 3; m++) {
        for (int k = 5; k <= 9; k += 2) {
            double tol = pow(10, -k);
            node_options o = opts(adaptive[m], tol, 0);
            node_stats st;
            assert_status(node_odeint(&sys, y0, ts, NT, ys, &o, &st), NODE_OK);
            /* outputs do not force steps: the same steps as with the end point alone
               (the dense stages of DOP853 cost extra evaluations, nothing else) */
            double ends[2] = { ts[0], ts[NT - 1] }, yend[4];
            node_stats st1;
            assert_status(node_odeint(&sys, y0, ends, 2, yend, &o, &st1), NODE_OK);
            assert_int_equal(st.nsteps, st1.nsteps);
            assert_int_equal(st.naccept, st1.naccept);
            assert_memory_equal(yend + 2, ys + 2 * (NT - 1), 2 * sizeof(double));
            if (adaptive[m] != NODE_DOP853)
                assert_int_equal(st.nfe, st1.nfe);
            double worst = 0;
            for (int i = 0; i < NT; i++) {
                spiral_exact(ts[i], y0, ex);
                worst = fmax(worst, fmax(fabs(ys[2 * i] - ex[0]), fabs(ys[2 * i + 1] - ex[1])));
            }
            if (worst > 100 * tol)
                fail_msg("%s tol %g: dense output error %.3g", node_method_name(adaptive[m]),
                         tol, worst);
        }
    }
}

static void test_backward_in_time(void **state)
{
    (void)state;
    double y0[2] = { 0.3, -1 }, ts[5] = { 6, 4.5, 2, 0, -3 }, ys[10], ex[2];
    node_system sys = sys_of(2, spiral, NULL);
    /* the step (fixed methods) and the error each method must reach over [-3, 6] */
    static const double step[] = { 1e-4, 1e-3, 1e-2, 0, 0, 0 };
    static const double want[] = { 5e-3, 5e-5, 1e-7, 1e-7, 1e-7, 1e-7 };
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-9, step[m]);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 5, ys, &o, &st), NODE_OK);
        for (int i = 0; i < 5; i++) {
            spiral_exact(ts[i] - ts[0], y0, ex);
            assert_close(ys[2 * i], ex[0], 0, want[m]);
            assert_close(ys[2 * i + 1], ex[1], 0, want[m]);
        }
        if (step[m] > 0)   /* fixed steps of h from ts[0] down to ts[4] */
            assert_int_equal(st.nsteps, (long)ceil(9 / step[m] - 1e-6));
    }
}

static void test_single_output_time_needs_no_evaluation(void **state)
{
    (void)state;
    counter c = { 0, 0 };
    double y0[3] = { 1, 2, 3 }, ts[1] = { 4 }, ys[3] = { 0 };
    node_system sys = sys_of(3, decay, &c);
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-6, 0.1);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 1, ys, &o, &st), NODE_OK);
        assert_memory_equal(ys, y0, sizeof y0);
        assert_int_equal(st.nfe, 0);
    }
    assert_int_equal(c.calls, 0);
    /* ys may be y0 itself */
    assert_status(node_odeint(&sys, y0, ts, 1, y0, NULL, NULL), NODE_OK);
    assert_true(y0[0] == 1 && y0[2] == 3);
}

static void test_nfe_counts_every_evaluation(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[7] = { 0, 0.1, 0.7, 1.9, 2, 3.14, 5 }, ys[14];
    for (int m = 0; m < NMETHODS; m++) {
        counter c = { 0, 0 };
        node_system sys = sys_of(2, spiral, &c);
        node_options o = opts(all_methods[m], 1e-6, is_adaptive(all_methods[m]) ? 0 : 0.07);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 7, ys, &o, &st), NODE_OK);
        assert_int_equal(st.nfe, c.calls);
        assert_int_equal(st.nsteps, st.naccept + st.nreject);
    }
}

static void test_tiny_interval_is_not_an_underflow(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ys[4];
    node_system sys = sys_of(2, oscillator, NULL);
    double t1 = 1e3;
    for (int k = 0; k < 3; k++)
        t1 = nextafter(t1, INFINITY);
    double ts[2] = { 1e3, t1 };   /* 3 ulp long */
    for (int m = 0; m < NMETHODS; m++) {
        node_options o = opts(all_methods[m], 1e-8, is_adaptive(all_methods[m]) ? 0 : 0.1);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 2, ys, &o, &st), NODE_OK);
        assert_int_equal(st.naccept, 1);
        assert_close(ys[2], 1, 0, 1e-12);
    }
}

static void test_fixed_step_count_and_last_step(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ys[4];
    node_system sys = sys_of(2, oscillator, NULL);
    struct { double T, h; long steps; } cases[] = {
        { 1, 0.3, 4 },            /* 0.3 0.3 0.3 0.1 */
        { 1, 0.1, 10 },           /* exact multiple */
        { 1, 1.0 / 3, 3 },
        { 0.05, 0.3, 1 },         /* one short step */
        { 1 + 1e-12, 0.25, 4 },   /* remainder of 1e-12: stretch, no 5th step */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double ts[2] = { 0, cases[i].T };
        node_options o = opts(NODE_RK4, 1e-6, cases[i].h);
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 2, ys, &o, &st), NODE_OK);
        assert_int_equal(st.nsteps, cases[i].steps);
        assert_int_equal(st.naccept, cases[i].steps);
        assert_close(ys[2], cos(cases[i].T), 0, 1e-3);
    }
}

static void test_max_step_is_respected(void **state)
{
    (void)state;
    double y0[2] = { 1, 0 }, ts[2] = { 0, 10 }, ys[4];
    node_system sys = sys_of(2, oscillator, NULL);
    for (int m = 0; m < 3; m++) {
        node_options o = opts(adaptive[m], 1e-3, 0);
        o.max_step = 0.05;
        node_stats st;
        assert_status(node_odeint(&sys, y0, ts, 2, ys, &o, &st), NODE_OK);
        assert_true(st.naccept >= 200);
    }
}

/* ---- the observer (exact backprop records the forward pass with it) ------------------- */

typedef struct recorder {
    const node__tableau *tab;
    node__ode ode;
    size_t dim;
    double t_end, h;      /* end of the last reported step */
    double y_replay[8];   /* ynew of the last step, replayed from (t, h, y) */
    double *k[NODE__MAXSTAGES], kbuf[NODE__MAXSTAGES * 8], tmp[8];
    long nsteps;
    size_t next_output;
    const double *ts;
    double t0_step;
    double max_h;
    int fail_step, fail_output;
} recorder;

static int rec_step(void *ctx, double t, double h, const double *y)
{
    recorder *r = ctx;
    if (r->nsteps > 0) {
        /* consecutive: starts where the previous ended, from the replayed state */
        assert_true(t == r->t_end);
        assert_memory_equal(y, r->y_replay, r->dim * sizeof *y);
    }
    r->t0_step = t;
    r->h = h;
    r->t_end = t + h;
    r->max_h = fmax(r->max_h, fabs(h));
    /* replay the step with the public kernel: what backprop will do */
    long nfe = 0;
    assert_int_equal(node__rk_stages(node__ode_kernels_for(NODE__ISA_GENERIC), r->tab, &r->ode, t, h, y, r->k, 0, r->tab->s, r->tmp,
                                     &nfe), 0);
    node__rk_combine(node__ode_kernels_for(NODE__ISA_GENERIC), r->dim, y, h, r->tab->b, r->tab->s, r->k, r->y_replay);
    r->nsteps++;
    return r->nsteps == r->fail_step;
}

static int rec_output(void *ctx, size_t i, double theta)
{
    recorder *r = ctx;
    assert_int_equal(i, r->next_output);
    r->next_output++;
    assert_true(theta > 0 && theta <= 1);
    assert_close(r->t0_step + theta * r->h, r->ts[i], 1e-14, 1e-14);
    return (long)i == r->fail_output;
}

static void init_recorder(recorder *r, node_method m, const double *ts)
{
    memset(r, 0, sizeof *r);
    r->tab = node__tableau_get(m);
    r->dim = 2;
    r->ode.dim = 2;
    r->ode.f = spiral;
    r->next_output = 1;
    r->ts = ts;
    r->fail_step = r->fail_output = -1;
    for (int i = 0; i < NODE__MAXSTAGES; i++)
        r->k[i] = r->kbuf + 8 * i;
}

static void test_observer_sees_consistent_steps_and_every_output_once(void **state)
{
    (void)state;
    double ts[6] = { 0, 0.01, 1.3, 1.31, 4, 7.5 }, ys[12];
    double tsb[4] = { 3, 2.5, -1, -2 }, ysb[8];
    for (int m = 0; m < NMETHODS; m++) {
        for (int back = 0; back < 2; back++) {
            const double *tt = back ? tsb : ts;
            size_t nt = back ? 4 : 6;
            double *yy = back ? ysb : ys;
            recorder r;
            init_recorder(&r, all_methods[m], tt);
            node_solver *s;
            assert_status(node_solver_create(&s), NODE_OK);
            node_options o;
            node_options in = opts(all_methods[m], 1e-8, is_adaptive(all_methods[m]) ? 0 : 0.05);
            assert_status(node__options_resolve(&in, &o, NULL), NODE_OK);
            node_stats st = { 0 };
            node__observer obs = { &r, rec_step, rec_output, NULL, NULL };
            double y0[2] = { 1, 0.25 };
            assert_status(node__integrate(s, &r.ode, y0, tt, nt, yy, &o, &st, &obs), NODE_OK);
            node_solver_free(s);
            assert_int_equal(r.nsteps, st.naccept);
            assert_int_equal(r.next_output, nt);
            /* the last step ends on ts[nt-1] and its replay gives the last row */
            assert_close(r.t_end, tt[nt - 1], 1e-15, 0);
            assert_memory_equal(r.y_replay, yy + 2 * (nt - 1), 2 * sizeof(double));
        }
    }
}

static void test_observer_failure_stops_with_ecallback(void **state)
{
    (void)state;
    double ts[4] = { 0, 1, 2, 3 }, ys[8], y0[2] = { 1, 0.25 };
    for (int which = 0; which < 2; which++) {
        recorder r;
        init_recorder(&r, NODE_DOPRI5, ts);
        r.fail_step = which == 0 ? 3 : -1;
        r.fail_output = which == 1 ? 2 : -1;
        node_solver *s;
        assert_status(node_solver_create(&s), NODE_OK);
        node_options o;
        assert_status(node__options_resolve(NULL, &o, NULL), NODE_OK);
        node_stats st = { 0 };
        node__observer obs = { &r, rec_step, rec_output, NULL, NULL };
        assert_status(node__integrate(s, &r.ode, y0, ts, 4, ys, &o, &st, &obs), NODE_ECALLBACK);
        if (which == 0)
            assert_int_equal(r.nsteps, 3);
        else
            assert_int_equal(r.next_output, 3);
        node_solver_free(s);
    }
}

/* A custom norm (the adjoint's block norm goes through this hook). */
typedef struct norm_ctx { long calls; double scale; } norm_ctx;

static double scaled_norm(void *nctx, size_t dim, const double *err, const double *y,
                          const double *ynew, double rtol, double atol)
{
    norm_ctx *c = nctx;
    c->calls++;
    double acc = 0;
    for (size_t i = 0; i < dim; i++) {
        double r = err[i] / (atol + rtol * fmax(fabs(y[i]), fabs(ynew[i])));
        acc += r * r;
    }
    return c->scale * sqrt(acc / (double)dim);
}

static void test_custom_norm_is_used(void **state)
{
    (void)state;
    double y0[2] = { 1, 0.25 }, ts[3] = { 0, 2, 6 }, ys1[6], ys2[6];
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_options o;
    node_options in = opts(NODE_DOPRI5, 1e-6, 0);
    assert_status(node__options_resolve(&in, &o, NULL), NODE_OK);
    node_system sys = sys_of(2, spiral, NULL);
    node_stats st0;
    assert_status(node_solver_odeint(s, &sys, y0, ts, 3, ys1, &o, &st0), NODE_OK);
    /* the same norm as the default: the same steps */
    norm_ctx nc = { 0, 1.0 };
    node__ode ode = { 2, spiral, NULL, scaled_norm, &nc };
    node_stats st1 = { 0 };
    assert_status(node__integrate(s, &ode, y0, ts, 3, ys2, &o, &st1, NULL), NODE_OK);
    assert_true(nc.calls > 0);
    assert_int_equal(st1.nfe, st0.nfe);
    for (int i = 0; i < 6; i++)
        assert_close(ys2[i], ys1[i], 0, 1e-13);
    /* a norm 1000x larger acts like a 1000x tighter tolerance: more steps */
    nc.scale = 1000;
    node_stats st2 = st1;
    assert_status(node__integrate(s, &ode, y0, ts, 3, ys2, &o, &st2, NULL), NODE_OK);
    assert_true(st2.naccept - st1.naccept > 2 * st0.naccept);   /* and it ADDS to stats */
    node_solver_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_decay_all_methods),
        cmocka_unit_test(test_harmonic_oscillator_dopri5_defaults),
        cmocka_unit_test(test_linear_spiral_every_adaptive_method),
        cmocka_unit_test(test_observed_order_of_every_method_at_fixed_steps),
        cmocka_unit_test(test_observed_order_of_dense_output),
        cmocka_unit_test(test_error_scales_with_tolerance),
        cmocka_unit_test(test_dense_output_between_steps_is_accurate),
        cmocka_unit_test(test_backward_in_time),
        cmocka_unit_test(test_single_output_time_needs_no_evaluation),
        cmocka_unit_test(test_nfe_counts_every_evaluation),
        cmocka_unit_test(test_tiny_interval_is_not_an_underflow),
        cmocka_unit_test(test_fixed_step_count_and_last_step),
        cmocka_unit_test(test_max_step_is_respected),
        cmocka_unit_test(test_observer_sees_consistent_steps_and_every_output_once),
        cmocka_unit_test(test_observer_failure_stops_with_ecallback),
        cmocka_unit_test(test_custom_norm_is_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
