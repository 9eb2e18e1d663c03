/* test_mlp_files.c — model files against a hostile file system (src/nn/fileio.c):
 * messages that name the path and the reason; FIFOs, devices and huge sparse files
 * refused without waiting or allocating; symbolic and hard links planted at the
 * temporary name never written through; permissions kept; a live concurrent save
 * sent to a unique name; saves killed at random moments (kill -9) leave a model that
 * loads and at most one temporary file.  Each test works in a folder of its own.
 * Tests may use POSIX.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"
#include "nn/nn_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------ */

static char dir[64];
static char path[256], tmp[256];

static int setup(void **state)
{
    (void)state;
    if (!node__mlp_files_posix)
        return 0;   /* the tests skip themselves */
    strcpy(dir, "test_mlp_files_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/model.mlp", dir);
    snprintf(tmp, sizeof tmp, "%s/model.mlp.tmp", dir);
    return 0;
}

/* Remove the folder and everything in it. */
static int teardown(void **state)
{
    (void)state;
    if (!node__mlp_files_posix)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

#define NEED_POSIX()                                                                   \
    do {                                                                               \
        if (!node__mlp_files_posix) {                                                  \
            print_message("plain-C file build: POSIX behaviour not available\n");      \
            skip();                                                                    \
        }                                                                              \
    } while (0)

static node_mlp *make_model(unsigned seed, int time_input)
{
    size_t sizes[4] = { 3, 5, 4, 3 };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_SILU, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, time_input), NODE_OK);
    node_mlp_init(m, seed);
    return m;
}

