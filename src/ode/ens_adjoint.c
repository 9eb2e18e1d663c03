/* ens_adjoint.c — the adjoint sensitivity method over an ensemble (ensemble.h): every
 * sample integrates its augmented state [z, a] backward between its output times
 * (Chen et al. 2018, Algorithm 1: dz/dt = f, da/dt = -aᵀ∂f/∂z), z reset to the forward
 * solution and dL/dys added to a at each output time, with the ensemble's lock-step
 * engine (ensemble.c): each stage of the augmented dynamics is one batched vjp.  The
 * error norm is the larger of the RMS norms of z and a (node_odeint_adjoint's with the
 * seminorm).  dL/dθ = -∫ aᵀ∂f/∂θ dt never feeds back into z or a, so it is left out of
 * the integration and summed afterwards over each accepted step's stages,
 * h Σ_i b_i (-a_iᵀ∂f/∂θ)(t + c_i h, z_i), by batched vjp calls on the recorded stages
 * with a_i scaled by -h b_i (vjp_p is linear in a): what integrating it with the
 * seminorm would give, with a parameter vector per group instead of one per sample.
 */
#include "ens.h"

#include <math.h>
#include <string.h>

#define tstr node__tstr

/* The augmented dynamics [z, a]' = [f(t, z), -aᵀ∂f/∂z] of `sys`, rows of 2·dim; each
   worker's scratch is its workspace's aug block (4 × rows × dim). */
typedef struct aug_ctx {
    const node_ensemble_system *sys;
    node_ensemble *e;
} aug_ctx;

static int aug_f(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                 double *dydt)
{
    const aug_ctx *c = ctx;
    size_t d = c->sys->dim;
    double *z = c->e->ws[worker].aug, *a = z + n * d, *dz = a + n * d, *va = dz + n * d;
    for (size_t r = 0; r < n; r++) {
        memcpy(z + r * d, y + r * 2 * d, d * sizeof(double));
        memcpy(a + r * d, y + r * 2 * d + d, d * sizeof(double));
    }
    int rc = c->sys->vjp(c->sys->ctx, worker, n, t, z, a, dz, va, NULL);
    if (rc)
        return rc;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < d; i++) {
            dydt[r * 2 * d + i] = dz[r * d + i];
            dydt[r * 2 * d + d + i] = -va[r * d + i];
        }
    return 0;
}

/* The parameter pass: rows gathered from the tape, flushed in calls of mr rows. */
typedef struct ppass {
    const node_ensemble_system *sys;
    node__ens_ws *w;
    size_t worker, m, mr;
    double *tb, *zg, *ag, *vy, *vp;
    size_t *owner;
    unsigned char *failed;
    bool bad;
} ppass;

static void pp_flush(ppass *c)
{
    const node_ensemble_system *sys = c->sys;
    size_t d = sys->dim, np = sys->nparams;
    if (c->m == 0)
        return;
    if (sys->vjp(sys->ctx, c->worker, c->m, c->tb, c->zg, c->ag, NULL, c->vy, c->vp) == 0) {
        for (size_t i = 0; i < np; i++)
            c->w->gp[i] += c->vp[i];
        c->m = 0;
        return;
    }
    for (size_t r = 0; r < c->m; r++) {   /* one row at a time: which samples fail */
        node__ens_slot *s = &c->w->fin[c->owner[r]];
        int rc = sys->vjp(sys->ctx, c->worker, 1, c->tb + r, c->zg + r * d, c->ag + r * d,
                          NULL, c->vy + r * d, c->vp);
        if (rc == 0 || c->failed[s->id])
            continue;
        char b[32];
        c->failed[s->id] = 1;
        s->st->callback_rc = rc;
        s->st->status = node__msg(s->st->message, NODE_ECALLBACK,
                                  "sys->vjp returned %d at t = %s (backward pass, dL/dθ)", rc,
                                  tstr(b, c->tb[r]));
        c->bad = true;
    }
    c->m = 0;
}

