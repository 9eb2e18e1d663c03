/* test_planar.c — the planar flows of cnf.h against independent references:
 *  - the planar CNF (node_planar_*): f against the formula written out here from the
 *    hypernetwork's outputs; div (exact) against the trace of a central-difference
 *    Jacobian of f and div (probe) against εᵀJε of it; div_vjp's products for z, θ
 *    and t against central differences of Σ_r a_rᵀf_r + b_r div_r (batch 3, b ≠ 0,
 *    both trace kinds); no allocation once the flow exists; inside a node_cnf, the
 *    gradient of a loss of (x, dlogp) against central differences in θ and z0;
 *  - the discrete planar NF (node_planar_nf_*): log-det against log|det| of a
 *    central-difference Jacobian of the whole K-layer map; the gradient of a loss of
 *    (z_out, dlogp) against central differences in z_in and θ; every layer invertible
 *    (1 + ûᵀψ > 0) for random, deliberately bad parameters;
 *  - refused arguments, with their messages, and failed allocations in create.
 */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------- */

static uint64_t lcg = 12345;
static double urand(void)   /* U(0, 1): the test's own generator */
{
    lcg = lcg * 6364136223846793005u + 1442695040888963407u;
    return (double)(lcg >> 11) * 0x1p-53;
}
static double srand1(double scale) { return (2.0 * urand() - 1.0) * scale; }

/* Determinant of an n × n matrix (n ≤ 8) by Gaussian elimination with pivoting. */
static double det(size_t n, const double *a_in)
{
    double a[64];
    memcpy(a, a_in, n * n * sizeof(double));
    double d = 1;
    for (size_t c = 0; c < n; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[piv * n + c]))
                piv = r;
        if (piv != c) {
            for (size_t k = 0; k < n; k++) {
                double t = a[c * n + k];
                a[c * n + k] = a[piv * n + k];
                a[piv * n + k] = t;
            }
            d = -d;
        }
        d *= a[c * n + c];
        if (a[c * n + c] == 0)
            return 0;
        for (size_t r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (size_t k = c; k < n; k++)
                a[r * n + k] -= f * a[c * n + k];
        }
    }
    return d;
}

/* ---- the planar CNF ------------------------------------------------------------- */

enum { D = 3, M = 4, HID = 5, B = 3 };

typedef struct fixture {
    node_planar *p;
    node_flow fl;
    double z[B * D], eps[B * D], a[B * D], b[B];
    double t;
} fixture;

static void make_fixture(fixture *fx)
{
    assert_status(node_planar_create(&fx->p, D, M, HID, NULL), NODE_OK);
    node_planar_init(fx->p, 7);
    /* Larger biases of the hypernetwork's last layer: b_m(t) far from 0, the gates
       away from ½. */
    size_t np = node_planar_nparams(fx->p), nout = 3 * M * D + M;
    double *th = node_planar_params(fx->p);
    for (size_t i = np - nout; i < np; i++)
        th[i] += srand1(0.8);
    assert_status(node_planar_flow(fx->p, B, &fx->fl), NODE_OK);
    for (size_t i = 0; i < B * D; i++) {
        fx->z[i] = srand1(1.5);
        fx->eps[i] = urand() < 0.5 ? -1.0 : 1.0;
        fx->a[i] = srand1(1.0);
    }
    fx->eps[1] = 0.7;   /* a Gaussian-like entry too: any probe */
    for (size_t r = 0; r < B; r++)
        fx->b[r] = srand1(2.0);
    fx->t = 0.37;
}

