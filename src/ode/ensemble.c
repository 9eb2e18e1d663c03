/* ensemble.c — ensembles (ensemble.h): n samples of one system, each with its own
 * steps, error control and status, stepped in lock-step groups so that every stage is
 * one batched call of the dynamics over the group's live samples.  Each sample follows
 * node__integrate's rules exactly (solve.c: the same controller and first step from
 * control.c, the same error norm, dense output and failure messages), with the
 * combinations written over all rows at once (per-row step sizes) in the very
 * arithmetic of kernels.c, so that its results are node_odeint's bit for bit.
 */
#include "ens.h"

#include <float.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#  include <omp.h>
#endif

#define tstr node__tstr
#define NODE__ENS_NONFINITE_RETRIES 40   /* as solve.c */

node_status node__ens_grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return NODE_OK;
    size_t want = n < SIZE_MAX / 2 ? (n > 2 * *cap ? n : 2 * *cap) : n;
    if (want > SIZE_MAX / sz)
        return NODE_ENOMEM;
    void *q = node__realloc(*p, want * sz);
    if (!q)
        return NODE_ENOMEM;
    *p = q;
    *cap = want;
    return NODE_OK;
}

/* ---- the combinations of kernels.c, over rows with their own step sizes ------------ */

/* The non-zero weights of w[0..n-1] and their stage arrays. */
typedef struct comb { int m; double w[NODE__MAXSTAGES]; const double *p[NODE__MAXSTAGES]; } comb;

static void comb_make(comb *c, const double *w, int n, double *const *k)
{
    c->m = 0;
    for (int i = 0; i < n; i++)
        if (w[i] != 0) {
            c->w[c->m] = w[i];
            c->p[c->m++] = k[i];
        }
}

#if defined(__GNUC__)
#  define NODE__ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#  define NODE__ALWAYS_INLINE static inline
#endif

/* out[i] = y[i] + hx[i] Σ_q w_q p_q[off + i] for i < nel (hx NULL: the scalar h), the
   sum formed left to right and added once, as kernels.c's comb_terms; specialised for
   the number of terms so that the loop vectorizes. */
NODE__ALWAYS_INLINE void comb_m(int m, const comb *restrict c, size_t off, size_t nel,
                                const double *y, const double *hx, double h, double *out)
{
    const double *w = c->w;
    const double *const *p = c->p;
    if (hx) {
        for (size_t i = 0; i < nel; i++) {
            double acc = w[0] * p[0][off + i];
            for (int q = 1; q < m; q++)
                acc = acc + w[q] * p[q][off + i];
            out[i] = y[i] + hx[i] * acc;
        }
    } else {
        for (size_t i = 0; i < nel; i++) {
            double acc = w[0] * p[0][off + i];
            for (int q = 1; q < m; q++)
                acc = acc + w[q] * p[q][off + i];
            out[i] = y[i] + h * acc;
        }
    }
}

static void comb_apply(const comb *c, size_t off, size_t nel, const double *y, const double *hx,
                       double h, double *out)
{
    switch (c->m) {
    case 0:
        if (out != y)
            memmove(out, y, nel * sizeof *out);
        return;
    case 1: comb_m(1, c, off, nel, y, hx, h, out); return;
    case 2: comb_m(2, c, off, nel, y, hx, h, out); return;
    case 3: comb_m(3, c, off, nel, y, hx, h, out); return;
    case 4: comb_m(4, c, off, nel, y, hx, h, out); return;
    case 5: comb_m(5, c, off, nel, y, hx, h, out); return;
    case 6: comb_m(6, c, off, nel, y, hx, h, out); return;
    default: comb_m(c->m, c, off, nel, y, hx, h, out); return;
    }
}

/* The scaled errors of every element of the nel = rows × dim (kernels.c's err_elem):
   r[i] = h se / sk + (yn - yn) and r3[i] = h s3 / sk, se and s3 over the stages where e
   is non-zero (e3 over the same), sk = atol + rtol max(|y|, |ynew|). */
