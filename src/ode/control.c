/* control.c — adaptive step-size control: the contract's RMS error norm, the
 * automatic initial step of Hairer, Nørsett & Wanner I, Section II.4 (p. 169,
 * Hairer's HINIT) and the PI controller of Gustafsson (1991) in the form of
 * Hairer's dopri5.f: h_new = h · safety · err^-α · err_old^β, α = 1/q - 0.75β, with
 * each method's constants from its registry entry (tableau.c).
 */
#include "ode.h"

#include <math.h>

double node__norm_rms(void *nctx, size_t dim, const double *err, const double *y,
                      const double *ynew, double rtol, double atol)
{
    (void)nctx;
    double acc = 0;
    for (size_t i = 0; i < dim; i++) {
        double a = fabs(y[i]), b = fabs(ynew[i]);
        double sk = atol + rtol * (a > b ? a : b);   /* fmax, inlined (no NaN here) */
        double r = err[i] / sk;
        acc += r * r;
    }
    return sqrt(acc / (double)dim);
}

/* ---- PI controller ------------------------------------------------------------------ */

void node__control_init(node__control *c, const node__tableau *tab)
{
    const node__step_control *k = &tab->ctl;
    c->safety = k->safety;
    c->beta = k->beta;
    c->facmin = k->facmin;
    c->facmax = k->facmax;
    c->alpha = 1.0 / k->q - 0.75 * k->beta;
    c->log_errold = -9.2103403719761836;   /* log(1e-4), dopri5.f's FACOLD */
    c->rejected = false;
}

double node__control_accept(node__control *c, double h, double err)
{
    /* err^-α · errold^β = exp(β log errold - α log err): one log, one exp a step. */
    static const double log_floor = -9.2103403719761836;   /* log(1e-4) */
    double lerr = err > 0 ? log(err) : log_floor;
    double fac = err > 0 ? c->safety * exp(c->beta * c->log_errold - c->alpha * lerr)
                         : c->facmax;
    if (lerr < log_floor)
        lerr = log_floor;
    fac = fac < c->facmin ? c->facmin : fac > c->facmax ? c->facmax : fac;
    if (c->rejected && fac > 1)          /* no growth right after a rejection */
        fac = 1;
    c->log_errold = lerr;
    c->rejected = false;
    return h * fac;
}

double node__control_reject(node__control *c, double h, double err)
{
    /* Only the I part on rejection, never below facmin (HNW I, II.4). */
    double fac = fmax(c->facmin, c->safety * pow(err, -c->alpha));
    c->rejected = true;
    return h * fmin(fac, 1.0);
}

/* ---- initial step ------------------------------------------------------------------- */

double node__initial_guess(const node__tableau *tab, node__norm_fn norm, void *nctx, size_t n,
                           const double *y0, const double *f0, double hmax, double rtol,
                           double atol, double *d1)
{
    (void)tab;
    /* A first guess from |y0| / |f0| (the step of 1% relative change)... */
    double d0 = norm(nctx, n, y0, y0, y0, rtol, atol);
    *d1 = norm(nctx, n, f0, y0, y0, rtol, atol);
    double h0 = (d0 < 1e-5 || *d1 < 1e-5 || !isfinite(d0 / *d1)) ? 1e-6 : 0.01 * d0 / *d1;
    return fmin(h0, hmax);
}

double node__initial_finish(const node__tableau *tab, node__norm_fn norm, void *nctx, size_t n,
                            const double *y0, const double *f0, double *f1, double h0,
                            double d1, double hmax, double rtol, double atol)
{
    /* ...then h^q · max(|f'|, |f|) = 0.01 with f' from the explicit Euler step. */
    double q = tab->ctl.q;
    for (size_t i = 0; i < n; i++)
        f1[i] -= f0[i];
    double d2 = norm(nctx, n, f1, y0, y0, rtol, atol) / h0;
    if (!isfinite(d2))                    /* f blew up at y1: stay at the small guess */
        return fmin(h0 * 1e-2, hmax);
    double der = fmax(d1, d2);
    double h1 = der <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / der, 1.0 / q);
    return fmin(fmin(100 * h0, h1), hmax);
}

double node__initial_step(const node__tableau *tab, const node__ode *ode, double t0,
                          const double *y0, const double *f0, double dir, double hmax,
                          double rtol, double atol, double *y1, double *f1, int64_t *nfe,
                          int *cb, double *tcb)
{
    node__norm_fn norm = ode->norm ? ode->norm : node__norm_rms;
    size_t n = ode->dim;
    *cb = 0;
    double d1;
    double h0 = node__initial_guess(tab, norm, ode->nctx, n, y0, f0, hmax, rtol, atol, &d1);
    /* the explicit Euler step that estimates the second derivative */
    for (size_t i = 0; i < n; i++)
        y1[i] = y0[i] + dir * h0 * f0[i];
    ++*nfe;
    int rc = ode->f(ode->ctx, t0 + dir * h0, y1, f1);
    if (rc != 0) {
        *cb = rc;
        *tcb = t0 + dir * h0;
        return 0;
    }
    return node__initial_finish(tab, norm, ode->nctx, n, y0, f0, f1, h0, d1, hmax, rtol, atol);
}
