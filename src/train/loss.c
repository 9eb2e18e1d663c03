/* loss.c — mean squared and mean absolute error with their gradients, over n
 * values with an optional mask of observed entries (the mean is over those).
 * MAE's gradient at a tie is 0, as torch.sign(0) = 0 makes it in PyTorch.
 * Two passes: the first sums and checks (nothing written), the second writes the
 * gradient, so that a refused call leaves *loss and grad as they were.
 */
#include "internal.h"

#include <math.h>

/* Is entry i observed?  Masked out, or (with NODE_LOSS_NAN_MISSING) a NaN target,
   means missing. */
static inline bool observed(const unsigned char *mask, const double *target, size_t i,
                            bool nan_missing)
{
    return (!mask || mask[i]) && !(nan_missing && isnan(target[i]));
}

/* Why the sum of pass 1 is not finite: the first observed entry with a non-finite
   target (EINVAL) or prediction (ENONFINITE), else an overflow.  Failure path only. */
static node_status refuse(size_t n, const double *pred, const double *target,
                          const unsigned char *mask, bool nan_missing, node_loss_kind kind,
                          char *msg)
{
    for (size_t i = 0; i < n; i++)
        if (observed(mask, target, i, nan_missing) && !isfinite(target[i]))
            return node__msg(msg, NODE_EINVAL,
                             "target[%zu] = %g at an observed entry: %s", i, target[i],
                             nan_missing ? "only a NaN target marks a missing entry"
                                         : "mask missing data out, or pass "
                                           "NODE_LOSS_NAN_MISSING for NaN targets");
    for (size_t i = 0; i < n; i++)
        if (observed(mask, target, i, nan_missing) && !isfinite(pred[i]))
            return node__msg(msg, NODE_ENONFINITE, "pred[%zu] = %g at an observed entry", i,
                             pred[i]);
    return node__msg(msg, NODE_ENONFINITE, "the %s overflows (the residuals are too large "
                     "for a double)", kind == NODE_LOSS_MSE ? "sum of squared residuals"
                                                            : "sum of absolute residuals");
}

node_status node_loss(node_loss_kind kind, size_t n, const double *pred, const double *target,
                      const unsigned char *mask, uint32_t flags, double *loss, double *grad,
                      node_error *err)
{
    char *msg = node__err_begin(err);
    node_status st = NODE_EINVAL;
    if (kind != NODE_LOSS_MSE && kind != NODE_LOSS_MAE)
        return node__err_end(err, node__msg(msg, st, "kind = %d is not a loss of libnode %s",
                                            (int)kind, node_version()));
    if (flags & ~(uint32_t)NODE_LOSS_NAN_MISSING)
        return node__err_end(err, node__msg(msg, st, "flags = %#x: unknown flags (only "
                                            "NODE_LOSS_NAN_MISSING)", (unsigned)flags));
    if (n == 0)
        return node__err_end(err, node__msg(msg, st, "n = 0: there are no values"));
    if (!pred)
        return node__err_end(err, node__msg(msg, st, "pred is NULL"));
    if (!target)
        return node__err_end(err, node__msg(msg, st, "target is NULL"));
    if (!loss)
        return node__err_end(err, node__msg(msg, st, "loss is NULL"));

    /* Pass 1: the count and the sum over observed entries.  A missing entry adds 0
       whatever its values; a NaN or Inf in an observed one (or an overflow) leaves the
       sum NaN or Inf, and refuse() then says which. */
    const bool nan_missing = flags & NODE_LOSS_NAN_MISSING;
    const bool absolute = kind == NODE_LOSS_MAE;
    size_t m = 0;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        bool obs = observed(mask, target, i, nan_missing);
        double r = obs ? pred[i] - target[i] : 0.0;   /* NaN or ±Inf if either is */
        m += obs;
        sum += absolute ? fabs(r) : r * r;
    }
    if (!isfinite(sum))
        return node__err_end(err, refuse(n, pred, target, mask, nan_missing, kind, msg));
    if (m == 0) {
        *loss = 0.0;
        if (grad)
            for (size_t i = 0; i < n; i++)
                grad[i] = 0.0;
        return node__err_end(err, NODE_OK);
    }

    /* Pass 2: the gradient, 0 at missing entries. */
    const double inv = 1.0 / (double)m;
    if (grad)
        for (size_t i = 0; i < n; i++) {
            bool obs = observed(mask, target, i, nan_missing);
            double r = obs ? pred[i] - target[i] : 0.0;
            grad[i] = absolute ? (r > 0.0 ? inv : r < 0.0 ? -inv : 0.0) : 2.0 * r * inv;
        }
    *loss = sum * inv;
    return node__err_end(err, NODE_OK);
}

node_status node_loss_mse(size_t n, const double *pred, const double *target,
                          const unsigned char *mask, double *loss, double *grad)
{
    return node_loss(NODE_LOSS_MSE, n, pred, target, mask, 0, loss, grad, NULL);
}

node_status node_loss_mae(size_t n, const double *pred, const double *target,
                          const unsigned char *mask, double *loss, double *grad)
{
    return node_loss(NODE_LOSS_MAE, n, pred, target, mask, 0, loss, grad, NULL);
}
