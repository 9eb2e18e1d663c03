/* cnf_match.c — the paper's Fig. 4 (Chen et al. 2018, §4.1): density matching.  A flow
 * q moves N(0, I) samples z0 to x; it is trained to minimise
 *     L = E_{z0 ~ N(0,I)} [ log q(x) + U(x) ]  =  KL(q ‖ p) − log Z,     p = exp(−U)/Z,
 * for the four 2-D potentials U1–U4 of Rezende & Mohamed (2015, Table 1): a planar CNF
 * with M ∈ {2, 8, 32} units (node_planar; gradient by node_cnf_transport_grad with
 * dL/dx = ∇U/B and dL/ddlogp = 1/B, as log q(x) = log N(z0) + dlogp) against the
 * discrete planar NF with K ∈ {2, 8, 32} layers (node_planar_nf).  The loss is reported
 * as is (Z unknown to the method); log Z by quadrature and KL = L + log Z alongside.
 * Training follows the paper's protocol in kind: the CNF by Adam, the NF by RMSprop with
 * momentum (Rezende & Mohamed's optimizer) for 10x the CNF's iterations (the paper: 50x,
 * 10,000 against 500,000), both on a cosine learning-rate schedule (node_sched) to 1% of
 * their rate; the CNF's final losses are taken at a tighter tolerance (--eval-tol) and
 * the shift from the training tolerance is reported.
 * Run: ./cnf_match [--iters N] [--nf-iters N] [--batch B] [--targets 1,2,3,4] [--out DIR]
 * (--help)
 * Writes DIR/cnf_match.svg (target, NF and CNF densities, loss vs K/M); the last line of
 * standard output is a JSON object with every final loss.
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
#include "sched.h"
#include "svg.h"

/* ---- the targets: Rezende & Mohamed (2015), Table 1 ---------------------------------

   w1 = sin(2π z1/4), w2 = 3 exp(−½((z1−1)/0.6)²), w3 = 3 σ((z1−1)/0.3);
   U1 = ½((|z|−2)/0.4)² − log(e^{−½((z1−2)/0.6)²} + e^{−½((z1+2)/0.6)²})
   U2 = ½((z2−w1)/0.4)²
   U3 = −log(e^{−½((z2−w1)/0.35)²} + e^{−½((z2−w1+w2)/0.35)²})
   U4 = −log(e^{−½((z2−w1)/0.4)²} + e^{−½((z2−w1+w3)/0.35)²})
   U2–U4 do not depend on z1 far out (exp(−U) has infinite mass there, so the KL could
   go to −∞ by spreading along z1): every target gets the wall ½((|z1|−4)₊/0.4)², which
   is zero on the [−4, 4]² of their figures, and is then normalisable. */
#define NTARGET 4

/* −log(e^a + e^b) and its weights (e^a, e^b)/(e^a + e^b). */
static double neg_lse(double a, double b, double *pa, double *pb)
{
    double m = fmax(a, b), ea = exp(a - m), eb = exp(b - m);
    *pa = ea / (ea + eb);
    *pb = eb / (ea + eb);
    return -(m + log(ea + eb));
}

/* U_k(z) (k = 1..4) and, if g is not NULL, ∇U_k(z). */
static double potential(int k, const double *z, double *g)
{
    const double z1 = z[0], z2 = z[1], pi = 3.14159265358979323846;
    double u = 0, g1 = 0, g2 = 0, pa, pb;
    double w1 = sin(2 * pi * z1 / 4), dw1 = (2 * pi / 4) * cos(2 * pi * z1 / 4);
    if (k == 1) {
        double r = hypot(z1, z2), e = (r - 2) / 0.4;
        double a = -0.5 * (z1 - 2) * (z1 - 2) / 0.36, b = -0.5 * (z1 + 2) * (z1 + 2) / 0.36;
        u = 0.5 * e * e + neg_lse(a, b, &pa, &pb);
        double dr = r > 0 ? e / 0.4 / r : 0;
        g1 = dr * z1 - (pa * -(z1 - 2) / 0.36 + pb * -(z1 + 2) / 0.36);
        g2 = dr * z2;
    } else if (k == 2) {
        double e = (z2 - w1) / 0.4;
        u = 0.5 * e * e;
        g1 = -e / 0.4 * dw1;
        g2 = e / 0.4;
    } else {
        /* U3 and U4: two ridges, the second shifted by w2 or w3 */
        double sa = k == 3 ? 0.35 : 0.4, sb = 0.35, w, dw;
        if (k == 3) {
            w = 3 * exp(-0.5 * (z1 - 1) * (z1 - 1) / 0.36);
            dw = -w * (z1 - 1) / 0.36;
        } else {
            double s = 1 / (1 + exp(-(z1 - 1) / 0.3));
            w = 3 * s;
            dw = 3 * s * (1 - s) / 0.3;
        }
        double ea = (z2 - w1) / sa, eb = (z2 - w1 + w) / sb;
        u = neg_lse(-0.5 * ea * ea, -0.5 * eb * eb, &pa, &pb);
        /* ∂(−log Σ) = Σ p_i ∂(½e_i²) */
        g1 = pa * ea / sa * -dw1 + pb * eb / sb * (dw - dw1);
        g2 = pa * ea / sa + pb * eb / sb;
    }
    double over = fabs(z1) - 4;
    if (over > 0) {
        u += 0.5 * over * over / 0.16;
        g1 += over / 0.16 * (z1 > 0 ? 1 : -1);
    }
    if (g) {
        g[0] = g1;
        g[1] = g2;
    }
    return u;
}

