/* test_event.c — events (libnode/event.h): event times against closed forms (a falling
 * ball, a damped rotation crossing a moving plane, both directions of time), events in
 * the first and last step and at step ends, the direction filter, touching without
 * crossing, no event before t_end; gradients through the event time against central
 * differences of the closed-form event; every refusal.
 */
#include "test_util.h"

#include <string.h>

/* ---- a falling ball: y = (pos, vel), θ = (gravity), g = pos - r, φ = (r) ------------ */

static int ball_f(void *ctx, double t, const double *y, double *dydt)
{
    (void)t;
    const double *grav = ctx;
    dydt[0] = y[1];
    dydt[1] = -grav[0];
    return 0;
}

static int ball_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                    double *vy, double *vp, double *vt)
{
    if (dydt)
        ball_f(ctx, t, y, dydt);
    vy[0] = 0;
    vy[1] = a[0];
    if (vp)
        vp[0] = -a[1];
    if (vt)
        *vt = 0;
    return 0;
}

static int ball_g(void *ctx, double t, const double *y, double *v)
{
    (void)t;
    *v = y[0] - *(const double *)ctx;
    return 0;
}

static int ball_gvjp(void *ctx, double t, const double *y, double *gt, double *gy,
                     double *gphi)
{
    (void)ctx; (void)t; (void)y;
    *gt = 0;
    gy[0] = 1;
    gy[1] = 0;
    if (gphi)
        gphi[0] = -1;
    return 0;
}

/* When pos = p0 + v0 s - g s²/2 falls to r (s = t - t0). */
static double ball_time(double p0, double v0, double grav, double r, double t0)
{
    return t0 + (v0 + sqrt(v0 * v0 + 2 * grav * (p0 - r))) / grav;
}

static node_options tight(void)
{
    node_options o = node_options_default();
    o.rtol = 1e-10;
    o.atol = 1e-12;
    return o;
}

static void test_falling_ball_time_and_state(void **state)
{
    (void)state;
    double grav = 9.8, r = 0.2, y0[2] = { 10, 1.5 };
    node_system sys = { .dim = 2, .nparams = 1, .ctx = &grav, .f = ball_f, .vjp = ball_vjp };
    node_event ev = { .nparams = 1, .ctx = &r, .g = ball_g, .g_vjp = ball_gvjp };
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-8;
    double te, ye[2];
    int32_t found = -1;
    node_stats st;
    assert_status(node_odeint_event(&sys, y0, 0.5, 10, &ev, &o, &te, ye, &found, &st), NODE_OK);
    double want = ball_time(10, 1.5, grav, r, 0.5);
    assert_int_equal(found, 1);
    assert_close(te, want, 0, 1e-9);
    assert_close(ye[0], r, 0, 1e-9);
    assert_close(ye[1], 1.5 - grav * (want - 0.5), 0, 1e-8);
    assert_close(st.t_reached, te, 0, 0);
    assert_string_equal(st.message, "");
    /* the reported time is past the crossing (or on it), never before */
    assert_true(ye[0] - r <= 0);
}

/* ---- a damped rotation crossing a moving plane ----------------------------------------
   y' = A y, A = [[-α, ω], [-ω, -α]], θ = (α, ω); g = a0 y0 + a1 y1 - c - k t, φ = (a0,
   a1, c, k).  y(t) = e^{-α s} R(ω s) y(t0), s = t - t0, R(x) = [[cos x, sin x],
   [-sin x, cos x]]. */

typedef struct rot { double alpha, omega; } rot;

static int rot_f(void *ctx, double t, const double *y, double *dydt)
{
    (void)t;
    const rot *p = ctx;
    dydt[0] = -p->alpha * y[0] + p->omega * y[1];
    dydt[1] = -p->omega * y[0] - p->alpha * y[1];
    return 0;
}

static int rot_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vy, double *vp, double *vt)
{
    const rot *p = ctx;
    if (dydt)
        rot_f(ctx, t, y, dydt);
    vy[0] = -p->alpha * a[0] - p->omega * a[1];
    vy[1] = p->omega * a[0] - p->alpha * a[1];
    if (vp) {
        vp[0] = -a[0] * y[0] - a[1] * y[1];
        vp[1] = a[0] * y[1] - a[1] * y[0];
    }
    if (vt)
        *vt = 0;
    return 0;
}

