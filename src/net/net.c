/* net.c — networks of layers (net.h): creation, the layers and their shapes, the
 * parameter vector, initialisation, the workspace, threads (OpenMP when the build
 * has it: the batch split among threads, each with scratch of its own, parameter
 * gradients added up in thread order), evaluation, the network as a node_system,
 * and softmax cross-entropy.  The passes themselves are pass.c (a kernel file).
 */
#include "net/net_internal.h"

#include <string.h>
#ifdef _OPENMP
#  include <omp.h>
#endif

/* Columns of a lowered product's chunk: ~a hundred keep col (I × cols) in L2 for
   the ODE block's 585-input convolution, and give the 24-column micro-kernels six
   full strips.  (Tunable; bench/bench_conv.c measures it.) */
#ifndef NODE__NET_COLS
#  define NODE__NET_COLS 144
#endif

/* Any dimension of a layer above this is refused (sizes past it would only
   overflow the products of sizes below). */
#define MAXDIM ((uint64_t)1 << 24)

static const node__net_kernels *net_kernels_for(node__isa isa)
{
    (void)isa;
    return NODE__KERNEL_TABLE(isa, node__net_kernels);
}

/* ---- creation -------------------------------------------------------------------- */

node_status node__net_shape_check(size_t c, size_t h, size_t w, char *msg)
{
    if (c == 0 || h == 0 || w == 0)
        return node__msg(msg, NODE_EINVAL, "%s is 0: the input sample needs c, h, w > 0",
                         c == 0 ? "c" : h == 0 ? "h" : "w");
    if (c > MAXDIM || h > MAXDIM || w > MAXDIM || (uint64_t)c * h * w > MAXDIM * 64)
        return node__msg(msg, NODE_EINVAL, "input %zu x %zu x %zu is too large", c, h, w);
    return NODE_OK;
}

node_status node_net_create(node_net **out, size_t c, size_t h, size_t w, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    node_status st = node__net_shape_check(c, h, w, msg);
    if (st != NODE_OK)
        return node__err_end(err, st);
    node_net *n = node__calloc(1, sizeof *n);
    if (!n)
        return node__err_end(err, node__msg(msg, NODE_ENOMEM, "no memory for a network"));
    node__isa isa = node__isa_select();
    n->kern = net_kernels_for(isa);
    n->nn = node__nn_kernels_for(isa);
    n->c = c;
    n->h = h;
    n->w = w;
    n->threads = 1;
    n->maxsize = c * h * w;
    *out = n;
    return node__err_end(err, NODE_OK);
}

static void ws_free(node_net *n)
{
    node__free(n->raw);
    node__free(n->out);
    node__free(n->stat);
    node__free(n->jobs);
    n->raw = NULL;
    n->out = NULL;
    n->stat = NULL;
    n->jobs = NULL;
    n->ws_batch = 0;
    n->ws_threads = 0;
    n->last_ok = 0;
}

void node_net_free(node_net *n)
{
    if (!n)
        return;
    node__net_sys *s = n->systems;
    while (s) {
        node__net_sys *next = s->next;
        node__free(s);
        s = next;
    }
    ws_free(n);
    node__free(n->layers);
    node__free(n->ops);
    node__free(n->theta);
    node__free(n);
}

/* ---- layers ------------------------------------------------------------------------ */

static bool mul3(size_t a, size_t b, size_t c, size_t *out)
{
    size_t ab;
    return node__mul_ok(a, b, &ab) && node__mul_ok(ab, c, out);
}