/* f written out from the hypernetwork's outputs, as torchdiffeq's cnf.py computes it. */
static void ref_f(node_planar *p, double t, const double *z, double *out)
{
    node_mlp *h = node_planar_hypernet(p);
    double o[3 * M * D + M];
    assert_status(node_mlp_forward(h, 1, 0.0, &t, o), NODE_OK);
    const double *W = o, *U = o + M * D, *G = o + 2 * M * D, *Bb = o + 3 * M * D;
    for (size_t r = 0; r < B; r++)
        for (size_t i = 0; i < D; i++) {
            double s = 0;
            for (size_t m = 0; m < M; m++) {
                double wz = Bb[m];
                for (size_t j = 0; j < D; j++)
                    wz += W[m * D + j] * z[r * D + j];
                s += U[m * D + i] / (1.0 + exp(-G[m * D + i])) * tanh(wz);
            }
            out[r * D + i] = s / M;
        }
}

static void test_planar_f_matches_the_formula(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx);
    assert_int_equal(fx.fl.width, D);
    /* 1·5+5 + 5·5+5 + 5·40+40 */
    assert_int_equal(fx.fl.nparams, 10 + 30 + 240);
    assert_int_equal(node_planar_nparams(fx.p), fx.fl.nparams);
    assert_ptr_equal(node_planar_params(fx.p), node_mlp_params(node_planar_hypernet(fx.p)));
    double f[B * D], want[B * D];
    assert_int_equal(fx.fl.f(fx.fl.ctx, B, fx.t, fx.z, f), 0);
    ref_f(fx.p, fx.t, fx.z, want);
    for (size_t i = 0; i < B * D; i++)
        assert_close(f[i], want[i], 1e-13, 1e-15);
    /* the batch is row by row: row 1 alone gives the same row */
    double f1[D];
    assert_int_equal(fx.fl.f(fx.fl.ctx, 1, fx.t, fx.z + D, f1), 0);
    for (size_t i = 0; i < D; i++)
        assert_close(f1[i], f[D + i], 1e-15, 0);
    node_planar_free(fx.p);
}

/* Row r's Jacobian ∂f_r/∂z_r by central differences. */
static void fd_jacobian(fixture *fx, size_t r, double *J)
{
    const double h = 1e-5;
    double z[B * D], fp[B * D], fm[B * D];
    for (size_t j = 0; j < D; j++) {
        memcpy(z, fx->z, sizeof z);
        z[r * D + j] += h;
        assert_int_equal(fx->fl.f(fx->fl.ctx, B, fx->t, z, fp), 0);
        z[r * D + j] -= 2 * h;
        assert_int_equal(fx->fl.f(fx->fl.ctx, B, fx->t, z, fm), 0);
        for (size_t i = 0; i < D; i++)
            J[i * D + j] = (fp[r * D + i] - fm[r * D + i]) / (2 * h);
    }
}

static void test_planar_div_against_fd_jacobian(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx);
    double dz[B * D], f[B * D], ex[B], hu[B];
    assert_int_equal(fx.fl.div(fx.fl.ctx, B, fx.t, fx.z, NULL, dz, ex), 0);
    assert_int_equal(fx.fl.div(fx.fl.ctx, B, fx.t, fx.z, fx.eps, NULL, hu), 0);
    assert_int_equal(fx.fl.f(fx.fl.ctx, B, fx.t, fx.z, f), 0);
    for (size_t i = 0; i < B * D; i++)
        assert_close(dz[i], f[i], 1e-15, 0);
    for (size_t r = 0; r < B; r++) {
        double J[D * D], tr = 0, q = 0;
        fd_jacobian(&fx, r, J);
        for (size_t i = 0; i < D; i++) {
            tr += J[i * D + i];
            for (size_t j = 0; j < D; j++)
                q += fx.eps[r * D + i] * J[i * D + j] * fx.eps[r * D + j];
        }
        assert_close(ex[r], tr, 1e-7, 1e-9);
        assert_close(hu[r], q, 1e-7, 1e-9);
    }
    node_planar_free(fx.p);
}

/* φ = Σ_r a_rᵀ f_r + b_r div_r at (t, z) with the flow's current θ. */
static double phi(fixture *fx, double t, const double *z, const double *eps)
{
    double f[B * D], dv[B], s = 0;
    assert_int_equal(fx->fl.div(fx->fl.ctx, B, t, z, eps, f, dv), 0);
    for (size_t r = 0; r < B; r++) {
        s += fx->b[r] * dv[r];
        for (size_t i = 0; i < D; i++)
            s += fx->a[r * D + i] * f[r * D + i];
    }
    return s;
}

