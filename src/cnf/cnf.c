/* cnf.c — the continuous normalizing flow object (cnf.h; Chen et al. 2018, §4;
 * Grathwohl et al. 2019): the augmented state [z, ℓ] of each point with dℓ/dt = −div f,
 * as a node_system built on a node_flow's f / div / div_vjp; transports between two
 * times with the solver (Hutchinson probes drawn once per transport and kept for its
 * gradient), their gradients by the adjoint or exact backprop, log-densities under
 * the Gaussian base N(0, v I), the mean NLL and its gradient, and sampling.
 *
 * Workspaces: one block of doubles sized for the largest batch seen (grown, never
 * shrunk), so that calls at a batch no larger than an earlier one allocate nothing
 * (the solver's own workspaces and backprop's tape behave the same way).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

struct node_cnf {
    node_flow flow;
    node_cnf_options opt;     /* resolved: every default filled in */
    node_solver *solver;
    node_rng rng;             /* the Hutchinson probes */

    /* workspaces for `cap` rows (D = flow.width, n = cap (D+1)) */
    size_t cap;
    double *arena;
    double *y0;     /* n: the initial augmented state */
    double *ys;     /* 2n: the last transport's solution (row 0: [x_in, 0]; row 1: end) */
    double *dlys;   /* 2n: dL/dys for its gradient */
    double *dy0;    /* n: dL/dy0 */
    double *eps;    /* cap D: the probe of the last transport */
    double *zb, *fz, *ab, *vz;   /* cap D each: the system's packed rows */
    double *dv, *bb;             /* cap each */
    double *xo, *dl, *gx, *gl;   /* cap D, cap, cap D, cap: log_prob / nll scratch */

    /* the system made last (node_cnf_system or a transport) */
    size_t sys_batch;
    const double *sys_eps;

    /* the last transport, for node_cnf_transport_grad */
    bool have_last;
    size_t last_batch;
    double last_from, last_to;
    bool last_probe;   /* the transport used c->eps */
};

/* ---- trace kinds and options ------------------------------------------------------ */

static const char *const trace_names[] = { "exact", "rademacher", "gaussian" };

const char *node_trace_name(node_trace_kind k)
{
    return (unsigned)k < sizeof trace_names / sizeof trace_names[0] ? trace_names[k] : NULL;
}

node_status node_trace_parse(const char *name, node_trace_kind *out)
{
    if (!name || !out)
        return NODE_EINVAL;
    for (unsigned k = 0; k < sizeof trace_names / sizeof trace_names[0]; k++)
        if (strcmp(name, trace_names[k]) == 0) {
            *out = (node_trace_kind)k;
            return NODE_OK;
        }
    if (strcmp(name, "hutchinson") == 0) {
        *out = NODE_TRACE_RADEMACHER;
        return NODE_OK;
    }
    return NODE_EINVAL;
}

static node_options ode_default(void)
{
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-5;   /* the paper's (and torchdiffeq's cnf.py) setting */
    return o;
}

node_cnf_options node_cnf_options_default(void)
{
    node_cnf_options o;
    memset(&o, 0, sizeof o);
    o.ode = ode_default();
    o.t0 = 0;
    o.t1 = 1;
    o.base_var = 1;
    o.trace = NODE_TRACE_EXACT;
    o.grad = NODE_GRAD_ADJOINT;
    return o;
}

