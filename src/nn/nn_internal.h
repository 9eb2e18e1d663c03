/* nn_internal.h — the MLP's private structure and kernels, shared by the files of src/nn/
 * (mlp.c: create/forward/vjp/systems; act.c: activations; kernels.c: the batched
 * layer products; io.c: model files).  Never installed.
 */
#ifndef LIBNODE_NN_INTERNAL_H
#define LIBNODE_NN_INTERNAL_H

#include "internal.h"

#include <math.h>

/* One fused multiply-add where the hardware has it (the ISO C build does not
   contract a*b+c on its own); a plain multiply and add elsewhere, never the slow
   software fma(). */
#if defined(FP_FAST_FMA)
#  define NODE__FMA(a, b, c) fma((a), (b), (c))
#else
#  define NODE__FMA(a, b, c) ((a) * (b) + (c))
#endif

/* The ODE-system context of one batch size: created by node_mlp_system, kept in
   a list owned by the mlp, freed with it. */
typedef struct node__mlp_sys {
    node_mlp *m;
    size_t batch;
    struct node__mlp_sys *next;
} node__mlp_sys;

/* The kernels of one instruction-set level (pass.c, kernels.c, act.c are compiled
   once per level; internal.h). */
typedef struct node__nn_kernels {
    /* The fused pass of pass.c: y = MLP(t, x) and, with a, aᵀ∂y/∂(x, θ, t) (see
       node_mlp_vjp; vjp_p summed over the batch, overwritten) for `batch` rows, all
       scratch in ws (at least the doubles node__mlp_ws_need(m, batch) gives). */
    void (*pass)(const node_mlp *m, double *ws, size_t batch, double t, const double *x,
                 const double *a, double *y, double *vjp_x, double *vjp_p, double *vjp_t);
    void (*act_apply)(node_activation a, size_t n, double *y, double *d);
    void (*tanh_array)(size_t n, const double *x, double *out);
    void (*sigmoid_array)(size_t n, const double *x, double *out);
    void (*expm1_array)(size_t n, const double *x, double *out);
    void (*layer_fwd)(size_t O, size_t I, size_t ld, const double *W, const double *bias,
                      const double *X, double *Z, double *pack);
    void (*layer_bwd_x)(size_t O, size_t I, size_t ld, const double *W, const double *Dl,
                        double *G, double *pack);
    void (*layer_bwd_w)(size_t O, size_t I, size_t B, size_t ld, const double *Dl,
                        const double *X, double *gW, double *gb, double *scratch, int add);
} node__nn_kernels;

extern NODE__HIDDEN const node__nn_kernels node__nn_kernels_generic;
extern NODE__HIDDEN const node__nn_kernels node__nn_kernels_avx2;
extern NODE__HIDDEN const node__nn_kernels node__nn_kernels_avx512;
/* The table of a level (the generic one where the level was not compiled in). */
NODE__HIDDEN const node__nn_kernels *node__nn_kernels_for(node__isa isa);

struct node_mlp {
    const node__nn_kernels *kern;   /* chosen when the model is made */
    size_t nlayers;
    size_t *sizes;           /* [nlayers+1] widths; sizes[0] the state width */
    size_t *fan_in;          /* [nlayers] input width of layer k (time column included) */
    size_t *woff;            /* [nlayers] offset of W_k in theta; b_k follows W_k */
    node_activation *acts;   /* [nlayers] */
    int time_input;
    size_t nparams;
    size_t maxw;             /* widest layer input or output */
    double *theta;           /* [nparams] */

    /* Feature-major workspace (width × padded batch), grown by node_mlp_reserve. */
    double *ws;
    size_t ws_cap;           /* doubles; never shrinks */
    node__mlp_sys *systems;
};

/* Samples per pass through the network: a chunk's activations stay in cache. */
#ifndef NODE__CHUNK
#  define NODE__CHUNK 256
#endif

/* Padded batch: samples of batches below 4 go one at a time (ld 1, dot products);
   larger batches are padded to a multiple of 8 so every kernel runs full vectors. */
static inline size_t node__lead_dim(size_t batch);

/* ---- kernel-file names ---------------------------------------------------------
   The functions of the kernel files carry their level's suffix (internal.h); these
   plain names refer to the level of the file that uses them (generic outside the
   kernel files).  Other levels are reached through node__nn_kernels_for. */
