/* div.c — the MLP's divergence ("trace") products over a batch and their
 * vector-Jacobian product, compiled once per instruction-set level (internal.h) with
 * the layer products (kernels.c) and the activations (act.c).
 *
 * Forward, tangent mode (one tangent per probe): z_k = W_k h_{k-1} + b_k,
 * h_k = σ(z_k), ż_k = W_k ḣ_{k-1}, ḣ_k = σ'(z_k) ⊙ ż_k, from ḣ_0 = ε (Hutchinson)
 * or ḣ_0 = e_d for d < D (exact trace); the time input's tangent is 0.  Then
 * div = Σ ε ⊙ ḣ_L or Σ_d (ḣ_L^(d))_d.  The tangents are extra columns of the same
 * layer products (nn_internal.h: node__div_ld).
 *
 * Reverse, for L = aᵀ h_L + b · div (h̄_L = a, \bar{ḣ}_L = b ε or b e_d):
 *   z̄_k = σ'(z_k) ⊙ h̄_k + σ''(z_k) ⊙ Σ_tangents ż_k ⊙ \bar{ḣ}_k,
 *   \bar{ż}_k = σ'(z_k) ⊙ \bar{ḣ}_k,
 *   W̄_k += z̄_k h_{k-1}ᵀ + Σ_tangents \bar{ż}_k ḣ_{k-1}ᵀ,  b̄_k += z̄_k,
 *   h̄_{k-1} = W_kᵀ z̄_k,  \bar{ḣ}_{k-1} = W_kᵀ \bar{ż}_k.
 * The model is only read; all scratch is the caller's workspace.
 */
#include "nn/nn_internal.h"

#include <string.h>

/* The workspace of one chunk, carved in this order (node__div_need counts it). */
typedef struct div_ws {
    size_t ldp, ldt;
    double *X0, *Xd0;    /* inputs: fan_in[0] × ldp, fan_in[0] × ldt */
    double *lay;         /* per layer: Y, D, S (O × ldp each), Yd, Zd (O × ldt each) */
    double *P1, *P2;     /* maxw × ldp: primal cotangents */
    double *Q1, *Q2;     /* maxw × ldt: tangent cotangents */
    double *zero;        /* maxw zeros: the tangents' bias */
    double *gbd;         /* maxw: the bias gradient the tangents' product writes */
    double *scratch;     /* the layer products' scratch */
} div_ws;

static div_ws carve(const node_mlp *m, double *ws, size_t nb, size_t T)
{
    div_ws w;
    size_t f0 = m->fan_in[0], mw = m->maxw;
    w.ldp = node__div_ld(nb);
    w.ldt = node__div_ld(T * nb);
    w.X0 = ws;
    w.Xd0 = w.X0 + f0 * w.ldp;
    w.lay = w.Xd0 + f0 * w.ldt;
    double *p = w.lay;
    for (size_t k = 0; k < m->nlayers; k++)
        p += node__div_layer_rows(m, k, w.ldp, w.ldt);
    w.P1 = p;
    w.P2 = w.P1 + mw * w.ldp;
    w.Q1 = w.P2 + mw * w.ldp;
    w.Q2 = w.Q1 + mw * w.ldt;
    w.zero = w.Q2 + mw * w.ldt;
    w.gbd = w.zero + mw;
    w.scratch = w.gbd + mw;
    return w;
}

/* Layer k's arrays in the workspace. */
typedef struct div_layer {
    double *Y, *D, *S, *Yd, *Zd;
} div_layer;

static div_layer layer_at(const node_mlp *m, const div_ws *w, size_t k)
{
    double *p = w->lay;
    for (size_t j = 0; j < k; j++)
        p += node__div_layer_rows(m, j, w->ldp, w->ldt);
    size_t O = m->sizes[k + 1];
    div_layer l;
    l.Y = p;
    l.D = l.Y + O * w->ldp;
    l.S = l.D + O * w->ldp;
    l.Yd = l.S + O * w->ldp;
    l.Zd = l.Yd + O * w->ldt;
    return l;
}

