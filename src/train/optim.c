/* optim.c — SGD (with momentum / Nesterov), RMSprop, Adam and AdamW over one flat
 * parameter vector, following the update rules and defaults documented for
 * torch.optim.SGD / RMSprop / Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter
 * 2019 for the decoupled decay; Reddi et al. 2018 for amsgrad).  The formulas are
 * in train.h (checked against torch 1.13's optimizers, 7 steps of every option, to
 * ~1e-15 while writing it).  All state is allocated by create; a step allocates nothing.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

struct node_optim {
    node_optim_config cfg;
    size_t n;
    int64_t t;        /* steps taken */
    double *buf;      /* SGD / RMSprop momentum buffer b */
    double *m;        /* Adam first moment */
    double *v;        /* RMSprop square average / Adam second moment */
    double *gavg;     /* centered RMSprop: average gradient ḡ */
    double *vmax;     /* amsgrad: running maximum of v */
    double *mem;      /* one block holding all of the above */
    size_t nvec;      /* how many n-vectors mem holds */
};

/* The optimizers' names, looked up by value (nothing depends on the enum's order). */
static const struct {
    node_optim_kind kind;
    const char *name;
} names[] = {
    { NODE_OPTIM_SGD, "sgd" },   { NODE_OPTIM_RMSPROP, "rmsprop" },
    { NODE_OPTIM_ADAM, "adam" }, { NODE_OPTIM_ADAMW, "adamw" },
};
#define NNAMES (sizeof names / sizeof names[0])

const char *node_optim_name(node_optim_kind kind)
{
    for (size_t i = 0; i < NNAMES; i++)
        if (names[i].kind == kind)
            return names[i].name;
    return NULL;
}

node_status node_optim_parse(const char *name, node_optim_kind *out)
{
    if (!name || !out)
        return NODE_EINVAL;
    for (size_t i = 0; i < NNAMES; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].kind;
            return NODE_OK;
        }
    return NODE_EINVAL;
}

node_status node_optim_defaults(node_optim_kind kind, node_optim_config *cfg)
{
    if (!cfg || !node_optim_name(kind))
        return NODE_EINVAL;
    node_optim_config c = { 0 };
    c.kind = kind;
    c.alpha = 0.99;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    switch (kind) {
    case NODE_OPTIM_SGD:     c.lr = 1e-3; break;
    case NODE_OPTIM_RMSPROP: c.lr = 1e-2; break;
    case NODE_OPTIM_ADAM:    c.lr = 1e-3; break;
    case NODE_OPTIM_ADAMW:   c.lr = 1e-3; c.weight_decay = 1e-2; break;
    }
    *cfg = c;
    return NODE_OK;
}

static bool nonneg(double x) { return isfinite(x) && x >= 0.0; }
static bool unit(double x) { return isfinite(x) && x >= 0.0 && x < 1.0; }

/* NODE_EINVAL naming the first hyper-parameter of c out of its range (train.h). */
static node_status check_config(const node_optim_config *c, char *msg)
{
    const node_status e = NODE_EINVAL;
    if (!node_optim_name(c->kind))
        return node__msg(msg, e, "cfg->kind = %d is not an optimizer of libnode %s",
                         (int)c->kind, node_version());
    if (c->reserved0_ || c->reserved1_ || c->reserved2_ || c->reserved3_ ||
        !node__zero_words(c->reserved_, sizeof c->reserved_ / sizeof c->reserved_[0]))
        return node__msg(msg, e, "cfg has non-zero reserved fields: the program was built "
                         "against a newer libnode header than libnode %s, or did not start "
                         "from node_optim_defaults()", node_version());
    if (!nonneg(c->lr))
        return node__msg(msg, e, "cfg->lr = %g: the learning rate must be finite and >= 0",
                         c->lr);
    if (!nonneg(c->weight_decay))
        return node__msg(msg, e, "cfg->weight_decay = %g: must be finite and >= 0",
                         c->weight_decay);
    if (c->kind == NODE_OPTIM_SGD || c->kind == NODE_OPTIM_RMSPROP) {
        if (!nonneg(c->momentum))
            return node__msg(msg, e, "cfg->momentum = %g: must be finite and >= 0",
                             c->momentum);
    }
    switch (c->kind) {
    case NODE_OPTIM_SGD:
        if (!isfinite(c->dampening))
            return node__msg(msg, e, "cfg->dampening = %g: must be finite", c->dampening);
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            return node__msg(msg, e, "cfg->nesterov needs momentum > 0 and dampening = 0 "
                             "(momentum = %g, dampening = %g)", c->momentum, c->dampening);
        break;
    case NODE_OPTIM_RMSPROP:
        if (!unit(c->alpha))
            return node__msg(msg, e, "cfg->alpha = %g is outside [0, 1)", c->alpha);
        if (!nonneg(c->eps))
            return node__msg(msg, e, "cfg->eps = %g: must be finite and >= 0", c->eps);
        break;
    case NODE_OPTIM_ADAM:
    case NODE_OPTIM_ADAMW:
        if (!unit(c->beta1))
            return node__msg(msg, e, "cfg->beta1 = %g is outside [0, 1)", c->beta1);
        if (!unit(c->beta2))
            return node__msg(msg, e, "cfg->beta2 = %g is outside [0, 1)", c->beta2);
        if (!nonneg(c->eps))
            return node__msg(msg, e, "cfg->eps = %g: must be finite and >= 0", c->eps);
        break;
    }
    return NODE_OK;
}

