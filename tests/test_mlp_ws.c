/* test_mlp_ws.c — the MLP's scratch memory: every system has a workspace of its own
 * (released with node_mlp_system_release or the model), node_mlp_ws objects grow on
 * demand and never shrink, start on a cache line, serve any model; f / vjp of
 * systems and the _ws calls within a reserved batch allocate nothing.  Threads
 * sharing one model: test_threads.c.
 */
#include "test_util.h"
#include "mlp_fixtures.h"
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

static void test_system_allocates_nothing_in_f_and_vjp(void **state)
{
    (void)state;
    size_t sizes[3] = { 4, 16, 4 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 3);
    node_system s1, s9;
    assert_status(node_mlp_system(m, 1, &s1), NODE_OK);
    assert_status(node_mlp_system(m, 9, &s9), NODE_OK);
    assert_status(node_mlp_reserve(m, 9), NODE_OK);
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(m, 9, &w), NODE_OK);
    double y[36], a[36], f[36], vy[36], vt;
    double *vp = alloc_d(node_mlp_nparams(m));
    fill(y, 36, 1);
    fill(a, 36, 2);
    node_test_alloc_begin(-1);
    for (int rep = 0; rep < 3; rep++) {
        assert_int_equal(s1.f(s1.ctx, 0.1, y, f), 0);
        assert_int_equal(s9.f(s9.ctx, 0.1, y, f), 0);
        assert_int_equal(s1.vjp(s1.ctx, 0.1, y, a, f, vy, vp, &vt), 0);
        assert_int_equal(s9.vjp(s9.ctx, 0.1, y, a, f, vy, vp, &vt), 0);
        assert_int_equal(s9.vjp(s9.ctx, 0.1, y, a, NULL, vy, NULL, NULL), 0);
    }
    /* node_mlp_forward / vjp within the reserved batch allocate nothing either. */
    assert_status(node_mlp_forward(m, 9, 0.0, y, f), NODE_OK);
    assert_status(node_mlp_vjp(m, 5, 0.0, y, a, f, vy, vp, &vt), NODE_OK);
    /* So do the _ws forms within the workspace's batch. */
    assert_status(node_mlp_forward_ws(m, w, 9, 0.0, y, f), NODE_OK);
    assert_status(node_mlp_vjp_ws(m, w, 7, 0.0, y, a, f, vy, vp, &vt), NODE_OK);
    assert_status(node_mlp_vjp_ws(m, w, 1, 0.0, y, a, f, vy, vp, &vt), NODE_OK);
    assert_int_equal(node_test_alloc_end(), 0);
    node_mlp_ws_free(w);
    free(vp);
    node_mlp_free(m);
}

/* Every node_mlp_system call makes a context with a workspace of its own (two
   threads solving systems of one model must never share scratch), released by
   node_mlp_system_release or with the model. */
static void test_every_system_has_its_own_workspace(void **state)
{
    (void)state;
    size_t sizes[3] = { 2, 8, 2 };
    node_activation acts[2] = { NODE_ACT_ELU, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 0), NODE_OK);
    node_mlp_init(m, 4);
    node_system s2, s30, s2b;
    assert_status(node_mlp_system(m, 2, &s2), NODE_OK);
    assert_status(node_mlp_system(m, 30, &s30), NODE_OK);
    assert_status(node_mlp_system(m, 2, &s2b), NODE_OK);
    assert_ptr_not_equal(s2.ctx, s2b.ctx);   /* the same batch: still its own */
    assert_ptr_not_equal(s2.ctx, s30.ctx);
    const node__mlp_sys *c2 = s2.ctx, *c2b = s2b.ctx, *c30 = s30.ctx;
    assert_ptr_not_equal(c2->ws.buf, c2b->ws.buf);
    assert_ptr_not_equal(c2->ws.buf, c30->ws.buf);
    assert_ptr_not_equal(c2->ws.buf, m->ws.buf);
    /* Every workspace starts on a cache line, whatever malloc returned. */
    assert_int_equal((uintptr_t)c2->ws.buf % NODE__WS_ALIGN, 0);
    assert_int_equal((uintptr_t)c30->ws.buf % NODE__WS_ALIGN, 0);
    double y[60], f2[4], f2b[4], f30[60], ref[60];
    fill(y, 60, 3);
    assert_status(node_mlp_forward(m, 30, 0.0, y, ref), NODE_OK);
    assert_int_equal(s2.f(s2.ctx, 0.0, y, f2), 0);
    assert_int_equal(s2b.f(s2b.ctx, 0.0, y, f2b), 0);
    assert_int_equal(s30.f(s30.ctx, 0.0, y, f30), 0);
    assert_memory_equal(f30, ref, sizeof f30);
    assert_memory_equal(f2, f2b, sizeof f2);
    for (int i = 0; i < 4; i++)
        assert_close(f2[i], ref[i], 1e-14, 1e-15);
    /* A bigger forward batch grows the model's own workspace; the systems keep theirs. */
    double big[400], fbig[400];
    fill(big, 400, 8);
    assert_status(node_mlp_forward(m, 200, 0.0, big, fbig), NODE_OK);
    assert_int_equal(s2.f(s2.ctx, 0.0, y, f2), 0);
    for (int i = 0; i < 4; i++)
        assert_close(f2[i], ref[i], 1e-14, 1e-15);

    /* Release: the system's memory goes back (two blocks: context and workspace),
       *sys is zeroed, the others keep working; a second release or a foreign
       system is refused. */
    node_test_alloc_begin(-1);
    node_system copy = s2b;
    assert_status(node_mlp_system_release(m, &s2b), NODE_OK);
    assert_int_equal(node_test_alloc_live(), -2);
    node_test_alloc_end();
    assert_null(s2b.ctx);
    assert_null(s2b.f);
    assert_int_equal(s2b.dim, 0);
    assert_status(node_mlp_system_release(m, &copy), NODE_EINVAL);
    assert_status(node_mlp_system_release(m, &s2b), NODE_EINVAL);
    assert_int_equal(s2.f(s2.ctx, 0.0, y, f2), 0);
    assert_int_equal(s30.f(s30.ctx, 0.0, y, f30), 0);
    assert_memory_equal(f30, ref, sizeof f30);
    node_mlp *other;
    assert_status(node_mlp_create(&other, 2, sizes, acts, 0), NODE_OK);
    assert_status(node_mlp_system_release(other, &s2), NODE_EINVAL);   /* not other's */
    node_system foreign = s30;
    foreign.f = NULL;
    assert_status(node_mlp_system_release(m, &foreign), NODE_EINVAL);
    assert_status(node_mlp_system_release(NULL, &s2), NODE_EINVAL);
    assert_status(node_mlp_system_release(m, NULL), NODE_EINVAL);
    assert_status(node_mlp_system_release(m, &s30), NODE_OK);
    assert_int_equal(s2.f(s2.ctx, 0.0, y, f2), 0);
    node_mlp_free(other);
    node_mlp_free(m);   /* frees s2 too (ASan's leak check) */
}

