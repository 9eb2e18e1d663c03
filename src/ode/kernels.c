/* kernels.c — the solver's vector kernels, compiled once per instruction-set level
 * (internal.h): combinations out = y + h Σ_q w_q p_q over the stage vectors (HNW I,
 * Section II.1, eq. (1.8)) and the error estimate fused with the default RMS norm.
 * Everything here is reached through the table node__ode_kernels_<level>.
 *
 * Each kernel is written once, as an always-inlined function of the number of terms m;
 * one-line wrappers instantiate it with a constant m (the term loop then unrolls and the
 * element loop vectorizes) for the counts the shipped tableaus reach, and with m as a
 * variable for any other count (custom tableaus, dense weights that vanish at some θ).
 * tests/test_ode_kernels.c derives the reached counts from the method registry and
 * checks that each has its specialised kernel here.
 */
#include "ode.h"

#include <math.h>
#include <string.h>

#if defined(__GNUC__)
#  define NODE__ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#  define NODE__ALWAYS_INLINE static inline
#endif

/* The stage vectors, y and out are distinct arrays or the very same one (element-wise
   aliasing, where each lane is read before it is written): tell GCC not to version the
   loops for partial overlap, which costs more than the loop itself at small dim. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 5
#  define NODE__IVDEP _Pragma("GCC ivdep")
#else
#  define NODE__IVDEP
#endif

/* ---- combinations --------------------------------------------------------------------
   out[d] = y[d] + h (w_0 p_0[d] + w_1 p_1[d] + ... + w_{m-1} p_{m-1}[d]) for m >= 1, the
   sum formed left to right first and added to y once, as in Hairer's codes; without y
   (with_y false): out[d] = h Σ.  Each out[d] is written after every input at index d was
   read, so out may be y or a p_q.  lc is restrict: out never lies in the plan itself, so
   its weights and pointers are loaded once, not after every store. */
NODE__ALWAYS_INLINE void comb_terms(int m, bool with_y, const node__lincomb *restrict lc,
                                    size_t dim, const double *y, double h, double *out)
{
    const double *const *p = lc->p;
    const double *w = lc->w;
    NODE__IVDEP for (size_t d = 0; d < dim; d++) {
        double acc = w[0] * p[0][d];
        for (int q = 1; q < m; q++)
            acc = acc + w[q] * p[q][d];
        out[d] = with_y ? y[d] + h * acc : h * acc;
    }
}

/* No terms: out = y, or 0. */
static void comb0(const node__lincomb *lc, size_t dim, const double *y, double h, double *out)
{
    (void)lc; (void)h;
    if (out != y)
        memmove(out, y, dim * sizeof *out);
}

/* Any number of terms. */
static void comb_any(const node__lincomb *lc, size_t dim, const double *y, double h,
                     double *out)
{
    if (lc->m == 0)
        comb0(lc, dim, y, h, out);
    else
        comb_terms(lc->m, true, lc, dim, y, h, out);
}

static void combz_any(const node__lincomb *lc, size_t dim, const double *y, double h,
                      double *out)
{
    if (lc->m == 0)
        memset(out, 0, dim * sizeof *out);
    else
        comb_terms(lc->m, false, lc, dim, y, h, out);
}

/* The counts the shipped tableaus reach: rows of A 1-9, b 1-8, dense weights 2-6 and 12
   (with y), and no terms (a row 0 combined by node__rk_combine); e and e3 4, 6 and 8
   (without y, where a custom norm measures them). */
#define COMB_ARGS const node__lincomb *lc, size_t n, const double *y, double h, double *o
static void comb1(COMB_ARGS) { comb_terms(1, true, lc, n, y, h, o); }
static void comb2(COMB_ARGS) { comb_terms(2, true, lc, n, y, h, o); }
static void comb3(COMB_ARGS) { comb_terms(3, true, lc, n, y, h, o); }
static void comb4(COMB_ARGS) { comb_terms(4, true, lc, n, y, h, o); }
static void comb5(COMB_ARGS) { comb_terms(5, true, lc, n, y, h, o); }
static void comb6(COMB_ARGS) { comb_terms(6, true, lc, n, y, h, o); }
static void comb7(COMB_ARGS) { comb_terms(7, true, lc, n, y, h, o); }
static void comb8(COMB_ARGS) { comb_terms(8, true, lc, n, y, h, o); }
static void comb9(COMB_ARGS) { comb_terms(9, true, lc, n, y, h, o); }
static void comb12(COMB_ARGS) { comb_terms(12, true, lc, n, y, h, o); }
static void combz4(COMB_ARGS) { comb_terms(4, false, lc, n, y, h, o); }
static void combz6(COMB_ARGS) { comb_terms(6, false, lc, n, y, h, o); }
static void combz8(COMB_ARGS) { comb_terms(8, false, lc, n, y, h, o); }
#undef COMB_ARGS

/* ---- the error estimate fused with the default norm ----------------------------------
   Two shapes over the same m stages p_q:
     e alone (bee false): ynew is given; r_d = h Σ e_q p_q[d] / sk_d;
     b, e, e3 (bee true): ynew_d = y_d + h Σ b_q p_q[d] is computed and stored, and
       r3_d = h Σ e3_q p_q[d] / sk_d is summed as well;
   sk_d = atol + rtol max(|y_d|, |ynew_d|).  r + (ynew - ynew) is r for a finite ynew and
   NaN otherwise (its square is r²'s, whatever the sign of a zero).  The squares are
   added in element order by the very expression of node__norm_rms (acc += r * r), so
   that no compiler contracts one and not the other: the result is the unfused path's,
   bit for bit. */

