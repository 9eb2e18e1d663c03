/* test_latent_fit.c — the latent-ODE example's early stopping (examples/util/latent_fit.c,
 * latent_ode --val K): ex_hold_out moves the last K training series, unchanged, into a
 * validation set; ex_train_latent with validation every iteration ends on the
 * parameters of the iteration whose predictive RMSE on those series is the lowest.
 * The reference is independent of the selection: with a constant learning rate and no
 * averaging, training for k iterations is the first k iterations of a longer run, so
 * the test trains for k = 1..T iterations from scratch, scores each, and asks that the
 * validated T-iteration run return the best of them, bit for bit.
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latent_fit.h"
#include "tsdata.h"

enum { NSPIRAL = 40, NTEST = 4, NOBS = 10, K = 6, T = 6 };

static const ex_spiral_config cfg = { .nspiral = NSPIRAL, .ntotal = 200, .window = 50,
                                      .extra = 50, .ntest = NTEST,
                                      .stop = 6 * 3.14159265358979323846, .a = 0.0,
                                      .b = 0.3, .noise = 0.1 };

typedef struct fixture {
    ex_spirals sp;
    ex_settings S;
    node_latent_config lc;
    ex_experiment E, V;
} fixture;

/* The experiment as latent_ode builds it for --n-obs NOBS --train-extra n --val K. */
static void build(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(ex_spirals_generate(&f->sp, &cfg, 3), 0);
    node_error err;
    double split;
    assert_int_equal(ex_spirals_subsample(&f->sp, NOBS, NOBS, 11, &f->E.train, &f->E.test,
                                          &f->E.truth, &split, &err), NODE_OK);
    f->E.n_obs = NOBS;
    f->E.train_split = split;
    const size_t N = node_tseries_count(f->E.test);
    f->E.split = malloc(N * sizeof *f->E.split);
    assert_non_null(f->E.split);
    for (size_t i = 0; i < N; i++)
        f->E.split[i] = split;
    ex_settings *S = &f->S;
    S->iters = T;
    S->batch = 8;
    S->seed = 5;
    S->latent_dim = 2;
    S->rnn_hidden = 6;
    S->dyn_hidden = 8;
    S->dec_hidden = 8;
    S->lr = 0.2;                 /* large: the validation error is not monotone */
    S->obs_std = 0.1;
    S->lr_min = -1;              /* constant: k iterations are a prefix of T */
    S->enc_frac = 1;
    S->enc_frac_max = -1;
    S->train_extra = -1;
    S->backprop = 1;
    S->use[EX_LAT] = 1;
    S->opt = node_options_default();
    S->opt.rtol = 1e-6;
    S->opt.atol = 1e-8;
    assert_int_equal(node_latent_defaults(2, &f->lc), NODE_OK);
    f->lc.latent_dim = 2;
    f->lc.rnn_hidden = 6;
    f->lc.dyn_hidden = 8;
    f->lc.dec_hidden = 8;
    f->lc.obs_std = 0.1;
    assert_int_equal(ex_experiment_setup(S, &f->E, 2), 0);
    assert_int_equal(ex_hold_out(&f->E, &f->V, K, split, 2), 0);
}

/* Parameters after `iters` iterations (validated every iteration or not), and their
   predictive RMSE on the validation series. */
static double train(fixture *f, long iters, long val_every, double *theta_out, ex_result *R)
{
    node_latent *m = NULL;
    node_solver *solver = NULL;
    node_error err;
    assert_int_equal(node_latent_create(&m, &f->lc, &err), NODE_OK);
    node_latent_init(m, 17);
    assert_int_equal(node_solver_create(&solver), NODE_OK);
    f->S.iters = iters;
    f->S.val_every = val_every;
    memset(R, 0, sizeof *R);
    assert_int_equal(ex_train_latent(&f->S, &f->E, m, solver, R), 0);
    assert_int_equal(R->skipped, 0);
    const size_t P = node_latent_nparams(m);
    memcpy(theta_out, node_latent_params(m), P * sizeof *theta_out);
    assert_int_equal(ex_eval_latent(&f->V, m, solver, &f->S.opt, 2), 0);
    ex_result r;
    memset(&r, 0, sizeof r);
    ex_score(&f->V, EX_LAT, &r);
    node_solver_free(solver);
    node_latent_free(m);
    return r.rmse_pred;
}