node_status node_optim_create_ex(node_optim **out, size_t n, const node_optim_config *cfg,
                                 node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    if (!cfg)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "cfg is NULL"));
    if (n == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "n = 0: there are no parameters to optimize"));
    node_status st = check_config(cfg, msg);
    if (st != NODE_OK)
        return node__err_end(err, st);

    /* Which state vectors this kind needs. */
    bool need_buf = false, need_m = false, need_v = false, need_gavg = false,
         need_vmax = false;
    switch (cfg->kind) {
    case NODE_OPTIM_SGD:
        need_buf = cfg->momentum > 0.0;
        break;
    case NODE_OPTIM_RMSPROP:
        need_v = true;
        need_buf = cfg->momentum > 0.0;
        need_gavg = cfg->centered != 0;
        break;
    case NODE_OPTIM_ADAM:
    case NODE_OPTIM_ADAMW:
        need_m = need_v = true;
        need_vmax = cfg->amsgrad != 0;
        break;
    }
    size_t nvec = (size_t)need_buf + need_m + need_v + need_gavg + need_vmax;
    if (nvec > 0 && n > SIZE_MAX / sizeof(double) / nvec)
        return node__err_end(err, node__msg(msg, NODE_ENOMEM, "n = %zu: %zu state vectors of "
                                            "that length cannot be addressed", n, nvec));

    node_optim *o = node__calloc(1, sizeof *o);
    if (!o)
        return node__err_end(err, NODE_ENOMEM);
    if (nvec > 0) {
        o->mem = node__calloc(n * nvec, sizeof(double));
        if (!o->mem) {
            node__free(o);
            return node__err_end(err, node__msg(msg, NODE_ENOMEM, "out of memory for %zu "
                                                "state vectors of %zu doubles", nvec, n));
        }
    }
    o->cfg = *cfg;
    o->n = n;
    o->nvec = nvec;
    double *p = o->mem;
    if (need_buf)  { o->buf = p;  p += n; }
    if (need_m)    { o->m = p;    p += n; }
    if (need_v)    { o->v = p;    p += n; }
    if (need_gavg) { o->gavg = p; p += n; }
    if (need_vmax) { o->vmax = p; }
    *out = o;
    return node__err_end(err, NODE_OK);
}

node_status node_optim_create(node_optim **out, size_t n, const node_optim_config *cfg)
{
    return node_optim_create_ex(out, n, cfg, NULL);
}

void node_optim_free(node_optim *o)
{
    if (!o)
        return;
    node__free(o->mem);
    node__free(o);
}

node_status node_optim_set_lr(node_optim *o, double lr)
{
    if (!o || !nonneg(lr))
        return NODE_EINVAL;
    o->cfg.lr = lr;
    return NODE_OK;
}

node_status node_optim_get_lr(const node_optim *o, double *lr)
{
    if (!o || !lr)
        return NODE_EINVAL;
    *lr = o->cfg.lr;
    return NODE_OK;
}

node_status node_optim_get_step(const node_optim *o, int64_t *t)
{
    if (!o || !t)
        return NODE_EINVAL;
    *t = o->t;
    return NODE_OK;
}

node_status node_optim_reset(node_optim *o)
{
    if (!o)
        return NODE_EINVAL;
    if (o->mem)
        memset(o->mem, 0, o->n * o->nvec * sizeof(double));
    o->t = 0;
    return NODE_OK;
}

/* ---- the updates ----------------------------------------------------------------
   Each kind's loop runs twice per step with the same element update: first with
   commit = false, a dry run that writes nothing and only checks that the new θ_i and
   second moment v_i are finite (x - x == 0 fails for NaN and ±Inf; the checks are
   and-ed as integers, which vectorizes where a sum of doubles would not); then, if
   all are, with commit = true, for real.  So a refused step changes nothing, without a copy of
   the state.  Those two cover every value written: a NaN or Inf in θ_i or g_i reaches
   the new θ_i (through lr·g, 0·Inf = NaN included), and so does an overflowing
   momentum buffer (θ moves by lr·b); v_i = Inf is the one that could hide (g/√Inf = 0),
   and m, ḡ and v_max stay within the range of the g's and v's seen.  t is the step
   being taken. */

