/* latent.h — the latent ODE's private structure, shared by src/seq/latent.c (the
 * model: config, create, parameters), latent_loss.c (−ELBO, gradient, predict) and
 * latent_io.c (its files).  Never installed.
 */
#ifndef LIBNODE_SEQ_LATENT_H
#define LIBNODE_SEQ_LATENT_H

#include "internal.h"

struct node_latent {
    node_latent_config cfg;     /* resolved: no field left at 0 */
    size_t D, L, H, Hf, Hg;     /* obs_dim, latent_dim, rnn_hidden, dyn_hidden, dec_hidden */
    node_rnn *rnn;              /* recognition cell: [x, gap] → h */
    node_mlp *enc;              /* h → [μ, log σ²], one identity layer */
    node_mlp *f;                /* z → dz/dt: L → Hf (elu) → Hf (elu) → L */
    node_mlp *g;                /* z → x: L → Hg (relu) → D */
    /* θ = [cell | encoder output layer | f | g]: the live vector; the sub-objects get
       a copy at the start of every call that evaluates them. */
    double *theta;
    size_t np, off_enc, off_f, off_g;
    /* The dynamics as one batched system of B rows: f's workspace (for batches up to
       fws_batch), the batch of the solve in progress, and the status of a failed
       evaluation inside a callback. */
    node_mlp_ws *fws;
    size_t fws_batch;
    size_t batch;
    node_status cb_status;
    /* ∂L/∂hs of backprop through time, (nt+1) × B × rnn_hidden: zero between calls. */
    double *dhs;
    size_t dhs_cap;
    /* Scratch of a call (latent.c: layout), grown to the largest (B, nt) seen. */
    unsigned char *arena;
    size_t arena_cap;
};

/* Check cfg (non-NULL) and resolve its zero fields to the paper's values into *out;
   *np receives the length of θ.  NODE_EINVAL (obs_dim 0, obs_std negative or not
   finite, non-zero reserved fields), NODE_ENOMEM (more parameters than memory can
   hold), the reason in msg (may be NULL). */
NODE__HIDDEN node_status node__latent_resolve(const node_latent_config *cfg,
                                              node_latent_config *out, size_t *np,
                                              char *msg);

/* The parameter count of a resolved config, in 64 bits (saturated at UINT64_MAX):
   what a file's header implies, before anything is allocated. */
NODE__HIDDEN uint64_t node__latent_count(const node_latent_config *cfg);

/* Copy θ into the parts (θ is the truth: an optimizer writes it between calls; every
   call that evaluates the parts starts with this). */
NODE__HIDDEN void node__latent_params_in(node_latent *m);

/* Parse a latent ODE file held in memory (len bytes): the loader's tests. */
NODE__HIDDEN node_status node__latent_load_mem(const unsigned char *buf, size_t len,
                                               node_latent **out, char *msg);

#endif /* LIBNODE_SEQ_LATENT_H */
