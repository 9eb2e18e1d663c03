/* test_mlp_div.c — the MLP's divergence products (libnode/cnf.h): node_mlp_div
 * against the trace of a central-difference Jacobian (exact) and εᵀJε (Hutchinson),
 * node_mlp_div_vjp against central differences of Σ a·f + b·div in x, θ and t, for
 * every activation, with and without time input, depths 1-3 and batches 1, 3, 17
 * (the padded-batch paths), at every instruction-set level this CPU runs; the MLP as
 * a node_flow; refused arguments; no allocation once a workspace is sized.
 */
#include "test_util.h"
#include "mlp_fixtures.h"

#include <stdlib.h>
#include <string.h>

enum { D = 3, H = 5 };

/* A square MLP D → H → ... → D of `depth` layers, activation act everywhere but an
   identity last layer every other depth (both shapes are covered). */
static node_mlp *make(node_activation act, size_t depth, int time_input, unsigned seed)
{
    size_t sizes[4] = { D, H, H, H };
    node_activation acts[3] = { act, act, act };
    sizes[depth] = D;
    if (depth > 1 && depth % 2 == 0)
        acts[depth - 1] = NODE_ACT_IDENTITY;
    node_mlp *m;
    assert_status(node_mlp_create(&m, depth, sizes, acts, time_input), NODE_OK);
    node_mlp_init(m, seed);
    /* Larger weights than the default init so that activations leave their linear
       region and second derivatives matter. */
    double *p = node_mlp_params(m);
    for (size_t i = 0; i < node_mlp_nparams(m); i++)
        p[i] *= 2.5;
    return m;
}

/* Rademacher or Gaussian-like probes: signs for even seeds, [-1.5, 1.5] otherwise. */
static void probe(double *eps, size_t n, unsigned seed)
{
    fill(eps, n, seed);
    for (size_t i = 0; i < n; i++)
        eps[i] = seed % 2 ? 1.5 * eps[i] : (eps[i] < 0 ? -1.0 : 1.0);
}

static const size_t batches[3] = { 1, 3, 17 };

/* div (exact and Hutchinson) against a central-difference Jacobian; y against
   node_mlp_forward; every level against the generic one. */
static void test_div_matches_finite_difference_jacobian(void **state)
{
    (void)state;
    enum { BMAX = 17 };
    double x[BMAX * D], xp[BMAX * D], fp[BMAX * D], fm[BMAX * D], y[BMAX * D],
        yf[BMAX * D], eps[BMAX * D], J[BMAX][D][D], de[BMAX], dh[BMAX], d2[BMAX], y2[BMAX * D];
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(NULL, 0, &w), NODE_OK);
    const double h = 1e-5, t = 0.37;
    unsigned seed = 1;
    for (size_t ai = 0; ai < NACTS; ai++)
        for (int ti = 0; ti < 2; ti++)
            for (size_t depth = 1; depth <= 3; depth++)
                for (size_t bi = 0; bi < 3; bi++) {
                    size_t B = batches[bi];
                    node_mlp *m = make(all_acts[ai], depth, ti, seed++);
                    fill(x, B * D, seed++);
                    probe(eps, B * D, seed++);
                    for (size_t j = 0; j < D; j++) {
                        memcpy(xp, x, sizeof x);
                        for (size_t r = 0; r < B; r++)
                            xp[r * D + j] += h;
                        assert_status(node_mlp_forward_ws(m, w, B, t, xp, fp), NODE_OK);
                        for (size_t r = 0; r < B; r++)
                            xp[r * D + j] -= 2 * h;
                        assert_status(node_mlp_forward_ws(m, w, B, t, xp, fm), NODE_OK);
                        for (size_t r = 0; r < B; r++)
                            for (size_t i = 0; i < D; i++)
                                J[r][i][j] = (fp[r * D + i] - fm[r * D + i]) / (2 * h);
                    }
                    assert_status(node_mlp_forward_ws(m, w, B, t, x, yf), NODE_OK);
                    assert_status(node_mlp_div(m, w, B, t, x, NULL, y, de), NODE_OK);
                    assert_status(node_mlp_div(m, w, B, t, x, eps, NULL, dh), NODE_OK);
                    for (size_t r = 0; r < B; r++) {
                        double tr = 0, q = 0;
                        for (size_t i = 0; i < D; i++) {
                            tr += J[r][i][i];
                            for (size_t j = 0; j < D; j++)
                                q += eps[r * D + i] * J[r][i][j] * eps[r * D + j];
                        }
                        assert_close(de[r], tr, 1e-6, 1e-7);
                        assert_close(dh[r], q, 1e-6, 1e-7);
                        for (size_t i = 0; i < D; i++)   /* the same products, summed */
                            assert_close(y[r * D + i], yf[r * D + i], 1e-13, 1e-14);
                    }
                    /* Every level this CPU runs gives the same values. */
                    const node__nn_kernels *own = m->kern;
                    for (int isa = 0; isa < NODE__NISA; isa++) {
                        if (!node__isa_usable((node__isa)isa))
                            continue;
                        m->kern = node__nn_kernels_for((node__isa)isa);
                        assert_status(node_mlp_div(m, w, B, t, x, NULL, y2, d2), NODE_OK);
                        for (size_t r = 0; r < B; r++) {
                            assert_close(d2[r], de[r], 1e-12, 1e-13);
                            for (size_t i = 0; i < D; i++)
                                assert_close(y2[r * D + i], y[r * D + i], 1e-13, 1e-14);
                        }
                        assert_status(node_mlp_div(m, w, B, t, x, eps, NULL, d2), NODE_OK);
                        for (size_t r = 0; r < B; r++)
                            assert_close(d2[r], dh[r], 1e-12, 1e-13);
                    }
                    m->kern = own;
                    node_mlp_free(m);
                }
    node_mlp_ws_free(w);
}