typedef struct plane { double phi[4]; int fail; } plane;

static int plane_g(void *ctx, double t, const double *y, double *v)
{
    const plane *p = ctx;
    if (p->fail == 1)
        return 5;
    *v = p->phi[0] * y[0] + p->phi[1] * y[1] - p->phi[2] - p->phi[3] * t;
    if (p->fail == 2 && t > 0.5)
        *v = NAN;
    return 0;
}

static int plane_gvjp(void *ctx, double t, const double *y, double *gt, double *gy,
                      double *gphi)
{
    const plane *p = ctx;
    if (p->fail == 3)
        return 6;
    *gt = -p->phi[3];
    gy[0] = p->phi[0];
    gy[1] = p->phi[1];
    if (gphi) {
        gphi[0] = y[0];
        gphi[1] = y[1];
        gphi[2] = -1;
        gphi[3] = -t;
    }
    return 0;
}

static void rot_exact(const rot *p, const double *y0, double t0, double t, double *y)
{
    double s = t - t0, e = exp(-p->alpha * s), c = cos(p->omega * s), sn = sin(p->omega * s);
    y[0] = e * (c * y0[0] + sn * y0[1]);
    y[1] = e * (-sn * y0[0] + c * y0[1]);
}

static double plane_at(const rot *p, const plane *q, const double *y0, double t0, double t)
{
    double y[2], v = 0;
    rot_exact(p, y0, t0, t, y);
    plane_g((void *)q, t, y, &v);
    return v;
}

/* The roots of g along the closed form from t0 towards t1 (scan by 1e-3, then
   bisection to the last bit), in the order met, that pass the direction filter
   (in increasing t).  Returns how many (at most cap). */
static int exact_roots(const rot *p, const plane *q, const double *y0, double t0, double t1,
                       int direction, double *roots, int cap)
{
    int n = 0;
    double dir = t1 > t0 ? 1 : -1, dt = 1e-3 * dir;
    double ta = t0, ga = plane_at(p, q, y0, t0, ta);
    for (long i = 1; n < cap; i++) {
        double tb = t0 + (double)i * dt;
        if (dir * (tb - t1) > 0)
            tb = t1;
        double gb = plane_at(p, q, y0, t0, tb);
        if ((ga < 0 && gb > 0) || (ga > 0 && gb < 0)) {
            bool rising = (gb - ga) * dir > 0;
            if (direction == 0 || rising == (direction > 0)) {
                double lo = ta, hi = tb, glo = ga;
                for (int k = 0; k < 200 && lo != hi; k++) {
                    double mid = 0.5 * (lo + hi);
                    if (mid == lo || mid == hi)
                        break;
                    double gm = plane_at(p, q, y0, t0, mid);
                    if ((gm < 0) == (glo < 0)) {
                        lo = mid;
                        glo = gm;
                    } else {
                        hi = mid;
                    }
                }
                roots[n++] = hi;
            }
        }
        if (tb == t1)
            break;
        ta = tb;
        ga = gb;
    }
    return n;
}

static rot ROT = { 0.1, 2.0 };
static plane PLANE = { { 1.0, 0.5, 0.3, 0.05 }, 0 };