/* Validate opt (NULL = defaults) and fill in the defaults its zeros stand for. */
static node_status options_resolve(const node_cnf_options *opt, node_cnf_options *out,
                                   char *msg)
{
    static const node_options zero_ode;
    node_cnf_options o = opt ? *opt : node_cnf_options_default();
    if (!node__zero_words(o.reserved_, sizeof o.reserved_ / sizeof o.reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "opt has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s, or did not start from "
                         "node_cnf_options_default()", node_version());
    if (memcmp(&o.ode, &zero_ode, sizeof zero_ode) == 0)
        o.ode = ode_default();
    node_options checked;
    char why[NODE_MESSAGE_SIZE];
    if (node__options_resolve(&o.ode, &checked, why) != NODE_OK)
        return node__msg(msg, NODE_EINVAL, "opt->ode: %s", why);
    if (!isfinite(o.t0) || !isfinite(o.t1))
        return node__msg(msg, NODE_EINVAL, "opt->%s = %g: the times must be finite",
                         isfinite(o.t0) ? "t1" : "t0", isfinite(o.t0) ? o.t1 : o.t0);
    if (o.t0 == o.t1) {
        o.t0 = 0;
        o.t1 = 1;
    }
    if (!(o.base_var >= 0) || !isfinite(o.base_var))
        return node__msg(msg, NODE_EINVAL,
                         "opt->base_var = %g: the base variance must be finite and >= 0 "
                         "(0 = 1)", o.base_var);
    if (o.base_var == 0)
        o.base_var = 1;
    if (!node_trace_name(o.trace))
        return node__msg(msg, NODE_EINVAL,
                         "opt->trace = %d is not a node_trace_kind (exact, rademacher, "
                         "gaussian)", (int)o.trace);
    if (o.grad != NODE_GRAD_ADJOINT && o.grad != NODE_GRAD_BACKPROP)
        return node__msg(msg, NODE_EINVAL,
                         "opt->grad = %d is not a node_grad_method (NODE_GRAD_ADJOINT or "
                         "NODE_GRAD_BACKPROP)", (int)o.grad);
    *out = o;
    return NODE_OK;
}

/* ---- workspaces ------------------------------------------------------------------------ */

/* Make the workspaces hold `batch` rows.  Growing forgets the last transport. */
static node_status reserve(node_cnf *c, size_t batch, char *msg)
{
    if (batch <= c->cap && c->arena)
        return NODE_OK;
    const size_t D = c->flow.width;
    size_t n, nd, total;
    /* 7 n (y0, ys, dlys, dy0) + 7 batch·D (eps, zb, fz, ab, vz, xo, gx) + 4 batch */
    if (!node__mul_ok(batch, D + 1, &n) || !node__mul_ok(batch, D, &nd)
        || !node__mul_ok(n, 7, &n) || !node__mul_ok(nd, 7, &nd)
        || !node__add_ok(n, nd, &total) || !node__add_ok(total, 4 * batch, &total)
        || total > SIZE_MAX / sizeof(double))
        return node__msg(msg, NODE_ENOMEM,
                         "batch = %zu points of dimension %zu need more memory than can be "
                         "addressed", batch, D);
    double *p = node__malloc(total * sizeof(double));
    if (!p)
        return node__msg(msg, NODE_ENOMEM,
                         "no memory for the workspaces of batch = %zu points (%zu bytes)",
                         batch, total * sizeof(double));
    node__free(c->arena);
    c->arena = p;
    c->cap = batch;
    c->have_last = false;
    const size_t nn = batch * (D + 1), bd = batch * D;
    c->y0 = p;          p += nn;
    c->ys = p;          p += 2 * nn;
    c->dlys = p;        p += 2 * nn;
    c->dy0 = p;         p += nn;
    c->eps = p;         p += bd;
    c->zb = p;          p += bd;
    c->fz = p;          p += bd;
    c->ab = p;          p += bd;
    c->vz = p;          p += bd;
    c->xo = p;          p += bd;
    c->gx = p;          p += bd;
    c->dv = p;          p += batch;
    c->bb = p;          p += batch;
    c->dl = p;          p += batch;
    c->gl = p;
    return NODE_OK;
}

/* ---- the augmented system ------------------------------------------------------------ */

/* z rows of the augmented state y (rows [z, ℓ]) into z (batch × D). */
static void pack_z(size_t batch, size_t D, const double *y, double *z)
{
    for (size_t r = 0; r < batch; r++)
        memcpy(z + r * D, y + r * (D + 1), D * sizeof(double));
}

/* [f, −div] rows into dydt. */
static void unpack_rhs(size_t batch, size_t D, const double *fz, const double *div,
                       double *dydt)
{
    for (size_t r = 0; r < batch; r++) {
        memcpy(dydt + r * (D + 1), fz + r * D, D * sizeof(double));
        dydt[r * (D + 1) + D] = -div[r];
    }
}

static int sys_f(void *ctx, double t, const double *y, double *dydt)
{
    node_cnf *c = ctx;
    const size_t B = c->sys_batch, D = c->flow.width;
    pack_z(B, D, y, c->zb);
    int rc = c->flow.div(c->flow.ctx, B, t, c->zb, c->sys_eps, c->fz, c->dv);
    if (rc)
        return rc;
    unpack_rhs(B, D, c->fz, c->dv, dydt);
    return 0;
}

/* The VJP of [f, −div] for the cotangent rows [a_z, a_ℓ]: div_vjp with a = a_z and
   b = −a_ℓ; nothing depends on ℓ, so its column of vjp_y is 0. */
static int sys_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vjp_y, double *vjp_p, double *vjp_t)
{
    node_cnf *c = ctx;
    const size_t B = c->sys_batch, D = c->flow.width;
    pack_z(B, D, y, c->zb);
    pack_z(B, D, a, c->ab);
    for (size_t r = 0; r < B; r++)
        c->bb[r] = -a[r * (D + 1) + D];
    int rc = c->flow.div_vjp(c->flow.ctx, B, t, c->zb, c->sys_eps, c->ab, c->bb,
                             dydt ? c->fz : NULL, dydt ? c->dv : NULL, c->vz, vjp_p, vjp_t);
    if (rc)
        return rc;
    if (dydt)
        unpack_rhs(B, D, c->fz, c->dv, dydt);
    for (size_t r = 0; r < B; r++) {
        memcpy(vjp_y + r * (D + 1), c->vz + r * D, D * sizeof(double));
        vjp_y[r * (D + 1) + D] = 0;
    }
    return 0;
}

