/* common.c — argument checks and one-shot entry points shared by the adjoint
 * (adjoint.c) and exact backprop (backprop.c). */
#include "grad.h"

node_status node__grad_check(const node_system *sys, const double *ts, size_t nt,
                             const double *ys, const double *dLdys, const double *dLdy0)
{
    if (!sys || !sys->vjp || !sys->f || sys->dim == 0 || !ts || nt == 0 || !ys ||
        !dLdys || !dLdy0)
        return NODE_EINVAL;
    return node__check_ts(ts, nt);
}

node_status node__grad_begin(const node_solver *s, const node_system *sys,
                             const double *ts, size_t nt, const double *ys,
                             const double *dLdys, const double *dLdy0,
                             const node_options *opt, node_options *o, node_stats *stats)
{
    if (stats)
        *stats = (node_stats){0, 0, 0, 0};
    if (!s)
        return NODE_EINVAL;
    node_status rc = node__grad_check(sys, ts, nt, ys, dLdys, dLdy0);
    if (rc)
        return rc;
    return node__options_resolve(opt, o);
}

node_status node__grad_oneshot(node__grad_fn method, const node_system *sys,
                               const double *ts, size_t nt,
                               const double *ys, const double *dLdys,
                               double *dLdy0, double *dLdp, double *dLdts,
                               const node_options *opt, node_stats *stats)
{
    if (stats)
        *stats = (node_stats){0, 0, 0, 0};
    node_status rc = node__grad_check(sys, ts, nt, ys, dLdys, dLdy0);
    if (rc)
        return rc;
    node_solver *s;
    if ((rc = node_solver_create(&s)))
        return rc;
    rc = method(s, sys, ts, nt, ys, dLdys, dLdy0, dLdp, dLdts, opt, stats);
    node_solver_free(s);
    return rc;
}
