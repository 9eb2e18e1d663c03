/* bench_grad.c — the adjoint (Chen et al. 2018, Algorithm 1) against exact backprop:
 * peak memory as the number of steps grows (each run in a forked child), the
 * backward/forward NFE ratio of the adaptive methods with and without the seminorm
 * (Kidger, Chen, Lyons 2021), and wall time.  Prints Markdown tables.
 * Run: ./bench_grad [--quick]
 */
#define _POSIX_C_SOURCE 200809L
#include <libnode.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a cheap dim-64 ring for the memory runs: f_i = θ_i tanh(y_{i+1}) - y_i/2 ---- */

#define RING 64

static int ring_f(void *ctx, double t, const double *y, double *dydt)
{
    const double *th = ctx;
    (void)t;
    for (size_t i = 0; i < RING; i++)
        dydt[i] = th[i] * tanh(y[(i + 1) % RING]) - 0.5 * y[i];
    return 0;
}

static int ring_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                    double *vy, double *vp, double *vt)
{
    const double *th = ctx;
    if (dydt)
        ring_f(ctx, t, y, dydt);
    for (size_t j = 0; j < RING; j++) {
        size_t i = (j + RING - 1) % RING;   /* f_i reads y_j */
        double th_ = tanh(y[j]);
        vy[j] = -0.5 * a[j] + a[i] * th[i] * (1 - th_ * th_);
    }
    if (vp)
        for (size_t i = 0; i < RING; i++)
            vp[i] = a[i] * tanh(y[(i + 1) % RING]);
    if (vt)
        *vt = 0;
    return 0;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* In a child: one gradient over `steps` RK4 steps; report the growth of the peak
   resident set (kB) through a pipe.  Returns -1 on failure. */
static long child_peak_growth(int backprop, long steps)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fd[0]);
        double th[RING], y0[RING], ys[2 * RING], w[2 * RING] = { 0 }, g0[RING], gp[RING];
        for (size_t i = 0; i < RING; i++) {
            th[i] = 1.0 + 0.5 * sin((double)i);
            y0[i] = cos(0.3 * (double)i);
            w[RING + i] = 1;
        }
        node_system sys = { .dim = RING, .nparams = RING, .ctx = th, .f = ring_f, .vjp = ring_vjp };
        node_options o = node_options_default();
        o.method = NODE_RK4;
        o.step = 1e-3;
        o.max_steps = steps + 10;
        double ts[2] = { 0, o.step * (double)steps };
        node_solver *s;
        long before = 0, after = -1;
        if (node_solver_create(&s) == NODE_OK &&
            node_solver_odeint(s, &sys, y0, ts, 2, ys, &o, NULL) == NODE_OK) {
            before = maxrss_kb();
            node_status rc = backprop
                ? node_solver_backprop(s, &sys, ts, 2, ys, w, g0, gp, NULL, &o, NULL)
                : node_solver_adjoint(s, &sys, ts, 2, ys, w, g0, gp, NULL, &o, NULL);
            if (rc == NODE_OK)
                after = maxrss_kb();
        }
        long growth = after < 0 ? -1 : after - before;
        if (write(fd[1], &growth, sizeof growth) != (ssize_t)sizeof growth)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    long growth = -1;
    if (read(fd[0], &growth, sizeof growth) != (ssize_t)sizeof growth)
        growth = -1;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return growth;
}

/* ---- a small neural-ODE-like system: y' = tanh(W y + b), θ = [W, b] -------------- */

#define NN 6

typedef struct tnet {
    double W[NN * NN], b[NN];   /* contiguous: θ = [W, b] */
} tnet;

static int tnet_f(void *ctx, double t, const double *y, double *dydt)
{
    const tnet *m = ctx;
    (void)t;
    for (size_t i = 0; i < NN; i++) {
        double s = m->b[i];
        for (size_t j = 0; j < NN; j++)
            s += m->W[i * NN + j] * y[j];
        dydt[i] = tanh(s);
    }
    return 0;
}

