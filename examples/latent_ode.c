/* latent_ode.c — the latent ODE of Chen et al. (2018), Section 5, on irregularly
 * sampled time series.  With no arguments: the paper's Table 2 — 1000 noisy 2-D
 * spirals (torchdiffeq's generate_spiral2d), each subsampled to n ∈ {30, 50, 100} of
 * 100 points, the latent ODE against two RNN baselines, predictive RMSE on held-out
 * spirals over the 100 points after the observed window.  With --train/--test: the
 * same models on your own long-format CSV data ("series,t,x1,...,xD").
 * Run: ./latent_ode [--n-obs 30,50,100] [--iters N] [--out DIR]    (--help for all)
 *      ./latent_ode --train a.csv --test b.csv [--split T] [--model latent-ode]
 * The README's best Table 2 setting adds --cell gru --train-extra n --val 100 --refine 50
 * (early stopping on held-out training series; test-time refinement of q(z0 | x)).
 * Writes DIR/fig8*.svg, fig9*.svg, predictions*.csv and latent_ode*.model (with --val
 * also validation*.csv); the last line of standard output is a JSON object with the
 * results.
 */
#include <libnode.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "files.h"
#include "json.h"
#include "latent_fit.h"
#include "latent_report.h"
#include "progress.h"
#include "tsdata.h"

enum { LAT = EX_LAT, RNN = EX_RNN, RNNDT = EX_RNNDT, NMODEL = EX_NMODELS };
static const char *const model_name[NMODEL] = { "latent-ode", "rnn", "rnn-dt" };
/* Table 2 of the paper (NeurIPS version), n = 30, 50, 100 of 100: one RNN row (the
   paper does not say which variant), the latent ODE. */
static const double paper_rnn[3] = { 0.3937, 0.3202, 0.1813 };
static const double paper_lat[3] = { 0.1642, 0.1502, 0.1346 };

#define MAX_N 8           /* values of --n-obs */

/* ---- one experiment: train and test every model, write the outputs -------------------- */

static void print_result(const ex_experiment *E, int k)
{
    const ex_result *R = &E->res[k];
    printf("%s%s: test RMSE observed window %.4f, predicted %.4f", model_name[k], E->tag,
           R->rmse_obs, R->rmse_pred);
    if (E->truth)
        printf(" (against the noise-free curves %.4f, %.4f)", R->rmse_obs_truth,
               R->rmse_pred_truth);
    printf("; %ld iterations, %.2f ms each", R->iters, R->ms_per_iter);
    if (k == LAT)
        printf(", NFE %.0f fwd / %.0f bwd per iteration, %.2f sub-batches", R->nfe_f, R->nfe_b,
               R->groups);
    if (R->skipped)
        printf(", %ld skipped", R->skipped);
    printf("\n");
    fflush(stdout);
}

