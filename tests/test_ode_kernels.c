/* test_ode_kernels.c — the solver core's kernels against its generic path: the error
 * estimate fused with the default RMS norm (element by element up to dim 8, by blocks of
 * 64 above) must reproduce, bit for bit, the solve that forms the error vector and
 * measures it with a custom norm of the same formula (the contract's RMS norm), at every
 * dim and method, NaN/Inf retries included; the combination and error kernels, the
 * specialised ones and the generic ones, must match a plain left-to-right sum at every
 * number of terms and every instruction-set level; and every number of terms that a
 * tableau of the registry reaches must have its specialised kernel (and no specialised
 * kernel may be left that none reaches).
 */
#include "test_util.h"
#include "internal.h"
#include "ode/ode.h"

#include <string.h>

/* A coupled nonlinear system of any dim: y_i' = -a_i y_i + 0.5 sin(y_{i-1}) + 0.1 t,
   and a stiff last component y' = -50 (y - cos t) + ..., whose f is NaN for |y| > 10:
   the solution stays in [-1, 3], only the stages of a too-large step leave it. */
typedef struct sysctx { size_t dim; } sysctx;

static int coupled(void *vctx, double t, const double *y, double *dy)
{
    const sysctx *c = vctx;
    for (size_t i = 0; i < c->dim; i++) {
        double a = 0.2 + 1.3 * (double)i / (double)c->dim;
        dy[i] = -a * y[i] + 0.5 * sin(y[i ? i - 1 : c->dim - 1]) + 0.1 * t;
    }
    size_t l = c->dim - 1;
    dy[l] += -50 * (y[l] - cos(t));
    if (fabs(y[l]) > 10)
        dy[l] = NAN;
    return 0;
}

/* The contract's RMS norm, written out (a custom norm makes the solver take its
   unfused path). */
static double rms(void *nctx, size_t dim, const double *err, const double *y,
                  const double *ynew, double rtol, double atol)
{
    (void)nctx;
    double acc = 0;
    for (size_t i = 0; i < dim; i++) {
        double sk = atol + rtol * fmax(fabs(y[i]), fabs(ynew[i]));
        double r = err[i] / sk;
        acc += r * r;
    }
    return sqrt(acc / (double)dim);
}

#define MAXDIM 131
#define NT 4

/* nan: the first step is the whole span, whose stages meet the NaN region. */
static node_status solve(size_t dim, node_method m, double tol, int fused, int nan,
                         double *ys, node_stats *st, double *h_next)
{
    sysctx c = { dim };
    node__ode ode = { dim, coupled, &c, fused ? NULL : rms, NULL };
    double y0[MAXDIM], ts[NT] = { 0, 0.7, 1.9, 3 };
    for (size_t i = 0; i < dim; i++)
        y0[i] = i + 1 < dim ? 1.0 + 0.37 * (double)i - 0.011 * (double)(i * i) : 3;
    node_options in = node_options_default(), o;
    in.method = m;
    in.rtol = tol;
    in.atol = 1e-2 * tol;
    in.step = nan ? 3 : 0;
    assert_status(node__options_resolve(&in, &o, NULL), NODE_OK);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    memset(st, 0, sizeof *st);
    node_status rc = node__integrate(s, &ode, y0, ts, NT, ys, &o, st, NULL);
    *h_next = s->h_next;
    node_solver_free(s);
    return rc;
}

