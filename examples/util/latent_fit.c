/* latent_fit.c — see latent_fit.h. */
#include "latent_fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "progress.h"
#include "tsdata.h"

#define EVAL_CAP 1024     /* times per prediction call (memory only: predict is forward) */
#define EVAL_B 64         /* series per prediction call */

/* A failure of the solve or of the gradient that a smaller learning rate or another
   batch may avoid: the training loop skips the batch instead of stopping. */
static int recoverable(node_status st)
{
    return st == NODE_EMAXSTEPS || st == NODE_ESTEPSIZE || st == NODE_ENONFINITE;
}

/* ---- the latent ODE: training on union batches, prediction --------------------------- */

void ex_drop_encoder_points(ex_batch *bt, node_rng *rng, double q, double *u)
{
    const size_t B = bt->B, nt = bt->nt;
    node_rng_uniform(rng, nt * B, u);
    for (size_t b = 0; b < B; b++) {
        size_t last = nt, kept = 0;
        for (size_t r = 0; r < nt; r++) {
            unsigned char *e = bt->enc + r * B + b;
            if (!*e)
                continue;
            last = r;
            if (u[r * B + b] < q)
                *e = 0;
            else
                kept++;
        }
        if (kept == 0 && last < nt)
            bt->enc[last * B + b] = 1;
    }
}

/* OUT/validation<tag>.csv: iteration,rmse_predicted per validation.  0, or -1 after
   printing why (no output folder: nothing written). */