/* One chunk of nb samples (rows of x, eps, a, b, y, div, vjp_x), T tangents.
   vjp_p: add to it when add; *vjp_t adds. */
static void run(const node_mlp *m, double *ws, size_t nb, size_t T, double t,
                const double *x, const double *eps, const double *a, const double *b,
                double *y, double *div, double *vjp_x, double *vjp_p, double *vjp_t, int add)
{
    const size_t L = m->nlayers, n0 = m->sizes[0], f0 = m->fan_in[0], TB = T * nb;
    const bool grad = (a || b) && (vjp_x || vjp_p || vjp_t);
    div_ws w = carve(m, ws, nb, T);
    const size_t ldp = w.ldp, ldt = w.ldt;

    /* Inputs: x transposed (padding and the time row as in pass.c); tangents. */
    memset(w.X0, 0, f0 * ldp * sizeof(double));
    node__transpose(nb, n0, x, n0, w.X0, ldp);
    if (m->time_input)
        for (size_t c = 0; c < nb; c++)
            w.X0[n0 * ldp + c] = t;
    memset(w.Xd0, 0, f0 * ldt * sizeof(double));
    if (eps)
        node__transpose(nb, n0, eps, n0, w.Xd0, ldt);
    else
        for (size_t d = 0; d < n0; d++)
            for (size_t c = 0; c < nb; c++)
                w.Xd0[d * ldt + d * nb + c] = 1.0;
    for (size_t i = 0; i < m->maxw; i++)
        w.zero[i] = 0.0;

    const double *in = w.X0, *ind = w.Xd0;
    for (size_t k = 0; k < L; k++) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k], ix = m->act_ix[k];
        bool unit = node__act_registry[ix].unit_slope;
        const double *W = m->theta + m->woff[k];
        div_layer l = layer_at(m, &w, k);
        node__layer_fwd(O, I, ldp, W, W + O * I, in, l.Y, w.scratch);
        if (grad && !unit)
            memcpy(l.S, l.Y, O * ldp * sizeof(double));
        node__act_kernels[ix](O * ldp, l.Y, l.D);   /* D = 1 for a unit slope */
        if (grad && !unit)
            node__act2_kernels[ix](O * ldp, l.S, l.Y, l.D);
        node__layer_fwd(O, I, ldt, W, w.zero, ind, l.Zd, w.scratch);
        for (size_t r = 0; r < O; r++) {
            const double *restrict dr = l.D + r * ldp, *restrict zd = l.Zd + r * ldt;
            double *restrict yd = l.Yd + r * ldt;
            for (size_t j = 0; j < T; j++)
                for (size_t c = 0; c < nb; c++)
                    yd[j * nb + c] = dr[c] * zd[j * nb + c];
            for (size_t c = TB; c < ldt; c++)
                yd[c] = 0.0;
        }
        in = l.Y;
        ind = l.Yd;
    }
    if (y)
        node__transpose(n0, nb, in, ldp, y, n0);
    if (div)
        for (size_t c = 0; c < nb; c++) {
            double s = 0.0;
            if (eps)
                for (size_t i = 0; i < n0; i++)
                    s = NODE__FMA(eps[c * n0 + i], ind[i * ldt + c], s);
            else
                for (size_t d = 0; d < n0; d++)
                    s += ind[d * ldt + d * nb + c];
            div[c] = s;
        }
    if (!grad)
        return;

    /* Reverse: P = h̄_k (then z̄_k), Q = \bar{ḣ}_k (then \bar{ż}_k). */
    double *P = w.P1, *P2 = w.P2, *Q = w.Q1, *Q2 = w.Q2;
    memset(P, 0, n0 * ldp * sizeof(double));
    if (a)
        node__transpose(nb, n0, a, n0, P, ldp);
    memset(Q, 0, n0 * ldt * sizeof(double));
    if (b)
        for (size_t c = 0; c < nb; c++) {
            if (eps)
                for (size_t i = 0; i < n0; i++)
                    Q[i * ldt + c] = b[c] * eps[c * n0 + i];
            else
                for (size_t d = 0; d < n0; d++)
                    Q[d * ldt + d * nb + c] = b[c];
        }
    for (size_t k = L; k-- > 0;) {
        size_t O = m->sizes[k + 1], I = m->fan_in[k], ix = m->act_ix[k];
        const double *W = m->theta + m->woff[k];
        div_layer l = layer_at(m, &w, k);
        const double *Xk = k == 0 ? w.X0 : layer_at(m, &w, k - 1).Y;
        const double *Xdk = k == 0 ? w.Xd0 : layer_at(m, &w, k - 1).Yd;
        if (!node__act_registry[ix].unit_slope)
            for (size_t r = 0; r < O; r++) {
                const double *restrict dr = l.D + r * ldp, *restrict sr = l.S + r * ldp;
                const double *restrict zd = l.Zd + r * ldt;
                double *restrict pr = P + r * ldp, *restrict qr = Q + r * ldt;
                for (size_t c = 0; c < nb; c++) {
                    double s = 0.0;
                    if (b)
                        for (size_t j = 0; j < T; j++)
                            s = NODE__FMA(zd[j * nb + c], qr[j * nb + c], s);
                    pr[c] = NODE__FMA(sr[c], s, dr[c] * pr[c]);
                }
                if (b)
                    for (size_t j = 0; j < T; j++)
                        for (size_t c = 0; c < nb; c++)
                            qr[j * nb + c] *= dr[c];
            }
        if (vjp_p) {
            double *gW = vjp_p + m->woff[k];
            node__layer_bwd_w(O, I, nb, ldp, P, Xk, gW, gW + O * I, w.scratch, add);
            if (b) {   /* the tangents add to W̄_k only: their b̄ goes to gbd */
                for (size_t i = 0; i < O; i++)
                    w.gbd[i] = 0.0;
                node__layer_bwd_w(O, I, TB, ldt, Q, Xdk, gW, w.gbd, w.scratch, 1);
            }
        }
        if (k == 0) {
            if (vjp_x || vjp_t) {
                node__layer_bwd_x(O, I, ldp, W, P, P2, w.scratch);
                P = P2;
            }
            break;
        }
        node__layer_bwd_x(O, I, ldp, W, P, P2, w.scratch);
        double *tmp = P;
        P = P2;
        P2 = tmp;
        if (b) {
            node__layer_bwd_x(O, I, ldt, W, Q, Q2, w.scratch);
            tmp = Q;
            Q = Q2;
            Q2 = tmp;
        }
    }
    if (vjp_x)
        node__transpose(n0, nb, P, ldp, vjp_x, n0);
    if (vjp_t && m->time_input) {
        double s = 0.0;
        for (size_t c = 0; c < nb; c++)
            s += P[n0 * ldp + c];
        *vjp_t += s;
    }
}

void node__div_pass(const node_mlp *m, double *ws, size_t batch, double t, const double *x,
                    const double *eps, const double *a, const double *b, double *y,
                    double *div, double *vjp_x, double *vjp_p, double *vjp_t)
{
    size_t n0 = m->sizes[0], T = eps ? 1 : n0;
    if (vjp_t)
        *vjp_t = 0.0;
    if (vjp_p && !a && !b)
        memset(vjp_p, 0, m->nparams * sizeof(double));
    if (vjp_x && !a && !b)
        memset(vjp_x, 0, batch * n0 * sizeof(double));
    size_t cap = node__div_chunk(T);
    size_t nch = (batch + cap - 1) / cap;
    size_t per = (batch + nch - 1) / nch;
    for (size_t b0 = 0; b0 < batch; b0 += per) {
        size_t nb = batch - b0 < per ? batch - b0 : per;
        size_t o = b0 * n0;
        run(m, ws, nb, T, t, x + o, eps ? eps + o : NULL, a ? a + o : NULL,
            b ? b + b0 : NULL, y ? y + o : NULL, div ? div + b0 : NULL,
            vjp_x ? vjp_x + o : NULL, vjp_p, vjp_t, b0 > 0);
    }
}