static void check_vjp(fixture *fx, const double *eps)
{
    size_t np = fx->fl.nparams;
    double vz[B * D], vt = 0, dz[B * D], dv[B], f[B * D], dvw[B];
    double *vp = test_malloc(np * sizeof(double));
    assert_int_equal(fx->fl.div_vjp(fx->fl.ctx, B, fx->t, fx->z, eps, fx->a, fx->b, dz, dv,
                                    vz, vp, &vt), 0);
    assert_int_equal(fx->fl.div(fx->fl.ctx, B, fx->t, fx->z, eps, f, dvw), 0);
    for (size_t i = 0; i < B * D; i++)
        assert_close(dz[i], f[i], 1e-15, 0);
    for (size_t r = 0; r < B; r++)
        assert_close(dv[r], dvw[r], 1e-15, 0);
    const double h = 1e-5;
    double z[B * D];
    for (size_t i = 0; i < B * D; i++) {
        memcpy(z, fx->z, sizeof z);
        z[i] += h;
        double fp = phi(fx, fx->t, z, eps);
        z[i] -= 2 * h;
        double fm = phi(fx, fx->t, z, eps);
        assert_close(vz[i], (fp - fm) / (2 * h), 1e-6, 1e-8);
    }
    double *th = node_planar_params(fx->p);
    for (size_t k = 0; k < np; k++) {
        double keep = th[k];
        th[k] = keep + h;
        double fp = phi(fx, fx->t, fx->z, eps);
        th[k] = keep - h;
        double fm = phi(fx, fx->t, fx->z, eps);
        th[k] = keep;
        assert_close(vp[k], (fp - fm) / (2 * h), 1e-6, 1e-8);
    }
    double ft = (phi(fx, fx->t + h, fx->z, eps) - phi(fx, fx->t - h, fx->z, eps)) / (2 * h);
    assert_close(vt, ft, 1e-6, 1e-8);
    /* b NULL: the plain VJP of f (the div terms vanish); only vjp_z requested */
    double vz0[B * D], b0[B] = { 0 };
    double vz0w[B * D];
    assert_int_equal(fx->fl.div_vjp(fx->fl.ctx, B, fx->t, fx->z, eps, fx->a, NULL, NULL,
                                    NULL, vz0, NULL, NULL), 0);
    assert_int_equal(fx->fl.div_vjp(fx->fl.ctx, B, fx->t, fx->z, eps, fx->a, b0, NULL,
                                    NULL, vz0w, vp, NULL), 0);
    for (size_t i = 0; i < B * D; i++)
        assert_close(vz0[i], vz0w[i], 1e-15, 0);
    test_free(vp);
}

static void test_planar_vjp_against_fd(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx);
    check_vjp(&fx, NULL);
    check_vjp(&fx, fx.eps);
    node_planar_free(fx.p);
}

static void test_planar_calls_do_not_allocate(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx);
    double dz[B * D], dv[B], vz[B * D], vt;
    double *vp = test_malloc(fx.fl.nparams * sizeof(double));
    node_test_alloc_begin(-1);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(fx.fl.f(fx.fl.ctx, B, fx.t, fx.z, dz), 0);
        assert_int_equal(fx.fl.div(fx.fl.ctx, B, fx.t, fx.z, fx.eps, dz, dv), 0);
        assert_int_equal(fx.fl.div_vjp(fx.fl.ctx, B, fx.t, fx.z, NULL, fx.a, fx.b, dz, dv,
                                       vz, vp, &vt), 0);
    }
    assert_int_equal(node_test_alloc_end(), 0);
    test_free(vp);
    node_planar_free(fx.p);
}

