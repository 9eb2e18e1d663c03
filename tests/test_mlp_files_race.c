/* test_mlp_files_race.c — the saver's answers to races that timing alone would
 * almost never show, made to happen on cue: this program defines fcntl and fsync
 * itself (the library, linked statically, calls these), so that a test can act at
 * the moment the saver takes its lock (another save's rename lands right then) and
 * can count the flushes; and defines open, to swap a file between the loader's look
 * and its open.  Linux only (the real calls go through syscall()).
 */
#define _GNU_SOURCE
#include "test_util.h"
#include "nn/nn_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>

/* ---- the interposed calls --------------------------------------------------------
   Defined here, they take the place of the C library's for this program and for
   libnode.a linked into it; the real calls go to the kernel. */

static void (*on_lock)(int fd);   /* called once, before the next lock is taken */
static void (*on_open)(const char *path);   /* called once, before the next open */
static int fsyncs;

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, unsigned);
        va_end(ap);
    }
    if (on_open) {
        void (*f)(const char *) = on_open;
        on_open = NULL;
        f(path);
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    bool lock = cmd == F_SETLK || cmd == F_SETLKW;
#ifdef F_OFD_SETLK
    lock = lock || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
#endif
    if (lock && on_lock) {
        void (*f)(int) = on_lock;
        on_lock = NULL;
        f(fd);
    }
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int fsync(int fd)
{
    fsyncs++;
    return (int)syscall(SYS_fsync, fd);
}
#endif

/* ---- helpers ---------------------------------------------------------------------------- */

static char dir[64], path[256], tmp[256];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "test_mlp_race_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/model.mlp", dir);
    snprintf(tmp, sizeof tmp, "%s/model.mlp.tmp", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    return rmdir(dir);
}

static node_mlp *make_model(unsigned seed)
{
    size_t sizes[3] = { 3, 6, 3 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 2, sizes, acts, 0), NODE_OK);
    node_mlp_init(m, seed);
    return m;
}

static bool loads_as(const char *p, const node_mlp *want)
{
    node_mlp *q = NULL;
    if (node_mlp_load(&q, p) != NODE_OK)
        return false;
    bool same = memcmp(node_mlp_params(q), node_mlp_params((node_mlp *)want),
                       node_mlp_nparams(q) * sizeof(double)) == 0;
    node_mlp_free(q);
    return same;
}

static int count_temps(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp"))
            n++;
    closedir(d);
    return n;
}

/* ---- the races -------------------------------------------------------------------------- */

#if defined(__linux__)
/* Another save's rename lands between our open of path.tmp and our lock: the
   inode we opened is now the live model, and its lock is free.  The saver must
   notice that the name no longer refers to what it holds and start over, not
   truncate the live model in place. */
static void rename_tmp_over_path(int fd)
{
    (void)fd;
    assert_int_equal(rename(tmp, path), 0);
}

static void test_a_rename_between_open_and_lock_does_not_truncate_the_model(void **state)
{
    (void)state;
    node_mlp *a = make_model(1), *b = make_model(2);
    /* A model exists (so the leftover would be reused as it is), and "another
       save" has written model a to path.tmp and is about to rename it. */
    assert_status(node_mlp_save(b, path), NODE_OK);
    assert_status(node_mlp_save(a, tmp), NODE_OK);
    struct stat before;
    assert_int_equal(stat(tmp, &before), 0);
    on_lock = rename_tmp_over_path;
    assert_status(node_mlp_save(b, path), NODE_OK);
    assert_null(on_lock);                 /* the race was staged */
    assert_true(loads_as(path, b));
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_not_equal(after.st_ino, before.st_ino);   /* replaced by rename, not rewritten */
    assert_int_equal(count_temps(), 0);
    node_mlp_free(a);
    node_mlp_free(b);
}

/* The lock is held by someone else from the moment we try it: a unique name. */
static void replace_tmp_with_a_symlink(int fd)
{
    (void)fd;
    assert_int_equal(unlink(tmp), 0);
    assert_int_equal(symlink("elsewhere", tmp), 0);
}

static void test_a_temporary_swapped_for_a_link_after_opening_is_not_used(void **state)
{
    (void)state;
    node_mlp *a = make_model(3);
    static const char junk[] = "leftover";
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    on_lock = replace_tmp_with_a_symlink;
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_null(on_lock);
    assert_true(loads_as(path, a));
    struct stat sb;
    assert_int_equal(lstat(tmp, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));    /* left alone; the save went elsewhere */
    char p[300];
    snprintf(p, sizeof p, "%s/elsewhere", dir);
    assert_int_not_equal(lstat(p, &sb), 0);
    node_mlp_free(a);
}

/* The loader looks (stat) before it opens, and checks what it opened (fstat): a
   model swapped for a FIFO in between is refused, without waiting on it. */
static void swap_for_fifo(const char *p)
{
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkfifo(p, 0600), 0);
}

static void test_a_model_swapped_for_a_fifo_before_the_open_is_refused(void **state)
{
    (void)state;
    node_mlp *a = make_model(5);
    assert_status(node_mlp_save(a, path), NODE_OK);
    on_open = swap_for_fifo;
    node_mlp *q = NULL;
    node_error err;
    alarm(20);
    assert_status(node_mlp_load_ex(&q, path, &err), NODE_EIO);
    alarm(0);
    assert_null(on_open);
    assert_null(q);
    char want[400];
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    assert_string_equal(err.message, want);
    node_mlp_free(a);
}

/* Two flushes per save: the file before the rename, the folder after it. */
static void test_every_save_flushes_the_file_and_the_folder(void **state)
{
    (void)state;
    node_mlp *a = make_model(4);
    fsyncs = 0;
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_int_equal(fsyncs, 2);
    fsyncs = 0;
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_int_equal(fsyncs, 2);
    node_mlp_free(a);
}
#endif

int main(void)
{
#if defined(__linux__)
    if (!node__mlp_files_posix) {
        print_message("plain-C file build: nothing to test\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_rename_between_open_and_lock_does_not_truncate_the_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_temporary_swapped_for_a_link_after_opening_is_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_model_swapped_for_a_fifo_before_the_open_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_save_flushes_the_file_and_the_folder, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
#else
    print_message("these races are staged through Linux system calls: skipped\n");
    return 0;
#endif
}
