/* latent_loss.c — the latent ODE's −ELBO, its gradient and its predictions (Chen et al.
 * 2018, Section 5): the recognition RNN backwards over each series' encoder
 * observations, q(z0 | x) = N(μ, diag σ²), z0 = μ + σ ⊙ ε, one solve of dz/dt = f(z)
 * for the whole batch on the union of its times, the decoder at every time, the
 * Gaussian likelihood of the observed entries and the KL; the gradient back through
 * the decoder, the adjoint or exact backprop, the reparameterisation and KL, the
 * encoder's output layer and backprop through time.
 */
#include "seq/latent.h"

#include <math.h>
#include <string.h>

/* ---- scratch ------------------------------------------------------------------------
   One block, laid out for (B, nt): the encoder's inputs in reversed time, its hidden
   states, μ and log σ², z0, the latent path and the decoded path; with gradients also
   their adjoints.  Grown to the largest call seen, never shrunk. */

typedef struct scratch {
    double *enc_in;   /* nt × B × (D+1): [x, gap], row k is time nt-1-k */
    double *hs;       /* (nt+1) × B × H */
    double *mulv;     /* B × 2L: [μ_b, log σ²_b] */
    double *z0;       /* B × L */
    double *tnext;    /* B: the series' next encoder time while the inputs are built */
    double *ys;       /* nt × B × L */
    double *xpred;    /* nt × B × D */
    double *dmulv, *dz0, *dkl, *dys, *dxpred;   /* gradients (NULL without) */
    unsigned char *rmask;   /* nt × B: enc_mask in reversed time */
    unsigned char *omask;   /* nt × B × D: obs_mask per entry */
} scratch;

typedef struct carver {
    unsigned char *base;   /* NULL: only measure */
    size_t off;
    bool ok;
} carver;

/* The next a·b·c elements of size elem, on a 64-byte boundary; NULL if n = 0. */
static void *carve(carver *c, size_t a, size_t b, size_t n3, size_t elem, bool want)
{
    size_t n, end;
    if (!want || !c->ok)
        return NULL;
    if (!node__mul_ok(a, b, &n) || !node__mul_ok(n, n3, &n) || !node__mul_ok(n, elem, &n)
        || !node__add_ok(c->off, n, &end) || !node__add_ok(end, 63, &end)) {
        c->ok = false;
        return NULL;
    }
    void *p = c->base ? c->base + c->off : NULL;
    c->off = end & ~(size_t)63;
    return p;
}

static void layout(const node_latent *m, size_t B, size_t nt, bool grad, carver *c,
                   scratch *s)
{
    size_t D = m->D, L = m->L, H = m->H, nt1 = nt + 1;
    if (nt1 == 0)
        c->ok = false;
    /* (m->dhs, kept apart: see reserve) */
    s->enc_in = carve(c, nt, B, D + 1, sizeof(double), true);
    s->hs = carve(c, nt1, B, H, sizeof(double), true);
    s->mulv = carve(c, B, 2, L, sizeof(double), true);
    s->z0 = carve(c, B, 1, L, sizeof(double), true);
    s->tnext = carve(c, B, 1, 1, sizeof(double), true);
    s->ys = carve(c, nt, B, L, sizeof(double), true);
    s->xpred = carve(c, nt, B, D, sizeof(double), true);
    s->dmulv = carve(c, B, 2, L, sizeof(double), grad);
    s->dz0 = carve(c, B, 1, L, sizeof(double), grad);
    s->dkl = carve(c, B, 2, L, sizeof(double), grad);
    s->dys = carve(c, nt, B, L, sizeof(double), grad);
    s->dxpred = carve(c, nt, B, D, sizeof(double), grad);
    s->rmask = carve(c, nt, B, 1, 1, true);
    s->omask = carve(c, nt, B, D, 1, true);
}

/* Make every workspace of a call at (B, nt) ready: the scratch block, f's workspace for
   B rows, the encoder layer's for B and the decoder's for nt·B.  Nothing is allocated
   when an earlier call was as large.  On failure the old workspaces stay. */