node_status node__layer_plan(const node__layer_spec *s, size_t c, size_t h, size_t w,
                             size_t *oc, size_t *oh, size_t *ow, size_t *np, char *msg)
{
    size_t in = c * h * w;   /* bounded when the net was made, kept by every layer */
    const uint64_t *v = s->v;
    *oh = *ow = 1;
    *np = 0;
    switch (s->kind) {
    case NODE__LAYER_DENSE: {
        if (v[0] == 0 || v[0] > MAXDIM)
            return node__msg(msg, NODE_EINVAL, "dense: out = %llu is not in 1 .. 2^24",
                             (unsigned long long)v[0]);
        size_t fan = in + (s->time ? 1 : 0);
        *oc = (size_t)v[0];
        if (!node__mul_ok(fan + (s->bias ? 1 : 0), *oc, np))
            return node__msg(msg, NODE_EINVAL, "dense: too many parameters");
        return NODE_OK;
    }
    case NODE__LAYER_CONV: {
        static const char *const names[5] = { "out_ch", "kh", "kw", "stride", "pad" };
        for (int i = 0; i < 5; i++)
            if ((i < 4 && v[i] == 0) || v[i] > MAXDIM)
                return node__msg(msg, NODE_EINVAL, "conv2d: %s = %llu is not in %d .. 2^24",
                                 names[i], (unsigned long long)v[i], i < 4 ? 1 : 0);
        size_t kh = (size_t)v[1], kw = (size_t)v[2], st = (size_t)v[3], pad = (size_t)v[4];
        if (kh > h + 2 * pad || kw > w + 2 * pad)
            return node__msg(msg, NODE_EINVAL, "conv2d: kernel %zu x %zu is larger than "
                             "the padded input %zu x %zu", kh, kw, h + 2 * pad, w + 2 * pad);
        *oc = (size_t)v[0];
        *oh = (h + 2 * pad - kh) / st + 1;
        *ow = (w + 2 * pad - kw) / st + 1;
        size_t fan, osz;
        if (!mul3(c + (s->time ? 1 : 0), kh, kw, &fan)
            || !node__mul_ok(fan + (s->bias ? 1 : 0), *oc, np)
            || !mul3(*oc, *oh, *ow, &osz) || osz > MAXDIM * 64 || fan > MAXDIM)
            return node__msg(msg, NODE_EINVAL, "conv2d: %zu output channels of %zu x %zu "
                             "with a %zu x %zu kernel is too large", *oc, *oh, *ow, kh, kw);
        return NODE_OK;
    }
    case NODE__LAYER_GROUPNORM:
    case NODE__LAYER_RESBLOCK: {
        const char *what = s->kind == NODE__LAYER_GROUPNORM ? "groupnorm" : "resblock";
        if (v[0] == 0 || v[0] > c || c % v[0] != 0)
            return node__msg(msg, NODE_EINVAL, "%s: groups = %llu does not divide the "
                             "%zu channels", what, (unsigned long long)v[0], c);
        *oc = c;
        *oh = h;
        *ow = w;
        *np = 2 * c;
        size_t cw;   /* a resblock: two group norms, two 3 × 3 convolutions c → c */
        if (s->kind == NODE__LAYER_RESBLOCK
            && (!mul3(c, c, 18, &cw) || !node__add_ok(cw, 4 * c, np) || c > MAXDIM / 9))
            return node__msg(msg, NODE_EINVAL, "resblock: %zu channels is too many", c);
        return NODE_OK;
    }
    case NODE__LAYER_ACT:
        if (v[0] > INT32_MAX || node__act_index((int64_t)v[0]) == NODE__NACT)
            return node__msg(msg, NODE_EINVAL, "act: %llu is not an activation",
                             (unsigned long long)v[0]);
        *oc = c;
        *oh = h;
        *ow = w;
        return NODE_OK;
    case NODE__LAYER_AVGPOOL:
        *oc = c;
        return NODE_OK;
    case NODE__LAYER_FLATTEN:
        *oc = in;
        return NODE_OK;
    default:
        return node__msg(msg, NODE_EINVAL, "layer kind %lu is unknown", (unsigned long)s->kind);
    }
}

/* Append an op to n (room made by the caller), its input the current output. */
static node__net_op *push_op(node_net *n, int kind, size_t oc, size_t oh, size_t ow,
                             size_t np)
{
    node__net_op *op = &n->ops[n->nops];
    memset(op, 0, sizeof *op);
    if (n->nops) {
        const node__net_op *p = &n->ops[n->nops - 1];
        op->c = p->oc, op->h = p->oh, op->w = p->ow;
    } else
        op->c = n->c, op->h = n->h, op->w = n->w;
    op->kind = kind;
    op->in_size = op->c * op->h * op->w;
    op->oc = oc, op->oh = oh, op->ow = ow;
    op->out_size = oc * oh * ow;
    op->woff = n->nparams;
    op->np = np;
    n->nparams += np;
    n->nops++;
    if (op->out_size > n->maxsize)
        n->maxsize = op->out_size;
    return op;
}

