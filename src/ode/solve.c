/* solve.c — node__integrate: the integration loop of every method.  Adaptive
 * methods follow Hairer's DOPRI5/DOP853 drivers (HNW I, Sections II.4-II.6 and
 * II.10): embedded error estimate, PI control, FSAL reuse, outputs at any ts by
 * dense output.  Fixed-step methods take steps of opt->step from ts[0].
 */
#include "ode.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consecutive NaN/Inf retries (each h *= 1/4) before giving up. */
#define NODE__NONFINITE_RETRIES 40

/* Everything one solve works with; pointers into s->ode. */
typedef struct run {
    const node__tableau *tab;
    const node__ode_kernels *kern;
    const node__ode *ode;
    const node__observer *obs;
    node_stats *stats;
    size_t dim;
    const double *ts;
    size_t nt, next;       /* next output row to write */
    double *ys;
    double dir;
    /* The stage vectors in two orders: order 1 has k_0 and k_sw exchanged, so that the
       stage that becomes the next step's k_0 (FSAL, or a fixed method's dense stage
       f(t+h, ynew)) is handed on by switching orders instead of copying it. */
    int par, sw;           /* current order; sw < 0: never switched */
    double *kk[2][NODE__MAXSTAGES];
    double *y, *ynew, *tmp, *err;
    bool dense_ready;      /* dense-only stages of the current step computed */
    double h_next;         /* adaptive: |h| planned when the solve ended */
    double t_done;         /* end of the last accepted step (ts[0] before the first) */
    /* the non-zero tableau entries, gathered once per solve for both orders */
    node__lincomb rows[2][NODE__MAXSTAGES], b[2], e[2], e3[2];
    node__errpass ep[2];   /* fused error pass (default norm); ep->fn NULL: none */
    bool ynew_in_err;      /* ynew is computed by the fused error pass */
    int s_err;             /* adaptive: stages k_0..k_{s_err-1} give the error estimate */
    double inv_dim;        /* 1/dim if dim is a power of 2 (then exact), else 0 */
} run;

/* ---- failure messages ------------------------------------------------------------- */

const char *node__tstr(char buf[32], double t)
{
    snprintf(buf, 32, "%.15g", t);
    if (strtod(buf, NULL) != t)
        snprintf(buf, 32, "%.17g", t);
    return buf;
}

#define tstr node__tstr

/* f returned rc (non-zero) when called at t. */
static node_status fail_callback(run *r, int rc, double t)
{
    char b[32];
    r->stats->callback_rc = rc;
    return node__msg(r->stats->message, NODE_ECALLBACK, "f returned %d at t = %s", rc,
                     tstr(b, t));
}

/* f returned rc in node__rk_stages_planned from stage `from` on of the step (t, h), which
   added nfe_after - nfe_before evaluations: the last one failed. */
static node_status fail_stage(run *r, int rc, double t, double h, int from, int64_t nfe_before)
{
    int i = from + (int)(r->stats->nfe - nfe_before) - 1;
    return fail_callback(r, rc, t + r->tab->c[i] * h);
}

/* f(t, y) at the start of a step is NaN or Inf: no smaller step can help. */
static node_status fail_nonfinite_start(run *r, double t)
{
    char b[32];
    return node__msg(r->stats->message, NODE_ENONFINITE,
                     "f returned NaN or Inf at t = %s, the start of %s", tstr(b, t),
                     t == r->ts[0] ? "the solve (ts[0], y0)" : "a step");
}

/* An observer (exact backprop's recorder) returned rc. */
static node_status fail_observer(run *r, const char *which, int rc, double t)
{
    char b[32];
    return node__msg(r->stats->message, NODE_ECALLBACK,
                     "the solver's %s observer returned %d at t = %s", which, rc, tstr(b, t));
}

/* ---- outputs and the accepted step -------------------------------------------------- */

/* node__nonfinite_inl for an output row: four independent sums (their order is of no
   account here) let the loop vectorize. */
