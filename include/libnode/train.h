/* libnode/train.h — losses, optimizers and learning-rate schedules over flat
 * parameter vectors: what a training loop around node_odeint + node_odeint_adjoint
 * needs.  The optimizers follow PyTorch's documented update rules (torch.optim.SGD,
 * RMSprop, Adam, AdamW) and defaults.  Include <libnode.h> rather than this file.
 */
#ifndef LIBNODE_TRAIN_H
#define LIBNODE_TRAIN_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- mini-batches -----------------------------------------------------------

   A batch of B trajectories that share their output times ts is ONE ODE: stack the
   B states as the rows of a B × d state (node_mlp_system(m, B, ...) does this for
   the MLP; for your own dynamics, let f and vjp loop over the rows), solve once, and
   take one adjoint solve for the whole batch — dL/dθ comes out summed over the
   samples, as the loss's mean asks.  This is what Chen et al. (2018) suggest and
   torchdiffeq does.

   It is right when the samples share ts (e.g. sub-trajectories re-timed to start at
   0, as in the spiral example) and their dynamics have the same parameters.  What
   it costs: one shared adaptive step size, so every sample takes the steps the
   hardest sample needs (an easy sample is over-resolved), and the RMS error norm
   mixes the samples, so a hard sample's error is diluted by the easy ones (the
   effective tolerance per sample is looser than rtol/atol by up to √B for one
   outlier).  Where samples differ wildly in stiffness or time span, solve them
   separately (one node_solver per thread) and add up the gradients. */

/* ---- losses ------------------------------------------------------------------

   Over n values (e.g. an nt × dim trajectory, row-major, n = nt·dim) of a
   prediction and a target, with an optional mask (NULL = every entry observed;
   mask[i] != 0: entry i is observed, 0: missing and ignored).  The mean is over the
   observed entries (m of them).  loss receives the value; grad (may be NULL)
   receives dL/dpred (n entries, 0 at masked entries), overwritten.
   All entries masked (m = 0): *loss = 0 and grad = 0, NODE_OK — an empty
   mini-batch contributes nothing.  NODE_EINVAL: n == 0, pred / target / loss NULL,
   an unknown kind or flag, a NaN or Inf target at an observed entry (missing data
   must be masked, or flagged with NODE_LOSS_NAN_MISSING).  NODE_ENONFINITE: a NaN or
   Inf prediction at an observed entry, or a loss that overflows.  A missing entry is
   ignored whatever its prediction and target hold.  On failure *loss and grad are
   not written: a non-finite loss never reaches an optimizer with NODE_OK.

   NODE_LOSS_NAN_MISSING: a NaN target marks its entry missing, as mask 0 does (it
   is not counted in m and gets gradient 0).  An Inf target does not: ±Inf is a value
   (most likely an overflow upstream), not a marker, and stays NODE_EINVAL. */

typedef enum node_loss_kind {
    NODE_LOSS_MSE,        /* (1/m) Σ (pred_i - target_i)²,  dL/dpred_i = 2 (pred_i - target_i) / m */
    NODE_LOSS_MAE         /* (1/m) Σ |pred_i - target_i|,   dL/dpred_i = sign(pred_i - target_i) / m,
                             sign(0) = 0 (PyTorch's convention) */
} node_loss_kind;

/* Flags of node_loss. */
#define NODE_LOSS_NAN_MISSING 1u   /* a NaN target marks a missing entry (as mask 0) */

/* The loss of the given kind with flags (0 or NODE_LOSS_NAN_MISSING); err (may be
   NULL) says which argument or entry was refused ("target[7] = inf at an observed
   entry: ...").  Reads pred and target twice, allocates nothing. */
LIBNODE_API node_status node_loss(node_loss_kind kind, size_t n, const double *pred,
                                  const double *target, const unsigned char *mask,
                                  uint32_t flags, double *loss, double *grad, node_error *err);

/* node_loss(NODE_LOSS_MSE / NODE_LOSS_MAE, ..., flags 0, ..., NULL). */
LIBNODE_API node_status node_loss_mse(size_t n, const double *pred, const double *target,
                                   const unsigned char *mask, double *loss, double *grad);
