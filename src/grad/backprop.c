/* backprop.c — exact gradients of the discrete solve (discretise-then-optimise):
 * the forward pass is re-run with an observer that records each accepted step,
 * then reverse-mode differentiation runs through the Runge–Kutta stages, the
 * updates y_{n+1} = y_n + h Σ b_i k_i and the dense outputs y_n + h Σ w_i(θ) k_i
 * (Hairer, Nørsett, Wanner I, §II.1 and §II.6), step sizes taken as constants.
 */
#include "grad.h"

#include <math.h>
#include <string.h>

/* ---- recording the forward pass ------------------------------------------------
 * Plain (opt->checkpoints = 0): one record [t, h, y(dim)] per accepted step in s->tape.
 * Checkpointed (N = opt->checkpoints >= 1): (t, h) of every step in s->steps, and the
 * states at steps 0, stride, 2 stride, ... in s->ckpt, at most N of them: when the
 * next would be the (N+1)-th, the stride doubles and every other state is dropped, so
 * that the saved states stay evenly spaced whatever the number of steps turns out to
 * be (stride < 2 steps / N once N <= steps).
 * Outputs: for row i of ys, the step it lies in and its θ (two nt-arrays). */

typedef struct recorder {
    node_solver *s;
    size_t dim, nsteps;
    double *ostep, *otheta;   /* [nt] each, in s->work */
    node_status status;       /* ENOMEM from a failed tape growth */
    size_t ncp;               /* checkpointed: N (0 = plain), states saved, stride */
    size_t stride, nsaved;
    size_t nstages;           /* plain, with the stages: k_0..k_{nstages-1} follow y */
} recorder;

/* The checkpointed recorder: (t, h) of step j = r->nsteps, and its state y if j is a
   multiple of the stride. */
static node_status rec_checkpoint(recorder *r, double t, double h, const double *y)
{
    node_solver *s = r->s;
    size_t j = r->nsteps, n = r->dim;
    if (j > SIZE_MAX / 4 || node__grad_reserve(&s->steps, &s->steps_cap, 2 * (j + 1), 2, SIZE_MAX))
        return NODE_ENOMEM;
    s->steps[2 * j] = t;
    s->steps[2 * j + 1] = h;
    if (j % r->stride)
        return NODE_OK;
    while (j / r->stride >= r->ncp) {   /* full: keep the states at even slots */
        size_t keep = 0;
        for (size_t c = 0; c < r->nsaved; c += 2, keep++)
            memmove(s->ckpt + keep * n, s->ckpt + c * n, n * sizeof(double));
        r->nsaved = keep;
        r->stride *= 2;
    }
    if (j % r->stride)
        return NODE_OK;
    size_t limit = r->ncp > SIZE_MAX / n ? SIZE_MAX : r->ncp * n;
    if (node__grad_reserve(&s->ckpt, &s->ckpt_cap, (r->nsaved + 1) * n, n, limit))
        return NODE_ENOMEM;
    memcpy(s->ckpt + r->nsaved * n, y, n * sizeof(double));
    r->nsaved++;
    return NODE_OK;
}

/* The plain record [t, h, y, k_0 .. k_{nstages-1}] of the next step (k NULL: none). */
static int rec_plain(recorder *r, double t, double h, const double *y, double *const *k)
{
    size_t n = r->dim, rs = n + 2 + r->nstages * n, need = (r->nsteps + 1) * rs;
    if (node__grad_reserve(&r->s->tape, &r->s->tape_cap, need, rs, SIZE_MAX)) {
        r->status = NODE_ENOMEM;
        return 1;
    }
    double *rec = r->s->tape + r->nsteps * rs;
    rec[0] = t;
    rec[1] = h;
    memcpy(rec + 2, y, n * sizeof(double));
    for (size_t i = 0; k && i < r->nstages; i++)
        memcpy(rec + 2 + (i + 1) * n, k[i], n * sizeof(double));
    r->nsteps++;
    return 0;
}

