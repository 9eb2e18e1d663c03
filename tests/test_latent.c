/* test_latent.c — the latent ODE's numbers (seq.h): the gradient of the −ELBO against
 * central differences in every block of θ (exact backprop through a fixed-step solve;
 * the adjoint through a tight adaptive one); the masked union batch against each
 * series solved alone; loss and prediction against an independent composition of the
 * documented pieces (tanh cell by hand, f and g as separate MLPs, Gaussian NLL and KL
 * by their formulas); prediction against what the likelihood sees; PyTorch's
 * initialisation bounds; a seeded training run on irregularly sampled spirals.
 */
#include "latent_fixtures.h"

#include <stdio.h>

/* ---- helpers ----------------------------------------------------------------------- */

static double loss_of(node_latent *m, node_solver *s, const double *xs, const double *eps,
                      const node_options *o, double *grad, node_grad_method how)
{
    node_latent_terms t;
    node_error err;
    node_status st = node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, eps, o, how, &t,
                                      grad, NULL, &err);
    if (st != NODE_OK)
        print_error("node_latent_loss: %s\n", err.message);
    assert_status(st, NODE_OK);
    assert_close(t.loss, t.nll + t.kl, 1e-14, 0);
    return t.loss;
}

/* dL/dθ_k, (4 D(δ/2) - D(δ)) / 3 with D the central difference (Richardson), of the
   loss computed with options o. */
static double fd(node_latent *m, node_solver *s, const double *xs, const node_options *o,
                 size_t k, double delta)
{
    double *th = node_latent_params(m), x = th[k], Dd[2];
    for (int r = 0; r < 2; r++) {
        double d = delta / (r + 1);
        th[k] = x + d;
        double lp = loss_of(m, s, xs, LEPS, o, NULL, NODE_GRAD_ADJOINT);
        th[k] = x - d;
        double lm = loss_of(m, s, xs, LEPS, o, NULL, NODE_GRAD_ADJOINT);
        Dd[r] = (lp - lm) / (2 * d);
    }
    th[k] = x;
    return (4 * Dd[1] - Dd[0]) / 3;
}

/* Five parameters of each block: the cell, the encoder's output layer, f, g.  The
   gradient is taken with options o, the differences of the loss with options ofd. */
static void check_gradient_cell(node_grad_method how, node_options o, node_options ofd,
                                double rtol, double atol, node_cell_kind kind)
{
    node_latent *m = small_model_cell(11, kind);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    double xs[LNT * LB * LD], grad[LP_GRU];
    batch_values(xs);
    loss_of(m, s, xs, LEPS, &o, grad, how);
    size_t pc = kind == NODE_CELL_GRU ? LP_CELL_GRU : LP_CELL;
    const size_t start[4] = { 0, pc, pc + LP_ENC, pc + LP_ENC + LP_F };
    const size_t len[4] = { pc, LP_ENC, LP_F, LP_G };
    for (int blk = 0; blk < 4; blk++) {
        double gmax = 0;
        for (size_t k = start[blk]; k < start[blk] + len[blk]; k++)
            gmax = fmax(gmax, fabs(grad[k]));
        assert_true(gmax > 1e-6);   /* every block takes part */
        for (size_t j = 0; j < 5; j++) {
            size_t k = start[blk] + (j * 7919 + 13) % len[blk];
            double want = fd(m, s, xs, &ofd, k, 1e-3);
            assert_close(grad[k], want, rtol, atol * gmax);
        }
    }
    node_solver_free(s);
    node_latent_free(m);
}

static void check_gradient(node_grad_method how, node_options o, node_options ofd,
                           double rtol, double atol)
{
    check_gradient_cell(how, o, ofd, rtol, atol, (node_cell_kind)0);
}

/* Exact backprop through a fixed-step RK4 solve: the gradient of that very map. */
static void test_gradient_backprop_matches_differences(void **state)
{
    (void)state;
    check_gradient(NODE_GRAD_BACKPROP, rk4_options(), rk4_options(), 1e-6, 1e-8);
}

