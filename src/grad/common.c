/* common.c — argument checks and one-shot entry points shared by the adjoint
 * (adjoint.c) and exact backprop (backprop.c). */
#include "grad.h"

#include <math.h>

/* NODE_EINVAL naming the first NaN or Inf of the nt × dim array v, if any. */
static node_status check_rows(const double *v, size_t nt, size_t dim, const char *name,
                              const char *what, char *msg)
{
    for (size_t i = 0; i < nt; i++) {
        const double *row = v + i * dim;
        if (!node__nonfinite(row, dim))
            continue;
        size_t j = 0;
        while (isfinite(row[j]))
            j++;
        return node__msg(msg, NODE_EINVAL, "%s[%zu] = %g (row %zu, element %zu): %s", name,
                         i * dim + j, row[j], i, j, what);
    }
    return NODE_OK;
}

node_status node__grad_check(const node_system *sys, const double *ts, size_t nt,
                             const double *ys, const double *dLdys, const double *dLdy0,
                             const double *dLdp, char *msg)
{
    node_status st = node__check_state(sys, ys, "ys", msg);
    if (st != NODE_OK)
        return st;
    if (!sys->vjp)
        return node__msg(msg, NODE_EINVAL,
                         "sys->vjp is NULL but gradients were asked for");
    if (!dLdys)
        return node__msg(msg, NODE_EINVAL, "dLdys is NULL");
    if (!dLdy0)
        return node__msg(msg, NODE_EINVAL, "dLdy0 is NULL");
    if (dLdp && sys->nparams == 0)
        return node__msg(msg, NODE_EINVAL,
                         "dLdp was given but sys->nparams = 0: there is no parameter gradient "
                         "to write (pass dLdp = NULL, or set nparams)");
    if ((st = node__check_ts(ts, nt, msg)) != NODE_OK)
        return st;
    /* O(nt × dim), once: a NaN here would come out as a NaN gradient. */
    if ((st = check_rows(ys, nt, sys->dim, "ys",
                         "the forward solution must be finite (the rows a failed solve left "
                         "are not results)", msg)) != NODE_OK)
        return st;
    return check_rows(dLdys, nt, sys->dim, "dLdys", "the loss gradient must be finite", msg);
}

node_status node__grad_begin(const node_solver *s, const node_system *sys,
                             const double *ts, size_t nt, const double *ys,
                             const double *dLdys, const double *dLdy0, const double *dLdp,
                             const node_options *opt, node_options *o, node_stats *stats)
{
    char *msg = stats->message;
    if (!s)
        return node__msg(msg, NODE_EINVAL, "the solver object is NULL");
    node_status rc = node__grad_check(sys, ts, nt, ys, dLdys, dLdy0, dLdp, msg);
    if (rc)
        return rc;
    return node__options_resolve(opt, o, msg);
}

node_status node__grad_oneshot(node__grad_fn method, const node_system *sys,
                               const double *ts, size_t nt,
                               const double *ys, const double *dLdys,
                               double *dLdy0, double *dLdp, double *dLdts,
                               const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_status rc = node__grad_check(sys, ts, nt, ys, dLdys, dLdy0, dLdp, stats->message);
    if (rc)
        return node__stats_end(stats, rc);
    node_solver *s;
    if ((rc = node_solver_create(&s)))
        return node__stats_end(stats, rc);
    rc = method(s, sys, ts, nt, ys, dLdys, dLdy0, dLdp, dLdts, opt, stats);
    node_solver_free(s);
    return rc;
}

node_status node__grad_reserve(double **buf, size_t *cap, size_t need, size_t unit,
                               size_t limit)
{
    if (need <= *cap)
        return NODE_OK;
    size_t want = *cap < SIZE_MAX / 2 ? 2 * *cap : need;
    if (want < need)
        want = need;
    if (unit < SIZE_MAX / 64 && want < 64 * unit)
        want = 64 * unit;
    if (want > limit)
        want = limit;
    return node__grow(buf, cap, want);
}

/* ---- the adjoints' backward solve --------------------------------------------- */

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

/* NaN if any entry of err is NaN or Inf, whichever block it is in: fmax would drop a
   NaN block, and an excluded block is not looked at by the norm, yet a NaN there (in
   the FSAL stage, whose weight in ynew is 0) would be handed on to the next step as its
   k_0, where no smaller step can cure it.  Rejected now, a smaller step may avoid it. */
double node__grad_norm_fn(void *nctx, size_t dim, const double *err, const double *y,
                          const double *ynew, double rtol, double atol)
{
    const node__grad_norm *c = nctx;
    (void)dim;
    size_t z = c->nz, n = c->dim, o = z + n, q = c->np + c->nt;
    double rz = block_rms(err, y, ynew, z, rtol, atol);
    double ra = block_rms(err + z, y + z, ynew + z, n, rtol, atol);
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

node_status node__grad_time(const node_system *sys, size_t i, double t, const double *y,
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

node_status node__grad_backward_failed(node_stats *st, node_status rc, int cb_rc, double t_rc,
                                       const node_options *o, double from, double to)
{
    char *msg = st->message;
    double t = st->t_reached;
    switch (rc) {
    case NODE_ECALLBACK:
        if (!cb_rc)
            break;
        st->callback_rc = cb_rc;
        return node__msg(msg, rc, "sys->vjp returned %d at t = %g (backward pass)", cb_rc, t_rc);
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
