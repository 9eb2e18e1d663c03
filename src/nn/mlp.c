/* mlp.c — a multilayer perceptron y = act_L(W_L ... act_1(W_1 [x; t] + b_1) ... + b_L)
 * as ODE dynamics: creation, parameters, workspaces and systems.  The fused forward /
 * reverse pass is pass.c (with kernels.c and act.c, compiled once per instruction-set
 * level); model files are io.c.
 */
#include "nn/nn_internal.h"

#include <string.h>


/* ---- kernel tables ---------------------------------------------------------------- */

const node__nn_kernels *node__nn_kernels_for(node__isa isa)
{
    (void)isa;   /* unused when only the generic level is built */
    return NODE__KERNEL_TABLE(isa, node__nn_kernels);
}

/* ---- creation ------------------------------------------------------------------ */

node_status node_mlp_create_ex(node_mlp **out, size_t nlayers, const size_t *sizes,
                               const node_activation *acts, int time_input, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    if (nlayers == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "nlayers is 0"));
    if (!sizes || !acts)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL",
                                            sizes ? "acts" : "sizes"));
    /* Bound the depth so that the index block below cannot overflow. */
    if (nlayers > SIZE_MAX / (8 * sizeof(size_t)) - 2)
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "nlayers = %zu is too many layers", nlayers));
    size_t nparams = 0, maxw = 0;
    for (size_t k = 0; k <= nlayers; k++) {
        if (sizes[k] == 0)
            return node__err_end(err, node__msg(msg, NODE_EINVAL, "sizes[%zu] is 0", k));
        if (k < nlayers && node__act_index((int64_t)acts[k]) == NODE__NACT)
            return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                                "acts[%zu] = %lld is not an activation", k,
                                                (long long)acts[k]));
    }
    for (size_t k = 0; k < nlayers; k++) {
        size_t in = sizes[k], w;
        if ((k == 0 && time_input && !node__add_ok(in, 1, &in)) || !node__add_ok(in, 1, &w)
            || !node__mul_ok(w, sizes[k + 1], &w) || !node__add_ok(nparams, w, &nparams))
            return node__err_end(err, node__msg(msg, NODE_ENOMEM,
                                                "sizes describe more than SIZE_MAX parameters"));
        if (in > maxw)
            maxw = in;
        if (sizes[k + 1] > maxw)
            maxw = sizes[k + 1];
    }
    if (nparams > SIZE_MAX / sizeof(double))
        return node__err_end(err, node__msg(msg, NODE_ENOMEM,
                                            "%zu parameters do not fit in memory", nparams));

    node_mlp *m = node__calloc(1, sizeof *m);
    if (!m)
        return node__err_end(err, NODE_ENOMEM);
    /* One block for the index arrays: sizes, fan_in, woff, act_ix (size_t), then acts. */
    size_t nidx = (nlayers + 1) + 3 * nlayers;
    m->sizes = node__malloc(nidx * sizeof(size_t) + nlayers * sizeof(node_activation));
    m->theta = node__calloc(nparams, sizeof(double));
    if (!m->sizes || !m->theta) {
        node__free(m->sizes);
        node__free(m->theta);
        node__free(m);
        return node__err_end(err, node__msg(msg, NODE_ENOMEM,
                                            "no memory for %zu parameters", nparams));
    }
    m->fan_in = m->sizes + nlayers + 1;
    m->woff = m->fan_in + nlayers;
    m->act_ix = m->woff + nlayers;
    m->acts = (node_activation *)(void *)(m->act_ix + nlayers);
    m->kern = node__nn_kernels_for(node__isa_select());
    m->nlayers = nlayers;
    m->time_input = time_input ? 1 : 0;
    m->nparams = nparams;
    m->maxw = maxw;
    size_t off = 0;
    for (size_t k = 0; k <= nlayers; k++)
        m->sizes[k] = sizes[k];
    for (size_t k = 0; k < nlayers; k++) {
        m->acts[k] = acts[k];
        m->act_ix[k] = node__act_index((int64_t)acts[k]);
        m->fan_in[k] = sizes[k] + (k == 0 ? (size_t)m->time_input : 0);
        m->woff[k] = off;
        off += (m->fan_in[k] + 1) * sizes[k + 1];
    }
    *out = m;
    return node__err_end(err, NODE_OK);
}

node_status node_mlp_create(node_mlp **out, size_t nlayers, const size_t *sizes,
                            const node_activation *acts, int time_input)
{
    return node_mlp_create_ex(out, nlayers, sizes, acts, time_input, NULL);
}