/* The analytic gradients against central differences at a few points (a self-check:
   the loss's gradient rests on them). */
static int check_potentials(void)
{
    ex_rng r;
    ex_rng_seed(&r, 99);
    for (int k = 1; k <= NTARGET; k++)
        for (int n = 0; n < 50; n++) {
            double z[2] = { ex_rng_normal(&r, 0, 2.5), ex_rng_normal(&r, 0, 2.5) }, g[2];
            potential(k, z, g);
            for (int i = 0; i < 2; i++) {
                double zp[2] = { z[0], z[1] }, zm[2] = { z[0], z[1] }, h = 1e-6;
                zp[i] += h;
                zm[i] -= h;
                double fd = (potential(k, zp, NULL) - potential(k, zm, NULL)) / (2 * h);
                if (fabs(fd - g[i]) > 1e-5 * (1 + fabs(fd)))
                    return k;
            }
        }
    return 0;
}

/* log Z = log ∫ exp(−U) over [−8, 8]² (the wall makes the rest negligible), by the
   midpoint rule on a 1200² grid. */
static double log_z(int k)
{
    const int n = 1200;
    const double lo = -8, h = 16.0 / n;
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double z[2] = { lo + (i + 0.5) * h, lo + (j + 0.5) * h };
            s += exp(-potential(k, z, NULL));
        }
    return log(s * h * h);
}

/* ---- the two flows behind one interface ------------------------------------------ */

typedef enum { MODEL_NF, MODEL_CNF } model_kind;

typedef struct model {
    model_kind kind;
    size_t size;            /* K layers or M units */
    node_planar_nf *nf;
    node_planar *pl;
    node_cnf *cnf;
    double *theta;
    size_t np;
    int64_t nfe;            /* CNF: evaluations, forward and backward */
} model;

static void model_free(model *m)
{
    node_cnf_free(m->cnf);
    node_planar_free(m->pl);
    node_planar_nf_free(m->nf);
    memset(m, 0, sizeof *m);
}

static node_status model_make(model *m, model_kind kind, size_t size, size_t batch,
                              const node_cnf_options *copt, uint64_t seed, node_error *err)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->size = size;
    node_status st;
    if (kind == MODEL_NF) {
        if ((st = node_planar_nf_create(&m->nf, 2, size, err)) != NODE_OK)
            return st;
        node_planar_nf_init(m->nf, seed);
        m->theta = node_planar_nf_params(m->nf);
        m->np = node_planar_nf_nparams(m->nf);
        return NODE_OK;
    }
    node_flow fl;
    if ((st = node_planar_create(&m->pl, 2, size, 0, err)) != NODE_OK
        || (st = node_planar_flow(m->pl, batch, &fl)) != NODE_OK
        || (st = node_cnf_create(&m->cnf, &fl, batch, copt, err)) != NODE_OK) {
        model_free(m);
        return st;
    }
    node_planar_init(m->pl, seed);
    m->theta = node_planar_params(m->pl);
    m->np = node_planar_nparams(m->pl);
    return NODE_OK;
}

