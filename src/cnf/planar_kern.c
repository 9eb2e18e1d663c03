/* planar_kern.c — the batched kernel of the planar CNF (planar_internal.h): f, the
 * divergence and their vector-Jacobian product in one pass over the rows, 8 rows at a
 * time as the columns of a block so that every loop runs over contiguous columns
 * (one vector), with the vectorizable tanh of vmath.h.  Per unit m and block:
 *     s = w_mᵀz + b_m,  h = tanh s,  h' = 1 − h²,  h'' = −2 h h',
 *     f += u_m h / M,   div += c_m h' / M     (c_m = u_mᵀw_m, or (εᵀu_m)(w_mᵀε)),
 *     g = ∂L/∂s = (aᵀu_m h' + b c_m h'') / M,  vjp_z += g w_m,
 * and the parameter sums (gW += g z + b h' ∂c_m/∂w_m / M, gu += h a / M + ...,
 * gB += g) kept as lane sums per unit until the last block.  D = 2 (the 2-D toys)
 * gets a copy of its own with the dimension loops unrolled.
 * A kernel file: compiled once per instruction-set level (internal.h).
 */
#include "cnf/planar_internal.h"
#include "nn/vmath.h"

#define CB NODE__PLANAR_CB

#if defined(__GNUC__)
#  define PLANAR_INLINE static inline __attribute__((always_inline))
#else
#  define PLANAR_INLINE static inline
#endif

/* lanes[l] += Σ_j x[8j + l] y[8j + l] over the CB columns (y NULL: 1). */
PLANAR_INLINE void lanes_add(double *lanes, const double *x, const double *y)
{
    double acc[8];
    for (size_t l = 0; l < 8; l++)
        acc[l] = lanes[l];
    if (y)
        for (size_t c0 = 0; c0 < CB; c0 += 8)
            for (size_t l = 0; l < 8; l++)
                acc[l] = NODE__FMA(x[c0 + l], y[c0 + l], acc[l]);
    else
        for (size_t c0 = 0; c0 < CB; c0 += 8)
            for (size_t l = 0; l < 8; l++)
                acc[l] += x[c0 + l];
    for (size_t l = 0; l < 8; l++)
        lanes[l] = acc[l];
}

