/* bench_act.c — nanoseconds per element of the activation kernels (act.c: tanh,
 * sigmoid, SiLU, ELU; value only and value + derivative) at every instruction-set
 * level this CPU runs, on rows of 1000 and 65536 pre-activations (L1- and
 * L2-resident), next to the kernels as they were before issue #16 (act_old.h,
 * compiled here for the same levels), so that the speed-up is a ratio from one run.
 * The kernels work in place: every call first copies the inputs back, and the time
 * of that copy alone (measured the same way) is subtracted.  Best of several
 * rounds, old and new alternating.  Last line: one JSON object.
 * Run: ./bench_act [--quick]
 */
#define _POSIX_C_SOURCE 199309L
#include <libnode.h>
#include "nn/nn_internal.h"   /* the activation registry and kernels (bench only) */
#include "bench_machine.h"

#include <stdint.h>
#include <string.h>

/* The old kernels, once per level, as the library compiled them (NODE__FMA was a
   plain multiply-add without -mfma, fma() with it). */
#define OLD_SUFFIX generic
#define OLD_TARGET
#define OLD_FMA(a, b, c) ((a) * (b) + (c))
#include "act_old.h"
#undef OLD_SUFFIX
#undef OLD_TARGET
#undef OLD_FMA
#if BENCH_X86
#  define OLD_FMA(a, b, c) fma((a), (b), (c))
#  define OLD_SUFFIX avx2
#  define OLD_TARGET BENCH_TARGET("avx2,fma")
#  include "act_old.h"
#  undef OLD_SUFFIX
#  undef OLD_TARGET
#  define OLD_SUFFIX avx512
#  define OLD_TARGET BENCH_TARGET("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq,avx512cd")
#  include "act_old.h"
#  undef OLD_SUFFIX
#  undef OLD_TARGET
#  undef OLD_FMA
#endif

typedef void (*act_fn)(size_t, double *, double *);

static const char *const act_names[4] = { "tanh", "sigmoid", "silu", "elu" };

static act_fn old_kernel(node__isa isa, size_t a)
{
#if BENCH_X86
    if (isa == NODE__ISA_AVX512)
        return old_kernels_avx512[a];
    if (isa == NODE__ISA_AVX2)
        return old_kernels_avx2[a];
#endif
    (void)isa;
    return old_kernels_generic[a];
}

static act_fn new_kernel(node__isa isa, size_t a)
{
    node_activation v;
    if (node_activation_parse(act_names[a], &v) != NODE_OK)
        return NULL;
    return node__nn_kernels_for(isa)->act[node__act_index((int64_t)v)];
}

/* Seconds per call of f over n entries (copy of z into y first), best of the
   rounds; f NULL times the copy alone. */
typedef struct timing {
    act_fn f;
    double best;
    long calls;   /* per round, calibrated to about min_s / 4 */
} timing;

static void round_of(timing *t, size_t n, const double *z, double *y, double *d)
{
    double t0 = now();
    for (long k = 0; k < t->calls; k++) {
        memcpy(y, z, n * sizeof *y);
        if (t->f)
            t->f(n, y, d);
    }
    double dt = (now() - t0) / (double)t->calls;
    if (dt < t->best)
        t->best = dt;
    sink = y[n / 3] + (d ? d[n / 2] : 0.0);
}

static void calibrate(timing *t, size_t n, const double *z, double *y, double *d,
                      double min_s)
{
    t->calls = 1;
    t->best = 1e30;
    double t0 = now();
    round_of(t, n, z, y, d);
    double dt = now() - t0;
    t->calls = dt > 0 ? (long)(min_s / 4 / dt) + 1 : 1000;
    t->best = 1e30;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }
    (void)measure_fma_peak;   /* bench_machine.h: not needed here */
    int reps = quick ? 2 : 60;
    double min_s = quick ? 0.002 : 0.008;
    static const size_t sizes[2] = { 1000, 65536 };
    enum { NMAX = 65536 };
    double *z = malloc(NMAX * sizeof *z), *y = malloc(NMAX * sizeof *y);
    double *d = malloc(NMAX * sizeof *d);
    if (!z || !y || !d) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 88172645463325252u;   /* xorshift: pre-activations uniform in [-8, 8) */
    for (size_t i = 0; i < NMAX; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        z[i] = -8.0 + 16.0 * (double)(s >> 11) * 0x1p-53;
    }
    printf("libnode activation kernels, one thread: ns per element (copy-in subtracted),\n"
           "old = before issue #16 (bench/act_old.h), new = the library; best of %d rounds\n"
           "clock (dependent FMA chain): %.2f GHz\n\n", reps, measure_ghz(quick ? 2000000L : 20000000L));
    printf("%-7s %-8s %-9s %6s %9s %9s %8s\n", "level", "act", "mode", "n", "old", "new",
           "old/new");
    char json[16384];
    size_t jl = (size_t)snprintf(json, sizeof json, "{\"bench\": \"act\", \"ns_per_element\": [");
    const char *sep = "";
    for (int isa = 0; isa < NODE__NISA; isa++) {
        if (!node__isa_usable((node__isa)isa))
            continue;
        for (size_t a = 0; a < 4; a++)
            for (int mode = 0; mode < 2; mode++)
                for (size_t si = 0; si < 2; si++) {
                    size_t n = sizes[si];
                    double *dd = mode ? d : NULL;
                    timing t[3] = { { NULL, 0, 0 }, { old_kernel((node__isa)isa, a), 0, 0 },
                                    { new_kernel((node__isa)isa, a), 0, 0 } };
                    for (int k = 0; k < 3; k++)
                        calibrate(&t[k], n, z, y, dd, min_s);
                    for (int r = 0; r < reps; r++)
                        for (int k = 0; k < 3; k++)
                            round_of(&t[k], n, z, y, dd);
                    double ns_old = (t[1].best - t[0].best) / (double)n * 1e9;
                    double ns_new = (t[2].best - t[0].best) / (double)n * 1e9;
                    const char *mname = mode ? "value+d" : "value";
                    printf("%-7s %-8s %-9s %6zu %9.3f %9.3f %8.2f\n",
                           node__isa_name((node__isa)isa), act_names[a], mname, n, ns_old,
                           ns_new, ns_old / ns_new);
                    fflush(stdout);
                    if (jl < sizeof json)
                        jl += (size_t)snprintf(json + jl, sizeof json - jl,
                                               "%s{\"level\": \"%s\", \"act\": \"%s\", \"mode\": "
                                               "\"%s\", \"n\": %zu, \"old\": %.3f, \"new\": %.3f}",
                                               sep, node__isa_name((node__isa)isa),
                                               act_names[a], mname, n, ns_old, ns_new);
                    sep = ", ";
                }
    }
    printf("%s]}\n", json);
    free(z);
    free(y);
    free(d);
    return 0;
}