/* x = flow(z0) and dlogp (log q(x) = log N(z0) + dlogp) for n rows. */
static node_status model_push(model *m, size_t n, const double *z0, double *x, double *dl,
                              char *msg)
{
    if (m->kind == MODEL_NF)
        return node_planar_nf_forward(m->nf, n, z0, x, dl);
    node_stats stats;
    node_status st = node_cnf_transport(m->cnf, n, z0, 0.0, 1.0, x, dl, &stats);
    m->nfe += stats.nfe;
    if (st != NODE_OK)
        snprintf(msg, NODE_MESSAGE_SIZE, "%s", stats.message);
    return st;
}

static node_status model_grad(model *m, size_t n, const double *z0, const double *x,
                              const double *dl, const double *gx, const double *gl,
                              double *g, char *msg)
{
    if (m->kind == MODEL_NF)
        return node_planar_nf_grad(m->nf, n, z0, gx, gl, NULL, g);
    node_stats stats;
    node_status st = node_cnf_transport_grad(m->cnf, n, z0, 0.0, 1.0, x, dl, gx, gl, NULL,
                                             g, &stats);
    m->nfe += stats.nfe;
    if (st != NODE_OK)
        snprintf(msg, NODE_MESSAGE_SIZE, "%s", stats.message);
    return st;
}

/* The loss terms log N(z0) + dlogp + U(x) of n rows: their mean and standard error. */
static void loss_terms(int k, size_t n, const double *z0, const double *x, const double *dl,
                       double *mean, double *se)
{
    const double log2pi = 1.8378770664093453;
    double s = 0, s2 = 0;
    for (size_t r = 0; r < n; r++) {
        double v = -0.5 * (z0[2 * r] * z0[2 * r] + z0[2 * r + 1] * z0[2 * r + 1]) - log2pi
                   + dl[r] + potential(k, x + 2 * r, NULL);
        s += v;
        s2 += v * v;
    }
    *mean = s / (double)n;
    double var = n > 1 ? (s2 - s * s / (double)n) / (double)(n - 1) : 0;
    *se = sqrt(fmax(var, 0) / (double)n);
}

/* ---- the figure ---------------------------------------------------------------------- */

#define GRID 48          /* density cells per side over [−4, 4]² */
#define NSIZE_MAX 8

typedef struct result {
    double loss, se, kl, seconds;
    double tol_shift;          /* CNF: the loss at the training tolerance minus the loss */
    int64_t nfe;
    int done;
    float hist[GRID * GRID];   /* the sample's density on the grid, max 1 */
} result;

/* White → dark blue by v in [0, 1]. */
static void shade(double v, char *buf)
{
    v = sqrt(fmin(fmax(v, 0), 1));
    int r = (int)(255 - v * (255 - 16)), g = (int)(255 - v * (255 - 52)),
        b = (int)(255 - v * (255 - 130));
    snprintf(buf, 8, "#%02x%02x%02x", r, g, b);
}

static void draw_density(ex_svg *s, const float *d)
{
    const double cell = 8.0 / GRID, rad = 0.62 * s->pw / GRID;
    char col[8];
    for (int i = 0; i < GRID; i++)
        for (int j = 0; j < GRID; j++) {
            double v = d[i * GRID + j];
            if (v < 0.01)
                continue;
            shade(v, col);
            ex_svg_dot(s, -4 + (j + 0.5) * cell, -4 + (i + 0.5) * cell, rad, col);
        }
}

static void histogram(size_t n, const double *x, float *h)
{
    double mx = 0, cnt[GRID * GRID] = { 0 };
    for (size_t r = 0; r < n; r++) {
        int j = (int)floor((x[2 * r] + 4) / 8 * GRID), i = (int)floor((x[2 * r + 1] + 4) / 8 * GRID);
        if (i >= 0 && i < GRID && j >= 0 && j < GRID)
            mx = fmax(mx, ++cnt[i * GRID + j]);
    }
    for (int c = 0; c < GRID * GRID; c++)
        h[c] = mx > 0 ? (float)(cnt[c] / mx) : 0.0f;
}

/* One row per target: the target's density, the NF's for each K, the CNF's for each M,
   and the loss against K / M (log scale). */