LIBNODE_API node_status node_loss_mae(size_t n, const double *pred, const double *target,
                                   const unsigned char *mask, double *loss, double *grad);

/* ---- optimizers ----------------------------------------------------------------- */

typedef enum node_optim_kind {
    NODE_OPTIM_SGD, NODE_OPTIM_RMSPROP, NODE_OPTIM_ADAM, NODE_OPTIM_ADAMW
} node_optim_kind;

/* "sgd", "rmsprop", "adam", "adamw", or NULL for an unknown value. */
LIBNODE_API const char *node_optim_name(node_optim_kind kind);
/* The inverse of node_optim_name.  NODE_EINVAL for an unknown name or NULL. */
LIBNODE_API node_status node_optim_parse(const char *name, node_optim_kind *out);

/* Hyper-parameters; each kind reads only the fields marked with it.  θ are the
   parameters, g the gradient, t = 1, 2, ... the step count.

   SGD      g ← g + λθ;  with momentum μ > 0:  b ← g (t = 1), b ← μb + (1-τ)g (t > 1);
            g ← g + μb (Nesterov) or g ← b;   θ ← θ - γg.
   RMSprop  g ← g + λθ;  v ← αv + (1-α)g²;  ṽ = v, or v - ḡ² with ḡ ← αḡ + (1-α)g
            when centered;  with μ > 0:  b ← μb + g/(√ṽ + ε), θ ← θ - γb;
            else θ ← θ - γ g/(√ṽ + ε).     (ε added outside the square root.)
   Adam     g ← g + λθ;  m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;
            amsgrad: v_max ← max(v_max, v), v̂ = v_max/(1-β₂ᵗ); else v̂ = v/(1-β₂ᵗ);
            θ ← θ - γ (m/(1-β₁ᵗ)) / (√v̂ + ε).   (ε added after the bias-corrected √.)
   AdamW    θ ← θ(1 - γλ) first (decoupled weight decay), then Adam with λ = 0. */
typedef struct node_optim_config {
    node_optim_kind kind;
    uint32_t reserved0_;
    double lr;            /* γ  all.  SGD 1e-3 (recent PyTorch; it used to be
                                required), RMSprop 1e-2,
                                Adam / AdamW 1e-3; >= 0 */
    double weight_decay;  /* λ  all.  0, AdamW 1e-2; >= 0 */
    double momentum;      /* μ  SGD, RMSprop.  0; >= 0 */
    double dampening;     /* τ  SGD.  0 */
    int32_t nesterov;     /*    SGD.  0; needs momentum > 0 and dampening 0 */
    uint32_t reserved1_;
    double alpha;         /* α  RMSprop.  0.99; in [0, 1) */
    int32_t centered;     /*    RMSprop.  0 */
    uint32_t reserved2_;
    double beta1, beta2;  /* β  Adam, AdamW.  0.9, 0.999; each in [0, 1) */
    double eps;           /* ε  RMSprop, Adam, AdamW.  1e-8; >= 0 */
    int32_t amsgrad;      /*    Adam, AdamW.  0 */
    uint32_t reserved3_;
    uint64_t reserved_[12];   /* fields of later versions: leave zero */
} node_optim_config;

/* Fill *cfg with PyTorch's defaults for kind (above).  NODE_EINVAL for an unknown
   kind or a NULL cfg. */
LIBNODE_API node_status node_optim_defaults(node_optim_kind kind, node_optim_config *cfg);

typedef struct node_optim node_optim;   /* opaque: the config and the state vectors */

/* An optimizer for n parameters; all its state (momentum, square averages, ...) is
   allocated here, zeroed, and never again.  cfg is copied.  *out is written only on
   success.  NODE_EINVAL: out or cfg NULL, n == 0, an unknown kind, a hyper-parameter
   the kind reads out of its range (above), non-finite values, non-zero reserved
   fields (start from node_optim_defaults).  NODE_ENOMEM.  The _ex form also says
   which hyper-parameter and why ("cfg->beta1 = 1 is outside [0, 1)"; err may be NULL).
   Threads: one optimizer is used by one thread at a time. */
LIBNODE_API node_status node_optim_create(node_optim **out, size_t n,
                                       const node_optim_config *cfg);
