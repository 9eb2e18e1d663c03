/* test_ode_kernels.c — the solver core's shape-specialised kernels against its generic
 * path: the error estimate fused with the default RMS norm (element by element up to
 * dim 8, by blocks of 64 above) must reproduce, bit for bit, the solve that forms the
 * error vector and measures it with a custom norm of the same formula (the contract's
 * RMS norm), at every dim and method, NaN/Inf retries included; and the combination
 * kernels (one per number of terms) must match a plain left-to-right sum.
 */
#include "test_util.h"
#include "internal.h"

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
    static const node_method ms[] = { NODE_BOSH3, NODE_DOPRI5, NODE_DOP853 };
    static double a[NT * MAXDIM], b[NT * MAXDIM];
    for (size_t q = 0; q < sizeof dims / sizeof dims[0]; q++)
        for (size_t j = 0; j < 3; j++)
            for (int nan = 0; nan < 2; nan++)
                for (int k = 0; k < 2; k++) {
                    size_t dim = dims[q];
                    double tol = k ? 1e-9 : 1e-4;
                    node_stats sa, sb;
                    double ha, hb;
                    node_status ra = solve(dim, ms[j], tol, 1, nan, a, &sa, &ha);
                    node_status rb = solve(dim, ms[j], tol, 0, nan, b, &sb, &hb);
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

/* out = y + h Σ w_i k_i for every number of non-zero terms 0..16, aliasing out = y
   included, against the plain sum formed left to right. */
static void test_combination_kernels_every_term_count(void **state)
{
    (void)state;
    enum { D = 37 };
    static double kbuf[NODE__MAXSTAGES][D], y[D], out[D], want[D];
    double *k[NODE__MAXSTAGES];
    for (int i = 0; i < NODE__MAXSTAGES; i++) {
        k[i] = kbuf[i];
        for (int d = 0; d < D; d++)
            kbuf[i][d] = sin(1.0 + i * 0.7 + d * 0.13);
    }
    for (int isa = 0; isa < NODE__NISA; isa++) {
      if (!node__isa_usable((node__isa)isa))
          continue;
      const node__ode_kernels *kern = node__ode_kernels_for((node__isa)isa);
      for (size_t dim = 1; dim <= D; dim += 9)
        for (int n = 0; n <= NODE__MAXSTAGES; n++)
            for (int alias = 0; alias < 2; alias++) {
                double w[NODE__MAXSTAGES];
                for (int i = 0; i < n; i++)   /* every third weight zero */
                    w[i] = i % 3 == 2 ? 0 : 0.1 * (i + 1) - 0.35;
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
                }
                double *dst = alias ? y : out;
                node__rk_combine(kern, dim, y, 0.25, w, n, k, dst);
                assert_memory_equal(dst, want, dim * sizeof(double));
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_error_pass_matches_unfused_bit_for_bit),
        cmocka_unit_test(test_combination_kernels_every_term_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
