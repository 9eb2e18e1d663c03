/* ens_api.c — the public ensemble entries (ensemble.h): the object, the checks, the
 * split of the samples into lock-step groups run on OpenMP threads (when the build has
 * it), the per-sample stats and their totals, and the adapter of a plain node_system.
 */
#include "ens.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#  include <omp.h>
#endif

/* The default group: 256 samples, so that batched dynamics (an MLP) still see large
   batches as a group's samples finish at different times (measured with the 2-50-2 MLP
   at batch 512: 1.02-1.04x the one-big-ODE time against 0.95x with groups of 64, and
   2.53-2.56x against 2.07-2.32x on rates spread over 100x); fewer where a group's forward
   buffers ((stages + 6) x dim doubles a sample) would pass 2 MiB, never below 64.  It
   depends on the method and the state's size alone, never on the thread count, so that
   dL/dθ's group-by-group sum is the same for any number of threads. */
#define NODE__ENS_GROUP_MAX 256
#define NODE__ENS_GROUP_MIN 64

static size_t default_group(const node__tableau *tab, size_t dim)
{
    size_t per = (size_t)(tab->s_dense + 6) * (dim ? dim : 1) * sizeof(double);
    size_t g = ((size_t)2 << 20) / per;
    return g < NODE__ENS_GROUP_MIN ? NODE__ENS_GROUP_MIN
         : g > NODE__ENS_GROUP_MAX ? NODE__ENS_GROUP_MAX : g;
}

node_status node_ensemble_create(node_ensemble **out)
{
    if (!out)
        return NODE_EINVAL;
    node_ensemble *e = node__calloc(1, sizeof *e);
    if (!e)
        return NODE_ENOMEM;
    *out = e;
    return NODE_OK;
}

static void ws_free(node__ens_ws *w)
{
    node__free(w->slot);
    node__free(w->fin);
    node__free(w->rc);
    node__free(w->idx);
    node__free(w->buf);
    node__free(w->tape);
    node__free(w->rev);
    node__free(w->aug);
    memset(w, 0, sizeof *w);
}

void node_ensemble_free(node_ensemble *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nws; i++)
        ws_free(&e->ws[i]);
    node__free(e->ws);
    node__free(e->stats);
    node__free(e->gsum);
    node__free(e->gst);
    node__free(e);
}

/* Make w hold G slots and the forward buffers. */
static node_status ws_reserve(node__ens_ws *w, const node__tableau *tab, size_t G, size_t dim)
{
    size_t need = node__ens_buf_need(tab, G, dim);
    if (node__ens_grow((void **)&w->buf, &w->buf_cap, need, sizeof(double)))
        return NODE_ENOMEM;
    if (G <= w->G)
        return NODE_OK;
    node__ens_slot *a = node__realloc(w->slot, G * sizeof *a);
    if (a)
        w->slot = a;
    node__ens_slot *b = node__realloc(w->fin, G * sizeof *b);
    if (b)
        w->fin = b;
    int *rc = node__realloc(w->rc, G * sizeof *rc);
    if (rc)
        w->rc = rc;
    size_t *idx = node__realloc(w->idx, G * sizeof *idx);
    if (idx)
        w->idx = idx;
    if (!a || !b || !rc || !idx)
        return NODE_ENOMEM;
    w->G = G;
    return NODE_OK;
}

/* ---- checks ---------------------------------------------------------------------- */

