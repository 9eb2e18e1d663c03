/* test_grad_mlp.c — adjoint and exact backprop on MLP dynamics dy/dt = MLP(t, y)
 * (node_mlp_system, batch > 1, with and without the time input): both agree with
 * each other and with Richardson-extrapolated central differences of the solve.
 */
#include "test_util.h"

#include <string.h>

#define D 2        /* MLP width in and out */
#define B 3        /* batch */
#define DIM (D * B)
#define NT 4
#define MAXP 64

static const double TS_UP[NT] = { 0.0, 0.4, 0.9, 1.5 };
static const double TS_DOWN[NT] = { 0.7, 0.2, -0.5, -1.0 };

typedef struct fixture {
    node_mlp *m;
    node_system sys;
    node_options o;
    double y0[DIM], W[NT * DIM], ts[NT];
} fixture;

static void setup(fixture *fx, int time_input, const double *ts)
{
    size_t sizes[3] = { D, 8, D };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    assert_status(node_mlp_create(&fx->m, 2, sizes, acts, time_input), NODE_OK);
    node_mlp_init(fx->m, 1234 + (uint64_t)time_input);
    assert_status(node_mlp_system(fx->m, B, &fx->sys), NODE_OK);
    assert_int_equal(fx->sys.dim, DIM);
    assert_true(fx->sys.nparams <= MAXP);
    fx->o = node_options_default();
    fx->o.rtol = fx->o.atol = 1e-10;
    for (size_t i = 0; i < DIM; i++)
        fx->y0[i] = cos(0.9 * (double)i + 0.3);
    for (size_t i = 0; i < NT * DIM; i++)
        fx->W[i] = sin(1.7 * (double)i + 0.2);
    memcpy(fx->ts, ts, sizeof fx->ts);
}

static double loss(fixture *fx)
{
    double ys[NT * DIM];
    assert_status(node_odeint(&fx->sys, fx->y0, fx->ts, NT, ys, &fx->o, NULL), NODE_OK);
    double L = 0;
    for (size_t i = 0; i < NT * DIM; i++)
        L += fx->W[i] * ys[i];
    return L;
}

/* dL/dx at x = *v, (4 D(δ/2) - D(δ)) / 3 with D the central difference. */
static double fd(fixture *fx, double *v, double delta)
{
    double x = *v, Dd[2];
    for (int r = 0; r < 2; r++) {
        double d = delta / (r + 1);
        *v = x + d;
        double lp = loss(fx);
        *v = x - d;
        double lm = loss(fx);
        *v = x;
        Dd[r] = (lp - lm) / (2 * d);
    }
    return (4 * Dd[1] - Dd[0]) / 3;
}

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

static void check(int time_input, const double *ts, int seminorm)
{
    fixture fx;
    setup(&fx, time_input, ts);
    fx.o.seminorm = seminorm;
    size_t np = fx.sys.nparams;
    double ys[NT * DIM];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &fx.o, NULL), NODE_OK);

    double ay0[DIM], ap[MAXP], ats[NT], by0[DIM], bp[MAXP], bts[NT];
    node_stats sa, sb;
    assert_status(node_odeint_adjoint(&fx.sys, fx.ts, NT, ys, fx.W, ay0, ap, ats, &fx.o, &sa),
                  NODE_OK);
    assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, by0, bp, bts, &fx.o, &sb),
                  NODE_OK);
    assert_true(sa.nfe > 0 && sb.nfe > 0);

    double fy0[DIM], fp[MAXP], fts[NT];
    for (size_t i = 0; i < DIM; i++)
        fy0[i] = fd(&fx, &fx.y0[i], 1e-3);
    double *theta = node_mlp_params(fx.m);
    for (size_t i = 0; i < np; i++)
        fp[i] = fd(&fx, &theta[i], 1e-3);
    for (size_t i = 0; i < NT; i++)
        fts[i] = fd(&fx, &fx.ts[i], 1e-3);

    double e[6] = { vrel(ay0, fy0, DIM), vrel(ap, fp, np), vrel(ats, fts, NT),
                    vrel(by0, fy0, DIM), vrel(bp, fp, np), vrel(bts, fts, NT) };
    for (int i = 0; i < 6; i++) {
        if (e[i] >= 1e-5)
            print_message("time_input %d seminorm %d: rel error %d = %.3g\n",
                          time_input, seminorm, i, e[i]);
        assert_true(e[i] < 1e-5);
    }
    /* The adjoint and the exact gradient of the discrete solve agree too. */
    assert_true(vrel(ap, bp, np) < 1e-5);
    node_mlp_free(fx.m);
}

