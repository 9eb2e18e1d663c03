/* libnode/core.h — status codes, failure details, the dynamics interface and the
 * explicit ODE solver core (fixed-step Euler, midpoint, RK4; adaptive
 * Bogacki–Shampine 3(2), Dormand–Prince 5(4), DOP853) with error control and dense
 * output.  Include <libnode.h> rather than this file.
 *
 * Threads: libnode keeps no global mutable state.  Every object (node_solver,
 * node_mlp, node_mlp_ws, node_optim) is used by one thread at a time; distinct
 * objects may be used from distinct threads at once.  Functions without an object
 * (node_odeint, the losses, the schedules, the name and ABI queries) are reentrant.
 * The library calls a node_system's callbacks only from the thread that called it.
 *
 * ABI: see docs/ABI.md.  Public structs have a fixed size for a given soname; the
 * fields of later versions are carved out of their reserved_ tails, and zero in any
 * field means "the default", so a struct set up with designated initializers (every
 * other field zero) or from a *_default() function keeps working as fields arrive.
 */
#ifndef LIBNODE_CORE_H
#define LIBNODE_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported symbols of the shared library: only what is marked LIBNODE_API.  (Node.js
   headers define NODE_* macros of their own, so the macro carries the project's name.) */
#if defined(_WIN32) && defined(LIBNODE_BUILDING_DLL)
#  define LIBNODE_API __declspec(dllexport)
#elif defined(_WIN32) && defined(LIBNODE_DLL)
#  define LIBNODE_API __declspec(dllimport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define LIBNODE_API __attribute__((visibility("default")))
#else
#  define LIBNODE_API
#endif

