/* test_grad_nfe.c — the evaluations exact backprop spends (issue #16): its reverse
 * pass through an FSAL method (dopri5, bosh3) makes one vjp call per stage of each
 * accepted step, the last stage of a step and the first of the next (the same f
 * value) sharing one call, and none of f (the stages are recorded with the steps);
 * with opt->record, node_solver_backprop reverses the recording node_solver_odeint
 * made instead of re-running the solve.
 *
 * The counts are checked against what the tableau implies (s - 1 calls a step, one
 * more if the last step holds an output, vs the forward's 1 + (s - 1) a step
 * attempted plus the first step's guess),
 * the gradients against central differences of the loss through node_odeint at a
 * tight tolerance (an independent path: no vjp at all) and, for the reuse, against
 * node_solver_backprop's own re-run, bit for bit.
 */
#include "test_util.h"

#include <string.h>

#define D 2
#define B 2
#define DIM (D * B)
#define NT 5
#define MAXP 64

typedef struct counted {
    const node_system *in;
    long nf, nv;
} counted;

static int counted_f(void *ctx, double t, const double *y, double *dydt)
{
    counted *c = ctx;
    c->nf++;
    return c->in->f(c->in->ctx, t, y, dydt);
}

static int counted_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                       double *vjp_y, double *vjp_p, double *vjp_t)
{
    counted *c = ctx;
    c->nv++;
    return c->in->vjp(c->in->ctx, t, y, a, dydt, vjp_y, vjp_p, vjp_t);
}

/* An MLP with the time input (nonlinear, time-dependent), its calls counted. */
typedef struct fixture {
    node_mlp *m;
    node_system inner, sys;   /* sys: inner with counted callbacks */
    counted cnt;
    double y0[DIM], W[NT * DIM], ts[NT];
} fixture;

static const double TS_UP[NT] = { 0.0, 0.6, 1.1, 2.3, 3.0 };
static const double TS_DOWN[NT] = { 1.0, 0.3, -0.4, -1.5, -2.0 };

static void setup(fixture *fx, const double *ts)
{
    size_t sizes[3] = { D, 8, D };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    assert_status(node_mlp_create(&fx->m, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(fx->m, 977);
    assert_status(node_mlp_system(fx->m, B, &fx->inner), NODE_OK);
    assert_true(fx->inner.nparams <= MAXP);
    fx->cnt = (counted){ &fx->inner, 0, 0 };
    fx->sys = fx->inner;
    fx->sys.ctx = &fx->cnt;
    fx->sys.f = counted_f;
    fx->sys.vjp = counted_vjp;
    for (size_t i = 0; i < DIM; i++)
        fx->y0[i] = cos(0.7 * (double)i + 0.4);
    for (size_t i = 0; i < NT * DIM; i++)
        fx->W[i] = sin(1.3 * (double)i + 0.5);
    memcpy(fx->ts, ts, sizeof fx->ts);
}

static void teardown(fixture *fx)
{
    node_mlp_system_release(fx->m, &fx->inner);
    node_mlp_free(fx->m);
}

/* L = Σ_i W_i · y(t_i) through node_odeint (no vjp). */
static double loss(fixture *fx, const double *y0, const node_options *o)
{
    double ys[NT * DIM];
    assert_status(node_odeint(&fx->inner, y0, fx->ts, NT, ys, o, NULL), NODE_OK);
    double L = 0;
    for (size_t i = 0; i < NT * DIM; i++)
        L += fx->W[i] * ys[i];
    return L;
}

static int stages_of(node_method m) { return m == NODE_DOPRI5 ? 7 : 4; }

/* Plain backprop (its forward re-run included) through dopri5 and bosh3, forward and
   backward in time: the re-run makes the forward solve's f calls and no more; the
   reverse pass (s - 1) vjp calls per accepted step (plus one when the last step holds
   an output inside it), no f; the gradient is
   the central differences' of node_odeint's loss at rtol 1e-11 (y0 and every θ). */
static void test_backprop_one_vjp_per_fsal_stage(void **state)
{
    (void)state;
    const node_method ms[2] = { NODE_DOPRI5, NODE_BOSH3 };
    for (int dir = 0; dir < 2; dir++)
        for (int mi = 0; mi < 2; mi++) {
            fixture fx;
            setup(&fx, dir ? TS_DOWN : TS_UP);
            node_options o = node_options_default();
            o.method = ms[mi];
            o.rtol = 1e-11;
            o.atol = 1e-13;
            double ys[NT * DIM], g0[DIM], gp[MAXP];
            node_stats fs, bs;
            assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, &fs), NODE_OK);
            assert_true(fs.naccept >= 8);
            fx.cnt.nf = fx.cnt.nv = 0;
            assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, g0, gp, NULL, &o,
                                               &bs), NODE_OK);
            const int s = stages_of(ms[mi]);
            assert_int_equal(fx.cnt.nf, fs.nfe);   /* the re-run only */
            /* one more if the last step holds an output inside it (its last stage then
               has a weight): the next step's k_0 cannot share it */
            assert_in_range(fx.cnt.nv, (s - 1) * fs.naccept, (s - 1) * fs.naccept + 1);
            assert_int_equal(bs.nfe, fx.cnt.nf + fx.cnt.nv);
            /* the forward's count: one k_0, one first-step guess, s - 1 per attempt */
            assert_int_equal(fs.nfe, 2 + (s - 1) * fs.nsteps);

            /* central differences of the loss (no vjp on that path) */
            double y[DIM];
            for (size_t j = 0; j < DIM; j++) {
                double e = 1e-5;
                memcpy(y, fx.y0, sizeof y);
                y[j] += e;
                double lp = loss(&fx, y, &o);
                y[j] -= 2 * e;
                double lm = loss(&fx, y, &o);
                assert_close(g0[j], (lp - lm) / (2 * e), 1e-6, 1e-8);
            }
            double *th = node_mlp_params(fx.m);
            for (size_t j = 0; j < fx.inner.nparams; j++) {
                double e = 1e-5, keep = th[j];
                th[j] = keep + e;
                double lp = loss(&fx, fx.y0, &o);
                th[j] = keep - e;
                double lm = loss(&fx, fx.y0, &o);
                th[j] = keep;
                assert_close(gp[j], (lp - lm) / (2 * e), 1e-6, 1e-8);
            }
            teardown(&fx);
        }
}

