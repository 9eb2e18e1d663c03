/* ode/ode.h — declarations private to the ode/ module (never included outside
 * src/ode/): the default error norm, the automatic initial step (HNW I, II.4)
 * and the PI step-size controller (HNW I, II.4 and Hairer's DOPRI5 code).
 */
#ifndef LIBNODE_ODE_ODE_H
#define LIBNODE_ODE_ODE_H

#include "internal.h"

/* out = y + h Σ_{q<m} w_q p_q (combz: out = h Σ ...) over the m terms of lc; a kernel
   specialised for one m does not read lc->m. */
typedef struct node__lincomb node__lincomb;
typedef void (*node__comb_fn)(const node__lincomb *lc, size_t dim, const double *y, double h,
                              double *out);

/* A linear combination Σ_q w_q p_q over the non-zero weights of a tableau row, with
   the stage vectors resolved and the kernel for its number of terms chosen: gathered
   once per solve, so that steps skip zero entries at no cost. */
struct node__lincomb {
    int m;
    node__comb_fn fn, fnz;   /* kernels for m terms: with y, without */
    double w[NODE__MAXSTAGES];
    const double *p[NODE__MAXSTAGES];
};

/* Gather the non-zero entries of w[0..n-1], with p_q = k[i] for w_i != 0, and pick
   the kernel for their number from kern (its specialised one, else the generic one). */
NODE__HIDDEN void node__lincomb_make(node__lincomb *lc, const node__ode_kernels *kern,
                                     const double *w, int n, double *const *k);

/* out = y + h Σ_q w_q p_q (y NULL: out = h Σ ...), one pass over memory, the sum formed
   left to right and added to y once.  out may equal y or a p_q.  node__rk_stages and
   node__rk_combine run the same kernels, so results agree bit for bit with the planned
   versions. */
static inline void node__lincomb_apply(const node__lincomb *lc, size_t dim,
                                       const double *y, double h, double *out)
{
    (y ? lc->fn : lc->fnz)(lc, dim, y, h, out);
}

/* The default RMS norm fused with the error estimate, one pass over memory: for the
   error weights e (and e3) and, where ynew is not known yet, the weights b, all over
   the same stages p_q.  Adds Σ_d r_d² to acc[0] (r_d = h Σ e_q p_q[d] / sk_d,
   sk_d = atol + rtol max(|y_d|, |ynew_d|)), and for e3 likewise to acc[1]; acc[0] turns
   NaN if ynew holds a NaN or Inf.  The sums and the order of the additions are those of
   node__lincomb_apply followed by node__norm_rms, so the result agrees bit for bit. */
typedef struct node__errpass node__errpass;
typedef void (*node__err_fn)(const node__errpass *ep, size_t dim, const double *y,
                             double *ynew, double h, double rtol, double atol,
                             double *acc);
struct node__errpass {
    node__err_fn fn;        /* NULL: the shape has no fused kernel */
    bool bee;               /* the shape: b, e and e3 (ynew computed), else e alone */
    int m;
    double wb[NODE__MAXSTAGES], we[NODE__MAXSTAGES], we3[NODE__MAXSTAGES];
    const double *p[NODE__MAXSTAGES];
};

/* Stages k_0 .. k_{n-1} that the error estimate of an adaptive tab needs: s, or s - 1
   where the FSAL stage has zero error weights (DOP853: it is evaluated only once the
   step is accepted, as in dop853.f). */
NODE__HIDDEN int node__err_stages(const node__tableau *tab);

/* Plan the fused error pass of an adaptive tab's step over its stages k, for dim.  Where
   the FSAL stage enters the estimate, ynew is its argument and is given; otherwise the
   pass computes it from b.  Shapes with a kernel: e alone (ynew given), and b, e, e3 on
   one set of non-zero stages (ynew computed); the kernel is chosen for dim (element by
   element when small) and for the number of terms.  Otherwise ep->fn is NULL and the
   caller combines and norms apart. */
NODE__HIDDEN void node__errpass_make(node__errpass *ep, const node__ode_kernels *kern,
                                     size_t dim, const node__tableau *tab, double *const *k);

/* Up to this dim the error passes run element by element, with no buffer. */
#define NODE__SMALLDIM 8

/* The kernels of one instruction-set level (kernels.c, compiled once per level).  The
   arrays by number of terms hold the specialised kernels, NULL for a count without one;
   the _any kernels take any count. */
struct node__ode_kernels {
    node__comb_fn comb[NODE__MAXSTAGES + 1];        /* out = y + h Σ */
    node__comb_fn combz[NODE__MAXSTAGES + 1];       /* out = h Σ */
    node__comb_fn comb_any, combz_any;
    node__err_fn erre[2][NODE__MAXSTAGES + 1];      /* [dim <= NODE__SMALLDIM][terms] */
    node__err_fn errbee[2][NODE__MAXSTAGES + 1];
    node__err_fn erre_any[2], errbee_any[2];        /* [dim <= NODE__SMALLDIM] */
};
extern NODE__HIDDEN const node__ode_kernels node__ode_kernels_generic;
extern NODE__HIDDEN const node__ode_kernels node__ode_kernels_avx2;
extern NODE__HIDDEN const node__ode_kernels node__ode_kernels_avx512;

