/* spiral_model.c — see spiral_model.h. */
#include "spiral_model.h"

#include <stdlib.h>
#include <string.h>

int ex_spiral_true_f(void *ctx, double t, const double *y, double *dydt)
{
    static const double A[2][2] = { { -0.1, 2.0 }, { -2.0, -0.1 } };
    (void)ctx;
    (void)t;
    double u0 = y[0] * y[0] * y[0], u1 = y[1] * y[1] * y[1];
    dydt[0] = u0 * A[0][0] + u1 * A[1][0];
    dydt[1] = u0 * A[0][1] + u1 * A[1][1];
    return 0;
}

node_status ex_spiral_data(size_t N, double *t, double *ytrue, node_stats *stats)
{
    for (size_t i = 0; i < N; i++)
        t[i] = 25.0 * (double)i / (double)(N - 1);
    const double y0[2] = { 2.0, 0.0 };
    node_system truth = { .dim = 2, .f = ex_spiral_true_f };
    node_options ref = node_options_default();
    ref.method = NODE_DOP853;
    ref.rtol = ref.atol = 1e-12;
    return node_odeint(&truth, y0, t, N, ytrue, &ref, stats);
}

void ex_spiral_windows(const double *ytrue, size_t T, size_t B, const size_t *pick,
                       double *by, double *y0)
{
    for (size_t i = 0; i < B; i++)
        for (size_t k = 0; k < T; k++) {
            by[(k * B + i) * 2] = ytrue[2 * (pick[i] + k)];
            by[(k * B + i) * 2 + 1] = ytrue[2 * (pick[i] + k) + 1];
        }
    if (y0)
        memcpy(y0, by, 2 * B * sizeof *y0);
}

/* The cube goes in front of the network.  Chain rule for the vjp, with u = y³:
     vjp_y = (aᵀ ∂MLP/∂u) ⊙ 3y²,    vjp_θ = aᵀ ∂MLP/∂θ  (the MLP's own). */

/* MLP(y³) on n rows (n <= c->batch), and its vjp (dydt may be NULL). */
static int cubic_rows(ex_cubic_model *c, size_t n, double t, const double *y, double *dydt)
{
    for (size_t i = 0; i < 2 * n; i++)
        c->u[i] = y[i] * y[i] * y[i];
    return node_mlp_forward(c->mlp, n, t, c->u, dydt) != NODE_OK;
}

static int cubic_rows_vjp(ex_cubic_model *c, size_t n, double t, const double *y,
                          const double *a, double *dydt, double *vjp_y, double *vjp_p)
{
    for (size_t i = 0; i < 2 * n; i++)
        c->u[i] = y[i] * y[i] * y[i];
    if (node_mlp_vjp(c->mlp, n, t, c->u, a, dydt, c->gu, vjp_p, NULL) != NODE_OK)
        return 1;
    for (size_t i = 0; i < 2 * n; i++)
        vjp_y[i] = c->gu[i] * 3.0 * y[i] * y[i];
    return 0;
}

static int cubic_f(void *ctx, double t, const double *y, double *dydt)
{
    ex_cubic_model *c = ctx;
    return cubic_rows(c, c->batch, t, y, dydt);
}

static int cubic_vjp(void *ctx, double t, const double *y, const double *a, double *dydt,
                     double *vjp_y, double *vjp_p, double *vjp_t)
{
    ex_cubic_model *c = ctx;
    if (vjp_t)
        *vjp_t = 0.0;    /* autonomous */
    return cubic_rows_vjp(c, c->batch, t, y, a, dydt, vjp_y, vjp_p);
}

static int cubic_ens_f(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                       double *dydt)
{
    (void)worker;
    return cubic_rows(ctx, n, t[0], y, dydt);   /* the MLP has no time input */
}

static int cubic_ens_vjp(void *ctx, size_t worker, size_t n, const double *t, const double *y,
                         const double *a, double *dydt, double *vjp_y, double *vjp_p)
{
    (void)worker;
    return cubic_rows_vjp(ctx, n, t[0], y, a, dydt, vjp_y, vjp_p);   /* no time input */
}

void ex_cubic_ensemble(ex_cubic_model *c, node_ensemble_system *es)
{
    memset(es, 0, sizeof *es);
    es->dim = 2;
    es->nparams = node_mlp_nparams(c->mlp);
    es->ctx = c;
    es->f = cubic_ens_f;
    es->vjp = cubic_ens_vjp;
    es->max_rows = c->batch;
    es->workers = 1;
}

int ex_cubic_init(ex_cubic_model *c, node_mlp *m, size_t batch, node_system *sys)
{
    c->mlp = m;
    c->batch = batch;
    c->u = malloc(2 * batch * sizeof(double));
    c->gu = malloc(2 * batch * sizeof(double));
    node_system s = { .dim = 2 * batch, .nparams = node_mlp_nparams(m), .ctx = c,
                      .f = cubic_f, .vjp = cubic_vjp };
    *sys = s;
    return c->u && c->gu ? 0 : -1;
}

void ex_cubic_free(ex_cubic_model *c)
{
    free(c->u);
    free(c->gu);
    c->u = c->gu = NULL;
}

void ex_mlp_init_normal(node_mlp *m, ex_rng *r, double std)
{
    double *theta = node_mlp_params(m);
    size_t k = 0, L = node_mlp_nlayers(m);
    for (size_t l = 0; l < L; l++) {
        size_t in = node_mlp_size(m, l) + (l == 0 && node_mlp_time_input(m) ? 1 : 0);
        size_t out = node_mlp_size(m, l + 1);
        for (size_t i = 0; i < out * in; i++)
            theta[k++] = ex_rng_normal(r, 0.0, std);   /* W_l */
        for (size_t i = 0; i < out; i++)
            theta[k++] = 0.0;                          /* b_l */
    }
}
