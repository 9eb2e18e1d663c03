/* odenet.c — the image classifier of Chen et al. (2018), §3 and Table 1, on
 * Fashion-MNIST: torchdiffeq's odenet_mnist.py (conv downsampling to W × 6 × 6, one
 * ODE block over [0, 1], group norm, average pool, dense → 10) as an ODE-Net
 * (dopri5, adjoint gradients), an RK-Net (the same block, fixed-step RK4, exact
 * backprop) or a ResNet (6 residual blocks instead); Fig. 3's four panels for an
 * ODE-Net.  Reads Debian's dataset-fashion-mnist (gzipped IDX) with its own inflate.
 * Run: ./odenet [--network odenet|resnet|rknet] [--epochs N] [--out DIR]  (--help)
 *      full run: ./odenet --width 64 --train-limit 0 --test-limit 0 --epochs 160
 * Writes DIR/<network>.model, DIR/fig3.svg and DIR/fig3.csv (ODE-Net); the last line
 * of standard output is a JSON object with the results.
 */
#define _POSIX_C_SOURCE 200809L
#include <libnode.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "files.h"
#include "idx.h"
#include "json.h"
#include "odenet_fig3.h"
#include "odenet_model.h"
#include "progress.h"
#include "rng.h"

#define CLASSES 10
#define PAD 4   /* RandomCrop(28, padding=4) */

/* ---- data ------------------------------------------------------------------------------ */

/* Keep the first `limit` images of s (0: all). */
static void take_first(ex_imageset *s, long limit)
{
    if (limit > 0 && (size_t)limit < s->count)
        s->count = (size_t)limit;
}

/* Images idx[0..B-1] of s into x (B × rows × cols, values / 255); with rng: a random
   crop of the image zero-padded by PAD on every side (torchvision's RandomCrop). */
static void fill_batch(const ex_imageset *s, const size_t *idx, size_t B, ex_rng *rng,
                       double *x, unsigned char *labels)
{
    const size_t R = s->rows, C = s->cols;
    for (size_t b = 0; b < B; b++) {
        const unsigned char *im = s->pixels + idx[b] * R * C;
        double *o = x + b * R * C;
        long dy = 0, dx = 0;
        if (rng) {
            dy = (long)ex_rng_below(rng, 2 * PAD + 1) - PAD;
            dx = (long)ex_rng_below(rng, 2 * PAD + 1) - PAD;
        }
        for (size_t r = 0; r < R; r++)
            for (size_t c = 0; c < C; c++) {
                long sr = (long)r + dy, sc = (long)c + dx;
                o[r * C + c] = sr >= 0 && sc >= 0 && sr < (long)R && sc < (long)C
                                   ? im[(size_t)sr * C + (size_t)sc] / 255.0 : 0.0;
            }
        labels[b] = s->labels[idx[b]];
    }
}

/* ---- peak memory (Linux /proc; elsewhere getrusage-free: 0) ----------------------------- */

static long proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    long v = 0;
    const size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') {
            v = strtol(line + k + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Reset the peak RSS to the current RSS (Linux >= 4.0); 0 on success. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int bad = fputs("5", f) < 0;
    return fclose(f) != 0 || bad ? -1 : 0;
}

/* ---- evaluation ------------------------------------------------------------------------ */

typedef struct eval_result {
    double error, loss, nfe_f;
} eval_result;

static int evaluate(ex_odenet *m, const ex_imageset *s, size_t B, double *x,
                    unsigned char *labels, size_t *idx, eval_result *r, char *msg, size_t n)
{
    size_t correct = 0, batches = 0;
    double loss = 0, nfe = 0;
    for (size_t at = 0; at < s->count; at += B) {
        const size_t b = s->count - at < B ? s->count - at : B;
        for (size_t i = 0; i < b; i++)
            idx[i] = at + i;
        fill_batch(s, idx, b, NULL, x, labels);
        ex_step st;
        if (ex_odenet_eval(m, b, x, labels, &st, msg, n) != 0)
            return -1;
        correct += st.correct;
        loss += st.loss * (double)b;
        nfe += (double)st.nfe_f;
        batches++;
    }
    r->error = 1.0 - (double)correct / (double)s->count;
    r->loss = loss / (double)s->count;
    r->nfe_f = m->kind == EX_NET_RESNET ? NAN : nfe / (double)batches;
    return 0;
}

