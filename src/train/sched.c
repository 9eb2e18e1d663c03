/* sched.c — learning-rate schedules: constant, step decay (torch.optim.lr_scheduler
 * .StepLR: lr0 · γ^floor(it/step)) and cosine annealing (CosineAnnealingLR's closed
 * form, Loshchilov & Hutter 2017, eq. 5 without restarts), plus gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_).
 */
#include "internal.h"

#include <math.h>

node_sched node_sched_constant(double lr0)
{
    node_sched s = { .kind = NODE_SCHED_CONSTANT, .lr0 = lr0, .step_size = 1, .gamma = 1.0,
                     .T = 1, .lr_min = 0.0 };
    return s;
}

static bool nonneg(double x) { return isfinite(x) && x >= 0.0; }

node_status node_sched_lr(const node_sched *s, int64_t it, double *lr)
{
    if (!s || !lr || !nonneg(s->lr0))
        return NODE_EINVAL;
    /* Fields of a newer header (or a struct never zeroed): refused (docs/ABI.md). */
    if (s->reserved0_ || !node__zero_words(s->reserved_, sizeof s->reserved_ / sizeof s->reserved_[0]))
        return NODE_EINVAL;
    if (it < 0)
        it = 0;
    switch (s->kind) {
    case NODE_SCHED_CONSTANT:
        *lr = s->lr0;
        return NODE_OK;
    case NODE_SCHED_STEP: {
        if (s->step_size <= 0 || !nonneg(s->gamma))
            return NODE_EINVAL;
        /* γ > 1 overflows after enough decays (2^1024 = Inf): refused, not written.
           lr0 = 0 stays 0, where 0 · Inf would be NaN. */
        double r = s->lr0 == 0.0 ? 0.0 : s->lr0 * pow(s->gamma, (double)(it / s->step_size));
        if (!isfinite(r))
            return NODE_ENONFINITE;
        *lr = r;
        return NODE_OK;
    }
    case NODE_SCHED_COSINE: {
        if (s->T <= 0 || !nonneg(s->lr_min))
            return NODE_EINVAL;
        if (it >= s->T) {
            *lr = s->lr_min;
            return NODE_OK;
        }
        const double pi = 3.14159265358979323846;
        double c = cos(pi * (double)it / (double)s->T);
        *lr = s->lr_min + (s->lr0 - s->lr_min) * 0.5 * (1.0 + c);
        return NODE_OK;
    }
    }
    return NODE_EINVAL;
}

node_status node_optim_schedule(node_optim *o, const node_sched *s, int64_t it)
{
    double lr;
    if (!o)
        return NODE_EINVAL;
    node_status st = node_sched_lr(s, it, &lr);
    if (st != NODE_OK)
        return st;
    return node_optim_set_lr(o, lr);
}

/* ---- gradient clipping ------------------------------------------------------ */

node_status node_clip_grad_norm(size_t n, double *grad, double max_norm, double *norm)
{
    if (n == 0 || !grad || !(max_norm > 0.0))
        return NODE_EINVAL;
    /* Scaled sum of squares (as LAPACK's dnrm2): no overflow for huge entries. */
    double scale = 0.0, ssq = 1.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(grad[i]);
        if (a == 0.0)
            continue;
        if (!isfinite(a)) {
            scale = a;   /* Inf or NaN */
            break;
        }
        if (scale < a) {
            ssq = 1.0 + ssq * (scale / a) * (scale / a);
            scale = a;
        } else {
            ssq += (a / scale) * (a / scale);
        }
    }
    double nrm = isfinite(scale) ? scale * sqrt(ssq) : scale;
    if (scale == 0.0)
        nrm = 0.0;
    if (norm)
        *norm = nrm;
    if (!isfinite(nrm))
        return NODE_ENONFINITE;
    double coef = max_norm / (nrm + 1e-6);
    if (coef < 1.0)
        for (size_t i = 0; i < n; i++)
            grad[i] *= coef;
    return NODE_OK;
}
