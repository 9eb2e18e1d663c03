/* latent_fit.h — the training and test loops of examples/latent_ode.c: the latent ODE
 * on mini-batches solved once on the union of their series' times (cut into
 * sub-batches under a cap), the RNN baselines by backprop through time, predictions
 * for held-out series from their first observations, RMSE, and the cost of the union
 * against solving the series one at a time.
 */
#ifndef EX_LATENT_FIT_H
#define EX_LATENT_FIT_H

#include <libnode.h>

#include "latent_report.h"
#include "rnn_baseline.h"
#include "tsdata.h"

enum { EX_LAT = 0, EX_RNN = 1, EX_RNNDT = 2 };   /* models, the EX_NMODELS of latent_report.h */

/* What the flags of latent_ode set. */
typedef struct ex_settings {
    long iters, rnn_iters, batch, seed, union_cap, union_cost, max_steps;
    long latent_dim, rnn_hidden, dyn_hidden, dec_hidden;
    double lr, obs_std, union_density;
    double lr_min;          /* latent ODE: cosine decay of the rate from lr to lr_min
                               over the iterations; < 0: constant lr */
    double clip;            /* latent ODE: gradient-norm clipping (0: none) */
    double enc_frac;        /* latent ODE training: the encoder sees each series' points
                               in the first enc_frac of its time span (1: all) ... */
    double enc_frac_max;    /* ... or, if larger, a fraction drawn uniformly in
                               [enc_frac, enc_frac_max] per series and iteration */
    long train_extra;       /* spirals: points after each training window kept in the
                               training series (0: none; -1: as many as the window's); the latent ODE's encoder then
                               sees only the window (ex_experiment.train_split) */
    double ema;             /* latent ODE: keep an exponential moving average of the
                               parameters with this decay and end training on it (0: none) */
    double weight_decay;    /* latent ODE: > 0: AdamW with this decoupled weight decay
                               (0: Adam) */
    double enc_drop;        /* latent ODE training: each point the encoder would see is
                               withheld from it with this probability (each series keeps
                               at least one); the likelihood still scores it (0: none) */
    const char *load;       /* latent ODE: start from this model file (NULL: fresh) */
    long refine;            /* latent ODE predictions: K > 0 Adam steps per test series on
                               the mean of q(z0 | x) from the encoder, minimising the
                               -ELBO of the series' observed points (0: the encoder's) */
    double refine_lr;       /* ... their learning rate */
    long val;               /* latent ODE: training series held out for validation (0: none) */
    long val_every;         /* ... whose predictive RMSE is measured every val_every
                               iterations: training ends on the best parameters seen */
    int backprop;
    node_options opt;
    int use[EX_NMODELS];
    const char *out;
} ex_settings;

typedef struct ex_result {
    int done;
    double rmse_obs, rmse_pred, rmse_obs_truth, rmse_pred_truth;
    double ms_per_iter, loss, kl, nfe_f, nfe_b, groups;   /* groups: sub-batches per iteration */
    long iters, skipped;
    long best_iter;         /* validation: the iteration whose parameters were kept */
    double val_rmse;        /* ... and their predictive RMSE on the validation series */
} ex_result;

typedef struct ex_union_cost {
    int done;
    size_t B, batches;
    double mean_union, mean_len;
    double ms_union, ms_single, nfe_f_union, nfe_b_union, nfe_f_single, nfe_b_single;
    double loss_diff, grad_diff;
} ex_union_cost;

typedef struct ex_experiment {
    char tag[16];                  /* "_n30" (spirals) or "" (user data) */
    long n_obs;                    /* 0: user data */
    node_tseries *train, *test, *truth;
    double t0, *split;             /* split: per test series */
    double train_split;            /* > 0: the latent ODE's training encoder sees only the
                                      points at t <= train_split (--train-extra) */
    unsigned char *cw;             /* per test series (spirals) */
    size_t ntest, npts, *off;
    double *pred[EX_NMODELS], *zpath;
    ex_result res[EX_NMODELS];
    ex_union_cost uc;
    struct ex_experiment *val;     /* NULL, or validation series held out of train (their
                                      test, split, off, pred[EX_LAT], zpath; no truth) */
} ex_experiment;