static inline int step_sgd(node_optim *o, double *theta, const double *grad, int64_t t,
                              bool commit)
{
    const node_optim_config *c = &o->cfg;
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum, damp = c->dampening;
    const bool first = t == 1, nesterov = c->nesterov != 0;
    double *buf = o->buf;
    int ok = 1;
    for (size_t i = 0; i < o->n; i++) {
        double th = theta[i], g = grad[i] + wd * th, b = 0.0;
        if (mu > 0.0) {
            b = first ? g : mu * buf[i] + (1.0 - damp) * g;
            g = nesterov ? g + mu * b : b;
        }
        double thn = th - lr * g;
        if (commit) {
            if (mu > 0.0)
                buf[i] = b;
            theta[i] = thn;
        } else {
            ok &= thn - thn == 0.0;
        }
    }
    return ok;
}

static inline int step_rmsprop(node_optim *o, double *theta, const double *grad,
                                  bool commit)
{
    const node_optim_config *c = &o->cfg;
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum, al = c->alpha;
    const double eps = c->eps;
    const bool centered = c->centered != 0;
    int ok = 1;
    for (size_t i = 0; i < o->n; i++) {
        double th = theta[i], g = grad[i] + wd * th;
        double v = al * o->v[i] + (1.0 - al) * g * g, vt = v, ga = 0.0;
        if (centered) {
            ga = al * o->gavg[i] + (1.0 - al) * g;
            vt -= ga * ga;
        }
        /* v - ḡ² >= 0 in exact arithmetic (a variance); rounding may dip below. */
        double d = g / (sqrt(fmax(vt, 0.0)) + eps);
        double b = mu > 0.0 ? mu * o->buf[i] + d : d;
        double thn = th - lr * b;
        if (commit) {
            o->v[i] = v;
            if (centered)
                o->gavg[i] = ga;
            if (mu > 0.0)
                o->buf[i] = b;
            theta[i] = thn;
        } else {
            ok &= (thn - thn == 0.0) & (v - v == 0.0);
        }
    }
    return ok;
}

static inline int step_adam(node_optim *o, double *theta, const double *grad, int64_t t,
                               bool commit)
{
    const node_optim_config *c = &o->cfg;
    const double lr = c->lr, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    const bool decoupled = c->kind == NODE_OPTIM_ADAMW, amsgrad = c->amsgrad != 0;
    const double wd = decoupled ? 0.0 : c->weight_decay;
    const double shrink = decoupled ? 1.0 - lr * c->weight_decay : 1.0;
    const double bc1 = 1.0 - pow(b1, (double)t);
    const double bc2 = 1.0 - pow(b2, (double)t);
    const double sbc2 = sqrt(bc2);
    int ok = 1;
    for (size_t i = 0; i < o->n; i++) {
        double th = theta[i] * shrink;
        double g = grad[i] + wd * th;
        double m = b1 * o->m[i] + (1.0 - b1) * g;
        double v = b2 * o->v[i] + (1.0 - b2) * g * g, vh = v;
        if (amsgrad)
            vh = fmax(o->vmax[i], v);
        double thn = th - lr * (m / bc1) / (sqrt(vh) / sbc2 + eps);
        if (commit) {
            o->m[i] = m;
            o->v[i] = v;
            if (amsgrad)
                o->vmax[i] = vh;
            theta[i] = thn;
        } else {
            ok &= (thn - thn == 0.0) & (v - v == 0.0);
        }
    }
    return ok;
}

node_status node_optim_step(node_optim *o, double *theta, const double *grad)
{
    if (!o || !theta || !grad)
        return NODE_EINVAL;
    const int64_t t = o->t + 1;
    int ok = 0;
    switch (o->cfg.kind) {
    case NODE_OPTIM_SGD:
        if ((ok = step_sgd(o, theta, grad, t, false)))
            step_sgd(o, theta, grad, t, true);
        break;
    case NODE_OPTIM_RMSPROP:
        if ((ok = step_rmsprop(o, theta, grad, false)))
            step_rmsprop(o, theta, grad, true);
        break;
    case NODE_OPTIM_ADAM:
    case NODE_OPTIM_ADAMW:
        if ((ok = step_adam(o, theta, grad, t, false)))
            step_adam(o, theta, grad, t, true);
        break;
    }
    if (!ok)
        return NODE_ENONFINITE;
    o->t = t;
    return NODE_OK;
}
