/* bench_mlp.c — time of one MLP dynamics evaluation f and one full vjp
 * (f + aᵀ∂f/∂y + aᵀ∂f/∂θ) against batch and width, with GFLOP/s next to one
 * core's double-precision peak (frequency measured by a dependent FMA chain), and
 * the cost of every activation in the registry.
 * Run: ./bench_mlp [--quick]
 */
#define _POSIX_C_SOURCE 199309L
#include <libnode.h>
#include "nn/nn_internal.h"   /* the activation registry and kernels (bench only) */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_machine.h"
#include "bench_roofline.h"

/* Every row's times, for the roofline table after the main one. */
typedef struct {
    size_t batch, nin, width, nout;
    int direct;
    double tf, tv;
} row_result;
static row_result results[32];
static size_t nresults;

/* ---- timing one call ------------------------------------------------------------------- */

typedef struct {
    node_system sys;
    node_mlp *m;
    size_t batch;
    double *y, *a, *dydt, *vy, *vp, *vx;
    int direct;   /* through node_mlp_forward / node_mlp_vjp (the spiral's way) */
} bench_case;

static void call_f(bench_case *c)
{
    if (c->direct)
        node_mlp_forward(c->m, c->batch, 0.0, c->y, c->dydt);
    else
        c->sys.f(c->sys.ctx, 0.0, c->y, c->dydt);
}

static void call_vjp(bench_case *c)
{
    if (c->direct)
        node_mlp_vjp(c->m, c->batch, 0.0, c->y, c->a, c->dydt, c->vx, c->vp, NULL);
    else
        c->sys.vjp(c->sys.ctx, 0.0, c->y, c->a, c->dydt, c->vy, c->vp, NULL);
}

/* Best over `reps` rounds of the mean wall time of one call, each round >= min_s / 4
   (the best round filters out preemption on a shared machine). */
static double time_it(void (*fn)(bench_case *), bench_case *c, int reps, double min_s)
{
    long n = 1;
    for (;;) {
        double t0 = now();
        for (long i = 0; i < n; i++)
            fn(c);
        if (now() - t0 >= min_s / 4 || n > (1L << 28))
            break;
        n *= 2;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (long i = 0; i < n; i++)
            fn(c);
        double dt = (now() - t0) / (double)n;
        if (dt < best)
            best = dt;
    }
    return best;
}

static void row(size_t batch, size_t nin, size_t width, size_t nout, int direct, int reps,
                double min_s, double peak)
{
    size_t sizes[3] = { nin, width, nout };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    bench_case c;
    memset(&c, 0, sizeof c);
    c.batch = batch;
    c.direct = direct;
    if (node_mlp_create(&c.m, 2, sizes, acts, 0) != NODE_OK) {
        fprintf(stderr, "node_mlp_create failed\n");
        exit(1);
    }
    node_mlp_init(c.m, 42);
    if (node_mlp_reserve(c.m, batch) != NODE_OK
        || (!direct && node_mlp_system(c.m, batch, &c.sys) != NODE_OK)) {
        fprintf(stderr, "workspace allocation failed\n");
        exit(1);
    }
    c.y = filled(batch * nin, 1);
    c.a = filled(batch * nout, 2);
    c.dydt = filled(batch * nout, 3);
    c.vy = filled(batch * nin, 4);
    c.vx = c.vy;
    c.vp = filled(node_mlp_nparams(c.m), 5);
    double tf = time_it(call_f, &c, reps, min_s);
    double tv = time_it(call_vjp, &c, reps, min_s);
    double per_row = 2.0 * (double)(nin * width + width * nout);   /* forward flops */
    double gf = per_row * (double)batch / tf * 1e-9;
    double gv = 3.0 * per_row * (double)batch / tv * 1e-9;
    char net[64];
    snprintf(net, sizeof net, "%zu-%zu-%zu%s", nin, width, nout, direct ? " *" : "");
    printf("%6zu  %-14s %9.3f %11.3f %8.2f %9.2f %7.1f%%\n", batch, net, tf * 1e6, tv * 1e6,
           gf, gv, 100.0 * gv / peak);
    if (nresults < sizeof results / sizeof results[0])
        results[nresults++] = (row_result){ batch, nin, width, nout, direct, tf, tv };
    free(c.y);
    free(c.a);
    free(c.dydt);
    free(c.vy);
    free(c.vp);
    node_mlp_free(c.m);
}

/* The roofline table (bench_roofline.h): per row, the bound of f and of the vjp,
   what sets it, the time reached and the bound's share of it.  Markdown, for the
   README; the rows start with '|', apart from the main table's. */
static void roofline_table(const roof_machine *rm)
{
    printf("\n");
    roof_print_machine(rm);
    printf("\n| batch | network | f bound µs | f limit | f µs | f %% of bound "
           "| vjp bound µs | vjp limit | vjp µs | vjp %% of bound |\n");
    printf("|---:|---|---:|---|---:|---:|---:|---|---:|---:|\n");
    for (size_t r = 0; r < nresults; r++) {
        const row_result *q = &results[r];
        char lf, lv;
        int vf, vv;
        double bf = roof_mlp_bound(rm, q->nin, q->width, q->nout, q->batch, 0, &lf, &vf);
        double bv = roof_mlp_bound(rm, q->nin, q->width, q->nout, q->batch, 1, &lv, &vv);
        printf("| %zu | %zu-%zu-%zu%s | %.3f | %s | %.3f | %.0f %% | %.3f | %s | %.3f | %.0f %% |\n",
               q->batch, q->nin, q->width, q->nout, q->direct ? " *" : "", bf * 1e6,
               roof_limit_name(lf, vf), q->tf * 1e6, 100.0 * bf / q->tf, bv * 1e6,
               roof_limit_name(lv, vv), q->tv * 1e6, 100.0 * bv / q->tv);
    }
}