/* The same with a GRU encoder (cfg.rnn_cell): its block of θ included. */
static void test_gradient_backprop_matches_differences_gru(void **state)
{
    (void)state;
    check_gradient_cell(NODE_GRAD_BACKPROP, rk4_options(), rk4_options(), 1e-6, 1e-8,
                        NODE_CELL_GRU);
}

/* The adjoint of a tight adaptive solve (rtol 1e-11): the gradient of the exact loss,
   to the solver's tolerance.  The differences are taken of a fine fixed-step solve (RK4,
   h = 0.002, error ~1e-13): differences of an adaptive solve jump where a parameter
   change moves the step sequence (~1e-6 relative here), which would measure the
   differences, not the adjoint. */
static void test_gradient_adjoint_matches_differences(void **state)
{
    (void)state;
    node_options fine = rk4_options();
    fine.step = 0.002;
    check_gradient(NODE_GRAD_ADJOINT, tight_options(), fine, 1e-7, 1e-9);
}

/* ---- the union batch against each series alone -------------------------------------- */

/* Series b alone: its own times, with ts[0] put in front (unobserved) where it is not
   one of them, since the latent state starts at ts[0] of the batch. */
static void series_alone(node_latent *m, node_solver *s, size_t b, node_grad_method how,
                         const node_options *o, double *loss, double *grad)
{
    double ts[LNT], xs[LNT * LD];
    unsigned char enc[LNT], obs[LNT];
    size_t n = 0;
    for (size_t i = 0; i < LNT; i++) {
        size_t r = i * LB + b;
        if (!LENC[r] && !LOBS[r] && i > 0)
            continue;
        ts[n] = LTS[i];
        enc[n] = LENC[r];
        obs[n] = LOBS[r];
        series_value(b, LTS[i], xs + n * LD);
        n++;
    }
    assert_true(n < LNT);   /* the series is not the whole batch */
    node_latent_terms t;
    node_error err;
    assert_status(node_latent_loss(m, s, 1, n, ts, xs, enc, obs, LEPS + b * LL, o, how, &t,
                                   grad, NULL, &err), NODE_OK);
    *loss = t.loss;
}

static void check_union(node_grad_method how)
{
    node_latent *m = small_model(5);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_options o = tight_options();
    double xs[LNT * LB * LD], gu[LP], mean[LP] = { 0 }, gb[LP], lmean = 0, lb;
    batch_values(xs);
    double lu = loss_of(m, s, xs, LEPS, &o, gu, how);
    /* then each series alone, in workspaces the larger call sized and the smaller
       ones reuse at other offsets: nothing one call leaves may leak into the next */
    for (size_t b = 0; b < LB; b++) {
        series_alone(m, s, b, how, &o, &lb, gb);
        lmean += lb / LB;
        for (size_t k = 0; k < LP; k++)
            mean[k] += gb[k] / LB;
    }
    assert_close(lu, lmean, 1e-9, 0);
    assert_grads_close(LP, gu, mean, 1e-7, 1e-9);
    node_solver_free(s);
    node_latent_free(m);
}

static void test_union_batch_equals_each_series_alone_adjoint(void **state)
{
    (void)state;
    check_union(NODE_GRAD_ADJOINT);
}

static void test_union_batch_equals_each_series_alone_backprop(void **state)
{
    (void)state;
    check_union(NODE_GRAD_BACKPROP);
}

/* ---- an independent composition of the pieces ------------------------------------------ */

/* The recognition network of series b by hand: the tanh cell over its encoder
   observations, last first, input [x, t_next − t], then the linear layer. */
