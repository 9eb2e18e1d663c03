/* solver.c — the public solve entries: node_odeint (a workspace per call) and the
 * reusable node_solver object that keeps its workspaces across calls.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

node_status node_solver_create(node_solver **out)
{
    if (!out)
        return NODE_EINVAL;
    node_solver *s = node__calloc(1, sizeof *s);
    if (!s)
        return NODE_ENOMEM;
    *out = s;
    return NODE_OK;
}

void node_solver_free(node_solver *s)
{
    if (!s)
        return;
    node__free(s->ode);
    node__free(s->aug);
    node__free(s->tape);
    node__free(s->work);
    node__free(s);
}

node_status node_solver_odeint(node_solver *s, const node_system *sys, const double *y0,
                               const double *ts, size_t nt, double *ys,
                               const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!s || !sys || !sys->f || sys->dim == 0 || !y0 || !ys)
        return NODE_EINVAL;
    node_options o;
    node_status st = node__options_resolve(opt, &o);
    if (st != NODE_OK)
        return st;
    if ((st = node__check_ts(ts, nt)) != NODE_OK)
        return st;
    if (node__nonfinite(y0, sys->dim))
        return NODE_EINVAL;
    node__ode ode = { sys->dim, sys->f, sys->ctx, NULL, NULL };
    return node__integrate(s, &ode, y0, ts, nt, ys, &o, stats, NULL);
}

node_status node_odeint(const node_system *sys, const double *y0, const double *ts,
                        size_t nt, double *ys, const node_options *opt, node_stats *stats)
{
    /* A temporary solver on the stack: its one workspace block is the only allocation. */
    node_solver s;
    memset(&s, 0, sizeof s);
    node_status st = node_solver_odeint(&s, sys, y0, ts, nt, ys, opt, stats);
    node__free(s.ode);
    return st;
}
