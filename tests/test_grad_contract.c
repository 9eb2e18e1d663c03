/* test_grad_contract.c — what the gradient calls promise beyond the numbers
 * (include/libnode/grad.h): a NaN from vjp or from a recomputed f never comes back
 * with NODE_OK; failures say where and why (message, callback_rc, t_reached);
 * opt->max_steps is one budget per call; and the adjoint's algorithmic choices
 * (seminorm, the step carried across output times) pinned by exact counts.
 */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

#define N 3
#define NP (N * N + N)     /* θ = [A (row-major), u] */
#define MAXT 16

/* ---- y' = A y + sin(t) u, with ways to fail ------------------------------------------ */

enum { OUT_NONE, OUT_VY, OUT_VP, OUT_VT, OUT_NOISE };

/* ±1e200 by the low bits of t: a right-hand side no step is small enough to follow. */
static double noise(double t)
{
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    u ^= u >> 29;
    u *= 0xBF58476D1CE4E5B9u;
    return (u >> 40) & 1 ? 1e200 : -1e200;
}

typedef struct sys_ctx {
    double p[NP];
    long fcalls;
    long f_nan_after, f_fail_after;   /* f's calls from this index on: NaN / rc 6; -1 never */
    long f_nan_once;                  /* this call alone gives NaN; -1 never */
    double f_fail_above;              /* f returns 5 for t above this (+Inf: never) */
    double f_noise_above;             /* f adds noise() for t above this (+Inf: never) */
    double bad_lo, bad_hi;            /* vjp misbehaves for t in [bad_lo, bad_hi] ... */
    int bad_rc;                       /* ... returning this, */
    int bad_out;                      /* ... or writing NaN into this output */
    double t_failed;                  /* the t of the latest failing call */
    long vcalls, vjp_nan_once;        /* this vjp call alone writes NaN into bad_out */
} sys_ctx;

static int sys_f(void *ctx, double t, const double *y, double *dydt)
{
    sys_ctx *c = ctx;
    long k = c->fcalls++;
    if (c->f_fail_after >= 0 && k >= c->f_fail_after) {
        c->t_failed = t;
        return 6;
    }
    if (t > c->f_fail_above) {
        c->t_failed = t;
        return 5;
    }
    for (int i = 0; i < N; i++) {
        double s = sin(t) * c->p[N * N + i];
        for (int j = 0; j < N; j++)
            s += c->p[i * N + j] * y[j];
        dydt[i] = s;
    }
    if ((c->f_nan_after >= 0 && k >= c->f_nan_after) || k == c->f_nan_once)
        dydt[1] = NAN;
    if (t > c->f_noise_above)
        dydt[0] += noise(t);
    return 0;
}

static int sys_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vy, double *vp, double *vt)
{
    sys_ctx *c = ctx;
    bool bad = (t >= c->bad_lo && t <= c->bad_hi) || c->vcalls++ == c->vjp_nan_once;
    if (bad)
        c->t_failed = t;
    if (bad && c->bad_rc) {
        c->t_failed = t;
        return c->bad_rc;
    }
    if (dydt) {
        int rc = sys_f(ctx, t, y, dydt);
        if (rc)
            return rc;
    }
    for (int j = 0; j < N; j++) {
        double s = 0;
        for (int i = 0; i < N; i++)
            s += a[i] * c->p[i * N + j];
        vy[j] = s;
    }
    if (vp) {
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++)
                vp[i * N + j] = a[i] * y[j];
            vp[N * N + i] = a[i] * sin(t);
        }
    }
    if (vt) {
        double s = 0;
        for (int i = 0; i < N; i++)
            s += a[i] * c->p[N * N + i];
        *vt = s * cos(t);
    }
    if (bad && c->bad_out == OUT_NOISE)
        vy[0] += noise(t);
    if (bad && c->bad_out == OUT_VY)
        vy[2] = NAN;
    if (bad && c->bad_out == OUT_VP && vp)
        vp[4] = NAN;
    if (bad && c->bad_out == OUT_VT && vt)
        *vt = NAN;
    return 0;
}

