/* internal.h — node__* declarations shared inside src/; never installed.
 *
 * The contract between the layers: ode/ exposes a generic integrator (custom
 * right-hand side, custom error norm, an observer of accepted steps) and the
 * Butcher tableaus as data, so that grad/ can drive the same core for the
 * adjoint and replay the same stages for exact backprop.
 */
#ifndef LIBNODE_INTERNAL_H
#define LIBNODE_INTERNAL_H

#include "libnode.h"
#include <math.h>
#include <stdbool.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#  define NODE__HIDDEN __attribute__((visibility("hidden")))
#  define NODE__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define NODE__HIDDEN
#  define NODE__PRINTF(f, a)
#endif

/* ---- failure details --------------------------------------------------------- */

/* Format a one-line message into buf (NODE_MESSAGE_SIZE bytes, truncated to fit;
   buf NULL: nothing is written) and return s, so that a check reads
     if (bad) return node__msg(msg, NODE_EINVAL, "ts[%zu] is NaN", i);
   Only failures format; nothing is allocated. */
NODE__HIDDEN node_status node__msg(char *buf, node_status s, const char *fmt, ...)
    NODE__PRINTF(3, 4);

/* The message buffer of an optional node_error (NULL for none), and the start of a
   call that reports into it: status NODE_OK, message "". */
NODE__HIDDEN char *node__err_begin(node_error *err);
/* Record s in err (may be NULL); returns s. */
NODE__HIDDEN node_status node__err_end(node_error *err, node_status s);

/* Are the n 64-bit words at p all zero?  (The reserved_ tails of input structs.) */
NODE__HIDDEN bool node__zero_words(const uint64_t *p, size_t n);

/* NODE_EINVAL with a message unless the reserved fields of sys are zero. */
NODE__HIDDEN node_status node__check_system_reserved(const node_system *sys, char *msg);

/* ---- instruction-set levels ------------------------------------------------------
   The hot kernels (MLP products and activations, the solver's combinations) live in
   kernel files (CMakeLists.txt: LIBNODE_KERNEL_SOURCES) that the build compiles once
   per level: generic (the target's baseline, e.g. x86-64 SSE2 or aarch64), and on
   x86-64 also AVX2+FMA and AVX-512.  Each compiled copy names its functions with
   NODE__KERNEL(name) (name_generic, name_avx2, name_avx512) and exports one table of
   them; objects pick a table when they are made (node_solver, node_mlp) from
   node__isa_select(), so no global state is kept and a process may mix levels. */
typedef enum node__isa {
    NODE__ISA_GENERIC, NODE__ISA_AVX2, NODE__ISA_AVX512, NODE__NISA
} node__isa;

/* The best level that was compiled in and that this CPU (and its OS) supports,
   capped by the environment variable LIBNODE_ISA ("generic", "avx2", "avx512"). */
NODE__HIDDEN node__isa node__isa_select(void);
/* Was level compiled in, and can this CPU run it? */
NODE__HIDDEN bool node__isa_usable(node__isa isa);
/* "generic", "avx2", "avx512"; NULL for another value. */
NODE__HIDDEN const char *node__isa_name(node__isa isa);

#ifndef NODE__ISA_SUFFIX
#  define NODE__ISA_SUFFIX generic
#endif
#define NODE__KERNEL(name) NODE__KCAT(name, NODE__ISA_SUFFIX)
#define NODE__KCAT(a, b) NODE__KCAT2(a, b)
#define NODE__KCAT2(a, b) a##_##b

/* Set by CMakeLists.txt when the kernel files were compiled for the level. */
#ifndef NODE__HAVE_AVX2
#  define NODE__HAVE_AVX2 0
#endif
#ifndef NODE__HAVE_AVX512
#  define NODE__HAVE_AVX512 0
#endif

/* The address of the kernel table table##_<level> for level isa, among the levels
   compiled in (table##_generic otherwise): NODE__KERNEL_TABLE(isa, node__nn_kernels). */