/* Does any of v[0..n-1] hold a NaN or an Inf?  v - v is 0 for finite v and NaN for
   NaN or ±Inf; summing keeps the loop branch-free, and eight partial sums let it
   run as vector adds without a chain of dependent ones. */
static inline bool node__nonfinite_inl(const double *v, size_t n)
{
    double a = 0;
    size_t i = 0;
    if (n >= 32) {
        double acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += v[i + j] - v[i + j];
        for (int j = 0; j < 8; j++)
            a += acc[j];
    }
    for (; i < n; i++)
        a += v[i] - v[i];
    return a != a;
}

/* t as the shortest of %.15g and %.17g that reads back as t (for messages). */
NODE__HIDDEN const char *node__tstr(char buf[32], double t);

/* DOP853's error from its 5th- and 3rd-order estimates (dop853.f): err = e5² /
   sqrt(e5² + 0.01 e3²); |h| e5 · e5/sqrt(...) behaves like h^8.  NaN if either is NaN;
   an overflow anywhere in it counts as an infinite error (Inf/Inf would be NaN, and
   e5²/Inf a false 0). */
static inline double node__err_combine(double e5, double e3)
{
    if (e5 != e5 || e3 != e3)
        return NAN;
    double den = e5 * e5 + 0.01 * e3 * e3;
    if (den == INFINITY)
        return INFINITY;
    return den > 0 ? e5 * e5 / sqrt(den) : 0;
}

/* node__rk_stages with the rows of A gathered in advance (rows[i] for stage i, made
   with the same k).  When f fails at stage i, *nfe has grown by i - from + 1. */
NODE__HIDDEN int node__rk_stages_planned(const node__tableau *tab, const node__lincomb *rows,
                                         const node__ode *ode, double t, double h,
                                         const double *y, double *const *k, int from, int to,
                                         double *tmp, int64_t *nfe);

/* The contract's RMS norm: sqrt(mean((err_i / (atol + rtol max(|y_i|, |ynew_i|)))^2)). */
NODE__HIDDEN double node__norm_rms(void *nctx, size_t dim, const double *err,
                                   const double *y, const double *ynew,
                                   double rtol, double atol);

/* Step-size controller state and constants for one solve. */
typedef struct node__control {
    double alpha, beta;     /* PI exponents: h_new = h * safety * err^-alpha * errold^beta */
    double safety;
    double facmin, facmax;  /* bounds on h_new / h */
    double log_errold;      /* log of the previous accepted error (>= 1e-4) */
    bool   rejected;        /* the previous attempt was rejected: no growth now */
} node__control;

/* The constants of tab's registry entry (alpha from its q and beta); resets the state. */
NODE__HIDDEN void node__control_init(node__control *c, const node__tableau *tab);

/* The next step after an accepted step of size h with scaled error err <= 1. */
NODE__HIDDEN double node__control_accept(node__control *c, double h, double err);

/* The retry step after a rejected step of size h with scaled error err > 1. */
NODE__HIDDEN double node__control_reject(node__control *c, double h, double err);

/* Automatic initial step of HNW I, II.4 (Hairer's HINIT): |h| chosen so that the
   first step's error estimate is about the tolerance.  f0 = f(t0, y0) is given;
   uses f1 and y1 (dim each) as scratch and one evaluation of f (added to *nfe).
   hmax > 0 caps the result.  Returns |h| > 0 (direction not applied), or 0 with
   *cb set to the callback's non-zero value and *tcb to the time it was called at. */
/* node__initial_step in two halves, for callers that evaluate f themselves (the
   ensemble, many samples at once): the first guess h0 (capped by hmax) and d1, then,
   with f1 = f(t0 + dir h0, y0 + dir h0 f0) (overwritten as scratch), the step. */
NODE__HIDDEN double node__initial_guess(const node__tableau *tab, node__norm_fn norm,
                                        void *nctx, size_t n, const double *y0,
                                        const double *f0, double hmax, double rtol,
                                        double atol, double *d1);
NODE__HIDDEN double node__initial_finish(const node__tableau *tab, node__norm_fn norm,
                                         void *nctx, size_t n, const double *y0,
                                         const double *f0, double *f1, double h0, double d1,
                                         double hmax, double rtol, double atol);

NODE__HIDDEN double node__initial_step(const node__tableau *tab, const node__ode *ode,
                                       double t0, const double *y0, const double *f0,
                                       double dir, double hmax, double rtol, double atol,
                                       double *y1, double *f1, int64_t *nfe, int *cb,
                                       double *tcb);

#endif /* LIBNODE_ODE_ODE_H */
