/* kernels.c — the solver's vector kernels, compiled once per instruction-set level
 * (internal.h): combinations out = y + h Σ_q w_q p_q over the stage vectors (HNW I,
 * Section II.1, eq. (1.8)) and the error estimate fused with the default RMS norm.
 * Everything here is reached through the table node__ode_kernels_<level>.
 */
#include "ode.h"

#include <math.h>
#include <string.h>

/* The stage vectors, y and out are distinct arrays or the very same one (element-wise
   aliasing, where each lane is read before it is written): tell GCC not to version the
   loops for partial overlap, which costs more than the loop itself at small dim. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 5
#  define NODE__IVDEP _Pragma("GCC ivdep")
#else
#  define NODE__IVDEP
#endif

/* ---- combination kernels, one per number of terms ------------------------------------
   out[d] = y[d] + h (w_0 p_0[d] + w_1 p_1[d] + ... + w_{M-1} p_{M-1}[d]), the sum formed
   left to right first and added to y once, as in Hairer's codes; combz: out = h Σ.
   Each out[d] is written after every input at index d was read, so out may be y or a
   p_q.  The weights and pointers are copied to locals (out could alias them as far as
   the compiler knows); the term loop has a constant count and unrolls. */
static void comb0(size_t dim, const double *y, double h, const double *w,
                  const double *const *p, double *out)
{
    (void)h; (void)w; (void)p;
    if (out != y)
        memmove(out, y, dim * sizeof *out);
}

static void combz0(size_t dim, const double *y, double h, const double *w,
                   const double *const *p, double *out)
{
    (void)y; (void)h; (void)w; (void)p;
    memset(out, 0, dim * sizeof *out);
}

/* out = Y + h Σ_q w_q p_q over M terms, the sum formed left to right; NAME adds y
   (Y = y[d]) and NAMEz leaves it out (Y = 0, y unused). */
#define NODE__COMB_ONE(NAME, M, Y)                                                      \
    static void NAME(size_t dim, const double *y, double h, const double *w,            \
                     const double *const *p, double *out)                               \
    {                                                                                   \
        double wl[M];                                                                   \
        const double *pl[M];                                                            \
        (void)y;                                                                        \
        for (int q = 0; q < M; q++) {                                                   \
            wl[q] = w[q];                                                               \
            pl[q] = p[q];                                                               \
        }                                                                               \
        NODE__IVDEP for (size_t d = 0; d < dim; d++) {                                  \
            double acc = wl[0] * pl[0][d];                                              \
            for (int q = 1; q < M; q++)                                                 \
                acc = acc + wl[q] * pl[q][d];                                           \
            out[d] = Y h * acc;                                                         \
        }                                                                               \
    }
#define NODE__COMB(M) NODE__COMB_ONE(comb##M, M, y[d] +) NODE__COMB_ONE(combz##M, M, )

NODE__COMB(1)  NODE__COMB(2)  NODE__COMB(3)  NODE__COMB(4)
NODE__COMB(5)  NODE__COMB(6)  NODE__COMB(7)  NODE__COMB(8)
NODE__COMB(9)  NODE__COMB(10) NODE__COMB(11) NODE__COMB(12)
NODE__COMB(13) NODE__COMB(14) NODE__COMB(15) NODE__COMB(16)
#undef NODE__COMB
#undef NODE__COMB_ONE

#define COMB_OF {                                                                       \
    comb0, comb1, comb2, comb3, comb4, comb5, comb6, comb7, comb8,                       \
    comb9, comb10, comb11, comb12, comb13, comb14, comb15, comb16 }
#define COMBZ_OF {                                                                      \
    combz0, combz1, combz2, combz3, combz4, combz5, combz6, combz7, combz8,              \
    combz9, combz10, combz11, combz12, combz13, combz14, combz15, combz16 }

/* ---- the error estimate fused with the default norm -----------------------------------
   Blocks of NODE__ERRBLK elements: the per-element work (sums, scale, quotient)
   vectorizes into a small buffer; the squares are then added in element order, by the
   very expression of node__norm_rms (acc += r * r), so that no compiler contracts one
   and not the other.  r + (ynew - ynew) is r for a finite ynew and NaN otherwise (its
   square is r²'s, whatever the sign of a zero). */
#define NODE__ERRBLK 64


/* One element d: the scaled error r (+ (ynew - ynew)) goes to SINK(r). */
#define NODE__ERR_E_ELEM(M, d, SINK)                                                    \
    double se = we[0] * pl[0][d];                                                       \
    for (int q = 1; q < M; q++)                                                         \
        se = se + we[q] * pl[q][d];                                                     \
    double yn = ynew[d], a = fabs(y[d]), b = fabs(yn);                                  \
    double r = h * se / (atol + rtol * (a > b ? a : b)) + (yn - yn);                    \
    SINK(r)

#define NODE__ERR_BEE3_ELEM(M, d, SINK2, SINK3)                                         \
    double v = pl[0][d];                                                                \
    double sb = wb[0] * v, se = we[0] * v, s3 = we3[0] * v;                             \
    for (int q = 1; q < M; q++) {                                                       \
        v = pl[q][d];                                                                   \
        sb = sb + wb[q] * v;                                                            \
        se = se + we[q] * v;                                                            \
        s3 = s3 + we3[q] * v;                                                           \
    }                                                                                   \
    double yn = y[d] + h * sb;                                                          \
    ynew[d] = yn;                                                                       \
    double a = fabs(y[d]), b = fabs(yn);                                                \
    double sk = atol + rtol * (a > b ? a : b);                                          \
    double r = h * se / sk + (yn - yn), r3e = h * s3 / sk;                              \
    SINK2(r)                                                                            \
    SINK3(r3e)

