/* bouncing_ball.c — torchdiffeq's bouncing ball (examples/bouncing_ball.py; Chen, Amos &
 * Nickel, ICLR 2021) with libnode's events: a ball falls from height 10 under gravity
 * 9.8 until its bottom (pos - radius = 0, radius 0.2) hits the floor; each bounce moves
 * it up by 1e-7 and sets vel = -vel (1 - absorption).  Prints the first bounce times
 * beside the closed form, the gradients of the last bounce time with respect to the
 * initial position and velocity, gravity and radius (the implicit-function-theorem
 * gradient of node_odeint_event_grad chained through every bounce) against central
 * differences, and learns the absorption back from the observed bounce times (Adam).
 * Run: ./bouncing_ball [--bounces N] [--iters N] [--backprop] [--out DIR]  (--help)
 * Writes DIR/bouncing_ball.svg; the last line of standard output is a JSON object.
 */
#include <libnode.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "files.h"
#include "json.h"
#include "progress.h"
#include "svg.h"

#define MAXB 64          /* bounces at most */
#define NUDGE 1e-7       /* the ball is moved up by this much at each bounce */

/* torchdiffeq's first 10 event times for the defaults (PAPER.md §6.5). */
static const double listed[10] = { 1.414214, 3.676955, 5.487149, 6.935303, 8.093827,
                                   9.020646, 9.762102, 10.355266, 10.829797, 11.209423 };

/* ---- the model: y = (pos, vel), θ = (gravity), event g = pos - radius, φ = (radius) ---- */

typedef struct ball {
    double pos0, vel0, gravity, radius, absorption, t0;
} ball;

static int ball_f(void *ctx, double t, const double *y, double *dydt)
{
    (void)t;
    const ball *b = ctx;
    dydt[0] = y[1];
    dydt[1] = -b->gravity;
    return 0;
}

static int ball_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                    double *vy, double *vp, double *vt)
{
    if (dydt)
        ball_f(ctx, t, y, dydt);
    vy[0] = 0;              /* aᵀ ∂f/∂y: f = (vel, -g) */
    vy[1] = a[0];
    if (vp)
        vp[0] = -a[1];      /* ∂f/∂g = (0, -1) */
    if (vt)
        *vt = 0;
    return 0;
}

static int floor_g(void *ctx, double t, const double *y, double *value)
{
    (void)t;
    *value = y[0] - ((const ball *)ctx)->radius;
    return 0;
}

static int floor_gvjp(void *ctx, double t, const double *y, double *dg_dt, double *dg_dy,
                      double *dg_dphi)
{
    (void)ctx; (void)t; (void)y;
    *dg_dt = 0;
    dg_dy[0] = 1;
    dg_dy[1] = 0;
    if (dg_dphi)
        dg_dphi[0] = -1;
    return 0;
}

/* One run of n bounces: times t[1..n] (t[0] = t0), the states just before each bounce
   ye[k] and the states each segment starts from ys[k] (ys[0] = initial). */
typedef struct run {
    int n;
    double t[MAXB + 1], ye[MAXB + 1][2], ys[MAXB + 1][2];
    int64_t nfe;
} run;

typedef struct model {
    ball b;
    node_system sys;
    node_event ev;
    node_options opt;
    node_solver *solver;
    node_grad_method method;
} model;

static void model_init(model *m, const ball *b, double tol, node_solver *s,
                       node_grad_method method)
{
    memset(m, 0, sizeof *m);
    m->b = *b;
    m->sys = (node_system){ .dim = 2, .nparams = 1, .ctx = &m->b, .f = ball_f,
                            .vjp = ball_vjp };
    m->ev = (node_event){ .nparams = 1, .ctx = &m->b, .g = floor_g, .g_vjp = floor_gvjp,
                          .direction = -1 };
    m->opt = node_options_default();
    m->opt.rtol = m->opt.atol = tol;
    m->solver = s;
    m->method = method;
}

