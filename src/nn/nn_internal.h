/* nn_internal.h — the MLP's private structure and kernels, shared by the files of src/nn/
 * (mlp.c: create, workspaces, forward/vjp, systems; pass.c: the fused pass;
 * activations.c: the activation registry; act.c: the activations' kernels;
 * kernels.c: the batched layer products; io.c: the model-file format;
 * fileio.c: model files on disk).  Never installed.
 */
#ifndef LIBNODE_NN_INTERNAL_H
#define LIBNODE_NN_INTERNAL_H

#include "internal.h"

#include <math.h>

/* One fused multiply-add where the hardware has it (the ISO C build does not
   contract a*b+c on its own); a plain multiply and add elsewhere, never the slow
   software fma().  The target's macros as well as FP_FAST_FMA: glibc's <math.h>
   defines FP_FAST_FMA for GCC only, so that clang's -mfma builds ran without fused
   multiply-adds (and gave other results than GCC's). */
#if defined(FP_FAST_FMA) || defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#  define NODE__HAS_FMA 1
#  define NODE__FMA(a, b, c) fma((a), (b), (c))
#else
#  define NODE__HAS_FMA 0
#  define NODE__FMA(a, b, c) ((a) * (b) + (c))
#endif

/* ---- activations: the registry ---------------------------------------------------
   Every fact about an activation is its one line here; nothing depends on the
   order of the lines or on the values of the enum (the lines are sorted by name,
   so that the registry's order differs from the enum's and the tests would catch
   any code that confused the two).
     X(value, name, kernel, vectorized, unit_slope)
   value       its node_activation constant (mlp.h), also its code in model files;
   name        what node_activation_name writes and node_activation_parse reads;
   kernel      act.c defines act_<kernel>(n, y, d) (see node__act_fn) and its second
               derivative act2_<kernel>(n, zdd, y, d) (node__act2_fn), compiled at
               every instruction-set level;
   vectorized  1 if that kernel is branch-free arithmetic the compiler vectorizes,
               0 if it calls libm for every element (a cost, shown by bench_mlp);
   unit_slope  1 if act'(z) = 1 everywhere: the reverse pass skips Δ ⊙ act'.
   Adding an activation: its constant in mlp.h, its kernels in act.c (both, or the
   build fails), a line here (and its reference formulas, value and second
   derivative, in tests/test_mlp_act.c, which fails until it has them). */
#define NODE__ACTIVATIONS(X)                                     \
    X(NODE_ACT_ELU,      "elu",      elu,      1, 0)             \
    X(NODE_ACT_IDENTITY, "identity", identity, 1, 1)             \
    X(NODE_ACT_RELU,     "relu",     relu,     1, 0)             \
    X(NODE_ACT_SIGMOID,  "sigmoid",  sigmoid,  1, 0)             \
    X(NODE_ACT_SILU,     "silu",     silu,     1, 0)             \
    X(NODE_ACT_SOFTPLUS, "softplus", softplus, 0, 0)             \
    X(NODE_ACT_TANH,     "tanh",     tanh,     1, 0)

#define NODE__ACT_ONE(value, name, kernel, vec, unit) + 1
enum { NODE__NACT = 0 NODE__ACTIVATIONS(NODE__ACT_ONE) };   /* entries in the registry */

typedef struct node__act_info {
    node_activation value;
    const char *name;
    bool vectorized;
    bool unit_slope;
} node__act_info;

/* The registry as data, in the order of NODE__ACTIVATIONS (activations.c). */
extern NODE__HIDDEN const node__act_info node__act_registry[NODE__NACT];

/* The registry index of an activation value (a node_activation, or a code read
   from a file), or NODE__NACT if no entry has it.  A linear search: the registry
   is short and the lookups happen when models are made, never in a pass. */
NODE__HIDDEN size_t node__act_index(int64_t value);

/* An activation over n entries in place: y[i] = act(y[i]); if d is not NULL also
   d[i] = act'(z) at the pre-activation z that y held.  y and d never alias. */
typedef void (*node__act_fn)(size_t n, double *y, double *d);

/* A second derivative over n entries: on entry zdd[i] is the pre-activation z,
   y[i] = act(z), d[i] = act'(z); on exit zdd[i] = act''(z).  No aliasing. */
typedef void (*node__act2_fn)(size_t n, double *zdd, const double *y, const double *d);

