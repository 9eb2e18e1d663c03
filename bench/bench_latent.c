/* bench_latent.c — the latent ODE in the paper's setting (Chen et al. 2018, Section 5;
 * torchdiffeq's examples/latent_ode.py): 2-D spirals as its generate_spiral2d makes
 * them (Archimedean, clockwise or counter-clockwise, a = 0, b = 0.3, noise σ 0.3), each
 * sampled at nt consecutive points of a 1000-point grid on [0, 6π] from a random
 * start; the paper's model sizes (latent 4, RNN 25, f and g 20, σ_obs 0.3); dopri5 at
 * rtol 1e-7, atol 1e-9 (torchdiffeq's defaults).
 *   1. Peak memory (growth of the peak RSS) of one training iteration as nt grows,
 *      each in a fresh process (fork + exec), adjoint vs backprop.
 *   2. Time per training iteration (loss, gradient, Adam step) for a batch of B
 *      spirals on nt = 100 shared times, adjoint vs exact backprop.
 * Prints Markdown tables; no assertions.  One thread.
 * Run: ./bench_latent [--B 1000] [--iters 3] [--mem-B 100] [--no-mem] [--no-time] [--quick]
 */
#define _POSIX_C_SOURCE 200809L
#include <libnode.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "rng.h"

#define PI 3.14159265358979323846

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The peak resident set of this process image, in KiB: Linux's VmHWM (of this
   address space only), else ru_maxrss (which Linux carries across exec from the
   parent's RSS at fork, so the parent keeps small: the memory sweep runs first). */
static long maxrss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kib = -1;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "VmHWM:", 6) == 0) {
                kib = strtol(line + 6, NULL, 10);
                break;
            }
        fclose(f);
        if (kib >= 0)
            return kib;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;   /* KiB on Linux */
}

/* ---- data: generate_spiral2d of latent_ode.py ----------------------------------------- */

typedef struct batch {
    size_t B, nt;
    double *ts, *xs, *eps;
    unsigned char *mask;
} batch;

static void batch_free(batch *d)
{
    free(d->ts);
    free(d->xs);
    free(d->eps);
    free(d->mask);
}

/* B spirals on nt shared times (all observed): a grid spaced as 1000 points on [0, 6π]
   (longer when nt needs it), each from a random start in [nt, total − 2 nt]. */
static int make_batch(batch *d, size_t B, size_t nt, uint64_t seed)
{
    const double dt = 6 * PI / 999;
    size_t total = nt * 4 > 1000 ? nt * 4 : 1000;
    double stop = dt * (double)(total - 1);
    d->B = B;
    d->nt = nt;
    d->ts = malloc(nt * sizeof *d->ts);
    d->xs = malloc(nt * B * 2 * sizeof *d->xs);
    d->eps = malloc(B * 4 * sizeof *d->eps);
    d->mask = malloc(nt * B);
    if (!d->ts || !d->xs || !d->eps || !d->mask)
        return -1;
    ex_rng r;
    ex_rng_seed(&r, seed);
    for (size_t i = 0; i < nt; i++)
        d->ts[i] = dt * (double)i;
    memset(d->mask, 1, nt * B);
    for (size_t b = 0; b < B; b++) {
        size_t t0 = nt + ex_rng_below(&r, total - 3 * nt + 1);
        int cw = ex_rng_uniform(&r) < 0.5;
        for (size_t i = 0; i < nt; i++) {
            double t = dt * (double)(t0 + i), x, y;
            if (cw) {   /* zs = stop + 1 − t, r = a + b·50/zs, centre (−5, 0) */
                double z = stop + 1 - t, rr = 0.3 * 50 / z;
                x = rr * cos(z) - 5;
                y = rr * sin(z);
            } else {    /* zs = t, r = a + b·zs, centre (5, 0) */
                double rr = 0.3 * t;
                x = rr * cos(t) + 5;
                y = rr * sin(t);
            }
            d->xs[(i * B + b) * 2] = x + ex_rng_normal(&r, 0, 0.3);
            d->xs[(i * B + b) * 2 + 1] = y + ex_rng_normal(&r, 0, 0.3);
        }
    }
    for (size_t k = 0; k < B * 4; k++)
        d->eps[k] = ex_rng_normal(&r, 0, 1);
    return 0;
}