NODE__ALWAYS_INLINE void err_m(int m, bool e3, const comb *restrict ce, const double *we3,
                               size_t nel, const double *y, const double *ynew,
                               const double *hx, double rtol, double atol, double *r,
                               double *r3)
{
    for (size_t i = 0; i < nel; i++) {
        double v = ce->p[0][i];
        double se = ce->w[0] * v, s3 = we3[0] * v;
        for (int q = 1; q < m; q++) {
            v = ce->p[q][i];
            se = se + ce->w[q] * v;
            if (e3)
                s3 = s3 + we3[q] * v;
        }
        double yn = ynew[i];
        double a = fabs(y[i]), b = fabs(yn);
        double sk = atol + rtol * (a > b ? a : b);
        r[i] = hx[i] * se / sk + (yn - yn);
        if (e3)
            r3[i] = hx[i] * s3 / sk;
    }
}

static void err_all(const comb *ce, const double *we3, bool e3, size_t nel, const double *y,
                    const double *ynew, const double *hx, double rtol, double atol, double *r,
                    double *r3)
{
    if (!e3 && ce->m == 4)
        err_m(4, false, ce, we3, nel, y, ynew, hx, rtol, atol, r, r3);
    else if (!e3 && ce->m == 6)
        err_m(6, false, ce, we3, nel, y, ynew, hx, rtol, atol, r, r3);
    else if (e3 && ce->m == 8)
        err_m(8, true, ce, we3, nel, y, ynew, hx, rtol, atol, r, r3);
    else if (e3)
        err_m(ce->m, true, ce, we3, nel, y, ynew, hx, rtol, atol, r, r3);
    else
        err_m(ce->m, false, ce, we3, nel, y, ynew, hx, rtol, atol, r, r3);
}

/* The RMS of r[0 .. n-1] (squares summed in element order, the mean as step_error
   forms it); NaN if any entry is. */
static double rms(const double *r, size_t n)
{
    double a = 0;
    for (size_t d = 0; d < n; d++)
        a += r[d] * r[d];
    double inv = (n & (n - 1)) == 0 ? 1.0 / (double)n : 0;
    return sqrt(inv > 0 ? a * inv : a / (double)n);
}

/* The error of one row from its scaled errors: the largest RMS over nb equal blocks
   (nb = 1: the contract's norm), then DOP853's combination. */
static double row_error(const node__tableau *tab, size_t dim, size_t nb, const double *r,
                        const double *r3)
{
    size_t bd = dim / nb;
    double e5 = 0, e3 = 0, bad = 0;
    for (size_t b = 0; b < nb; b++) {
        double v = rms(r + b * bd, bd);
        bad += v;
        e5 = b ? fmax(e5, v) : v;
    }
    if (bad != bad)
        return NAN;
    if (!tab->e3)
        return e5;
    for (size_t b = 0; b < nb; b++) {
        double v = rms(r3 + b * bd, bd);
        e3 = b ? fmax(e3, v) : v;
    }
    return node__err_combine(e5, e3);
}

static bool nonfinite(const double *v, size_t n)
{
    return node__nonfinite_inl(v, n);
}

/* ---- evaluation ---------------------------------------------------------------------- */

/* (eval, below, once the group is defined) */

/* ---- one group ----------------------------------------------------------------------- */

typedef struct grp {
    const node__ens_run *run;
    const node__tableau *tab;
    const node_options *opt;
    node__ens_ws *w;
    size_t worker, dim, nl;          /* live slots 0 .. nl-1 */
    int S;                           /* s_dense */
    double *k[NODE__MAXSTAGES];      /* stage rows, G × dim each (compact slot order) */
    double *y, *ynew, *arg, *hx, *gin, *gout, *tb;
    bool adaptive;
    int s_err;
    size_t nblocks;
    node__ens_slot *fin; size_t nfin;
    int64_t nall;                    /* evaluations of all the live rows so far */
    double *tv, *hv;                 /* the live rows' t and h (stages_all) */
} grp;

/* Evaluate f on nr rows (t[r], y[r]) into out, in calls of at most sys->max_rows rows.
   ids NULL: the rows are the group's live slots 0 .. nl-1 (counted once for all in
   g->nall); else row r is slot ids[r]'s (counted in its own nfe).  If a call fails, its
   rows are evaluated one at a time and rc[r] holds each row's value (0 for a row that
   succeeded); returns whether any row failed (rc[0 .. nr-1] all written then). */