static void test_plane_crossing_forward_and_backward(void **state)
{
    (void)state;
    rot p = ROT;
    plane q = PLANE;
    node_system sys = { .dim = 2, .nparams = 2, .ctx = &p, .f = rot_f, .vjp = rot_vjp };
    node_event ev = { .nparams = 4, .ctx = &q, .g = plane_g, .g_vjp = plane_gvjp };
    node_options o = tight();
    double y0[2] = { 2, 0 }, te, ye[2], yx[2], want[4];
    int32_t found;
    /* every adaptive method's dense output (DOP853's has stages of its own) */
    const node_method methods[3] = { NODE_DOPRI5, NODE_DOP853, NODE_BOSH3 };
    for (int mi = 0; mi < 9; mi++) {
        int direction = mi % 3 - 1;
        o.method = methods[mi / 3];
        ev.direction = direction;
        /* forward from t0 = 0.25 */
        assert_int_equal(exact_roots(&p, &q, y0, 0.25, 10, direction, want, 1), 1);
        assert_status(node_odeint_event(&sys, y0, 0.25, 10, &ev, &o, &te, ye, &found, NULL),
                      NODE_OK);
        assert_int_equal(found, 1);
        assert_close(te, want[0], 0, 1e-9);
        rot_exact(&p, y0, 0.25, te, yx);
        assert_close(ye[0], yx[0], 0, 1e-9);
        assert_close(ye[1], yx[1], 0, 1e-9);
        /* backward: from the state at t = 4 towards t = 0 */
        double y4[2];
        rot_exact(&p, y0, 0.25, 4.0, y4);
        assert_int_equal(exact_roots(&p, &q, y4, 4.0, 0, direction, want, 1), 1);
        assert_status(node_odeint_event(&sys, y4, 4.0, 0, &ev, &o, &te, ye, &found, NULL),
                      NODE_OK);
        assert_int_equal(found, 1);
        assert_close(te, want[0], 0, 1e-9);
        rot_exact(&p, y4, 4.0, te, yx);
        assert_close(ye[0], yx[0], 0, 1e-9);
    }
}

static void test_all_events_and_direction_filter(void **state)
{
    (void)state;
    rot p = ROT;
    plane q = PLANE;
    node_system sys = { .dim = 2, .ctx = &p, .f = rot_f };
    node_event ev = { .ctx = &q, .g = plane_g };
    node_options o = tight();
    double y0[2] = { 2, 0 }, te[16], ye[32], want[16], tstop, ystop[2], yx[2];
    for (int direction = -1; direction <= 1; direction++) {
        ev.direction = direction;
        int nw = exact_roots(&p, &q, y0, 0, 8, direction, want, 16);
        assert_true(nw >= (direction ? 2 : 4));
        size_t n = 0;
        assert_status(node_odeint_events(&sys, y0, 0, 8, &ev, &o, 16, te, ye, &n, &tstop,
                                         ystop, NULL), NODE_OK);
        assert_int_equal(n, (size_t)nw);
        for (int i = 0; i < nw; i++) {
            assert_close(te[i], want[i], 0, 1e-9);
            rot_exact(&p, y0, 0, te[i], yx);
            assert_close(ye[2 * i], yx[0], 0, 1e-9);
        }
        assert_close(tstop, 8, 0, 0);
        rot_exact(&p, y0, 0, 8, yx);
        assert_close(ystop[0], yx[0], 0, 1e-9);
        /* a capacity below the count: the first ones, and the full count */
        size_t n2 = 0;
        double te2[2];
        assert_status(node_odeint_events(&sys, y0, 0, 8, &ev, &o, 2, te2, NULL, &n2, NULL,
                                         NULL, NULL), NODE_OK);
        assert_int_equal(n2, n);
        assert_close(te2[1], te[1], 0, 0);
        /* terminal: the first one only, and the solve stops there */
        ev.terminal = 1;
        node_stats st;
        assert_status(node_odeint_events(&sys, y0, 0, 8, &ev, &o, 16, te2, NULL, &n2, &tstop,
                                         ystop, &st), NODE_OK);
        assert_int_equal(n2, 1);
        assert_close(tstop, want[0], 0, 1e-9);
        assert_close(st.t_reached, tstop, 0, 0);
        ev.terminal = 0;
    }
}

/* ---- events by time alone: g = (t - t1)(t - t2)... chosen per test ------------------- */

typedef struct tfun { int kind; double a; } tfun;

static int t_g(void *ctx, double t, const double *y, double *v)
{
    (void)y;
    const tfun *c = ctx;
    switch (c->kind) {
    case 0: *v = t - c->a; break;                                  /* crosses at a */
    case 1: *v = (t - c->a) * (t - c->a); break;                   /* touches at a */
    default: *v = -(t - c->a) * (t - c->a) * (1.6 - t); break;     /* touches a, crosses 1.6 */
    }
    return 0;
}

static int decay(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx; (void)t;
    dydt[0] = -y[0];
    return 0;
}

static node_status t_event(tfun *c, node_method m, double step, double t0, double t1,
                           double *te, double *ye, int32_t *found, node_stats *st)
{
    node_system sys = { .dim = 1, .f = decay };
    node_event ev = { .ctx = c, .g = t_g, .t_tol = 1e-15 };
    node_options o = tight();
    o.method = m;
    o.step = step;
    double y0 = 1;
    return node_odeint_event(&sys, &y0, t0, t1, &ev, &o, te, ye, found, st);
}