static bool nonfinite_row(const double *v, size_t n)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += v[i] - v[i];
        a1 += v[i + 1] - v[i + 1];
        a2 += v[i + 2] - v[i + 2];
        a3 += v[i + 3] - v[i + 3];
    }
    for (; i < n; i++)
        a0 += v[i] - v[i];
    a0 += (a1 + a2) + a3;
    return a0 != a0;
}

/* The stages of the accepted step (t, h) that only dense output uses, once a step. */
static node_status dense_stages(run *r, double t, double h)
{
    const node__tableau *tab = r->tab;
    if (r->dense_ready)
        return NODE_OK;
    if (tab->s_dense > tab->s) {
        int64_t nfe0 = r->stats->nfe;
        int rc = node__rk_stages_planned(tab, r->rows[r->par], r->ode, t, h, r->y,
                                         r->kk[r->par], tab->s, tab->s_dense, r->tmp,
                                         &r->stats->nfe);
        if (rc)
            return fail_stage(r, rc, t, h, tab->s, nfe0);
    }
    r->dense_ready = true;
    return NODE_OK;
}

node_status node__step_dense(const node__step *st, double theta, double *out)
{
    run *r = st->run_;
    node_status rc = dense_stages(r, st->t, st->h);
    if (rc != NODE_OK)
        return rc;
    double w[NODE__MAXSTAGES];
    r->tab->dense(theta, w, NULL);
    node__rk_combine(r->kern, r->dim, r->y, st->h, w, r->tab->s_dense, r->kk[r->par], out);
    return NODE_OK;
}

/* Rows of ys whose times lie in the accepted step (t, tnew], by dense output.  A row that
   comes out NaN or Inf (a dense-only stage of f was) ends the solve: NODE_OK never
   returns one. */
static node_status emit_outputs(run *r, double t, double h, double tnew)
{
    const node__tableau *tab = r->tab;
    while (r->next < r->nt && r->dir * (r->ts[r->next] - tnew) <= 0) {
        size_t i = r->next;
        double *row = r->ys + i * r->dim;
        double theta = 1;
        if (r->ts[i] == tnew) {
            memcpy(row, r->ynew, r->dim * sizeof *row);   /* finite: the step was accepted */
        } else {
            node_status st = dense_stages(r, t, h);
            if (st != NODE_OK)
                return st;
            theta = fmin(1.0, (r->ts[i] - t) / h);
            double w[NODE__MAXSTAGES];
            tab->dense(theta, w, NULL);
            node__rk_combine(r->kern, r->dim, r->y, h, w, tab->s_dense, r->kk[r->par], row);
            if (nonfinite_row(row, r->dim)) {
                char b1[32], b2[32], b3[32];
                return node__msg(r->stats->message, NODE_ENONFINITE,
                                 "dense output at ts[%zu] = %s is NaN or Inf (f returned NaN "
                                 "or Inf at a stage that only dense output uses, in the step "
                                 "from t = %s to %s)", i, tstr(b1, r->ts[i]), tstr(b2, t),
                                 tstr(b3, tnew));
            }
        }
        r->next++;
        int rc;
        if (r->obs && r->obs->output && (rc = r->obs->output(r->obs->ctx, i, theta)) != 0)
            return fail_observer(r, "output", rc, r->ts[i]);
    }
    return NODE_OK;
}

/* After an accepted step: the next step's k_0 = f(t+h, ynew) where it is known (the
   FSAL stage, or a fixed method's dense stage), and y <- ynew.  Returns whether k_0
   is valid.  The stage vectors stay where they are; switching to the other order of
   them (where k_0 and that stage are exchanged) hands the stage on without a copy. */
static bool advance(run *r)
{
    const node__tableau *tab = r->tab;
    bool have_k0 = false;
    if (r->sw >= 0 && (tab->fsal || r->dense_ready)) {
        r->par ^= 1;
        have_k0 = true;
    }
    double *swap = r->y;
    r->y = r->ynew;
    r->ynew = swap;
    r->dense_ready = false;
    return have_k0;
}