/* Nanoseconds per element of each activation's kernel (value and derivative) at
   the level this CPU runs, over a row of 4096 pre-activations in [-6, 6]. */
static void activation_table(int reps, double min_s)
{
    enum { N = 4096 };
    static double z[N], y[N], d[N];
    for (size_t i = 0; i < N; i++)
        z[i] = -6.0 + 12.0 * (double)i / (N - 1);
    node__isa isa = node__isa_select();
    const node__nn_kernels *kern = node__nn_kernels_for(isa);
    printf("\nactivations (%s kernels): ns per element, value + derivative\n", node__isa_name(isa));
    printf("  name        vectorized   ns/elem\n");
    for (size_t a = 0; a < NODE__NACT; a++) {
        double best = 1e30;
        long n = 1;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = now();
            for (long k = 0; k < n; k++) {
                memcpy(y, z, sizeof y);
                kern->act[a](N, y, d);
            }
            double dt = now() - t0;
            if (r == 0) {   /* calibrate: each round about min_s / 4 */
                n = dt > 0 ? (long)(min_s / 4 / dt) + 1 : 1000;
                continue;
            }
            if (dt / (double)n < best)
                best = dt / (double)n;
        }
        sink = y[N / 3] + d[N / 2];
        printf("  %-10s  %-10s  %7.2f\n", node__act_registry[a].name,
               node__act_registry[a].vectorized ? "yes" : "no (libm)", best / N * 1e9);
    }
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 2 : 7;
    double min_s = quick ? 0.004 : 0.05;

    double ghz = measure_ghz(quick ? 2000000L : 50000000L);
    double fma_rate = measure_fma_peak(quick ? 100000L : 2000000L);
    int lanes = fma_lanes() > 1 ? fma_lanes() : 8;  /* no FMA found: assume AVX-512's */
    double clock_peak = 2.0 * lanes * 2.0 * ghz;   /* 2 FMA units × lanes × 2 flops */
    /* The larger of the two estimates, so that the percentages never flatter. */
    double peak = clock_peak > fma_rate ? clock_peak : fma_rate;
    printf("libnode MLP kernels, one thread.\n");
    printf("clock (dependent FMA chain, 4-cycle latency): %.2f GHz\n", ghz);
    printf("one core's peak: 2 FMA units x %d doubles x 2 flops x %.2f GHz = %.1f GFLOP/s\n",
           lanes, ghz, clock_peak);
    printf("measured independent-FMA rate (128 lanes, compiled C, %d-wide FMA): %.1f GFLOP/s\n", lanes, fma_rate);
    printf("peak used below: the larger, %.1f GFLOP/s\n\n", peak);
    /* The roofline's compute roof is the measured rate: what this core sustains. */
    roof_machine rm = roof_measure(fma_rate * 1e9, quick);
    printf("network: in -> width (tanh) -> out (identity), i.e. two layers; square rows\n");
    printf("are width -> width -> width.  f = forward; vjp = f + a^T df/dy + a^T df/dtheta.\n");
    printf("GFLOP/s: forward 2*in*out per row per layer, vjp 6*in*out (forward + both\n");
    printf("backward products).  %% = vjp rate against the one-core peak used.\n");
    printf("* = through node_mlp_forward / node_mlp_vjp (the spiral example's calls).\n\n");
    printf(" batch  network          f [us]    vjp [us]   f GF/s  vjp GF/s  of peak\n");

    static const size_t batches[] = { 1, 20, 256, 1024 };
    static const size_t widths[] = { 2, 50, 256 };
    for (size_t w = 0; w < 3; w++)
        for (size_t b = 0; b < 4; b++) {
            if (quick && batches[b] * widths[w] * widths[w] > 256u * 256u * 256u)
                continue;
            row(batches[b], widths[w], widths[w], widths[w], 0, reps, min_s, peak);
        }
    row(20, 2, 50, 2, 1, reps, min_s, peak);
    row(20, 2, 50, 2, 0, reps, min_s, peak);
    row(256, 2, 256, 2, 1, reps, min_s, peak);   /* bench_train's wide setting */
    row(64, 2, 16, 2, 0, reps, min_s, peak);     /* narrow layers at large batch */
    row(1024, 4, 16, 4, 0, reps, min_s, peak);
    row(20, 2, 128, 2, 0, reps, min_s, peak);    /* mid sizes */
    row(256, 128, 128, 128, 0, reps, min_s, peak);
    roofline_table(&rm);
    activation_table(reps, min_s);
    printf("\nclock again at the end: %.2f GHz (turbo and other load move it; the %% column\n"
           "uses the first value)\n", measure_ghz(quick ? 2000000L : 50000000L));
    return 0;
}