/* The scaled error(s) of element d (the weights wb and we3 are read only for bee). */
NODE__ALWAYS_INLINE double err_elem(int m, bool bee, const double *wb, const double *we,
                                    const double *we3, const double *const *p, size_t d,
                                    const double *y, double *ynew, double h, double rtol,
                                    double atol, double *r3)
{
    double v = p[0][d];
    double sb = bee ? wb[0] * v : 0, se = we[0] * v, s3 = bee ? we3[0] * v : 0;
    for (int q = 1; q < m; q++) {
        v = p[q][d];
        se = se + we[q] * v;
        if (bee) {
            sb = sb + wb[q] * v;
            s3 = s3 + we3[q] * v;
        }
    }
    double yn = bee ? y[d] + h * sb : ynew[d];
    if (bee)
        ynew[d] = yn;
    double a = fabs(y[d]), b = fabs(yn);
    double sk = atol + rtol * (a > b ? a : b);   /* as node__norm_rms forms it */
    if (bee)
        *r3 = h * s3 / sk;
    return h * se / sk + (yn - yn);
}

/* Blocks of NODE__ERRBLK elements: the per-element work vectorizes into a small buffer,
   then the squares are added in element order.  Up to NODE__SMALLDIM elements (blocked
   false) element by element, with no buffer. */
#define NODE__ERRBLK 64

NODE__ALWAYS_INLINE void err_terms(int m, bool bee, bool blocked,
                                   const node__errpass *restrict ep, size_t dim,
                                   const double *y, double *ynew, double h, double rtol,
                                   double atol, double *acc)
{
    /* ep is restrict: ynew never lies in the plan itself, so its weights and pointers
       are loaded once, not after every store to ynew */
    const double *wb = ep->wb, *we = ep->we, *we3 = ep->we3;
    const double *const *p = ep->p;
    double a0 = acc[0], a1 = bee ? acc[1] : 0, r3 = 0;
    if (!blocked) {
        for (size_t d = 0; d < dim; d++) {
            double r = err_elem(m, bee, wb, we, we3, p, d, y, ynew, h, rtol, atol, &r3);
            a0 += r * r;
            if (bee)
                a1 += r3 * r3;
        }
    } else {
        for (size_t d0 = 0; d0 < dim; d0 += NODE__ERRBLK) {
            size_t nb = dim - d0 < NODE__ERRBLK ? dim - d0 : NODE__ERRBLK;
            double rb[NODE__ERRBLK], r3b[NODE__ERRBLK];
            NODE__IVDEP for (size_t j = 0; j < nb; j++) {
                rb[j] = err_elem(m, bee, wb, we, we3, p, d0 + j, y, ynew, h, rtol, atol, &r3);
                r3b[j] = r3;
            }
            for (size_t j = 0; j < nb; j++) {
                a0 += rb[j] * rb[j];
                if (bee)
                    a1 += r3b[j] * r3b[j];
            }
        }
    }
    acc[0] = a0;
    if (bee)
        acc[1] = a1;
}

#define ERR_ARGS const node__errpass *ep, size_t n, const double *y, double *yn, double h, \
                 double rt, double at, double *acc
/* Any number of terms (m = ep->m >= 1). */
static void erre_any(ERR_ARGS) { err_terms(ep->m, false, false, ep, n, y, yn, h, rt, at, acc); }
static void erreb_any(ERR_ARGS) { err_terms(ep->m, false, true, ep, n, y, yn, h, rt, at, acc); }
static void errbee_any(ERR_ARGS) { err_terms(ep->m, true, false, ep, n, y, yn, h, rt, at, acc); }
static void errbeeb_any(ERR_ARGS) { err_terms(ep->m, true, true, ep, n, y, yn, h, rt, at, acc); }
/* The counts the shipped tableaus reach: e alone over 4 (BS3) and 6 (DOPRI5) stages;
   b, e, e3 over 8 (DOP853). */
static void erre4(ERR_ARGS) { err_terms(4, false, false, ep, n, y, yn, h, rt, at, acc); }
static void erreb4(ERR_ARGS) { err_terms(4, false, true, ep, n, y, yn, h, rt, at, acc); }
static void erre6(ERR_ARGS) { err_terms(6, false, false, ep, n, y, yn, h, rt, at, acc); }
static void erreb6(ERR_ARGS) { err_terms(6, false, true, ep, n, y, yn, h, rt, at, acc); }
static void errbee8(ERR_ARGS) { err_terms(8, true, false, ep, n, y, yn, h, rt, at, acc); }
static void errbeeb8(ERR_ARGS) { err_terms(8, true, true, ep, n, y, yn, h, rt, at, acc); }
#undef ERR_ARGS

const node__ode_kernels NODE__KERNEL(node__ode_kernels) = {
    .comb = { [0] = comb0, [1] = comb1, [2] = comb2, [3] = comb3, [4] = comb4, [5] = comb5,
              [6] = comb6, [7] = comb7, [8] = comb8, [9] = comb9, [12] = comb12 },
    .combz = { [4] = combz4, [6] = combz6, [8] = combz8 },
    .comb_any = comb_any,
    .combz_any = combz_any,
    /* [dim <= NODE__SMALLDIM][terms] */
    .erre = { { [4] = erreb4, [6] = erreb6 }, { [4] = erre4, [6] = erre6 } },
    .errbee = { { [8] = errbeeb8 }, { [8] = errbee8 } },
    .erre_any = { erreb_any, erre_any },
    .errbee_any = { errbeeb_any, errbee_any },
};
