/* kernels.c — the batched products of one dense layer on feature-major
 * activations (width × padded batch): Z = W X + b, G = Wᵀ Δ, gW += Δ Xᵀ, gb += Δ 1.
 * Register-blocked so that the compiler keeps the accumulators in vector registers
 * and vectorizes over the batch (Goto & van de Geijn, ACM TOMS 34(3), 2008, the
 * micro-kernel idea without packing); a batch of 1 uses dot products and axpys.
 */
#include "nn/nn_internal.h"

/* ---- panel kernel -------------------------------------------------------------
   Out[r][l] = init_r + Σ_{k<K} A[r*rs + k*ks] · X[k*ld + l]   (r < MR, l < NB).
   Forward: A = W rows (rs = I, ks = 1); backward: A = Wᵀ (rs = 1, ks = I).
   Out, A and X are distinct workspace/parameter arrays: nothing aliases. */
#define PANEL(MR, NB)                                                                  \
    static void panel_##MR##x##NB(size_t K, size_t ld, const double *restrict A,      \
                                  size_t rs, size_t ks, const double *restrict init,  \
                                  const double *restrict X, double *restrict Out)     \
    {                                                                                  \
        double acc[MR][NB];                                                            \
        for (int r = 0; r < MR; r++)                                                   \
            for (int l = 0; l < NB; l++)                                               \
                acc[r][l] = init ? init[r] : 0.0;                                      \
        for (size_t k = 0; k < K; k++) {                                               \
            const double *restrict x = X + k * ld;                                     \
            for (int r = 0; r < MR; r++) {                                             \
                double w = A[r * rs + k * ks];                                         \
                for (int l = 0; l < NB; l++)                                           \
                    acc[r][l] = NODE__FMA(w, x[l], acc[r][l]);                         \
            }                                                                          \
        }                                                                              \
        for (int r = 0; r < MR; r++)                                                   \
            for (int l = 0; l < NB; l++)                                               \
                Out[r * ld + l] = acc[r][l];                                           \
    }

PANEL(4, 24)
PANEL(4, 16)
PANEL(4, 8)
PANEL(1, 24)
PANEL(1, 16)
PANEL(1, 8)

/* Out (R × ld) = A-rows · X over K, for ld a multiple of 8. */
static void panel_all(size_t R, size_t K, size_t ld, const double *A, size_t rs,
                      size_t ks, const double *init, const double *X, double *Out)
{
    for (size_t b = 0; b < ld;) {
        size_t nb = ld - b >= 24 ? 24 : ld - b;
        size_t r = 0;
        for (; r + 4 <= R; r += 4) {
            const double *a = A + r * rs, *in = init ? init + r : NULL;
            double *o = Out + r * ld + b;
            if (nb == 24)
                panel_4x24(K, ld, a, rs, ks, in, X + b, o);
            else if (nb == 16)
                panel_4x16(K, ld, a, rs, ks, in, X + b, o);
            else
                panel_4x8(K, ld, a, rs, ks, in, X + b, o);
        }
        for (; r < R; r++) {
            const double *a = A + r * rs, *in = init ? init + r : NULL;
            double *o = Out + r * ld + b;
            if (nb == 24)
                panel_1x24(K, ld, a, rs, ks, in, X + b, o);
            else if (nb == 16)
                panel_1x16(K, ld, a, rs, ks, in, X + b, o);
            else
                panel_1x8(K, ld, a, rs, ks, in, X + b, o);
        }
        b += nb;
    }
}

/* ---- batch of one: dot products and axpys ------------------------------------ */

/* Sum of the 16 lanes of a copied accumulator (copying first lets the compiler
   keep the accumulators themselves in vector registers). */
static double lanes16(const double *t)
{
    double u[8];
    for (int l = 0; l < 8; l++)
        u[l] = t[l] + t[l + 8];
    return ((u[0] + u[4]) + (u[1] + u[5])) + ((u[2] + u[6]) + (u[3] + u[7]));
}

/* Four dot products of rows w0..w3 (length n, stride ldw) with x, 16 lanes each:
   eight independent vector accumulators hide the FMA latency. */
static void dot4(size_t n, const double *restrict w, size_t ldw, const double *restrict x,
                 double *restrict out)
{
    double acc[4][16];
    for (int r = 0; r < 4; r++)
        for (int l = 0; l < 16; l++)
            acc[r][l] = 0.0;
    size_t nc = n / 16;
    for (size_t c = 0; c < nc; c++) {
        const double *restrict xc = x + 16 * c;
        for (int r = 0; r < 4; r++) {
            const double *restrict wr = w + r * ldw + 16 * c;
            for (int l = 0; l < 16; l++)
                acc[r][l] = NODE__FMA(wr[l], xc[l], acc[r][l]);
        }
    }
    double t[4][16];
    for (int r = 0; r < 4; r++)
        for (int l = 0; l < 16; l++)
            t[r][l] = acc[r][l];
    for (int r = 0; r < 4; r++) {
        double s = 0.0;
        for (size_t i = 16 * nc; i < n; i++)
            s = NODE__FMA(w[r * ldw + i], x[i], s);
        out[r] = lanes16(t[r]) + s;
    }
}

static double dot1(size_t n, const double *restrict w, const double *restrict x)
{
    double acc[16];
    for (int l = 0; l < 16; l++)
        acc[l] = 0.0;
    size_t nc = n / 16;
    for (size_t c = 0; c < nc; c++)
        for (int l = 0; l < 16; l++)
            acc[l] = NODE__FMA(w[16 * c + l], x[16 * c + l], acc[l]);
    double t[16];
    for (int l = 0; l < 16; l++)
        t[l] = acc[l];
    double s = 0.0;
    for (size_t i = 16 * nc; i < n; i++)
        s = NODE__FMA(w[i], x[i], s);
    return lanes16(t) + s;
}