/* torchdiffeq's learning_rate_with_decay: lr · batch / 128, × 0.1 at epochs 60, 100,
   140 of 160 — here at the same fractions of the epochs of the run, for runs of at
   least DECAY_EPOCHS epochs; shorter runs keep the rate (the first tens of iterations
   of this model sit on a plateau near log 10, in torchdiffeq too: a decay inside a
   quick run would stop it there). */
#define DECAY_EPOCHS 8
static double lr_at(double lr0, size_t B, long epoch, long epochs)
{
    static const double frac[3] = { 60.0 / 160, 100.0 / 160, 140.0 / 160 };
    double lr = lr0 * (double)B / 128.0;
    for (int k = 0; k < 3 && epochs >= DECAY_EPOCHS; k++)
        if ((double)epoch >= floor(frac[k] * (double)epochs + 0.5))
            lr *= 0.1;
    return lr;
}

/* ---- main: data → model → training → test → Fig. 3 → results ---------------------------- */

int main(int argc, char **argv)
{
    const char *network = "odenet", *data = "/usr/share/datasets/fashion-mnist";
    const char *out = "odenet_out", *load = NULL, *save = NULL;
    long epochs = 1, batch = 128, width = 16, blocks = 6, train_limit = 20000, test_limit = 1000;
    long seed = 1, threads = 0, fig3_batches = 1, max_steps = 100000;
    double lr = 0.1, tol = 1e-3, rk_step = 0.25;
    int backprop = 0, no_aug = 0;
    const ex_arg args[] = {
        { "--network", EX_STRING, &network, "NET", "odenet (dopri5, adjoint) | resnet (ResBlocks) | rknet (RK4, backprop)" },
        { "--data", EX_STRING, &data, "DIR", "Fashion-MNIST IDX files, .gz or plain (apt-get install dataset-fashion-mnist)" },
        { "--epochs", EX_LONG, &epochs, "N", "training epochs (0: only evaluate the loaded or initial model)" },
        { "--batch-size", EX_LONG, &batch, "B", "images per batch (training and test)" },
        { "--lr", EX_DOUBLE, &lr, "LR", "SGD learning rate x batch/128, momentum 0.9; runs of 8+ epochs: x0.1 at 60/160, 100/160, 140/160 of them" },
        { "--width", EX_LONG, &width, "W", "channels (torchdiffeq: 64); divisible by min(32, W)" },
        { "--blocks", EX_LONG, &blocks, "N", "resnet: residual blocks" },
        { "--tol", EX_DOUBLE, &tol, "TOL", "odenet: dopri5 rtol = atol (forward and adjoint)" },
        { "--backprop", EX_FLAG, &backprop, NULL, "odenet: exact backprop through dopri5 instead of the adjoint" },
        { "--rk-step", EX_DOUBLE, &rk_step, "H", "rknet: the RK4 step on [0, 1] (0.25: 4 steps, 16 evaluations)" },
        { "--max-steps", EX_LONG, &max_steps, "N", "odenet: solver steps per solve before a batch fails" },
        { "--no-augment", EX_FLAG, &no_aug, NULL, "no random crops (padding 4) of the training images" },
        { "--train-limit", EX_LONG, &train_limit, "N", "the first N training images (0: all 60000)" },
        { "--test-limit", EX_LONG, &test_limit, "N", "the first N test images (0: all 10000)" },
        { "--fig3-batches", EX_LONG, &fig3_batches, "K", "odenet: test batches for Fig. 3's tolerance sweep (0: no figure)" },
        { "--seed", EX_LONG, &seed, "S", "seed of the weights, the shuffling, the crops" },
        { "--threads", EX_LONG, &threads, "T", "threads inside the networks (0: what OpenMP offers)" },
        { "--load", EX_STRING, &load, "MODEL", "start from a saved model (its width; --network must match)" },
        { "--save", EX_STRING, &save, "MODEL", "where to save the model (default DIR/<network>.model)" },
        { "--out", EX_STRING, &out, "DIR", "output folder" },
    };
    int r = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                          "ODE-Net, RK-Net and ResNet on Fashion-MNIST (Chen et al. 2018, Table 1 "
                          "and Fig. 3). The defaults are a quick run (width 16, 20000 training "
                          "and 1000 test images, 1 epoch: a few minutes on 2 cores); torchdiffeq's "
                          "full run is --width 64 --train-limit 0 --test-limit 0 --epochs 160 (tens "
                          "of TFLOP an epoch: a larger machine).");
    if (r != EX_ARGS_OK)
        return r == EX_ARGS_HELP ? 0 : 2;
    const int kind = ex_netkind_parse(network);
    if (kind < 0)
        return ex_args_fail(argv[0], "unknown --network '%s' (odenet, resnet, rknet)", network);
    if (epochs < 0 || batch < 1 || width < 1 || width > 4096 || blocks < 1 || blocks > 1000 ||
        train_limit < 0 || test_limit < 0 || fig3_batches < 0 || max_steps < 1 || threads < 0)
        return ex_args_fail(argv[0], "--epochs, --train-limit, --test-limit, --fig3-batches and "
                            "--threads must be >= 0; --batch-size, --width (<= 4096), --blocks "
                            "and --max-steps >= 1");
    if (width % (width < 32 ? width : 32))
        return ex_args_fail(argv[0], "--width %ld is not divisible by min(32, W), the group "
                            "norm's groups", width);
    if (!(lr >= 0) || !(tol > 0) || !(rk_step > 0 && rk_step <= 1))
        return ex_args_fail(argv[0], "--lr must be >= 0, --tol > 0, --rk-step in (0, 1]");
    if (backprop && kind != EX_NET_ODENET)
        return ex_args_fail(argv[0], "--backprop is for --network odenet (rknet always "
                            "backpropagates, resnet has no solver)");

    /* Data first: a missing or malformed file stops here, before anything is written. */
    int status = 1;
    char msg[512];
    ex_imageset train, test;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    ex_odenet m;
    memset(&m, 0, sizeof m);
    double *x = NULL, *train_nfe = NULL;
    size_t *perm = NULL, *idx = NULL;
    unsigned char *labels = NULL;
    ex_fig3 fig;
    memset(&fig, 0, sizeof fig);
    const double t_begin = ex_clock();
    if ((r = ex_imageset_read(data, "train", CLASSES, &train, msg, sizeof msg)) != 0 ||
        (r = ex_imageset_read(data, "t10k", CLASSES, &test, msg, sizeof msg)) != 0) {
        fprintf(stderr, "odenet: %s\n", msg);
        if (r == EX_IDX_EINPUT && strstr(msg, strerror(ENOENT)))
            fprintf(stderr, "odenet: (Debian: apt-get install dataset-fashion-mnist; or --data "
                    "DIR with train-*/t10k-* IDX files)\n");
        status = r;
        goto done;
    }
    if (test.rows != train.rows || test.cols != train.cols || train.rows < 10 || train.cols < 10) {
        fprintf(stderr, "odenet: %s: training images are %zu x %zu, test images %zu x %zu (the "
                "same size, at least 10 x 10, is needed)\n", data, train.rows, train.cols,
                test.rows, test.cols);
        status = 2;
        goto done;
    }
    take_first(&train, train_limit);
    take_first(&test, test_limit);
    const size_t B = (size_t)batch, img = train.rows * train.cols;
    const size_t nb = train.count / B;   /* full batches only (torchdiffeq: drop_last) */
    if (epochs > 0 && nb == 0) {
        fprintf(stderr, "odenet: %zu training images make no batch of %zu (--train-limit, "
                "--batch-size)\n", train.count, B);
        status = 2;
        goto done;
    }

    /* The model: built, or loaded (its width wins). */
    node_error err;
    memset(&err, 0, sizeof err);
    if (load) {
        node_net *nets[4];
        size_t k = 0;
        if (node_net_load(nets, 4, &k, load, &err) != NODE_OK) {
            fprintf(stderr, "odenet: --load: %s\n", err.message);
            status = 2;
            goto done;
        }
        if (ex_odenet_adopt(&m, (ex_netkind)kind, nets, k, train.rows, train.cols, CLASSES,
                            &err) != 0) {
            fprintf(stderr, "odenet: %s: %s\n", load, err.message);
            for (size_t i = 0; i < k; i++)
                node_net_free(nets[i]);
            status = 2;
            goto done;
        }
    } else if (ex_odenet_build(&m, (ex_netkind)kind, (size_t)width, (size_t)blocks, train.rows,
                               train.cols, CLASSES, (uint64_t)seed, &err) != 0) {
        fprintf(stderr, "odenet: building the model: %s\n", err.message);
        goto done;
    }
    node_options opt = node_options_default();
    opt.rtol = opt.atol = tol;
    opt.max_steps = max_steps;
    if (kind == EX_NET_RKNET) {
        opt.method = NODE_RK4;
        opt.step = rk_step;
    }
    const int use_backprop = backprop || kind == EX_NET_RKNET;
    if (ex_odenet_prepare(&m, &opt, use_backprop, B, (int)threads, &err) != 0) {
        fprintf(stderr, "odenet: %s\n", err.message);
        goto done;
    }
    if (ex_mkdir_p(out) != 0) {
        fprintf(stderr, "odenet: cannot create the output folder %s: %s\n", out, strerror(errno));
        goto done;
    }
    x = malloc(B * img * sizeof *x);
    labels = malloc(B);
    idx = malloc(B * sizeof *idx);
    perm = malloc((train.count ? train.count : 1) * sizeof *perm);
    train_nfe = calloc((size_t)epochs * nb + 1, sizeof *train_nfe);
    if (!x || !labels || !idx || !perm || !train_nfe)
        goto nomem;

    const size_t W = m.width, D = m.D;
    char block[160];
    if (kind == EX_NET_RESNET)
        snprintf(block, sizeof block, "%zu ResBlocks", node_net_nlayers(m.net[1]));
    else if (kind == EX_NET_RKNET)
        snprintf(block, sizeof block, "ODE block, RK4 step %g (%.0f evaluations), backprop",
                 rk_step, 4 * ceil(1 / rk_step - 1e-12));
    else
        snprintf(block, sizeof block, "ODE block, dopri5 rtol = atol = %g, %s", tol,
                 backprop ? "exact backprop" : "adjoint");
    printf("odenet: %s, width %zu (features %zu x %zu), %s; parameters %zu = downsampling "
           "%zu + block %zu + head %zu\n", ex_netkind_name(m.kind), W, W, D / W, block,
           ex_odenet_nparams(&m, 3), ex_odenet_nparams(&m, 0), ex_odenet_nparams(&m, 1),
           ex_odenet_nparams(&m, 2));
    printf("odenet: %zu training images (%zu batches of %zu, %s), %zu test images from %s; "
           "SGD lr %g x %zu/128, momentum 0.9; %ld epochs; threads %ld%s; kernels %s\n",
           train.count, nb, B, no_aug ? "no augmentation" : "random crops, padding 4",
           test.count, data, lr, B, epochs, threads, node_net_openmp() ? " (OpenMP)" :
           " (no OpenMP in this build)", node_isa_name());
    fflush(stdout);

    /* Training. */
    ex_rng rng;
    ex_rng_seed(&rng, (uint64_t)seed * 7919u + 13u);
    ex_rng_iota(train.count, perm);
    const int peak_reset = reset_peak_rss() == 0;
    const long rss0 = proc_status_kb("VmRSS");
    const long total = epochs * (long)nb;
    double train_seconds = 0, nfe_f_epoch = NAN, nfe_b_epoch = NAN, train_err = NAN;
    eval_result te = { NAN, NAN, NAN };
    ex_progress pr;
    ex_progress_start(&pr, stderr, total);
    long it = 0;
    for (long ep = 0; ep < epochs; ep++) {
        const double t0 = ex_clock();
        double loss_sum = 0, nf = 0, nbw = 0;
        size_t correct = 0, seen = 0;
        ex_rng_sample(&rng, train.count, train.count, perm, perm);   /* a fresh permutation */
        for (size_t b = 0; b < nb; b++, it++) {
            fill_batch(&train, perm + b * B, B, no_aug ? NULL : &rng, x, labels);
            ex_step st;
            if (ex_odenet_train_step(&m, B, x, labels, lr_at(lr, B, ep, epochs), &st, msg,
                                     sizeof msg) != 0) {
                ex_progress_end(&pr);
                fprintf(stderr, "odenet: epoch %ld, batch %zu: %s\n", ep + 1, b + 1, msg);
                goto done;
            }
            train_nfe[it] = (double)st.nfe_f;
            loss_sum += st.loss;
            nf += (double)st.nfe_f;
            nbw += (double)st.nfe_b;
            correct += st.correct;
            seen += B;
            const double el = ex_clock() - t0;
            ex_progress_draw(&pr, it + 1, 0, "epoch %ld/%ld batch %zu/%zu loss %.4f acc %.1f%% "
                             "NFE-F %.1f NFE-B %.1f %.0f img/s", ep + 1, epochs, b + 1, nb,
                             loss_sum / (double)(b + 1), 100.0 * (double)correct / (double)seen,
                             nf / (double)(b + 1), nbw / (double)(b + 1),
                             el > 0 ? (double)seen / el : 0.0);
        }
        const double secs = ex_clock() - t0;
        train_seconds += secs;
        nfe_f_epoch = kind == EX_NET_RESNET ? NAN : nf / (double)nb;   /* no solver */
        nfe_b_epoch = kind == EX_NET_RESNET ? NAN : nbw / (double)nb;
        train_err = 1.0 - (double)correct / (double)seen;
        if (evaluate(&m, &test, B, x, labels, idx, &te, msg, sizeof msg) != 0) {
            ex_progress_end(&pr);
            fprintf(stderr, "odenet: testing after epoch %ld: %s\n", ep + 1, msg);
            goto done;
        }
        ex_progress_print(&pr, "%s", "");   /* clears the live line on a terminal */
        printf("epoch %ld/%ld: train error %.2f%% (running, augmented), test error %.2f%%, "
               "loss %.4f; NFE-F %.1f, NFE-B %.1f per batch (test NFE-F %.1f); %.1f s "
               "training, %.0f images/s\n", ep + 1, epochs, 100 * train_err, 100 * te.error,
               te.loss, nfe_f_epoch, nfe_b_epoch, te.nfe_f, secs, (double)seen / secs);
        fflush(stdout);
    }
    ex_progress_end(&pr);
    if (epochs == 0 && evaluate(&m, &test, B, x, labels, idx, &te, msg, sizeof msg) != 0) {
        fprintf(stderr, "odenet: testing: %s\n", msg);
        goto done;
    }
    const long peak_kb = proc_status_kb("VmHWM");
    printf("%s: test error %.2f%% on %zu images (loss %.4f, NFE-F %.1f); peak RSS %ld kB "
           "(%ld kB above the %ld kB before training%s)\n", ex_netkind_name(m.kind),
           100 * te.error, test.count, te.loss, te.nfe_f, peak_kb, peak_kb - rss0, rss0,
           peak_reset ? "" : "; the peak could not be reset after loading the data");

    /* The model file. */
    char path[4096], model_path[4096], name[64];
    snprintf(name, sizeof name, "%s.model", ex_netkind_name(m.kind));
    if (!save) {
        if (ex_path_join(model_path, sizeof model_path, out, name) != 0)
            goto done;
        save = model_path;
    }
    const node_net *const nets[3] = { m.net[0], m.net[1], m.net[2] };
    if (node_net_save(nets, 3, save, &err) != NODE_OK) {
        fprintf(stderr, "odenet: --save: %s\n", err.message);
        goto done;
    }
    printf("wrote %s\n", save);

    /* Fig. 3: the ODE-Net's statistics over tolerances 1e0 … 1e-5. */
    const size_t k3 = (size_t)fig3_batches < test.count / B ? (size_t)fig3_batches : test.count / B;
    double ratio = NAN;
    if (kind == EX_NET_ODENET && k3 > 0) {
        double *x3 = malloc(k3 * B * img * sizeof *x3);
        unsigned char *l3 = malloc(k3 * B);
        size_t *i3 = malloc(k3 * B * sizeof *i3);
        if (!x3 || !l3 || !i3) {
            free(x3);
            free(l3);
            free(i3);
            goto nomem;
        }
        for (size_t i = 0; i < k3 * B; i++)
            i3[i] = i;
        fill_batch(&test, i3, k3 * B, NULL, x3, l3);
        fprintf(stderr, "odenet: Fig. 3: %zu test batches at 6 tolerances ...\n", k3);
        int fr = ex_fig3_measure(&m, k3, B, x3, l3, &fig, msg, sizeof msg);
        free(x3);
        free(l3);
        free(i3);
        if (fr != 0) {
            fprintf(stderr, "odenet: Fig. 3: %s\n", msg);
            goto done;
        }
        fig.train_nfe = train_nfe;
        fig.ntrain = (size_t)it;
        fig.per_epoch = nb;
        printf("Fig. 3 (%zu test batches of %zu; error = RMS of |h - h_ref| / (1 + |h_ref|), "
               "h_ref at tol %g, %.0f NFE):\n| tol | NFE-F | NFE-B | NFE-B / NFE-F | error | "
               "forward s |\n|---:|---:|---:|---:|---:|---:|\n", k3, B, EX_FIG3_REF_TOL,
               fig.ref_nfe);
        for (int k = 0; k < EX_FIG3_NTOL; k++) {
            double a, b, e, s;
            ex_fig3_means(&fig, k, &a, &b, &e, &s);
            printf("| 1e%d | %.1f | %.1f | %.2f | %.2e | %.3f |\n", -k, a, b, b / a, e, s);
            if (fabs(pow(10.0, -k) - tol) <= 1e-9 * tol)
                ratio = b / a;
        }
        char t[256];
        snprintf(t, sizeof t, "Fig. 3 analogue: ODE-Net (width %zu) on Fashion-MNIST, %ld "
                 "epochs, %zu training images", W, epochs, train.count);
        if (ex_path_join(path, sizeof path, out, "fig3.svg") != 0 ||
            ex_fig3_write_svg(path, &fig, t) != 0) {
            fprintf(stderr, "odenet: cannot write %s: %s\n", path, strerror(errno));
            goto done;
        }
        printf("wrote %s (a: error vs NFE-F, b: relative time vs NFE-F, c: NFE-B vs NFE-F, "
               "d: NFE-F over training)\n", path);
        if (ex_path_join(path, sizeof path, out, "fig3.csv") != 0 ||
            ex_fig3_write_csv(path, &fig) != 0) {
            fprintf(stderr, "odenet: cannot write %s: %s\n", path, strerror(errno));
            goto done;
        }
        printf("wrote %s\n", path);
    }

    /* The results as one JSON object, the last line of standard output. */
    char dur[32];
    ex_format_duration(ex_clock() - t_begin, dur, sizeof dur);
    printf("done in %s\n", dur);
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "odenet");
    ex_json_str(&j, "network", ex_netkind_name(m.kind));
    ex_json_int(&j, "params", (int64_t)ex_odenet_nparams(&m, 3));
    ex_json_int(&j, "width", (int64_t)W);
    ex_json_num(&j, "test_error", te.error);
    ex_json_num(&j, "test_loss", te.loss);
    ex_json_num(&j, "train_error", train_err);
    ex_json_num(&j, "nfe_forward", nfe_f_epoch);
    ex_json_num(&j, "nfe_backward", nfe_b_epoch);
    ex_json_num(&j, "test_nfe_forward", te.nfe_f);
    ex_json_int(&j, "peak_rss_kb", peak_kb);
    ex_json_int(&j, "train_rss_growth_kb", peak_kb - rss0);
    ex_json_num(&j, "seconds_per_epoch", epochs ? train_seconds / (double)epochs : NAN);
    ex_json_num(&j, "images_per_second", train_seconds > 0 ?
                (double)(epochs * (long)nb * (long)B) / train_seconds : NAN);
    ex_json_int(&j, "epochs", epochs);
    ex_json_int(&j, "train_images", (int64_t)train.count);
    ex_json_int(&j, "test_images", (int64_t)test.count);
    ex_json_int(&j, "batch_size", batch);
    ex_json_str(&j, "gradient", kind == EX_NET_RESNET ? "backprop" : use_backprop ?
                "backprop" : "adjoint");
    ex_json_num(&j, "tol", kind == EX_NET_ODENET ? tol : NAN);
    ex_json_num(&j, "rk_step", kind == EX_NET_RKNET ? rk_step : NAN);
    ex_json_num(&j, "fig3_nfe_ratio", ratio);
    ex_json_int(&j, "threads", threads);
    ex_json_bool(&j, "openmp", node_net_openmp());
    ex_json_int(&j, "seed", seed);
    ex_json_str(&j, "model", save);
    ex_json_str(&j, "out", out);
    ex_json_end(&j);
    status = 0;
    goto done;
nomem:
    fprintf(stderr, "odenet: out of memory\n");
done:
    ex_fig3_free(&fig);
    ex_odenet_free(&m);
    ex_imageset_free(&train);
    ex_imageset_free(&test);
    free(x);
    free(labels);
    free(idx);
    free(perm);
    free(train_nfe);
    return status;
}
