/* rk.c — the one generic explicit Runge–Kutta kernel every method runs on:
 * stages k_i = f(t + c_i h, y + h Σ_{j<i} A_ij k_j) and weighted combinations
 * y + h Σ w_i k_i (HNW I, Section II.1, eq. (1.8)).
 */
#include "ode.h"

#include <string.h>

/* The stage vectors, y and out are distinct arrays or the very same one (element-wise
   aliasing, where each lane is read before it is written): tell GCC not to version the
   loops for partial overlap, which costs more than the loop itself at small dim. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 5
#  define NODE__IVDEP _Pragma("GCC ivdep")
#else
#  define NODE__IVDEP
#endif

void node__lincomb_make(node__lincomb *lc, const double *w, int n, double *const *k)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (w[i] != 0) {
            lc->w[m] = w[i];
            lc->p[m++] = k[i];
        }
    lc->m = m;
    for (int q = m; q < 5; q++) {   /* the kernel loads 5 weights and pointers */
        lc->w[q] = 0;
        lc->p[q] = NULL;
    }
}

/* out[d] += Σ_{q<n} w_q p_q[d], 1 <= n <= 5 terms, vectorized. */
static void accumulate(size_t dim, double *out, int n, const double *w,
                       const double *const *p)
{
    const double w0 = w[0], w1 = n > 1 ? w[1] : 0, w2 = n > 2 ? w[2] : 0,
                 w3 = n > 3 ? w[3] : 0, w4 = n > 4 ? w[4] : 0;
    const double *p0 = p[0], *p1 = p[n > 1 ? 1 : 0], *p2 = p[n > 2 ? 2 : 0],
                 *p3 = p[n > 3 ? 3 : 0], *p4 = p[n > 4 ? 4 : 0];
    switch (n) {
    case 1: NODE__IVDEP for (size_t d = 0; d < dim; d++) out[d] = out[d] + w0 * p0[d]; return;
    case 2: NODE__IVDEP for (size_t d = 0; d < dim; d++)
                out[d] = out[d] + w0 * p0[d] + w1 * p1[d];
            return;
    case 3: NODE__IVDEP for (size_t d = 0; d < dim; d++)
                out[d] = out[d] + w0 * p0[d] + w1 * p1[d] + w2 * p2[d];
            return;
    case 4: NODE__IVDEP for (size_t d = 0; d < dim; d++)
                out[d] = out[d] + w0 * p0[d] + w1 * p1[d] + w2 * p2[d] + w3 * p3[d];
            return;
    default: NODE__IVDEP for (size_t d = 0; d < dim; d++)
                out[d] = out[d] + w0 * p0[d] + w1 * p1[d] + w2 * p2[d] + w3 * p3[d] +
                         w4 * p4[d];
            return;
    }
}

/* out = y + h Σ_q w_q p_q (y NULL: out = h Σ_q w_q p_q).  The sum is formed first and
   added to y once, as in Hairer's codes (less rounding than adding term by term).
   Up to 5 terms: one pass, each out[d] written after all inputs at index d were read,
   so out may be y or a p_q (element-wise aliasing is harmless).  More terms: passes of
   5 with the partial sums in out; per element these are the same operations as one
   left-to-right sum (a stored double rounds nothing), so no bit changes. */