static void expect_create_refused(size_t dim, size_t units, const char *what)
{
    node_planar *p = NULL;
    node_error err;
    assert_status(node_planar_create(&p, dim, units, 0, &err), NODE_EINVAL);
    assert_null(p);
    assert_int_equal(err.status, NODE_EINVAL);
    if (!strstr(err.message, what))
        fail_msg("message \"%s\" does not name \"%s\"", err.message, what);
}

static void test_planar_refuses_bad_arguments(void **state)
{
    (void)state;
    node_error err;
    assert_status(node_planar_create(NULL, 2, 2, 0, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "out"));
    expect_create_refused(0, 2, "dim");
    expect_create_refused(2, 0, "units");
    expect_create_refused(SIZE_MAX / 2, 3, "overflow");
    /* hidden 0 = 32: 1·32+32 + 32·32+32 + 33·(3·2·2+2) */
    node_planar *p;
    assert_status(node_planar_create(&p, 2, 2, 0, &err), NODE_OK);
    assert_int_equal(err.status, NODE_OK);
    assert_string_equal(err.message, "");
    assert_int_equal(node_planar_nparams(p), 64 + 1056 + 33 * 14);
    node_flow fl;
    assert_status(node_planar_flow(NULL, 0, &fl), NODE_EINVAL);
    assert_status(node_planar_flow(p, 0, NULL), NODE_EINVAL);
    assert_status(node_planar_flow(p, 0, &fl), NODE_OK);
    assert_int_equal(fl.reserved_[0], 0);
    double z[2] = { 0.1, 0.2 }, o[2], dv[1], a[2] = { 1, 1 }, vz[2];
    assert_int_not_equal(fl.f(fl.ctx, 0, 0.0, z, o), 0);
    assert_int_not_equal(fl.f(fl.ctx, 1, 0.0, NULL, o), 0);
    assert_int_not_equal(fl.f(fl.ctx, 1, 0.0, z, NULL), 0);
    assert_int_not_equal(fl.div(fl.ctx, 1, 0.0, z, NULL, o, NULL), 0);
    assert_int_not_equal(fl.div(fl.ctx, 0, 0.0, z, NULL, o, dv), 0);
    assert_int_not_equal(fl.div_vjp(fl.ctx, 1, 0.0, z, NULL, NULL, NULL, o, dv, vz, NULL,
                                    NULL), 0);
    assert_int_not_equal(fl.div_vjp(fl.ctx, 1, 0.0, z, NULL, a, NULL, o, dv, NULL, NULL,
                                    NULL), 0);
    assert_int_not_equal(fl.f(NULL, 1, 0.0, z, o), 0);
    /* zero parameters: f = 0, div = 0 */
    assert_int_equal(fl.div(fl.ctx, 1, 0.5, z, NULL, o, dv), 0);
    assert_close(o[0], 0, 0, 0);
    assert_close(dv[0], 0, 0, 0);
    node_planar_free(p);
    node_planar_free(NULL);
    node_planar_init(NULL, 1);
    assert_int_equal(node_planar_nparams(NULL), 0);
    assert_null(node_planar_params(NULL));
    assert_null(node_planar_hypernet(NULL));
}

static void test_planar_create_survives_failed_allocations(void **state)
{
    (void)state;
    for (long k = 0;; k++) {
        node_planar *p = NULL;
        node_error err;
        node_test_alloc_begin(k);
        node_status st = node_planar_create(&p, 2, 3, 4, &err);
        node_planar_free(p);
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
        if (st == NODE_OK)
            break;
        assert_status(st, NODE_ENOMEM);
        assert_null(p);
        assert_true(k < 100);
    }
}

/* The planar flow inside a node_cnf, as examples/cnf_match.c trains it: the gradient
   of L = Σ_r c_rᵀx_r + d_r dlogp_r (x, dlogp from transporting z0 from t = 0 to 1)
   by node_cnf_transport_grad against central differences of L over θ and z0. */