static void test_mlp_gradients_match_central_differences(void **state)
{
    (void)state;
    check(0, TS_UP, 0);
    check(0, TS_DOWN, 0);
}

static void test_mlp_time_input_gradients_match_central_differences(void **state)
{
    (void)state;
    check(1, TS_UP, 0);
    check(1, TS_DOWN, 0);
}

static void test_mlp_seminorm_gradients_match_central_differences(void **state)
{
    (void)state;
    check(1, TS_UP, 1);
}

/* The seminorm leaves dL/dθ and dL/dt out of the backward error norm: the
   gradient stays as accurate (above) and the backward solve takes no more steps. */
static void test_mlp_seminorm_takes_no_more_evaluations(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, 1, TS_UP);
    double ys[NT * DIM], gy0[DIM], gp[MAXP], gts[NT];
    node_stats full, semi;
    for (int k = 0; k < 3; k++) {
        fx.o.rtol = fx.o.atol = pow(10.0, -4.0 - 3.0 * k);
        fx.o.seminorm = 0;
        assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &fx.o, NULL), NODE_OK);
        assert_status(node_odeint_adjoint(&fx.sys, fx.ts, NT, ys, fx.W, gy0, gp, gts, &fx.o,
                                          &full), NODE_OK);
        fx.o.seminorm = 1;
        assert_status(node_odeint_adjoint(&fx.sys, fx.ts, NT, ys, fx.W, gy0, gp, gts, &fx.o,
                                          &semi), NODE_OK);
        assert_true(semi.nfe <= full.nfe);
    }
    node_mlp_free(fx.m);
}

/* A solver object reused for an MLP: the second adjoint/backprop allocates nothing. */
static void test_mlp_second_call_allocates_nothing(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, 1, TS_UP);
    double ys[NT * DIM], gy0[DIM], gp[MAXP], gts[NT];
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &fx.o, NULL), NODE_OK);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    for (int k = 0; k < 2; k++) {
        node_status rc = k ? node_solver_backprop(s, &fx.sys, fx.ts, NT, ys, fx.W, gy0, gp,
                                                  gts, &fx.o, NULL)
                           : node_solver_adjoint(s, &fx.sys, fx.ts, NT, ys, fx.W, gy0, gp,
                                                 gts, &fx.o, NULL);
        assert_status(rc, NODE_OK);
        node_test_alloc_begin(-1);
        rc = k ? node_solver_backprop(s, &fx.sys, fx.ts, NT, ys, fx.W, gy0, gp, gts, &fx.o,
                                      NULL)
               : node_solver_adjoint(s, &fx.sys, fx.ts, NT, ys, fx.W, gy0, gp, gts, &fx.o,
                                     NULL);
        long n = node_test_alloc_end();
        assert_status(rc, NODE_OK);
        assert_int_equal(n, 0);
    }
    node_solver_free(s);
    node_mlp_free(fx.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_gradients_match_central_differences),
        cmocka_unit_test(test_mlp_time_input_gradients_match_central_differences),
        cmocka_unit_test(test_mlp_seminorm_gradients_match_central_differences),
        cmocka_unit_test(test_mlp_seminorm_takes_no_more_evaluations),
        cmocka_unit_test(test_mlp_second_call_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
