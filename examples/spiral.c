/* spiral.c — learn the dynamics of a 2-D spiral from data with the adjoint method:
 * torchdiffeq's examples/ode_demo.py (Chen et al. 2018), re-done in C.
 * Run: ./spiral [--iters N] [--opt adam] [--backprop] [--out DIR]   (--help for all)
 * Writes DIR/spiral.svg (figure), DIR/spiral.csv (learned trajectory), DIR/spiral.model;
 * the last line of standard output is a JSON object with the results.
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
#include "progress.h"
#include "rng.h"
#include "spiral_model.h"
#include "svg.h"

/* ---- output: figure and CSV ----------------------------------------------------------- */

#define GRID 21   /* vector-field arrows per side, as the demo's 21 × 21 mgrid */

/* The learned field MLP(y³) on the grid over [-2, 2]²: xy (GRID² × 2) in, f out. */
static node_status field_on_grid(node_mlp *m, int cube, double *xy, double *u, double *f)
{
    for (int i = 0; i < GRID; i++)
        for (int j = 0; j < GRID; j++) {
            double *p = &xy[2 * (i * GRID + j)];
            p[0] = -2.0 + 4.0 * j / (GRID - 1);
            p[1] = -2.0 + 4.0 * i / (GRID - 1);
        }
    for (int k = 0; k < 2 * GRID * GRID; k++)
        u[k] = cube ? xy[k] * xy[k] * xy[k] : xy[k];
    return node_mlp_forward(m, GRID * GRID, 0.0, u, f);
}

/* Three panels like the demo's: x(t), y(t) true vs learned; the phase portrait;
   the learned vector field (unit arrows, opacity by magnitude). */
static int write_figure(const char *path, size_t n, const double *t, const double *ytrue,
                        const double *ypred, const double *xy, const double *f, long iter)
{
    ex_svg s;
    if (ex_svg_begin(&s, path, 1260, 440) != 0)
        return -1;
    const char *green = "#2e9c48", *teal = "#7fc28f", *blue = "#1f5fbf", *orange = "#e07b1a";

    ex_svg_panel(&s, 0, 10, 420, 420, t[0], t[n - 1], -2, 2, "Trajectories", "t", "x, y");
    ex_svg_line(&s, n, t, 1, ytrue, 2, green, 2, NULL);
    ex_svg_line(&s, n, t, 1, ytrue + 1, 2, teal, 2, NULL);
    ex_svg_line(&s, n, t, 1, ypred, 2, blue, 1.5, "6 4");
    ex_svg_line(&s, n, t, 1, ypred + 1, 2, orange, 1.5, "6 4");
    const char *lab[4] = { "x true", "y true", "x learned", "y learned" };
    const char *col[4] = { green, teal, blue, orange };
    const char *dash[4] = { NULL, NULL, "6 4", "6 4" };
    ex_svg_legend(&s, 4, lab, col, dash);

    ex_svg_panel(&s, 420, 10, 420, 420, -2, 2, -2, 2, "Phase Portrait", "x", "y");
    ex_svg_line(&s, n, ytrue, 2, ytrue + 1, 2, green, 2, NULL);
    ex_svg_line(&s, n, ypred, 2, ypred + 1, 2, blue, 1.5, "6 4");
    const char *lab2[2] = { "true", "learned" };
    const char *col2[2] = { green, blue };
    const char *dash2[2] = { NULL, "6 4" };
    ex_svg_legend(&s, 2, lab2, col2, dash2);

    ex_svg_panel(&s, 840, 10, 420, 420, -2, 2, -2, 2, "Learned Vector Field", "x", "y");
    double fmax_ = 0;
    for (int k = 0; k < GRID * GRID; k++)
        fmax_ = fmax(fmax_, hypot(f[2 * k], f[2 * k + 1]));
    const double len = 0.75 * 4.0 / (GRID - 1);
    for (int k = 0; k < GRID * GRID; k++) {
        double fx = f[2 * k], fy = f[2 * k + 1], mag = hypot(fx, fy);
        if (!(mag > 0))
            continue;
        double op = 0.25 + 0.75 * sqrt(mag / fmax_);
        ex_svg_arrow(&s, xy[2 * k], xy[2 * k + 1], len * fx / mag, len * fy / mag, "#222",
                     1.1, op);
    }
    ex_svg_line(&s, n, ytrue, 2, ytrue + 1, 2, green, 1, NULL);

    char note[96];
    snprintf(note, sizeof note, "libnode spiral example, iteration %ld", iter);
    ex_svg_text(&s, 1250, 434, 10, "end", "#888", note);
    return ex_svg_end(&s);
}