static void ref_encode(const double *th, size_t b, double *mu, double *lv)
{
    enum { NIN = LD + 1, W = NIN + LH };
    const double *Wc = th, *bc = th + LH * W;
    double h[LH] = { 0 }, next = NAN;
    for (size_t k = 0; k < LNT; k++) {
        size_t i = LNT - 1 - k;
        if (!LENC[i * LB + b])
            continue;
        double u[W], hn[LH];
        series_value(b, LTS[i], u);
        u[LD] = isnan(next) ? 0.0 : next - LTS[i];
        next = LTS[i];
        memcpy(u + NIN, h, sizeof h);
        for (size_t o = 0; o < LH; o++) {
            double a = bc[o];
            for (size_t c = 0; c < W; c++)
                a += Wc[o * W + c] * u[c];
            hn[o] = tanh(a);
        }
        memcpy(h, hn, sizeof h);
    }
    const double *We = th + LP_CELL, *be = We + 2 * LL * LH;
    for (size_t o = 0; o < 2 * LL; o++) {
        double a = be[o];
        for (size_t c = 0; c < LH; c++)
            a += We[o * LH + c] * h[c];
        if (o < LL)
            mu[o] = a;
        else
            lv[o - LL] = a;
    }
}

/* Series b: z0 from the encoder and eps (NULL: μ), its own solve of dz/dt = f(z) on
   all times, g at every time; returns −ELBO_b and writes the path and the decoding. */
static double ref_series(const double *th, size_t b, const double *eps, const node_options *o,
                         double *zs, double *xp)
{
    const size_t fs[4] = { LL, LHF, LHF, LL }, gs[3] = { LL, LHG, LD };
    const node_activation fa[3] = { NODE_ACT_ELU, NODE_ACT_ELU, NODE_ACT_IDENTITY };
    const node_activation ga[2] = { NODE_ACT_RELU, NODE_ACT_IDENTITY };
    node_mlp *f, *g;
    assert_status(node_mlp_create(&f, 3, fs, fa, 0), NODE_OK);
    assert_status(node_mlp_create(&g, 2, gs, ga, 0), NODE_OK);
    memcpy(node_mlp_params(f), th + LP_CELL + LP_ENC, LP_F * sizeof(double));
    memcpy(node_mlp_params(g), th + LP_CELL + LP_ENC + LP_F, LP_G * sizeof(double));
    double mu[LL], lv[LL], z0[LL], kl = 0, nll = 0;
    ref_encode(th, b, mu, lv);
    for (size_t j = 0; j < LL; j++) {
        z0[j] = eps ? mu[j] + exp(0.5 * lv[j]) * eps[j] : mu[j];
        kl += 0.5 * (exp(lv[j]) + mu[j] * mu[j] - 1 - lv[j]);
    }
    node_system sys;
    assert_status(node_mlp_system(f, 1, &sys), NODE_OK);
    assert_status(node_odeint(&sys, z0, LTS, LNT, zs, o, NULL), NODE_OK);
    assert_status(node_mlp_forward(g, LNT, 0.0, zs, xp), NODE_OK);
    for (size_t i = 0; i < LNT; i++) {
        if (!LOBS[i * LB + b])
            continue;
        double x[LD];
        series_value(b, LTS[i], x);
        for (size_t d = 0; d < LD; d++) {
            double r = x[d] - xp[i * LD + d];
            nll += r * r / (2 * LSTD * LSTD) + log(LSTD) + 0.5 * log(2 * L_PI);
        }
    }
    node_mlp_free(f);
    node_mlp_free(g);
    return nll + kl;
}

static void test_loss_and_predict_match_an_independent_composition(void **state)
{
    (void)state;
    node_latent *m = small_model(21);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_options o = tight_options();
    double xs[LNT * LB * LD], pred[LNT * LB * LD], z[LNT * LB * LL];
    batch_values(xs);
    for (int with_eps = 0; with_eps < 2; with_eps++) {
        const double *eps = with_eps ? LEPS : NULL;
        double want = 0;
        node_error err;
        assert_status(node_latent_predict(m, s, LB, LNT, LTS, xs, LENC, eps, &o, pred, z, NULL,
                                          &err), NODE_OK);
        for (size_t b = 0; b < LB; b++) {
            double zs[LNT * LL], xp[LNT * LD];
            want += ref_series(node_latent_params(m), b, eps ? eps + b * LL : NULL, &o, zs,
                               xp) / LB;
            for (size_t i = 0; i < LNT; i++) {
                for (size_t j = 0; j < LL; j++)
                    assert_close(z[(i * LB + b) * LL + j], zs[i * LL + j], 1e-8, 1e-9);
                for (size_t d = 0; d < LD; d++)
                    assert_close(pred[(i * LB + b) * LD + d], xp[i * LD + d], 1e-8, 1e-9);
            }
        }
        assert_close(loss_of(m, s, xs, eps, &o, NULL, NODE_GRAD_ADJOINT), want, 1e-9, 0);
    }
    node_solver_free(s);
    node_latent_free(m);
}