static int write_curve(const char *out, const char *tag, const double *h, size_t n)
{
    char name[64], path[4096];
    if (!out)
        return 0;
    snprintf(name, sizeof name, "validation%s.csv", tag);
    if (ex_path_join(path, sizeof path, out, name) != 0) {
        fprintf(stderr, "latent_ode: output path too long\n");
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "latent_ode: cannot write %s\n", path);
        return -1;
    }
    fprintf(f, "iteration,rmse_predicted\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.0f,%.9g\n", h[2 * i], h[2 * i + 1]);
    if (fclose(f) != 0) {
        fprintf(stderr, "latent_ode: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* Score the parameters cand on the validation series (theta, the model's own, is kept),
   with --refine's inference when refine > 0: *rmse; when better than *best_rmse, keep
   them in best.  0, or -1 after printing why. */
static int validate(ex_experiment *V, node_latent *m, node_solver *solver, const node_options *opt,
                    size_t L, long refine, double refine_lr, const double *cand, double *save,
                    double *best, double *best_rmse, double *rmse, long it, long *best_iter)
{
    double *theta = node_latent_params(m);
    const size_t P = node_latent_nparams(m);
    memcpy(save, theta, P * sizeof *save);
    memcpy(theta, cand, P * sizeof *theta);
    int rc = ex_eval_latent(V, m, solver, opt, L);
    if (rc == 0 && refine > 0)   /* scored as the test will be */
        rc = ex_refine_latent(V, m, solver, opt, refine, refine_lr);
    ex_result r;
    memset(&r, 0, sizeof r);
    if (rc == 0)
        ex_score(V, EX_LAT, &r);
    *rmse = r.rmse_pred;
    if (rc == 0 && r.rmse_pred < *best_rmse) {
        *best_rmse = r.rmse_pred;
        *best_iter = it;
        memcpy(best, cand, P * sizeof *best);
    }
    memcpy(theta, save, P * sizeof *theta);
    return rc;
}

int ex_train_latent(const ex_settings *S, ex_experiment *E, node_latent *m, node_solver *solver,
                        ex_result *R)
{
    int rc = -1;
    const node_tseries *d = E->train;
    const size_t ntr = node_tseries_count(d), D = node_tseries_dim(d);
    const size_t B = zmin((size_t)S->batch, ntr), L = (size_t)S->latent_dim;
    const size_t P = node_latent_nparams(m);
    double *theta = node_latent_params(m);
    double tmin, tmax;
    size_t maxlen;
    ex_tseries_extent(d, &tmin, &tmax, &maxlen);
    /* Room for a sub-batch's union: the cap, or (no cap) every point of a batch. */
    const size_t cap = S->union_cap > 0 ? zmax((size_t)S->union_cap, maxlen) : B * maxlen;
    double *grad = malloc(P * sizeof *grad), *gsum = malloc(P * sizeof *gsum);
    double *avg = malloc(P * sizeof *avg);
    ex_experiment *V = S->val_every > 0 ? E->val : NULL;
    double *save = V ? malloc(P * sizeof *save) : NULL, *best = V ? malloc(P * sizeof *best) : NULL;
    double best_rmse = INFINITY, last_rmse = NAN;
    long best_iter = 0, last_val = 0;
    /* the validation curve: (iteration, RMSE) at every validation */
    const size_t nhist = V ? (size_t)(S->iters / S->val_every) + 2 : 0;
    double *hist = V ? malloc(2 * nhist * sizeof *hist) : NULL;
    size_t nh = 0;
    double *eps = malloc(B * L * sizeof *eps), *spl = malloc(B * sizeof *spl);
    size_t *perm = malloc(ntr * sizeof *perm), *start = malloc((B + 1) * sizeof *start);
    double *work = malloc(2 * B * maxlen * sizeof *work);   /* ex_union_groups */
    double *udrop = S->enc_drop > 0 ? malloc((cap + 1) * B * sizeof *udrop) : NULL;
    ex_batch bt = { 0 };
    node_optim *optim = NULL;
    node_error err;
    err.message[0] = '\0';
    if (!grad || !gsum || !avg || (V && (!save || !best || !hist)) || !eps || !spl || !perm ||
        !start || !work || (S->enc_drop > 0 && !udrop) || ex_batch_init(&bt, B, cap, D) != 0) {
        fprintf(stderr, "latent_ode: out of memory\n");
        goto fail;
    }
    node_optim_config oc;
    CHECK("optimizer defaults", NULL,
          node_optim_defaults(S->weight_decay > 0 ? NODE_OPTIM_ADAMW : NODE_OPTIM_ADAM, &oc));
    oc.lr = S->lr;
    oc.weight_decay = S->weight_decay;
    CHECK("creating the optimizer", err.message, node_optim_create_ex(&optim, P, &oc, &err));
    node_rng rng;
    node_rng_seed(&rng, (uint64_t)S->seed * 7919u + (uint64_t)E->n_obs);
    const node_grad_method how = S->backprop ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT;
    node_sched sched = node_sched_constant(S->lr);
    if (S->lr_min >= 0) {
        sched.kind = NODE_SCHED_COSINE;
        sched.T = S->iters > 0 ? S->iters : 1;
        sched.lr_min = S->lr_min;
    }

    memcpy(avg, theta, P * sizeof *avg);
    ex_progress prog;
    double t_train = 0, t_first = 0, loss_ema = NAN, kl_ema = NAN, sum_f = 0, sum_b = 0,
           sum_g = 0;
    long fails_in_row = 0, counted = 0;
    const long every = S->iters >= 10 ? S->iters / 10 : 1;
    ex_progress_start(&prog, stderr, S->iters);
    for (long it = 1; it <= S->iters; it++) {
        double c0 = ex_clock();
        CHECK("learning-rate schedule", NULL, node_optim_schedule(optim, &sched, it - 1));
        /* B distinct training series; the batch is solved on the union of their times,
           cut into sub-batches whose unions stay under the cap, gradients summed with
           the weights that make the total the mean over the B series. */
        node_rng_permutation(&rng, ntr, perm);
        const size_t ng = ex_union_groups(d, B, perm, (size_t)S->union_cap, S->union_density, work,
                                          start);
        for (size_t k = 0; k < P; k++)
            gsum[k] = 0.0;
        double loss = 0, kl = 0;
        int64_t nf = 0, nb = 0;
        node_status st = NODE_OK;
        node_stats stats;
        stats.message[0] = '\0';
        for (size_t g = 0; g < ng && st == NODE_OK; g++) {
            const size_t Bg = start[g + 1] - start[g];
            const int cut = S->enc_frac < 1 || E->train_split > 0;
            if (E->train_split > 0) {
                for (size_t b = 0; b < Bg; b++)
                    spl[b] = E->train_split;
            } else if (S->enc_frac < 1) {
                const double wid = S->enc_frac_max > S->enc_frac ? S->enc_frac_max - S->enc_frac : 0;
                if (wid > 0)
                    node_rng_uniform(&rng, Bg, spl);
                for (size_t b = 0; b < Bg; b++) {
                    int64_t id;
                    size_t n;
                    const double *t, *x;
                    node_tseries_get(d, perm[start[g] + b], &id, &n, &t, &x);
                    const double f = S->enc_frac + (wid > 0 ? wid * spl[b] : 0);
                    spl[b] = t[0] + f * (t[n - 1] - t[0]);
                }
            }
            CHECK("building a batch", err.message,
                  ex_batch_fill(&bt, d, Bg, perm + start[g], E->t0,
                                cut ? spl : NULL, &err));
            if (S->enc_drop > 0)
                ex_drop_encoder_points(&bt, &rng, S->enc_drop, udrop);
            node_rng_normal(&rng, Bg * L, eps);
            node_latent_terms terms;
            err.message[0] = stats.message[0] = '\0';
            st = node_latent_loss(m, solver, Bg, bt.nt, bt.ts, bt.xs, bt.enc, bt.mask, eps,
                                  &S->opt, how, &terms, grad, &stats, &err);
            if (st == NODE_OK) {
                const double w = (double)Bg / (double)B;
                for (size_t k = 0; k < P; k++)
                    gsum[k] += w * grad[k];
                loss += w * terms.loss;
                kl += w * terms.kl;
                nf += terms.nfe_forward;
                nb += terms.nfe_backward;
            }
        }
        if (st == NODE_OK && S->clip > 0)
            st = node_clip_grad_norm(P, gsum, S->clip, NULL);
        if (st == NODE_OK)
            st = node_optim_step(optim, theta, gsum);
        if (st != NODE_OK) {
            const char *msg = err.message[0] ? err.message : stats.message;
            if (!recoverable(st) || ++fails_in_row > 20) {
                ex_progress_end(&prog);
                fprintf(stderr, "latent_ode: latent ODE training, iteration %ld: %s\n", it,
                        msg[0] ? msg : node_strerror(st));
                goto fail;
            }
            R->skipped++;
            ex_progress_print(&prog, "latent_ode: iteration %ld skipped: %s\n", it,
                              msg[0] ? msg : node_strerror(st));
            continue;
        }
        fails_in_row = 0;
        if (S->ema > 0) {
            /* Bias-free start: the average is θ_0's until the decay's horizon fills. */
            const double a = fmin(S->ema, (double)(counted + 1) / (double)(counted + 10));
            for (size_t k = 0; k < P; k++)
                avg[k] = a * avg[k] + (1.0 - a) * theta[k];
        }
        t_train += ex_clock() - c0;
        if (counted == 0)
            t_first = t_train;   /* the first iteration pays for the workspaces */
        loss_ema = isnan(loss_ema) ? loss : 0.9 * loss_ema + 0.1 * loss;
        kl_ema = isnan(kl_ema) ? kl : 0.9 * kl_ema + 0.1 * kl;
        sum_f += (double)nf;
        sum_b += (double)nb;
        sum_g += (double)ng;
        counted++;
        if (V && (it % S->val_every == 0 || it == S->iters)) {
            if (validate(V, m, solver, &S->opt, L, S->refine, S->refine_lr,
                         S->ema > 0 ? avg : theta, save, best, &best_rmse, &last_rmse, it,
                         &best_iter) != 0)
                goto fail;
            last_val = it;
            hist[2 * nh] = (double)it;
            hist[2 * nh++ + 1] = last_rmse;
        }
        char vs[96] = "";
        if (V && best_iter > 0)
            snprintf(vs, sizeof vs, " | validation RMSE %.4f, best %.4f (iter %ld)", last_rmse,
                     best_rmse, best_iter);
        ex_progress_draw(&prog, it, it % every == 0 || it == S->iters,
                         "latent-ode%s | iter %ld/%ld | -ELBO %.3f | KL %.3f | NFE fwd %lld "
                         "bwd %lld | %.1f ms/it%s", E->tag, it, S->iters, loss_ema, kl_ema,
                         (long long)nf, (long long)nb, 1e3 * t_train / (double)counted, vs);
    }
    ex_progress_end(&prog);
    if (V && counted > 0 && last_val < S->iters &&   /* the last iteration was skipped */
        validate(V, m, solver, &S->opt, L, S->refine, S->refine_lr, S->ema > 0 ? avg : theta,
                 save, best, &best_rmse, &last_rmse, S->iters, &best_iter) != 0)
        goto fail;
    if (V && counted > 0 && last_val < S->iters) {
        hist[2 * nh] = (double)S->iters;
        hist[2 * nh++ + 1] = last_rmse;
    }
    if (V && write_curve(S->out, E->tag, hist, nh) != 0)
        goto fail;
    if (V && best_iter > 0)
        memcpy(theta, best, P * sizeof *theta);  /* the model is the best validated from here on */
    else if (S->ema > 0 && counted > 0)
        memcpy(theta, avg, P * sizeof *theta);   /* the model is the average from here on */
    R->best_iter = V ? best_iter : 0;
    R->val_rmse = V && best_iter > 0 ? best_rmse : NAN;
    R->iters = S->iters;
    /* After the first iteration, which allocates the workspaces (unless it is the only). */
    R->ms_per_iter = counted > 1 ? 1e3 * (t_train - t_first) / (double)(counted - 1)
                                 : 1e3 * t_train;
    R->loss = loss_ema;
    R->kl = kl_ema;
    R->nfe_f = counted ? sum_f / (double)counted : 0;
    R->nfe_b = counted ? sum_b / (double)counted : 0;
    R->groups = counted ? sum_g / (double)counted : 0;
    rc = 0;
fail:
    free(grad);
    free(gsum);
    free(avg);
    free(save);
    free(best);
    free(hist);
    free(eps);
    free(spl);
    free(perm);
    free(start);
    free(work);
    free(udrop);
    ex_batch_free(&bt);
    node_optim_free(optim);
    return rc;
}

/* Encode every test series from its points at t <= split, predict at all its points
   (posterior mean, no sampling); the latent path at those points too. */
int ex_eval_latent(ex_experiment *E, node_latent *m, node_solver *solver,
                       const node_options *opt, size_t L)
{
    int rc = -1;
    const node_tseries *d = E->test;
    const size_t D = node_tseries_dim(d), N = E->ntest;
    double tmin, tmax;
    size_t maxlen;
    ex_tseries_extent(d, &tmin, &tmax, &maxlen);
    const size_t cap = zmax(EVAL_CAP, maxlen), Bmax = zmin(EVAL_B, N);
    size_t *sel = malloc(N * sizeof *sel), *start = malloc((N + 1) * sizeof *start);
    double *xp = malloc((cap + 1) * Bmax * D * sizeof *xp);
    double *z = malloc((cap + 1) * Bmax * L * sizeof *z), *spl = malloc(Bmax * sizeof *spl);
    double *work = malloc(2 * Bmax * maxlen * sizeof *work);   /* ex_union_groups */
    ex_batch bt = { 0 };
    node_error err;
    err.message[0] = '\0';
    if (!sel || !start || !xp || !z || !spl || !work ||
        ex_batch_init(&bt, Bmax, cap, D) != 0) {
        fprintf(stderr, "latent_ode: out of memory\n");
        goto fail;
    }
    for (size_t i = 0; i < N; i++)
        sel[i] = i;
    for (size_t c = 0; c < N; c += Bmax) {
        const size_t nc = zmin(Bmax, N - c);
        const size_t ng = ex_union_groups(d, nc, sel + c, EVAL_CAP, 0.0, work, start);
        for (size_t g = 0; g < ng; g++) {
            const size_t Bg = start[g + 1] - start[g], *sg = sel + c + start[g];
            for (size_t b = 0; b < Bg; b++)
                spl[b] = E->split[sg[b]];
            CHECK("building a test batch", err.message,
                  ex_batch_fill(&bt, d, Bg, sg, E->t0, spl, &err));
            node_stats stats;
            stats.message[0] = '\0';
            CHECK("latent ODE prediction", err.message[0] ? err.message : stats.message,
                  node_latent_predict(m, solver, Bg, bt.nt, bt.ts, bt.xs, bt.enc, NULL, opt,
                                      xp, z, &stats, &err));
            for (size_t b = 0; b < Bg; b++) {
                size_t k = E->off[sg[b]];
                for (size_t r = 0; r < bt.nt; r++) {
                    if (!bt.mask[r * Bg + b])
                        continue;
                    memcpy(E->pred[EX_LAT] + k * D, xp + (r * Bg + b) * D, D * sizeof *xp);
                    memcpy(E->zpath + k * L, z + (r * Bg + b) * L, L * sizeof *z);
                    k++;
                }
            }
        }
    }
    rc = 0;
fail:
    free(sel);
    free(start);
    free(xp);
    free(z);
    free(spl);
    free(work);
    ex_batch_free(&bt);
    return rc;
}

int ex_refine_latent(ex_experiment *E, node_latent *m, node_solver *solver,
                     const node_options *opt, long steps, double lr)
{
    int rc = -1;
    const node_tseries *d = E->test;
    const size_t D = node_tseries_dim(d), N = E->ntest, P = node_latent_nparams(m);
    node_latent_config c;
    node_latent_config_get(m, &c);
    const size_t L = c.latent_dim, H = c.dyn_hidden, Hd = c.dec_hidden;
    /* θ = [cell, encoder output layer (W: 2L × rnn_hidden, b: [b_mu, b_logvar]), f, g]:
       with one series in the batch, the mean of q is W h + b_mu, so moving b_mu moves
       that series' mean and nothing else. */
    const size_t nf = L * H + H + H * H + H + H * L + L, ng = L * Hd + Hd + Hd * D + D;
    const size_t bmu = P - nf - ng - 2 * L;
    double *theta = node_latent_params(m);
    double tmin, tmax;
    size_t maxlen;
    ex_tseries_extent(d, &tmin, &tmax, &maxlen);
    double *grad = malloc(P * sizeof *grad), *save = malloc(L * sizeof *save);
    double *xp = malloc((maxlen + 1) * D * sizeof *xp), *z = malloc((maxlen + 1) * L * sizeof *z);
    ex_batch bt = { 0 };
    node_optim *adam = NULL;
    node_error err;
    err.message[0] = '\0';
    if (!grad || !save || !xp || !z || ex_batch_init(&bt, 1, maxlen, D) != 0) {
        fprintf(stderr, "latent_ode: out of memory\n");
        goto fail;
    }
    node_optim_config oc;
    CHECK("optimizer defaults", NULL, node_optim_defaults(NODE_OPTIM_ADAM, &oc));
    oc.lr = lr;
    CHECK("creating the optimizer", err.message, node_optim_create_ex(&adam, L, &oc, &err));
    memcpy(save, theta + bmu, L * sizeof *save);
    for (size_t i = 0; i < N; i++) {
        CHECK("building a test batch", err.message,
              ex_batch_fill(&bt, d, 1, &i, E->t0, E->split + i, &err));
        CHECK("resetting the optimizer", NULL, node_optim_reset(adam));
        for (long s = 0; s < steps; s++) {
            node_latent_terms terms;
            node_stats stats;
            stats.message[0] = '\0';
            CHECK("refining a test series' posterior", err.message[0] ? err.message : stats.message,
                  node_latent_loss(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, bt.enc, NULL, opt,
                                   NODE_GRAD_BACKPROP, &terms, grad, &stats, &err));
            CHECK("refining a test series' posterior", NULL,
                  node_optim_step(adam, theta + bmu, grad + bmu));   /* the mean's L entries */
        }
        node_stats stats;
        stats.message[0] = '\0';
        CHECK("latent ODE prediction", err.message[0] ? err.message : stats.message,
              node_latent_predict(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, NULL, opt, xp, z,
                                  &stats, &err));
        size_t k = E->off[i];
        for (size_t r = 0; r < bt.nt; r++) {
            if (!bt.mask[r])
                continue;
            memcpy(E->pred[EX_LAT] + k * D, xp + r * D, D * sizeof *xp);
            memcpy(E->zpath + k * L, z + r * L, L * sizeof *z);
            k++;
        }
        memcpy(theta + bmu, save, L * sizeof *save);
    }
    rc = 0;
fail:
    if (save)
        memcpy(theta + bmu, save, L * sizeof *save);
    free(grad);
    free(save);
    free(xp);
    free(z);
    ex_batch_free(&bt);
    node_optim_free(adam);
    return rc;
}

/* The cost of the union: the same batches of training series, loss and gradient (no
   sampling, eps = NULL) once on the union of their times and once series by series
   (gradients averaged); times, evaluations, and how far the two results differ. */
int ex_measure_union(const ex_settings *S, ex_experiment *E, node_latent *m, node_solver *solver,
                         ex_union_cost *U)
{
    int rc = -1;
    const node_tseries *d = E->train;
    const size_t ntr = node_tseries_count(d), D = node_tseries_dim(d);
    const size_t B = zmin((size_t)S->batch, ntr), P = node_latent_nparams(m);
    double tmin, tmax;
    size_t maxlen;
    ex_tseries_extent(d, &tmin, &tmax, &maxlen);
    double *g1 = malloc(P * sizeof *g1), *g2 = malloc(P * sizeof *g2);
    double *gs = malloc(P * sizeof *gs);
    size_t *perm = malloc(ntr * sizeof *perm);
    ex_batch bt = { 0 };
    node_error err;
    err.message[0] = '\0';
    if (!g1 || !g2 || !gs || !perm || ex_batch_init(&bt, B, B * maxlen, D) != 0) {
        fprintf(stderr, "latent_ode: out of memory\n");
        goto fail;
    }
    node_rng rng;
    node_rng_seed(&rng, (uint64_t)S->seed + 4242u);
    const node_grad_method how = S->backprop ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT;
    memset(U, 0, sizeof *U);
    U->B = B;
    for (long k = 0; k < S->union_cost; k++) {
        node_rng_permutation(&rng, ntr, perm);
        node_latent_terms tu, t1;
        node_stats stats;
        stats.message[0] = '\0';
        double c0 = ex_clock();
        CHECK("union batch", err.message[0] ? err.message : stats.message,
              ex_batch_fill(&bt, d, B, perm, E->t0, NULL, &err));
        CHECK("union batch loss", err.message[0] ? err.message : stats.message,
              node_latent_loss(m, solver, B, bt.nt, bt.ts, bt.xs, bt.mask, bt.mask, NULL,
                               &S->opt, how, &tu, g1, &stats, &err));
        double c1 = ex_clock();
        U->mean_union += (double)(bt.nt);
        U->nfe_f_union += (double)tu.nfe_forward;
        U->nfe_b_union += (double)tu.nfe_backward;
        double ls = 0;
        for (size_t p = 0; p < P; p++)
            gs[p] = 0;
        for (size_t b = 0; b < B; b++) {
            CHECK("one-series batch", err.message,
                  ex_batch_fill(&bt, d, 1, perm + b, E->t0, NULL, &err));
            int64_t id;
            size_t n;
            const double *t, *x;
            node_tseries_get(d, perm[b], &id, &n, &t, &x);
            U->mean_len += (double)n;
            CHECK("one-series loss", err.message[0] ? err.message : stats.message,
                  node_latent_loss(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.mask, bt.mask, NULL,
                                   &S->opt, how, &t1, g2, &stats, &err));
            for (size_t p = 0; p < P; p++)
                gs[p] += g2[p] / (double)B;
            ls += t1.loss / (double)B;
            U->nfe_f_single += (double)t1.nfe_forward;
            U->nfe_b_single += (double)t1.nfe_backward;
        }
        double c2 = ex_clock();
        U->ms_union += 1e3 * (c1 - c0);
        U->ms_single += 1e3 * (c2 - c1);
        double dn = 0, gn = 0;
        for (size_t p = 0; p < P; p++) {
            dn += (g1[p] - gs[p]) * (g1[p] - gs[p]);
            gn += g1[p] * g1[p];
        }
        U->grad_diff = fmax(U->grad_diff, sqrt(dn / (gn > 0 ? gn : 1)));
        U->loss_diff = fmax(U->loss_diff, fabs(tu.loss - ls) / fmax(fabs(ls), 1e-300));
        U->batches++;
    }
    const double nb = (double)(U->batches ? U->batches : 1);
    U->mean_union /= nb;
    U->mean_len /= nb * (double)B;
    U->ms_union /= nb;
    U->ms_single /= nb;
    U->nfe_f_union /= nb;
    U->nfe_b_union /= nb;
    U->nfe_f_single /= nb;
    U->nfe_b_single /= nb;
    U->done = 1;
    rc = 0;
fail:
    free(g1);
    free(g2);
    free(gs);
    free(perm);
    ex_batch_free(&bt);
    return rc;
}

/* ---- the EX_RNN baselines ----------------------------------------------------------------- */

int ex_train_rnn(const ex_settings *S, ex_experiment *E, ex_rnn_model *rm, ex_result *R,
                     const char *name)
{
    int rc = -1;
    const node_tseries *d = E->train;
    const size_t ntr = node_tseries_count(d), B = zmin((size_t)S->batch, ntr);
    const size_t Pc = node_rnn_nparams(rm->cell), Po = node_mlp_nparams(rm->readout);
    size_t *perm = malloc(ntr * sizeof *perm);
    node_optim *oc_ = NULL, *oo_ = NULL;
    node_error err;
    err.message[0] = '\0';
    if (!perm) {
        fprintf(stderr, "latent_ode: out of memory\n");
        goto fail;
    }
    /* Adam is elementwise: one optimizer per parameter vector is Adam over both. */
    node_optim_config oc;
    CHECK("optimizer defaults", NULL, node_optim_defaults(NODE_OPTIM_ADAM, &oc));
    oc.lr = S->lr;
    CHECK("creating the optimizer", err.message, node_optim_create_ex(&oc_, Pc, &oc, &err));
    CHECK("creating the optimizer", err.message, node_optim_create_ex(&oo_, Po, &oc, &err));
    node_rng rng;
    node_rng_seed(&rng, (uint64_t)S->seed * 104729u + (uint64_t)E->n_obs + (rm->with_dt ? 7u : 0u));
    ex_progress prog;
    double t_train = 0, t_first = 0, loss_ema = NAN;
    long counted = 0, fails_in_row = 0;
    const long every = S->rnn_iters >= 10 ? S->rnn_iters / 10 : 1;
    ex_progress_start(&prog, stderr, S->rnn_iters);
    for (long it = 1; it <= S->rnn_iters; it++) {
        double c0 = ex_clock();
        node_rng_permutation(&rng, ntr, perm);
        double loss = 0;
        node_status st = ex_rnn_loss(rm, d, B, perm, &loss, &err);
        if (st == NODE_OK)
            st = node_optim_step(oc_, node_rnn_params(rm->cell), rm->g_cell);
        if (st == NODE_OK)
            st = node_optim_step(oo_, node_mlp_params(rm->readout), rm->g_out);
        if (st != NODE_OK) {
            if (st != NODE_ENONFINITE || ++fails_in_row > 20) {
                ex_progress_end(&prog);
                fprintf(stderr, "latent_ode: %s training, iteration %ld: %s\n", name, it,
                        err.message[0] ? err.message : node_strerror(st));
                goto fail;
            }
            R->skipped++;
            continue;
        }
        fails_in_row = 0;
        t_train += ex_clock() - c0;
        if (counted == 0)
            t_first = t_train;   /* the first iteration pays for the workspaces */
        counted++;
        loss_ema = isnan(loss_ema) ? loss : 0.9 * loss_ema + 0.1 * loss;
        ex_progress_draw(&prog, it, it % every == 0 || it == S->rnn_iters,
                         "%s%s | iter %ld/%ld | NLL %.3f | %.2f ms/it", name, E->tag, it,
                         S->rnn_iters, loss_ema, 1e3 * t_train / (double)counted);
    }
    ex_progress_end(&prog);
    R->iters = S->rnn_iters;
    /* After the first iteration, which allocates the workspaces (unless it is the only). */
    R->ms_per_iter = counted > 1 ? 1e3 * (t_train - t_first) / (double)(counted - 1)
                                 : 1e3 * t_train;
    R->loss = loss_ema;
    R->kl = NAN;
    rc = 0;
fail:
    free(perm);
    node_optim_free(oc_);
    node_optim_free(oo_);
    return rc;
}

int ex_eval_rnn(ex_experiment *E, ex_rnn_model *rm, double *pred)
{
    const node_tseries *d = E->test;
    const size_t D = node_tseries_dim(d);
    for (size_t i = 0; i < E->ntest; i++) {
        int64_t id;
        size_t n, nenc = 0;
        const double *t, *x;
        node_tseries_get(d, i, &id, &n, &t, &x);
        while (nenc < n && t[nenc] <= E->split[i])
            nenc++;
        node_status st = ex_rnn_predict(rm, n, t, x, nenc, pred + E->off[i] * D);
        if (st != NODE_OK) {
            fprintf(stderr, "latent_ode: EX_RNN prediction of test series %lld: %s\n",
                    (long long)id, node_strerror(st));
            return -1;
        }
    }
    return 0;
}

/* RMSE of model k's predictions: over the points the encoder saw (t <= split; the
   RNNs have no prediction for a series' first point) and over the points after. */
void ex_score(ex_experiment *E, int k, ex_result *R)
{
    const size_t D = node_tseries_dim(E->test);
    double so = 0, sp = 0, to = 0, tp = 0;
    size_t no = 0, np = 0;
    for (size_t i = 0; i < E->ntest; i++) {
        int64_t id;
        size_t n;
        const double *t, *x, *tt = NULL, *xt = NULL;
        node_tseries_get(E->test, i, &id, &n, &t, &x);
        if (E->truth)
            node_tseries_get(E->truth, i, &id, &n, &tt, &xt);
        const double *p = E->pred[k] + E->off[i] * D;
        for (size_t j = (k == EX_LAT ? 0 : 1); j < n; j++) {
            double e = 0, et = 0;
            for (size_t c = 0; c < D; c++) {
                e += (p[j * D + c] - x[j * D + c]) * (p[j * D + c] - x[j * D + c]);
                if (xt)
                    et += (p[j * D + c] - xt[j * D + c]) * (p[j * D + c] - xt[j * D + c]);
            }
            if (t[j] <= E->split[i]) {
                so += e;
                to += et;
                no++;
            } else {
                sp += e;
                tp += et;
                np++;
            }
        }
    }
    R->rmse_obs = no ? sqrt(so / (double)(no * D)) : NAN;
    R->rmse_pred = np ? sqrt(sp / (double)(np * D)) : NAN;
    R->rmse_obs_truth = E->truth && no ? sqrt(to / (double)(no * D)) : NAN;
    R->rmse_pred_truth = E->truth && np ? sqrt(tp / (double)(np * D)) : NAN;
    R->done = 1;
}

/* ---- experiments ------------------------------------------------------------------------ */

/* Offsets of the test series' points, prediction buffers for the models in use. */
static int setup_points(ex_experiment *E, const int *use, size_t L)
{
    const size_t D = node_tseries_dim(E->test);
    E->ntest = node_tseries_count(E->test);
    E->off = malloc((E->ntest + 1) * sizeof *E->off);
    if (!E->off)
        return -1;
    E->npts = 0;
    for (size_t i = 0; i < E->ntest; i++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(E->test, i, &id, &n, &t, &x);
        E->off[i] = E->npts;
        E->npts += n;
    }
    E->off[E->ntest] = E->npts;
    for (int k = 0; k < EX_NMODELS; k++)
        if (use[k] && !(E->pred[k] = malloc(E->npts * D * sizeof(double))))
            return -1;
    if (use[EX_LAT] && !(E->zpath = malloc(E->npts * L * sizeof(double))))
        return -1;
    return 0;
}

/* Points of the test series, their offsets, prediction buffers, the common t0. */
int ex_experiment_setup(const ex_settings *S, ex_experiment *E, size_t L)
{
    if (setup_points(E, S->use, L) != 0)
        return -1;
    double a, b, c, dd;
    size_t m1, m2;
    ex_tseries_extent(E->train, &a, &b, &m1);
    ex_tseries_extent(E->test, &c, &dd, &m2);
    E->t0 = fmin(a, c);
    return 0;
}

int ex_hold_out(ex_experiment *E, ex_experiment *V, size_t K, double split, size_t L)
{
    const size_t N = node_tseries_count(E->train), D = node_tseries_dim(E->train);
    node_tseries *keep = NULL;
    node_error err;
    memset(V, 0, sizeof *V);
    if (node_tseries_create(&keep, D, &err) != NODE_OK ||
        node_tseries_create(&V->test, D, &err) != NODE_OK ||
        !(V->split = malloc(K * sizeof *V->split)))
        goto fail;
    for (size_t i = 0; i < N; i++) {
        int64_t id;
        size_t n;
        const double *t, *x;
        node_tseries_get(E->train, i, &id, &n, &t, &x);
        if (node_tseries_add(i + K < N ? keep : V->test, id, n, t, x, &err) != NODE_OK)
            goto fail;
    }
    for (size_t i = 0; i < K; i++) {
        size_t n;
        const double *t;
        node_tseries_get(V->test, i, NULL, &n, &t, NULL);
        V->split[i] = isnan(split) ? t[(n + 1) / 2 - 1] : split;   /* NaN: first half */
    }
    static const int lat_only[EX_NMODELS] = { 1, 0, 0 };
    if (setup_points(V, lat_only, L) != 0)
        goto fail;
    snprintf(V->tag, sizeof V->tag, "%s", E->tag);
    V->n_obs = E->n_obs;
    V->t0 = E->t0;
    node_tseries_free(E->train);
    E->train = keep;
    E->val = V;
    return 0;
fail:
    node_tseries_free(keep);
    ex_experiment_free(V);
    return -1;
}

void ex_experiment_free(ex_experiment *E)
{
    node_tseries_free(E->train);
    node_tseries_free(E->test);
    node_tseries_free(E->truth);
    free(E->split);
    free(E->cw);
    free(E->off);
    for (int k = 0; k < EX_NMODELS; k++)
        free(E->pred[k]);
    free(E->zpath);
    memset(E, 0, sizeof *E);
}