static int run_experiment(const ex_settings *S, ex_experiment *E, const node_latent_config *cfg,
                          const char *title)
{
    int rc = -1;
    const size_t D = node_tseries_dim(E->train), L = cfg->latent_dim;
    node_latent *m = NULL;
    node_solver *solver = NULL;
    ex_rnn_model rm;
    memset(&rm, 0, sizeof rm);
    node_error err;
    err.message[0] = '\0';
    char path[4096], name[64];

    if (S->use[LAT]) {
        if (S->load) {
            CHECK("loading the latent ODE", err.message, node_latent_load(&m, S->load, &err));
        } else {
            CHECK("creating the latent ODE", err.message, node_latent_create(&m, cfg, &err));
            node_latent_init(m, (uint64_t)S->seed + 17u);
        }
        CHECK("creating the solver", NULL, node_solver_create(&solver));
        printf("latent-ode%s: %zu parameters (%s encoder %llu, latent %llu, dynamics %llu-%llu-%llu-%llu "
               "elu, decoder %llu-%llu-%zu relu, sigma_obs %g), batch %ld, %s rtol %g atol %g, %s gradients, "
               "%s lr %g, %ld iterations\n", E->tag, node_latent_nparams(m),
               cfg->rnn_cell == NODE_CELL_GRU ? "GRU" : "RNN",
               (unsigned long long)cfg->rnn_hidden, (unsigned long long)L,
               (unsigned long long)L, (unsigned long long)cfg->dyn_hidden,
               (unsigned long long)cfg->dyn_hidden, (unsigned long long)L,
               (unsigned long long)L, (unsigned long long)cfg->dec_hidden, D, cfg->obs_std, S->batch,
               node_method_name(S->opt.method), S->opt.rtol, S->opt.atol,
               S->backprop ? "backprop" : "adjoint", S->weight_decay > 0 ? "AdamW" : "Adam",
               S->lr, S->iters);
        fflush(stdout);
        if (ex_train_latent(S, E, m, solver, &E->res[LAT]) != 0 ||
            ex_eval_latent(E, m, solver, &S->opt, L) != 0 ||
            (S->refine > 0 && ex_refine_latent(E, m, solver, &S->opt, S->refine, S->refine_lr) != 0))
            goto fail;
        ex_score(E, LAT, &E->res[LAT]);
        print_result(E, LAT);
        if (S->union_cost > 0) {
            if (ex_measure_union(S, E, m, solver, &E->uc) != 0)
                goto fail;
            const ex_union_cost *U = &E->uc;
            printf("union of times%s: %zu batches of %zu series (%.1f times each, %.1f in "
                   "the union): on the union %.2f ms, NFE %.0f fwd / %.0f bwd; one series "
                   "at a time %.2f ms, NFE %.0f / %.0f; relative difference of the loss "
                   "%.1e, of the gradient %.1e\n", E->tag, U->batches, U->B, U->mean_len,
                   U->mean_union, U->ms_union, U->nfe_f_union, U->nfe_b_union, U->ms_single,
                   U->nfe_f_single, U->nfe_b_single, U->loss_diff, U->grad_diff);
        }
        snprintf(name, sizeof name, "latent_ode%s.model", E->tag);
        if (ex_path_join(path, sizeof path, S->out, name) != 0)
            goto fail;
        CHECK("saving the model", err.message, node_latent_save(m, path, &err));
        printf("wrote %s\n", path);
    }
    for (int k = RNN; k <= RNNDT; k++) {
        if (!S->use[k])
            continue;
        double a, b;
        size_t m1, m2;
        ex_tseries_extent(E->train, &a, &b, &m1);
        ex_tseries_extent(E->test, &a, &b, &m2);
        CHECK("creating the RNN", err.message,
              ex_rnn_create(&rm, D, (size_t)S->rnn_hidden, k == RNNDT,
                            zmin((size_t)S->batch, node_tseries_count(E->train)), zmax(m1, m2),
                            (uint64_t)S->seed + 31u + (uint64_t)k, &err));
        if (ex_train_rnn(S, E, &rm, &E->res[k], model_name[k]) != 0 ||
            ex_eval_rnn(E, &rm, E->pred[k]) != 0)
            goto fail;
        ex_score(E, k, &E->res[k]);
        print_result(E, k);
        ex_rnn_free(&rm);
    }

    /* Figures and predictions. */
    ex_report rep;
    memset(&rep, 0, sizeof rep);
    rep.title = title;
    rep.test = E->test;
    rep.truth = E->truth;
    rep.split = E->split;
    rep.cw = E->cw;
    rep.off = E->off;
    for (int k = 0; k < NMODEL; k++) {
        rep.names[k] = model_name[k];
        rep.pred[k] = S->use[k] ? E->pred[k] : NULL;
    }
    rep.zpath = E->zpath;
    rep.t0 = E->t0;
    snprintf(name, sizeof name, "fig8%s.svg", E->tag);
    if (ex_path_join(path, sizeof path, S->out, name) != 0)
        goto fail;
    err.message[0] = '\0';
    if (ex_fig8_write(path, &rep, m, solver, &S->opt, &err) != 0) {
        fprintf(stderr, "latent_ode: %s: %s\n", path, err.message[0] ? err.message : strerror(errno));
        goto fail;
    }
    printf("wrote %s (test series: observations, truth, reconstruction, extrapolation%s)\n",
           path, m ? "; latent trajectories" : "");
    if (m) {
        snprintf(name, sizeof name, "fig9%s.svg", E->tag);
        if (ex_path_join(path, sizeof path, S->out, name) != 0)
            goto fail;
        err.message[0] = '\0';
        if (ex_fig9_write(path, &rep, m, &S->opt, &err) != 0) {
            fprintf(stderr, "latent_ode: %s: %s\n", path,
                    err.message[0] ? err.message : strerror(errno));
            goto fail;
        }
        printf("wrote %s (decoded trajectories as one latent dimension varies)\n", path);
    }
    snprintf(name, sizeof name, "predictions%s.csv", E->tag);
    if (ex_path_join(path, sizeof path, S->out, name) != 0)
        goto fail;
    if (ex_predictions_csv(path, &rep) != 0) {
        fprintf(stderr, "latent_ode: cannot write %s: %s\n", path, strerror(errno));
        goto fail;
    }
    printf("wrote %s\n", path);
    rc = 0;
fail:
    ex_rnn_free(&rm);
    node_latent_free(m);
    node_solver_free(solver);
    return rc;
}

/* ---- input ------------------------------------------------------------------------------ */

/* "30,50,100" into n[] (at most MAX_N values in 1..max).  Count, or 0 if malformed. */
static size_t parse_list(const char *s, long max, long *n)
{
    size_t k = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 1 || v > max || k == MAX_N || (*end && *end != ','))
            return 0;
        n[k++] = v;
        s = *end ? end + 1 : end;
    }
    return k;
}

/* Read --train / --test and set each test series' split.  0, or 2 (bad input: the
   message names the file and line or the series). */