static void test_event_in_first_and_last_step(void **state)
{
    (void)state;
    double te, ye;
    int32_t found;
    node_stats st;
    /* the first step (first step 0.1 asked for; the event at 0.01) */
    tfun c = { 0, 0.01 };
    assert_status(t_event(&c, NODE_DOPRI5, 0.1, 0, 5, &te, &ye, &found, &st), NODE_OK);
    assert_int_equal(found, 1);
    assert_int_equal(st.naccept, 1);
    assert_close(te, 0.01, 0, 1e-14);
    assert_close(ye, exp(-0.01), 0, 1e-10);
    /* the last step: the event just before t_end */
    c.a = 5 - 1e-6;
    assert_status(t_event(&c, NODE_DOPRI5, 0, 0, 5, &te, &ye, &found, &st), NODE_OK);
    assert_int_equal(found, 1);
    assert_close(te, 5 - 1e-6, 0, 1e-13);
    assert_close(ye, exp(-(5 - 1e-6)), 0, 1e-10);
    node_stats all;
    double y0 = 1, ts[2] = { 0, 5 }, ys[2];
    node_system sys = { .dim = 1, .f = decay };
    node_options o = tight();
    assert_status(node_odeint(&sys, &y0, ts, 2, ys, &o, &all), NODE_OK);
    assert_int_equal(st.naccept, all.naccept);
    /* exactly at t_end: an event there */
    c.a = 5;
    assert_status(t_event(&c, NODE_DOPRI5, 0, 0, 5, &te, &ye, &found, &st), NODE_OK);
    assert_int_equal(found, 1);
    assert_close(te, 5, 0, 0);
    /* backward in time, the first step */
    c.a = 4.99;
    assert_status(t_event(&c, NODE_DOPRI5, 0.1, 5, 0, &te, &ye, &found, &st), NODE_OK);
    assert_int_equal(found, 1);
    assert_int_equal(st.naccept, 1);
    assert_close(te, 4.99, 0, 1e-14);
}

static void test_event_at_t0_is_not_reported(void **state)
{
    (void)state;
    double te, ye;
    int32_t found;
    tfun c = { 0, 1.0 };
    assert_status(t_event(&c, NODE_DOPRI5, 0, 1.0, 3, &te, &ye, &found, NULL), NODE_OK);
    assert_int_equal(found, 0);
    assert_close(te, 3, 0, 0);
    /* backward from t0 = 1 (g < 0 all the way): none either */
    assert_status(t_event(&c, NODE_DOPRI5, 0, 1.0, 0, &te, &ye, &found, NULL), NODE_OK);
    assert_int_equal(found, 0);
}

static void test_touching_zero_is_not_an_event(void **state)
{
    (void)state;
    double te, ye;
    int32_t found;
    /* inside a step (adaptive) and exactly at a step end (RK4, steps of 0.25) */
    tfun c = { 1, 1.0 };
    assert_status(t_event(&c, NODE_DOPRI5, 0, 0, 2, &te, &ye, &found, NULL), NODE_OK);
    assert_int_equal(found, 0);
    assert_status(t_event(&c, NODE_RK4, 0.25, 0, 2, &te, &ye, &found, NULL), NODE_OK);
    assert_int_equal(found, 0);
    assert_close(te, 2, 0, 0);
    /* a crossing exactly at a step end is one, at that time */
    c.kind = 0;
    assert_status(t_event(&c, NODE_RK4, 0.25, 0, 2, &te, &ye, &found, NULL), NODE_OK);
    assert_int_equal(found, 1);
    assert_close(te, 1.0, 0, 0);
    /* a touch at a step end, then a crossing: the crossing */
    c.kind = 2;
    for (int m = 0; m < 2; m++) {
        assert_status(t_event(&c, m ? NODE_DOPRI5 : NODE_RK4, m ? 0 : 0.25, 0, 2, &te, &ye,
                              &found, NULL), NODE_OK);
        assert_int_equal(found, 1);
        assert_close(te, 1.6, 0, 1e-14);
    }
}

