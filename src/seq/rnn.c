/* rnn.c — recurrent cells over a batch with masked steps, and backprop through time
 * (Werbos 1990) that keeps only the hidden states of the forward run and recomputes
 * what each step's backward needs from (x_k, h_k, h_{k+1}).  Cell kinds are entries
 * of a registry (parameters, one step, its backward); the Elman tanh cell is the
 * first: h' = tanh(W_x x + W_h h + b), torch.nn.RNNCell with one bias.
 */
#include "internal.h"
#include "nn/nn_internal.h"   /* the vectorized tanh of this CPU's kernel level */

#include <math.h>
#include <string.h>

/* ---- the cell registry ------------------------------------------------------------- */

typedef struct cell_kind {
    node_cell_kind kind;
    const char *name;
    /* Parameters of a cell with nin inputs and nh hidden units; 0 when the count
       does not fit in a size_t. */
    size_t (*nparams)(size_t nin, size_t nh);
    /* Doubles of per-call data made from θ before a forward run (prep), and of scratch
       for one row's step or backward (sc). */
    size_t (*prep_size)(size_t nin, size_t nh);
    size_t (*scratch)(size_t nin, size_t nh);
    void (*prepare)(const double *theta, size_t nin, size_t nh, double *prep);
    /* hn = cell(x, h) for one row; hn does not alias x, h or sc. */
    void (*step)(const node__nn_kernels *kern, const double *theta, const double *prep,
                 size_t nin, size_t nh, const double *x, const double *h, double *hn,
                 double *sc);
    /* The step's backward for one row: g = ∂L/∂hn; writes dx = ∂L/∂x (nin) and dh =
       ∂L/∂h (nh), adds ∂L/∂θ into dtheta.  hn is the step's output (so cells may skip
       recomputing it); sc has scratch(nin, nh) doubles. */
    void (*step_back)(const double *theta, size_t nin, size_t nh, const double *x,
                      const double *h, const double *hn, const double *g, double *dx,
                      double *dh, double *dtheta, double *sc);
} cell_kind;

/* Elman tanh cell.  θ = [W (nh × (nin + nh), row-major, input columns first), b (nh)]. */
static size_t tanh_nparams(size_t nin, size_t nh)
{
    if (nin > SIZE_MAX - nh || nin + nh > SIZE_MAX - 1 || nh > SIZE_MAX / (nin + nh + 1))
        return 0;
    return nh * (nin + nh + 1);
}

static size_t tanh_prep_size(size_t nin, size_t nh) { return (nin + nh) * nh; }

static size_t tanh_scratch(size_t nin, size_t nh)
{
    (void)nin;
    return nh;   /* the pre-activation a, or ∂L/∂a */
}

/* Wᵀ ((nin + nh) × nh): the step's products become axpys over contiguous columns. */
static void tanh_prepare(const double *theta, size_t nin, size_t nh, double *WT)
{
    size_t w = nin + nh;
    for (size_t j = 0; j < nh; j++)
        for (size_t i = 0; i < w; i++)
            WT[i * nh + j] = theta[j * w + i];
}

static void tanh_step(const node__nn_kernels *kern, const double *theta, const double *WT,
                      size_t nin, size_t nh, const double *x, const double *h, double *hn,
                      double *a)
{
    memcpy(a, theta + nh * (nin + nh), nh * sizeof(double));   /* b */
    for (size_t i = 0; i < nin; i++) {
        const double *col = WT + i * nh;
        double xi = x[i];
        for (size_t j = 0; j < nh; j++)
            a[j] += xi * col[j];
    }
    for (size_t i = 0; i < nh; i++) {
        const double *col = WT + (nin + i) * nh;
        double hi = h[i];
        for (size_t j = 0; j < nh; j++)
            a[j] += hi * col[j];
    }
    kern->tanh_array(nh, a, hn);
}

static void tanh_step_back(const double *theta, size_t nin, size_t nh, const double *x,
                           const double *h, const double *hn, const double *g, double *dx,
                           double *dh, double *dtheta, double *sc)
{
    size_t w = nin + nh;
    double *da = sc;
    for (size_t j = 0; j < nh; j++)
        da[j] = g[j] * (1.0 - hn[j] * hn[j]);   /* tanh' = 1 − tanh² */
    memset(dx, 0, nin * sizeof(double));
    memset(dh, 0, nh * sizeof(double));
    double *db = dtheta + nh * w;
    for (size_t j = 0; j < nh; j++) {
        double d = da[j];
        if (d == 0)
            continue;
        const double *row = theta + j * w, *rh = row + nin;
        double *dW = dtheta + j * w, *dWh = dW + nin;
        for (size_t i = 0; i < nin; i++) {
            dW[i] += d * x[i];
            dx[i] += d * row[i];
        }
        for (size_t i = 0; i < nh; i++) {
            dWh[i] += d * h[i];
            dh[i] += d * rh[i];
        }
        db[j] += d;
    }
}

