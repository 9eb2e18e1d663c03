/* rnn.c — recurrent cells over a batch with masked steps, and backprop through time
 * (Werbos 1990) that keeps only the hidden states of the forward run and recomputes
 * what each step's backward needs from (x_k, h_k, h_{k+1}).  Cell kinds are entries
 * of a registry (parameters, one step, its backward): the Elman tanh cell,
 * h' = tanh(W_x x + W_h h + b) (torch.nn.RNNCell with one bias), and the GRU.
 */
#include "internal.h"
#include "nn/nn_internal.h"   /* the vectorized tanh of this CPU's kernel level */

#include <math.h>
#include <string.h>

/* ---- the cell registry ------------------------------------------------------------- */

/* A step works on a block of `na` rows that all step at time k, gathered feature-major
   (the MLP's layout, src/nn/nn_internal.h): X is (nin + nh) × ld with rows 0 .. nin-1
   the inputs x and rows nin .. the states h, one column per stepping row, ld = 1 when
   na == 1, else node__padw(na) with the padding columns zero.  So the products are the
   MLP's dispatched layer kernels over the block, not one matrix-vector product per row. */
typedef struct cell_kind {
    node_cell_kind kind;
    const char *name;
    /* Parameters of a cell with nin inputs and nh hidden units; 0 when the count
       does not fit in a size_t. */
    size_t (*nparams)(size_t nin, size_t nh);
    /* Doubles of scratch for a step or its backward over ld columns. */
    size_t (*scratch)(size_t nin, size_t nh, size_t ld);
    /* Hn (nh × ld) = cell(X); Hn does not alias X or sc. */
    void (*step)(const node__nn_kernels *kern, const double *theta, size_t nin, size_t nh,
                 size_t na, size_t ld, const double *X, double *Hn, double *sc);
    /* The step's backward: G (nh × ld) = ∂L/∂Hn; writes dX ((nin + nh) × ld) = ∂L/∂X and
       adds ∂L/∂θ over the na columns into dtheta.  Hn is the step's output (cells may
       skip recomputing it). */
    void (*step_back)(const node__nn_kernels *kern, const double *theta, size_t nin,
                      size_t nh, size_t na, size_t ld, const double *X, const double *Hn,
                      const double *G, double *dX, double *dtheta, double *sc);
} cell_kind;

/* Elman tanh cell.  θ = [W (nh × (nin + nh), row-major, input columns first), b (nh)]. */
static size_t tanh_nparams(size_t nin, size_t nh)
{
    if (nin > SIZE_MAX - nh || nin + nh > SIZE_MAX - 1 || nh > SIZE_MAX / (nin + nh + 1))
        return 0;
    return nh * (nin + nh + 1);
}

/* The pre-activation (or ∂L/∂a), the products' pack and the weight gradient's scratch
   (nn_internal.h: the larger of its two forms). */
static size_t tanh_scratch(size_t nin, size_t nh, size_t ld)
{
    size_t w = nin + nh;
    size_t t1 = (ld + w) * node__padw(nh) + NODE__PACK, t2 = 8 * nh * (w + 1);
    return nh * ld + NODE__PACK + (t1 > t2 ? t1 : t2);
}

static void tanh_step(const node__nn_kernels *kern, const double *theta, size_t nin,
                      size_t nh, size_t na, size_t ld, const double *X, double *Hn,
                      double *sc)
{
    (void)na;
    size_t w = nin + nh;
    double *A = sc, *pack = A + nh * ld;
    kern->layer_fwd(nh, w, ld, theta, theta + nh * w, X, A, pack);
    kern->tanh_array(nh * ld, A, Hn);
}

static void tanh_step_back(const node__nn_kernels *kern, const double *theta, size_t nin,
                           size_t nh, size_t na, size_t ld, const double *X,
                           const double *Hn, const double *G, double *dX, double *dtheta,
                           double *sc)
{
    size_t w = nin + nh;
    double *dA = sc, *pack = dA + nh * ld, *wsc = pack + NODE__PACK;
    for (size_t j = 0; j < nh; j++)
        for (size_t c = 0; c < ld; c++) {   /* tanh' = 1 − tanh²; padding stays 0 */
            double hn = Hn[j * ld + c];
            dA[j * ld + c] = c < na ? G[j * ld + c] * (1.0 - hn * hn) : 0.0;
        }
    kern->layer_bwd_w(nh, w, na, ld, dA, X, dtheta, dtheta + nh * w, wsc, 1);
    kern->layer_bwd_x(nh, w, ld, theta, dA, dX, pack);
}