static void test_no_event_before_t_end(void **state)
{
    (void)state;
    rot p = ROT;
    plane q = { { 1, 0, 5, 0 }, 0 };   /* y0 = 5: never reached from |y| <= 2 */
    node_system sys = { .dim = 2, .ctx = &p, .f = rot_f };
    node_event ev = { .ctx = &q, .g = plane_g };
    node_options o = tight();
    double y0[2] = { 2, 0 }, te = 0, ye[2], ts[2] = { 0, 3 }, ys[4];
    int32_t found = 7;
    node_stats st;
    assert_status(node_odeint_event(&sys, y0, 0, 3, &ev, &o, &te, ye, &found, &st), NODE_OK);
    assert_int_equal(found, 0);
    assert_close(te, 3, 0, 0);
    assert_close(st.t_reached, 3, 0, 0);
    /* the same solve as node_odeint's, bit for bit */
    assert_status(node_odeint(&sys, y0, ts, 2, ys, &o, NULL), NODE_OK);
    assert_memory_equal(ye, ys + 2, sizeof ye);
    /* and a reused solver allocates nothing the second time */
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    assert_status(node_solver_odeint_event(s, &sys, y0, 0, 3, &ev, &o, &te, ye, &found, NULL),
                  NODE_OK);
    node_test_alloc_begin(-1);
    assert_status(node_solver_odeint_event(s, &sys, y0, 0, 3, &ev, &o, &te, ye, &found, NULL),
                  NODE_OK);
    assert_int_equal(node_test_alloc_end(), 0);
    node_solver_free(s);
}

/* ---- gradients through the event time --------------------------------------------- */

/* L = wt t_e + wy · y_e of the closed-form event of the ball. */
static double ball_loss(const double *in, const double *w)
{
    /* in = (p0, v0, grav, r, t0) */
    double te = ball_time(in[0], in[1], in[2], in[3], in[4]);
    double s = te - in[4];
    double pos = in[0] + in[1] * s - 0.5 * in[2] * s * s, vel = in[1] - in[2] * s;
    return w[0] * te + w[1] * pos + w[2] * vel;
}

static void fd_grad(double (*loss)(const double *, const double *, const void *),
                    const double *in, int n, const double *w, const void *ctx, double *out)
{
    for (int i = 0; i < n; i++) {
        double x[8];
        memcpy(x, in, (size_t)n * sizeof *x);
        double h = 1e-6 * fmax(1, fabs(in[i]));
        x[i] = in[i] + h;
        double lp = loss(x, w, ctx);
        x[i] = in[i] - h;
        double lm = loss(x, w, ctx);
        out[i] = (lp - lm) / (2 * h);
    }
}

static double ball_loss_ctx(const double *in, const double *w, const void *ctx)
{
    (void)ctx;
    return ball_loss(in, w);
}

static void test_ball_gradient_against_central_differences(void **state)
{
    (void)state;
    double in[5] = { 10, 1.5, 9.8, 0.2, 0.5 };
    double grav = in[2], r = in[3];
    node_system sys = { .dim = 2, .nparams = 1, .ctx = &grav, .f = ball_f, .vjp = ball_vjp };
    node_event ev = { .nparams = 1, .ctx = &r, .g = ball_g, .g_vjp = ball_gvjp,
                      .t_tol = 1e-15 };
    node_options o = tight();
    double te, ye[2];
    int32_t found;
    assert_status(node_odeint_event(&sys, in, in[4], 10, &ev, &o, &te, ye, &found, NULL),
                  NODE_OK);
    const double ws[3][3] = { { 1, 0, 0 }, { 0, 0, 1 }, { 0.7, -0.3, 0.2 } };
    for (int k = 0; k < 3; k++) {
        double want[5];
        fd_grad(ball_loss_ctx, in, 5, ws[k], NULL, want);
        for (int m = 0; m < 2; m++) {
            double dy0[2], dp, dphi, dt0;
            node_stats st;
            assert_status(node_odeint_event_grad(&sys, in, in[4], &ev, te, ye, ws[k][0],
                                                 ws[k] + 1,
                                                 m ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT,
                                                 dy0, &dp, &dphi, &dt0, &o, &st), NODE_OK);
            assert_close(dy0[0], want[0], 1e-6, 1e-8);
            assert_close(dy0[1], want[1], 1e-6, 1e-8);
            assert_close(dp, want[2], 1e-6, 1e-8);
            assert_close(dphi, want[3], 1e-6, 1e-8);
            assert_close(dt0, want[4], 1e-6, 1e-8);
            assert_true(st.nfe > 0);
        }
    }
}

