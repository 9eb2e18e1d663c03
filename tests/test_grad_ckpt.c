/* test_grad_ckpt.c — checkpointed exact backprop (opt->checkpoints) and the
 * interpolating adjoint (node_odeint_adjoint_interp).
 *
 * Checkpointed backprop differentiates the same discrete solve as plain backprop, so
 * the reference is plain backprop itself (an independent code path: one full tape
 * against segments rebuilt from saved states), for every method and several budgets.
 * The interpolating adjoint is checked against the matrix exponential's gradient of a
 * linear system (Van Loan 1978, as test_grad.c), backprop and central differences on
 * an MLP, and, on a dissipative linear system, against the analytic gradient where the
 * backsolve adjoint's backward reconstruction of z drifts.
 */
#include "test_util.h"

#include <string.h>

/* max|got - want| / max|want|. */
static double vrel(const double *got, const double *want, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
        s = fmax(s, fabs(want[i]));
    }
    return e / fmax(s, 1e-300);
}

/* ---- an MLP system with the time input: nonlinear, time-dependent ------------------ */

#define D 2
#define B 3
#define DIM (D * B)
#define NT 4
#define MAXP 64

typedef struct fixture {
    node_mlp *m;
    node_system sys;
    double y0[DIM], W[NT * DIM], ts[NT];
} fixture;

static const double TS_UP[NT] = { 0.0, 0.7, 1.9, 3.0 };
static const double TS_DOWN[NT] = { 1.0, 0.2, -1.1, -2.0 };

static void setup(fixture *fx, const double *ts)
{
    size_t sizes[3] = { D, 8, D };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    assert_status(node_mlp_create(&fx->m, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(fx->m, 4321);
    assert_status(node_mlp_system(fx->m, B, &fx->sys), NODE_OK);
    assert_true(fx->sys.nparams <= MAXP);
    for (size_t i = 0; i < DIM; i++)
        fx->y0[i] = cos(0.9 * (double)i + 0.3);
    for (size_t i = 0; i < NT * DIM; i++)
        fx->W[i] = sin(1.7 * (double)i + 0.2);
    memcpy(fx->ts, ts, sizeof fx->ts);
}

static void teardown(fixture *fx)
{
    node_mlp_system_release(fx->m, &fx->sys);
    node_mlp_free(fx->m);
}

typedef struct grads {
    double y0[DIM], p[MAXP], ts[NT];
    node_stats st;
} grads;

static void backprop(fixture *fx, const double *ys, const node_options *o, grads *g)
{
    assert_status(node_odeint_backprop(&fx->sys, fx->ts, NT, ys, fx->W, g->y0, g->p, g->ts, o,
                                       &g->st), NODE_OK);
}

static void assert_same(const grads *got, const grads *want, size_t np, double tol)
{
    assert_true(vrel(got->y0, want->y0, DIM) <= tol);
    assert_true(vrel(got->p, want->p, np) <= tol);
    assert_true(vrel(got->ts, want->ts, NT) <= tol);
}

/* Every method, budgets 1, 2, 3, √steps and more than steps: the gradient of plain
   backprop, with more f evaluations (the recomputed segments) but no more steps. */
static void check_ckpt(node_method method, const double *ts)
{
    fixture fx;
    setup(&fx, ts);
    node_options o = node_options_default();
    o.method = method;
    o.rtol = 1e-8;
    o.atol = 1e-10;
    o.step = method <= NODE_RK4 ? 0.01 : 0;
    o.max_step = 0.1;   /* enough steps for the budgets to differ (dop853 takes long ones) */
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads plain, ck;
    backprop(&fx, ys, &o, &plain);
    int64_t steps = plain.st.naccept;
    assert_true(steps >= 20);
    int64_t budgets[] = { 1, 2, 3, (int64_t)ceil(sqrt((double)steps)), steps - 1, steps,
                          steps + 7, 1000000000 };
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        node_options oc = o;
        oc.checkpoints = budgets[b];
        backprop(&fx, ys, &oc, &ck);
        assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
        assert_int_equal(ck.st.naccept, steps);
        assert_int_equal(ck.st.nsteps, plain.st.nsteps);
        assert_true(ck.st.nfe >= plain.st.nfe);
        /* at most one forward pass more (no stage recomputed twice in the replay) */
        assert_true(ck.st.nfe <= plain.st.nfe + 16 * steps);
    }
    teardown(&fx);
}

static void test_ckpt_euler(void **state) { (void)state; check_ckpt(NODE_EULER, TS_UP); }
static void test_ckpt_midpoint(void **state) { (void)state; check_ckpt(NODE_MIDPOINT, TS_UP); }
static void test_ckpt_rk4(void **state) { (void)state; check_ckpt(NODE_RK4, TS_UP); }
static void test_ckpt_bosh3(void **state) { (void)state; check_ckpt(NODE_BOSH3, TS_UP); }
static void test_ckpt_dopri5(void **state) { (void)state; check_ckpt(NODE_DOPRI5, TS_UP); }
static void test_ckpt_dop853(void **state) { (void)state; check_ckpt(NODE_DOP853, TS_UP); }
static void test_ckpt_backward_in_time(void **state)
{
    (void)state;
    check_ckpt(NODE_DOPRI5, TS_DOWN);
    check_ckpt(NODE_RK4, TS_DOWN);
}

/* The memory bound: with √steps checkpoints, no allocation comes near the plain tape
   (steps × (dim + 2) doubles); plain backprop's largest allocation is that tape. */
static void test_ckpt_memory_is_bounded(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.method = NODE_RK4;
    o.step = 0.002;            /* 1500 steps */
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads plain, ck;
    node_test_alloc_begin(-1);
    backprop(&fx, ys, &o, &plain);
    node_test_alloc_end();
    size_t plain_big = node_test_alloc_largest();
    size_t tape = (size_t)plain.st.naccept * (DIM + 2) * sizeof(double);
    assert_true(plain_big >= tape);
    node_options oc = o;
    oc.checkpoints = (int64_t)sqrt((double)plain.st.naccept);
    node_test_alloc_begin(-1);
    backprop(&fx, ys, &oc, &ck);
    node_test_alloc_end();
    size_t ck_big = node_test_alloc_largest();
    /* the largest piece is the (t, h) list, 2 doubles a step grown by doubling */
    assert_true(ck_big <= 4 * sizeof(double) * (size_t)plain.st.naccept);
    assert_true(ck_big * 2 < tape);
    assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
    teardown(&fx);
}

/* A reused solver gives the same gradient with and without checkpoints, in any order,
   and allocates nothing on a repeated call. */
static void test_ckpt_reused_solver(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads plain, ck;
    backprop(&fx, ys, &o, &plain);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_options oc = o;
    oc.checkpoints = 3;
    for (int rep = 0; rep < 2; rep++) {
        node_test_alloc_begin(-1);
        assert_status(node_solver_backprop(s, &fx.sys, fx.ts, NT, ys, fx.W, ck.y0, ck.p, ck.ts,
                                           &oc, &ck.st), NODE_OK);
        long nalloc = node_test_alloc_end();
        if (rep)
            assert_int_equal(nalloc, 0);
        assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
        assert_status(node_solver_backprop(s, &fx.sys, fx.ts, NT, ys, fx.W, ck.y0, ck.p, ck.ts,
                                           &o, &ck.st), NODE_OK);
        assert_same(&ck, &plain, fx.sys.nparams, 1e-12);
    }
    node_solver_free(s);
    teardown(&fx);
}

/* Failing allocations in the checkpointed path: NODE_ENOMEM, nothing leaks. */
static void test_ckpt_failing_allocations_leak_nothing(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.checkpoints = 2;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads g;
    node_test_alloc_begin(-1);
    backprop(&fx, ys, &o, &g);
    long total = node_test_alloc_end();
    for (long k = 0; k < total; k++) {
        node_test_alloc_begin(k);
        node_status st = node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts,
                                              &o, &g.st);
        node_test_alloc_end();
        assert_status(st, NODE_ENOMEM);
        assert_int_equal(node_test_alloc_live(), 0);
        assert_true(g.st.message[0] != '\0');
    }
    teardown(&fx);
}

