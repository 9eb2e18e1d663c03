/* cnf.c — a continuous normalizing flow (Chen et al. 2018, §4; FFJORD, Grathwohl et al.
 * 2019) learns a 2-D density by maximum likelihood.  With no arguments: torchdiffeq's
 * examples/cnf.py — two circles, 512 fresh points per iteration, base N(0, 0.1 I),
 * t in [0, 10], dopri5 at rtol = atol = 1e-5, Adam 1e-3, the planar CNF of width 64
 * with a hypernetwork of t (hidden 32), exact trace — then the test NLL beside the
 * data's true entropy (the best NLL any model can reach).  With --train/--test: your
 * own points (CSV, any dimension D).
 * Run: ./cnf [--dataset circles|moons|8gaussians|checkerboard|pinwheel] [--model planar|mlp]
 *            [--trace exact|hutchinson|gaussian] [--iters N] [--out DIR]      (--help for all)
 *      ./cnf --train a.csv --test b.csv
 * Writes DIR/cnf.svg (samples and density along the flow, as the paper's Fig. 5),
 * DIR/samples.csv and DIR/cnf.model; the last line of standard output is a JSON object.
 */
#include <libnode.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cnfdata.h"
#include "files.h"
#include "json.h"
#include "progress.h"
#include "rng.h"
#include "sched.h"
#include "svg.h"

#define CHECK(what, msg, call)                                                          \
    do {                                                                                \
        node_status st_ = (call);                                                       \
        if (st_ != NODE_OK) {                                                           \
            const char *m_ = (msg);                                                     \
            fprintf(stderr, "cnf: %s: %s\n", (what), m_ && m_[0] ? m_ : node_strerror(st_)); \
            goto fail;                                                                  \
        }                                                                               \
    } while (0)

static const double PI = 3.14159265358979323846;

/* log N(z; 0, v I) in D dimensions */
static double base_log_prob(const double *z, size_t D, double v)
{
    double q = 0;
    for (size_t k = 0; k < D; k++)
        q += z[k] * z[k];
    return -0.5 * (double)D * log(2 * PI * v) - q / (2 * v);
}

/* ---- chunked evaluations (batches of at most B rows) ------------------------------------- */

static node_status transport_all(node_cnf *c, size_t n, size_t D, size_t B, const double *in,
                                 double t_from, double t_to, double *out, double *dlogp)
{
    for (size_t i = 0; i < n; i += B) {
        size_t b = n - i < B ? n - i : B;
        node_status st = node_cnf_transport(c, b, in + i * D, t_from, t_to, out + i * D,
                                            dlogp + i, NULL);
        if (st)
            return st;
    }
    return NODE_OK;
}

static node_status log_prob_all(node_cnf *c, size_t n, size_t D, size_t B, const double *x,
                                double *logp)
{
    for (size_t i = 0; i < n; i += B) {
        size_t b = n - i < B ? n - i : B;
        node_status st = node_cnf_log_prob(c, b, x + i * D, logp + i, NULL);
        if (st)
            return st;
    }
    return NODE_OK;
}

/* ---- the figure: the paper's Fig. 5 -------------------------------------------------------- */