/* dL/dθ of the accepted steps on w's tape (the kept slots of the interval just solved)
   added to w->gp: over each record's stages with b_i != 0, the row (t + c_i h, z_i) with
   a = -h b_i a_i, where [z_i, a_i] = y + h Σ_j A_ij k_j as the solve formed it. */
static void param_pass(ppass *c, const node__tableau *tab, size_t nkept)
{
    size_t d = c->sys->dim, D = 2 * d, S = (size_t)tab->s_dense;
    for (size_t q = 0; q < nkept; q++)
        for (int64_t rec = c->w->fin[q].tape_last; rec >= 0;) {
            const double *p = c->w->tape + rec;
            double t = p[1], h = p[2];
            const double *y = p + 5, *k = p + 5 + D;
            for (size_t i = 0; i < (size_t)tab->s; i++) {
                if (tab->b[i] == 0)
                    continue;
                double *zz = c->zg + c->m * d, *aa = c->ag + c->m * d;
                for (size_t x = 0; x < D; x++) {
                    bool first = true;
                    double acc = 0;
                    for (size_t j = 0; j < i; j++) {
                        double a = tab->A[i * S + j];
                        if (a == 0)
                            continue;
                        acc = first ? a * k[j * D + x] : acc + a * k[j * D + x];
                        first = false;
                    }
                    double v = first ? y[x] : y[x] + h * acc;
                    if (x < d)
                        zz[x] = v;
                    else
                        aa[x - d] = -h * tab->b[i] * v;
                }
                c->tb[c->m] = t + tab->c[i] * h;
                c->owner[c->m++] = q;
                c->w->fin[q].st->nfe++;
                if (c->m == c->mr)
                    pp_flush(c);
            }
            rec = (int64_t)p[0];
        }
    pp_flush(c);
}

