/* planar.c — the planar CNF of the paper (eq. 9, Appendix A.1) with the time
 * dependence of torchdiffeq's examples/cnf.py: a hypernetwork H of t gives, at each
 * time, the M units' parameters [W (M×D), U (M×D), G (M×D), B (M)], and
 *     f(t, z) = (1/M) Σ_m u_m tanh(w_mᵀz + b_m),     u_m = U_m ⊙ node__sigmoid(G_m).
 * Everything the flow needs is analytic (h = tanh, h' = 1 − h², h'' = −2 h h'):
 *     tr ∂f/∂z  = (1/M) Σ_m h'(s_m) u_mᵀw_m,
 *     εᵀ∂f/∂z ε = (1/M) Σ_m h'(s_m) (εᵀu_m)(w_mᵀε),      s_m = w_mᵀz + b_m,
 * and the vector-Jacobian product for cotangents (a, b) of (f, div) goes through
 * g_m = ∂L/∂s_m = (1/M)(aᵀu_m h'(s_m) + b c_m h''(s_m)) (c_m the unit's u_mᵀw_m or
 * (εᵀu_m)(w_mᵀε)) to z, to the hypernetwork's outputs, and then through the
 * hypernetwork (node_mlp_vjp_ws, x = [t]) to θ and t.  H is evaluated once per call:
 * t is shared by the batch.  The workspace depends on D and M only, so no call
 * allocates once the flow exists.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

struct node_planar {
    size_t D, M, H;       /* dims, units, hypernetwork width */
    size_t nout;          /* 3MD + M: the hypernetwork's outputs */
    node_mlp *hyper;      /* 1 → H → H → nout (tanh, tanh, identity) */
    node_mlp_ws *ws;      /* for batch 1 (one evaluation of t) */
    double *out;          /* nout: H(t) = [W, U, G, B] */
    double *gout;         /* nout: the cotangent of H(t) */
    double *u;            /* M×D: U ⊙ node__sigmoid(G) */
};

node_status node_planar_create(node_planar **out, size_t dim, size_t units, size_t hidden,
                               node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    if (dim == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "dim is 0: the flow needs a dimension"));
    if (units == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "units is 0: the flow needs at least one unit"));
    if (hidden == 0)
        hidden = 32;   /* torchdiffeq's cnf.py: --hidden_dim 32 */
    size_t md, nout;
    if (!node__mul_ok(units, dim, &md) || !node__mul_ok(md, 3, &nout)
        || !node__add_ok(nout, units, &nout) || nout > SIZE_MAX / (4 * sizeof(double)))
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "units = %zu and dim = %zu: the hypernetwork's "
                                            "3·units·dim + units outputs overflow a size",
                                            units, dim));
    node_planar *p = node__calloc(1, sizeof *p);
    if (!p)
        return node__err_end(err, node__msg(msg, NODE_ENOMEM, "no memory for the flow"));
    p->D = dim;
    p->M = units;
    p->H = hidden;
    p->nout = nout;
    const size_t sizes[4] = { 1, hidden, hidden, nout };
    const node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_status st = node_mlp_create(&p->hyper, 3, sizes, acts, 0);
    if (st == NODE_OK)
        st = node_mlp_ws_create(p->hyper, 1, &p->ws);
    if (st == NODE_OK) {
        p->out = node__malloc(nout * sizeof(double));
        p->gout = node__malloc(nout * sizeof(double));
        p->u = node__malloc(md * sizeof(double));
        if (!p->out || !p->gout || !p->u)
            st = NODE_ENOMEM;
    }
    if (st != NODE_OK) {
        node_planar_free(p);
        return node__err_end(err, node__msg(msg, st,
                                            "the hypernetwork (1 → %zu → %zu → %zu) could "
                                            "not be made: %s", hidden, hidden, nout,
                                            node_strerror(st)));
    }
    *out = p;
    return node__err_end(err, NODE_OK);
}

