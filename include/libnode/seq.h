/* libnode/seq.h — irregularly-sampled time series and the models of Chen et al.
 * (2018), Section 5: a seeded random generator, the Gaussian likelihood and the
 * diagonal-Gaussian KL with their gradients, a recurrent cell with backprop through
 * time over a batch, time-series data sets (long-format CSV, batches on the union of
 * their times), and the latent ODE — a variational autoencoder whose latent state
 * follows a neural ODE.  Include <libnode.h> rather than this file.
 *
 * Layouts: a batch of B series on nt shared times is time-major — values are
 * nt × B × D (row i*B + b is series b at ts[i]), masks nt × B (1: series b is
 * observed at ts[i]).  This is the state layout of a batched solve (B rows), so the
 * solver's output rows line up with the observations.
 *
 * Threads: as everywhere in libnode (core.h): one object (node_rng, node_rnn,
 * node_tseries, node_latent) is used by one thread at a time; distinct objects from
 * distinct threads at once.
 */
#ifndef LIBNODE_SEQ_H
#define LIBNODE_SEQ_H

#include "core.h"
#include "mlp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- random numbers ----------------------------------------------------------

   xoshiro256** (Blackman & Vigna 2018) seeded through SplitMix64: the same stream
   for a seed on every platform.  Normals by the Marsaglia polar method (one spare
   kept in the state).  The struct is the whole generator: copy it to fork a stream. */
typedef struct node_rng {
    uint64_t s[4];
    double   spare;       /* the polar method's second normal, when has_spare */
    uint32_t has_spare;
    uint32_t reserved0_;
    uint64_t reserved_[2];
} node_rng;

/* Seed r (any seed, 0 included).  NODE_EINVAL for a NULL r. */
LIBNODE_API node_status node_rng_seed(node_rng *r, uint64_t seed);
/* n draws of U[0, 1) (53-bit), of N(0, 1), and a uniformly random permutation of
   0 .. n-1 (Fisher–Yates; idx[0 .. k-1] is then a sample of k without replacement).
   NODE_EINVAL for a NULL r, a NULL out/idx with n > 0, or non-zero reserved fields
   in r (node_rng_seed zeroes them); a refused call draws nothing. */
LIBNODE_API node_status node_rng_uniform(node_rng *r, size_t n, double *out);
LIBNODE_API node_status node_rng_normal(node_rng *r, size_t n, double *out);
LIBNODE_API node_status node_rng_permutation(node_rng *r, size_t n, size_t *idx);

/* ---- likelihood and KL -------------------------------------------------------- */

/* Negative log-likelihood of x under independent Gaussians, summed over entries:
     nll = Σ_i m_i [ (x_i − μ_i)² / (2 σ_i²) + log σ_i + ½ log 2π ],  σ_i² = exp(v_i)
   v_i = logvar[i], or the constant logvar_const when logvar is NULL.  mask (n
   entries, NULL = all observed) leaves entries with m_i = 0 out (gradient 0).
   Gradients (each may be NULL): dmu = ∂nll/∂μ, dlogvar = ∂nll/∂v (needs logvar).
   NODE_EINVAL (err says which): NULL x, mu or nll (even with n = 0); a NaN/Inf x, μ
   or v at an observed entry; dlogvar without logvar; non-finite logvar_const (when
   logvar is NULL).  NODE_ENONFINITE: the sum, or a gradient asked for, overflows.
   Nothing is written on failure. */
LIBNODE_API node_status node_gaussian_nll(size_t n, const double *x, const double *mu,
                                          const double *logvar, double logvar_const,
                                          const unsigned char *mask, double *nll,
                                          double *dmu, double *dlogvar, node_error *err);

/* KL(N(μ, diag exp(v)) ‖ N(0, I)) = ½ Σ_i (exp(v_i) + μ_i² − 1 − v_i), with
   dmu = μ, dlogvar = ½ (exp(v) − 1) (each may be NULL).  NODE_EINVAL for NULL
   mu/logvar/kl or non-finite inputs; NODE_ENONFINITE when it overflows; nothing
   written on failure.  Accurate as σ² → 1 (e^v − 1 − v by its series for |v| < ½). */
LIBNODE_API node_status node_kl_normal(size_t n, const double *mu, const double *logvar,
                                       double *kl, double *dmu, double *dlogvar,
                                       node_error *err);

/* ---- recurrent cells ----------------------------------------------------------

   A cell maps (x_k, h_k) to h_{k+1}.  Kinds are values of node_cell_kind (more
   kinds, e.g. a GRU, take new values; nothing depends on the order).  A run over a
   sequence keeps only the hidden states, so that any kind can recompute what its
   backward pass needs from (x_k, h_k). */