static void ctx_init(sys_ctx *c)
{
    static const double A[N * N] = { -0.5, 1.0, 0.2, -1.0, -0.3, 0.4, 0.3, -0.2, -0.1 };
    static const double u[N] = { 0.7, -0.3, 0.5 };
    memset(c, 0, sizeof *c);
    memcpy(c->p, A, sizeof A);
    memcpy(c->p + N * N, u, sizeof u);
    c->f_nan_after = c->f_fail_after = c->f_nan_once = c->vjp_nan_once = -1;
    c->f_fail_above = c->f_noise_above = INFINITY;
    c->bad_lo = INFINITY;
    c->bad_hi = -INFINITY;
}

static const double Y0[N] = { 1.0, -0.5, 0.25 };

typedef node_status (*grad_fn)(const node_system *, const double *, size_t, const double *,
                               const double *, double *, double *, double *,
                               const node_options *, node_stats *);
static const grad_fn methods[2] = { node_odeint_adjoint, node_odeint_backprop };
static const char *const method_names[2] = { "adjoint", "backprop" };

/* The problem solved forward on nt equally spaced times over [0, 2.5], with loss
   weights; the failure knobs are armed afterwards. */
typedef struct fixture {
    sys_ctx c;
    node_system sys;
    size_t nt;
    double ts[MAXT], ys[MAXT * N], W[MAXT * N], g0[N], gp[NP], gt[MAXT];
    node_stats fwd;   /* of the forward solve */
} fixture;

static void fixture_init(fixture *fx, size_t nt, const node_options *o)
{
    ctx_init(&fx->c);
    fx->sys = (node_system){ .dim = N, .nparams = NP, .ctx = &fx->c, .f = sys_f,
                             .vjp = sys_vjp };
    fx->nt = nt;
    for (size_t i = 0; i < nt; i++)
        fx->ts[i] = 2.5 * (double)i / (double)(nt - 1);
    for (size_t i = 0; i < nt * N; i++)
        fx->W[i] = sin(1.0 + 0.9 * (double)i);
    assert_status(node_odeint(&fx->sys, Y0, fx->ts, nt, fx->ys, o, &fx->fwd), NODE_OK);
    fx->c.fcalls = 0;
}

static node_status run(fixture *fx, int k, bool with_p, bool with_t, const node_options *o,
                       node_stats *st)
{
    return methods[k](&fx->sys, fx->ts, fx->nt, fx->ys, fx->W, fx->g0, with_p ? fx->gp : NULL,
                      with_t ? fx->gt : NULL, o, st);
}

/* The message holds `want`; print it if not. */
static void assert_message(const node_stats *st, const char *want)
{
    if (!strstr(st->message, want))
        print_message("message \"%s\" lacks \"%s\"\n", st->message, want);
    assert_non_null(strstr(st->message, want));
}

/* The message says "t = <the t of the failing call>" (as %g prints it). */
static void assert_message_t(const node_stats *st, double t)
{
    char buf[64];
    snprintf(buf, sizeof buf, "t = %g", t);
    assert_message(st, buf);
}

/* ---- NaN from vjp: never NODE_OK -------------------------------------------------- */

static void test_nan_from_vjp_gives_enonfinite(void **state)
{
    (void)state;
    static const int outs[3] = { OUT_VY, OUT_VP, OUT_VT };
    for (int k = 0; k < 2; k++)
        for (int q = 0; q < 3; q++)
            for (int semi = 0; semi < 2; semi++) {
                node_options o = node_options_default();
                o.seminorm = semi;          /* NaN in a block the norm leaves out, too */
                fixture fx;
                fixture_init(&fx, 6, &o);
                /* NaN for t in [0.9, 1.1]: a smaller step cannot step over it */
                fx.c.bad_lo = 0.9;
                fx.c.bad_hi = 1.1;
                fx.c.bad_out = outs[q];
                node_stats st;
                node_status rc = run(&fx, k, true, true, &o, &st);
                if (rc != NODE_ENONFINITE)
                    print_message("%s, NaN in output %d, seminorm %d: %s (%s)\n",
                                  method_names[k], outs[q], semi, node_strerror(rc), st.message);
                assert_status(rc, NODE_ENONFINITE);
                assert_int_equal(st.status, NODE_ENONFINITE);
                assert_true(st.message[0] != '\0');
                /* the backward pass came from 2.5 and stopped at the window or, for
                   backprop's sums checked at the end, reached ts[0] */
                assert_true(st.t_reached <= 2.5);
                if (k == 0 || q == 0)
                    assert_true(st.t_reached >= 0.9);
                else
                    assert_close(st.t_reached, 0, 0, 0);
                if (k == 1 && q == 0) {
                    assert_message(&st, "dL/dy turned NaN or Inf in the step at t = ");
                    assert_message(&st, "vjp_y");
                }
                if (k == 1 && q == 1)
                    assert_message(&st, "dL/dθ[4] = nan after the backward pass");
                if (k == 1 && q == 2)
                    assert_message(&st, "dL/dts[0] = nan after the backward pass");
                if (k == 0)
                    assert_message(&st, "sys->vjp returned a non-finite value");
            }
}

