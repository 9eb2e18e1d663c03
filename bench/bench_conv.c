/* bench_conv.c — the ODE-Net's ODE-block convolution (torchdiffeq's ConcatConv2d:
 * 64 → 64 channels plus the time channel, 3 × 3, stride 1, pad 1, bias, on 6 × 6,
 * batch 128) through node_net: forward, vjp_x (aᵀ∂y/∂x) and vjp_p (aᵀ∂y/∂θ), in
 * GFLOP/s and % of the FP64 peak, on 1 and 2 threads (when the library has
 * OpenMP).  The vjp calls run the forward pass too; the products' own rates are the
 * differences:  vjp_x = t(forward + input gradient) − t(forward),  vjp_p =
 * t(forward + both) − t(forward + input gradient); each product is 2 · MACs flops,
 * MACs = 64 · 585 · 36 per sample.
 * Peak: one core's 2 FMA units × 8 doubles (AVX-512) × 2 flops × the clock measured
 * by a dependent FMA chain, or the sustained rate of independent FMAs if larger
 * (Zen 4 runs AVX-512 on 256-bit units: there the measured rate is the real peak,
 * half the formula's; both are printed).
 * Run: ./bench_conv [--quick] [--batch N] [--width C] [--rounds R]
 * Output: a table, then one JSON object as the last line.
 */
#define _POSIX_C_SOURCE 199309L
#include <libnode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_CLOCK cpu_now   /* the clock and FMA-rate loops: CPU time */
#include "bench_machine.h"

typedef struct {
    node_net *n;
    size_t batch;
    double *x, *a, *y, *gx, *gp, gt;
} conv_case;

/* Best over `rounds` of the mean time of one call (each round ~min_s): wall time in
   *wall, CPU time of the process (all threads) in *cpu. */
static void time_call(conv_case *c, int what, int rounds, double min_s, double *wall,
                      double *cpu)
{
    long reps = 1;
    *wall = *cpu = 1e30;
    for (int r = 0; r < rounds + 1; r++) {
        double t0 = now(), c0 = cpu_now();
        for (long i = 0; i < reps; i++) {
            node_status st = what == 0 ? node_net_forward(c->n, c->batch, 0.5, c->x, c->y)
                           : node_net_vjp(c->n, c->batch, 0.5, c->x, c->a, c->y, c->gx,
                                          what == 2 ? c->gp : NULL, &c->gt);
            if (st != NODE_OK) {
                fprintf(stderr, "bench_conv: call failed: %s\n", node_strerror(st));
                exit(1);
            }
        }
        double dt = (now() - t0) / (double)reps, dc = (cpu_now() - c0) / (double)reps;
        if (r == 0) {   /* calibration round: enough calls for min_s */
            reps = dt > 0 ? (long)(min_s / dt) + 1 : 1;
            continue;
        }
        *wall = dt < *wall ? dt : *wall;
        *cpu = dc < *cpu ? dc : *cpu;
    }
}

static double *filled(size_t n, unsigned seed)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = ((double)(seed >> 8) / 16777216.0) * 2.0 - 1.0;
    }
    return p;
}

