/* odenet_model.c — see odenet_model.h.  torchdiffeq examples/odenet_mnist.py (commit
 * 657943a): conv downsampling, ODEfunc with ConcatConv2d, ResBlock, the head; the
 * training step: forward through the three networks, softmax cross-entropy, then
 * backward: the head's VJP, the ODE block's adjoint (or exact backprop), the
 * downsampling's VJP, and one SGD update of each network.
 */
#include "odenet_model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[3] = { "odenet", "resnet", "rknet" };

int ex_netkind_parse(const char *name)
{
    for (int k = 0; k < 3; k++)
        if (name && !strcmp(name, kind_names[k]))
            return k;
    return -1;
}

const char *ex_netkind_name(ex_netkind k)
{
    return (unsigned)k < 3 ? kind_names[k] : "?";
}

static void say(char *msg, size_t msgn, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void say(char *msg, size_t msgn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msgn, fmt, ap);
    va_end(ap);
}

/* ---- the three networks ------------------------------------------------------------ */

#define TRY(call)                      \
    do {                               \
        if ((call) != NODE_OK)         \
            goto fail;                 \
    } while (0)

static size_t groups_of(size_t W)
{
    return W < 32 ? W : 32;
}

static node_status build_down(node_net **out, size_t W, size_t rows, size_t cols,
                              node_error *err)
{
    node_net *n = NULL;
    const size_t g = groups_of(W);
    TRY(node_net_create(&n, 1, rows, cols, err));
    TRY(node_net_add_conv2d(n, W, 3, 3, 1, 0, 1, 0, err));
    TRY(node_net_add_groupnorm(n, g, err));
    TRY(node_net_add_act(n, NODE_ACT_RELU, err));
    TRY(node_net_add_conv2d(n, W, 4, 4, 2, 1, 1, 0, err));
    TRY(node_net_add_groupnorm(n, g, err));
    TRY(node_net_add_act(n, NODE_ACT_RELU, err));
    TRY(node_net_add_conv2d(n, W, 4, 4, 2, 1, 1, 0, err));
    *out = n;
    return NODE_OK;
fail:
    node_net_free(n);
    return err->status ? err->status : NODE_EINVAL;
}

/* ODEfunc: GN, ReLU, ConcatConv2d, GN, ReLU, ConcatConv2d, GN; or `blocks` ResBlocks. */
static node_status build_block(node_net **out, ex_netkind kind, size_t W, size_t h, size_t w,
                               size_t blocks, node_error *err)
{
    node_net *n = NULL;
    const size_t g = groups_of(W);
    TRY(node_net_create(&n, W, h, w, err));
    if (kind == EX_NET_RESNET) {
        for (size_t i = 0; i < blocks; i++)
            TRY(node_net_add_resblock(n, g, err));
    } else {
        TRY(node_net_add_groupnorm(n, g, err));
        TRY(node_net_add_act(n, NODE_ACT_RELU, err));
        TRY(node_net_add_conv2d(n, W, 3, 3, 1, 1, 1, 1, err));
        TRY(node_net_add_groupnorm(n, g, err));
        TRY(node_net_add_act(n, NODE_ACT_RELU, err));
        TRY(node_net_add_conv2d(n, W, 3, 3, 1, 1, 1, 1, err));
        TRY(node_net_add_groupnorm(n, g, err));
    }
    *out = n;
    return NODE_OK;
fail:
    node_net_free(n);
    return err->status ? err->status : NODE_EINVAL;
}

static node_status build_head(node_net **out, size_t W, size_t h, size_t w, size_t classes,
                              node_error *err)
{
    node_net *n = NULL;
    TRY(node_net_create(&n, W, h, w, err));
    TRY(node_net_add_groupnorm(n, groups_of(W), err));
    TRY(node_net_add_act(n, NODE_ACT_RELU, err));
    TRY(node_net_add_avgpool(n, err));
    TRY(node_net_add_flatten(n, err));
    TRY(node_net_add_dense(n, classes, 1, 0, err));
    *out = n;
    return NODE_OK;
fail:
    node_net_free(n);
    return err->status ? err->status : NODE_EINVAL;
}