/* The likelihood term of the loss is the Gaussian NLL of exactly what predict returns
   at the observed entries (one solve each, same options: to rounding). */
static void test_predict_is_what_the_likelihood_sees(void **state)
{
    (void)state;
    node_latent *m = small_model(3);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_options o = node_options_default();
    double xs[LNT * LB * LD], pred[LNT * LB * LD];
    batch_values(xs);
    for (int with_eps = 0; with_eps < 2; with_eps++) {
        const double *eps = with_eps ? LEPS : NULL;
        node_latent_terms t;
        assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, eps, &o,
                                       NODE_GRAD_ADJOINT, &t, NULL, NULL, NULL), NODE_OK);
        assert_status(node_latent_predict(m, s, LB, LNT, LTS, xs, LENC, eps, &o, pred, NULL,
                                          NULL, NULL), NODE_OK);
        double nll = 0;
        for (size_t r = 0; r < LNT * LB; r++)
            for (size_t d = 0; d < LD && LOBS[r]; d++) {
                double e = xs[r * LD + d] - pred[r * LD + d];
                nll += e * e / (2 * LSTD * LSTD) + log(LSTD) + 0.5 * log(2 * L_PI);
            }
        assert_close(t.nll, nll / LB, 1e-13, 1e-13);
        assert_true(t.kl > 0);
        assert_true(t.nfe_forward > 0);
        assert_int_equal(t.nfe_backward, 0);   /* no gradient asked for */
    }
    node_solver_free(s);
    node_latent_free(m);
}

/* Exact backprop of an adaptive solve reverses the forward solve's own recording: its
   backward work is one vjp per stage of each accepted step — no more than the forward's
   evaluations (+1 for an output inside the last step), against about twice that with a
   re-run — and its gradient is the tight adjoint's to the solver's tolerance. */
static void test_backprop_reverses_the_forward_recording(void **state)
{
    (void)state;
    node_latent *m = small_model(17);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    double xs[LNT * LB * LD], gb[LP], ga[LP];
    batch_values(xs);
    node_options o = tight_options();
    node_latent_terms tb, ta;
    node_error err;
    assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, &o,
                                   NODE_GRAD_BACKPROP, &tb, gb, NULL, &err), NODE_OK);
    assert_true(tb.nfe_forward > 20);
    assert_true(tb.nfe_backward > 0);
    assert_true(tb.nfe_backward <= tb.nfe_forward + 1);
    assert_status(node_latent_loss(m, s, LB, LNT, LTS, xs, LENC, LOBS, LEPS, &o,
                                   NODE_GRAD_ADJOINT, &ta, ga, NULL, &err), NODE_OK);
    assert_close(tb.loss, ta.loss, 1e-14, 0);
    assert_grads_close(LP, gb, ga, 1e-6, 1e-8);
    node_solver_free(s);
    node_latent_free(m);
}

/* One time: z0 is decoded where it is, f takes no part (its gradient is exactly 0) and
   both methods give the gradient of the composition, checked by differences. */
