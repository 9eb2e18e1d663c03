/* spiral_mpi.c — data-parallel training over MPI: the spiral neural ODE of spiral.c
 * (dy/dt = MLP(y³), adjoint gradients, MAE, RMSprop) with each global batch of B windows
 * split into contiguous shards, one per rank; an allreduce sums the shards' gradients
 * (and losses), and every rank takes the same optimizer step.  The training is the
 * single-process run with batch B, up to the order of the gradient's summation.
 * Fixed-step methods (rk4, the default) solve a shard as one ODE of its windows; an
 * adaptive one (--method dopri5 ...) solves it with the ensemble solver (ensemble.h),
 * every window with its own steps and error control, so that a window's solve, and the
 * training, still do not depend on how the batch is split (--grad adjoint|backprop).
 * Run: mpirun -np P ./spiral_mpi [--batch-size B] [--iters N] [--method M] [--out DIR]
 * Built without MPI (no MPI found, or the target spiral_mpi_serial) it is that
 * single-process run.  Writes DIR/spiral_mpi.svg (loss curve), --loss-out FILE (the
 * loss of every iteration); the last line of standard output (rank 0) is a JSON object:
 * ms per iteration split into compute (wall and processor time; rank 0's and the
 * slowest rank's), allreduce (in the loop, so it includes waiting for the slowest
 * rank) and optimizer, the bytes per allreduce ((parameters + 1) × 8: the loss rides
 * along), and the allreduce alone, timed after training.
 */
#include <libnode.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef EX_WITH_MPI
#include <mpi.h>
#endif

#include "args.h"
#include "files.h"
#include "json.h"
#include "progress.h"
#include "rng.h"
#include "spiral_model.h"
#include "svg.h"

/* ---- the communicator: MPI, or one rank ---------------------------------------------- */

#ifdef EX_WITH_MPI
enum { DP_MPI = 1 };
#else
enum { DP_MPI = 0 };
#endif
static int dp_rank = 0, dp_size = 1;

static void dp_init(int *argc, char ***argv)
{
#ifdef EX_WITH_MPI
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &dp_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dp_size);
#else
    (void)argc;
    (void)argv;
#endif
}

/* buf[0..n-1] = the sum over ranks of buf (one rank: unchanged, no rounding). */
static void dp_sum(double *buf, size_t n)
{
#ifdef EX_WITH_MPI
    if (dp_size > 1)
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)buf;
    (void)n;
#endif
}

/* Rank 0's status for everyone (the others do what rank 0 decided). */
static int dp_bcast_int(int v)
{
#ifdef EX_WITH_MPI
    MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
#endif
    return v;
}

