/* bench_div.c — the cost of the MLP's divergence products (libnode/cnf.h) next to a
 * plain evaluation: f, f + vjp, the exact trace (D tangents), Hutchinson's product
 * (one tangent) and their vector-Jacobian products, in ns per row and as a ratio to
 * one f + vjp, for the FFJORD-style dynamics D+1 → 64 → 64 → D (tanh, tanh, identity;
 * time input) over a batch of 512, D = 2, 8, 32.
 * Run: ./bench_div [--quick]
 */
#define _POSIX_C_SOURCE 199309L
#include <libnode.h>

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

enum { F, FVJP, DIV_EXACT, DIV_HUTCH, VJP_EXACT, VJP_HUTCH, NOPS };
static const char *const op_name[NOPS] = {
    "f", "f+vjp", "div exact", "div hutch", "div_vjp exact", "div_vjp hutch",
};

typedef struct bench_ctx {
    node_mlp *m;
    node_mlp_ws *w;
    size_t B;
    double *x, *eps, *a, *b, *y, *div, *vx, *vp, vt;
} bench_ctx;

static void op(bench_ctx *c, int k)
{
    node_status st = NODE_OK;
    switch (k) {
    case F: st = node_mlp_forward_ws(c->m, c->w, c->B, 0.5, c->x, c->y); break;
    case FVJP:
        st = node_mlp_vjp_ws(c->m, c->w, c->B, 0.5, c->x, c->a, c->y, c->vx, c->vp, &c->vt);
        break;
    case DIV_EXACT: st = node_mlp_div(c->m, c->w, c->B, 0.5, c->x, NULL, c->y, c->div); break;
    case DIV_HUTCH: st = node_mlp_div(c->m, c->w, c->B, 0.5, c->x, c->eps, c->y, c->div); break;
    case VJP_EXACT:
        st = node_mlp_div_vjp(c->m, c->w, c->B, 0.5, c->x, NULL, c->a, c->b, c->y, c->div,
                              c->vx, c->vp, &c->vt);
        break;
    case VJP_HUTCH:
        st = node_mlp_div_vjp(c->m, c->w, c->B, 0.5, c->x, c->eps, c->a, c->b, c->y, c->div,
                              c->vx, c->vp, &c->vt);
        break;
    }
    if (st != NODE_OK) {
        fprintf(stderr, "bench_div: %s failed: %s\n", op_name[k], node_strerror(st));
        exit(1);
    }
}

/* Seconds per call: the best of 5 runs of enough calls to last ~budget/5. */
static double time_op(bench_ctx *c, int k, double budget)
{
    op(c, k);
    double t0 = now();
    long n = 0;
    do {
        op(c, k);
        n++;
    } while (now() - t0 < budget / 25);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        t0 = now();
        for (long i = 0; i < n; i++)
            op(c, k);
        double dt = (now() - t0) / (double)n;
        if (dt < best)
            best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    double budget = quick ? 0.05 : 0.5;
    const size_t dims[3] = { 2, 8, 32 }, B = 512, Hd = 64;
    printf("# bench_div: MLP D+1 -> %zu -> %zu -> D (tanh, tanh, identity), batch %zu, isa %s\n",
           Hd, Hd, B, node_isa_name());
    printf("%4s  %-14s %12s %10s\n", "D", "op", "ns/row", "x f+vjp");
    for (int di = 0; di < 3; di++) {
        size_t D = dims[di], sizes[4] = { D, Hd, Hd, D };
        node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_TANH, NODE_ACT_IDENTITY };
        bench_ctx c;
        memset(&c, 0, sizeof c);
        c.B = B;
        if (node_mlp_create(&c.m, 3, sizes, acts, 1) != NODE_OK
            || node_mlp_ws_create(c.m, B, &c.w) != NODE_OK)
            return 1;
        node_mlp_init(c.m, 1);
        size_t np = node_mlp_nparams(c.m);
        c.x = malloc(B * D * sizeof(double));
        c.eps = malloc(B * D * sizeof(double));
        c.a = malloc(B * D * sizeof(double));
        c.b = malloc(B * sizeof(double));
        c.y = malloc(B * D * sizeof(double));
        c.div = malloc(B * sizeof(double));
        c.vx = malloc(B * D * sizeof(double));
        c.vp = malloc(np * sizeof(double));
        if (!c.x || !c.eps || !c.a || !c.b || !c.y || !c.div || !c.vx || !c.vp)
            return 1;
        unsigned s = 12345;
        for (size_t i = 0; i < B * D; i++) {
            s = s * 1664525u + 1013904223u;
            c.x[i] = (double)(s >> 8) / 8388608.0 - 1.0;
            c.a[i] = 0.5 * c.x[i];
            c.eps[i] = (s >> 7) & 1 ? 1.0 : -1.0;
        }
        for (size_t r = 0; r < B; r++)
            c.b[r] = -1.0;
        double t[NOPS];
        for (int k = 0; k < NOPS; k++)
            t[k] = time_op(&c, k, budget);
        for (int k = 0; k < NOPS; k++)
            printf("%4zu  %-14s %12.1f %10.2f\n", D, op_name[k], t[k] / (double)B * 1e9,
                   t[k] / t[FVJP]);
        free(c.x), free(c.eps), free(c.a), free(c.b), free(c.y), free(c.div), free(c.vx),
            free(c.vp);
        node_mlp_ws_free(c.w);
        node_mlp_free(c.m);
    }
    return 0;
}
