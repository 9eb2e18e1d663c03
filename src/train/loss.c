/* loss.c — mean squared and mean absolute error with their gradients, over n
 * values with an optional mask of observed entries (the mean is over those).
 * MAE's gradient at a tie is 0, as torch.sign(0) = 0 makes it in PyTorch.
 */
#include "internal.h"

#include <math.h>

/* Observed entries: all n without a mask. */
static size_t count_observed(size_t n, const unsigned char *mask)
{
    if (!mask)
        return n;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += mask[i] != 0;
    return m;
}

static node_status check(size_t n, const double *pred, const double *target,
                         const double *loss)
{
    if (n == 0 || !pred || !target || !loss)
        return NODE_EINVAL;
    return NODE_OK;
}

static void zero(size_t n, double *v)
{
    for (size_t i = 0; i < n; i++)
        v[i] = 0.0;
}

/* The mean over observed entries of r² (absolute = false) or |r|, r = pred - target,
   and its gradient. */
static node_status mean_loss(size_t n, const double *pred, const double *target,
                             const unsigned char *mask, double *loss, double *grad,
                             bool absolute)
{
    node_status st = check(n, pred, target, loss);
    if (st != NODE_OK)
        return st;
    size_t m = count_observed(n, mask);
    if (m == 0) {
        *loss = 0.0;
        if (grad)
            zero(n, grad);
        return NODE_OK;
    }
    double inv = 1.0 / (double)m, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = (mask && !mask[i]) ? 0.0 : pred[i] - target[i];
        sum += absolute ? fabs(r) : r * r;
        if (grad)
            grad[i] = absolute ? (r > 0.0 ? inv : r < 0.0 ? -inv : 0.0) : 2.0 * r * inv;
    }
    *loss = sum * inv;
    return NODE_OK;
}

node_status node_loss_mse(size_t n, const double *pred, const double *target,
                          const unsigned char *mask, double *loss, double *grad)
{
    return mean_loss(n, pred, target, mask, loss, grad, false);
}

node_status node_loss_mae(size_t n, const double *pred, const double *target,
                          const unsigned char *mask, double *loss, double *grad)
{
    return mean_loss(n, pred, target, mask, loss, grad, true);
}
