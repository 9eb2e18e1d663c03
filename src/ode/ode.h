/* ode/ode.h — declarations private to the ode/ module (never included outside
 * src/ode/): the default error norm, the automatic initial step (HNW I, II.4)
 * and the PI step-size controller (HNW I, II.4 and Hairer's DOPRI5 code).
 */
#ifndef LIBNODE_ODE_ODE_H
#define LIBNODE_ODE_ODE_H

#include "internal.h"

/* A linear combination Σ_q w_q p_q over the non-zero weights of a tableau row, with
   the stage vectors resolved: gathered once per solve, so that steps skip zero entries
   at no cost. */
typedef struct node__lincomb {
    int m;
    double w[NODE__MAXSTAGES];
    const double *p[NODE__MAXSTAGES];
} node__lincomb;

/* Gather the non-zero entries of w[0..n-1], with p_q = k[i] for w_i != 0. */
NODE__HIDDEN void node__lincomb_make(node__lincomb *lc, const double *w, int n,
                                     double *const *k);

/* out = y + h Σ_q w_q p_q (y NULL: out = h Σ ...), one pass over memory.  out may
   equal y or a p_q.  node__rk_stages and node__rk_combine run the same kernel, so
   results agree bit for bit with the planned versions. */
NODE__HIDDEN void node__lincomb_apply(const node__lincomb *lc, size_t dim, const double *y,
                                      double h, double *out);

/* node__rk_stages with the rows of A gathered in advance (rows[i] for stage i, made
   with the same k). */
NODE__HIDDEN int node__rk_stages_planned(const node__tableau *tab, const node__lincomb *rows,
                                         const node__ode *ode, double t, double h,
                                         const double *y, double *const *k, int from, int to,
                                         double *tmp, long *nfe);

/* The contract's RMS norm: sqrt(mean((err_i / (atol + rtol max(|y_i|, |ynew_i|)))^2)). */
NODE__HIDDEN double node__norm_rms(void *nctx, size_t dim, const double *err,
                                   const double *y, const double *ynew,
                                   double rtol, double atol);

/* Step-size controller state and constants for one solve. */
typedef struct node__control {
    double alpha, beta;     /* PI exponents: h_new = h * safety * err^-alpha * errold^beta */
    double safety;          /* 0.9 */
    double facmin, facmax;  /* bounds on h_new / h */
    double log_errold;      /* log of the previous accepted error (>= 1e-4) */
    bool   rejected;        /* the previous attempt was rejected: no growth now */
} node__control;

/* Constants for tab (its error-estimator order sets alpha); resets the state. */
NODE__HIDDEN void node__control_init(node__control *c, const node__tableau *tab);

/* The exponent order q of the local error estimate (err ~ h^q): err_order + 1,
   or 8 for DOP853's combined 5th/3rd-order estimate. */
NODE__HIDDEN int node__control_order(const node__tableau *tab);

/* The next step after an accepted step of size h with scaled error err <= 1. */
NODE__HIDDEN double node__control_accept(node__control *c, double h, double err);

/* The retry step after a rejected step of size h with scaled error err > 1. */
NODE__HIDDEN double node__control_reject(node__control *c, double h, double err);

/* Automatic initial step of HNW I, II.4 (Hairer's HINIT): |h| chosen so that the
   first step's error estimate is about the tolerance.  f0 = f(t0, y0) is given;
   uses f1 and y1 (dim each) as scratch and one evaluation of f (added to *nfe).
   hmax > 0 caps the result.  Returns |h| > 0 (direction not applied), or 0 with
   *cb set to the callback's non-zero value. */
NODE__HIDDEN double node__initial_step(const node__tableau *tab, const node__ode *ode,
                                       double t0, const double *y0, const double *f0,
                                       double dir, double hmax, double rtol, double atol,
                                       double *y1, double *f1, long *nfe, int *cb);

#endif /* LIBNODE_ODE_ODE_H */