/* Prediction buffers (points of the test series), offsets, t0 = the earliest time of
   train and test.  0, or -1 out of memory. */
int  ex_experiment_setup(const ex_settings *S, ex_experiment *E, size_t latent_dim);
void ex_experiment_free(ex_experiment *E);   /* and zero it */

/* Move the last K series of E->train into V->test (K < their count), as validation
   series split at `split` (per series: their points after it are predicted), and set
   V up for ex_eval_latent and ex_score; E->val = V.  0, or -1 out of memory. */
int ex_hold_out(ex_experiment *E, ex_experiment *V, size_t K, double split, size_t latent_dim);

/* --enc-drop: withhold each point of bt that the encoder sees (bt->enc) from it with
   probability q, from uniforms drawn from rng into u (bt->nt × bt->B); a series whose
   points would all go keeps its last.  bt->mask (what the likelihood scores) is left. */
void ex_drop_encoder_points(ex_batch *bt, node_rng *rng, double q, double *u);

/* Train m (initialised) for S->iters Adam steps on batches of S->batch training series,
   each solved on the union of its times (sub-batches when the union exceeds
   S->union_cap times: gradients weighted by their share of the batch, so the step is
   the one of the whole batch).  Batches whose solve fails with EMAXSTEPS, ESTEPSIZE or
   ENONFINITE are skipped (R->skipped); 20 in a row stop training.  With E->val and
   S->val_every > 0, the parameters (their average with S->ema) are scored on the
   validation series every S->val_every iterations and at the end, and training ends
   on the best (R->best_iter, R->val_rmse).  A live progress line on stderr.  0, or -1 after printing why. */
int ex_train_latent(const ex_settings *S, ex_experiment *E, node_latent *m,
                    node_solver *solver, ex_result *R);

/* Predict every test series from its points at t <= split (posterior mean) at all its
   points: E->pred[EX_LAT], E->zpath.  0, or -1 after printing why. */
int ex_eval_latent(ex_experiment *E, node_latent *m, node_solver *solver,
                   const node_options *opt, size_t latent_dim);

/* Semi-amortized inference for the test series (--refine): for each, starting from the
   encoder's mean of q(z0 | x), `steps` Adam steps at rate lr on that mean minimising the
   -ELBO of the series' points at t <= split alone (z0 = the mean; the KL to the prior
   included), then its prediction at all its points from the refined mean:
   E->pred[EX_LAT] (E->zpath: the refined path).  The model is unchanged on return.
   0, or -1 after printing why. */
int ex_refine_latent(ex_experiment *E, node_latent *m, node_solver *solver,
                     const node_options *opt, long steps, double lr);

/* S->union_cost batches of training series: loss and gradient (eps = NULL) once on the
   union of their times and once series by series (averaged): times, NFE, and the
   largest relative differences of loss and gradient.  0, or -1 after printing why. */
int ex_measure_union(const ex_settings *S, ex_experiment *E, node_latent *m,
                     node_solver *solver, ex_union_cost *U);

/* Train an RNN baseline for S->rnn_iters Adam steps; predict every test series. */
int ex_train_rnn(const ex_settings *S, ex_experiment *E, ex_rnn_model *rm, ex_result *R,
                 const char *name);
int ex_eval_rnn(ex_experiment *E, ex_rnn_model *rm, double *pred);

/* RMSE of model k's predictions against the test values (and the truth, if any):
   over the points at t <= split (the RNNs have no prediction for a series' first
   point), and over the points after. */
void ex_score(ex_experiment *E, int k, ex_result *R);

/* A libnode call that must succeed: on failure say what was being done and the
   library's message, then leave through `fail`. */
#define CHECK(what, msg, call)                                                          \
    do {                                                                                \
        node_status st_ = (call);                                                       \
        if (st_ != NODE_OK) {                                                           \
            const char *m_ = (msg);                                                     \
            fprintf(stderr, "latent_ode: %s: %s\n", (what),                             \
                    m_ && m_[0] ? m_ : node_strerror(st_));                              \
            goto fail;                                                                  \
        }                                                                               \
    } while (0)

static inline size_t zmin(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

#endif /* EX_LATENT_FIT_H */