static void make_system(node_cnf *c, size_t batch, const double *eps, node_system *out)
{
    c->sys_batch = batch;
    c->sys_eps = eps;
    memset(out, 0, sizeof *out);
    out->dim = batch * (c->flow.width + 1);
    out->nparams = c->flow.nparams;
    out->ctx = c;
    out->f = sys_f;
    out->vjp = sys_vjp;
}

/* ---- the object -------------------------------------------------------------------------- */

static node_status check_flow(const node_flow *flow, char *msg)
{
    if (!flow)
        return node__msg(msg, NODE_EINVAL, "flow is NULL");
    if (flow->width == 0)
        return node__msg(msg, NODE_EINVAL, "flow->width is 0: points need at least one "
                         "coordinate");
    if (!flow->f || !flow->div || !flow->div_vjp)
        return node__msg(msg, NODE_EINVAL, "flow->%s is NULL: a CNF needs f, div and div_vjp",
                         !flow->f ? "f" : !flow->div ? "div" : "div_vjp");
    if (!node__zero_words(flow->reserved_, sizeof flow->reserved_ / sizeof flow->reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "flow has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s, or did not zero the struct",
                         node_version());
    if (flow->width > NODE__MAX_DIM - 1)
        return node__msg(msg, NODE_EINVAL, "flow->width = %zu is too large", flow->width);
    return NODE_OK;
}

static node_status create_run(node_cnf **out, const node_flow *flow, size_t max_batch,
                              const node_cnf_options *opt, char *msg)
{
    if (!out)
        return node__msg(msg, NODE_EINVAL, "out is NULL");
    node_status st = check_flow(flow, msg);
    if (st != NODE_OK)
        return st;
    node_cnf_options o;
    if ((st = options_resolve(opt, &o, msg)) != NODE_OK)
        return st;
    node_cnf *c = node__calloc(1, sizeof *c);
    if (!c)
        return node__msg(msg, NODE_ENOMEM, "no memory for the cnf object");
    c->flow = *flow;
    c->opt = o;
    node_rng_seed(&c->rng, o.seed);
    if ((st = node_solver_create(&c->solver)) != NODE_OK) {
        node__free(c);
        return node__msg(msg, st, "no memory for the cnf's solver");
    }
    if (max_batch && (st = reserve(c, max_batch, msg)) != NODE_OK) {
        node_cnf_free(c);
        return st;
    }
    *out = c;
    return NODE_OK;
}

node_status node_cnf_create(node_cnf **out, const node_flow *flow, size_t max_batch,
                            const node_cnf_options *opt, node_error *err)
{
    char *msg = node__err_begin(err);
    return node__err_end(err, create_run(out, flow, max_batch, opt, msg));
}

void node_cnf_free(node_cnf *c)
{
    if (!c)
        return;
    node_solver_free(c->solver);
    node__free(c->arena);
    node__free(c);
}

node_status node_cnf_set_options(node_cnf *c, const node_cnf_options *opt, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!c)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "c is NULL"));
    node_cnf_options o;
    node_status st = options_resolve(opt, &o, msg);
    if (st != NODE_OK)
        return node__err_end(err, st);
    if (o.seed != c->opt.seed)
        node_rng_seed(&c->rng, o.seed);
    c->opt = o;
    c->have_last = false;   /* its gradient would use other options */
    return node__err_end(err, NODE_OK);
}

