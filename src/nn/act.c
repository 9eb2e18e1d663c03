/* act.c — activation functions and their exact derivatives, over arrays, with a
 * branch-free exp/expm1 the compiler vectorizes (Cody & Waite range reduction
 * x = k ln2 + r, an economized polynomial for expm1 on |r| <= ln2/2, 2^k built
 * from the exponent bits; Muller, "Elementary Functions", 3rd ed., ch. 11).
 * A kernel file: compiled once per instruction-set level (internal.h).
 */
#include "nn/nn_internal.h"

#include <string.h>

/* ---- vectorizable exp / expm1 -------------------------------------------------- */

static const double LOG2E  = 1.4426950408889634074;
/* ln 2 split so that k * LN2_HI is exact for |k| < 2^11 (LN2_HI has 32 bits). */
static const double LN2_HI = 6.93147180369123816490e-01;
static const double LN2_LO = 1.90821492927058770002e-10;
static const double SHIFT  = 6755399441055744.0;   /* 0x1.8p52: rounds to integers */

static inline uint64_t as_u64(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double as_f64(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* 2^k for an integer-valued kd in [-1022, 1023]: kd + 0x1.8p52 holds k in its low
   bits, and (k + 1023) << 52 is the exponent field of 2^k. */
static inline double pow2i(double kd)
{
    return as_f64((as_u64(kd + SHIFT) + 1023u) << 52);
}

/* expm1(r) = r + r² h(r) for |r| <= 0.3466 (ln2/2 plus rounding slack): h is the
   Taylor series of (expm1(r) - r)/r² to degree 23, economized to degree 9 with
   Chebyshev polynomials on [-0.3466, 0.3466] in exact rational arithmetic
   (Lanczos' economization; |error of h| < 1.1e-16, i.e. < 0.2 ulp of expm1).
   Horner with fused multiply-adds. */
static inline double expm1_poly(double r)
{
    double p = 2.5105215165649368e-08;
    p = NODE__FMA(p, r, 2.7620086491464514e-07);
    p = NODE__FMA(p, r, 2.7557255404417599e-06);
    p = NODE__FMA(p, r, 2.4801521299750923e-05);
    p = NODE__FMA(p, r, 0.00019841269874817515);
    p = NODE__FMA(p, r, 0.001388888891721154);
    p = NODE__FMA(p, r, 0.0083333333333261358);
    p = NODE__FMA(p, r, 0.041666666666624129);
    p = NODE__FMA(p, r, 0.16666666666666671);
    p = NODE__FMA(p, r, 0.50000000000000011);
    return NODE__FMA(p * r, r, r);
}

/* Range reduction u = k ln2 + r, |r| <= ln2/2 (+ rounding): returns r and
   writes t = k + 0x1.8p52, whose low bits hold k (see pow2i). */
static inline double reduce(double u, double *t)
{
    double ts = NODE__FMA(u, LOG2E, SHIFT);
    double k = ts - SHIFT;
    *t = ts;
    return NODE__FMA(-k, LN2_LO, NODE__FMA(-k, LN2_HI, u));
}

/* 2^k from t = k + 0x1.8p52 (k in [-1022, 1023]). */
static inline double pow2_shifted(double t)
{
    return as_f64((as_u64(t) + 1023u) << 52);
}

/* expm1(u) for u in [-40, 40] (NaN propagates): 2^k (1 + p) - 1 = 2^k p + (2^k - 1),
   both terms exact or singly rounded; no cancellation since 2^k (1+p) >= 1/√2. */
static inline double expm1_core(double u)
{
    double t, r = reduce(u, &t);
    double s = pow2_shifted(t);
    return NODE__FMA(s, expm1_poly(r), s - 1.0);
}

/* exp(v) for v in [-746, 0]: 2^k split in two factors so that a subnormal result
   underflows gradually instead of building an invalid exponent. */
static inline double exp_neg_core(double v)
{
    double t, r = reduce(v, &t);
    double k = t - SHIFT;
    double kh = (k * 0.5 + SHIFT) - SHIFT;
    double s1 = pow2i(kh), s2 = pow2i(k - kh);
    return NODE__FMA(s2, expm1_poly(r), s2) * s1;
}

/* tanh(x) = sign(x) e / (e + 2), e = expm1(2|x|): no cancellation anywhere, so the
   error stays within ~1.5 ulp from tiny x to the saturation at |x| = 20
   (tanh(20) rounds to 1). */
static inline double tanh_core(double x)
{
    double ax = fabs(x);
    ax = ax > 20.0 ? 20.0 : ax;                   /* a NaN stays NaN (vminpd order) */
    double u = 2.0 * ax;
    double t = NODE__FMA(u, LOG2E, SHIFT), k = t - SHIFT;
    /* One rounded ln 2 is enough here: its error k·2e-17 in r is damped by
       tanh's sensitivity (1 - y²)/2 where k is large. */
    double r = NODE__FMA(-k, 0.69314718055994530942, u);
    double s = pow2_shifted(t), p = expm1_poly(r);
    /* e = 2^k p + (2^k - 1) and e + 2 = 2^k p + (2^k + 1), each rounded once. */
    double num = NODE__FMA(s, p, s - 1.0), den = NODE__FMA(s, p, s + 1.0);
    return copysign(num / den, x);                /* NaN in, NaN out: no select */
}

/* sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below, e = exp(-|x|) <= 1:
   finite and accurate for every x, including ±1000.  Writes σ(x) and σ(-x). */
static inline void sigmoid_core(double x, double *sp, double *sm)
{
    double v = -fabs(x);
    v = v < -746.0 ? -746.0 : v;
    double e = exp_neg_core(v);
    double q = 1.0 / (1.0 + e);
    double small = e * q;
    *sp = x >= 0.0 ? q : small;
    *sm = x >= 0.0 ? small : q;                   /* NaN in: e, q, small are NaN */
}

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

static void act_tanh(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanh_core(y[i]);
    if (d)   /* 1 - y², as (1-y)(1+y): 1-y is exact for |y| >= 1/2 */
        for (size_t i = 0; i < n; i++)
            d[i] = (1.0 - y[i]) * (1.0 + y[i]);
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
        double sp, sm;
        sigmoid_core(y[i], &sp, &sm);
        y[i] = sp;
        if (d)
            d[i] = sp * sm;                       /* σ(z) σ(-z), no 1 - σ cancellation */
    }
}

static void act_elu(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double z = y[i];
        double zc = z < -40.0 ? -40.0 : (z > 0.0 ? 0.0 : z);
        double e = expm1_core(zc);
        y[i] = z > 0.0 ? z : e;
        if (d)
            d[i] = z > 0.0 ? 1.0 : e + 1.0;
    }
}

/* z σ(z); derivative σ(z) (1 + z σ(-z)). */
static void act_silu(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double z = y[i], sp, sm;
        sigmoid_core(z, &sp, &sm);
        y[i] = z * sp;
        if (d)
            d[i] = sp * NODE__FMA(z, sm, 1.0);
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

/* silu'' = s (1 - s) (2 + z (1 - 2 s)), s = σ(z), with s(1 - s) = σ(z) σ(-z). */
static void act2_silu(size_t n, double *restrict zdd, const double *restrict y,
                      const double *restrict d)
{
    (void)y;
    (void)d;
    for (size_t i = 0; i < n; i++) {
        double z = zdd[i], sp, sm;
        sigmoid_core(z, &sp, &sm);
        zdd[i] = sp * sm * NODE__FMA(z, sm - sp, 2.0);
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