static node_status reserve(node_latent *m, size_t B, size_t nt, bool grad, scratch *s,
                           char *msg)
{
    carver c = { NULL, 0, true };
    layout(m, B, nt, grad, &c, s);
    size_t rows;
    if (!c.ok || !node__mul_ok(nt, B, &rows))
        return node__msg(msg, NODE_ENOMEM,
                         "B = %zu series on nt = %zu times need more memory than can be "
                         "addressed", B, nt);
    if (c.off > m->arena_cap) {
        unsigned char *p = node__malloc(c.off);
        if (!p)
            return node__msg(msg, NODE_ENOMEM,
                             "no memory for the scratch of B = %zu series on nt = %zu times "
                             "(%zu bytes)", B, nt, c.off);
        node__free(m->arena);
        m->arena = p;
        m->arena_cap = c.off;
    }
    if (B > m->fws_batch) {
        node_mlp_ws *w = NULL;
        node_status st = node_mlp_ws_create(m->f, B, &w);
        if (st != NODE_OK)
            return node__msg(msg, st, "no memory for the dynamics' workspace (B = %zu)", B);
        node_mlp_ws_free(m->fws);
        m->fws = w;
        m->fws_batch = B;
    }
    node_status st = node_mlp_reserve(m->enc, B);
    if (st == NODE_OK)
        st = node_mlp_reserve(m->g, rows);
    if (st != NODE_OK)
        return node__msg(msg, st, "no memory for the encoder's or decoder's workspace "
                         "(%zu rows)", rows);
    /* ∂L/∂hs for backprop through time is zero but in its last block (the final
       state feeds the output layer): a buffer of its own, calloc'd and zero between
       calls (the last block is cleared after use), so that no call clears it all —
       and untouched pages of a large calloc are not even resident. */
    size_t ndhs;
    if (grad && (!node__mul_ok(rows + B, m->H, &ndhs) || ndhs > SIZE_MAX / sizeof(double)))
        return node__msg(msg, NODE_ENOMEM,
                         "B = %zu series on nt = %zu times need more memory than can be "
                         "addressed", B, nt);
    if (grad && ndhs > m->dhs_cap) {
        double *p = node__calloc(ndhs, sizeof(double));
        if (!p)
            return node__msg(msg, NODE_ENOMEM,
                             "no memory for the recurrent gradient of B = %zu series on "
                             "nt = %zu times", B, nt);
        node__free(m->dhs);
        m->dhs = p;
        m->dhs_cap = ndhs;
    }
    carver at = { m->arena, 0, true };
    layout(m, B, nt, grad, &at, s);
    return NODE_OK;
}

/* ---- the dynamics: f over the B rows of the latent state ------------------------------ */

static int dyn_f(void *ctx, double t, const double *y, double *dydt)
{
    node_latent *m = ctx;
    node_status st = node_mlp_forward_ws(m->f, m->fws, m->batch, t, y, dydt);
    if (st != NODE_OK) {
        m->cb_status = st;
        return 1;
    }
    return 0;
}

static int dyn_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vjp_y, double *vjp_p, double *vjp_t)
{
    node_latent *m = ctx;
    node_status st = node_mlp_vjp_ws(m->f, m->fws, m->batch, t, y, a, dydt, vjp_y, vjp_p,
                                     vjp_t);
    if (st != NODE_OK) {
        m->cb_status = st;
        return 1;
    }
    return 0;
}

/* ---- arguments ----------------------------------------------------------------------- */

/* The checks shared by loss and predict, after the pointers: ts, the encoder's
   observations, the values read, eps. */
