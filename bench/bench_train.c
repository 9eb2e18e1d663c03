/* bench_train.c — time per training iteration of a neural ODE: forward solve +
 * backward (adjoint, adjoint with seminorm, exact backprop with its forward re-run, or
 * exact backprop reversing the forward solve's recording: opt->record) + Adam step, in the
 * setting of torchdiffeq's ode_demo (MLP 2-50-2 on y³, batch 20 × 10 points, dopri5
 * at 1e-7/1e-9, MSE) and a wide one (MLP 2-256-2, batch 256).  One thread.  The same
 * protocol as bench/peers/torchdiffeq_bench.py.  Prints a Markdown table.
 * Run: ./bench_train [--quick] [--iters N] [--case demo|wide] [--grad adjoint|backprop|...]
 * NFE bwd / NFE fwd is printed as its own column.
 */
#define _POSIX_C_SOURCE 200809L
#include <libnode.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "spiral_model.h"   /* examples/util: the ode_demo problem */
#include "bench_machine.h"  /* now(), the FMA rate, stream rates */
#include "bench_roofline.h" /* the bound of one network evaluation */

/* ---- one case -------------------------------------------------------------------------- */

enum { DATA = 1000, BT = 10, REPEATS = 3 };
enum grad_mode { ADJOINT, SEMINORM, BACKPROP, RECORDED };
static const char *const mode_name[] = { "adjoint", "adjoint+seminorm", "backprop",
                                         "backprop+record" };

typedef struct result {
    double ms, fwd_ms, bwd_ms, opt_us, nfe_f, nfe_b, loss0, loss1;
} result;

