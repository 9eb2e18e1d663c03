/* test_mlp_batch.c — large batches, which the MLP runs through the network in
 * cache-sized chunks: forward values, vjp_x, vjp_t and the parameter gradient
 * summed over every chunk, against the same network evaluated sample by sample
 * (batch 1, a different code path: dot products, no chunks); allocation-free.
 */
#include "test_util.h"
#include "mlp_fixtures.h"
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

/* The whole-batch vjp against the sum of per-sample vjps. */
static void check_batch(size_t batch, int via_system)
{
    size_t sizes[4] = { 3, 17, 9, 3 };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_SILU, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 77);
    size_t n = 3, np = node_mlp_nparams(m);
    double *x = alloc_d(batch * n), *a = alloc_d(batch * n);
    double *y = alloc_d(batch * n), *gx = alloc_d(batch * n), *gp = alloc_d(np);
    double *y1 = alloc_d(n), *gx1 = alloc_d(n), *gp1 = alloc_d(np), *gps = alloc_d(np);
    fill(x, batch * n, 3);
    fill(a, batch * n, 4);
    fill(gp, np, 5);   /* overwritten, not accumulated */
    double gt = 9.0, gts = 0.0;
    const double t = 0.7;
    if (via_system) {
        node_system sys;
        assert_status(node_mlp_system(m, batch, &sys), NODE_OK);
        node_test_alloc_begin(-1);
        assert_int_equal(sys.vjp(sys.ctx, t, x, a, y, gx, gp, &gt), 0);
        assert_int_equal(node_test_alloc_end(), 0);
    } else {
        assert_status(node_mlp_vjp(m, batch, t, x, a, y, gx, gp, &gt), NODE_OK);
    }
    for (size_t b = 0; b < batch; b++) {
        double g1;
        assert_status(node_mlp_vjp(m, 1, t, x + b * n, a + b * n, y1, gx1, gp1, &g1),
                      NODE_OK);
        for (size_t i = 0; i < n; i++) {
            assert_close(y[b * n + i], y1[i], 1e-14, 1e-15);
            assert_close(gx[b * n + i], gx1[i], 1e-13, 1e-15);
        }
        for (size_t j = 0; j < np; j++)
            gps[j] += gp1[j];
        gts += g1;
    }
    double scale = 0.0;
    for (size_t j = 0; j < np; j++)
        scale = fmax(scale, fabs(gps[j]));
    for (size_t j = 0; j < np; j++)
        assert_close(gp[j], gps[j], 0, 1e-13 * scale);
    assert_close(gt, gts, 0, 1e-13 * fmax(fabs(gts), 1.0));
    free(x);
    free(a);
    free(y);
    free(gx);
    free(gp);
    free(y1);
    free(gx1);
    free(gp1);
    free(gps);
    node_mlp_free(m);
}

static void test_chunked_batches_match_sample_by_sample(void **state)
{
    (void)state;
    /* One chunk, two unequal chunks, three equal ones, and a larger count. */
    check_batch(256, 0);
    check_batch(257, 0);
    check_batch(600, 1);
    check_batch(1100, 0);
}

static void test_reserve_serves_every_batch_in_chunks(void **state)
{
    (void)state;
    size_t sizes[3] = { 4, 32, 4 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 0), NODE_OK);
    node_mlp_init(m, 5);
    enum { B = 2000 };
    double *x = alloc_d(B * 4), *y = alloc_d(B * 4), *a = alloc_d(B * 4);
    double *gx = alloc_d(B * 4), *gp = alloc_d(node_mlp_nparams(m));
    fill(x, B * 4, 1);
    fill(a, B * 4, 2);
    assert_status(node_mlp_reserve(m, B), NODE_OK);
    /* Every batch up to the reserved one allocates nothing. */
    static const size_t batches[] = { B, 1, 3, 8, 255, 256, 257, 1000, 1999 };
    node_test_alloc_begin(-1);
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        assert_status(node_mlp_forward(m, batches[i], 0.0, x, y), NODE_OK);
        assert_status(node_mlp_vjp(m, batches[i], 0.0, x, a, y, gx, gp, NULL), NODE_OK);
    }
    assert_int_equal(node_test_alloc_end(), 0);
    free(x);
    free(y);
    free(a);
    free(gx);
    free(gp);
    node_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_batches_match_sample_by_sample),
        cmocka_unit_test(test_reserve_serves_every_batch_in_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