static bool eval(grp *g, const size_t *ids, size_t nr, const double *t, const double *y,
                 double *out, int *rc)
{
    const node_ensemble_system *sys = g->run->sys;
    node__ens_slot *sl = g->w->slot;
    size_t dim = sys->dim, mr = sys->max_rows ? sys->max_rows : nr;
    bool bad = false;
    if (ids)
        for (size_t r = 0; r < nr; r++)
            sl[ids[r]].nfe++;
    else
        g->nall++;
    for (size_t r0 = 0; r0 < nr; r0 += mr) {
        size_t m = nr - r0 < mr ? nr - r0 : mr;
        int c = sys->f(sys->ctx, g->worker, m, t + r0, y + r0 * dim, out + r0 * dim);
        if (c == 0)
            continue;
        if (!bad)
            memset(rc, 0, nr * sizeof *rc);
        bad = true;
        for (size_t q = r0; q < r0 + m; q++) {
            sl[ids ? ids[q] : q].nfe++;
            rc[q] = sys->f(sys->ctx, g->worker, 1, t + q, y + q * dim, out + q * dim);
        }
    }
    return bad;
}

static node_status fail(node__ens_slot *s, node_status st)
{
    s->done = true;
    s->st->status = st;
    return st;
}

static void fail_callback(node__ens_slot *s, int rc, double t)
{
    char b[32];
    s->st->callback_rc = rc;
    if (s->backward)
        fail(s, node__msg(s->st->message, NODE_ECALLBACK,
                          "sys->vjp returned %d at t = %s (backward pass)", rc, tstr(b, t)));
    else
        fail(s, node__msg(s->st->message, NODE_ECALLBACK, "f returned %d at t = %s", rc,
                          tstr(b, t)));
}

static void fail_nonfinite_start(node__ens_slot *s, double t)
{
    char b[32];
    fail(s, node__msg(s->st->message, NODE_ENONFINITE,
                      "f returned NaN or Inf at t = %s, the start of %s", tstr(b, t),
                      t == s->ts[0] ? "the solve (ts[0], y0)" : "a step"));
}

/* Remove the finished slots, keeping the order: rows of y and k[0] (all that lives
   across rounds) move with their slots.  Finished successful slots of a recording run
   go to g->fin. */
static void compact(grp *g)
{
    size_t dim = g->dim, o = 0;
    node__ens_slot *sl = g->w->slot;
    for (size_t r = 0; r < g->nl; r++) {
        if (sl[r].done) {
            const node__ens_run *run = g->run;
            sl[r].st->nfe += sl[r].nfe + g->nall;   /* every slot was live from the start */
            sl[r].nfe = 0;
            if (run->attempts)
                run->attempts[sl[r].id] = sl[r].attempts;
            if (run->h_next && sl[r].st->status == NODE_OK)
                run->h_next[sl[r].id] = fabs(sl[r].h_plan);
            if (g->run->record && sl[r].st->status == NODE_OK)
                g->fin[g->nfin++] = sl[r];
            continue;
        }
        if (o != r) {
            sl[o] = sl[r];
            memcpy(g->y + o * dim, g->y + r * dim, dim * sizeof(double));
            memcpy(g->k[0] + o * dim, g->k[0] + r * dim, dim * sizeof(double));
        }
        o++;
    }
    g->nl = o;
}

/* Stages from..to-1 for the rows listed in ids (gathered through gin / gout), each from
   its slot's (t, h, y); a row whose f fails stops its sample. */
static void stages_subset(grp *g, const size_t *ids, size_t m, int from, int to)
{
    const node__tableau *tab = g->tab;
    size_t dim = g->dim;
    node__ens_slot *sl = g->w->slot;
    for (int i = from; i < to && m > 0; i++) {
        comb c;
        comb_make(&c, tab->A + (size_t)i * tab->s_dense, i, g->k);
        for (size_t q = 0; q < m; q++) {
            size_t r = ids[q];
            comb_apply(&c, r * dim, dim, g->y + r * dim, NULL, sl[r].h, g->gin + q * dim);
            g->tb[q] = sl[r].t + tab->c[i] * sl[r].h;
        }
        bool bad = eval(g, ids, m, g->tb, g->gin, g->gout, g->w->rc);
        for (size_t q = 0; q < m; q++) {
            size_t r = ids[q];
            if (bad && g->w->rc[q] != 0 && !sl[r].done)
                fail_callback(&sl[r], g->w->rc[q], g->tb[q]);
            memcpy(g->k[i] + r * dim, g->gout + q * dim, dim * sizeof(double));
        }
    }
}

