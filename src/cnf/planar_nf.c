/* planar_nf.c — the discrete planar normalizing flow of Rezende & Mohamed (2015),
 * the baseline of the paper's Fig. 4.  Layer k maps
 *     z' = z + û tanh(s),    s = wᵀz + b,
 *     log p(z') = log p(z) − log |1 + h'(s) ûᵀw|,
 * with their appendix A's û = u + (m(wᵀu) − wᵀu) w/|w|², m(x) = −1 + softplus(x), so
 * that ûᵀw = m(wᵀu) > −1 and, with 0 < h' ≤ 1, the determinant 1 + h' ûᵀw > 0: every
 * layer is invertible.  (w = 0 exactly: the layer is a translation by u tanh(b) and
 * û = u is used.)  θ = [w_1 (D), u_1 (D), b_1, w_2, ...].
 *
 * The gradient of a loss L(z_K, dlogp) is reverse mode by hand: the forward pass keeps
 * every layer's input; the backward pass runs the layers in reverse, row by row, with
 * per-layer sums of ∂L/∂û and ∂L/∂(ûᵀw) that it takes through û(u, w) at the end.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

struct node_planar_nf {
    size_t D, K, np;
    double *theta;              /* np = K (2D + 1) */
    /* The last forward: batch, its layer inputs zs (batch × K × D, layer k of row r at
       (r K + k) D), û (K × D) and ûᵀw (K), and a copy of θ it used. */
    size_t batch;
    int have_forward;
    double *zs;   size_t zs_cap;
    double *uhat, *mu, *theta_used;
    double *duhat, *dmu;        /* K × D and K: the backward pass's per-layer sums */
    double *zbar;               /* D: ∂L/∂z of one row when dL_dzin is NULL */
};

node_status node_planar_nf_create(node_planar_nf **out, size_t dim, size_t layers,
                                  node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "out is NULL"));
    if (dim == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "dim is 0: the flow needs a dimension"));
    if (layers == 0)
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "layers is 0: the flow needs at least one layer"));
    size_t np, kd;
    if (!node__mul_ok(dim, 2, &np) || !node__add_ok(np, 1, &np)
        || !node__mul_ok(np, layers, &np) || np > SIZE_MAX / (4 * sizeof(double))
        || !node__mul_ok(layers, dim, &kd))
        return node__err_end(err, node__msg(msg, NODE_EINVAL,
                                            "layers = %zu and dim = %zu: the layers·(2·dim + 1) "
                                            "parameters overflow a size", layers, dim));
    node_planar_nf *f = node__calloc(1, sizeof *f);
    if (f) {
        f->D = dim;
        f->K = layers;
        f->np = np;
        f->theta = node__calloc(np, sizeof(double));
        f->theta_used = node__calloc(np, sizeof(double));
        f->uhat = node__calloc(kd, sizeof(double));
        f->duhat = node__calloc(kd, sizeof(double));
        f->mu = node__calloc(layers, sizeof(double));
        f->dmu = node__calloc(layers, sizeof(double));
        f->zbar = node__calloc(dim, sizeof(double));
    }
    if (!f || !f->theta || !f->theta_used || !f->uhat || !f->duhat || !f->mu || !f->dmu
        || !f->zbar) {
        node_planar_nf_free(f);
        return node__err_end(err, node__msg(msg, NODE_ENOMEM,
                                            "no memory for a planar flow of %zu layers",
                                            layers));
    }
    *out = f;
    return node__err_end(err, NODE_OK);
}

void node_planar_nf_free(node_planar_nf *f)
{
    if (!f)
        return;
    node__free(f->theta);
    node__free(f->theta_used);
    node__free(f->zs);
    node__free(f->uhat);
    node__free(f->duhat);
    node__free(f->mu);
    node__free(f->dmu);
    node__free(f->zbar);
    node__free(f);
}

/* w and u ~ U(−1/√D, 1/√D) (torch.nn.Linear's bound for a fan-in of D), b = 0. */
void node_planar_nf_init(node_planar_nf *f, uint64_t seed)
{
    if (!f)
        return;
    uint64_t s = seed;
    double bound = 1.0 / sqrt((double)f->D);
    for (size_t k = 0; k < f->K; k++) {
        double *p = f->theta + k * (2 * f->D + 1);
        for (size_t i = 0; i < 2 * f->D; i++) {
            double u = (double)(node__splitmix64(&s) >> 11) * 0x1p-53;
            p[i] = (2.0 * u - 1.0) * bound;
        }
        p[2 * f->D] = 0;
    }
    f->have_forward = 0;
}

size_t node_planar_nf_nparams(const node_planar_nf *f) { return f ? f->np : 0; }
double *node_planar_nf_params(node_planar_nf *f) { return f ? f->theta : NULL; }

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