static void write_bytes(const char *p, const void *buf, size_t len)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t read_bytes(const char *p, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static bool same_params(const node_mlp *a, const node_mlp *b)
{
    return node_mlp_nparams(a) == node_mlp_nparams(b)
        && memcmp(node_mlp_params((node_mlp *)a), node_mlp_params((node_mlp *)b),
                  node_mlp_nparams(a) * sizeof(double)) == 0;
}

/* Files in the folder whose name contains ".tmp". */
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

static void assert_loads_as(const char *p, const node_mlp *want)
{
    node_mlp *q = NULL;
    node_error err;
    assert_status(node_mlp_load_ex(&q, p, &err), NODE_OK);
    assert_true(same_params(q, want));
    node_mlp_free(q);
}

/* ---- messages ------------------------------------------------------------------------ */

static void expect_load(const char *p, node_status st, const char *reason)
{
    node_mlp *q = (node_mlp *)&q, *keep = q;
    node_error err;
    assert_status(node_mlp_load_ex(&q, p, &err), st);
    assert_ptr_equal(q, keep);
    assert_int_equal(err.status, st);
    char want[NODE_MESSAGE_SIZE];
    snprintf(want, sizeof want, "%s: %s", p, reason);
    assert_string_equal(err.message, want);
}

static void test_load_messages_name_the_path_and_the_reason(void **state)
{
    (void)state;
    NEED_POSIX();
    node_mlp *m = make_model(1, 0);
    node_error err;
    assert_status(node_mlp_save_ex(m, path, &err), NODE_OK);
    assert_string_equal(err.message, "");
    unsigned char buf[4096];
    size_t len = read_bytes(path, buf, sizeof buf);
    assert_int_equal(len, 28 + 12 * 3 + 8 * node_mlp_nparams(m) + 4);

    char p[300];
    snprintf(p, sizeof p, "%s/missing.mlp", dir);
    expect_load(p, NODE_EIO, "No such file or directory");
    expect_load(dir, NODE_EIO, "not a regular file (a directory)");
    snprintf(p, sizeof p, "%s/short.mlp", dir);
    write_bytes(p, buf, 120);
    char reason[160];
    snprintf(reason, sizeof reason, "120 bytes, but its header describes 3 layers needing %zu bytes",
             len);
    expect_load(p, NODE_EFORMAT, reason);
    write_bytes(p, buf, 10);
    expect_load(p, NODE_EFORMAT, "10 bytes: too short for a model file");
    write_bytes(p, buf, 60);
    expect_load(p, NODE_EFORMAT,
                "60 bytes, but its header describes 3 layers needing at least 116 bytes");
    unsigned char c[4096];
    memcpy(c, buf, len);
    c[len / 2] ^= 1;
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "checksum mismatch");
    memcpy(c, buf, len);
    c[20 + 8 * 2] = 0;   /* sizes[2] = 0 */
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "sizes[2] is 0");
    memcpy(c, buf, len);
    c[20 + 8 * 4 + 4] = 9;   /* acts[1] = 9 */
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "acts[1] = 9 is not an activation");
    memcpy(c, buf, len);
    c[3] = 'X';
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "not a libnode model file (no LIBNODE magic)");
    memcpy(c, buf, len);
    c[8] = 2;
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "format version 2; this libnode reads version 1");
    memcpy(c, buf, len);
    c[12] = 6;
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "unknown flags 0x6");
    memcpy(c, buf, len);
    c[16] = 0;
    write_bytes(p, c, len);
    expect_load(p, NODE_EFORMAT, "0 layers");

    /* A path too long for the line loses its beginning, never the reason. */
    char lp[400];
    size_t n = (size_t)snprintf(lp, sizeof lp, "%s/", dir);
    while (n < 300)
        n += (size_t)snprintf(lp + n, sizeof lp - n, "deep/");
    snprintf(lp + n, sizeof lp - n, "model.mlp");
    node_mlp *q = NULL;
    assert_status(node_mlp_load_ex(&q, lp, &err), NODE_EIO);
    assert_true(strncmp(err.message, "...", 3) == 0);
    const char *tail = "/deep/model.mlp: No such file or directory";
    assert_true(strlen(err.message) < NODE_MESSAGE_SIZE);
    assert_string_equal(err.message + strlen(err.message) - strlen(tail), tail);

    assert_status(node_mlp_load_ex(NULL, path, &err), NODE_EINVAL);
    assert_string_equal(err.message, "out is NULL");
    assert_status(node_mlp_load_ex(&q, NULL, &err), NODE_EINVAL);
    assert_string_equal(err.message, "path is NULL");
    assert_status(node_mlp_load_ex(&q, "", &err), NODE_EINVAL);
    assert_string_equal(err.message, "path is empty");
    assert_status(node_mlp_load_ex(&q, path, NULL), NODE_OK);   /* err may be NULL */
    node_mlp_free(q);
    node_mlp_free(m);
}