/* L(x, θ, t) = Σ_r a_r·f_r + b_r·div_r (b NULL: the first sum only). */
static double loss(node_mlp *m, node_mlp_ws *w, size_t B, double t, const double *x,
                   const double *eps, const double *a, const double *b)
{
    double y[17 * D], dv[17], s = 0;
    assert_status(node_mlp_div(m, w, B, t, x, eps, y, dv), NODE_OK);
    for (size_t r = 0; r < B; r++) {
        for (size_t i = 0; i < D; i++)
            s += a[r * D + i] * y[r * D + i];
        if (b)
            s += b[r] * dv[r];
    }
    return s;
}

static void test_div_vjp_matches_finite_differences(void **state)
{
    (void)state;
    enum { BMAX = 17 };
    double x[BMAX * D], eps[BMAX * D], a[BMAX * D], b[BMAX], vx[BMAX * D], vt, y[BMAX * D],
        dv[BMAX], y0[BMAX * D], dv0[BMAX];
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(NULL, 0, &w), NODE_OK);
    const double h = 1e-5, t = -0.61;
    unsigned seed = 100;
    size_t combo = 0;
    for (size_t ai = 0; ai < NACTS; ai++)
        for (int ti = 0; ti < 2; ti++)
            for (int exact = 0; exact < 2; exact++)
                for (int withb = 0; withb < 2; withb++, combo++) {
                    /* depth and batch cycle through every value across the combos */
                    size_t depth = 1 + combo % 3, B = batches[(combo / 3 + combo) % 3];
                    node_mlp *m = make(all_acts[ai], depth, ti, seed++);
                    size_t np = node_mlp_nparams(m);
                    double *vp = alloc_d(np), *th = node_mlp_params(m);
                    fill(x, B * D, seed++);
                    fill(a, B * D, seed++);
                    fill(b, B, seed++);
                    probe(eps, B * D, seed++);
                    const double *e = exact ? NULL : eps, *bb = withb ? b : NULL;
                    assert_status(node_mlp_div_vjp(m, w, B, t, x, e, a, bb, y, dv, vx, vp, &vt),
                                  NODE_OK);
                    assert_status(node_mlp_div(m, w, B, t, x, e, y0, dv0), NODE_OK);
                    assert_memory_equal(y, y0, B * D * sizeof(double));
                    assert_memory_equal(dv, dv0, B * sizeof(double));
                    for (size_t i = 0; i < B * D; i++) {
                        double s = x[i];
                        x[i] = s + h;
                        double lp = loss(m, w, B, t, x, e, a, bb);
                        x[i] = s - h;
                        double lm = loss(m, w, B, t, x, e, a, bb);
                        x[i] = s;
                        assert_close(vx[i], (lp - lm) / (2 * h), 1e-6, 1e-7);
                    }
                    for (size_t i = 0; i < np; i++) {
                        double s = th[i];
                        th[i] = s + h;
                        double lp = loss(m, w, B, t, x, e, a, bb);
                        th[i] = s - h;
                        double lm = loss(m, w, B, t, x, e, a, bb);
                        th[i] = s;
                        assert_close(vp[i], (lp - lm) / (2 * h), 1e-6, 1e-7);
                    }
                    double lp = loss(m, w, B, t + h, x, e, a, bb);
                    double lm = loss(m, w, B, t - h, x, e, a, bb);
                    assert_close(vt, (lp - lm) / (2 * h), 1e-6, 1e-7);
                    if (!ti)
                        assert_true(vt == 0.0);
                    /* Optional outputs skipped: the same vjp_x. */
                    double vx2[BMAX * D];
                    assert_status(node_mlp_div_vjp(m, w, B, t, x, e, a, bb, NULL, NULL, vx2,
                                                   NULL, NULL), NODE_OK);
                    assert_memory_equal(vx, vx2, B * D * sizeof(double));
                    free(vp);
                    node_mlp_free(m);
                }
    /* Zero cotangents: zero products. */
    node_mlp *m = make(NODE_ACT_TANH, 2, 1, 7);
    size_t np = node_mlp_nparams(m);
    double *vp = alloc_d(np);
    fill(x, 4 * D, 3);
    for (size_t i = 0; i < np; i++)
        vp[i] = 1;
    vt = 1;
    assert_status(node_mlp_div_vjp(m, w, 4, 0.5, x, NULL, NULL, NULL, NULL, NULL, vx, vp, &vt),
                  NODE_OK);
    for (size_t i = 0; i < np; i++)
        assert_true(vp[i] == 0.0);
    for (size_t i = 0; i < 4 * D; i++)
        assert_true(vx[i] == 0.0);
    assert_true(vt == 0.0);
    free(vp);
    node_mlp_free(m);
    node_mlp_ws_free(w);
}

