/* bench_cnf.c — exact trace against Hutchinson's estimator (FFJORD, Grathwohl et al.
 * 2019) for a CNF with MLP dynamics (D-W-W-W-D tanh, t as an input) on a synthetic
 * Gaussian mixture in D = 2, 8, 32 dimensions (4 components, centres at distance 2 from
 * the origin in random directions, std 0.5 per coordinate), base N(0, I), t in [0, 1],
 * dopri5 at rtol = atol = 1e-5, adjoint gradients, Adam 1e-3.  For each D and trace:
 *   - gradient variance at fixed θ (the initial weights): over K probe draws on one
 *     batch (Hutchinson), and over K batches (the minibatch noise every method has),
 *     as E|g − ḡ|² / |ḡ|²; and the bias |ḡ_probes − g_exact| / |g_exact| (unbiased:
 *     ~ √(variance / K));
 *   - the test NLL (exact trace, 2000 held-out points) after N iterations from the
 *     same start, and the time and NFE per iteration.
 * Prints a Markdown table; no assertions.  One thread.
 * Run: ./bench_cnf [--iters N] [--K K] [--batch B] [--width W] [--dims 2,8,32] [--quick]
 */
#include <libnode.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "progress.h"
#include "rng.h"

typedef struct mixture {
    size_t D;
    double centre[4][64];
} mixture;

static void mixture_init(mixture *m, size_t D, uint64_t seed)
{
    ex_rng r;
    ex_rng_seed(&r, seed);
    m->D = D;
    for (int k = 0; k < 4; k++) {
        double n = 0;
        for (size_t i = 0; i < D; i++) {
            m->centre[k][i] = ex_rng_normal(&r, 0, 1);
            n += m->centre[k][i] * m->centre[k][i];
        }
        for (size_t i = 0; i < D; i++)
            m->centre[k][i] *= 2 / sqrt(n);
    }
}

static void mixture_sample(const mixture *m, ex_rng *r, size_t n, double *x)
{
    for (size_t j = 0; j < n; j++) {
        size_t k = ex_rng_below(r, 4);
        for (size_t i = 0; i < m->D; i++)
            x[j * m->D + i] = m->centre[k][i] + ex_rng_normal(r, 0, 0.5);
    }
}

/* E|g_k − ḡ|² / |ḡ|² over K gradients (rows of g, n each); ḡ into mean. */
static double rel_variance(size_t K, size_t n, const double *g, double *mean)
{
    double v = 0, m2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t k = 0; k < K; k++)
            s += g[k * n + i];
        mean[i] = s / (double)K;
        m2 += mean[i] * mean[i];
        for (size_t k = 0; k < K; k++)
            v += (g[k * n + i] - mean[i]) * (g[k * n + i] - mean[i]);
    }
    return v / (double)(K - 1) / m2;
}

typedef struct result {
    double var_probe, var_batch, bias, nll0, nll, ms, nfe_f, nfe_b;
} result;

