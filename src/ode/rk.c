/* rk.c — the one generic explicit Runge–Kutta kernel every method runs on:
 * stages k_i = f(t + c_i h, y + h Σ_{j<i} A_ij k_j) and weighted combinations
 * y + h Σ w_i k_i (HNW I, Section II.1, eq. (1.8)).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* out = y + h Σ_q w_q p_q over m non-zero terms, one pass over memory.  Each entry
   is read before it is written, so out may equal y or any p_q; the same kernel
   computes stage arguments and ynew, so the FSAL stage's argument and ynew agree
   bit for bit (backprop's replay relies on that). */
static void combine_terms(size_t dim, const double *y, double h, const double *w,
                          double *const *p, int m, double *out)
{
    switch (m) {
    case 0:
        if (out != y)
            memmove(out, y, dim * sizeof *out);
        return;
    case 1:
        for (size_t d = 0; d < dim; d++)
            out[d] = y[d] + h * (w[0] * p[0][d]);
        return;
    case 2:
        for (size_t d = 0; d < dim; d++)
            out[d] = y[d] + h * (w[0] * p[0][d] + w[1] * p[1][d]);
        return;
    case 3:
        for (size_t d = 0; d < dim; d++)
            out[d] = y[d] + h * (w[0] * p[0][d] + w[1] * p[1][d] + w[2] * p[2][d]);
        return;
    default:
        for (size_t d = 0; d < dim; d++) {
            double acc = w[0] * p[0][d] + w[1] * p[1][d] + w[2] * p[2][d] + w[3] * p[3][d];
            for (int q = 4; q < m; q++)
                acc += w[q] * p[q][d];
            out[d] = y[d] + h * acc;
        }
        return;
    }
}

/* Gather the non-zero weights of w[0..n-1] (zero tableau entries cost nothing). */
static int gather(const double *w, int n, double *const *k, double *wq, double **pq)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (w[i] != 0) {
            wq[m] = w[i];
            pq[m++] = k[i];
        }
    return m;
}

void node__rk_combine(size_t dim, const double *y, double h, const double *w, int n,
                      double *const *k, double *out)
{
    double wq[NODE__MAXSTAGES];
    double *pq[NODE__MAXSTAGES];
    int m = gather(w, n, k, wq, pq);
    combine_terms(dim, y, h, wq, pq, m, out);
}

int node__rk_stages(const node__tableau *tab, const node__ode *ode, double t, double h,
                    const double *y, double *const *k, int from, int to, double *tmp,
                    long *nfe)
{
    const int sd = tab->s_dense;
    for (int i = from; i < to; i++) {
        double wq[NODE__MAXSTAGES];
        double *pq[NODE__MAXSTAGES];
        int m = gather(tab->A + (size_t)i * sd, i, k, wq, pq);
        const double *arg = y;
        if (m > 0) {
            combine_terms(ode->dim, y, h, wq, pq, m, tmp);
            arg = tmp;
        }
        ++*nfe;
        int rc = ode->f(ode->ctx, t + tab->c[i] * h, arg, k[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
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