/* ---- workspaces and systems ------------------------------------------------------ */

/* Scratch memory of evaluations (mlp.h: node_mlp_ws): grows, never shrinks. */
#define NODE__WS_ALIGN 64    /* bytes: buf starts on a cache line */
struct node_mlp_ws {
    double *buf;             /* inside raw, aligned to NODE__WS_ALIGN */
    size_t cap;              /* doubles */
    void *raw;               /* the allocation */
};

/* Make w hold the scratch of a pass of m over `batch` rows (no allocation when it
   already does).  NODE_EINVAL for batch 0, NODE_ENOMEM (w unchanged). */
NODE__HIDDEN node_status node__mlp_ws_reserve(const node_mlp *m, node_mlp_ws *w,
                                              size_t batch);
/* Make w hold at least `need` doubles (its contents are not kept when it grows).
   NODE_ENOMEM (w unchanged). */
NODE__HIDDEN node_status node__mlp_ws_grow(node_mlp_ws *w, size_t need);

/* The context of one system made by node_mlp_system (or flow made by node_mlp_flow,
   flow.c): the batch and a workspace of its own, sized for that batch when made;
   kept in a list owned by the mlp. */
typedef struct node__mlp_sys {
    const node_mlp *m;
    size_t batch;
    node_mlp_ws ws;
    node_mlp_ws *more;       /* ensembles: workspaces of workers 1 .. nmore */
    size_t nmore;
    struct node__mlp_sys *next;
} node__mlp_sys;

/* Unlink the system or flow whose context is ctx from m's list and free it; false
   if m has none such. */
NODE__HIDDEN bool node__mlp_sys_unlink(node_mlp *m, void *ctx);

/* The kernels of one instruction-set level (pass.c, kernels.c, act.c are compiled
   once per level; internal.h). */
