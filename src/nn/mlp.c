/* mlp.c — a multilayer perceptron y = act_L(W_L ... act_1(W_1 [x; t] + b_1) ... + b_L)
 * as ODE dynamics, with its exact vector-Jacobian products by reverse-mode
 * differentiation in one fused pass (Chen et al., NeurIPS 2018, eq. 4: the adjoint
 * needs aᵀ∂f/∂z and aᵀ∂f/∂θ of the dynamics).  Kernels: kernels.c, activations: act.c.
 */
#include "nn/nn_internal.h"

#include <string.h>


/* ---- creation ------------------------------------------------------------------ */

static bool mul_ok(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return false;
    *out = a * b;
    return true;
}

static bool add_ok(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return false;
    *out = a + b;
    return true;
}

node_status node_mlp_create(node_mlp **out, size_t nlayers, const size_t *sizes,
                            const node_activation *acts, int time_input)
{
    if (!out || !sizes || !acts || nlayers == 0)
        return NODE_EINVAL;
    /* Bound the depth so that the index arrays below cannot overflow. */
    if (nlayers > SIZE_MAX / (4 * sizeof(size_t)) - 2)
        return NODE_EINVAL;
    size_t nparams = 0, maxw = 0;
    for (size_t k = 0; k <= nlayers; k++) {
        if (sizes[k] == 0)
            return NODE_EINVAL;
        if (k < nlayers && (unsigned)acts[k] > (unsigned)NODE_ACT_SILU)
            return NODE_EINVAL;
    }
    for (size_t k = 0; k < nlayers; k++) {
        size_t in = sizes[k], w;
        if (k == 0 && time_input && !add_ok(in, 1, &in))
            return NODE_ENOMEM;
        if (in > maxw)
            maxw = in;
        if (sizes[k + 1] > maxw)
            maxw = sizes[k + 1];
        if (!add_ok(in, 1, &w) || !mul_ok(w, sizes[k + 1], &w) || !add_ok(nparams, w, &nparams))
            return NODE_ENOMEM;
    }
    if (nparams > SIZE_MAX / sizeof(double))
        return NODE_ENOMEM;

    node_mlp *m = node__calloc(1, sizeof *m);
    if (!m)
        return NODE_ENOMEM;
    /* One block for the index arrays: sizes, fan_in, woff (size_t) then acts. */
    size_t nidx = (nlayers + 1) + 2 * nlayers;
    m->sizes = node__malloc(nidx * sizeof(size_t) + nlayers * sizeof(node_activation));
    m->theta = node__calloc(nparams, sizeof(double));
    if (!m->sizes || !m->theta) {
        node__free(m->sizes);
        node__free(m->theta);
        node__free(m);
        return NODE_ENOMEM;
    }
    m->fan_in = m->sizes + nlayers + 1;
    m->woff = m->fan_in + nlayers;
    m->acts = (node_activation *)(void *)(m->woff + nlayers);
    m->nlayers = nlayers;
    m->time_input = time_input ? 1 : 0;
    m->nparams = nparams;
    m->maxw = maxw;
    size_t off = 0;
    for (size_t k = 0; k <= nlayers; k++)
        m->sizes[k] = sizes[k];
    for (size_t k = 0; k < nlayers; k++) {
        m->acts[k] = acts[k];
        m->fan_in[k] = sizes[k] + (k == 0 ? (size_t)m->time_input : 0);
        m->woff[k] = off;
        off += (m->fan_in[k] + 1) * sizes[k + 1];
    }
    *out = m;
    return NODE_OK;
}

void node_mlp_free(node_mlp *m)
{
    if (!m)
        return;
    node__mlp_sys *s = m->systems;
    while (s) {
        node__mlp_sys *next = s->next;
        node__free(s);
        s = next;
    }
    node__free(m->ws);
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

/* SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): the same stream on every platform. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

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
            double u = (double)(splitmix64(&s) >> 11) * 0x1p-53;   /* top 53 bits */
            p[i] = (2.0 * u - 1.0) * bound;
        }
    }
}

