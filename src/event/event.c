/* event.c — events (libnode/event.h): the search for sign changes of g(t, y) over the
 * accepted steps of a solve, the root on the step's dense output by Brent's method
 * (Brent 1973, "Algorithms for minimization without derivatives", ch. 4: zeroin), and
 * the gradient through the event time by the implicit function theorem (Chen, Amos &
 * Nickel, ICLR 2021, eq. 5; torchdiffeq's ImplicitFnGradientRerouting).
 */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Iterations of Brent's method before it settles for the bracket it has (it needs
   some 10-50 for a bracket of 2^-52 of the step's length; this is a safety net). */
#define NODE__EVENT_MAXITER 200

/* ---- arguments ------------------------------------------------------------------ */

static node_status check_event(const node_event *ev, bool need_vjp, char *msg)
{
    if (!ev)
        return node__msg(msg, NODE_EINVAL, "ev is NULL");
    if (!ev->g)
        return node__msg(msg, NODE_EINVAL, "ev->g is NULL");
    if (need_vjp && !ev->g_vjp)
        return node__msg(msg, NODE_EINVAL,
                         "ev->g_vjp is NULL: the gradient through the event needs dg/d(t, y, phi)");
    if (ev->direction < -1 || ev->direction > 1)
        return node__msg(msg, NODE_EINVAL,
                         "ev->direction = %d: it must be 0 (any), +1 (rising) or -1 (falling)",
                         (int)ev->direction);
    if (ev->terminal != 0 && ev->terminal != 1)
        return node__msg(msg, NODE_EINVAL, "ev->terminal = %d: it must be 0 or 1",
                         (int)ev->terminal);
    if (!(ev->t_tol >= 0) || !isfinite(ev->t_tol))
        return node__msg(msg, NODE_EINVAL,
                         "ev->t_tol = %g: the precision of the event time must be finite and "
                         ">= 0 (0 = the default)", ev->t_tol);
    if (!node__zero_words(ev->reserved_, sizeof ev->reserved_ / sizeof ev->reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "ev has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s, or did not zero the struct",
                         node_version());
    return NODE_OK;
}

static node_status check_times(double t0, double t1, const char *name1, char *msg)
{
    if (!isfinite(t0))
        return node__msg(msg, NODE_EINVAL, "t0 = %g: the start time must be finite", t0);
    if (!isfinite(t1))
        return node__msg(msg, NODE_EINVAL, "%s = %g: it must be finite", name1, t1);
    if (t1 == t0)
        return node__msg(msg, NODE_EINVAL, "%s = t0 = %g: the interval is empty", name1, t0);
    return NODE_OK;
}

/* ---- the search ------------------------------------------------------------------ */

typedef struct search {
    const node_event *ev;
    size_t dim;
    double dir;          /* +1 forward in time, -1 backward */
    double rtol;
    bool terminal;
    int ref;             /* sign of g at the latest step end where it was non-zero (t0
                            included); 0: g has been 0 since t0 */
    double g_prev;       /* g there: the start of the current step unless pending */
    bool pending;        /* g became exactly 0 at a step end, at t_z, state y_z */
    double t_z;
    double *y_z, *ytmp;
    /* the events */
    size_t cap, count;
    double *t_events, *y_events;
    bool stopped;        /* a terminal event ended the solve, at t_stop */
    double t_stop;
    double *y_stop;      /* NULL: not wanted */
    /* a failure inside the observer: its status, message and callback value */
    node_status st;
    int rc;
    char msg[NODE_MESSAGE_SIZE];
} search;

static int sign_of(double v) { return (v > 0) - (v < 0); }

/* g(t, y) into *val, or a failure recorded in S (non-zero return). */
static int eval_g(search *S, double t, const double *y, double *val)
{
    int rc = S->ev->g(S->ev->ctx, t, y, val);
    if (rc) {
        S->rc = rc;
        S->st = node__msg(S->msg, NODE_ECALLBACK, "ev->g returned %d at t = %.17g", rc, t);
        return 1;
    }
    if (!isfinite(*val)) {
        S->st = node__msg(S->msg, NODE_ENONFINITE, "ev->g returned %g at t = %.17g", *val, t);
        return 1;
    }
    return 0;
}

/* y at time tau of the step (its dense output; ynew itself at the step's end). */
static int step_state(search *S, const node__step *st, double tau, double *out,
                      node_stats *stats)
{
    if (tau == st->tnew) {
        memcpy(out, st->ynew, S->dim * sizeof *out);
        return 0;
    }
    double theta = fmin(1.0, fmax(0.0, (tau - st->t) / st->h));
    node_status rc = node__step_dense(st, theta, out);
    if (rc != NODE_OK) {
        /* f failed at a dense-only stage: keep the integrator's message */
        S->st = rc;
        S->rc = stats->callback_rc;
        memcpy(S->msg, stats->message, sizeof S->msg);
        return 1;
    }
    return 0;
}

typedef struct step_ctx {
    search *S;
    node_stats *stats;
} step_ctx;

/* Brent's zeroin on g(τ, y(τ)) over the step, from the bracket (a, fa), (b, fb) with
   fa fb < 0.  *te = the end of the final bracket that has the new sign (that of fb)
   or where g is 0; its state in S->ytmp. */
static int locate(search *S, const node__step *st, node_stats *stats, double a, double fa,
                  double b, double fb, double *te)
{
    const int snew = sign_of(fb);
    double tol = S->ev->t_tol > 0 ? S->ev->t_tol : 1e-3 * S->rtol * fabs(st->h);
    double c = a, fc = fa, d = b - a, e = d;
    for (int it = 0; it < NODE__EVENT_MAXITER; it++) {
        if ((fb > 0) == (fc > 0)) {
            c = a; fc = fa; d = e = b - a;
        }
        if (fabs(fc) < fabs(fb)) {
            a = b; b = c; c = a;
            fa = fb; fb = fc; fc = fa;
        }
        double tol1 = 2 * DBL_EPSILON * fabs(b) + 0.5 * tol;
        double xm = 0.5 * (c - b);
        if (fabs(xm) <= tol1 || fb == 0)
            break;
        if (fabs(e) >= tol1 && fabs(fa) > fabs(fb)) {
            /* inverse quadratic interpolation, or the secant when a == c */
            double s = fb / fa, p, q;
            if (a == c) {
                p = 2 * xm * s;
                q = 1 - s;
            } else {
                double qq = fa / fc, r = fb / fc;
                p = s * (2 * xm * qq * (qq - r) - (b - a) * (r - 1));
                q = (qq - 1) * (r - 1) * (s - 1);
            }
            if (p > 0)
                q = -q;
            else
                p = -p;
            if (2 * p < fmin(3 * xm * q - fabs(tol1 * q), fabs(e * q))) {
                e = d;
                d = p / q;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        a = b;
        fa = fb;
        b += fabs(d) > tol1 ? d : copysign(tol1, xm);
        if (step_state(S, st, b, S->ytmp, stats) || eval_g(S, b, S->ytmp, &fb))
            return 1;
    }
    *te = (fb == 0 || sign_of(fb) == snew) ? b : c;
    return step_state(S, st, *te, S->ytmp, stats);
}

/* An event at (te, ye): record it; a terminal one stops the solve (returns 1). */
static int record(search *S, double te, const double *ye)
{
    if (S->count < S->cap) {
        S->t_events[S->count] = te;
        if (S->y_events)
            memcpy(S->y_events + S->count * S->dim, ye, S->dim * sizeof *ye);
    }
    S->count++;
    if (!S->terminal)
        return 0;
    S->stopped = true;
    S->t_stop = te;
    if (S->y_stop)
        memcpy(S->y_stop, ye, S->dim * sizeof *ye);
    return 1;
}

/* Does a crossing from sign `from` to sign `to` along the solve pass the filter?
   Rising means g increases with t: along a backward solve the signs swap roles. */
static bool allowed(const search *S, int from, int to)
{
    if (S->ev->direction == 0)
        return true;
    bool rising = (double)(to - from) * S->dir > 0;
    return rising == (S->ev->direction > 0);
}

/* The observer: after each accepted step, compare the sign of g at its end. */
static int on_step(void *ctx, const node__step *st)
{
    step_ctx *sc = ctx;
    search *S = sc->S;
    double gnew;
    if (eval_g(S, st->tnew, st->ynew, &gnew))
        return 1;
    int snew = sign_of(gnew);
    if (S->ref == 0) {               /* g has been 0 since t0: no event in leaving it */
        S->ref = snew;
        S->g_prev = gnew;
        return 0;
    }
    if (snew == 0) {                 /* exactly 0 at the step end: decide later */
        if (!S->pending) {
            S->pending = true;
            S->t_z = st->tnew;
            memcpy(S->y_z, st->ynew, S->dim * sizeof *S->y_z);
        }
        return 0;
    }
    if (snew == S->ref) {            /* no crossing (or a touch of 0 at a step end) */
        S->pending = false;
        S->g_prev = gnew;
        return 0;
    }
    int from = S->ref;
    double gstart = S->g_prev;       /* g at the step's start (no pending zero) */
    S->ref = snew;
    S->g_prev = gnew;
    if (!allowed(S, from, snew)) {
        S->pending = false;
        return 0;
    }
    if (S->pending) {                /* it crossed where it was 0 */
        S->pending = false;
        return record(S, S->t_z, S->y_z);
    }
    double te;
    if (locate(S, st, sc->stats, st->t, gstart, st->tnew, gnew, &te))
        return 1;
    return record(S, te, S->ytmp);
}

/* The shared body of node_solver_odeint_event(s): validated arguments. */
static node_status run_search(node_solver *s, const node_system *sys, const double *y0,
                              double t0, double t_end, const node_event *ev,
                              const node_options *o, bool terminal, size_t cap,
                              double *t_events, double *y_events, size_t *nevents,
                              double *t_stop, double *y_stop, node_stats *stats)
{
    char *msg = stats->message;
    size_t dim = sys->dim;
    /* evt: y_z, ytmp, ys (2 rows) */
    if (node__grow(&s->evt, &s->evt_cap, 4 * dim) != NODE_OK)
        return node__msg(msg, NODE_ENOMEM, "no memory for the event search (%zu doubles)",
                         4 * dim);
    search S;
    memset(&S, 0, sizeof S);
    S.ev = ev;
    S.dim = dim;
    S.dir = t_end > t0 ? 1.0 : -1.0;
    S.rtol = o->rtol;
    S.terminal = terminal;
    S.y_z = s->evt;
    S.ytmp = s->evt + dim;
    S.cap = cap;
    S.t_events = t_events;
    S.y_events = y_events;
    S.y_stop = y_stop;
    double *ys = s->evt + 2 * dim;

    double g0;
    if (eval_g(&S, t0, y0, &g0)) {
        stats->callback_rc = S.rc;
        stats->t_reached = t0;
        memcpy(msg, S.msg, sizeof S.msg);
        return S.st;
    }
    S.ref = sign_of(g0);
    S.g_prev = g0;

    step_ctx sc = { &S, stats };
    node__observer obs = { .ctx = &sc, .accepted = on_step };
    node__ode ode = { dim, sys->f, sys->ctx, NULL, NULL };
    double ts[2] = { t0, t_end };
    node_status st = node__integrate(s, &ode, y0, ts, 2, ys, o, stats, &obs);
    stats->rows_done = 0;
    if (S.st != NODE_OK) {
        if (S.rc)
            stats->callback_rc = S.rc;
        memcpy(msg, S.msg, sizeof S.msg);
        return S.st;
    }
    if (S.stopped) {
        stats->message[0] = '\0';
        stats->t_reached = S.t_stop;
        st = NODE_OK;
    } else if (st == NODE_OK) {
        /* reached t_end; g still 0 where it became 0: an event there */
        bool at_end = false;
        if (S.pending && allowed(&S, S.ref, 0))
            at_end = record(&S, S.t_z, S.y_z) != 0;
        if (!at_end) {
            S.t_stop = t_end;
            if (y_stop)
                memcpy(y_stop, ys + dim, dim * sizeof *y_stop);
        }
    }
    if (st == NODE_OK) {
        if (t_stop)
            *t_stop = S.t_stop;
        stats->t_reached = S.t_stop;
    }
    *nevents = S.count;
    return st;
}

/* Arguments shared by every entry: sys, y0, the times, ev, opt. */
static node_status check_common(const node_solver *s, const node_system *sys, const double *y0,
                                double t0, double t1, const char *name1, const node_event *ev,
                                bool need_vjp, const node_options *opt, node_options *o,
                                char *msg)
{
    node_status st;
    if (!s)
        return node__msg(msg, NODE_EINVAL, "the solver object is NULL");
    if ((st = node__check_state(sys, y0, "y0", msg)) != NODE_OK)
        return st;
    if (need_vjp && !sys->vjp)
        return node__msg(msg, NODE_EINVAL,
                         "sys->vjp is NULL: the gradient through the event needs it");
    if ((st = check_times(t0, t1, name1, msg)) != NODE_OK)
        return st;
    if ((st = check_event(ev, need_vjp, msg)) != NODE_OK)
        return st;
    return node__options_resolve(opt, o, msg);
}

node_status node_solver_odeint_events(node_solver *s, const node_system *sys,
                                      const double *y0, double t0, double t_end,
                                      const node_event *ev, const node_options *opt,
                                      size_t cap, double *t_events, double *y_events,
                                      size_t *nevents, double *t_stop, double *y_stop,
                                      node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    char *msg = stats->message;
    node_options o;
    node_status st = check_common(s, sys, y0, t0, t_end, "t_end", ev, false, opt, &o, msg);
    if (st == NODE_OK && !nevents)
        st = node__msg(msg, NODE_EINVAL, "nevents is NULL");
    if (st == NODE_OK && cap > 0 && !t_events)
        st = node__msg(msg, NODE_EINVAL, "t_events is NULL but cap = %zu", cap);
    if (st == NODE_OK)
        st = run_search(s, sys, y0, t0, t_end, ev, &o, ev->terminal != 0, cap, t_events,
                        y_events, nevents, t_stop, y_stop, stats);
    return node__stats_end(stats, st);
}

node_status node_solver_odeint_event(node_solver *s, const node_system *sys,
                                     const double *y0, double t0, double t_end,
                                     const node_event *ev, const node_options *opt,
                                     double *t_event, double *y_event, int32_t *found,
                                     node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    char *msg = stats->message;
    if (found)
        *found = 0;
    node_options o;
    node_status st = check_common(s, sys, y0, t0, t_end, "t_end", ev, false, opt, &o, msg);
    if (st == NODE_OK && !t_event)
        st = node__msg(msg, NODE_EINVAL, "t_event is NULL");
    if (st == NODE_OK && !y_event)
        st = node__msg(msg, NODE_EINVAL, "y_event is NULL");
    if (st == NODE_OK && !found)
        st = node__msg(msg, NODE_EINVAL,
                       "found is NULL: it tells an event at t_end from no event at all");
    if (st == NODE_OK) {
        size_t n = 0;
        double te;
        st = run_search(s, sys, y0, t0, t_end, ev, &o, true, 1, &te, NULL, &n, t_event,
                        y_event, stats);
        if (st == NODE_OK)
            *found = n > 0;
    }
    return node__stats_end(stats, st);
}

/* ---- one-shot entries over a temporary solver ---------------------------------- */

node_status node_odeint_event(const node_system *sys, const double *y0, double t0,
                              double t_end, const node_event *ev, const node_options *opt,
                              double *t_event, double *y_event, int32_t *found,
                              node_stats *stats)
{
    node_solver s;
    node__solver_init(&s);
    node_status st = node_solver_odeint_event(&s, sys, y0, t0, t_end, ev, opt, t_event,
                                              y_event, found, stats);
    node__free(s.ode);
    node__free(s.evt);
    return st;
}

node_status node_odeint_events(const node_system *sys, const double *y0, double t0,
                               double t_end, const node_event *ev, const node_options *opt,
                               size_t cap, double *t_events, double *y_events,
                               size_t *nevents, double *t_stop, double *y_stop,
                               node_stats *stats)
{
    node_solver s;
    node__solver_init(&s);
    node_status st = node_solver_odeint_events(&s, sys, y0, t0, t_end, ev, opt, cap, t_events,
                                               y_events, nevents, t_stop, y_stop, stats);
    node__free(s.ode);
    node__free(s.evt);
    return st;
}

/* ---- the gradient through the event time ------------------------------------------ */

static node_status check_finite(const double *v, size_t n, const char *name, char *msg)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return node__msg(msg, NODE_EINVAL, "%s[%zu] = %g: it must be finite", name, i, v[i]);
    return NODE_OK;
}

node_status node_solver_event_grad(node_solver *s, const node_system *sys, const double *y0,
                                   double t0, const node_event *ev, double t_event,
                                   const double *y_event, double dLdt_event,
                                   const double *dLdy_event, node_grad_method method,
                                   double *dLdy0, double *dLdp, double *dLdphi, double *dLdt0,
                                   const node_options *opt, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    char *msg = stats->message;
    node_options o;
    node_status st = check_common(s, sys, y0, t0, t_event, "t_event", ev, true, opt, &o, msg);
    if (st != NODE_OK)
        return node__stats_end(stats, st);
    size_t dim = sys->dim, nphi = ev->nparams;
    if (!y_event)
        st = node__msg(msg, NODE_EINVAL, "y_event is NULL");
    else if ((st = check_finite(y_event, dim, "y_event", msg)) != NODE_OK)
        ;
    else if (!isfinite(dLdt_event))
        st = node__msg(msg, NODE_EINVAL, "dLdt_event = %g: it must be finite", dLdt_event);
    else if (dLdy_event && (st = check_finite(dLdy_event, dim, "dLdy_event", msg)) != NODE_OK)
        ;
    else if (!dLdy0)
        st = node__msg(msg, NODE_EINVAL, "dLdy0 is NULL");
    else if (dLdp && sys->nparams == 0)
        st = node__msg(msg, NODE_EINVAL,
                       "dLdp was given but sys->nparams = 0: there is no parameter gradient "
                       "to write (pass dLdp = NULL, or set nparams)");
    else if (dLdphi && nphi == 0)
        st = node__msg(msg, NODE_EINVAL,
                       "dLdphi was given but ev->nparams = 0: there is no event-parameter "
                       "gradient to write (pass dLdphi = NULL, or set nparams)");
    else if (method != NODE_GRAD_ADJOINT && method != NODE_GRAD_BACKPROP)
        st = node__msg(msg, NODE_EINVAL,
                       "method = %d is not a node_grad_method (NODE_GRAD_ADJOINT or "
                       "NODE_GRAD_BACKPROP)", (int)method);
    if (st != NODE_OK)
        return node__stats_end(stats, st);

    /* evt: f_e, dg/dy, ys (2 rows), dLdys (2 rows), dg/dphi */
    size_t need;
    if (!node__add_ok(6 * dim, dLdphi ? nphi : 0, &need) ||
        node__grow(&s->evt, &s->evt_cap, need) != NODE_OK)
        return node__stats_end(stats, node__msg(msg, NODE_ENOMEM,
                                                "no memory for the event gradient (%zu + %zu "
                                                "doubles)", 6 * dim, dLdphi ? nphi : 0));
    double *fe = s->evt, *gy = fe + dim, *ys = gy + dim, *dys = ys + 2 * dim;
    double *gphi = dLdphi ? dys + 2 * dim : NULL;

    /* f and the gradient of g at the event */
    stats->t_reached = t_event;
    stats->nfe++;
    int rc = sys->f(sys->ctx, t_event, y_event, fe);
    if (rc) {
        stats->callback_rc = rc;
        return node__stats_end(stats, node__msg(msg, NODE_ECALLBACK,
                                                "f returned %d at t_event = %.17g", rc,
                                                t_event));
    }
    if (node__nonfinite(fe, dim))
        return node__stats_end(stats, node__msg(msg, NODE_ENONFINITE,
                                                "f returned NaN or Inf at t_event = %.17g",
                                                t_event));
    double gt = 0;
    rc = ev->g_vjp(ev->ctx, t_event, y_event, &gt, gy, gphi);
    if (rc) {
        stats->callback_rc = rc;
        return node__stats_end(stats, node__msg(msg, NODE_ECALLBACK,
                                                "ev->g_vjp returned %d at t_event = %.17g", rc,
                                                t_event));
    }
    if (!isfinite(gt) || node__nonfinite(gy, dim) || (gphi && node__nonfinite(gphi, nphi)))
        return node__stats_end(stats, node__msg(msg, NODE_ENONFINITE,
                                                "ev->g_vjp returned NaN or Inf at t_event = "
                                                "%.17g", t_event));

    /* dg/dt along the solution, and how far it is from a grazing contact */
    double dgdt = gt, scale = fabs(gt), dLf = dLdt_event;
    for (size_t i = 0; i < dim; i++) {
        dgdt += gy[i] * fe[i];
        scale += fabs(gy[i] * fe[i]);
        if (dLdy_event)
            dLf += dLdy_event[i] * fe[i];
    }
    if (!(fabs(dgdt) > 1e-10 * scale))
        return node__stats_end(stats, node__msg(msg, NODE_EINVAL,
                                                "dg/dt = %g at t_event = %.17g (|dg/dt| + "
                                                "|dg/dy| |f| = %g): a grazing event, whose time "
                                                "does not depend smoothly on the inputs",
                                                dgdt, t_event, scale));
    double mu = -dLf / dgdt;
    if (dLdphi)
        for (size_t j = 0; j < nphi; j++)
            dLdphi[j] = mu * gphi[j];

    /* the cotangent at y_event, carried back to t0 by the ODE's gradient */
    memcpy(ys, y0, dim * sizeof *ys);
    memcpy(ys + dim, y_event, dim * sizeof *ys);
    memset(dys, 0, dim * sizeof *dys);
    for (size_t i = 0; i < dim; i++)
        dys[dim + i] = (dLdy_event ? dLdy_event[i] : 0) + mu * gy[i];
    double ts[2] = { t0, t_event }, dts[2];
    int64_t nfe_here = stats->nfe;
    st = (method == NODE_GRAD_ADJOINT ? node_solver_adjoint : node_solver_backprop)(
        s, sys, ts, 2, ys, dys, dLdy0, dLdp, dLdt0 ? dts : NULL, opt, stats);
    stats->nfe += nfe_here;
    if (st == NODE_OK && dLdt0)
        *dLdt0 = dts[0];
    return node__stats_end(stats, st);
}

node_status node_odeint_event_grad(const node_system *sys, const double *y0, double t0,
                                   const node_event *ev, double t_event, const double *y_event,
                                   double dLdt_event, const double *dLdy_event,
                                   node_grad_method method, double *dLdy0, double *dLdp,
                                   double *dLdphi, double *dLdt0, const node_options *opt,
                                   node_stats *stats)
{
    node_solver *s;
    node_stats local;
    if (node_solver_create(&s) != NODE_OK) {
        if (!stats)
            stats = &local;
        node__stats_begin(stats);
        return node__stats_end(stats, node__msg(stats->message, NODE_ENOMEM,
                                                "no memory for a solver object"));
    }
    node_status st = node_solver_event_grad(s, sys, y0, t0, ev, t_event, y_event, dLdt_event,
                                            dLdy_event, method, dLdy0, dLdp, dLdphi, dLdt0,
                                            opt, stats);
    node_solver_free(s);
    return st;
}