void node_planar_free(node_planar *p)
{
    if (!p)
        return;
    node_mlp_ws_free(p->ws);
    node_mlp_free(p->hyper);
    node__free(p->out);
    node__free(p->gout);
    node__free(p->u);
    node__free(p);
}

void node_planar_init(node_planar *p, uint64_t seed)
{
    if (p)
        node_mlp_init(p->hyper, seed);
}

size_t node_planar_nparams(const node_planar *p) { return p ? node_mlp_nparams(p->hyper) : 0; }
double *node_planar_params(node_planar *p) { return p ? node_mlp_params(p->hyper) : NULL; }
node_mlp *node_planar_hypernet(node_planar *p) { return p ? p->hyper : NULL; }

/* ---- evaluation ------------------------------------------------------------------ */

/* H(t) into p->out and the gated u into p->u. */
static int hyper_eval(node_planar *p, double t)
{
    const double x = t;
    if (node_mlp_forward_ws(p->hyper, p->ws, 1, 0.0, &x, p->out) != NODE_OK)
        return (int)NODE_EINVAL;
    const size_t md = p->M * p->D;
    const double *U = p->out + md, *G = p->out + 2 * md;
    for (size_t i = 0; i < md; i++)
        p->u[i] = U[i] * node__sigmoid(G[i]);
    return 0;
}

static bool bad_call(const node_planar *p, size_t batch, const double *z)
{
    return !p || batch == 0 || !z;
}

static int planar_f(void *ctx, size_t batch, double t, const double *z, double *dzdt)
{
    node_planar *p = ctx;
    if (bad_call(p, batch, z) || !dzdt)
        return (int)NODE_EINVAL;
    int rc = hyper_eval(p, t);
    if (rc)
        return rc;
    const size_t D = p->D, M = p->M;
    const double *W = p->out, *B = p->out + 3 * M * D, inv = 1.0 / (double)M;
    for (size_t r = 0; r < batch; r++) {
        const double *zr = z + r * D;
        double *o = dzdt + r * D;
        for (size_t i = 0; i < D; i++)
            o[i] = 0;
        for (size_t m = 0; m < M; m++) {
            double h = tanh(node__dot(D, W + m * D, zr) + B[m]) * inv;
            const double *um = p->u + m * D;
            for (size_t i = 0; i < D; i++)
                o[i] += um[i] * h;
        }
    }
    return 0;
}

static int planar_div(void *ctx, size_t batch, double t, const double *z, const double *eps,
                      double *dzdt, double *div)
{
    node_planar *p = ctx;
    if (bad_call(p, batch, z) || !div)
        return (int)NODE_EINVAL;
    int rc = hyper_eval(p, t);
    if (rc)
        return rc;
    const size_t D = p->D, M = p->M;
    const double *W = p->out, *B = p->out + 3 * M * D, inv = 1.0 / (double)M;
    for (size_t r = 0; r < batch; r++) {
        const double *zr = z + r * D, *er = eps ? eps + r * D : NULL;
        double *o = dzdt ? dzdt + r * D : NULL;
        if (o)
            for (size_t i = 0; i < D; i++)
                o[i] = 0;
        double d = 0;
        for (size_t m = 0; m < M; m++) {
            const double *wm = W + m * D, *um = p->u + m * D;
            double h = tanh(node__dot(D, wm, zr) + B[m]);
            double c = er ? node__dot(D, er, um) * node__dot(D, wm, er)
                          : node__dot(D, um, wm);
            d += (1.0 - h * h) * c;
            if (o)
                for (size_t i = 0; i < D; i++)
                    o[i] += um[i] * (h * inv);
        }
        div[r] = d * inv;
    }
    return 0;
}

