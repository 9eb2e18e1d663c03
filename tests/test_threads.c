/* test_threads.c — one model, many threads (mlp.h, "Threads"): threads that each
 * own a node_solver and a system of ONE shared model run forward solves and adjoint
 * gradients over and over, while other threads evaluate the same model through
 * node_mlp_vjp_ws with workspaces of their own.  Every result must equal, bit for
 * bit, what the same call gave on one thread before.  Run under ThreadSanitizer
 * (-fsanitize=thread) this also proves that nothing is shared that is written.
 * Tests may use POSIX: pthreads.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"
#include "mlp_fixtures.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NT 4                       /* output times of a solve */
#define DIM 3                      /* the state width of the model */

static node_mlp *make_model(void)
{
    size_t sizes[4] = { DIM, 24, 24, DIM };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_SILU, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 7);
    /* Larger weights: a solve takes a few dozen steps, not a handful. */
    double *p = node_mlp_params(m);
    for (size_t i = 0; i < node_mlp_nparams(m); i++)
        p[i] *= 2.0;
    return m;
}

/* ---- solves and adjoint gradients, one system and one solver per thread ---------- */

typedef struct {
    const node_mlp *m;
    node_system sys;               /* made by the main thread: node_mlp_system writes m */
    size_t batch, np;
    int reps;
    double ts[NT];
    double *y0, *dLdys;
    /* the single-threaded reference */
    double *ys_ref, *g0_ref, *gp_ref, *gt_ref;
    /* results of the run */
    int mismatches;
    node_status status;
} solve_job;

/* One forward solve from y0 and the adjoint gradient of Σ dLdys ⊙ ys. */
static node_status solve_once(node_solver *s, const solve_job *j, double *ys, double *g0,
                              double *gp, double *gt)
{
    node_options opt = node_options_default();
    opt.rtol = 1e-8;
    opt.atol = 1e-10;
    opt.max_steps = 2000;   /* the reference takes ~100 steps: garbage fails, fast */
    node_status st = node_solver_odeint(s, &j->sys, j->y0, j->ts, NT, ys, &opt, NULL);
    if (st != NODE_OK)
        return st;
    return node_solver_adjoint(s, &j->sys, j->ts, NT, ys, j->dLdys, g0, gp, gt, &opt, NULL);
}

static void solve_job_init(solve_job *j, node_mlp *m, size_t batch, unsigned seed, int reps)
{
    memset(j, 0, sizeof *j);
    j->m = m;
    j->batch = batch;
    j->np = node_mlp_nparams(m);
    j->reps = reps;
    assert_status(node_mlp_system(m, batch, &j->sys), NODE_OK);
    for (int i = 0; i < NT; i++)
        j->ts[i] = 0.3 * i;
    size_t n = batch * DIM;
    j->y0 = alloc_d(n);
    j->dLdys = alloc_d(NT * n);
    fill(j->y0, n, seed);
    fill(j->dLdys, NT * n, seed + 1);
    j->ys_ref = alloc_d(NT * n);
    j->g0_ref = alloc_d(n);
    j->gp_ref = alloc_d(j->np);
    j->gt_ref = alloc_d(NT);
    node_solver *s;
    assert_status(node_solver_create(&s), NODE_OK);
    assert_status(solve_once(s, j, j->ys_ref, j->g0_ref, j->gp_ref, j->gt_ref), NODE_OK);
    node_solver_free(s);
}

static void solve_job_free(solve_job *j)
{
    free(j->y0); free(j->dLdys); free(j->ys_ref); free(j->g0_ref); free(j->gp_ref);
    free(j->gt_ref);
}

/* ---- vjps through the caller's workspace ------------------------------------------ */

typedef struct {
    const node_mlp *m;
    size_t batch, np;
    int reps;
    double t;
    double *x, *a;
    double *y_ref, *gx_ref, *gp_ref, gt_ref, *f_ref;
    int mismatches;
    node_status status;
} vjp_job;

static void vjp_job_init(vjp_job *j, node_mlp *m, size_t batch, unsigned seed, int reps)
{
    memset(j, 0, sizeof *j);
    j->m = m;
    j->batch = batch;
    j->np = node_mlp_nparams(m);
    j->reps = reps;
    j->t = 0.25;
    size_t n = batch * DIM;
    j->x = alloc_d(n);
    j->a = alloc_d(n);
    fill(j->x, n, seed);
    fill(j->a, n, seed + 1);
    j->y_ref = alloc_d(n);
    j->gx_ref = alloc_d(n);
    j->gp_ref = alloc_d(j->np);
    j->f_ref = alloc_d(n);
    node_mlp_ws *w;
    assert_status(node_mlp_ws_create(m, batch, &w), NODE_OK);
    assert_status(node_mlp_vjp_ws(m, w, batch, j->t, j->x, j->a, j->y_ref, j->gx_ref,
                                  j->gp_ref, &j->gt_ref), NODE_OK);
    node_mlp_ws_free(w);
    /* The model's own workspace gives the same forward values. */
    assert_status(node_mlp_forward(m, batch, j->t, j->x, j->f_ref), NODE_OK);
    assert_memory_equal(j->f_ref, j->y_ref, n * sizeof(double));
}

static void vjp_job_free(vjp_job *j)
{
    free(j->x); free(j->a); free(j->y_ref); free(j->gx_ref); free(j->gp_ref); free(j->f_ref);
}