/* ---- workspace ----------------------------------------------------------------- */

/* Samples per pass through the network: a chunk's activations stay in cache. */
#ifndef NODE__CHUNK
#  define NODE__CHUNK 256
#endif

/* Padded batch: samples of batches below 4 go one at a time (ld 1, dot products);
   larger batches are padded to a multiple of 8 so every kernel runs full vectors. */
static size_t lead_dim(size_t batch)
{
    if (batch < 4)
        return 1;
    return node__padw(batch);
}

/* Doubles needed for a padded batch ld: input (with the time row), every layer's
   output and activation derivative, two backward buffers, and the products'
   scratch ((ld + maxw) rows of node__padw(maxw), then a packing buffer; or the
   lane sums of a small weight gradient, if larger). */
static bool ws_need(const node_mlp *m, size_t ld, size_t *need)
{
    size_t rows = m->fan_in[0] + 2 * m->maxw, main, scratch, pw;
    for (size_t k = 0; k < m->nlayers; k++)
        if (!add_ok(rows, 2 * m->sizes[k + 1], &rows))
            return false;
    if (m->maxw > SIZE_MAX - 80)
        return false;
    pw = node__padw(m->maxw);
    if (!mul_ok(rows, ld, &main) || !add_ok(ld, m->maxw, &scratch)
        || !mul_ok(scratch, pw, &scratch) || !add_ok(scratch, NODE__PACK, &scratch))
        return false;
    /* Small weight gradients keep lane sums; counted for every padded batch from
       the smallest (8) on, so that the need grows with the batch and a
       reservation serves every smaller batch too. */
    for (size_t k = 0; k < m->nlayers; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        if (ld > 1 && !node__bwdw_transposed(O, I, 8) && 8 * O * (I + 1) > scratch)
            scratch = 8 * O * (I + 1);   /* below 16k products: no overflow */
    }
    return add_ok(main, scratch, need);
}

node_status node_mlp_reserve(node_mlp *m, size_t batch)
{
    if (!m || batch == 0)
        return NODE_EINVAL;
    if (batch > SIZE_MAX / 16)   /* padding must not wrap around */
        return NODE_ENOMEM;
    /* A batch whose single-pass workspace is not addressable is refused (its
       arrays could not exist either); the workspace itself serves one chunk. */
    size_t need;
    if (!ws_need(m, lead_dim(batch), &need) || need > SIZE_MAX / sizeof(double)
        || !ws_need(m, lead_dim(batch < NODE__CHUNK ? batch : NODE__CHUNK), &need))
        return NODE_ENOMEM;
    return node__grow(&m->ws, &m->ws_cap, need);
}

/* ---- the fused forward / reverse pass ------------------------------------------- */

/* Columns B..ld-1 of rows × ld set to zero (the input and the incoming
   cotangent; the hidden layers' padding holds whatever act(b) gives, and the
   weight gradient selects it away). */
static void zero_pad(size_t rows, size_t B, size_t ld, double *p)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t b = B; b < ld; b++)
            p[r * ld + b] = 0.0;
}

/* For B samples (rows of x, a) with padded batch ld (1 when B == 1):
   y = MLP(t, x) if y; then with a: vjp_x = aᵀ∂y/∂x if vjp_x, vjp_p = Σ aᵀ∂y/∂θ if
   vjp_p (add: +=), *vjp_t += Σ aᵀ∂y/∂t if vjp_t.  The workspace holds at least
   ws_need(ld). */