static const cell_kind cell_kinds[] = {
    { NODE_CELL_TANH, "tanh", tanh_nparams, tanh_prep_size, tanh_scratch, tanh_prepare,
      tanh_step, tanh_step_back },
};

static const cell_kind *cell_lookup(node_cell_kind kind)
{
    for (size_t i = 0; i < sizeof cell_kinds / sizeof cell_kinds[0]; i++)
        if (cell_kinds[i].kind == kind)
            return &cell_kinds[i];
    return NULL;
}

/* ---- the object ---------------------------------------------------------------------- */

struct node_rnn {
    const cell_kind *cell;
    const node__nn_kernels *kern;   /* chosen when the cell is made */
    size_t nin, nh, np;
    double *theta;
    /* scratch: the cell's per-call data and row scratch (forward); two carried
       gradients (batch × nh each), ∂L/∂θ (np), a dx row (nin) and the row scratch
       (backward); grown to the largest batch seen */
    double *work;
    size_t work_cap;
};

node_status node_rnn_create(node_rnn **out, node_cell_kind kind, size_t nin, size_t nhidden,
                            node_error *err)
{
    char *msg = node__err_begin(err);
    node_status st = NODE_EINVAL;
    if (!out)
        return node__err_end(err, node__msg(msg, st, "out is NULL"));
    const cell_kind *cell = cell_lookup(kind);
    if (!cell)
        return node__err_end(err, node__msg(msg, st, "kind = %d is not a cell kind of "
                                            "libnode %s", (int)kind, node_version()));
    if (nin == 0)
        return node__err_end(err, node__msg(msg, st, "nin = 0: a cell needs inputs"));
    if (nhidden == 0)
        return node__err_end(err, node__msg(msg, st, "nhidden = 0: a cell needs hidden "
                                            "units"));
    size_t np = cell->nparams(nin, nhidden);
    if (np == 0 || np > SIZE_MAX / (8 * sizeof(double)) || nin > SIZE_MAX / 64 ||
        nhidden > SIZE_MAX / 64)
        return node__err_end(err, node__msg(msg, st, "nin = %zu, nhidden = %zu: too many "
                                            "parameters to address", nin, nhidden));
    node_rnn *r = node__calloc(1, sizeof *r);
    if (!r)
        return node__err_end(err, NODE_ENOMEM);
    r->theta = node__calloc(np, sizeof(double));
    if (!r->theta) {
        node__free(r);
        return node__err_end(err, NODE_ENOMEM);
    }
    r->cell = cell;
    r->kern = node__nn_kernels_for(node__isa_select());
    r->nin = nin;
    r->nh = nhidden;
    r->np = np;
    *out = r;
    return node__err_end(err, NODE_OK);
}

void node_rnn_free(node_rnn *r)
{
    if (!r)
        return;
    node__free(r->theta);
    node__free(r->work);
    node__free(r);
}

size_t node_rnn_nparams(const node_rnn *r) { return r ? r->np : 0; }
size_t node_rnn_nin(const node_rnn *r) { return r ? r->nin : 0; }
size_t node_rnn_nhidden(const node_rnn *r) { return r ? r->nh : 0; }
double *node_rnn_params(node_rnn *r) { return r ? r->theta : NULL; }

void node_rnn_init(node_rnn *r, uint64_t seed)
{
    if (!r)
        return;
    /* torch.nn.RNNCell.reset_parameters: every weight and bias ~ U(−k, k), k = 1/√nh */
    node_rng g;
    node_rng_seed(&g, seed);
    node_rng_uniform(&g, r->np, r->theta);
    double k = 1.0 / sqrt((double)r->nh);
    for (size_t i = 0; i < r->np; i++)
        r->theta[i] = (2.0 * r->theta[i] - 1.0) * k;
}

/* ---- forward and backward over a sequence ------------------------------------------ */

/* Do nsteps × batch × width doubles fit in memory's address space? */
static bool fits(size_t nsteps, size_t batch, size_t width)
{
    size_t lim = SIZE_MAX / sizeof(double);
    return batch <= lim / width && nsteps <= lim / (batch * width) - 1;
}