/* in = (y0_0, y0_1, α, ω, a0, a1, c, k) with t0 = T0: L = wt t_e + wy · y_e. */
#define T0 0.25
static double plane_loss(const double *in, const double *w, const void *ctx)
{
    (void)ctx;
    rot p = { in[2], in[3] };
    plane q = { { in[4], in[5], in[6], in[7] }, 0 };
    double root = 0, y[2];
    assert_int_equal(exact_roots(&p, &q, in, T0, 10, 0, &root, 1), 1);
    rot_exact(&p, in, T0, root, y);
    return w[0] * root + w[1] * y[0] + w[2] * y[1];
}

static double plane_loss_t0(const double *in, const double *w, const void *ctx)
{
    /* the start time as the variable: in[0] = t0, the rest fixed */
    const double *fixed = ctx;
    rot p = { fixed[2], fixed[3] };
    plane q = { { fixed[4], fixed[5], fixed[6], fixed[7] }, 0 };
    double root = 0, y[2];
    assert_int_equal(exact_roots(&p, &q, fixed, in[0], 10, 0, &root, 1), 1);
    rot_exact(&p, fixed, in[0], root, y);
    return w[0] * root + w[1] * y[0] + w[2] * y[1];
}

static void test_plane_gradient_against_central_differences(void **state)
{
    (void)state;
    double in[8] = { 2, 0, ROT.alpha, ROT.omega, PLANE.phi[0], PLANE.phi[1], PLANE.phi[2],
                     PLANE.phi[3] };
    rot p = ROT;
    plane q = PLANE;
    node_system sys = { .dim = 2, .nparams = 2, .ctx = &p, .f = rot_f, .vjp = rot_vjp };
    node_event ev = { .nparams = 4, .ctx = &q, .g = plane_g, .g_vjp = plane_gvjp,
                      .t_tol = 1e-15 };
    node_options o = tight();
    double te, ye[2];
    int32_t found;
    assert_status(node_odeint_event(&sys, in, T0, 10, &ev, &o, &te, ye, &found, NULL), NODE_OK);
    assert_int_equal(found, 1);
    const double ws[2][3] = { { 1, 0, 0 }, { 0.4, 1.1, -0.6 } };
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    for (int k = 0; k < 2; k++) {
        double want[8], want_t0;
        fd_grad(plane_loss, in, 8, ws[k], NULL, want);
        double t0v = T0;
        fd_grad(plane_loss_t0, &t0v, 1, ws[k], in, &want_t0);
        for (int m = 0; m < 2; m++) {
            double dy0[2], dp[2], dphi[4], dt0;
            assert_status(node_solver_event_grad(s, &sys, in, T0, &ev, te, ye, ws[k][0],
                                                 ws[k] + 1,
                                                 m ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT,
                                                 dy0, dp, dphi, &dt0, &o, NULL), NODE_OK);
            for (int i = 0; i < 2; i++) {
                assert_close(dy0[i], want[i], 1e-5, 1e-7);
                assert_close(dp[i], want[2 + i], 1e-5, 1e-7);
            }
            for (int i = 0; i < 4; i++)
                assert_close(dphi[i], want[4 + i], 1e-5, 1e-7);
            assert_close(dt0, want_t0, 1e-5, 1e-7);
            /* the optional outputs may be left out */
            double dy0b[2];
            assert_status(node_solver_event_grad(s, &sys, in, T0, &ev, te, ye, ws[k][0], NULL,
                                                 m ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT,
                                                 dy0b, NULL, NULL, NULL, &o, NULL), NODE_OK);
            if (k == 0)
                assert_close(dy0b[0], dy0[0], 1e-8, 1e-10);   /* other steps: no dL/dθ block */
        }
    }
    node_solver_free(s);
}

/* ---- refusals -------------------------------------------------------------------- */