static void test_fused_error_pass_matches_unfused_bit_for_bit(void **state)
{
    (void)state;
    static const size_t dims[] = { 1, 2, 3, 7, 8, 9, 16, 63, 64, 65, 128, 131 };
    static double a[NT * MAXDIM], b[NT * MAXDIM];
    for (size_t q = 0; q < sizeof dims / sizeof dims[0]; q++)
        for (size_t j = 0; j < node__tableau_count(); j++)
            for (int nan = 0; nan < 2 && node__tableau_at(j)->e; nan++)
                for (int k = 0; k < 2; k++) {
                    size_t dim = dims[q];
                    double tol = k ? 1e-9 : 1e-4;
                    node_stats sa, sb;
                    double ha, hb;
                    node_method m = node__tableau_at(j)->method;
                    node_status ra = solve(dim, m, tol, 1, nan, a, &sa, &ha);
                    node_status rb = solve(dim, m, tol, 0, nan, b, &sb, &hb);
                    assert_status(ra, rb);
                    assert_status(ra, NODE_OK);
                    assert_int_equal(sa.nfe, sb.nfe);
                    assert_int_equal(sa.nsteps, sb.nsteps);
                    assert_int_equal(sa.nreject, sb.nreject);
                    if (nan)   /* the NaN window forced rejections */
                        assert_true(sa.nreject > 0);
                    assert_true(ha == hb);
                    assert_memory_equal(a, b, NT * dim * sizeof(double));
                }
}

/* Stage vectors and weights for the kernel tests: every third weight zero where sparse
   (to skip zero entries), none zero otherwise (to reach every number of terms). */
enum { D = 37 };
static double kbuf[NODE__MAXSTAGES][D];

static void fill_stages(double **k)
{
    for (int i = 0; i < NODE__MAXSTAGES; i++) {
        k[i] = kbuf[i];
        for (int d = 0; d < D; d++)
            kbuf[i][d] = sin(1.0 + i * 0.7 + d * 0.13);
    }
}

static double weight(int i, double scale, int sparse)
{
    return sparse && i % 3 == 2 ? 0 : scale * (0.1 * (i + 1) - 0.35);
}

/* out = y + h Σ w_i k_i (and h Σ w_i k_i) for every number of non-zero terms 0..16,
   aliasing out = y included, against the plain sum formed left to right; the
   specialised kernel of a count, where there is one, against the generic one too. */
static void test_combination_kernels_every_term_count(void **state)
{
    (void)state;
    static double y[D], out[D], want[D], wantz[D], other[D];
    double *k[NODE__MAXSTAGES];
    fill_stages(k);
    for (int isa = 0; isa < NODE__NISA; isa++) {
      if (!node__isa_usable((node__isa)isa))
          continue;
      const node__ode_kernels *kern = node__ode_kernels_for((node__isa)isa);
      for (size_t dim = 1; dim <= D; dim += 9)
        for (int n = 0; n <= NODE__MAXSTAGES; n++)
          for (int sparse = 0; sparse < 2; sparse++)
            for (int alias = 0; alias < 2; alias++) {
                double w[NODE__MAXSTAGES];
                for (int i = 0; i < n; i++)
                    w[i] = weight(i, 1, sparse);
                for (size_t d = 0; d < dim; d++) {
                    y[d] = cos(0.3 * (double)d);
                    double acc = 0;
                    int first = 1;
                    for (int i = 0; i < n; i++) {
                        if (w[i] == 0)
                            continue;
                        acc = first ? w[i] * k[i][d] : acc + w[i] * k[i][d];
                        first = 0;
                    }
                    want[d] = first ? y[d] : y[d] + 0.25 * acc;
                    wantz[d] = first ? 0 : 0.25 * acc;
                }
                double *dst = alias ? y : out;
                node__rk_combine(kern, dim, y, 0.25, w, n, k, dst);
                assert_memory_equal(dst, want, dim * sizeof(double));
                /* without y, and each kernel the table has for this count */
                node__lincomb lc;
                node__lincomb_make(&lc, kern, w, n, k);
                node__lincomb_apply(&lc, dim, NULL, 0.25, out);
                assert_memory_equal(out, wantz, dim * sizeof(double));
                for (int z = 0; z < 2; z++) {
                    node__comb_fn fns[2] = { z ? kern->combz[lc.m] : kern->comb[lc.m],
                                             z ? kern->combz_any : kern->comb_any };
                    for (int v = 0; v < 2; v++) {
                        if (!fns[v])
                            continue;
                        for (size_t d = 0; d < dim; d++)
                            y[d] = cos(0.3 * (double)d);
                        double *o = alias ? y : other;
                        fns[v](&lc, dim, y, 0.25, o);
                        assert_memory_equal(o, z ? wantz : want, dim * sizeof(double));
                    }
                }
            }
    }
}