node_status node_cnf_get_options(const node_cnf *c, node_cnf_options *out)
{
    if (!c || !out)
        return NODE_EINVAL;
    *out = c->opt;
    return NODE_OK;
}

node_status node_cnf_seed(node_cnf *c, uint64_t seed)
{
    if (!c)
        return NODE_EINVAL;
    c->opt.seed = seed;
    return node_rng_seed(&c->rng, seed);
}

node_status node_cnf_system(node_cnf *c, size_t batch, const double *eps, node_system *out)
{
    if (!c || !out || batch == 0)
        return NODE_EINVAL;
    if (reserve(c, batch, NULL) != NODE_OK)
        return NODE_ENOMEM;
    make_system(c, batch, eps, out);
    return NODE_OK;
}

/* ---- transports and their gradients ----------------------------------------------------- */

/* NODE_EINVAL naming the first NaN or Inf of the batch × w array v. */
static node_status check_finite(const double *v, size_t batch, size_t w, const char *name,
                                char *msg)
{
    for (size_t k = 0; k < batch * w; k++)
        if (!isfinite(v[k]))
            return w == 1
                ? node__msg(msg, NODE_EINVAL, "%s[%zu] = %g: must be finite", name, k, v[k])
                : node__msg(msg, NODE_EINVAL, "%s[%zu][%zu] = %g: must be finite", name,
                            k / w, k % w, v[k]);
    return NODE_OK;
}

static node_status check_call(const node_cnf *c, size_t batch, char *msg)
{
    if (!c)
        return node__msg(msg, NODE_EINVAL, "c is NULL");
    if (batch == 0)
        return node__msg(msg, NODE_EINVAL, "batch is 0: at least one point is needed");
    return NODE_OK;
}

/* Fill c->eps (batch × D) with a new probe of the cnf's kind. */
static void draw_probe(node_cnf *c, size_t batch)
{
    const size_t n = batch * c->flow.width;
    if (c->opt.trace == NODE_TRACE_GAUSSIAN) {
        node_rng_normal(&c->rng, n, c->eps);
        return;
    }
    node_rng_uniform(&c->rng, n, c->eps);
    for (size_t k = 0; k < n; k++)
        c->eps[k] = c->eps[k] < 0.5 ? -1.0 : 1.0;
}

/* Solve from [x_in, 0] at t_from to t_to into c->ys and record it.  The arguments are
   checked but for the outputs; `name` is x_in's in messages. */
static node_status transport_run(node_cnf *c, size_t batch, const double *x_in,
                                 const char *name, double t_from, double t_to,
                                 node_stats *stats)
{
    char *msg = stats->message;
    const size_t D = c->flow.width;
    node_status st;
    if (!x_in)
        return node__msg(msg, NODE_EINVAL, "%s is NULL", name);
    if (!isfinite(t_from) || !isfinite(t_to))
        return node__msg(msg, NODE_EINVAL, "%s = %g: the times must be finite",
                         isfinite(t_from) ? "t_to" : "t_from", isfinite(t_from) ? t_to : t_from);
    if (t_from == t_to)
        return node__msg(msg, NODE_EINVAL, "t_from = t_to = %g: a transport needs two times",
                         t_from);
    if ((st = check_finite(x_in, batch, D, name, msg)) != NODE_OK)
        return st;
    if ((st = reserve(c, batch, msg)) != NODE_OK)
        return st;
    c->have_last = false;
    for (size_t r = 0; r < batch; r++) {
        memcpy(c->y0 + r * (D + 1), x_in + r * D, D * sizeof(double));
        c->y0[r * (D + 1) + D] = 0;
    }
    bool probe = c->opt.trace != NODE_TRACE_EXACT;
    if (probe)
        draw_probe(c, batch);
    node_system sys;
    make_system(c, batch, probe ? c->eps : NULL, &sys);
    const double ts[2] = { t_from, t_to };
    /* For exact backprop the solve is recorded now, so that its gradient needs no
       second forward solve. */
    st = (c->opt.grad == NODE_GRAD_BACKPROP ? node__backprop_record : node_solver_odeint)(
        c->solver, &sys, c->y0, ts, 2, c->ys, &c->opt.ode, stats);
    if (st != NODE_OK)
        return st;
    c->have_last = true;
    c->last_batch = batch;
    c->last_from = t_from;
    c->last_to = t_to;
    c->last_probe = probe;
    return NODE_OK;
}