static node_status check_batch(const node_latent *m, size_t B, size_t nt, const double *ts,
                               const double *xs, const unsigned char *enc_mask,
                               const unsigned char *obs_mask, const double *eps, char *msg)
{
    for (size_t i = 0; i < nt; i++) {
        if (!isfinite(ts[i]))
            return node__msg(msg, NODE_EINVAL, "ts[%zu] = %g is not finite", i, ts[i]);
        if (i > 0 && !(ts[i] > ts[i - 1]))
            return node__msg(msg, NODE_EINVAL,
                             "ts[%zu] = %g is not after ts[%zu] = %g: ts must be strictly "
                             "increasing", i, ts[i], i - 1, ts[i - 1]);
    }
    for (size_t b = 0; b < B; b++) {
        size_t i = 0;
        while (i < nt && !enc_mask[i * B + b])
            i++;
        if (i == nt)
            return node__msg(msg, NODE_EINVAL,
                             "series %zu has no observation in enc_mask: the encoder needs "
                             "at least one", b);
    }
    const size_t D = m->D;
    for (size_t r = 0; r < nt * B; r++) {
        if (!enc_mask[r] && !(obs_mask && obs_mask[r]))
            continue;
        for (size_t d = 0; d < D; d++)
            if (!isfinite(xs[r * D + d]))
                return node__msg(msg, NODE_EINVAL,
                                 "xs[%zu] = %g (time %zu, series %zu) is read (its mask is 1) "
                                 "and must be finite", r * D + d, xs[r * D + d], r / B, r % B);
    }
    if (eps)
        for (size_t k = 0; k < B * m->L; k++)
            if (!isfinite(eps[k]))
                return node__msg(msg, NODE_EINVAL, "eps[%zu] = %g is not finite", k, eps[k]);
    return NODE_OK;
}

/* ---- the forward pass -------------------------------------------------------------- */

/* The recognition RNN's inputs, last time first: row k is time i = nt-1-k, and a series
   observed there gets [x_i, t_next − t_i] (t_next its next encoder observation, none:
   0) and steps; elsewhere it keeps its state (mask 0). */
static void encoder_inputs(const node_latent *m, size_t B, size_t nt, const double *ts,
                           const double *xs, const unsigned char *enc_mask, const scratch *s)
{
    const size_t D = m->D, W = D + 1;
    for (size_t b = 0; b < B; b++)
        s->tnext[b] = NAN;
    for (size_t k = 0; k < nt; k++) {
        size_t i = nt - 1 - k;
        for (size_t b = 0; b < B; b++) {
            double *row = s->enc_in + (k * B + b) * W;
            unsigned char on = enc_mask[i * B + b] != 0;
            s->rmask[k * B + b] = on;
            if (!on) {
                memset(row, 0, W * sizeof(double));
                continue;
            }
            memcpy(row, xs + (i * B + b) * D, D * sizeof(double));
            row[D] = isnan(s->tnext[b]) ? 0.0 : s->tnext[b] - ts[i];
            s->tnext[b] = ts[i];
        }
    }
}

/* Encode, draw z0 and solve: fills the scratch up to ys.  sys receives the dynamics
   (for the gradient), stats the forward solve. */
static node_status forward(node_latent *m, node_solver *s, size_t B, size_t nt,
                           const double *ts, const double *xs, const unsigned char *enc_mask,
                           const double *eps, const node_options *opt, const scratch *sc,
                           node_system *sys, node_stats *stats, char *msg)
{
    const size_t L = m->L, H = m->H;
    node__latent_params_in(m);
    encoder_inputs(m, B, nt, ts, xs, enc_mask, sc);
    node_status st = node_rnn_forward(m->rnn, nt, B, sc->enc_in, sc->rmask, NULL, sc->hs);
    if (st != NODE_OK)
        return node__msg(msg, st, "the recognition RNN failed: %s", node_strerror(st));
    st = node_mlp_forward(m->enc, B, 0.0, sc->hs + nt * B * H, sc->mulv);
    if (st != NODE_OK)
        return node__msg(msg, st, "the encoder's output layer failed: %s", node_strerror(st));
    for (size_t b = 0; b < B; b++) {
        const double *mu = sc->mulv + 2 * L * b, *lv = mu + L;
        for (size_t j = 0; j < L; j++) {
            double z = eps ? mu[j] + exp(0.5 * lv[j]) * eps[b * L + j] : mu[j];
            if (!isfinite(z) || !isfinite(lv[j]))
                return node__msg(msg, NODE_ENONFINITE,
                                 "series %zu: the encoder gives mu = %g, logvar = %g, z0 = %g "
                                 "(component %zu): NaN or Inf", b, mu[j], lv[j], z, j);
            sc->z0[b * L + j] = z;
        }
    }
    memset(sys, 0, sizeof *sys);
    sys->dim = B * L;
    sys->nparams = node_mlp_nparams(m->f);
    sys->ctx = m;
    sys->f = dyn_f;
    sys->vjp = dyn_vjp;
    m->batch = B;
    m->cb_status = NODE_OK;
    st = node_solver_odeint(s, sys, sc->z0, ts, nt, sc->ys, opt, stats);
    if (st != NODE_OK) {
        if (m->cb_status != NODE_OK)
            st = m->cb_status;
        return node__msg(msg, st, "forward solve: %s", stats->message);
    }
    return NODE_OK;
}