PLANAR_INLINE void pass_dim(size_t D, const node__planar_units *k, size_t batch,
                            const double *restrict z, const double *restrict eps,
                            const double *restrict a, const double *restrict b,
                            double *restrict dzdt, double *restrict div,
                            double *restrict vjp_z, double *restrict gW,
                            double *restrict gu, double *restrict gB)
{
    const size_t M = k->M;
    const double *restrict W = k->W, *restrict Bm = k->B, *restrict U = k->u,
                 *restrict cu = k->cu;
    const double inv = 1.0 / (double)M;
    double *restrict zt = k->scratch;          /* D × CB: the block's z, transposed */
    double *restrict et = zt + D * CB;         /* D × CB: ε */
    double *restrict at = et + D * CB;         /* D × CB: a / M */
    double *restrict ft = at + D * CB;         /* D × CB: f */
    double *restrict vt = ft + D * CB;         /* D × CB: vjp_z */
    double *restrict rw = vt + D * CB;         /* 9 × CB: s, h, h', c, εᵀu, wᵀε, g,
                                                  b/M, div */
    double *restrict s = rw, *restrict h = s + CB, *restrict h1 = h + CB,
           *restrict cm = h1 + CB, *restrict eu = cm + CB, *restrict we = eu + CB,
           *restrict g = we + CB, *restrict bs = g + CB, *restrict dv = bs + CB;
    double *restrict lB = dv + CB;             /* M × 8: lanes of gB */
    double *restrict lS = lB + M * 8;          /* M × 8: lanes of Σ b h'/M */
    double *restrict lW = lS + M * 8;          /* M × D × 8: lanes of gW */
    double *restrict lU = lW + M * D * 8;      /* M × D × 8: lanes of gu */
    const bool grads = a && gW;
    if (grads)
        for (size_t j = 0; j < 2 * (D + 1) * M * 8; j++)
            lB[j] = 0.0;

    for (size_t r0 = 0; r0 < batch; r0 += CB) {
        const size_t n = batch - r0 < CB ? batch - r0 : CB;
        /* the padding columns of the last block are 0 (a and b there too, so that
           they add nothing to the parameter sums) */
        for (size_t i = 0; i < D; i++)
            for (size_t c = 0; c < CB; c++) {
                zt[i * CB + c] = c < n ? z[(r0 + c) * D + i] : 0.0;
                et[i * CB + c] = eps && c < n ? eps[(r0 + c) * D + i] : 0.0;
                at[i * CB + c] = a && c < n ? a[(r0 + c) * D + i] * inv : 0.0;
                ft[i * CB + c] = 0.0;
                vt[i * CB + c] = 0.0;
            }
        for (size_t c = 0; c < CB; c++) {
            bs[c] = b && c < n ? b[r0 + c] * inv : 0.0;
            dv[c] = 0.0;
        }

        for (size_t m = 0; m < M; m++) {
            const double *restrict wm = W + m * D, *restrict um = U + m * D;
            const double bm = Bm[m], cum = cu[m];
            for (size_t c = 0; c < CB; c++)
                s[c] = bm;
            for (size_t i = 0; i < D; i++) {
                const double wi = wm[i];
                for (size_t c = 0; c < CB; c++)
                    s[c] = NODE__FMA(wi, zt[i * CB + c], s[c]);
            }
            for (size_t c = 0; c < CB; c++) {
                double d1, hc = tanh_d_core(s[c], &d1);   /* tanh and tanh' */
                h[c] = hc;
                h1[c] = d1;
            }
            if (eps) {
                for (size_t c = 0; c < CB; c++)
                    eu[c] = we[c] = 0.0;
                for (size_t i = 0; i < D; i++) {
                    const double ui = um[i], wi = wm[i];
                    for (size_t c = 0; c < CB; c++) {
                        eu[c] = NODE__FMA(ui, et[i * CB + c], eu[c]);
                        we[c] = NODE__FMA(wi, et[i * CB + c], we[c]);
                    }
                }
                for (size_t c = 0; c < CB; c++)
                    cm[c] = eu[c] * we[c];
            } else {
                for (size_t c = 0; c < CB; c++)
                    cm[c] = cum;
            }
            for (size_t c = 0; c < CB; c++)
                dv[c] = NODE__FMA(h1[c], cm[c], dv[c]);
            if (dzdt)
                for (size_t i = 0; i < D; i++) {
                    const double ui = um[i] * inv;
                    for (size_t c = 0; c < CB; c++)
                        ft[i * CB + c] = NODE__FMA(ui, h[c], ft[i * CB + c]);
                }
            if (!a)
                continue;
            for (size_t c = 0; c < CB; c++)
                g[c] = -2.0 * bs[c] * cm[c] * h[c];
            for (size_t i = 0; i < D; i++) {
                const double ui = um[i];
                for (size_t c = 0; c < CB; c++)
                    g[c] = NODE__FMA(ui, at[i * CB + c], g[c]);      /* + aᵀu_m / M */
            }
            for (size_t c = 0; c < CB; c++)
                g[c] *= h1[c];
            for (size_t i = 0; i < D; i++) {
                const double wi = wm[i];
                for (size_t c = 0; c < CB; c++)
                    vt[i * CB + c] = NODE__FMA(wi, g[c], vt[i * CB + c]);
            }
            if (!grads)
                continue;
            /* lane sums over the columns, 8 lanes per unit */
            lanes_add(lB + m * 8, g, NULL);
            for (size_t i = 0; i < D; i++) {
                lanes_add(lW + (m * D + i) * 8, g, zt + i * CB);
                lanes_add(lU + (m * D + i) * 8, h, at + i * CB);
            }
            if (eps) {
                for (size_t c = 0; c < CB; c++) {
                    double bh = bs[c] * h1[c];
                    eu[c] *= bh;      /* now the weight of ε in gW */
                    we[c] *= bh;      /* and in gu */
                }
                for (size_t i = 0; i < D; i++) {
                    lanes_add(lW + (m * D + i) * 8, eu, et + i * CB);
                    lanes_add(lU + (m * D + i) * 8, we, et + i * CB);
                }
            } else {
                lanes_add(lS + m * 8, bs, h1);
            }
        }

        for (size_t c = 0; c < n; c++) {
            const size_t r = r0 + c;
            if (div)
                div[r] = dv[c] * inv;
            for (size_t i = 0; i < D; i++) {
                if (dzdt)
                    dzdt[r * D + i] = ft[i * CB + c];
                if (a)
                    vjp_z[r * D + i] = vt[i * CB + c];
            }
        }
    }
    if (!grads)
        return;
    /* The lane sums; with the exact trace, c_m = u_mᵀw_m adds (Σ b h'/M) u_m to gW
       and (Σ b h'/M) w_m to gu. */
    for (size_t m = 0; m < M; m++) {
        double sb = 0.0, ss = 0.0;
        for (size_t l = 0; l < 8; l++) {
            sb += lB[m * 8 + l];
            ss += lS[m * 8 + l];
        }
        gB[m] = sb;
        for (size_t i = 0; i < D; i++) {
            double sw = 0.0, su = 0.0;
            for (size_t l = 0; l < 8; l++) {
                sw += lW[(m * D + i) * 8 + l];
                su += lU[(m * D + i) * 8 + l];
            }
            gW[m * D + i] = eps ? sw : NODE__FMA(ss, U[m * D + i], sw);
            gu[m * D + i] = eps ? su : NODE__FMA(ss, W[m * D + i], su);
        }
    }
}

static void pass(const node__planar_units *k, size_t batch, const double *z,
                 const double *eps, const double *a, const double *b, double *dzdt,
                 double *div, double *vjp_z, double *gW, double *gu, double *gB)
{
    if (k->D == 2)
        pass_dim(2, k, batch, z, eps, a, b, dzdt, div, vjp_z, gW, gu, gB);
    else
        pass_dim(k->D, k, batch, z, eps, a, b, dzdt, div, vjp_z, gW, gu, gB);
}

const node__planar_kernels NODE__KERNEL(node__planar_kernels) = { pass };
