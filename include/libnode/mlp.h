/* libnode/mlp.h — a multilayer perceptron as ODE dynamics dh/dt = MLP(t, h),
 * with exact vector-Jacobian products and checksummed model files.
 * Include <libnode.h> rather than this file.
 */
#ifndef LIBNODE_MLP_H
#define LIBNODE_MLP_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum node_activation {
    NODE_ACT_IDENTITY, NODE_ACT_TANH, NODE_ACT_RELU, NODE_ACT_SOFTPLUS,
    NODE_ACT_SIGMOID, NODE_ACT_ELU, NODE_ACT_SILU
} node_activation;

/* "identity", "tanh", ... or NULL for an unknown value. */
NODE_API const char *node_activation_name(node_activation a);
/* The inverse of node_activation_name.  NODE_EINVAL for an unknown name. */
NODE_API node_status node_activation_parse(const char *name, node_activation *out);

typedef struct node_mlp node_mlp;   /* opaque */

/* sizes has nlayers+1 entries: sizes[0] inputs (the state width), sizes[nlayers]
   outputs.  acts has nlayers entries; layer k computes act_k(W_k x + b_k).
   time_input != 0 appends t as the last input feature of the first layer.
   Parameters start at zero (see node_mlp_init).  *out is written only on success.
   NODE_EINVAL: NULL pointers, nlayers 0, a zero size, an unknown activation. */
NODE_API node_status node_mlp_create(node_mlp **out, size_t nlayers, const size_t *sizes,
                                     const node_activation *acts, int time_input);
NODE_API void        node_mlp_free(node_mlp *m);                 /* NULL is fine */

NODE_API size_t  node_mlp_nparams(const node_mlp *m);
/* The parameter vector, owned by m (valid while m lives); the caller may write it.
   Layout: [W_1, b_1, W_2, b_2, ...]; W_k row-major, out × in
   (the layout of torch.nn.Linear.weight); with time_input, W_1 has sizes[0]+1
   columns and its last column multiplies t. */
NODE_API double *node_mlp_params(node_mlp *m);

/* Shape queries (0 / NODE_ACT_IDENTITY for a NULL m or an index out of range). */
NODE_API size_t          node_mlp_nlayers(const node_mlp *m);
NODE_API size_t          node_mlp_size(const node_mlp *m, size_t k);   /* k in 0..nlayers */
NODE_API node_activation node_mlp_activation(const node_mlp *m, size_t layer); /* 0-based */
NODE_API int             node_mlp_time_input(const node_mlp *m);

/* PyTorch's default: every W and b ~ U(-1/√fan_in, 1/√fan_in), fan_in the layer's
   input width (time column included).  A PRNG of our own: the same values for a
   seed on every platform. */
NODE_API void node_mlp_init(node_mlp *m, uint64_t seed);

/* Make node_mlp_forward / node_mlp_vjp allocation-free for batches up to `batch`.
   They grow the workspace themselves when a larger batch comes; this call lets a
   training loop pay for that up front.  NODE_EINVAL, NODE_ENOMEM. */
NODE_API node_status node_mlp_reserve(node_mlp *m, size_t batch);

/* y = MLP(t, x) for a batch of rows: x is batch × sizes[0], y is batch × sizes[nlayers]. */
NODE_API node_status node_mlp_forward(node_mlp *m, size_t batch, double t,
                                      const double *x, double *y);

/* Vector-Jacobian products of the MLP on arbitrary inputs, for composing it into
   your own dynamics (f(y) = MLP(y³), encoders, decoders).  For x (batch × sizes[0])
   and a (batch × sizes[nlayers]), in one fused pass:
     y     = MLP(t, x)                      (batch × sizes[nlayers]; skip if NULL)
     vjp_x = aᵀ ∂y/∂x, row by row           (batch × sizes[0]; skip if NULL)
     vjp_p = Σ_rows aᵀ ∂y/∂θ                 (nparams; skip if NULL)
    *vjp_t = Σ_rows aᵀ ∂y/∂t                 (skip if NULL; 0 without time_input)
   Outputs are overwritten, not accumulated. */
NODE_API node_status node_mlp_vjp(node_mlp *m, size_t batch, double t,
                                  const double *x, const double *a, double *y,
                                  double *vjp_x, double *vjp_p, double *vjp_t);

/* The MLP as ODE dynamics dy/dt = MLP(t, y) for `batch` rows
   (requires sizes[0] == sizes[nlayers]): dim = batch*sizes[0],
   nparams = node_mlp_nparams(m).  Valid while m lives.  Workspaces are
   allocated here, never in f / vjp.  vjp_p is summed over the batch. */
NODE_API node_status node_mlp_system(node_mlp *m, size_t batch, node_system *out);

/* Model files: a versioned little-endian binary format with a CRC-32, described in
   src/nn/io.c.  Save writes a temporary file in the same folder and renames it over
   path: a failure never leaves a half-written or destroyed model (NODE_EIO).
   Load: NODE_EIO for a missing or unreadable path, NODE_EFORMAT for anything
   malformed; *out is written only on success. */
NODE_API node_status node_mlp_save(const node_mlp *m, const char *path);
NODE_API node_status node_mlp_load(node_mlp **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_MLP_H */