/* Wide inputs (the exact trace's chunks hold few samples) and a large batch (many
   chunks): exact trace against the Hutchinson product summed over the basis. */
static void test_div_chunks(void **state)
{
    (void)state;
    enum { DW = 40, B = 300 };
    size_t sizes[3] = { DW, 24, DW };
    node_activation acts[2] = { NODE_ACT_SILU, NODE_ACT_TANH };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 5);
    double *x = alloc_d(B * DW), *e = alloc_d(B * DW), *de = alloc_d(B), *sum = alloc_d(B),
           *dh = alloc_d(B);
    fill(x, B * DW, 9);
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(m, B, &w), NODE_OK);
    assert_status(node_mlp_div(m, w, B, 0.2, x, NULL, NULL, de), NODE_OK);
    for (size_t j = 0; j < DW; j++) {
        memset(e, 0, B * DW * sizeof(double));
        for (size_t r = 0; r < B; r++)
            e[r * DW + j] = 1;
        assert_status(node_mlp_div(m, w, B, 0.2, x, e, NULL, dh), NODE_OK);
        for (size_t r = 0; r < B; r++)
            sum[r] += dh[r];
    }
    for (size_t r = 0; r < B; r++)
        assert_close(de[r], sum[r], 1e-12, 1e-13);
    free(x), free(e), free(de), free(sum), free(dh);
    node_mlp_ws_free(w);
    node_mlp_free(m);
}

