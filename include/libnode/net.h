/* libnode/net.h — composable layers with exact vector-Jacobian products, chained into
 * networks that serve as ODE dynamics (a node_system, time available to the layers)
 * or as ordinary feed-forward stages; softmax cross-entropy; network model files.
 * What the paper's ODE-Net image classifier (its §3, Table 1) is built from.
 * Include <libnode.h> rather than this file.
 *
 * Tensors: every sample is C × H × W (channels, rows, columns; a vector of n
 * features is n × 1 × 1), stored row-major; a batch of B samples is B consecutive
 * samples (NCHW).  A network has one flat parameter vector, each layer owning a
 * slice of it (layer order; within a layer its weights, then its bias or affine
 * parameters).
 *
 * The MLP (mlp.h) stays its own module — its fused, register-tiled pass is what the
 * spiral and latent models run, and its files keep their format; a network of dense
 * layers computes the same function (tested) for those who want one interface.
 *
 * Threads: a node_net is one object (its workspace included): one thread at a time.
 * Inside a call, a network may use several threads (OpenMP, when the library was
 * built with it: samples of the batch are split among them); results do not depend
 * on the thread count except through the order of the sums over the batch (the
 * parameter gradient).  node_net_set_threads chooses the count.
 */
#ifndef LIBNODE_NET_H
#define LIBNODE_NET_H

#include "core.h"
#include "mlp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct node_net node_net;   /* opaque */

/* An empty network whose input samples are c × h × w (all > 0).  NODE_EINVAL,
   NODE_ENOMEM; *out written only on success. */
LIBNODE_API node_status node_net_create(node_net **out, size_t c, size_t h, size_t w,
                                        node_error *err);
LIBNODE_API void        node_net_free(node_net *n);                 /* NULL is fine */

/* ---- layers: each appended to the end; the shape flows from the previous one ----

   Each returns NODE_EINVAL (err says why: a zero size, a kernel larger than the
   padded input, groups not dividing the channels, ...) and then leaves n unchanged. */

/* Dense: out features from all C·H·W inputs (flattened), optional bias; time_input:
   t is one more input feature (torchdiffeq's ConcatLinear).  Output out × 1 × 1. */
LIBNODE_API node_status node_net_add_dense(node_net *n, size_t out, int bias,
                                           int time_input, node_error *err);
/* 2-D convolution (cross-correlation, as PyTorch's Conv2d): out_ch channels, kh × kw
   kernel, stride ≥ 1, zero padding pad on every side, optional bias; time_channel:
   a constant channel holding t is appended to the input (torchdiffeq's ConcatConv2d),
   so the kernel sees C + 1 channels.  Output H' = (H + 2 pad − kh) / stride + 1. */
LIBNODE_API node_status node_net_add_conv2d(node_net *n, size_t out_ch, size_t kh,
                                            size_t kw, size_t stride, size_t pad, int bias,
                                            int time_channel, node_error *err);
/* Group normalisation over `groups` groups of channels (each normalised over its
   channels and all positions, eps 1e-5), with a per-channel affine γ, β (γ = 1, β = 0
   at init). */
LIBNODE_API node_status node_net_add_groupnorm(node_net *n, size_t groups,
                                               node_error *err);
/* An elementwise activation (any of mlp.h's, relu included). */
LIBNODE_API node_status node_net_add_act(node_net *n, node_activation a, node_error *err);
/* Average pooling of every channel to 1 × 1 (adaptive average pool to 1). */
LIBNODE_API node_status node_net_add_avgpool(node_net *n, node_error *err);
/* C × H × W → (C·H·W) × 1 × 1 (no arithmetic; for clarity before a dense layer). */
LIBNODE_API node_status node_net_add_flatten(node_net *n, node_error *err);
/* torchdiffeq's ResBlock (odenet_mnist.py, no downsampling): y = x + conv2(relu(
   norm2(conv1(relu(norm1(x)))))), 3 × 3 convolutions without bias, stride 1, pad 1,
   group norms of `groups` groups (min(32, C) there). */
LIBNODE_API node_status node_net_add_resblock(node_net *n, size_t groups,
                                              node_error *err);

/* ---- queries --------------------------------------------------------------------- */