static node_status accepted(run *r, double t, double h, double tnew)
{
    r->stats->naccept++;
    r->t_done = tnew;
    int rc;
    if (r->obs && r->obs->accepted) {
        node__step st = { t, h, tnew, r->y, r->ynew, r };
        if ((rc = r->obs->accepted(r->obs->ctx, &st)) != 0)
            return fail_observer(r, "accepted-step", rc, tnew);
    }
    if (r->obs && r->obs->dense) {
        node_status st = dense_stages(r, t, h);
        if (st != NODE_OK)
            return st;
        if ((rc = r->obs->dense(r->obs->ctx, t, h, r->y, r->kk[r->par])) != 0)
            return fail_observer(r, "dense", rc, tnew);
    }
    if (r->obs && r->obs->step && (rc = r->obs->step(r->obs->ctx, t, h, r->y)) != 0)
        return fail_observer(r, "step", rc, tnew);
    return emit_outputs(r, t, h, tnew);
}

/* ---- fixed step ------------------------------------------------------------------- */

static node_status integrate_fixed(run *r, const node_options *opt)
{
    const node__tableau *tab = r->tab;
    double t0 = r->ts[0], tend = r->ts[r->nt - 1];
    double span = fabs(tend - t0), h = opt->step;
    /* Steps of h; a remainder below 1e-10 h stretches the last step instead of
       adding one a few ulps long. */
    double nfull = floor(span / h);
    double nsteps = nfull;
    if (span - nfull * h > 1e-10 * h || nfull < 1)
        nsteps = nfull + 1;
    if (nsteps > (double)opt->max_steps) {
        char b1[32], b2[32];
        return node__msg(r->stats->message, NODE_EMAXSTEPS,
                         "max_steps = %lld is fewer than the %.0f steps of %g from t = %s to "
                         "the end time %s (nothing was integrated)",
                         (long long)opt->max_steps, nsteps, h, tstr(b1, t0), tstr(b2, tend));
    }
    int64_t n = (int64_t)nsteps;
    bool have_k0 = false;
    double t = t0;
    for (int64_t j = 0; j < n; j++) {
        /* Aim at t0 + (j+1) h (no drift), but report t + hj as the step's end so that
           consecutive steps chain exactly; the last one ends on tend itself. */
        double hj = (j + 1 == n ? tend : t0 + r->dir * (double)(j + 1) * h) - t;
        double tnew = j + 1 == n ? tend : t + hj;
        r->stats->nsteps++;
        int64_t nfe0 = r->stats->nfe;
        int from = have_k0 ? 1 : 0;
        int rc = node__rk_stages_planned(tab, r->rows[r->par], r->ode, t, hj, r->y,
                                         r->kk[r->par], from, tab->s, r->tmp, &r->stats->nfe);
        if (rc)
            return fail_stage(r, rc, t, hj, from, nfe0);
        node__lincomb_apply(&r->b[r->par], r->dim, r->y, hj, r->ynew);
        if (node__nonfinite_inl(r->ynew, r->dim)) {
            char b1[32], b2[32];
            return node__msg(r->stats->message, NODE_ENONFINITE,
                             "the step from t = %s to %s gave NaN or Inf (f returned NaN or "
                             "Inf, or the state overflowed); a fixed step is not retried",
                             tstr(b1, t), tstr(b2, tnew));
        }
        node_status st = accepted(r, t, hj, tnew);
        if (st != NODE_OK)
            return st;
        have_k0 = advance(r);
        t = tnew;
    }
    return NODE_OK;
}

/* ---- adaptive ------------------------------------------------------------------------ */

/* Scaled error of the step just computed (stages in r->kk[r->par]; ynew in r->ynew, or
   computed here if r->ynew_in_err).  NaN if ynew holds a NaN or an Inf; +Inf if the
   estimate overflows from finite values (a tolerance far below what the step can meet):
   that is a rejection, not a NaN. */