/* The end of the last transport: x_out (batch × D) and dlogp (batch). */
static void transport_out(const node_cnf *c, double *x_out, double *dlogp)
{
    const size_t B = c->last_batch, D = c->flow.width;
    const double *y1 = c->ys + B * (D + 1);
    for (size_t r = 0; r < B; r++) {
        if (x_out)
            memcpy(x_out + r * D, y1 + r * (D + 1), D * sizeof(double));
        if (dlogp)
            dlogp[r] = y1[r * (D + 1) + D];
    }
}

node_status node_cnf_transport(node_cnf *c, size_t batch, const double *x_in, double t_from,
                               double t_to, double *x_out, double *dlogp, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_status st = check_call(c, batch, stats->message);
    if (st == NODE_OK && (!x_out || !dlogp))
        st = node__msg(stats->message, NODE_EINVAL, "%s is NULL", !x_out ? "x_out" : "dlogp");
    if (st == NODE_OK && (st = transport_run(c, batch, x_in, "x_in", t_from, t_to, stats)) == NODE_OK)
        transport_out(c, x_out, dlogp);
    return node__stats_end(stats, st);
}

/* The gradient of the recorded transport for dL/dx_out and dL/ddlogp (NULL = 0):
   dL/dx_in (may be NULL) and dL/dθ (may be NULL). */
static node_status grad_run(node_cnf *c, const double *dL_dxout, const double *dL_ddlogp,
                            double *dL_dxin, double *dL_dtheta, node_stats *stats)
{
    const size_t B = c->last_batch, D = c->flow.width, n = B * (D + 1);
    memset(c->dlys, 0, n * sizeof(double));
    double *row1 = c->dlys + n;
    for (size_t r = 0; r < B; r++) {
        memcpy(row1 + r * (D + 1), dL_dxout + r * D, D * sizeof(double));
        row1[r * (D + 1) + D] = dL_ddlogp ? dL_ddlogp[r] : 0.0;
    }
    node_system sys;
    make_system(c, B, c->last_probe ? c->eps : NULL, &sys);
    const double ts[2] = { c->last_from, c->last_to };
    double *dp = c->flow.nparams ? dL_dtheta : NULL;
    node_status st = (c->opt.grad == NODE_GRAD_ADJOINT ? node_solver_adjoint
                      : node__backprop_reverse)(c->solver, &sys, ts, 2, c->ys, c->dlys, c->dy0,
                                                dp, NULL, &c->opt.ode, stats);
    if (st != NODE_OK)
        return st;
    if (dL_dxin)
        pack_z(B, D, c->dy0, dL_dxin);
    return NODE_OK;
}

/* NODE_EINVAL unless v (batch × w) equals, entry for entry, column `col` on of the
   rows of the augmented state at row `row` of c->ys. */
static node_status check_same(const node_cnf *c, const double *v, size_t w, size_t row,
                              size_t col, const char *name, char *msg)
{
    const size_t B = c->last_batch, D = c->flow.width;
    const double *y = c->ys + row * B * (D + 1);
    for (size_t r = 0; r < B; r++)
        for (size_t j = 0; j < w; j++)
            if (!(v[r * w + j] == y[r * (D + 1) + col + j]))
                return w == 1
                    ? node__msg(msg, NODE_EINVAL,
                                "%s[%zu] = %.17g is not what the last transport had (%.17g)", name,
                                r, v[r * w + j], y[r * (D + 1) + col + j])
                    : node__msg(msg, NODE_EINVAL,
                                "%s[%zu][%zu] = %.17g is not what the last transport had (%.17g)",
                                name, r, j, v[r * w + j], y[r * (D + 1) + col + j]);
    return NODE_OK;
}