/* Simulate n bounces.  0, or -1 with a message on stderr. */
static int simulate(model *m, int n, run *r)
{
    r->n = n;
    r->nfe = 0;
    r->t[0] = m->b.t0;
    r->ys[0][0] = m->b.pos0;
    r->ys[0][1] = m->b.vel0;
    for (int k = 1; k <= n; k++) {
        int32_t found;
        node_stats st;
        /* Each segment looks at most 100 time units ahead for the floor. */
        node_status s = node_solver_odeint_event(m->solver, &m->sys, r->ys[k - 1], r->t[k - 1],
                                                 r->t[k - 1] + 100, &m->ev, &m->opt, &r->t[k],
                                                 r->ye[k], &found, &st);
        r->nfe += st.nfe;
        if (s != NODE_OK || !found) {
            fprintf(stderr, "bouncing_ball: bounce %d: %s\n", k,
                    s != NODE_OK ? st.message : "no bounce within 100 time units");
            return -1;
        }
        r->ys[k][0] = r->ye[k][0] + NUDGE;
        r->ys[k][1] = -r->ye[k][1] * (1 - m->b.absorption);
    }
    return 0;
}

/* Gradient of L = Σ_k wt[k] t[k] (k = 1..n) with respect to (pos0, vel0, gravity,
   radius, absorption, t0), backward through the segments: each segment's IFT gradient
   gives the cotangents of its start state and time, the bounce before it maps them
   through pos_s = pos_e + 1e-7, vel_s = -(1 - a) vel_e.  0, or -1 with a message. */
static int gradient(model *m, const run *r, const double *wt, double grad[6], int64_t *nfe)
{
    double lt = 0, ly[2] = { 0, 0 };   /* cotangents of the current segment's end */
    memset(grad, 0, 6 * sizeof *grad);
    for (int k = r->n; k >= 1; k--) {
        lt += wt[k];
        double dy0[2], dp, dphi, dt0;
        node_stats st;
        node_status s = node_solver_event_grad(m->solver, &m->sys, r->ys[k - 1], r->t[k - 1],
                                               &m->ev, r->t[k], r->ye[k], lt, ly, m->method,
                                               dy0, &dp, &dphi, &dt0, &m->opt, &st);
        *nfe += st.nfe;
        if (s != NODE_OK) {
            fprintf(stderr, "bouncing_ball: gradient at bounce %d: %s\n", k, st.message);
            return -1;
        }
        grad[2] += dp;
        grad[3] += dphi;
        if (k > 1) {           /* through the bounce that started this segment */
            ly[0] = dy0[0];
            ly[1] = -(1 - m->b.absorption) * dy0[1];
            grad[4] += dy0[1] * r->ye[k - 1][1];   /* d vel_s / da = vel_e */
            lt = dt0;
        } else {
            grad[0] = dy0[0];
            grad[1] = dy0[1];
            grad[5] = dt0;
        }
    }
    return 0;
}

/* L(a) = Σ_k (t_k(a) - obs_k)² of a simulation with absorption a; NAN if it fails. */
static double bounce_loss(const model *m, double a, int n, const double *obs)
{
    model mm;
    ball bb = m->b;
    bb.absorption = a;
    model_init(&mm, &bb, m->opt.rtol, m->solver, m->method);
    static run rr;
    if (simulate(&mm, n, &rr) != 0)
        return NAN;
    double loss = 0;
    for (int k = 1; k <= n; k++)
        loss += (rr.t[k] - obs[k]) * (rr.t[k] - obs[k]);
    return loss;
}

/* ---- the closed form: pos = p + v s - g s²/2 reaches radius at s = (v + √(v² + 2g(p-r)))/g */

static void exact_times(const ball *b, int n, double *t)
{
    double tt = b->t0, p = b->pos0, v = b->vel0;
    for (int k = 1; k <= n; k++) {
        double s = (v + sqrt(v * v + 2 * b->gravity * (p - b->radius))) / b->gravity;
        tt += s;
        t[k] = tt;
        v = -(v - b->gravity * s) * (1 - b->absorption);
        p = b->radius + NUDGE;
    }
}

/* ---- the figure: height over time, true and learned absorption; the learning curve ---- */