typedef struct node__nn_kernels {
    /* The fused pass of pass.c: y = MLP(t, x) and, with a, aᵀ∂y/∂(x, θ, t) (see
       node_mlp_vjp; vjp_p summed over the batch, overwritten) for `batch` rows, all
       scratch in ws (a buffer that node__mlp_ws_reserve(m, ., batch) sized). */
    void (*pass)(const node_mlp *m, double *ws, size_t batch, double t, const double *x,
                 const double *a, double *y, double *vjp_x, double *vjp_p, double *vjp_t);
    const node__act_fn *act;        /* [NODE__NACT], in registry order */
    const node__act2_fn *act2;      /* [NODE__NACT]: second derivatives, same order */
    /* The divergence products of div.c (node_mlp_div / node_mlp_div_vjp): see
       node__div_pass below. */
    void (*div)(const node_mlp *m, double *ws, size_t batch, double t, const double *x,
                const double *eps, const double *a, const double *b, double *y,
                double *div, double *vjp_x, double *vjp_p, double *vjp_t);
    void (*tanh_array)(size_t n, const double *x, double *out);
    void (*sigmoid_array)(size_t n, const double *x, double *out);
    void (*expm1_array)(size_t n, const double *x, double *out);
    void (*layer_fwd)(size_t O, size_t I, size_t ld, const double *W, const double *bias,
                      const double *X, double *Z, double *pack);
    void (*layer_bwd_x)(size_t O, size_t I, size_t ld, const double *W, const double *Dl,
                        double *G, double *pack);
    void (*layer_bwd_w)(size_t O, size_t I, size_t B, size_t ld, const double *Dl,
                        const double *X, double *gW, double *gb, double *scratch, int add);
    /* pass with row b at its own time tv[b] (no vjp_t): the ensemble's MLP. */
    void (*pass_rows)(const node_mlp *m, double *ws, size_t batch, const double *tv,
                      const double *x, const double *a, double *y, double *vjp_x,
                      double *vjp_p);
    void (*layer_bwd_xd)(size_t O, size_t I, size_t ld, const double *W, const double *Dl,
                         const double *D, double *G, double *pack);
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
    size_t *act_ix;          /* [nlayers] registry index of act_k */
    node_activation *acts;   /* [nlayers] */
    int time_input;
    size_t nparams;
    size_t maxw;             /* widest layer input or output */
    double *theta;           /* [nparams] */

    /* The workspace of node_mlp_forward / node_mlp_vjp (one thread at a time),
       grown by them and by node_mlp_reserve; systems have their own. */
    node_mlp_ws ws;
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
#define node__act_kernels   NODE__KERNEL(node__act_kernels)
#define node__act2_kernels  NODE__KERNEL(node__act2_kernels)
#define node__div_pass      NODE__KERNEL(node__div_pass)
#define node__tanh_array    NODE__KERNEL(node__tanh_array)
#define node__sigmoid_array NODE__KERNEL(node__sigmoid_array)
#define node__expm1_array   NODE__KERNEL(node__expm1_array)
#define node__layer_fwd     NODE__KERNEL(node__layer_fwd)
#define node__layer_bwd_x   NODE__KERNEL(node__layer_bwd_x)
#define node__layer_bwd_xd  NODE__KERNEL(node__layer_bwd_xd)
#define node__layer_bwd_w   NODE__KERNEL(node__layer_bwd_w)
#define node__transpose     NODE__KERNEL(node__transpose)

/* ---- activations (act.c) ------------------------------------------------- */

/* This level's kernel of every activation, in registry order. */
extern NODE__HIDDEN const node__act_fn node__act_kernels[NODE__NACT];
/* This level's second derivative of every activation, in registry order. */
extern NODE__HIDDEN const node__act2_fn node__act2_kernels[NODE__NACT];

/* The kernel of activation a over n entries (node__act_fn); NODE_EINVAL (nothing
   written) if a is not in the registry.  For tests: passes index the table. */
NODE__HIDDEN node_status node__act_apply(node_activation a, size_t n, double *y, double *d);

/* Vectorizable elementary functions over arrays (exposed for the tests):
   out[i] = tanh(x[i]) (sigmoid, expm1), tanh and sigmoid within 2 ulp over the whole
   range (tests/test_act_accuracy.c); the same values as the activation kernels. */
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
/* G (I × ld) = (Wᵀ Δ) ⊙ D (D I × ld; NULL: G = Wᵀ Δ): the reverse pass's next Δ
   in one product, blocks of rows multiplied while they are in L1 when O is small. */
NODE__HIDDEN void node__layer_bwd_xd(size_t O, size_t I, size_t ld, const double *W,
                                     const double *Dl, const double *D, double *G,
                                     double *pack);
/* gW (O × I) = Δ Xᵀ and gb (O) = Δ 1 (add: +=), summed over the first B columns
   (whatever the padding columns hold; with B > 1, ld >= B rounded up to 8).
   scratch holds (B + I) · node__padw(O) + NODE__PACK doubles when
   node__bwdw_transposed(O, I, B) (large products transpose Δ), else 8 O (I + 1). */
NODE__HIDDEN void node__layer_bwd_w(size_t O, size_t I, size_t B, size_t ld,
                                    const double *Dl, const double *X, double *gW,
                                    double *gb, double *scratch, int add);

/* Does the weight gradient of an O × I layer over B columns go through the
   transposed product?  Past ~16k multiply-adds the transposition pays (measured),
   but only when both sides are wide: the product's columns are the outputs (fewer
   than 17 leave it 2-row blocks of 8 columns, 4x slower than the lane sums) and its
   rows the inputs.  Batches of 2-7 count as 8: the choice for them is the one for
   8 columns, so that a workspace sized by the answer for B = 8 (lane sums need
   8 O (I + 1) doubles, more than the product's scratch of a short batch) serves
   every batch (main sized it so but took lane sums below 8: an overrun). */
#ifndef NODE__BWDW_TRANSPOSE_MIN
#  define NODE__BWDW_TRANSPOSE_MIN 16384.0
#endif
static inline int node__bwdw_transposed(size_t O, size_t I, size_t B)
{
    return B >= 2 && O > 16 && I >= 8
           && (double)O * (double)I * (double)(B < 8 ? 8 : B) >= NODE__BWDW_TRANSPOSE_MIN;
}

/* Rows of a layer's output handled per block by the fused products (the forward
   product with its activation, the input gradient with act'), so that a block
   (rows × ld doubles) is still in L1 when its second step reads it: about 32 KiB,
   whole vectors of rows, at least 8. */
static inline size_t node__row_block(size_t rows, size_t ld)
{
    size_t rb = (4096 / ld) & ~(size_t)7;
    rb = rb < 8 ? 8 : rb;
    return rb < rows ? rb : rows;
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

/* ---- divergence products (div.c: the pass; flow.c: the API and the workspace) --
   Tangent-mode forward of T tangents per sample (T = D for the exact trace, 1 for
   Hutchinson) as extra columns: a chunk of nb samples keeps its primal activations
   feature-major with padded batch ldp = node__div_ld(nb) and its tangents in one
   block of T nb columns, tangent j of sample b at column j nb + b, with padded
   width ldt = node__div_ld(T nb) (the layer kernels need 1 or a multiple of 8). */
static inline size_t node__div_ld(size_t cols)
{
    return cols == 1 ? 1 : node__padw(cols);
}

/* Doubles of layer k's arrays in a chunk (div.c): its output, act' and act''
   (O × ldp each), its tangents and their pre-activations (O × ldt each). */
static inline size_t node__div_layer_rows(const node_mlp *m, size_t k, size_t ldp, size_t ldt)
{
    return m->sizes[k + 1] * (3 * ldp + 2 * ldt);
}

/* Samples per chunk for T tangents: about NODE__CHUNK columns of tangents. */
static inline size_t node__div_chunk(size_t T)
{
    return T >= NODE__CHUNK ? 1 : NODE__CHUNK / T;
}

/* Doubles of workspace for one chunk of nb samples with T tangents (false on
   overflow); grows with nb, so the need of the largest chunk serves all smaller. */
NODE__HIDDEN bool node__div_need(const node_mlp *m, size_t nb, size_t T, size_t *need);

/* Make w hold the scratch of the divergence pass over `batch` rows with T tangents
   (and of the plain pass).  NODE_EINVAL for batch 0, NODE_ENOMEM (w unchanged). */
NODE__HIDDEN node_status node__mlp_div_reserve(const node_mlp *m, node_mlp_ws *w,
                                               size_t batch, size_t T);

/* The divergence pass for `batch` rows (x, eps, a, b, y, div, vjp_x: row-major):
   y = MLP(t, x) if y; div = per-row trace (eps NULL) or eps-product if div; with
   a or b not NULL (either NULL = zero) and any of vjp_x, vjp_p, vjp_t: the products
   of node_flow.div_vjp (overwritten).  ws holds node__mlp_div_reserve's need. */
NODE__HIDDEN void node__div_pass(const node_mlp *m, double *ws, size_t batch, double t,
                                 const double *x, const double *eps, const double *a,
                                 const double *b, double *y, double *div, double *vjp_x,
                                 double *vjp_p, double *vjp_t);

/* ---- model files (io.c: the format; fileio.c: files) -------------------------- */

/* Where the parser reads (internal.h: node__src). */
typedef node__src node__mlp_src;

/* Parse a model: the header first (twice: once to learn the exact length, with no
   allocation, then to keep it), then the parameters straight into the new model,
   then the CRC.  NODE_EFORMAT for anything malformed, NODE_ENOMEM, or the status
   of a failed read; msg (may be NULL) says why; *out written only on success. */
NODE__HIDDEN node_status node__mlp_parse(const node__mlp_src *src, node_mlp **out, char *msg);

/* node__mlp_parse over len bytes in memory (the loader's tests and the fuzzer). */
NODE__HIDDEN node_status node__mlp_load_mem(const unsigned char *buf, size_t len,
                                            node_mlp **out, char *msg);

/* Serialize m in pieces: write(ctx, p, n) is called with consecutive pieces of the
   file until it returns something other than NODE_OK, which is then returned. */
typedef node__write_fn node__mlp_write_fn;
NODE__HIDDEN node_status node__mlp_serialize(const node_mlp *m, node__mlp_write_fn write,
                                             void *ctx);
/* The length of m's file (saturated at UINT64_MAX). */
NODE__HIDDEN uint64_t node__mlp_file_size(const node_mlp *m);
/* Serialize m into a new buffer (node__malloc'd) of *len bytes. */
NODE__HIDDEN node_status node__mlp_save_mem(const node_mlp *m, unsigned char **buf,
                                            size_t *len);

/* Were the files built with POSIX (O_NOFOLLOW, locks, fsync) or plain C?  (Tests.) */
extern NODE__HIDDEN const int node__mlp_files_posix;

#endif /* LIBNODE_NN_INTERNAL_H */