/* One D and one trace kind. */
static int run(size_t D, node_trace_kind trace, const mixture *mix, long iters, size_t K,
               size_t B, size_t W, result *res)
{
    int rc = -1;
    const size_t sizes[5] = { D, W, W, W, D }, NT = 2000;
    const node_activation acts[4] = { NODE_ACT_TANH, NODE_ACT_TANH, NODE_ACT_TANH,
                                      NODE_ACT_IDENTITY };
    node_mlp *m = NULL;
    node_cnf *c = NULL;
    node_optim *opt = NULL;
    node_error err;
    err.message[0] = '\0';
    double *x = NULL, *test = NULL, *g = NULL, *gmean = NULL, *gex = NULL, *lp = NULL;
    if (node_mlp_create_ex(&m, 4, sizes, acts, 1, &err) != NODE_OK)
        goto done;
    node_mlp_init(m, 3);
    node_flow flow;
    if (node_mlp_flow(m, B, &flow) != NODE_OK)
        goto done;
    const size_t np = node_mlp_nparams(m);
    double *theta = node_mlp_params(m);
    node_cnf_options co = node_cnf_options_default();
    co.ode.rtol = co.ode.atol = 1e-5;
    co.t0 = 0;
    co.t1 = 1;
    co.base_var = 1;
    co.trace = NODE_TRACE_EXACT;
    co.seed = 11;
    if (node_cnf_create(&c, &flow, B, &co, &err) != NODE_OK)
        goto done;
    x = malloc(K * B * D * sizeof *x);
    test = malloc(NT * D * sizeof *test);
    g = malloc(K * np * sizeof *g);
    gmean = malloc(np * sizeof *gmean);
    gex = malloc(np * sizeof *gex);
    lp = malloc(NT * sizeof *lp);
    if (!x || !test || !g || !gmean || !gex || !lp)
        goto done;
    ex_rng r;
    ex_rng_seed(&r, 100 + D);
    mixture_sample(mix, &r, NT, test);
    mixture_sample(mix, &r, K * B, x);
    double nll;

    /* Gradients at the initial θ: the exact one on batch 0, K over the batches (exact),
       K over probes on batch 0 (Hutchinson). */
    if (node_cnf_nll(c, B, x, &nll, gex, NULL, NULL, NULL) != NODE_OK)
        goto done;
    for (size_t k = 0; k < K; k++)
        if (node_cnf_nll(c, B, x + k * B * D, &nll, g + k * np, NULL, NULL, NULL) != NODE_OK)
            goto done;
    res->var_batch = rel_variance(K, np, g, gmean);
    res->var_probe = res->bias = 0;
    if (trace != NODE_TRACE_EXACT) {
        co.trace = trace;
        if (node_cnf_set_options(c, &co, &err) != NODE_OK)
            goto done;
        for (size_t k = 0; k < K; k++) {
            node_cnf_seed(c, 1000 + k);
            if (node_cnf_nll(c, B, x, &nll, g + k * np, NULL, NULL, NULL) != NODE_OK)
                goto done;
        }
        res->var_probe = rel_variance(K, np, g, gmean);
        double d = 0, n = 0;
        for (size_t i = 0; i < np; i++) {
            d += (gmean[i] - gex[i]) * (gmean[i] - gex[i]);
            n += gex[i] * gex[i];
        }
        res->bias = sqrt(d / n);
    }

    /* Training from the same start, test NLL with the exact trace. */
    co.trace = NODE_TRACE_EXACT;
    if (node_cnf_set_options(c, &co, &err) != NODE_OK ||
        node_cnf_log_prob(c, NT, test, lp, NULL) != NODE_OK)
        goto done;
    res->nll0 = 0;
    for (size_t i = 0; i < NT; i++)
        res->nll0 -= lp[i] / (double)NT;
    co.trace = trace;
    node_optim_config oc;
    node_optim_defaults(NODE_OPTIM_ADAM, &oc);
    if (node_cnf_set_options(c, &co, &err) != NODE_OK ||
        node_optim_create(&opt, np, &oc) != NODE_OK)
        goto done;
    double t = 0, nf = 0, nb = 0;
    for (long it = 0; it < iters; it++) {
        mixture_sample(mix, &r, B, x);
        int64_t f, b;
        double t0 = ex_clock();
        if (node_cnf_nll(c, B, x, &nll, g, &f, &b, NULL) != NODE_OK)
            goto done;
        node_optim_step(opt, theta, g);
        t += ex_clock() - t0;
        nf += (double)f;
        nb += (double)b;
    }
    res->ms = iters ? 1e3 * t / (double)iters : NAN;
    res->nfe_f = iters ? nf / (double)iters : NAN;
    res->nfe_b = iters ? nb / (double)iters : NAN;
    co.trace = NODE_TRACE_EXACT;
    if (node_cnf_set_options(c, &co, &err) != NODE_OK ||
        node_cnf_log_prob(c, NT, test, lp, NULL) != NODE_OK)
        goto done;
    res->nll = 0;
    for (size_t i = 0; i < NT; i++)
        res->nll -= lp[i] / (double)NT;
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bench_cnf: D = %zu, %s: failed %s\n", D, node_trace_name(trace),
                err.message);
    node_optim_free(opt);
    node_cnf_free(c);
    node_mlp_free(m);
    free(x);
    free(test);
    free(g);
    free(gmean);
    free(gex);
    free(lp);
    return rc;
}