static double cnf_loss(node_cnf *c, size_t n, const double *z0, const double *cc,
                       const double *dd, double *x, double *dl)
{
    assert_status(node_cnf_transport(c, n, z0, 0.0, 1.0, x, dl, NULL), NODE_OK);
    double L = 0;
    for (size_t r = 0; r < n; r++) {
        L += dd[r] * dl[r];
        for (size_t i = 0; i < 2; i++)
            L += cc[2 * r + i] * x[2 * r + i];
    }
    return L;
}

static void test_planar_cnf_gradient_against_fd(void **state)
{
    (void)state;
    enum { n = 3 };
    node_planar *p;
    node_flow fl;
    node_cnf *c;
    assert_status(node_planar_create(&p, 2, 3, 4, NULL), NODE_OK);
    node_planar_init(p, 11);
    assert_status(node_planar_flow(p, n, &fl), NODE_OK);
    node_cnf_options o = node_cnf_options_default();
    o.ode.rtol = o.ode.atol = 1e-11;
    assert_status(node_cnf_create(&c, &fl, n, &o, NULL), NODE_OK);
    double z0[2 * n], cc[2 * n], dd[n], x[2 * n], dl[n], gx[2 * n], gz[2 * n];
    for (size_t i = 0; i < 2 * n; i++) {
        z0[i] = srand1(1.5);
        cc[i] = srand1(1.0);
    }
    for (size_t r = 0; r < n; r++)
        dd[r] = srand1(1.0);
    size_t np = node_planar_nparams(p);
    double *g = test_malloc(np * sizeof(double)), *th = node_planar_params(p);
    cnf_loss(c, n, z0, cc, dd, x, dl);
    memcpy(gx, cc, sizeof gx);
    assert_status(node_cnf_transport_grad(c, n, z0, 0.0, 1.0, x, dl, gx, dd, gz, g, NULL),
                  NODE_OK);
    const double h = 1e-5;
    double xs[2 * n], ds[n];
    for (size_t k = 0; k < np; k += 7) {
        double keep = th[k];
        th[k] = keep + h;
        double Lp = cnf_loss(c, n, z0, cc, dd, xs, ds);
        th[k] = keep - h;
        double Lm = cnf_loss(c, n, z0, cc, dd, xs, ds);
        th[k] = keep;
        assert_close(g[k], (Lp - Lm) / (2 * h), 1e-5, 1e-7);
    }
    for (size_t i = 0; i < 2 * n; i++) {
        double z[2 * n];
        memcpy(z, z0, sizeof z);
        z[i] += h;
        double Lp = cnf_loss(c, n, z, cc, dd, xs, ds);
        z[i] -= 2 * h;
        double Lm = cnf_loss(c, n, z, cc, dd, xs, ds);
        assert_close(gz[i], (Lp - Lm) / (2 * h), 1e-5, 1e-7);
    }
    test_free(g);
    node_cnf_free(c);
    node_planar_free(p);
}

/* ---- the discrete planar NF ---------------------------------------------------------- */

enum { ND = 3, NK = 4, NB = 3 };

/* θ with some wᵀu < −1 (where the plain planar layer would not be invertible) and b ≠ 0. */
static void nf_random(node_planar_nf *f, double scale)
{
    size_t np = node_planar_nf_nparams(f);
    double *th = node_planar_nf_params(f);
    for (size_t i = 0; i < np; i++)
        th[i] = srand1(scale);
}

static void nf_map(node_planar_nf *f, const double *zin, double *zout, double *dl)
{
    assert_status(node_planar_nf_forward(f, NB, zin, zout, dl), NODE_OK);
}