static int rec_step(void *ctx, double t, double h, const double *y)
{
    recorder *r = ctx;
    if (r->ncp) {
        if ((r->status = rec_checkpoint(r, t, h, y)) != NODE_OK)
            return 1;
        r->nsteps++;
        return 0;
    }
    return rec_plain(r, t, h, y, NULL);
}

/* The plain recorder with the stages (the observer's dense callback: every stage of
   the step is computed by then; no step callback follows). */
static int rec_stages(void *ctx, double t, double h, const double *y, double *const *k)
{
    return rec_plain(ctx, t, h, y, k);
}

static int rec_output(void *ctx, size_t i, double theta)
{
    recorder *r = ctx;
    if (r->nsteps == 0)
        return 1;   /* an output before any step: not what the contract promises */
    r->ostep[i] = (double)(r->nsteps - 1);
    r->otheta[i] = theta;
    return 0;
}

/* The forward re-run's right-hand side: sys->f, remembering a non-zero return and
   its t (the integrator reports only NODE_ECALLBACK). */
typedef struct fwd_ctx {
    const node_system *sys;
    int rc;
    double t_rc;
} fwd_ctx;

static int fwd_f(void *ctx, double t, const double *y, double *dydt)
{
    fwd_ctx *c = ctx;
    int rc = c->sys->f(c->sys->ctx, t, y, dydt);
    if (rc) {
        c->rc = rc;
        c->t_rc = t;
    }
    return rc;
}

/* Say where and why the forward re-run failed with rc (stats->t_reached: how far
   it got, as for node_odeint). */
static node_status forward_failed(node_stats *st, node_status rc, const fwd_ctx *fc,
                                  const node_options *o)
{
    char *msg = st->message;
    double t = st->t_reached;
    switch (rc) {
    case NODE_ECALLBACK:
        if (!fc->rc)
            break;
        st->callback_rc = fc->rc;
        return node__msg(msg, rc, "sys->f returned %d at t = %g (backprop's forward re-run)",
                         fc->rc, fc->t_rc);
    case NODE_EMAXSTEPS:
        return node__msg(msg, rc,
                         "backprop's forward re-run needs more than opt->max_steps = %lld "
                         "steps; it reached t = %g", (long long)o->max_steps, t);
    case NODE_ENONFINITE:
        return node__msg(msg, rc,
                         "the solution turned NaN or Inf after t = %g (backprop's forward "
                         "re-run from ys[0])", t);
    case NODE_ESTEPSIZE:
        return node__msg(msg, rc,
                         "the step size underflowed at t = %g (backprop's forward re-run)", t);
    case NODE_ENOMEM:
        return node__msg(msg, rc, "out of memory in backprop's forward re-run (its "
                         "workspace, or the tape after %lld steps)", (long long)st->naccept);
    default:
        break;
    }
    return node__msg(msg, rc, "%s at t = %g (backprop's forward re-run)", node_strerror(rc), t);
}

/* The name of the first non-finite entry of v (n entries) in a message. */
static node_status nonfinite_output(char *msg, const char *name, const double *v, size_t n,
                                    const char *why)
{
    size_t i = 0;
    while (i + 1 < n && isfinite(v[i]))
        i++;
    return node__msg(msg, NODE_ENONFINITE, "%s[%zu] = %g after the backward pass: %s", name, i,
                     v[i], why);
}

/* a += x * v over n entries. */
static void axpy(size_t n, double x, const double *v, double *a)
{
    for (size_t j = 0; j < n; j++)
        a[j] += x * v[j];
}

/* ---- the reverse pass ------------------------------------------------------------ */

/* What reversing steps needs: the tableau, the outputs' places, the running
   cotangents and the scratch vectors (in s->work). */