static void push_conv(node_net *n, size_t oc, size_t kh, size_t kw, size_t stride,
                      size_t pad, int bias, int time)
{
    const node__net_op *p = n->nops ? &n->ops[n->nops - 1] : NULL;
    size_t c = p ? p->oc : n->c, h = p ? p->oh : n->h, w = p ? p->ow : n->w;
    size_t oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kw) / stride + 1;
    size_t fan = (c + (time ? 1 : 0)) * kh * kw;
    node__net_op *op = push_op(n, NODE__OP_CONV, oc, oh, ow, (fan + (bias ? 1 : 0)) * oc);
    op->kh = kh, op->kw = kw, op->stride = stride, op->pad = pad;
    op->bias = bias ? 1 : 0;
    op->time = time ? 1 : 0;
    op->fan_in = fan;
    op->nw = fan * oc;
    size_t P = oh * ow;
    op->nb = P >= NODE__NET_COLS ? 1 : NODE__NET_COLS / P;
    op->ld = node__padw(op->nb * P);
}

static void push_simple(node_net *n, int kind, size_t arg)
{
    const node__net_op *p = n->nops ? &n->ops[n->nops - 1] : NULL;
    size_t c = p ? p->oc : n->c, h = p ? p->oh : n->h, w = p ? p->ow : n->w;
    node__net_op *op;
    switch (kind) {
    case NODE__OP_GN:
        op = push_op(n, kind, c, h, w, 2 * c);
        op->groups = arg;
        op->nw = c;
        break;
    case NODE__OP_ACT:
        op = push_op(n, kind, c, h, w, 0);
        op->act_ix = arg;
        break;
    case NODE__OP_POOL:
        push_op(n, kind, c, 1, 1, 0);
        break;
    case NODE__OP_FLAT:
        push_op(n, kind, c * h * w, 1, 1, 0);
        break;
    default:   /* residual start and end */
        op = push_op(n, kind, c, h, w, 0);
        op->res = arg;
        break;
    }
}

/* Does one thread's scratch for n still fit in memory with its newest op?  (The
   sizes of node__net_carve, checked for overflow once.) */
static bool scratch_ok(const node__net_op *op)
{
    size_t a, b, B;
    if (op->kind != NODE__OP_CONV)
        return true;
    return node__mul_ok(op->h + 2 * op->pad, op->w + 2 * op->pad, &a) && a < SIZE_MAX / 64
        && node__mul_ok(op->fan_in, op->ld, &a) && node__mul_ok(op->oc, op->ld, &b)
        && node__mul_ok(op->nb, op->oh * op->ow, &B) && node__mul_ok(op->oc, op->fan_in + 1, &a)
        && node__mul_ok(a, 8, &a) && node__mul_ok(B + op->fan_in, node__padw(op->oc), &b)
        && a < SIZE_MAX / 64 && b < SIZE_MAX / 64;
}

