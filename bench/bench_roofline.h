/* bench_roofline.h — the roofline model of one MLP evaluation, shared by bench_mlp
 * (a row per shape) and bench_train (a row per training setting).  Static functions:
 * included by the bench_*.c that need them, after bench_machine.h.
 *
 * The model.  For a network in -> w (tanh) -> out over B samples (ld = the padded
 * batch the kernels run, nn_internal.h), the time of f or of a vjp is at least
 *     bound = max(flops / peak, bytes / bandwidth(level), n_tanh * t_tanh)
 * where
 *   flops   = 2 B (in w + w out) for f, 3x that for a vjp (forward, input gradient,
 *             weight gradient: each one multiply-add per weight per sample);
 *   peak    = the measured independent-FMA rate of this core (bench_machine.h);
 *   bytes   = what must cross the memory hierarchy at least once: the parameters
 *             (read; a vjp also writes their gradient), the inputs and outputs of
 *             the batch (a vjp also reads a and writes aᵀ∂f/∂x), and the hidden
 *             layer's workspace rows, w × ld doubles each, written once and read
 *             once: f one row set (the activations), a vjp three (activations,
 *             act', and Δ);
 *   level   = the smallest cache that holds those bytes (L1, L2, L3 or memory),
 *             bandwidth = its measured read + write stream rate (bench_machine.h);
 *   n_tanh  = w ld (the kernels run the activation over the padded batch) and
 *   t_tanh  = the measured time of one tanh over a 4096-long row in L1, value only
 *             for f, value and derivative for a vjp (act.c, the level this CPU runs).
 * Loop overheads, horizontal sums and the transpositions at the API's edges are
 * costs the model does not grant: they are what separates a kernel from its bound.
 */
#ifndef LIBNODE_BENCH_ROOFLINE_H
#define LIBNODE_BENCH_ROOFLINE_H

#include "nn/nn_internal.h"

#include <string.h>

typedef struct roof_machine {
    double peak;              /* flop/s */
    size_t cache[3];          /* bytes: L1d, L2, L3 */
    double bw[4];             /* bytes/s: L1, L2, L3, memory */
    double tanh_f, tanh_vjp;  /* seconds per element: value; value + derivative */
} roof_machine;

static const char *const roof_level[4] = { "L1", "L2", "L3", "mem" };

/* Seconds per element of the tanh kernel (with its derivative if d), best of reps. */
static inline double roof_tanh_cost(int with_d, int reps)
{
    enum { N = 4096 };
    static double z[N], y[N], d[N];
    for (size_t i = 0; i < N; i++)
        z[i] = -3.0 + 6.0 * (double)i / (N - 1);
    const node__nn_kernels *kern = node__nn_kernels_for(node__isa_select());
    size_t ix = node__act_index(NODE_ACT_TANH);
    long n = 1;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        for (long k = 0; k < n; k++) {
            memcpy(y, z, sizeof y);
            kern->act[ix](N, y, with_d ? d : NULL);
        }
        double dt = now() - t0;
        if (r == 0) {   /* calibrate: each round about 5 ms */
            n = dt > 0 ? (long)(0.005 / dt) + 1 : 1000;
            continue;
        }
        if (dt / (double)n < best)
            best = dt / (double)n;
    }
    sink = y[N / 3] + d[N / 2];
    return best / N;   /* the copy is included: it is the row's own load */
}

/* Measure the machine: peak (already measured by the caller), caches, the stream
   rates at half of each cache and at 64 MiB, the tanh costs. */
static inline roof_machine roof_measure(double peak, int quick)
{
    roof_machine m;
    m.peak = peak;
    m.cache[0] = cache_bytes(0, 32u << 10);
    m.cache[1] = cache_bytes(2, 1u << 20);
    m.cache[2] = cache_bytes(3, 16u << 20);
    double total = quick ? 2e8 : 1e9;
    size_t l3 = m.cache[2] / 2 < (8u << 20) ? m.cache[2] / 2 : (8u << 20);
    m.bw[0] = measure_bw(m.cache[0] / 2, total);
    m.bw[1] = measure_bw(m.cache[1] / 2, total);
    m.bw[2] = measure_bw(l3, total / 2);
    m.bw[3] = measure_bw(64u << 20, total / 4);
    m.tanh_f = roof_tanh_cost(0, quick ? 2 : 5);
    m.tanh_vjp = roof_tanh_cost(1, quick ? 2 : 5);
    return m;
}

static inline void roof_print_machine(const roof_machine *m)
{
    printf("roofline model (bench/bench_roofline.h): bound = max(flops / %.1f GFLOP/s,\n"
           "  bytes / stream rate of the level holding them, n_tanh x %.2f ns (f) or %.2f ns (vjp))\n",
           m->peak * 1e-9, m->tanh_f * 1e9, m->tanh_vjp * 1e9);
    printf("  stream rates (read + write): L1 (%zu KiB) %.0f GB/s, L2 (%zu KiB) %.0f GB/s, "
           "L3 %.0f GB/s, memory %.0f GB/s\n", m->cache[0] >> 10, m->bw[0] * 1e-9,
           m->cache[1] >> 10, m->bw[1] * 1e-9, m->bw[2] * 1e-9, m->bw[3] * 1e-9);
}

/* The bound of one evaluation (seconds) of in -> w -> out over `batch` samples; f if
   !vjp.  *limit: 'C' compute, 'M' data movement (*level: which), 'T' tanh. */
static inline double roof_mlp_bound(const roof_machine *m, size_t in, size_t w, size_t out,
                             size_t batch, int vjp, char *limit, int *level)
{
    double B = (double)batch, ld = (double)node__lead_dim(batch);
    double P = (double)((in + 1) * w + (w + 1) * out);
    double flops = 2.0 * B * (double)(in * w + w * out) * (vjp ? 3.0 : 1.0);
    double bytes = 8.0 * (vjp ? 2.0 * P + B * 2.0 * (double)(in + out) + 6.0 * (double)w * ld
                              : P + B * (double)(in + out) + 2.0 * (double)w * ld);
    int lv = 0;
    while (lv < 3 && bytes > (double)m->cache[lv])
        lv++;
    double tc = flops / m->peak, tm = bytes / m->bw[lv];
    double tt = (double)w * ld * (vjp ? m->tanh_vjp : m->tanh_f);
    double b = tc;
    *limit = 'C';
    if (tm > b) {
        b = tm;
        *limit = 'M';
    }
    if (tt > b) {
        b = tt;
        *limit = 'T';
    }
    *level = lv;
    return b;
}

/* "T 1.23" style cell text: the limit (with the level for data movement). */
static inline const char *roof_limit_name(char limit, int level)
{
    return limit == 'C' ? "FMA" : limit == 'T' ? "tanh" : roof_level[level];
}

#endif /* LIBNODE_BENCH_ROOFLINE_H */