static node_status transport_grad_check(const node_cnf *c, size_t batch, const double *x_in,
                                        double t_from, double t_to, const double *x_out,
                                        const double *dlogp, const double *dL_dxout,
                                        const double *dL_ddlogp, char *msg)
{
    const size_t D = c->flow.width;
    node_status st;
    if (!x_in || !x_out || !dlogp || !dL_dxout)
        return node__msg(msg, NODE_EINVAL, "%s is NULL",
                         !x_in ? "x_in" : !x_out ? "x_out" : !dlogp ? "dlogp" : "dL_dxout");
    if (!c->have_last)
        return node__msg(msg, NODE_EINVAL,
                         "no transport to differentiate: call node_cnf_transport first (a "
                         "failed call, node_cnf_set_options or a larger batch forgets it)");
    if (batch != c->last_batch)
        return node__msg(msg, NODE_EINVAL, "batch = %zu, but the last transport had %zu",
                         batch, c->last_batch);
    if (!(t_from == c->last_from) || !(t_to == c->last_to))
        return node__msg(msg, NODE_EINVAL,
                         "t_from, t_to = %g, %g, but the last transport went from %g to %g",
                         t_from, t_to, c->last_from, c->last_to);
    if ((st = check_same(c, x_in, D, 0, 0, "x_in", msg)) != NODE_OK
        || (st = check_same(c, x_out, D, 1, 0, "x_out", msg)) != NODE_OK
        || (st = check_same(c, dlogp, 1, 1, D, "dlogp", msg)) != NODE_OK)
        return st;
    if ((st = check_finite(dL_dxout, batch, D, "dL_dxout", msg)) != NODE_OK)
        return st;
    if (dL_ddlogp && (st = check_finite(dL_ddlogp, batch, 1, "dL_ddlogp", msg)) != NODE_OK)
        return st;
    return NODE_OK;
}

node_status node_cnf_transport_grad(node_cnf *c, size_t batch, const double *x_in,
                                    double t_from, double t_to, const double *x_out,
                                    const double *dlogp, const double *dL_dxout,
                                    const double *dL_ddlogp, double *dL_dxin,
                                    double *dL_dtheta, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_status st = check_call(c, batch, stats->message);
    if (st == NODE_OK)
        st = transport_grad_check(c, batch, x_in, t_from, t_to, x_out, dlogp, dL_dxout,
                                  dL_ddlogp, stats->message);
    if (st == NODE_OK)
        st = grad_run(c, dL_dxout, dL_ddlogp, dL_dxin, dL_dtheta, stats);
    return node__stats_end(stats, st);
}

/* ---- densities -------------------------------------------------------------------------- */

/* log N(z; 0, v I) of one point of dimension D. */
static double base_logp(const double *z, size_t D, double v)
{
    double s = 0;
    for (size_t j = 0; j < D; j++)
        s += z[j] * z[j];
    return -0.5 * s / v - 0.5 * (double)D * log(2.0 * 3.14159265358979323846 * v);
}

/* log p(x) of the batch into logp: transport t1 → t0 into c->xo, c->dl. */
static node_status log_prob_run(node_cnf *c, size_t batch, const double *x, double *logp,
                                node_stats *stats)
{
    const size_t D = c->flow.width;
    node_status st = transport_run(c, batch, x, "x", c->opt.t1, c->opt.t0, stats);
    if (st != NODE_OK)
        return st;
    transport_out(c, c->xo, c->dl);
    for (size_t r = 0; r < batch; r++)
        logp[r] = base_logp(c->xo + r * D, D, c->opt.base_var) - c->dl[r];
    return NODE_OK;
}

node_status node_cnf_log_prob(node_cnf *c, size_t batch, const double *x, double *logp,
                              node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node_status st = check_call(c, batch, stats->message);
    if (st == NODE_OK && (!x || !logp))
        st = node__msg(stats->message, NODE_EINVAL, "%s is NULL", !x ? "x" : "logp");
    if (st == NODE_OK)
        st = log_prob_run(c, batch, x, logp, stats);
    return node__stats_end(stats, st);
}

