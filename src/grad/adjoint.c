/* adjoint.c — gradients by the adjoint sensitivity method: Chen, Rubanova,
 * Bettencourt, Duvenaud, "Neural Ordinary Differential Equations" (NeurIPS 2018),
 * Algorithm 1 and appendix B.2 (time gradients); the backward error norm by
 * blocks and the seminorm of Kidger, Chen, Lyons, "'Hey, that's not an ODE':
 * faster ODE adjoints via seminorms" (ICML 2021).
 */
#include "grad.h"

#include <math.h>
#include <string.h>

/* ---- the augmented system ----------------------------------------------------
 * State [z | a | gθ | gt] with
 *   dz/dt = f(t, z),  da/dt = -aᵀ∂f/∂z,  dgθ/dt = -aᵀ∂f/∂θ,  dgt/dt = -aᵀ∂f/∂t,
 * solved from t_i back to t_{i-1}.  With a(t_i) = dL/dz(t_i) and gθ(t_i) = 0 this
 * gives gθ(t_{i-1}) = ∫_{t_{i-1}}^{t_i} aᵀ∂f/∂θ dt, whatever the direction of time. */

typedef struct aug_ctx {
    const node_system *sys;
    size_t dim, np, nt;   /* np: length of the gθ block (0 = skipped); nt: of gt (0 or 1) */
    int rc;               /* the non-zero value sys->vjp returned, and at which t */
    double t_rc;
} aug_ctx;

static int aug_f(void *ctx, double t, const double *y, double *dydt)
{
    aug_ctx *c = ctx;
    size_t n = c->dim;
    double *da = dydt + n, *dp = dydt + 2 * n, *dt = dydt + 2 * n + c->np;
    /* One vjp call: f into the z block, aᵀ∂f/∂(z, θ, t) into the others, negated. */
    int rc = c->sys->vjp(c->sys->ctx, t, y, y + n, dydt, da,
                         c->np ? dp : NULL, c->nt ? dt : NULL);
    if (rc) {
        c->rc = rc;
        c->t_rc = t;
        return rc;
    }
    size_t m = n + c->np + c->nt;
    for (size_t i = 0; i < m; i++)
        da[i] = -da[i];
    return 0;
}

/* ---- Algorithm 1 ------------------------------------------------------------ */