/* The decoder over all nt·B rows of the latent path; NODE_ENONFINITE if it overflows. */
static node_status decode(node_latent *m, size_t B, size_t nt, const double *ys, double *x,
                          char *msg)
{
    const size_t D = m->D;
    node_status st = node_mlp_forward(m->g, nt * B, 0.0, ys, x);
    if (st != NODE_OK)
        return node__msg(msg, st, "the decoder failed: %s", node_strerror(st));
    for (size_t k = 0; k < nt * B * D; k++)
        if (!isfinite(x[k]))
            return node__msg(msg, NODE_ENONFINITE,
                             "the decoder gives NaN or Inf at time %zu, series %zu", k / D / B,
                             k / D % B);
    return NODE_OK;
}

/* Report st (msg its reason) into stats and err; stats keeps the forward solve's
   counts. */
static node_status finish(node_error *err, node_stats *stats, node_status st, const char *msg)
{
    stats->status = st;
    if (st == NODE_OK)
        stats->message[0] = '\0';
    else {
        const char *why = msg[0] ? msg : node_strerror(st);
        node__msg(stats->message, st, "%s", why);
        if (err)
            node__msg(err->message, st, "%s", why);
    }
    return node__err_end(err, st);
}

/* ---- −ELBO and its gradient -------------------------------------------------------- */