static int tnet_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                    double *vy, double *vp, double *vt)
{
    const tnet *m = ctx;
    double z[NN], g[NN];
    (void)t;
    for (size_t i = 0; i < NN; i++) {
        double s = m->b[i];
        for (size_t j = 0; j < NN; j++)
            s += m->W[i * NN + j] * y[j];
        z[i] = tanh(s);
        g[i] = a[i] * (1 - z[i] * z[i]);
    }
    if (dydt)
        memcpy(dydt, z, sizeof z);
    for (size_t j = 0; j < NN; j++) {
        double s = 0;
        for (size_t i = 0; i < NN; i++)
            s += g[i] * m->W[i * NN + j];
        vy[j] = s;
    }
    if (vp) {
        for (size_t i = 0; i < NN; i++)
            for (size_t j = 0; j < NN; j++)
                vp[i * NN + j] = g[i] * y[j];
        memcpy(vp + NN * NN, g, sizeof g);
    }
    if (vt)
        *vt = 0;
    return 0;
}

static void tnet_init(tnet *m)
{
    uint64_t x = 0x9E3779B97F4A7C15u;   /* xorshift64: fixed weights */
    for (size_t i = 0; i < NN * NN + NN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0 * 2 - 1;
        if (i < NN * NN)
            m->W[i] = 2.0 * u / sqrt((double)NN);
        else
            m->b[i - NN * NN] = 0.5 * u;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check(node_status rc, const char *what)
{
    if (rc != NODE_OK)
        fprintf(stderr, "bench_grad: %s: %s\n", what, node_strerror(rc));
    return rc != NODE_OK;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;

    /* ---- memory ---- */
    printf("## Peak memory: adjoint vs backprop (dim %d, RK4, fixed step)\n\n", RING);
    printf("| steps | adjoint peak growth (kB) | backprop peak growth (kB) | backprop bytes/step |\n");
    printf("|---:|---:|---:|---:|\n");
    long nsteps[3] = { 1000, 10000, 100000 };
    for (int k = 0; k < (quick ? 2 : 3); k++) {
        long a = child_peak_growth(0, nsteps[k]), b = child_peak_growth(1, nsteps[k]);
        printf("| %ld | %ld | %ld | %.0f |\n", nsteps[k], a, b, 1024.0 * (double)b / (double)nsteps[k]);
    }
    printf("\n(tape record: (dim + 2) doubles = %d bytes per step; ru_maxrss growth "
           "during the gradient call, each run in a fresh child)\n\n", (RING + 2) * 8);

    /* ---- NFE ratio ---- */
    tnet m;
    tnet_init(&m);
    node_system sys = { .dim = NN, .nparams = NN * NN + NN, .ctx = &m, .f = tnet_f, .vjp = tnet_vjp };
    double y0[NN], ts[2] = { 0, 10 }, ys[2 * NN], w[2 * NN] = { 0 }, g0[NN], gp[NN * NN + NN];
    for (size_t i = 0; i < NN; i++) {
        y0[i] = sin(1.0 + (double)i);
        w[NN + i] = 1;
    }
    printf("## Backward/forward NFE: y' = tanh(W y + b), dim %d, %d params, t in [0, %g]\n\n",
           NN, NN * NN + NN, ts[1]);
    printf("| method | tol | forward NFE | adjoint NFE | ratio | seminorm NFE | ratio | "
           "backprop NFE | ratio | backprop + record NFE | ratio | adjoint err | seminorm err |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    node_method ms[3] = { NODE_BOSH3, NODE_DOPRI5, NODE_DOP853 };
    double tols[4] = { 1e-4, 1e-6, 1e-8, 1e-10 };
    enum { NG = NN + NN * NN + NN };
    node_solver *rs;
    if (check(node_solver_create(&rs), "solver"))
        return 1;
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j += quick ? 3 : 1) {
            node_options o = node_options_default();
            o.method = ms[k];
            o.rtol = o.atol = tols[j];
            node_stats sf, sa, ss, sb, sr;
            double ga[NG], gs[NG], gb[NG], yr[2 * NN];
            if (check(node_odeint(&sys, y0, ts, 2, ys, &o, &sf), "forward") ||
                check(node_odeint_adjoint(&sys, ts, 2, ys, w, ga, ga + NN, NULL, &o, &sa),
                      "adjoint") ||
                check(node_odeint_backprop(&sys, ts, 2, ys, w, gb, gb + NN, NULL, &o, &sb),
                      "backprop"))
                return 1;
            o.seminorm = 1;
            if (check(node_odeint_adjoint(&sys, ts, 2, ys, w, gs, gs + NN, NULL, &o, &ss),
                      "seminorm"))
                return 1;
            /* exact backprop reversing the forward solve's own recording */
            o.seminorm = 0;
            o.record = 1;
            if (check(node_solver_odeint(rs, &sys, y0, ts, 2, yr, &o, NULL), "recorded forward") ||
                check(node_solver_backprop(rs, &sys, ts, 2, yr, w, g0, gp, NULL, &o, &sr),
                      "backprop + record"))
                return 1;
            /* max-norm relative error of [dL/dy0, dL/dθ] against exact backprop */
            double ea = 0, es = 0, sc = 0;
            for (size_t i = 0; i < NG; i++) {
                ea = fmax(ea, fabs(ga[i] - gb[i]));
                es = fmax(es, fabs(gs[i] - gb[i]));
                sc = fmax(sc, fabs(gb[i]));
            }
            printf("| %s | %.0e | %ld | %ld | %.2f | %ld | %.2f | %ld | %.2f | %ld | %.2f | "
                   "%.1e | %.1e |\n",
                   node_method_name(ms[k]), tols[j], sf.nfe, sa.nfe,
                   (double)sa.nfe / (double)sf.nfe, ss.nfe, (double)ss.nfe / (double)sf.nfe,
                   sb.nfe, (double)sb.nfe / (double)sf.nfe, sr.nfe,
                   (double)sr.nfe / (double)sf.nfe, ea / sc, es / sc);
        }
    node_solver_free(rs);
    printf("\n(backprop's NFE include its forward re-run; backprop + record reverses "
           "node_solver_odeint's recording (opt->record): vjp calls alone.  err: max-norm "
           "error of [dL/dy0, dL/dθ] relative to exact backprop's)\n");

    /* ---- time ---- */
    int reps = quick ? 20 : 500;
    node_options o = node_options_default();
    o.rtol = o.atol = 1e-8;
    node_solver *s;
    if (check(node_solver_create(&s), "solver"))
        return 1;
    double tf = 0, ta = 0, tb = 0, trf = 0, trb = 0;
    node_options orec = o;
    orec.record = 1;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        node_status rc = node_solver_odeint(s, &sys, y0, ts, 2, ys, &o, NULL);
        double t1 = now();
        rc = rc ? rc : node_solver_adjoint(s, &sys, ts, 2, ys, w, g0, gp, NULL, &o, NULL);
        double t2 = now();
        rc = rc ? rc : node_solver_backprop(s, &sys, ts, 2, ys, w, g0, gp, NULL, &o, NULL);
        double t3 = now();
        rc = rc ? rc : node_solver_odeint(s, &sys, y0, ts, 2, ys, &orec, NULL);
        double t4 = now();
        rc = rc ? rc : node_solver_backprop(s, &sys, ts, 2, ys, w, g0, gp, NULL, &orec, NULL);
        double t5 = now();
        if (check(rc, "timing"))
            return 1;
        tf += t1 - t0;
        ta += t2 - t1;
        tb += t3 - t2;
        trf += t4 - t3;
        trb += t5 - t4;
    }
    node_solver_free(s);
    printf("\n## Time per call (dopri5, rtol = atol = 1e-8, same problem, %d reps)\n\n", reps);
    printf("| forward (µs) | adjoint (µs) | backprop (µs) | recorded forward (µs) | "
           "backprop + record (µs) |\n|---:|---:|---:|---:|---:|\n");
    printf("| %.1f | %.1f | %.1f | %.1f | %.1f |\n", 1e6 * tf / reps, 1e6 * ta / reps,
           1e6 * tb / reps, 1e6 * trf / reps, 1e6 * trb / reps);
    return 0;
}