/* Stages from..to-1 of every live row (one batched call a stage, no gathering). */
static void stages_all(grp *g, int from, int to)
{
    const node__tableau *tab = g->tab;
    size_t dim = g->dim, nl = g->nl, nel = nl * dim;
    node__ens_slot *sl = g->w->slot;
    for (size_t r = 0; r < nl; r++) {
        g->tv[r] = sl[r].t;
        g->hv[r] = sl[r].h;
        for (size_t d = 0; d < dim; d++)
            g->hx[r * dim + d] = sl[r].h;
    }
    for (int i = from; i < to; i++) {
        comb c;
        comb_make(&c, tab->A + (size_t)i * tab->s_dense, i, g->k);
        comb_apply(&c, 0, nel, g->y, g->hx, 0, g->arg);
        double ci = tab->c[i];
        for (size_t r = 0; r < nl; r++)
            g->tb[r] = g->tv[r] + ci * g->hv[r];
        if (eval(g, NULL, nl, g->tb, g->arg, g->k[i], g->w->rc))
            for (size_t r = 0; r < nl; r++)
                if (g->w->rc[r] != 0 && !sl[r].done)
                    fail_callback(&sl[r], g->w->rc[r], g->tb[r]);
        if (i + 1 < to || !(tab->fsal && to == tab->s && g->adaptive))
            continue;
        /* The FSAL stage's argument is ynew, bit for bit. */
        double *swap = g->ynew; g->ynew = g->arg; g->arg = swap;
    }
}

/* Append the accepted step of slot r to the tape: [prev, t, h, tnew, dense, y, k_0 ..
   k_{S-1}]. */
static node_status record(grp *g, size_t r)
{
    node__ens_ws *w = g->w;
    node__ens_slot *s = &w->slot[r];
    size_t dim = g->dim, len = 5 + (size_t)(g->S + 1) * dim;
    if (node__ens_grow((void **)&w->tape, &w->tape_cap, w->tape_len + len, sizeof(double)))
        return NODE_ENOMEM;
    double *p = w->tape + w->tape_len;
    p[0] = (double)s->tape_last;
    p[1] = s->t;
    p[2] = s->h;
    p[3] = s->tnew;
    p[4] = s->dense;
    memcpy(p + 5, g->y + r * dim, dim * sizeof(double));
    int nk = s->dense ? g->S : g->tab->s;
    for (int i = 0; i < nk; i++)
        memcpy(p + 5 + (size_t)(i + 1) * dim, g->k[i] + r * dim, dim * sizeof(double));
    s->tape_last = (int64_t)w->tape_len;
    s->nrec++;
    w->tape_len += len;
    return NODE_OK;
}

/* Rows of the sample's ys in its accepted step (t, tnew], by dense output. */
static void emit(grp *g, size_t r)
{
    const node__tableau *tab = g->tab;
    node__ens_slot *s = &g->w->slot[r];
    size_t dim = g->dim, nt = g->run->nt;
    while (s->next < nt && s->dir * (s->ts[s->next] - s->tnew) <= 0) {
        size_t i = s->next;
        if (s->ys) {
            double *row = s->ys + i * dim;
            if (s->ts[i] == s->tnew) {
                memcpy(row, g->ynew + r * dim, dim * sizeof *row);
            } else {
                double theta = fmin(1.0, (s->ts[i] - s->t) / s->h), wt[NODE__MAXSTAGES];
                tab->dense(theta, wt, NULL);
                comb c;
                comb_make(&c, wt, tab->s_dense, g->k);
                comb_apply(&c, r * dim, dim, g->y + r * dim, NULL, s->h, row);
                if (nonfinite(row, dim)) {
                    char b1[32], b2[32], b3[32];
                    fail(s, node__msg(s->st->message, NODE_ENONFINITE,
                                      "dense output at ts[%zu] = %s is NaN or Inf (f returned "
                                      "NaN or Inf at a stage that only dense output uses, in "
                                      "the step from t = %s to %s)", i, tstr(b1, s->ts[i]),
                                      tstr(b2, s->t), tstr(b3, s->tnew)));
                    return;
                }
            }
        }
        s->next++;
        s->st->rows_done = (int64_t)s->next;
    }
}