#define REFUSE(call, want, word) do {                                                 \
        node_stats st_;                                                                 \
        node_stats *stp_ = &st_;                                                        \
        (void)stp_;                                                                     \
        assert_status((call), (want));                                                  \
        assert_int_equal(st_.status, (want));                                           \
        if (!strstr(st_.message, (word)))                                               \
            fail_msg("message '%s' does not name '%s'", st_.message, (word));           \
    } while (0)

static void test_refusals(void **state)
{
    (void)state;
    double grav = 9.8, r = 0.2, y0[2] = { 10, 0 }, te, ye[2], bad[2] = { NAN, 0 };
    int32_t found;
    size_t n;
    node_system sys = { .dim = 2, .nparams = 1, .ctx = &grav, .f = ball_f, .vjp = ball_vjp };
    node_event ev = { .nparams = 1, .ctx = &r, .g = ball_g, .g_vjp = ball_gvjp };
    node_options o = node_options_default();
#define EV(sys_, y0_, t0_, t1_, ev_, te_, ye_, found_) \
    node_odeint_event(sys_, y0_, t0_, t1_, ev_, &o, te_, ye_, found_, stp_)
    REFUSE(EV(NULL, y0, 0, 1, &ev, &te, ye, &found), NODE_EINVAL, "sys");
    REFUSE(EV(&sys, NULL, 0, 1, &ev, &te, ye, &found), NODE_EINVAL, "y0");
    REFUSE(EV(&sys, bad, 0, 1, &ev, &te, ye, &found), NODE_EINVAL, "y0[0]");
    REFUSE(EV(&sys, y0, NAN, 1, &ev, &te, ye, &found), NODE_EINVAL, "t0");
    REFUSE(EV(&sys, y0, 0, INFINITY, &ev, &te, ye, &found), NODE_EINVAL, "t_end");
    REFUSE(EV(&sys, y0, 1, 1, &ev, &te, ye, &found), NODE_EINVAL, "t_end");
    REFUSE(EV(&sys, y0, 0, 1, NULL, &te, ye, &found), NODE_EINVAL, "ev");
    REFUSE(EV(&sys, y0, 0, 1, &ev, NULL, ye, &found), NODE_EINVAL, "t_event");
    REFUSE(EV(&sys, y0, 0, 1, &ev, &te, NULL, &found), NODE_EINVAL, "y_event");
    REFUSE(EV(&sys, y0, 0, 1, &ev, &te, ye, NULL), NODE_EINVAL, "found");
    node_event e2 = ev;
    e2.g = NULL;
    REFUSE(EV(&sys, y0, 0, 1, &e2, &te, ye, &found), NODE_EINVAL, "ev->g");
    e2 = ev;
    e2.direction = 2;
    REFUSE(EV(&sys, y0, 0, 1, &e2, &te, ye, &found), NODE_EINVAL, "ev->direction");
    e2 = ev;
    e2.terminal = -1;
    REFUSE(EV(&sys, y0, 0, 1, &e2, &te, ye, &found), NODE_EINVAL, "ev->terminal");
    e2 = ev;
    e2.t_tol = -1;
    REFUSE(EV(&sys, y0, 0, 1, &e2, &te, ye, &found), NODE_EINVAL, "ev->t_tol");
    e2.t_tol = NAN;
    REFUSE(EV(&sys, y0, 0, 1, &e2, &te, ye, &found), NODE_EINVAL, "ev->t_tol");
    e2 = ev;
    e2.reserved_[3] = 1;
    REFUSE(EV(&sys, y0, 0, 1, &e2, &te, ye, &found), NODE_EINVAL, "reserved");
    o.rtol = -1;
    REFUSE(EV(&sys, y0, 0, 1, &ev, &te, ye, &found), NODE_EINVAL, "rtol");
    o = node_options_default();
    REFUSE(node_solver_odeint_event(NULL, &sys, y0, 0, 1, &ev, &o, &te, ye, &found, stp_),
           NODE_EINVAL, "solver");
    REFUSE(node_odeint_events(&sys, y0, 0, 1, &ev, &o, 3, NULL, NULL, &n, NULL, NULL, stp_),
           NODE_EINVAL, "t_events");
    REFUSE(node_odeint_events(&sys, y0, 0, 1, &ev, &o, 0, NULL, NULL, NULL, NULL, NULL, stp_),
           NODE_EINVAL, "nevents");
    /* callbacks that fail */
    rot p = ROT;
    plane q = PLANE;
    node_system rs = { .dim = 2, .nparams = 2, .ctx = &p, .f = rot_f, .vjp = rot_vjp };
    node_event pe = { .nparams = 4, .ctx = &q, .g = plane_g, .g_vjp = plane_gvjp };
    double r0[2] = { 2, 0 };
    q.fail = 1;
    {
        node_stats st;
        assert_status(node_odeint_event(&rs, r0, 0, 5, &pe, &o, &te, ye, &found, &st),
                      NODE_ECALLBACK);
        assert_int_equal(st.callback_rc, 5);
        assert_non_null(strstr(st.message, "ev->g returned 5"));
        assert_int_equal(found, 0);
    }
    q.fail = 2;
    REFUSE(node_odeint_event(&rs, r0, 0, 5, &pe, &o, &te, ye, &found, stp_), NODE_ENONFINITE,
           "ev->g returned nan");
    q.fail = 0;
    /* gradient refusals */
    assert_status(node_odeint_event(&rs, r0, 0, 5, &pe, &o, &te, ye, &found, NULL), NODE_OK);
    double dy0[2], dp[2], dphi[4], dt0, dly[2] = { 0, 0 };
#define GR(sys_, ev_, te_, ye_, dlt_, dly_, m_, dp_, dphi_) \
    node_odeint_event_grad(sys_, r0, 0, ev_, te_, ye_, dlt_, dly_, m_, dy0, dp_, dphi_, &dt0, \
                           &o, stp_)
    REFUSE(GR(&rs, &pe, te, ye, 1, dly, (node_grad_method)7, dp, dphi), NODE_EINVAL, "method");
    REFUSE(GR(&rs, &pe, 0, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "t_event");
    REFUSE(GR(&rs, &pe, NAN, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "t_event");
    REFUSE(GR(&rs, &pe, te, NULL, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "y_event");
    REFUSE(GR(&rs, &pe, te, bad, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "y_event");
    REFUSE(GR(&rs, &pe, te, ye, NAN, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL,
           "dLdt_event");
    REFUSE(GR(&rs, &pe, te, ye, 1, bad, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "dLdy_event");
    REFUSE(node_odeint_event_grad(&rs, r0, 0, &pe, te, ye, 1, dly, NODE_GRAD_ADJOINT, NULL, dp,
                                  dphi, &dt0, &o, stp_), NODE_EINVAL, "dLdy0");
    node_system rs0 = rs;
    rs0.nparams = 0;
    REFUSE(GR(&rs0, &pe, te, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "dLdp");
    node_event pe0 = pe;
    pe0.nparams = 0;
    REFUSE(GR(&rs, &pe0, te, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "dLdphi");
    pe0 = pe;
    pe0.g_vjp = NULL;
    REFUSE(GR(&rs, &pe0, te, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "g_vjp");
    rs0 = rs;
    rs0.vjp = NULL;
    REFUSE(GR(&rs0, &pe, te, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_EINVAL, "sys->vjp");
    q.fail = 3;
    REFUSE(GR(&rs, &pe, te, ye, 1, dly, NODE_GRAD_ADJOINT, dp, dphi), NODE_ECALLBACK,
           "ev->g_vjp returned 6");
    q.fail = 0;
    /* a grazing event: the ball at its apex (vel = 0), with g = pos - r */
    double apex[2] = { 10, 0 };
    REFUSE(node_odeint_event_grad(&sys, y0, 0, &ev, 1.0, apex, 1, NULL, NODE_GRAD_ADJOINT, dy0,
                                  NULL, NULL, NULL, &o, stp_), NODE_EINVAL, "grazing");
#undef EV
#undef GR
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_falling_ball_time_and_state),
        cmocka_unit_test(test_plane_crossing_forward_and_backward),
        cmocka_unit_test(test_all_events_and_direction_filter),
        cmocka_unit_test(test_event_in_first_and_last_step),
        cmocka_unit_test(test_event_at_t0_is_not_reported),
        cmocka_unit_test(test_touching_zero_is_not_an_event),
        cmocka_unit_test(test_no_event_before_t_end),
        cmocka_unit_test(test_ball_gradient_against_central_differences),
        cmocka_unit_test(test_plane_gradient_against_central_differences),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