static void test_nf_logdet_against_fd_jacobian(void **state)
{
    (void)state;
    node_planar_nf *f;
    assert_status(node_planar_nf_create(&f, ND, NK, NULL), NODE_OK);
    assert_int_equal(node_planar_nf_nparams(f), NK * (2 * ND + 1));
    nf_random(f, 1.5);
    double zin[NB * ND], zout[NB * ND], dl[NB];
    for (size_t i = 0; i < NB * ND; i++)
        zin[i] = srand1(1.0);
    nf_map(f, zin, zout, dl);
    const double h = 1e-6;
    for (size_t r = 0; r < NB; r++) {
        double J[ND * ND], z[NB * ND], zp[NB * ND], zm[NB * ND], d2[NB];
        for (size_t j = 0; j < ND; j++) {
            memcpy(z, zin, sizeof z);
            z[r * ND + j] += h;
            nf_map(f, z, zp, d2);
            z[r * ND + j] -= 2 * h;
            nf_map(f, z, zm, d2);
            for (size_t i = 0; i < ND; i++)
                J[i * ND + j] = (zp[r * ND + i] - zm[r * ND + i]) / (2 * h);
        }
        double dt = det(ND, J);
        assert_true(dt > 0);
        assert_close(dl[r], -log(fabs(dt)), 1e-7, 1e-8);
    }
    node_planar_nf_free(f);
}

/* L = Σ_r c_rᵀ z_out_r + d_r dlogp_r + ½|z_out_r|² */
static double nf_loss(node_planar_nf *f, const double *zin, const double *c, const double *d)
{
    double zout[NB * ND], dl[NB], L = 0;
    nf_map(f, zin, zout, dl);
    for (size_t r = 0; r < NB; r++) {
        L += d[r] * dl[r];
        for (size_t i = 0; i < ND; i++)
            L += c[r * ND + i] * zout[r * ND + i] + 0.5 * zout[r * ND + i] * zout[r * ND + i];
    }
    return L;
}

static void test_nf_grad_against_fd(void **state)
{
    (void)state;
    node_planar_nf *f;
    assert_status(node_planar_nf_create(&f, ND, NK, NULL), NODE_OK);
    nf_random(f, 1.5);
    size_t np = node_planar_nf_nparams(f);
    double *th = node_planar_nf_params(f);
    double zin[NB * ND], c[NB * ND], d[NB];
    for (size_t i = 0; i < NB * ND; i++) {
        zin[i] = srand1(1.0);
        c[i] = srand1(1.0);
    }
    for (size_t r = 0; r < NB; r++)
        d[r] = srand1(2.0);
    double zout[NB * ND], dl[NB], gz[NB * ND], gzin[NB * ND], gth[NK * (2 * ND + 1)];
    nf_map(f, zin, zout, dl);
    for (size_t i = 0; i < NB * ND; i++)
        gz[i] = c[i] + zout[i];
    assert_status(node_planar_nf_grad(f, NB, zin, gz, d, gzin, gth), NODE_OK);
    /* the same without dL/dz_in (the row scratch path) */
    double gth2[NK * (2 * ND + 1)];
    assert_status(node_planar_nf_grad(f, NB, zin, gz, d, NULL, gth2), NODE_OK);
    for (size_t k = 0; k < np; k++)
        assert_close(gth2[k], gth[k], 1e-15, 0);
    const double h = 1e-6;
    for (size_t i = 0; i < NB * ND; i++) {
        double z[NB * ND];
        memcpy(z, zin, sizeof z);
        z[i] += h;
        double Lp = nf_loss(f, z, c, d);
        z[i] -= 2 * h;
        double Lm = nf_loss(f, z, c, d);
        assert_close(gzin[i], (Lp - Lm) / (2 * h), 1e-6, 1e-8);
    }
    for (size_t k = 0; k < np; k++) {
        double keep = th[k];
        th[k] = keep + h;
        double Lp = nf_loss(f, zin, c, d);
        th[k] = keep - h;
        double Lm = nf_loss(f, zin, c, d);
        th[k] = keep;
        assert_close(gth[k], (Lp - Lm) / (2 * h), 1e-6, 1e-8);
    }
    /* dL/ddlogp NULL = 0 */
    double zero[NB] = { 0 }, g0[NK * (2 * ND + 1)], g1[NK * (2 * ND + 1)];
    nf_map(f, zin, zout, dl);
    assert_status(node_planar_nf_grad(f, NB, zin, gz, NULL, NULL, g0), NODE_OK);
    assert_status(node_planar_nf_grad(f, NB, zin, gz, zero, NULL, g1), NODE_OK);
    for (size_t k = 0; k < np; k++)
        assert_close(g0[k], g1[k], 0, 0);
    node_planar_nf_free(f);
}

