/* kernels.c — the batched products of one dense layer on feature-major
 * activations (width × padded batch): Z = W X + b, G = Wᵀ Δ, gW += Δ Xᵀ, gb += Δ 1.
 * Register-blocked so that the compiler keeps the accumulators in vector registers
 * and vectorizes over the batch (Goto & van de Geijn, ACM TOMS 34(3), 2008, the
 * micro-kernel idea without packing); a batch of 1 uses dot products and axpys.
 */
#include "nn/nn_internal.h"

#include <string.h>


/* ---- register-blocked product --------------------------------------------------
   Out[r][l] = init_r + Σ_{k<K} A[r*rs + k*ks] · X[k*ldx + l]   (r < MR, l < NB),
   or Out[r][l] += ... when acc_in.  Forward: A = W rows (rs = I, ks = 1); input
   gradient: A = Wᵀ (rs = 1, ks = I); weight gradient: A = activations.  The MR × NB
   accumulators stay in vector registers (MR·NB/8 of them); the shapes used here are
   the ones GCC compiles to a clean broadcast-FMA loop (it vectorizes 4×8 and 4×16
   blocks across k with permutes instead).  Out, A and X never overlap. */
#define MICRO(MR, NB)                                                                  \
    static void micro_##MR##x##NB(size_t K, const double *restrict A, size_t rs,       \
                                  size_t ks, const double *restrict X, size_t ldx,     \
                                  double *restrict Out, size_t ldo,                    \
                                  const double *restrict init, int acc_in)             \
    {                                                                                  \
        double acc[MR][NB];                                                            \
        for (int r = 0; r < MR; r++)                                                   \
            for (int l = 0; l < NB; l++)                                               \
                acc[r][l] = acc_in ? Out[r * ldo + l] : init ? init[r] : 0.0;          \
        for (size_t k = 0; k < K; k++) {                                               \
            const double *restrict x = X + k * ldx;                                    \
            for (int r = 0; r < MR; r++) {                                             \
                double w = A[r * rs + k * ks];                                         \
                for (int l = 0; l < NB; l++)                                           \
                    acc[r][l] = NODE__FMA(w, x[l], acc[r][l]);                         \
            }                                                                          \
        }                                                                              \
        for (int r = 0; r < MR; r++)                                                   \
            for (int l = 0; l < NB; l++)                                               \
                Out[r * ldo + l] = acc[r][l];                                          \
    }

MICRO(8, 24)
MICRO(4, 24)
MICRO(2, 24)
MICRO(1, 24)
MICRO(2, 16)
MICRO(1, 16)
MICRO(2, 8)
MICRO(1, 8)

typedef void (*micro_fn)(size_t, const double *, size_t, size_t, const double *, size_t,
                         double *, size_t, const double *, int);

/* Products of depth K <= 4 (a layer of 1-4 inputs forward, or of 1-4 outputs in
   reverse) are mostly their stores: Out[r][l] = (init_r + Σ_k A[r rs + k ks]
   X[k ldx + l]) (· mul[r ldo + l] if mul), row by row, the K rows of X in L1;
   ncols a multiple of 8 (whole vectors: no tail loop per row).  The
   sums run in the order of MICRO's, so the results are the same bits. */
#define SMALLK(K)                                                                      \
    static void smallk_##K(size_t R, size_t ncols, const double *restrict A, size_t rs, \
                           size_t ks, const double *restrict X, size_t ldx,            \
                           double *restrict Out, size_t ldo,                           \
                           const double *restrict init, const double *restrict mul)    \
    {                                                                                  \
        for (size_t r = 0; r < R; r++) {                                               \
            double w[K], b = init ? init[r] : 0.0;                                     \
            for (int k = 0; k < K; k++)                                                \
                w[k] = A[r * rs + k * ks];                                             \
            double *restrict o = Out + r * ldo;                                        \
            if (mul) {                                                                 \
                const double *restrict mr = mul + r * ldo;                             \
                for (size_t l0 = 0; l0 < ncols; l0 += 8)                               \
                    for (size_t l = l0; l < l0 + 8; l++) {                             \
                        double acc = b;                                                \
                        for (int k = 0; k < K; k++)                                    \
                            acc = NODE__FMA(w[k], X[k * ldx + l], acc);                \
                        o[l] = acc * mr[l];                                            \
                    }                                                                  \
            } else {                                                                   \
                for (size_t l0 = 0; l0 < ncols; l0 += 8)                               \
                    for (size_t l = l0; l < l0 + 8; l++) {                             \
                        double acc = b;                                                \
                        for (int k = 0; k < K; k++)                                    \
                            acc = NODE__FMA(w[k], X[k * ldx + l], acc);                \
                        o[l] = acc;                                                    \
                    }                                                                  \
            }                                                                          \
        }                                                                              \
    }

