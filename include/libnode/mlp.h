/* libnode/mlp.h — a multilayer perceptron as ODE dynamics dh/dt = MLP(t, h),
 * with exact vector-Jacobian products and checksummed model files.
 * Include <libnode.h> rather than this file.
 *
 * Threads: a node_mlp is one object.  Calls that take a non-const node_mlp * write
 * to it (its parameters, its own workspace, its list of systems) and must not run
 * at the same time as any other call on that model: node_mlp_forward / _vjp /
 * _reserve / _system / _system_release / _init / _free, and writes through
 * node_mlp_params.  Calls that take a const node_mlp * only read it: any number of
 * threads may evaluate one model at once, each with its own node_mlp_ws
 * (node_mlp_forward_ws / node_mlp_vjp_ws) or its own system from node_mlp_system
 * (made beforehand, each with a workspace of its own, one thread per system; the
 * solver and adjoint calls need a node_solver per thread too), while nobody writes
 * the parameters or frees the model.  Results do not depend on the thread: the
 * same call gives the same bits.  tests/test_threads.c runs this under
 * ThreadSanitizer.
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

/* The activations live in one registry inside the library (a name, a kernel per
   instruction set, a few facts each); nothing depends on the order or the numeric
   values of this enum, which are also the codes in model files.
   "identity", "tanh", ... or NULL for a value that is not an activation. */
LIBNODE_API const char *node_activation_name(node_activation a);
/* The inverse of node_activation_name.  NODE_EINVAL for an unknown name. */
LIBNODE_API node_status node_activation_parse(const char *name, node_activation *out);

typedef struct node_mlp node_mlp;   /* opaque */

/* sizes has nlayers+1 entries: sizes[0] inputs (the state width), sizes[nlayers]
   outputs.  acts has nlayers entries; layer k computes act_k(W_k x + b_k).
   time_input != 0 appends t as the last input feature of the first layer.
   Parameters start at zero (see node_mlp_init).  *out is written only on success.
   NODE_EINVAL: NULL pointers, nlayers 0, a zero size, an unknown activation.
   node_mlp_create_ex also says which (err may be NULL). */
LIBNODE_API node_status node_mlp_create(node_mlp **out, size_t nlayers, const size_t *sizes,
                                     const node_activation *acts, int time_input);
LIBNODE_API node_status node_mlp_create_ex(node_mlp **out, size_t nlayers, const size_t *sizes,
                                        const node_activation *acts, int time_input,
                                        node_error *err);
LIBNODE_API void        node_mlp_free(node_mlp *m);                 /* NULL is fine */

LIBNODE_API size_t  node_mlp_nparams(const node_mlp *m);
/* The parameter vector, owned by m (valid while m lives); the caller may write it.
   Layout: [W_1, b_1, W_2, b_2, ...]; W_k row-major, out × in
   (the layout of torch.nn.Linear.weight); with time_input, W_1 has sizes[0]+1
   columns and its last column multiplies t. */
LIBNODE_API double *node_mlp_params(node_mlp *m);

/* Shape queries (0 / NODE_ACT_IDENTITY for a NULL m or an index out of range). */
LIBNODE_API size_t          node_mlp_nlayers(const node_mlp *m);
LIBNODE_API size_t          node_mlp_size(const node_mlp *m, size_t k);   /* k in 0..nlayers */
LIBNODE_API node_activation node_mlp_activation(const node_mlp *m, size_t layer); /* 0-based */
LIBNODE_API int             node_mlp_time_input(const node_mlp *m);

/* PyTorch's default: every W and b ~ U(-1/√fan_in, 1/√fan_in), fan_in the layer's
   input width (time column included).  A PRNG of our own: the same values for a
   seed on every platform. */
LIBNODE_API void node_mlp_init(node_mlp *m, uint64_t seed);

/* Make node_mlp_forward / node_mlp_vjp allocation-free for batches up to `batch`.
   They grow the model's own workspace themselves when a larger batch comes; this
   call lets a training loop pay for that up front.  NODE_EINVAL, NODE_ENOMEM. */
LIBNODE_API node_status node_mlp_reserve(node_mlp *m, size_t batch);

/* ---- workspaces: one model, many threads --------------------------------------

   A node_mlp_ws is the scratch memory of evaluations: forward_ws / vjp_ws read the
   model and write only the workspace (and their outputs), so threads that share a
   model each bring their own.  A workspace serves any model; it grows when a call
   needs more than it has (reserve with node_mlp_ws_create's batch to avoid that)
   and never shrinks.  One workspace is used by one thread at a time. */
typedef struct node_mlp_ws node_mlp_ws;

/* A workspace sized for batches up to `batch` of m (m may be NULL with batch 0: an
   empty workspace that grows on first use).  NODE_EINVAL, NODE_ENOMEM. */
LIBNODE_API node_status node_mlp_ws_create(const node_mlp *m, size_t batch, node_mlp_ws **out);
LIBNODE_API void        node_mlp_ws_free(node_mlp_ws *w);            /* NULL is fine */

