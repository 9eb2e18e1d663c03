/* flow.c — the MLP's divergence products as API (libnode/cnf.h): node_mlp_div,
 * node_mlp_div_vjp, and the MLP as a node_flow.  The pass itself is div.c (one
 * copy per instruction-set level, reached through the model's kernel table).
 */
#include "nn/nn_internal.h"
#include "libnode/cnf.h"

#include <string.h>

/* Doubles of the products' scratch for up to `cols` columns (kernels.c:
   node__layer_bwd_w and the packing buffer of the other two). */
static bool scratch_need(const node_mlp *m, size_t cols, size_t *need)
{
    size_t s;
    if (!node__add_ok(cols, m->maxw, &s) || !node__mul_ok(s, node__padw(m->maxw), &s)
        || !node__add_ok(s, NODE__PACK, &s))
        return false;
    for (size_t k = 0; k < m->nlayers; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k], v;
        if (!node__add_ok(I, 1, &v) || !node__mul_ok(v, 8 * O, &v))
            return false;
        if (v > s)
            s = v;
    }
    *need = s;
    return true;
}

bool node__div_need(const node_mlp *m, size_t nb, size_t T, size_t *need)
{
    size_t tc, ldp = node__div_ld(nb), ldt, rp = m->fan_in[0] + 2 * m->maxw, rt = rp, n, s;
    if (m->maxw > SIZE_MAX / 8 || !node__mul_ok(T, nb, &tc) || tc > SIZE_MAX - 80)
        return false;
    ldt = node__div_ld(tc);
    for (size_t k = 0; k < m->nlayers; k++)
        if (!node__add_ok(rp, 3 * m->sizes[k + 1], &rp)
            || !node__add_ok(rt, 2 * m->sizes[k + 1], &rt))
            return false;
    if (!node__mul_ok(rp, ldp, &rp) || !node__mul_ok(rt, ldt, &rt)
        || !node__add_ok(rp, rt, &n) || !node__add_ok(n, 2 * m->maxw, &n)
        || !scratch_need(m, ldt > ldp ? ldt : ldp, &s))
        return false;
    return node__add_ok(n, s, need);
}

node_status node__mlp_div_reserve(const node_mlp *m, node_mlp_ws *w, size_t batch, size_t T)
{
    if (batch == 0 || T == 0)
        return NODE_EINVAL;
    size_t cap = node__div_chunk(T), nb = batch < cap ? batch : cap, need;
    if (!node__div_need(m, nb, T, &need))
        return NODE_ENOMEM;
    return node__mlp_ws_grow(w, need);
}

static node_status div_args(const node_mlp *m, node_mlp_ws *w, size_t batch,
                            const double *x, const double *eps)
{
    if (!m || !w || !x || batch == 0 || m->sizes[0] != m->sizes[m->nlayers])
        return NODE_EINVAL;
    size_t cells;
    if (!node__mul_ok(batch, m->sizes[0], &cells))
        return NODE_EINVAL;
    return node__mlp_div_reserve(m, w, batch, eps ? 1 : m->sizes[0]);
}

node_status node_mlp_div(const node_mlp *m, node_mlp_ws *w, size_t batch, double t,
                         const double *x, const double *eps, double *y, double *div)
{
    node_status st = div_args(m, w, batch, x, eps);
    if (st != NODE_OK)
        return st;
    m->kern->div(m, w->buf, batch, t, x, eps, NULL, NULL, y, div, NULL, NULL, NULL);
    return NODE_OK;
}

node_status node_mlp_div_vjp(const node_mlp *m, node_mlp_ws *w, size_t batch, double t,
                             const double *x, const double *eps, const double *a,
                             const double *b, double *y, double *div, double *vjp_x,
                             double *vjp_p, double *vjp_t)
{
    if (!vjp_x)
        return NODE_EINVAL;
    node_status st = div_args(m, w, batch, x, eps);
    if (st != NODE_OK)
        return st;
    m->kern->div(m, w->buf, batch, t, x, eps, a, b, y, div, vjp_x, vjp_p, vjp_t);
    return NODE_OK;
}

/* ---- the MLP as a node_flow ------------------------------------------------------
   The context is a node__mlp_sys in the model's list of systems (freed with the
   model); its batch is the reserved one.  Callbacks fail (non-zero) only when a
   larger batch than any before needs memory that is not there. */

static int flow_f(void *ctx, size_t batch, double t, const double *z, double *dzdt)
{
    node__mlp_sys *s = ctx;
    if (!z || !dzdt || batch == 0 || node__mlp_ws_reserve(s->m, &s->ws, batch) != NODE_OK)
        return 1;
    s->m->kern->pass(s->m, s->ws.buf, batch, t, z, NULL, dzdt, NULL, NULL, NULL);
    return 0;
}

static int flow_div(void *ctx, size_t batch, double t, const double *z, const double *eps,
                    double *dzdt, double *div)
{
    node__mlp_sys *s = ctx;
    return node_mlp_div(s->m, &s->ws, batch, t, z, eps, dzdt, div) != NODE_OK;
}

static int flow_div_vjp(void *ctx, size_t batch, double t, const double *z,
                        const double *eps, const double *a, const double *b, double *dzdt,
                        double *div, double *vjp_z, double *vjp_p, double *vjp_t)
{
    node__mlp_sys *s = ctx;
    return node_mlp_div_vjp(s->m, &s->ws, batch, t, z, eps, a, b, dzdt, div, vjp_z, vjp_p,
                            vjp_t) != NODE_OK;
}

node_status node_mlp_flow(node_mlp *m, size_t reserve_batch, node_flow *out)
{
    if (!m || !out || m->sizes[0] != m->sizes[m->nlayers])
        return NODE_EINVAL;
    node__mlp_sys *s = node__calloc(1, sizeof *s);
    if (!s)
        return NODE_ENOMEM;
    if (reserve_batch > 0) {
        node_status st = node__mlp_ws_reserve(m, &s->ws, reserve_batch);
        if (st == NODE_OK)
            st = node__mlp_div_reserve(m, &s->ws, reserve_batch, 1);
        if (st == NODE_OK)
            st = node__mlp_div_reserve(m, &s->ws, reserve_batch, m->sizes[0]);
        if (st != NODE_OK) {
            node__free(s->ws.raw);
            node__free(s);
            return st;
        }
    }
    s->m = m;
    s->batch = reserve_batch;
    s->next = m->systems;
    m->systems = s;
    memset(out, 0, sizeof *out);
    out->width = m->sizes[0];
    out->nparams = m->nparams;
    out->ctx = s;
    out->f = flow_f;
    out->div = flow_div;
    out->div_vjp = flow_div_vjp;
    return NODE_OK;
}

node_status node_mlp_flow_release(node_mlp *m, node_flow *flow)
{
    if (!m || !flow || flow->f != flow_f || !node__mlp_sys_unlink(m, flow->ctx))
        return NODE_EINVAL;
    memset(flow, 0, sizeof *flow);
    return NODE_OK;
}
