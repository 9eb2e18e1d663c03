/* act.c — activation functions and their exact derivatives, over arrays, with the
 * branch-free exp/expm1/tanh/sigmoid of vmath.h that the compiler vectorizes.
 * A kernel file: compiled once per instruction-set level (internal.h).
 */
#include "nn/vmath.h"

/* ---- vectorizable elementary functions over arrays ----------------------------- */

void node__tanh_array(size_t n, const double *restrict x, double *restrict out)
{
    /* x and out are distinct by contract (act_tanh has its own in-place loop). */
    for (size_t i = 0; i < n; i++)
        out[i] = tanh_core(x[i]);
}

void node__sigmoid_array(size_t n, const double *restrict x, double *restrict out)
{
    for (size_t i = 0; i < n; i++) {
        double sp, sm;
        sigmoid_core(x[i], &sp, &sm);
        out[i] = sp;
    }
}

void node__expm1_array(size_t n, const double *restrict x, double *restrict out)
{
    for (size_t i = 0; i < n; i++) {
        double u = x[i];
        double uc = u > 40.0 ? 40.0 : (u < -40.0 ? -40.0 : u);
        double e = expm1_core(uc);
        out[i] = u > 40.0 ? exp(u) - 1.0 : e;     /* rare: large arguments via libm */
    }
}

/* ---- activations over a layer -------------------------------------------------
   One kernel per registry line (nn_internal.h: NODE__ACTIVATIONS), a node__act_fn:
   y[i] = act(y[i]) in place, and d[i] = act'(z) when d is not NULL.  y and d never
   alias (distinct workspace rows). */

static void act_identity(size_t n, double *restrict y, double *restrict d)
{
    (void)y;
    if (d)
        for (size_t i = 0; i < n; i++)
            d[i] = 1.0;
}

/* With d: tanh and tanh' from one exponential (vmath.h: tanh_d_core). */
static void act_tanh(size_t n, double *restrict y, double *restrict d)
{
    if (d)
        for (size_t i = 0; i < n; i++) {
            double di;
            y[i] = tanh_d_core(y[i], &di);
            d[i] = di;
        }
    else
        for (size_t i = 0; i < n; i++)
            y[i] = tanh_core(y[i]);
}

static void act_relu(size_t n, double *restrict y, double *restrict d)
{
    if (d)
        for (size_t i = 0; i < n; i++)
            d[i] = y[i] > 0.0 ? 1.0 : 0.0;
    for (size_t i = 0; i < n; i++)
        y[i] = y[i] < 0.0 ? 0.0 : y[i];
}

/* log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}); derivative σ(z).  libm per element. */
static void act_softplus(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double z = y[i];
        if (d) {
            double sp, sm;
            sigmoid_core(z, &sp, &sm);
            d[i] = sp;
        }
        y[i] = (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z)));
    }
}

static void act_sigmoid(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double sp, sm, dd;
        sigmoid_core_d(y[i], &sp, &sm, &dd);
        y[i] = sp;
        if (d)
            d[i] = dd;                            /* σ(z) σ(-z), no 1 - σ cancellation */
    }
}

static void act_elu(size_t n, double *restrict y, double *restrict d)
{
    if (d)
        for (size_t i = 0; i < n; i++) {
            double z = y[i];
            double zc = z > 0.0 ? 0.0 : z;
            zc = zc < -746.0 ? -746.0 : zc;
            double s1, em1, ez = exp_neg_split(zc, &s1, &em1) * s1;
            y[i] = z > 0.0 ? z : em1;
            d[i] = z > 0.0 ? 1.0 : ez;
        }
    else
        for (size_t i = 0; i < n; i++) {
            double z = y[i];
            double zc = z > 0.0 ? 0.0 : z;
            zc = zc < -40.0 ? -40.0 : zc;
            double e = expm1_core(zc);
            y[i] = z > 0.0 ? z : e;
        }
}

/* z σ(z), from (z E2 or z) / (1 + e) by quot with z E2's exact rounding error, so
   that only E2's own error remains; derivative σ(z) (1 + z σ(-z)).  Where σ(z) may
   underflow (z < 0), the products are formed with its normal part and scaled last,
   so that they round once (vmath.h: sigmoid_parts); z is clamped to ±760 (σ's
   clamp) where σ(z) or σ(-z) is 0 to the last bit: silu(-Inf) = -0, silu'(±Inf) =
   0, 1; silu(z) = z past 760. */
