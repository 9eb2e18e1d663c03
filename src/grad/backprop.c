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
 * Tape: one record [t, h, y(dim)] per accepted step, grown geometrically.
 * Outputs: for row i of ys, the step it lies in and its θ (two nt-arrays). */

typedef struct recorder {
    node_solver *s;
    size_t dim, nsteps;
    double *ostep, *otheta;   /* [nt] each, in s->work */
    node_status status;       /* ENOMEM from a failed tape growth */
} recorder;

static int rec_step(void *ctx, double t, double h, const double *y)
{
    recorder *r = ctx;
    size_t rs = r->dim + 2, need = (r->nsteps + 1) * rs;
    if (need > r->s->tape_cap) {
        /* Double the tape (at least 64 records): amortised O(1) per step. */
        size_t want = r->s->tape_cap < SIZE_MAX / 2 ? 2 * r->s->tape_cap : need;
        if (want < need)
            want = need;
        if (want < 64 * rs)
            want = 64 * rs;
        if (node__grow(&r->s->tape, &r->s->tape_cap, want)) {
            r->status = NODE_ENOMEM;
            return 1;
        }
    }
    double *rec = r->s->tape + r->nsteps * rs;
    rec[0] = t;
    rec[1] = h;
    memcpy(rec + 2, y, r->dim * sizeof(double));
    r->nsteps++;
    return 0;
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
    if (rc)
        return node__stats_end(stats, rc);
    const node__tableau *tab = node__tableau_get(o.method);
    size_t n = sys->dim, np = dLdp ? sys->nparams : 0;
    size_t S = (size_t)tab->s_dense;

    /* work: [ys (nt·n) | ostep, otheta (nt each) | k, kbar (S·n each) |
              ybar, tmp, vy (n each) | vp (np) | w, dw (S each)] */
    if (n > SIZE_MAX / 64 / (S + 2) || np > SIZE_MAX / 64 || nt > SIZE_MAX / 64 / (n + 2))
        return node__stats_end(stats, NODE_ENOMEM);
    size_t need = nt * (n + 2) + 2 * S * n + 3 * n + np + 2 * S;
    if ((rc = node__grow(&s->work, &s->work_cap, need)))
        return node__stats_end(stats, rc);
    double *yf = s->work, *ostep = yf + nt * n, *otheta = ostep + nt;
    double *kbuf = otheta + nt, *kbar = kbuf + S * n;
    double *ybar = kbar + S * n, *tmp = ybar + n, *vy = tmp + n, *vp = vy + n;
    double *w = vp + np, *dw = w + S;
    for (size_t i = 0; i < nt; i++)
        ostep[i] = -1;

    /* Forward, recorded. */
    recorder r = { s, n, 0, ostep, otheta, NODE_OK };
    node__observer obs = { .ctx = &r, .step = rec_step, .output = rec_output };
    fwd_ctx fc = { .sys = sys };
    node__ode fwd = { .dim = n, .f = fwd_f, .ctx = &fc };
    rc = node__integrate(s, &fwd, ys, ts, nt, yf, &o, stats, &obs);
    if (rc) {
        rc = forward_failed(stats, r.status ? r.status : rc, &fc, &o);
        goto out;
    }
    /* The last row may have been copied from the end of the last step rather than
       interpolated: it is the dense output at θ = 1 of that step. */
    if (nt > 1 && ostep[nt - 1] < 0 && r.nsteps > 0) {
        ostep[nt - 1] = (double)(r.nsteps - 1);
        otheta[nt - 1] = 1;
    }
    for (size_t i = 1; i < nt; i++)
        if (ostep[i] < 0) {        /* the integrator broke the observer contract */
            rc = node__msg(stats->message, NODE_ECALLBACK,
                           "internal error: ys[%zu] of the forward re-run lies in no step", i);
            goto out;
        }
    /* The reverse pass calls sys->f directly: node__rk_stages returns its value. */
    node__ode ode = { .dim = n, .f = sys->f, .ctx = sys->ctx };

    double *k[NODE__MAXSTAGES], *kb[NODE__MAXSTAGES];
    for (size_t i = 0; i < S; i++) {
        k[i] = kbuf + i * n;
        kb[i] = kbar + i * n;
    }
    memset(ybar, 0, n * sizeof(double));
    if (np)
        memset(dLdp, 0, np * sizeof(double));
    double tbar = 0;   /* ∂L/∂t0 through the stage times t_n + c_i h */
    size_t io = nt - 1, rs = n + 2;

    for (size_t step = r.nsteps; step-- > 0;) {
        const double *rec = s->tape + step * rs, *y = rec + 2;
        double t = rec[0], h = rec[1];
        /* where this step ends: how far the backward pass has got */
        double t_end = step + 1 < r.nsteps ? rec[rs] : ts[nt - 1];
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

        /* Outputs in this step: y_out = y_n + h Σ w_i(θ) k_i. */
        size_t o_hi = io;
        bool any_out = false;
        while (io >= 1 && ostep[io] == (double)step) {
            any_out = true;
            tab->dense(otheta[io], w, dw);
            const double *g = dLdys + io * n;
            axpy(n, 1.0, g, ybar);
            for (size_t i = 0; i < S; i++)
                if (w[i] != 0) {
                    axpy(n, h * w[i], g, kb[i]);
                    need[i] = true;
                    if ((int)i > last)
                        last = (int)i;
                }
            io--;
        }
        int nst = any_out ? (int)S : last + 1;
        if (nst < 1)
            nst = 1;
        int cb = node__rk_stages(s->kern, tab, &ode, t, h, y, k, 0, nst, tmp, &stats->nfe);
        if (cb) {
            stats->callback_rc = cb;
            stats->t_reached = t_end;
            rc = node__msg(stats->message, NODE_ECALLBACK,
                           "sys->f returned %d while the step at t = %g was recomputed "
                           "(backward pass)", cb, t);
            goto out;
        }
        /* Once per step, O(stages × dim): the forward pass accepted these stages, but f
           may answer differently now. */
        if (node__nonfinite(kbuf, (size_t)nst * n)) {
            stats->t_reached = t_end;
            rc = node__msg(stats->message, NODE_ENONFINITE,
                           "sys->f gave a NaN or Inf while the step at t = %g was recomputed "
                           "(backward pass), though not in the forward pass", t);
            goto out;
        }
        if (dLdts)   /* ∂y_out/∂ts[i] = Σ dw_i(θ) k_i */
            for (size_t i = o_hi; i > io; i--) {
                tab->dense(otheta[i], w, dw);
                const double *g = dLdys + i * n;
                double sum = 0;
                for (size_t j = 0; j < S; j++) {
                    if (dw[j] == 0)
                        continue;
                    double d = 0;
                    for (size_t l = 0; l < n; l++)
                        d += g[l] * k[j][l];
                    sum += dw[j] * d;
                }
                dLdts[i] = sum;
            }

        /* Stages, last to first: k_i = f(t + c_i h, Y_i), Y_i = y_n + h Σ_j A_ij k_j. */
        for (int i = nst - 1; i >= 0; i--) {
            if (!need[i])
                continue;
            const double *Ai = tab->A + (size_t)i * S;
            node__rk_combine(s->kern, n, y, h, Ai, i, k, tmp);
            double vt = 0, ti = t + tab->c[i] * h;
            stats->nfe++;
            cb = sys->vjp(sys->ctx, ti, tmp, kb[i], NULL, vy, np ? vp : NULL,
                          dLdts ? &vt : NULL);
            if (cb) {
                stats->callback_rc = cb;
                stats->t_reached = t_end;
                rc = node__msg(stats->message, NODE_ECALLBACK,
                               "sys->vjp returned %d at t = %g (backward pass)", cb, ti);
                goto out;
            }
            tbar += vt;
            if (np)
                axpy(np, 1.0, vp, dLdp);
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
            rc = node__msg(stats->message, NODE_ENONFINITE,
                           "dL/dy turned NaN or Inf in the step at t = %g (backward pass): "
                           "sys->vjp wrote a non-finite vjp_y, or the cotangent overflowed", t);
            goto out;
        }
    }
    stats->t_reached = ts[0];

    /* The outputs once at the end, O(dim + nparams + nt): vjp_p and vjp_t are summed
       into them without a check per stage. */
    axpy(n, 1.0, dLdys, ybar);   /* row 0 is y0 itself */
    if (node__nonfinite(ybar, n)) {
        rc = nonfinite_output(stats->message, "dL/dy0", ybar, n, "the cotangent overflowed");
        goto out;
    }
    memcpy(dLdy0, ybar, n * sizeof(double));
    if (np && node__nonfinite(dLdp, np)) {
        rc = nonfinite_output(stats->message, "dL/dθ", dLdp, np,
                              "sys->vjp wrote a non-finite vjp_p, or the sum overflowed");
        goto out;
    }
    if (dLdts) {
        /* Shifting t0 shifts every step (sizes fixed): the stage times move, and
           each θ_i = (ts[i] - t_n)/h moves opposite to ts[i]. */
        double sum = 0;
        for (size_t i = 1; i < nt; i++)
            sum += dLdts[i];
        dLdts[0] = tbar - sum;
        if (node__nonfinite(dLdts, nt)) {
            rc = nonfinite_output(stats->message, "dL/dts", dLdts, nt,
                                  "sys->vjp wrote a non-finite vjp_t, or the sum overflowed");
            goto out;
        }
    }
out:
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