node_status node_rnn_forward(node_rnn *r, size_t nsteps, size_t batch, const double *xs,
                             const unsigned char *mask, const double *h0, double *hs)
{
    if (!r || !xs || !hs || nsteps == 0 || batch == 0)
        return NODE_EINVAL;
    size_t nin = r->nin, nh = r->nh;
    if (!fits(nsteps, batch, nin) || !fits(nsteps, batch, nh))
        return NODE_EINVAL;
    const cell_kind *cell = r->cell;
    size_t nprep = cell->prep_size(nin, nh), nsc = cell->scratch(nin, nh);
    if (node__grow(&r->work, &r->work_cap, nprep + nsc))
        return NODE_ENOMEM;
    double *prep = r->work, *sc = prep + nprep;
    if (h0)
        memcpy(hs, h0, batch * nh * sizeof(double));
    else
        memset(hs, 0, batch * nh * sizeof(double));
    cell->prepare(r->theta, nin, nh, prep);
    for (size_t k = 0; k < nsteps; k++) {
        const double *hk = hs + k * batch * nh;
        double *hk1 = hs + (k + 1) * batch * nh;
        for (size_t b = 0; b < batch; b++) {
            if (mask && !mask[k * batch + b])
                memcpy(hk1 + b * nh, hk + b * nh, nh * sizeof(double));
            else
                cell->step(r->kern, r->theta, prep, nin, nh, xs + (k * batch + b) * nin,
                           hk + b * nh, hk1 + b * nh, sc);
        }
    }
    /* a NaN or Inf in h0, a read x or the parameters shows in the states */
    return node__nonfinite(hs, (nsteps + 1) * batch * nh) ? NODE_ENONFINITE : NODE_OK;
}

node_status node_rnn_backward(node_rnn *r, size_t nsteps, size_t batch, const double *xs,
                              const unsigned char *mask, const double *hs, const double *dhs,
                              double *dh0, double *dxs, double *dparams)
{
    if (!r || !xs || !hs || !dhs || nsteps == 0 || batch == 0)
        return NODE_EINVAL;
    size_t nin = r->nin, nh = r->nh, np = r->np;
    if (!fits(nsteps, batch, nin) || !fits(nsteps, batch, nh) || batch > SIZE_MAX / 16 / nh)
        return NODE_EINVAL;
    const cell_kind *cell = r->cell;
    size_t nsc = cell->scratch(nin, nh);
    size_t need = 2 * batch * nh + np + nin + nsc;
    if (node__grow(&r->work, &r->work_cap, need))
        return NODE_ENOMEM;
    double *g = r->work, *gn = g + batch * nh, *dtheta = gn + batch * nh;
    double *dxrow = dtheta + np, *sc = dxrow + nin;

    memset(dtheta, 0, np * sizeof(double));
    memcpy(g, dhs + nsteps * batch * nh, batch * nh * sizeof(double));
    for (size_t k = nsteps; k-- > 0;) {
        const double *hk = hs + k * batch * nh, *hk1 = hk + batch * nh;
        const double *dhk = dhs + k * batch * nh;
        for (size_t b = 0; b < batch; b++) {
            double *dx = dxs ? dxs + (k * batch + b) * nin : dxrow;
            const double *gb = g + b * nh;
            double *gnb = gn + b * nh;
            if (mask && !mask[k * batch + b]) {
                /* h_{k+1} = h_k: the gradient passes through; x_k was not read */
                memcpy(gnb, gb, nh * sizeof(double));
                if (dxs)
                    memset(dx, 0, nin * sizeof(double));
            } else {
                cell->step_back(r->theta, nin, nh, xs + (k * batch + b) * nin, hk + b * nh,
                                hk1 + b * nh, gb, dx, gnb, dtheta, sc);
            }
            const double *db = dhk + b * nh;
            for (size_t j = 0; j < nh; j++)
                gnb[j] += db[j];
        }
        double *t = g;
        g = gn;
        gn = t;
    }
    if (node__nonfinite(g, batch * nh) || node__nonfinite(dtheta, np) ||
        (dxs && node__nonfinite(dxs, nsteps * batch * nin)))
        return NODE_ENONFINITE;
    if (dh0)
        memcpy(dh0, g, batch * nh * sizeof(double));
    if (dparams)
        memcpy(dparams, dtheta, np * sizeof(double));
    return NODE_OK;
}