/* ---- the layer products ---------------------------------------------------------- */

void node__layer_fwd(size_t O, size_t I, size_t ld, const double *W, const double *bias,
                     const double *X, double *Z)
{
    if (ld != 1) {
        panel_all(O, I, ld, W, I, 1, bias, X, Z);
        return;
    }
    size_t o = 0;
    for (; o + 4 <= O; o += 4) {
        dot4(I, W + o * I, I, X, Z + o);
        for (int r = 0; r < 4; r++)
            Z[o + r] += bias[o + r];
    }
    for (; o < O; o++)
        Z[o] = dot1(I, W + o * I, X) + bias[o];
}

/* G = Wᵀ Δ.  W, Δ and G are distinct arrays. */
void node__layer_bwd_x(size_t O, size_t I, size_t ld, const double *restrict W,
                       const double *restrict Dl, double *restrict G)
{
    if (ld != 1) {
        panel_all(I, O, ld, W, 1, I, NULL, Dl, G);
        return;
    }
    for (size_t i = 0; i < I; i++)
        G[i] = 0.0;
    size_t o = 0;
    for (; o + 4 <= O; o += 4) {
        const double *w0 = W + o * I, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;
        double d0 = Dl[o], d1 = Dl[o + 1], d2 = Dl[o + 2], d3 = Dl[o + 3];
        for (size_t i = 0; i < I; i++)
            G[i] = NODE__FMA(d3, w3[i], NODE__FMA(d2, w2[i],
                   NODE__FMA(d1, w1[i], NODE__FMA(d0, w0[i], G[i]))));
    }
    for (; o < O; o++) {
        const double *w = W + o * I;
        double d = Dl[o];
        for (size_t i = 0; i < I; i++)
            G[i] = NODE__FMA(d, w[i], G[i]);
    }
}

/* Lane-parallel dot products of MR rows of Δ with NR rows of X over B columns:
   gW[r][c] += Σ_b Δ[r][b] X[c][b].  gW is the parameter gradient, distinct from
   the workspace rows Δ and X. */
#define GRADW(MR, NR)                                                                  \
    static void gradw_##MR##x##NR(size_t B, size_t ld, size_t I,                       \
                                  const double *restrict Dl, const double *restrict X, \
                                  double *restrict gW)                                 \
    {                                                                                  \
        double acc[MR][NR][8];                                                         \
        for (int r = 0; r < MR; r++)                                                   \
            for (int c = 0; c < NR; c++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    acc[r][c][l] = 0.0;                                                \
        size_t B8 = B & ~(size_t)7;                                                    \
        for (size_t b = 0; b < B8; b += 8)                                             \
            for (int r = 0; r < MR; r++)                                               \
                for (int c = 0; c < NR; c++)                                           \
                    for (int l = 0; l < 8; l++)                                        \
                        acc[r][c][l] = NODE__FMA(Dl[r * ld + b + l], X[c * ld + b + l], \
                                                 acc[r][c][l]);                        \
        double t[MR][NR][8];                                                           \
        for (int r = 0; r < MR; r++)                                                   \
            for (int c = 0; c < NR; c++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    t[r][c][l] = acc[r][c][l];                                         \
        for (int r = 0; r < MR; r++)                                                   \
            for (int c = 0; c < NR; c++) {                                             \
                const double *a = t[r][c];                                             \
                double s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); \
                for (size_t b = B8; b < B; b++)                                        \
                    s = NODE__FMA(Dl[r * ld + b], X[c * ld + b], s);                   \
                gW[r * I + c] += s;                                                    \
            }                                                                          \
    }

GRADW(4, 4)
GRADW(4, 1)
GRADW(1, 4)
GRADW(1, 1)

void node__layer_bwd_w(size_t O, size_t I, size_t B, size_t ld, const double *restrict Dl,
                       const double *restrict X, double *restrict gW, double *restrict gb)
{
    if (B == 1) {   /* rank-one update, vectorized over the inputs */
        for (size_t o = 0; o < O; o++) {
            double d = Dl[o * ld];
            double *g = gW + o * I;
            for (size_t i = 0; i < I; i++)
                g[i] = NODE__FMA(d, X[i * ld], g[i]);
            gb[o] += d;
        }
        return;
    }
    size_t o = 0;
    for (; o + 4 <= O; o += 4) {
        size_t i = 0;
        for (; i + 4 <= I; i += 4)
            gradw_4x4(B, ld, I, Dl + o * ld, X + i * ld, gW + o * I + i);
        for (; i < I; i++)
            gradw_4x1(B, ld, I, Dl + o * ld, X + i * ld, gW + o * I + i);
    }
    for (; o < O; o++) {
        size_t i = 0;
        for (; i + 4 <= I; i += 4)
            gradw_1x4(B, ld, I, Dl + o * ld, X + i * ld, gW + o * I + i);
        for (; i < I; i++)
            gradw_1x1(B, ld, I, Dl + o * ld, X + i * ld, gW + o * I + i);
    }
    for (o = 0; o < O; o++) {
        const double *d = Dl + o * ld;
        double acc[8] = { 0 };
        size_t B8 = B & ~(size_t)7;
        for (size_t b = 0; b < B8; b += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += d[b + l];
        double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (size_t b = B8; b < B; b++)
            s += d[b];
        gb[o] += s;
    }
}