node_status node__net_add(node_net *n, const node__layer_spec *s, char *msg)
{
    const node__net_op *last = n->nops ? &n->ops[n->nops - 1] : NULL;
    size_t c = last ? last->oc : n->c, h = last ? last->oh : n->h, w = last ? last->ow : n->w;
    size_t oc, oh, ow, np, total;
    node_status st = node__layer_plan(s, c, h, w, &oc, &oh, &ow, &np, msg);
    if (st != NODE_OK)
        return st;
    if (!node__add_ok(n->nparams, np, &total) || total > SIZE_MAX / sizeof(double) / 4)
        return node__msg(msg, NODE_EINVAL, "the network would have more than SIZE_MAX / 32 "
                         "bytes of parameters");
    size_t nops = s->kind == NODE__LAYER_RESBLOCK ? 8 : 1;
    /* Room first (nothing changes if it fails). */
    if (n->nlayers == n->layer_cap) {
        size_t cap = n->layer_cap ? 2 * n->layer_cap : 8;
        node__layer_spec *l = node__realloc(n->layers, cap * sizeof *l);
        if (!l)
            return node__msg(msg, NODE_ENOMEM, "no memory for a layer");
        n->layers = l;
        n->layer_cap = cap;
    }
    if (n->nops + nops > n->op_cap) {
        size_t cap = n->op_cap ? 2 * n->op_cap : 16;
        while (cap < n->nops + nops)
            cap *= 2;
        node__net_op *o = node__realloc(n->ops, cap * sizeof *o);
        if (!o)
            return node__msg(msg, NODE_ENOMEM, "no memory for a layer");
        n->ops = o;
        n->op_cap = cap;
    }
    if (np > 0) {
        double *th = node__realloc(n->theta, (total ? total : 1) * sizeof *th);
        if (!th)
            return node__msg(msg, NODE_ENOMEM, "no memory for %zu parameters", total);
        memset(th + n->nparams, 0, np * sizeof *th);
        n->theta = th;
    }
    size_t nops0 = n->nops, np0 = n->nparams, max0 = n->maxsize;
    switch (s->kind) {
    case NODE__LAYER_DENSE:
        /* A 1 × 1 convolution of the flattened sample. */
        if (h * w != 1)
            push_simple(n, NODE__OP_FLAT, 0);
        push_conv(n, oc, 1, 1, 1, 0, s->bias, s->time);
        break;
    case NODE__LAYER_CONV:
        push_conv(n, oc, (size_t)s->v[1], (size_t)s->v[2], (size_t)s->v[3],
                  (size_t)s->v[4], s->bias, s->time);
        break;
    case NODE__LAYER_GROUPNORM:
        push_simple(n, NODE__OP_GN, (size_t)s->v[0]);
        break;
    case NODE__LAYER_ACT:
        push_simple(n, NODE__OP_ACT, node__act_index((int64_t)s->v[0]));
        break;
    case NODE__LAYER_AVGPOOL:
        push_simple(n, NODE__OP_POOL, 0);
        break;
    case NODE__LAYER_FLATTEN:
        push_simple(n, NODE__OP_FLAT, 0);
        break;
    case NODE__LAYER_RESBLOCK: {
        size_t begin = n->nops, relu = node__act_index(NODE_ACT_RELU);
        push_simple(n, NODE__OP_RES_BEGIN, 0);
        push_simple(n, NODE__OP_GN, (size_t)s->v[0]);
        push_simple(n, NODE__OP_ACT, relu);
        push_conv(n, c, 3, 3, 1, 1, 0, 0);
        push_simple(n, NODE__OP_GN, (size_t)s->v[0]);
        push_simple(n, NODE__OP_ACT, relu);
        push_conv(n, c, 3, 3, 1, 1, 0, 0);
        push_simple(n, NODE__OP_RES_END, begin);
        n->has_res = 1;
        break;
    }
    }
    bool ok = n->nparams == total;
    for (size_t k = nops0; k < n->nops && ok; k++)
        ok = scratch_ok(&n->ops[k]);
    if (!ok) {   /* undo: nothing of the layer stays */
        n->nops = nops0;
        n->nparams = np0;
        n->maxsize = max0;
        return node__msg(msg, NODE_EINVAL, "the layer's products are too large");
    }
    n->layers[n->nlayers++] = *s;
    ws_free(n);   /* shapes changed: the next call sizes the workspace afresh */
    return NODE_OK;
}

static node_status add_layer(node_net *n, const node__layer_spec *s, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!n)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "n is NULL"));
    return node__err_end(err, node__net_add(n, s, msg));
}

node_status node_net_add_dense(node_net *n, size_t out, int bias, int time_input,
                               node_error *err)
{
    node__layer_spec s = { NODE__LAYER_DENSE, bias != 0, time_input != 0, { out, 0, 0, 0, 0 } };
    return add_layer(n, &s, err);
}