typedef struct rev {
    const node_system *sys;
    const node__ode_kernels *kern;
    const node__tableau *tab;
    node__ode ode;            /* sys->f itself: node__rk_stages returns its value */
    node_stats *stats;
    const double *dLdys, *ostep, *otheta;
    double *dLdp, *dLdts;
    size_t n, np, S, io;      /* io: the last output row not yet taken in */
    double *k[NODE__MAXSTAGES], *kb[NODE__MAXSTAGES];
    double *ybar, *tmp, *vy, *vp, *w, *dw;
    double *tsrec;            /* a recorded solve's ts (opt->record) */
    double *kc;               /* FSAL: the cotangent of k_0 of the step after the one
                                 being reversed, which is its last stage (the same f
                                 value): one vjp at that point serves both */
    bool carry;               /* kc holds such a cotangent */
    double *kf;               /* recomputed stages: that k_0, for the step before */
    double tbar;              /* ∂L/∂t0 through the stage times t_n + c_i h */
    bool stages;              /* the tape's records hold the S stages after y */
} rev;

/* Reverse the steps first .. first+count-1, last to first: their records [t, h, y] lie
   one after the other from tape (step `first` first); t_after is where the last of
   them ends (how far the backward pass has got before them). */
static node_status reverse_steps(rev *c, const double *tape, size_t first, size_t count,
                                 double t_after)
{
    const node__tableau *tab = c->tab;
    const node_system *sys = c->sys;
    node_stats *stats = c->stats;
    size_t n = c->n, np = c->np, S = c->S, rs = n + 2 + (c->stages ? S * n : 0);
    double *const *kb = c->kb;
    double *kk[NODE__MAXSTAGES];
    double *const *k = kk;
    double *ybar = c->ybar, *tmp = c->tmp, *vy = c->vy, *vp = c->vp, *w = c->w, *dw = c->dw;

    for (size_t jj = count; jj-- > 0;) {
        size_t step = first + jj;
        const double *rec = tape + jj * rs, *y = rec + 2;
        double t = rec[0], h = rec[1];
        /* where this step ends: how far the backward pass has got */
        double t_end = jj + 1 < count ? rec[rs] : t_after;
        bool need[NODE__MAXSTAGES] = { false };
        int last = -1;

        /* y_{n+1} = y_n + h Σ b_i k_i: ȳ_n gets ȳ_{n+1}, k̄_i gets h b_i ȳ_{n+1}. */
        for (int i = 0; i < tab->s; i++) {
            if (tab->b[i] != 0) {
                need[i] = true;
                last = i;
            }
            for (size_t j = 0; j < n; j++)
                kb[i][j] = h * tab->b[i] * ybar[j];
        }
        for (size_t i = (size_t)tab->s; i < S; i++)
            memset(kb[i], 0, n * sizeof(double));
        /* FSAL: the next step's k_0 is this step's last stage k_{s-1} = f(t + h, y_{n+1})
           (A_{s-1} = b), one f call in the forward pass: its cotangent joins this
           one's, and vjp is linear in it, so the two need one call, not two. */
        const bool merged = c->carry;
        if (merged) {
            axpy(n, 1.0, c->kc, kb[tab->s - 1]);
            need[tab->s - 1] = true;
            last = tab->s - 1 > last ? tab->s - 1 : last;
            c->carry = false;
        }

        /* Outputs in this step: y_out = y_n + h Σ w_i(θ) k_i. */
        size_t o_hi = c->io;
        bool any_out = false;
        while (c->io >= 1 && c->ostep[c->io] == (double)step) {
            any_out = true;
            tab->dense(c->otheta[c->io], w, dw);
            const double *g = c->dLdys + c->io * n;
            axpy(n, 1.0, g, ybar);
            for (size_t i = 0; i < S; i++)
                if (w[i] != 0) {
                    axpy(n, h * w[i], g, kb[i]);
                    need[i] = true;
                    if ((int)i > last)
                        last = (int)i;
                }
            c->io--;
        }
        int nst = any_out ? (int)S : last + 1;
        if (nst < 1)
            nst = 1;
        /* The stages: recorded with the step, or recomputed from y. */
        int cb = 0;
        for (size_t i = 0; i < S; i++)
            kk[i] = c->stages ? (double *)(rec + 2 + (i + 1) * n) : c->k[i];
        if (!c->stages) {
            /* Merged: k_{s-1} is the next step's k_0, recomputed already (kf). */
            int fs = merged && nst >= tab->s ? tab->s - 1 : nst;
            cb = node__rk_stages(c->kern, tab, &c->ode, t, h, y, k, 0, fs, tmp, &stats->nfe);
            if (!cb && fs < nst) {
                memcpy(k[fs], c->kf, n * sizeof(double));
                if (fs + 1 < nst)
                    cb = node__rk_stages(c->kern, tab, &c->ode, t, h, y, k, fs + 1, nst, tmp,
                                         &stats->nfe);
            }
            if (!cb && tab->fsal && step > 0)   /* the step before's k_{s-1} */
                memcpy(c->kf, k[0], n * sizeof(double));
        }
        if (cb) {
            stats->callback_rc = cb;
            stats->t_reached = t_end;
            return node__msg(stats->message, NODE_ECALLBACK,
                             "sys->f returned %d while the step at t = %g was recomputed "
                             "(backward pass)", cb, t);
        }
        /* Once per step, O(stages × dim): the forward pass accepted these stages, but f
           may answer differently now. */
        if (node__nonfinite(k[0], (size_t)nst * n)) {
            stats->t_reached = t_end;
            return node__msg(stats->message, NODE_ENONFINITE,
                             "sys->f gave a NaN or Inf while the step at t = %g was recomputed "
                             "(backward pass), though not in the forward pass", t);
        }
        if (c->dLdts)   /* ∂y_out/∂ts[i] = Σ dw_i(θ) k_i */
            for (size_t i = o_hi; i > c->io; i--) {
                tab->dense(c->otheta[i], w, dw);
                const double *g = c->dLdys + i * n;
                double sum = 0;
                for (size_t j = 0; j < S; j++) {
                    if (dw[j] == 0)
                        continue;
                    double d = 0;
                    for (size_t l = 0; l < n; l++)
                        d += g[l] * k[j][l];
                    sum += dw[j] * d;
                }
                c->dLdts[i] = sum;
            }

        /* Stages, last to first: k_i = f(t + c_i h, Y_i), Y_i = y_n + h Σ_j A_ij k_j. */
        for (int i = nst - 1; i >= 0; i--) {
            if (!need[i])
                continue;
            if (i == 0 && tab->fsal && step > 0) {   /* to the step before (see above) */
                memcpy(c->kc, kb[0], n * sizeof(double));
                c->carry = true;
                break;
            }
            const double *Ai = tab->A + (size_t)i * S;
            node__rk_combine(c->kern, n, y, h, Ai, i, k, tmp);
            double vt = 0, ti = t + tab->c[i] * h;
            stats->nfe++;
            cb = sys->vjp(sys->ctx, ti, tmp, kb[i], NULL, vy, np ? vp : NULL,
                          c->dLdts ? &vt : NULL);
            if (cb) {
                stats->callback_rc = cb;
                stats->t_reached = t_end;
                return node__msg(stats->message, NODE_ECALLBACK,
                                 "sys->vjp returned %d at t = %g (backward pass)", cb, ti);
            }
            c->tbar += vt;
            if (np)
                axpy(np, 1.0, vp, c->dLdp);
            axpy(n, 1.0, vy, ybar);
            for (int j = 0; j < i; j++)
                if (Ai[j] != 0) {
                    axpy(n, h * Ai[j], vy, kb[j]);
                    need[j] = true;
                }
        }
        /* Once per step, O(dim): the running cotangent (a NaN in vjp_y lands here). */
        if (node__nonfinite(ybar, n)) {
            stats->t_reached = t_end;
            return node__msg(stats->message, NODE_ENONFINITE,
                             "dL/dy turned NaN or Inf in the step at t = %g (backward pass): "
                             "sys->vjp wrote a non-finite vjp_y, or the cotangent overflowed", t);
        }
    }
    return NODE_OK;
}