SMALLK(1)
SMALLK(2)
SMALLK(3)
SMALLK(4)

typedef void (*smallk_fn)(size_t, size_t, const double *, size_t, size_t, const double *,
                          size_t, double *, size_t, const double *, const double *);
static const smallk_fn smallk[5] = { NULL, smallk_1, smallk_2, smallk_3, smallk_4 };
#define SMALLK_MAX 4

/* Cache blocking (Goto & van de Geijn): a KC-deep strip of X, 24 columns wide
   (24 KiB), stays in L1 while the row blocks of A pass over it, and an MC × KC
   block of A (256 KiB) stays in L2 while the strips of X pass under it. */
#define KC 128
#define MC 256

/* Out (R × ncols, leading dimension ldo) = A · X (+ init per row), or += when
   acc_in; ncols a multiple of 8.  pack (KC × 24 doubles, or NULL) receives each
   strip of X when enough row blocks reuse it: contiguous rows, few TLB pages. */
static void gemm(size_t R, size_t K, size_t ncols, const double *A, size_t rs, size_t ks,
                 const double *X, size_t ldx, double *Out, size_t ldo, const double *init,
                 int acc_in, double *pack)
{
    if (K <= SMALLK_MAX && !acc_in) {
        smallk[K](R, ncols, A, rs, ks, X, ldx, Out, ldo, init, NULL);
        return;
    }
    if (R < 32 || K < 64)   /* short strips already sit in a few pages */
        pack = NULL;
    for (size_t k0 = 0; k0 < K; k0 += KC) {
        size_t kc = K - k0 < KC ? K - k0 : KC;
        int acc = acc_in || k0 > 0;
        for (size_t r0 = 0; r0 < R; r0 += MC) {
            size_t r1 = R - r0 < MC ? R : r0 + MC;
            for (size_t b = 0; b < ncols;) {
                size_t nb = ncols - b >= 24 ? 24 : ncols - b;
                const double *x = X + k0 * ldx + b;
                size_t lx = ldx;
                if (pack) {
                    for (size_t k = 0; k < kc; k++)
                        for (size_t l = 0; l < nb; l++)
                            pack[k * nb + l] = x[k * ldx + l];
                    x = pack;
                    lx = nb;
                }
                size_t r = r0;
                if (nb == 24) {
                    for (; r + 8 <= r1; r += 8)
                        micro_8x24(kc, A + r * rs + k0 * ks, rs, ks, x, lx,
                                   Out + r * ldo + b, ldo, init ? init + r : NULL, acc);
                    for (; r + 4 <= r1; r += 4)
                        micro_4x24(kc, A + r * rs + k0 * ks, rs, ks, x, lx,
                                   Out + r * ldo + b, ldo, init ? init + r : NULL, acc);
                }
                micro_fn two = nb == 24 ? micro_2x24 : nb == 16 ? micro_2x16 : micro_2x8;
                micro_fn one = nb == 24 ? micro_1x24 : nb == 16 ? micro_1x16 : micro_1x8;
                for (; r + 2 <= r1; r += 2)
                    two(kc, A + r * rs + k0 * ks, rs, ks, x, lx, Out + r * ldo + b, ldo,
                        init ? init + r : NULL, acc);
                for (; r < r1; r++)
                    one(kc, A + r * rs + k0 * ks, rs, ks, x, lx, Out + r * ldo + b, ldo,
                        init ? init + r : NULL, acc);
                b += nb;
            }
        }
    }
}

/* ---- transposition ---------------------------------------------------------- */

