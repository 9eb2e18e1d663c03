/* spiral_model.h — the problem of torchdiffeq's ode_demo, shared by examples/spiral.c
 * and bench/bench_train.c: the true dynamics dy/dt = (y³) A (y a row vector) and the
 * model dy/dt = MLP(y³), a hand-written node_system over node_mlp_forward / node_mlp_vjp
 * for `batch` rows of 2.
 */
#ifndef EX_SPIRAL_MODEL_H
#define EX_SPIRAL_MODEL_H

#include <libnode.h>

#include "rng.h"

/* dy/dt = (y³) A with A = [[-0.1, 2], [-2, -0.1]]; dim 2, no parameters. */
int ex_spiral_true_f(void *ctx, double t, const double *y, double *dydt);

/* The demo's data: N >= 2 times evenly spaced on [0, 25] into t, and the true
   trajectory from y0 = (2, 0) at those times into ytrue (N × 2), solved tightly
   (DOP853, rtol = atol = 1e-12).  The solver's status; stats (may be NULL) as
   node_odeint's. */
node_status ex_spiral_data(size_t N, double *t, double *ytrue, node_stats *stats);

/* A batch of B windows of T consecutive points: window i starts at data point
   pick[i].  by (T × B × 2, the layout of a solve's ys) gets the targets; y0 (B × 2,
   may be NULL) the windows' first points. */
void ex_spiral_windows(const double *ytrue, size_t T, size_t B, const size_t *pick,
                       double *by, double *y0);

/* The model's context: the network and two batch × 2 buffers (y³ and aᵀ∂MLP/∂u). */
typedef struct ex_cubic_model {
    node_mlp *mlp;
    size_t batch;
    double *u, *gu;
} ex_cubic_model;

/* Allocate c's buffers for `batch` rows and describe the system in *sys (dim 2·batch,
   nparams of m); valid while c and m live.  -1 if an allocation failed (call
   ex_cubic_free all the same). */
int  ex_cubic_init(ex_cubic_model *c, node_mlp *m, size_t batch, node_system *sys);
void ex_cubic_free(ex_cubic_model *c);

/* The same model as batched dynamics for the ensemble solver (ensemble.h): rows of 2,
   up to c->batch rows a call, one worker (threads = 1); valid while c and its MLP live. */
void ex_cubic_ensemble(ex_cubic_model *c, node_ensemble_system *es);

/* The demo's initialisation: every W ~ N(0, std²), every b = 0. */
void ex_mlp_init_normal(node_mlp *m, ex_rng *r, double std);

#endif /* EX_SPIRAL_MODEL_H */
