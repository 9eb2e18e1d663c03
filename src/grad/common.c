/* common.c — argument checks and one-shot entry points shared by the adjoint
 * (adjoint.c) and exact backprop (backprop.c). */
#include "grad.h"

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
    return node__check_ts(ts, nt, msg);
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