static int planar_div_vjp(void *ctx, size_t batch, double t, const double *z,
                          const double *eps, const double *a, const double *b, double *dzdt,
                          double *div, double *vjp_z, double *vjp_p, double *vjp_t)
{
    node_planar *p = ctx;
    if (bad_call(p, batch, z) || !a || !vjp_z)
        return (int)NODE_EINVAL;
    int rc = hyper_eval(p, t);
    if (rc)
        return rc;
    const size_t D = p->D, M = p->M, md = M * D;
    const double *W = p->out, *G = p->out + 2 * md, *B = p->out + 3 * md;
    const double inv = 1.0 / (double)M;
    const bool want_h = vjp_p || vjp_t;
    /* gout = [dW, du (then dU), dG, dB], summed over the rows. */
    double *dW = p->gout, *du = p->gout + md, *dG = p->gout + 2 * md, *dB = p->gout + 3 * md;
    if (want_h)
        memset(p->gout, 0, p->nout * sizeof(double));
    for (size_t r = 0; r < batch; r++) {
        const double *zr = z + r * D, *ar = a + r * D, *er = eps ? eps + r * D : NULL;
        const double br = b ? b[r] : 0.0;
        double *vz = vjp_z + r * D, *o = dzdt ? dzdt + r * D : NULL;
        for (size_t i = 0; i < D; i++) {
            vz[i] = 0;
            if (o)
                o[i] = 0;
        }
        double d = 0;
        for (size_t m = 0; m < M; m++) {
            const double *wm = W + m * D, *um = p->u + m * D;
            double h = tanh(node__dot(D, wm, zr) + B[m]);
            double h1 = 1.0 - h * h, h2 = -2.0 * h * h1;
            double eu = 0, we = 0, c;
            if (er) {
                eu = node__dot(D, er, um);
                we = node__dot(D, wm, er);
                c = eu * we;
            } else {
                c = node__dot(D, um, wm);
            }
            d += h1 * c;
            if (o)
                for (size_t i = 0; i < D; i++)
                    o[i] += um[i] * (h * inv);
            double g = (node__dot(D, ar, um) * h1 + br * c * h2) * inv;   /* ∂L/∂s_m */
            for (size_t i = 0; i < D; i++)
                vz[i] += g * wm[i];
            if (!want_h)
                continue;
            double *dwm = dW + m * D, *dum = du + m * D;
            double bh = br * h1 * inv;   /* the weight of ∂c_m/∂(w_m, u_m) */
            dB[m] += g;
            for (size_t i = 0; i < D; i++) {
                dwm[i] += g * zr[i];
                dum[i] += ar[i] * (h * inv);
            }
            if (er) {
                for (size_t i = 0; i < D; i++) {
                    dwm[i] += bh * eu * er[i];
                    dum[i] += bh * we * er[i];
                }
            } else {
                for (size_t i = 0; i < D; i++) {
                    dwm[i] += bh * um[i];
                    dum[i] += bh * wm[i];
                }
            }
        }
        if (div)
            div[r] = d * inv;
    }
    if (!want_h)
        return 0;
    /* u = U ⊙ σ(G): dU = du σ(G), dG = du U σ(G)(1 − σ(G)) = du u (1 − σ(G)). */
    for (size_t i = 0; i < md; i++) {
        double sg = node__sigmoid(G[i]);
        double dui = du[i];
        du[i] = dui * sg;
        dG[i] = dui * p->u[i] * (1.0 - sg);
    }
    const double x = t;
    double dt = 0;
    if (node_mlp_vjp_ws(p->hyper, p->ws, 1, 0.0, &x, p->gout, NULL, vjp_t ? &dt : NULL,
                        vjp_p, NULL) != NODE_OK)
        return (int)NODE_EINVAL;
    if (vjp_t)
        *vjp_t = dt;
    return 0;
}

node_status node_planar_flow(node_planar *p, size_t reserve_batch, node_flow *out)
{
    (void)reserve_batch;   /* the workspace does not depend on the batch */
    if (!p || !out)
        return NODE_EINVAL;
    memset(out, 0, sizeof *out);
    out->width = p->D;
    out->nparams = node_mlp_nparams(p->hyper);
    out->ctx = p;
    out->f = planar_f;
    out->div = planar_div;
    out->div_vjp = planar_div_vjp;
    return NODE_OK;
}