static void run(node_mlp *m, size_t B, size_t ld, double t, const double *x,
                const double *a, double *y, double *vjp_x, double *vjp_p, double *vjp_t,
                int add)
{
    const size_t L = m->nlayers, n0 = m->sizes[0], nL = m->sizes[L];
    const bool grad = a && (vjp_x || vjp_p || vjp_t);
    double *X0 = m->ws;
    double *buf = X0 + m->fan_in[0] * ld;          /* Y_0, D_0, Y_1, D_1, ... */
    double *d1 = buf;
    for (size_t k = 0; k < L; k++)
        d1 += 2 * m->sizes[k + 1] * ld;
    double *d2 = d1 + m->maxw * ld;
    double *scratch = d2 + m->maxw * ld;

    /* Input, transposed to feature-major; the padding columns are zero. */
    node__transpose(B, n0, x, n0, X0, ld);
    zero_pad(n0, B, ld, X0);
    if (m->time_input)
        for (size_t b = 0; b < ld; b++)
            X0[n0 * ld + b] = b < B ? t : 0.0;

    const double *in = X0;
    double *Y = buf;
    for (size_t k = 0; k < L; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        const double *W = m->theta + m->woff[k];
        double *D = Y + O * ld;
        node__layer_fwd(O, I, ld, W, W + O * I, in, Y, scratch);
        node__act_apply(m->acts[k], O * ld, Y, grad ? D : NULL);
        in = Y;
        Y = D + O * ld;
    }
    const double *out = in;                        /* Y_{L-1}, nL × ld */
    if (y)
        node__transpose(nL, B, out, ld, y, nL);
    if (!grad)
        return;

    /* Reverse pass: Δ_k = (Wᵀ_{k+1} Δ_{k+1}) ⊙ act'_k, starting from a. */
    double *Dl = d1, *G = d2;
    node__transpose(B, nL, a, nL, Dl, ld);
    zero_pad(nL, B, ld, Dl);
    for (size_t k = L; k-- > 0;) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        const double *W = m->theta + m->woff[k];
        double *Yk = buf;
        for (size_t j = 0; j < k; j++)
            Yk += 2 * m->sizes[j + 1] * ld;
        const double *D = Yk + O * ld;
        const double *Xk = k == 0 ? X0 : Yk - 2 * I * ld;   /* Y_{k-1} */
        if (m->acts[k] != NODE_ACT_IDENTITY) {
            double *restrict dl = Dl;   /* Δ and D are distinct workspace rows */
            for (size_t j = 0; j < O * ld; j++)
                dl[j] *= D[j];
        }
        if (vjp_p) {
            double *gW = vjp_p + m->woff[k];
            node__layer_bwd_w(O, I, B, ld, Dl, Xk, gW, gW + O * I, scratch, add);
        }
        if (k == 0 && !vjp_x && !vjp_t)
            break;
        node__layer_bwd_x(O, I, ld, W, Dl, G, scratch);
        double *tmp = Dl;
        Dl = G;
        G = tmp;
    }
    if (!vjp_x && !vjp_t)
        return;
    /* Dl now holds aᵀ ∂y/∂[x; t], feature-major. */
    if (vjp_x)
        node__transpose(n0, B, Dl, ld, vjp_x, n0);
    if (vjp_t && m->time_input) {
        double s = 0.0;
        for (size_t b = 0; b < B; b++)
            s += Dl[n0 * ld + b];
        *vjp_t += s;
    }
}

/* Batches below 4 run sample by sample (ld 1), the later samples adding to vjp_p
   when add (or after the first); vjp_t adds.  The workspace holds ws_need(lead_dim(batch)). */
static void run_part(node_mlp *m, size_t batch, double t, const double *x, const double *a,
                     double *y, double *vjp_x, double *vjp_p, double *vjp_t, int add)
{
    size_t ld = lead_dim(batch), n0 = m->sizes[0], nL = m->sizes[m->nlayers];
    if (ld != 1) {
        run(m, batch, ld, t, x, a, y, vjp_x, vjp_p, vjp_t, add);
        return;
    }
    for (size_t b = 0; b < batch; b++)
        run(m, 1, 1, t, x + b * n0, a ? a + b * nL : NULL, y ? y + b * nL : NULL,
            vjp_x ? vjp_x + b * n0 : NULL, vjp_p, vjp_t, add || b > 0);
}