int main(int argc, char **argv)
{
    long iters = 200, K = 16, batch = 256, width = 64;
    int quick = 0;
    const char *dims_s = "2,8,32";
    const ex_arg args[] = {
        { "--iters", EX_LONG, &iters, "N", "training iterations per run" },
        { "--K", EX_LONG, &K, "K", "gradients per variance estimate" },
        { "--batch", EX_LONG, &batch, "B", "points per batch" },
        { "--width", EX_LONG, &width, "W", "hidden width of the MLP" },
        { "--dims", EX_STRING, &dims_s, "D,..", "dimensions (each <= 64)" },
        { "--quick", EX_FLAG, &quick, NULL, "a smoke run: D = 2, 8; 3 iterations, K = 3, batch 32" },
    };
    int r = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                          "Exact trace vs Hutchinson's estimator for an MLP CNF: gradient "
                          "variance, NLL reached and time per iteration for D = 2, 8, 32.");
    if (r != EX_ARGS_OK)
        return r == EX_ARGS_HELP ? 0 : 2;
    if (quick) {
        iters = 3;
        K = 3;
        batch = 32;
        width = 16;
        dims_s = "2,8";
    }
    if (iters < 0 || K < 2 || batch < 1 || width < 1)
        return ex_args_fail(argv[0], "need --iters >= 0, --K >= 2, --batch and --width >= 1");
    size_t dims[8], nd = 0;
    for (const char *p = dims_s; *p && nd < 8;) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || d < 1 || d > 64 || (*end && *end != ','))
            return ex_args_fail(argv[0], "--dims takes up to 8 numbers in 1..64, comma-separated");
        dims[nd++] = (size_t)d;
        p = *end ? end + 1 : end;
    }
    printf("MLP D-%ld-%ld-%ld-D tanh (t an input), 4-Gaussian mixture, batch %ld, base N(0, I), "
           "t in [0, 1], dopri5 rtol = atol = 1e-5, adjoint, Adam 1e-3, %ld iterations; "
           "variances over K = %ld; kernels %s\n\n", width, width, width, batch, iters, K,
           node_isa_name());
    printf("| D | trace | grad var (probes) | grad var (batches) | bias of probe mean | "
           "test NLL start | test NLL after | ms / iter | NFE fwd | NFE bwd |\n"
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    fflush(stdout);
    static const node_trace_kind kinds[3] = { NODE_TRACE_EXACT, NODE_TRACE_RADEMACHER,
                                              NODE_TRACE_GAUSSIAN };
    for (size_t d = 0; d < nd; d++) {
        mixture mix;
        mixture_init(&mix, dims[d], 7 + dims[d]);
        for (int k = 0; k < 3; k++) {
            result res;
            if (run(dims[d], kinds[k], &mix, iters, (size_t)K, (size_t)batch, (size_t)width,
                    &res) != 0)
                return 1;
            char vp[32] = "0", bi[32] = "0";
            if (kinds[k] != NODE_TRACE_EXACT) {
                snprintf(vp, sizeof vp, "%.3g", res.var_probe);
                snprintf(bi, sizeof bi, "%.3g", res.bias);
            }
            printf("| %zu | %s | %s | %.3g | %s | %.4f | %.4f | %.1f | %.0f | %.0f |\n",
                   dims[d], node_trace_name(kinds[k]), vp, res.var_batch, bi, res.nll0,
                   res.nll, res.ms, res.nfe_f, res.nfe_b);
            fflush(stdout);
        }
    }
    return 0;
}