/* Does the accepted step of s have an output strictly inside it? */
static bool wants_dense(const node__ens_slot *s, size_t nt)
{
    /* ts is strictly monotone: an output at tnew is the step's only one */
    return s->next < nt && s->dir * (s->ts[s->next] - s->tnew) < 0;
}

/* Set up the slots of the m samples j0 + q stride and their first k_0 and step. */
static void start(grp *g, size_t j0, size_t m0, size_t stride)
{
    const node__ens_run *run = g->run;
    const node_options *opt = g->opt;
    size_t dim = g->dim, nt = run->nt;
    node__ens_slot *sl = g->w->slot;
    g->nl = 0;
    for (size_t q0 = 0; q0 < m0; q0++) {
        size_t j = j0 + q0 * stride;
        if (run->skip && run->skip[j])
            continue;
        node__ens_slot *s = &sl[g->nl];
        memset(s, 0, sizeof *s);
        if (run->attempts)
            s->attempts = run->attempts[j];
        s->id = j;
        s->ts = run->ts + (run->ts_stride ? j * run->ts_stride : 0);
        s->ys = run->ys ? run->ys + j * nt * dim : NULL;
        s->st = &run->stats[j * (run->stats_stride ? run->stats_stride : 1)];
        s->tape_last = -1;
        s->backward = run->nblocks == 2;
        s->t = s->ts[0];
        s->dir = nt > 1 && s->ts[nt - 1] < s->ts[0] ? -1.0 : 1.0;
        s->span = fabs(s->ts[nt - 1] - s->ts[0]);
        s->next = 1;
        s->st->t_reached = s->t;
        s->st->rows_done = 1;
        const double *y0 = run->y0 + j * run->y0_stride;
        memcpy(g->y + g->nl * dim, y0, dim * sizeof(double));
        if (s->ys)
            memmove(s->ys, y0, dim * sizeof(double));
        if (nt == 1)
            s->done = true;
        if (!g->adaptive) {
            double h = opt->step, nfull = floor(s->span / h), ns = nfull;
            if (s->span - nfull * h > 1e-10 * h || nfull < 1)
                ns = nfull + 1;
            if (!s->done && ns > (double)opt->max_steps) {
                char b1[32], b2[32];
                fail(s, node__msg(s->st->message, NODE_EMAXSTEPS,
                                  "max_steps = %lld is fewer than the %.0f steps of %g from "
                                  "t = %s to the end time %s (nothing was integrated)",
                                  (long long)opt->max_steps, ns, h, tstr(b1, s->t),
                                  tstr(b2, s->ts[nt - 1])));
            }
            s->fixed_n = (int64_t)ns;
        }
        node__control_init(&s->ctl, g->tab);
        g->nl++;
    }
    compact(g);
    if (!g->adaptive || g->nl == 0)
        return;

    /* k_0 = f(t0, y0), then the first step (control.c's, with f batched). */
    size_t nl = g->nl;
    for (size_t r = 0; r < nl; r++)
        g->tb[r] = sl[r].t;
    bool bad = eval(g, NULL, nl, g->tb, g->y, g->k[0], g->w->rc);
    for (size_t r = 0; r < nl; r++) {
        if (bad && g->w->rc[r])
            fail_callback(&sl[r], g->w->rc[r], sl[r].t);
        else if (nonfinite(g->k[0] + r * dim, dim))
            fail_nonfinite_start(&sl[r], sl[r].t);
        sl[r].have_k0 = true;
    }
    compact(g);
    nl = g->nl;
    double hmax = opt->max_step > 0 ? opt->max_step : INFINITY;
    size_t m = 0;
    for (size_t r = 0; r < nl; r++) {
        double h0 = run->h0 && run->h0[sl[r].id] > 0 ? run->h0[sl[r].id] : opt->step;
        if (h0 > 0)
            sl[r].h = fmin(fmin(h0, hmax), sl[r].span);
        else
            g->w->idx[m++] = r;
    }
    if (m > 0) {
        /* for the rows idx[0 .. m-1] without a given step: h0 in sl.h, d1 in sl.err for
           now, the Euler step's f (gathered) into k[1] */
        for (size_t q = 0; q < m; q++) {
            size_t r = g->w->idx[q];
            node__ens_slot *s = &sl[r];
            const double *y = g->y + r * dim, *f0 = g->k[0] + r * dim;
            s->h = node__initial_guess(g->tab, node__norm_rms, NULL, dim, y, f0,
                                       fmin(hmax, s->span), opt->rtol, opt->atol, &s->err);
            for (size_t i = 0; i < dim; i++)
                g->arg[r * dim + i] = y[i] + s->dir * s->h * f0[i];
            g->tb[r] = s->t + s->dir * s->h;
        }
        for (size_t q = 0; q < m; q++)   /* gathered: the rows without a given step */
            if (g->w->idx[q] != q) {
                size_t r = g->w->idx[q];
                memcpy(g->arg + q * dim, g->arg + r * dim, dim * sizeof(double));
                g->tb[q] = g->tb[r];
            }
        bad = eval(g, g->w->idx, m, g->tb, g->arg, g->gout, g->w->rc);
        for (size_t q = 0; q < m; q++) {
            size_t r = g->w->idx[q];
            node__ens_slot *s = &sl[r];
            if (bad && g->w->rc[q]) {
                fail_callback(s, g->w->rc[q], g->tb[q]);
                continue;
            }
            memcpy(g->k[1] + r * dim, g->gout + q * dim, dim * sizeof(double));
            s->h = node__initial_finish(g->tab, node__norm_rms, NULL, dim, g->y + r * dim,
                                        g->k[0] + r * dim, g->k[1] + r * dim, s->h, s->err,
                                        fmin(hmax, s->span), opt->rtol, opt->atol);
        }
    }
    for (size_t r = 0; r < nl; r++) {
        node__ens_slot *s = &sl[r];
        s->h = s->dir * fmax(s->h, fmin(16 * DBL_EPSILON * fmax(fabs(s->t), s->span), s->span));
    }
    compact(g);
}

