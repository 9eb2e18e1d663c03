/* ens_grad.c — exact backprop through an ensemble's recorded steps (ensemble.h): the
 * reverse pass of every sample's own steps, in lock-step: each round, every sample of
 * the group reverses its next step back, and each stage of those steps is one batched
 * vjp over the samples that need it.  Reverse of y_{n+1} = y + h Σ b_i k_i,
 * k_i = f(t + c_i h, y + h Σ_{j<i} A_ij k_j) (step sizes taken as constants), with the
 * dense outputs y + h Σ w_i(θ) k_i of the step added in.
 */
#include "ens.h"

#include <math.h>
#include <string.h>

#define tstr node__tstr

/* The reverse state of one kept sample. */
typedef struct rslot {
    int64_t rec;      /* its record being reversed, -1 when done */
    size_t out;       /* outputs ts[1 .. out] are not yet added */
    bool dense;       /* the current step's record has its dense stages */
    bool need[NODE__MAXSTAGES];
    bool failed;
} rslot;

/* vjp on nr gathered rows, calls of at most max_rows; vjp_p summed into *gp (if gp).
   On a failed call, rows one at a time: rc[r] each (and only the successful rows'
   parameter parts are added).  Returns whether any row failed. */
static bool eval_vjp(const node_ensemble_system *sys, size_t worker, size_t nr,
                     const double *t, const double *y, const double *a, double *vy,
                     double *gp, double *vp, int *rc)
{
    size_t dim = sys->dim, np = sys->nparams, mr = sys->max_rows ? sys->max_rows : nr;
    bool bad = false;
    for (size_t r0 = 0; r0 < nr; r0 += mr) {
        size_t m = nr - r0 < mr ? nr - r0 : mr;
        int c = sys->vjp(sys->ctx, worker, m, t + r0, y + r0 * dim, a + r0 * dim, NULL,
                         vy + r0 * dim, gp ? vp : NULL);
        if (c == 0) {
            if (gp)
                for (size_t i = 0; i < np; i++)
                    gp[i] += vp[i];
            continue;
        }
        if (!bad)
            memset(rc, 0, nr * sizeof *rc);
        bad = true;
        for (size_t q = r0; q < r0 + m; q++) {
            rc[q] = sys->vjp(sys->ctx, worker, 1, t + q, y + q * dim, a + q * dim, NULL,
                             vy + q * dim, gp ? vp : NULL);
            if (rc[q] == 0 && gp)
                for (size_t i = 0; i < np; i++)
                    gp[i] += vp[i];
        }
    }
    return bad;
}

/* One attempt at the reverse pass of the kept slots that have not failed; returns
   whether a sample failed in it (then the caller starts over without it). */
