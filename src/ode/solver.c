/* solver.c — the public solve entries: node_odeint (a workspace per call) and the
 * reusable node_solver object that keeps its workspaces across calls.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

void node__solver_init(node_solver *s)
{
    memset(s, 0, sizeof *s);
    s->kern = node__ode_kernels_for(node__isa_select());
}

node_status node_solver_create(node_solver **out)
{
    if (!out)
        return NODE_EINVAL;
    node_solver *s = node__malloc(sizeof *s);
    if (!s)
        return NODE_ENOMEM;
    node__solver_init(s);
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
    node__free(s->evt);
    node__free(s->ckpt);
    node__free(s->steps);
    node__free(s);
}

node_status node__stats_begin(node_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    stats->t_reached = NAN;
    return NODE_OK;
}

node_status node__stats_end(node_stats *stats, node_status st)
{
    stats->status = st;
    if (st == NODE_OK)
        stats->message[0] = '\0';
    else if (!stats->message[0])
        node__msg(stats->message, st, "%s", node_strerror(st));
    return st;
}

node_status node__check_state(const node_system *sys, const double *y0, const char *name,
                              char *msg)
{
    if (!sys)
        return node__msg(msg, NODE_EINVAL, "sys is NULL");
    if (!sys->f)
        return node__msg(msg, NODE_EINVAL, "sys->f is NULL");
    if (sys->dim == 0)
        return node__msg(msg, NODE_EINVAL, "sys->dim = 0: the state needs at least one element");
    if (sys->dim > NODE__MAX_DIM)
        return node__msg(msg, NODE_EINVAL,
                         "sys->dim = %zu: no array of that many doubles can exist", sys->dim);
    node_status st = node__check_system_reserved(sys, msg);
    if (st != NODE_OK)
        return st;
    if (!y0)
        return node__msg(msg, NODE_EINVAL, "%s is NULL", name);
    for (size_t i = 0; i < sys->dim; i++)
        if (!isfinite(y0[i]))
            return node__msg(msg, NODE_EINVAL, "%s[%zu] = %g: the initial state must be finite",
                             name, i, y0[i]);
    return NODE_OK;
}

node_status node__solve_check(const node_solver *s, const node_system *sys,
                              const double *y0, const double *ts, size_t nt,
                              const double *ys, const node_options *opt, node_options *o,
                              char *msg)
{
    node_status st;
    if (!s)
        return node__msg(msg, NODE_EINVAL, "the solver object is NULL");
    if ((st = node__check_state(sys, y0, "y0", msg)) != NODE_OK)
        return st;
    if (!ys)
        return node__msg(msg, NODE_EINVAL, "ys is NULL");
    if ((st = node__options_resolve(opt, o, msg)) != NODE_OK)
        return st;
    return node__check_ts(ts, nt, msg);
}

node_status node_solver_odeint(node_solver *s, const node_system *sys, const double *y0,
                               const double *ts, size_t nt, double *ys,
                               const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_options o;
    node_status st = node__solve_check(s, sys, y0, ts, nt, ys, opt, &o, stats->message);
    if (st == NODE_OK && o.record)   /* recorded for node_solver_backprop: the same solve */
        return node__backprop_record(s, sys, y0, ts, nt, ys, &o, stats);
    if (st == NODE_OK) {
        node__ode ode = { sys->dim, sys->f, sys->ctx, NULL, NULL };
        st = node__integrate(s, &ode, y0, ts, nt, ys, &o, stats, NULL);
    }
    return node__stats_end(stats, st);
}

node_status node_odeint(const node_system *sys, const double *y0, const double *ts,
                        size_t nt, double *ys, const node_options *opt, node_stats *stats)
{
    /* A temporary solver on the stack: its one workspace block is the only allocation. */
    node_solver s;
    node__solver_init(&s);
    node_options plain;
    if (opt && opt->record == 1) {   /* nothing could reuse a recording in s */
        plain = *opt;
        plain.record = 0;
        opt = &plain;
    }
    node_status st = node_solver_odeint(&s, sys, y0, ts, nt, ys, opt, stats);
    node__free(s.ode);
    return st;
}