/* node_mlp_forward and node_mlp_vjp with the caller's workspace: m is only read. */
LIBNODE_API node_status node_mlp_forward_ws(const node_mlp *m, node_mlp_ws *w, size_t batch,
                                         double t, const double *x, double *y);
LIBNODE_API node_status node_mlp_vjp_ws(const node_mlp *m, node_mlp_ws *w, size_t batch,
                                     double t, const double *x, const double *a, double *y,
                                     double *vjp_x, double *vjp_p, double *vjp_t);

/* y = MLP(t, x) for a batch of rows: x is batch × sizes[0], y is batch × sizes[nlayers]. */
LIBNODE_API node_status node_mlp_forward(node_mlp *m, size_t batch, double t,
                                      const double *x, double *y);

/* Vector-Jacobian products of the MLP on arbitrary inputs, for composing it into
   your own dynamics (f(y) = MLP(y³), encoders, decoders).  For x (batch × sizes[0])
   and a (batch × sizes[nlayers]), in one fused pass:
     y     = MLP(t, x)                      (batch × sizes[nlayers]; skip if NULL)
     vjp_x = aᵀ ∂y/∂x, row by row           (batch × sizes[0]; skip if NULL)
     vjp_p = Σ_rows aᵀ ∂y/∂θ                 (nparams; skip if NULL)
    *vjp_t = Σ_rows aᵀ ∂y/∂t                 (skip if NULL; 0 without time_input)
   Outputs are overwritten, not accumulated. */
LIBNODE_API node_status node_mlp_vjp(node_mlp *m, size_t batch, double t,
                                  const double *x, const double *a, double *y,
                                  double *vjp_x, double *vjp_p, double *vjp_t);

/* The MLP as ODE dynamics dy/dt = MLP(t, y) for `batch` rows
   (requires sizes[0] == sizes[nlayers]): dim = batch*sizes[0],
   nparams = node_mlp_nparams(m).  vjp_p is summed over the batch.
   Each call makes a new system with a workspace of its own, allocated here (never
   in f / vjp) and owned by m: valid until node_mlp_free(m) or
   node_mlp_system_release.  Systems only read m, so distinct systems of one model
   may be solved in distinct threads at once (one thread per system).  Make systems
   once, outside training loops: each call holds its workspace until released. */
LIBNODE_API node_status node_mlp_system(node_mlp *m, size_t batch, node_system *out);

/* Free the workspace of a system made by node_mlp_system(m, ...) before m itself is
   freed; *sys is zeroed.  NODE_EINVAL if sys is not a live system of m. */
LIBNODE_API node_status node_mlp_system_release(node_mlp *m, node_system *sys);

/* Model files: a versioned little-endian binary format with a CRC-32, described in
   src/nn/io.c.
   Save writes path + ".tmp" in the same folder and renames it over path: a failure,
   a kill or a power cut never leaves a half-written or destroyed model (NODE_EIO,
   the old file intact).  The temporary is never reached through a symbolic link or
   a second hard link and must be a regular file of ours; a killed save's leftover is
   reused by the next save (at most one is left), and a save that finds it locked by
   another live save writes a uniquely named one instead (the last rename wins).
   The file is flushed to disk before the rename and the folder after it (then a
   NODE_EIO says the new model is in place but its folder could not be flushed).
   The new file gets the permission bits of the regular file it replaces (0666 &
   ~umask for a new one); a symbolic link at path is replaced, never written
   through.
   Load accepts only a regular file (a FIFO, a device or a folder is refused
   without waiting on it) of exactly the length its header implies; it reads the
   header before it allocates anything, and allocates no more than the model needs.
   NODE_EINVAL for a NULL or empty argument; NODE_EIO for a missing, unreadable or
   non-regular path; NODE_EFORMAT for anything malformed (NODE_ENOMEM for a valid
   model too large for memory); *out is written only on success.
   The _ex forms also say why, naming the path: "model.bin: No such file or
   directory", "model.bin: not a regular file (a FIFO)", "model.bin: 120 bytes, but
   its header describes 2 layers needing 2072 bytes", "model.bin: checksum
   mismatch" (err may be NULL).
   Threads: saves and loads of distinct paths are independent; concurrent saves to
   one path exclude each other by file locks (open-file-description locks on Linux;
   where only process locks exist, threads of one process must not save one path at
   once).  Without POSIX (a plain-C build) a load cannot refuse a FIFO before
   opening it and a save cannot refuse a link or flush to disk. */
LIBNODE_API node_status node_mlp_save(const node_mlp *m, const char *path);
LIBNODE_API node_status node_mlp_load(node_mlp **out, const char *path);
LIBNODE_API node_status node_mlp_save_ex(const node_mlp *m, const char *path, node_error *err);
LIBNODE_API node_status node_mlp_load_ex(node_mlp **out, const char *path, node_error *err);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_MLP_H */