/* Checkpointed: rebuild the records of steps a .. b-1 into tape from the state saved
   at step a, with the recorded step sizes (the same steps give the same bits: every
   y_{j+1} = y_j + h Σ b_i k_i as the forward pass formed it).  The last record needs
   no step.  t_after: where step b-1 ends (for failures). */
static node_status replay(rev *c, const double *steps, const double *y0, size_t a, size_t b,
                          double *tape, double t_after)
{
    const node__tableau *tab = c->tab;
    node_stats *stats = c->stats;
    size_t n = c->n, rs = n + 2;
    double *const *k = c->k;
    memcpy(tape + 2, y0, n * sizeof(double));
    for (size_t j = a; j < b; j++) {
        double *rec = tape + (j - a) * rs;
        rec[0] = steps[2 * j];
        rec[1] = steps[2 * j + 1];
        if (j + 1 == b)
            break;
        /* FSAL: the last stage of the previous step is this one's k_0, as forward. */
        int from = 0;
        if (tab->fsal && j > a) {
            memcpy(k[0], k[tab->s - 1], n * sizeof(double));
            from = 1;
        }
        int cb = node__rk_stages(c->kern, tab, &c->ode, rec[0], rec[1], rec + 2, k, from,
                                 tab->s, c->tmp, &stats->nfe);
        double *ynew = rec + rs + 2;
        if (!cb)
            node__rk_combine(c->kern, n, rec + 2, rec[1], tab->b, tab->s, k, ynew);
        if (cb || node__nonfinite(ynew, n)) {
            stats->t_reached = t_after;
            if (!cb)
                return node__msg(stats->message, NODE_ENONFINITE,
                                 "the step at t = %g turned NaN or Inf when recomputed from "
                                 "a checkpoint (backward pass), though not in the forward "
                                 "pass", rec[0]);
            stats->callback_rc = cb;
            return node__msg(stats->message, NODE_ECALLBACK,
                             "sys->f returned %d while the step at t = %g was recomputed from "
                             "a checkpoint (backward pass)", cb, rec[0]);
        }
    }
    return NODE_OK;
}