/* One system or flow of the model's list, with its workspaces. */
static void sys_free(node__mlp_sys *s)
{
    for (size_t i = 0; i < s->nmore; i++)
        node__free(s->more[i].raw);
    node__free(s->more);
    node__free(s->ws.raw);
    node__free(s);
}

void node_mlp_free(node_mlp *m)
{
    if (!m)
        return;
    node__mlp_sys *s = m->systems;
    while (s) {
        node__mlp_sys *next = s->next;
        sys_free(s);
        s = next;
    }
    node__free(m->ws.raw);
    node__free(m->theta);
    node__free(m->sizes);
    node__free(m);
}

/* ---- shape queries -------------------------------------------------------------- */

size_t node_mlp_nparams(const node_mlp *m) { return m ? m->nparams : 0; }
double *node_mlp_params(node_mlp *m) { return m ? m->theta : NULL; }
size_t node_mlp_nlayers(const node_mlp *m) { return m ? m->nlayers : 0; }
int node_mlp_time_input(const node_mlp *m) { return m ? m->time_input : 0; }

size_t node_mlp_size(const node_mlp *m, size_t k)
{
    return m && k <= m->nlayers ? m->sizes[k] : 0;
}

node_activation node_mlp_activation(const node_mlp *m, size_t layer)
{
    return m && layer < m->nlayers ? m->acts[layer] : NODE_ACT_IDENTITY;
}

/* ---- initialisation ----------------------------------------------------------- */

void node_mlp_init(node_mlp *m, uint64_t seed)
{
    if (!m)
        return;
    uint64_t s = seed;
    for (size_t k = 0; k < m->nlayers; k++) {
        /* U(-1/√fan_in, 1/√fan_in) for W_k and b_k, as torch.nn.Linear. */
        double bound = 1.0 / sqrt((double)m->fan_in[k]);
        size_t n = (m->fan_in[k] + 1) * m->sizes[k + 1];
        double *p = m->theta + m->woff[k];
        for (size_t i = 0; i < n; i++) {
            double u = (double)(node__splitmix64(&s) >> 11) * 0x1p-53;   /* top 53 bits */
            p[i] = (2.0 * u - 1.0) * bound;
        }
    }
}

/* ---- workspaces ------------------------------------------------------------------- */

/* Doubles needed for a padded batch ld: input (with the time row), every layer's
   output and activation derivative, two backward buffers, and the products'
   scratch ((ld + maxw) rows of node__padw(maxw), then a packing buffer; or the
   lane sums of a small weight gradient, if larger). */
static bool ws_need(const node_mlp *m, size_t ld, size_t *need)
{
    size_t rows = m->fan_in[0] + 2 * m->maxw, main, scratch, pw;
    for (size_t k = 0; k < m->nlayers; k++)
        if (!node__add_ok(rows, 2 * m->sizes[k + 1], &rows))
            return false;
    if (m->maxw > SIZE_MAX - 80)
        return false;
    pw = node__padw(m->maxw);
    if (!node__mul_ok(rows, ld, &main) || !node__add_ok(ld, m->maxw, &scratch)
        || !node__mul_ok(scratch, pw, &scratch) || !node__add_ok(scratch, NODE__PACK, &scratch))
        return false;
    /* Small weight gradients keep lane sums; counted for every padded batch from
       the smallest (8) on, so that the need grows with the batch and a
       reservation serves every smaller batch too. */
    for (size_t k = 0; k < m->nlayers && ld > 1; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k], lanes;
        if (node__bwdw_transposed(O, I, 8))
            continue;
        if (!node__mul_ok(8 * O, I + 1, &lanes))   /* 8 O: O is at most maxw */
            return false;
        if (lanes > scratch)
            scratch = lanes;
    }
    return node__add_ok(main, scratch, need);
}

/* Compares needs (a few multiplications per layer), so a workspace reserved for
   a batch serves every batch up to it for ever: it never shrinks. */
node_status node__mlp_ws_reserve(const node_mlp *m, node_mlp_ws *w, size_t batch)
{
    if (batch == 0)
        return NODE_EINVAL;
    if (batch > SIZE_MAX / 16)   /* padding must not wrap around */
        return NODE_ENOMEM;
    /* A batch whose single-pass workspace is not addressable is refused (its
       arrays could not exist either); the workspace itself serves one chunk. */
    size_t need;
    if (!ws_need(m, node__lead_dim(batch), &need) || need > SIZE_MAX / sizeof(double)
        || (batch > NODE__CHUNK && !ws_need(m, node__lead_dim(NODE__CHUNK), &need)))
        return NODE_ENOMEM;
    return node__mlp_ws_grow(w, need);
}