/* opt->record: node_solver_odeint writes node_odeint's rows with its evaluations,
   and node_solver_backprop then reverses that solve: no f call, the vjp calls of the
   reverse pass alone (fewer than the forward's evaluations: at least one less, and
   s - 1 less per rejected step), the re-running backprop's gradient bit for bit (dL/dts too);
   again on a second call.  Plain and checkpointed; dopri5 and bosh3. */
static void test_record_reuses_the_forward_solve(void **state)
{
    (void)state;
    const node_method ms[2] = { NODE_DOPRI5, NODE_BOSH3 };
    for (int dir = 0; dir < 2; dir++)
        for (int mi = 0; mi < 2; mi++)
            for (int ck = 0; ck < 2; ck++) {
                fixture fx;
                setup(&fx, dir ? TS_DOWN : TS_UP);
                node_options o = node_options_default();
                o.method = ms[mi];
                o.rtol = 1e-9;
                o.checkpoints = ck ? 3 : 0;
                double ys[NT * DIM], yr[NT * DIM];
                double g0[DIM], gp[MAXP], gt[NT], r0[DIM], rp[MAXP], rt[NT];
                node_stats fs, rs, bs, ws;
                assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, &fs), NODE_OK);
                assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, g0, gp, gt,
                                                   &o, &bs), NODE_OK);

                node_solver *sv;
                assert_status(node_solver_create(&sv), NODE_OK);
                node_options orec = o;
                orec.record = 1;
                assert_status(node_solver_odeint(sv, &fx.sys, fx.y0, fx.ts, NT, yr, &orec,
                                                 &rs), NODE_OK);
                assert_memory_equal(yr, ys, sizeof ys);
                assert_int_equal(rs.nfe, fs.nfe);
                assert_int_equal(rs.naccept, fs.naccept);
                for (int rep = 0; rep < 2; rep++) {
                    fx.cnt.nf = fx.cnt.nv = 0;
                    assert_status(node_solver_backprop(sv, &fx.sys, fx.ts, NT, yr, fx.W, r0,
                                                       rp, rt, &orec, &ws), NODE_OK);
                    assert_memory_equal(r0, g0, sizeof g0);
                    assert_memory_equal(rp, gp, fx.sys.nparams * sizeof(double));
                    assert_memory_equal(rt, gt, sizeof gt);
                    assert_int_equal(ws.nfe, fx.cnt.nf + fx.cnt.nv);
                    assert_int_equal(ws.nsteps, 0);   /* no solve */
                    if (!ck) {
                        const int s = stages_of(ms[mi]);
                        assert_int_equal(fx.cnt.nf, 0);
                        assert_in_range(fx.cnt.nv, (s - 1) * fs.naccept,
                                        (s - 1) * fs.naccept + 1);
                        /* the forward's: 2 + (s - 1) per step attempted */
                        assert_true(ws.nfe <= fs.nfe - 1 - (s - 1) * fs.nreject);
                    } else {   /* the segments' replay and recomputed stages */
                        assert_true(fx.cnt.nf > 0);
                    }
                    assert_int_equal(ws.nfe, bs.nfe - fs.nfe);
                }
                node_solver_free(sv);
                teardown(&fx);
            }
}

/* Anything but the recorded solve's rows, times and options re-runs the solve (the
   gradient is then the usual backprop's); so does a recording that another gradient
   call on the solver has overwritten. */