static int build_all(node_net **net, ex_netkind kind, size_t W, size_t blocks, size_t rows,
                     size_t cols, size_t classes, node_error *err)
{
    size_t c, h, w;
    net[0] = net[1] = net[2] = NULL;
    if (build_down(&net[0], W, rows, cols, err) != NODE_OK)
        return -1;
    node_net_out_shape(net[0], &c, &h, &w);
    if (build_block(&net[1], kind, W, h, w, blocks, err) != NODE_OK ||
        build_head(&net[2], W, h, w, classes, err) != NODE_OK) {
        for (int i = 0; i < 3; i++) {
            node_net_free(net[i]);
            net[i] = NULL;
        }
        return -1;
    }
    return 0;
}

static void set_shape(ex_odenet *m, ex_netkind kind, size_t rows, size_t cols, size_t classes)
{
    size_t c, h, w;
    node_net_out_shape(m->net[0], &c, &h, &w);
    m->kind = kind;
    m->width = c;
    m->rows = rows;
    m->cols = cols;
    m->D = c * h * w;
    m->classes = classes;
}

int ex_odenet_build(ex_odenet *m, ex_netkind kind, size_t width, size_t blocks,
                    size_t rows, size_t cols, size_t classes, uint64_t seed, node_error *err)
{
    memset(m, 0, sizeof *m);
    if (width == 0 || width % groups_of(width)) {
        snprintf(err->message, sizeof err->message, "width %zu: must be > 0 and divisible by "
                 "min(32, width), the group norm's groups", width);
        return -1;
    }
    if (build_all(m->net, kind, width, blocks, rows, cols, classes, err) != 0)
        return -1;
    for (int i = 0; i < 3; i++)
        node_net_init(m->net[i], seed + 1000u * (uint64_t)i);
    set_shape(m, kind, rows, cols, classes);
    return 0;
}