typedef enum node_cell_kind {
    NODE_CELL_TANH = 1,   /* Elman: h' = tanh(W_x x + W_h h + b) */
    NODE_CELL_GRU = 2     /* gated recurrent unit (Cho et al. 2014), torch.nn.GRUCell:
                             r = σ(W_r [x; h] + b_r), u = σ(W_u [x; h] + b_u),
                             n = tanh(W_xn x + b_xn + r ⊙ (W_hn h + b_hn)),
                             h' = (1 − u) ⊙ n + u ⊙ h */
} node_cell_kind;

typedef struct node_rnn node_rnn;   /* opaque: kind, sizes, parameters, scratch */

/* A cell with nin inputs and nhidden hidden units; parameters zero (node_rnn_init).
   NODE_EINVAL (err says which): NULL out, a zero size, an unknown kind; NODE_ENOMEM. */
LIBNODE_API node_status node_rnn_create(node_rnn **out, node_cell_kind kind, size_t nin,
                                        size_t nhidden, node_error *err);
LIBNODE_API void        node_rnn_free(node_rnn *r);                 /* NULL is fine */
LIBNODE_API size_t      node_rnn_nparams(const node_rnn *r);
LIBNODE_API size_t      node_rnn_nin(const node_rnn *r);
LIBNODE_API size_t      node_rnn_nhidden(const node_rnn *r);
/* Flat parameters, owned by r.  Tanh cell: [W (nhidden × (nin + nhidden), row-major,
   input columns first), b (nhidden)] — torch.nn.RNNCell's W_ih | W_hh side by side,
   with one bias.  GRU cell: [W_g (2·nhidden × (nin + nhidden), row-major, input
   columns first, the r rows then the u rows), b_g (2·nhidden), W_xn (nhidden × nin),
   b_xn (nhidden), W_hn (nhidden × nhidden), b_hn (nhidden)] — torch.nn.GRUCell's
   weights, with its two biases of the r and u gates summed into one;
   nhidden·(3·(nin + nhidden) + 4) parameters. */
LIBNODE_API double     *node_rnn_params(node_rnn *r);
/* PyTorch's default: every parameter ~ U(±1/√nhidden). */
LIBNODE_API void        node_rnn_init(node_rnn *r, uint64_t seed);

/* Run nsteps steps over a batch: xs is nsteps × batch × nin, hs is written
   (nsteps + 1) × batch × nhidden with hs[0] = h0 (h0 NULL: zeros).  mask
   (nsteps × batch, NULL = all 1): where mask[k·batch + b] = 0, row b does not step
   (h_{k+1} = h_k) and its x_k is not read.  Allocation-free once the cell has run
   (scratch kept by r).  NODE_EINVAL for NULL pointers or zero sizes; NODE_ENOMEM
   (nothing written); NODE_ENONFINITE when a NaN or Inf in h0, a read x or the
   parameters reached hs. */
LIBNODE_API node_status node_rnn_forward(node_rnn *r, size_t nsteps, size_t batch,
                                         const double *xs, const unsigned char *mask,
                                         const double *h0, double *hs);
/* Backprop through time of a run made by node_rnn_forward with the same xs, mask and
   parameters: dhs ((nsteps + 1) × batch × nhidden) is ∂L/∂hs; writes ∂L/∂h0 (dh0,
   batch × nhidden), ∂L/∂xs (dxs, nsteps × batch × nin, 0 where masked) and
   ∂L/∂θ summed over the batch (dparams, nparams); each may be NULL; outputs are
   overwritten.  Allocation-free once a batch this large has been seen.  NODE_EINVAL,
   NODE_ENOMEM (nothing written), NODE_ENONFINITE (a NaN/Inf gradient: dh0 and dparams
   are left as they were, dxs may have been written). */
LIBNODE_API node_status node_rnn_backward(node_rnn *r, size_t nsteps, size_t batch,
                                          const double *xs, const unsigned char *mask,
                                          const double *hs, const double *dhs,
                                          double *dh0, double *dxs, double *dparams);

/* ---- time-series data sets ------------------------------------------------------

   A set of series of one dimension D, each with its own strictly increasing times and
   D finite values per time; series keep the order they were added in. */
typedef struct node_tseries node_tseries;

LIBNODE_API node_status node_tseries_create(node_tseries **out, size_t dim, node_error *err);
LIBNODE_API void        node_tseries_free(node_tseries *d);          /* NULL is fine */
/* Append a copy of one series (n >= 1 observations; t strictly increasing and
   finite; x n × dim, finite).  NODE_EINVAL (err says which index and why), ENOMEM. */