static node_status loss_run(node_latent *m, node_solver *s, size_t B, size_t nt,
                            const double *ts, const double *xs, const unsigned char *enc_mask,
                            const unsigned char *obs_mask, const double *eps,
                            const node_options *opt, node_grad_method how,
                            node_latent_terms *terms, double *grad, node_stats *stats,
                            char *msg)
{
    if (!m)
        return node__msg(msg, NODE_EINVAL, "m is NULL");
    if (!s)
        return node__msg(msg, NODE_EINVAL, "s is NULL (the solver object)");
    if (B == 0 || nt == 0)
        return node__msg(msg, NODE_EINVAL, "%s is 0: the batch needs at least one %s",
                         B ? "nt" : "B", B ? "time" : "series");
    if (!ts || !xs || !enc_mask || !obs_mask || !terms)
        return node__msg(msg, NODE_EINVAL, "%s is NULL",
                         !ts ? "ts" : !xs ? "xs" : !enc_mask ? "enc_mask"
                         : !obs_mask ? "obs_mask" : "terms");
    if (how != NODE_GRAD_ADJOINT && how != NODE_GRAD_BACKPROP)
        return node__msg(msg, NODE_EINVAL,
                         "how = %d is not a node_grad_method (NODE_GRAD_ADJOINT or "
                         "NODE_GRAD_BACKPROP)", (int)how);
    scratch sc;
    node_status st = reserve(m, B, nt, grad != NULL, &sc, msg);
    if (st != NODE_OK)
        return st;
    if ((st = check_batch(m, B, nt, ts, xs, enc_mask, obs_mask, eps, msg)) != NODE_OK)
        return st;

    const size_t D = m->D, L = m->L, H = m->H, n = nt * B * D;
    /* Exact backprop reverses the forward solve's own recording (opt->record) instead
       of re-running it: the backward pass is then the vjp calls alone. */
    node_options orec;
    if (grad && how == NODE_GRAD_BACKPROP) {
        orec = opt ? *opt : node_options_default();
        orec.record = 1;
        opt = &orec;
    }
    node_system sys;
    if ((st = forward(m, s, B, nt, ts, xs, enc_mask, eps, opt, &sc, &sys, stats, msg)))
        return st;
    if ((st = decode(m, B, nt, sc.ys, sc.xpred, msg)) != NODE_OK)
        return st;

    /* Σ_observed −log N(x | g(z), σ²) and Σ_b KL(q(z0 | x_b) ‖ N(0, I)). */
    for (size_t r = 0; r < nt * B; r++)
        memset(sc.omask + r * D, obs_mask[r] != 0, D);
    node_error e;
    double nll, kl = 0;
    st = node_gaussian_nll(n, xs, sc.xpred, NULL, 2.0 * log(m->cfg.obs_std), sc.omask, &nll,
                           grad ? sc.dxpred : NULL, NULL, &e);
    if (st != NODE_OK)
        return node__msg(msg, st, "the likelihood: %s", e.message);
    for (size_t b = 0; b < B; b++) {
        double klb;
        const double *mu = sc.mulv + 2 * L * b;
        st = node_kl_normal(L, mu, mu + L, &klb, grad ? sc.dkl + 2 * L * b : NULL,
                            grad ? sc.dkl + 2 * L * b + L : NULL, &e);
        if (st != NODE_OK)
            return node__msg(msg, st, "the KL term of series %zu: %s", b, e.message);
        kl += klb;
    }
    const double inv = 1.0 / (double)B, loss = (nll + kl) * inv;
    if (!isfinite(loss))
        return node__msg(msg, NODE_ENONFINITE, "the loss overflows (nll %g, KL %g)", nll, kl);

    node_stats bs;
    memset(&bs, 0, sizeof bs);
    if (grad) {
        /* dL/dx̂ → (decoder) dL/dz(t_i) → (adjoint or backprop) dL/dz0, dL/dθ_f. */
        for (size_t k = 0; k < n; k++)
            sc.dxpred[k] *= inv;
        st = node_mlp_vjp(m->g, nt * B, 0.0, sc.ys, sc.dxpred, NULL, sc.dys, grad + m->off_g,
                          NULL);
        if (st != NODE_OK)
            return node__msg(msg, st, "the decoder's gradient failed: %s", node_strerror(st));
        m->cb_status = NODE_OK;
        st = (how == NODE_GRAD_ADJOINT ? node_solver_adjoint : node_solver_backprop)(
            s, &sys, ts, nt, sc.ys, sc.dys, sc.dz0, grad + m->off_f, NULL, opt, &bs);
        if (st != NODE_OK) {
            if (m->cb_status != NODE_OK)
                st = m->cb_status;
            return node__msg(msg, st, "gradient (%s): %s",
                             how == NODE_GRAD_ADJOINT ? "adjoint" : "backprop", bs.message);
        }
        /* z0 = μ + exp(v/2) ε:  dL/dμ = dL/dz0 + KL'/B,  dL/dv = dL/dz0 ε exp(v/2)/2 + KL'/B. */
        for (size_t b = 0; b < B; b++) {
            const double *mu = sc.mulv + 2 * L * b, *lv = mu + L;
            const double *kmu = sc.dkl + 2 * L * b, *klv = kmu + L, *dz = sc.dz0 + L * b;
            double *gmu = sc.dmulv + 2 * L * b, *glv = gmu + L;
            for (size_t j = 0; j < L; j++) {
                gmu[j] = dz[j] + kmu[j] * inv;
                glv[j] = klv[j] * inv;
                if (eps)
                    glv[j] += dz[j] * eps[b * L + j] * 0.5 * exp(0.5 * lv[j]);
            }
        }
        /* → (output layer) dL/dh_T → (backprop through time) dL/dθ_cell. */
        double *dhT = m->dhs + nt * B * H;
        node_status se = node_mlp_vjp(m->enc, B, 0.0, sc.hs + nt * B * H, sc.dmulv, NULL, dhT,
                                      grad + m->off_enc, NULL);
        node_status sr = se != NODE_OK ? NODE_OK
                       : node_rnn_backward(m->rnn, nt, B, sc.enc_in, sc.rmask, sc.hs, m->dhs,
                                           NULL, NULL, grad);
        memset(dhT, 0, B * H * sizeof(double));   /* m->dhs is zero again */
        if (se != NODE_OK)
            return node__msg(msg, se, "the encoder layer's gradient failed: %s",
                             node_strerror(se));
        if (sr != NODE_OK)
            return node__msg(msg, sr, "the recognition RNN's gradient failed: %s",
                             node_strerror(sr));
        for (size_t k = 0; k < m->np; k++)
            if (!isfinite(grad[k]))
                return node__msg(msg, NODE_ENONFINITE, "dL/dtheta[%zu] = %g (the %s block)", k,
                                 grad[k], k < m->off_enc ? "cell" : k < m->off_f ? "encoder"
                                 : k < m->off_g ? "dynamics" : "decoder");
    }
    memset(terms, 0, sizeof *terms);
    terms->loss = loss;
    terms->nll = nll * inv;
    terms->kl = kl * inv;
    terms->nfe_forward = stats->nfe;
    terms->nfe_backward = bs.nfe;
    return NODE_OK;
}