node_status node_net_add_conv2d(node_net *n, size_t out_ch, size_t kh, size_t kw,
                                size_t stride, size_t pad, int bias, int time_channel,
                                node_error *err)
{
    node__layer_spec s = { NODE__LAYER_CONV, bias != 0, time_channel != 0,
                           { out_ch, kh, kw, stride, pad } };
    return add_layer(n, &s, err);
}

node_status node_net_add_groupnorm(node_net *n, size_t groups, node_error *err)
{
    node__layer_spec s = { NODE__LAYER_GROUPNORM, 0, 0, { groups, 0, 0, 0, 0 } };
    return add_layer(n, &s, err);
}

node_status node_net_add_act(node_net *n, node_activation a, node_error *err)
{
    /* A negative value becomes a huge code: no activation. */
    node__layer_spec s = { NODE__LAYER_ACT, 0, 0,
                           { (uint64_t)(int64_t)a, 0, 0, 0, 0 } };
    return add_layer(n, &s, err);
}

node_status node_net_add_avgpool(node_net *n, node_error *err)
{
    node__layer_spec s = { NODE__LAYER_AVGPOOL, 0, 0, { 0, 0, 0, 0, 0 } };
    return add_layer(n, &s, err);
}

node_status node_net_add_flatten(node_net *n, node_error *err)
{
    node__layer_spec s = { NODE__LAYER_FLATTEN, 0, 0, { 0, 0, 0, 0, 0 } };
    return add_layer(n, &s, err);
}

node_status node_net_add_resblock(node_net *n, size_t groups, node_error *err)
{
    node__layer_spec s = { NODE__LAYER_RESBLOCK, 0, 0, { groups, 0, 0, 0, 0 } };
    return add_layer(n, &s, err);
}

/* ---- queries --------------------------------------------------------------------- */

size_t node_net_nparams(const node_net *n) { return n ? n->nparams : 0; }
double *node_net_params(node_net *n) { return n ? n->theta : NULL; }
size_t node_net_nlayers(const node_net *n) { return n ? n->nlayers : 0; }

void node_net_in_shape(const node_net *n, size_t *c, size_t *h, size_t *w)
{
    if (c)
        *c = n ? n->c : 0;
    if (h)
        *h = n ? n->h : 0;
    if (w)
        *w = n ? n->w : 0;
}

void node_net_out_shape(const node_net *n, size_t *c, size_t *h, size_t *w)
{
    const node__net_op *l = n && n->nops ? &n->ops[n->nops - 1] : NULL;
    if (c)
        *c = l ? l->oc : n ? n->c : 0;
    if (h)
        *h = l ? l->oh : n ? n->h : 0;
    if (w)
        *w = l ? l->ow : n ? n->w : 0;
}

double node_net_flops(const node_net *n)
{
    double f = 0.0;
    for (size_t k = 0; n && k < n->nops; k++) {
        const node__net_op *op = &n->ops[k];
        if (op->kind == NODE__OP_CONV)
            f += (double)op->oc * (double)op->fan_in * (double)(op->oh * op->ow);
    }
    return f;
}

void node_net_init(node_net *n, uint64_t seed)
{
    if (!n)
        return;
    uint64_t s = seed;
    for (size_t k = 0; k < n->nops; k++) {
        const node__net_op *op = &n->ops[k];
        double *p = n->theta + op->woff;
        if (op->kind == NODE__OP_GN) {
            for (size_t i = 0; i < op->c; i++) {
                p[i] = 1.0;
                p[op->c + i] = 0.0;
            }
        } else if (op->kind == NODE__OP_CONV) {
            /* U(-1/√fan_in, 1/√fan_in) for weights and biases, as torch.nn.Conv2d. */
            double bound = 1.0 / sqrt((double)op->fan_in);
            for (size_t i = 0; i < op->np; i++) {
                double u = (double)(node__splitmix64(&s) >> 11) * 0x1p-53;
                p[i] = (2.0 * u - 1.0) * bound;
            }
        }
    }
}