/* Large batches go through the whole network in chunks of at most NODE__CHUNK
   samples (equal sizes but the last), so that every layer's activations stay in
   the core's cache between the forward and the reverse pass; vjp_p sums over the
   chunks, vjp_t accumulates from 0.  The workspace is large enough (checked by
   the callers). */
static void run_batch(node_mlp *m, size_t batch, double t, const double *x,
                      const double *a, double *y, double *vjp_x, double *vjp_p,
                      double *vjp_t)
{
    size_t n0 = m->sizes[0], nL = m->sizes[m->nlayers];
    if (vjp_t)
        *vjp_t = 0.0;
    size_t nch = (batch + NODE__CHUNK - 1) / NODE__CHUNK;
    size_t per = (batch + nch - 1) / nch;
    for (size_t b0 = 0; b0 < batch; b0 += per) {
        size_t nb = batch - b0 < per ? batch - b0 : per;
        run_part(m, nb, t, x + b0 * n0, a ? a + b0 * nL : NULL, y ? y + b0 * nL : NULL,
                 vjp_x ? vjp_x + b0 * n0 : NULL, vjp_p, vjp_t, b0 > 0);
    }
}

/* Compares needs (a few multiplications per layer), so a workspace reserved for
   a batch serves every batch up to it for ever: it never shrinks. */
static node_status ensure_ws(node_mlp *m, size_t batch)
{
    return node_mlp_reserve(m, batch);
}

node_status node_mlp_forward(node_mlp *m, size_t batch, double t, const double *x,
                             double *y)
{
    if (!m || !x || !y || batch == 0)
        return NODE_EINVAL;
    node_status st = ensure_ws(m, batch);
    if (st != NODE_OK)
        return st;
    run_batch(m, batch, t, x, NULL, y, NULL, NULL, NULL);
    return NODE_OK;
}

node_status node_mlp_vjp(node_mlp *m, size_t batch, double t, const double *x,
                         const double *a, double *y, double *vjp_x, double *vjp_p,
                         double *vjp_t)
{
    if (!m || !x || batch == 0)
        return NODE_EINVAL;
    if (!a && (vjp_x || vjp_p || vjp_t))
        return NODE_EINVAL;
    node_status st = ensure_ws(m, batch);
    if (st != NODE_OK)
        return st;
    run_batch(m, batch, t, x, a, y, vjp_x, vjp_p, vjp_t);
    return NODE_OK;
}

/* ---- the MLP as a node_system ------------------------------------------------- */

static int sys_f(void *ctx, double t, const double *y, double *dydt)
{
    node__mlp_sys *s = ctx;
    run_batch(s->m, s->batch, t, y, NULL, dydt, NULL, NULL, NULL);
    return 0;
}

static int sys_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                   double *vjp_y, double *vjp_p, double *vjp_t)
{
    node__mlp_sys *s = ctx;
    run_batch(s->m, s->batch, t, y, a, dydt, vjp_y, vjp_p, vjp_t);
    return 0;
}

node_status node_mlp_system(node_mlp *m, size_t batch, node_system *out)
{
    if (!m || !out || batch == 0 || m->sizes[0] != m->sizes[m->nlayers])
        return NODE_EINVAL;
    size_t dim;
    if (!mul_ok(batch, m->sizes[0], &dim))
        return NODE_EINVAL;
    node__mlp_sys *s = m->systems;
    while (s && s->batch != batch)
        s = s->next;
    if (!s) {
        s = node__malloc(sizeof *s);
        if (!s)
            return NODE_ENOMEM;
        node_status st = ensure_ws(m, batch);
        if (st != NODE_OK) {
            node__free(s);
            return st;
        }
        s->m = m;
        s->batch = batch;
        s->next = m->systems;
        m->systems = s;
    }
    memset(out, 0, sizeof *out);
    out->dim = dim;
    out->nparams = m->nparams;
    out->ctx = s;
    out->f = sys_f;
    out->vjp = sys_vjp;
    return NODE_OK;
}