node_status node_latent_loss(node_latent *m, node_solver *s, size_t B, size_t nt,
                             const double *ts, const double *xs, const unsigned char *enc_mask,
                             const unsigned char *obs_mask, const double *eps,
                             const node_options *opt, node_grad_method how,
                             node_latent_terms *terms, double *grad, node_stats *stats,
                             node_error *err)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node__err_begin(err);
    char msg[NODE_MESSAGE_SIZE] = "";
    node_status st = loss_run(m, s, B, nt, ts, xs, enc_mask, obs_mask, eps, opt, how, terms,
                              grad, stats, msg);
    return finish(err, stats, st, msg);
}

/* ---- prediction ------------------------------------------------------------------------ */

static node_status predict_run(node_latent *m, node_solver *s, size_t B, size_t nt,
                               const double *ts, const double *xs,
                               const unsigned char *enc_mask, const double *eps,
                               const node_options *opt, double *xs_pred, double *z,
                               node_stats *stats, char *msg)
{
    if (!m)
        return node__msg(msg, NODE_EINVAL, "m is NULL");
    if (!s)
        return node__msg(msg, NODE_EINVAL, "s is NULL (the solver object)");
    if (B == 0 || nt == 0)
        return node__msg(msg, NODE_EINVAL, "%s is 0: the batch needs at least one %s",
                         B ? "nt" : "B", B ? "time" : "series");
    if (!ts || !xs || !enc_mask || !xs_pred)
        return node__msg(msg, NODE_EINVAL, "%s is NULL",
                         !ts ? "ts" : !xs ? "xs" : !enc_mask ? "enc_mask" : "xs_pred");
    scratch sc;
    node_status st = reserve(m, B, nt, false, &sc, msg);
    if (st != NODE_OK)
        return st;
    if ((st = check_batch(m, B, nt, ts, xs, enc_mask, NULL, eps, msg)) != NODE_OK)
        return st;
    node_system sys;
    if ((st = forward(m, s, B, nt, ts, xs, enc_mask, eps, opt, &sc, &sys, stats, msg)))
        return st;
    if ((st = decode(m, B, nt, sc.ys, sc.xpred, msg)) != NODE_OK)
        return st;
    memcpy(xs_pred, sc.xpred, nt * B * m->D * sizeof(double));
    if (z)
        memcpy(z, sc.ys, nt * B * m->L * sizeof(double));
    return NODE_OK;
}

node_status node_latent_predict(node_latent *m, node_solver *s, size_t B, size_t nt,
                                const double *ts, const double *xs,
                                const unsigned char *enc_mask, const double *eps,
                                const node_options *opt, double *xs_pred, double *z,
                                node_stats *stats, node_error *err)
{
    node_stats local;
    if (!stats)
        stats = &local;
    node__stats_begin(stats);
    node__err_begin(err);
    char msg[NODE_MESSAGE_SIZE] = "";
    node_status st = predict_run(m, s, B, nt, ts, xs, enc_mask, eps, opt, xs_pred, z, stats,
                                 msg);
    return finish(err, stats, st, msg);
}