node_status node__ens_adjoint(const node__ens_run *run, node_ensemble *e, node__ens_ws *w,
                              size_t worker, size_t j0, size_t m, size_t stride, bool want_p)
{
    const node_ensemble_system *sys = run->sys;
    size_t d = sys->dim, D = 2 * d, nt = run->nt, G = w->G;
    size_t np = sys->nparams;
    /* scratch: Z (m × D), out (m × 2 × D), tsi (m × 2), h0, hn (m), attempts (m),
       then the parameter pass's tb (G), zg, ag, vy (G × d), vp (np), owner (G), failed */
    size_t nd = m * D + 2 * m * D + 2 * m + 2 * m + m + G + 3 * G * d + np + G + m + 8;
    if (node__ens_grow((void **)&w->rev, &w->rev_cap, nd, sizeof(double)) ||
        node__ens_grow((void **)&w->aug, &w->aug_cap, 4 * G * d, sizeof(double))) {
        for (size_t q = 0; q < m; q++) {
            node_stats *s = &run->stats[j0 + q * stride];
            s->status = node__msg(s->message, NODE_ENOMEM, "no memory for the backward pass");
        }
        return NODE_ENOMEM;
    }
    double *Z = w->rev, *out = Z + m * D, *tsi = out + 2 * m * D, *h0 = tsi + 2 * m;
    double *hn = h0 + m;
    int64_t *att = (int64_t *)(void *)(hn + m);
    double *tb = (double *)(void *)(att + m), *zg = tb + G, *ag = zg + G * d;
    double *vy = ag + G * d, *vp = vy + G * d;
    size_t *owner = (size_t *)(void *)(vp + np);
    unsigned char *failed = (unsigned char *)(owner + G);
    memset(failed, 0, m);

    aug_ctx ac = { sys, e };
    node_ensemble_system as;
    memset(&as, 0, sizeof as);
    as.dim = D;
    as.ctx = &ac;
    as.f = aug_f;
    as.max_rows = sys->max_rows && sys->max_rows < G ? sys->max_rows : G;
    as.workers = sys->workers;

    node__ens_run ar;
    memset(&ar, 0, sizeof ar);
    ar.sys = &as;
    ar.tab = run->tab;
    ar.opt = run->opt;
    ar.n = m;
    ar.nt = 2;
    ar.dim = D;
    ar.y0 = Z;
    ar.y0_stride = D;
    ar.ts = tsi;
    ar.ts_stride = 2;
    ar.ys = out;
    ar.stats = run->stats + j0;
    ar.stats_stride = stride;
    ar.record = true;
    ar.nblocks = 2;
    ar.h0 = h0;
    ar.h_next = hn;
    ar.attempts = att;
    ar.skip = failed;

    ppass pc;
    memset(&pc, 0, sizeof pc);
    pc.sys = sys;
    pc.w = w;
    pc.worker = worker;
    pc.mr = sys->max_rows && sys->max_rows < G ? sys->max_rows : G;
    pc.tb = tb; pc.zg = zg; pc.ag = ag; pc.vy = vy; pc.vp = vp;
    pc.owner = owner;
    pc.failed = failed;

    node_status st = NODE_OK;
    for (;;) {   /* once, or again without the samples that failed */
        pc.bad = false;
        if (want_p)
            memset(w->gp, 0, np * sizeof *w->gp);
        for (size_t q = 0; q < m; q++) {
            size_t j = j0 + q * stride;
            const double *last = run->fwd + (j * nt + nt - 1) * d;
            memcpy(Z + q * D, last, d * sizeof(double));
            memcpy(Z + q * D + d, run->dLdys + (j * nt + nt - 1) * d, d * sizeof(double));
            h0[q] = 0;
            att[q] = 0;
        }
        for (size_t i = nt - 1; i >= 1; i--) {
            for (size_t q = 0; q < m; q++) {
                size_t j = j0 + q * stride;
                const double *ts = run->ts + (run->ts_stride ? j * run->ts_stride : 0);
                tsi[2 * q] = ts[i];
                tsi[2 * q + 1] = ts[i - 1];
            }
            size_t kept = 0;
            if (node__ens_forward(&ar, w, worker, 0, m, 1, &kept) != NODE_OK)
                st = NODE_ENOMEM;
            for (size_t q = 0; q < m; q++)
                if (!failed[q] && run->stats[j0 + q * stride].status != NODE_OK)
                    failed[q] = 1, pc.bad = true;
            if (pc.bad)
                break;
            if (want_p) {
                param_pass(&pc, run->tab, kept);
                if (pc.bad)
                    break;
            }
            for (size_t q = 0; q < m; q++) {   /* z reset, dL/dys[i-1] added to a */
                if (failed[q])
                    continue;
                size_t j = j0 + q * stride;
                memcpy(Z + q * D, run->fwd + (j * nt + i - 1) * d, d * sizeof(double));
                for (size_t x = 0; x < d; x++)
                    Z[q * D + d + x] = out[q * 2 * D + D + d + x] +
                                       run->dLdys[(j * nt + i - 1) * d + x];
                h0[q] = hn[q];
            }
        }
        if (!pc.bad || st != NODE_OK)
            break;
    }
    for (size_t q = 0; q < m; q++) {
        size_t j = j0 + q * stride;
        node_stats *s = &run->stats[j];
        s->rows_done = 0;
        for (size_t x = 0; x < d; x++)
            run->dLdy0[j * d + x] = failed[q] ? NAN : Z[q * D + d + x];
        if (!failed[q] && node__nonfinite_inl(run->dLdy0 + j * d, d))
            s->status = node__msg(s->message, NODE_ENONFINITE,
                                  "dL/dy0 is NaN or Inf after the backward pass");
    }
    if (want_p && node__nonfinite_inl(w->gp, np))
        for (size_t q = 0; q < m; q++)
            if (!failed[q] && run->stats[j0 + q * stride].status == NODE_OK)
                run->stats[j0 + q * stride].status =
                    node__msg(run->stats[j0 + q * stride].message, NODE_ENONFINITE,
                              "dL/dθ of its group is NaN or Inf after the backward pass");
    return st;
}
