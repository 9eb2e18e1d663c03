/* grad.h — what the two gradient methods (adjoint.c, backprop.c) share: argument
 * checks and the one-shot entry points over a temporary solver object. */
#ifndef LIBNODE_GRAD_GRAD_H
#define LIBNODE_GRAD_GRAD_H

#include "internal.h"

/* The arguments both methods require: sys with f and vjp, 0 < dim <= NODE__MAX_DIM,
   ts valid, ys and dLdys present and finite (every row), dLdy0 present, no dLdp
   without parameters.  NODE_EINVAL otherwise, the reason (which argument, which
   entry) in msg (may be NULL). */
NODE__HIDDEN node_status node__grad_check(const node_system *sys, const double *ts, size_t nt,
                                          const double *ys, const double *dLdys,
                                          const double *dLdy0, const double *dLdp,
                                          char *msg);

/* The prologue of both methods, after node__stats_begin(stats) (stats non-NULL):
   require a solver object, node__grad_check the arguments, and resolve opt into *o.
   The caller finishes with node__stats_end. */
NODE__HIDDEN node_status node__grad_begin(const node_solver *s, const node_system *sys,
                                          const double *ts, size_t nt, const double *ys,
                                          const double *dLdys, const double *dLdy0,
                                          const double *dLdp, const node_options *opt,
                                          node_options *o, node_stats *stats);

typedef node_status (*node__grad_fn)(node_solver *s, const node_system *sys,
                                     const double *ts, size_t nt,
                                     const double *ys, const double *dLdys,
                                     double *dLdy0, double *dLdp, double *dLdts,
                                     const node_options *opt, node_stats *stats);

/* Run method on a temporary solver object (node_odeint_adjoint/_backprop). */
NODE__HIDDEN node_status node__grad_oneshot(node__grad_fn method, const node_system *sys,
                                            const double *ts, size_t nt,
                                            const double *ys, const double *dLdys,
                                            double *dLdy0, double *dLdp, double *dLdts,
                                            const node_options *opt, node_stats *stats);

#endif /* LIBNODE_GRAD_GRAD_H */