static double step_error(run *r, double h, double rtol, double atol)
{
    const node__tableau *tab = r->tab;
    const node__ode *ode = r->ode;
    const int par = r->par;
    double e5, e3 = 0;
    if (r->ep[par].fn) {
        /* default norm: one fused pass */
        double acc[2] = { 0, 0 };
        r->ep[par].fn(&r->ep[par], r->dim, r->y, r->ynew, h, rtol, atol, acc);
        if (acc[0] != acc[0])
            return NAN;
        /* mean = acc / dim; a product by 1/dim where that is the same number (dim a
           power of 2: both are the exact quotient, rounded once), a shorter latency */
        double m5 = r->inv_dim > 0 ? acc[0] * r->inv_dim : acc[0] / (double)r->dim;
        e5 = sqrt(m5);
        if (!tab->e3)
            return e5;
        e3 = sqrt(r->inv_dim > 0 ? acc[1] * r->inv_dim : acc[1] / (double)r->dim);
    } else {
        if (node__nonfinite_inl(r->ynew, r->dim))
            return NAN;
        node__norm_fn norm = ode->norm ? ode->norm : node__norm_rms;
        node__lincomb_apply(&r->e[par], r->dim, NULL, h, r->err);
        e5 = norm(ode->nctx, r->dim, r->err, r->y, r->ynew, rtol, atol);
        if (!tab->e3)
            return e5;
        node__lincomb_apply(&r->e3[par], r->dim, NULL, h, r->err);
        e3 = norm(ode->nctx, r->dim, r->err, r->y, r->ynew, rtol, atol);
    }
    /* DOP853 (dop853.f): err = e5² / sqrt(e5² + 0.01 e3²), e3 the 3rd-order estimate;
       |h| e5 · e5/sqrt(...) behaves like h^8.  An overflow anywhere in it counts as an
       infinite error (Inf/Inf would be NaN, and e5²/Inf a false 0). */
    return node__err_combine(e5, e3);
}