node_status node_solver_adjoint(node_solver *s, const node_system *sys,
                                const double *ts, size_t nt,
                                const double *ys, const double *dLdys,
                                double *dLdy0, double *dLdp, double *dLdts,
                                const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_options o;
    node_status rc = node__grad_begin(s, sys, ts, nt, ys, dLdys, dLdy0, dLdp, opt, &o, stats);
    if (rc)
        return node__stats_end(stats, rc);

    size_t n = sys->dim;
    size_t np = dLdp ? sys->nparams : 0;
    size_t ntb = dLdts ? 1 : 0;
    /* [aug state | 2 rows for the integrator's output | f scratch] */
    if (n > SIZE_MAX / 16 || np > SIZE_MAX / 16)     /* 7n + 3np + 3 must not wrap */
        return node__stats_end(stats, NODE_ENOMEM);
    size_t m = 2 * n + np + ntb;
    if ((rc = node__grow(&s->aug, &s->aug_cap, 3 * m + n)))
        return node__stats_end(stats, rc);
    double *aug = s->aug, *rows = aug + m, *tmp = rows + 2 * m;

    /* The backward solve: its own tolerances; an adaptive first step is chosen
       for the augmented system on the first interval, and each later interval starts
       with the step the controller had planned when the previous one ended (the
       augmented state is continuous there up to the jump in a, so this saves the
       initial-step evaluations and the cautious first steps of every restart). */
    node_options bo = o;
    bo.rtol = o.adjoint_rtol;
    bo.atol = o.adjoint_atol;
    bool adaptive = node__tableau_get(o.method)->err_order > 0;
    if (adaptive)
        bo.step = 0;
    aug_ctx ac = { .sys = sys, .dim = n, .np = np, .nt = ntb };
    node__grad_norm nc = { n, n, np, ntb, o.seminorm };
    node__ode ode = { .dim = m, .f = aug_f, .ctx = &ac, .norm = node__grad_norm_fn, .nctx = &nc };

    size_t last = nt - 1;
    stats->t_reached = ts[last];
    memcpy(aug, ys + last * n, n * sizeof(double));
    memcpy(aug + n, dLdys + last * n, n * sizeof(double));
    memset(aug + 2 * n, 0, (np + ntb) * sizeof(double));
    if (ntb && last > 0) {
        /* gt starts at -dL/dt_N and loses dL/dt_i at each output, so that at t0
           it holds ∫_{t0}^{tN} aᵀ∂f/∂t dt - Σ_{i≥1} dL/dt_i = dL/dt0 (a uniform
           shift of every t_i moves L by ∫ aᵀ∂f/∂t). */
        if ((rc = node__grad_time(sys, last, ts[last], ys + last * n, dLdys + last * n, tmp, stats,
                            &dLdts[last])))
            goto out;
        aug[m - 1] = -dLdts[last];
    }
    for (size_t i = last; i > 0; i--) {
        /* One budget of opt->max_steps attempted steps for the whole backward pass, as
           for a forward solve: each interval gets what the earlier ones left. */
        if (stats->nsteps >= o.max_steps) {
            rc = node__grad_backward_failed(stats, NODE_EMAXSTEPS, ac.rc, ac.t_rc, &o, ts[i],
                                            ts[i - 1]);
            goto out;
        }
        bo.max_steps = o.max_steps - stats->nsteps;
        double tsi[2] = { ts[i], ts[i - 1] };
        rc = node__integrate(s, &ode, aug, tsi, 2, rows, &bo, stats, NULL);
        if (rc) {
            rc = node__grad_backward_failed(stats, rc, ac.rc, ac.t_rc, &o, ts[i], ts[i - 1]);
            goto out;
        }
        if (adaptive)
            bo.step = s->h_next;
        memcpy(aug, rows + m, m * sizeof(double));
        const double *yi = ys + (i - 1) * n, *wi = dLdys + (i - 1) * n;
        memcpy(aug, yi, n * sizeof(double));            /* z back on the forward path */
        for (size_t j = 0; j < n; j++)
            aug[n + j] += wi[j];
        if (ntb && i - 1 > 0) {
            if ((rc = node__grad_time(sys, i - 1, ts[i - 1], yi, wi, tmp, stats, &dLdts[i - 1])))
                goto out;
            aug[m - 1] -= dLdts[i - 1];
        }
        /* Once per interval (O(dim + nparams)): the integrator refuses a non-finite
           output row, and this makes sure of it, the jumps at ts[i-1] included, so that
           no gradient leaves with NODE_OK unless it is finite. */
        if (node__nonfinite(aug, m)) {
            rc = node__msg(stats->message, NODE_ENONFINITE,
                           "the adjoint state is NaN or Inf at t = ts[%zu] = %g (backward pass)",
                           i - 1, ts[i - 1]);
            goto out;
        }
    }
    stats->t_reached = ts[0];
    memcpy(dLdy0, aug + n, n * sizeof(double));
    if (np)
        memcpy(dLdp, aug + 2 * n, np * sizeof(double));
    if (ntb)
        dLdts[0] = aug[m - 1];
out:
    stats->rows_done = 0;
    return node__stats_end(stats, rc);
}

node_status node_odeint_adjoint(const node_system *sys, const double *ts, size_t nt,
                                const double *ys, const double *dLdys,
                                double *dLdy0, double *dLdp, double *dLdts,
                                const node_options *opt, node_stats *stats)
{
    return node__grad_oneshot(node_solver_adjoint, sys, ts, nt, ys, dLdys, dLdy0, dLdp, dLdts,
                              opt, stats);
}