static int write_figure(const char *path, int nt, const int *tg, size_t ns,
                        const size_t *sizes, const int *use, result (*res)[2][NSIZE_MAX])
{
    const double P = 190;
    const int ncol = (int)(1 + 2 * ns + 1);
    ex_svg s;
    if (ex_svg_begin(&s, path, P * ncol, P * nt + 24) != 0)
        return -1;
    for (int t = 0; t < nt; t++) {
        double y = 4 + P * t;
        char title[64];
        float tgt[GRID * GRID];
        double mx = 0;
        for (int i = 0; i < GRID; i++)
            for (int j = 0; j < GRID; j++) {
                double z[2] = { -4 + (j + 0.5) * 8.0 / GRID, -4 + (i + 0.5) * 8.0 / GRID };
                mx = fmax(mx, tgt[i * GRID + j] = (float)exp(-potential(tg[t], z, NULL)));
            }
        for (int c = 0; c < GRID * GRID; c++)
            tgt[c] = (float)(tgt[c] / mx);
        snprintf(title, sizeof title, "target exp(-U%d)", tg[t]);
        ex_svg_panel(&s, 0, y, P, P, -4, 4, -4, 4, title, "", "");
        draw_density(&s, tgt);
        for (int kind = 0; kind < 2; kind++)
            for (size_t k = 0; k < ns; k++) {
                const result *r = &res[t][kind][k];
                snprintf(title, sizeof title, "%s %s=%zu: %.3f", kind ? "CNF" : "NF",
                         kind ? "M" : "K", sizes[k], r->loss);
                ex_svg_panel(&s, P * (double)(1 + kind * ns + k), y, P, P, -4, 4, -4, 4,
                             use[kind] && r->done ? title : "(not run)", "", "");
                if (use[kind] && r->done)
                    draw_density(&s, r->hist);
            }
        double lo = INFINITY, hi = -INFINITY, lx[NSIZE_MAX], ly[2][NSIZE_MAX];
        for (size_t k = 0; k < ns; k++) {
            lx[k] = log2((double)sizes[k]);
            for (int kind = 0; kind < 2; kind++) {
                const result *r = &res[t][kind][k];
                ly[kind][k] = use[kind] && r->done ? r->loss : NAN;
                if (isfinite(ly[kind][k])) {
                    lo = fmin(lo, ly[kind][k]);
                    hi = fmax(hi, ly[kind][k]);
                }
            }
        }
        if (!(hi > lo)) {
            lo = isfinite(lo) ? lo - 1 : 0;
            hi = lo + 2;
        }
        double pad = 0.1 * (hi - lo);
        ex_svg_panel(&s, P * (ncol - 1), y, P, P, lx[0] - 0.3, lx[ns - 1] + 0.3, lo - pad,
                     hi + pad, "loss vs log2 K/M", "log2 K, log2 M", "loss");
        ex_svg_line(&s, ns, lx, 1, ly[0], 1, "#e07b1a", 2, "6 4");
        ex_svg_line(&s, ns, lx, 1, ly[1], 1, "#1f5fbf", 2, NULL);
        for (size_t k = 0; k < ns; k++) {
            if (isfinite(ly[0][k]))
                ex_svg_dot(&s, lx[k], ly[0][k], 3, "#e07b1a");
            if (isfinite(ly[1][k]))
                ex_svg_dot(&s, lx[k], ly[1][k], 3, "#1f5fbf");
        }
        const char *lab[2] = { "NF", "CNF" }, *col[2] = { "#e07b1a", "#1f5fbf" },
                   *dash[2] = { "6 4", NULL };
        ex_svg_legend(&s, 2, lab, col, dash);
    }
    ex_svg_text(&s, P * ncol - 8, P * nt + 18, 10, "end", "#888",
                "libnode cnf_match: KL(q||p) - log Z on a fresh sample; density = histogram "
                "of the sample");
    return ex_svg_end(&s);
}

/* ---- main: targets → models → training → final losses → figure → JSON ------------ */