/* Gated recurrent unit (Cho et al. 2014; torch.nn.GRUCell's equations):
     r = σ(W_r [x; h] + b_r),  u = σ(W_u [x; h] + b_u)   (the update gate, torch's z)
     n = tanh(W_xn x + b_xn + r ⊙ (W_hn h + b_hn)),  h' = (1 − u) ⊙ n + u ⊙ h.
   θ = [W_g (2nh × (nin + nh), row-major, input columns first; rows r then u),
        b_g (2nh), W_xn (nh × nin), b_xn (nh), W_hn (nh × nh), b_hn (nh)]:
   torch's parameters with the r and u gates' two biases as one (the same functions). */
static size_t gru_nparams(size_t nin, size_t nh)
{
    if (nin > SIZE_MAX - nh || nin + nh > (SIZE_MAX - 4) / 3)
        return 0;
    size_t k = 3 * (nin + nh) + 4;
    return nh > SIZE_MAX / k ? 0 : nh * k;
}

/* Gate pre-activations (2nh) and values (2nh), W_xn x + b_xn, W_hn h + b_hn and n
   (nh each) over ld columns, a (nin + nh) × ld row buffer, the products' pack and the
   weight gradient's scratch (its larger form for the widest product, 2nh × w). */
static size_t gru_scratch(size_t nin, size_t nh, size_t ld)
{
    size_t w = nin + nh;
    size_t t1 = (ld + w) * node__padw(2 * nh) + NODE__PACK, t2 = 16 * nh * (w + 1);
    return (7 * nh + w) * ld + NODE__PACK + (t1 > t2 ? t1 : t2);
}

/* The forward pieces: P = the gates' pre-activations, RZ = [r; u], Axn = W_xn x + b_xn,
   Ahn = W_hn h + b_hn, N = n; N may be Hn. */
static void gru_gates(const node__nn_kernels *kern, const double *theta, size_t nin,
                      size_t nh, size_t ld, const double *X, double *P, double *RZ,
                      double *Axn, double *Ahn, double *N, double *pack)
{
    size_t w = nin + nh;
    const double *Wg = theta, *bg = Wg + 2 * nh * w, *Wxn = bg + 2 * nh;
    const double *bxn = Wxn + nh * nin, *Whn = bxn + nh, *bhn = Whn + nh * nh;
    kern->layer_fwd(2 * nh, w, ld, Wg, bg, X, P, pack);
    kern->sigmoid_array(2 * nh * ld, P, RZ);
    kern->layer_fwd(nh, nin, ld, Wxn, bxn, X, Axn, pack);
    kern->layer_fwd(nh, nh, ld, Whn, bhn, X + nin * ld, Ahn, pack);
    for (size_t i = 0; i < nh * ld; i++)   /* n's pre-activation, in P's r rows */
        P[i] = Axn[i] + RZ[i] * Ahn[i];    /* (P's r rows are spent: reuse them) */
    kern->tanh_array(nh * ld, P, N);
}

static void gru_step(const node__nn_kernels *kern, const double *theta, size_t nin,
                     size_t nh, size_t na, size_t ld, const double *X, double *Hn,
                     double *sc)
{
    (void)na;
    double *P = sc, *RZ = P + 2 * nh * ld, *Axn = RZ + 2 * nh * ld, *Ahn = Axn + nh * ld;
    double *pack = Ahn + 2 * nh * ld + (nin + nh) * ld;
    gru_gates(kern, theta, nin, nh, ld, X, P, RZ, Axn, Ahn, Hn, pack);
    const double *U = RZ + nh * ld, *H = X + nin * ld;
    for (size_t i = 0; i < nh * ld; i++)
        Hn[i] += U[i] * (H[i] - Hn[i]);
}

