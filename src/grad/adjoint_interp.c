/* adjoint_interp.c — the interpolating (checkpointed) adjoint: the adjoint equations
 * of Chen et al. 2018 (Algorithm 1) solved backward for [a, dL/dθ, dL/dt] only, with
 * z(t) taken from the dense output of a forward re-solve of each segment between
 * restart points instead of being integrated backward (the "InterpolatingAdjoint" of
 * SciMLSensitivity; Kim, Ji, Deng, Ma, Rackauckas, "Stiff neural ordinary differential
 * equations", Chaos 2021, §3).  The reconstruction of z cannot drift: every segment
 * starts again from a state of the forward solution.
 */
#include "grad.h"

#include <math.h>
#include <string.h>

/* ---- one segment's dense forward solution --------------------------------------
 * Records [t, h, y (dim), k_0 .. k_{S-1} (dim each)] of its accepted steps, in the
 * order of the forward solve, in s->tape. */

typedef struct seg {
    node_solver *s;
    const node__tableau *tab;
    size_t dim, S, nrec;
    double dir;
    node_status status;   /* ENOMEM from a failed tape growth */
} seg;

static size_t rec_size(const seg *g) { return 2 + (g->S + 1) * g->dim; }

static int seg_dense(void *ctx, double t, double h, const double *y, double *const *k)
{
    seg *g = ctx;
    size_t rs = rec_size(g), n = g->dim;
    if (node__grad_reserve(&g->s->tape, &g->s->tape_cap, (g->nrec + 1) * rs, rs, SIZE_MAX)) {
        g->status = NODE_ENOMEM;
        return 1;
    }
    double *rec = g->s->tape + g->nrec * rs;
    rec[0] = t;
    rec[1] = h;
    memcpy(rec + 2, y, n * sizeof(double));
    for (size_t i = 0; i < g->S; i++)
        memcpy(rec + 2 + (i + 1) * n, k[i], n * sizeof(double));
    g->nrec++;
    return 0;
}

/* z(t) by the dense output of the step of the segment that holds t. */
static void seg_eval(const seg *g, const node__ode_kernels *kern, double t, double *w,
                     double *z)
{
    size_t rs = rec_size(g), n = g->dim;
    const double *tape = g->s->tape;
    /* the last step that starts at or before t (in the direction of the solve) */
    size_t lo = 0, hi = g->nrec;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->dir * (t - tape[mid * rs]) >= 0)
            lo = mid;
        else
            hi = mid;
    }
    const double *rec = tape + lo * rs;
    double h = rec[1], theta = (t - rec[0]) / h;
    theta = fmin(1.0, fmax(0.0, theta));
    double *k[NODE__MAXSTAGES];
    for (size_t i = 0; i < g->S; i++)
        k[i] = (double *)(rec + 2 + (i + 1) * n);
    g->tab->dense(theta, w, NULL);
    node__rk_combine(kern, n, rec + 2, h, w, (int)g->S, k, z);
}

/* ---- the backward system: [a | gθ | gt] with z interpolated ---------------------- */

typedef struct ia_ctx {
    const node_system *sys;
    const node__ode_kernels *kern;
    const seg *g;
    size_t dim, np, nt;
    double *z, *w;
    int rc;               /* the non-zero value sys->vjp returned, and at which t */
    double t_rc;
} ia_ctx;

static int ia_f(void *ctx, double t, const double *y, double *dydt)
{
    ia_ctx *c = ctx;
    size_t n = c->dim;
    seg_eval(c->g, c->kern, t, c->w, c->z);
    int rc = c->sys->vjp(c->sys->ctx, t, c->z, y, NULL, dydt,
                         c->np ? dydt + n : NULL, c->nt ? dydt + n + c->np : NULL);
    if (rc) {
        c->rc = rc;
        c->t_rc = t;
        return rc;
    }
    size_t m = n + c->np + c->nt;
    for (size_t i = 0; i < m; i++)
        dydt[i] = -dydt[i];
    return 0;
}

/* The restart grid: ts, and with opt->checkpoints = N the N times evenly spaced
   strictly inside (ts[0], ts[nt-1]) that are not already output times.  T[j] and
   out[j] (the output row at T[j], or -1) into grid (2 M doubles); returns M. */