node_status node__mlp_ws_grow(node_mlp_ws *w, size_t need)
{
    if (need <= w->cap)
        return NODE_OK;
    /* Scratch: nothing to keep.  Aligned to a cache line, so that the kernels' rows
       start where they do whatever the allocator returned (64-byte vectors that
       straddle two lines cost; measured: up to 10 % on small widths). */
    if (need > (SIZE_MAX - NODE__WS_ALIGN) / sizeof(double))
        return NODE_ENOMEM;
    void *raw = node__malloc(need * sizeof(double) + NODE__WS_ALIGN);
    if (!raw)
        return NODE_ENOMEM;
    node__free(w->raw);
    w->raw = raw;
    uintptr_t at = (uintptr_t)raw;
    w->buf = (double *)(void *)((unsigned char *)raw
                                + (NODE__WS_ALIGN - at % NODE__WS_ALIGN) % NODE__WS_ALIGN);
    w->cap = need;
    return NODE_OK;
}

node_status node_mlp_reserve(node_mlp *m, size_t batch)
{
    if (!m)
        return NODE_EINVAL;
    return node__mlp_ws_reserve(m, &m->ws, batch);
}

node_status node_mlp_ws_create(const node_mlp *m, size_t batch, node_mlp_ws **out)
{
    if (!out || (batch > 0 && !m))
        return NODE_EINVAL;
    node_mlp_ws *w = node__calloc(1, sizeof *w);
    if (!w)
        return NODE_ENOMEM;
    if (batch > 0) {
        node_status st = node__mlp_ws_reserve(m, w, batch);
        if (st != NODE_OK) {
            node__free(w);
            return st;
        }
    }
    *out = w;
    return NODE_OK;
}

void node_mlp_ws_free(node_mlp_ws *w)
{
    if (!w)
        return;
    node__free(w->raw);
    node__free(w);
}

/* ---- evaluation ------------------------------------------------------------------- */

node_status node_mlp_forward_ws(const node_mlp *m, node_mlp_ws *w, size_t batch, double t,
                                const double *x, double *y)
{
    if (!m || !w || !x || !y || batch == 0)
        return NODE_EINVAL;
    node_status st = node__mlp_ws_reserve(m, w, batch);
    if (st != NODE_OK)
        return st;
    m->kern->pass(m, w->buf, batch, t, x, NULL, y, NULL, NULL, NULL);
    return NODE_OK;
}

node_status node_mlp_vjp_ws(const node_mlp *m, node_mlp_ws *w, size_t batch, double t,
                            const double *x, const double *a, double *y, double *vjp_x,
                            double *vjp_p, double *vjp_t)
{
    if (!m || !w || !x || batch == 0)
        return NODE_EINVAL;
    if (!a && (vjp_x || vjp_p || vjp_t))
        return NODE_EINVAL;
    node_status st = node__mlp_ws_reserve(m, w, batch);
    if (st != NODE_OK)
        return st;
    m->kern->pass(m, w->buf, batch, t, x, a, y, vjp_x, vjp_p, vjp_t);
    return NODE_OK;
}

node_status node_mlp_forward(node_mlp *m, size_t batch, double t, const double *x,
                             double *y)
{
    return node_mlp_forward_ws(m, m ? &m->ws : NULL, batch, t, x, y);
}

node_status node_mlp_vjp(node_mlp *m, size_t batch, double t, const double *x,
                         const double *a, double *y, double *vjp_x, double *vjp_p,
                         double *vjp_t)
{
    return node_mlp_vjp_ws(m, m ? &m->ws : NULL, batch, t, x, a, y, vjp_x, vjp_p, vjp_t);
}

/* ---- the MLP as a node_system ------------------------------------------------- */

/* A new system of m in its list, with workspaces for `workers` threads (1 + nmore)
   sized for `batch` rows. */