/* ---- one training setup ---------------------------------------------------------------- */

typedef struct trainer {
    node_latent *m;
    node_solver *s;
    node_optim *o;
    double *grad;
    node_options opt;
} trainer;

static void trainer_free(trainer *t)
{
    node_optim_free(t->o);
    node_solver_free(t->s);
    node_latent_free(t->m);
    free(t->grad);
}

static int trainer_init(trainer *t)
{
    memset(t, 0, sizeof *t);
    node_latent_config cfg;
    node_optim_config oc;
    node_error err;
    if (node_latent_defaults(2, &cfg) || node_latent_create(&t->m, &cfg, &err)) {
        fprintf(stderr, "bench_latent: node_latent_create: %s\n", err.message);
        return -1;
    }
    node_latent_init(t->m, 1);
    size_t P = node_latent_nparams(t->m);
    t->grad = malloc(P * sizeof *t->grad);
    if (!t->grad || node_solver_create(&t->s) || node_optim_defaults(NODE_OPTIM_ADAM, &oc))
        return -1;
    oc.lr = 1e-2;   /* latent_ode.py: Adam, lr 0.01 */
    if (node_optim_create(&t->o, P, &oc))
        return -1;
    t->opt = node_options_default();   /* dopri5, 1e-7, 1e-9 */
    return 0;
}

/* One iteration: −ELBO and its gradient, then an Adam step. */
static int step(trainer *t, const batch *d, node_grad_method how, node_latent_terms *terms)
{
    node_error err;
    node_status st = node_latent_loss(t->m, t->s, d->B, d->nt, d->ts, d->xs, d->mask, d->mask,
                                      d->eps, &t->opt, how, terms, t->grad, NULL, &err);
    if (st == NODE_OK)
        st = node_optim_step(t->o, node_latent_params(t->m), t->grad);
    if (st != NODE_OK) {
        fprintf(stderr, "bench_latent: %s\n", err.message[0] ? err.message : node_strerror(st));
        return -1;
    }
    return 0;
}

static const char *how_name(node_grad_method how)
{
    return how == NODE_GRAD_ADJOINT ? "adjoint" : "backprop";
}

/* ---- 1. time per iteration ----------------------------------------------------------- */

static int time_case(size_t B, size_t nt, node_grad_method how, int iters)
{
    batch d = { 0 };
    trainer t;
    int rc = -1;
    if (make_batch(&d, B, nt, 42) || trainer_init(&t))
        goto out;
    node_latent_terms terms;
    double t0 = now();
    if (step(&t, &d, how, &terms))   /* the first: workspaces grow */
        goto out;
    double first = now() - t0, sum = 0, best = INFINITY;
    double nf = 0, nb = 0;
    for (int it = 0; it < iters; it++) {
        double a = now();
        if (step(&t, &d, how, &terms))
            goto out;
        double e = now() - a;
        sum += e;
        best = fmin(best, e);
        nf += (double)terms.nfe_forward;
        nb += (double)terms.nfe_backward;
    }
    printf("| %zu | %zu | %s | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f |\n", B, nt,
           how_name(how), 1e3 * sum / iters, 1e3 * best, 1e3 * first, nf / iters,
           nb / iters, terms.loss);
    fflush(stdout);
    rc = 0;
out:
    trainer_free(&t);
    batch_free(&d);
    return rc;
}

/* ---- 2. memory of one iteration -------------------------------------------------------- */

/* One case in this process (a fresh one: main's --mem-one): set up, then one
   iteration; prints the growth of the peak RSS over the set-up. */
