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

/* dst[0 .. n) = src[0 .. n) in blocks of 8 with the tail masked: rows of a few
   doubles (6 for the ODE-Net's 6 × 6 maps), which a plain loop would turn into a
   call of memcpy each (measured: 7 % of a conv vjp); this compiles to masked
   vector moves where the level has them. */
static inline void copy_short(size_t n, const double *restrict src, double *restrict dst)
{
    for (size_t b = 0; b < n; b += 8) {
        size_t m = n - b;
        for (size_t l = 0; l < 8; l++)
            if (l < m)
                dst[b + l] = src[b + l];
    }
}

/* im2col through a padded plane: for each sample and channel the (H + 2 pad) ×
   (W + 2 pad) plane with its zero border (the time channel: t inside) is built once
   in scratch, and every kernel offset's row is then read from it without a branch.
   col (I × ld): row (c, i, j), column s P + oy ow + ox holds the padded plane at
   (oy stride + i, ox stride + j); columns past nb P are zeroed. */
static void im2col(const node__net_op *op, const double *restrict in, size_t nb, double t,
                   double *restrict col, double *restrict plane)
{
    size_t C = op->c + (size_t)op->time, H = op->h, W = op->w, OH = op->oh, OW = op->ow;
    size_t P = OH * OW, ld = op->ld, S = op->stride, pad = op->pad;
    size_t Hp = H + 2 * pad, Wp = W + 2 * pad, KK = op->kh * op->kw;
    for (size_t q = 0; q < Hp * Wp; q++)
        plane[q] = 0.0;
    for (size_t c = 0; c < C; c++) {
        for (size_t s = 0; s < nb; s++) {
            const double *restrict xc = in + s * op->in_size + c * H * W;
            for (size_t y = 0; y < H; y++) {
                double *restrict pr = plane + (y + pad) * Wp + pad;
                if (c == op->c)
                    for (size_t x = 0; x < W; x++)
                        pr[x] = t;
                else
                    for (size_t x = 0; x < W; x++)
                        pr[x] = xc[y * W + x];
            }
            for (size_t i = 0; i < op->kh; i++)
                for (size_t j = 0; j < op->kw; j++) {
                    double *restrict r = col + (c * KK + i * op->kw + j) * ld + s * P;
                    const double *restrict src = plane + i * Wp + j;
                    for (size_t oy = 0; oy < OH; oy++) {
                        const double *restrict sr = src + oy * S * Wp;
                        double *restrict ro = r + oy * OW;
                        if (S == 1)
                            copy_short(OW, sr, ro);
                        else
                            for (size_t ox = 0; ox < OW; ox++)
                                ro[ox] = sr[ox * S];
                    }
                }
        }
        for (size_t k = 0; k < KK; k++)
            for (size_t p = nb * P; p < ld; p++)
                col[(c * KK + k) * ld + p] = 0.0;
    }
}

/* The adjoint of im2col: each sample's and channel's rows of G are added onto a
   padded plane (zeroed first), whose interior is Δ of that input channel (written);
   the time channel's interior sums to the returned ∂/∂t. */
static double col2im(const node__net_op *op, const double *restrict G, size_t nb,
                     double *restrict dx, double *restrict plane)
{
    size_t C = op->c + (size_t)op->time, H = op->h, W = op->w, OH = op->oh, OW = op->ow;
    size_t P = OH * OW, ld = op->ld, S = op->stride, pad = op->pad;
    size_t Hp = H + 2 * pad, Wp = W + 2 * pad, KK = op->kh * op->kw;
    double gt = 0.0;
    for (size_t c = 0; c < C; c++)
        for (size_t s = 0; s < nb; s++) {
            for (size_t q = 0; q < Hp * Wp; q++)
                plane[q] = 0.0;
            for (size_t i = 0; i < op->kh; i++)
                for (size_t j = 0; j < op->kw; j++) {
                    const double *restrict r = G + (c * KK + i * op->kw + j) * ld + s * P;
                    double *restrict dst = plane + i * Wp + j;
                    for (size_t oy = 0; oy < OH; oy++) {
                        double *restrict dr = dst + oy * S * Wp;
                        const double *restrict ro = r + oy * OW;
                        if (S == 1)
                            for (size_t ox = 0; ox < OW; ox++)
                                dr[ox] += ro[ox];
                        else
                            for (size_t ox = 0; ox < OW; ox++)
                                dr[ox * S] += ro[ox];
                    }
                }
            if (c == op->c) {
                for (size_t y = 0; y < H; y++)
                    for (size_t x = 0; x < W; x++)
                        gt += plane[(y + pad) * Wp + pad + x];
                continue;
            }
            double *restrict dc = dx + s * op->in_size + c * H * W;
            for (size_t y = 0; y < H; y++)
                for (size_t x = 0; x < W; x++)
                    dc[y * W + x] = plane[(y + pad) * Wp + pad + x];
        }
    return gt;
}

/* ---- convolution (and dense) ------------------------------------------------- */

/* The products run without packing their column strips (pack NULL): col is
   already a few hundred KiB, cache-resident, and the copies cost more than they
   saved (measured: forward 5 % faster unpacked). */