/* Every layer invertible: for random parameters (scaled up so that wᵀu < −1 often),
   the Jacobian determinant of one layer, by central differences, is positive and
   equals 1 + ûᵀψ as the forward pass reports it; the map is also monotone along w
   (one-to-one: wᵀz' increases with wᵀz). */
static void test_nf_layers_are_invertible(void **state)
{
    (void)state;
    enum { d = 2 };
    node_planar_nf *f;
    assert_status(node_planar_nf_create(&f, d, 1, NULL), NODE_OK);
    double *th = node_planar_nf_params(f);
    int below = 0;
    for (int trial = 0; trial < 300; trial++) {
        for (size_t i = 0; i < 2 * d + 1; i++)
            th[i] = srand1(4.0);
        below += th[0] * th[2] + th[1] * th[3] < -1;
        double z[d] = { srand1(3.0), srand1(3.0) }, zo[d], dl, J[d * d];
        assert_status(node_planar_nf_forward(f, 1, z, zo, &dl), NODE_OK);
        const double h = 1e-6;
        for (size_t j = 0; j < d; j++) {
            double zp[d], zm[d], op[d], om[d], l2;
            memcpy(zp, z, sizeof z);
            memcpy(zm, z, sizeof z);
            zp[j] += h;
            zm[j] -= h;
            assert_status(node_planar_nf_forward(f, 1, zp, op, &l2), NODE_OK);
            assert_status(node_planar_nf_forward(f, 1, zm, om, &l2), NODE_OK);
            for (size_t i = 0; i < d; i++)
                J[i * d + j] = (op[i] - om[i]) / (2 * h);
        }
        double dt = det(d, J);
        assert_true(dt > 0);
        assert_close(exp(-dl), dt, 1e-5, 1e-9);
        /* along w: s(α) = wᵀ(z0 + α w/|w|²) ↦ wᵀz' is increasing */
        double ww = th[0] * th[0] + th[1] * th[1], prev = -INFINITY;
        for (int k = -40; k <= 40; k++) {
            double al = k * 0.25, zz[d] = { th[0] * al / ww, th[1] * al / ww }, oo[d], l3;
            assert_status(node_planar_nf_forward(f, 1, zz, oo, &l3), NODE_OK);
            double s = th[0] * oo[0] + th[1] * oo[1];
            assert_true(s > prev);
            prev = s;
        }
    }
    assert_true(below > 30);   /* the fix was exercised */
    node_planar_nf_free(f);
}

