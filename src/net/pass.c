/* pass.c — the forward and reverse passes of a network over a range of samples
 * (one thread's share of a batch), layer by layer.  Dense layers and convolutions
 * are one code path (a dense layer is a 1 × 1 convolution of a C·H·W × 1 × 1
 * sample): a chunk of samples is lowered by im2col onto the register-tiled layer
 * products of src/nn/kernels.c, its columns the chunk's output positions, so that
 *   forward   Z (O × cols) = W (O × I) · col (I × cols) + b
 *   input     G = Wᵀ Δ, then col2im adds G back onto the input positions
 *   weights   gW += Δ colᵀ, gb += Δ 1
 * with I = (C + time) kh kw; the chunk (a few samples, ~NODE__NET_COLS columns)
 * keeps col in cache.  Every column is computed by the same sequence of operations
 * whatever the chunk holds, so outputs and input gradients do not depend on how the
 * batch is split among threads.  A kernel file: compiled once per instruction-set
 * level (internal.h).
 */
#include "net/net_internal.h"

#include <string.h>

typedef ptrdiff_t sidx;

/* The buffer holding op k's output (or x for k < 0). */
static const double *buf_of(const node_net *n, const node__net_job *job, sidx k)
{
    while (k >= 0 && (n->ops[k].kind == NODE__OP_FLAT || n->ops[k].kind == NODE__OP_RES_BEGIN))
        k--;
    return k < 0 ? job->x : job->out[k];
}

/* Output positions [lo, hi) of one kernel offset q (0 .. k-1) along an axis of
   in entries: those where o · stride + q − pad lands inside. */
static void valid_range(size_t q, size_t pad, size_t stride, size_t in, size_t on,
                        size_t *lo, size_t *hi)
{
    sidx off = (sidx)q - (sidx)pad;   /* input index of output 0 */
    sidx l = off >= 0 ? 0 : (-off + (sidx)stride - 1) / (sidx)stride;
    sidx last = (sidx)in - 1 - off;   /* o · stride <= last */
    sidx h = last < 0 ? 0 : last / (sidx)stride + 1;
    if (h > (sidx)on)
        h = (sidx)on;
    if (l > h)
        l = h;
    *lo = (size_t)l;
    *hi = (size_t)h;
}

/* col (I × ld) from nb samples at in: row (c, i, j), column s P + oy ow + ox holds
   input c at (oy stride + i − pad, ox stride + j − pad), t for c = C (the time
   channel), 0 outside the input; columns past nb P are zeroed. */
static void im2col(const node__net_op *op, const double *restrict in, size_t nb, double t,
                   double *restrict col)
{
    size_t C = op->c + (size_t)op->time, H = op->h, W = op->w, OH = op->oh, OW = op->ow;
    size_t P = OH * OW, ld = op->ld, S = op->stride;
    for (size_t c = 0; c < C; c++)
        for (size_t i = 0; i < op->kh; i++) {
            size_t ylo, yhi;
            valid_range(i, op->pad, S, H, OH, &ylo, &yhi);
            for (size_t j = 0; j < op->kw; j++) {
                size_t xlo, xhi;
                valid_range(j, op->pad, S, W, OW, &xlo, &xhi);
                double *restrict row = col + ((c * op->kh + i) * op->kw + j) * ld;
                for (size_t s = 0; s < nb; s++) {
                    double *restrict r = row + s * P;
                    const double *restrict xc = in + s * op->in_size + c * H * W;
                    for (size_t oy = 0; oy < OH; oy++) {
                        double *restrict ro = r + oy * OW;
                        if (oy < ylo || oy >= yhi) {
                            for (size_t ox = 0; ox < OW; ox++)
                                ro[ox] = 0.0;
                            continue;
                        }
                        for (size_t ox = 0; ox < xlo; ox++)
                            ro[ox] = 0.0;
                        if (c == op->c)
                            for (size_t ox = xlo; ox < xhi; ox++)
                                ro[ox] = t;
                        else {
                            const double *restrict xr = xc + (oy * S + i - op->pad) * W
                                                      + j - op->pad;
                            if (S == 1)
                                for (size_t ox = xlo; ox < xhi; ox++)
                                    ro[ox] = xr[ox];
                            else
                                for (size_t ox = xlo; ox < xhi; ox++)
                                    ro[ox] = xr[ox * S];
                        }
                        for (size_t ox = xhi; ox < OW; ox++)
                            ro[ox] = 0.0;
                    }
                }
                for (size_t p = nb * P; p < ld; p++)
                    row[p] = 0.0;
            }
        }
}