static int read_user_data(const char *trp, const char *tep, const char *split_s, ex_experiment *E)
{
    node_error err;
    if (node_tseries_read_csv(&E->train, trp, &err) != NODE_OK) {
        fprintf(stderr, "latent_ode: --train: %s\n", err.message);
        return 2;
    }
    if (node_tseries_read_csv(&E->test, tep, &err) != NODE_OK) {
        fprintf(stderr, "latent_ode: --test: %s\n", err.message);
        return 2;
    }
    const size_t D = node_tseries_dim(E->train), N = node_tseries_count(E->test);
    if (node_tseries_dim(E->test) != D) {
        fprintf(stderr, "latent_ode: %s has %zu values per observation, %s has %zu\n", trp, D,
                tep, node_tseries_dim(E->test));
        return 2;
    }
    if (D > 64) {
        fprintf(stderr, "latent_ode: %s: %zu values per observation; this example takes at "
                "most 64\n", trp, D);
        return 2;
    }
    double T = NAN;
    if (split_s) {
        char *end;
        errno = 0;
        T = strtod(split_s, &end);
        if (end == split_s || *end || errno || !isfinite(T)) {
            fprintf(stderr, "latent_ode: --split '%s' is not a finite number\n", split_s);
            return 2;
        }
    }
    if (!(E->split = malloc((N ? N : 1) * sizeof *E->split)))
        return 1;
    for (size_t i = 0; i < N; i++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(E->test, i, &id, &n, &t, &x);
        if (!split_s) {
            E->split[i] = t[(n + 1) / 2 - 1];   /* the encoder sees the first half */
        } else if (t[0] > T) {
            fprintf(stderr, "latent_ode: %s: test series %lld starts at t = %g, after --split "
                    "%g: nothing to encode\n", tep, (long long)id, t[0], T);
            return 2;
        } else {
            E->split[i] = T;
        }
    }
    return 0;
}

/* ---- main: data → models → training → test → outputs ------------------------------------- */

