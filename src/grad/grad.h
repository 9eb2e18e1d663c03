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

/* node__grow for a buffer appended to unit by unit: at least doubled (at least 64
   units), at most limit doubles (>= need). */
NODE__HIDDEN node_status node__grad_reserve(double **buf, size_t *cap, size_t need,
                                            size_t unit, size_t limit);

/* ---- what both adjoints (adjoint.c, adjoint_interp.c) share --------------------- */

/* The blocks of an augmented backward state [z (nz) | a (dim) | dL/dθ (np) | dL/dt
   (nt)]: nz = dim for the backsolve adjoint, 0 for the interpolating one. */
typedef struct node__grad_norm {
    size_t nz, dim, np, nt;
    int seminorm;
} node__grad_norm;

/* The backward error norm (a node__norm_fn, nctx a node__grad_norm): the largest of
   the per-block RMS norms; with the seminorm only z and a count.  NaN if any entry of
   err, in any block, is NaN or Inf. */
NODE__HIDDEN double node__grad_norm_fn(void *nctx, size_t dim, const double *err,
                                       const double *y, const double *ynew, double rtol,
                                       double atol);

/* *out = dL/dts[i] = w·f(t_i, y): the direct dependence of the loss on output time
   t_i (tmp: dim scratch).  A failure says where (the backward pass has reached t_i). */
NODE__HIDDEN node_status node__grad_time(const node_system *sys, size_t i, double t,
                                         const double *y, const double *w, double *tmp,
                                         node_stats *st, double *out);

/* Say where and why the backward solve from `from` to `to` failed with rc (the
   integrator has set st->t_reached to the end of its last accepted step); cb_rc and
   t_rc: what sys->vjp returned, and where, for NODE_ECALLBACK. */
NODE__HIDDEN node_status node__grad_backward_failed(node_stats *st, node_status rc, int cb_rc,
                                                    double t_rc, const node_options *o,
                                                    double from, double to);

#endif /* LIBNODE_GRAD_GRAD_H */