static void release(fixture *f)
{
    ex_experiment_free(&f->V);
    ex_experiment_free(&f->E);
    ex_spirals_free(&f->sp);
}

static void test_hold_out_moves_the_last_series(void **state)
{
    (void)state;
    fixture f;
    node_error err;
    double split;
    node_tseries *tr, *te, *tt;
    build(&f);
    assert_int_equal(ex_spirals_subsample(&f.sp, NOBS, NOBS, 11, &tr, &te, &tt, &split, &err),
                     NODE_OK);
    const size_t N = node_tseries_count(tr);
    assert_int_equal(node_tseries_count(f.E.train), N - K);
    assert_int_equal(node_tseries_count(f.V.test), K);
    assert_ptr_equal(f.E.val, &f.V);
    assert_null(f.V.truth);
    assert_true(f.V.t0 == f.E.t0);
    for (size_t i = 0; i < N; i++) {
        int64_t id0, id;
        size_t n0, n;
        const double *t0, *x0, *t, *x;
        node_tseries_get(tr, i, &id0, &n0, &t0, &x0);
        node_tseries_get(i < N - K ? f.E.train : f.V.test, i < N - K ? i : i - (N - K), &id,
                         &n, &t, &x);
        assert_int_equal(id, id0);
        assert_int_equal(n, n0);
        assert_memory_equal(t, t0, n * sizeof *t);
        assert_memory_equal(x, x0, 2 * n * sizeof *x);
        if (i >= N - K) {
            assert_true(f.V.split[i - (N - K)] == split);
            assert_true(t[n - 1] > split);   /* points to predict */
        }
    }
    node_tseries_free(tr);
    node_tseries_free(te);
    node_tseries_free(tt);
    release(&f);
}

static void test_training_ends_on_the_best_validated_iteration(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    double *th = test_malloc(4096 * sizeof *th), *best = test_malloc(4096 * sizeof *best);
    double *theta[T + 1];
    double rmse[T + 1];
    ex_result R;
    for (long k = 1; k <= T; k++) {
        theta[k] = test_malloc(4096 * sizeof *theta[k]);
        rmse[k] = train(&f, k, 0, theta[k], &R);
        assert_true(isfinite(rmse[k]));
        assert_int_equal(R.best_iter, 0);   /* not validated */
    }
    long kbest = 1;
    for (long k = 2; k <= T; k++)
        if (rmse[k] < rmse[kbest])
            kbest = k;
    /* The test means something only if the last iterate is not the best. */
    assert_true(kbest < T);
    const double r = train(&f, T, 1, best, &R);
    assert_int_equal(R.best_iter, kbest);
    assert_true(R.val_rmse == rmse[kbest]);
    assert_true(r == rmse[kbest]);
    node_latent *m = NULL;
    node_error err;
    assert_int_equal(node_latent_create(&m, &f.lc, &err), NODE_OK);
    const size_t P = node_latent_nparams(m);
    assert_true(P <= 4096);
    assert_memory_equal(best, theta[kbest], P * sizeof *best);
    /* Validated every other iteration: the best of 2, 4, ..., T. */
    long kb2 = 2;
    for (long k = 4; k <= T; k += 2)
        if (rmse[k] < rmse[kb2])
            kb2 = k;
    train(&f, T, 2, th, &R);
    assert_int_equal(R.best_iter, kb2);
    assert_memory_equal(th, theta[kb2], P * sizeof *th);
    node_latent_free(m);
    for (long k = 1; k <= T; k++)
        test_free(theta[k]);
    test_free(th);
    test_free(best);
    release(&f);
}

/* --enc-drop: over a batch of training series, about q of the encoder's points are
   withheld (a binomial count within 5 sigma), only encoder points, each series keeps at
   least one, the likelihood's mask is untouched; q = 1 - 1e-15 leaves each series its last. */
