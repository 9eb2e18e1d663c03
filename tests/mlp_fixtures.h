/* mlp_fixtures.h — test data shared by the MLP tests (test_mlp.c, test_mlp_act.c,
 * test_mlp_batch.c, test_threads.c): every activation (from the registry, so that a
 * new one is tested everywhere), values that are not activations, a fixed
 * pseudo-random fill, zeroed arrays.
 */
#ifndef LIBNODE_TEST_MLP_FIXTURES_H
#define LIBNODE_TEST_MLP_FIXTURES_H

#include "test_util.h"
#include "nn/nn_internal.h"

#include <stdlib.h>

#define FIXTURE_ACT(value, name, kernel, vec, unit) value,
static const node_activation all_acts[] = { NODE__ACTIVATIONS(FIXTURE_ACT) };
#define NACTS (sizeof all_acts / sizeof all_acts[0])

/* Values that no registry entry has (the registry test checks that): just past the
   largest value, negative, and large, as a node_activation and as a file's u32. */
static inline size_t non_activations(int64_t *out, size_t max)
{
    int64_t top = 0;
    for (size_t i = 0; i < NODE__NACT; i++)
        if ((int64_t)node__act_registry[i].value > top)
            top = (int64_t)node__act_registry[i].value;
    const int64_t cand[] = { top + 1, top + 2, 99, 255, 65536, 0x7FFFFFFF, -1 };
    size_t n = 0;
    for (size_t i = 0; i < sizeof cand / sizeof cand[0] && n < max; i++)
        if (node__act_index(cand[i]) == NODE__NACT)
            out[n++] = cand[i];
    return n;
}

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