static node_status sys_new(node_mlp *m, size_t batch, size_t workers, node__mlp_sys **out)
{
    node__mlp_sys *s = node__calloc(1, sizeof *s);
    if (!s)
        return NODE_ENOMEM;
    s->more = workers > 1 ? node__calloc(workers - 1, sizeof *s->more) : NULL;
    node_status st = workers > 1 && !s->more ? NODE_ENOMEM
                                             : node__mlp_ws_reserve(m, &s->ws, batch);
    for (size_t i = 0; st == NODE_OK && i + 1 < workers; i++) {
        st = node__mlp_ws_reserve(m, &s->more[i], batch);
        s->nmore = i + 1;
    }
    if (st != NODE_OK) {
        sys_free(s);
        return st;
    }
    s->m = m;
    s->batch = batch;
    s->next = m->systems;
    m->systems = s;
    *out = s;
    return NODE_OK;
}

/* Each system evaluates into its own workspace, sized for its batch when it was
   made: f and vjp only read the model, so systems may run in parallel threads. */
static int sys_f(void *ctx, double t, const double *y, double *dydt)
{
    node__mlp_sys *s = ctx;
    s->m->kern->pass(s->m, s->ws.buf, s->batch, t, y, NULL, dydt, NULL, NULL, NULL);
    return 0;
}

static int sys_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vjp_y, double *vjp_p, double *vjp_t)
{
    node__mlp_sys *s = ctx;
    s->m->kern->pass(s->m, s->ws.buf, s->batch, t, y, a, dydt, vjp_y, vjp_p, vjp_t);
    return 0;
}

node_status node_mlp_system(node_mlp *m, size_t batch, node_system *out)
{
    if (!m || !out || batch == 0 || m->sizes[0] != m->sizes[m->nlayers])
        return NODE_EINVAL;
    size_t dim;
    if (!node__mul_ok(batch, m->sizes[0], &dim))
        return NODE_EINVAL;
    node__mlp_sys *s;
    node_status st = sys_new(m, batch, 1, &s);
    if (st != NODE_OK)
        return st;
    memset(out, 0, sizeof *out);
    out->dim = dim;
    out->nparams = m->nparams;
    out->ctx = s;
    out->f = sys_f;
    out->vjp = sys_vjp;
    return NODE_OK;
}

/* The MLP as batched ensemble dynamics: each worker its own workspace. */
static node_mlp_ws *ens_ws(node__mlp_sys *s, size_t worker)
{
    return worker == 0 ? &s->ws : &s->more[worker - 1];
}

static int ens_f(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                 double *dydt)
{
    node__mlp_sys *s = ctx;
    if (n > s->batch || worker > s->nmore)
        return -1;
    s->m->kern->pass_rows(s->m, ens_ws(s, worker)->buf, n, t, y, NULL, dydt, NULL, NULL);
    return 0;
}

static int ens_vjp(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                   const double *a, double *dydt, double *vjp_y, double *vjp_p)
{
    node__mlp_sys *s = ctx;
    if (n > s->batch || worker > s->nmore)
        return -1;
    s->m->kern->pass_rows(s->m, ens_ws(s, worker)->buf, n, t, y, a, dydt, vjp_y, vjp_p);
    return 0;
}

node_status node_mlp_ensemble(node_mlp *m, size_t max_rows, size_t workers,
                              node_ensemble_system *out)
{
    if (!m || !out || m->sizes[0] != m->sizes[m->nlayers])
        return NODE_EINVAL;
    if (max_rows == 0)
        max_rows = 256;
    if (workers == 0)
        workers = 1;
    if (workers > SIZE_MAX / sizeof(node_mlp_ws))
        return NODE_EINVAL;
    node__mlp_sys *s;
    node_status st = sys_new(m, max_rows, workers, &s);
    if (st != NODE_OK)
        return st;
    memset(out, 0, sizeof *out);
    out->dim = m->sizes[0];
    out->nparams = m->nparams;
    out->ctx = s;
    out->f = ens_f;
    out->vjp = ens_vjp;
    out->max_rows = max_rows;
    out->workers = workers;
    return NODE_OK;
}

node_status node_mlp_system_release(node_mlp *m, node_system *sys)
{
    if (!m || !sys || sys->f != sys_f || !node__mlp_sys_unlink(m, sys->ctx))
        return NODE_EINVAL;
    memset(sys, 0, sizeof *sys);
    return NODE_OK;
}

bool node__mlp_sys_unlink(node_mlp *m, void *ctx)
{
    for (node__mlp_sys **p = &m->systems; *p; p = &(*p)->next)
        if (*p == ctx) {
            node__mlp_sys *s = *p;
            *p = s->next;
            sys_free(s);
            return true;
        }
    return false;
}
