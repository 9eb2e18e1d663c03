/* ode/ens.h — the ensemble solver's private structures (ensemble.c: forward solves and
 * the recorded forward of backprop; ens_grad.c: the reverse pass).  Never included
 * outside src/ode/.
 */
#ifndef LIBNODE_ODE_ENS_H
#define LIBNODE_ODE_ENS_H

#include "ode.h"

/* One live sample of a group: everything its own solve keeps between rounds. */
typedef struct node__ens_slot {
    size_t id;              /* the sample */
    const double *ts;       /* its output times (nt) */
    double *ys;             /* its rows (nt × dim), NULL while recording for backprop */
    node_stats *st;         /* its stats */
    double dir, t, h, h_plan, span;
    node__control ctl;
    int64_t attempts;       /* steps attempted (max_steps) */
    int64_t nfe;            /* rows evaluated, not yet added to st->nfe */
    int64_t fixed_n;        /* fixed-step methods: steps in all, and the next one */
    int64_t fixed_j;
    int nonfinite;          /* consecutive NaN/Inf rejections */
    bool last;              /* the step attempted this round ends on ts[nt-1] */
    bool have_k0;           /* k_0 = f(t, y) is in its row of k[0] */
    bool accept;            /* this round's step was accepted */
    bool dense;             /* this round's accepted step needs its dense-only stages */
    bool done;              /* finished (successfully or not): leaves at the compaction */
    bool backward;          /* the adjoint's backward pass (f is sys->vjp: messages) */
    double tnew, err;
    size_t next;            /* next output row */
    int64_t tape_last;      /* backprop: offset of its latest tape record, -1 if none */
    int64_t nrec;           /* backprop: records on the tape */
} node__ens_slot;

/* The workspace of one worker (one group at a time): G slots and their vectors. */
typedef struct node__ens_ws {
    size_t G;                       /* slots the buffers hold */
    node__ens_slot *slot;
    node__ens_slot *fin;            /* backprop: samples whose forward succeeded */
    int *rc;                        /* per row: callback values of a failed batch */
    size_t *idx;                    /* gathered rows */
    double *buf; size_t buf_cap;    /* k[s_dense], y, ynew, arg, hx, err, gathers, tb */
    double *tape; size_t tape_cap;  /* backprop: records of accepted steps */
    size_t tape_len;
    double *rev; size_t rev_cap;    /* backprop: the reverse pass's vectors */
    double *gp;                     /* gradients: this group's dL/dθ (in rev) */
    double *aug; size_t aug_cap;    /* adjoint: the augmented dynamics' scratch */
} node__ens_ws;

struct node_ensemble {
    node__ens_ws *ws; size_t nws;
    node_stats *stats; size_t stats_cap;   /* when the caller gives none */
    double *gsum; size_t gsum_cap;         /* backprop: dL/dθ per group */
    node_status *gst; size_t gst_cap;      /* status per group (allocation failures) */
};

/* The context of one ensemble call. */
typedef struct node__ens_run {
    const node_ensemble_system *sys;
    const node__tableau *tab;
    const node_options *opt;
    size_t n, nt, dim;
    const double *y0; size_t y0_stride;   /* sample j starts at y0 + j * y0_stride */
    const double *ts; size_t ts_stride;   /* 0: one shared ts */
    double *ys;                           /* NULL: recording (backprop) */
    node_stats *stats;                    /* n */
    size_t stats_stride;                  /* sample j's stats: stats[j * stats_stride]
                                             (0 = 1) */
    bool record;
    /* the adjoint's backward intervals (all may be 0 / NULL): */
    size_t nblocks;                       /* error norm: the largest RMS of this many equal
                                             blocks of the state (0 = 1); 2 = the adjoint's
                                             [z, a] */
    const double *h0;                     /* per sample: the first |step| (0: automatic) */
    double *h_next;                       /* per sample: |h| planned at a successful end */
    int64_t *attempts;                    /* per sample: steps attempted so far (in/out) */
    const unsigned char *skip;            /* per sample: leave it out */
    /* backprop */
    const double *dLdys;
    double *dLdy0;
    const double *fwd;                    /* adjoint: the forward solution (n × nt × dim) */
    bool adjoint;
} node__ens_run;

/* Forward-solve the m samples j0, j0 + stride, ..., j0 + (m-1) stride of run in
   workspace w (sized for m slots) by
   worker `worker`; with run->record, the accepted steps go to w's tape and the slots of
   the samples that finished successfully stay in w->slot[0 .. *nkept-1] (in sample
   order) for the reverse pass.  NODE_ENOMEM if the tape cannot grow (the samples
   then fail), else NODE_OK (per-sample failures are in their stats). */
NODE__HIDDEN node_status node__ens_forward(const node__ens_run *run, node__ens_ws *w,
                                           size_t worker, size_t j0, size_t m,
                                           size_t stride, size_t *nkept);

/* The reverse pass of exact backprop over the kept slots of w (node__ens_forward with
   run->record): writes their rows of dLdy0 and adds their dL/dθ to w->gp (if
   nparams > 0 and gp wanted).  Per-sample failures go to the samples' stats. */
NODE__HIDDEN node_status node__ens_reverse(const node__ens_run *run, node__ens_ws *w,
                                           size_t worker, size_t nkept, bool want_p);

/* Doubles of a worker's forward buffers for G slots of dim. */
NODE__HIDDEN size_t node__ens_buf_need(const node__tableau *tab, size_t G, size_t dim);

/* The adjoint of one group (ens_adjoint.c): samples j0 + q stride (q < m) of run (run->ys the
   forward solution, run->dLdys, run->dLdy0), backward interval by interval in lock-step
   with the options bo (adjoint tolerances); dL/dθ into w->gp if want_p. */
NODE__HIDDEN node_status node__ens_adjoint(const node__ens_run *run, node_ensemble *e,
                                           node__ens_ws *w, size_t worker, size_t j0,
                                           size_t m, size_t stride, bool want_p);

/* Grow *p (elements of size sz) to at least n; NODE_ENOMEM with *p untouched. */
NODE__HIDDEN node_status node__ens_grow(void **p, size_t *cap, size_t n, size_t sz);

#endif /* LIBNODE_ODE_ENS_H */