static node_status integrate_adaptive(run *r, const node_options *opt)
{
    const node__tableau *tab = r->tab;
    const node__ode *ode = r->ode;
    char *msg = r->stats->message;
    double t = r->ts[0], tend = r->ts[r->nt - 1];
    double hmax = opt->max_step > 0 ? opt->max_step : INFINITY;
    /* The smallest step (but for a last step, which lands on tend however short it is):
       16 ulp of max(|t|, span) (DBL_EPSILON |x| is within a factor 2 of one ulp of x).
       16 ulp of |t| keeps the stage times t + c_i h apart.  16 ulp of the span: steps
       below it would need more than 2^48 of them to cross the span, far past any
       max_steps, so near t = 0 a rejected step stops there instead of shrinking towards
       the smallest subnormal (hundreds of rejections when no step meets the tolerance). */
    const double span = fabs(tend - t);
    node__control ctl;
    node__control_init(&ctl, tab);

    const int s_err = r->s_err;

    r->stats->nfe++;
    int rc = ode->f(ode->ctx, t, r->y, r->kk[r->par][0]);
    if (rc)
        return fail_callback(r, rc, t);
    if (node__nonfinite_inl(r->kk[r->par][0], r->dim))
        return fail_nonfinite_start(r, t);
    bool have_k0 = true;

    double h = opt->step;
    if (h > 0) {
        h = fmin(fmin(h, hmax), span);
    } else {
        double tcb = t;
        h = node__initial_step(tab, ode, t, r->y, r->kk[r->par][0], r->dir,
                               fmin(hmax, span), opt->rtol, opt->atol, r->tmp,
                               r->kk[r->par][1], &r->stats->nfe, &rc, &tcb);
        if (rc)
            return fail_callback(r, rc, tcb);
    }
    /* A first step below the smallest one is raised to it: the controller may grow it. */
    h = r->dir * fmax(h, fmin(16 * DBL_EPSILON * fmax(fabs(t), span), span));

    int64_t attempts = 0;
    int nonfinite = 0;        /* consecutive NaN/Inf rejections */
    for (;;) {
        if (attempts >= opt->max_steps) {
            char b1[32], b2[32];
            return node__msg(msg, NODE_EMAXSTEPS,
                             "max_steps = %lld reached at t = %s, before the end time %s",
                             (long long)opt->max_steps, tstr(b1, t), tstr(b2, tend));
        }
        if (fabs(h) > hmax)
            h = r->dir * hmax;
        double h_plan = h;
        /* Stretch a step that would leave less than 1% of itself to reach tend. */
        bool last = false;
        if (r->dir * (t + 1.01 * h - tend) >= 0) {
            h = tend - t;
            last = true;
        }
        double at = fabs(t), hmin = 16 * DBL_EPSILON * (at > span ? at : span);
        if ((!last && fabs(h) < hmin) || h == 0) {
            char b1[32];
            if (nonfinite > 0)
                return node__msg(msg, NODE_ENONFINITE,
                                 "f returned NaN or Inf near t = %s and %d smaller steps "
                                 "(down to %.3g, the smallest step here) did not avoid it",
                                 tstr(b1, t), nonfinite, hmin);
            return node__msg(msg, NODE_ESTEPSIZE,
                             "step size %.3g at t = %s is below %.3g, what floating point "
                             "resolves here (rtol = %g, atol = %g)", fabs(h), tstr(b1, t),
                             hmin, opt->rtol, opt->atol);
        }

        attempts++;
        r->stats->nsteps++;
        double *const *k = r->kk[r->par];
        const node__lincomb *rows = r->rows[r->par];
        if (!have_k0) {
            r->stats->nfe++;
            if ((rc = ode->f(ode->ctx, t, r->y, k[0])) != 0)
                return fail_callback(r, rc, t);
            if (node__nonfinite_inl(k[0], r->dim))
                return fail_nonfinite_start(r, t);
            have_k0 = true;
        }
        int64_t nfe0 = r->stats->nfe;
        rc = node__rk_stages_planned(tab, rows, ode, t, h, r->y, k, 1, s_err, r->tmp,
                                     &r->stats->nfe);
        if (rc)
            return fail_stage(r, rc, t, h, 1, nfe0);
        if (s_err == tab->s && tab->fsal) {
            /* The FSAL stage's argument is ynew, bit for bit. */
            double *swap = r->ynew; r->ynew = r->tmp; r->tmp = swap;
        } else if (!r->ynew_in_err) {
            node__lincomb_apply(&r->b[r->par], r->dim, r->y, h, r->ynew);
        }

        double err = step_error(r, h, opt->rtol, opt->atol);
        if (err <= 1 && s_err < tab->s) {
            nfe0 = r->stats->nfe;
            rc = node__rk_stages_planned(tab, rows, ode, t, h, r->y, k, s_err, tab->s,
                                         r->tmp, &r->stats->nfe);
            if (rc)
                return fail_stage(r, rc, t, h, s_err, nfe0);
            if (node__nonfinite_inl(k[tab->s - 1], r->dim))
                err = NAN;
        }
        if (err != err) {
            /* NaN/Inf in the state or a stage: a smaller step may avoid the region
               where f breaks down. */
            r->stats->nreject++;
            if (++nonfinite > NODE__NONFINITE_RETRIES) {
                char b1[32];
                return node__msg(msg, NODE_ENONFINITE,
                                 "f returned NaN or Inf near t = %s and %d smaller steps did "
                                 "not avoid it", tstr(b1, t), NODE__NONFINITE_RETRIES);
            }
            ctl.rejected = true;
            h *= 0.25;
            continue;
        }
        if (err > 1) {   /* +Inf included: the estimate overflowed */
            r->stats->nreject++;
            nonfinite = 0;
            h = node__control_reject(&ctl, h, err);
            continue;
        }

        nonfinite = 0;
        double tnew = last ? tend : t + h;
        node_status st = accepted(r, t, h, tnew);
        if (st != NODE_OK)
            return st;
        have_k0 = advance(r);
        t = tnew;
        if (last) {
            r->h_next = fabs(h_plan);
            return NODE_OK;
        }
        h = node__control_accept(&ctl, h, err);
    }
}

/* ---- entry ------------------------------------------------------------------------- */