/* A NaN from one call of f alone: a smaller step may avoid it (the adjoint's backward
   solve, backprop's forward re-run) or not (a recomputed stage), but whatever the call
   returns, NODE_OK comes with finite gradients only. */
static void test_nan_once_never_ok_with_nan_gradient(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++)
        for (long at = 0; at < 600; at += 13) {
            fixture fx;
            fixture_init(&fx, 6, NULL);
            fx.c.f_nan_once = at;
            node_stats st;
            node_status rc = run(&fx, k, true, true, NULL, &st);
            if (rc == NODE_OK) {
                for (int i = 0; i < N; i++)
                    assert_true(isfinite(fx.g0[i]));
                for (int i = 0; i < NP; i++)
                    assert_true(isfinite(fx.gp[i]));
                for (size_t i = 0; i < fx.nt; i++)
                    assert_true(isfinite(fx.gt[i]));
            } else {
                assert_status(rc, NODE_ENONFINITE);
            }
        }
}

/* One vjp call alone writes a NaN (into vjp_y, vjp_p or vjp_t): the adjoint's
   backward solve rejects that step and a smaller one avoids it, whatever block the NaN
   is in (the seminorm's norm leaves the dL/dθ and dL/dt blocks out, yet a NaN there
   must not be handed on as the next step's first stage).  Only a NaN at the start of
   an interval, where the state itself is given, cannot be stepped around. */
static void test_adjoint_steps_around_a_single_nan(void **state)
{
    (void)state;
    static const int outs[3] = { OUT_VY, OUT_VP, OUT_VT };
    for (int q = 0; q < 3; q++)
        for (int semi = 0; semi < 2; semi++) {
            node_options o = node_options_default();
            o.seminorm = semi;
            fixture fx;
            fixture_init(&fx, 6, &o);
            double g0[N], gp[NP], gt[6];
            assert_status(run(&fx, 0, true, true, &o, NULL), NODE_OK);
            memcpy(g0, fx.g0, sizeof g0);
            memcpy(gp, fx.gp, sizeof gp);
            memcpy(gt, fx.gt, sizeof gt);
            long calls = fx.c.vcalls, recovered = 0;
            for (long at = 0; at < calls; at++) {
                fx.c.vcalls = 0;
                fx.c.vjp_nan_once = at;
                fx.c.t_failed = NAN;
                fx.c.bad_out = outs[q];
                node_stats st;
                node_status rc = run(&fx, 0, true, true, &o, &st);
                bool start = false;
                for (size_t i = 1; i < fx.nt; i++)
                    start |= fx.c.t_failed == fx.ts[i];
                if (start && rc != NODE_OK) {
                    assert_status(rc, NODE_ENONFINITE);
                    continue;
                }
                if (rc != NODE_OK)
                    print_message("NaN in output %d of vjp call %ld at t = %.17g, seminorm %d: "
                                  "%s\n", outs[q], at, fx.c.t_failed, semi, st.message);
                assert_status(rc, NODE_OK);
                assert_true(node_test_reldiff(fx.gp[0], gp[0], 1) < 1e-5);
                assert_true(node_test_reldiff(fx.g0[1], g0[1], 1) < 1e-5);
                assert_true(node_test_reldiff(fx.gt[0], gt[0], 1) < 1e-5);
                recovered++;
            }
            assert_true(recovered > calls / 2);
        }
}

