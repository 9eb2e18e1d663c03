/* libnode/ensemble.h — ensembles: n independent initial-value problems of one system
 * solved in one call, each sample with its own initial state, its own output times,
 * its own step size, error control and status, and gradients (exact backprop) with the
 * parameter gradient summed over the samples.  Include <libnode.h> rather than this file.
 *
 * Unlike a batch solved as one big ODE (one shared step, one error norm over all
 * samples), every sample takes the steps its own solution needs: an easy sample does
 * not pay for the hardest one, and an outlier is not diluted in a common RMS norm.
 * Samples advance in lock-step where their steps allow: at each stage the live samples
 * of a group are evaluated in one batched call of the dynamics (an MLP still sees a
 * batch), each at its own time.  A sample that fails stops alone, with its own status
 * and message; the others go on.
 *
 * Threads: samples are split into ceil(n / group) groups of at most
 * node_ensemble_options.group samples, interleaved (group i holds samples i, i + ngroups,
 * i + 2 ngroups, ...: a batch sorted by difficulty still gives groups of equal work),
 * each group stepped in lock-step on its own; with OpenMP (the LIBNODE_OPENMP build
 * option) groups run on several threads, handed out one at a time as threads free up.  Every result is the same bits for any number
 * of threads: a sample's arithmetic never depends on the other samples (given
 * dynamics whose rows do not depend on each other), and the parameter gradient is
 * summed group by group in group order.  One node_ensemble object is used by one
 * thread at a time.
 */
#ifndef LIBNODE_ENSEMBLE_H
#define LIBNODE_ENSEMBLE_H

#include "core.h"
#include "mlp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Batched dynamics: n rows at once, each at its own time. */
typedef struct node_ensemble_system {
    size_t dim;       /* length of one sample's state */
    size_t nparams;   /* length of the parameter vector θ gradients are taken for */
    void  *ctx;       /* passed back to the callbacks */

    /* dydt[r] = f(t[r], y[r]; θ) for the n rows (y, dydt n × dim row-major).  worker
       (0 .. workers-1) says whose scratch to use: calls with distinct worker indices may
       run at once, calls with the same one never do.  Return 0, or non-zero for a
       failure: the ensemble then evaluates the rows one at a time (n = 1) to find the
       failing samples, which stop with NODE_ECALLBACK; the others go on. */
    int (*f)(void *ctx, size_t worker, size_t n, const double *t, const double *y,
             double *dydt);

    /* Vector-Jacobian products for the rows a[r] (n × dim):
         dydt[r]  = f(t[r], y[r])                 (skip if NULL)
         vjp_y[r] = a[r]ᵀ ∂f/∂y at row r          (n × dim; always written)
         vjp_p    = Σ_r a[r]ᵀ ∂f/∂θ at row r       (nparams, SUMMED over the rows; skip
                                                    if NULL)
       Outputs are overwritten.  vjp_p summed is what a batched network computes at
       the price of one product (the weight gradient of a batch), and it is all exact
       backprop needs: the parameter part of the reverse pass never feeds back into
       the states, so only its total is wanted.  NULL if no gradient is asked for. */
    int (*vjp)(void *ctx, size_t worker, size_t n, const double *t, const double *y,
               const double *a, double *dydt, double *vjp_y, double *vjp_p);

    size_t max_rows;  /* the most rows one call may get (0 = no limit): larger groups
                         are evaluated in several calls */
    size_t workers;   /* worker indices the callbacks accept (0 = 1): at most this
                         many threads run at once */

    /* Fields of later versions: leave zero (a call that finds a non-zero value fails
       with NODE_EINVAL). */
    uint64_t reserved_[9];
} node_ensemble_system;

/* How an ensemble solve is organised (zero = the default everywhere). */
typedef struct node_ensemble_options {
    int32_t  per_sample_ts;  /* 0: one ts (nt entries) shared by all samples;
                                1: ts is n × nt, row j sample j's output times (each
                                row strictly increasing or strictly decreasing) */
    int32_t  threads;        /* OpenMP threads over the groups: 0 = OpenMP's default,
                                capped by sys->workers; 1 without OpenMP */
    uint64_t group;          /* samples per lock-step group (0 = 256, fewer for a
                                large state: as many as keep a group's forward buffers,
                                (stages + 6) x dim doubles a sample, within 2 MiB, and
                                at least 64; never dependent on the thread count) */
    uint64_t reserved_[14];  /* fields of later versions: leave zero */
} node_ensemble_options;

/* An ensemble solver: keeps its workspaces (and backprop's tapes) across calls, so
   that once it has served the largest problem it allocates nothing more. */
typedef struct node_ensemble node_ensemble;

/* Create an empty ensemble solver.  NODE_EINVAL if out is NULL, NODE_ENOMEM. */
LIBNODE_API node_status node_ensemble_create(node_ensemble **out);
LIBNODE_API void        node_ensemble_free(node_ensemble *e);    /* NULL is fine */