static size_t make_grid(const double *ts, size_t nt, size_t N, double *grid)
{
    double t0 = ts[0], t1 = ts[nt - 1], dir = t1 > t0 ? 1 : -1;
    size_t m = 0, i = 0, k = 1;
    double *T = grid, *out = grid + nt + N;
    while (i < nt || k <= N) {
        double u = k <= N ? t0 + (t1 - t0) * ((double)k / (double)(N + 1)) : 0;
        if (k <= N && (dir * (u - t0) <= 0 || dir * (u - t1) >= 0)) {
            k++;                     /* rounded onto an end: not inside */
            continue;
        }
        if (i < nt && (k > N || dir * (ts[i] - u) <= 0)) {
            if (k <= N && ts[i] == u)
                k++;
            T[m] = ts[i];
            out[m++] = (double)i++;
        } else {
            T[m] = u;
            out[m++] = -1;
            k++;
        }
    }
    memmove(T + m, out, m * sizeof(double));
    return m;
}

/* The forward re-solve from `from` to `to` failed with rc: say so in its words. */
static node_status forward_failed(node_stats *st, node_status rc, double from, double to)
{
    char why[NODE_MESSAGE_SIZE];
    memcpy(why, st->message, sizeof why);
    if (!why[0])
        return node__msg(st->message, rc, "%s in the forward re-solve from %g to %g "
                         "(interpolating adjoint)", node_strerror(rc), from, to);
    return node__msg(st->message, rc, "%s (interpolating adjoint's forward re-solve from %g "
                     "to %g)", why, from, to);
}