/* Before a round: each live slot's step (or its failure). */
static void plan(grp *g)
{
    const node_options *opt = g->opt;
    double hmax = opt->max_step > 0 ? opt->max_step : INFINITY;
    size_t nt = g->run->nt;
    for (size_t r = 0; r < g->nl; r++) {
        node__ens_slot *s = &g->w->slot[r];
        double tend = s->ts[nt - 1];
        s->st->nsteps++;
        if (!g->adaptive) {
            int64_t j = s->fixed_j;
            double hj = (j + 1 == s->fixed_n ? tend
                                             : s->ts[0] + s->dir * (double)(j + 1) * opt->step)
                        - s->t;
            s->h = hj;
            s->tnew = j + 1 == s->fixed_n ? tend : s->t + hj;
            continue;
        }
        char b1[32], b2[32];
        if (s->attempts >= opt->max_steps) {
            s->st->nsteps--;
            fail(s, node__msg(s->st->message, NODE_EMAXSTEPS,
                              "max_steps = %lld reached at t = %s, before the end time %s",
                              (long long)opt->max_steps, tstr(b1, s->t), tstr(b2, tend)));
            continue;
        }
        if (fabs(s->h) > hmax)
            s->h = s->dir * hmax;
        s->h_plan = s->h;
        s->last = false;
        if (s->dir * (s->t + 1.01 * s->h - tend) >= 0) {
            s->h = tend - s->t;
            s->last = true;
        }
        double at = fabs(s->t), hmin = 16 * DBL_EPSILON * (at > s->span ? at : s->span);
        if ((!s->last && fabs(s->h) < hmin) || s->h == 0) {
            s->st->nsteps--;
            if (s->nonfinite > 0)
                fail(s, node__msg(s->st->message, NODE_ENONFINITE,
                                  "f returned NaN or Inf near t = %s and %d smaller steps "
                                  "(down to %.3g, the smallest step here) did not avoid it",
                                  tstr(b1, s->t), s->nonfinite, hmin));
            else
                fail(s, node__msg(s->st->message, NODE_ESTEPSIZE,
                                  "step size %.3g at t = %s is below %.3g, what floating point "
                                  "resolves here (rtol = %g, atol = %g)", fabs(s->h),
                                  tstr(b1, s->t), hmin, opt->rtol, opt->atol));
            continue;
        }
        s->attempts++;
    }
}