/* "1,2,3" into v (at most max values, each in [lo, hi]); the count, or −1. */
static int parse_list(const char *s, long *v, int max, long lo, long hi)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < lo || x > hi || n == max || (*end && *end != ','))
            return -1;
        v[n++] = x;
        s = *end ? end + 1 : end;
        if (*end && !*s)
            return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    long iters = 500, nf_iters = 0, batch = 128, seed = 1, eval = 20000;
    double lr_nf = 3e-3, lr_cnf = 1e-2, lr_min = -1, mom_nf = 0.9, rtol = 1e-5, atol = 1e-5;
    double eval_tol = 1e-8;
    const char *targets = "1,2,3,4", *sizes_s = "2,8,32", *models = "nf,cnf";
    const char *sched_s = "cosine", *nf_optim_s = "rmsprop";
    const char *out_dir = "cnf_match_out";
    const ex_arg args[] = {
        { "--iters", EX_LONG, &iters, "N", "training iterations of the CNF (the paper: 10,000)" },
        { "--nf-iters", EX_LONG, &nf_iters, "N", "training iterations of the NF (0: 10x --iters; the paper: 500,000, 50x)" },
        { "--batch", EX_LONG, &batch, "B", "samples per iteration" },
        { "--seed", EX_LONG, &seed, "S", "seed of the weights and the samples" },
        { "--targets", EX_STRING, &targets, "LIST", "potentials of Rezende & Mohamed's Table 1, from 1,2,3,4" },
        { "--sizes", EX_STRING, &sizes_s, "LIST", "NF layers K and CNF units M" },
        { "--models", EX_STRING, &models, "LIST", "nf, cnf or nf,cnf" },
        { "--nf-optim", EX_STRING, &nf_optim_s, "O", "the NF's optimizer: rmsprop (Rezende & Mohamed, as the paper) | adam | sgd | adamw" },
        { "--nf-momentum", EX_DOUBLE, &mom_nf, "MU", "the NF's momentum (rmsprop, sgd; Rezende & Mohamed: 0.9)" },
        { "--lr-nf", EX_DOUBLE, &lr_nf, "LR", "the NF's learning rate" },
        { "--lr-cnf", EX_DOUBLE, &lr_cnf, "LR", "the CNF's learning rate (Adam, as the paper)" },
        { "--sched", EX_STRING, &sched_s, "S", "learning-rate schedule of both: constant | cosine (each rate to --lr-min over its run) | step (x0.1 every third of the run)" },
        { "--lr-min", EX_DOUBLE, &lr_min, "LR", "cosine: the final rate of both models (< 0: 1% of each one's rate)" },
        { "--rtol", EX_DOUBLE, &rtol, "R", "CNF: dopri5's relative tolerance in training" },
        { "--atol", EX_DOUBLE, &atol, "A", "CNF: dopri5's absolute tolerance in training" },
        { "--eval-tol", EX_DOUBLE, &eval_tol, "TOL", "CNF: dopri5's rtol = atol for the final losses" },
        { "--eval", EX_LONG, &eval, "N", "fresh samples for the final losses" },
        { "--out", EX_STRING, &out_dir, "DIR", "output folder" },
    };
    int pr = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                           "Density matching (Fig. 4 of Chen et al. 2018): planar CNF vs planar NF.  "
                           "With no arguments: 500 CNF and 5,000 NF iterations on U1-U4 (about a "
                           "minute); the README's tables: --iters 10000 --nf-iters 50000 (the paper's CNF budget; the CNF is then lower in 9 of 12 pairs) and --nf-iters 500000 (both at the paper's budgets: 7 of 12).");
    if (pr != EX_ARGS_OK)
        return pr == EX_ARGS_HELP ? 0 : 2;
    long tl[NTARGET], sl[NSIZE_MAX];
    int nt = parse_list(targets, tl, NTARGET, 1, NTARGET);
    int ns = parse_list(sizes_s, sl, NSIZE_MAX, 1, 4096);
    if (nt < 1)
        return ex_args_fail(argv[0], "--targets '%s': a comma-separated list of 1..4", targets);
    if (ns < 1)
        return ex_args_fail(argv[0], "--sizes '%s': a comma-separated list of up to %d "
                            "numbers in 1..4096", sizes_s, NSIZE_MAX);
    int use[2] = { strstr(models, "nf") == models || strstr(models, ",nf") != NULL,
                   strstr(models, "cnf") != NULL };
    if ((!use[0] && !use[1]) || (strcmp(models, "nf") && strcmp(models, "cnf")
                                 && strcmp(models, "nf,cnf") && strcmp(models, "cnf,nf")))
        return ex_args_fail(argv[0], "--models '%s': nf, cnf or nf,cnf", models);
    if (iters < 0 || nf_iters < 0 || batch < 2 || eval < 2)
        return ex_args_fail(argv[0], "--iters and --nf-iters must be >= 0, --batch and "
                            "--eval >= 2");
    if (nf_iters == 0)
        nf_iters = 10 * iters;
    if (!(lr_nf >= 0) || !(lr_cnf >= 0) || !(rtol > 0) || !(atol > 0) || !(eval_tol > 0)
        || !(mom_nf >= 0))
        return ex_args_fail(argv[0], "--lr-nf, --lr-cnf and --nf-momentum must be >= 0, "
                            "--rtol, --atol and --eval-tol > 0");
    node_optim_kind nf_optim;
    if (node_optim_parse(nf_optim_s, &nf_optim) != NODE_OK)
        return ex_args_fail(argv[0], "unknown --nf-optim '%s' (rmsprop, adam, sgd, adamw)",
                            nf_optim_s);
    /* one schedule per model: each decays over its own run */
    node_sched sched[2];
    char why[160];
    for (int kind = 0; kind < 2; kind++) {
        double lr = kind ? lr_cnf : lr_nf;
        if (ex_sched_make(sched_s, lr, lr_min < 0 ? 0.01 * lr : lr_min, 0, 0.1,
                          kind ? iters : nf_iters, &sched[kind], why, sizeof why))
            return ex_args_fail(argv[0], "%s%s", why, kind ? " (--lr-cnf)" : " (--lr-nf)");
    }
    int bad = check_potentials();
    if (bad) {
        fprintf(stderr, "cnf_match: the gradient of U%d disagrees with finite differences\n", bad);
        return 1;
    }
    char svg_path[4096];
    if (ex_path_join(svg_path, sizeof svg_path, out_dir, "cnf_match.svg"))
        return ex_args_fail(argv[0], "--out path too long");
    if (ex_mkdir_p(out_dir) != 0) {
        fprintf(stderr, "cnf_match: --out %s: %s\n", out_dir, strerror(errno));
        return 2;
    }

    int tg[NTARGET], status = 1;
    size_t sizes[NSIZE_MAX];
    for (int t = 0; t < nt; t++)
        tg[t] = (int)tl[t];
    for (int k = 0; k < ns; k++)
        sizes[k] = (size_t)sl[k];
    const size_t B = (size_t)batch, NE = (size_t)eval, NB = NE > B ? NE : B;
    node_cnf_options copt = node_cnf_options_default();
    copt.ode.rtol = rtol;
    copt.ode.atol = atol;
    copt.t0 = 0;
    copt.t1 = 1;
    result (*res)[2][NSIZE_MAX] = calloc((size_t)nt, sizeof *res);
    double *z0 = malloc(NB * 2 * sizeof *z0), *x = malloc(NB * 2 * sizeof *x);
    double *dl = malloc(NB * sizeof *dl), *gx = malloc(B * 2 * sizeof *gx);
    double *gl = malloc(B * sizeof *gl), *g = NULL, logz[NTARGET];
    model m = { 0 };
    node_optim *opt = NULL;
    if (!res || !z0 || !x || !dl || !gx || !gl)
        goto oom;
    for (int t = 0; t < nt; t++)
        logz[t] = log_z(tg[t]);

    ex_rng rng;
    ex_progress prog;
    long done_its = 0;
    ex_progress_start(&prog, stderr, (long)nt * ns * (use[0] * (nf_iters + 1) + use[1] * (iters + 1)));
    char msg[NODE_MESSAGE_SIZE] = "";
    node_error err;
    for (int t = 0; t < nt; t++)
        for (int kind = 0; kind < 2; kind++)
            for (int k = 0; k < ns && use[kind]; k++) {
                result *r = &res[t][kind][k];
                double t_start = ex_clock();
                const char *name = kind ? "CNF" : "NF", *sym = kind ? "M" : "K";
                /* each run its own streams: the same numbers whichever runs go with it */
                uint64_t rs = (uint64_t)seed * 1000 + (uint64_t)(100 * tg[t] + 10 * kind + k);
                ex_rng_seed(&rng, rs);
                node_status st = model_make(&m, kind ? MODEL_CNF : MODEL_NF, sizes[k], B,
                                            &copt, rs, &err);
                if (st != NODE_OK) {
                    fprintf(stderr, "cnf_match: %s %s=%zu: %s\n", name, sym, sizes[k],
                            err.message[0] ? err.message : node_strerror(st));
                    goto done;
                }
                node_optim_config oc;
                node_optim_defaults(kind ? NODE_OPTIM_ADAM : nf_optim, &oc);
                oc.lr = kind ? lr_cnf : lr_nf;
                if (!kind && (nf_optim == NODE_OPTIM_RMSPROP || nf_optim == NODE_OPTIM_SGD))
                    oc.momentum = mom_nf;
                free(g);
                g = malloc(m.np * sizeof *g);
                if (!g || node_optim_create(&opt, m.np, &oc) != NODE_OK)
                    goto oom;
                double loss = NAN, se;
                const long its = kind ? iters : nf_iters;
                for (long it = 1; it <= its; it++) {
                    if ((st = node_optim_schedule(opt, &sched[kind], it - 1)) != NODE_OK)
                        break;
                    for (size_t i = 0; i < 2 * B; i++)
                        z0[i] = ex_rng_normal(&rng, 0, 1);
                    if ((st = model_push(&m, B, z0, x, dl, msg)) != NODE_OK)
                        break;
                    loss_terms(tg[t], B, z0, x, dl, &loss, &se);
                    for (size_t i = 0; i < B; i++) {
                        potential(tg[t], x + 2 * i, gx + 2 * i);
                        gx[2 * i] /= (double)B;
                        gx[2 * i + 1] /= (double)B;
                        gl[i] = 1.0 / (double)B;
                    }
                    if ((st = model_grad(&m, B, z0, x, dl, gx, gl, g, msg)) != NODE_OK)
                        break;
                    node_status so = node_optim_step(opt, m.theta, g);
                    if (so != NODE_OK && so != NODE_ENONFINITE) {   /* skip a bad batch */
                        st = so;
                        break;
                    }
                    ex_progress_draw(&prog, done_its + it, 0,
                                     "U%d %s %s=%zu it %ld/%ld loss %.3f", tg[t], name, sym,
                                     sizes[k], it, its, loss);
                }
                if (st != NODE_OK) {
                    fprintf(stderr, "\ncnf_match: U%d %s %s=%zu: %s\n", tg[t], name, sym,
                            sizes[k], msg[0] ? msg : node_strerror(st));
                    goto done;
                }
                /* the final loss on a fresh sample; the CNF's at the training tolerance
                   too, to show how much the solver's error moves it */
                for (size_t i = 0; i < 2 * NE; i++)
                    z0[i] = ex_rng_normal(&rng, 0, 1);
                if (kind) {
                    double lt, set;
                    node_cnf_options eo = copt;
                    eo.ode.rtol = eo.ode.atol = eval_tol;
                    if ((st = model_push(&m, NE, z0, x, dl, msg)) == NODE_OK) {
                        loss_terms(tg[t], NE, z0, x, dl, &lt, &set);
                        r->tol_shift = lt;
                        st = node_cnf_set_options(m.cnf, &eo, &err);
                        if (st != NODE_OK)
                            snprintf(msg, sizeof msg, "%s", err.message);
                    }
                }
                if (st != NODE_OK || (st = model_push(&m, NE, z0, x, dl, msg)) != NODE_OK) {
                    fprintf(stderr, "\ncnf_match: U%d %s %s=%zu, evaluation: %s\n", tg[t],
                            name, sym, sizes[k], msg[0] ? msg : node_strerror(st));
                    goto done;
                }
                loss_terms(tg[t], NE, z0, x, dl, &r->loss, &r->se);
                r->tol_shift = kind ? r->tol_shift - r->loss : 0;
                r->kl = r->loss + logz[t];
                histogram(NE, x, r->hist);
                r->seconds = ex_clock() - t_start;
                r->nfe = m.nfe;
                r->done = 1;
                done_its += its + 1;
                ex_progress_draw(&prog, done_its, 1,
                                 "U%d %s %s=%zu: loss %.4f ± %.4f (KL %.4f) in %.1f s", tg[t],
                                 name, sym, sizes[k], r->loss, r->se, r->kl, r->seconds);
                node_optim_free(opt);
                opt = NULL;
                model_free(&m);
            }
    double seconds = ex_progress_end(&prog);

    /* the table */
    printf("Final loss E[log q(x) + U(x)] = KL(q||p) - log Z on %zu fresh samples "
           "(± one standard error); lower is better.\n", NE);
    printf("NF: K planar layers, %ld iterations of %s lr %g", nf_iters,
           node_optim_name(nf_optim), lr_nf);
    if (nf_optim == NODE_OPTIM_RMSPROP || nf_optim == NODE_OPTIM_SGD)
        printf(" momentum %g", mom_nf);
    printf(" (%s); CNF: M units, %ld iterations of adam lr %g (%s), dopri5 rtol %g atol %g, "
           "final losses at %g.  Batch %ld.\n", sched_s, iters, lr_cnf, sched_s, rtol, atol,
           eval_tol, batch);
    printf("%-6s %-5s", "target", "model");
    for (int k = 0; k < ns; k++)
        printf("  %8s=%-4zu        ", use[1] && !use[0] ? "M" : "K|M", sizes[k]);
    printf("  log Z\n");
    for (int t = 0; t < nt; t++)
        for (int kind = 0; kind < 2; kind++) {
            if (!use[kind])
                continue;
            printf("U%-5d %-5s", tg[t], kind ? "CNF" : "NF");
            for (int k = 0; k < ns; k++)
                printf("  %9.4f ± %-7.4f", res[t][kind][k].loss, res[t][kind][k].se);
            printf("  %.4f\n", logz[t]);
        }
    if (write_figure(svg_path, nt, tg, (size_t)ns, sizes, use, res) != 0)
        fprintf(stderr, "cnf_match: could not write %s: %s\n", svg_path, strerror(errno));
    else
        printf("figure: %s\n", svg_path);

    /* JSON: results as [{target, model, size, loss, se, kl, seconds, nfe}, ...] */
    size_t cap = 256 + (size_t)nt * 2 * ns * 260, len = 0;
    char *arr = malloc(cap);
    if (!arr)
        goto oom;
    len += (size_t)snprintf(arr + len, cap - len, "[");
    int cnf_lower = 0, pairs = 0;
    for (int t = 0; t < nt; t++)
        for (int k = 0; k < ns; k++) {
            for (int kind = 0; kind < 2; kind++) {
                const result *r = &res[t][kind][k];
                if (!use[kind])
                    continue;
                len += (size_t)snprintf(arr + len, cap - len,
                                        "%s{\"target\": \"U%d\", \"model\": \"%s\", \"size\": %zu, "
                                        "\"loss\": %.6g, \"se\": %.3g, \"kl\": %.6g, "
                                        "\"seconds\": %.3g, \"nfe\": %lld, \"tol_shift\": %.3g}",
                                        len > 1 ? ", " : "", tg[t], kind ? "cnf" : "nf",
                                        sizes[k], r->loss, r->se, r->kl, r->seconds,
                                        (long long)r->nfe, r->tol_shift);
            }
            if (use[0] && use[1]) {
                pairs++;
                cnf_lower += res[t][1][k].loss < res[t][0][k].loss;
            }
        }
    snprintf(arr + len, cap - len, "]");
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "cnf_match");
    ex_json_int(&j, "iters", iters);
    ex_json_int(&j, "nf_iters", nf_iters);
    ex_json_str(&j, "cnf_optim", "adam");
    ex_json_str(&j, "nf_optim", node_optim_name(nf_optim));
    ex_json_num(&j, "lr_cnf", lr_cnf);
    ex_json_num(&j, "lr_nf", lr_nf);
    ex_json_str(&j, "sched", sched_s);
    ex_json_num(&j, "lr_min_cnf", sched[1].kind == NODE_SCHED_COSINE ? sched[1].lr_min : lr_cnf);
    ex_json_num(&j, "lr_min_nf", sched[0].kind == NODE_SCHED_COSINE ? sched[0].lr_min : lr_nf);
    ex_json_num(&j, "rtol", rtol);
    ex_json_num(&j, "atol", atol);
    ex_json_num(&j, "eval_tol", eval_tol);
    ex_json_int(&j, "batch", batch);
    ex_json_int(&j, "seed", seed);
    ex_json_int(&j, "eval", eval);
    ex_json_raw(&j, "results", arr);
    if (pairs) {
        ex_json_int(&j, "cnf_lower", cnf_lower);
        ex_json_int(&j, "pairs", pairs);
    }
    ex_json_num(&j, "seconds", seconds);
    ex_json_end(&j);
    free(arr);
    status = 0;
    goto done;
oom:
    fprintf(stderr, "cnf_match: out of memory\n");
done:
    node_optim_free(opt);
    model_free(&m);
    free(res);
    free(z0);
    free(x);
    free(dl);
    free(gx);
    free(gl);
    free(g);
    return status;
}
