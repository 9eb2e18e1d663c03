/* libnode/event.h — events: integrate until a scalar event function g(t, y) crosses
 * zero, locate the crossing on the solver's dense output, and differentiate through
 * the event time by the implicit function theorem (Chen, Amos & Nickel, "Learning
 * neural event functions for ordinary differential equations", ICLR 2021; torchdiffeq's
 * odeint_event).  Include <libnode.h> rather than this file.
 *
 * Threads: as everywhere in libnode (core.h): the node_odeint_* calls are reentrant;
 * a node_solver is used by one thread at a time; the callbacks of sys and of the
 * event are called only from the calling thread.
 * Errors: every call returns a node_status, and its node_stats (may be NULL) says
 * which argument, callback or time and why, as for node_odeint (core.h); outputs are
 * unspecified after a failure and nothing leaks.
 */
#ifndef LIBNODE_EVENT_H
#define LIBNODE_EVENT_H

#include "core.h"
#include "seq.h"    /* node_grad_method */

#ifdef __cplusplus
extern "C" {
#endif

/* A scalar event function and its gradient.
   g(ctx, t, y, &value): writes g(t, y; φ).  Return 0, or non-zero to abort
   (→ NODE_ECALLBACK, the value in node_stats.callback_rc).
   g_vjp(ctx, t, y, &dg_dt, dg_dy, dg_dphi): the gradient of g at (t, y): ∂g/∂t,
   ∂g/∂y (dim) and ∂g/∂φ (nparams; NULL when not wanted), overwritten.  Only the
   gradient (node_odeint_event_grad) calls it; may be NULL otherwise.

   Which crossings are events.  After each accepted step the search evaluates g at
   the step's end and compares its sign with the last non-zero sign before it:
   - a change of sign within a step is an event, located on the step's dense output
     by Brent's method (bracketing: it never leaves the step, never misses a sign
     change between a step's ends; two crossings inside one step cancel and are not
     seen — bound the step with opt->max_step where that matters);
   - g that reaches exactly 0 at a step's end and then goes back to its former sign
     (touches zero without crossing) is no event; if it goes on to the other sign,
     the event is at that step end; if it is still 0 at t_end, the event is at the
     first step end where it became 0;
   - g(t0, y0) = 0 is no event: the first non-zero sign after t0 is the reference;
   - direction: +1 keeps only rising crossings (g goes from < 0 to > 0 as t
     increases), -1 only falling ones, 0 both — measured in increasing t whichever
     way the solve runs, so a solve backward in time finds the events of the same
     trajectory with the same directions.
   The event time is the end of Brent's final bracket on the far side of the
   crossing (where g already has its new sign, or is 0), within t_tol of the root, and
   the event state is the dense output there; so a solve restarted from the event
   state does not find the same crossing again. */
typedef struct node_event {
    size_t nparams;   /* length of φ, the event function's own parameters */
    void  *ctx;       /* passed back to g and g_vjp */
    int (*g)(void *ctx, double t, const double *y, double *value);
    int (*g_vjp)(void *ctx, double t, const double *y, double *dg_dt, double *dg_dy,
                 double *dg_dphi);
    int32_t direction;  /* 0 any, +1 rising, -1 falling (in increasing t) */
    int32_t terminal;   /* 0 or 1: node_odeint_events stops at the first event */
    double  t_tol;      /* precision of the event time (>= 0); 0 = 1e-3 · opt->rtol · |h|,
                           h the accepted step that holds the crossing (the dense output
                           is accurate to about rtol there) */
    uint64_t reserved_[8];   /* fields of later versions: leave zero */
} node_event;

/* Integrate sys from (t0, y0) towards t_end (t_end > t0, or < t0 backward in time)
   until the first event of ev (whatever ev->terminal says) and stop there.
   Found: *found = 1, *t_event the event time, y_event (dim) the state there.
   No event up to t_end: NODE_OK with *found = 0, *t_event = t_end and y_event = y(t_end)
   (a solve that reaches t_end is a success, not a failure).
   opt as for node_odeint (NULL = defaults); stats (may be NULL) as for node_odeint, with
   t_reached = where the integration stopped (t_event or t_end) and rows_done = 0.
   NODE_EINVAL for a bad argument (NULL sys, y0, ev, ev->g or outputs; non-finite y0,
   t0 or t_end; t_end == t0; direction not in {-1, 0, 1}; terminal not 0 or 1; t_tol
   negative or not finite; non-zero reserved fields; bad options); NODE_ECALLBACK when f
   or g returns non-zero; NODE_ENONFINITE when g returns NaN or Inf; the solve's other
   failures as for node_odeint.  On failure *found = 0 and the other outputs are
   unspecified. */
LIBNODE_API node_status node_odeint_event(const node_system *sys, const double *y0,
                                          double t0, double t_end, const node_event *ev,
                                          const node_options *opt, double *t_event,
                                          double *y_event, int32_t *found,
                                          node_stats *stats);

/* Every event from t0 to t_end (or to the first one if ev->terminal), in the order
   the solve meets them.  *nevents = how many were found; the first min(*nevents, cap)
   are written: times to t_events[i] and, if y_events is not NULL, states to row i of
   y_events (cap × dim).  t_events may be NULL only if cap = 0 (count only).
   *t_stop (may be NULL) = where the integration stopped (the terminal event, or t_end)
   and y_stop (dim, may be NULL) the state there.  Failures as node_odeint_event. */
LIBNODE_API node_status node_odeint_events(const node_system *sys, const double *y0,
                                           double t0, double t_end, const node_event *ev,
                                           const node_options *opt, size_t cap,
                                           double *t_events, double *y_events,
                                           size_t *nevents, double *t_stop, double *y_stop,
                                           node_stats *stats);

/* Gradients through an event found by node_odeint_event (t_event, y_event) of a loss
   L(t_event, y_event), by the implicit function theorem: with f_e = f(t_e, y_e) and
   dg/dt = ∂g/∂t + ∂g/∂y·f_e (the total derivative along the solution),
       μ   = −(dL/dt_e + dL/dy_e·f_e) / (dg/dt),
       a_y = dL/dy_e + μ ∂g/∂y,      dL/dφ = μ ∂g/∂φ,
   then the ODE's gradient from t_event back to t0 with the cotangent a_y at t_event
   (method: NODE_GRAD_ADJOINT → node_solver_adjoint, NODE_GRAD_BACKPROP →
   node_solver_backprop, both over ts = {t0, t_event}, ys = {y0, y_event}) gives dL/dy0,
   dL/dθ and dL/dt0.  Backprop re-runs the solve from t0 to t_event (its last step
   lands on t_event), which is not step for step the search's solve: both give the
   gradient of the event to within the solver's tolerance.
   dLdy_event (dim) may be NULL (zero); dLdp (sys->nparams), dLdphi (ev->nparams) and
   dLdt0 may be NULL (not computed).  sys->vjp and ev->g_vjp are required.
   NODE_EINVAL for bad arguments (as node_odeint_event, and: t_event == t0 or not
   finite, y_event or dLdy_event or dLdt_event not finite, dLdp given with
   sys->nparams = 0, dLdphi with ev->nparams = 0, an unknown method) and for a grazing
   event: |dg/dt| <= 1e-10 (|∂g/∂t| + Σ_i |∂g/∂y_i f_e,i|) — the event time does not
   depend smoothly on the inputs there; NODE_ECALLBACK when g_vjp (or f, vjp) returns
   non-zero; NODE_ENONFINITE when g_vjp gives NaN or Inf; the gradient's other failures
   as for node_odeint_adjoint / backprop (stats says which pass).  On failure the
   outputs are unspecified. */
LIBNODE_API node_status node_odeint_event_grad(const node_system *sys, const double *y0,
                                               double t0, const node_event *ev,
                                               double t_event, const double *y_event,
                                               double dLdt_event, const double *dLdy_event,
                                               node_grad_method method, double *dLdy0,
                                               double *dLdp, double *dLdphi, double *dLdt0,
                                               const node_options *opt, node_stats *stats);

/* The same three with the workspaces of a reusable solver object (core.h). */
LIBNODE_API node_status node_solver_odeint_event(node_solver *s, const node_system *sys,
                                                 const double *y0, double t0, double t_end,
                                                 const node_event *ev,
                                                 const node_options *opt, double *t_event,
                                                 double *y_event, int32_t *found,
                                                 node_stats *stats);
LIBNODE_API node_status node_solver_odeint_events(node_solver *s, const node_system *sys,
                                                  const double *y0, double t0, double t_end,
                                                  const node_event *ev,
                                                  const node_options *opt, size_t cap,
                                                  double *t_events, double *y_events,
                                                  size_t *nevents, double *t_stop,
                                                  double *y_stop, node_stats *stats);
LIBNODE_API node_status node_solver_event_grad(node_solver *s, const node_system *sys,
                                               const double *y0, double t0,
                                               const node_event *ev, double t_event,
                                               const double *y_event, double dLdt_event,
                                               const double *dLdy_event,
                                               node_grad_method method, double *dLdy0,
                                               double *dLdp, double *dLdphi, double *dLdt0,
                                               const node_options *opt, node_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_EVENT_H */