/* The adjoint of im2col: dx (nb samples, zeroed here) gets the rows of G added at
   the positions im2col read them from; the time channel's sum comes back. */
static double col2im(const node__net_op *op, const double *restrict G, size_t nb,
                     double *restrict dx)
{
    size_t C = op->c + (size_t)op->time, H = op->h, W = op->w, OH = op->oh, OW = op->ow;
    size_t P = OH * OW, ld = op->ld, S = op->stride;
    double gt = 0.0;
    for (size_t s = 0; s < nb; s++)
        memset(dx + s * op->in_size, 0, op->in_size * sizeof *dx);
    for (size_t c = 0; c < C; c++)
        for (size_t i = 0; i < op->kh; i++) {
            size_t ylo, yhi;
            valid_range(i, op->pad, S, H, OH, &ylo, &yhi);
            for (size_t j = 0; j < op->kw; j++) {
                size_t xlo, xhi;
                valid_range(j, op->pad, S, W, OW, &xlo, &xhi);
                const double *restrict row = G + ((c * op->kh + i) * op->kw + j) * ld;
                for (size_t s = 0; s < nb; s++) {
                    const double *restrict r = row + s * P;
                    for (size_t oy = ylo; oy < yhi; oy++) {
                        const double *restrict ro = r + oy * OW;
                        if (c == op->c) {
                            for (size_t ox = xlo; ox < xhi; ox++)
                                gt += ro[ox];
                            continue;
                        }
                        double *restrict xr = dx + s * op->in_size + c * H * W
                                            + (oy * S + i - op->pad) * W + j - op->pad;
                        if (S == 1)
                            for (size_t ox = xlo; ox < xhi; ox++)
                                xr[ox] += ro[ox];
                        else
                            for (size_t ox = xlo; ox < xhi; ox++)
                                xr[ox * S] += ro[ox];
                    }
                }
            }
        }
    return gt;
}

/* ---- convolution (and dense) ------------------------------------------------- */

static void conv_fwd(const node_net *n, const node__net_op *op, const double *in,
                     double *out, size_t ns, double t, const node__net_scr *sc)
{
    const double *W = n->theta + op->woff, *b = op->bias ? W + op->nw : NULL;
    size_t P = op->oh * op->ow;
    for (size_t s0 = 0; s0 < ns; s0 += op->nb) {
        size_t nb = ns - s0 < op->nb ? ns - s0 : op->nb;
        im2col(op, in + s0 * op->in_size, nb, t, sc->X);
        n->nn->layer_fwd(op->oc, op->fan_in, op->ld, W, b, sc->X, sc->Z, sc->pack);
        for (size_t s = 0; s < nb; s++)
            for (size_t o = 0; o < op->oc; o++)
                memcpy(out + (s0 + s) * op->out_size + o * P, sc->Z + o * op->ld + s * P,
                       P * sizeof *out);
    }
}

/* From Δ of the outputs (dout): the parameter gradient added into gp (if not NULL)
   and, if din, Δ of the inputs (written); returns the time channel's Σ. */
static double conv_bwd(const node_net *n, const node__net_op *op, const double *in,
                       const double *dout, double *din, double *gp, size_t ns, double t,
                       const node__net_scr *sc)
{
    const double *W = n->theta + op->woff;
    size_t P = op->oh * op->ow;
    double gt = 0.0;
    for (size_t s0 = 0; s0 < ns; s0 += op->nb) {
        size_t nb = ns - s0 < op->nb ? ns - s0 : op->nb;
        for (size_t o = 0; o < op->oc; o++) {
            double *z = sc->Z + o * op->ld;
            for (size_t s = 0; s < nb; s++)
                memcpy(z + s * P, dout + (s0 + s) * op->out_size + o * P, P * sizeof *z);
            for (size_t p = nb * P; p < op->ld; p++)
                z[p] = 0.0;
        }
        if (gp) {
            im2col(op, in + s0 * op->in_size, nb, t, sc->X);
            n->nn->layer_bwd_w(op->oc, op->fan_in, nb * P, op->ld, sc->Z, sc->X,
                               gp + op->woff, op->bias ? gp + op->woff + op->nw : sc->gb,
                               sc->bw, 1);
        }
        if (din) {
            n->nn->layer_bwd_x(op->oc, op->fan_in, op->ld, W, sc->Z, sc->G, sc->pack);
            gt += col2im(op, sc->G, nb, din + s0 * op->in_size);
        }
    }
    return gt;
}