/* f answers NaN once the forward pass is over: backprop's recomputed stages hit it
   (after its own forward re-run, which makes the same calls as node_odeint; dop853,
   whose dense output needs stages beyond the step's: dopri5's are recorded with the
   step and evaluate no f in the reverse pass), and so do the adjoint's vjp (f inside
   it) and its dL/dts. */
static void test_nan_from_f_after_forward_pass(void **state)
{
    (void)state;
    node_options o8 = node_options_default();
    o8.method = NODE_DOP853;
    for (int with_t = 0; with_t < 2; with_t++) {
        fixture fx;
        node_stats st;
        /* dopri5: the reverse pass calls no f, only vjp */
        fixture_init(&fx, 6, NULL);
        fx.c.f_nan_after = fx.fwd.nfe;
        assert_status(run(&fx, 1, true, with_t, NULL, &st), NODE_OK);
        assert_int_equal(fx.c.fcalls, fx.fwd.nfe);

        fixture_init(&fx, 6, &o8);
        fx.c.f_nan_after = fx.fwd.nfe;   /* the re-run makes the forward solve's calls */
        assert_status(run(&fx, 1, true, with_t, &o8, &st), NODE_ENONFINITE);
        assert_message(&st, "sys->f gave a NaN or Inf while the step at t = ");
        assert_message(&st, "was recomputed");
        /* the last step is recomputed first: the backward pass got no further than
           the end time */
        assert_close(st.t_reached, 2.5, 0, 0);
        assert_true(st.nfe > fx.fwd.nfe);
        assert_int_equal(st.callback_rc, 0);

        /* from the first call on: backprop's forward re-run fails where it starts */
        fixture_init(&fx, 6, NULL);
        fx.c.f_nan_after = 0;
        assert_status(run(&fx, 1, true, with_t, NULL, &st), NODE_ENONFINITE);
        assert_message(&st, "the solution turned NaN or Inf after t = 0 (backprop's forward "
                            "re-run from ys[0])");
        assert_close(st.t_reached, 0, 0, 0);

        fixture_init(&fx, 6, NULL);
        fx.c.f_nan_after = 0;
        assert_status(run(&fx, 0, true, with_t, NULL, &st), NODE_ENONFINITE);
        if (with_t) {
            assert_message(&st, "dL/dts[5] = nan: sys->f gave a NaN or Inf at t = ts[5] = 2.5");
        } else {
            assert_message(&st, "the adjoint state turned NaN or Inf after t = 2.5");
        }
        assert_close(st.t_reached, 2.5, 0, 0);
    }
}

/* Finite inputs whose sum overflows: dL/dy0 = a(t0) + dLdys[0] > DBL_MAX (a(t0) near
   1e306, small enough for the backward solve's stage sums; no dL/dθ block for the
   adjoint, whose zero start would make its initial-step estimate overflow). */
static void test_overflowing_cotangent_gives_enonfinite(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        fixture fx;
        fixture_init(&fx, 2, NULL);
        fx.ts[1] = 1e-3;
        assert_status(node_odeint(&fx.sys, Y0, fx.ts, 2, fx.ys, NULL, NULL), NODE_OK);
        memset(fx.W, 0, sizeof fx.W);
        fx.W[N] = fx.W[N + 1] = fx.W[N + 2] = 1e306;
        fx.W[0] = 1.797e308;
        node_stats st;
        assert_status(run(&fx, k, k == 1, true, NULL, &st), NODE_ENONFINITE);
        if (k == 0)
            assert_message(&st, "the adjoint state is NaN or Inf at t = ts[0] = 0");
        else
            assert_message(&st, "dL/dy0[0] = inf after the backward pass");
        fx.W[0] = 1;                      /* the same call without the overflow: fine */
        assert_status(run(&fx, k, k == 1, true, NULL, &st), NODE_OK);
    }
}

/* ---- callbacks that fail: which, where, what they returned ------------------------------ */