static int write_csv(const char *path, size_t n, const double *t, const double *ytrue,
                     const double *ypred)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "t,x_true,y_true,x_pred,y_pred\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.9g,%.17g,%.17g,%.17g,%.17g\n", t[i], ytrue[2 * i], ytrue[2 * i + 1],
                ypred[2 * i], ypred[2 * i + 1]);
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* ---- main: data → model → solver options → training loop → results → free ------------- */

/* A libnode call that must succeed: on failure, say what was being done and the
   library's message (from the call's node_stats or node_error, else node_strerror),
   then leave through `done`. */
#define CHECK(what, msg, call)                                                          \
    do {                                                                                \
        node_status st_ = (call);                                                       \
        if (st_ != NODE_OK) {                                                           \
            const char *m_ = (msg);                                                     \
            fprintf(stderr, "spiral: %s: %s\n", (what),                                 \
                    m_ && m_[0] ? m_ : node_strerror(st_));                              \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

/* Fill the B rows of by0 (B × 2) with the point y. */
static void fill_rows(size_t B, const double *y, double *by0)
{
    for (size_t i = 0; i < B; i++) {
        by0[2 * i] = y[0];
        by0[2 * i + 1] = y[1];
    }
}

int main(int argc, char **argv)
{
    /* Flags, with the demo's settings as defaults. */
    long iters = 2000, seed = 1, test_freq = 20, plot_freq = 500;
    long data_size = 1000, batch_size = 20, batch_time = 10;
    double rtol = 1e-7, atol = 1e-9, lr = 1e-3, step = 0;
    const char *method_name = "dopri5", *opt_name = "rmsprop", *out_dir = "spiral_out";
    const char *load = NULL, *save = NULL;
    int backprop = 0, plain = 0;
    const ex_arg args[] = {
        { "--iters", EX_LONG, &iters, "N", "training iterations" },
        { "--seed", EX_LONG, &seed, "S", "seed of the initial weights and the batches" },
        { "--method", EX_STRING, &method_name, "M", "euler|midpoint|rk4|bosh3|dopri5|dop853" },
        { "--rtol", EX_DOUBLE, &rtol, "R", "relative tolerance (adaptive methods)" },
        { "--atol", EX_DOUBLE, &atol, "A", "absolute tolerance (adaptive methods)" },
        { "--step", EX_DOUBLE, &step, "H", "step of the fixed methods (0: a quarter of the sample spacing); first step of the adaptive ones (0: automatic)" },
        { "--opt", EX_STRING, &opt_name, "O", "optimizer: sgd|rmsprop|adam|adamw" },
        { "--lr", EX_DOUBLE, &lr, "LR", "learning rate" },
        { "--batch-size", EX_LONG, &batch_size, "B", "sub-trajectories per batch" },
        { "--batch-time", EX_LONG, &batch_time, "T", "points per sub-trajectory" },
        { "--data-size", EX_LONG, &data_size, "N", "points of the true trajectory on [0, 25]" },
        { "--test-freq", EX_LONG, &test_freq, "K", "full-trajectory loss every K iterations" },
        { "--plot-freq", EX_LONG, &plot_freq, "K", "rewrite the figure every K iterations (0: at the end)" },
        { "--backprop", EX_FLAG, &backprop, NULL, "exact backprop through the solver instead of the adjoint" },
        { "--plain-mlp", EX_FLAG, &plain, NULL, "learn dy/dt = MLP(y) (node_mlp_system) instead of MLP(y^3)" },
        { "--out", EX_STRING, &out_dir, "DIR", "output folder" },
        { "--load", EX_STRING, &load, "MODEL", "start from this model file (an MLP 2 -> ... -> 2)" },
        { "--save", EX_STRING, &save, "MODEL", "where to save the trained model (default DIR/spiral.model)" },
    };
    int r = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                          "Learn dy/dt = MLP(y^3) from a spiral trajectory (torchdiffeq's ode_demo).");
    if (r != EX_ARGS_OK)
        return r == EX_ARGS_HELP ? 0 : 2;
    node_options opt = node_options_default();
    node_optim_kind opt_kind;
    if (node_method_parse(method_name, &opt.method) != NODE_OK)
        return ex_args_fail(argv[0], "unknown --method '%s'", method_name);
    if (node_optim_parse(opt_name, &opt_kind) != NODE_OK)
        return ex_args_fail(argv[0], "unknown --opt '%s' (sgd, rmsprop, adam, adamw)", opt_name);
    if (iters < 0 || test_freq < 1 || plot_freq < 0)
        return ex_args_fail(argv[0], "--iters and --plot-freq must be >= 0, --test-freq >= 1");
    if (data_size < 3 || batch_time < 2 || batch_time >= data_size)
        return ex_args_fail(argv[0], "need 2 <= --batch-time < --data-size");
    if (batch_size < 1 || batch_size > data_size - batch_time)
        return ex_args_fail(argv[0], "--batch-size must be in 1..%ld", data_size - batch_time);
    if (!(rtol > 0) || !(atol > 0) || !(lr >= 0) || !(step >= 0))
        return ex_args_fail(argv[0], "--rtol and --atol must be > 0, --lr and --step >= 0");
    opt.rtol = rtol;
    opt.atol = atol;
    const int fixed = opt.method == NODE_EULER || opt.method == NODE_MIDPOINT ||
                      opt.method == NODE_RK4;
    opt.step = step;
    if (fixed && step == 0)
        opt.step = 25.0 / (double)(data_size - 1) / 4;   /* 4 steps per sample spacing */

    int status = 1;
    const size_t N = (size_t)data_size, B = (size_t)batch_size, T = (size_t)batch_time;
    double *t = NULL, *ytrue = NULL, *ypred = NULL, *by0 = NULL, *bt = NULL, *by = NULL;
    double *pred = NULL, *dLdp = NULL, *dLdy0 = NULL, *grad = NULL;
    double *gxy = NULL, *gu = NULL, *gf = NULL;
    size_t *perm = NULL, *pick = NULL;
    node_mlp *m = NULL;
    node_solver *solver = NULL;
    node_optim *optim = NULL;
    ex_cubic_model mb = { 0 }, m1 = { 0 };
    char svg_path[4096], csv_path[4096], model_path[4096];
    if (ex_path_join(svg_path, sizeof svg_path, out_dir, "spiral.svg") ||
        ex_path_join(csv_path, sizeof csv_path, out_dir, "spiral.csv") ||
        ex_path_join(model_path, sizeof model_path, out_dir, "spiral.model") ||
        (save && (size_t)snprintf(model_path, sizeof model_path, "%s", save) >= sizeof model_path))
        return ex_args_fail(argv[0], "--out or --save path too long");
    node_error err;

    /* Data: the true trajectory from y0 = (2, 0) at N times on [0, 25], solved tightly. */
    t = malloc(N * sizeof *t);
    ytrue = malloc(2 * N * sizeof *ytrue);
    ypred = malloc(2 * N * sizeof *ypred);
    if (!t || !ytrue || !ypred)
        goto nomem;
    {
        node_stats rs;
        CHECK("solving the true trajectory", rs.message, ex_spiral_data(N, t, ytrue, &rs));
    }

    /* Model: MLP 2 → 50 (tanh) → 2, W ~ N(0, 0.1²) and b = 0 as the demo, or a file. */
    ex_rng rng;
    ex_rng_seed(&rng, (uint64_t)seed);
    if (load) {
        /* A bad model file is bad input: say which file and why, exit 2, write nothing. */
        if (node_mlp_load_ex(&m, load, &err) != NODE_OK) {
            fprintf(stderr, "spiral: --load: %s\n", err.message);
            status = 2;
            goto done;
        }
        size_t L = node_mlp_nlayers(m);
        if (node_mlp_size(m, 0) != 2 || node_mlp_size(m, L) != 2 || node_mlp_time_input(m)) {
            fprintf(stderr, "spiral: --load: %s is not an MLP 2 -> ... -> 2 without time "
                    "input\n", load);
            status = 2;
            goto done;
        }
    } else {
        const size_t sizes[3] = { 2, 50, 2 };
        const node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
        CHECK("creating the MLP", err.message, node_mlp_create_ex(&m, 2, sizes, acts, 0, &err));
        ex_mlp_init_normal(m, &rng, 0.1);
    }
    if (ex_mkdir_p(out_dir) != 0) {
        fprintf(stderr, "spiral: cannot create the output folder %s: %s\n", out_dir,
                strerror(errno));
        goto done;
    }
    const size_t P = node_mlp_nparams(m);
    double *theta = node_mlp_params(m);

    /* Workspaces, all before the loop: the two systems (a batch of B rows for training,
       one row for the full trajectory), batch buffers, the grid of the figure. */
    node_system sys_batch, sys_one;
    if (plain) {
        CHECK("the MLP's system", NULL, node_mlp_system(m, B, &sys_batch));
        CHECK("the MLP's system", NULL, node_mlp_system(m, 1, &sys_one));
    } else if (ex_cubic_init(&mb, m, B, &sys_batch) || ex_cubic_init(&m1, m, 1, &sys_one))
        goto nomem;
    CHECK("reserving the MLP's workspace", NULL,
          node_mlp_reserve(m, B > GRID * GRID ? B : GRID * GRID));
    by0 = malloc(2 * B * sizeof *by0);
    bt = malloc(T * sizeof *bt);
    by = malloc(T * 2 * B * sizeof *by);        /* T × B × 2, the layout of ys */
    pred = malloc(T * 2 * B * sizeof *pred);
    dLdp = malloc(T * 2 * B * sizeof *dLdp);    /* dL/d pred */
    dLdy0 = malloc(2 * B * sizeof *dLdy0);
    grad = malloc(P * sizeof *grad);
    perm = malloc((N - T) * sizeof *perm);
    pick = malloc(B * sizeof *pick);
    gxy = malloc(2 * GRID * GRID * sizeof *gxy);
    gu = malloc(2 * GRID * GRID * sizeof *gu);
    gf = malloc(2 * GRID * GRID * sizeof *gf);
    if (!by0 || !bt || !by || !pred || !dLdp || !dLdy0 || !grad || !perm || !pick || !gxy ||
        !gu || !gf)
        goto nomem;
    ex_rng_iota(N - T, perm);
    for (size_t k = 0; k < T; k++)
        bt[k] = t[k] - t[0];   /* every sub-trajectory is re-timed to start at 0 */

    CHECK("creating the solver", NULL, node_solver_create(&solver));
    node_optim_config oc;
    CHECK("optimizer defaults", NULL, node_optim_defaults(opt_kind, &oc));
    oc.lr = lr;
    CHECK("creating the optimizer", err.message, node_optim_create_ex(&optim, P, &oc, &err));

    char shape[128] = "";
    for (size_t l = 0, w = 0; l <= node_mlp_nlayers(m) && w < sizeof shape; l++)
        w += (size_t)snprintf(shape + w, sizeof shape - w, l ? "-%zu" : "%zu", node_mlp_size(m, l));
    char solver_desc[96];
    if (fixed)
        snprintf(solver_desc, sizeof solver_desc, "%s step %g", node_method_name(opt.method),
                 opt.step);
    else
        snprintf(solver_desc, sizeof solver_desc, "%s rtol %g atol %g",
                 node_method_name(opt.method), rtol, atol);
    printf("spiral: MLP %s on %s (%zu parameters), %s, %s gradients, "
           "%s lr %g, batch %zu x %zu points, %ld iterations (kernels: %s)\n", shape,
           plain ? "y" : "y^3", P,
           solver_desc, backprop ? "backprop" : "adjoint", opt_name, lr, B, T, iters,
           node_isa_name());
    fflush(stdout);

    /* Training loop: sample a batch, solve it as ONE ODE of B rows, MAE loss, gradient
       by the adjoint (or backprop), optimizer step.  Allocates nothing (the solver's
       workspaces are paid for by a first solve below; --backprop's tape may still grow
       if a later batch needs more steps).  Snapshots write files. */
    /* --backprop: the batch's solve is recorded and backprop reverses it (no re-run:
       its NFE are the vjp calls alone, fewer than the forward's) */
    node_options topt = opt;
    topt.record = backprop;
    ex_progress prog;
    double traj_loss = NAN, loss = NAN, t_train = 0, late_sum = 0;
    long late_n = 0;   /* checks in the last quarter: the snapshot MAE is noisy */
    long nfe_f = 0, nfe_b = 0;
    ex_progress_start(&prog, stderr, iters);
    for (long it = 0; it <= iters; it++) {
        if (it > 0) {
            double t0 = ex_clock();
            ex_rng_sample(&rng, N - T, B, perm, pick);
            ex_spiral_windows(ytrue, T, B, pick, by, by0);
            node_stats fs, bs;
            CHECK("forward solve", fs.message,
                  node_solver_odeint(solver, &sys_batch, by0, bt, T, pred, &topt, &fs));
            CHECK("loss", err.message,
                  node_loss(NODE_LOSS_MAE, T * 2 * B, pred, by, NULL, 0, &loss, dLdp, &err));
            if (backprop)
                CHECK("backprop", bs.message,
                      node_solver_backprop(solver, &sys_batch, bt, T, pred, dLdp, dLdy0, grad,
                                           NULL, &topt, &bs));
            else
                CHECK("adjoint", bs.message,
                      node_solver_adjoint(solver, &sys_batch, bt, T, pred, dLdp, dLdy0, grad,
                                          NULL, &opt, &bs));
            CHECK("optimizer step", NULL, node_optim_step(optim, theta, grad));
            t_train += ex_clock() - t0;
            nfe_f = fs.nfe;
            nfe_b = bs.nfe;
        }
        int test = it % test_freq == 0 || it == iters;
        if (test) {
            const double y0[2] = { ytrue[0], ytrue[1] };
            node_stats ts_;
            CHECK("full-trajectory solve", ts_.message,
                  node_solver_odeint(solver, &sys_one, y0, t, N, ypred, &opt, &ts_));
            CHECK("full-trajectory loss", err.message,
                  node_loss(NODE_LOSS_MAE, 2 * N, ypred, ytrue, NULL, 0, &traj_loss, NULL, &err));
            if (it > 0 && 4 * it > 3 * iters) {
                late_sum += traj_loss;
                late_n++;
            }
        }
        if (it > 0)
            ex_progress_draw(&prog, it, test,
                             "iter %0*ld/%ld | batch loss %.5f | traj loss %.5f | "
                             "NFE fwd %ld bwd %ld | %.2f ms/it", (int)snprintf(NULL, 0, "%ld", iters),
                             it, iters, loss, traj_loss, nfe_f, nfe_b, 1e3 * t_train / (double)it);
        if ((plot_freq > 0 && it > 0 && it % plot_freq == 0) || it == iters) {
            CHECK("evaluating the learned field", NULL, field_on_grid(m, !plain, gxy, gu, gf));
            if (write_figure(svg_path, N, t, ytrue, ypred, gxy, gf, it) != 0)
                ex_progress_print(&prog, "spiral: cannot write %s: %s\n", svg_path,
                                  strerror(errno));
        }
        if (it == 0 && iters > 0) {
            /* Pay for the solver's workspaces before the first timed iteration: every row
               of the batch starts at the first point of the data. */
            node_stats ws_;
            fill_rows(B, ytrue, by0);
            CHECK("warm-up solve", ws_.message,
                  node_solver_odeint(solver, &sys_batch, by0, bt, T, pred, &topt, &ws_));
            for (size_t k = 0; k < T * 2 * B; k++)
                dLdp[k] = 0.0;
            if (backprop)
                CHECK("warm-up backprop", ws_.message,
                      node_solver_backprop(solver, &sys_batch, bt, T, pred, dLdp, dLdy0, grad,
                                           NULL, &topt, &ws_));
            else
                CHECK("warm-up adjoint", ws_.message,
                      node_solver_adjoint(solver, &sys_batch, bt, T, pred, dLdp, dLdy0, grad,
                                          NULL, &opt, &ws_));
        }
    }
    double elapsed = ex_progress_end(&prog);

    /* Results. */
    char dur[32];
    ex_format_duration(elapsed, dur, sizeof dur);
    printf("done: %ld iterations in %s (%.3f ms per training iteration); "
           "full-trajectory MAE %.6f", iters, dur, iters ? 1e3 * t_train / (double)iters : 0.0,
           traj_loss);
    if (late_n > 1)
        printf(" (mean %.6f over the %ld checks of the last quarter)", late_sum / (double)late_n,
               late_n);
    printf("\n");
    if (write_csv(csv_path, N, t, ytrue, ypred) != 0) {
        fprintf(stderr, "spiral: cannot write %s: %s\n", csv_path, strerror(errno));
        goto done;
    }
    printf("wrote %s (t, x_true, y_true, x_pred, y_pred)\n", csv_path);
    printf("wrote %s (trajectories, phase portrait, learned vector field)\n", svg_path);
    CHECK("saving the model", err.message, node_mlp_save_ex(m, model_path, &err));
    printf("wrote %s (reload with --load %s)\n", model_path, model_path);
    /* The results as one JSON object, the last line of standard output. */
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "spiral");
    ex_json_int(&j, "iterations", iters);
    ex_json_str(&j, "method", node_method_name(opt.method));
    ex_json_str(&j, "gradient", backprop ? "backprop" : "adjoint");
    ex_json_str(&j, "dynamics", plain ? "mlp" : "cubic");
    ex_json_num(&j, "ms_per_iteration", iters ? 1e3 * t_train / (double)iters : 0.0);
    ex_json_num(&j, "trajectory_mae", traj_loss);
    ex_json_num(&j, "late_mean_mae", late_n > 1 ? late_sum / (double)late_n : traj_loss);
    ex_json_int(&j, "nfe_forward", nfe_f);
    ex_json_int(&j, "nfe_backward", nfe_b);
    ex_json_str(&j, "kernels", node_isa_name());
    ex_json_str(&j, "svg", svg_path);
    ex_json_str(&j, "csv", csv_path);
    ex_json_str(&j, "model", model_path);
    ex_json_end(&j);
    status = 0;
    goto done;

nomem:
    fprintf(stderr, "spiral: out of memory\n");
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
    free(grad);
    free(perm);
    free(pick);
    free(gxy);
    free(gu);
    free(gf);
    ex_cubic_free(&mb);
    ex_cubic_free(&m1);
    node_optim_free(optim);
    node_solver_free(solver);
    node_mlp_free(m);
    return status;
}