#define NODE_VERSION_MAJOR 0
#define NODE_VERSION_MINOR 2
#define NODE_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH of this header (zstd's convention). */
#define NODE_VERSION_NUMBER \
    (NODE_VERSION_MAJOR * 10000 + NODE_VERSION_MINOR * 100 + NODE_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library actually linked.  Never NULL. */
LIBNODE_API const char *node_version(void);
/* NODE_VERSION_NUMBER of the library actually linked.  A program (or an FFI binding)
   built against header version V runs with library version L if, before 1.0, they
   share MAJOR.MINOR (V / 100 == L / 100) and L >= V; from 1.0, MAJOR and L >= V. */
LIBNODE_API uint32_t node_version_number(void);

/* The instruction-set level of the kernels that objects made now will run:
   "avx512", "avx2" or "generic" — the best this CPU supports among those the
   library was built with, capped by the environment variable LIBNODE_ISA
   (set it to "generic" or "avx2" to compare, or to rule a level out).  Results
   can differ in the last bits between levels (fused multiply-adds), never more.
   Never NULL. */
LIBNODE_API const char *node_isa_name(void);

/* ---- status codes ------------------------------------------------------ */

typedef enum node_status {
    NODE_OK = 0,
    NODE_EINVAL,      /* bad argument: NULL where data is needed, zero size, ts not strictly
                         monotone, non-positive tolerance or step, unknown method ... */
    NODE_ENOMEM,      /* an allocation failed */
    NODE_EMAXSTEPS,   /* options.max_steps reached before the end of the interval */
    NODE_ESTEPSIZE,   /* the adaptive step shrank below what floating point can resolve
                         (16 ulp of max(|t|, |ts[nt-1] - ts[0]|)): a singularity, or
                         tolerances no step can meet */
    NODE_ENONFINITE,  /* NaN or Inf in the state or its derivative that no smaller step cures */
    NODE_ECALLBACK,   /* a user callback returned non-zero; the solve stopped there */
    NODE_EIO,         /* reading or writing a file failed */
    NODE_EFORMAT      /* a model file is malformed, truncated, or fails its checksum */
} node_status;

/* A static, human-readable description of s (also for unknown values).  Never NULL. */
LIBNODE_API const char *node_strerror(node_status s);

/* ---- failure details ----------------------------------------------------------

   A status says what kind of failure; the message says which argument and why, or
   which file and why ("ts[3] = 2 is not after ts[2] = 2: ts must be strictly
   increasing or strictly decreasing", "model.bin: No such file or directory").
   Messages are written into structs the caller owns, one per call: solves and
   gradients into their node_stats, other calls into a node_error passed to their
   *_ex form.  Nothing is allocated and nothing is shared between threads.  A message
   is one line, NUL-terminated, without a trailing newline; "" after success. */
#define NODE_MESSAGE_SIZE 200

typedef struct node_error {
    node_status status;                 /* what the call returned */
    uint32_t    reserved0_;
    char        message[NODE_MESSAGE_SIZE];
    uint64_t    reserved_[3];
} node_error;

/* ---- dynamics ------------------------------------------------------------ */

typedef struct node_system {
    size_t dim;       /* length of the state y */
    size_t nparams;   /* length of the parameter vector θ that gradients are taken for */
    void  *ctx;       /* passed back to the callbacks */

    /* dydt = f(t, y; θ).  Return 0, or non-zero to abort (→ NODE_ECALLBACK, and the
       value is reported in node_stats.callback_rc). */
    int (*f)(void *ctx, double t, const double *y, double *dydt);

    /* Vector-Jacobian products at (t, y) for a row vector a (length dim):
         dydt  = f(t, y)           (skip if NULL)
         vjp_y = aᵀ ∂f/∂y          (length dim; always written)
         vjp_p = aᵀ ∂f/∂θ          (length nparams; skip if NULL)
        *vjp_t = aᵀ ∂f/∂t          (skip if NULL)
       Outputs are overwritten, not accumulated.  May be NULL when no gradient
       is ever asked for. */
    int (*vjp)(void *ctx, double t, const double *y, const double *a,
               double *dydt, double *vjp_y, double *vjp_p, double *vjp_t);

    /* Fields of later versions: leave zero (designated initializers do).  A call
       that finds a non-zero value here fails with NODE_EINVAL: the program was built
       against a newer header than the library it runs with. */
    uint64_t reserved_[11];
} node_system;

/* ---- solving --------------------------------------------------------------- */

typedef enum node_method {
    NODE_EULER, NODE_MIDPOINT, NODE_RK4,          /* fixed step */
    NODE_BOSH3, NODE_DOPRI5, NODE_DOP853          /* adaptive, embedded error estimate */
} node_method;

typedef struct node_options {
    node_method method;     /* default NODE_DOPRI5 */
    uint32_t reserved0_;
    double  rtol, atol;     /* default 1e-7, 1e-9 */
    double  step;           /* fixed methods: the step (> 0, required);
                               adaptive: the first step, 0 = choose automatically */
    double  max_step;       /* 0 = no limit */
    int64_t max_steps;      /* steps attempted per call: each node_odeint /
                               node_solver_odeint call has the whole budget for all its
                               output times (a reused solver starts afresh); the
                               adjoint's backward intervals counted together;
                               0 = 1000000 */
    double  adjoint_rtol, adjoint_atol;  /* backward pass; 0 = same as forward */
    int32_t seminorm;       /* backward pass: leave the parameter-gradient part of the
                               augmented state out of the error norm */
    uint32_t reserved1_;
    int64_t checkpoints;    /* exact backprop (node_odeint_backprop): 0 = record every
                               step (memory O(steps × dim)); N >= 1 = keep at most N
                               saved states and recompute the steps between them
                               (memory O(N × dim + steps + (steps / N) × dim), the
                               same gradient).  The interpolating adjoint: N extra
                               evenly spaced restart points besides ts.  < 0 refused. */
    int32_t record;         /* 1 = node_solver_odeint also records its solve in the
                               solver object as exact backprop's re-run would (the
                               stages of every step for dopri5 and bosh3; sys->vjp
                               required), and node_solver_backprop given the same sys,
                               options, ts and the ys that solve wrote (compared bit for
                               bit) reverses that recording instead of re-running the
                               solve: its NFE is then the vjp calls alone, one per
                               stage of each accepted step (about the forward NFE).
                               The solution is node_solver_odeint's either way.  Any
                               other ys, or the recording gone (a backprop or an
                               interpolating adjoint on the solver in between): the
                               usual re-run.  θ (sys->ctx) must not change in between.
                               node_odeint ignores it.  0 or 1. */
    uint32_t reserved2_;
    uint64_t reserved_[13]; /* fields of later versions: leave zero */
} node_options;

/* The defaults above: DOPRI5, rtol 1e-7, atol 1e-9, everything else 0. */
LIBNODE_API node_options node_options_default(void);

/* The method's name ("dopri5", ...) or NULL for an unknown value. */
LIBNODE_API const char *node_method_name(node_method m);
/* Parse a method name as node_method_name writes it (also "rk45", "bs3", "dp853"
   and "dopri8" as aliases).  NODE_EINVAL for an unknown name or NULL argument. */
LIBNODE_API node_status node_method_parse(const char *name, node_method *out);

/* What a solve or gradient call did, and, after a failure, where and why. */
typedef struct node_stats {
    int64_t nfe;         /* evaluations of f (a vjp call counts as one) */
    int64_t nsteps;      /* steps attempted */
    int64_t naccept, nreject;
    double  t_reached;   /* the time the integration reached: ts[nt-1] after success;
                            after a failure the end of the last accepted step (ts[0]
                            if none, NaN if the arguments were refused).  Gradients:
                            the time the backward pass reached. */
    int64_t rows_done;   /* forward solves: rows of ys that hold their final values
                            (row 0, y0, included; nt after success).  Gradients: 0. */
    int32_t callback_rc; /* NODE_ECALLBACK: the non-zero value the callback returned */
    node_status status;  /* what the call returned */
    char    message[NODE_MESSAGE_SIZE];  /* why it failed; "" after success */
    uint64_t reserved_[8];
} node_stats;

/* Integrate from ts[0] and write y(ts[i]) as row i of ys (nt × dim, row-major;
   row 0 is y0).  ts is strictly increasing or strictly decreasing; nt >= 1.
   opt NULL = defaults; stats may be NULL.  Output times do not force steps to
   land on them (dense output); the last step is shortened to end on ts[nt-1].
   The error norm of an adaptive step is the RMS over all state elements of
   err_i / (atol + rtol * max(|y_i|, |ynew_i|)).
   Allocates one workspace per call (use node_solver to keep it across calls).
   A NaN or Inf in a computed output is never returned with NODE_OK: an adaptive
   method retries smaller steps, then fails with NODE_ENONFINITE; a fixed-step method
   fails at the first non-finite step; an output row that dense output makes NaN or
   Inf (from a stage only dense output uses) fails with NODE_ENONFINITE.
   On failure rows 0 .. stats->rows_done-1 of ys are valid and the rest
   unspecified; stats holds the work done, t_reached (the end of the last accepted
   step), callback_rc (NODE_ECALLBACK: what f returned) and a message that says where
   and why, e.g. "f returned 7 at t = 0.25", "max_steps = 100 reached at t = 3.1,
   before the end time 10", "step size 2.2e-16 at t = 1.5 is below 4.4e-15, what
   floating point resolves here (rtol = 1e-300, atol = 1e-300)", "f returned NaN or
   Inf near t = 2 and 40 smaller steps did not avoid it", "dense output at ts[5] = 2.5
   is NaN or Inf (...)". */
LIBNODE_API node_status node_odeint(const node_system *sys, const double *y0,
                                    const double *ts, size_t nt, double *ys,
                                    const node_options *opt, node_stats *stats);

/* ---- reusable solver ------------------------------------------------------- */

/* A solver object keeps its workspaces across calls: once it has served the
   largest problem it will see, node_solver_odeint / _adjoint / _backprop
   allocate nothing more (backprop's tape keeps the largest size it needed).
   Threads: one solver object is used by one thread at a time; give each thread
   its own. */
typedef struct node_solver node_solver;

/* Create an empty solver; workspaces grow on first use.  *out is written only on
   success.  NODE_EINVAL if out is NULL, NODE_ENOMEM. */
LIBNODE_API node_status node_solver_create(node_solver **out);
LIBNODE_API void        node_solver_free(node_solver *s);          /* NULL is fine */

/* node_odeint, with the workspace of s. */
LIBNODE_API node_status node_solver_odeint(node_solver *s, const node_system *sys,
                                           const double *y0, const double *ts, size_t nt,
                                           double *ys, const node_options *opt,
                                           node_stats *stats);

/* ---- ABI introspection (for FFI bindings) ------------------------------------

   The size of a public struct of the linked library by its name ("node_options"),
   or 0 for an unknown name; the offset of one of its fields ("max_steps"), or
   (size_t)-1 for an unknown pair.  A binding that mirrors the structs compares these
   with its own layout once, at load time. */
LIBNODE_API size_t node_abi_sizeof(const char *type);
LIBNODE_API size_t node_abi_offsetof(const char *type, const char *field);

/* Enumerations are 32-bit in every struct and call of the ABI (all mainstream C
   ABIs; a compiler flag such as -fshort-enums would break it, so this fails to
   compile then). */
typedef char node_abi_enums_are_32_bit_[sizeof(node_status) == 4 &&
                                        sizeof(node_method) == 4 ? 1 : -1];

#ifdef __cplusplus
}
#endif
#endif /* LIBNODE_CORE_H */