/* ---- threads and the workspace ----------------------------------------------------- */

int node_net_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

node_status node_net_set_threads(node_net *n, int threads)
{
    if (!n || threads < 0)
        return NODE_EINVAL;
    n->threads = threads;
    return NODE_OK;
}

static int threads_of(const node_net *n)
{
#ifdef _OPENMP
    int t = n->threads == 0 ? omp_get_max_threads() : n->threads;
    return t < 1 ? 1 : t;
#else
    (void)n;
    return 1;
#endif
}

/* Workspace doubles of an op per sample: its output, and a group norm's (mean,
   1/σ) of each group. */
static size_t op_doubles(const node__net_op *op)
{
    return op->out_size + (op->kind == NODE__OP_GN ? 2 * op->groups : 0);
}

static node_status reserve(node_net *n, size_t batch)
{
    int T = threads_of(n);
    if ((size_t)T > batch)
        T = (int)batch;
    if (batch <= n->ws_batch && T <= n->ws_threads && n->raw)
        return NODE_OK;
    if (batch < n->ws_batch)
        batch = n->ws_batch;
    if (T < n->ws_threads)
        T = n->ws_threads;
    /* doubles: every op's output (batch × its size, aligned; a group norm's
       statistics after it), Δ twice and the residual stash (batch × maxsize), then T
       scratch blocks. */
    size_t total = 0, per, rows;
    if (!node__mul_ok(batch, n->maxsize, &rows) || rows > SIZE_MAX / 64)
        return NODE_ENOMEM;
    for (size_t k = 0; k < n->nops; k++) {
        size_t sz;
        if (!node__mul_ok(batch, op_doubles(&n->ops[k]), &sz) || !node__add_ok(total, sz + 16, &total))
            return NODE_ENOMEM;
    }
    per = node__net_carve(n, NULL, NULL);
    size_t scr, key;   /* the latest forward's x and θ */
    if (!node__mul_ok(batch, n->c * n->h * n->w, &key) || !node__add_ok(key, n->nparams + 16, &key)
        || !node__add_ok(total, key, &total))
        return NODE_ENOMEM;
    if (!node__add_ok(total, 3 * (rows + 8), &total) || !node__mul_ok(per, (size_t)T, &scr)
        || !node__add_ok(total, scr, &total) || total > (SIZE_MAX - 64) / sizeof(double))
        return NODE_ENOMEM;
    void *raw = node__malloc(total * sizeof(double) + 64);
    double **out = node__malloc((n->nops ? n->nops : 1) * sizeof *out);
    double **stat = node__malloc((n->nops ? n->nops : 1) * sizeof *stat);
    node__net_job *jobs = node__malloc((size_t)T * sizeof *jobs);
    if (!raw || !out || !stat || !jobs) {
        node__free(raw);
        node__free(out);
        node__free(stat);
        node__free(jobs);
        return NODE_ENOMEM;
    }
    ws_free(n);
    n->raw = raw;
    n->out = out;
    n->stat = stat;
    n->jobs = jobs;
    double *p = (double *)(void *)((unsigned char *)raw + (64 - (uintptr_t)raw % 64) % 64);
    for (size_t k = 0; k < n->nops; k++) {
        const node__net_op *op = &n->ops[k];
        int alias = op->kind == NODE__OP_FLAT || op->kind == NODE__OP_RES_BEGIN;
        out[k] = alias ? NULL : p;
        p += (batch * op->out_size + 8) & ~(size_t)7;
        stat[k] = op->kind == NODE__OP_GN ? p : NULL;
        p += (batch * (op_doubles(op) - op->out_size) + 8) & ~(size_t)7;
    }
    rows = (rows + 8) & ~(size_t)7;
    n->d0 = p;
    n->d1 = p + rows;
    n->stash = p + 2 * rows;
    n->scr = p + 3 * rows;
    p = n->scr + per * (size_t)T;
    n->last_x = p;
    n->last_theta = p + ((batch * n->c * n->h * n->w + 8) & ~(size_t)7);
    n->scr_per_thread = per;
    n->ws_batch = batch;
    n->ws_threads = T;
    return NODE_OK;
}

