/* net_internal.h — the private structure of node_net (net.h), shared by src/net/:
 * net.c (layers, shapes, workspace, threads, the public calls), pass.c (the forward
 * and reverse passes over a range of samples; a kernel file, compiled once per
 * instruction-set level), io.c (network files).  Never installed.
 *
 * A network is a list of public layers (what node_net_add_* appended, what files
 * store); each expands into one or more ops, the units the passes run:
 *   dense, conv2d, groupnorm, act, avgpool, flatten: one op each;
 *   resblock: RES_BEGIN, groupnorm, act relu, conv, groupnorm, act relu, conv, RES_END
 *   (RES_BEGIN marks the skip input; RES_END adds it to its input).
 * Every op maps a C × H × W sample to a C' × H' × W' one; its parameters are one
 * slice of the network's vector (weights at woff, bias / β after them).
 */
#ifndef LIBNODE_NET_INTERNAL_H
#define LIBNODE_NET_INTERNAL_H

#include "nn/nn_internal.h"

/* Public layer kinds: also their codes in network files (never renumber). */
enum {
    NODE__LAYER_DENSE = 1, NODE__LAYER_CONV = 2, NODE__LAYER_GROUPNORM = 3,
    NODE__LAYER_ACT = 4, NODE__LAYER_AVGPOOL = 5, NODE__LAYER_FLATTEN = 6,
    NODE__LAYER_RESBLOCK = 7
};

/* What a layer was made with (the arguments of its node_net_add_* call). */
typedef struct node__layer_spec {
    uint32_t kind;
    int bias, time;          /* dense, conv */
    uint64_t v[5];           /* dense: out; conv: out_ch, kh, kw, stride, pad;
                                groupnorm, resblock: groups; act: the activation */
} node__layer_spec;

enum {
    NODE__OP_DENSE, NODE__OP_CONV, NODE__OP_GN, NODE__OP_ACT, NODE__OP_POOL,
    NODE__OP_FLAT, NODE__OP_RES_BEGIN, NODE__OP_RES_END
};

typedef struct node__net_op {
    int kind;
    size_t c, h, w, in_size;          /* input sample */
    size_t oc, oh, ow, out_size;      /* output sample */
    /* dense and conv */
    int bias, time;
    size_t kh, kw, stride, pad;
    size_t fan_in;      /* inputs per output: dense in_size + time; conv (c + time) kh kw */
    size_t nb;          /* samples per chunk of the lowered product */
    size_t ld;          /* its padded columns: node__padw(nb · oh · ow) */
    /* groupnorm */
    size_t groups;
    /* act */
    size_t act_ix;
    /* parameters: weights at woff (nw of them), then bias or β (dense, conv: oc;
       groupnorm: γ at woff, β at woff + c) */
    size_t woff, nw, np;
    size_t res;         /* RES_END: the index of its RES_BEGIN */
} node__net_op;

/* One thread's view of a pass. */
typedef struct node__net_job {
    size_t s0, s1;              /* samples [s0, s1) of the batch */
    double t;
    int reuse;                  /* the workspace holds this pass's forward already */
    const double *x;            /* batch × in size (the caller's) */
    double *const *out;         /* [nops] batch × out size of each op */
    double *const *stat;        /* [nops] a group norm's batch × groups (mean, 1/σ) of
                                   the forward, which its reverse reads; else NULL */
    double *y;                  /* batch × out size, or NULL */
    const double *a;            /* batch × out size, or NULL: forward only */
    double *d0, *d1;            /* batch × maxsize each: the reverse pass's Δ */
    double *stash;              /* batch × maxsize: Δ of a residual's skip path */
    double *vjp_x;              /* batch × in size, or NULL */
    double *gp;                 /* nparams: Σ over the range (added to), or NULL */
    double gt;                  /* Σ over the range of aᵀ ∂y/∂t (written) */
    double *scr;                /* this thread's scratch (node__net_scratch doubles) */
} node__net_job;

typedef struct node__net_kernels {
    /* Forward over [s0, s1); with job->a also the reverse pass. */
    void (*pass)(const node_net *n, node__net_job *job);
} node__net_kernels;

extern NODE__HIDDEN const node__net_kernels node__net_kernels_generic;
extern NODE__HIDDEN const node__net_kernels node__net_kernels_avx2;
extern NODE__HIDDEN const node__net_kernels node__net_kernels_avx512;

/* The network system's context: its batch (kept in a list owned by the net). */
typedef struct node__net_sys {
    node_net *n;
    size_t batch;
    struct node__net_sys *next;
} node__net_sys;