node_status node_solver_adjoint_interp(node_solver *s, const node_system *sys,
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
    size_t n = sys->dim, np = dLdp ? sys->nparams : 0, ntb = dLdts ? 1 : 0;
    size_t S = (size_t)tab->s_dense;
    size_t N = nt > 1 ? (size_t)o.checkpoints : 0;
    if (N && (uint64_t)o.checkpoints > (SIZE_MAX / 4 - nt) / (n + 2))
        return node__stats_end(stats, node__msg(stats->message, NODE_ENOMEM,
                                                "opt->checkpoints = %lld restart states of "
                                                "%zu doubles cannot be held",
                                                (long long)o.checkpoints, n));
    /* aug: [a | gθ | gt (m) | 2 rows for the integrator's output (2m)]
       work: [2 rows of the forward re-solve (2n) | z, tmp (n each) | w (S)]
       steps: the grid (2 M), ckpt: its states (M n) when N > 0 */
    if (n > SIZE_MAX / 16 / (S + 4) || np > SIZE_MAX / 16)
        return node__stats_end(stats, NODE_ENOMEM);
    size_t m = n + np + ntb, M = nt + N;
    if ((rc = node__grow(&s->aug, &s->aug_cap, 3 * m)) ||
        (rc = node__grow(&s->work, &s->work_cap, 4 * n + S)) ||
        (rc = node__grow(&s->steps, &s->steps_cap, 2 * M)) ||
        (N && (rc = node__grow(&s->ckpt, &s->ckpt_cap, M * n))))
        return node__stats_end(stats, node__msg(stats->message, rc,
                                                "out of memory for the interpolating "
                                                "adjoint's workspace"));
    s->bp.valid = 0;   /* backprop's recording: its tape and work are reused here */
    double *aug = s->aug, *rows = aug + m;
    double *frow = s->work, *z = frow + 2 * n, *tmp = z + n, *w = tmp + n;

    /* The restart states: ys itself, or the forward solution on the finer grid (the
       same steps as the solve that gave ys: outputs do not change the steps). */
    const double *T = s->steps, *out = s->steps + M, *Z = ys;
    M = make_grid(ts, nt, N, s->steps);
    out = s->steps + M;
    /* Budgets of opt->max_steps: the grid's solve its own (as a forward solve), the
       segments' re-solves one together, the backward intervals one together. */
    int64_t fsteps = 0, bsteps = 0;
    if (N) {
        node__ode fwd = { .dim = n, .f = sys->f, .ctx = sys->ctx };
        rc = node__integrate(s, &fwd, ys, T, M, s->ckpt, &o, stats, NULL);
        if (rc) {
            stats->t_reached = ts[nt - 1];
            rc = forward_failed(stats, rc, ts[0], ts[nt - 1]);
            goto out;
        }
        for (size_t j = 0; j < M; j++)   /* the output rows are ys's own */
            if (out[j] >= 0)
                memcpy(s->ckpt + j * n, ys + (size_t)out[j] * n, n * sizeof(double));
        Z = s->ckpt;
    }

    node_options bo = o, fo = o;
    bo.rtol = o.adjoint_rtol;
    bo.atol = o.adjoint_atol;
    bool adaptive = tab->err_order > 0;
    if (adaptive)
        bo.step = 0;
    seg g = { s, tab, n, S, 0, ts[nt - 1] > ts[0] ? 1 : -1, NODE_OK };
    ia_ctx ac = { .sys = sys, .kern = s->kern, .g = &g, .dim = n, .np = np, .nt = ntb,
                  .z = z, .w = w };
    node__grad_norm nc = { 0, n, np, ntb, o.seminorm };
    node__ode bode = { .dim = m, .f = ia_f, .ctx = &ac, .norm = node__grad_norm_fn,
                       .nctx = &nc };
    node__ode fode = { .dim = n, .f = sys->f, .ctx = sys->ctx };
    node__observer obs = { .ctx = &g, .dense = seg_dense };

    size_t last = nt - 1;
    stats->t_reached = ts[last];
    memcpy(aug, dLdys + last * n, n * sizeof(double));
    memset(aug + n, 0, (np + ntb) * sizeof(double));
    if (ntb && last > 0) {
        /* gt as in the backsolve adjoint: -dL/dt_N, less dL/dt_i at each output */
        if ((rc = node__grad_time(sys, last, ts[last], ys + last * n, dLdys + last * n, tmp,
                                  stats, &dLdts[last])))
            goto out;
        aug[m - 1] = -dLdts[last];
    }
    for (size_t j = M - 1; j > 0; j--) {
        /* The segment's dense forward solution, from its restart state. */
        if (fsteps >= o.max_steps || bsteps >= o.max_steps) {
            rc = node__msg(stats->message, NODE_EMAXSTEPS,
                           "the interpolating adjoint needs more than opt->max_steps = %lld "
                           "steps (its %s together); it reached t = %g",
                           (long long)o.max_steps,
                           fsteps >= o.max_steps ? "forward re-solves" : "backward intervals",
                           stats->t_reached);
            goto out;
        }
        double tseg[2] = { T[j - 1], T[j] };
        int64_t before = stats->nsteps;
        fo.max_steps = o.max_steps - fsteps;
        g.nrec = 0;
        rc = node__integrate(s, &fode, Z + (j - 1) * n, tseg, 2, frow, &fo, stats, &obs);
        fsteps += stats->nsteps - before;
        stats->t_reached = T[j];
        if (rc) {
            if (g.status)
                rc = node__msg(stats->message, g.status, "out of memory for the dense "
                               "solution of the segment from %g to %g (%zu steps)",
                               T[j - 1], T[j], g.nrec);
            else
                rc = forward_failed(stats, rc, T[j - 1], T[j]);
            goto out;
        }
        /* Backward over it: [a, gθ, gt] only. */
        before = stats->nsteps;
        bo.max_steps = o.max_steps - bsteps;
        double tsb[2] = { T[j], T[j - 1] };
        rc = node__integrate(s, &bode, aug, tsb, 2, rows, &bo, stats, NULL);
        bsteps += stats->nsteps - before;
        if (rc) {
            rc = node__grad_backward_failed(stats, rc, ac.rc, ac.t_rc, &o, T[j], T[j - 1]);
            goto out;
        }
        if (adaptive)
            bo.step = s->h_next;
        memcpy(aug, rows + m, m * sizeof(double));
        if (out[j - 1] >= 0) {
            size_t i = (size_t)out[j - 1];
            const double *wi = dLdys + i * n;
            for (size_t l = 0; l < n; l++)
                aug[l] += wi[l];
            if (ntb && i > 0) {
                if ((rc = node__grad_time(sys, i, ts[i], ys + i * n, wi, tmp, stats,
                                          &dLdts[i])))
                    goto out;
                aug[m - 1] -= dLdts[i];
            }
        }
        if (node__nonfinite(aug, m)) {
            rc = node__msg(stats->message, NODE_ENONFINITE,
                           "the adjoint state is NaN or Inf at t = %g (backward pass)",
                           T[j - 1]);
            goto out;
        }
    }
    stats->t_reached = ts[0];
    memcpy(dLdy0, aug, n * sizeof(double));
    if (np)
        memcpy(dLdp, aug + n, np * sizeof(double));
    if (ntb)
        dLdts[0] = aug[m - 1];
out:
    stats->rows_done = 0;
    return node__stats_end(stats, rc);
}

node_status node_odeint_adjoint_interp(const node_system *sys, const double *ts, size_t nt,
                                       const double *ys, const double *dLdys,
                                       double *dLdy0, double *dLdp, double *dLdts,
                                       const node_options *opt, node_stats *stats)
{
    return node__grad_oneshot(node_solver_adjoint_interp, sys, ts, nt, ys, dLdys, dLdy0, dLdp,
                              dLdts, opt, stats);
}