node_status node_net_reserve(node_net *n, size_t batch)
{
    if (!n || batch == 0)
        return NODE_EINVAL;
    return reserve(n, batch);
}

/* ---- evaluation ------------------------------------------------------------------- */

/* One pass over the batch, split among the threads (the workspace reserved). */
static void run(node_net *n, size_t batch, double t, const double *x, const double *a,
                double *y, double *vjp_x, double *vjp_p, double *vjp_t, int reuse)
{
    int T = threads_of(n);
    if ((size_t)T > batch)
        T = (int)batch;
    if (vjp_p)
        memset(vjp_p, 0, n->nparams * sizeof *vjp_p);
    /* The team may be smaller than asked (inside another parallel region, or with
       OMP_DYNAMIC): the batch is split among the threads it has. */
    int team = 1;
#ifdef _OPENMP
#   pragma omp parallel num_threads(T) if (T > 1)
#endif
    {
        int id = 0, nt = 1;
#ifdef _OPENMP
        id = omp_get_thread_num();
        nt = omp_get_num_threads();
#   pragma omp single nowait
        team = nt;
#endif
        node__net_job *job = &n->jobs[id];
        memset(job, 0, sizeof *job);
        job->s0 = batch * (size_t)id / (size_t)nt;
        job->s1 = batch * (size_t)(id + 1) / (size_t)nt;
        job->t = t;
        job->reuse = reuse;
        job->x = x;
        job->out = n->out;
        job->stat = n->stat;
        job->y = y;
        job->a = a;
        job->d0 = n->d0;
        job->d1 = n->d1;
        job->stash = n->stash;
        job->vjp_x = vjp_x;
        job->scr = n->scr + (size_t)id * n->scr_per_thread;
        if (a && vjp_p) {
            if (id == 0)
                job->gp = vjp_p;
            else {
                node__net_scr sc;
                node__net_carve(n, job->scr, &sc);
                memset(sc.gp, 0, n->nparams * sizeof *sc.gp);
                job->gp = sc.gp;
            }
        }
        n->kern->pass(n, job);
    }
    /* Threads 1 .. T-1 added in order: the same sums for a given thread count,
       whatever the scheduling. */
    for (int id = 1; a && vjp_p && id < team; id++)
        for (size_t i = 0; i < n->nparams; i++)
            vjp_p[i] += n->jobs[id].gp[i];
    if (vjp_t) {
        double s = 0.0;
        for (int id = 0; id < team; id++)
            s += n->jobs[id].gt;
        *vjp_t = s;
    }
}

node_status node_net_forward(node_net *n, size_t batch, double t, const double *x,
                             double *y)
{
    if (!n || !x || !y || batch == 0)
        return NODE_EINVAL;
    node_status st = reserve(n, batch);
    if (st != NODE_OK)
        return st;
    run(n, batch, t, x, NULL, y, NULL, NULL, NULL, 0);
    /* Kept for a vjp at the same point (backprop's reverse pass evaluates a step's
       stages, then differentiates the last of them first). */
    n->last_ok = 1;
    n->last_batch = batch;
    n->last_t = t;
    memcpy(n->last_x, x, batch * n->c * n->h * n->w * sizeof *x);
    memcpy(n->last_theta, n->theta, n->nparams * sizeof *n->theta);
    return NODE_OK;
}

/* Does the workspace hold the forward pass of (batch, t, x) with the current θ? */
static int same_as_last(const node_net *n, size_t batch, double t, const double *x)
{
    return n->last_ok && n->last_batch == batch && memcmp(&n->last_t, &t, sizeof t) == 0
        && memcmp(n->last_x, x, batch * n->c * n->h * n->w * sizeof *x) == 0
        && memcmp(n->last_theta, n->theta, n->nparams * sizeof *n->theta) == 0;
}