/* The reverse pass's view of s->work for a solve of sys over nt rows by o's method:
   c set up over it (its dLd* fields and np left for the caller), *yf the nt · n rows
   a forward run may write.  The layout depends on sys->dim, sys->nparams, nt and the
   method only, so that node__backprop_reverse finds the recorder's output places
   (ostep, otheta) where node__backprop_record left them.
   work: [yf (nt·n) | ostep, otheta (nt each) | k, kbar (S·n each) | ybar, tmp, vy
          (n each) | vp (nparams) | w, dw (S each) | tsrec (nt) | kc, kf (n each)]
   yf and tsrec also keep the rows and times of a solve recorded for a later
   node_solver_backprop (opt->record), which compares them with its ys and ts. */
static node_status bp_setup(node_solver *s, const node_system *sys, size_t nt,
                            const node_options *o, node_stats *stats, rev *c, double **yf)
{
    const node__tableau *tab = node__tableau_get(o->method);
    size_t n = sys->dim, np = sys->nparams;
    size_t S = (size_t)tab->s_dense;
    if (n > SIZE_MAX / 64 / (S + 2) || np > SIZE_MAX / 64 || nt > SIZE_MAX / 64 / (n + 3))
        return NODE_ENOMEM;
    size_t need = nt * (n + 3) + 2 * S * n + 5 * n + np + 2 * S;
    node_status rc = node__grow(&s->work, &s->work_cap, need);
    if (rc)
        return rc;
    *yf = s->work;
    double *ostep = s->work + nt * n, *otheta = ostep + nt;
    double *kbuf = otheta + nt, *kbar = kbuf + S * n;
    *c = (rev){ .sys = sys, .kern = s->kern, .tab = tab, .stats = stats,
                .ostep = ostep, .otheta = otheta, .n = n, .S = S, .io = nt - 1 };
    c->ode = (node__ode){ .dim = n, .f = sys->f, .ctx = sys->ctx };
    c->ybar = kbar + S * n;
    c->tmp = c->ybar + n;
    c->vy = c->tmp + n;
    c->vp = c->vy + n;
    c->w = c->vp + np;
    c->dw = c->w + S;
    c->tsrec = c->dw + S;
    c->kc = c->tsrec + nt;
    c->kf = c->kc + n;
    for (size_t i = 0; i < S; i++) {
        c->k[i] = kbuf + i * n;
        c->kb[i] = kbar + i * n;
    }
    return NODE_OK;
}