static bool reverse_once(const node__ens_run *run, node__ens_ws *w, size_t worker,
                         size_t nk, bool want_p, rslot *rs, double *abar, double *ybar,
                         double *kbar, double *Yg, double *ag, double *vy, double *tb,
                         double *vp, size_t *ids)
{
    const node__tableau *tab = run->tab;
    const node_ensemble_system *sys = run->sys;
    size_t dim = run->dim, nt = run->nt, S = (size_t)tab->s_dense;
    double *gp = want_p ? w->gp : NULL;
    if (gp)
        memset(gp, 0, sys->nparams * sizeof *gp);
    for (size_t q = 0; q < nk; q++) {
        rs[q].rec = w->fin[q].tape_last;
        rs[q].out = nt - 1;
        memset(abar + q * dim, 0, dim * sizeof(double));
    }
    bool failed = false;
    for (;;) {
        size_t live = 0;
        /* the outputs in each sample's step, and what its stages need */
        for (size_t q = 0; q < nk; q++) {
            rslot *r = &rs[q];
            if (r->failed || r->rec < 0)
                continue;
            live++;
            const node__ens_slot *s = &w->fin[q];
            const double *p = w->tape + r->rec;
            double t = p[1], h = p[2], tnew = p[3];
            r->dense = p[4] != 0;
            const double *dl = run->dLdys + s->id * nt * dim;
            double *ab = abar + q * dim, *yb = ybar + q * dim, *kb = kbar + q * S * dim;
            memset(kb, 0, S * dim * sizeof(double));
            memset(yb, 0, dim * sizeof(double));
            bool any_dense = false;
            while (r->out >= 1 && s->dir * (s->ts[r->out] - t) > 0) {
                const double *L = dl + r->out * dim;
                if (s->ts[r->out] == tnew) {
                    for (size_t d = 0; d < dim; d++)
                        ab[d] += L[d];
                } else {
                    double theta = fmin(1.0, (s->ts[r->out] - t) / h), wt[NODE__MAXSTAGES];
                    tab->dense(theta, wt, NULL);
                    for (size_t d = 0; d < dim; d++)
                        yb[d] += L[d];
                    for (size_t i = 0; i < S; i++)
                        if (wt[i] != 0)
                            for (size_t d = 0; d < dim; d++)
                                kb[i * dim + d] += h * wt[i] * L[d];
                    any_dense = true;
                }
                r->out--;
            }
            for (size_t d = 0; d < dim; d++)
                yb[d] += ab[d];
            for (int i = 0; i < tab->s; i++)
                if (tab->b[i] != 0)
                    for (size_t d = 0; d < dim; d++)
                        kb[i * dim + d] += h * tab->b[i] * ab[d];
            size_t Su = any_dense ? S : (size_t)tab->s;
            for (size_t i = S; i-- > 0;) {
                bool nd = i < Su && ((i < (size_t)tab->s && tab->b[i] != 0) || any_dense);
                for (size_t m = i + 1; !nd && m < Su; m++)
                    nd = rs[q].need[m] && tab->A[m * S + i] != 0;
                r->need[i] = nd;
            }
        }
        if (live == 0)
            break;
        /* stages from the last down: one batched vjp over the rows that need stage i */
        for (size_t i = S; i-- > 0;) {
            size_t m = 0;
            for (size_t q = 0; q < nk; q++) {
                rslot *r = &rs[q];
                if (r->failed || r->rec < 0 || !r->need[i])
                    continue;
                const double *p = w->tape + r->rec;
                double t = p[1], h = p[2];
                const double *y = p + 5, *k0 = p + 5 + dim;
                double *Y = Yg + m * dim;
                /* Y_i = y + h Σ_{j<i} A_ij k_j, as the forward formed it */
                int nz = 0;
                double wv[NODE__MAXSTAGES];
                const double *pv[NODE__MAXSTAGES];
                for (size_t j = 0; j < i; j++)
                    if (tab->A[i * S + j] != 0) {
                        wv[nz] = tab->A[i * S + j];
                        pv[nz++] = k0 + j * dim;
                    }
                for (size_t d = 0; d < dim; d++) {
                    if (nz == 0) {
                        Y[d] = y[d];
                        continue;
                    }
                    double acc = wv[0] * pv[0][d];
                    for (int z = 1; z < nz; z++)
                        acc = acc + wv[z] * pv[z][d];
                    Y[d] = y[d] + h * acc;
                }
                tb[m] = t + tab->c[i] * h;
                memcpy(ag + m * dim, kbar + (q * S + i) * dim, dim * sizeof(double));
                ids[m++] = q;
            }
            if (m == 0)
                continue;
            for (size_t z = 0; z < m; z++)
                w->fin[ids[z]].st->nfe++;
            bool bad = eval_vjp(sys, worker, m, tb, Yg, ag, vy, gp, vp, w->rc);
            for (size_t z = 0; z < m; z++) {
                size_t q = ids[z];
                node__ens_slot *s = &w->fin[q];
                if (bad && w->rc[z] != 0) {
                    char b[32];
                    s->st->callback_rc = w->rc[z];
                    s->st->status = node__msg(s->st->message, NODE_ECALLBACK,
                                              "sys->vjp returned %d at t = %s (backward pass)",
                                              w->rc[z], tstr(b, tb[z]));
                    rs[q].failed = true;
                    failed = true;
                    continue;
                }
                const double *p = w->tape + rs[q].rec;
                double h = p[2];
                const double *v = vy + z * dim;
                double *yb = ybar + q * dim, *kb = kbar + q * S * dim;
                for (size_t d = 0; d < dim; d++)
                    yb[d] += v[d];
                for (size_t j = 0; j < i; j++) {
                    double a = tab->A[i * S + j];
                    if (a != 0)
                        for (size_t d = 0; d < dim; d++)
                            kb[j * dim + d] += h * a * v[d];
                }
            }
        }
        /* on to the previous step */
        for (size_t q = 0; q < nk; q++) {
            rslot *r = &rs[q];
            if (r->failed || r->rec < 0)
                continue;
            const double *p = w->tape + r->rec;
            memcpy(abar + q * dim, ybar + q * dim, dim * sizeof(double));
            w->fin[q].st->t_reached = p[1];
            r->rec = (int64_t)p[0];
        }
        if (failed)
            return true;
    }
    return false;
}