node_status node_net_vjp(node_net *n, size_t batch, double t, const double *x,
                         const double *a, double *y, double *vjp_x, double *vjp_p,
                         double *vjp_t)
{
    if (!n || !x || batch == 0 || (!a && (vjp_x || vjp_p || vjp_t)))
        return NODE_EINVAL;
    node_status st = reserve(n, batch);
    if (st != NODE_OK)
        return st;
    int reuse = same_as_last(n, batch, t, x);
    n->last_ok = 0;   /* a pass of this call overwrites the workspace */
    if (!a) {
        if (y)
            run(n, batch, t, x, NULL, y, NULL, NULL, NULL, reuse);
        return NODE_OK;
    }
    run(n, batch, t, x, a, y, vjp_x, vjp_p, vjp_t, reuse);
    return NODE_OK;
}

/* ---- the network as a node_system ---------------------------------------------- */

static int sys_f(void *ctx, double t, const double *y, double *dydt)
{
    node__net_sys *s = ctx;
    return node_net_forward(s->n, s->batch, t, y, dydt) == NODE_OK ? 0 : 1;
}

static int sys_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vjp_y, double *vjp_p, double *vjp_t)
{
    node__net_sys *s = ctx;
    return node_net_vjp(s->n, s->batch, t, y, a, dydt, vjp_y, vjp_p, vjp_t) == NODE_OK ? 0 : 1;
}

node_status node_net_system(node_net *n, size_t batch, node_system *out)
{
    if (!n || !out || batch == 0)
        return NODE_EINVAL;
    size_t c, h, w, dim;
    node_net_out_shape(n, &c, &h, &w);
    if (c != n->c || h != n->h || w != n->w || !node__mul_ok(batch, c * h * w, &dim))
        return NODE_EINVAL;
    node__net_sys *s = node__calloc(1, sizeof *s);
    if (!s)
        return NODE_ENOMEM;
    node_status st = reserve(n, batch);
    if (st != NODE_OK) {
        node__free(s);
        return st;
    }
    s->n = n;
    s->batch = batch;
    s->next = n->systems;
    n->systems = s;
    memset(out, 0, sizeof *out);
    out->dim = dim;
    out->nparams = n->nparams;
    out->ctx = s;
    out->f = sys_f;
    out->vjp = sys_vjp;
    return NODE_OK;
}

/* ---- softmax cross-entropy --------------------------------------------------------- */

node_status node_softmax_xent(size_t batch, size_t classes, const double *logits,
                              const int32_t *labels, double *loss, double *dlogits,
                              size_t *correct, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!logits || !labels || !loss)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL",
                                            !logits ? "logits" : !labels ? "labels" : "loss"));
    if (batch == 0 || classes == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is 0",
                                            batch == 0 ? "batch" : "classes"));
    size_t total;
    if (!node__mul_ok(batch, classes, &total))
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "batch x classes overflows"));
    for (size_t b = 0; b < batch; b++) {
        if (labels[b] < 0 || (uint64_t)labels[b] >= classes)
            return node__err_end(err, node__msg(msg, NODE_EINVAL, "labels[%zu] = %ld is not "
                                                "in 0 .. %zu", b, (long)labels[b],
                                                classes - 1));
        for (size_t j = 0; j < classes; j++)
            if (!isfinite(logits[b * classes + j]))
                return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                                    "logits[%zu][%zu] is not finite", b, j));
    }
    double sum = 0.0;
    size_t hits = 0;
    for (size_t b = 0; b < batch; b++) {
        const double *l = logits + b * classes;
        size_t arg = 0;
        for (size_t j = 1; j < classes; j++)
            if (l[j] > l[arg])
                arg = j;
        double m = l[arg], z = 0.0;
        for (size_t j = 0; j < classes; j++)
            z += exp(l[j] - m);
        sum += m + log(z) - l[labels[b]];
        hits += arg == (size_t)labels[b];
        if (dlogits)
            for (size_t j = 0; j < classes; j++)
                dlogits[b * classes + j] = (exp(l[j] - m) / z - (j == (size_t)labels[b]))
                                         / (double)batch;
    }
    *loss = sum / (double)batch;
    if (correct)
        *correct = hits;
    return node__err_end(err, NODE_OK);
}
