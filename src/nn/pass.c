/* pass.c — the MLP's fused forward / reverse pass over a batch, compiled once per
 * instruction-set level (internal.h) together with the layer products (kernels.c)
 * and the activations (act.c): y = MLP(t, x) and aᵀ∂y/∂(x, θ, t) by reverse-mode
 * differentiation (Chen et al., NeurIPS 2018, eq. 4 needs aᵀ∂f/∂z and aᵀ∂f/∂θ).
 * The model is only read; all scratch is the caller's workspace.
 */
#include "nn/nn_internal.h"

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
   y = MLP(t, x) if y (tv non-NULL: row b's time is tv[b]); then with a: vjp_x = aᵀ∂y/∂x if vjp_x, vjp_p = Σ aᵀ∂y/∂θ if
   vjp_p (add: +=), *vjp_t += Σ aᵀ∂y/∂t if vjp_t.  The workspace holds at least
   ws_need(ld). */
static void run(const node_mlp *m, double *ws, size_t B, size_t ld, double t, const double *tv,
                const double *x,
                const double *a, double *y, double *vjp_x, double *vjp_p, double *vjp_t,
                int add)
{
    const size_t L = m->nlayers, n0 = m->sizes[0], nL = m->sizes[L];
    const bool grad = a && (vjp_x || vjp_p || vjp_t);
    double *X0 = ws;
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
            X0[n0 * ld + b] = b < B ? (tv ? tv[b] : t) : 0.0;

    const double *in = X0;
    double *Y = buf;
    for (size_t k = 0; k < L; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        const double *W = m->theta + m->woff[k];
        double *D = Y + O * ld;
        size_t ix = m->act_ix[k];
        bool want_d = grad && !node__act_registry[ix].unit_slope;
        /* Narrow inputs: the product is mostly its stores, so each block of rows
           goes through the activation while it is in L1. */
        size_t rb = ld != 1 && I < 64 ? node__row_block(O, ld) : O;
        for (size_t o0 = 0; o0 < O; o0 += rb) {
            size_t n = O - o0 < rb ? O - o0 : rb;
            node__layer_fwd(n, I, ld, W + o0 * I, W + O * I + o0, in, Y + o0 * ld, scratch);
            node__act_kernels[ix](n * ld, Y + o0 * ld, want_d ? D + o0 * ld : NULL);
        }
        in = Y;
        Y = D + O * ld;
    }
    const double *out = in;                        /* Y_{L-1}, nL × ld */
    if (y)
        node__transpose(nL, B, out, ld, y, nL);
    if (!grad)
        return;

    /* Reverse pass: Δ_k = (Wᵀ_{k+1} Δ_{k+1}) ⊙ act'_k, starting from a; the
       product and act'_k in one kernel (node__layer_bwd_xd). */
    double *Dl = d1, *G = d2;
    node__transpose(B, nL, a, nL, Dl, ld);
    zero_pad(nL, B, ld, Dl);
    double *Yk = buf;                              /* Y_k: Y_{L-1} first */
    for (size_t j = 0; j + 1 < L; j++)
        Yk += 2 * m->sizes[j + 1] * ld;
    if (!node__act_registry[m->act_ix[L - 1]].unit_slope) {
        double *restrict dl = Dl;   /* Δ and D are distinct workspace rows */
        const double *restrict D = Yk + nL * ld;
        for (size_t j = 0; j < nL * ld; j++)
            dl[j] *= D[j];
    }
    for (size_t k = L; k-- > 0;) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k];
        const double *W = m->theta + m->woff[k];
        double *Yprev = k == 0 ? NULL : Yk - 2 * I * ld;   /* Y_{k-1} */
        const double *Xk = k == 0 ? X0 : Yprev;
        if (vjp_p) {
            double *gW = vjp_p + m->woff[k];
            node__layer_bwd_w(O, I, B, ld, Dl, Xk, gW, gW + O * I, scratch, add);
        }
        if (k == 0 && !vjp_x && !vjp_t)
            break;
        const double *Dprev = k > 0 && !node__act_registry[m->act_ix[k - 1]].unit_slope
                              ? Yprev + I * ld : NULL;
        node__layer_bwd_xd(O, I, ld, W, Dl, Dprev, G, scratch);
        Yk = Yprev;
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
   when add (or after the first); vjp_t adds.  The workspace holds ws_need(node__lead_dim(batch)). */
static void run_part(const node_mlp *m, double *ws, size_t batch, double t, const double *tv,
                     const double *x,
                     const double *a,
                     double *y, double *vjp_x, double *vjp_p, double *vjp_t, int add)
{
    size_t ld = node__lead_dim(batch), n0 = m->sizes[0], nL = m->sizes[m->nlayers];
    if (ld != 1) {
        run(m, ws, batch, ld, t, tv, x, a, y, vjp_x, vjp_p, vjp_t, add);
        return;
    }
    for (size_t b = 0; b < batch; b++)
        run(m, ws, 1, 1, t, tv ? tv + b : NULL, x + b * n0, a ? a + b * nL : NULL, y ? y + b * nL : NULL,
            vjp_x ? vjp_x + b * n0 : NULL, vjp_p, vjp_t, add || b > 0);
}

/* Large batches go through the whole network in chunks of at most NODE__CHUNK
   samples (equal sizes but the last), so that every layer's activations stay in
   the core's cache between the forward and the reverse pass; vjp_p sums over the
   chunks, vjp_t accumulates from 0.  The workspace is large enough (checked by
   the callers). */
static void run_batch(const node_mlp *m, double *ws, size_t batch, double t,
                      const double *tv, const double *x, const double *a, double *y, double *vjp_x,
                      double *vjp_p, double *vjp_t)
{
    size_t n0 = m->sizes[0], nL = m->sizes[m->nlayers];
    if (vjp_t)
        *vjp_t = 0.0;
    size_t nch = (batch + NODE__CHUNK - 1) / NODE__CHUNK;
    size_t per = (batch + nch - 1) / nch;
    for (size_t b0 = 0; b0 < batch; b0 += per) {
        size_t nb = batch - b0 < per ? batch - b0 : per;
        run_part(m, ws, nb, t, tv ? tv + b0 : NULL, x + b0 * n0, a ? a + b0 * nL : NULL, y ? y + b0 * nL : NULL,
                 vjp_x ? vjp_x + b0 * n0 : NULL, vjp_p, vjp_t, b0 > 0);
    }
}

/* ---- the table of this level's kernels -------------------------------------------- */

static void pass(const node_mlp *m, double *ws, size_t batch, double t, const double *x,
                 const double *a, double *y, double *vjp_x, double *vjp_p, double *vjp_t)
{
    run_batch(m, ws, batch, t, NULL, x, a, y, vjp_x, vjp_p, vjp_t);
}

/* Each row its own time (the ensemble adapter); no vjp_t. */
static void pass_rows(const node_mlp *m, double *ws, size_t batch, const double *tv,
                      const double *x, const double *a, double *y, double *vjp_x,
                      double *vjp_p)
{
    run_batch(m, ws, batch, 0.0, tv, x, a, y, vjp_x, vjp_p, NULL);
}

const node__nn_kernels NODE__KERNEL(node__nn_kernels) = {
    pass,
    node__act_kernels,
    node__act2_kernels,
    node__div_pass,
    node__tanh_array,
    node__sigmoid_array,
    node__expm1_array,
    node__layer_fwd,
    node__layer_bwd_x,
    node__layer_bwd_w,
    pass_rows,
    node__layer_bwd_xd,
};