/* The fused error kernels, both shapes, element by element and by blocks, specialised
   and generic, at every number of terms: the same bits as combining (b,) e and e3
   left to right and adding the squares of the scaled errors in element order. */
static void test_error_kernels_every_term_count(void **state)
{
    (void)state;
    enum { N = 2 * 64 + 5 };   /* two full blocks and a partial one */
    static double kb[NODE__MAXSTAGES][N], y[N], ynew[N], want_ynew[N];
    const double rtol = 1e-6, atol = 1e-8, h = 0.125;
    for (int i = 0; i < NODE__MAXSTAGES; i++)
        for (int d = 0; d < N; d++)
            kb[i][d] = sin(1.0 + i * 0.7 + d * 0.13);
    for (int isa = 0; isa < NODE__NISA; isa++) {
        if (!node__isa_usable((node__isa)isa))
            continue;
        const node__ode_kernels *kern = node__ode_kernels_for((node__isa)isa);
        for (int m = 1; m <= NODE__MAXSTAGES; m++)
            for (int bee = 0; bee < 2; bee++)
                for (size_t dim = 1; dim <= N; dim += dim < 12 ? 1 : 61) {
                    node__errpass ep;
                    ep.m = m;
                    ep.bee = bee;
                    for (int q = 0; q < m; q++) {
                        ep.wb[q] = 0.1 + 0.05 * q;
                        ep.we[q] = weight(q, 1e-3, 1) + 1e-4;
                        ep.we3[q] = weight(q + 1, 1e-2, 1) - 2e-3;
                        ep.p[q] = kb[q];
                    }
                    /* the reference, as the unfused path forms it */
                    double w0 = 0, w1 = 0;
                    for (size_t d = 0; d < dim; d++) {
                        y[d] = cos(0.3 * (double)d);
                        double sb = 0, se = 0, s3 = 0;
                        for (int q = 0; q < m; q++) {
                            sb = q ? sb + ep.wb[q] * kb[q][d] : ep.wb[q] * kb[q][d];
                            se = q ? se + ep.we[q] * kb[q][d] : ep.we[q] * kb[q][d];
                            s3 = q ? s3 + ep.we3[q] * kb[q][d] : ep.we3[q] * kb[q][d];
                        }
                        want_ynew[d] = bee ? y[d] + h * sb : 2 * y[d];
                        double sk = atol + rtol * fmax(fabs(y[d]), fabs(want_ynew[d]));
                        double r = h * se / sk, r3 = h * s3 / sk;
                        w0 += r * r;
                        w1 += r3 * r3;
                    }
                    int small = dim <= NODE__SMALLDIM;
                    node__err_fn fns[4] = {
                        bee ? kern->errbee[small][m] : kern->erre[small][m],
                        bee ? kern->errbee_any[small] : kern->erre_any[small],
                        bee ? kern->errbee_any[!small] : kern->erre_any[!small],
                        bee ? kern->errbee[!small][m] : kern->erre[!small][m] };
                    for (int v = 0; v < 4; v++) {
                        if (!fns[v])
                            continue;
                        for (size_t d = 0; d < dim; d++)
                            ynew[d] = bee ? NAN : want_ynew[d];
                        double acc[2] = { 0, 0 };
                        fns[v](&ep, dim, y, ynew, h, rtol, atol, acc);
                        assert_memory_equal(&acc[0], &w0, sizeof w0);
                        if (bee) {
                            assert_memory_equal(&acc[1], &w1, sizeof w1);
                            assert_memory_equal(ynew, want_ynew, dim * sizeof(double));
                        }
                    }
                    /* a NaN or Inf in ynew turns acc[0] NaN */
                    if (!bee) {
                        ynew[dim - 1] = INFINITY;
                        double acc[2] = { 0, 0 };
                        fns[1](&ep, dim, y, ynew, h, rtol, atol, acc);
                        assert_true(acc[0] != acc[0]);
                    }
                }
    }
}

