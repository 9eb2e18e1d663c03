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
