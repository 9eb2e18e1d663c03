/* vmath.h — branch-free exp / expm1 / tanh / sigmoid of one double that the compiler
 * vectorizes inside a loop (Cody & Waite range reduction x = k ln2 + r, an economized
 * polynomial for expm1 on |r| <= ln2/2, 2^k built from the exponent bits; Muller,
 * "Elementary Functions", 3rd ed., ch. 11).  Static inline: for the kernel files
 * (act.c, src/cnf/planar_kern.c), which are compiled once per instruction-set level.
 * Never installed.
 */
#ifndef LIBNODE_VMATH_H
#define LIBNODE_VMATH_H

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

/* exp(v) for v in [-746, 0] as E2 * *s1, E2 (returned) normal and *s1 = 2^kh: 2^k
   split in two factors so that a subnormal e^v underflows gradually (rounded once,
   at the product) instead of building an invalid exponent; and expm1(v) in *em1 from
   the same reduction, 2^k p + (2^k - 1) as in expm1_core (where 2^k underflows,
   expm1 is -1 anyway). */
static inline double exp_neg_split(double v, double *s1, double *em1)
{
    double t, r = reduce(v, &t);
    double k = t - SHIFT;
    double kh = (k * 0.5 + SHIFT) - SHIFT;
    double sh = pow2i(kh), s2 = pow2i(k - kh), s = sh * s2;
    double p = expm1_poly(r);
    *s1 = sh;
    *em1 = NODE__FMA(s, p, s - 1.0);
    return NODE__FMA(s2, p, s2);
}

/* The clamps and selects below choose between values that are computed either way
   (u = 2|x| first, then u > 40 ? 40 : u), never between an expression and a constant
   the compiler could fold into one arm: a floating-point operation left in one arm
   only is not executed speculatively under the default -ftrapping-math, and such a
   loop is not vectorized below AVX-512 (whose masked operations need no speculation).
   Measured: the earlier tanh (2|x| computed after the clamp) ran scalar at the AVX2
   and generic levels, 4.7 and 7.5 ns per element against 1.0 with AVX-512. */

/* e^u in two parts for u in [-1022 ln2, 1023 ln2]: writes s = 2^k and returns
   p = expm1(r), u = k ln2 + r; then e^u = s p + s and expm1(u) = s p + (s - 1), each
   rounded once, from one reduction and one polynomial. */
static inline double exp_parts(double u, double *s)
{
    double t, r = reduce(u, &t);
    *s = pow2_shifted(t);
    return expm1_poly(r);
}

/* (num + num_err) / (den + den_err), with qq = 1 / den: the rounded quotient and one
   correction from its exact residual (fused multiply-add), so that the roundings
   of qq, den and num cost nothing (first order in the small errors). */
static inline double quot(double num, double num_err, double den, double den_err, double qq)
{
    double y = num * qq;
    double rho = NODE__FMA(-y, den, num) + num_err;
    return NODE__FMA(NODE__FMA(-y, den_err, rho), qq, y);
}

/* tanh(x) = sign(x) e / (e + 2) for |x| < atanh(1/2), sign(x) (1 - 2 / (e + 2))
   above, with e = expm1(2|x|) = 2^k p + (2^k - 1) and e + 2 = 2^k p + (2^k + 1):
   no cancellation anywhere (tests/test_act_accuracy.c measures the ulps).  With it, in *d, tanh'(x) = 1 - tanh² = 4 E / (E + 1)² with E = e^{2|x|}
   from the same exponential: q = 1 / (e + 2) = 1 / (E + 1), tanh' = 4 q (1 - q) (one
   rounding after q's), so tanh' keeps its relative accuracy (a few ulp) out to |x| = 354
   (E < 2^1022), where it is 1e-307; beyond, 0 (the exact value is below that).
   ((1 - y)(1 + y) lost all digits past |x| ≈ 19.)  The reduction uses the two-part
   ln 2: an error of r passes whole into tanh'.  The value is the same whether *d is
   used or not (tanh_core: the compiler drops the derivative). */