/* A vjp failing in a late segment stops the checkpointed pass with its value. */
typedef struct failing {
    node_system inner;
    long calls, fail_at;
} failing;

static int failing_f(void *ctx, double t, const double *y, double *dydt)
{
    failing *c = ctx;
    return c->inner.f(c->inner.ctx, t, y, dydt);
}

static int failing_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                       double *vy, double *vp, double *vt)
{
    failing *c = ctx;
    if (c->calls++ == c->fail_at)
        return 5;
    return c->inner.vjp(c->inner.ctx, t, y, a, dydt, vy, vp, vt);
}

static void test_ckpt_failing_vjp(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    failing fc = { fx.sys, 0, 40 };
    node_system sys = { .dim = DIM, .nparams = fx.sys.nparams, .ctx = &fc, .f = failing_f,
                        .vjp = failing_vjp };
    node_options o = node_options_default();
    o.checkpoints = 3;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, NULL), NODE_OK);
    grads g;
    assert_status(node_odeint_backprop(&sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts, &o, &g.st),
                  NODE_ECALLBACK);
    assert_int_equal(g.st.callback_rc, 5);
    assert_non_null(strstr(g.st.message, "sys->vjp returned 5"));
    assert_true(g.st.t_reached > fx.ts[0] && g.st.t_reached < fx.ts[NT - 1]);
    teardown(&fx);
}

/* ---- refused options ----------------------------------------------------------------- */

static void test_negative_checkpoints_refused(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    o.checkpoints = -1;
    double ys[NT * DIM];
    node_stats st;
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, &st), NODE_EINVAL);
    assert_non_null(strstr(st.message, "opt->checkpoints = -1"));
    o.checkpoints = 0;
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, NULL, NULL), NODE_OK);
    o.checkpoints = INT64_MIN;
    grads g;
    assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts, &o,
                                       &g.st), NODE_EINVAL);
    assert_non_null(strstr(g.st.message, "opt->checkpoints"));
    assert_status(node_odeint_adjoint(&fx.sys, fx.ts, NT, ys, fx.W, g.y0, g.p, g.ts, &o,
                                      &g.st), NODE_EINVAL);
    assert_non_null(strstr(g.st.message, "opt->checkpoints"));
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ckpt_euler),
        cmocka_unit_test(test_ckpt_midpoint),
        cmocka_unit_test(test_ckpt_rk4),
        cmocka_unit_test(test_ckpt_bosh3),
        cmocka_unit_test(test_ckpt_dopri5),
        cmocka_unit_test(test_ckpt_dop853),
        cmocka_unit_test(test_ckpt_backward_in_time),
        cmocka_unit_test(test_ckpt_memory_is_bounded),
        cmocka_unit_test(test_ckpt_reused_solver),
        cmocka_unit_test(test_ckpt_failing_allocations_leak_nothing),
        cmocka_unit_test(test_ckpt_failing_vjp),
        cmocka_unit_test(test_negative_checkpoints_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