static void test_failing_vjp_says_where(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        fixture fx;
        fixture_init(&fx, 6, NULL);
        fx.c.bad_lo = -INFINITY;
        fx.c.bad_hi = 1.3;      /* vjp returns 3 once the backward pass is below t = 1.3 */
        fx.c.bad_rc = 3;
        node_stats st;
        assert_status(run(&fx, k, true, true, NULL, &st), NODE_ECALLBACK);
        assert_int_equal(st.callback_rc, 3);
        assert_int_equal(st.status, NODE_ECALLBACK);
        assert_message(&st, "sys->vjp returned 3 at t = ");
        assert_message(&st, "(backward pass)");
        assert_message_t(&st, fx.c.t_failed);
        assert_true(fx.c.t_failed <= 1.3);
        /* t_reached: the backward pass got down to the step the call belongs to */
        assert_true(st.t_reached >= fx.c.t_failed);
        assert_true(st.t_reached - fx.c.t_failed < 0.5);
        assert_true(st.nfe > 0);
    }
}

static void test_failing_f_says_where(void **state)
{
    (void)state;
    fixture fx;
    node_stats st;
    /* backprop's forward re-run: f fails above t = 1.7; the re-run got to t_reached */
    fixture_init(&fx, 6, NULL);
    fx.c.f_fail_above = 1.7;
    assert_status(run(&fx, 1, true, true, NULL, &st), NODE_ECALLBACK);
    assert_int_equal(st.callback_rc, 5);
    assert_message(&st, "sys->f returned 5 at t = ");
    assert_message(&st, "(backprop's forward re-run)");
    assert_message_t(&st, fx.c.t_failed);
    assert_true(st.t_reached <= 1.7 && st.t_reached > 1.0);

    /* backprop's recomputation (dop853: dense output has stages of its own, not
       recorded): f fails on its first call after the re-run */
    node_options o8 = node_options_default();
    o8.method = NODE_DOP853;
    fixture_init(&fx, 6, &o8);
    fx.c.f_fail_after = fx.fwd.nfe;
    assert_status(run(&fx, 1, true, true, &o8, &st), NODE_ECALLBACK);
    assert_int_equal(st.callback_rc, 6);
    assert_message(&st, "sys->f returned 6 while the step at t = ");
    assert_message(&st, "was recomputed (backward pass)");
    assert_close(st.t_reached, 2.5, 0, 0);

    /* the adjoint's dL/dts: f at the last output time */
    fixture_init(&fx, 6, NULL);
    fx.c.f_fail_above = 2.0;
    assert_status(run(&fx, 0, true, true, NULL, &st), NODE_ECALLBACK);
    assert_int_equal(st.callback_rc, 5);
    assert_message(&st, "sys->f returned 5 at t = ts[5] = 2.5 (for dL/dts[5], backward pass)");
    assert_close(st.t_reached, 2.5, 0, 0);

    /* success after all that: no message, no callback value, t_reached = ts[0] */
    for (int k = 0; k < 2; k++) {
        fixture_init(&fx, 6, NULL);
        assert_status(run(&fx, k, true, true, NULL, &st), NODE_OK);
        assert_int_equal(st.callback_rc, 0);
        assert_int_equal(st.status, NODE_OK);
        assert_string_equal(st.message, "");
        assert_close(st.t_reached, 0.0, 0, 0);
    }
}

/* A right-hand side that no step can follow: the step size underflows, and the
   message says in which pass and where. */
static void test_step_size_underflow_says_where(void **state)
{
    (void)state;
    fixture fx;
    node_stats st;
    fixture_init(&fx, 6, NULL);
    fx.c.bad_lo = 0.9;
    fx.c.bad_hi = 1.1;
    fx.c.bad_out = OUT_NOISE;
    assert_status(run(&fx, 0, true, true, NULL, &st), NODE_ESTEPSIZE);
    assert_message(&st, "the backward step size underflowed at t = 1.1");
    assert_message(&st, "(backward pass from 1.5 to 1)");
    assert_close(st.t_reached, 1.1, 1e-12, 0);

    fixture_init(&fx, 6, NULL);
    fx.c.f_noise_above = 1.7;
    assert_status(run(&fx, 1, true, true, NULL, &st), NODE_ESTEPSIZE);
    assert_message(&st, "the step size underflowed at t = 1.7");
    assert_message(&st, "(backprop's forward re-run)");
    assert_close(st.t_reached, 1.7, 1e-12, 0);
}

