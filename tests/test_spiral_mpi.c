/* test_spiral_mpi.c — data-parallel training (examples/spiral_mpi.c) against the
 * single-process run: the serial build trains as examples/spiral.c does (same data,
 * weights, batches and steps: the same final model); under mpiexec, one rank gives the
 * serial loss trajectory bit for bit, two ranks on uneven shards (3 + 4 windows) and
 * three ranks on two windows (one shard empty) give it up to the order of the
 * gradient's summation (1e-12 relative); with an adaptive method (dopri5: the shards
 * solved by the ensemble solver, every window on its own steps) the same holds: one rank
 * is the serial build bit for bit, two ranks on uneven shards equal it to 1e-12 with
 * exact backprop and to 1e-10 with the adjoint; a bad flag exits 2.
 * Launches the programs CMake names in the environment; exit status 77 (skipped) when
 * there is no MPI, no mpiexec or no examples.  Tests may use POSIX.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------ */

static const char *mpiexec, *mpiflags, *spiral, *spiral_mpi, *serial;
static char dir[64];

enum { ITERS = 8 };
/* sgd (not rmsprop): a step proportional to the gradient, so a wrongly scaled shard
   shows in every later loss; a short trajectory (200 points) keeps the runs short. */
#define TRAIN "--iters 8 --data-size 200 --opt sgd --lr 0.05"

/* Run the command (printf-style) with its output in DIR/log; the exit status. */
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 64);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " > %s/log 2>&1", dir);
    int rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The text of DIR/log (static buffer). */
static const char *log_text(void)
{
    static char buf[1 << 16];
    char path[128];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The number after "key": in the JSON object, the last line of the program's standard
   output that starts with '{'.  (mpiexec's own stderr, in the same log, may add lines
   after it on a loaded machine: Open MPI's notices are not the program's output.) */
static double json_num(const char *key)
{
    const char *text = log_text(), *last = NULL, *p;
    for (p = text; *p; p++)
        if ((p == text || p[-1] == '\n') && *p == '{')
            last = p;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *eol = last ? strchr(last, '\n') : NULL;
    p = last ? strstr(last, pat) : NULL;
    if (!p || (eol && p > eol)) {
        size_t len = strlen(text);
        /* cmocka's messages are short: show the end of the log, where the JSON belongs */
        print_error("no %s in the JSON line; the log ends:\n%s\n", key,
                    len > 700 ? text + len - 700 : text);
        fail();
    }
    return strtod(p + strlen(pat), NULL);
}

/* The ITERS losses of a --loss-out file. */
static void read_losses(const char *name, double *loss)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        print_error("%s was not written; the run said:\n%s\n", path, log_text());
        fail();
    }
    long it;
    for (int k = 0; k < ITERS; k++) {
        assert_int_equal(fscanf(f, "%ld %lf", &it, &loss[k]), 2);
        assert_int_equal(it, k + 1);
        assert_true(isfinite(loss[k]) && loss[k] > 0);
    }
    fclose(f);
}

/* The serial run with batch B: its losses and final full-trajectory MAE. */
static const char *g_extra = "";   /* flags added to the runs below */

static void run_serial(int B, const char *name, double *loss, double *traj)
{
    assert_int_equal(run("%s --batch-size %d " TRAIN " %s --out %s/s --loss-out %s/%s", serial,
                         B, g_extra, dir, dir, name), 0);
    assert_int_equal((int)json_num("mpi"), 0);
    *traj = json_num("trajectory_mae");
    read_losses(name, loss);
}

/* P ranks under mpiexec with global batch B.  In a sanitizer build the leak check is
   off for the MPI processes: the MPI library leaves its own allocations at exit (the
   serial build, the same code without MPI, is checked). */
static void run_ranks(int P, int B, const char *name, double *loss, double *traj)
{
    const char *asan = getenv("ASAN_OPTIONS");
    int rc = run("env ASAN_OPTIONS='%s%sdetect_leaks=0' %s %s -np %d %s --batch-size %d " TRAIN
                 " %s --out %s/p --loss-out %s/%s", asan ? asan : "", asan && asan[0] ? ":" : "",
                 mpiexec, mpiflags, P, spiral_mpi, B, g_extra, dir, dir, name);
    if (rc != 0) {
        print_error("mpiexec -np %d exited %d:\n%s\n", P, rc, log_text());
        fail();
    }
    assert_int_equal((int)json_num("ranks"), P);
    assert_int_equal((int)json_num("batch"), B);
    assert_true(strstr(log_text(), "\"ranks_agree\": true") != NULL);
    *traj = json_num("trajectory_mae");
    read_losses(name, loss);
}

static double serial7[ITERS], serial7_traj;