/* node_mlp_ws: argument checks, an empty workspace that grows on first use and is
   allocation-free afterwards, one workspace serving two models. */
static void test_workspace_objects(void **state)
{
    (void)state;
    size_t sa[3] = { 3, 20, 3 }, sb[4] = { 5, 40, 40, 2 };
    node_activation aa[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_activation ab[3] = { NODE_ACT_SILU, NODE_ACT_RELU, NODE_ACT_IDENTITY };
    node_mlp *ma, *mb;
    assert_status(node_mlp_create(&ma, 2, sa, aa, 1), NODE_OK);
    assert_status(node_mlp_create(&mb, 3, sb, ab, 0), NODE_OK);
    node_mlp_init(ma, 1);
    node_mlp_init(mb, 2);
    node_mlp_ws *w = (node_mlp_ws *)&w, *keep = w;
    assert_status(node_mlp_ws_create(ma, 4, NULL), NODE_EINVAL);
    assert_status(node_mlp_ws_create(NULL, 4, &w), NODE_EINVAL);
    assert_status(node_mlp_ws_create(ma, SIZE_MAX / 2, &w), NODE_ENOMEM);
    assert_ptr_equal(w, keep);
    node_mlp_ws_free(NULL);
    assert_status(node_mlp_ws_create(NULL, 0, &w), NODE_OK);
    double x[5 * 50], a[3 * 50], y[3 * 50], gx[5 * 50], ref[3 * 50];
    double *gp = alloc_d(node_mlp_nparams(mb));
    fill(x, 5 * 50, 1);
    fill(a, 3 * 50, 2);
    assert_status(node_mlp_forward_ws(NULL, w, 1, 0, x, y), NODE_EINVAL);
    assert_status(node_mlp_forward_ws(ma, NULL, 1, 0, x, y), NODE_EINVAL);
    assert_status(node_mlp_forward_ws(ma, w, 0, 0, x, y), NODE_EINVAL);
    assert_status(node_mlp_forward_ws(ma, w, 1, 0, NULL, y), NODE_EINVAL);
    assert_status(node_mlp_forward_ws(ma, w, 1, 0, x, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp_ws(NULL, w, 1, 0, x, a, y, gx, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp_ws(ma, NULL, 1, 0, x, a, y, gx, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp_ws(ma, w, 0, 0, x, a, y, gx, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp_ws(ma, w, 1, 0, NULL, a, y, gx, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_vjp_ws(ma, w, 1, 0, x, NULL, y, gx, NULL, NULL), NODE_EINVAL);
    assert_status(node_mlp_forward_ws(ma, w, SIZE_MAX / 2, 0, x, y), NODE_ENOMEM);
    assert_int_equal(w->cap, 0);   /* nothing was allocated by the refusals */
    /* Grows on first use, then serves every batch up to it without allocating. */
    assert_status(node_mlp_forward_ws(ma, w, 50, 0.5, x, y), NODE_OK);
    assert_status(node_mlp_forward(ma, 50, 0.5, x, ref), NODE_OK);
    assert_memory_equal(y, ref, 3 * 50 * sizeof *y);
    node_test_alloc_begin(-1);
    for (size_t batch = 1; batch <= 50; batch += 7)
        assert_status(node_mlp_vjp_ws(ma, w, batch, 0.5, x, a, y, gx, NULL, NULL), NODE_OK);
    assert_int_equal(node_test_alloc_end(), 0);
    /* Another model in the same workspace: it grows for the wider one. */
    size_t cap = w->cap;
    assert_status(node_mlp_vjp_ws(mb, w, 50, 0.0, x, a, y, gx, gp, NULL), NODE_OK);
    assert_true(w->cap > cap);
    assert_int_equal((uintptr_t)w->buf % NODE__WS_ALIGN, 0);
    assert_status(node_mlp_forward(mb, 50, 0.0, x, ref), NODE_OK);
    assert_memory_equal(y, ref, 2 * 50 * sizeof *y);
    cap = w->cap;
    assert_status(node_mlp_forward_ws(ma, w, 3, 0.5, x, y), NODE_OK);
    assert_int_equal(w->cap, cap);   /* never shrinks */
    node_mlp_ws_free(w);
    /* A workspace made for a small batch grows in forward_ws and in vjp_ws. */
    assert_status(node_mlp_ws_create(ma, 1, &w), NODE_OK);
    cap = w->cap;
    assert_status(node_mlp_forward_ws(ma, w, 50, 0.5, x, y), NODE_OK);
    assert_true(w->cap > cap);
    node_mlp_ws_free(w);
    assert_status(node_mlp_ws_create(ma, 1, &w), NODE_OK);
    assert_status(node_mlp_vjp_ws(ma, w, 50, 0.5, x, a, y, gx, NULL, NULL), NODE_OK);
    assert_true(w->cap > cap);
    node_mlp_ws_free(w);

    /* Failing allocations: create and growth leave nothing behind and no change. */
    bool done = false;
    for (long k = 0; !done && k < 10; k++) {
        node_test_alloc_begin(k);
        node_mlp_ws *v = NULL;
        node_status st = node_mlp_ws_create(mb, 4, &v);
        if (st == NODE_OK) {
            st = node_mlp_forward_ws(mb, v, 50, 0.0, x, y);
            if (st == NODE_OK)
                done = true;
            else
                assert_int_equal(v->cap > 0, 1);   /* the old buffer is kept */
            node_mlp_ws_free(v);
        } else {
            assert_null(v);
        }
        if (!done)
            assert_status(st, NODE_ENOMEM);
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(done);
    free(gp);
    node_mlp_free(ma);
    node_mlp_free(mb);
}

/* The weight gradient of a small batch keeps lane sums and a larger one a
   transposed copy, which can be smaller: reserving for 16 must still leave room
   for a batch of 8, without allocating. */
static void test_workspace_follows_need_not_batch(void **state)
{
    (void)state;
    size_t sizes[3] = { 40, 50, 40 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m, *ref;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 0), NODE_OK);
    assert_status(node_mlp_create(&ref, 2, sizes, acts, 0), NODE_OK);
    node_mlp_init(m, 9);
    node_mlp_init(ref, 9);
    assert_status(node_mlp_reserve(m, 16), NODE_OK);
    size_t np = node_mlp_nparams(m);
    double *x = alloc_d(8 * 40), *a = alloc_d(8 * 40), *y = alloc_d(8 * 40);
    double *gx = alloc_d(8 * 40), *gp = alloc_d(np), *y2 = alloc_d(8 * 40);
    double *gx2 = alloc_d(8 * 40), *gp2 = alloc_d(np);
    fill(x, 8 * 40, 1);
    fill(a, 8 * 40, 2);
    node_test_alloc_begin(-1);   /* reserved for 16: a batch of 8 allocates nothing */
    assert_status(node_mlp_vjp(m, 8, 0.0, x, a, y, gx, gp, NULL), NODE_OK);
    assert_int_equal(node_test_alloc_end(), 0);
    assert_status(node_mlp_vjp(ref, 8, 0.0, x, a, y2, gx2, gp2, NULL), NODE_OK);
    assert_memory_equal(y, y2, 8 * 40 * sizeof *y);
    assert_memory_equal(gx, gx2, 8 * 40 * sizeof *gx);
    assert_memory_equal(gp, gp2, np * sizeof *gp);
    free(x); free(a); free(y); free(gx); free(gp); free(y2); free(gx2); free(gp2);
    node_mlp_free(m);
    node_mlp_free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_allocates_nothing_in_f_and_vjp),
        cmocka_unit_test(test_every_system_has_its_own_workspace),
        cmocka_unit_test(test_workspace_objects),
        cmocka_unit_test(test_workspace_follows_need_not_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
