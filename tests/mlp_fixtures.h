/* mlp_fixtures.h — test data shared by the MLP tests (test_mlp.c, test_mlp_act.c,
 * test_mlp_batch.c): every activation, a fixed pseudo-random fill, zeroed arrays.
 */
#ifndef LIBNODE_TEST_MLP_FIXTURES_H
#define LIBNODE_TEST_MLP_FIXTURES_H

#include "test_util.h"

#include <stdlib.h>

static const node_activation all_acts[] = {
    NODE_ACT_IDENTITY, NODE_ACT_TANH, NODE_ACT_RELU, NODE_ACT_SOFTPLUS,
    NODE_ACT_SIGMOID, NODE_ACT_ELU, NODE_ACT_SILU
};
#define NACTS (sizeof all_acts / sizeof all_acts[0])

/* A fixed pseudo-random fill in [-1, 1] (LCG; only for test data). */
static inline void fill(double *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (double)(seed >> 8) / 8388608.0 - 1.0;
    }
}

/* n zeroed doubles (at least one), or the test fails. */
static inline double *alloc_d(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

#endif /* LIBNODE_TEST_MLP_FIXTURES_H */
