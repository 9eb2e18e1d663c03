/* oscillator.c — the first libnode program: solve the harmonic oscillator
 * x'' = -ω² x with node_odeint and compare y(t) with the exact cos/sin.
 * Run: ./oscillator [--method NAME] [--rtol X] [--omega W] [--t-end T] [--n N]
 * (methods: euler midpoint rk4 bosh3 dopri5 dop853; fixed ones use --step).
 * Prints a table of t, x, v and their errors; the last line is a JSON object.
 */
#include <libnode.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "json.h"

/* The dynamics: state y = (x, v), dy/dt = (v, -ω² x).  ctx carries ω. */
static int oscillator(void *ctx, double t, const double *y, double *dydt)
{
    (void)t;
    double omega = *(const double *)ctx;
    dydt[0] = y[1];
    dydt[1] = -omega * omega * y[0];
    return 0;
}

int main(int argc, char **argv)
{
    const char *method_name = "dopri5";
    double rtol = 1e-8, omega = 1.0, t_end = 10.0, step = 0.01;
    int n = 11;
    const ex_arg args[] = {
        { "--method", EX_STRING, &method_name, "NAME", "euler midpoint rk4 bosh3 dopri5 dop853" },
        { "--rtol", EX_DOUBLE, &rtol, "X", "relative tolerance (atol = rtol / 100)" },
        { "--step", EX_DOUBLE, &step, "H", "step of the fixed-step methods" },
        { "--omega", EX_DOUBLE, &omega, "W", "angular frequency" },
        { "--t-end", EX_DOUBLE, &t_end, "T", "integrate over [0, T]" },
        { "--n", EX_INT, &n, "N", "number of output times (>= 2)" },
    };
    int rc = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                           "Solve x'' = -w^2 x with libnode and compare with cos/sin.");
    if (rc != EX_ARGS_OK)
        return rc == EX_ARGS_HELP ? 0 : 2;
    if (n < 2 || n > 100000)
        return ex_args_fail(argv[0], "--n must be in [2, 100000]");

    /* 1. The system: dimension 2, no parameters to differentiate, no vjp needed. */
    node_system sys = { .dim = 2, .ctx = &omega, .f = oscillator };

    /* 2. Initial state x = 1, v = 0 and the output times; they need not match the
          solver's steps (dense output fills them in). */
    double y0[2] = { 1.0, 0.0 };
    double *ts = malloc((size_t)n * sizeof *ts);
    double *ys = malloc((size_t)n * 2 * sizeof *ys);
    if (!ts || !ys) {
        fprintf(stderr, "out of memory\n");
        free(ts);
        free(ys);
        return 1;
    }
    for (int i = 0; i < n; i++)
        ts[i] = t_end * i / (n - 1);

    /* 3. Solver options: start from the defaults, pick the method and tolerance. */
    node_options opt = node_options_default();
    node_status st = node_method_parse(method_name, &opt.method);
    if (st != NODE_OK) {
        free(ts);
        free(ys);
        return ex_args_fail(argv[0], "unknown method '%s'", method_name);
    }
    opt.rtol = rtol;
    opt.atol = rtol / 100;
    if (opt.method == NODE_EULER || opt.method == NODE_MIDPOINT || opt.method == NODE_RK4)
        opt.step = step;

    /* 4. Solve. */
    node_stats stats;
    st = node_odeint(&sys, y0, ts, (size_t)n, ys, &opt, &stats);
    if (st != NODE_OK) {
        /* stats says why, and how far the solve got (rows_done rows of ys are valid). */
        fprintf(stderr, "oscillator: node_odeint: %s (stopped at t = %g, %lld of %d rows "
                "valid)\n", stats.message, stats.t_reached, (long long)stats.rows_done, n);
        free(ts);
        free(ys);
        return st == NODE_EINVAL ? 2 : 1;
    }

    /* 5. Compare with the exact solution x = cos ωt, v = -ω sin ωt. */
    printf("libnode %s, method %s, rtol %g\n", node_version(), node_method_name(opt.method), rtol);
    printf("%10s %14s %14s %14s %14s %10s\n", "t", "x", "cos(wt)", "v", "-w sin(wt)", "|error|");
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double x = cos(omega * ts[i]), v = -omega * sin(omega * ts[i]);
        double err = fmax(fabs(ys[2 * i] - x), fabs(ys[2 * i + 1] - v));
        worst = fmax(worst, err);
        printf("%10.4f %14.10f %14.10f %14.10f %14.10f %10.2e\n", ts[i], ys[2 * i], x,
               ys[2 * i + 1], v, err);
    }
    printf("max error %.2e; %lld evaluations of f, %lld steps (%lld accepted, %lld rejected)\n",
           worst, (long long)stats.nfe, (long long)stats.nsteps, (long long)stats.naccept,
           (long long)stats.nreject);
    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "oscillator");
    ex_json_str(&j, "method", node_method_name(opt.method));
    ex_json_num(&j, "rtol", rtol);
    ex_json_num(&j, "max_error", worst);
    ex_json_int(&j, "nfe", stats.nfe);
    ex_json_int(&j, "steps", stats.nsteps);
    ex_json_int(&j, "rejected", stats.nreject);
    ex_json_end(&j);

    free(ts);
    free(ys);
    return 0;
}
