/* dist.c — the Gaussian negative log-likelihood of the latent ODE's decoder and the KL
 * divergence of a diagonal Gaussian from N(0, I) (Kingma & Welling 2014, Appendix B),
 * with their gradients.  Two passes: the first checks and sums (nothing written), the
 * second writes, so that a refused call leaves the caller's arrays as they were.
 */
#include "internal.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178   /* ½ log 2π */

/* ---- Gaussian NLL ------------------------------------------------------------------ */

/* Entry i's scaled residual e = (x − μ) / σ, σ = exp(v / 2), and its term
   ½ e² + ½ v + ½ log 2π. */
static inline double residual(double x, double mu, double v) { return (x - mu) * exp(-0.5 * v); }

node_status node_gaussian_nll(size_t n, const double *x, const double *mu,
                              const double *logvar, double logvar_const,
                              const unsigned char *mask, double *nll, double *dmu,
                              double *dlogvar, node_error *err)
{
    char *msg = node__err_begin(err);
    node_status st = NODE_EINVAL;
    if (!x)
        return node__err_end(err, node__msg(msg, st, "x is NULL"));
    if (!mu)
        return node__err_end(err, node__msg(msg, st, "mu is NULL"));
    if (!nll)
        return node__err_end(err, node__msg(msg, st, "nll is NULL"));
    if (dlogvar && !logvar)
        return node__err_end(err, node__msg(msg, st, "dlogvar is given but logvar is NULL: "
                                            "there is no per-entry log-variance to "
                                            "differentiate"));
    if (!logvar && !isfinite(logvar_const))
        return node__err_end(err, node__msg(msg, st, "logvar_const = %g is not finite",
                                            logvar_const));

    /* pass 1: check every observed entry, sum, and make sure the gradients exist */
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i])
            continue;
        double v = logvar ? logvar[i] : logvar_const;
        if (!isfinite(x[i]))
            return node__err_end(err, node__msg(msg, st, "x[%zu] = %g at an observed entry "
                                                "is not finite", i, x[i]));
        if (!isfinite(mu[i]))
            return node__err_end(err, node__msg(msg, st, "mu[%zu] = %g at an observed entry "
                                                "is not finite", i, mu[i]));
        if (!isfinite(v))
            return node__err_end(err, node__msg(msg, st, "logvar[%zu] = %g at an observed "
                                                "entry is not finite", i, v));
        double e = residual(x[i], mu[i], v);
        sum += 0.5 * e * e + 0.5 * v + HALF_LOG_2PI;
        bool ok = isfinite(sum) && isfinite(e * e);
        if (ok && dmu)
            ok = isfinite(e * exp(-0.5 * v));
        if (!ok)
            return node__err_end(err, node__msg(msg, NODE_ENONFINITE,
                                                "the NLL or its gradient overflows at entry "
                                                "%zu (x = %g, mu = %g, logvar = %g)",
                                                i, x[i], mu[i], v));
    }

    /* pass 2: write */
    *nll = sum;
    for (size_t i = 0; i < n && (dmu || dlogvar); i++) {
        if (mask && !mask[i]) {
            if (dmu)
                dmu[i] = 0;
            if (dlogvar)
                dlogvar[i] = 0;
            continue;
        }
        double v = logvar ? logvar[i] : logvar_const;
        double e = residual(x[i], mu[i], v);
        if (dmu)
            dmu[i] = -e * exp(-0.5 * v);          /* (μ − x) / σ² */
        if (dlogvar)
            dlogvar[i] = 0.5 - 0.5 * e * e;       /* ½ − (x − μ)² / (2σ²) */
    }
    return node__err_end(err, NODE_OK);
}

/* ---- KL(N(μ, diag σ²) ‖ N(0, I)) ----------------------------------------------------- */

/* e^v − 1 − v without cancellation: its Taylor series Σ_{k>=2} v^k / k! where |v| < ½
   (where expm1(v) − v would lose the digits that matter as σ² → 1), else expm1(v) − v
   (at most two bits lost). */
static double expm1_minus_x(double v)
{
    if (!(fabs(v) < 0.5))
        return expm1(v) - v;
    double term = 0.5 * v * v, sum = 0;
    for (int k = 3; k < 40; k++) {
        sum += term;
        term *= v / k;
        if (fabs(term) <= 0x1p-60 * sum)
            break;
    }
    return sum;
}

node_status node_kl_normal(size_t n, const double *mu, const double *logvar, double *kl,
                           double *dmu, double *dlogvar, node_error *err)
{
    char *msg = node__err_begin(err);
    node_status st = NODE_EINVAL;
    if (!mu)
        return node__err_end(err, node__msg(msg, st, "mu is NULL"));
    if (!logvar)
        return node__err_end(err, node__msg(msg, st, "logvar is NULL"));
    if (!kl)
        return node__err_end(err, node__msg(msg, st, "kl is NULL"));

    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(mu[i]))
            return node__err_end(err, node__msg(msg, st, "mu[%zu] = %g is not finite", i,
                                                mu[i]));
        if (!isfinite(logvar[i]))
            return node__err_end(err, node__msg(msg, st, "logvar[%zu] = %g is not finite", i,
                                                logvar[i]));
        double v = logvar[i];
        sum += 0.5 * (expm1_minus_x(v) + mu[i] * mu[i]);
        if (!isfinite(sum))
            return node__err_end(err, node__msg(msg, NODE_ENONFINITE,
                                                "the KL overflows at entry %zu (mu = %g, "
                                                "logvar = %g)", i, mu[i], v));
    }

    *kl = sum;
    for (size_t i = 0; i < n; i++) {
        if (dmu)
            dmu[i] = mu[i];
        if (dlogvar)
            dlogvar[i] = 0.5 * expm1(logvar[i]);
    }
    return node__err_end(err, NODE_OK);
}