static node_status nll_run(node_cnf *c, size_t batch, const double *x, double *nll,
                           double *grad, int64_t *nfe_backward, node_stats *stats)
{
    const size_t D = c->flow.width;
    /* c->gl must be the workspace that the transport's reserve leaves in place */
    node_status st = check_finite(x, batch, D, "x", stats->message);
    if (st == NODE_OK)
        st = reserve(c, batch, stats->message);
    if (st == NODE_OK)
        st = log_prob_run(c, batch, x, c->gl, stats);
    if (st != NODE_OK)
        return st;
    const double inv = 1.0 / (double)batch, v = c->opt.base_var;
    double s = 0;
    for (size_t r = 0; r < batch; r++)
        s += c->gl[r];
    *nll = -s * inv;
    if (!grad)
        return NODE_OK;
    /* nll = −(1/B) Σ_r [log N(z_r) − dlogp_r]:  ∂/∂z_r = z_r / (B v),  ∂/∂dlogp_r = 1/B. */
    for (size_t r = 0; r < batch; r++) {
        for (size_t j = 0; j < D; j++)
            c->gx[r * D + j] = c->xo[r * D + j] * inv / v;
        c->gl[r] = inv;
    }
    node_stats bs;
    st = grad_run(c, c->gx, c->gl, NULL, grad, &bs);
    if (nfe_backward)
        *nfe_backward = bs.nfe;
    if (st != NODE_OK) {
        stats->t_reached = bs.t_reached;
        stats->callback_rc = bs.callback_rc;
        return node__msg(stats->message, st, "gradient (%s): %s",
                         c->opt.grad == NODE_GRAD_ADJOINT ? "adjoint" : "backprop", bs.message);
    }
    return NODE_OK;
}

node_status node_cnf_nll(node_cnf *c, size_t batch, const double *x, double *nll,
                         double *grad, int64_t *nfe_forward, int64_t *nfe_backward,
                         node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    if (nfe_forward)
        *nfe_forward = 0;
    if (nfe_backward)
        *nfe_backward = 0;
    node_status st = check_call(c, batch, stats->message);
    if (st == NODE_OK && (!x || !nll))
        st = node__msg(stats->message, NODE_EINVAL, "%s is NULL", !x ? "x" : "nll");
    if (st == NODE_OK)
        st = nll_run(c, batch, x, nll, grad, nfe_backward, stats);
    if (nfe_forward)
        *nfe_forward = stats->nfe;
    return node__stats_end(stats, st);
}

node_status node_cnf_sample(node_cnf *c, node_rng *rng, size_t batch, double *z0_out,
                            double *x, double *logp, node_stats *stats)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    char *msg = stats->message;
    node_status st = check_call(c, batch, msg);
    if (st == NODE_OK && (!rng || !x))
        st = node__msg(msg, NODE_EINVAL, "%s is NULL", !rng ? "rng" : "x");
    if (st == NODE_OK)
        st = reserve(c, batch, msg);
    if (st != NODE_OK)
        return node__stats_end(stats, st);
    const size_t D = c->flow.width;
    double *z0 = c->gx;
    if (node_rng_normal(rng, batch * D, z0) != NODE_OK)
        return node__stats_end(stats, node__msg(msg, NODE_EINVAL,
                                                "rng has non-zero reserved fields (seed it with "
                                                "node_rng_seed)"));
    const double sd = sqrt(c->opt.base_var);
    for (size_t k = 0; k < batch * D; k++)
        z0[k] *= sd;
    if ((st = transport_run(c, batch, z0, "z0", c->opt.t0, c->opt.t1, stats)) != NODE_OK)
        return node__stats_end(stats, st);
    transport_out(c, x, c->dl);
    for (size_t r = 0; r < batch; r++) {
        if (logp)
            logp[r] = base_logp(z0 + r * D, D, c->opt.base_var) + c->dl[r];
        if (z0_out)
            memcpy(z0_out + r * D, z0 + r * D, D * sizeof(double));
    }
    return node__stats_end(stats, NODE_OK);
}
