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

static const char *const names[] = { "sgd", "rmsprop", "adam", "adamw" };

const char *node_optim_name(node_optim_kind kind)
{
    if ((unsigned)kind >= sizeof names / sizeof names[0])
        return NULL;
    return names[kind];
}

node_status node_optim_parse(const char *name, node_optim_kind *out)
{
    if (!name || !out)
        return NODE_EINVAL;
    for (unsigned k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(name, names[k]) == 0) {
            *out = (node_optim_kind)k;
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

static node_status check_config(const node_optim_config *c)
{
    if (!node_optim_name(c->kind) || !nonneg(c->lr) || !nonneg(c->weight_decay))
        return NODE_EINVAL;
    switch (c->kind) {
    case NODE_OPTIM_SGD:
        if (!nonneg(c->momentum) || !isfinite(c->dampening))
            return NODE_EINVAL;
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            return NODE_EINVAL;
        return NODE_OK;
    case NODE_OPTIM_RMSPROP:
        if (!nonneg(c->momentum) || !unit(c->alpha) || !nonneg(c->eps))
            return NODE_EINVAL;
        return NODE_OK;
    case NODE_OPTIM_ADAM:
    case NODE_OPTIM_ADAMW:
        if (!unit(c->beta1) || !unit(c->beta2) || !nonneg(c->eps))
            return NODE_EINVAL;
        return NODE_OK;
    }
    return NODE_EINVAL;
}

node_status node_optim_create(node_optim **out, size_t n, const node_optim_config *cfg)
{
    if (!out || !cfg || n == 0)
        return NODE_EINVAL;
    node_status st = check_config(cfg);
    if (st != NODE_OK)
        return st;

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
        return NODE_ENOMEM;

    node_optim *o = node__calloc(1, sizeof *o);
    if (!o)
        return NODE_ENOMEM;
    if (nvec > 0) {
        o->mem = node__calloc(n * nvec, sizeof(double));
        if (!o->mem) {
            node__free(o);
            return NODE_ENOMEM;
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
    return NODE_OK;
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

/* ---- the updates ---------------------------------------------------------------- */

static void step_sgd(node_optim *o, double *theta, const double *grad)
{
    const node_optim_config *c = &o->cfg;
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum;
    const bool first = o->t == 1;
    for (size_t i = 0; i < o->n; i++) {
        double g = grad[i] + wd * theta[i];
        if (mu > 0.0) {
            double b = first ? g : mu * o->buf[i] + (1.0 - c->dampening) * g;
            o->buf[i] = b;
            g = c->nesterov ? g + mu * b : b;
        }
        theta[i] -= lr * g;
    }
}

static void step_rmsprop(node_optim *o, double *theta, const double *grad)
{
    const node_optim_config *c = &o->cfg;
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum, al = c->alpha;
    for (size_t i = 0; i < o->n; i++) {
        double g = grad[i] + wd * theta[i];
        double v = al * o->v[i] + (1.0 - al) * g * g;
        o->v[i] = v;
        if (c->centered) {
            double ga = al * o->gavg[i] + (1.0 - al) * g;
            o->gavg[i] = ga;
            v -= ga * ga;
        }
        /* v - ḡ² >= 0 in exact arithmetic (a variance); rounding may dip below. */
        double d = g / (sqrt(fmax(v, 0.0)) + c->eps);
        if (mu > 0.0) {
            double b = mu * o->buf[i] + d;
            o->buf[i] = b;
            theta[i] -= lr * b;
        } else {
            theta[i] -= lr * d;
        }
    }
}

static void step_adam(node_optim *o, double *theta, const double *grad)
{
    const node_optim_config *c = &o->cfg;
    const double lr = c->lr, b1 = c->beta1, b2 = c->beta2;
    const bool decoupled = c->kind == NODE_OPTIM_ADAMW;
    const double wd = decoupled ? 0.0 : c->weight_decay;
    const double shrink = decoupled ? 1.0 - lr * c->weight_decay : 1.0;
    const double bc1 = 1.0 - pow(b1, (double)o->t);
    const double bc2 = 1.0 - pow(b2, (double)o->t);
    const double sbc2 = sqrt(bc2);
    for (size_t i = 0; i < o->n; i++) {
        theta[i] *= shrink;
        double g = grad[i] + wd * theta[i];
        double m = b1 * o->m[i] + (1.0 - b1) * g;
        double v = b2 * o->v[i] + (1.0 - b2) * g * g;
        o->m[i] = m;
        o->v[i] = v;
        if (c->amsgrad) {
            v = fmax(o->vmax[i], v);
            o->vmax[i] = v;
        }
        theta[i] -= lr * (m / bc1) / (sqrt(v) / sbc2 + c->eps);
    }
}

node_status node_optim_step(node_optim *o, double *theta, const double *grad)
{
    if (!o || !theta || !grad)
        return NODE_EINVAL;
    o->t++;
    switch (o->cfg.kind) {
    case NODE_OPTIM_SGD:     step_sgd(o, theta, grad); break;
    case NODE_OPTIM_RMSPROP: step_rmsprop(o, theta, grad); break;
    case NODE_OPTIM_ADAM:
    case NODE_OPTIM_ADAMW:   step_adam(o, theta, grad); break;
    }
    return NODE_OK;
}