/* Bad inputs are refused before any work, naming the entry. */
static void test_nonfinite_inputs_are_named(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        fixture fx;
        fixture_init(&fx, 6, NULL);
        node_stats st;
        fx.W[3 * N + 1] = NAN;
        assert_status(run(&fx, k, true, true, NULL, &st), NODE_EINVAL);
        assert_message(&st, "dLdys[10] = nan (row 3, element 1): the loss gradient must be finite");
        assert_int_equal(st.nfe, 0);
        fx.W[3 * N + 1] = 0;
        fx.ys[4 * N + 2] = -INFINITY;
        assert_status(run(&fx, k, true, true, NULL, &st), NODE_EINVAL);
        assert_message(&st, "ys[14] = -inf (row 4, element 2)");
        assert_true(isnan(st.t_reached));
    }
}

/* ---- max_steps: one budget per call -------------------------------------------------- */

/* RK4 with step 0.1 over [0, 2.5]: the forward solve takes 25 steps (2.5/0.1); the
   adjoint's 10 intervals of 0.25 take 3 steps each (0.1, 0.1, 0.05), 30 in all;
   backprop's forward re-run is the forward solve again. */
static void test_max_steps_fixed_step_counts(void **state)
{
    (void)state;
    node_options o = node_options_default();
    o.method = NODE_RK4;
    o.step = 0.1;
    fixture fx;
    fixture_init(&fx, 11, &o);
    assert_int_equal(fx.fwd.nsteps, 25);
    node_stats st;
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_OK);
    assert_int_equal(st.nsteps, 30);

    o.max_steps = 25;                 /* the forward solve just fits ... */
    assert_status(node_odeint(&fx.sys, Y0, fx.ts, fx.nt, fx.ys, &o, NULL), NODE_OK);
    assert_status(run(&fx, 1, true, true, &o, &st), NODE_OK);     /* ... so does backprop */
    assert_int_equal(st.nsteps, 25);
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_EMAXSTEPS);   /* not the adjoint */
    assert_message(&st, "the backward pass needs more than opt->max_steps = 25 steps");
    assert_true(st.nsteps <= 25);
    assert_int_equal(st.nsteps, 24);  /* 8 whole intervals; the 9th would not fit */
    assert_close(st.t_reached, 0.5, 1e-15, 0);
    o.max_steps = 30;
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_OK);
    o.max_steps = 29;
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_EMAXSTEPS);
    o.max_steps = 24;
    assert_status(node_odeint(&fx.sys, Y0, fx.ts, fx.nt, fx.ys + 0, &o, NULL), NODE_EMAXSTEPS);
    assert_status(run(&fx, 1, true, true, &o, &st), NODE_EMAXSTEPS);
    assert_message(&st, "backprop's forward re-run needs more than opt->max_steps = 24 steps");
}

/* Adaptive: the budget counts every backward interval's attempts together, so the
   call succeeds exactly when the total fits. */
static void test_max_steps_adaptive_budget_is_per_call(void **state)
{
    (void)state;
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-9;
    fixture fx;
    fixture_init(&fx, MAXT, &o);
    node_stats st, full;
    double g_full[NP];
    assert_status(run(&fx, 0, true, true, &o, &full), NODE_OK);
    memcpy(g_full, fx.gp, sizeof g_full);
    int64_t B = full.nsteps, K = fx.fwd.nsteps;
    /* 15 intervals, each of at least one step, and more steps than the forward solve,
       which does not stop at the output times */
    assert_true(B >= (int64_t)MAXT - 1);
    assert_true(B > K);
    o.max_steps = K;
    assert_status(node_odeint(&fx.sys, Y0, fx.ts, fx.nt, fx.ys, &o, NULL), NODE_OK);
    assert_status(run(&fx, 1, true, true, &o, &st), NODE_OK);
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_EMAXSTEPS);
    assert_true(st.nsteps <= K);
    assert_true(st.t_reached > 0 && st.t_reached < 2.5);
    char want[96];
    snprintf(want, sizeof want, "opt->max_steps = %lld steps (all its intervals together)",
             (long long)K);
    assert_message(&st, want);
    o.max_steps = B;                  /* exactly enough: the same result, bit for bit */
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_OK);
    assert_int_equal(st.nsteps, B);
    assert_memory_equal(fx.gp, g_full, sizeof g_full);
    o.max_steps = B - 1;
    assert_status(run(&fx, 0, true, true, &o, &st), NODE_EMAXSTEPS);
    assert_int_equal(st.nsteps, B - 1);
}