static inline double tanh_d_core(double x, double *d)
{
    double ax = fabs(x), u = 2.0 * ax;
    u = u > 708.0 ? 708.0 : u;                    /* a NaN stays NaN */
    double s, p = exp_parts(u, &s);
    double sp = s * p;                            /* exact: s is a power of 2 */
    double num = sp + (s - 1.0), den = sp + (s + 1.0);   /* e and e + 2 */
    double q = 1.0 / den, q4 = 4.0 * q;
    *d = ax > 354.0 ? 0.0 : NODE__FMA(-q4, q, q4);        /* 4 q (1 - q) */
    /* Below tanh = 1/2 (k <= 2, |s ± 1| >= |sp|): e / (e + 2) from the rounded
       quotient, its exact residual, and the rounding errors of e and e + 2
       (Fast2Sum), so that only p's error remains. */
    double num_err = sp - (num - (s - 1.0)), den_err = sp - (den - (s + 1.0));
    double ys = quot(num, num_err, den, den_err, q);
    /* Above, 1 - 2q: the errors of q shrink with 2q. */
    double y = ax > 0.5493 ? NODE__FMA(-2.0, q, 1.0) : ys;
    return copysign(y, x);                        /* NaN in, NaN out */
}

static inline double tanh_core(double x)
{
    double d;
    return tanh_d_core(x, &d);
}

/* Where σ(-x) and x σ(-x) round to 0 (e^-760 · 760 < 2^-1075). */
static const double SIG_CLAMP = 760.0;

/* The parts of σ(±x), e = exp(-|x|) <= 1 (|x| clamped at 760): returns E2 and
   writes s1, with e = E2 s1 (exp_neg_split: E2 normal, s1 a power of 2), den =
   1 + e rounded, den_err = 1 + e - den exactly (Fast2Sum, 1 >= e), qq = 1 / den.
   Then σ(|x|) = 1 / (1 + e) and σ(-|x|) = (E2 / (1 + e)) s1 (see quot): a result
   that underflows is rounded once, at the final scaling, so that x σ(x) and the
   derivatives, which multiply σ by up to 760, stay accurate down to the
   subnormals.  NaN in, NaN everywhere. */
static inline double sigmoid_parts(double x, double *s1, double *den, double *den_err,
                                   double *qq)
{
    double v = -fabs(x);
    v = v < -SIG_CLAMP ? -SIG_CLAMP : v;
    double em1, E2 = exp_neg_split(v, s1, &em1);   /* em1: dead code here */
    double e = E2 * *s1;
    *den = 1.0 + e;
    *den_err = e - (*den - 1.0);
    *qq = 1.0 / *den;
    return E2;
}

/* 1 / (den + den_err) from qq = 1 / den, to first order in den_err (within about an
   ulp: for the derivatives). */
static inline double recip(double qq, double den_err)
{
    return NODE__FMA(-(qq * qq), den_err, qq);
}

/* σ(x) within ~1.5 ulp (one quot, its numerator chosen by the sign of x), σ(-x)
   within ~2 (tests/test_act_accuracy.c), and in *dd, σ'(x) = σ(x) σ(-x) =
   E2 s1 / (1 + e)², rounded once where it underflows (dead code where unused). */
static inline void sigmoid_core_d(double x, double *sp, double *sm, double *dd)
{
    double s1, den, den_err, qq, E2 = sigmoid_parts(x, &s1, &den, &den_err, &qq);
    int pos = x >= 0.0;
    double a = quot(pos ? 1.0 : E2, 0.0, den, den_err, qq);   /* σ(x) / sc */
    double b = (pos ? E2 : 1.0) * recip(qq, den_err);        /* σ(-x) / sc' */
    *sp = pos ? a : a * s1;
    *sm = pos ? b * s1 : b;
    *dd = (a * b) * s1;
}

/* σ(x) and σ(-x) (the derivative is dead code here). */
static inline void sigmoid_core(double x, double *sp, double *sm)
{
    double dd;
    sigmoid_core_d(x, sp, sm, &dd);
}

#endif /* LIBNODE_VMATH_H */