static void test_div_refuses_bad_arguments(void **state)
{
    (void)state;
    node_mlp *m = make(NODE_ACT_TANH, 2, 0, 1), *rect;
    size_t sizes[3] = { 3, 4, 2 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_TANH };
    assert_status(node_mlp_create(&rect, 2, sizes, acts, 0), NODE_OK);
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(NULL, 0, &w), NODE_OK);
    double x[6] = { 0 }, y[6], dv[2], a[6] = { 0 }, vx[6];
    assert_status(node_mlp_div(NULL, w, 2, 0, x, NULL, y, dv), NODE_EINVAL);
    assert_status(node_mlp_div(m, NULL, 2, 0, x, NULL, y, dv), NODE_EINVAL);
    assert_status(node_mlp_div(m, w, 2, 0, NULL, NULL, y, dv), NODE_EINVAL);
    assert_status(node_mlp_div(m, w, 0, 0, x, NULL, y, dv), NODE_EINVAL);
    assert_status(node_mlp_div(rect, w, 2, 0, x, NULL, y, dv), NODE_EINVAL);
    assert_status(node_mlp_div(m, w, SIZE_MAX / 2, 0, x, NULL, y, dv), NODE_EINVAL);
    assert_status(node_mlp_div_vjp(m, w, 2, 0, x, NULL, a, NULL, y, dv, NULL, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_mlp_div_vjp(NULL, w, 2, 0, x, NULL, a, NULL, y, dv, vx, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_mlp_div_vjp(m, NULL, 2, 0, x, NULL, a, NULL, y, dv, vx, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_mlp_div_vjp(m, w, 2, 0, NULL, NULL, a, NULL, y, dv, vx, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_mlp_div_vjp(m, w, 0, 0, x, NULL, a, NULL, y, dv, vx, NULL, NULL),
                  NODE_EINVAL);
    assert_status(node_mlp_div_vjp(rect, w, 2, 0, x, NULL, a, NULL, y, dv, vx, NULL, NULL),
                  NODE_EINVAL);
    /* Workspace memory refused: NODE_ENOMEM, and the workspace still works. */
    node_test_alloc_begin(0);
    assert_status(node_mlp_div(m, w, 2, 0, x, NULL, y, dv), NODE_ENOMEM);
    node_test_alloc_end();
    assert_status(node_mlp_div(m, w, 2, 0, x, NULL, y, dv), NODE_OK);
    node_flow f;
    assert_status(node_mlp_flow(NULL, 0, &f), NODE_EINVAL);
    assert_status(node_mlp_flow(m, 0, NULL), NODE_EINVAL);
    assert_status(node_mlp_flow(rect, 0, &f), NODE_EINVAL);
    assert_status(node_mlp_flow_release(m, NULL), NODE_EINVAL);
    assert_status(node_mlp_flow_release(NULL, &f), NODE_EINVAL);
    memset(&f, 0, sizeof f);
    assert_status(node_mlp_flow_release(m, &f), NODE_EINVAL);   /* not a flow */
    /* A system is not a flow, a flow of another model is not released. */
    node_system sys;
    assert_status(node_mlp_system(m, 2, &sys), NODE_OK);
    assert_status(node_mlp_flow(m, 2, &f), NODE_OK);
    node_mlp *m2 = make(NODE_ACT_TANH, 1, 0, 2);
    assert_status(node_mlp_flow_release(m2, &f), NODE_EINVAL);
    node_mlp_free(m2);
    assert_status(node_mlp_system_release(m, &sys), NODE_OK);
    node_flow f2 = f;
    assert_status(node_mlp_flow_release(m, &f), NODE_OK);
    assert_status(node_mlp_flow_release(m, &f2), NODE_EINVAL);   /* already released */
    /* Every allocation of node_mlp_flow failing in turn: NODE_ENOMEM, nothing leaked. */
    for (long k = 0;; k++) {
        node_test_alloc_begin(k);
        node_status st = node_mlp_flow(m, 17, &f);
        long live = node_test_alloc_live();
        long n = node_test_alloc_end();
        if (st == NODE_OK) {
            assert_true(n <= k);
            assert_status(node_mlp_flow_release(m, &f), NODE_OK);
            break;
        }
        assert_status(st, NODE_ENOMEM);
        assert_int_equal(live, 0);
    }
    node_mlp_ws_free(w);
    node_mlp_free(rect);
    node_mlp_free(m);
}

/* The MLP as a node_flow: its callbacks are the calls above; once reserved, no
   allocation; flows are freed with the model. */
static void test_mlp_flow(void **state)
{
    (void)state;
    enum { B = 17 };
    node_mlp *m = make(NODE_ACT_SOFTPLUS, 3, 1, 11);
    size_t np = node_mlp_nparams(m);
    node_flow f;
    assert_status(node_mlp_flow(m, B, &f), NODE_OK);
    assert_int_equal(f.width, D);
    assert_int_equal(f.nparams, np);
    for (size_t i = 0; i < 8; i++)
        assert_true(f.reserved_[i] == 0);
    double x[B * D], eps[B * D], a[B * D], b[B], y[B * D], y2[B * D], dv[B], dv2[B],
        vx[B * D], vx2[B * D], vt, vt2;
    double *vp = alloc_d(np), *vp2 = alloc_d(np);
    fill(x, B * D, 1);
    fill(a, B * D, 2);
    fill(b, B, 3);
    probe(eps, B * D, 4);
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(NULL, 0, &w), NODE_OK);
    node_test_alloc_begin(-1);
    for (size_t bs = 1; bs <= B; bs += 8) {
        assert_int_equal(f.f(f.ctx, bs, 0.3, x, y), 0);
        assert_int_equal(f.div(f.ctx, bs, 0.3, x, NULL, y2, dv), 0);
        assert_int_equal(f.div(f.ctx, bs, 0.3, x, eps, NULL, dv2), 0);
        assert_int_equal(f.div_vjp(f.ctx, bs, 0.3, x, eps, a, b, NULL, NULL, vx, vp, &vt), 0);
        assert_int_equal(f.div_vjp(f.ctx, bs, 0.3, x, NULL, a, NULL, NULL, NULL, vx, vp, &vt),
                         0);
    }
    assert_int_equal(node_test_alloc_end(), 0);
    assert_status(node_mlp_forward(m, B, 0.3, x, y2), NODE_OK);
    assert_int_equal(f.f(f.ctx, B, 0.3, x, y), 0);
    assert_memory_equal(y, y2, sizeof y);
    assert_int_equal(f.div_vjp(f.ctx, B, 0.3, x, eps, a, b, y, dv, vx, vp, &vt), 0);
    assert_status(node_mlp_div_vjp(m, w, B, 0.3, x, eps, a, b, y2, dv2, vx2, vp2, &vt2),
                  NODE_OK);
    assert_memory_equal(y, y2, sizeof y);
    assert_memory_equal(dv, dv2, sizeof dv);
    assert_memory_equal(vx, vx2, sizeof vx);
    assert_memory_equal(vp, vp2, np * sizeof(double));
    assert_true(vt == vt2);
    /* With b NULL the vjp is node_mlp_vjp's. */
    assert_int_equal(f.div_vjp(f.ctx, B, 0.3, x, NULL, a, NULL, NULL, NULL, vx, vp, &vt), 0);
    assert_status(node_mlp_vjp(m, B, 0.3, x, a, NULL, vx2, vp2, &vt2), NODE_OK);
    for (size_t i = 0; i < B * D; i++)
        assert_close(vx[i], vx2[i], 1e-13, 1e-14);
    for (size_t i = 0; i < np; i++)
        assert_close(vp[i], vp2[i], 1e-13, 1e-14);
    assert_close(vt, vt2, 1e-13, 1e-14);
    /* Bad calls fail without crashing; a larger batch grows the workspace. */
    assert_true(f.f(f.ctx, 0, 0.3, x, y) != 0);
    assert_true(f.div(f.ctx, 0, 0.3, x, NULL, y, dv) != 0);
    assert_true(f.div_vjp(f.ctx, B, 0.3, x, NULL, a, b, y, dv, NULL, NULL, NULL) != 0);
    double *xb = alloc_d(300 * D), *yb = alloc_d(300 * D), *db = alloc_d(300);
    assert_int_equal(f.div(f.ctx, 300, 0.3, xb, NULL, yb, db), 0);
    /* A second flow, not reserved: without memory its callbacks fail; it is left
       for node_mlp_free to free (leak checkers see it). */
    node_flow g;
    assert_status(node_mlp_flow(m, 0, &g), NODE_OK);
    for (int c = 0; c < 3; c++) {
        node_test_alloc_begin(0);
        assert_true(c == 0   ? g.f(g.ctx, B, 0.3, x, y)
                    : c == 1 ? g.div(g.ctx, B, 0.3, x, NULL, NULL, dv)
                             : g.div_vjp(g.ctx, B, 0.3, x, eps, a, b, NULL, NULL, vx, vp, &vt));
        node_test_alloc_end();
    }
    assert_int_equal(g.div(g.ctx, B, 0.3, x, NULL, NULL, dv2), 0);
    assert_int_equal(f.div(f.ctx, B, 0.3, x, NULL, NULL, dv), 0);
    assert_memory_equal(dv, dv2, sizeof dv);
    free(xb), free(yb), free(db), free(vp), free(vp2);
    node_mlp_ws_free(w);
    node_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_div_matches_finite_difference_jacobian),
        cmocka_unit_test(test_div_vjp_matches_finite_differences),
        cmocka_unit_test(test_div_chunks),
        cmocka_unit_test(test_div_refuses_bad_arguments),
        cmocka_unit_test(test_mlp_flow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