/* The recorded forward solve from y0 (ys: its rows, NULL = the scratch rows of
   s->work), its recorder's state kept in s->bp.  rerun: backprop's own re-run (its
   failures say so); else a solve in its own right (node_odeint's messages). */
static node_status bp_forward(node_solver *s, const node_system *sys, const double *y0,
                              const double *ts, size_t nt, double *ys, const node_options *o,
                              node_stats *stats, bool rerun)
{
    rev c;
    double *yf;
    s->bp.valid = 0;
    node_status rc = bp_setup(s, sys, nt, o, stats, &c, &yf);
    if (rc)
        return rc;
    double *ostep = (double *)c.ostep, *otheta = (double *)c.otheta;
    for (size_t i = 0; i < nt; i++)
        ostep[i] = -1;
    size_t n = sys->dim;
    size_t ncp = (uint64_t)o->checkpoints > SIZE_MAX ? SIZE_MAX : (size_t)o->checkpoints;
    /* A plain record keeps the step's stages when the method needs no extra
       evaluation for them (s_dense == s: dopri5, bosh3): the reverse pass then
       evaluates no f, only one vjp per stage of every accepted step. */
    const node__tableau *tab = node__tableau_get(o->method);
    bool stages = !ncp && tab->s_dense == tab->s;
    recorder r = { s, n, 0, ostep, otheta, NODE_OK, ncp, 1, 0, stages ? (size_t)tab->s : 0 };
    node__observer obs = { .ctx = &r, .step = stages ? NULL : rec_step, .output = rec_output,
                           .dense = stages ? rec_stages : NULL };
    fwd_ctx fc = { .sys = sys };
    node__ode fwd = { .dim = n, .f = fwd_f, .ctx = &fc };
    rc = node__integrate(s, &fwd, y0, ts, nt, ys ? ys : yf, o, stats, &obs);
    if (rc) {
        if (rerun)
            return forward_failed(stats, r.status ? r.status : rc, &fc, o);
        if (r.status)
            return node__msg(stats->message, r.status, "out of memory for backprop's tape "
                             "after %lld steps", (long long)stats->naccept);
        return rc;
    }
    /* The last row may have been copied from the end of the last step rather than
       interpolated: it is the dense output at θ = 1 of that step. */
    if (nt > 1 && ostep[nt - 1] < 0 && r.nsteps > 0) {
        ostep[nt - 1] = (double)(r.nsteps - 1);
        otheta[nt - 1] = 1;
    }
    for (size_t i = 1; i < nt; i++)
        if (ostep[i] < 0)          /* the integrator broke the observer contract */
            return node__msg(stats->message, NODE_ECALLBACK,
                             "internal error: ys[%zu] of the forward %s lies in no step", i,
                             rerun ? "re-run" : "solve");
    s->bp.n = n;
    s->bp.nt = nt;
    s->bp.np = sys->nparams;
    s->bp.method = o->method;
    s->bp.nsteps = r.nsteps;
    s->bp.stride = r.stride;
    s->bp.nsaved = r.nsaved;
    s->bp.ncp = ncp;
    s->bp.stages = stages;
    s->bp.solve = !rerun;
    s->bp.rtol = o->rtol;
    s->bp.atol = o->atol;
    s->bp.step = o->step;
    s->bp.max_step = o->max_step;
    if (!rerun) {   /* what a later node_solver_backprop must be given to reuse it */
        memcpy(yf, ys, nt * n * sizeof(double));
        memcpy(c.tsrec, ts, nt * sizeof(double));
    }
    s->bp.valid = 1;
    return NODE_OK;
}