static void test_nf_refuses_bad_arguments(void **state)
{
    (void)state;
    node_error err;
    node_planar_nf *f = NULL;
    assert_status(node_planar_nf_create(NULL, 2, 2, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "out"));
    assert_status(node_planar_nf_create(&f, 0, 2, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "dim"));
    assert_status(node_planar_nf_create(&f, 2, 0, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "layers"));
    assert_status(node_planar_nf_create(&f, SIZE_MAX / 2, 4, &err), NODE_EINVAL);
    assert_non_null(strstr(err.message, "overflow"));
    assert_null(f);
    assert_status(node_planar_nf_create(&f, 2, 2, &err), NODE_OK);
    node_planar_nf_init(f, 3);
    double *th = node_planar_nf_params(f);
    assert_close(th[4], 0, 0, 0);   /* b_1 = 0 */
    for (size_t i = 0; i < 4; i++)
        assert_true(fabs(th[i]) <= 1 / sqrt(2.0) && th[i] != 0);
    double z[4] = { 0.1, 0.2, 0.3, -0.4 }, zo[4], dl[2], g[4], gz[4], gt[10];
    for (size_t i = 0; i < 4; i++)
        g[i] = 1;
    /* no forward yet */
    assert_status(node_planar_nf_grad(f, 2, z, g, NULL, gz, gt), NODE_EINVAL);
    assert_status(node_planar_nf_forward(NULL, 2, z, zo, dl), NODE_EINVAL);
    assert_status(node_planar_nf_forward(f, 0, z, zo, dl), NODE_EINVAL);
    assert_status(node_planar_nf_forward(f, 2, NULL, zo, dl), NODE_EINVAL);
    assert_status(node_planar_nf_forward(f, 2, z, NULL, dl), NODE_EINVAL);
    assert_status(node_planar_nf_forward(f, 2, z, zo, NULL), NODE_EINVAL);
    assert_status(node_planar_nf_forward(f, 2, z, zo, dl), NODE_OK);
    assert_status(node_planar_nf_grad(NULL, 2, z, g, NULL, gz, gt), NODE_EINVAL);
    assert_status(node_planar_nf_grad(f, 2, z, NULL, NULL, gz, gt), NODE_EINVAL);
    assert_status(node_planar_nf_grad(f, 2, NULL, g, NULL, gz, gt), NODE_EINVAL);
    assert_status(node_planar_nf_grad(f, 1, z, g, NULL, gz, gt), NODE_EINVAL);  /* batch */
    double z2[4] = { 0.1, 0.2, 0.3, -0.41 };
    assert_status(node_planar_nf_grad(f, 2, z2, g, NULL, gz, gt), NODE_EINVAL); /* z_in */
    th[1] += 0.01;   /* θ changed since the forward pass */
    assert_status(node_planar_nf_grad(f, 2, z, g, NULL, gz, gt), NODE_EINVAL);
    th[1] -= 0.01;
    assert_status(node_planar_nf_grad(f, 2, z, g, NULL, gz, gt), NODE_OK);
    assert_status(node_planar_nf_grad(f, 2, z, g, NULL, NULL, NULL), NODE_OK);
    /* a second forward of the same batch does not allocate */
    node_test_alloc_begin(-1);
    assert_status(node_planar_nf_forward(f, 2, z, zo, dl), NODE_OK);
    assert_status(node_planar_nf_grad(f, 2, z, g, NULL, gz, gt), NODE_OK);
    assert_int_equal(node_test_alloc_end(), 0);
    node_planar_nf_free(f);
    node_planar_nf_free(NULL);
    node_planar_nf_init(NULL, 1);
    assert_int_equal(node_planar_nf_nparams(NULL), 0);
    assert_null(node_planar_nf_params(NULL));
    /* failed allocations in create and in a first forward: nothing leaks */
    for (long k = 0;; k++) {
        node_planar_nf *q = NULL;
        node_test_alloc_begin(k);
        node_status st = node_planar_nf_create(&q, 2, 3, NULL);
        if (st == NODE_OK)
            st = node_planar_nf_forward(q, 2, z, zo, dl);
        node_planar_nf_free(q);
        node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
        if (st == NODE_OK)
            break;
        assert_status(st, NODE_ENOMEM);
        assert_true(k < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planar_f_matches_the_formula),
        cmocka_unit_test(test_planar_div_against_fd_jacobian),
        cmocka_unit_test(test_planar_vjp_against_fd),
        cmocka_unit_test(test_planar_calls_do_not_allocate),
        cmocka_unit_test(test_planar_refuses_bad_arguments),
        cmocka_unit_test(test_planar_create_survives_failed_allocations),
        cmocka_unit_test(test_planar_cnf_gradient_against_fd),
        cmocka_unit_test(test_nf_logdet_against_fd_jacobian),
        cmocka_unit_test(test_nf_grad_against_fd),
        cmocka_unit_test(test_nf_layers_are_invertible),
        cmocka_unit_test(test_nf_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