static void act_silu(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double z = y[i];
        double s1, den, den_err, qq, E2 = sigmoid_parts(z, &s1, &den, &den_err, &qq);
        double zc = z < -SIG_CLAMP ? -SIG_CLAMP : (z > SIG_CLAMP ? SIG_CLAMP : z);
        double ze = zc * E2, ze_err = NODE__FMA(zc, E2, -ze);
        int pos = z >= 0.0;
        double sc = pos ? 1.0 : s1;
        double v = quot(pos ? zc : ze, pos ? 0.0 : ze_err, den, den_err, qq) * sc;
        y[i] = z > SIG_CLAMP ? z : v;
        if (d) {
            double q = recip(qq, den_err), eq = E2 * q;          /* σ(-|z|) / s1 */
            double sn = pos ? q : eq, sm = pos ? eq * s1 : q;    /* σ(z) = sn sc */
            d[i] = (sn * NODE__FMA(zc, sm, 1.0)) * sc;
        }
    }
}

/* ---- second derivatives --------------------------------------------------------
   One node__act2_fn per registry line: on entry zdd[i] holds the pre-activation z,
   y[i] = act(z) and d[i] = act'(z) (as the kernel above wrote them); on exit
   zdd[i] = act''(z).  For the divergence's vector-Jacobian product (div.c). */

static void act2_identity(size_t n, double *restrict zdd, const double *restrict y,
                          const double *restrict d)
{
    (void)y;
    (void)d;
    for (size_t i = 0; i < n; i++)
        zdd[i] = 0.0;
}

/* relu'' = 0 (its kink is a point of slope 0, as act_relu's derivative). */
static void act2_relu(size_t n, double *restrict zdd, const double *restrict y,
                      const double *restrict d)
{
    act2_identity(n, zdd, y, d);
}

/* tanh'' = -2 tanh tanh'. */
static void act2_tanh(size_t n, double *restrict zdd, const double *restrict y,
                      const double *restrict d)
{
    for (size_t i = 0; i < n; i++)
        zdd[i] = -2.0 * y[i] * d[i];
}

/* σ'' = σ' (1 - 2σ). */
static void act2_sigmoid(size_t n, double *restrict zdd, const double *restrict y,
                         const double *restrict d)
{
    for (size_t i = 0; i < n; i++)
        zdd[i] = d[i] * (1.0 - 2.0 * y[i]);
}

/* softplus' = σ, so softplus'' = σ (1 - σ). */
static void act2_softplus(size_t n, double *restrict zdd, const double *restrict y,
                          const double *restrict d)
{
    (void)y;
    for (size_t i = 0; i < n; i++)
        zdd[i] = d[i] * (1.0 - d[i]);
}

/* elu'' = 0 for z > 0, e^z (= elu'(z)) for z <= 0. */
static void act2_elu(size_t n, double *restrict zdd, const double *restrict y,
                     const double *restrict d)
{
    (void)y;
    for (size_t i = 0; i < n; i++)
        zdd[i] = zdd[i] > 0.0 ? 0.0 : d[i];
}

/* silu'' = s (1 - s) (2 + z (1 - 2 s)), s = σ(z), with s(1 - s) = σ(z) σ(-z) scaled
   last (see act_silu). */
static void act2_silu(size_t n, double *restrict zdd, const double *restrict y,
                      const double *restrict d)
{
    (void)y;
    (void)d;
    for (size_t i = 0; i < n; i++) {
        double z = zdd[i];
        double s1, den, den_err, qq, E2 = sigmoid_parts(z, &s1, &den, &den_err, &qq);
        double zc = z < -SIG_CLAMP ? -SIG_CLAMP : (z > SIG_CLAMP ? SIG_CLAMP : z);
        double q = recip(qq, den_err), eq = E2 * q;              /* σ(-|z|) / s1 */
        double small = eq * s1, sp = z >= 0.0 ? q : small, sm = z >= 0.0 ? small : q;
        zdd[i] = ((eq * q) * NODE__FMA(zc, sm - sp, 2.0)) * s1;
    }
}

/* The table of this level, in registry order: each line's act_<kernel>. */
#define NODE__ACT_KERNEL(value, name, kernel, vec, unit) act_##kernel,
const node__act_fn node__act_kernels[NODE__NACT] = { NODE__ACTIVATIONS(NODE__ACT_KERNEL) };

/* And each line's act2_<kernel>: an activation without its second derivative does
   not build. */
#define NODE__ACT2_KERNEL(value, name, kernel, vec, unit) act2_##kernel,
const node__act2_fn node__act2_kernels[NODE__NACT] = { NODE__ACTIVATIONS(NODE__ACT2_KERNEL) };

node_status node__act_apply(node_activation a, size_t n, double *y, double *d)
{
    size_t i = node__act_index((int64_t)a);
    if (i == NODE__NACT)
        return NODE_EINVAL;
    node__act_kernels[i](n, y, d);
    return NODE_OK;
}