static void test_a_single_time_needs_no_solve(void **state)
{
    (void)state;
    node_latent *m = small_model(13);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    const double ts[1] = { 0.5 }, xs[2 * LD] = { 0.1, 0.2, -0.3, 0.4 };
    const unsigned char mk[2] = { 1, 1 };
    double g[LP], *th = node_latent_params(m);
    node_latent_terms t;
    for (int how = 0; how < 2; how++) {
        assert_status(node_latent_loss(m, s, 2, 1, ts, xs, mk, mk, LEPS, NULL,
                                       (node_grad_method)how, &t, g, NULL, NULL), NODE_OK);
        assert_int_equal(t.nfe_forward, 0);
        for (size_t k = LP_CELL + LP_ENC; k < LP_CELL + LP_ENC + LP_F; k++)
            assert_true(g[k] == 0);
        const size_t ks[3] = { 1, LP_CELL + 4, LP - 3 };   /* cell (x_1), encoder, decoder */
        for (size_t i = 0; i < 3; i++) {
            double x = th[ks[i]], l[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                th[ks[i]] = x + (sgn ? -1e-5 : 1e-5);
                assert_status(node_latent_loss(m, s, 2, 1, ts, xs, mk, mk, LEPS, NULL,
                                               (node_grad_method)how, &t, NULL, NULL, NULL),
                              NODE_OK);
                l[sgn] = t.loss;
            }
            th[ks[i]] = x;
            assert_true(fabs(g[ks[i]]) > 1e-4);
            assert_close(g[ks[i]], (l[0] - l[1]) / 2e-5, 1e-7, 1e-9);
        }
    }
    node_solver_free(s);
    node_latent_free(m);
}

/* ---- initialisation ------------------------------------------------------------------- */

/* PyTorch's defaults: the cell U(±1/√H); each layer U(±1/√fan_in); the same values for
   a seed, others for another. */
static void test_init_draws_pytorch_bounds(void **state)
{
    (void)state;
    node_latent *m = small_model(9), *m2 = small_model(9), *m3 = small_model(10);
    const double *th = node_latent_params(m);
    assert_memory_equal(th, node_latent_params(m2), LP * sizeof(double));
    assert_memory_not_equal(th, node_latent_params(m3), LP * sizeof(double));
    /* [start, end) and the bound of each layer */
    const size_t f0 = LP_CELL + LP_ENC, g0 = f0 + LP_F;
    const struct { size_t a, b; double fan; } part[] = {
        { 0, LP_CELL, LH },
        { LP_CELL, f0, LH },
        { f0, f0 + (LL + 1) * LHF, LL },
        { f0 + (LL + 1) * LHF, f0 + (LL + 1) * LHF + (LHF + 1) * LHF, LHF },
        { f0 + (LL + 1) * LHF + (LHF + 1) * LHF, g0, LHF },
        { g0, g0 + (LL + 1) * LHG, LL },
        { g0 + (LL + 1) * LHG, LP, LHG },
    };
    for (size_t p = 0; p < sizeof part / sizeof part[0]; p++) {
        double bound = 1 / sqrt(part[p].fan), big = 0;
        for (size_t k = part[p].a; k < part[p].b; k++) {
            assert_true(fabs(th[k]) <= bound);
            big = fmax(big, fabs(th[k]));
        }
        assert_true(big > 0.5 * bound);   /* spread over the range, not a smaller one */
    }
    node_latent_free(m);
    node_latent_free(m2);
    node_latent_free(m3);
}

/* ---- training ------------------------------------------------------------------------------ */

/* 16 two-dimensional spirals (decaying rotations, either direction, random phase and
   radius, noise 0.05), each seen at 12 random times of a 30-point grid; the paper's
   sizes; Adam, 3e-2, full batch, a fresh ε each step, 100 steps.  The −ELBO at ε = 0, less its
   constant part (the Gaussian normaliser of the observed entries, TOBS·2·(log σ +
   ½ log 2π) per series, which no parameter moves; what is left, Σ (x − x̂)²/2σ² + KL,
   is positive), falls by more than TRAIN_FACTOR. */
#define TB 16
#define TNT 30
#define TOBS 12
#define TITERS 100
#define TRAIN_FACTOR 3.0   /* measured: 7.1 (55.8 -> 7.9) */

