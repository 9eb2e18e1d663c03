/* odenet_model.h — the image classifiers of the paper's Table 1 as torchdiffeq's
 * examples/odenet_mnist.py builds them (conv downsampling): three networks — the
 * downsampling stage, the feature block, the head — and one training step:
 *   down:  conv 3×3 (1 → W), GN, ReLU, conv 4×4/2 pad 1, GN, ReLU, conv 4×4/2 pad 1
 *   block: ODE-Net / RK-Net: dh/dt = f(t, h) over [0, 1] with f = GN, ReLU,
 *          ConcatConv 3×3, GN, ReLU, ConcatConv 3×3, GN (a channel holding t);
 *          ResNet: 6 ResBlocks (GN, ReLU, conv 3×3, GN, ReLU, conv 3×3, + shortcut)
 *   head:  GN, ReLU, average pool, flatten, dense W → 10
 * GN = group norm of min(32, W) groups.  Used by examples/odenet.c.
 */
#ifndef EX_ODENET_MODEL_H
#define EX_ODENET_MODEL_H

#include <libnode.h>

typedef enum ex_netkind { EX_NET_ODENET, EX_NET_RESNET, EX_NET_RKNET } ex_netkind;

typedef struct ex_odenet {
    ex_netkind kind;
    size_t width, rows, cols;  /* channels W; input image size */
    size_t D;                  /* features per sample after downsampling: W × 6 × 6 */
    size_t classes;
    node_net *net[3];          /* down, block, head (owned) */
    node_options opt;          /* the ODE block's solver */
    int backprop;              /* ODE block gradients: exact backprop, else the adjoint */
    node_solver *solver;
    node_optim *optim[3];      /* SGD over each network's parameters */
    size_t cap;                /* largest batch reserved */
    double *h0, *ys, *dys, *logits, *dlogits, *a0, *grad[3];
    int32_t *labels;
} ex_odenet;

/* What one step or one evaluation did. */
typedef struct ex_step {
    double loss;               /* mean cross-entropy of the batch */
    size_t correct;            /* samples classified right */
    int64_t nfe_f, nfe_b;      /* the ODE block's evaluations (0 for the ResNet) */
} ex_step;

/* The network names: "odenet", "resnet", "rknet".  -1 for an unknown name. */
int ex_netkind_parse(const char *name);
const char *ex_netkind_name(ex_netkind k);

/* Build the three networks for images rows × cols (each at least 10) of one channel,
   width W (divisible by min(32, W)), `blocks` ResBlocks for the ResNet, classes
   outputs; PyTorch's initialisation from seed.  0, or -1 with err set. */
int ex_odenet_build(ex_odenet *m, ex_netkind kind, size_t width, size_t blocks,
                    size_t rows, size_t cols, size_t classes, uint64_t seed, node_error *err);

/* Take three loaded networks (node_net_load) as a model of `kind`: their shapes must
   chain (1 × rows × cols → W × 6 × 6 → the same → classes) and the block must be
   the one `kind` uses (the ODE function for odenet and rknet, ResBlocks for resnet).
   On success m owns them; on failure the caller still does (err says why). */
int ex_odenet_adopt(ex_odenet *m, ex_netkind kind, node_net *const *nets, size_t k,
                    size_t rows, size_t cols, size_t classes, node_error *err);

/* Solver and gradient settings; optimizers (SGD, momentum 0.9); workspaces for
   batches up to cap; threads for each network.  0, or -1 with err set. */
int ex_odenet_prepare(ex_odenet *m, const node_options *opt, int backprop, size_t cap,
                      int threads, node_error *err);

/* Parameters of network i (0 down, 1 block, 2 head), or of all three for i = 3. */
size_t ex_odenet_nparams(const ex_odenet *m, int i);

/* Images (B × rows × cols, values in [0, 1]) → features h0 = down(x) (m->h0), then
   the block: its output in m->ys + B·D (the second row of the ODE solution).  The
   solver's statistics in *st (may be NULL).  0, or -1 with msg set. */
int ex_odenet_features(ex_odenet *m, size_t B, const double *x, node_stats *st,
                       char *msg, size_t msgn);

/* Forward pass and scores of a batch (labels: B values < classes): loss, correct,
   nfe_f.  0, or -1 with msg set (a failed solve: the message says where and why). */
int ex_odenet_eval(ex_odenet *m, size_t B, const double *x, const unsigned char *labels,
                   ex_step *out, char *msg, size_t msgn);

/* One SGD step at learning rate lr on a batch.  0, or -1 with msg set; a failed
   step changes no parameter. */
int ex_odenet_train_step(ex_odenet *m, size_t B, const double *x,
                         const unsigned char *labels, double lr, ex_step *out, char *msg,
                         size_t msgn);

/* The gradient of the loss through the head at the block output in m->ys + B·D
   (after ex_odenet_features): into m->dys (row 1), rows 0 zeroed.  For Fig. 3's
   backward pass.  0, or -1 with msg set. */
int ex_odenet_head_grad(ex_odenet *m, size_t B, const unsigned char *labels, ex_step *out,
                        char *msg, size_t msgn);

void ex_odenet_free(ex_odenet *m);   /* everything, the networks included */

#endif /* EX_ODENET_MODEL_H */