#if NODE__HAVE_AVX512
#  define NODE__PICK_AVX512(isa, table) (isa) == NODE__ISA_AVX512 ? &table##_avx512 :
#else
#  define NODE__PICK_AVX512(isa, table)
#endif
#if NODE__HAVE_AVX2
#  define NODE__PICK_AVX2(isa, table) (isa) == NODE__ISA_AVX2 ? &table##_avx2 :
#else
#  define NODE__PICK_AVX2(isa, table)
#endif
#define NODE__KERNEL_TABLE(isa, table) \
    (NODE__PICK_AVX512(isa, table) NODE__PICK_AVX2(isa, table) &table##_generic)

/* ---- size arithmetic ---------------------------------------------------------------- */

/* *out = a · b (a + b) unless it overflows a size_t: false then, *out untouched. */
static inline bool node__mul_ok(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return false;
    *out = a * b;
    return true;
}

static inline bool node__add_ok(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return false;
    *out = a + b;
    return true;
}

/* ---- small numerics shared by the models ---------------------------------------- */

/* SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): the initialisers' stream, the same
   on every platform. */
static inline uint64_t node__splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* aᵀb of n entries, summed in order. */
static inline double node__dot(size_t n, const double *a, const double *b)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* 1/(1 + e^−x) without overflow for either sign. */
static inline double node__sigmoid(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* ---- little-endian fields of the model files --------------------------------------- */

static inline void node__put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void node__put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t node__get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t node__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- allocation ------------------------------------------------------------ */

/* Every allocation of the library goes through these (tests wrap malloc to
   count allocations and to fail the k-th one). */
NODE__HIDDEN void *node__malloc(size_t n);
NODE__HIDDEN void *node__calloc(size_t count, size_t size);
NODE__HIDDEN void *node__realloc(void *p, size_t n);
NODE__HIDDEN void  node__free(void *p);

/* Grow *buf to hold at least n doubles (contents kept); never shrinks.
   NODE_ENOMEM (with *buf untouched) if the allocation fails or n overflows. */
NODE__HIDDEN node_status node__grow(double **buf, size_t *cap, size_t n);

/* ---- the method registry (ode/tableau.c) ---------------------------------------- */

#define NODE__MAXSTAGES 16
#define NODE__MAXALIASES 3

/* Step-size control of an adaptive method (HNW I, Section II.4; Hairer's dopri5.f and
   dop853.f):  h_new = h · min(facmax, max(facmin, safety · err^-α · err_old^β)),
   α = 1/q - 0.75 β, with no growth right after a rejected step. */
typedef struct node__step_control {
    double safety;          /* < 1: aim below the tolerance */
    double beta;            /* PI weight of the previous error; 0 = the I controller */
    double facmin, facmax;  /* bounds on h_new / h (0 < facmin < 1 < facmax) */
    int    q;               /* err ~ h^q: the exponent the controller and the automatic
                               initial step assume (err_order + 1, or the order of a
                               combined estimate such as DOP853's) */
} node__step_control;

/* Everything libnode knows about one method: one entry of the registry, and nothing
   about a method is decided anywhere else (not by its enum value).  A new method is
   its tableau data and one entry. */
typedef struct node__tableau {
    const char *name;                          /* node_method_name */
    const char *aliases[NODE__MAXALIASES];     /* also accepted by node_method_parse */
    node_method method;
    int s;            /* stages of one step, an FSAL stage included */
    int s_dense;      /* s plus the stages only dense output needs (>= s) */
    int order;        /* order of the propagated solution */
    int err_order;    /* order of the embedded solution; 0 for fixed-step methods */
    int fsal;         /* stage s-1 is f(t+h, ynew) and serves as stage 0 of the next step */
    const double *c;  /* [s_dense] */
    const double *A;  /* [s_dense * s_dense], row-major, strictly lower triangular */
    const double *b;  /* [s] weights of the propagated solution */
    const double *e;  /* [s] error weights (b - b̂); NULL for fixed-step methods */
    const double *e3; /* [s] weights of a second, 3rd-order estimate b - b̂₃ combined with
                         e's as in dop853.f: err = e5² / sqrt(e5² + 0.01 e3²); NULL: err =
                         e's estimate alone */
    /* Dense output on an accepted step from (t, y) with stages k[0..s_dense-1]:
         y(t + θh) = y + h Σ_i w_i(θ) k_i,     dy/dt(t + θh) = Σ_i dw_i(θ) k_i,
       θ in [0, 1].  Writes w and dw (each s_dense; dw may be NULL).  Every method
       has one (Hermite cubic on f(t), f(t+h) where no better exists). */
    void (*dense)(double theta, double *w, double *dw);
    int dense_order;
    node__step_control ctl;   /* adaptive methods; all zero for fixed-step ones */
} node__tableau;

/* The entry of m, or NULL for an unknown method. */
NODE__HIDDEN const node__tableau *node__tableau_get(node_method m);
/* The registry in order: entries 0 .. node__tableau_count()-1 (NULL past the end). */
NODE__HIDDEN size_t node__tableau_count(void);
NODE__HIDDEN const node__tableau *node__tableau_at(size_t i);

/* ---- the integrator (ode/) --------------------------------------------------- */

/* Error norm of a step: err is the local error estimate, y and ynew the states
   at both ends.  The default (norm == NULL) is the contract's RMS of
   err_i / (atol + rtol * max(|y_i|, |ynew_i|)).  The same function, called with
   err = v and y = ynew = y0, measures vectors for the automatic initial step. */
typedef double (*node__norm_fn)(void *nctx, size_t dim, const double *err,
                                const double *y, const double *ynew,
                                double rtol, double atol);

typedef struct node__ode {
    size_t dim;
    int  (*f)(void *ctx, double t, const double *y, double *dydt);
    void  *ctx;
    node__norm_fn norm;   /* NULL: the default RMS norm */
    void  *nctx;
} node__ode;

/* One accepted step as an observer's `accepted` callback sees it: valid during the
   callback only. */
typedef struct node__step {
    double t, h;              /* the step from t by h (h < 0 backward in time) */
    double tnew;              /* where it ends: t + h, or the end time itself for a
                                 last step (t + h may differ from it in the last bit) */
    const double *y, *ynew;   /* the states at t and at tnew */
    void *run_;               /* the integrator's own: for node__step_dense */
} node__step;

/* y(t + θh) of the step by the method's dense output (θ in [0, 1]; out has dim entries,
   and may not alias st->y or st->ynew).  The first call in a step computes the stages
   only dense output uses (counted in stats->nfe; the outputs of ts reuse them).
   NODE_ECALLBACK if f fails there (stats->message and callback_rc say so). */
NODE__HIDDEN node_status node__step_dense(const node__step *st, double theta, double *out);

/* Watches a solve; used by exact backprop to record what the forward pass did, and
   by the event search to test each step.  Any callback may be NULL.  A non-zero
   return aborts with NODE_ECALLBACK (or the status the observer stored for itself). */
typedef struct node__observer {
    void *ctx;
    /* After each accepted step from t to t + h that started at state y. */
    int (*step)(void *ctx, double t, double h, const double *y);
    /* After row i (i >= 1) of ys was written by dense output at θ = (ts[i]-t)/h
       of the step most recently reported to step(). */
    int (*output)(void *ctx, size_t i, double theta);
    /* After each accepted step, before step() and before the rows of ys in it are
       written: the step, with its dense output (node__step_dense). */
    int (*accepted)(void *ctx, const node__step *st);
    /* After each accepted step (before step()), with all s_dense stages of it
       computed (the dense-only ones too): k[0..s_dense-1], dense output on the step
       being y + h Σ w_i(θ) k_i.  The interpolating adjoint keeps them. */
    int (*dense)(void *ctx, double t, double h, const double *y, double *const *k);
} node__observer;

/* The solver's vector kernels of one instruction-set level (ode/ode.h). */
typedef struct node__ode_kernels node__ode_kernels;
NODE__HIDDEN const node__ode_kernels *node__ode_kernels_for(node__isa isa);

/* Workspaces the solver object keeps across calls. */
struct node_solver {
    const node__ode_kernels *kern;   /* chosen when the solver is made */
    double *ode;  size_t ode_cap;    /* integrator: stages, y, ynew, err, ... */
    double *aug;  size_t aug_cap;    /* adjoint: augmented state and scratch */
    double *tape; size_t tape_cap;   /* backprop: recorded steps */
    double *work; size_t work_cap;   /* backprop: reverse-pass scratch */
    double *evt;  size_t evt_cap;    /* events: root search and gradient scratch */
    double *ckpt; size_t ckpt_cap;   /* checkpointed backprop: saved states */
    double *steps; size_t steps_cap; /* checkpointed backprop: (t, h) of every step;
                                        the interpolating adjoint: its restart grid */
    /* |h| the adaptive controller planned when the latest node__integrate ended
       (before the last step was cut to land on the end time); 0 if none.  The
       adjoint starts each interval with it instead of a fresh initial-step guess. */
    double h_next;
    /* Tests and benchmarks only: a tableau (a registry entry copied and changed, e.g.
       its controller constants) used instead of the registry's entry for the method
       it names.  NULL (node_solver_create's value): the registry. */
    const node__tableau *tableau;
    /* Exact backprop's recorder, as the last recorded solve left it for the reverse
       pass (grad/backprop.c; node__backprop_record / node__backprop_reverse). */
    struct {
        size_t n, nt, np, nsteps, stride, nsaved, ncp;
        node_method method;
        bool stages;   /* the plain records hold the step's stages too */
        bool solve;    /* recorded by node_solver_odeint (opt->record), its ys and ts
                          kept for node_solver_backprop to compare */
        double rtol, atol, step, max_step;   /* the options of that solve */
        int valid;
    } bp;
};

/* The largest state a solve accepts: its arrays (a few dozen vectors of dim
   doubles) must be addressable, so a larger sys->dim is refused before any of them
   is read. */
#define NODE__MAX_DIM (SIZE_MAX / (64 * sizeof(double)))

/* Start a call that reports into stats (non-NULL): zero it, t_reached NaN. */
NODE__HIDDEN node_status node__stats_begin(node_stats *stats);
/* Finish it: stats->status = st, a default message for a failure without one. */
NODE__HIDDEN node_status node__stats_end(node_stats *stats, node_status st);

/* Check sys (non-NULL, f set, 0 < dim <= NODE__MAX_DIM, reserved fields zero) and
   the initial state y0 (present, finite; called `name` in the message). */
NODE__HIDDEN node_status node__check_state(const node_system *sys, const double *y0,
                                           const char *name, char *msg);

/* Validate opt (NULL = defaults) and fill the defaults it leaves at 0
   (max_steps, adjoint tolerances).  NODE_EINVAL for an unknown method,
   non-positive or non-finite tolerances, a fixed method without a positive step,
   negative step / max_step / max_steps, non-zero reserved fields.  msg (may be
   NULL) receives the reason. */
NODE__HIDDEN node_status node__options_resolve(const node_options *opt, node_options *out,
                                               char *msg);

/* NODE_EINVAL unless ts has nt >= 1 finite entries, strictly increasing or
   strictly decreasing; msg (may be NULL) receives the reason. */
NODE__HIDDEN node_status node__check_ts(const double *ts, size_t nt, char *msg);

/* The arguments of a forward solve (node_solver_odeint, backprop's recorded solve):
   a solver object, sys and y0 (node__check_state), ys, the options (resolved into *o)
   and ts.  NODE_EINVAL with the reason in msg otherwise. */
NODE__HIDDEN node_status node__solve_check(const node_solver *s, const node_system *sys,
                                           const double *y0, const double *ts, size_t nt,
                                           const double *ys, const node_options *opt,
                                           node_options *o, char *msg);

/* Integrate ode from y0 at ts[0], writing y(ts[i]) as rows of ys (nt × dim) with
   dense output; the last step ends exactly on ts[nt-1].  opt must come from
   node__options_resolve; opt->max_steps bounds the steps attempted in this call.
   Uses (and grows) s->ode only.  Adds the work done to *stats (stats non-NULL) and
   sets stats->t_reached (the end of the last accepted step) and stats->rows_done
   (rows of ys that hold their values).  On failure it also writes stats->message
   (where and why) and, for NODE_ECALLBACK from f, stats->callback_rc.  NODE_OK never
   comes with a NaN or Inf in ys.  obs may be NULL. */
NODE__HIDDEN node_status node__integrate(node_solver *s, const node__ode *ode,
                                         const double *y0, const double *ts, size_t nt,
                                         double *ys, const node_options *opt,
                                         node_stats *stats, const node__observer *obs);

/* Exact backprop in two calls, for a caller that needs the solution before it knows
   dL/dys (node_cnf's maximum likelihood): node__backprop_record is node_solver_odeint
   (same checks and messages) that also records the solve in s as node_solver_backprop's
   forward re-run does (opt->checkpoints included; sys->vjp required), and, without
   checkpoints and for a method whose dense output needs no extra stage (dopri5,
   bosh3), the stages of every step too: (s + 1)·dim + 2 doubles a step instead of
   dim + 2, and a reverse pass that evaluates no f, only the VJPs; then
   node__backprop_reverse(s, sys, ts, nt, ys, dLdys, ...) gives node_solver_backprop's
   gradients, bit for bit, without re-running the solve.  The same sys (dim, nparams),
   ts, nt and method; no other backprop on s in between (NODE_EINVAL otherwise). */
NODE__HIDDEN node_status node__backprop_record(node_solver *s, const node_system *sys,
                                               const double *y0, const double *ts,
                                               size_t nt, double *ys,
                                               const node_options *opt, node_stats *stats);
NODE__HIDDEN node_status node__backprop_reverse(node_solver *s, const node_system *sys,
                                                const double *ts, size_t nt,
                                                const double *ys, const double *dLdys,
                                                double *dLdy0, double *dLdp, double *dLdts,
                                                const node_options *opt, node_stats *stats);

/* Make an empty solver object in place (its kernels chosen now, no workspace). */
NODE__HIDDEN void node__solver_init(node_solver *s);

/* Stages k[from..to-1] of one step from (t, y) with step h, given k[0..from-1]:
   k_i = f(t + c_i h, y + h Σ_{j<i} A_ij k_j).  tmp has dim entries.  Adds the
   evaluations to *nfe.  Returns the first non-zero callback value, or 0. */
NODE__HIDDEN int node__rk_stages(const node__ode_kernels *kern, const node__tableau *tab,
                                 const node__ode *ode,
                                 double t, double h, const double *y, double *const *k,
                                 int from, int to, double *tmp, int64_t *nfe);

/* out = y + h Σ_{i<n} w_i k_i  (n stages, dim entries). */
NODE__HIDDEN void node__rk_combine(const node__ode_kernels *kern, size_t dim, const double *y,
                                   double h,
                                   const double *w, int n, double *const *k, double *out);

/* Does any of the n entries of v hold a NaN or an Inf? */
NODE__HIDDEN bool node__nonfinite(const double *v, size_t n);

/* ---- model files (nn/fileio.c: files on disk; nn/io.c: CRC-32, messages) ---------
   The crash-safe save and the careful load of node_mlp_save / node_mlp_load (mlp.h
   states the guarantees), for any format: a serializer writes an object in pieces,
   a parser reads one from a source of known size. */

/* Where a parser reads: size bytes in all; read copies exactly n bytes from offset
   pos (pos + n <= size, always) or fails with a status and a message. */
typedef struct node__src {
    node_status (*read)(const void *ctx, uint64_t pos, unsigned char *buf, size_t n,
                        char *msg);
    const void *ctx;
    uint64_t size;
    const char *name;   /* prefixes messages ("model.bin: ..."); NULL for none */
} node__src;

/* A parser's position in a source and the running CRC-32 of what it read. */
typedef struct node__reader {
    const node__src *src;
    uint64_t pos;
    uint32_t crc;
    char *msg;
} node__reader;

/* Read n bytes at r->pos (r->pos + n <= size, the caller's check) into buf,
   advancing pos and the CRC; or the status of a failed read. */
NODE__HIDDEN node_status node__read_crc(node__reader *r, unsigned char *buf, size_t n);

/* A sink: takes the next n bytes of the file, or fails with a status (its message
   already written by the sink). */
typedef node_status (*node__write_fn)(void *ctx, const unsigned char *p, size_t n);
/* Serialize obj in pieces through write(wctx, ...), returning the first status other
   than NODE_OK that write returned (or its own failure). */
typedef node_status (*node__serialize_fn)(const void *obj, node__write_fn write, void *wctx);
/* Parse an object from src into *out (written only on success); NODE_EFORMAT with
   "name: reason" in msg (may be NULL) for anything malformed, NODE_ENOMEM, or the
   status of a failed read. */
typedef node_status (*node__parse_fn)(const node__src *src, void **out, char *msg);

/* Save obj to path with the guarantees of node_mlp_save (temporary file, locks,
   fsync, rename); load an object from path with those of node_mlp_load (regular
   files only; the parser sees the file's exact size).  path is non-NULL and
   non-empty; msg (may be NULL) gets "path: reason" on failure. */
NODE__HIDDEN node_status node__file_save(const void *obj, node__serialize_fn ser,
                                         const char *path, char *msg);
NODE__HIDDEN node_status node__file_load(void **out, node__parse_fn parse, const char *path,
                                         char *msg);

/* Format the reason and write "path: reason" into msg (NULL: nothing; path NULL:
   the reason alone), the path shortened from the left ("...") if the line would
   not hold both; returns st. */
NODE__HIDDEN node_status node__io_say(char *msg, node_status st, const char *path,
                                      const char *fmt, ...) NODE__PRINTF(4, 5);

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of n bytes, continuing crc
   (start with 0). */
NODE__HIDDEN uint32_t node__crc32(uint32_t crc, const unsigned char *p, size_t n);

#endif /* LIBNODE_INTERNAL_H */
