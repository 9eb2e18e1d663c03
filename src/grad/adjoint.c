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

static double block_rms(const double *err, const double *y, const double *ynew,
                        size_t n, double rtol, double atol)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double sc = atol + rtol * fmax(fabs(y[i]), fabs(ynew[i]));
        double r = err[i] / sc;
        sum += r * r;
    }
    return n ? sqrt(sum / (double)n) : 0;
}

/* The largest of the per-block RMS norms; with the seminorm only z and a count.
   NaN if any entry of err is NaN or Inf, whichever block it is in: fmax would drop a
   NaN block, and an excluded block is not looked at by the norm, yet a NaN there (in
   the FSAL stage, whose weight in ynew is 0) would be handed on to the next step as its
   k_0, where no smaller step can cure it.  Rejected now, a smaller step may avoid it. */
typedef struct norm_ctx {
    size_t dim, np, nt;
    int seminorm;
} norm_ctx;

static double aug_norm(void *nctx, size_t dim, const double *err, const double *y,
                       const double *ynew, double rtol, double atol)
{
    const norm_ctx *c = nctx;
    (void)dim;
    size_t n = c->dim, o = 2 * n, q = c->np + c->nt;
    double rz = block_rms(err, y, ynew, n, rtol, atol);
    double ra = block_rms(err + n, y + n, ynew + n, n, rtol, atol);
    double r = fmax(rz, ra), bad = rz + ra;
    if (!c->seminorm) {
        double rp = block_rms(err + o, y + o, ynew + o, c->np, rtol, atol);
        o += c->np;
        double rt = block_rms(err + o, y + o, ynew + o, c->nt, rtol, atol);
        r = fmax(r, fmax(rp, rt));
        bad += rp + rt;
    } else if (q && node__nonfinite(err + o, q)) {
        return NAN;
    }
    return bad == bad ? r : NAN;
}

/* dL/dts[i] = dLdys[i]ᵀ f(t_i, ys[i]): the direct dependence of the loss on output
   time t_i.  A failure says where (the backward pass has reached t_i). */
static node_status time_grad(const node_system *sys, size_t i, double t, const double *y,
                             const double *w, double *tmp, node_stats *st, double *out)
{
    st->nfe++;
    int rc = sys->f(sys->ctx, t, y, tmp);
    if (rc) {
        st->callback_rc = rc;
        return node__msg(st->message, NODE_ECALLBACK,
                         "sys->f returned %d at t = ts[%zu] = %g (for dL/dts[%zu], backward pass)",
                         rc, i, t, i);
    }
    double sum = 0;
    for (size_t j = 0; j < sys->dim; j++)
        sum += w[j] * tmp[j];
    if (!isfinite(sum))
        return node__msg(st->message, NODE_ENONFINITE,
                         "dL/dts[%zu] = %g: sys->f gave a NaN or Inf at t = ts[%zu] = %g "
                         "(backward pass)", i, sum, i, t);
    *out = sum;
    return NODE_OK;
}

/* Say where and why the backward solve from ts[i] to ts[i-1] failed with rc (the
   integrator has set stats->t_reached to the end of its last accepted step). */
static node_status backward_failed(node_stats *st, node_status rc, const aug_ctx *ac,
                                   const node_options *o, double from, double to)
{
    char *msg = st->message;
    double t = st->t_reached;
    switch (rc) {
    case NODE_ECALLBACK:
        if (!ac->rc)
            break;
        st->callback_rc = ac->rc;
        return node__msg(msg, rc, "sys->vjp returned %d at t = %g (backward pass)", ac->rc,
                         ac->t_rc);
    case NODE_EMAXSTEPS:
        return node__msg(msg, rc,
                         "the backward pass needs more than opt->max_steps = %lld steps (all "
                         "its intervals together); it reached t = %g",
                         (long long)o->max_steps, t);
    case NODE_ENONFINITE:
        return node__msg(msg, rc,
                         "the adjoint state turned NaN or Inf after t = %g and smaller steps "
                         "did not avoid it (backward pass from %g to %g): sys->vjp returned a "
                         "non-finite value", t, from, to);
    case NODE_ESTEPSIZE:
        return node__msg(msg, rc,
                         "the backward step size underflowed at t = %g (backward pass from %g "
                         "to %g): the adjoint system is too stiff or singular there",
                         t, from, to);
    case NODE_ENOMEM:
        return node__msg(msg, rc, "out of memory for the backward solve's workspace");
    default:
        break;
    }
    return node__msg(msg, rc, "%s at t = %g (backward pass)", node_strerror(rc), t);
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
    norm_ctx nc = { n, np, ntb, o.seminorm };
    node__ode ode = { .dim = m, .f = aug_f, .ctx = &ac, .norm = aug_norm, .nctx = &nc };

    size_t last = nt - 1;
    stats->t_reached = ts[last];
    memcpy(aug, ys + last * n, n * sizeof(double));
    memcpy(aug + n, dLdys + last * n, n * sizeof(double));
    memset(aug + 2 * n, 0, (np + ntb) * sizeof(double));
    if (ntb && last > 0) {
        /* gt starts at -dL/dt_N and loses dL/dt_i at each output, so that at t0
           it holds ∫_{t0}^{tN} aᵀ∂f/∂t dt - Σ_{i≥1} dL/dt_i = dL/dt0 (a uniform
           shift of every t_i moves L by ∫ aᵀ∂f/∂t). */
        if ((rc = time_grad(sys, last, ts[last], ys + last * n, dLdys + last * n, tmp, stats,
                            &dLdts[last])))
            goto out;
        aug[m - 1] = -dLdts[last];
    }
    for (size_t i = last; i > 0; i--) {
        /* One budget of opt->max_steps attempted steps for the whole backward pass, as
           for a forward solve: each interval gets what the earlier ones left. */
        if (stats->nsteps >= o.max_steps) {
            rc = backward_failed(stats, NODE_EMAXSTEPS, &ac, &o, ts[i], ts[i - 1]);
            goto out;
        }
        bo.max_steps = o.max_steps - stats->nsteps;
        double tsi[2] = { ts[i], ts[i - 1] };
        rc = node__integrate(s, &ode, aug, tsi, 2, rows, &bo, stats, NULL);
        if (rc) {
            rc = backward_failed(stats, rc, &ac, &o, ts[i], ts[i - 1]);
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
            if ((rc = time_grad(sys, i - 1, ts[i - 1], yi, wi, tmp, stats, &dLdts[i - 1])))
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