static void test_training_lowers_the_negative_elbo(void **state)
{
    (void)state;
    node_rng rng;
    assert_status(node_rng_seed(&rng, 2018), NODE_OK);
    static double ts[TNT], xs[TNT * TB * 2], eps[TB * 4];
    static unsigned char mask[TNT * TB];
    size_t idx[TNT];
    for (size_t i = 0; i < TNT; i++)
        ts[i] = 0.15 * (double)i;
    memset(mask, 0, sizeof mask);
    for (size_t b = 0; b < TB; b++) {
        double u[3], noise[2 * TNT];
        assert_status(node_rng_uniform(&rng, 3, u), NODE_OK);
        assert_status(node_rng_normal(&rng, 2 * TNT, noise), NODE_OK);
        assert_status(node_rng_permutation(&rng, TNT, idx), NODE_OK);
        double dir = u[0] < 0.5 ? -1 : 1, ph = 2 * L_PI * u[1], r0 = 0.8 + 0.4 * u[2];
        for (size_t k = 0; k < TOBS; k++)
            mask[idx[k] * TB + b] = 1;
        for (size_t i = 0; i < TNT; i++) {
            double r = r0 * exp(-0.1 * ts[i]), a = dir * ts[i] + ph;
            xs[(i * TB + b) * 2] = r * cos(a) + 0.05 * noise[2 * i];
            xs[(i * TB + b) * 2 + 1] = r * sin(a) + 0.05 * noise[2 * i + 1];
        }
    }
    node_latent_config cfg;
    assert_status(node_latent_defaults(2, &cfg), NODE_OK);
    node_latent *m;
    assert_status(node_latent_create(&m, &cfg, NULL), NODE_OK);
    node_latent_init(m, 1);
    size_t P = node_latent_nparams(m);
    double *grad = malloc(P * sizeof *grad);
    assert_non_null(grad);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    node_optim_config oc;
    assert_status(node_optim_defaults(NODE_OPTIM_ADAM, &oc), NODE_OK);
    oc.lr = 3e-2;
    node_optim *opt;
    assert_status(node_optim_create(&opt, P, &oc), NODE_OK);
    node_options o = node_options_default();
    o.rtol = 1e-5;
    o.atol = 1e-6;
    node_latent_terms t0, t;
    assert_status(node_latent_loss(m, s, TB, TNT, ts, xs, mask, mask, NULL, &o,
                                   NODE_GRAD_ADJOINT, &t0, NULL, NULL, NULL), NODE_OK);
    for (int it = 0; it < TITERS; it++) {
        assert_status(node_rng_normal(&rng, TB * 4, eps), NODE_OK);
        assert_status(node_latent_loss(m, s, TB, TNT, ts, xs, mask, mask, eps, &o,
                                       NODE_GRAD_ADJOINT, &t, grad, NULL, NULL), NODE_OK);
        assert_status(node_optim_step(opt, node_latent_params(m), grad), NODE_OK);
    }
    assert_status(node_latent_loss(m, s, TB, TNT, ts, xs, mask, mask, NULL, &o,
                                   NODE_GRAD_ADJOINT, &t, NULL, NULL, NULL), NODE_OK);
    const double c = TOBS * 2 * (log(cfg.obs_std) + 0.5 * log(2 * L_PI));
    print_message("-ELBO at eps = 0: %.4g -> %.4g after %d Adam steps (nll %.4g -> %.4g, "
                  "less the constant %.4g: %.4g -> %.4g, factor %.3g)\n", t0.loss, t.loss,
                  TITERS, t0.nll, t.nll, c, t0.loss - c, t.loss - c,
                  (t0.loss - c) / (t.loss - c));
    assert_true(t.loss - c > 0);
    assert_true(t.loss - c < (t0.loss - c) / TRAIN_FACTOR);
    node_optim_free(opt);
    node_solver_free(s);
    free(grad);
    node_latent_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_backprop_matches_differences),
        cmocka_unit_test(test_gradient_backprop_matches_differences_gru),
        cmocka_unit_test(test_gradient_adjoint_matches_differences),
        cmocka_unit_test(test_union_batch_equals_each_series_alone_adjoint),
        cmocka_unit_test(test_union_batch_equals_each_series_alone_backprop),
        cmocka_unit_test(test_loss_and_predict_match_an_independent_composition),
        cmocka_unit_test(test_predict_is_what_the_likelihood_sees),
        cmocka_unit_test(test_backprop_reverses_the_forward_recording),
        cmocka_unit_test(test_a_single_time_needs_no_solve),
        cmocka_unit_test(test_init_draws_pytorch_bounds),
        cmocka_unit_test(test_training_lowers_the_negative_elbo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
