/* act_old.h — the activation kernels as they were before issue #16 (vmath.h and act.c
 * of commit a63f1d4: tanh by e/(e+2) with a division, the derivative by (1-y)(1+y)
 * in a second loop; sigmoid/SiLU by a division; ELU's derivative as expm1 + 1), kept
 * for bench_act only, so that the old and the new code are timed in the same run.
 * Included once per instruction-set level with OLD_SUFFIX (name suffix), OLD_TARGET
 * (a target attribute or nothing) and OLD_FMA (fma() or a*b+c, as NODE__FMA was at
 * that level) defined; no include guard.
 */
#define OLD_CAT2(a, b) a##_##b
#define OLD_CAT(a, b) OLD_CAT2(a, b)
#define OLD(name) OLD_CAT(name, OLD_SUFFIX)

OLD_TARGET static inline double OLD(old_expm1_poly)(double r)
{
    double p = 2.5105215165649368e-08;
    p = OLD_FMA(p, r, 2.7620086491464514e-07);
    p = OLD_FMA(p, r, 2.7557255404417599e-06);
    p = OLD_FMA(p, r, 2.4801521299750923e-05);
    p = OLD_FMA(p, r, 0.00019841269874817515);
    p = OLD_FMA(p, r, 0.001388888891721154);
    p = OLD_FMA(p, r, 0.0083333333333261358);
    p = OLD_FMA(p, r, 0.041666666666624129);
    p = OLD_FMA(p, r, 0.16666666666666671);
    p = OLD_FMA(p, r, 0.50000000000000011);
    return OLD_FMA(p * r, r, r);
}

OLD_TARGET static inline double OLD(old_reduce)(double u, double *t)
{
    double ts = OLD_FMA(u, 1.4426950408889634074, 6755399441055744.0);
    double k = ts - 6755399441055744.0;
    *t = ts;
    return OLD_FMA(-k, 1.90821492927058770002e-10, OLD_FMA(-k, 6.93147180369123816490e-01, u));
}

OLD_TARGET static inline double OLD(old_pow2_shifted)(double t)
{
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    u = (u + 1023u) << 52;
    memcpy(&t, &u, sizeof t);
    return t;
}

OLD_TARGET static inline double OLD(old_expm1_core)(double u)
{
    double t, r = OLD(old_reduce)(u, &t);
    double s = OLD(old_pow2_shifted)(t);
    return OLD_FMA(s, OLD(old_expm1_poly)(r), s - 1.0);
}

OLD_TARGET static inline double OLD(old_exp_neg_core)(double v)
{
    double t, r = OLD(old_reduce)(v, &t);
    double k = t - 6755399441055744.0;
    double kh = (k * 0.5 + 6755399441055744.0) - 6755399441055744.0;
    double s1 = OLD(old_pow2_shifted)(kh + 6755399441055744.0);
    double s2 = OLD(old_pow2_shifted)((k - kh) + 6755399441055744.0);
    return OLD_FMA(s2, OLD(old_expm1_poly)(r), s2) * s1;
}

OLD_TARGET static inline double OLD(old_tanh_core)(double x)
{
    double ax = fabs(x);
    ax = ax > 20.0 ? 20.0 : ax;
    double u = 2.0 * ax;
    double t = OLD_FMA(u, 1.4426950408889634074, 6755399441055744.0);
    double k = t - 6755399441055744.0;
    double r = OLD_FMA(-k, 0.69314718055994530942, u);
    double s = OLD(old_pow2_shifted)(t), p = OLD(old_expm1_poly)(r);
    double num = OLD_FMA(s, p, s - 1.0), den = OLD_FMA(s, p, s + 1.0);
    return copysign(num / den, x);
}

OLD_TARGET static inline void OLD(old_sigmoid_core)(double x, double *sp, double *sm)
{
    double v = -fabs(x);
    v = v < -746.0 ? -746.0 : v;
    double e = OLD(old_exp_neg_core)(v);
    double q = 1.0 / (1.0 + e);
    double small = e * q;
    *sp = x >= 0.0 ? q : small;
    *sm = x >= 0.0 ? small : q;
}

OLD_TARGET static void OLD(old_act_tanh)(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++)
        y[i] = OLD(old_tanh_core)(y[i]);
    if (d)
        for (size_t i = 0; i < n; i++)
            d[i] = (1.0 - y[i]) * (1.0 + y[i]);
}

OLD_TARGET static void OLD(old_act_sigmoid)(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double sp, sm;
        OLD(old_sigmoid_core)(y[i], &sp, &sm);
        y[i] = sp;
        if (d)
            d[i] = sp * sm;
    }
}

OLD_TARGET static void OLD(old_act_elu)(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double z = y[i];
        double zc = z < -40.0 ? -40.0 : (z > 0.0 ? 0.0 : z);
        double e = OLD(old_expm1_core)(zc);
        y[i] = z > 0.0 ? z : e;
        if (d)
            d[i] = z > 0.0 ? 1.0 : e + 1.0;
    }
}

OLD_TARGET static void OLD(old_act_silu)(size_t n, double *restrict y, double *restrict d)
{
    for (size_t i = 0; i < n; i++) {
        double z = y[i], sp, sm;
        OLD(old_sigmoid_core)(z, &sp, &sm);
        y[i] = z * sp;
        if (d)
            d[i] = sp * OLD_FMA(z, sm, 1.0);
    }
}

/* In registry order of the names below (bench_act matches them by name). */
static void (*const OLD(old_kernels)[])(size_t, double *, double *) = {
    OLD(old_act_tanh), OLD(old_act_sigmoid), OLD(old_act_silu), OLD(old_act_elu)
};

#undef OLD_CAT2
#undef OLD_CAT
#undef OLD