/* One round: every live slot attempts one step. */
static node_status round_(grp *g)
{
    const node__tableau *tab = g->tab;
    const node_options *opt = g->opt;
    node__ens_ws *w = g->w;
    node__ens_slot *sl = w->slot;
    size_t dim = g->dim, nt = g->run->nt;
    plan(g);
    compact(g);
    size_t nl = g->nl;
    if (nl == 0)
        return NODE_OK;

    /* k_0 where it is not known (fixed-step methods, after every step) */
    size_t m = 0;
    for (size_t r = 0; r < nl; r++)
        if (!sl[r].have_k0)
            w->idx[m++] = r;
    if (m > 0) {
        for (size_t q = 0; q < m; q++)
            g->tb[q] = sl[w->idx[q]].t;
        if (m == nl) {
            if (eval(g, NULL, nl, g->tb, g->y, g->k[0], w->rc))
                for (size_t r = 0; r < nl; r++)
                    if (w->rc[r])
                        fail_callback(&sl[r], w->rc[r], sl[r].t);
        } else {
            stages_subset(g, w->idx, m, 0, 1);
        }
        for (size_t q = 0; q < m; q++) {
            size_t r = w->idx[q];
            if (g->adaptive && !sl[r].done && nonfinite(g->k[0] + r * dim, dim))
                fail_nonfinite_start(&sl[r], sl[r].t);
            sl[r].have_k0 = true;
        }
    }

    int send = g->adaptive ? g->s_err : tab->s;
    stages_all(g, 1, send);
    bool fsal_arg = g->adaptive && tab->fsal && send == tab->s;
    if (!fsal_arg) {
        comb cb;
        comb_make(&cb, tab->b, tab->s, g->k);
        comb_apply(&cb, 0, nl * dim, g->y, g->hx, 0, g->ynew);
    }

    if (g->adaptive) {
        comb ce;
        comb_make(&ce, tab->e, tab->s, g->k);
        double we3[NODE__MAXSTAGES];
        for (int i = 0, q = 0; i < tab->s; i++)
            if (tab->e[i] != 0)
                we3[q++] = tab->e3 ? tab->e3[i] : 0;
        err_all(&ce, we3, tab->e3 != NULL, nl * dim, g->y, g->ynew, g->hx, opt->rtol,
                opt->atol, g->gin, g->gout);
        m = 0;
        for (size_t r = 0; r < nl; r++) {
            node__ens_slot *s = &sl[r];
            if (s->done)
                continue;
            s->err = row_error(tab, dim, g->nblocks, g->gin + r * dim, g->gout + r * dim);
            if (s->err <= 1 && send < tab->s)
                w->idx[m++] = r;
        }
        if (m > 0) {   /* the FSAL stage, left out of the estimate (DOP853) */
            stages_subset(g, w->idx, m, send, tab->s);
            for (size_t q = 0; q < m; q++) {
                size_t r = w->idx[q];
                if (nonfinite(g->k[tab->s - 1] + r * dim, dim))
                    sl[r].err = NAN;
            }
        }
    }

    /* accept or reject */
    m = 0;
    for (size_t r = 0; r < nl; r++) {
        node__ens_slot *s = &sl[r];
        s->accept = false;
        s->dense = false;
        if (s->done)
            continue;
        if (!g->adaptive) {
            if (nonfinite(g->ynew + r * dim, dim)) {
                char b1[32], b2[32];
                fail(s, node__msg(s->st->message, NODE_ENONFINITE,
                                  "the step from t = %s to %s gave NaN or Inf (f returned NaN "
                                  "or Inf, or the state overflowed); a fixed step is not "
                                  "retried", tstr(b1, s->t), tstr(b2, s->tnew)));
                continue;
            }
        } else if (s->err != s->err) {
            s->st->nreject++;
            if (++s->nonfinite > NODE__ENS_NONFINITE_RETRIES) {
                char b1[32];
                fail(s, node__msg(s->st->message, NODE_ENONFINITE,
                                  "f returned NaN or Inf near t = %s and %d smaller steps did "
                                  "not avoid it", tstr(b1, s->t), NODE__ENS_NONFINITE_RETRIES));
                continue;
            }
            s->ctl.rejected = true;
            s->h *= 0.25;
            continue;
        } else if (s->err > 1) {
            s->st->nreject++;
            s->nonfinite = 0;
            s->h = node__control_reject(&s->ctl, s->h, s->err);
            continue;
        } else {
            s->nonfinite = 0;
            s->tnew = s->last ? s->ts[nt - 1] : s->t + s->h;
        }
        s->accept = true;
        if (tab->s_dense > tab->s && wants_dense(s, nt)) {
            s->dense = true;
            w->idx[m++] = r;
        }
    }
    if (m > 0)
        stages_subset(g, w->idx, m, tab->s, tab->s_dense);

    node_status st = NODE_OK;
    for (size_t r = 0; r < nl; r++) {
        node__ens_slot *s = &sl[r];
        if (!s->accept || s->done)
            continue;
        s->st->naccept++;
        s->st->t_reached = s->tnew;
        if (g->run->record && record(g, r) != NODE_OK) {
            fail(s, node__msg(s->st->message, NODE_ENOMEM,
                              "no memory for the tape of the recorded steps"));
            st = NODE_ENOMEM;
            continue;
        }
        emit(g, r);
        if (s->done)
            continue;
        s->t = s->tnew;
        if (g->adaptive) {
            if (s->last)
                s->done = true;
            else
                s->h = node__control_accept(&s->ctl, s->h, s->err);
        } else if (++s->fixed_j == s->fixed_n) {
            s->done = true;
        }
    }

    /* y <- ynew and k_0 <- the FSAL stage for the accepted rows: swap the arrays, then
       put back the rows that did not move on. */
    double *swap = g->y; g->y = g->ynew; g->ynew = swap;
    bool fsal = g->adaptive && tab->fsal;
    if (fsal) {
        swap = g->k[0]; g->k[0] = g->k[tab->s - 1]; g->k[tab->s - 1] = swap;
    }
    for (size_t r = 0; r < nl; r++) {
        if (sl[r].accept) {
            sl[r].have_k0 = fsal;
            continue;
        }
        memcpy(g->y + r * dim, g->ynew + r * dim, dim * sizeof(double));
        if (fsal)
            memcpy(g->k[0] + r * dim, g->k[tab->s - 1] + r * dim, dim * sizeof(double));
    }
    compact(g);
    return st;
}