/* Which numbers of terms the registry's tableaus reach: (with y) the rows of A, b and
   the dense weights at θ in (0, 1); (without y) e and e3; and the fused error pass of
   each adaptive method, at a small and a large dim.  Each must have its specialised
   kernel; and each specialised kernel must be reached by some tableau. */
static void test_every_reached_term_count_has_a_specialised_kernel(void **state)
{
    (void)state;
    bool comb[NODE__MAXSTAGES + 1] = { false }, combz[NODE__MAXSTAGES + 1] = { false };
    bool erre[NODE__MAXSTAGES + 1] = { false }, errbee[NODE__MAXSTAGES + 1] = { false };
    double *k[NODE__MAXSTAGES];
    fill_stages(k);
    for (size_t j = 0; j < node__tableau_count(); j++) {
        const node__tableau *tab = node__tableau_at(j);
        const int S = tab->s_dense;
        node__lincomb lc;
        const node__ode_kernels *kern = node__ode_kernels_for(NODE__ISA_GENERIC);
        for (int i = 0; i < S; i++) {              /* rows of A (row 0: no terms) */
            node__lincomb_make(&lc, kern, tab->A + (size_t)i * S, i, k);
            comb[lc.m] = true;
        }
        node__lincomb_make(&lc, kern, tab->b, tab->s, k);
        comb[lc.m] = true;
        for (int t = 1; t < 256; t++) {           /* dense weights */
            double w[NODE__MAXSTAGES];
            tab->dense(t / 256.0, w, NULL);
            node__lincomb_make(&lc, kern, w, S, k);
            comb[lc.m] = true;
        }
        if (!tab->e)
            continue;
        node__lincomb_make(&lc, kern, tab->e, tab->s, k);
        combz[lc.m] = true;
        if (tab->e3) {
            node__lincomb_make(&lc, kern, tab->e3, tab->s, k);
            combz[lc.m] = true;
        }
        for (int isa = 0; isa < NODE__NISA; isa++) {
            if (!node__isa_usable((node__isa)isa))
                continue;
            kern = node__ode_kernels_for((node__isa)isa);
            for (size_t dim = 1; dim <= 1000; dim *= 1000) {
                node__errpass ep;
                node__errpass_make(&ep, kern, dim, tab, k);
                int small = dim <= NODE__SMALLDIM;
                node__err_fn spec = ep.bee ? kern->errbee[small][ep.m] : kern->erre[small][ep.m];
                if (!ep.fn || ep.fn != spec)
                    fail_msg("%s: no specialised fused error kernel for %d terms (%s, dim %zu)",
                             tab->name, ep.m, ep.bee ? "b, e, e3" : "e alone", dim);
                (ep.bee ? errbee : erre)[ep.m] = true;
            }
        }
    }
    for (int isa = 0; isa < NODE__NISA; isa++) {
        if (!node__isa_usable((node__isa)isa))
            continue;
        const node__ode_kernels *kern = node__ode_kernels_for((node__isa)isa);
        for (int m = 0; m <= NODE__MAXSTAGES; m++) {
            if ((comb[m] != (kern->comb[m] != NULL)) || (combz[m] != (kern->combz[m] != NULL)))
                fail_msg("%d terms: reached %d/%d (with/without y), specialised kernel %d/%d",
                         m, comb[m], combz[m], kern->comb[m] != NULL, kern->combz[m] != NULL);
            for (int small = 0; small < 2; small++)
                if (erre[m] != (kern->erre[small][m] != NULL) ||
                    errbee[m] != (kern->errbee[small][m] != NULL))
                    fail_msg("%d terms: fused error pass reached %d/%d (e / b,e,e3), specialised "
                             "%d/%d", m, erre[m], errbee[m], kern->erre[small][m] != NULL,
                             kern->errbee[small][m] != NULL);
        }
        assert_non_null(kern->comb_any);
        assert_non_null(kern->combz_any);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_error_pass_matches_unfused_bit_for_bit),
        cmocka_unit_test(test_combination_kernels_every_term_count),
        cmocka_unit_test(test_error_kernels_every_term_count),
        cmocka_unit_test(test_every_reached_term_count_has_a_specialised_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
