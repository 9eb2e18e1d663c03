/* rk.c — the one generic explicit Runge–Kutta step every method runs on:
 * stages k_i = f(t + c_i h, y + h Σ_{j<i} A_ij k_j) and weighted combinations
 * y + h Σ w_i k_i (HNW I, Section II.1, eq. (1.8)), planned once per solve onto the
 * vector kernels of kernels.c.
 */
#include "ode.h"

#include <math.h>
#include <string.h>

/* ---- kernel tables ---------------------------------------------------------------- */

const node__ode_kernels *node__ode_kernels_for(node__isa isa)
{
    (void)isa;   /* unused when only the generic level is built */
    return NODE__KERNEL_TABLE(isa, node__ode_kernels);
}

/* ---- planned combinations ---------------------------------------------------------- */

void node__lincomb_make(node__lincomb *lc, const node__ode_kernels *kern, const double *w, int n,
                        double *const *k)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (w[i] != 0) {
            lc->w[m] = w[i];
            lc->p[m++] = k[i];
        }
    lc->m = m;
    lc->fn = kern->comb[m] ? kern->comb[m] : kern->comb_any;
    lc->fnz = kern->combz[m] ? kern->combz[m] : kern->combz_any;
}

int node__err_stages(const node__tableau *tab)
{
    int last = tab->s - 1;
    if (tab->fsal && tab->e[last] == 0 && (!tab->e3 || tab->e3[last] == 0))
        return last;
    return tab->s;
}

void node__errpass_make(node__errpass *ep, const node__ode_kernels *kern, size_t dim,
                        const node__tableau *tab, double *const *k)
{
    const double *b = tab->b, *e = tab->e, *e3 = tab->e3;
    bool with_b = !(tab->fsal && node__err_stages(tab) == tab->s);
    int m = 0;
    bool same = true;   /* b, e, e3 non-zero on the same stages */
    for (int i = 0; i < tab->s; i++) {
        bool nz = e[i] != 0;
        if ((with_b && (b[i] != 0) != nz) || (e3 && (e3[i] != 0) != nz))
            same = false;
        if (nz) {
            ep->wb[m] = b[i];
            ep->we[m] = e[i];
            ep->we3[m] = e3 ? e3[i] : 0;
            ep->p[m++] = k[i];
        }
    }
    ep->m = m;
    ep->fn = NULL;
    ep->bee = with_b;
    if (m == 0)
        return;
    int small = dim <= NODE__SMALLDIM;
    if (!with_b && !e3)
        ep->fn = kern->erre[small][m] ? kern->erre[small][m] : kern->erre_any[small];
    else if (with_b && e3 && same)
        ep->fn = kern->errbee[small][m] ? kern->errbee[small][m] : kern->errbee_any[small];
}

void node__rk_combine(const node__ode_kernels *kern, size_t dim, const double *y, double h,
                      const double *w, int n, double *const *k, double *out)
{
    node__lincomb lc;
    node__lincomb_make(&lc, kern, w, n, k);
    node__lincomb_apply(&lc, dim, y, h, out);
}

int node__rk_stages_planned(const node__tableau *tab, const node__lincomb *rows,
                            const node__ode *ode, double t, double h, const double *y,
                            double *const *k, int from, int to, double *tmp, int64_t *nfe)
{
    const size_t dim = ode->dim;
    int (*const f)(void *, double, const double *, double *) = ode->f;
    void *const ctx = ode->ctx;
    const double *const c = tab->c;
    for (int i = from; i < to; i++) {
        const node__lincomb *row = &rows[i];
        const double *arg = y;
        if (row->m > 0) {
            row->fn(row, dim, y, h, tmp);
            arg = tmp;
        }
        int rc = f(ctx, t + c[i] * h, arg, k[i]);
        if (rc != 0) {
            *nfe += i - from + 1;
            return rc;
        }
    }
    if (to > from)
        *nfe += to - from;
    return 0;
}

int node__rk_stages(const node__ode_kernels *kern, const node__tableau *tab,
                    const node__ode *ode, double t, double h,
                    const double *y, double *const *k, int from, int to, double *tmp,
                    int64_t *nfe)
{
    node__lincomb rows[NODE__MAXSTAGES];
    for (int i = from; i < to; i++)
        node__lincomb_make(&rows[i], kern, tab->A + (size_t)i * tab->s_dense, i, k);
    return node__rk_stages_planned(tab, rows, ode, t, h, y, k, from, to, tmp, nfe);
}

bool node__nonfinite(const double *v, size_t n)
{
    return node__nonfinite_inl(v, n);
}