/* ---- the adjoint's choices, pinned by exact counts ----------------------------------- */

/* With the seminorm, the dL/dθ and dL/dt blocks do not enter the error norm, and the
   z and a blocks do not depend on them: the backward pass takes exactly the steps it
   takes when no parameter or time gradient is asked for (every element is computed
   by the same element-wise kernels, so even the rounding agrees).  Without it, the
   dL/dθ block asks for more steps on this problem at this tolerance (with the
   registry's controller constants: 118 vs 112 evaluations for dopri5, 241 vs 208 for
   bosh3; at some other tolerances the two happen to coincide). */
static void test_seminorm_steps_are_those_without_parameter_blocks(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        node_options o = node_options_default();
        o.method = m ? NODE_BOSH3 : NODE_DOPRI5;
        o.rtol = o.atol = 1e-6;
        fixture fx;
        fixture_init(&fx, MAXT, &o);
        node_stats bare, semi, semi_t, full;
        assert_status(run(&fx, 0, false, false, &o, &bare), NODE_OK);
        o.seminorm = 1;
        assert_status(run(&fx, 0, true, false, &o, &semi), NODE_OK);
        assert_status(run(&fx, 0, true, true, &o, &semi_t), NODE_OK);
        o.seminorm = 0;
        assert_status(run(&fx, 0, true, false, &o, &full), NODE_OK);
        assert_int_equal(semi.nsteps, bare.nsteps);
        assert_int_equal(semi.naccept, bare.naccept);
        assert_int_equal(semi.nfe, bare.nfe);
        assert_int_equal(semi_t.nsteps, bare.nsteps);
        assert_int_equal(semi_t.nfe, bare.nfe + (int64_t)fx.nt - 1);  /* + f for dL/dts[i>0] */
        assert_true(full.nfe > semi.nfe);
    }
}

/* Each backward interval after the first starts with the step the controller planned:
   no initial-step selection there.  An interval costs one f for k_0, then (FSAL) s-1
   evaluations per attempted step; the automatic first step costs one more, once. */
static void test_adjoint_carries_the_step_across_output_times(void **state)
{
    (void)state;
    static const node_method ms[2] = { NODE_DOPRI5, NODE_BOSH3 };
    static const int per_step[2] = { 6, 3 };
    for (int m = 0; m < 2; m++)
        for (int semi = 0; semi < 2; semi++) {
            node_options o = node_options_default();
            o.method = ms[m];
            o.rtol = o.atol = 1e-8;
            o.seminorm = semi;
            fixture fx;
            fixture_init(&fx, MAXT, &o);
            node_stats st;
            assert_status(run(&fx, 0, true, false, &o, &st), NODE_OK);
            int64_t intervals = (int64_t)fx.nt - 1;
            assert_int_equal(st.nfe, intervals + per_step[m] * st.nsteps + 1);
            /* the forward solve: one k_0, one initial step, the same per attempt */
            assert_int_equal(fx.fwd.nfe, 1 + per_step[m] * fx.fwd.nsteps + 1);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nan_from_vjp_gives_enonfinite),
        cmocka_unit_test(test_nan_once_never_ok_with_nan_gradient),
        cmocka_unit_test(test_nan_from_f_after_forward_pass),
        cmocka_unit_test(test_adjoint_steps_around_a_single_nan),
        cmocka_unit_test(test_overflowing_cotangent_gives_enonfinite),
        cmocka_unit_test(test_failing_vjp_says_where),
        cmocka_unit_test(test_failing_f_says_where),
        cmocka_unit_test(test_step_size_underflow_says_where),
        cmocka_unit_test(test_nonfinite_inputs_are_named),
        cmocka_unit_test(test_max_steps_fixed_step_counts),
        cmocka_unit_test(test_max_steps_adaptive_budget_is_per_call),
        cmocka_unit_test(test_seminorm_steps_are_those_without_parameter_blocks),
        cmocka_unit_test(test_adjoint_carries_the_step_across_output_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