static void test_encoder_dropout(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    const size_t B = 24;
    size_t sel[24];
    for (size_t i = 0; i < B; i++)
        sel[i] = i;
    ex_batch bt;
    memset(&bt, 0, sizeof bt);
    assert_int_equal(ex_batch_init(&bt, B, B * 2 * NOBS, 2), 0);
    node_error err;
    const double split = f.E.train_split;
    double spl[24];
    for (size_t i = 0; i < B; i++)
        spl[i] = split;
    double *u = malloc((B * 2 * NOBS + 1) * B * sizeof *u);
    unsigned char *enc0 = malloc((B * 2 * NOBS + 1) * B), *mask0 = malloc((B * 2 * NOBS + 1) * B);
    assert_non_null(u);
    assert_non_null(enc0);
    assert_non_null(mask0);
    node_rng rng;
    node_rng_seed(&rng, 42);
    const double qs[2] = { 0.3, 1 - 1e-15 };
    for (int qi = 0; qi < 2; qi++) {
        size_t seen = 0, dropped = 0;
        for (int rep = 0; rep < 20; rep++) {
            assert_int_equal(ex_batch_fill(&bt, f.E.train, B, sel, f.E.t0, spl, &err), NODE_OK);
            const size_t nt = bt.nt;
            memcpy(enc0, bt.enc, nt * B);
            memcpy(mask0, bt.mask, nt * B);
            ex_drop_encoder_points(&bt, &rng, qs[qi], u);
            assert_memory_equal(bt.mask, mask0, nt * B);
            for (size_t b = 0; b < B; b++) {
                size_t kept = 0, last = nt;
                for (size_t r = 0; r < nt; r++) {
                    const size_t k = r * B + b;
                    assert_true(bt.enc[k] <= enc0[k]);   /* only encoder points go */
                    if (enc0[k]) {
                        seen++;
                        last = r;
                    }
                    dropped += enc0[k] && !bt.enc[k];
                    kept += bt.enc[k];
                }
                assert_true(last < nt);
                assert_true(kept >= 1);
                if (qi == 1)
                    assert_true(kept == 1 && bt.enc[last * B + b]);
            }
        }
        if (qi == 0) {
            const double q = qs[0], n = (double)seen;
            assert_true(fabs((double)dropped - q * n) < 5 * sqrt(n * q * (1 - q)));
        }
    }
    free(u);
    free(enc0);
    free(mask0);
    ex_batch_free(&bt);
    release(&f);
}

/* The documented parameter layout: where the mean's bias of the encoder's output layer
   sits (θ = [cell, W_enc (2L × h), b_mu, b_logvar, f, g]). */
static size_t bias_mu_offset(const node_latent_config *c, size_t P)
{
    const size_t L = c->latent_dim, H = c->dyn_hidden, Hd = c->dec_hidden, D = c->obs_dim;
    const size_t nf = L * H + H + H * H + H + H * L + L, ng = L * Hd + Hd + Hd * D + D;
    return P - nf - ng - 2 * L;
}

/* --refine: one Adam step moves each component of a series' posterior mean by
   lr · sign(dL/dμ) (Adam's first step), dL/dμ of the -ELBO of its observed points
   alone, here by central differences; the prediction from that mean is what
   ex_refine_latent returns for the series, and the model is unchanged after.  Values
   after the split never enter: changing them changes no prediction.  And 30 steps
   fit the observed windows better than the encoder's means. */