static void test_save_messages_name_the_path_and_the_reason(void **state)
{
    (void)state;
    NEED_POSIX();
    node_mlp *m = make_model(1, 0);
    node_error err;
    char p[300], want[400];
    snprintf(p, sizeof p, "%s/no_such_folder/model.mlp", dir);
    assert_status(node_mlp_save_ex(m, p, &err), NODE_EIO);
    snprintf(want, sizeof want, "%s.tmp: No such file or directory", p);
    assert_string_equal(err.message, want);
    snprintf(p, sizeof p, "%s/a_folder", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_status(node_mlp_save_ex(m, p, &err), NODE_EIO);
    snprintf(want, sizeof want, "%s: cannot replace it: Is a directory", p);
    assert_string_equal(err.message, want);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(count_temps(), 0);   /* the written temporary was removed */
    assert_status(node_mlp_save_ex(NULL, path, &err), NODE_EINVAL);
    assert_string_equal(err.message, "m is NULL");
    assert_status(node_mlp_save_ex(m, NULL, &err), NODE_EINVAL);
    assert_string_equal(err.message, "path is NULL");
    assert_status(node_mlp_save_ex(m, "", &err), NODE_EINVAL);
    assert_string_equal(err.message, "path is empty");
    node_mlp_free(m);
}

/* ---- things that are not model files -------------------------------------------------- */

static void test_fifo_and_devices_are_refused_without_waiting(void **state)
{
    (void)state;
    NEED_POSIX();
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo.mlp", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);   /* a load that waits on the FIFO ends the test (SIGALRM) */
    expect_load(fifo, NODE_EIO, "not a regular file (a FIFO)");
    static const char *const devices[] = { "/dev/zero", "/dev/urandom", "/dev/null" };
    for (size_t i = 0; i < 3; i++) {
        if (access(devices[i], R_OK) != 0)
            continue;
        node_test_alloc_begin(-1);
        expect_load(devices[i], NODE_EIO, "not a regular file (a character device)");
        assert_int_equal(node_test_alloc_end(), 0);   /* refused before any allocation */
    }
    /* A FIFO planted at the temporary name: the save neither blocks on it nor
       writes into it; it goes to a unique name and succeeds. */
    assert_int_equal(mkfifo(tmp, 0600), 0);
    node_mlp *m = make_model(2, 1);
    assert_status(node_mlp_save(m, path), NODE_OK);
    alarm(0);
    assert_loads_as(path, m);
    struct stat sb;
    assert_int_equal(lstat(tmp, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(count_temps(), 1);   /* the FIFO alone */
    node_mlp_free(m);
}

/* Write a model file's header (for sizes, activations) then make the file `total`
   bytes long with a hole: no disk space, any length. */
static void sparse_file(const char *p, const node_mlp *m, off_t total)
{
    unsigned char *buf;
    size_t len;
    assert_status(node__mlp_save_mem(m, &buf, &len), NODE_OK);
    write_bytes(p, buf, len);
    node__free(buf);
    assert_int_equal(truncate(p, total), 0);
}

static void test_huge_sparse_files_are_refused_without_allocating(void **state)
{
    (void)state;
    NEED_POSIX();
    char p[300];
    snprintf(p, sizeof p, "%s/sparse.mlp", dir);
    const off_t two_gb = (off_t)1 << 31;
    if (sizeof(off_t) < 8)
        skip();
    node_mlp *m = make_model(3, 0);
    /* A valid header of a small model, then 2 GB: the length is wrong. */
    sparse_file(p, m, two_gb);
    node_test_alloc_begin(-1);
    node_mlp *q = NULL;
    node_error err;
    node_status st = node_mlp_load_ex(&q, p, &err);
    long n = node_test_alloc_end();
    assert_status(st, NODE_EFORMAT);
    assert_int_equal(n, 0);
    char want[600];
    snprintf(want, sizeof want, "%s: 2147483648 bytes, but its header describes 3 layers "
             "needing %llu bytes", p, (unsigned long long)node__mlp_file_size(m));
    assert_string_equal(err.message, want);
    /* 2 GB of zeros: no magic. */
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, two_gb), 0);
    close(fd);
    node_test_alloc_begin(-1);
    st = node_mlp_load_ex(&q, p, &err);
    n = node_test_alloc_end();
    assert_status(st, NODE_EFORMAT);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.message, "not a libnode model file"));
    unlink(p);
    node_mlp_free(m);
}

/* A model that loads allocates no block larger than its own file: the loader
   streams the parameters into the model (no whole-file buffer). */
static void test_load_allocates_no_more_than_the_model(void **state)
{
    (void)state;
    NEED_POSIX();
    size_t sizes[11] = { 30, 60, 60, 60, 60, 60, 60, 60, 60, 60, 30 };
    node_activation acts[10] = { 1, 2, 3, 4, 5, 6, 0, 1, 2, 0 };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 10, sizes, acts, 1), NODE_OK);
    node_mlp_init(m, 4);
    assert_status(node_mlp_save(m, path), NODE_OK);
    size_t file = (size_t)node__mlp_file_size(m);
    node_mlp *q = NULL;
    node_test_alloc_begin(-1);
    assert_status(node_mlp_load(&q, path), NODE_OK);
    long n = node_test_alloc_end();
    /* the model (struct, index block, parameters) and the header's two arrays */
    assert_int_equal(n, 5);
    assert_int_equal(node_test_alloc_largest(), node_mlp_nparams(m) * sizeof(double));
    assert_true(node_test_alloc_largest() < file);
    assert_true(same_params(q, m));
    node_mlp_free(q);
    node_mlp_free(m);
}