LIBNODE_API node_status node_tseries_add(node_tseries *d, int64_t id, size_t n,
                                         const double *t, const double *x, node_error *err);
LIBNODE_API size_t      node_tseries_count(const node_tseries *d);
LIBNODE_API size_t      node_tseries_dim(const node_tseries *d);
/* Series i (0-based): its id, length and arrays (owned by d; t n entries, x n × dim);
   each output may be NULL.  NODE_EINVAL if d is NULL or i is out of range. */
LIBNODE_API node_status node_tseries_get(const node_tseries *d, size_t i, int64_t *id,
                                         size_t *n, const double **t, const double **x);

/* Read a long-format CSV: a header line "series,t,x1,...,xD" (D >= 1; the first two
   names exactly "series" and "t", the others free), then one row per observation: an
   integer series id (decimal, 64-bit), the time, D values (strtod's syntax: the C
   locale's decimal point).  Fields may have blanks around them; blank lines, CRLF
   endings and a UTF-8 byte-order mark are accepted.  Rows of one series are
   contiguous or not; times increase within each series (in file order); every series
   has >= 2 observations; values are finite.  Series are numbered in the order of
   their first row.  Any malformed file is NODE_EFORMAT with "path:line: what" in err
   (a bad header, a wrong number of columns, a non-number, NaN/Inf, a non-integer
   series id, non-increasing time, a one-point series, an empty file; the earliest
   line at fault is named); an unreadable path NODE_EIO with the system's reason.
   *out is written only on success. */
LIBNODE_API node_status node_tseries_read_csv(node_tseries **out, const char *path,
                                              node_error *err);

/* The batch of series sel[0 .. nsel-1] on the sorted union of their times: *nt
   distinct times into ts (ascending), values into xs (nt × nsel × dim, 0 where not
   observed) and mask (nt × nsel).  cap is the room in ts (and nt·nsel·dim in xs,
   nt·nsel in mask); if the union needs more, NODE_EINVAL with *nt = the size needed
   and nothing else written (call with cap 0 to ask; ts, xs and mask may be NULL
   when cap is 0).  A series may be selected more than once.  Allocation-free; d is
   only read, so threads may build batches of one set at once.  NODE_EINVAL also for
   NULL d, sel or nt, nsel = 0, sel[i] out of range (nothing written). */
LIBNODE_API node_status node_tseries_union(const node_tseries *d, size_t nsel,
                                           const size_t *sel, size_t cap, double *ts,
                                           size_t *nt, double *xs, unsigned char *mask,
                                           node_error *err);

/* ---- the latent ODE (Chen et al. 2018, Section 5 and Appendix E) -------------------

   Recognition: a node_rnn (cfg.rnn_cell: tanh or GRU) run backwards in time over a
   series' observations, input
   [x_i, t_next − t_i] (0 for the last), from h = 0; its final state goes through a
   linear layer to the mean and log-variance of q(z0 | x) (latent_dim each).
   z0 = μ + σ ⊙ ε.  Dynamics dz/dt = f(z), an MLP latent → dyn_hidden (elu) →
   dyn_hidden (elu) → latent, solved from ts[0] through every time of the batch;
   decoder x = g(z), an MLP latent → dec_hidden (relu) → obs_dim.  Per series:
     −ELBO = Σ_{observed i} −log N(x_i | g(z(t_i)), σ_obs² I) + KL(q(z0) ‖ N(0, I)),
   and the loss of a batch is the mean over its series. */
typedef struct node_latent_config {
    uint64_t obs_dim;       /* D, >= 1 (required) */
    uint64_t latent_dim;    /* 4 (the paper's); 0 = 4 */
    uint64_t rnn_hidden;    /* 25; 0 = 25 */
    uint64_t dyn_hidden;    /* 20; 0 = 20 */
    uint64_t dec_hidden;    /* 20; 0 = 20 */
    double   obs_std;       /* σ_obs of the likelihood, 0.3; > 0, or 0 = 0.3 */
    uint64_t rnn_cell;      /* the encoder's cell, a node_cell_kind: NODE_CELL_TANH (the
                               paper's) or NODE_CELL_GRU; 0 = NODE_CELL_TANH */
    uint64_t reserved_[9];  /* leave zero */
} node_latent_config;

/* The paper's sizes for obs_dim D.  NODE_EINVAL for a NULL cfg or D == 0. */
LIBNODE_API node_status node_latent_defaults(size_t obs_dim, node_latent_config *cfg);