struct node_net {
    const node__net_kernels *kern;
    const node__nn_kernels *nn;     /* the layer products and activations */
    size_t c, h, w;                 /* input sample */
    size_t nlayers, layer_cap;
    node__layer_spec *layers;
    size_t nops, op_cap;
    node__net_op *ops;
    size_t nparams;
    double *theta;
    int threads;                    /* as set (0: the runtime's count) */
    int has_res;
    size_t maxsize;                 /* largest sample of any op input or output */
    /* workspace: sized for `ws_batch` samples and `ws_threads` threads */
    size_t ws_batch;
    int ws_threads;
    size_t scr_per_thread;          /* doubles */
    double **out;                   /* [nops] (NULL for ops that alias their input) */
    double **stat;                  /* [nops] group norms' statistics (else NULL) */
    node__net_job *jobs;            /* [ws_threads] */
    double *d0, *d1, *stash;
    double *scr;                    /* ws_threads × scr_per_thread */
    /* The latest node_net_forward, whose activations the workspace still holds while
       last_ok: its batch, t, x and θ (copies), compared bit for bit by node_net_vjp. */
    int last_ok;
    size_t last_batch;
    double last_t;
    double *last_x, *last_theta;    /* ws_batch × in size; nparams */
    void *raw;                      /* the allocation */
    node__net_sys *systems;
};

/* Elements of an activation chunk in the passes' scratch. */
#define NODE__NET_ACTCH 2048

/* One thread's scratch: the lowered products' col (X), output or Δ chunk (Z),
   input gradient (G), weight-gradient scratch (bw, its packing buffer included), a
   bias gradient nobody reads (gb), activation chunks (act), a padded input plane
   (plane), and the thread's parameter gradient (gp, nparams). */
typedef struct node__net_scr {
    double *X, *Z, *G, *bw, *gb, *act, *plane, *gp;
} node__net_scr;

/* Carve the scratch of one thread from p (NULL: only count); returns its doubles,
   a multiple of 8 (so that consecutive threads' blocks stay aligned).  The sizes
   were checked for overflow when the layers were added. */
static inline size_t node__net_carve(const node_net *n, double *p, node__net_scr *s)
{
    size_t maxI = 0, maxZ = 0, maxoc = 0, bw = 0, plane = 0;
    for (size_t k = 0; k < n->nops; k++) {
        const node__net_op *op = &n->ops[k];
        if (op->kind != NODE__OP_CONV)
            continue;
        size_t B = op->nb * op->oh * op->ow;
        size_t need1 = (B + op->fan_in) * node__padw(op->oc) + NODE__PACK;
        size_t need2 = 8 * op->oc * (op->fan_in + 1);
        size_t need = need1 > need2 ? need1 : need2;
        maxI = op->fan_in * op->ld > maxI ? op->fan_in * op->ld : maxI;
        maxZ = op->oc * op->ld > maxZ ? op->oc * op->ld : maxZ;
        maxoc = op->oc > maxoc ? op->oc : maxoc;
        bw = need > bw ? need : bw;
        size_t pl = (op->h + 2 * op->pad) * (op->w + 2 * op->pad);
        plane = pl > plane ? pl : plane;
    }
    size_t sz[8] = { maxI, maxZ, maxI, bw, maxoc, 2 * NODE__NET_ACTCH, plane, n->nparams };
    double **dst[8];
    node__net_scr dummy;
    if (!s)
        s = &dummy;
    dst[0] = &s->X; dst[1] = &s->Z; dst[2] = &s->G; dst[3] = &s->bw;
    dst[4] = &s->gb; dst[5] = &s->act; dst[6] = &s->plane; dst[7] = &s->gp;
    size_t total = 0;
    for (int i = 0; i < 8; i++) {
        *dst[i] = p ? p + total : NULL;
        total += (sz[i] + 7) & ~(size_t)7;
    }
    return total;
}

/* NODE_EINVAL (msg says why) unless c × h × w is an input sample networks take. */
NODE__HIDDEN node_status node__net_shape_check(size_t c, size_t h, size_t w, char *msg);

/* Shape and parameter count of a layer appended to a c × h × w sample, or
   NODE_EINVAL with msg saying why (nothing allocated). */
NODE__HIDDEN node_status node__layer_plan(const node__layer_spec *s, size_t c, size_t h,
                                          size_t w, size_t *oc, size_t *oh, size_t *ow,
                                          size_t *np, char *msg);
/* Append a layer (node_net_add_*), validated; msg says why not. */
NODE__HIDDEN node_status node__net_add(node_net *n, const node__layer_spec *s, char *msg);

/* ---- files (io.c) ---- */
NODE__HIDDEN node_status node__net_load_mem(const unsigned char *buf, size_t len,
                                            node_net **out, size_t cap, size_t *k,
                                            char *msg);
NODE__HIDDEN node_status node__net_save_mem(const node_net *const *nets, size_t k,
                                            unsigned char **buf, size_t *len);

#endif /* LIBNODE_NET_INTERNAL_H */
