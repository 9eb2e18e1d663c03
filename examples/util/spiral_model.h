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

/* The demo's initialisation: every W ~ N(0, std²), every b = 0. */
void ex_mlp_init_normal(node_mlp *m, ex_rng *r, double std);

#endif /* EX_SPIRAL_MODEL_H */