static int group_setup(void **state)
{
    (void)state;
    strcpy(dir, "test_spiral_mpi_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------------------- */

/* The serial build is spiral.c's training, step for step: its final model gives the
   same full-trajectory error as spiral's (to the 10 digits of the JSON lines). */
static void test_serial_build_trains_as_spiral_c(void **state)
{
    (void)state;
    assert_int_equal(run("%s --method rk4 --batch-size 7 " TRAIN " --test-freq 8 --out %s/a",
                         spiral, dir), 0);
    double want = json_num("trajectory_mae");
    run_serial(7, "serial7.txt", serial7, &serial7_traj);
    assert_close(serial7_traj, want, 1e-9, 0);
}

/* One rank: MPI's sum over one rank changes nothing, so the losses are the serial
   build's bit for bit. */
static void test_one_rank_equals_the_serial_build_exactly(void **state)
{
    (void)state;
    double got[ITERS], traj;
    run_ranks(1, 7, "np1.txt", got, &traj);
    for (int k = 0; k < ITERS; k++)
        assert_true(got[k] == serial7[k]);
    assert_true(traj == serial7_traj);
}

/* Two ranks, shards of 3 and 4 windows: the same training up to summation order. */
static void test_two_uneven_shards_equal_the_serial_run(void **state)
{
    (void)state;
    double got[ITERS], traj;
    run_ranks(2, 7, "np2.txt", got, &traj);
    for (int k = 0; k < ITERS; k++)
        assert_close(got[k], serial7[k], 1e-12, 0);
    assert_close(traj, serial7_traj, 1e-9, 0);
}

/* Three ranks, two windows: shards of 0, 1 and 1 (an empty one adds nothing). */
static void test_more_ranks_than_windows(void **state)
{
    (void)state;
    double want[ITERS], got[ITERS], want_traj, traj;
    run_serial(2, "serial2.txt", want, &want_traj);
    run_ranks(3, 2, "np3.txt", got, &traj);
    for (int k = 0; k < ITERS; k++)
        assert_close(got[k], want[k], 1e-12, 0);
}

/* An adaptive method: each window solved on its own steps by the ensemble solver, so the
   split does not change a window's solve.  -np 1 equals the serial build bit for bit;
   -np 2 on shards of 3 and 4 equals it up to the summation order of dL/dθ (exact
   backprop: 1e-12; the adjoint: 1e-10, its rounding differences grow faster over the
   iterations, about 5e-13 after 8 here). */
static void adaptive_case(const char *grad, double tol)
{
    char extra[64];
    snprintf(extra, sizeof extra, "--method dopri5 --grad %s", grad);
    g_extra = extra;
    double want[ITERS], one[ITERS], two[ITERS], want_traj, traj1, traj2;
    run_serial(7, "as.txt", want, &want_traj);
    assert_non_null(strstr(log_text(), "\"shard_solver\": \"ensemble\""));
    run_ranks(1, 7, "a1.txt", one, &traj1);
    run_ranks(2, 7, "a2.txt", two, &traj2);
    g_extra = "";
    for (int k = 0; k < ITERS; k++) {
        assert_true(one[k] == want[k]);
        assert_close(two[k], want[k], tol, 0);
    }
    assert_true(traj1 == want_traj);
    assert_close(traj2, want_traj, 1e-9, 0);
}

static void test_adaptive_backprop_shards_equal_the_serial_run(void **state)
{
    (void)state;
    adaptive_case("backprop", 1e-12);
}

static void test_adaptive_adjoint_shards_equal_the_serial_run(void **state)
{
    (void)state;
    adaptive_case("adjoint", 1e-10);
}

/* A bad flag: exit status 2 and a message naming it.  (Under mpiexec, where every rank
   exits 2 and only rank 0 speaks, .ci/run checks it once: Open MPI takes seconds to
   wind down a job that failed.) */
static void test_bad_flag_exits_2(void **state)
{
    (void)state;
    assert_int_equal(run("%s --iters 0", serial), 2);
    assert_non_null(strstr(log_text(), "--iters must be"));
    assert_int_equal(run("%s --method nope", serial), 2);
    assert_non_null(strstr(log_text(), "unknown --method 'nope'"));
    assert_int_equal(run("%s --method dopri5 --grad nope", serial), 2);
    assert_non_null(strstr(log_text(), "--grad must be adjoint or backprop"));
}

int main(void)
{
    mpiexec = getenv("LIBNODE_MPIEXEC");
    mpiflags = getenv("LIBNODE_MPIEXEC_FLAGS");
    spiral = getenv("LIBNODE_SPIRAL");
    spiral_mpi = getenv("LIBNODE_SPIRAL_MPI");
    serial = getenv("LIBNODE_SPIRAL_SERIAL");
    const char *need[] = { mpiexec, spiral, spiral_mpi, serial };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!need[i] || !need[i][0] || access(need[i], X_OK) != 0) {
            printf("test_spiral_mpi: skipped: %s\n", i == 0 || !need[i]
                   ? "no MPI (libopenmpi-dev and openmpi-bin), or the examples are not built"
                   : "a program it runs is missing");
            return 77;
        }
    if (!mpiflags)
        mpiflags = "";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_build_trains_as_spiral_c),
        cmocka_unit_test(test_one_rank_equals_the_serial_build_exactly),
        cmocka_unit_test(test_two_uneven_shards_equal_the_serial_run),
        cmocka_unit_test(test_more_ranks_than_windows),
        cmocka_unit_test(test_adaptive_backprop_shards_equal_the_serial_run),
        cmocka_unit_test(test_adaptive_adjoint_shards_equal_the_serial_run),
        cmocka_unit_test(test_bad_flag_exits_2),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
