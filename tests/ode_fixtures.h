/* ode_fixtures.h — problems and helpers shared by the solver-core tests
 * (test_ode.c, test_ode_fail.c, test_ode_failinfo.c): the method lists, a
 * counting/failing exponential decay, the harmonic oscillator, a blow-up and a fragile f,
 * and option/system shorthands.
 */
#ifndef LIBNODE_TEST_ODE_FIXTURES_H
#define LIBNODE_TEST_ODE_FIXTURES_H

#include <libnode.h>

#include "internal.h"

static const node_method all_methods[] = { NODE_EULER, NODE_MIDPOINT, NODE_RK4,
                                           NODE_BOSH3, NODE_DOPRI5, NODE_DOP853 };
#define NMETHODS (int)(sizeof all_methods / sizeof all_methods[0])
static const node_method adaptive[] = { NODE_BOSH3, NODE_DOPRI5, NODE_DOP853 };

/* Does m adapt its step?  (From its registry entry, not from its enum value.) */
static inline int is_adaptive(node_method m) { return node__tableau_get(m)->err_order > 0; }

typedef struct counter {
    long calls;          /* evaluations of f */
    long fail_after;     /* return non-zero on this call (0 = never) */
} counter;

/* y' = -(1, 2, 0.5) y (dim 3); ctx, if set, counts the calls and fails one. */
static inline int decay(void *ctx, double t, const double *y, double *dydt)
{
    (void)t;
    if (ctx) {
        counter *c = ctx;
        if (++c->calls == c->fail_after)
            return 7;
    }
    dydt[0] = -y[0];
    dydt[1] = -2 * y[1];
    dydt[2] = -0.5 * y[2];
    return 0;
}

/* harmonic oscillator x'' = -x: y = (cos t, -sin t) from (1, 0) */
static inline int oscillator(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    (void)t;
    dydt[0] = y[1];
    dydt[1] = -y[0];
    return 0;
}

/* y' = y², y(0) = 1: y = 1/(1-t) blows up at t = 1. */
static inline int blowup(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    (void)t;
    dydt[0] = y[0] * y[0];
    return 0;
}

/* y' = -y, but f is NaN for y < 0.55 or, with ctx set, for any t > 0.5. */
static inline int fragile(void *ctx, double t, const double *y, double *dydt)
{
    dydt[0] = (y[0] < 0.55 || (ctx && t > 0.5)) ? NAN : -y[0];
    return 0;
}

static inline node_system sys_of(size_t dim,
                                 int (*f)(void *, double, const double *, double *),
                                 void *ctx)
{
    node_system s = { .dim = dim, .ctx = ctx, .f = f };
    return s;
}

static inline node_options opts(node_method m, double tol, double step)
{
    node_options o = node_options_default();
    o.method = m;
    o.rtol = o.atol = tol;
    o.step = step;
    return o;
}

#endif /* LIBNODE_TEST_ODE_FIXTURES_H */