#define node__act_apply     NODE__KERNEL(node__act_apply)
#define node__tanh_array    NODE__KERNEL(node__tanh_array)
#define node__sigmoid_array NODE__KERNEL(node__sigmoid_array)
#define node__expm1_array   NODE__KERNEL(node__expm1_array)
#define node__layer_fwd     NODE__KERNEL(node__layer_fwd)
#define node__layer_bwd_x   NODE__KERNEL(node__layer_bwd_x)
#define node__layer_bwd_w   NODE__KERNEL(node__layer_bwd_w)
#define node__transpose     NODE__KERNEL(node__transpose)

/* ---- activations (act.c) ------------------------------------------------- */

/* y[i] = act(y[i]) in place for n entries; if d is not NULL also
   d[i] = act'(z) at the pre-activation z that y held. */
NODE__HIDDEN void node__act_apply(node_activation a, size_t n, double *y, double *d);

/* Vectorizable elementary functions over arrays (exposed for the tests):
   out[i] = tanh(x[i]), accurate to ~1.5 ulp over the whole range. */
NODE__HIDDEN void node__tanh_array(size_t n, const double *x, double *out);
NODE__HIDDEN void node__sigmoid_array(size_t n, const double *x, double *out);
NODE__HIDDEN void node__expm1_array(size_t n, const double *x, double *out);

/* ---- layer kernels (kernels.c) ----------------------------------------------
   Activations are feature-major: a layer's input X is I × ld (row i holds
   feature i of every sample), ld the padded batch (1, or node__padw(batch)).
   pack is scratch of NODE__PACK doubles for the products. */
#define NODE__PACK (128 * 24)

/* Z (O × ld) = W (O × I, row-major) X (I × ld) + bias, for every column. */
NODE__HIDDEN void node__layer_fwd(size_t O, size_t I, size_t ld, const double *W,
                                  const double *bias, const double *X, double *Z,
                                  double *pack);
/* G (I × ld) = Wᵀ Δ, Δ O × ld. */
NODE__HIDDEN void node__layer_bwd_x(size_t O, size_t I, size_t ld, const double *W,
                                    const double *Dl, double *G, double *pack);
/* gW (O × I) = Δ Xᵀ and gb (O) = Δ 1 (add: +=), summed over the first B columns
   (whatever the padding columns hold; with B > 1, ld >= B rounded up to 8).
   scratch holds (B + I) · node__padw(O) + NODE__PACK doubles when
   node__bwdw_transposed(O, I, B) (large products transpose Δ), else 8 O (I + 1). */
NODE__HIDDEN void node__layer_bwd_w(size_t O, size_t I, size_t B, size_t ld,
                                    const double *Dl, const double *X, double *gW,
                                    double *gb, double *scratch, int add);

/* Does the weight gradient of an O × I layer over B columns go through the
   transposed product?  Past ~16k multiply-adds the transposition pays (measured). */
#ifndef NODE__BWDW_TRANSPOSE_MIN
#  define NODE__BWDW_TRANSPOSE_MIN 16384.0
#endif
static inline int node__bwdw_transposed(size_t O, size_t I, size_t B)
{
    return B >= 8 && (double)O * (double)I * (double)B >= NODE__BWDW_TRANSPOSE_MIN;
}

/* A row length of n doubles rounded up to whole vectors, and moved off multiples
   of 512 bytes (rows at such strides share a few cache sets). */
static inline size_t node__padw(size_t n)
{
    size_t p = (n + 7) & ~(size_t)7;
    return p % 64 == 0 ? p + 8 : p;
}

static inline size_t node__lead_dim(size_t batch)
{
    return batch < 4 ? 1 : node__padw(batch);
}

/* dst[c ldd + r] = src[r lds + c] for r < rows, c < cols, in cache-sized tiles.
   src and dst do not overlap. */
NODE__HIDDEN void node__transpose(size_t rows, size_t cols, const double *src, size_t lds,
                                  double *dst, size_t ldd);

/* ---- model files (io.c) ------------------------------------------------------ */

/* Parse a model file held in memory.  NODE_EFORMAT for anything malformed,
   NODE_ENOMEM; *out written only on success.  The loader and the fuzzer share it. */
NODE__HIDDEN node_status node__mlp_load_mem(const unsigned char *buf, size_t len,
                                            node_mlp **out);
/* Serialize m into a new buffer (node__malloc'd) of *len bytes. */
NODE__HIDDEN node_status node__mlp_save_mem(const node_mlp *m, unsigned char **buf,
                                            size_t *len);

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of n bytes, continuing crc
   (start with 0). */
NODE__HIDDEN uint32_t node__crc32(uint32_t crc, const unsigned char *p, size_t n);

#endif /* LIBNODE_NN_INTERNAL_H */