node_status node__integrate(node_solver *s, const node__ode *ode, const double *y0,
                            const double *ts, size_t nt, double *ys,
                            const node_options *opt, node_stats *stats,
                            const node__observer *obs)
{
    const node__tableau *tab = s->tableau && s->tableau->method == opt->method
                                   ? s->tableau : node__tableau_get(opt->method);
    if (!tab)
        return node__msg(stats->message, NODE_EINVAL, "opt->method = %d is not a method",
                         (int)opt->method);
    size_t dim = ode->dim;
    memmove(ys, y0, dim * sizeof *ys);
    stats->t_reached = ts[0];
    stats->rows_done = 1;
    if (nt == 1)
        return NODE_OK;

    /* Workspace: s_dense stages, y, ynew, tmp, err. */
    size_t nvec = (size_t)tab->s_dense + 4;
    if (dim > SIZE_MAX / nvec || node__grow(&s->ode, &s->ode_cap, nvec * dim) != NODE_OK)
        return node__msg(stats->message, NODE_ENOMEM,
                         "no memory for the solver's workspace (%zu vectors of %zu doubles)",
                         nvec, dim);

    /* No memset of r (some 11 KB): every field is set below; lincombs and error passes
       are planned for the rows in use only. */
    run r;
    r.tab = tab;
    r.kern = s->kern;
    r.ode = ode;
    r.obs = obs;
    r.stats = stats;
    r.dim = dim;
    r.ts = ts;
    r.nt = nt;
    r.next = 1;
    r.ys = ys;
    r.dir = ts[nt - 1] > ts[0] ? 1.0 : -1.0;
    r.par = 0;
    r.dense_ready = false;
    r.h_next = 0;
    r.t_done = ts[0];
    r.inv_dim = (dim & (dim - 1)) == 0 ? 1.0 / (double)dim : 0;
    for (int i = 0; i < tab->s_dense; i++)
        r.kk[0][i] = r.kk[1][i] = s->ode + (size_t)i * dim;
    /* The stage handed on to the next step as k_0: the FSAL stage, or a fixed method's
       dense stage s (A row = b, c = 1: f(t+h, ynew)) when dense output computed it. */
    r.sw = tab->fsal ? tab->s - 1 : tab->s_dense > tab->s ? tab->s : -1;
    if (r.sw <= 0) {
        r.sw = -1;
    } else {
        r.kk[1][0] = r.kk[0][r.sw];
        r.kk[1][r.sw] = r.kk[0][0];
    }
    double *base = s->ode + (size_t)tab->s_dense * dim;
    r.y = base;
    r.ynew = base + dim;
    r.tmp = base + 2 * dim;
    r.err = base + 3 * dim;
    /* Stages needed for the error estimate (node__err_stages); ynew is the FSAL stage's
       argument where that stage is part of the estimate, else it comes from b (in the
       fused error pass where the shape has a kernel). */
    r.s_err = tab->e ? node__err_stages(tab) : tab->s;
    for (int p = 0; p < (r.sw < 0 ? 1 : 2); p++) {
        for (int i = 0; i < tab->s_dense; i++)
            node__lincomb_make(&r.rows[p][i], s->kern, tab->A + (size_t)i * tab->s_dense, i,
                               r.kk[p]);
        node__lincomb_make(&r.b[p], s->kern, tab->b, tab->s, r.kk[p]);
        if (tab->e)
            node__lincomb_make(&r.e[p], s->kern, tab->e, tab->s, r.kk[p]);
        if (tab->e3)
            node__lincomb_make(&r.e3[p], s->kern, tab->e3, tab->s, r.kk[p]);
        r.ep[p].fn = NULL;
        if (tab->e && !ode->norm)
            node__errpass_make(&r.ep[p], s->kern, dim, tab, r.kk[p]);
    }
    r.ynew_in_err = r.ep[0].fn != NULL && r.ep[0].bee;
    memcpy(r.y, ys, dim * sizeof *r.y);

    s->h_next = 0;
    node_status st = tab->err_order > 0 ? integrate_adaptive(&r, opt) : integrate_fixed(&r, opt);
    s->h_next = r.h_next;
    stats->t_reached = r.t_done;
    stats->rows_done = (int64_t)r.next;
    return st;
}