static int mem_one(size_t B, size_t nt, node_grad_method how)
{
    batch d = { 0 };
    trainer t;
    node_latent_terms terms;
    int rc = -1;
    if (make_batch(&d, B, nt, 7) || trainer_init(&t))
        goto out;
    long before = maxrss_kib();
    double a = now();
    if (step(&t, &d, how, &terms))
        goto out;
    double e = now() - a;
    long after = maxrss_kib();
    printf("| %zu | %zu | %s | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f |\n", B, nt,
           how_name(how), (double)(after - before) / 1024.0, (double)before / 1024.0,
           (double)after / 1024.0, 1e3 * e, (double)terms.nfe_forward,
           (double)terms.nfe_backward);
    fflush(stdout);
    rc = 0;
out:
    trainer_free(&t);
    batch_free(&d);
    return rc;
}

/* Each case in a new process image (fork + exec of this program), so that no heap
   the parent touched before counts. */
static int mem_case(const char *self, size_t B, size_t nt, node_grad_method how)
{
    char b[32], n[32], h[8];
    snprintf(b, sizeof b, "%zu", B);
    snprintf(n, sizeof n, "%zu", nt);
    snprintf(h, sizeof h, "%d", (int)how);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char *const av[] = { (char *)self, "--mem-one", b, n, h, NULL };
        execv("/proc/self/exe", av);
        execv(self, av);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--mem-one") == 0)
        return mem_one((size_t)strtoul(argv[2], NULL, 10), (size_t)strtoul(argv[3], NULL, 10),
                       (node_grad_method)atoi(argv[4])) ? 1 : 0;
    long B = 1000, memB = 100;
    int iters = 3, no_mem = 0, no_time = 0, quick = 0;
    const ex_arg args[] = {
        { "--quick", EX_FLAG, &quick, NULL, "a smoke run: batch 20, one timed iteration, no memory sweep" },
        { "--B", EX_LONG, &B, "N", "spirals per batch for the timing" },
        { "--iters", EX_INT, &iters, "N", "timed iterations after the first" },
        { "--mem-B", EX_LONG, &memB, "N", "spirals per batch for the memory sweep" },
        { "--no-mem", EX_FLAG, &no_mem, NULL, "skip the memory sweep" },
        { "--no-time", EX_FLAG, &no_time, NULL, "skip the timing" },
    };
    int pr = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                           "bench_latent: the latent ODE's training iteration, time and memory");
    if (pr == EX_ARGS_HELP)
        return 0;
    if (pr != EX_ARGS_OK)
        return 2;
    if (B < 1 || memB < 1 || iters < 1)
        return ex_args_fail(argv[0], "--B, --mem-B and --iters must be >= 1");
    if (quick) {
        B = 20;
        iters = 1;
        no_mem = 1;
    }
    printf("Latent ODE (latent 4, RNN 25, f 20-20, g 20, σ_obs 0.3), 2-D spirals, dopri5 "
           "rtol 1e-7 atol 1e-9, Adam 1e-2; libnode %s, kernels %s, one thread.\n\n",
           node_version(), node_isa_name());
    int rc = 0;
    if (!no_mem) {
        printf("Peak memory of one training iteration (first call: every workspace grows), "
               "growth of the peak RSS (VmHWM) over the set-up, a fresh process (fork + exec) each.\n\n");
        printf("| B | nt | gradient | MiB growth | MiB before | MiB after | ms | NFE fwd | "
               "NFE bwd |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
        const size_t nts[] = { 25, 50, 100, 200, 400 };
        for (size_t k = 0; k < sizeof nts / sizeof nts[0] && !rc; k++)
            for (int how = 0; how < 2 && !rc; how++)
                rc = mem_case(argv[0], (size_t)memB, nts[k], (node_grad_method)how);
        printf("\n");
    }
    if (!no_time && !rc) {
        printf("Time per training iteration (−ELBO + gradient + Adam step); mean and best "
               "of %d after a first one (which grows the workspaces).\n\n", iters);
        printf("| B | nt | gradient | ms / iter | best ms | first ms | NFE fwd | NFE bwd | "
               "−ELBO |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
        for (int how = 0; how < 2 && !rc; how++)
            rc = time_case((size_t)B, 100, (node_grad_method)how, iters);
        printf("\n");
    }
    if (rc)
        fprintf(stderr, "bench_latent: a case failed\n");
    return rc ? 1 : 0;
}