/* ---- group normalisation (per sample: groups of c/groups channels × h w) ---- */

#define GN_EPS 1e-5

static void gn_stats(const double *x, size_t m, double *mean, double *rstd)
{
    double s = 0.0;
    for (size_t i = 0; i < m; i++)
        s += x[i];
    double mu = s / (double)m, v = 0.0;
    for (size_t i = 0; i < m; i++)
        v += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *rstd = 1.0 / sqrt(v / (double)m + GN_EPS);
}

static void gn_fwd(const node_net *n, const node__net_op *op, const double *in,
                   double *out, size_t ns)
{
    const double *gam = n->theta + op->woff, *bet = gam + op->c;
    size_t cpg = op->c / op->groups, HW = op->h * op->w, m = cpg * HW;
    for (size_t s = 0; s < ns; s++)
        for (size_t g = 0; g < op->groups; g++) {
            const double *x = in + s * op->in_size + g * m;
            double *y = out + s * op->in_size + g * m;
            double mu, rs;
            gn_stats(x, m, &mu, &rs);
            for (size_t cc = 0; cc < cpg; cc++) {
                size_t ch = g * cpg + cc;
                double a = gam[ch] * rs, b = bet[ch] - mu * a;
                for (size_t p = 0; p < HW; p++)
                    y[cc * HW + p] = x[cc * HW + p] * a + b;
            }
        }
}

static void gn_bwd(const node_net *n, const node__net_op *op, const double *in,
                   const double *dout, double *din, double *gp, size_t ns)
{
    const double *gam = n->theta + op->woff;
    size_t cpg = op->c / op->groups, HW = op->h * op->w, m = cpg * HW;
    for (size_t s = 0; s < ns; s++)
        for (size_t g = 0; g < op->groups; g++) {
            const double *x = in + s * op->in_size + g * m;
            const double *dy = dout + s * op->in_size + g * m;
            double mu, rs, s1 = 0.0, s2 = 0.0;
            gn_stats(x, m, &mu, &rs);
            for (size_t cc = 0; cc < cpg; cc++) {
                size_t ch = g * cpg + cc;
                double dg = 0.0, db = 0.0;
                for (size_t p = 0; p < HW; p++) {
                    double xh = (x[cc * HW + p] - mu) * rs, d = dy[cc * HW + p];
                    dg += d * xh;
                    db += d;
                }
                if (gp) {
                    gp[op->woff + ch] += dg;
                    gp[op->woff + op->c + ch] += db;
                }
                s1 += gam[ch] * db;   /* Σ dx̂ */
                s2 += gam[ch] * dg;   /* Σ dx̂ x̂ */
            }
            if (!din)
                continue;
            double m1 = s1 / (double)m, m2 = s2 / (double)m;
            double *dx = din + s * op->in_size + g * m;
            for (size_t cc = 0; cc < cpg; cc++) {
                double gc = gam[g * cpg + cc];
                for (size_t p = 0; p < HW; p++) {
                    double xh = (x[cc * HW + p] - mu) * rs;
                    dx[cc * HW + p] = rs * (gc * dy[cc * HW + p] - m1 - xh * m2);
                }
            }
        }
}

/* ---- the passes ---------------------------------------------------------------- */