static void test_record_falls_back_to_the_rerun(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default(), orec = o;
    orec.record = 1;
    double ys[NT * DIM], g0[DIM], gp[MAXP], w0[DIM], wp[MAXP];
    node_stats fs, st;
    node_solver *sv;
    assert_status(node_solver_create(&sv), NODE_OK);
    assert_status(node_solver_odeint(sv, &fx.sys, fx.y0, fx.ts, NT, ys, &orec, &fs), NODE_OK);

    /* other rows: the re-run from them, backprop's gradient of those */
    double ys2[NT * DIM];
    memcpy(ys2, ys, sizeof ys);
    ys2[DIM + 1] += 1e-3;   /* a later row: ys[0] is the same */
    fx.cnt.nf = 0;
    assert_status(node_solver_backprop(sv, &fx.sys, fx.ts, NT, ys2, fx.W, g0, gp, NULL, &orec,
                                       &st), NODE_OK);
    assert_int_equal(fx.cnt.nf, fs.nfe);
    assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys2, fx.W, w0, wp, NULL, &o, NULL),
                  NODE_OK);
    assert_memory_equal(g0, w0, sizeof g0);
    assert_memory_equal(gp, wp, fx.sys.nparams * sizeof(double));

    /* that re-run replaced the recording: the first rows re-run too */
    fx.cnt.nf = 0;
    assert_status(node_solver_backprop(sv, &fx.sys, fx.ts, NT, ys, fx.W, g0, gp, NULL, &orec,
                                       &st), NODE_OK);
    assert_int_equal(fx.cnt.nf, fs.nfe);

    /* other times, other options, record off in the backprop call, an interpolating
       adjoint in between: each re-runs */
    double ts2[NT];
    memcpy(ts2, fx.ts, sizeof ts2);
    ts2[NT - 1] += 0.25;
    node_options other = orec;
    other.rtol = 1e-8;
    for (int k = 0; k < 4; k++) {
        assert_status(node_solver_odeint(sv, &fx.sys, fx.y0, fx.ts, NT, ys, &orec, &fs),
                      NODE_OK);
        if (k == 3)
            assert_status(node_solver_adjoint_interp(sv, &fx.sys, fx.ts, NT, ys, fx.W, w0,
                                                     wp, NULL, &o, NULL), NODE_OK);
        fx.cnt.nf = 0;
        assert_status(node_solver_backprop(sv, &fx.sys, k == 0 ? ts2 : fx.ts, NT, ys, fx.W,
                                           g0, gp, NULL, k == 1 ? &other : k == 2 ? &o : &orec,
                                           &st), NODE_OK);
        assert_true(fx.cnt.nf > 0);
    }
    /* the same times in another array, and a plain solve in between: reused */
    assert_status(node_solver_odeint(sv, &fx.sys, fx.y0, fx.ts, NT, ys, &orec, &fs), NODE_OK);
    assert_status(node_solver_odeint(sv, &fx.sys, fx.y0, ts2, NT, ys2, &o, NULL), NODE_OK);
    memcpy(ts2, fx.ts, sizeof ts2);
    fx.cnt.nf = 0;
    assert_status(node_solver_backprop(sv, &fx.sys, ts2, NT, ys, fx.W, g0, gp, NULL, &orec,
                                       &st), NODE_OK);
    assert_int_equal(fx.cnt.nf, 0);
    node_solver_free(sv);
    teardown(&fx);
}

/* record is 0 or 1; recording needs sys->vjp; node_odeint ignores it. */
static void test_record_arguments(void **state)
{
    (void)state;
    fixture fx;
    setup(&fx, TS_UP);
    node_options o = node_options_default();
    double ys[NT * DIM], yr[NT * DIM];
    node_stats st;
    node_solver *sv;
    assert_status(node_solver_create(&sv), NODE_OK);
    o.record = 2;
    assert_status(node_solver_odeint(sv, &fx.sys, fx.y0, fx.ts, NT, ys, &o, &st), NODE_EINVAL);
    assert_non_null(strstr(st.message, "opt->record = 2"));
    assert_status(node_odeint(&fx.sys, fx.y0, fx.ts, NT, ys, &o, &st), NODE_EINVAL);
    o.record = -1;
    memset(ys, 0, sizeof ys);   /* the refused solves above wrote nothing */
    assert_status(node_odeint_backprop(&fx.sys, fx.ts, NT, ys, fx.W, yr, NULL, NULL, &o, &st),
                  NODE_EINVAL);
    assert_non_null(strstr(st.message, "opt->record = -1"));
    o.record = 1;
    node_system nov = fx.sys;
    nov.vjp = NULL;
    assert_status(node_solver_odeint(sv, &nov, fx.y0, fx.ts, NT, ys, &o, &st), NODE_EINVAL);
    assert_non_null(strstr(st.message, "sys->vjp is NULL"));
    assert_status(node_odeint(&nov, fx.y0, fx.ts, NT, ys, &o, &st), NODE_OK);
    o.record = 0;
    assert_status(node_odeint(&nov, fx.y0, fx.ts, NT, yr, &o, NULL), NODE_OK);
    assert_memory_equal(ys, yr, sizeof ys);
    node_solver_free(sv);
    teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backprop_one_vjp_per_fsal_stage),
        cmocka_unit_test(test_record_reuses_the_forward_solve),
        cmocka_unit_test(test_record_falls_back_to_the_rerun),
        cmocka_unit_test(test_record_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