int main(int argc, char **argv)
{
    int quick = 0, rounds = 5;
    size_t batch = 128, width = 64;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--width") == 0 && i + 1 < argc)
            width = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_conv [--quick] [--batch N] [--width C] [--rounds R]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (batch == 0 || width == 0 || rounds < 1) {
        fprintf(stderr, "bench_conv: --batch, --width and --rounds must be positive\n");
        return 2;
    }
    if (quick) {
        batch = batch > 8 ? 8 : batch;
        rounds = 1;
    }
    double min_s = quick ? 0.01 : 0.3;
    double ghz = measure_ghz(quick ? 2000000L : 50000000L);
    double fma_rate = measure_fma_peak(quick ? 100000L : 2000000L);
    int lanes = fma_lanes();
    double clock_peak = 2.0 * lanes * 2.0 * ghz;
    printf("kernels: %s; OpenMP: %s\n", node_isa_name(), node_net_openmp() ? "yes" : "no");
    printf("clock (dependent FMA chain, 4-cycle latency): %.2f GHz\n", ghz);
    printf("one core's peak by the formula: 2 FMA units x %d doubles x 2 flops x %.2f GHz = "
           "%.1f GFLOP/s\n", lanes, ghz, clock_peak);
    printf("sustained independent FMAs, measured: %.1f GFLOP/s\n", fma_rate);
    printf("peak used below (one core): the formula's, %.1f GFLOP/s\n\n", clock_peak);
    double peak = clock_peak;

    conv_case c;
    memset(&c, 0, sizeof c);
    c.batch = batch;
    if (node_net_create(&c.n, width, 6, 6, NULL) != NODE_OK
        || node_net_add_conv2d(c.n, width, 3, 3, 1, 1, 1, 1, NULL) != NODE_OK) {
        fprintf(stderr, "bench_conv: cannot make the network\n");
        return 1;
    }
    node_net_init(c.n, 1);
    size_t sz = width * 36, np = node_net_nparams(c.n);
    c.x = filled(batch * sz, 1);
    c.a = filled(batch * sz, 2);
    c.y = filled(batch * sz, 3);
    c.gx = filled(batch * sz, 4);
    c.gp = filled(np, 5);
    double macs = node_net_flops(c.n) * (double)batch, gf = 2.0 * macs * 1e-9;
    printf("conv %zu -> %zu channels + t, 3x3, pad 1, 6x6, batch %zu: %.3f GFLOP a product\n",
           width, width, batch, gf);
    printf("1 thread: CPU time per call (robust to other processes on a shared machine);\n"
           "2 threads: wall time (a speed-up needs two free cores) and CPU time of both.\n");
    printf("threads  clock  forward [ms]  +vjp_x [ms]  +vjp_p [ms]   fwd GF/s  vjp_x GF/s"
           "  vjp_p GF/s   fwd %%  vjp_x %%  vjp_p %%  (%% of T cores' peak)\n");
    int maxt = node_net_openmp() ? 2 : 1;
    double res[3][3];   /* [threads][product] GFLOP/s */
    for (int T = 1; T <= maxt; T++) {
        node_net_set_threads(c.n, T);
        if (node_net_reserve(c.n, batch) != NODE_OK) {
            fprintf(stderr, "bench_conv: cannot reserve\n");
            return 1;
        }
        double w[3], cp[3], t[3];
        for (int k = 0; k < 3; k++) {
            time_call(&c, k, rounds, min_s, &w[k], &cp[k]);
            t[k] = T == 1 ? cp[k] : w[k];
        }
        double dx = t[1] - t[0] > 0 ? t[1] - t[0] : 1e-12, dp = t[2] - t[1] > 0 ? t[2] - t[1] : 1e-12;
        res[T][0] = gf / t[0];
        res[T][1] = gf / dx;
        res[T][2] = gf / dp;
        printf("%7d  %5s  %12.3f  %11.3f  %11.3f   %8.1f  %10.1f  %10.1f   %5.1f  %7.1f  %7.1f\n",
               T, T == 1 ? "CPU" : "wall", 1e3 * t[0], 1e3 * t[1], 1e3 * t[2], res[T][0],
               res[T][1], res[T][2], 100 * res[T][0] / (T * peak), 100 * res[T][1] / (T * peak),
               100 * res[T][2] / (T * peak));
        if (T == 2)
            printf("         CPU   %12.3f  %11.3f  %11.3f   (both threads together)\n",
                   1e3 * cp[0], 1e3 * cp[1], 1e3 * cp[2]);
    }
    if (maxt == 2)
        printf("speed-up on 2 threads (wall, 2 threads, vs CPU, 1 thread): forward %.2fx, "
               "vjp_x %.2fx, vjp_p %.2fx\n",
               res[2][0] / res[1][0], res[2][1] / res[1][1], res[2][2] / res[1][2]);
    printf("{\"bench\": \"conv\", \"batch\": %zu, \"width\": %zu, \"ghz\": %.3f, "
           "\"peak_gflops\": %.2f, \"fma_measured_gflops\": %.2f, "
           "\"t1\": {\"fwd\": %.2f, \"vjp_x\": %.2f, \"vjp_p\": %.2f}",
           batch, width, ghz, peak, fma_rate, res[1][0], res[1][1], res[1][2]);
    if (maxt == 2)
        printf(", \"t2\": {\"fwd\": %.2f, \"vjp_x\": %.2f, \"vjp_p\": %.2f}",
               res[2][0], res[2][1], res[2][2]);
    printf("}\n");
    node_net_free(c.n);
    free(c.x); free(c.a); free(c.y); free(c.gx); free(c.gp);
    return 0;
}