/* Rows of C (2-4) packed doubles split into C rows of ld (a batch of narrow states
   in), and back (out): constant strides, one vectorized pass. */
#define NARROW_T(C)                                                                    \
    static void split_##C(size_t n, const double *restrict src, double *restrict dst,  \
                          size_t ldd)                                                  \
    {                                                                                  \
        for (size_t r = 0; r < n; r++)                                                 \
            for (int c = 0; c < C; c++)                                                \
                dst[c * ldd + r] = src[C * r + c];                                     \
    }                                                                                  \
    static void merge_##C(size_t n, const double *restrict src, size_t lds,            \
                          double *restrict dst)                                        \
    {                                                                                  \
        for (size_t r = 0; r < n; r++)                                                 \
            for (int c = 0; c < C; c++)                                                \
                dst[C * r + c] = src[c * lds + r];                                     \
    }

NARROW_T(2)
NARROW_T(3)
NARROW_T(4)

void node__transpose(size_t rows, size_t cols, const double *restrict src, size_t lds,
                     double *restrict dst, size_t ldd)
{
    if (cols >= 2 && cols <= 4 && lds == cols) {
        (cols == 2 ? split_2 : cols == 3 ? split_3 : split_4)(rows, src, dst, ldd);
        return;
    }
    if (rows >= 2 && rows <= 4 && ldd == rows) {
        (rows == 2 ? merge_2 : rows == 3 ? merge_3 : merge_4)(cols, src, lds, dst);
        return;
    }
    for (size_t r0 = 0; r0 < rows; r0 += 32) {   /* 32 × 32 tiles (measured best) */
        size_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
        for (size_t c0 = 0; c0 < cols; c0 += 32) {
            size_t c1 = c0 + 32 < cols ? c0 + 32 : cols;
            for (size_t c = c0; c < c1; c++)
                for (size_t r = r0; r < r1; r++)
                    dst[c * ldd + r] = src[r * lds + c];
        }
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
                     const double *X, double *Z, double *pack)
{
    if (ld != 1) {
        gemm(O, I, ld, W, I, 1, X, ld, Z, ld, bias, 0, pack);
        return;
    }
    size_t o = 0;
    if (I < 16) {   /* short rows: dot4's 16-lane blocks would be all set-up; the
                       same sums (its tail loop, then 0 + s + bias) without them */
        for (; o < O; o++) {
            double s = 0.0;
            for (size_t i = 0; i < I; i++)
                s = NODE__FMA(W[o * I + i], X[i], s);
            Z[o] = (0.0 + s) + bias[o];
        }
        return;
    }
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
                       const double *restrict Dl, double *restrict G, double *pack)
{
    if (ld != 1) {
        gemm(I, O, ld, W, 1, I, Dl, ld, G, ld, NULL, 0, pack);
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

void node__layer_bwd_xd(size_t O, size_t I, size_t ld, const double *restrict W,
                        const double *restrict Dl, const double *restrict D,
                        double *restrict G, double *pack)
{
    /* Small O: blocks of rows, each multiplied by act' while in L1 (the product
       reads all of Δ for every block, which only pays when Δ has few rows). */
    size_t rb = D && ld != 1 && O < 64 ? node__row_block(I, ld) : I;
    for (size_t i0 = 0; i0 < I; i0 += rb) {
        size_t n = I - i0 < rb ? I - i0 : rb;
        double *restrict g = G + i0 * ld;
        if (D && ld != 1 && O <= SMALLK_MAX) {   /* the product of act' in the stores */
            smallk[O](n, ld, W + i0, 1, I, Dl, ld, g, ld, NULL, D + i0 * ld);
            continue;
        }
        if (rb == I)
            node__layer_bwd_x(O, I, ld, W, Dl, G, pack);
        else
            gemm(n, O, ld, W + i0, 1, I, Dl, ld, g, ld, NULL, 0, pack);
        if (D) {
            const double *restrict d = D + i0 * ld;
            for (size_t j = 0; j < n * ld; j++)
                g[j] *= d[j];
        }
    }
}

/* Lane-parallel dot products of MR rows of Δ with NR rows of X over the first
   B columns (the last partial vector masked in registers: whatever the padding
   holds, even NaN, is selected away), left as 8 partial sums each in T (pair (r, c) at T + 8 (r ldt + c)); the
   horizontal sums of all pairs happen together in sum_lanes.  T, Δ and X are
   distinct arrays. */
/* x with its bits ANDed with mk (all ones or zero): +0.0 whatever x holds. */
static inline double masked(double x, uint64_t mk)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    u &= mk;
    memcpy(&x, &u, sizeof x);
    return x;
}

#define GRADW(MR, NR)                                                                  \
    static void gradw_##MR##x##NR(size_t B, size_t ld, size_t ldt,                     \
                                  const double *restrict Dl, const double *restrict X, \
                                  double *restrict T)                                  \
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
        if (B8 < B) {   /* the last partial vector: padding masked off bitwise */      \
            uint64_t mk[8];                                                            \
            double dm[MR][8], xm[NR][8];                                               \
            for (int l = 0; l < 8; l++)                                                \
                mk[l] = B8 + (size_t)l < B ? ~(uint64_t)0 : 0;                         \
            for (int r = 0; r < MR; r++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    dm[r][l] = masked(Dl[r * ld + B8 + l], mk[l]);                     \
            for (int c = 0; c < NR; c++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    xm[c][l] = masked(X[c * ld + B8 + l], mk[l]);                      \
            for (int r = 0; r < MR; r++)                                               \
                for (int c = 0; c < NR; c++)                                           \
                    for (int l = 0; l < 8; l++)                                        \
                        acc[r][c][l] = NODE__FMA(dm[r][l], xm[c][l], acc[r][c][l]);    \
        }                                                                              \
        double t[MR][NR][8];   /* copying first keeps acc itself in registers */      \
        for (int r = 0; r < MR; r++)                                                   \
            for (int c = 0; c < NR; c++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    t[r][c][l] = acc[r][c][l];                                         \
        for (int r = 0; r < MR; r++)                                                   \
            for (int c = 0; c < NR; c++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    T[8 * (r * ldt + c) + l] = t[r][c][l];                             \
    }

GRADW(4, 4)
GRADW(4, 2)
GRADW(4, 1)
GRADW(2, 4)
GRADW(2, 2)
GRADW(2, 1)
GRADW(1, 1)

/* The lane sums of a short batch (ld = 8 NV): each row of Δ, its last vector's
   padding masked, stays in registers while every row of X (its last vector masked
   too) meets it: T[8 (o I + i) + l] and Tb[8 o + l], summed over the vectors in
   order, as the blocks above (the same bits). */
#define NARROWB(NV)                                                                    \
    static void narrowb_##NV(size_t O, size_t I, size_t B, size_t ld,                  \
                             const double *restrict Dl, const double *restrict X,      \
                             double *restrict T, double *restrict Tb)                  \
    {                                                                                  \
        uint64_t mk[8];                                                                \
        for (int l = 0; l < 8; l++)                                                    \
            mk[l] = 8 * (NV - 1) + (size_t)l < B ? ~(uint64_t)0 : 0;                   \
        for (size_t o = 0; o < O; o++) {                                               \
            double d[NV][8];                                                           \
            for (int v = 0; v < NV; v++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    d[v][l] = Dl[o * ld + 8 * v + l];                                  \
            for (int l = 0; l < 8; l++)                                                \
                d[NV - 1][l] = masked(d[NV - 1][l], mk[l]);                            \
            for (int l = 0; l < 8; l++) {                                              \
                double acc = 0.0;                                                      \
                for (int v = 0; v < NV; v++)                                           \
                    acc = NODE__FMA(d[v][l], 1.0, acc);                                \
                Tb[8 * o + l] = acc;                                                   \
            }                                                                          \
            for (size_t i = 0; i < I; i++) {                                           \
                const double *restrict x = X + i * ld;                                 \
                double acc[8];                                                         \
                for (int l = 0; l < 8; l++)                                            \
                    acc[l] = 0.0;                                                      \
                for (int v = 0; v + 1 < NV; v++)                                       \
                    for (int l = 0; l < 8; l++)                                        \
                        acc[l] = NODE__FMA(d[v][l], x[8 * v + l], acc[l]);             \
                for (int l = 0; l < 8; l++)                                            \
                    acc[l] = NODE__FMA(d[NV - 1][l],                                   \
                                       masked(x[8 * (NV - 1) + l], mk[l]), acc[l]);    \
                for (int l = 0; l < 8; l++)                                            \
                    T[8 * (o * I + i) + l] = acc[l];                                   \
            }                                                                          \
        }                                                                              \
    }

NARROWB(1)
NARROWB(2)
NARROWB(3)
NARROWB(4)

typedef void (*narrowb_fn)(size_t, size_t, size_t, size_t, const double *, const double *,
                           double *, double *);
static const narrowb_fn narrowb[5] = { NULL, narrowb_1, narrowb_2, narrowb_3, narrowb_4 };
#define NARROWB_MAX 4

/* T[8 r + l] = Σ_{b < B8, b ≡ l mod 8} Δ[r ld + b] for MR rows (B8 a multiple of 8),
   each lane summed in the order of b.  Written as multiply-adds by 1 (exact: the
   same sums): GCC 12 vectorizes the plain additions across b, in 2-wide pieces. */
#define ROWSUM(MR)                                                                     \
    static void rowsum_##MR(size_t B8, const double *restrict Dl, size_t ld,           \
                            double *restrict T)                                        \
    {                                                                                  \
        double acc[MR][8];                                                             \
        for (int r = 0; r < MR; r++)                                                   \
            for (int l = 0; l < 8; l++)                                                \
                acc[r][l] = 0.0;                                                       \
        for (size_t b = 0; b < B8; b += 8)                                             \
            for (int r = 0; r < MR; r++)                                               \
                for (int l = 0; l < 8; l++)                                            \
                    acc[r][l] = NODE__FMA(Dl[r * ld + b + l], 1.0, acc[r][l]);         \
        for (int r = 0; r < MR; r++)                                                   \
            for (int l = 0; l < 8; l++)                                                \
                T[8 * r + l] = acc[r][l];                                              \
    }

ROWSUM(4)
ROWSUM(1)

/* g[p] (+)= Σ_l T[8p + l]: the compiler turns the stride-8 groups into a
   transposition in registers, eight pairs per pass. */
static void sum_lanes(size_t n, const double *restrict T, double *restrict g, int add)
{
    for (size_t p = 0; p < n; p++) {
        const double *t = T + 8 * p;
        double s = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
        g[p] = add ? g[p] + s : s;
    }
}

/* Large products: Δᵀ (B × P, P = node__padw(O), zero past O) into scratch, then
   gWᵀ (I × P) = X Δᵀ by the register-blocked product (no horizontal sums), added
   transposed into gW; gb from the rows of Δᵀ, vectorized over the outputs. */
static void bwd_w_transposed(size_t O, size_t I, size_t B, size_t ld,
                             const double *restrict Dl, const double *restrict X,
                             double *restrict gW, double *restrict gb,
                             double *restrict scratch, int add)
{
    size_t P = node__padw(O);
    double *restrict Dt = scratch, *restrict gWt = scratch + B * P;
    double *pack = gWt + I * P;
    for (size_t b0 = 0; b0 < B; b0 += 8) {      /* 8 × 8 tiles */
        size_t b1 = b0 + 8 < B ? b0 + 8 : B;
        for (size_t o0 = 0; o0 < O; o0 += 8) {
            size_t o1 = o0 + 8 < O ? o0 + 8 : O;
            for (size_t b = b0; b < b1; b++)
                for (size_t o = o0; o < o1; o++)
                    Dt[b * P + o] = Dl[o * ld + b];
        }
        for (size_t b = b0; b < b1; b++)
            for (size_t o = O; o < P; o++)
                Dt[b * P + o] = 0.0;
    }
    gemm(I, B, P, X, ld, 1, Dt, P, gWt, P, NULL, 0, pack);
    for (size_t o0 = 0; o0 < O; o0 += 8) {
        size_t o1 = o0 + 8 < O ? o0 + 8 : O;
        for (size_t i = 0; i < I; i++)
            for (size_t o = o0; o < o1; o++)
                gW[o * I + i] = add ? gW[o * I + i] + gWt[i * P + o] : gWt[i * P + o];
    }
    if (!add)
        for (size_t o = 0; o < O; o++)
            gb[o] = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t o = 0; o < O; o++)
            gb[o] += Dt[b * P + o];
}

void node__layer_bwd_w(size_t O, size_t I, size_t B, size_t ld, const double *restrict Dl,
                       const double *restrict X, double *restrict gW, double *restrict gb,
                       double *restrict scratch, int add)
{
    if (node__bwdw_transposed(O, I, B)) {
        bwd_w_transposed(O, I, B, ld, Dl, X, gW, gb, scratch, add);
        return;
    }
    if (B == 1) {   /* rank-one update, vectorized over the inputs */
        for (size_t o = 0; o < O; o++) {
            double d = Dl[o * ld];
            double *restrict g = gW + o * I;
            /* Contiguous X in loops of their own: with the stride and the branch
               inside, GCC 12 made 2-wide strided loads of the AVX-512 copy (batch-1
               vjp of a 256-wide net 25 % slower than the -march=native build). */
            if (ld == 1 && add)
                for (size_t i = 0; i < I; i++)
                    g[i] = NODE__FMA(d, X[i], g[i]);
            else if (ld == 1)
                for (size_t i = 0; i < I; i++)
                    g[i] = NODE__FMA(d, X[i], 0.0);
            else
                for (size_t i = 0; i < I; i++)
                    g[i] = NODE__FMA(d, X[i * ld], add ? g[i] : 0.0);
            gb[o] = add ? gb[o] + d : d;
        }
        return;
    }
    /* Small products: lane sums for every (o, i) pair and every o, then all the
       horizontal sums in one vectorized pass.  scratch: 8 O (I + 1) doubles. */
    double *restrict T = scratch, *restrict Tb = scratch + 8 * O * I;
    if (ld <= 8 * NARROWB_MAX) {   /* a few vectors per row: one row of Δ at a time */
        narrowb[ld / 8](O, I, B, ld, Dl, X, T, Tb);
        sum_lanes(O * I, T, gW, add);
        sum_lanes(O, Tb, gb, add);
        return;
    }
    /* Called through a pointer: inlined copies of these blocks lose their
       accumulators to the stack under GCC 12. */
    typedef void (*gradw_fn)(size_t, size_t, size_t, const double *, const double *,
                             double *);
    for (size_t o = 0; o < O;) {
        size_t mr = O - o >= 4 ? 4 : O - o >= 2 ? 2 : 1;
        for (size_t i = 0; i < I;) {
            size_t nr = mr == 1 ? 1 : I - i >= 4 ? 4 : I - i >= 2 ? 2 : 1;
            gradw_fn fn = mr == 4 ? (nr == 4 ? gradw_4x4 : nr == 2 ? gradw_4x2 : gradw_4x1)
                        : mr == 2 ? (nr == 4 ? gradw_2x4 : nr == 2 ? gradw_2x2 : gradw_2x1)
                                  : gradw_1x1;
            fn(B, ld, I, Dl + o * ld, X + i * ld, T + 8 * (o * I + i));
            i += nr;
        }
        o += mr;
    }
    size_t o;
    size_t B8 = B & ~(size_t)7;
    /* Row sums of Δ for gb, four rows at a time: one row alone is a chain of
       dependent additions (its latency, not the adder's rate, set the pace). */
    for (o = 0; o < O;) {   /* through a pointer, as the blocks above */
        size_t mr = O - o >= 4 ? 4 : 1;
        void (*fn)(size_t, const double *, size_t, double *) = mr == 4 ? rowsum_4 : rowsum_1;
        fn(B8, Dl + o * ld, ld, Tb + 8 * o);
        o += mr;
    }
    if (B8 < B)   /* the last partial vector, its padding selected away */
        for (o = 0; o < O; o++) {
            double dm[8];
            for (int l = 0; l < 8; l++) {
                double v = Dl[o * ld + B8 + l];
                dm[l] = B8 + (size_t)l < B ? v : 0.0;
            }
            for (int l = 0; l < 8; l++)
                Tb[8 * o + l] += dm[l];
        }
    sum_lanes(O * I, T, gW, add);
    sum_lanes(O, Tb, gb, add);
}