/* 1 if every rank holds the same n doubles as rank 0, bit for bit.  tmp: n doubles. */
static int dp_agree(const double *x, double *tmp, size_t n)
{
    int same = 1;
#ifdef EX_WITH_MPI
    if (dp_size > 1) {
        memcpy(tmp, x, n * sizeof *tmp);
        MPI_Bcast(tmp, (int)n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        same = memcmp(tmp, x, n * sizeof *tmp) == 0;
        MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    }
#else
    (void)x;
    (void)tmp;
    (void)n;
#endif
    return same;
}

/* Seconds per allreduce of n doubles, the mean of reps after a barrier (0: one rank). */
static double dp_time_sum(double *buf, size_t n, long reps)
{
    double t = 0;
#ifdef EX_WITH_MPI
    if (dp_size > 1 && reps > 0) {
        dp_sum(buf, n);   /* warm: connections, buffers */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (long r = 0; r < reps; r++)
            dp_sum(buf, n);
        t = (MPI_Wtime() - t0) / (double)reps;
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
#else
    (void)buf;
    (void)n;
    (void)reps;
#endif
    return t;
}

/* The end: a normal one, or (failure with other ranks waiting in a collective) abort. */
static int dp_finish(int status)
{
#ifdef EX_WITH_MPI
    if (status == 1 && dp_size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
#endif
    return status;
}

/* ---- output: the loss curve ----------------------------------------------------------- */

static int write_figure(const char *path, long iters, const double *loss, int ranks, size_t B)
{
    double *it = malloc((size_t)iters * sizeof *it), lmin = INFINITY, lmax = 0;
    if (!it)
        return -1;
    for (long k = 0; k < iters; k++) {
        it[k] = (double)(k + 1);
        lmin = fmin(lmin, loss[k]);
        lmax = fmax(lmax, loss[k]);
    }
    ex_svg s;
    if (ex_svg_begin(&s, path, 640, 440) != 0) {
        free(it);
        return -1;
    }
    char title[96];
    snprintf(title, sizeof title, "Training loss, %d rank%s, global batch %zu", ranks,
             ranks == 1 ? "" : "s", B);
    ex_svg_panel(&s, 0, 10, 640, 420, 1, iters > 1 ? (double)iters : 2, 0,
                 lmax > 0 ? 1.05 * lmax : 1, title, "iteration", "batch MAE");
    ex_svg_line(&s, (size_t)iters, it, 1, loss, 1, "#1f5fbf", 1.5, NULL);
    free(it);
    return ex_svg_end(&s);
}

static int write_losses(const char *path, long iters, const double *loss)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (long k = 0; k < iters; k++)
        fprintf(f, "%ld %.17g\n", k + 1, loss[k]);
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* ---- a shard's solve and gradient ----------------------------------------------------- */

/* The b windows from by0 (b × 2) at the times bt (T) into pred (T × b × 2, a solve's
   layout): fixed steps as one ODE of the shard (sys); adaptive, by the ensemble solver,
   each window on its own steps, through eys (b × T × 2).  stats: the solve's (the
   ensemble's totals). */
static node_status shard_solve(int adaptive, node_solver *solver, const node_system *sys,
                               node_ensemble *ens, const node_ensemble_system *es,
                               const node_ensemble_options *eo, size_t b, size_t T,
                               const double *by0, const double *bt, double *pred, double *eys,
                               const node_options *opt, node_stats *stats)
{
    if (!adaptive)
        return node_solver_odeint(solver, sys, by0, bt, T, pred, opt, stats);
    node_status st = node_ensemble_odeint(ens, es, b, by0, bt, T, eys, opt, eo, NULL, stats);
    for (size_t i = 0; i < b; i++)
        for (size_t k = 0; k < T; k++)
            for (size_t c = 0; c < 2; c++)
                pred[(k * b + i) * 2 + c] = eys[(i * T + k) * 2 + c];
    return st;
}

/* dL/dθ into grad (and dL/dy0) from dL/dpred (dLdp, pred's layout): the adjoint of the
   one ODE, or the ensemble's adjoint or exact backprop (through edl, b × T × 2). */
static node_status shard_grad(int adaptive, int backprop, node_solver *solver,
                              const node_system *sys, node_ensemble *ens,
                              const node_ensemble_system *es, const node_ensemble_options *eo,
                              size_t b, size_t T, const double *bt, const double *pred,
                              const double *eys, const double *dLdp, double *edl,
                              double *dLdy0, double *grad, const node_options *opt,
                              node_stats *stats)
{
    if (!adaptive)
        return node_solver_adjoint(solver, sys, bt, T, pred, dLdp, dLdy0, grad, NULL, opt,
                                   stats);
    for (size_t i = 0; i < b; i++)
        for (size_t k = 0; k < T; k++)
            for (size_t c = 0; c < 2; c++)
                edl[(i * T + k) * 2 + c] = dLdp[(k * b + i) * 2 + c];
    return backprop ? node_ensemble_backprop(ens, es, b, bt, T, eys, edl, dLdy0, grad, opt, eo,
                                             NULL, stats)
                    : node_ensemble_adjoint(ens, es, b, bt, T, eys, edl, dLdy0, grad, opt, eo,
                                            NULL, stats);
}

/* ---- main: data → model → shard → training loop → results → free ---------------------- */

/* A libnode call that must succeed (see spiral.c); failures are reported by the rank
   that saw them. */
#define CHECK(what, msg, call)                                                          \
    do {                                                                                \
        node_status st_ = (call);                                                       \
        if (st_ != NODE_OK) {                                                           \
            const char *m_ = (msg);                                                     \
            fprintf(stderr, "spiral_mpi (rank %d): %s: %s\n", dp_rank, (what),          \
                    m_ && m_[0] ? m_ : node_strerror(st_));                              \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

int main(int argc, char **argv)
{
    dp_init(&argc, &argv);
    long iters = 300, seed = 1, data_size = 1000, batch_size = 64, batch_time = 10;
    long width = 50, reps = 200;
    double lr = 1e-3, step = 0, rtol = 1e-7, atol = 1e-9;
    const char *method_name = "rk4", *opt_name = "rmsprop", *out_dir = "spiral_mpi_out";
    const char *grad_name = "adjoint";
    const char *loss_out = NULL;
    const ex_arg args[] = {
        { "--iters", EX_LONG, &iters, "N", "training iterations" },
        { "--seed", EX_LONG, &seed, "S", "seed of the initial weights and the batches (the same on every rank)" },
        { "--batch-size", EX_LONG, &batch_size, "B", "windows per global batch, split among the ranks" },
        { "--batch-time", EX_LONG, &batch_time, "T", "points per window" },
        { "--data-size", EX_LONG, &data_size, "N", "points of the true trajectory on [0, 25]" },
        { "--width", EX_LONG, &width, "W", "hidden units of the MLP 2 -> W -> 2" },
        { "--method", EX_STRING, &method_name, "M", "euler|midpoint|rk4 (fixed steps: the shard as one ODE), or an adaptive one (dopri5, bosh3, dop853, ...: the ensemble solver, each window its own steps)" },
        { "--step", EX_DOUBLE, &step, "H", "step (0: a quarter of the sample spacing; adaptive methods: the first step, 0 = automatic)" },
        { "--rtol", EX_DOUBLE, &rtol, "R", "relative tolerance (adaptive methods)" },
        { "--atol", EX_DOUBLE, &atol, "A", "absolute tolerance (adaptive methods)" },
        { "--grad", EX_STRING, &grad_name, "G", "adaptive methods: adjoint|backprop (the ensemble's gradient)" },
        { "--opt", EX_STRING, &opt_name, "O", "optimizer: sgd|rmsprop|adam|adamw" },
        { "--lr", EX_DOUBLE, &lr, "LR", "learning rate" },
        { "--allreduce-reps", EX_LONG, &reps, "R", "allreduces timed after training (0: none)" },
        { "--out", EX_STRING, &out_dir, "DIR", "output folder (rank 0)" },
        { "--loss-out", EX_STRING, &loss_out, "FILE", "write 'iteration loss' lines (%.17g) here (rank 0)" },
    };
    const char *summary = "Data-parallel training of the spiral neural ODE: run under mpirun -np P.";
    /* Rank 0 parses and prints (help, errors); the others parse the same argv silently
       once rank 0 has found it good. */
    int r = dp_rank == 0 ? ex_args_parse(argc, argv, args, sizeof args / sizeof args[0], summary)
                         : EX_ARGS_OK;
    node_options opt = node_options_default();
    node_optim_kind opt_kind = NODE_OPTIM_RMSPROP;
    if (r == EX_ARGS_OK && dp_rank == 0) {
        if (node_method_parse(method_name, &opt.method) != NODE_OK)
            r = ex_args_fail(argv[0], "unknown --method '%s' (euler, midpoint, rk4, bosh3, "
                             "dopri5, dop853, ...)", method_name);
        else if (strcmp(grad_name, "adjoint") != 0 && strcmp(grad_name, "backprop") != 0)
            r = ex_args_fail(argv[0], "--grad must be adjoint or backprop, not '%s'", grad_name);
        else if (!(rtol > 0) || !(atol > 0))
            r = ex_args_fail(argv[0], "--rtol and --atol must be > 0");
        else if (node_optim_parse(opt_name, &opt_kind) != NODE_OK)
            r = ex_args_fail(argv[0], "unknown --opt '%s' (sgd, rmsprop, adam, adamw)", opt_name);
        else if (iters < 1 || reps < 0)
            r = ex_args_fail(argv[0], "--iters must be >= 1, --allreduce-reps >= 0");
        else if (data_size < 3 || batch_time < 2 || batch_time >= data_size)
            r = ex_args_fail(argv[0], "need 2 <= --batch-time < --data-size");
        else if (batch_size < 1 || batch_size > data_size - batch_time)
            r = ex_args_fail(argv[0], "--batch-size must be in 1..%ld (windows of the data)",
                             data_size - batch_time);
        else if (width < 1 || width > 100000)
            r = ex_args_fail(argv[0], "--width must be in 1..100000");
        else if (!(lr >= 0) || !(step >= 0))
            r = ex_args_fail(argv[0], "--lr and --step must be >= 0");
    }
    r = dp_bcast_int(r);
    if (r != EX_ARGS_OK)
        return dp_finish(r == EX_ARGS_HELP ? 0 : 2);
    if (dp_rank != 0) {   /* the same argv: no message, the same values */
        ex_args_parse(argc, argv, args, sizeof args / sizeof args[0], summary);
        node_method_parse(method_name, &opt.method);
        node_optim_parse(opt_name, &opt_kind);
    }
    /* fixed steps: the shard as one ODE; adaptive: the ensemble solver */
    const int adaptive = !(opt.method == NODE_EULER || opt.method == NODE_MIDPOINT ||
                           opt.method == NODE_RK4);
    const int use_backprop = strcmp(grad_name, "backprop") == 0;
    if (adaptive) {
        opt.step = step;
        opt.rtol = rtol;
        opt.atol = atol;
    } else {
        opt.step = step > 0 ? step : 25.0 / (double)(data_size - 1) / 4;
    }

    int status = 1;
    const size_t N = (size_t)data_size, B = (size_t)batch_size, T = (size_t)batch_time;
    /* This rank's shard: windows lo .. hi-1 of each batch (sizes differ by at most one;
       with more ranks than windows some shards are empty). */
    const size_t lo = B * (size_t)dp_rank / (size_t)dp_size;
    const size_t hi = B * (size_t)(dp_rank + 1) / (size_t)dp_size, b = hi - lo;
    const size_t bb = b > 0 ? b : 1;   /* buffers are never empty */
    double *t = NULL, *ytrue = NULL, *ypred = NULL, *by0 = NULL, *by = NULL, *pred = NULL;
    double *dLdp = NULL, *dLdy0 = NULL, *gbuf = NULL, *losses = NULL, *bt = NULL;
    double *eys = NULL, *edl = NULL;   /* the ensemble's layouts (b × T × 2) */
    node_ensemble *ens = NULL;
    node_ensemble_system es;
    node_ensemble_options eo;
    memset(&eo, 0, sizeof eo);
    eo.threads = 1;
    size_t *perm = NULL, *pick = NULL;
    node_mlp *m = NULL;
    node_solver *solver = NULL;
    node_optim *optim = NULL;
    ex_cubic_model mb = { 0 }, m1 = { 0 };
    char svg_path[4096];
    node_error err;
    if (ex_path_join(svg_path, sizeof svg_path, out_dir, "spiral_mpi.svg"))
        goto done;   /* not reached with a sane --out: 4 kB */

    /* Data: the same on every rank (computed, not sent: it is cheap). */
    t = malloc(N * sizeof *t);
    ytrue = malloc(2 * N * sizeof *ytrue);
    ypred = malloc(2 * N * sizeof *ypred);
    if (!t || !ytrue || !ypred)
        goto nomem;
    {
        node_stats rs;
        CHECK("solving the true trajectory", rs.message, ex_spiral_data(N, t, ytrue, &rs));
    }

    /* Model: MLP 2 → W (tanh) → 2 on y³, W ~ N(0, 0.1²), b = 0 — the same seed, hence
       the same weights, on every rank. */
    ex_rng rng;
    ex_rng_seed(&rng, (uint64_t)seed);
    {
        const size_t sizes[3] = { 2, (size_t)width, 2 };
        const node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
        CHECK("creating the MLP", err.message, node_mlp_create_ex(&m, 2, sizes, acts, 0, &err));
        ex_mlp_init_normal(m, &rng, 0.1);
    }
    const size_t P = node_mlp_nparams(m);
    double *theta = node_mlp_params(m);

    /* Workspaces for the shard's b rows; gbuf holds the gradient and, after it, the
       loss: one allreduce of P + 1 doubles per step. */
    node_system sys, sys_one;
    if (ex_cubic_init(&mb, m, bb, &sys) || ex_cubic_init(&m1, m, 1, &sys_one))
        goto nomem;
    CHECK("reserving the MLP's workspace", NULL, node_mlp_reserve(m, bb));
    by0 = malloc(2 * bb * sizeof *by0);
    bt = malloc(T * sizeof *bt);
    by = malloc(T * 2 * bb * sizeof *by);
    pred = malloc(T * 2 * bb * sizeof *pred);
    dLdp = malloc(T * 2 * bb * sizeof *dLdp);
    dLdy0 = malloc(2 * bb * sizeof *dLdy0);
    gbuf = malloc((P + 1) * sizeof *gbuf);
    perm = malloc((N - T) * sizeof *perm);
    pick = malloc(B * sizeof *pick);
    losses = malloc((size_t)iters * sizeof *losses);
    eys = malloc(T * 2 * bb * sizeof *eys);
    edl = malloc(T * 2 * bb * sizeof *edl);
    if (!by0 || !bt || !by || !pred || !dLdp || !dLdy0 || !gbuf || !perm || !pick || !losses ||
        !eys || !edl)
        goto nomem;
    ex_cubic_ensemble(&mb, &es);
    CHECK("creating the ensemble solver", NULL, node_ensemble_create(&ens));
    ex_rng_iota(N - T, perm);
    for (size_t k = 0; k < T; k++)
        bt[k] = t[k] - t[0];
    CHECK("creating the solver", NULL, node_solver_create(&solver));
    node_optim_config oc;
    CHECK("optimizer defaults", NULL, node_optim_defaults(opt_kind, &oc));
    oc.lr = lr;
    CHECK("creating the optimizer", err.message, node_optim_create_ex(&optim, P, &oc, &err));
    if (dp_rank == 0 && ex_mkdir_p(out_dir) != 0) {
        fprintf(stderr, "spiral_mpi: cannot create the output folder %s: %s\n", out_dir,
                strerror(errno));
        goto done;
    }

    /* This shard's weight: the serial loss is the mean over all T·2·B entries, a shard's
       node_loss the mean over its T·2·b, so loss and gradient are scaled by b / B before
       they are summed (one rank: by 1, exactly). */
    const double w = (double)b / (double)B;
    if (dp_rank == 0) {
        printf("spiral_mpi: %d rank%s%s, global batch %zu x %zu points (shards of %zu..%zu), "
               "MLP 2-%ld-2 on y^3 (%zu parameters, %zu bytes per allreduce), %s %s %g, "
               "%s, %s lr %g, %ld iterations\n", dp_size, dp_size == 1 ? "" : "s",
               DP_MPI ? "" : " (built without MPI)",
               B, T, B / (size_t)dp_size, (B + (size_t)dp_size - 1) / (size_t)dp_size, width, P,
               (P + 1) * sizeof(double), node_method_name(opt.method),
               adaptive ? "per-window steps, rtol" : "step", adaptive ? opt.rtol : opt.step,
               adaptive ? (use_backprop ? "ensemble backprop" : "ensemble adjoint") : "adjoint",
               opt_name, lr, iters);
        fflush(stdout);
    }

    /* Pay for the solver's workspaces before the first timed iteration (spiral.c's
       warm-up: every row starts at the first point of the data). */
    if (b > 0) {
        node_stats ws;
        for (size_t i = 0; i < b; i++)
            memcpy(by0 + 2 * i, ytrue, 2 * sizeof *by0);
        memset(dLdp, 0, T * 2 * b * sizeof *dLdp);
        CHECK("warm-up solve", ws.message,
              shard_solve(adaptive, solver, &sys, ens, &es, &eo, b, T, by0, bt, pred, eys,
                          &opt, &ws));
        CHECK("warm-up gradient", ws.message,
              shard_grad(adaptive, use_backprop, solver, &sys, ens, &es, &eo, b, T, bt, pred,
                         eys, dLdp, edl, dLdy0, gbuf, &opt, &ws));
    }

    /* Training loop.  Every rank draws the whole batch (the same seed: the same draws)
       and solves its windows lo..hi-1; the allreduce gives every rank the full
       gradient, so the optimizer states stay identical without being sent. */
    ex_progress prog;
    double t_compute = 0, t_reduce = 0, t_step = 0;
    clock_t cpu_compute = 0;   /* processor time: what a loaded machine does not inflate */
    if (dp_rank == 0)
        ex_progress_start(&prog, stderr, iters);
    for (long it = 1; it <= iters; it++) {
        double t0 = ex_clock();
        clock_t c0 = clock();
        ex_rng_sample(&rng, N - T, B, perm, pick);
        double loss = 0;
        if (b > 0) {
            ex_spiral_windows(ytrue, T, b, pick + lo, by, by0);
            node_stats fs, bs;
            CHECK("forward solve", fs.message,
                  shard_solve(adaptive, solver, &sys, ens, &es, &eo, b, T, by0, bt, pred, eys,
                              &opt, &fs));
            CHECK("loss", err.message,
                  node_loss(NODE_LOSS_MAE, T * 2 * b, pred, by, NULL, 0, &loss, dLdp, &err));
            CHECK("gradient", bs.message,
                  shard_grad(adaptive, use_backprop, solver, &sys, ens, &es, &eo, b, T, bt,
                             pred, eys, dLdp, edl, dLdy0, gbuf, &opt, &bs));
            for (size_t k = 0; k < P; k++)
                gbuf[k] *= w;
        } else
            memset(gbuf, 0, P * sizeof *gbuf);
        gbuf[P] = loss * w;
        cpu_compute += clock() - c0;
        double t1 = ex_clock();
        dp_sum(gbuf, P + 1);
        double t2 = ex_clock();
        CHECK("optimizer step", NULL, node_optim_step(optim, theta, gbuf));
        double t3 = ex_clock();
        t_compute += t1 - t0;
        t_reduce += t2 - t1;
        t_step += t3 - t2;
        if (dp_rank == 0) {
            losses[it - 1] = gbuf[P];
            ex_progress_draw(&prog, it, it == iters || it % 50 == 0,
                             "iter %ld/%ld | batch loss %.5f | %.3f ms/it (compute %.3f, "
                             "allreduce %.3f)", it, iters, gbuf[P],
                             1e3 * (t_compute + t_reduce + t_step) / (double)it,
                             1e3 * t_compute / (double)it, 1e3 * t_reduce / (double)it);
        }
    }
    if (dp_rank == 0)
        ex_progress_end(&prog);

    /* The ranks' parameters agree bit for bit (an allreduce gives every rank the same
       sum); then the allreduce alone, timed after a barrier, for the message size of a
       step (the gradient) and for one double (the latency). */
    int agree = dp_agree(theta, gbuf, P);
    double ar_grad = dp_time_sum(gbuf, P + 1, reps), ar_one = dp_time_sum(gbuf, 1, reps);
    /* Sums over ranks (for the means) and the slowest rank's compute, wall and processor
       time (every step waits for the slowest). */
    double times[3] = { t_compute, t_reduce, t_step };
    double tmax[2] = { t_compute, (double)cpu_compute / CLOCKS_PER_SEC };
#ifdef EX_WITH_MPI
    if (dp_size > 1) {
        MPI_Allreduce(MPI_IN_PLACE, tmax, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, times, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
#endif
    if (dp_rank != 0) {
        status = 0;
        goto done;
    }

    /* Results (rank 0): the full trajectory from (2, 0) with the trained field. */
    double traj_loss;
    {
        node_stats ts_;
        const double y0[2] = { ytrue[0], ytrue[1] };
        CHECK("full-trajectory solve", ts_.message,
              node_solver_odeint(solver, &sys_one, y0, t, N, ypred, &opt, &ts_));
        CHECK("full-trajectory loss", err.message,
              node_loss(NODE_LOSS_MAE, 2 * N, ypred, ytrue, NULL, 0, &traj_loss, NULL, &err));
    }
    const double n_it = (double)iters, per = 1e3 / n_it, ranks = (double)dp_size;
    const double ms_iter = per * (t_compute + t_reduce + t_step);
    const size_t bytes = (P + 1) * sizeof(double);
    printf("done: %.3f ms per iteration on rank 0: compute %.3f (slowest rank %.3f), "
           "allreduce %.3f, optimizer %.3f; final batch MAE %.6f, full-trajectory MAE %.6f\n",
           ms_iter, per * t_compute, per * tmax[0], per * t_reduce, per * t_step,
           losses[iters - 1], traj_loss);
    if (dp_size > 1)
        printf("allreduce alone: %zu bytes in %.2f us (%.1f MB/s), 8 bytes in %.2f us; "
               "ranks' parameters %s\n", bytes, 1e6 * ar_grad, bytes / ar_grad / 1e6,
               1e6 * ar_one, agree ? "identical" : "DIFFER");
    if (write_figure(svg_path, iters, losses, dp_size, B) != 0) {
        fprintf(stderr, "spiral_mpi: cannot write %s: %s\n", svg_path, strerror(errno));
        goto done;
    }
    printf("wrote %s (training loss)\n", svg_path);
    if (loss_out) {
        if (write_losses(loss_out, iters, losses) != 0) {
            fprintf(stderr, "spiral_mpi: cannot write %s: %s\n", loss_out, strerror(errno));
            goto done;
        }
        printf("wrote %s (iteration, loss)\n", loss_out);
    }
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "spiral_mpi");
    ex_json_bool(&j, "mpi", DP_MPI);
    ex_json_int(&j, "ranks", dp_size);
    ex_json_int(&j, "batch", (int64_t)B);
    ex_json_int(&j, "batch_time", (int64_t)T);
    ex_json_int(&j, "width", width);
    ex_json_int(&j, "nparams", (int64_t)P);
    ex_json_int(&j, "iterations", iters);
    ex_json_str(&j, "method", node_method_name(opt.method));
    ex_json_str(&j, "shard_solver", adaptive ? "ensemble" : "one ODE");
    ex_json_str(&j, "grad", adaptive ? grad_name : "adjoint");
    ex_json_str(&j, "optimizer", opt_name);
    ex_json_num(&j, "ms_per_iteration", ms_iter);
    ex_json_num(&j, "compute_ms", per * t_compute);
    ex_json_num(&j, "compute_ms_slowest", per * tmax[0]);
    ex_json_num(&j, "compute_cpu_ms", per * (double)cpu_compute / CLOCKS_PER_SEC);
    ex_json_num(&j, "compute_cpu_ms_slowest", per * tmax[1]);
    ex_json_num(&j, "compute_ms_mean", per * times[0] / ranks);
    ex_json_num(&j, "allreduce_ms", per * t_reduce);
    ex_json_num(&j, "allreduce_ms_mean", per * times[1] / ranks);
    ex_json_num(&j, "optimizer_ms", per * t_step);
    ex_json_int(&j, "bytes_per_allreduce", (int64_t)bytes);
    ex_json_num(&j, "allreduce_alone_us", 1e6 * ar_grad);
    ex_json_num(&j, "allreduce_8B_us", 1e6 * ar_one);
    ex_json_bool(&j, "ranks_agree", agree);
    ex_json_num(&j, "final_batch_mae", losses[iters - 1]);
    ex_json_num(&j, "trajectory_mae", traj_loss);
    ex_json_str(&j, "svg", svg_path);
    ex_json_end(&j);
    status = 0;
    goto done;

nomem:
    fprintf(stderr, "spiral_mpi (rank %d): out of memory\n", dp_rank);
done:
    free(t);
    free(ytrue);
    free(ypred);
    free(by0);
    free(bt);
    free(by);
    free(pred);
    free(dLdp);
    free(dLdy0);
    free(gbuf);
    free(perm);
    free(pick);
    free(losses);
    free(eys);
    free(edl);
    node_ensemble_free(ens);
    ex_cubic_free(&mb);
    ex_cubic_free(&m1);
    node_optim_free(optim);
    node_solver_free(solver);
    node_mlp_free(m);
    return dp_finish(status);
}