static void gru_step_back(const node__nn_kernels *kern, const double *theta, size_t nin,
                          size_t nh, size_t na, size_t ld, const double *X,
                          const double *Hn, const double *G, double *dX, double *dtheta,
                          double *sc)
{
    (void)Hn;
    size_t w = nin + nh;
    const double *Wg = theta, *Wxn = Wg + 2 * nh * w + 2 * nh, *Whn = Wxn + nh * nin + nh;
    double *dWg = dtheta, *dbg = dWg + 2 * nh * w, *dWxn = dbg + 2 * nh;
    double *dbxn = dWxn + nh * nin, *dWhn = dbxn + nh, *dbhn = dWhn + nh * nh;
    double *P = sc, *RZ = P + 2 * nh * ld, *Axn = RZ + 2 * nh * ld, *Ahn = Axn + nh * ld;
    double *N = Ahn + nh * ld, *T = N + nh * ld, *pack = T + w * ld, *wsc = pack + NODE__PACK;
    gru_gates(kern, theta, nin, nh, ld, X, P, RZ, Axn, Ahn, N, pack);
    /* In place, each element read before it is written: P ← ∂L/∂(gate pre-activations),
       Axn ← ∂L/∂(W_xn x + b_xn), Ahn ← ∂L/∂(W_hn h + b_hn), N ← ∂L/∂h through u ⊙ h. */
    const double *H = X + nin * ld;
    for (size_t j = 0; j < nh; j++)
        for (size_t c = 0; c < ld; c++) {
            size_t i = j * ld + c, iu = i + nh * ld;
            if (c >= na) {   /* padding columns carry no gradient */
                P[i] = P[iu] = Axn[i] = Ahn[i] = N[i] = 0.0;
                continue;
            }
            double g = G[i], r = RZ[i], u = RZ[iu], n = N[i];
            double dan = g * (1.0 - u) * (1.0 - n * n);
            P[i] = dan * Ahn[i] * r * (1.0 - r);
            P[iu] = g * (H[i] - n) * u * (1.0 - u);
            Axn[i] = dan;
            Ahn[i] = dan * r;
            N[i] = g * u;
        }
    kern->layer_bwd_w(2 * nh, w, na, ld, P, X, dWg, dbg, wsc, 1);
    kern->layer_bwd_w(nh, nin, na, ld, Axn, X, dWxn, dbxn, wsc, 1);
    kern->layer_bwd_w(nh, nh, na, ld, Ahn, X + nin * ld, dWhn, dbhn, wsc, 1);
    kern->layer_bwd_x(2 * nh, w, ld, Wg, P, dX, pack);
    kern->layer_bwd_x(nh, nin, ld, Wxn, Axn, T, pack);
    for (size_t i = 0; i < nin * ld; i++)
        dX[i] += T[i];
    kern->layer_bwd_x(nh, nh, ld, Whn, Ahn, T, pack);
    for (size_t i = 0; i < nh * ld; i++)
        dX[nin * ld + i] += T[i] + N[i];
}