/* ---- saving: links, permissions, leftovers, concurrent saves ------------------------------ */

static void test_links_at_the_temporary_name_are_never_written_through(void **state)
{
    (void)state;
    NEED_POSIX();
    node_mlp *a = make_model(5, 0), *b = make_model(6, 1);
    char victim[300], gone[300];
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    snprintf(gone, sizeof gone, "%s/created_through_link.txt", dir);
    static const char text[] = "an unrelated file\n";
    write_bytes(victim, text, sizeof text - 1);
    /* A symbolic link to an unrelated file. */
    assert_int_equal(symlink("victim.txt", tmp), 0);
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_loads_as(path, a);
    unsigned char got[64];
    assert_int_equal(read_bytes(victim, got, sizeof got), sizeof text - 1);
    assert_memory_equal(got, text, sizeof text - 1);
    struct stat sb;
    assert_int_equal(lstat(tmp, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));       /* left alone */
    assert_int_equal(unlink(tmp), 0);
    /* A dangling one: nothing is created at its target. */
    assert_int_equal(symlink("created_through_link.txt", tmp), 0);
    assert_status(node_mlp_save(b, path), NODE_OK);
    assert_loads_as(path, b);
    assert_int_not_equal(lstat(gone, &sb), 0);
    assert_int_equal(unlink(tmp), 0);
    /* A hard link to an unrelated file of ours (two links). */
    assert_int_equal(link(victim, tmp), 0);
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_loads_as(path, a);
    assert_int_equal(read_bytes(victim, got, sizeof got), sizeof text - 1);
    assert_memory_equal(got, text, sizeof text - 1);
    assert_int_equal(unlink(tmp), 0);
    assert_int_equal(count_temps(), 0);     /* the unique temporaries were renamed */
    /* A symbolic link AT path is replaced by the model, its target untouched. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("victim.txt", path), 0);
    assert_status(node_mlp_save(b, path), NODE_OK);
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_loads_as(path, b);
    assert_int_equal(read_bytes(victim, got, sizeof got), sizeof text - 1);
    assert_memory_equal(got, text, sizeof text - 1);
    unlink(victim);
    node_mlp_free(a);
    node_mlp_free(b);
}

static void test_permissions_of_the_replaced_file_are_kept(void **state)
{
    (void)state;
    NEED_POSIX();
    node_mlp *a = make_model(7, 0);
    mode_t mask = umask(022);   /* a known umask (this test is single-threaded) */
    struct stat sb;
    /* A new model gets the umask's mode. */
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    static const mode_t modes[] = { 0600, 0640, 0604, 0660, 0644 };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        assert_status(node_mlp_save(a, path), NODE_OK);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, modes[i]);
    }
    /* A temporary left by a killed save (mode 0600) and no model: the new model
       gets the umask's mode, not the leftover's. */
    assert_int_equal(unlink(path), 0);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(count_temps(), 0);
    umask(mask);
    node_mlp_free(a);
}

static void test_leftover_temporary_is_reused(void **state)
{
    (void)state;
    NEED_POSIX();
    node_mlp *a = make_model(8, 0), *b = make_model(9, 0);
    assert_status(node_mlp_save(a, path), NODE_OK);
    /* A killed save's leftover, longer than a model: truncated and reused. */
    static unsigned char junk[10000];
    memset(junk, 0x5a, sizeof junk);
    write_bytes(tmp, junk, sizeof junk);
    struct stat before, after;
    assert_int_equal(stat(tmp, &before), 0);
    assert_status(node_mlp_save(b, path), NODE_OK);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);   /* the same file, renamed */
    assert_int_equal(after.st_size, (off_t)node__mlp_file_size(b));
    assert_loads_as(path, b);
    assert_int_equal(count_temps(), 0);
    node_mlp_free(a);
    node_mlp_free(b);
}