static void json_num(char *buf, size_t n, const char *key, double v, int comma)
{
    if (isfinite(v))
        snprintf(buf, n, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
    else
        snprintf(buf, n, "\"%s\": null%s", key, comma ? ", " : "");
}

int main(int argc, char **argv)
{
    const double t_begin = ex_clock();
    ex_settings S;
    memset(&S, 0, sizeof S);
    S.iters = 3000;
    S.rnn_iters = 3000;
    S.batch = 50;
    S.seed = 1;
    S.union_cap = 0;
    S.union_cost = 0;
    S.max_steps = 100000;
    S.latent_dim = 4;
    S.rnn_hidden = 25;
    S.dyn_hidden = 20;
    S.dec_hidden = 20;
    S.lr = 0.01;
    S.union_density = 0.25;
    S.obs_std = 0.3;
    S.lr_min = -1;
    S.clip = 0;
    S.enc_frac = 1;
    S.enc_frac_max = -1;
    const char *train_extra_s = "0";
    S.ema = 0;          /* the README's default-run figures are without it */
    S.val = 0;
    S.val_every = 500;
    S.refine = 0;
    S.refine_lr = 0.05;
    S.out = "latent_out";
    double rtol = 1e-5, atol = 1e-7, noise = 0.1;
    long nspiral = 1000, ntest = 100;
    static const char n_obs_default[] = "30,50,100";
    const char *n_obs_s = n_obs_default, *method_name = "dopri5", *model_s = "all";
    const char *cell_s = "tanh";
    const char *train_path = NULL, *test_path = NULL, *split_s = NULL;
    int write_data = 0;
    const ex_arg args[] = {
        { "--n-obs", EX_STRING, &n_obs_s, "N[,N..]", "spirals: observations per series, of 100 (one experiment each)" },
        { "--model", EX_STRING, &model_s, "M", "latent-ode|rnn|rnn-dt|all" },
        { "--iters", EX_LONG, &S.iters, "N", "latent ODE training iterations" },
        { "--rnn-iters", EX_LONG, &S.rnn_iters, "N", "RNN baseline training iterations" },
        { "--batch-size", EX_LONG, &S.batch, "B", "series per mini-batch" },
        { "--lr", EX_DOUBLE, &S.lr, "LR", "Adam learning rate (all models)" },
        { "--lr-min", EX_DOUBLE, &S.lr_min, "LR", "latent ODE: cosine decay of the rate from --lr to LR over --iters (< 0: constant)" },
        { "--clip", EX_DOUBLE, &S.clip, "C", "latent ODE: clip the gradient's norm to C (0: no clipping)" },
        { "--enc-frac", EX_DOUBLE, &S.enc_frac, "F", "latent ODE training: the encoder sees the points in the first F of each series' time span, the likelihood all (1: all points)" },
        { "--enc-frac-max", EX_DOUBLE, &S.enc_frac_max, "G", "latent ODE training: if > --enc-frac, the fraction is drawn uniformly in [--enc-frac, G] per series and iteration" },
        { "--train-extra", EX_STRING, &train_extra_s, "K|n", "spirals: training series also keep K random points of the 100 after their window (those on the curve; n: as many as the window's, --n-obs); the latent ODE's encoder sees only the window, its likelihood all (0: none)" },
        { "--weight-decay", EX_DOUBLE, &S.weight_decay, "L", "latent ODE: AdamW with decoupled weight decay L, e.g. 0.01 (0: Adam)" },
        { "--ema", EX_DOUBLE, &S.ema, "D", "latent ODE: end training on an exponential moving average of the parameters with decay D, e.g. 0.999 (0: the last iterate)" },
        { "--enc-drop", EX_DOUBLE, &S.enc_drop, "Q", "latent ODE training: withhold each observed point from the encoder with probability Q (the likelihood still scores it; each series keeps one) (0: none)" },
        { "--load", EX_STRING, &S.load, "F.model", "latent ODE: start from this model file (as written to --out) instead of fresh weights; its sizes and cell replace the flags'; --iters 0 evaluates it" },
        { "--refine", EX_LONG, &S.refine, "K", "latent ODE predictions: K Adam steps per test series on the mean of q(z0 | x), minimising the -ELBO of its observed points (0: the encoder's mean)" },
        { "--refine-lr", EX_DOUBLE, &S.refine_lr, "LR", "learning rate of --refine" },
        { "--val", EX_LONG, &S.val, "K", "latent ODE: hold K training series out for validation and end on the parameters with the lowest predictive RMSE on them (spirals: needs --train-extra; user data: split as --split) (0: none)" },
        { "--val-every", EX_LONG, &S.val_every, "N", "latent ODE: validate every N iterations (with --val)" },
        { "--seed", EX_LONG, &S.seed, "S", "seed of the data, the weights, the batches" },
        { "--latent-dim", EX_LONG, &S.latent_dim, "N", "latent dimension" },
        { "--rnn-hidden", EX_LONG, &S.rnn_hidden, "N", "hidden units of the encoder RNN and of the RNN baselines" },
        { "--dyn-hidden", EX_LONG, &S.dyn_hidden, "N", "hidden units of the latent dynamics (2 layers, elu)" },
        { "--dec-hidden", EX_LONG, &S.dec_hidden, "N", "hidden units of the decoder (relu)" },
        { "--obs-std", EX_DOUBLE, &S.obs_std, "S", "sigma of the latent ODE's Gaussian likelihood" },
        { "--cell", EX_STRING, &cell_s, "C", "latent ODE: the encoder's recurrent cell, tanh (the paper's) or gru" },
        { "--method", EX_STRING, &method_name, "M", "ODE solver: dopri5|bosh3|dop853|rk4|..." },
        { "--rtol", EX_DOUBLE, &rtol, "R", "relative tolerance" },
        { "--atol", EX_DOUBLE, &atol, "A", "absolute tolerance" },
        { "--max-steps", EX_LONG, &S.max_steps, "N", "solver steps per solve before a batch is skipped" },
        { "--backprop", EX_FLAG, &S.backprop, NULL, "exact backprop through the solver instead of the adjoint" },
        { "--union-cap", EX_LONG, &S.union_cap, "N", "sub-batches: a union of at most N times (0: no limit)" },
        { "--union-density", EX_DOUBLE, &S.union_density, "F", "sub-batches: series observed at >= F of the union's times on average (0: no limit)" },
        { "--union-cost", EX_LONG, &S.union_cost, "K", "after training, time K batches on the union of times against one series at a time" },
        { "--noise", EX_DOUBLE, &noise, "S", "spirals: observation noise std" },
        { "--nspiral", EX_LONG, &nspiral, "N", "spirals: how many (half each direction)" },
        { "--n-test", EX_LONG, &ntest, "N", "spirals: how many are held out for the test" },
        { "--write-data", EX_FLAG, &write_data, NULL, "spirals: also write the data as CSV (train/test files for --train/--test)" },
        { "--train", EX_STRING, &train_path, "F.csv", "your training series: long-format CSV series,t,x1,...,xD" },
        { "--test", EX_STRING, &test_path, "F.csv", "your test series (same format)" },
        { "--split", EX_STRING, &split_s, "T", "user data: the encoder sees test points with t <= T and the rest is predicted (default: each series' first half)" },
        { "--out", EX_STRING, &S.out, "DIR", "output folder" },
    };
    int r = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                          "Latent ODE (Chen et al. 2018, Section 5) vs RNN baselines on irregularly "
                          "sampled series: the paper's Table 2, or your own CSV data.");
    if (r != EX_ARGS_OK)
        return r == EX_ARGS_HELP ? 0 : 2;

    /* Flags. */
    S.opt = node_options_default();
    if (node_method_parse(method_name, &S.opt.method) != NODE_OK)
        return ex_args_fail(argv[0], "unknown --method '%s'", method_name);
    if (!(rtol > 0) || !(atol > 0))
        return ex_args_fail(argv[0], "--rtol and --atol must be > 0");
    S.opt.rtol = rtol;
    S.opt.atol = atol;
    S.opt.max_steps = S.max_steps;
    if (S.opt.method == NODE_EULER || S.opt.method == NODE_MIDPOINT || S.opt.method == NODE_RK4)
        S.opt.step = 0.01;
    node_cell_kind cell;
    if (!strcmp(cell_s, "tanh"))
        cell = NODE_CELL_TANH;
    else if (!strcmp(cell_s, "gru"))
        cell = NODE_CELL_GRU;
    else
        return ex_args_fail(argv[0], "unknown --cell '%s' (tanh, gru)", cell_s);
    if (!strcmp(model_s, "all")) {
        S.use[LAT] = S.use[RNN] = S.use[RNNDT] = 1;
    } else {
        int k = 0;
        while (k < NMODEL && strcmp(model_s, model_name[k]))
            k++;
        if (k == NMODEL)
            return ex_args_fail(argv[0], "unknown --model '%s' (latent-ode, rnn, rnn-dt, all)",
                                model_s);
        S.use[k] = 1;
    }
    if (S.iters < 0 || S.rnn_iters < 0 || S.batch < 1 || S.max_steps < 1 || S.union_cap < 0 ||
        S.union_cost < 0)
        return ex_args_fail(argv[0], "--iters, --rnn-iters, --union-cap and --union-cost must be "
                            ">= 0, --batch-size and --max-steps >= 1");
    if (S.latent_dim < 1 || S.rnn_hidden < 1 || S.rnn_hidden > 512 || S.dyn_hidden < 1 ||
        S.dec_hidden < 1)
        return ex_args_fail(argv[0], "sizes must be >= 1 (--rnn-hidden at most 512)");
    if (!(S.union_density >= 0 && S.union_density <= 1))
        return ex_args_fail(argv[0], "--union-density must be in [0, 1]");
    if (!(S.clip >= 0) || !(S.enc_frac > 0 && S.enc_frac <= 1) || !(S.enc_frac_max <= 1) || !(S.ema >= 0 && S.ema < 1) || !(S.weight_decay >= 0) || !(S.lr_min < 0 || S.lr_min >= 0))
        return ex_args_fail(argv[0], "--clip and --weight-decay must be >= 0, --enc-frac in (0, 1], --enc-frac-max at most 1, --ema in [0, 1), --lr-min a number");
    {
        char *end = NULL;
        const int as_n = !strcmp(train_extra_s, "n");
        S.train_extra = as_n ? -1 : strtol(train_extra_s, &end, 10);   /* -1: n */
        if (!as_n && (end == train_extra_s || *end || S.train_extra < 0 || S.train_extra > 100))
            return ex_args_fail(argv[0], "--train-extra takes a number in 0..100 or n");
    }
    if (S.train_extra != 0 && S.enc_frac < 1)
        return ex_args_fail(argv[0], "--train-extra and --enc-frac exclude each other (with --train-extra the encoder sees the window)");
    if (!(S.enc_drop >= 0 && S.enc_drop < 1))
        return ex_args_fail(argv[0], "--enc-drop must be in [0, 1)");
    if (S.load && !S.use[LAT])
        return ex_args_fail(argv[0], "--load is for the latent ODE (--model latent-ode or all)");
    if (S.refine < 0 || !(S.refine_lr > 0))
        return ex_args_fail(argv[0], "--refine must be >= 0 and --refine-lr > 0");
    if (S.val < 0 || S.val_every < 1)
        return ex_args_fail(argv[0], "--val must be >= 0 and --val-every >= 1");
    if (!(S.lr >= 0) || !(S.obs_std > 0) || !(noise >= 0))
        return ex_args_fail(argv[0], "--lr and --noise must be >= 0, --obs-std > 0");
    const int user = train_path || test_path;
    long nobs[MAX_N];
    size_t nexp = 1;
    if (user) {
        if (!train_path || !test_path)
            return ex_args_fail(argv[0], "--train and --test go together");
        if (n_obs_s != n_obs_default || write_data || S.train_extra != 0)
            return ex_args_fail(argv[0], "--n-obs, --write-data and --train-extra are for the generated spirals");
    } else {
        if (split_s)
            return ex_args_fail(argv[0], "--split is for --train/--test data");
        if (S.val > 0 && S.train_extra == 0)
            return ex_args_fail(argv[0], "--val needs --train-extra with the spirals (the validation "
                                "series are scored on their points after the window)");
        if (!(nexp = parse_list(n_obs_s, 100, nobs)))
            return ex_args_fail(argv[0], "--n-obs takes up to %d numbers in 1..100, "
                                "comma-separated", MAX_N);
        if (nspiral < 2 || ntest < 1 || ntest >= nspiral)
            return ex_args_fail(argv[0], "need --nspiral >= 2 and 1 <= --n-test < --nspiral");
    }

    int status = 1;
    ex_experiment E, V;
    memset(&E, 0, sizeof E);
    memset(&V, 0, sizeof V);
    ex_spirals sp;
    memset(&sp, 0, sizeof sp);
    node_error err;
    err.message[0] = '\0';
    ex_result res[MAX_N][NMODEL];
    ex_union_cost ucs[MAX_N];
    memset(res, 0, sizeof res);
    memset(ucs, 0, sizeof ucs);
    char title[256];
    const ex_spiral_config scfg = { .nspiral = (size_t)nspiral, .ntotal = 500, .window = 100,
                                    .extra = 100, .ntest = (size_t)ntest,
                                    .stop = 6 * 3.14159265358979323846, .a = 0.0, .b = 0.3,
                                    .noise = noise };
    /* Data first: bad input stops here, before anything is written.
       The spirals: generate_spiral2d as torchdiffeq's latent_ode.py calls it (ntotal 500
       on [0, 6π], a = 0, b = 0.3): windows of 100 points anywhere on the curves, test
       spirals also the 100 points after theirs (tsdata.h); the noise std is 0.1
       (generate_spiral2d's own default; latent_ode.py passes 0.3, the paper gives none):
       the RMSE against noisy held-out points cannot go below the noise, and the
       paper's 0.13 – 0.16 need it below that. */
    if (user) {
        int ur = read_user_data(train_path, test_path, split_s, &E);
        if (ur != 0) {
            status = ur;
            goto done;
        }
    } else if (ex_spirals_generate(&sp, &scfg, (uint64_t)S.seed) != 0) {
        fprintf(stderr, "latent_ode: out of memory\n");
        goto done;
    }
    const size_t D = user ? node_tseries_dim(E.train) : 2;
    node_latent_config lcfg;
    if (S.use[LAT] && S.load) {
        node_latent *lm = NULL;
        if (node_latent_load(&lm, S.load, &err) != NODE_OK) {
            fprintf(stderr, "latent_ode: --load: %s\n", err.message);
            status = 2;
            goto done;
        }
        node_latent_config_get(lm, &lcfg);
        node_latent_free(lm);
        if (lcfg.obs_dim != D) {
            fprintf(stderr, "latent_ode: --load: %s models series of dimension %llu, the data "
                    "has %zu\n", S.load, (unsigned long long)lcfg.obs_dim, D);
            status = 2;
            goto done;
        }
    }
    if (S.use[LAT] && S.val > 0) {
        const size_t ntrain = user ? node_tseries_count(E.train) : (size_t)(nspiral - ntest);
        if ((size_t)S.val >= ntrain) {
            fprintf(stderr, "latent_ode: --val %ld leaves no training series (there are %zu)\n",
                    S.val, ntrain);
            status = 2;
            goto done;
        }
    }
    if (ex_mkdir_p(S.out) != 0) {
        fprintf(stderr, "latent_ode: cannot create the output folder %s: %s\n", S.out,
                strerror(errno));
        goto done;
    }
    node_latent_config cfg;
    CHECK("latent ODE defaults", NULL, node_latent_defaults(D, &cfg));
    cfg.latent_dim = (uint64_t)S.latent_dim;
    cfg.rnn_hidden = (uint64_t)S.rnn_hidden;
    cfg.dyn_hidden = (uint64_t)S.dyn_hidden;
    cfg.dec_hidden = (uint64_t)S.dec_hidden;
    cfg.obs_std = S.obs_std;
    cfg.rnn_cell = (uint64_t)cell;
    if (S.use[LAT] && S.load)
        cfg = lcfg;   /* the file's sizes, cell and sigma_obs */
    if (user)
        printf("latent_ode: %zu training and %zu test series of dimension %zu (%s, %s); "
               "kernels %s\n", node_tseries_count(E.train), node_tseries_count(E.test), D,
               train_path, test_path, node_isa_name());
    else
        printf("latent_ode: %ld spirals (torchdiffeq's generate_spiral2d: 2 curves on [0, 6pi] "
               "at 500 points, a = 0, b = 0.3), windows of 100 points to observe (the %ld held-out "
               "ones and the 100 points after them), noise std %g; kernels %s\n", nspiral,
               ntest, noise, node_isa_name());

    for (size_t e = 0; e < nexp; e++) {
        if (!user) {
            E.n_obs = nobs[e];
            snprintf(E.tag, sizeof E.tag, "_n%ld", nobs[e]);
            double split;
            CHECK("subsampling the spirals", err.message,
                  ex_spirals_subsample(&sp, (size_t)nobs[e],
                                       (size_t)(S.train_extra < 0 ? nobs[e] : S.train_extra),
                                       (uint64_t)S.seed * 1000u +
                                       (uint64_t)nobs[e], &E.train, &E.test, &E.truth, &split,
                                       &err));
            E.train_split = S.train_extra != 0 ? split : 0;
            const size_t N = node_tseries_count(E.test);
            E.split = malloc(N * sizeof *E.split);
            E.cw = malloc(N);
            if (!E.split || !E.cw)
                goto nomem;
            for (size_t i = 0; i < N; i++) {
                int64_t id;
                size_t n;
                const double *t, *x;
                node_tseries_get(E.test, i, &id, &n, &t, &x);
                E.split[i] = split;
                E.cw[i] = sp.cw[id];
            }
            snprintf(title, sizeof title, "spirals, n = %ld of 100 observed", nobs[e]);
            if (write_data) {
                char p1[4096], p2[4096], nm[64];
                snprintf(nm, sizeof nm, "spirals%s_train.csv", E.tag);
                int bad = ex_path_join(p1, sizeof p1, S.out, nm);
                snprintf(nm, sizeof nm, "spirals%s_test.csv", E.tag);
                bad = bad || ex_path_join(p2, sizeof p2, S.out, nm);
                if (bad || ex_tseries_write_csv(E.train, p1) || ex_tseries_write_csv(E.test, p2)) {
                    fprintf(stderr, "latent_ode: cannot write the data: %s\n", strerror(errno));
                    goto done;
                }
                printf("wrote %s and %s (test split at t = %.6g: --split %.6g)\n", p1, p2, split,
                       split);
            }
        } else {
            snprintf(title, sizeof title, "%s", test_path);
        }
        if (ex_experiment_setup(&S, &E, cfg.latent_dim) != 0)
            goto nomem;
        if (S.val > 0 && S.use[LAT]) {
            double vsplit = user ? (split_s ? strtod(split_s, NULL) : NAN) : E.train_split;
            if (ex_hold_out(&E, &V, (size_t)S.val, vsplit, cfg.latent_dim) != 0)
                goto nomem;
            printf("latent-ode%s: %ld training series held out for validation (predictive RMSE "
                   "every %ld iterations)\n", E.tag, S.val, S.val_every);
        }
        if (run_experiment(&S, &E, &cfg, title) != 0)
            goto done;
        memcpy(res[e], E.res, sizeof E.res);
        ucs[e] = E.uc;
        ex_experiment_free(&V);
        if (e + 1 < nexp)
            ex_experiment_free(&E);
    }
    const double seconds = ex_clock() - t_begin;

    /* Table 2. */
    if (!user) {
        printf("\nTable 2: predictive RMSE on %ld held-out spirals, over the 100 points after "
               "the observed window (noise std %g)\n\n| # observations |", ntest, noise);
        for (size_t e = 0; e < nexp; e++)
            printf(" %ld/100 |", nobs[e]);
        printf("\n|---|");
        for (size_t e = 0; e < nexp; e++)
            printf("---:|");
        printf("\n");
        for (int row = 0; row < 2; row++) {
            printf("| %s (paper) |", row ? "Latent ODE" : "RNN");
            for (size_t e = 0; e < nexp; e++) {
                int c = nobs[e] == 30 ? 0 : nobs[e] == 50 ? 1 : nobs[e] == 100 ? 2 : -1;
                if (c < 0)
                    printf(" — |");
                else
                    printf(" %.4f |", row ? paper_lat[c] : paper_rnn[c]);
            }
            printf("\n");
        }
        const char *label[NMODEL] = { "Latent ODE (libnode)", "RNN (libnode)",
                                      "RNN + time gap (libnode)" };
        const int order[NMODEL] = { RNN, RNNDT, LAT };
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                printf("\nThe same predictions against the noise-free curves:\n\n"
                       "| # observations |");
                for (size_t e = 0; e < nexp; e++)
                    printf(" %ld/100 |", nobs[e]);
                printf("\n|---|");
                for (size_t e = 0; e < nexp; e++)
                    printf("---:|");
                printf("\n");
            }
            for (int q = 0; q < NMODEL; q++) {
                int k = order[q];
                if (!S.use[k])
                    continue;
                printf("| %s |", label[k]);
                for (size_t e = 0; e < nexp; e++)
                    printf(" %.4f |", pass ? res[e][k].rmse_pred_truth : res[e][k].rmse_pred);
                printf("\n");
            }
        }
        printf("\n");
    }
    char dur[32];
    ex_format_duration(seconds, dur, sizeof dur);
    printf("done in %s\n", dur);

    /* The results as one JSON object, the last line of standard output. */
    int first = 0;
    while (!S.use[first])
        first++;
    size_t cap = 256 + nexp * NMODEL * 800, w = 0;
    char *arr = malloc(cap), *ucj = malloc(512);
    if (!arr || !ucj) {
        free(arr);
        free(ucj);
        goto nomem;
    }
    w += (size_t)snprintf(arr + w, cap - w, "[");
    for (size_t e = 0; e < nexp; e++)
        for (int k = 0; k < NMODEL; k++) {
            if (!S.use[k])
                continue;
            const ex_result *R = &res[e][k];
            char f[11][64];
            json_num(f[0], 64, "rmse_observed", R->rmse_obs, 1);
            json_num(f[1], 64, "rmse_predicted", R->rmse_pred, 1);
            json_num(f[2], 64, "rmse_observed_truth", R->rmse_obs_truth, 1);
            json_num(f[3], 64, "rmse_predicted_truth", R->rmse_pred_truth, 1);
            json_num(f[4], 64, "ms_per_iter", R->ms_per_iter, 1);
            json_num(f[6], 64, "nfe_fwd", k == LAT ? R->nfe_f : NAN, 1);   /* null: no solve */
            json_num(f[7], 64, "nfe_bwd", k == LAT ? R->nfe_b : NAN, 1);
            json_num(f[8], 64, "sub_batches", k == LAT ? R->groups : NAN, 1);
            json_num(f[9], 64, "validation_rmse", k == LAT ? R->val_rmse : NAN, 1);
            json_num(f[10], 64, "best_iter", k == LAT && R->best_iter > 0 ? (double)R->best_iter : NAN, 1);
            json_num(f[5], 64, "final_loss", R->loss, 0);
            w += (size_t)snprintf(arr + w, cap - w, "%s{\"model\": \"%s\", \"n_obs\": %ld, "
                                  "\"iters\": %ld, \"skipped\": %ld, %s%s%s%s%s%s%s%s%s%s%s}",
                                  w > 1 ? ", " : "", model_name[k], user ? 0L : nobs[e],
                                  R->iters, R->skipped, f[0], f[1], f[2], f[3], f[4], f[6],
                                  f[7], f[8], f[9], f[10], f[5]);
        }
    snprintf(arr + w, cap - w, "]");
    ucj[0] = '\0';
    if (ucs[0].done)
        snprintf(ucj, 512, "{\"batch\": %zu, \"batches\": %zu, \"mean_series_len\": %.4g, "
                 "\"mean_union\": %.4g, \"ms_union\": %.4g, \"ms_single\": %.4g, "
                 "\"nfe_fwd_union\": %.6g, \"nfe_bwd_union\": %.6g, \"nfe_fwd_single\": %.6g, "
                 "\"nfe_bwd_single\": %.6g, \"loss_rel_diff\": %.3g, \"grad_rel_diff\": %.3g}",
                 ucs[0].B, ucs[0].batches, ucs[0].mean_len, ucs[0].mean_union, ucs[0].ms_union,
                 ucs[0].ms_single, ucs[0].nfe_f_union, ucs[0].nfe_b_union, ucs[0].nfe_f_single,
                 ucs[0].nfe_b_single, ucs[0].loss_diff, ucs[0].grad_diff);
    const ex_result *R0 = &res[0][first];
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "latent_ode");
    ex_json_str(&j, "data", user ? "csv" : "spirals");
    ex_json_str(&j, "model", model_name[first]);
    ex_json_int(&j, "n_obs", user ? 0 : nobs[0]);
    ex_json_num(&j, "rmse_observed", R0->rmse_obs);
    ex_json_num(&j, "rmse_predicted", R0->rmse_pred);
    ex_json_int(&j, "n_test_series", (int64_t)E.ntest);
    ex_json_int(&j, "iters", R0->iters);
    ex_json_num(&j, "seconds", seconds);
    ex_json_num(&j, "ms_per_iter", R0->ms_per_iter);
    if (!user)
        ex_json_num(&j, "noise", noise);
    ex_json_str(&j, "method", node_method_name(S.opt.method));
    ex_json_str(&j, "gradient", S.backprop ? "backprop" : "adjoint");
    ex_json_str(&j, "cell", cfg.rnn_cell == NODE_CELL_GRU ? "gru" : "tanh");
    ex_json_num(&j, "weight_decay", S.weight_decay);
    ex_json_int(&j, "validation_series", S.use[LAT] ? S.val : 0);
    ex_json_num(&j, "enc_drop", S.enc_drop);
    ex_json_num(&j, "obs_std", cfg.obs_std);
    ex_json_int(&j, "refine", S.refine);
    ex_json_int(&j, "batch_size", S.batch);
    ex_json_int(&j, "seed", S.seed);
    ex_json_raw(&j, "results", arr);
    if (ucj[0])
        ex_json_raw(&j, "union_cost", ucj);
    ex_json_str(&j, "out", S.out);
    ex_json_end(&j);
    free(arr);
    free(ucj);
    status = 0;
    goto done;

nomem:
    fprintf(stderr, "latent_ode: out of memory\n");
    goto done;
fail:
    status = 1;
done:
    ex_experiment_free(&E);
    ex_experiment_free(&V);
    ex_spirals_free(&sp);
    return status;
}