LIBNODE_API node_status node_optim_create_ex(node_optim **out, size_t n,
                                          const node_optim_config *cfg, node_error *err);
LIBNODE_API void        node_optim_free(node_optim *o);            /* NULL is fine */

/* One update θ ← step(θ, grad) of the n parameters (the n of create).  grad is read,
   never written.  Allocates nothing.  NODE_EINVAL for NULL arguments;
   NODE_ENONFINITE when grad or θ holds a NaN or Inf, or the update would write one
   into θ or the optimizer's state (lr·g or g² overflowing).  On failure nothing
   changes: θ, the state and the step count keep their values, so the caller may skip
   the batch and go on, and the next step is the one it would have been without the
   refused one.  (The update is computed twice: once to check, once to write.) */
LIBNODE_API node_status node_optim_step(node_optim *o, double *theta, const double *grad);

/* The learning rate γ used by the next step (a schedule sets it every iteration).
   set_lr: NODE_EINVAL for a NULL o or lr negative / non-finite (γ unchanged). */
LIBNODE_API node_status node_optim_set_lr(node_optim *o, double lr);
LIBNODE_API node_status node_optim_get_lr(const node_optim *o, double *lr);

/* Steps taken since create / reset (the t of the bias corrections). */
LIBNODE_API node_status node_optim_get_step(const node_optim *o, int64_t *t);

/* Forget the state: zero the moment vectors and the step count, as a fresh
   optimizer with the same config and the current learning rate.  NODE_EINVAL for NULL. */
LIBNODE_API node_status node_optim_reset(node_optim *o);

/* ---- gradient clipping ------------------------------------------------------------

   torch.nn.utils.clip_grad_norm_ on one flat vector: with ‖g‖₂ the norm before
   clipping, g ← g · max_norm / (‖g‖₂ + 1e-6) when that factor is < 1.  *norm
   (may be NULL) receives ‖g‖₂.  NODE_EINVAL: n == 0, grad NULL, max_norm <= 0 or NaN
   (+Inf is allowed: only measure).  NODE_ENONFINITE when ‖g‖₂ is NaN or Inf: grad is
   left unchanged (the norm is still written) so the caller can skip the step. */
LIBNODE_API node_status node_clip_grad_norm(size_t n, double *grad, double max_norm,
                                         double *norm);

/* ---- learning-rate schedules ----------------------------------------------------- */

typedef enum node_sched_kind {
    NODE_SCHED_CONSTANT,  /* lr(it) = lr0 */
    NODE_SCHED_STEP,      /* lr(it) = lr0 · gamma^floor(it / step_size)  (StepLR) */
    NODE_SCHED_COSINE     /* lr(it) = lr_min + (lr0 - lr_min)(1 + cos(π it / T)) / 2 for
                             it <= T, lr_min after (CosineAnnealingLR, without its
                             restart past T) */
} node_sched_kind;

typedef struct node_sched {
    node_sched_kind kind;
    uint32_t reserved0_;
    double  lr0;          /* the base rate, >= 0 */
    int64_t step_size;    /* STEP: > 0 */
    double  gamma;        /* STEP: >= 0 */
    int64_t T;            /* COSINE: > 0 */
    double  lr_min;       /* COSINE: >= 0 */
    uint64_t reserved_[10];   /* fields of later versions: leave zero */
} node_sched;

/* A constant schedule at lr0 (the other fields: step_size 1, gamma 1, T 1, lr_min 0). */
LIBNODE_API node_sched node_sched_constant(double lr0);

/* *lr = the schedule's rate at iteration it (0-based; it < 0 reads as 0).
   NODE_EINVAL: NULL arguments, an unknown kind, a field out of its range.
   NODE_ENONFINITE: the rate overflows (gamma > 1 over many steps: γ^k beyond the
   largest double); *lr untouched.  lr0 = 0 gives 0 for every it. */
LIBNODE_API node_status node_sched_lr(const node_sched *s, int64_t it, double *lr);

/* node_sched_lr, then node_optim_set_lr with the result; on failure γ is unchanged. */
LIBNODE_API node_status node_optim_schedule(node_optim *o, const node_sched *s, int64_t it);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_TRAIN_H */