static node_status check_system(const node_ensemble_system *sys, bool grad, char *msg)
{
    if (!sys)
        return node__msg(msg, NODE_EINVAL, "sys is NULL");
    if (!sys->f)
        return node__msg(msg, NODE_EINVAL, "sys->f is NULL");
    if (grad && !sys->vjp)
        return node__msg(msg, NODE_EINVAL, "sys->vjp is NULL: gradients need it");
    if (sys->dim == 0)
        return node__msg(msg, NODE_EINVAL, "sys->dim = 0: the state needs at least one element");
    if (sys->dim > NODE__MAX_DIM)
        return node__msg(msg, NODE_EINVAL,
                         "sys->dim = %zu: no array of that many doubles can exist", sys->dim);
    if (!node__zero_words(sys->reserved_, sizeof sys->reserved_ / sizeof sys->reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "sys has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s", node_version());
    return NODE_OK;
}

/* The arguments every ensemble call shares. */
static node_status check_common(const node_ensemble *e, const node_ensemble_system *sys,
                                bool grad, size_t n, const double *y0, const char *y0name,
                                const double *ts, size_t nt, const node_options *opt,
                                node_options *o, const node_ensemble_options *eopt,
                                node_ensemble_options *eo, char *msg)
{
    node_status st;
    if (!e)
        return node__msg(msg, NODE_EINVAL, "the ensemble object is NULL");
    if ((st = check_system(sys, grad, msg)) != NODE_OK)
        return st;
    if (n == 0)
        return node__msg(msg, NODE_EINVAL, "n = 0: an ensemble needs at least one sample");
    /* n · dim bounded so that every workspace size (a few dozen vectors of n · dim
       doubles at the most) is a size_t */
    size_t tot;
    if (!node__mul_ok(n, sys->dim, &tot) || tot > SIZE_MAX / (64 * sizeof(double)) ||
        !node__mul_ok(tot, nt, &tot) || tot > SIZE_MAX / sizeof(double))
        return node__msg(msg, NODE_EINVAL, "n = %zu samples of %zu × %zu doubles do not fit "
                         "in memory", n, nt, sys->dim);
    if (sys->nparams > SIZE_MAX / (64 * sizeof(double)))
        return node__msg(msg, NODE_EINVAL, "sys->nparams = %zu: no array of that many "
                         "doubles can exist", sys->nparams);
    if ((st = node__options_resolve(opt, o, msg)) != NODE_OK)
        return st;
    if (eopt) {
        *eo = *eopt;
        if (!node__zero_words(eo->reserved_, sizeof eo->reserved_ / sizeof eo->reserved_[0]))
            return node__msg(msg, NODE_EINVAL, "eopt has non-zero reserved fields: the program "
                             "was built against a newer libnode header than libnode %s",
                             node_version());
        if (eo->per_sample_ts != 0 && eo->per_sample_ts != 1)
            return node__msg(msg, NODE_EINVAL, "eopt->per_sample_ts = %d: must be 0 or 1",
                             (int)eo->per_sample_ts);
        if (eo->threads < 0)
            return node__msg(msg, NODE_EINVAL, "eopt->threads = %d: must be >= 0 (0 = "
                             "OpenMP's default)", (int)eo->threads);
    } else {
        memset(eo, 0, sizeof *eo);
    }
    if (!y0)
        return node__msg(msg, NODE_EINVAL, "%s is NULL", y0name);
    if (!ts)
        return node__msg(msg, NODE_EINVAL, "ts is NULL");
    size_t nrow = eo->per_sample_ts ? n : 1;
    for (size_t j = 0; j < nrow; j++) {
        char m2[NODE_MESSAGE_SIZE];
        if ((st = node__check_ts(ts + j * nt, nt, m2)) != NODE_OK) {
            if (eo->per_sample_ts)
                return node__msg(msg, st, "sample %zu: %s", j, m2);
            return node__msg(msg, st, "%s", m2);
        }
    }
    return NODE_OK;
}

/* ---- running the groups ------------------------------------------------------------- */

typedef struct plan {
    size_t G, ngroups, W;
} plan;

static plan make_plan(const node_ensemble_system *sys, const node_ensemble_options *eo,
                      const node__tableau *tab, size_t dim, size_t n)
{
    plan p;
    p.G = eo->group ? (size_t)eo->group : default_group(tab, dim);
    if (p.G > n)
        p.G = n;
    p.ngroups = (n + p.G - 1) / p.G;
    size_t W = 1;
#ifdef _OPENMP
    W = eo->threads > 0 ? (size_t)eo->threads : (size_t)omp_get_max_threads();
#endif
    size_t workers = sys->workers ? sys->workers : 1;
    if (W > workers)
        W = workers;
    if (W > p.ngroups)
        W = p.ngroups;
    p.W = W < 1 ? 1 : W;
    return p;
}

static node_status reserve(node_ensemble *e, const plan *p, const node__tableau *tab,
                           size_t n, size_t dim, size_t np, bool grad, char *msg)
{
    if (p->W > e->nws) {
        node__ens_ws *ws = node__realloc(e->ws, p->W * sizeof *ws);
        if (!ws)
            return node__msg(msg, NODE_ENOMEM, "no memory for the ensemble's workspaces");
        memset(ws + e->nws, 0, (p->W - e->nws) * sizeof *ws);
        e->ws = ws;
        e->nws = p->W;
    }
    for (size_t i = 0; i < p->W; i++)
        if (ws_reserve(&e->ws[i], tab, p->G, dim) != NODE_OK)
            return node__msg(msg, NODE_ENOMEM, "no memory for a group of %zu samples of %zu "
                             "doubles", p->G, dim);
    if (node__ens_grow((void **)&e->stats, &e->stats_cap, n, sizeof *e->stats) ||
        node__ens_grow((void **)&e->gst, &e->gst_cap, p->ngroups, sizeof *e->gst))
        return node__msg(msg, NODE_ENOMEM, "no memory for the stats of %zu samples", n);
    size_t gs;
    if (grad && (!node__mul_ok(p->ngroups, np, &gs) ||
                 node__ens_grow((void **)&e->gsum, &e->gsum_cap, gs, sizeof(double))))
        return node__msg(msg, NODE_ENOMEM, "no memory for the groups' parameter gradients");
    return NODE_OK;
}

/* One group's work: the forward solve, and for backprop the reverse pass into its
   slice of e->gsum. */
static node_status run_group(const node__ens_run *run, node_ensemble *e, const plan *p,
                             size_t worker, size_t gi, bool want_p)
{
    node__ens_ws *w = &e->ws[worker];
    /* group gi: the samples gi, gi + ngroups, gi + 2 ngroups, ... (interleaved, so that
       a batch sorted by difficulty still gives groups of equal work) */
    size_t ng = p->ngroups, m = (run->n - gi + ng - 1) / ng, kept = 0;
    if (run->adjoint) {
        w->gp = want_p ? e->gsum + gi * run->sys->nparams : NULL;
        return node__ens_adjoint(run, e, w, worker, gi, m, ng, want_p);
    }
    node_status st = node__ens_forward(run, w, worker, gi, m, ng, &kept);
    if (!run->record)
        return st;
    for (size_t q = 0; q < m; q++) {   /* failed samples: a row of NaN */
        size_t j = gi + q * ng;
        if (run->stats[j].status != NODE_OK)
            for (size_t d = 0; d < run->dim; d++)
                run->dLdy0[j * run->dim + d] = NAN;
    }
    w->gp = want_p ? e->gsum + gi * run->sys->nparams : NULL;
    if (w->gp)
        memset(w->gp, 0, run->sys->nparams * sizeof(double));
    node_status st2 = node__ens_reverse(run, w, worker, kept, want_p);
    return st != NODE_OK ? st : st2;
}

static void run_groups(const node__ens_run *run, node_ensemble *e, const plan *p, bool want_p)
{
#ifdef _OPENMP
    int W = (int)p->W;
    long ng = (long)p->ngroups;
#   pragma omp parallel for num_threads(W) schedule(dynamic, 1) if (W > 1)
    for (long gi = 0; gi < ng; gi++)
        e->gst[gi] = run_group(run, e, p, (size_t)omp_get_thread_num(), (size_t)gi, want_p);
#else
    for (size_t gi = 0; gi < p->ngroups; gi++)
        e->gst[gi] = run_group(run, e, p, 0, gi, want_p);
#endif
}

/* The totals and the first failure into total; returns the call's status. */
static node_status finish(node_stats *stats, size_t n, node_stats *total)
{
    node_status first = NODE_OK;
    for (size_t j = 0; j < n; j++) {
        node_stats *s = &stats[j];
        node__stats_end(s, s->status);
        total->nfe += s->nfe;
        total->nsteps += s->nsteps;
        total->naccept += s->naccept;
        total->nreject += s->nreject;
        total->rows_done += s->rows_done;
        if (s->status != NODE_OK && first == NODE_OK) {
            first = s->status;
            total->callback_rc = s->callback_rc;
            node__msg(total->message, first, "sample %zu: %s", j, s->message);
        }
    }
    return first;
}

/* The fields every call's run shares; the samples' stats begun (the caller's, or the
   object's own). */
static void run_init(node__ens_run *run, node_ensemble *e, const node_ensemble_system *sys,
                     const node__tableau *tab, const node_options *o,
                     const node_ensemble_options *eo, size_t n, const double *y0,
                     size_t y0_stride, const double *ts, size_t nt, node_stats *stats)
{
    memset(run, 0, sizeof *run);
    run->sys = sys;
    run->tab = tab;
    run->opt = o;
    run->n = n;
    run->nt = nt;
    run->dim = sys->dim;
    run->y0 = y0;
    run->y0_stride = y0_stride;
    run->ts = ts;
    run->ts_stride = eo->per_sample_ts ? nt : 0;
    run->stats = stats ? stats : e->stats;
    for (size_t j = 0; j < n; j++)
        node__stats_begin(&run->stats[j]);
}

enum { FORWARD, BACKPROP, ADJOINT };

/* Every entry: the checks of its arguments, the groups run, the totals.  Forward: y0
   and ys (written); gradients: ys (read: the initial states, and for the adjoint the
   whole solution), dLdys, dLdy0 and dLdp. */
static node_status call(int mode, node_ensemble *e, const node_ensemble_system *sys, size_t n,
                        const double *y0, const double *ts, size_t nt, double *ys,
                        const double *dLdys, double *dLdy0, double *dLdp,
                        const node_options *opt, const node_ensemble_options *eopt,
                        node_stats *stats, node_stats *total)
{
    node_stats local;
    if (!total)
        total = &local;
    node__stats_begin(total);
    node_options o;
    node_ensemble_options eo;
    char *msg = total->message;
    bool grad = mode != FORWARD, adjoint = mode == ADJOINT;
    node_status st = check_common(e, sys, grad, n, y0, grad ? "ys" : "y0", ts, nt, opt, &o,
                                  eopt, &eo, msg);
    if (st == NODE_OK && !grad && !ys)
        st = node__msg(msg, NODE_EINVAL, "ys is NULL");
    if (st == NODE_OK && grad && !dLdys)
        st = node__msg(msg, NODE_EINVAL, "dLdys is NULL");
    if (st == NODE_OK && grad && !dLdy0)
        st = node__msg(msg, NODE_EINVAL, "dLdy0 is NULL");
    if (st == NODE_OK && dLdp && sys->nparams == 0)
        st = node__msg(msg, NODE_EINVAL, "dLdp is given but sys->nparams = 0: there is no "
                       "parameter gradient to write");
    if (st == NODE_OK && mode == BACKPROP && o.checkpoints != 0)
        st = node__msg(msg, NODE_EINVAL, "opt->checkpoints = %lld: ensemble backprop records "
                       "every step (0)", (long long)o.checkpoints);
    size_t dim = st == NODE_OK ? sys->dim : 0, stride = grad ? nt * dim : dim;
    for (size_t i = 0; st == NODE_OK && i < n * stride; i++)
        if (!isfinite(y0[i]) && (adjoint || i % stride < dim)) {
            if (grad)
                st = node__msg(msg, NODE_EINVAL, "ys[%zu][%zu][%zu] = %g: the forward solution "
                               "must be finite", i / stride, i % stride / dim, i % dim, y0[i]);
            else
                st = node__msg(msg, NODE_EINVAL, "y0[%zu][%zu] = %g: initial states must be "
                               "finite", i / dim, i % dim, y0[i]);
        }
    for (size_t i = 0; st == NODE_OK && grad && i < n * nt * dim; i++)
        if (!isfinite(dLdys[i]))
            st = node__msg(msg, NODE_EINVAL, "dLdys[%zu][%zu][%zu] = %g: the loss gradient "
                           "must be finite", i / (nt * dim), i / dim % nt, i % dim, dLdys[i]);
    if (st != NODE_OK)
        return node__stats_end(total, st);
    const node__tableau *tab = node__tableau_get(o.method);
    plan p = make_plan(sys, &eo, tab, adjoint ? 2 * dim : dim, n);
    size_t np = sys->nparams;
    if ((st = reserve(e, &p, tab, n, adjoint ? 2 * dim : dim, np, grad, msg)) != NODE_OK)
        return node__stats_end(total, st);
    if (adjoint) {   /* the backward pass's tolerances */
        o.rtol = o.adjoint_rtol;
        o.atol = o.adjoint_atol;
    }
    node__ens_run run;
    run_init(&run, e, sys, tab, &o, &eo, n, y0, stride, ts, nt, stats);
    run.ys = grad ? NULL : ys;
    run.record = mode == BACKPROP;
    run.adjoint = adjoint;
    run.fwd = y0;
    run.dLdys = dLdys;
    run.dLdy0 = dLdy0;
    bool want_p = dLdp != NULL && np > 0;
    run_groups(&run, e, &p, want_p);
    for (size_t j = 0; grad && j < n; j++)
        run.stats[j].rows_done = 0;
    for (size_t gi = 0; grad && gi < p.ngroups; gi++)
        if (e->gst[gi] == NODE_ENOMEM)
            st = node__msg(msg, NODE_ENOMEM, "no memory for the %s of group %zu",
                           adjoint ? "backward pass" : "tape", gi);
    if (want_p) {
        /* groups in order: the same sum for any number of threads */
        memset(dLdp, 0, np * sizeof *dLdp);
        for (size_t gi = 0; gi < p.ngroups; gi++)
            for (size_t i = 0; i < np; i++)
                dLdp[i] += e->gsum[gi * np + i];
    }
    total->t_reached = NAN;
    node_status fs = finish(run.stats, n, total);
    return node__stats_end(total, st != NODE_OK ? st : fs);
}

node_status node_ensemble_odeint(node_ensemble *e, const node_ensemble_system *sys, size_t n,
                                 const double *y0, const double *ts, size_t nt, double *ys,
                                 const node_options *opt, const node_ensemble_options *eopt,
                                 node_stats *stats, node_stats *total)
{
    return call(FORWARD, e, sys, n, y0, ts, nt, ys, NULL, NULL, NULL, opt, eopt, stats, total);
}

node_status node_ensemble_backprop(node_ensemble *e, const node_ensemble_system *sys, size_t n,
                                   const double *ts, size_t nt, const double *ys,
                                   const double *dLdys, double *dLdy0, double *dLdp,
                                   const node_options *opt, const node_ensemble_options *eopt,
                                   node_stats *stats, node_stats *total)
{
    return call(BACKPROP, e, sys, n, ys, ts, nt, NULL, dLdys, dLdy0, dLdp, opt, eopt, stats,
                total);
}

node_status node_ensemble_adjoint(node_ensemble *e, const node_ensemble_system *sys, size_t n,
                                  const double *ts, size_t nt, const double *ys,
                                  const double *dLdys, double *dLdy0, double *dLdp,
                                  const node_options *opt, const node_ensemble_options *eopt,
                                  node_stats *stats, node_stats *total)
{
    return call(ADJOINT, e, sys, n, ys, ts, nt, NULL, dLdys, dLdy0, dLdp, opt, eopt, stats,
                total);
}

/* ---- a node_system as batched dynamics ------------------------------------------------ */

typedef struct wrap {
    const node_system *sys;
    size_t workers;
    double *scratch;    /* nparams per worker */
} wrap;

static int wrap_f(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                  double *dydt)
{
    const wrap *w = ctx;
    size_t dim = w->sys->dim;
    (void)worker;
    for (size_t r = 0; r < n; r++) {
        int rc = w->sys->f(w->sys->ctx, t[r], y + r * dim, dydt + r * dim);
        if (rc)
            return rc;
    }
    return 0;
}

static int wrap_vjp(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                    const double *a, double *dydt, double *vjp_y, double *vjp_p)
{
    const wrap *w = ctx;
    size_t dim = w->sys->dim, np = w->sys->nparams;
    double *tmp = w->scratch + worker * np;
    for (size_t r = 0; r < n; r++) {
        int rc = w->sys->vjp(w->sys->ctx, t[r], y + r * dim, a + r * dim,
                             dydt ? dydt + r * dim : NULL, vjp_y + r * dim,
                             vjp_p ? (r ? tmp : vjp_p) : NULL, NULL);
        if (rc)
            return rc;
        if (vjp_p && r)
            for (size_t i = 0; i < np; i++)
                vjp_p[i] += tmp[i];
    }
    if (vjp_p && n == 0)
        memset(vjp_p, 0, np * sizeof *vjp_p);
    return 0;
}

node_status node_ensemble_system_wrap(const node_system *sys, size_t workers,
                                      node_ensemble_system *out)
{
    if (!sys || !out || !sys->f || sys->dim == 0)
        return NODE_EINVAL;
    if (node__check_system_reserved(sys, NULL) != NODE_OK)
        return NODE_EINVAL;
    if (workers == 0)
        workers = 1;
    size_t ns;
    if (!node__mul_ok(workers, sys->nparams, &ns) || ns > SIZE_MAX / sizeof(double))
        return NODE_EINVAL;
    wrap *w = node__calloc(1, sizeof *w);
    if (!w)
        return NODE_ENOMEM;
    w->scratch = node__malloc((ns ? ns : 1) * sizeof(double));
    if (!w->scratch) {
        node__free(w);
        return NODE_ENOMEM;
    }
    w->sys = sys;
    w->workers = workers;
    memset(out, 0, sizeof *out);
    out->dim = sys->dim;
    out->nparams = sys->nparams;
    out->ctx = w;
    out->f = wrap_f;
    out->vjp = sys->vjp ? wrap_vjp : NULL;
    out->workers = workers;
    return NODE_OK;
}

void node_ensemble_system_free(node_ensemble_system *sys)
{
    if (!sys || sys->f != wrap_f)
        return;
    wrap *w = sys->ctx;
    node__free(w->scratch);
    node__free(w);
    memset(sys, 0, sizeof *sys);
}