/* Another process holds the temporary (a save in progress): this save neither
   waits nor touches it; it writes a unique temporary and renames that. */
static void test_a_live_concurrent_save_sends_this_one_to_a_unique_name(void **state)
{
    (void)state;
    NEED_POSIX();
    int ready[2], done[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    /* The model is made after the fork: the child holds no heap block of ours, so a
       leak checker (valgrind in CI) has nothing to report when it _exits. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {   /* holds a write lock on path.tmp until told (or the parent ends) */
        close(done[1]);
        close(ready[0]);
        int fd = open(tmp, O_RDWR | O_CREAT, 0600);
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        char c = fd >= 0 && write(fd, "busy", 4) == 4 && fcntl(fd, F_SETLK, &fl) == 0;
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
            _exit(2);
        _exit(0);
    }
    node_mlp *a = make_model(10, 1);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 1);
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_loads_as(path, a);
    unsigned char got[16];
    assert_int_equal(read_bytes(tmp, got, sizeof got), 4);   /* untouched */
    assert_memory_equal(got, "busy", 4);
    assert_int_equal(count_temps(), 1);   /* the held one; ours was renamed */
    assert_int_equal(write(done[1], "x", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]); close(ready[1]); close(done[0]); close(done[1]);
    /* Its holder gone, the next save reuses the leftover. */
    assert_status(node_mlp_save(a, path), NODE_OK);
    assert_int_equal(count_temps(), 0);
    node_mlp_free(a);
}

/* ---- kill -9 at random moments -------------------------------------------------------- */

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* A child saves two models alternately, for ever; it is killed after a random
   delay.  Each time: the model file loads and is one of the two, and at most one
   temporary file exists.  LIBNODE_TORTURE_KILLS sets the count (default 100). */
static void test_saves_killed_at_random_moments_leave_a_model(void **state)
{
    (void)state;
    NEED_POSIX();
    const char *env = getenv("LIBNODE_TORTURE_KILLS");
    long kills = env ? atol(env) : 100;
    /* About 200 KB: a save takes a few ms, most of it in fsync. */
    size_t sizes[3] = { 40, 300, 40 };
    node_activation acts[2] = { NODE_ACT_TANH, NODE_ACT_IDENTITY };
    node_mlp *a, *b;
    assert_status(node_mlp_create(&a, 2, sizes, acts, 0), NODE_OK);
    assert_status(node_mlp_create(&b, 2, sizes, acts, 0), NODE_OK);
    node_mlp_init(a, 11);
    node_mlp_init(b, 12);
    assert_status(node_mlp_save(a, path), NODE_OK);
    uint64_t s = 1234;
    long saw_a = 0, saw_b = 0, saw_temp = 0;
    for (long i = 0; i < kills; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (unsigned k = 0;; k++)
                if (node_mlp_save(k % 2 ? a : b, path) != NODE_OK)
                    _exit(3);
        }
        struct timespec d = { 0, (long)(rng(&s) % 30000000u) };   /* 0 .. 30 ms */
        nanosleep(&d, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);   /* never failed */
        node_mlp *q = NULL;
        assert_status(node_mlp_load(&q, path), NODE_OK);
        if (same_params(q, a))
            saw_a++;
        else if (same_params(q, b))
            saw_b++;
        else
            fail_msg("kill %ld: the model is neither of the two", i);
        node_mlp_free(q);
        int temps = count_temps();
        assert_true(temps <= 1);
        saw_temp += temps;
    }
    print_message("%ld kills: model a %ld times, b %ld times, a leftover temporary %ld times\n",
                  kills, saw_a, saw_b, saw_temp);
    node_mlp_free(a);
    node_mlp_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_messages_name_the_path_and_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_messages_name_the_path_and_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_and_devices_are_refused_without_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_sparse_files_are_refused_without_allocating, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_allocates_no_more_than_the_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_at_the_temporary_name_are_never_written_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions_of_the_replaced_file_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_temporary_is_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_live_concurrent_save_sends_this_one_to_a_unique_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saves_killed_at_random_moments_leave_a_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