/* ---- the threads ---------------------------------------------------------------------- */

/* All workers wait here, so that they really run at the same time. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void gate_wait(void)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_set(int open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static bool same(const double *a, const double *b, size_t n)
{
    return memcmp(a, b, n * sizeof(double)) == 0;
}

/* No cmocka calls in the workers (cmocka is not thread-safe): they count. */
static void *solve_worker(void *arg)
{
    solve_job *j = arg;
    size_t n = j->batch * DIM;
    double *ys = malloc(NT * n * sizeof *ys), *g0 = malloc(n * sizeof *g0);
    double *gp = malloc(j->np * sizeof *gp), *gt = malloc(NT * sizeof *gt);
    node_solver *s = NULL;
    j->status = ys && g0 && gp && gt ? node_solver_create(&s) : NODE_ENOMEM;
    gate_wait();
    for (int r = 0; r < j->reps && j->status == NODE_OK; r++) {
        j->status = solve_once(s, j, ys, g0, gp, gt);
        if (j->status == NODE_OK
            && !(same(ys, j->ys_ref, NT * n) && same(g0, j->g0_ref, n)
                 && same(gp, j->gp_ref, j->np) && same(gt, j->gt_ref, NT)))
            j->mismatches++;
    }
    node_solver_free(s);
    free(ys); free(g0); free(gp); free(gt);
    return NULL;
}

static void *vjp_worker(void *arg)
{
    vjp_job *j = arg;
    size_t n = j->batch * DIM;
    double *y = malloc(n * sizeof *y), *gx = malloc(n * sizeof *gx);
    double *gp = malloc(j->np * sizeof *gp), gt;
    node_mlp_ws *w = NULL;
    /* An empty workspace: it grows inside the loop, while the others run. */
    j->status = y && gx && gp ? node_mlp_ws_create(NULL, 0, &w) : NODE_ENOMEM;
    gate_wait();
    for (int r = 0; r < j->reps && j->status == NODE_OK; r++) {
        j->status = node_mlp_vjp_ws(j->m, w, j->batch, j->t, j->x, j->a, y, gx, gp, &gt);
        if (j->status == NODE_OK
            && !(same(y, j->y_ref, n) && same(gx, j->gx_ref, n) && same(gp, j->gp_ref, j->np)
                 && gt == j->gt_ref))
            j->mismatches++;
        if (j->status == NODE_OK)
            j->status = node_mlp_forward_ws(j->m, w, j->batch, j->t, j->x, y);
        if (j->status == NODE_OK && !same(y, j->y_ref, n))
            j->mismatches++;
    }
    node_mlp_ws_free(w);
    free(y); free(gx); free(gp);
    return NULL;
}

/* Batches that take every path of the pass: one sample at a time (1, 3), padded
   (8, 37), and chunks of NODE__CHUNK (300). */
static void test_threads_share_one_model(void **state)
{
    (void)state;
    const char *env = getenv("LIBNODE_THREAD_REPS");   /* longer runs by hand */
    int scale = env ? atoi(env) : 1;
    if (scale < 1)
        scale = 1;
    node_mlp *m = make_model();
    enum { NSOLVE = 4, NVJP = 3 };
    static const size_t solve_batch[NSOLVE] = { 1, 3, 8, 37 };
    static const size_t vjp_batch[NVJP] = { 1, 20, 300 };
    solve_job sj[NSOLVE];
    vjp_job vj[NVJP];
    for (int i = 0; i < NSOLVE; i++)
        solve_job_init(&sj[i], m, solve_batch[i], 10u + (unsigned)i, 20 * scale);
    for (int i = 0; i < NVJP; i++)
        vjp_job_init(&vj[i], m, vjp_batch[i], 20u + (unsigned)i, 200 * scale);
    /* Two systems of the same batch as well: each has its own workspace. */
    solve_job twin;
    solve_job_init(&twin, m, solve_batch[1], 10u + 1u, 20 * scale);

    pthread_t th[NSOLVE + NVJP + 1];
    gate_set(0);
    for (int i = 0; i < NSOLVE; i++)
        assert_int_equal(pthread_create(&th[i], NULL, solve_worker, &sj[i]), 0);
    assert_int_equal(pthread_create(&th[NSOLVE], NULL, solve_worker, &twin), 0);
    for (int i = 0; i < NVJP; i++)
        assert_int_equal(pthread_create(&th[NSOLVE + 1 + i], NULL, vjp_worker, &vj[i]), 0);
    gate_set(1);
    for (int i = 0; i < NSOLVE + NVJP + 1; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    assert_status(twin.status, NODE_OK);
    assert_int_equal(twin.mismatches, 0);
    assert_memory_equal(twin.gp_ref, sj[1].gp_ref, twin.np * sizeof(double));
    solve_job_free(&twin);
    for (int i = 0; i < NSOLVE; i++) {
        assert_status(sj[i].status, NODE_OK);
        assert_int_equal(sj[i].mismatches, 0);
        solve_job_free(&sj[i]);
    }
    for (int i = 0; i < NVJP; i++) {
        assert_status(vj[i].status, NODE_OK);
        assert_int_equal(vj[i].mismatches, 0);
        vjp_job_free(&vj[i]);
    }
    node_mlp_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_share_one_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