static int write_svg(const char *path, model *m, const run *r, double a_learned,
                     const double *a_hist, const double *loss_hist, int iters)
{
    ex_svg svg;
    if (ex_svg_begin(&svg, path, 1100, 420) != 0)
        return -1;
    double tmax = r->t[r->n] * 1.05;
    ex_svg_panel(&svg, 0, 0, 700, 420, 0, tmax, 0, m->b.pos0 * 1.05,
                 "Bouncing ball: height over time (dots: events found by libnode)", "t",
                 "pos");
    /* each segment by dense output, true absorption, then the learned one */
    const char *colors[2] = { "#1f77b4", "#d62728" }, *dashes[2] = { NULL, "6 4" };
    for (int pass = 0; pass < 2; pass++) {
        model mm = *m;
        mm.sys.ctx = mm.ev.ctx = &mm.b;
        if (pass == 1)
            mm.b.absorption = a_learned;
        run rr;
        if (pass == 1 && simulate(&mm, r->n, &rr) != 0)
            break;
        const run *q = pass == 0 ? r : &rr;
        for (int k = 1; k <= q->n; k++) {
            enum { NS = 60 };
            double ts[NS], ys[2 * NS];
            for (int i = 0; i < NS; i++)
                ts[i] = q->t[k - 1] + (q->t[k] - q->t[k - 1]) * i / (NS - 1);
            if (node_solver_odeint(mm.solver, &mm.sys, q->ys[k - 1], ts, NS, ys, &mm.opt,
                                   NULL) != NODE_OK)
                continue;
            ex_svg_line(&svg, NS, ts, 1, ys, 2, colors[pass], pass ? 1.2 : 2, dashes[pass]);
            if (pass == 0)
                ex_svg_dot(&svg, q->t[k], q->ye[k][0], 3.5, "#000000");
        }
    }
    char data_label[64];
    snprintf(data_label, sizeof data_label, "absorption %g (the data)", m->b.absorption);
    const char *labels[2] = { data_label, "learned absorption" };
    ex_svg_legend(&svg, 2, labels, colors, dashes);
    double amax = 0, lmax = 0;
    double it[1024];
    int ni = iters + 1 < 1024 ? iters + 1 : 1024;
    for (int i = 0; i < ni; i++) {
        it[i] = i;
        amax = fmax(amax, a_hist[i]);
        lmax = fmax(lmax, loss_hist[i]);
    }
    ex_svg_panel(&svg, 720, 0, 380, 420, 0, ni > 1 ? ni - 1 : 1, 0, fmax(amax, 0.25) * 1.1,
                 "Learning the absorption from bounce times", "iteration", "absorption");
    ex_svg_line(&svg, (size_t)ni, it, 1, a_hist, 1, "#2ca02c", 2, NULL);
    double tr[2] = { 0, ni > 1 ? ni - 1 : 1 }, av[2];
    av[0] = av[1] = m->b.absorption;
    ex_svg_line(&svg, 2, tr, 1, av, 1, "#7f7f7f", 1, "4 3");
    return ex_svg_end(&svg);
}