#define TRY(call)                                                                  \
    do {                                                                           \
        node_status st_ = (call);                                                  \
        if (st_ != NODE_OK) {                                                      \
            fprintf(stderr, "bench_train: %s: %s\n", #call, node_strerror(st_));   \
            goto out;                                                              \
        }                                                                          \
    } while (0)

static int run_case(const double *ytrue, const double *ts, size_t width, size_t B,
                    enum grad_mode mode, long warmup, long iters, result *res)
{
    int rc = -1;
    node_mlp *m = NULL;
    node_solver *s = NULL;
    node_optim *o = NULL;
    const size_t sizes[3] = { 2, width, 2 };
    const node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    ex_cubic_model c = { 0 };
    node_system sys;
    double *y0 = malloc(2 * B * sizeof *y0), *by = malloc(BT * 2 * B * sizeof *by);
    double *pred = malloc(BT * 2 * B * sizeof *pred), *dl = malloc(BT * 2 * B * sizeof *dl);
    double *dy0 = malloc(2 * B * sizeof *dy0), *grad = NULL;
    if (!y0 || !by || !pred || !dl || !dy0)
        goto out;

    TRY(node_mlp_create(&m, 2, sizes, acts, 0));
    TRY(node_mlp_reserve(m, B));
    ex_rng rng;
    ex_rng_seed(&rng, 1);
    ex_mlp_init_normal(m, &rng, 0.1);           /* W ~ N(0, 0.1²), b = 0, as the demo */
    double *theta = node_mlp_params(m);
    size_t P = node_mlp_nparams(m);
    grad = malloc(P * sizeof *grad);
    if (!grad || ex_cubic_init(&c, m, B, &sys))
        goto out;
    node_options opt = node_options_default();   /* dopri5, 1e-7, 1e-9 */
    opt.seminorm = mode == SEMINORM;
    opt.record = mode == RECORDED;   /* backprop reverses the forward solve's recording */
    TRY(node_solver_create(&s));
    node_optim_config oc;
    TRY(node_optim_defaults(NODE_OPTIM_ADAM, &oc));
    TRY(node_optim_create(&o, P, &oc));

    memset(res, 0, sizeof *res);
    for (long it = 0; it < warmup + iters; it++) {
        /* B distinct starts in 0 .. DATA-BT-1 (a partial Fisher–Yates over a stack list
           would need DATA entries; rejection of repeats is cheap at these sizes). */
        size_t pick[256];
        for (size_t i = 0; i < B; i++) {
            size_t p;
            int dup;
            do {
                p = ex_rng_below(&rng, DATA - BT);
                dup = 0;
                for (size_t j = 0; j < i; j++)
                    dup |= pick[j] == p;
            } while (dup);
            pick[i] = p;
        }
        ex_spiral_windows(ytrue, BT, B, pick, by, y0);

        node_stats fs = { 0 }, bs = { 0 };
        double L, t0 = now();
        TRY(node_solver_odeint(s, &sys, y0, ts, BT, pred, &opt, &fs));
        TRY(node_loss_mse(BT * 2 * B, pred, by, NULL, &L, dl));
        double t1 = now();
        if (mode >= BACKPROP)
            TRY(node_solver_backprop(s, &sys, ts, BT, pred, dl, dy0, grad, NULL, &opt, &bs));
        else
            TRY(node_solver_adjoint(s, &sys, ts, BT, pred, dl, dy0, grad, NULL, &opt, &bs));
        double t2 = now();
        TRY(node_optim_step(o, theta, grad));
        double t3 = now();
        if (it == warmup)
            res->loss0 = L;
        if (it >= warmup) {
            res->fwd_ms += 1e3 * (t1 - t0);
            res->bwd_ms += 1e3 * (t2 - t1);
            res->opt_us += 1e6 * (t3 - t2);
            res->nfe_f += (double)fs.nfe;
            res->nfe_b += (double)bs.nfe;
            res->loss1 = L;
        }
    }
    double n = (double)iters;
    res->fwd_ms /= n;
    res->bwd_ms /= n;
    res->opt_us /= n;
    res->nfe_f /= n;
    res->nfe_b /= n;
    res->ms = res->fwd_ms + res->bwd_ms + 1e-3 * res->opt_us;
    rc = 0;
out:
    node_optim_free(o);
    node_solver_free(s);
    node_mlp_free(m);
    free(y0);
    free(by);
    free(pred);
    free(dl);
    free(dy0);
    free(grad);
    ex_cubic_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    int quick = 0;
    long iters_override = 0;
    const char *only = NULL, *grad_only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters_override = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--grad") == 0 && i + 1 < argc)
            grad_only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--iters N] [--case demo|wide] "
                    "[--grad adjoint|adjoint+seminorm|backprop|backprop+record]\n", argv[0]);
            return 2;
        }
    }

    /* Data: the spiral y' = y³A from (2, 0), 1000 points on [0, 25], DOP853 at 1e-12. */
    static double ts_full[DATA], ytrue[2 * DATA];
    node_status st = ex_spiral_data(DATA, ts_full, ytrue, NULL);
    if (st != NODE_OK) {
        fprintf(stderr, "bench_train: reference solve: %s\n", node_strerror(st));
        return 1;
    }

    struct { const char *name; size_t width, batch; long warm, iters; } cases[] = {
        { "demo: MLP 2-50-2, batch 20", 50, 20, 10, 100 },
        { "wide: MLP 2-256-2, batch 256", 256, 256, 2, 10 },
    };
    printf("Training iteration = dopri5 forward (rtol 1e-7, atol 1e-9, %d outputs) + MSE + "
           "backward + Adam step; one thread; W ~ N(0, 0.1), seeded batches; median of %d runs%s.\n"
           "NFE bwd: the gradient call's f and vjp calls (one each; backprop's include its forward re-run, backprop+record has none).\n\n", BT, quick ? 1 : REPEATS,
           quick ? " (--quick)" : "");
    typedef struct { size_t k; int mode; result r; } done_row;
    done_row done[8];
    size_t ndone = 0;
    printf("| setting | gradient | ms / iter | forward ms | backward ms | Adam µs | NFE fwd | NFE bwd | bwd / fwd |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (only && strncmp(cases[k].name, only, strlen(only)) != 0)
            continue;
        long iters = iters_override > 0 ? iters_override : quick ? cases[k].iters / 10 : cases[k].iters;
        long warm = quick ? 1 : cases[k].warm;
        if (iters < 1)
            iters = 1;
        for (int mode = ADJOINT; mode <= RECORDED; mode++) {
            if (grad_only && strcmp(grad_only, mode_name[mode]) != 0)
                continue;
            /* Each repeat re-runs the same seeded training window (same NFE); the
               median repeat by time is reported, to damp a busy machine's noise. */
            result rs[REPEATS], r;
            int nrep = quick ? 1 : REPEATS;
            for (int q = 0; q < nrep; q++)
                if (run_case(ytrue, ts_full, cases[k].width, cases[k].batch,
                             (enum grad_mode)mode, warm, iters, &rs[q]) != 0)
                    return 1;
            for (int a = 1; a < nrep; a++)          /* insertion sort by ms */
                for (int b = a; b > 0 && rs[b].ms < rs[b - 1].ms; b--) {
                    result tmp = rs[b];
                    rs[b] = rs[b - 1];
                    rs[b - 1] = tmp;
                }
            r = rs[nrep / 2];
            printf("| %s | %s | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f | %.2f |\n", cases[k].name,
                   mode_name[mode], r.ms, r.fwd_ms, r.bwd_ms, r.opt_us, r.nfe_f, r.nfe_b,
                   r.nfe_b / r.nfe_f);
            fflush(stdout);
            if (ndone < sizeof done / sizeof done[0])
                done[ndone++] = (done_row){ k, mode, r };
        }
    }
    /* The roofline of an iteration (bench_roofline.h): its network evaluations at
       their bounds, NFE fwd f evaluations and NFE bwd vjps (the solver's own work,
       the loss and Adam granted nothing). */
    double ghz = measure_ghz(quick ? 2000000L : 20000000L);
    roof_machine rm = roof_measure(1e9 * measure_fma_peak(quick ? 100000L : 2000000L), quick);
    printf("\nRoofline of an iteration: NFE fwd x bound(f) + NFE bwd x bound(vjp), the network "
           "evaluations only (clock %.2f GHz).\n", ghz);
    roof_print_machine(&rm);
    printf("\n| setting | gradient | bound ms | f limit | vjp limit | ms / iter | %% of bound |\n");
    printf("|---|---|---:|---|---|---:|---:|\n");
    for (size_t q = 0; q < ndone; q++) {
        const result *r = &done[q].r;
        size_t w = cases[done[q].k].width, B = cases[done[q].k].batch;
        char lf, lv;
        int vf, vv;
        double bf = roof_mlp_bound(&rm, 2, w, 2, B, 0, &lf, &vf);
        double bv = roof_mlp_bound(&rm, 2, w, 2, B, 1, &lv, &vv);
        double bound_ms = 1e3 * (r->nfe_f * bf + r->nfe_b * bv);
        printf("| %.4s (%zu-wide, batch %zu) | %s | %.3f | %s | %s | %.3f | %.0f %% |\n",
               cases[done[q].k].name, w, B, mode_name[done[q].mode], bound_ms,
               roof_limit_name(lf, vf), roof_limit_name(lv, vv), r->ms,
               100.0 * bound_ms / r->ms);
    }
    printf("\nQuoted, measured elsewhere (issue #5), demo setting: torchdiffeq 73 ms adjoint / "
           "14 ms backprop; diffrax 2.4 ms adjoint / 1.1 ms backprop.\n");
    return 0;
}