node_status node_planar_nf_forward(node_planar_nf *f, size_t batch, const double *z_in,
                                   double *z_out, double *dlogp)
{
    if (!f || batch == 0 || !z_in || !z_out || !dlogp)
        return NODE_EINVAL;
    const size_t D = f->D, K = f->K, P = 2 * D + 1;
    size_t need;
    if (!node__mul_ok(batch, K * D, &need))
        return NODE_ENOMEM;
    node_status st = node__grow(&f->zs, &f->zs_cap, need);
    if (st != NODE_OK)
        return st;
    for (size_t k = 0; k < K; k++) {
        const double *w = f->theta + k * P, *u = w + D;
        double *uh = f->uhat + k * D;
        double ww = node__dot(D, w, w), wu = node__dot(D, w, u);
        if (ww > 0) {
            double c = (softplus(wu) - 1.0 - wu) / ww;
            for (size_t i = 0; i < D; i++)
                uh[i] = u[i] + c * w[i];
            f->mu[k] = softplus(wu) - 1.0;
        } else {
            memcpy(uh, u, D * sizeof(double));
            f->mu[k] = 0;
        }
    }
    for (size_t r = 0; r < batch; r++) {
        double *zr = f->zs + r * K * D;
        memcpy(zr, z_in + r * D, D * sizeof(double));
        double l = 0;
        for (size_t k = 0; k < K; k++) {
            const double *w = f->theta + k * P, *uh = f->uhat + k * D, *zk = zr + k * D;
            double h = tanh(node__dot(D, w, zk) + w[2 * D]);
            double *zn = k + 1 < K ? zr + (k + 1) * D : z_out + r * D;
            for (size_t i = 0; i < D; i++)
                zn[i] = zk[i] + uh[i] * h;
            l -= log(fabs(1.0 + (1.0 - h * h) * f->mu[k]));
        }
        dlogp[r] = l;
    }
    memcpy(f->theta_used, f->theta, f->np * sizeof(double));
    f->batch = batch;
    f->have_forward = 1;
    return NODE_OK;
}

node_status node_planar_nf_grad(node_planar_nf *f, size_t batch, const double *z_in,
                                const double *dL_dzout, const double *dL_ddlogp,
                                double *dL_dzin, double *dL_dtheta)
{
    if (!f || batch == 0 || !z_in || !dL_dzout)
        return NODE_EINVAL;
    const size_t D = f->D, K = f->K, P = 2 * D + 1;
    /* Only the gradient of the last forward pass, with the parameters it used. */
    if (!f->have_forward || batch != f->batch
        || memcmp(f->theta_used, f->theta, f->np * sizeof(double)) != 0)
        return NODE_EINVAL;
    for (size_t r = 0; r < batch; r++)
        if (memcmp(f->zs + r * K * D, z_in + r * D, D * sizeof(double)) != 0)
            return NODE_EINVAL;
    memset(f->duhat, 0, K * D * sizeof(double));
    memset(f->dmu, 0, K * sizeof(double));
    if (dL_dtheta)
        memset(dL_dtheta, 0, f->np * sizeof(double));
    for (size_t r = 0; r < batch; r++) {
        const double *zr = f->zs + r * K * D;
        const double lb = dL_ddlogp ? dL_ddlogp[r] : 0.0;
        /* zbuf: ∂L/∂z of the current layer's input (the row of dL_dzin, or scratch). */
        double *zbuf = dL_dzin ? dL_dzin + r * D : f->zbar;
        for (size_t k = K; k-- > 0;) {
            const double *w = f->theta + k * P, *uh = f->uhat + k * D, *zk = zr + k * D;
            double h = tanh(node__dot(D, w, zk) + w[2 * D]);
            double h1 = 1.0 - h * h, h2 = -2.0 * h * h1, mu = f->mu[k];
            double det = 1.0 + h1 * mu;
            /* ∂L/∂z' is dL_dzout on the last layer, zbuf after it. */
            const double *zo = k + 1 == K ? dL_dzout + r * D : zbuf;
            double a = node__dot(D, zo, uh);
            double g = a * h1 - lb * h2 * mu / det;   /* ∂L/∂s */
            double *duh = f->duhat + k * D;
            for (size_t i = 0; i < D; i++)
                duh[i] += zo[i] * h;
            f->dmu[k] += -lb * h1 / det;
            if (dL_dtheta) {
                double *gw = dL_dtheta + k * P;
                for (size_t i = 0; i < D; i++)
                    gw[i] += g * zk[i];
                gw[2 * D] += g;
            }
            /* ∂L/∂z = ∂L/∂z' + g w (in place: zo may be zbuf). */
            for (size_t i = 0; i < D; i++)
                zbuf[i] = zo[i] + g * w[i];
        }
    }
    if (!dL_dtheta)
        return NODE_OK;
    /* Through û = u + c w, c = (μ − wᵀu)/|w|², μ = ûᵀw = m(wᵀu) (where |w| > 0). */
    for (size_t k = 0; k < K; k++) {
        const double *w = f->theta + k * P, *u = w + D, *duh = f->duhat + k * D;
        double *gw = dL_dtheta + k * P, *gu = gw + D;
        double ww = node__dot(D, w, w);
        if (!(ww > 0)) {
            for (size_t i = 0; i < D; i++)
                gu[i] += duh[i];
            continue;
        }
        double wu = node__dot(D, w, u), mu = softplus(wu) - 1.0, c = (mu - wu) / ww;
        double dc = node__dot(D, duh, w);
        double dmu = f->dmu[k] + dc / ww;
        double dwu = dmu * node__sigmoid(wu) - dc / ww;
        double dww = -dc * c / ww;
        for (size_t i = 0; i < D; i++) {
            gu[i] += duh[i] + dwu * w[i];
            gw[i] += c * duh[i] + dwu * u[i] + 2.0 * dww * w[i];
        }
    }
    return NODE_OK;
}