typedef struct node_latent node_latent;

/* A model of cfg's sizes (zero fields: the defaults above), parameters zero
   (node_latent_init).  *out is written only on success.  NODE_EINVAL (err says
   which): NULL out or cfg, obs_dim 0, obs_std negative or not finite, rnn_cell not
   0, NODE_CELL_TANH or NODE_CELL_GRU, non-zero reserved fields; NODE_ENOMEM. */
LIBNODE_API node_status node_latent_create(node_latent **out, const node_latent_config *cfg,
                                           node_error *err);
LIBNODE_API void        node_latent_free(node_latent *m);           /* NULL is fine */
LIBNODE_API size_t      node_latent_nparams(const node_latent *m);
/* All parameters, one flat vector owned by m: [cell, encoder output layer, f, g], each
   in its own layout (node_rnn_params; node_mlp_params of an MLP of one identity layer
   rnn_hidden → 2·latent_dim, whose outputs are [μ, log σ²]; of f; of g).  The live
   vector: an optimizer updates it in place, and every call reads it. */
LIBNODE_API double     *node_latent_params(node_latent *m);
LIBNODE_API node_status node_latent_config_get(const node_latent *m, node_latent_config *cfg);
/* PyTorch's default initialisation of every part. */
LIBNODE_API void        node_latent_init(node_latent *m, uint64_t seed);

/* How gradients go through the solve. */
typedef enum node_grad_method {
    NODE_GRAD_ADJOINT = 0,     /* node_odeint_adjoint: memory flat in solver steps */
    NODE_GRAD_BACKPROP = 1     /* node_odeint_backprop: exact gradient of the solve */
} node_grad_method;

/* What node_latent_loss measured. */
typedef struct node_latent_terms {
    double  loss;             /* mean −ELBO over the batch */
    double  nll;              /* mean reconstruction term */
    double  kl;               /* mean KL term */
    int64_t nfe_forward;      /* f evaluations of the forward solve */
    int64_t nfe_backward;     /* vjp (adjoint) or f+vjp (backprop) evaluations */
    uint64_t reserved_[4];
} node_latent_terms;

/* −ELBO of a batch of B series on nt shared times ts (strictly increasing; the
   latent state starts at ts[0]) and its gradient.  xs (nt × B × D) is read where
   enc_mask (encoder input) or obs_mask (likelihood) is 1; each series needs one
   encoder observation.  eps (B × latent_dim) is the reparameterisation noise (NULL:
   z0 = μ).  grad (nparams, may be NULL for the loss alone) is overwritten.  s is the
   solver (reused across calls: allocation-free after the first), opt its options
   (NULL: defaults).  stats (may be NULL) reports the forward solve, or the failure.
   terms (required) is written only on success.  Workspaces are sized by B and nt and
   kept in m: a training loop allocates nothing after its first call at its largest
   (B, nt) (exact backprop's tape, kept in s, grows if a later solve takes more steps).
   NODE_EINVAL (err says which), ENOMEM, ENONFINITE (the encoder, decoder, loss or
   gradient overflows), and every status of the solve. */
LIBNODE_API node_status node_latent_loss(node_latent *m, node_solver *s, size_t B, size_t nt,
                                         const double *ts, const double *xs,
                                         const unsigned char *enc_mask,
                                         const unsigned char *obs_mask, const double *eps,
                                         const node_options *opt, node_grad_method how,
                                         node_latent_terms *terms, double *grad,
                                         node_stats *stats, node_error *err);

/* Encode each series from its observations where enc_mask is 1, then decode at every
   time of ts: xs_pred (nt × B × D) and, if z is not NULL, the latent path
   (nt × B × latent_dim).  eps as above (NULL: the posterior mean). */
LIBNODE_API node_status node_latent_predict(node_latent *m, node_solver *s, size_t B,
                                            size_t nt, const double *ts, const double *xs,
                                            const unsigned char *enc_mask, const double *eps,
                                            const node_options *opt, double *xs_pred,
                                            double *z, node_stats *stats, node_error *err);

/* Model files: the config and parameters, saved and loaded with the guarantees of
   node_mlp_save / node_mlp_load (a failed save leaves the old file intact; a
   malformed file is NODE_EFORMAT with a message). */
LIBNODE_API node_status node_latent_save(const node_latent *m, const char *path, node_error *err);
LIBNODE_API node_status node_latent_load(node_latent **out, const char *path, node_error *err);

#ifdef __cplusplus
}
#endif

#endif /* LIBNODE_SEQ_H */
