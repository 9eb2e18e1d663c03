/* bench_rnn.c — time of node_rnn_forward and node_rnn_backward (BPTT) for the tanh and
 * GRU cells over a batch, in ms per call and GFLOP/s (2 flops per weight per row-step
 * forward, 4 backward; the GRU has 3 (nin + nhidden) nhidden weights), the best of
 * several repetitions.  Half of the batch's rows skip every
 * third step (a masked batch as the latent ODE's encoder makes).
 * Run: ./bench_rnn [--quick]
 */
#define _POSIX_C_SOURCE 200809L
#include <libnode.h>
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    node_cell_kind kind;
    size_t nin, nh, batch, nsteps;
} shape;

static int run(const shape *s, int reps, double *ms_f, double *ms_b)
{
    node_rnn *r = NULL;
    if (node_rnn_create(&r, s->kind, s->nin, s->nh, NULL))
        return 1;
    node_rnn_init(r, 1);
    size_t nx = s->nsteps * s->batch * s->nin, nhs = (s->nsteps + 1) * s->batch * s->nh;
    double *xs = malloc(nx * sizeof *xs), *hs = malloc(nhs * sizeof *hs);
    double *dhs = malloc(nhs * sizeof *dhs), *dxs = malloc(nx * sizeof *dxs);
    double *dp = malloc(node_rnn_nparams(r) * sizeof *dp);
    unsigned char *mask = malloc(s->nsteps * s->batch);
    node_rng g;
    node_rng_seed(&g, 2);
    if (!xs || !hs || !dhs || !dxs || !dp || !mask)
        return 1;
    node_rng_normal(&g, nx, xs);
    node_rng_normal(&g, nhs, dhs);
    size_t steps = 0;
    for (size_t k = 0; k < s->nsteps; k++)
        for (size_t b = 0; b < s->batch; b++) {
            mask[k * s->batch + b] = !(b % 2 && k % 3 == 0);
            steps += mask[k * s->batch + b];
        }
    double best_f = 1e30, best_b = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        if (node_rnn_forward(r, s->nsteps, s->batch, xs, mask, NULL, hs))
            return 1;
        double t1 = now();
        if (node_rnn_backward(r, s->nsteps, s->batch, xs, mask, hs, dhs, NULL, dxs, dp))
            return 1;
        double t2 = now();
        best_f = t1 - t0 < best_f ? t1 - t0 : best_f;
        best_b = t2 - t1 < best_b ? t2 - t1 : best_b;
    }
    double w = (double)(s->nh * (s->nin + s->nh)) * (s->kind == NODE_CELL_GRU ? 3 : 1);
    double gf = 2 * w * (double)steps / best_f * 1e-9, gb = 4 * w * (double)steps / best_b * 1e-9;
    printf("%-4s  nin %3zu  nhidden %4zu  batch %4zu  steps %4zu   forward %8.3f ms (%5.2f GFLOP/s)"
           "   backward %8.3f ms (%5.2f GFLOP/s)\n", s->kind == NODE_CELL_GRU ? "gru" : "tanh", s->nin, s->nh, s->batch, s->nsteps,
           best_f * 1e3, gf, best_b * 1e3, gb);
    *ms_f = best_f * 1e3;
    *ms_b = best_b * 1e3;
    free(xs);
    free(hs);
    free(dhs);
    free(dxs);
    free(dp);
    free(mask);
    node_rnn_free(r);
    return 0;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }
    const shape shapes[] = {
        { NODE_CELL_TANH, 3, 25, 50, 100 },     /* the latent ODE's encoder: [x, Δt] of 2-D spirals */
        { NODE_CELL_TANH, 3, 25, 1000, 100 },   /* the paper's 1000 spirals in one batch */
        { NODE_CELL_TANH, 16, 128, 64, 100 },
        { NODE_CELL_GRU, 3, 25, 50, 100 },      /* the same with --cell gru */
        { NODE_CELL_GRU, 3, 25, 1000, 100 },
        { NODE_CELL_GRU, 16, 128, 64, 100 },
    };
    enum { NS = sizeof shapes / sizeof shapes[0] };
    double ms_f[NS], ms_b[NS];
    for (int i = 0; i < NS; i++)
        if (run(&shapes[i], quick ? 2 : 10, &ms_f[i], &ms_b[i])) {
            fprintf(stderr, "bench_rnn: a call failed\n");
            return 1;
        }
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "bench", "rnn");
    for (int i = 0; i < NS; i++) {
        char key[32];
        snprintf(key, sizeof key, "forward_ms_%d", i);
        ex_json_num(&j, key, ms_f[i]);
        snprintf(key, sizeof key, "backward_ms_%d", i);
        ex_json_num(&j, key, ms_b[i]);
    }
    ex_json_end(&j);
    return 0;
}
