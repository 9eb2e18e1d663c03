/* bench_machine.h — what the benchmarks measure the machine with: a monotonic clock,
 * the core's clock rate (a dependent FMA chain) and its sustained FMA rate, for
 * GFLOP/s figures next to one core's double-precision peak; and filled(), their
 * inputs.  Static functions: included by the bench_*.c that need them.
 */
#ifndef LIBNODE_BENCH_MACHINE_H
#define LIBNODE_BENCH_MACHINE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The clock the measuring loops below read: wall time unless the includer defines
   BENCH_CLOCK (bench_conv: the process's CPU time, robust on a shared machine). */
#ifndef BENCH_CLOCK
#  define BENCH_CLOCK now
#endif

/* CPU time of the process (all its threads), seconds. */
static inline double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the machine ------------------------------------------------------------------ */

static volatile double sink;

/* The measuring loops must run the CPU's FMA instructions even in the portable default
   build (no -mfma: there fma() is a call into libm).  On x86-64 with gcc or clang they
   are compiled for FMA / AVX-512 by target attributes and chosen by cpuid at run time;
   elsewhere, or on a CPU without FMA, they use whatever the build targets. */
#if defined(__x86_64__) && defined(__GNUC__)
#  define BENCH_X86 1
#  define BENCH_TARGET(isa) __attribute__((target(isa)))
#else
#  define BENCH_X86 0
#  define BENCH_TARGET(isa)
#endif

/* A dependent chain of fused multiply-adds runs at one per FMA latency (4 cycles
   on Intel Skylake-SP through Sapphire Rapids and on AMD Zen 4/5, Agner Fog's
   tables), so its rate measures the clock the core actually runs at. */
#define BENCH_GHZ_BODY                                                   \
    volatile double va = 0.999999999, vb = 1e-9;                         \
    double a = va, b = vb, x = 1.0;                                      \
    double best = 1e30;                                                  \
    for (int rep = 0; rep < 5; rep++) {                                  \
        double t0 = BENCH_CLOCK();                                               \
        for (long i = 0; i < n; i++)                                     \
            x = fma(x, a, b);                                            \
        double dt = BENCH_CLOCK() - t0;                                          \
        if (dt < best)                                                   \
            best = dt;                                                   \
    }                                                                    \
    sink = x;                                                            \
    return 4.0 * (double)n / best * 1e-9;

/* Independent FMAs on 128 lanes (16 AVX-512 vectors): the sustained FMA rate the
   compiler's code reaches, in GFLOP/s (2 flops per FMA). */
#define BENCH_PEAK_BODY                                                  \
    double acc[128];                                                     \
    volatile double va = 0.999999999, vb = 1e-9;                         \
    double a = va, b = vb;                                               \
    for (int l = 0; l < 128; l++)                                        \
        acc[l] = 1.0 + l;                                                \
    double best = 1e30;                                                  \
    for (int rep = 0; rep < 5; rep++) {                                  \
        double t0 = BENCH_CLOCK();                                               \
        for (long i = 0; i < n; i++)                                     \
            for (int l = 0; l < 128; l++)                                \
                acc[l] = fma(acc[l], a, b);                              \
        double dt = BENCH_CLOCK() - t0;                                          \
        if (dt < best)                                                   \
            best = dt;                                                   \
    }                                                                    \
    double s = 0;                                                        \
    for (int l = 0; l < 128; l++)                                        \
        s += acc[l];                                                     \
    sink = s;                                                            \
    return 2.0 * 128.0 * (double)n / best * 1e-9;

static inline double ghz_plain(long n) { BENCH_GHZ_BODY }
static inline double peak_plain(long n) { BENCH_PEAK_BODY }
#if BENCH_X86
BENCH_TARGET("fma") static double ghz_fma(long n) { BENCH_GHZ_BODY }
BENCH_TARGET("avx2,fma") static double peak_avx2(long n) { BENCH_PEAK_BODY }
BENCH_TARGET("avx512f,fma") static double peak_avx512(long n) { BENCH_PEAK_BODY }
#endif

/* vector doubles per FMA instruction of the best level this CPU has (1: scalar) */
static inline int fma_lanes(void)
{
#if BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        return 8;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 4;
#endif
    return 1;
}

static inline double measure_ghz(long n)
{
#if BENCH_X86
    if (fma_lanes() > 1)
        return ghz_fma(n);
#endif
    return ghz_plain(n);
}

static inline double measure_fma_peak(long n)
{
#if BENCH_X86
    switch (fma_lanes()) {
    case 8: return peak_avx512(n);
    case 4: return peak_avx2(n);
    default: break;
    }
#endif
    return peak_plain(n);
}

/* ---- data movement ---------------------------------------------------------------- */

/* Bytes of the data cache at /sys/.../cpu0/cache/index<ix>/size (0: L1d, 2: L2,
   3: L3), or fallback where the file is missing (not Linux, a container). */
static inline size_t cache_bytes(int ix, size_t fallback)
{
    char path[80];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", ix);
    FILE *f = fopen(path, "r");
    if (!f)
        return fallback;
    unsigned long v = 0;
    char unit = 0;
    int got = fscanf(f, "%lu%c", &v, &unit);
    fclose(f);
    if (got < 1 || v == 0)
        return fallback;
    return (size_t)v * (unit == 'K' ? 1024u : unit == 'M' ? 1024u * 1024u : 1u);
}

/* A stream that reads one array and writes another, d[i] = s x[i] (16 bytes per
   element), over n doubles each, `passes` times: the bytes per second a level of
   the memory hierarchy moves when both arrays live there (n·16 bytes within it). */
#define BENCH_BW_BODY                                                    \
    volatile double vs = 0.999999;                                       \
    double s = vs, best = 1e30;                                          \
    for (int rep = 0; rep < 3; rep++) {                                  \
        double t0 = BENCH_CLOCK();                                       \
        for (long p = 0; p < passes; p++) {                              \
            for (size_t i = 0; i < n; i++)                               \
                d[i] = s * x[i];                                         \
            double *tmp = x;   /* ping-pong: both arrays stay the set */ \
            x = d;                                                       \
            d = tmp;                                                     \
        }                                                                \
        double dt = BENCH_CLOCK() - t0;                                  \
        if (dt < best)                                                   \
            best = dt;                                                   \
    }                                                                    \
    sink = x[n / 2];                                                     \
    return 16.0 * (double)n * (double)passes / best;

static inline double bw_plain(double *x, double *d, size_t n, long passes) { BENCH_BW_BODY }
#if BENCH_X86
BENCH_TARGET("avx2") static inline double bw_avx2(double *x, double *d, size_t n, long passes)
{ BENCH_BW_BODY }
BENCH_TARGET("avx512f") static inline double bw_avx512(double *x, double *d, size_t n, long passes)
{ BENCH_BW_BODY }
#endif

/* Bytes per second of the read + write stream over two arrays of `bytes` / 2 each
   (about `total` bytes moved per timed round), at the widest vectors this CPU has. */
static inline double measure_bw(size_t bytes, double total)
{
    size_t n = bytes / 16;
    n = n < 64 ? 64 : n;
    double *x = malloc(n * sizeof *x), *d = malloc(n * sizeof *d);
    if (!x || !d) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        x[i] = d[i] = 1.0;
    long passes = (long)(total / (16.0 * (double)n)) + 1;
    double r;
#if BENCH_X86
    switch (fma_lanes()) {
    case 8: r = bw_avx512(x, d, n, passes); break;
    case 4: r = bw_avx2(x, d, n, passes); break;
    default: r = bw_plain(x, d, n, passes); break;
    }
#else
    r = bw_plain(x, d, n, passes);
#endif
    free(x);
    free(d);
    return r;
}

/* n pseudo-random values in [-1, 1) from seed (exits if out of memory). */
static inline double *filled(size_t n, unsigned seed)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = ((double)(seed >> 8) / 16777216.0) * 2.0 - 1.0;
    }
    return p;
}

#endif /* LIBNODE_BENCH_MACHINE_H */