/* The weights and stage pointers as locals (ynew could alias *ep as far as the
   compiler knows). */
#define NODE__ERR_LOCALS(M)                                                             \
    double wb[M], we[M], we3[M];                                                        \
    const double *pl[M];                                                                \
    for (int q = 0; q < M; q++) {                                                       \
        wb[q] = ep->wb[q];                                                              \
        we[q] = ep->we[q];                                                              \
        we3[q] = ep->we3[q];                                                            \
        pl[q] = ep->p[q];                                                               \
    }                                                                                   \
    (void)wb; (void)we3;

#define NODE__ADD0(r) a0 += (r) * (r);
#define NODE__ADD1(r) a1 += (r) * (r);
#define NODE__PUT2(r) r2[j] = (r);
#define NODE__PUT3(r) r3[j] = (r);

/* Kernels for M terms: erre (e alone, ynew given) and errbee (b, e and e3 on the same
   stages, ynew computed), each element by element (dim <= NODE__SMALLDIM: no buffer,
   chosen when the pass is planned) and by blocks. */
#define NODE__ERR(M)                                                                    \
    static void erres##M(const node__errpass *ep, size_t dim, const double *y,          \
                         double *ynew, double h, double rtol, double atol, double *acc) \
    {                                                                                   \
        NODE__ERR_LOCALS(M)                                                             \
        double a0 = acc[0];                                                             \
        for (size_t d = 0; d < dim; d++) {                                              \
            NODE__ERR_E_ELEM(M, d, NODE__ADD0)                                               \
        }                                                                               \
        acc[0] = a0;                                                                    \
    }                                                                                   \
    static void erreb##M(const node__errpass *ep, size_t dim, const double *y,          \
                         double *ynew, double h, double rtol, double atol, double *acc) \
    {                                                                                   \
        NODE__ERR_LOCALS(M)                                                             \
        double a0 = acc[0];                                                             \
        for (size_t d0 = 0; d0 < dim; d0 += NODE__ERRBLK) {                             \
            size_t nb = dim - d0 < NODE__ERRBLK ? dim - d0 : NODE__ERRBLK;              \
            double r2[NODE__ERRBLK];                                                    \
            NODE__IVDEP for (size_t j = 0; j < nb; j++) {                               \
                NODE__ERR_E_ELEM(M, d0 + j, NODE__PUT2)                                    \
            }                                                                           \
            for (size_t j = 0; j < nb; j++)                                             \
                a0 += r2[j] * r2[j];                                                    \
        }                                                                               \
        acc[0] = a0;                                                                    \
    }                                                                                   \
    static void errbees##M(const node__errpass *ep, size_t dim, const double *y,        \
                           double *ynew, double h, double rtol, double atol,            \
                           double *acc)                                                 \
    {                                                                                   \
        NODE__ERR_LOCALS(M)                                                             \
        double a0 = acc[0], a1 = acc[1];                                                \
        for (size_t d = 0; d < dim; d++) {                                              \
            NODE__ERR_BEE3_ELEM(M, d, NODE__ADD0, NODE__ADD1)                                     \
        }                                                                               \
        acc[0] = a0;                                                                    \
        acc[1] = a1;                                                                    \
    }                                                                                   \
    static void errbeeb##M(const node__errpass *ep, size_t dim, const double *y,        \
                           double *ynew, double h, double rtol, double atol,            \
                           double *acc)                                                 \
    {                                                                                   \
        NODE__ERR_LOCALS(M)                                                             \
        double a0 = acc[0], a1 = acc[1];                                                \
        for (size_t d0 = 0; d0 < dim; d0 += NODE__ERRBLK) {                             \
            size_t nb = dim - d0 < NODE__ERRBLK ? dim - d0 : NODE__ERRBLK;              \
            double r2[NODE__ERRBLK], r3[NODE__ERRBLK];                                  \
            NODE__IVDEP for (size_t j = 0; j < nb; j++) {                               \
                NODE__ERR_BEE3_ELEM(M, d0 + j, NODE__PUT2, NODE__PUT3)                        \
            }                                                                           \
            for (size_t j = 0; j < nb; j++) {                                           \
                a0 += r2[j] * r2[j];                                                    \
                a1 += r3[j] * r3[j];                                                    \
            }                                                                           \
        }                                                                               \
        acc[0] = a0;                                                                    \
        acc[1] = a1;                                                                    \
    }

NODE__ERR(1)  NODE__ERR(2)  NODE__ERR(3)  NODE__ERR(4)
NODE__ERR(5)  NODE__ERR(6)  NODE__ERR(7)  NODE__ERR(8)
NODE__ERR(9)  NODE__ERR(10) NODE__ERR(11) NODE__ERR(12)
NODE__ERR(13) NODE__ERR(14) NODE__ERR(15) NODE__ERR(16)
#undef NODE__ERR
#undef NODE__ERR_LOCALS
#undef NODE__ERR_E_ELEM
#undef NODE__ERR_BEE3_ELEM
#undef NODE__ADD0
#undef NODE__ADD1
#undef NODE__PUT2
#undef NODE__PUT3

#define NODE__ERRTAB(name)                                                              \
    { NULL, name##1, name##2, name##3, name##4, name##5, name##6, name##7, name##8,     \
      name##9, name##10, name##11, name##12, name##13, name##14, name##15, name##16 }
/* [small dim][m] */
const node__ode_kernels NODE__KERNEL(node__ode_kernels) = {
    COMB_OF, COMBZ_OF,
    { NODE__ERRTAB(erreb), NODE__ERRTAB(erres) },
    { NODE__ERRTAB(errbeeb), NODE__ERRTAB(errbees) },
};
#undef NODE__ERRTAB
#undef COMB_OF
#undef COMBZ_OF