LIBNODE_API size_t  node_net_nparams(const node_net *n);
/* The parameter vector, owned by n; the caller may write it. */
LIBNODE_API double *node_net_params(node_net *n);
LIBNODE_API size_t  node_net_nlayers(const node_net *n);
/* Input and output sample shapes (any pointer may be NULL); sizes = c·h·w. */
LIBNODE_API void    node_net_in_shape(const node_net *n, size_t *c, size_t *h, size_t *w);
LIBNODE_API void    node_net_out_shape(const node_net *n, size_t *c, size_t *h, size_t *w);
/* Multiply-adds of one forward pass of one sample (for GFLOP/s figures). */
LIBNODE_API double  node_net_flops(const node_net *n);

/* PyTorch's defaults: dense and conv weights and biases ~ U(−1/√fan_in, 1/√fan_in)
   (fan_in = inputs per output, the time column/channel included); group-norm γ = 1,
   β = 0.  The library's own generator: the same values for a seed everywhere. */
LIBNODE_API void node_net_init(node_net *n, uint64_t seed);

/* Threads used inside calls on n (0 = all the OpenMP runtime offers; 1 = none).
   Without OpenMP in the build: accepted, and every call runs on the caller's thread. */
LIBNODE_API node_status node_net_set_threads(node_net *n, int threads);
/* Was the library built with OpenMP? */
LIBNODE_API int         node_net_openmp(void);

/* Make calls allocation-free for batches up to `batch`. */
LIBNODE_API node_status node_net_reserve(node_net *n, size_t batch);

/* ---- evaluation ------------------------------------------------------------------ */

/* y = net(t, x) for batch samples (x: batch × in size, y: batch × out size). */
LIBNODE_API node_status node_net_forward(node_net *n, size_t batch, double t,
                                         const double *x, double *y);
/* In one pass (forward, then reverse):
     y     = net(t, x)                       (skip if NULL)
     vjp_x = aᵀ ∂y/∂x, sample by sample       (skip if NULL)
     vjp_p = Σ_samples aᵀ ∂y/∂θ              (skip if NULL)
    *vjp_t = Σ_samples aᵀ ∂y/∂t              (skip if NULL; 0 without time inputs)
   Outputs are overwritten, not accumulated.  Right after node_net_forward at the same
   batch, t, x (bit for bit) and parameters, the forward half is that call's, kept in
   the workspace (backprop's reverse pass asks for this): the same results. */
LIBNODE_API node_status node_net_vjp(node_net *n, size_t batch, double t, const double *x,
                                     const double *a, double *y, double *vjp_x,
                                     double *vjp_p, double *vjp_t);

/* The network as dynamics dy/dt = net(t, y) of `batch` samples (input shape ==
   output shape): dim = batch · in size, nparams = node_net_nparams(n).  The system
   uses n's workspace: valid until node_net_free; one thread at a time with n. */
LIBNODE_API node_status node_net_system(node_net *n, size_t batch, node_system *out);

/* ---- classification loss ------------------------------------------------------------ */

/* Mean softmax cross-entropy of batch rows of `classes` logits against integer
   labels (0 .. classes−1), computed stably (log-sum-exp); dlogits (batch × classes,
   may be NULL) = (softmax − onehot) / batch; correct (may be NULL) = rows whose
   largest logit is the label (ties: the first).  NODE_EINVAL (err says which) for
   NULL arguments, zero sizes, a label out of range, a non-finite logit. */
LIBNODE_API node_status node_softmax_xent(size_t batch, size_t classes,
                                          const double *logits, const int32_t *labels,
                                          double *loss, double *dlogits, size_t *correct,
                                          node_error *err);

/* ---- model files -------------------------------------------------------------------

   One file holds k networks (an ODE-Net is three: the downsampling stage, the ODE
   block's dynamics, the head): versioned little-endian format with a CRC-32, the
   same guarantees as the MLP's files (mlp.h: atomic save through a temporary, the
   old file intact on failure; a load checks the length its header implies before it
   allocates and rejects every malformed file with NODE_EFORMAT and a message).
   Load: *k_out networks into out[0 .. *k_out−1] (cap entries available; NODE_EFORMAT
   if the file holds more); the caller frees them. */
LIBNODE_API node_status node_net_save(const node_net *const *nets, size_t k,
                                      const char *path, node_error *err);
LIBNODE_API node_status node_net_load(node_net **out, size_t cap, size_t *k_out,
                                      const char *path, node_error *err);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_NET_H */