node_status node__ens_reverse(const node__ens_run *run, node__ens_ws *w, size_t worker,
                              size_t nk, bool want_p)
{
    size_t dim = run->dim, S = (size_t)run->tab->s_dense, np = run->sys->nparams;
    /* abar, ybar, kbar (S rows), Yg, ag, vy, tb, vp, then the rslots and ids */
    size_t nd = nk * (2 + S) * dim + 3 * nk * dim + nk + np;
    size_t nbytes = nk * sizeof(rslot) + nd * sizeof(double) + nk * sizeof(size_t) + 64;
    if (node__ens_grow((void **)&w->rev, &w->rev_cap, nbytes / sizeof(double) + 1,
                       sizeof(double))) {
        for (size_t q = 0; q < nk; q++)
            w->fin[q].st->status = node__msg(w->fin[q].st->message, NODE_ENOMEM,
                                             "no memory for the reverse pass");
        return NODE_ENOMEM;
    }
    double *p = w->rev;
    double *abar = p; p += nk * dim;
    double *ybar = p; p += nk * dim;
    double *kbar = p; p += nk * S * dim;
    double *Yg = p; p += nk * dim;
    double *ag = p; p += nk * dim;
    double *vy = p; p += nk * dim;
    double *tb = p; p += nk;
    double *vp = p; p += np;
    rslot *rs = (rslot *)(void *)p;
    size_t *ids = (size_t *)(void *)(rs + nk);
    for (size_t q = 0; q < nk; q++)
        rs[q].failed = false;
    while (reverse_once(run, w, worker, nk, want_p, rs, abar, ybar, kbar, Yg, ag, vy, tb, vp,
                        ids)) {
        /* a sample failed: the others start over without it (dL/dθ sums only theirs) */
    }
    for (size_t q = 0; q < nk; q++) {
        const node__ens_slot *s = &w->fin[q];
        double *out = run->dLdy0 + s->id * dim;
        if (rs[q].failed) {
            for (size_t d = 0; d < dim; d++)
                out[d] = NAN;
            continue;
        }
        const double *L0 = run->dLdys + s->id * run->nt * dim;
        for (size_t d = 0; d < dim; d++)
            out[d] = abar[q * dim + d] + L0[d];
        if (node__nonfinite_inl(out, dim))
            w->fin[q].st->status = node__msg(w->fin[q].st->message, NODE_ENONFINITE,
                                             "dL/dy0 is NaN or Inf after the backward pass");
    }
    if (want_p && node__nonfinite_inl(w->gp, np))
        for (size_t q = 0; q < nk; q++)
            if (!rs[q].failed && w->fin[q].st->status == NODE_OK)
                w->fin[q].st->status = node__msg(w->fin[q].st->message, NODE_ENONFINITE,
                                                 "dL/dθ of its group is NaN or Inf after the "
                                                 "backward pass");
    return NODE_OK;
}