/* Whether the solve recorded last is node_solver_odeint's (opt->record) of sys over
   exactly ts with exactly the rows ys, with o's method, tolerances, steps and
   checkpoints (max_steps aside: it only bounds a solve that succeeded): then
   node_solver_backprop reverses it instead of re-running it. */
static bool bp_recorded(node_solver *s, const node_system *sys, const double *ts, size_t nt,
                        const double *ys, const node_options *o, node_stats *stats)
{
    rev c;
    double *yf;
    if (!o->record || !s->bp.valid || !s->bp.solve || s->bp.n != sys->dim || s->bp.nt != nt ||
        s->bp.np != sys->nparams || s->bp.method != o->method ||
        s->bp.ncp != (size_t)o->checkpoints || s->bp.rtol != o->rtol ||
        s->bp.atol != o->atol || s->bp.step != o->step || s->bp.max_step != o->max_step ||
        bp_setup(s, sys, nt, o, stats, &c, &yf))
        return false;
    return memcmp(ys, yf, nt * sys->dim * sizeof(double)) == 0 &&
           memcmp(ts, c.tsrec, nt * sizeof(double)) == 0;
}

/* The reverse pass over the solve bp_forward recorded last. */
static node_status bp_reverse(node_solver *s, const node_system *sys, const double *ts,
                              size_t nt, const double *dLdys, double *dLdy0, double *dLdp,
                              double *dLdts, const node_options *o, node_stats *stats)
{
    if (!s->bp.valid || s->bp.n != sys->dim || s->bp.nt != nt
        || s->bp.np != sys->nparams || s->bp.method != o->method)
        return node__msg(stats->message, NODE_EINVAL,
                         "no recorded solve of this system (dim %zu, %zu rows) to reverse",
                         sys->dim, nt);
    rev c;
    double *yf;
    node_status rc = bp_setup(s, sys, nt, o, stats, &c, &yf);
    if (rc)
        return rc;
    size_t n = c.n, np = dLdp ? sys->nparams : 0;
    c.np = np;
    c.dLdys = dLdys;
    c.dLdp = dLdp;
    c.dLdts = dLdts;
    c.stages = s->bp.stages;
    const size_t ncp = s->bp.ncp, nsteps = s->bp.nsteps, stride = s->bp.stride;

    memset(c.ybar, 0, n * sizeof(double));
    if (np)
        memset(dLdp, 0, np * sizeof(double));
    if (!ncp) {
        rc = reverse_steps(&c, s->tape, 0, nsteps, ts[nt - 1]);
    } else if (nsteps > 0) {
        /* Segment by segment, last first: steps [a, b) rebuilt from the state saved at
           a into a tape of at most `stride` records, then reversed. */
        size_t seg = stride < nsteps ? stride : nsteps;
        if (seg > SIZE_MAX / (n + 2) ||
            (rc = node__grow(&s->tape, &s->tape_cap, seg * (n + 2))) != NODE_OK)
            return node__msg(stats->message, NODE_ENOMEM,
                             "out of memory for a checkpoint segment's tape (%zu steps)", seg);
        for (size_t cp = s->bp.nsaved; cp-- > 0 && !rc;) {
            size_t a = cp * stride, b = a + stride < nsteps ? a + stride : nsteps;
            double t_after = b < nsteps ? s->steps[2 * b] : ts[nt - 1];
            rc = replay(&c, s->steps, s->ckpt + cp * n, a, b, s->tape, t_after);
            if (!rc)
                rc = reverse_steps(&c, s->tape, a, b - a, t_after);
        }
    }
    if (rc)
        return rc;
    stats->t_reached = ts[0];

    /* The outputs once at the end, O(dim + nparams + nt): vjp_p and vjp_t are summed
       into them without a check per stage. */
    axpy(n, 1.0, dLdys, c.ybar);   /* row 0 is y0 itself */
    if (node__nonfinite(c.ybar, n))
        return nonfinite_output(stats->message, "dL/dy0", c.ybar, n,
                                "the cotangent overflowed");
    memcpy(dLdy0, c.ybar, n * sizeof(double));
    if (np && node__nonfinite(dLdp, np))
        return nonfinite_output(stats->message, "dL/dθ", dLdp, np,
                                "sys->vjp wrote a non-finite vjp_p, or the sum overflowed");
    if (dLdts) {
        /* Shifting t0 shifts every step (sizes fixed): the stage times move, and
           each θ_i = (ts[i] - t_n)/h moves opposite to ts[i]. */
        double sum = 0;
        for (size_t i = 1; i < nt; i++)
            sum += dLdts[i];
        dLdts[0] = c.tbar - sum;
        if (node__nonfinite(dLdts, nt))
            return nonfinite_output(stats->message, "dL/dts", dLdts, nt,
                                    "sys->vjp wrote a non-finite vjp_t, or the sum overflowed");
    }
    return NODE_OK;
}