int ex_odenet_adopt(ex_odenet *m, ex_netkind kind, node_net *const *nets, size_t k,
                    size_t rows, size_t cols, size_t classes, node_error *err)
{
    memset(m, 0, sizeof *m);
    if (k != 3) {
        snprintf(err->message, sizeof err->message, "holds %zu networks, not 3 (downsampling, "
                 "block, head)", k);
        return -1;
    }
    size_t c, h, w;
    node_net_in_shape(nets[0], &c, &h, &w);
    if (c != 1 || h != rows || w != cols) {
        snprintf(err->message, sizeof err->message, "its first network takes %zu x %zu x %zu "
                 "inputs, the data are 1 x %zu x %zu", c, h, w, rows, cols);
        return -1;
    }
    node_net_out_shape(nets[0], &c, &h, &w);
    /* The reference: the same kind at the file's width (its blocks for the ResNet). */
    node_net *ref[3];
    node_error e2;
    memset(&e2, 0, sizeof e2);
    const size_t blocks = node_net_nlayers(nets[1]);
    if (c == 0 || c % groups_of(c) ||
        build_all(ref, kind, c, blocks, rows, cols, classes, &e2) != 0) {
        snprintf(err->message, sizeof err->message, "its networks are not %s's (width %zu)",
                 ex_netkind_name(kind), c);
        return -1;
    }
    int same = 1;
    for (int i = 0; i < 3; i++) {
        same = same && node_net_nparams(ref[i]) == node_net_nparams(nets[i]) &&
               node_net_nlayers(ref[i]) == node_net_nlayers(nets[i]);
        size_t c1, h1, w1, c2, h2, w2;
        node_net_out_shape(ref[i], &c1, &h1, &w1);
        node_net_out_shape(nets[i], &c2, &h2, &w2);
        same = same && c1 == c2 && h1 == h2 && w1 == w2;
        node_net_free(ref[i]);
    }
    if (!same) {
        snprintf(err->message, sizeof err->message, "its networks are not those of a %s of width %zu "
                 "(layers or parameters differ; --network must match the saved model, "
                 "odenet and rknet share theirs)", ex_netkind_name(kind), c);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        m->net[i] = nets[i];
    set_shape(m, kind, rows, cols, classes);
    return 0;
}

int ex_odenet_prepare(ex_odenet *m, const node_options *opt, int backprop, size_t cap,
                      int threads, node_error *err)
{
    m->opt = *opt;
    m->backprop = backprop;
    m->cap = cap;
    const size_t BD = cap * m->D;
    node_optim_config cfg;
    node_optim_defaults(NODE_OPTIM_SGD, &cfg);
    cfg.lr = 0.1;
    cfg.momentum = 0.9;
    if (node_solver_create(&m->solver) != NODE_OK)
        goto nomem;
    for (int i = 0; i < 3; i++) {
        node_status s = node_net_set_threads(m->net[i], threads);
        if (s == NODE_OK)
            s = node_net_reserve(m->net[i], cap);
        if (s != NODE_OK) {
            snprintf(err->message, sizeof err->message, "network %d: %s", i, node_strerror(s));
            return -1;
        }
        if (node_optim_create_ex(&m->optim[i], node_net_nparams(m->net[i]), &cfg, err) !=
            NODE_OK)
            return -1;
        if (!(m->grad[i] = malloc(node_net_nparams(m->net[i]) * sizeof(double))))
            goto nomem;
    }
    m->h0 = malloc(BD * sizeof(double));
    m->ys = malloc(2 * BD * sizeof(double));
    m->dys = malloc(2 * BD * sizeof(double));
    m->a0 = malloc(BD * sizeof(double));
    m->logits = malloc(cap * m->classes * sizeof(double));
    m->dlogits = malloc(cap * m->classes * sizeof(double));
    m->labels = malloc(cap * sizeof(int32_t));
    if (m->h0 && m->ys && m->dys && m->a0 && m->logits && m->dlogits && m->labels)
        return 0;
nomem:
    snprintf(err->message, sizeof err->message, "out of memory");
    return -1;
}

size_t ex_odenet_nparams(const ex_odenet *m, int i)
{
    if (i < 3)
        return node_net_nparams(m->net[i]);
    return node_net_nparams(m->net[0]) + node_net_nparams(m->net[1]) +
           node_net_nparams(m->net[2]);
}

void ex_odenet_free(ex_odenet *m)
{
    for (int i = 0; i < 3; i++) {
        node_net_free(m->net[i]);
        node_optim_free(m->optim[i]);
        free(m->grad[i]);
    }
    node_solver_free(m->solver);
    free(m->h0);
    free(m->ys);
    free(m->dys);
    free(m->a0);
    free(m->logits);
    free(m->dlogits);
    free(m->labels);
    memset(m, 0, sizeof *m);
}

/* ---- forward and backward ------------------------------------------------------------ */

static const double ts[2] = { 0.0, 1.0 };

int ex_odenet_features(ex_odenet *m, size_t B, const double *x, node_stats *st, char *msg,
                       size_t msgn)
{
    const size_t BD = B * m->D;
    node_status s = node_net_forward(m->net[0], B, 0.0, x, m->h0);
    if (s != NODE_OK) {
        say(msg, msgn, "downsampling forward: %s", node_strerror(s));
        return -1;
    }
    if (m->kind == EX_NET_RESNET) {
        memcpy(m->ys, m->h0, BD * sizeof(double));
        if (st)
            memset(st, 0, sizeof *st);
        if ((s = node_net_forward(m->net[1], B, 0.0, m->h0, m->ys + BD)) != NODE_OK) {
            say(msg, msgn, "residual blocks forward: %s", node_strerror(s));
            return -1;
        }
        return 0;
    }
    node_system sys;
    node_stats local;
    node_stats *S = st ? st : &local;
    if ((s = node_net_system(m->net[1], B, &sys)) == NODE_OK)
        s = node_solver_odeint(m->solver, &sys, m->h0, ts, 2, m->ys, &m->opt, S);
    if (s != NODE_OK) {
        say(msg, msgn, "ODE block forward: %s", s == NODE_EINVAL || !S->message[0] ?
            node_strerror(s) : S->message);
        return -1;
    }
    return 0;
}

static int head_loss(ex_odenet *m, size_t B, const unsigned char *labels, ex_step *out,
                     int grad, char *msg, size_t msgn)
{
    const double *h1 = m->ys + B * m->D;
    node_error err;
    for (size_t i = 0; i < B; i++)
        m->labels[i] = labels[i];
    node_status s = node_net_forward(m->net[2], B, 0.0, h1, m->logits);
    if (s == NODE_OK)
        s = node_softmax_xent(B, m->classes, m->logits, m->labels, &out->loss,
                              grad ? m->dlogits : NULL, &out->correct, &err);
    if (s != NODE_OK) {
        say(msg, msgn, "head: %s", s == NODE_EINVAL ? err.message : node_strerror(s));
        return -1;
    }
    return 0;
}

int ex_odenet_eval(ex_odenet *m, size_t B, const double *x, const unsigned char *labels,
                   ex_step *out, char *msg, size_t msgn)
{
    node_stats st;
    memset(out, 0, sizeof *out);
    if (ex_odenet_features(m, B, x, &st, msg, msgn) != 0)
        return -1;
    out->nfe_f = st.nfe;
    return head_loss(m, B, labels, out, 0, msg, msgn);
}

int ex_odenet_head_grad(ex_odenet *m, size_t B, const unsigned char *labels, ex_step *out,
                        char *msg, size_t msgn)
{
    const size_t BD = B * m->D;
    if (head_loss(m, B, labels, out, 1, msg, msgn) != 0)
        return -1;
    memset(m->dys, 0, BD * sizeof(double));
    node_status s = node_net_vjp(m->net[2], B, 0.0, m->ys + BD, m->dlogits, NULL,
                                 m->dys + BD, m->grad[2], NULL);
    if (s != NODE_OK) {
        say(msg, msgn, "head backward: %s", node_strerror(s));
        return -1;
    }
    return 0;
}

int ex_odenet_train_step(ex_odenet *m, size_t B, const double *x,
                         const unsigned char *labels, double lr, ex_step *out, char *msg,
                         size_t msgn)
{
    const size_t BD = B * m->D;
    node_stats st;
    memset(out, 0, sizeof *out);
    if (ex_odenet_features(m, B, x, &st, msg, msgn) != 0)
        return -1;
    out->nfe_f = st.nfe;
    if (ex_odenet_head_grad(m, B, labels, out, msg, msgn) != 0)
        return -1;
    /* The block's backward pass: dL/dh0 into a0, dL/dθ_block into grad[1]. */
    node_status s;
    if (m->kind == EX_NET_RESNET) {
        s = node_net_vjp(m->net[1], B, 0.0, m->h0, m->dys + BD, NULL, m->a0, m->grad[1], NULL);
        if (s != NODE_OK) {
            say(msg, msgn, "residual blocks backward: %s", node_strerror(s));
            return -1;
        }
    } else {
        node_system sys;
        if ((s = node_net_system(m->net[1], B, &sys)) == NODE_OK)
            s = m->backprop ? node_solver_backprop(m->solver, &sys, ts, 2, m->ys, m->dys,
                                                   m->a0, m->grad[1], NULL, &m->opt, &st)
                            : node_solver_adjoint(m->solver, &sys, ts, 2, m->ys, m->dys,
                                                  m->a0, m->grad[1], NULL, &m->opt, &st);
        if (s != NODE_OK) {
            say(msg, msgn, "ODE block backward: %s", st.message[0] ? st.message :
                node_strerror(s));
            return -1;
        }
        out->nfe_b = st.nfe;
    }
    s = node_net_vjp(m->net[0], B, 0.0, x, m->a0, NULL, NULL, m->grad[0], NULL);
    if (s != NODE_OK) {
        say(msg, msgn, "downsampling backward: %s", node_strerror(s));
        return -1;
    }
    /* Check every update first, so a refused one changes no network. */
    for (int i = 0; i < 3; i++) {
        double norm;
        if (node_clip_grad_norm(node_net_nparams(m->net[i]), m->grad[i], INFINITY, &norm) !=
            NODE_OK) {
            say(msg, msgn, "the gradient of network %d is not finite", i);
            return -1;
        }
    }
    for (int i = 0; i < 3; i++) {
        node_optim_set_lr(m->optim[i], lr);
        if ((s = node_optim_step(m->optim[i], node_net_params(m->net[i]), m->grad[i])) !=
            NODE_OK) {
            say(msg, msgn, "SGD step of network %d: %s", i, node_strerror(s));
            return -1;
        }
    }
    return 0;
}