static void pass(const node_net *n, node__net_job *job)
{
    node__net_scr sc;
    node__net_carve(n, job->scr, &sc);
    size_t s0 = job->s0, ns = job->s1 - job->s0;
    double t = job->t;
    job->gt = 0.0;
    if (ns == 0)
        return;
    for (size_t k = 0; k < n->nops; k++) {
        const node__net_op *op = &n->ops[k];
        const double *in = buf_of(n, job, (sidx)k - 1) + s0 * op->in_size;
        double *out = job->out[k] ? job->out[k] + s0 * op->out_size : NULL;
        switch (op->kind) {
        case NODE__OP_CONV:
            conv_fwd(n, op, in, out, ns, t, &sc);
            break;
        case NODE__OP_GN:
            gn_fwd(n, op, in, out, ns);
            break;
        case NODE__OP_ACT:
            memcpy(out, in, ns * op->in_size * sizeof *out);
            n->nn->act[op->act_ix](ns * op->in_size, out, NULL);
            break;
        case NODE__OP_POOL:
            for (size_t s = 0; s < ns; s++)
                for (size_t c = 0; c < op->c; c++) {
                    const double *x = in + s * op->in_size + c * op->h * op->w;
                    double sum = 0.0;
                    for (size_t p = 0; p < op->h * op->w; p++)
                        sum += x[p];
                    out[s * op->c + c] = sum / (double)(op->h * op->w);
                }
            break;
        case NODE__OP_RES_END: {
            const double *skip = buf_of(n, job, (sidx)op->res - 1) + s0 * op->in_size;
            for (size_t i = 0; i < ns * op->in_size; i++)
                out[i] = in[i] + skip[i];
            break;
        }
        default:   /* flatten, residual start: no arithmetic */
            break;
        }
    }
    if (!job->a)
        return;

    /* Reverse: Δ of the current op's output in cur, of its input into nxt.  Each
       thread owns the rows from s0 · maxsize on, whatever the layer's size. */
    size_t M = n->maxsize;
    size_t osz = n->nops ? n->ops[n->nops - 1].out_size : n->c * n->h * n->w;
    double *cur = job->d0 + s0 * M, *nxt = job->d1 + s0 * M, *stash = job->stash + s0 * M;
    memcpy(cur, job->a + s0 * osz, ns * osz * sizeof *cur);
    for (size_t k = n->nops; k-- > 0;) {
        const node__net_op *op = &n->ops[k];
        const double *in = buf_of(n, job, (sidx)k - 1) + s0 * op->in_size;
        /* Δ of the first op's input only for vjp_x, or for its time channel's Σ */
        double *din = k > 0 || job->vjp_x || op->time ? nxt : NULL;
        switch (op->kind) {
        case NODE__OP_CONV:
            job->gt += conv_bwd(n, op, in, cur, din, job->gp, ns, t, &sc);
            break;
        case NODE__OP_GN:
            gn_bwd(n, op, in, cur, din, job->gp, ns);
            break;
        case NODE__OP_ACT: {
            size_t total = ns * op->in_size;
            if (!din)
                break;
            if (node__act_registry[op->act_ix].unit_slope) {
                memcpy(din, cur, total * sizeof *din);
                break;
            }
            double *z = sc.act, *d = sc.act + NODE__NET_ACTCH;
            for (size_t i0 = 0; i0 < total; i0 += NODE__NET_ACTCH) {
                size_t m = total - i0 < NODE__NET_ACTCH ? total - i0 : NODE__NET_ACTCH;
                memcpy(z, in + i0, m * sizeof *z);
                n->nn->act[op->act_ix](m, z, d);
                for (size_t i = 0; i < m; i++)
                    din[i0 + i] = cur[i0 + i] * d[i];
            }
            break;
        }
        case NODE__OP_POOL:
            if (din)
                for (size_t s = 0; s < ns; s++)
                    for (size_t c = 0; c < op->c; c++) {
                        double v = cur[s * op->c + c] / (double)(op->h * op->w);
                        double *dx = din + s * op->in_size + c * op->h * op->w;
                        for (size_t p = 0; p < op->h * op->w; p++)
                            dx[p] = v;
                    }
            break;
        case NODE__OP_RES_END:
            memcpy(stash, cur, ns * op->in_size * sizeof *stash);
            continue;   /* Δ passes on unchanged */
        case NODE__OP_RES_BEGIN:
            for (size_t i = 0; i < ns * op->in_size; i++)
                cur[i] += stash[i];
            continue;
        default:   /* flatten: the same numbers */
            continue;
        }
        double *sw = cur;
        cur = nxt;
        nxt = sw;
    }
    if (job->vjp_x) {
        size_t isz = n->c * n->h * n->w;
        memcpy(job->vjp_x + s0 * isz, cur, ns * isz * sizeof *cur);
    }
}

const node__net_kernels NODE__KERNEL(node__net_kernels) = { pass };