static void test_refine(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    node_latent *m = NULL;
    node_solver *solver = NULL;
    node_error err;
    assert_int_equal(node_latent_create(&m, &f.lc, &err), NODE_OK);
    node_latent_init(m, 17);
    assert_int_equal(node_solver_create(&solver), NODE_OK);
    const size_t P = node_latent_nparams(m), D = 2, L = 2;
    double *theta = node_latent_params(m), *theta0 = malloc(P * sizeof *theta0);
    assert_non_null(theta0);
    memcpy(theta0, theta, P * sizeof *theta0);
    ex_experiment *E = &f.E;
    const double lr = 0.03;
    assert_int_equal(ex_refine_latent(E, m, solver, &f.S.opt, 1, lr), 0);
    assert_memory_equal(theta, theta0, P * sizeof *theta);
    double *pred1 = malloc(E->npts * D * sizeof *pred1);
    assert_non_null(pred1);
    memcpy(pred1, E->pred[EX_LAT], E->npts * D * sizeof *pred1);

    /* the reference, series by series */
    node_latent_config c;
    node_latent_config_get(m, &c);
    const size_t bmu = bias_mu_offset(&c, P);
    ex_batch bt;
    memset(&bt, 0, sizeof bt);
    double tmin, tmax;
    size_t maxlen;
    ex_tseries_extent(E->test, &tmin, &tmax, &maxlen);
    assert_int_equal(ex_batch_init(&bt, 1, maxlen, D), 0);
    double *xp = malloc((maxlen + 1) * D * sizeof *xp), *x2 = malloc(maxlen * D * sizeof *x2);
    assert_non_null(xp);
    assert_non_null(x2);
    for (size_t i = 0; i < E->ntest; i++) {
        assert_int_equal(ex_batch_fill(&bt, E->test, 1, &i, E->t0, E->split + i, &err), NODE_OK);
        double step[2];
        for (size_t k = 0; k < L; k++) {
            double lp, lm;
            const double h = 1e-6;
            node_latent_terms terms;
            theta[bmu + k] = theta0[bmu + k] + h;
            assert_int_equal(node_latent_loss(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, bt.enc,
                                              NULL, &f.S.opt, NODE_GRAD_BACKPROP, &terms, NULL,
                                              NULL, &err), NODE_OK);
            lp = terms.loss;
            theta[bmu + k] = theta0[bmu + k] - h;
            assert_int_equal(node_latent_loss(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, bt.enc,
                                              NULL, &f.S.opt, NODE_GRAD_BACKPROP, &terms, NULL,
                                              NULL, &err), NODE_OK);
            lm = terms.loss;
            theta[bmu + k] = theta0[bmu + k];
            const double g = (lp - lm) / (2 * h);
            assert_true(fabs(g) > 1e-4);   /* a clear sign */
            step[k] = g > 0 ? -lr : lr;
        }
        for (size_t k = 0; k < L; k++)
            theta[bmu + k] = theta0[bmu + k] + step[k];
        assert_int_equal(node_latent_predict(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, NULL,
                                             &f.S.opt, xp, NULL, NULL, &err), NODE_OK);
        memcpy(theta, theta0, P * sizeof *theta);
        size_t j = E->off[i];
        for (size_t r = 0; r < bt.nt; r++) {
            if (!bt.mask[r])
                continue;
            for (size_t c2 = 0; c2 < D; c2++)
                assert_true(fabs(pred1[j * D + c2] - xp[r * D + c2]) <=
                            1e-6 * (1 + fabs(xp[r * D + c2])));
            j++;
        }
    }

    /* the points after the split changed: the same predictions, bit for bit */
    node_tseries *alt = NULL;
    assert_int_equal(node_tseries_create(&alt, D, &err), NODE_OK);
    for (size_t i = 0; i < E->ntest; i++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(E->test, i, &id, &n, &t, &x);
        for (size_t r = 0; r < n; r++)
            for (size_t c2 = 0; c2 < D; c2++)
                x2[r * D + c2] = t[r] > E->split[i] ? x[r * D + c2] + 100.0 : x[r * D + c2];
        assert_int_equal(node_tseries_add(alt, id, n, t, x2, &err), NODE_OK);
    }
    node_tseries *orig = E->test;
    E->test = alt;
    assert_int_equal(ex_refine_latent(E, m, solver, &f.S.opt, 1, lr), 0);
    assert_memory_equal(E->pred[EX_LAT], pred1, E->npts * D * sizeof *pred1);
    E->test = orig;
    node_tseries_free(alt);

    /* 30 steps: the observed windows fitted better than from the encoder's means */
    ex_result r0, r1;
    memset(&r0, 0, sizeof r0);
    memset(&r1, 0, sizeof r1);
    assert_int_equal(ex_eval_latent(E, m, solver, &f.S.opt, 2), 0);
    ex_score(E, EX_LAT, &r0);
    assert_int_equal(ex_refine_latent(E, m, solver, &f.S.opt, 30, lr), 0);
    ex_score(E, EX_LAT, &r1);
    assert_true(r1.rmse_obs < r0.rmse_obs);
    assert_memory_equal(theta, theta0, P * sizeof *theta);

    free(pred1);
    free(theta0);
    free(xp);
    free(x2);
    ex_batch_free(&bt);
    node_solver_free(solver);
    node_latent_free(m);
    release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_out_moves_the_last_series),
        cmocka_unit_test(test_training_ends_on_the_best_validated_iteration),
        cmocka_unit_test(test_encoder_dropout),
        cmocka_unit_test(test_refine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