int main(int argc, char **argv)
{
    ball b = { .pos0 = 10, .vel0 = 0, .gravity = 9.8, .radius = 0.2, .absorption = 0.2,
               .t0 = 0 };
    int nb = 10, iters = 150, backprop = 0;
    double tol = 1e-8, a_start = 0.5, lr = 0.02, eps = 1e-3;
    const char *out_dir = "bouncing_ball_out";
    const ex_arg args[] = {
        { "--bounces", EX_INT, &nb, "N", "bounces to simulate (1..64)" },
        { "--pos", EX_DOUBLE, &b.pos0, "P", "initial height" },
        { "--vel", EX_DOUBLE, &b.vel0, "V", "initial velocity" },
        { "--gravity", EX_DOUBLE, &b.gravity, "G", "gravity (> 0)" },
        { "--radius", EX_DOUBLE, &b.radius, "R", "radius: the event is pos = radius" },
        { "--absorption", EX_DOUBLE, &b.absorption, "A", "true absorption, in [0, 1)" },
        { "--tol", EX_DOUBLE, &tol, "X", "rtol = atol of every solve" },
        { "--eps", EX_DOUBLE, &eps, "H", "step of the central differences" },
        { "--start", EX_DOUBLE, &a_start, "A0", "absorption the learning starts from" },
        { "--iters", EX_INT, &iters, "N", "Adam iterations of the learning (0..1000)" },
        { "--lr", EX_DOUBLE, &lr, "LR", "Adam's learning rate" },
        { "--backprop", EX_FLAG, &backprop, NULL, "gradients by exact backprop (default: adjoint)" },
        { "--out", EX_STRING, &out_dir, "DIR", "output folder" },
    };
    int rc = ex_args_parse(argc, argv, args, sizeof args / sizeof args[0],
                           "torchdiffeq's bouncing ball: event times, their gradients, and "
                           "learning the absorption.");
    if (rc != EX_ARGS_OK)
        return rc == EX_ARGS_HELP ? 0 : 2;
    if (nb < 1 || nb > MAXB)
        return ex_args_fail(argv[0], "--bounces must be in 1..%d", MAXB);
    if (!(b.gravity > 0) || !(b.pos0 > b.radius))
        return ex_args_fail(argv[0], "--gravity must be > 0 and --pos above --radius");
    if (!(b.absorption >= 0 && b.absorption < 1) || !(a_start >= 0 && a_start < 1))
        return ex_args_fail(argv[0], "--absorption and --start must be in [0, 1)");
    if (!(tol > 0) || !(eps > 0) || !(lr > 0) || iters < 0 || iters > 1000)
        return ex_args_fail(argv[0], "--tol, --eps, --lr must be > 0, --iters in 0..1000");
    char svg_path[4096];
    if (ex_path_join(svg_path, sizeof svg_path, out_dir, "bouncing_ball.svg"))
        return ex_args_fail(argv[0], "--out path too long");

    int status = 1;
    node_solver *solver = NULL;
    node_optim *adam = NULL;
    if (node_solver_create(&solver) != NODE_OK) {
        fprintf(stderr, "bouncing_ball: out of memory\n");
        return 1;
    }
    model m;
    model_init(&m, &b, tol, solver, backprop ? NODE_GRAD_BACKPROP : NODE_GRAD_ADJOINT);

    /* 1. The bounce times against the closed form. */
    static run r;
    if (simulate(&m, nb, &r) != 0)
        goto done;
    double exact[MAXB + 1];
    exact_times(&b, nb, exact);
    int defaults = b.pos0 == 10 && b.vel0 == 0 && b.gravity == 9.8 && b.radius == 0.2 &&
                   b.absorption == 0.2 && b.t0 == 0;
    printf("libnode %s: bouncing ball, dopri5, rtol = atol = %g, %s gradients\n",
           node_version(), tol, backprop ? "backprop" : "adjoint");
    printf("%6s %18s %18s %10s%s\n", "bounce", "libnode t_k", "closed form", "|error|",
           defaults ? "   torchdiffeq" : "");
    double max_err = 0, max_listed = 0;
    for (int k = 1; k <= nb; k++) {
        double e = fabs(r.t[k] - exact[k]);
        max_err = fmax(max_err, e);
        printf("%6d %18.12f %18.12f %10.2e", k, r.t[k], exact[k], e);
        if (defaults && k <= 10) {
            max_listed = fmax(max_listed, fabs(r.t[k] - listed[k - 1]));
            printf("   %.6f", listed[k - 1]);
        }
        printf("\n");
    }
    printf("max |t_k - closed form| = %.2e over %d bounces (%lld evaluations of f)\n", max_err,
           nb, (long long)r.nfe);

    /* 2. d t_n / d(pos0, vel0, gravity, radius): IFT chained through the bounces, and
          central differences of the whole simulation. */
    double wt[MAXB + 1] = { 0 };
    wt[nb] = 1;
    double g[6];
    int64_t nfe_b = 0;
    if (gradient(&m, &r, wt, g, &nfe_b) != 0)
        goto done;
    const char *names[4] = { "pos0", "vel0", "gravity", "radius" };
    double *fields[4] = { &b.pos0, &b.vel0, &b.gravity, &b.radius };
    double max_rel = 0;
    printf("\nd t_%d / d input: %20s %20s %10s\n", nb, "IFT (libnode)", "central diff.",
           "rel. diff");
    for (int i = 0; i < 4; i++) {
        double tp, tm, keep = *fields[i];
        model mm;
        static run rr;
        *fields[i] = keep + eps;
        model_init(&mm, &b, tol, solver, m.method);
        int bad = simulate(&mm, nb, &rr);
        tp = rr.t[nb];
        *fields[i] = keep - eps;
        model_init(&mm, &b, tol, solver, m.method);
        bad |= simulate(&mm, nb, &rr);
        tm = rr.t[nb];
        *fields[i] = keep;
        if (bad)
            goto done;
        double fd = (tp - tm) / (2 * eps);
        double rel = fabs(g[i] - fd) / fmax(fabs(fd), 1e-12);
        max_rel = fmax(max_rel, rel);
        printf("%16s: %20.10f %20.10f %10.2e\n", names[i], g[i], fd, rel);
    }

    /* 3. Learn the absorption from the observed bounce times: L = Σ_k (t_k(a) - obs_k)²,
          dL/da by the same chain with dL/dt_k = 2 (t_k - obs_k). */
    double obs[MAXB + 1];
    memcpy(obs, exact, sizeof obs);   /* the closed form as the observations */
    node_optim_config cfg;
    node_optim_defaults(NODE_OPTIM_ADAM, &cfg);
    cfg.lr = lr;
    if (node_optim_create(&adam, 1, &cfg) != NODE_OK) {
        fprintf(stderr, "bouncing_ball: cannot create the optimizer\n");
        goto done;
    }
    double a = a_start, a_hist[1001], loss_hist[1001], loss = 0, da_fd = NAN, da_ift = NAN;
    ex_progress prog;
    ex_progress_start(&prog, stderr, iters);
    printf("\nlearning the absorption from the %d bounce times, from %g (Adam, lr %g)\n", nb,
           a_start, lr);
    for (int it = 0; it <= iters; it++) {
        model mm;
        ball bb = b;
        bb.absorption = a;
        static run rr;
        model_init(&mm, &bb, tol, solver, m.method);
        if (simulate(&mm, nb, &rr) != 0)
            goto done;
        loss = 0;
        for (int k = 1; k <= nb; k++) {
            double d = rr.t[k] - obs[k];
            loss += d * d;
            wt[k] = 2 * d;
        }
        a_hist[it] = a;
        loss_hist[it] = loss;
        if (it == iters)
            break;
        double gg[6];
        if (gradient(&mm, &rr, wt, gg, &nfe_b) != 0)
            goto done;
        if (it == 0) {   /* the learning's gradient, checked once */
            double lp = bounce_loss(&m, a + eps, nb, obs), lm = bounce_loss(&m, a - eps, nb, obs);
            da_fd = (lp - lm) / (2 * eps);
            da_ift = gg[4];
            printf("  dL/da at a = %g: IFT %.10g, central difference %.10g (rel. diff %.2e)\n",
                   a, da_ift, da_fd, fabs(da_ift - da_fd) / fabs(da_fd));
        }
        node_optim_step(adam, &a, &gg[4]);
        a = fmin(fmax(a, 0), 0.999);
        if (it % 25 == 0)
            printf("  iteration %4d: absorption %.6f, loss %.3e\n", it, a_hist[it], loss);
        ex_progress_draw(&prog, it + 1, 0, "absorption %.6f  loss %.3e", a, loss);
    }
    ex_progress_end(&prog);
    printf("  iteration %4d: absorption %.6f, loss %.3e (true %g)\n", iters, a, loss,
           b.absorption);

    if (ex_mkdir_p(out_dir) != 0 || write_svg(svg_path, &m, &r, a, a_hist, loss_hist, iters)) {
        fprintf(stderr, "bouncing_ball: cannot write %s\n", svg_path);
        goto done;
    }
    printf("wrote %s (height over time with the bounces; the learning curve)\n", svg_path);

    ex_json j;
    ex_json_begin(&j, stdout);
    ex_json_str(&j, "example", "bouncing_ball");
    ex_json_int(&j, "bounces", nb);
    ex_json_num(&j, "last_event_time", r.t[nb]);
    ex_json_num(&j, "max_event_time_error", max_err);
    if (defaults)
        ex_json_num(&j, "max_diff_torchdiffeq_6_digits", max_listed);
    ex_json_num(&j, "dt_dpos0", g[0]);
    ex_json_num(&j, "dt_dvel0", g[1]);
    ex_json_num(&j, "dt_dgravity", g[2]);
    ex_json_num(&j, "dt_dradius", g[3]);
    ex_json_num(&j, "gradient_max_rel_diff_fd", max_rel);
    ex_json_str(&j, "gradient", backprop ? "backprop" : "adjoint");
    ex_json_num(&j, "dloss_dabsorption_start", da_ift);
    ex_json_num(&j, "dloss_dabsorption_start_fd", da_fd);
    ex_json_num(&j, "absorption_start", a_start);
    ex_json_num(&j, "absorption_learned", a);
    ex_json_num(&j, "absorption_true", b.absorption);
    ex_json_num(&j, "final_loss", loss);
    ex_json_int(&j, "nfe_forward_first_run", r.nfe);
    ex_json_int(&j, "nfe_backward_total", nfe_b);
    ex_json_str(&j, "svg", svg_path);
    ex_json_end(&j);
    status = 0;
done:
    node_optim_free(adam);
    node_solver_free(solver);
    return status;
}