static void conv_fwd(const node_net *n, const node__net_op *op, const double *in,
                     double *out, size_t ns, double t, const node__net_scr *sc)
{
    const double *W = n->theta + op->woff, *b = op->bias ? W + op->nw : NULL;
    size_t P = op->oh * op->ow;
    for (size_t s0 = 0; s0 < ns; s0 += op->nb) {
        size_t nb = ns - s0 < op->nb ? ns - s0 : op->nb;
        im2col(op, in + s0 * op->in_size, nb, t, sc->X, sc->plane);
        n->nn->layer_fwd(op->oc, op->fan_in, op->ld, W, b, sc->X, sc->Z, NULL);
        for (size_t s = 0; s < nb; s++)
            for (size_t o = 0; o < op->oc; o++)
                copy_short(P, sc->Z + o * op->ld + s * P, out + (s0 + s) * op->out_size + o * P);
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
                copy_short(P, dout + (s0 + s) * op->out_size + o * P, z + s * P);
            for (size_t p = nb * P; p < op->ld; p++)
                z[p] = 0.0;
        }
        if (gp) {
            im2col(op, in + s0 * op->in_size, nb, t, sc->X, sc->plane);
            n->nn->layer_bwd_w(op->oc, op->fan_in, nb * P, op->ld, sc->Z, sc->X,
                               gp + op->woff, op->bias ? gp + op->woff + op->nw : sc->gb,
                               sc->bw, 1);
        }
        if (din) {
            n->nn->layer_bwd_x(op->oc, op->fan_in, op->ld, W, sc->Z, sc->G, NULL);
            gt += col2im(op, sc->G, nb, din + s0 * op->in_size, sc->plane);
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

/* stat: (mean, 1/σ) of each sample's groups, written here for gn_bwd. */
static void gn_fwd(const node_net *n, const node__net_op *op, const double *in,
                   double *out, double *stat, size_t ns)
{
    const double *gam = n->theta + op->woff, *bet = gam + op->c;
    size_t cpg = op->c / op->groups, HW = op->h * op->w, m = cpg * HW;
    for (size_t s = 0; s < ns; s++)
        for (size_t g = 0; g < op->groups; g++) {
            const double *x = in + s * op->in_size + g * m;
            double *y = out + s * op->in_size + g * m;
            double mu, rs;
            gn_stats(x, m, &mu, &rs);
            stat[2 * (s * op->groups + g)] = mu;
            stat[2 * (s * op->groups + g) + 1] = rs;
            for (size_t cc = 0; cc < cpg; cc++) {
                size_t ch = g * cpg + cc;
                double a = gam[ch] * rs, b = bet[ch] - mu * a;
                for (size_t p = 0; p < HW; p++)
                    y[cc * HW + p] = x[cc * HW + p] * a + b;
            }
        }
}

/* stat: what gn_fwd wrote for these samples (the same in). */
static void gn_bwd(const node_net *n, const node__net_op *op, const double *in,
                   const double *stat, const double *dout, double *din, double *gp,
                   size_t ns)
{
    const double *gam = n->theta + op->woff;
    size_t cpg = op->c / op->groups, HW = op->h * op->w, m = cpg * HW;
    for (size_t s = 0; s < ns; s++)
        for (size_t g = 0; g < op->groups; g++) {
            const double *x = in + s * op->in_size + g * m;
            const double *dy = dout + s * op->in_size + g * m;
            double mu = stat[2 * (s * op->groups + g)], rs = stat[2 * (s * op->groups + g) + 1];
            double s1 = 0.0, s2 = 0.0;
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
    for (size_t k = 0; k < n->nops && !job->reuse; k++) {
        const node__net_op *op = &n->ops[k];
        const double *in = buf_of(n, job, (sidx)k - 1) + s0 * op->in_size;
        double *out = job->out[k] ? job->out[k] + s0 * op->out_size : NULL;
        switch (op->kind) {
        case NODE__OP_CONV:
            conv_fwd(n, op, in, out, ns, t, &sc);
            break;
        case NODE__OP_GN:
            gn_fwd(n, op, in, out, job->stat[k] + 2 * s0 * op->groups, ns);
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
    size_t osz = n->nops ? n->ops[n->nops - 1].out_size : n->c * n->h * n->w;
    if (job->y)   /* this thread's rows of the output */
        memcpy(job->y + s0 * osz, buf_of(n, job, (sidx)n->nops - 1) + s0 * osz,
               ns * osz * sizeof *job->y);
    if (!job->a)
        return;

    /* Reverse: Δ of the current op's output in cur, of its input into nxt.  Each
       thread owns the rows from s0 · maxsize on, whatever the layer's size. */
    size_t M = n->maxsize;
    /* cur starts as the caller's a (only read: the last op is never a residual
       start, the one op that adds into cur); then it alternates between d0 and d1. */
    double *d0 = job->d0 + s0 * M, *d1 = job->d1 + s0 * M, *stash = job->stash + s0 * M;
    double *cur = (double *)(uintptr_t)(job->a + s0 * osz), *nxt = d0;
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
            gn_bwd(n, op, in, job->stat[k] + 2 * s0 * op->groups, cur, din, job->gp, ns);
            break;
        case NODE__OP_ACT: {
            size_t total = ns * op->in_size;
            if (!din)
                break;
            if (node__act_registry[op->act_ix].unit_slope) {
                memcpy(din, cur, total * sizeof *din);
                break;
            }
            if (node__act_registry[op->act_ix].value == NODE_ACT_RELU) {
                /* relu' = [z > 0] (act_relu's convention at 0), without the kernel */
                for (size_t i = 0; i < total; i++)
                    din[i] = in[i] > 0.0 ? cur[i] : 0.0;
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
        cur = nxt;
        nxt = nxt == d0 ? d1 : d0;
    }
    if (job->vjp_x) {
        size_t isz = n->c * n->h * n->w;
        memcpy(job->vjp_x + s0 * isz, cur, ns * isz * sizeof *cur);
    }
}

const node__net_kernels NODE__KERNEL(node__net_kernels) = { pass };