/* viridis at 5 stops */
static void color_of(double u, char *buf)
{
    static const double stops[5][3] = { { 68, 1, 84 }, { 59, 82, 139 }, { 33, 145, 140 },
                                        { 94, 201, 98 }, { 253, 231, 37 } };
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double f = u * 4;
    int k = f >= 4 ? 3 : (int)f;
    f -= k;
    int rgb[3];
    for (int j = 0; j < 3; j++)
        rgb[j] = (int)(stops[k][j] + f * (stops[k + 1][j] - stops[k][j]) + 0.5);
    sprintf(buf, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

typedef struct figure {
    double t0, t1, base_var;
    double lo[2], hi[2];       /* the plotted box */
    const double *data;        /* data points to show in the target column (ndata × 2) */
    size_t ndata;
    int toy;                   /* an ex_toy with a density, or -1 */
    size_t nsamples, grid, B;
    uint64_t seed;
    const char *title;
} figure;

#define NFRAC 6
static const double fracs[NFRAC] = { 0.05, 0.2, 0.4, 0.6, 0.8, 1.0 };

/* Draw one density panel's cells from logp (grid × grid, row j = y). */
static void density_cells(ex_svg *s, const figure *F, const double *logp)
{
    const size_t G = F->grid;
    double mx = -INFINITY;
    for (size_t i = 0; i < G * G; i++)
        if (logp[i] > mx)
            mx = logp[i];
    const double hx = (F->hi[0] - F->lo[0]) / G, hy = (F->hi[1] - F->lo[1]) / G;
    char col[16];
    for (size_t j = 0; j < G; j++)
        for (size_t i = 0; i < G; i++) {
            color_of(exp(logp[j * G + i] - mx), col);
            ex_svg_rect(s, F->lo[0] + i * hx, F->lo[1] + j * hy, F->lo[0] + (i + 1) * hx,
                        F->lo[1] + (j + 1) * hy, col);
        }
}

/* Samples (row 1) and density (row 2) at 5 % … 100 % of the flow's time, a target column
   first.  0, or -1 with msg set. */
static int write_figure(const char *path, node_cnf *c, const figure *F, char *msg, size_t msz)
{
    const size_t N = F->nsamples, G = F->grid, D = 2;
    double *z0 = malloc(N * D * sizeof *z0), *x = malloc(N * D * sizeof *x);
    double *dl = malloc((N > G * G ? N : G * G) * sizeof *dl);
    double *grid = malloc(G * G * D * sizeof *grid), *zg = malloc(G * G * D * sizeof *zg);
    double *lp = malloc(G * G * sizeof *lp);
    int rc = -1;
    ex_svg s;
    s.f = NULL;
    if (!z0 || !x || !dl || !grid || !zg || !lp) {
        snprintf(msg, msz, "out of memory");
        goto done;
    }
    ex_rng r;
    ex_rng_seed(&r, F->seed);
    for (size_t i = 0; i < N * D; i++)
        z0[i] = ex_rng_normal(&r, 0, sqrt(F->base_var));
    const double hx = (F->hi[0] - F->lo[0]) / G, hy = (F->hi[1] - F->lo[1]) / G;
    for (size_t j = 0; j < G; j++)
        for (size_t i = 0; i < G; i++) {
            grid[(j * G + i) * 2] = F->lo[0] + (i + 0.5) * hx;
            grid[(j * G + i) * 2 + 1] = F->lo[1] + (j + 0.5) * hy;
        }
    const double W = 190, H = 190, pad = 10;
    if (ex_svg_begin(&s, path, pad + (NFRAC + 1) * (W + pad), 40 + 2 * (H + pad)) != 0) {
        snprintf(msg, msz, "%s", strerror(errno));
        goto done;
    }
    ex_svg_text(&s, pad, 22, 15, "start", "black", F->title);
    char title[64];
    /* the target */
    ex_svg_panel(&s, pad, 30, W, H, F->lo[0], F->hi[0], F->lo[1], F->hi[1], "data", NULL, NULL);
    for (size_t i = 0; i < F->ndata && i < N; i++)
        ex_svg_dot(&s, F->data[2 * i], F->data[2 * i + 1], 1.0, "#1f4e99");
    if (F->toy >= 0) {
        ex_svg_panel(&s, pad, 30 + H + pad, W, H, F->lo[0], F->hi[0], F->lo[1], F->hi[1],
                     "true density", NULL, NULL);
        for (size_t i = 0; i < G * G; i++)
            lp[i] = ex_toy_log_prob((ex_toy)F->toy, grid + 2 * i);
        density_cells(&s, F, lp);
    }
    for (int k = 0; k < NFRAC; k++) {
        const double tf = F->t0 + fracs[k] * (F->t1 - F->t0), X = pad + (k + 1) * (W + pad);
        node_status st = transport_all(c, N, D, F->B, z0, F->t0, tf, x, dl);
        if (st == NODE_OK)
            st = transport_all(c, G * G, D, F->B, grid, tf, F->t0, zg, dl);
        if (st) {
            snprintf(msg, msz, "moving the points to t = %g: %s", tf, node_strerror(st));
            goto done;
        }
        snprintf(title, sizeof title, "samples, %.0f%% of t", 100 * fracs[k]);
        ex_svg_panel(&s, X, 30, W, H, F->lo[0], F->hi[0], F->lo[1], F->hi[1], title, NULL, NULL);
        for (size_t i = 0; i < N; i++)
            ex_svg_dot(&s, x[2 * i], x[2 * i + 1], 1.0, "#b8312f");
        /* log p_tf(x) = log p_t0(z(t0)) − Δ, Δ the change along tf → t0 */
        for (size_t i = 0; i < G * G; i++)
            lp[i] = base_log_prob(zg + 2 * i, D, F->base_var) - dl[i];
        snprintf(title, sizeof title, "density, %.0f%% of t", 100 * fracs[k]);
        ex_svg_panel(&s, X, 30 + H + pad, W, H, F->lo[0], F->hi[0], F->lo[1], F->hi[1], title,
                     NULL, NULL);
        density_cells(&s, F, lp);
    }
    rc = ex_svg_end(&s);
    if (rc)
        snprintf(msg, msz, "%s", strerror(errno));
done:
    if (rc && s.f)
        ex_svg_end(&s);
    free(z0);
    free(x);
    free(dl);
    free(grid);
    free(zg);
    free(lp);
    return rc;
}

/* ---- main: data → model → CNF → training → test → outputs --------------------------------- */

int main(int argc, char **argv)
{
    const double t_begin = ex_clock();
    const char *dataset_s = "circles", *model_s = "planar", *trace_s = "exact", *out = "cnf_out";
    const char *train_path = NULL, *test_path = NULL, *sched_s = "constant";
    long step_size = 0;
    double lr_min = 0, gamma = 0.1;
    long iters = 1000, batch = 512, width = 64, hidden = 32, seed = 1, ntest = 10000;
    long nentropy = 100000;
    double lr = 1e-3, rtol = 1e-5, atol = 1e-5, t1 = 10, base_var = 0;
    int backprop = 0, no_figures = 0;
    const ex_arg args[] = {
        { "--dataset", EX_STRING, &dataset_s, "NAME", "circles|moons|8gaussians|checkerboard|pinwheel" },
        { "--model", EX_STRING, &model_s, "M", "planar (the paper's planar CNF, hypernetwork of t) | mlp (D-W-W-W-D tanh, t as an input)" },
        { "--width", EX_LONG, &width, "N", "planar: units M; mlp: hidden width" },
        { "--hidden", EX_LONG, &hidden, "N", "planar: hidden width of the hypernetwork" },
        { "--trace", EX_STRING, &trace_s, "T", "exact|hutchinson (= rademacher)|gaussian" },
        { "--iters", EX_LONG, &iters, "N", "training iterations (torchdiffeq's cnf.py: 1000)" },
        { "--batch", EX_LONG, &batch, "B", "points per iteration" },
        { "--lr", EX_DOUBLE, &lr, "LR", "Adam learning rate" },
        { "--sched", EX_STRING, &sched_s, "S", "learning-rate schedule: constant | cosine (LR to --lr-min over the iterations) | step (x --gamma every --step-size)" },
        { "--lr-min", EX_DOUBLE, &lr_min, "LR", "cosine: the final rate" },
        { "--step-size", EX_LONG, &step_size, "N", "step: iterations per decay (0: a third of --iters)" },
        { "--gamma", EX_DOUBLE, &gamma, "G", "step: the decay factor" },
        { "--rtol", EX_DOUBLE, &rtol, "R", "dopri5 relative tolerance" },
        { "--atol", EX_DOUBLE, &atol, "A", "dopri5 absolute tolerance" },
        { "--t1", EX_DOUBLE, &t1, "T", "the flow runs over [0, T]" },
        { "--base-var", EX_DOUBLE, &base_var, "V", "base density N(0, V I); 0: 0.1 for circles (cnf.py), else 1" },
        { "--seed", EX_LONG, &seed, "S", "seed of the data, the weights and the probes" },
        { "--backprop", EX_FLAG, &backprop, NULL, "exact backprop through the solver instead of the adjoint" },
        { "--train", EX_STRING, &train_path, "F.csv", "your training points: a header line, then one point per row (D columns)" },
        { "--test", EX_STRING, &test_path, "F.csv", "your test points (same D)" },
        { "--test-size", EX_LONG, &ntest, "N", "fresh test points of a built-in dataset" },
        { "--entropy-samples", EX_LONG, &nentropy, "N", "Monte Carlo samples of the true entropy" },
        { "--no-figures", EX_FLAG, &no_figures, NULL, "skip the SVG (timing runs)" },
        { "--out", EX_STRING, &out, "DIR", "output folder" },
    };
    int r = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                          "Continuous normalizing flow (Chen et al. 2018, Sec. 4): density "
                          "estimation on 2-D toys or your CSV points; with no arguments "
                          "torchdiffeq's examples/cnf.py (two circles, planar CNF width 64, "
                          "1000 iterations: about 20 s on one core).  Closer to the data: "
                          "--iters 3000 --sched cosine (about 2 minutes; two circles: test "
                          "NLL within 0.05 nats of the true entropy).");
    if (r != EX_ARGS_OK)
        return r == EX_ARGS_HELP ? 0 : 2;

    /* Flags. */
    ex_toy toy = EX_TOY_CIRCLES;
    node_trace_kind trace;
    const int user = train_path || test_path, planar = !strcmp(model_s, "planar");
    if (!planar && strcmp(model_s, "mlp"))
        return ex_args_fail(argv[0], "unknown --model '%s' (planar, mlp)", model_s);
    if (node_trace_parse(trace_s, &trace) != NODE_OK)
        return ex_args_fail(argv[0], "unknown --trace '%s' (exact, hutchinson, rademacher, "
                            "gaussian)", trace_s);
    if (ex_toy_parse(dataset_s, &toy) != 0)
        return ex_args_fail(argv[0], "unknown --dataset '%s' (circles, moons, 8gaussians, "
                            "checkerboard, pinwheel)", dataset_s);
    if (iters < 0 || batch < 1 || width < 1 || hidden < 1 || ntest < 1 || nentropy < 2)
        return ex_args_fail(argv[0], "--iters must be >= 0, --batch, --width, --hidden and "
                            "--test-size >= 1, --entropy-samples >= 2");
    if (!(lr >= 0) || !(rtol > 0) || !(atol > 0) || !(t1 > 0) || !(base_var >= 0))
        return ex_args_fail(argv[0], "--lr and --base-var must be >= 0, --rtol, --atol and "
                            "--t1 > 0");
    node_sched sched;
    char why[160];
    if (ex_sched_make(sched_s, lr, lr_min, step_size, gamma, iters, &sched, why, sizeof why))
        return ex_args_fail(argv[0], "%s", why);
    if (user && (!train_path || !test_path))
        return ex_args_fail(argv[0], "--train and --test go together");
    if (base_var == 0)
        base_var = (!user && toy == EX_TOY_CIRCLES) ? 0.1 : 1.0;

    /* Data first: bad input stops here, before anything is written. */
    int status = 1;
    double *train = NULL, *test = NULL, *x = NULL, *grad = NULL, *logp = NULL, *xs = NULL;
    double *ptrue = NULL;
    size_t ntrain = 0, nt = 0, D = 2, *perm = NULL, *idx = NULL;
    node_planar *pl = NULL;
    node_mlp *mlp = NULL;
    node_cnf *cnf = NULL;
    node_optim *opt = NULL;
    node_error err;
    err.message[0] = '\0';
    char msg[512], path[4096];
    if (user) {
        size_t d2;
        if (ex_points_read_csv(train_path, &train, &ntrain, &D, msg, sizeof msg) != 0 ||
            ex_points_read_csv(test_path, &test, &nt, &d2, msg, sizeof msg) != 0) {
            fprintf(stderr, "cnf: %s\n", msg);
            status = 2;
            goto done;
        }
        if (d2 != D) {
            fprintf(stderr, "cnf: %s:1: %zu columns, but %s has %zu: the points must have the "
                    "same dimension\n", test_path, d2, train_path, D);
            status = 2;
            goto done;
        }
    } else {
        nt = (size_t)ntest;
    }
    if (ex_mkdir_p(out) != 0) {
        fprintf(stderr, "cnf: cannot create the output folder %s: %s\n", out, strerror(errno));
        goto done;
    }
    const size_t B = user && ntrain < (size_t)batch ? ntrain : (size_t)batch;
    ex_rng rng;
    ex_rng_seed(&rng, (uint64_t)seed);
    if (!user) {
        if (!(test = malloc(nt * D * sizeof *test)))
            goto nomem;
        ex_rng test_rng;
        ex_rng_seed(&test_rng, (uint64_t)seed + 1000003u);
        ex_toy_sample(toy, &test_rng, nt, test);
    } else if (!(perm = malloc(ntrain * sizeof *perm)) || !(idx = malloc(B * sizeof *idx))) {
        goto nomem;
    } else {
        ex_rng_iota(ntrain, perm);
    }

    /* The model: a flow with its divergence. */
    node_flow flow;
    double *theta;
    size_t np;
    if (planar) {
        CHECK("creating the planar CNF", err.message,
              node_planar_create(&pl, D, (size_t)width, (size_t)hidden, &err));
        node_planar_init(pl, (uint64_t)seed + 17u);
        CHECK("the planar flow", NULL, node_planar_flow(pl, B, &flow));
        theta = node_planar_params(pl);
        np = node_planar_nparams(pl);
    } else {
        const size_t W = (size_t)width, sizes[5] = { D, W, W, W, D };
        const node_activation acts[4] = { NODE_ACT_TANH, NODE_ACT_TANH, NODE_ACT_TANH,
                                          NODE_ACT_IDENTITY };
        CHECK("creating the MLP", err.message, node_mlp_create_ex(&mlp, 4, sizes, acts, 1, &err));
        node_mlp_init(mlp, (uint64_t)seed + 17u);
        CHECK("the MLP flow", NULL, node_mlp_flow(mlp, B, &flow));
        theta = node_mlp_params(mlp);
        np = node_mlp_nparams(mlp);
    }

    /* The CNF: base N(0, v I) at t0 = 0, data at t1; dopri5. */
    node_cnf_options co = node_cnf_options_default();
    co.ode.method = NODE_DOPRI5;
    co.ode.rtol = rtol;
    co.ode.atol = atol;
    co.t0 = 0;
    co.t1 = t1;
    co.base_var = base_var;
    co.trace = trace;
    co.grad = backprop ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT;
    co.seed = (uint64_t)seed + 29u;
    CHECK("creating the CNF", err.message, node_cnf_create(&cnf, &flow, B, &co, &err));
    node_optim_config oc;
    CHECK("Adam", NULL, node_optim_defaults(NODE_OPTIM_ADAM, &oc));
    oc.lr = lr;
    CHECK("creating Adam", err.message, node_optim_create_ex(&opt, np, &oc, &err));
    if (!(x = malloc(B * D * sizeof *x)) || !(grad = malloc(np * sizeof *grad)))
        goto nomem;

    if (user)
        printf("cnf: %zu training and %zu test points of dimension %zu (%s, %s)", ntrain, nt, D,
               train_path, test_path);
    else
        printf("cnf: %s (%s), %zu fresh points per iteration", ex_toy_name(toy),
               toy == EX_TOY_CIRCLES ? "make_circles noise 0.06 factor 0.5 as torchdiffeq's "
               "cnf.py" : "FFJORD's lib/toy_data.py", B);
    printf("; %s CNF ", planar ? "planar" : "MLP");
    if (planar)
        printf("M = %ld units, hypernetwork 1-%ld-%ld-%zu tanh", width, hidden, hidden,
               3 * (size_t)width * D + (size_t)width);
    else
        printf("%zu-%ld-%ld-%ld-%zu tanh with t as an input", D, width, width, width, D);
    printf(" (%zu parameters), base N(0, %g I), t in [0, %g], dopri5 rtol %g atol %g, %s "
           "trace, %s, Adam lr %g (%s), %ld iterations; kernels %s\n", np, base_var, t1, rtol,
           atol, node_trace_name(trace), backprop ? "backprop" : "adjoint", lr, sched_s, iters,
           node_isa_name());
    if (iters == 1000 && argc == 1)
        printf("(the full cnf.py run, about 20 s; --iters N for a shorter one)\n");
    fflush(stdout);

    /* Training: the mean NLL of each batch, its gradient, one Adam step. */
    ex_progress pr;
    ex_progress_start(&pr, stderr, iters);
    double nll_tail = 0, nfe_f = 0, nfe_b = 0, t_train = 0;
    long ntail = 0, skipped = 0;
    const long tail_from = iters - (iters / 10 > 0 ? iters / 10 : 1);
    for (long it = 0; it < iters; it++) {
        if (user) {
            ex_rng_sample(&rng, ntrain, B, perm, idx);
            for (size_t i = 0; i < B; i++)
                memcpy(x + i * D, train + idx[i] * D, D * sizeof *x);
        } else {
            ex_toy_sample(toy, &rng, B, x);
        }
        CHECK("the learning-rate schedule", NULL, node_optim_schedule(opt, &sched, it));
        double t_it = ex_clock(), nll;
        int64_t f = 0, b = 0;
        node_stats st;
        node_status s = node_cnf_nll(cnf, B, x, &nll, grad, &f, &b, &st);
        if (s != NODE_OK) {
            ex_progress_end(&pr);
            fprintf(stderr, "cnf: iteration %ld: %s\n", it + 1,
                    st.message[0] ? st.message : node_strerror(s));
            goto fail;
        }
        if (node_optim_step(opt, theta, grad) != NODE_OK)
            skipped++;   /* a non-finite gradient: the step is refused, θ unchanged */
        t_train += ex_clock() - t_it;
        nfe_f += (double)f;
        nfe_b += (double)b;
        if (it >= tail_from) {
            nll_tail += nll;
            ntail++;
        }
        ex_progress_draw(&pr, it + 1, it + 1 == iters || (it + 1) % 100 == 0,
                         "iter %ld/%ld  NLL %.4f  NFE %lld fwd / %lld bwd  %.1f ms/iter", it + 1,
                         iters, nll, (long long)f, (long long)b, 1e3 * t_train / (double)(it + 1));
    }
    ex_progress_end(&pr);
    const double train_nll = ntail ? nll_tail / (double)ntail : NAN;
    const double ms_iter = iters ? 1e3 * t_train / (double)iters : NAN;

    /* Test: the mean NLL of held-out points (and, for a known density, the true entropy
       and the KL divergence from the data to the model on the same points). */
    if (!(logp = malloc(nt * sizeof *logp)))
        goto nomem;
    CHECK("the test log-likelihood", NULL, log_prob_all(cnf, nt, D, B, test, logp));
    double m = 0, m2 = 0;
    for (size_t i = 0; i < nt; i++) {
        m += -logp[i];
        m2 += logp[i] * logp[i];
    }
    m /= (double)nt;
    const double test_se = nt > 1 ? sqrt(fmax(m2 / (double)nt - m * m, 0) / (double)(nt - 1)) : NAN;
    const double test_nll = m;
    double H = NAN, Hse = NAN, kl = NAN, klse = NAN;
    if (!user && ex_toy_has_density(toy)) {
        ex_toy_entropy(toy, (uint64_t)seed + 77u, (size_t)nentropy, &H, &Hse);
        double a = 0, a2 = 0;
        for (size_t i = 0; i < nt; i++) {
            double d = ex_toy_log_prob(toy, test + i * D) - logp[i];
            a += d;
            a2 += d * d;
        }
        a /= (double)nt;
        kl = a;
        klse = nt > 1 ? sqrt(fmax(a2 / (double)nt - a * a, 0) / (double)(nt - 1)) : NAN;
    }
    printf("test NLL %.4f ± %.4f nats per point (%zu %s points)", test_nll, test_se, nt,
           user ? "test" : "fresh");
    if (isfinite(H))
        printf("; true entropy %.4f ± %.4f (Monte Carlo over %ld samples of the exact "
               "density); KL(data || model) %.4f ± %.4f on the test points", H, Hse, nentropy,
               kl, klse);
    printf("\ntraining: %.2f ms/iteration, NFE %.1f fwd / %.1f bwd per iteration, final NLL "
           "%.4f (mean of the last %ld batches)%s\n", ms_iter, iters ? nfe_f / iters : 0.0,
           iters ? nfe_b / iters : 0.0, train_nll, ntail, skipped ? " (some steps skipped)" : "");

    /* Outputs: samples, the model, the figure. */
    const size_t ns = 2000;
    if (!(xs = malloc(ns * D * sizeof *xs)) || !(ptrue = malloc(ns * sizeof *ptrue)))
        goto nomem;
    node_rng nr;
    CHECK("seeding", NULL, node_rng_seed(&nr, (uint64_t)seed + 5u));
    for (size_t i = 0; i < ns; i += B) {
        size_t b = ns - i < B ? ns - i : B;
        CHECK("sampling", NULL, node_cnf_sample(cnf, &nr, b, NULL, xs + i * D, ptrue + i, NULL));
    }
    if (ex_path_join(path, sizeof path, out, "samples.csv") != 0 ||
        ex_points_write_csv(path, xs, ns, D) != 0) {
        fprintf(stderr, "cnf: cannot write %s: %s\n", path, strerror(errno));
        goto fail;
    }
    printf("wrote %s (%zu samples of the model)\n", path, ns);
    if (ex_path_join(path, sizeof path, out, "cnf.model") != 0)
        goto fail;
    CHECK("saving the model", err.message,
          node_mlp_save_ex(planar ? node_planar_hypernet(pl) : mlp, path, &err));
    printf("wrote %s (%s)\n", path, planar ? "the hypernetwork of the planar CNF" : "the MLP");
    if (D == 2 && !no_figures) {
        figure F;
        memset(&F, 0, sizeof F);
        F.t0 = 0;
        F.t1 = t1;
        F.base_var = base_var;
        F.nsamples = ns;
        F.grid = 60;
        F.B = B;
        F.seed = (uint64_t)seed + 9u;
        F.toy = !user && ex_toy_has_density(toy) ? (int)toy : -1;
        F.data = user ? train : test;
        F.ndata = user ? ntrain : nt;
        if (user) {
            for (int k = 0; k < 2; k++) {
                F.lo[k] = INFINITY;
                F.hi[k] = -INFINITY;
            }
            for (size_t i = 0; i < ntrain; i++)
                for (int k = 0; k < 2; k++) {
                    F.lo[k] = fmin(F.lo[k], train[2 * i + k]);
                    F.hi[k] = fmax(F.hi[k], train[2 * i + k]);
                }
            for (int k = 0; k < 2; k++) {
                double w = F.hi[k] - F.lo[k] > 0 ? F.hi[k] - F.lo[k] : 1;
                F.lo[k] -= 0.1 * w;
                F.hi[k] += 0.1 * w;
            }
        } else {
            F.lo[0] = F.lo[1] = -ex_toy_extent(toy);
            F.hi[0] = F.hi[1] = ex_toy_extent(toy);
        }
        char title[256];
        snprintf(title, sizeof title, "%s: %s CNF, %ld iterations, test NLL %.3f", user ?
                 train_path : ex_toy_name(toy), planar ? "planar" : "MLP", iters, test_nll);
        F.title = title;
        if (ex_path_join(path, sizeof path, out, "cnf.svg") != 0 ||
            write_figure(path, cnf, &F, msg, sizeof msg) != 0) {
            fprintf(stderr, "cnf: %s: %s\n", path, msg);
            goto fail;
        }
        printf("wrote %s (samples and density at 5, 20, 40, 60, 80, 100 %% of the flow)\n", path);
    }
    const double seconds = ex_clock() - t_begin;
    char dur[32];
    ex_format_duration(seconds, dur, sizeof dur);
    printf("done in %s\n", dur);

    /* The results as one JSON object, the last line of standard output. */
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "cnf");
    ex_json_str(&j, "dataset", user ? "csv" : ex_toy_name(toy));
    ex_json_int(&j, "dim", (int64_t)D);
    ex_json_str(&j, "model", planar ? "planar" : "mlp");
    ex_json_int(&j, "width", width);
    ex_json_int(&j, "nparams", (int64_t)np);
    ex_json_str(&j, "trace", node_trace_name(trace));
    ex_json_str(&j, "gradient", backprop ? "backprop" : "adjoint");
    ex_json_num(&j, "train_nll", train_nll);
    ex_json_num(&j, "test_nll", test_nll);
    ex_json_num(&j, "test_nll_se", test_se);
    if (isfinite(H)) {
        ex_json_num(&j, "entropy", H);
        ex_json_num(&j, "entropy_se", Hse);
        ex_json_num(&j, "kl", kl);
        ex_json_num(&j, "kl_se", klse);
    }
    ex_json_num(&j, "nfe_forward", iters ? nfe_f / iters : NAN);
    ex_json_num(&j, "nfe_backward", iters ? nfe_b / iters : NAN);
    ex_json_int(&j, "iters", iters);
    ex_json_int(&j, "batch", (int64_t)B);
    ex_json_num(&j, "lr", lr);
    ex_json_str(&j, "sched", sched_s);
    ex_json_num(&j, "ms_per_iter", ms_iter);
    ex_json_num(&j, "seconds", seconds);
    ex_json_int(&j, "seed", seed);
    ex_json_str(&j, "out", out);
    ex_json_end(&j);
    status = 0;
    goto done;

nomem:
    fprintf(stderr, "cnf: out of memory\n");
fail:
    status = 1;
done:
    node_optim_free(opt);
    node_cnf_free(cnf);
    node_planar_free(pl);
    node_mlp_free(mlp);
    free(train);
    free(test);
    free(x);
    free(grad);
    free(logp);
    free(xs);
    free(ptrue);
    free(perm);
    free(idx);
    return status;
}