node_status node__ens_forward(const node__ens_run *run, node__ens_ws *w, size_t worker,
                              size_t j0, size_t m, size_t stride, size_t *nkept)
{
    grp g;
    memset(&g, 0, sizeof g);
    g.run = run;
    g.tab = run->tab;
    g.opt = run->opt;
    g.w = w;
    g.worker = worker;
    g.dim = run->dim;
    g.S = run->tab->s_dense;
    g.adaptive = run->tab->err_order > 0;
    g.s_err = g.adaptive ? node__err_stages(run->tab) : run->tab->s;
    g.fin = w->fin;
    g.nblocks = run->nblocks ? run->nblocks : 1;
    size_t G = w->G, dim = g.dim;
    double *p = w->buf;
    for (int i = 0; i < g.S; i++, p += G * dim)
        g.k[i] = p;
    g.y = p; p += G * dim;
    g.ynew = p; p += G * dim;
    g.arg = p; p += G * dim;
    g.hx = p; p += G * dim;
    g.gin = p; p += G * dim;
    g.gout = p; p += G * dim;
    g.tb = p; p += G;
    g.tv = p; p += G;
    g.hv = p;
    w->tape_len = 0;
    start(&g, j0, m, stride);
    node_status st = NODE_OK;
    while (g.nl > 0)
        if (round_(&g) != NODE_OK)
            st = NODE_ENOMEM;
    if (nkept)
        *nkept = g.nfin;
    return st;
}

/* Doubles of a worker's forward buffers for G slots. */
size_t node__ens_buf_need(const node__tableau *tab, size_t G, size_t dim)
{
    return ((size_t)tab->s_dense + 6) * G * dim + 3 * G;
}
