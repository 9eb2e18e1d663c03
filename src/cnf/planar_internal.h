/* planar_internal.h — the batched kernel of the planar CNF (planar.c), compiled once
 * per instruction-set level (planar_kern.c; internal.h).  Never installed.
 */
#ifndef LIBNODE_PLANAR_INTERNAL_H
#define LIBNODE_PLANAR_INTERNAL_H

#include "internal.h"

/* Rows of the batch go NODE__PLANAR_CB at a time, as the columns of one block: every
   loop of the kernel runs over them (a multiple of 8). */
#ifndef NODE__PLANAR_CB
#  define NODE__PLANAR_CB 64
#endif

/* The units at one time t: f(z) = (1/M) Σ_m u_m tanh(w_mᵀz + b_m). */
typedef struct node__planar_units {
    size_t D, M;
    const double *W;     /* M × D: w_m */
    const double *B;     /* M: b_m */
    const double *u;     /* M × D: the gated u_m */
    const double *cu;    /* M: u_mᵀw_m (the exact trace's weights) */
    double *scratch;     /* node__planar_scratch_len(D, M) doubles */
} node__planar_units;

/* The scratch of one kernel call: 5 D-row and 9 one-row blocks, and 2 (D + 1) M
   sums of 8 lanes. */
static inline size_t node__planar_scratch_len(size_t D, size_t M)
{
    return NODE__PLANAR_CB * (5 * D + 9) + 16 * (D + 1) * M;
}

/* For `batch` rows z (batch × D), eps (batch × D or NULL: exact trace):
     dzdt = f(z), div = tr ∂f/∂z or εᵀ∂f/∂z ε    (each skipped if NULL);
   with a (batch × D; NULL: no product), b (batch; NULL = 0) and vjp_z (batch × D):
     vjp_z[r] = a_rᵀ ∂f_r/∂z_r + b_r ∂div_r/∂z_r,
   and with gW (not NULL; then gu, gB too) the sums over the rows of the same product
   with respect to W (gW, M × D), the gated u (gu, M × D) and B (gB, M), overwritten.
   tanh(w_mᵀz + b_m) is computed once per row and unit for all of these. */
typedef void (*node__planar_fn)(const node__planar_units *k, size_t batch, const double *z,
                                const double *eps, const double *a, const double *b,
                                double *dzdt, double *div, double *vjp_z, double *gW,
                                double *gu, double *gB);

typedef struct node__planar_kernels {
    node__planar_fn pass;
} node__planar_kernels;

extern NODE__HIDDEN const node__planar_kernels node__planar_kernels_generic;
extern NODE__HIDDEN const node__planar_kernels node__planar_kernels_avx2;
extern NODE__HIDDEN const node__planar_kernels node__planar_kernels_avx512;

#endif /* LIBNODE_PLANAR_INTERNAL_H */