void node__lincomb_apply(const node__lincomb *lc, size_t dim, const double *y, double h,
                         double *out)
{
    const int m = lc->m;
    /* weights in registers: out might alias lc as far as the compiler knows */
    const double w0 = lc->w[0], w1 = lc->w[1], w2 = lc->w[2], w3 = lc->w[3], w4 = lc->w[4];
    const double *p0 = lc->p[0], *p1 = lc->p[1], *p2 = lc->p[2], *p3 = lc->p[3],
                 *p4 = lc->p[4];
#define NODE__COMB(sum)                                                         \
    do {                                                                        \
        if (y) {                                                                \
            NODE__IVDEP for (size_t d = 0; d < dim; d++) out[d] = y[d] + h * (sum); \
        } else {                                                                \
            NODE__IVDEP for (size_t d = 0; d < dim; d++) out[d] = h * (sum);    \
        }                                                                       \
        return;                                                                 \
    } while (0)
    switch (m) {
    case 0:
        if (!y)
            memset(out, 0, dim * sizeof *out);
        else if (out != y)
            memmove(out, y, dim * sizeof *out);
        return;
    case 1: NODE__COMB(w0 * p0[d]);
    case 2: NODE__COMB(w0 * p0[d] + w1 * p1[d]);
    case 3: NODE__COMB(w0 * p0[d] + w1 * p1[d] + w2 * p2[d]);
    case 4: NODE__COMB(w0 * p0[d] + w1 * p1[d] + w2 * p2[d] + w3 * p3[d]);
    case 5: NODE__COMB(w0 * p0[d] + w1 * p1[d] + w2 * p2[d] + w3 * p3[d] + w4 * p4[d]);
    default: break;
    }
#undef NODE__COMB
    bool alias = out == y;
    for (int q = 0; q < m; q++)
        alias |= out == lc->p[q];
    if (alias) {   /* only through node__rk_combine: one scalar pass */
        for (size_t d = 0; d < dim; d++) {
            double acc = w0 * p0[d] + w1 * p1[d] + w2 * p2[d] + w3 * p3[d] + w4 * p4[d];
            for (int q = 5; q < m; q++)
                acc += lc->w[q] * lc->p[q][d];
            out[d] = y ? y[d] + h * acc : h * acc;
        }
        return;
    }
    NODE__IVDEP
    for (size_t d = 0; d < dim; d++)
        out[d] = w0 * p0[d] + w1 * p1[d] + w2 * p2[d] + w3 * p3[d] + w4 * p4[d];
    for (int q = 5; q < m; q += 5)
        accumulate(dim, out, m - q < 5 ? m - q : 5, lc->w + q, lc->p + q);
    if (y) {
        NODE__IVDEP
        for (size_t d = 0; d < dim; d++)
            out[d] = y[d] + h * out[d];
    } else {
        NODE__IVDEP
        for (size_t d = 0; d < dim; d++)
            out[d] = h * out[d];
    }
}

void node__rk_combine(size_t dim, const double *y, double h, const double *w, int n,
                      double *const *k, double *out)
{
    node__lincomb lc;
    node__lincomb_make(&lc, w, n, k);
    node__lincomb_apply(&lc, dim, y, h, out);
}

int node__rk_stages_planned(const node__tableau *tab, const node__lincomb *rows,
                            const node__ode *ode, double t, double h, const double *y,
                            double *const *k, int from, int to, double *tmp, long *nfe)
{
    for (int i = from; i < to; i++) {
        const double *arg = y;
        if (rows[i].m > 0) {
            node__lincomb_apply(&rows[i], ode->dim, y, h, tmp);
            arg = tmp;
        }
        ++*nfe;
        int rc = ode->f(ode->ctx, t + tab->c[i] * h, arg, k[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int node__rk_stages(const node__tableau *tab, const node__ode *ode, double t, double h,
                    const double *y, double *const *k, int from, int to, double *tmp,
                    long *nfe)
{
    node__lincomb rows[NODE__MAXSTAGES];
    for (int i = from; i < to; i++)
        node__lincomb_make(&rows[i], tab->A + (size_t)i * tab->s_dense, i, k);
    return node__rk_stages_planned(tab, rows, ode, t, h, y, k, from, to, tmp, nfe);
}

bool node__nonfinite(const double *v, size_t n)
{
    /* v - v is 0 for finite v and NaN for NaN or ±Inf; summing keeps the loop
       branch-free (and vectorizable). */
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += v[i] - v[i];
    return acc != acc;
}