static const cell_kind cell_kinds[] = {
    { NODE_CELL_TANH, "tanh", tanh_nparams, tanh_scratch, tanh_step, tanh_step_back },
    { NODE_CELL_GRU, "gru", gru_nparams, gru_scratch, gru_step, gru_step_back },
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

/* Gather the rows of step k that step (mask 1, or all with no mask) into the block X
   (feature-major, see cell_kind): x_k's rows and h's; padding columns zeroed.  Returns
   the number of rows na, and sets *ld. */
static size_t gather(size_t k, size_t batch, size_t nin, size_t nh, const unsigned char *mask,
                     const double *xs, const double *h, double *X, size_t *ld)
{
    size_t na = 0;
    for (size_t b = 0; b < batch; b++)
        na += !mask || mask[k * batch + b];
    size_t l = na == 1 ? 1 : node__padw(na), w = nin + nh;
    for (size_t b = 0, c = 0; b < batch && na; b++) {
        if (mask && !mask[k * batch + b])
            continue;
        const double *x = xs + (k * batch + b) * nin, *hb = h + b * nh;
        for (size_t i = 0; i < nin; i++)
            X[i * l + c] = x[i];
        for (size_t j = 0; j < nh; j++)
            X[(nin + j) * l + c] = hb[j];
        c++;
    }
    for (size_t i = 0; i < w && l > na; i++)
        memset(X + i * l + na, 0, (l - na) * sizeof(double));
    *ld = l;
    return na;
}

/* Rows of a block (nrows × ld, columns in gather's order) into the batch rows of dst
   (batch × ldd, starting at column col0) that step at time k. */
static void scatter(size_t k, size_t batch, const unsigned char *mask, size_t nrows,
                    size_t ld, const double *B, double *dst, size_t ldd)
{
    for (size_t b = 0, c = 0; b < batch; b++) {
        if (mask && !mask[k * batch + b])
            continue;
        double *d = dst + b * ldd;
        for (size_t j = 0; j < nrows; j++)
            d[j] = B[j * ld + c];
        c++;
    }
}

/* The same rows of the batch (batch × ldd) gathered into a block (nrows × ld). */
static void gather_rows(size_t k, size_t batch, const unsigned char *mask, size_t nrows,
                        size_t ld, const double *src, size_t lds, double *B)
{
    for (size_t b = 0, c = 0; b < batch; b++) {
        if (mask && !mask[k * batch + b])
            continue;
        const double *s = src + b * lds;
        for (size_t j = 0; j < nrows; j++)
            B[j * ld + c] = s[j];
        c++;
    }
}

node_status node_rnn_forward(node_rnn *r, size_t nsteps, size_t batch, const double *xs,
                             const unsigned char *mask, const double *h0, double *hs)
{
    if (!r || !xs || !hs || nsteps == 0 || batch == 0)
        return NODE_EINVAL;
    size_t nin = r->nin, nh = r->nh, w = nin + nh;
    if (!fits(nsteps, batch, nin) || !fits(nsteps, batch, nh) || batch > SIZE_MAX / 16 / w)
        return NODE_EINVAL;
    const cell_kind *cell = r->cell;
    size_t ldm = batch == 1 ? 1 : node__padw(batch);
    size_t nsc = cell->scratch(nin, nh, ldm);
    if (node__grow(&r->work, &r->work_cap, (w + nh) * ldm + nsc))
        return NODE_ENOMEM;
    double *X = r->work, *Hn = X + w * ldm, *sc = Hn + nh * ldm;
    if (h0)
        memcpy(hs, h0, batch * nh * sizeof(double));
    else
        memset(hs, 0, batch * nh * sizeof(double));
    for (size_t k = 0; k < nsteps; k++) {
        const double *hk = hs + k * batch * nh;
        double *hk1 = hs + (k + 1) * batch * nh;
        if (mask)   /* rows that do not step keep their state */
            for (size_t b = 0; b < batch; b++)
                if (!mask[k * batch + b])
                    memcpy(hk1 + b * nh, hk + b * nh, nh * sizeof(double));
        size_t ld;
        size_t na = gather(k, batch, nin, nh, mask, xs, hk, X, &ld);
        if (na == 0)
            continue;
        cell->step(r->kern, r->theta, nin, nh, na, ld, X, Hn, sc);
        scatter(k, batch, mask, nh, ld, Hn, hk1, nh);
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
    size_t nin = r->nin, nh = r->nh, np = r->np, w = nin + nh;
    if (!fits(nsteps, batch, nin) || !fits(nsteps, batch, nh) || batch > SIZE_MAX / 16 / w)
        return NODE_EINVAL;
    const cell_kind *cell = r->cell;
    size_t ldm = batch == 1 ? 1 : node__padw(batch);
    size_t nsc = cell->scratch(nin, nh, ldm);
    size_t need = 2 * batch * nh + np + (2 * w + 2 * nh) * ldm + nsc;
    if (node__grow(&r->work, &r->work_cap, need))
        return NODE_ENOMEM;
    double *g = r->work, *gn = g + batch * nh, *dtheta = gn + batch * nh;
    double *X = dtheta + np, *dX = X + w * ldm, *Hn = dX + w * ldm, *G = Hn + nh * ldm;
    double *sc = G + nh * ldm;

    memset(dtheta, 0, np * sizeof(double));
    memcpy(g, dhs + nsteps * batch * nh, batch * nh * sizeof(double));
    for (size_t k = nsteps; k-- > 0;) {
        const double *hk = hs + k * batch * nh, *hk1 = hk + batch * nh;
        const double *dhk = dhs + k * batch * nh;
        if (mask)   /* h_{k+1} = h_k: the gradient passes through; x_k was not read */
            for (size_t b = 0; b < batch; b++)
                if (!mask[k * batch + b]) {
                    memcpy(gn + b * nh, g + b * nh, nh * sizeof(double));
                    if (dxs)
                        memset(dxs + (k * batch + b) * nin, 0, nin * sizeof(double));
                }
        size_t ld;
        size_t na = gather(k, batch, nin, nh, mask, xs, hk, X, &ld);
        if (na > 0) {
            gather_rows(k, batch, mask, nh, ld, hk1, nh, Hn);
            gather_rows(k, batch, mask, nh, ld, g, nh, G);
            cell->step_back(r->kern, r->theta, nin, nh, na, ld, X, Hn, G, dX, dtheta, sc);
            if (dxs)
                scatter(k, batch, mask, nin, ld, dX, dxs + k * batch * nin, nin);
            scatter(k, batch, mask, nh, ld, dX + nin * ld, gn, nh);
        }
        for (size_t i = 0; i < batch * nh; i++)
            gn[i] += dhk[i];
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