node_status node_solver_backprop(node_solver *s, const node_system *sys,
                                 const double *ts, size_t nt,
                                 const double *ys, const double *dLdys,
                                 double *dLdy0, double *dLdp, double *dLdts,
                                 const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_options o;
    node_status rc = node__grad_begin(s, sys, ts, nt, ys, dLdys, dLdy0, dLdp, opt, &o, stats);
    if (!rc && !bp_recorded(s, sys, ts, nt, ys, &o, stats))
        rc = bp_forward(s, sys, ys, ts, nt, NULL, &o, stats, true);
    if (!rc)
        rc = bp_reverse(s, sys, ts, nt, dLdys, dLdy0, dLdp, dLdts, &o, stats);
    stats->rows_done = 0;
    return node__stats_end(stats, rc);
}

node_status node__backprop_record(node_solver *s, const node_system *sys, const double *y0,
                                  const double *ts, size_t nt, double *ys,
                                  const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_options o;
    node_status rc = node__solve_check(s, sys, y0, ts, nt, ys, opt, &o, stats->message);
    if (rc == NODE_OK && !sys->vjp)
        rc = node__msg(stats->message, NODE_EINVAL, "sys->vjp is NULL: backprop needs it");
    if (rc == NODE_OK)
        rc = bp_forward(s, sys, y0, ts, nt, ys, &o, stats, false);
    return node__stats_end(stats, rc);
}

node_status node__backprop_reverse(node_solver *s, const node_system *sys,
                                   const double *ts, size_t nt,
                                   const double *ys, const double *dLdys,
                                   double *dLdy0, double *dLdp, double *dLdts,
                                   const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_options o;
    node_status rc = node__grad_begin(s, sys, ts, nt, ys, dLdys, dLdy0, dLdp, opt, &o, stats);
    if (!rc)
        rc = bp_reverse(s, sys, ts, nt, dLdys, dLdy0, dLdp, dLdts, &o, stats);
    stats->rows_done = 0;
    return node__stats_end(stats, rc);
}

node_status node_odeint_backprop(const node_system *sys, const double *ts, size_t nt,
                                 const double *ys, const double *dLdys,
                                 double *dLdy0, double *dLdp, double *dLdts,
                                 const node_options *opt, node_stats *stats)
{
    return node__grad_oneshot(node_solver_backprop, sys, ts, nt, ys, dLdys, dLdy0, dLdp, dLdts,
                              opt, stats);
}