/* Solve the n samples: sample j starts from row j of y0 (n × dim) at its ts[0] and
   writes y(ts[i]) to ys[j] (n × nt × dim: sample j's rows are the nt × dim block j, as
   node_odeint would write them).  opt (NULL = defaults) applies to every sample, as
   node_odeint reads it (each sample has the whole max_steps budget).  Every sample
   steps exactly as node_odeint would step it alone (the same controller, first step,
   error norm over the sample's own dim elements, dense output, failure rules), so with
   dynamics whose rows do not depend on the batch the results equal node_odeint's bit
   for bit (fixed-step methods recompute f at the start of each step instead of
   reusing the dense stage: the same values, more evaluations).
   stats (may be NULL) has n entries: sample j's as node_odeint's stats (nfe counts the
   rows evaluated for it).  total (may be NULL): the counts summed over the samples,
   t_reached NaN, rows_done the sum, and status, callback_rc and message of the first
   failing sample ("sample 3: f returned 7 at t = 0.25"), or of refused arguments.
   Returns NODE_OK if every sample succeeded, else the status of the first failing
   sample (its index the lowest); samples that succeeded have their rows all valid.
   NODE_EINVAL (nothing solved) for NULL arguments, n = 0, bad options, bad ts (the
   message names the sample and entry), a non-finite y0 entry. */
LIBNODE_API node_status node_ensemble_odeint(node_ensemble *e, const node_ensemble_system *sys,
                                             size_t n, const double *y0, const double *ts,
                                             size_t nt, double *ys, const node_options *opt,
                                             const node_ensemble_options *eopt,
                                             node_stats *stats, node_stats *total);

/* Exact backprop through every sample's own steps (node_odeint_backprop per sample):
   re-runs the forward solves from the rows ys[j][0], records them, and reverses them in
   lock-step.  dLdys has ys's shape (n × nt × dim); writes dLdy0 (n × dim) and dLdp
   (nparams, may be NULL: summed over the samples that succeeded).  sys->vjp is
   required.  No dL/dts, no checkpoints (opt->checkpoints must be 0): memory
   O(steps × (stages + 1) × dim) per group.  stats / total as for node_ensemble_odeint
   (nfe counts the forward rows and the vjp rows).  A sample that fails (in its
   forward re-run or its reverse pass) gets its status and message and a dLdy0 row of
   NaN, and is left out of dLdp; the others' results are intact. */
LIBNODE_API node_status node_ensemble_backprop(node_ensemble *e, const node_ensemble_system *sys,
                                               size_t n, const double *ts, size_t nt,
                                               const double *ys, const double *dLdys,
                                               double *dLdy0, double *dLdp,
                                               const node_options *opt,
                                               const node_ensemble_options *eopt,
                                               node_stats *stats, node_stats *total);

/* The adjoint sensitivity method per sample (node_odeint_adjoint with opt->seminorm
   set, whatever it says): every sample integrates [z, a] backward from its ts[nt-1]
   to its ts[0], one interval between output times after the other, z reset to ys and
   dLdys added to a at each output time; the samples of a group step in lock-step, each
   stage one batched vjp.  Error norm: the larger of the RMS norms of z and a, with
   opt->adjoint_rtol/atol (0 = the forward's); an adaptive method picks the first step
   of the first interval and starts each later one with the step its controller had
   planned; opt->max_steps bounds a sample's backward steps in all.  dL/dθ never feeds
   back into z or a, so it is not integrated with them: after each interval it is
   summed over every accepted step's stages, h Σ b_i (-a_iᵀ∂f/∂θ), by batched vjp calls
   with a_i scaled by -h b_i (what integrating it under the seminorm gives, for about
   5/7 more vjp rows with DOPRI5).  Arguments, outputs and failures as for
   node_ensemble_backprop (checkpoints ignored; every entry of ys must be finite).
   Memory: O(group × (dim + steps of one interval × stages × dim)). */
LIBNODE_API node_status node_ensemble_adjoint(node_ensemble *e, const node_ensemble_system *sys,
                                              size_t n, const double *ts, size_t nt,
                                              const double *ys, const double *dLdys,
                                              double *dLdy0, double *dLdp,
                                              const node_options *opt,
                                              const node_ensemble_options *eopt,
                                              node_stats *stats, node_stats *total);

/* ---- adapters --------------------------------------------------------------------- */

/* Any node_system as batched dynamics: f and vjp call sys's row by row (vjp_p summed
   in row order).  *out keeps the pointer sys (which must outlive it) and holds
   scratch for `workers` threads (0 = 1), allocated here: free it with
   node_ensemble_system_free.  sys's callbacks are then called from up to `workers`
   threads at once.  NODE_EINVAL, NODE_ENOMEM. */
LIBNODE_API node_status node_ensemble_system_wrap(const node_system *sys, size_t workers,
                                                  node_ensemble_system *out);
/* Free what node_ensemble_system_wrap allocated; *sys is zeroed.  NULL is fine.
   (Systems from node_mlp_ensemble belong to their model.) */
LIBNODE_API void node_ensemble_system_free(node_ensemble_system *sys);

/* An MLP as batched dynamics dy/dt = MLP(t, y) (sizes[0] == sizes[nlayers]), each row
   with its own time in the time column (time_input).  vjp_p is summed over the rows.
   Workspaces for `workers` threads (0 = 1) and up to max_rows rows a call (0 = 256;
   out->max_rows tells the ensemble), allocated here (never in f / vjp) and owned by m:
   the system is valid until node_mlp_free(m).  Make it once, outside training loops.
   Solving only reads m, so up to `workers` threads evaluate it at once.  NODE_EINVAL
   (NULL, a model whose output width differs from its input's), NODE_ENOMEM. */
LIBNODE_API node_status node_mlp_ensemble(node_mlp *m, size_t max_rows, size_t workers,
                                          node_ensemble_system *out);

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_ENSEMBLE_H */
