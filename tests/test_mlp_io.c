/* test_mlp_io.c — model files (src/nn/io.c): bit-exact round trips, atomic saves,
 * every rejection of the loader (each with its own test, the checksum fixed up so
 * that the check under test is the one that fires), truncation at every offset,
 * the seed corpus (tests/fuzz/corpus, via LIBNODE_SOURCE_DIR) plus seeded random
 * mutations, and the failing-allocator sweeps.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"
#include "mlp_fixtures.h"
#include "nn/nn_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "test_mlp_io_"

/* ---- helpers ------------------------------------------------------------------------ */

static node_mlp *make_model(int time_input)
{
    size_t sizes[4] = { 3, 5, 4, 3 };
    node_activation acts[3] = { NODE_ACT_TANH, NODE_ACT_SILU, NODE_ACT_IDENTITY };
    node_mlp *m;
    assert_status(node_mlp_create(&m, 3, sizes, acts, time_input), NODE_OK);
    node_mlp_init(m, 77);
    return m;
}

static void write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap);
    assert_non_null(p);
    size_t got;
    while ((got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap);
            assert_non_null(p);
        }
    }
    fclose(f);
    *len = n;
    return p;
}

/* The serialized bytes of m (through the file writer). */
static unsigned char *model_bytes(const node_mlp *m, size_t *len)
{
    assert_status(node_mlp_save(m, PREFIX "bytes.mlp"), NODE_OK);
    unsigned char *p = read_file(PREFIX "bytes.mlp", len);
    remove(PREFIX "bytes.mlp");
    return p;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void fix_crc(unsigned char *p, size_t len)
{
    put32(p + len - 4, node__crc32(0, p, len - 4));
}

/* Load these bytes through a file; *out freed here when the load succeeds. */
static node_status load_bytes(const unsigned char *buf, size_t len)
{
    write_file(PREFIX "case.mlp", buf, len);
    node_mlp *m = NULL;
    node_status st = node_mlp_load(&m, PREFIX "case.mlp");
    remove(PREFIX "case.mlp");
    if (st == NODE_OK) {
        assert_non_null(m);
        node_mlp_free(m);
    }
    return st;
}

/* No file of ours is left in the working directory (temporary files included). */
static void assert_no_leftovers(const char *stem)
{
    DIR *d = opendir(".");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, stem, strlen(stem)) == 0 && strstr(e->d_name, ".tmp")) {
            print_error("leftover temporary file %s\n", e->d_name);
            fail();
        }
    closedir(d);
}

/* ---- round trips and saving ------------------------------------------------------ */

static void test_crc32_check_value(void **state)
{
    (void)state;
    assert_int_equal(node__crc32(0, (const unsigned char *)"123456789", 9), 0xCBF43926u);
    assert_int_equal(node__crc32(0, NULL, 0), 0);
}

static void test_round_trip_preserves_every_bit(void **state)
{
    (void)state;
    for (int ti = 0; ti <= 1; ti++) {
        node_mlp *m = make_model(ti);
        double *p = node_mlp_params(m);
        uint64_t nan_bits = 0x7FF4DEADBEEF1234u;   /* a signalling NaN with a payload */
        memcpy(&p[0], &nan_bits, 8);
        p[1] = -0.0;
        p[2] = -INFINITY;
        p[3] = 4.9406564584124654e-324;
        assert_status(node_mlp_save(m, PREFIX "rt.mlp"), NODE_OK);
        node_mlp *q = NULL;
        assert_status(node_mlp_load(&q, PREFIX "rt.mlp"), NODE_OK);
        assert_int_equal(node_mlp_nlayers(q), 3);
        for (size_t k = 0; k <= 3; k++)
            assert_int_equal(node_mlp_size(q, k), node_mlp_size(m, k));
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(node_mlp_activation(q, k), node_mlp_activation(m, k));
        assert_int_equal(node_mlp_time_input(q), ti);
        assert_int_equal(node_mlp_nparams(q), node_mlp_nparams(m));
        assert_memory_equal(node_mlp_params(q), p, node_mlp_nparams(m) * sizeof(double));
        node_mlp_free(q);
        node_mlp_free(m);
    }
    remove(PREFIX "rt.mlp");
    assert_no_leftovers(PREFIX);
}

static void test_save_into_missing_directory_fails_and_leaves_nothing(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    assert_status(node_mlp_save(m, PREFIX "no_such_dir/model.mlp"), NODE_EIO);
    struct stat sb;
    assert_int_not_equal(stat(PREFIX "no_such_dir", &sb), 0);
    assert_no_leftovers(PREFIX);
    assert_status(node_mlp_save(NULL, PREFIX "x.mlp"), NODE_EINVAL);
    assert_status(node_mlp_save(m, NULL), NODE_EINVAL);
    assert_status(node_mlp_save(m, ""), NODE_EINVAL);
    node_mlp_free(m);
}

static void test_save_replaces_existing_model(void **state)
{
    (void)state;
    node_mlp *a = make_model(0), *b = make_model(1);
    node_mlp_init(b, 5);
    assert_status(node_mlp_save(a, PREFIX "replace.mlp"), NODE_OK);
    assert_status(node_mlp_save(b, PREFIX "replace.mlp"), NODE_OK);
    node_mlp *q;
    assert_status(node_mlp_load(&q, PREFIX "replace.mlp"), NODE_OK);
    assert_int_equal(node_mlp_time_input(q), 1);
    assert_memory_equal(node_mlp_params(q), node_mlp_params(b),
                        node_mlp_nparams(b) * sizeof(double));
    node_mlp_free(q);
    assert_no_leftovers(PREFIX);
    remove(PREFIX "replace.mlp");
    node_mlp_free(a);
    node_mlp_free(b);
}

static void test_failed_save_keeps_the_old_model(void **state)
{
    (void)state;
    node_mlp *a = make_model(0), *b = make_model(1);
    assert_status(node_mlp_save(a, PREFIX "keep.mlp"), NODE_OK);
    size_t n0;
    unsigned char *before = read_file(PREFIX "keep.mlp", &n0);
    /* The parent "directory" is a regular file: the temporary cannot be made. */
    assert_status(node_mlp_save(b, PREFIX "keep.mlp/inner.mlp"), NODE_EIO);
    /* The target is a directory: the rename fails after the temporary was written. */
    assert_int_equal(mkdir(PREFIX "dir.mlp", 0700), 0);
    assert_status(node_mlp_save(b, PREFIX "dir.mlp"), NODE_EIO);
    assert_int_equal(rmdir(PREFIX "dir.mlp"), 0);
    size_t n1;
    unsigned char *after = read_file(PREFIX "keep.mlp", &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_no_leftovers(PREFIX);
    free(before);
    free(after);
    remove(PREFIX "keep.mlp");
    node_mlp_free(a);
    node_mlp_free(b);
}

/* ---- rejections ------------------------------------------------------------------- */

static void test_load_missing_or_directory_is_eio(void **state)
{
    (void)state;
    node_mlp *m = (node_mlp *)&m, *keep = m;
    assert_status(node_mlp_load(&m, PREFIX "does_not_exist.mlp"), NODE_EIO);
    assert_int_equal(mkdir(PREFIX "adir", 0700), 0);
    assert_status(node_mlp_load(&m, PREFIX "adir"), NODE_EIO);
    assert_int_equal(rmdir(PREFIX "adir"), 0);
    assert_ptr_equal(m, keep);
    assert_status(node_mlp_load(NULL, "x"), NODE_EINVAL);
    assert_status(node_mlp_load(&m, NULL), NODE_EINVAL);
}

static void test_load_rejects_empty_file(void **state)
{
    (void)state;
    assert_status(load_bytes((const unsigned char *)"", 0), NODE_EFORMAT);
}

static void test_load_rejects_truncation_at_every_offset(void **state)
{
    (void)state;
    node_mlp *m = make_model(1);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    assert_status(load_bytes(buf, len), NODE_OK);
    for (size_t cut = 0; cut < len; cut++)
        assert_status(load_bytes(buf, cut), NODE_EFORMAT);
    free(buf);
    node_mlp_free(m);
}

static void test_load_rejects_wrong_magic(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    buf[0] = 'X';
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    free(buf);
    node_mlp_free(m);
}

static void test_load_rejects_unknown_version_and_flags(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    put32(buf + 8, 2);
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    put32(buf + 8, 1);
    put32(buf + 12, 4);   /* an undefined flag bit */
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    free(buf);
    node_mlp_free(m);
}

/* Every value that no registry entry has is refused, with its layer named; every
   registry entry loads. */
static void test_load_rejects_unknown_activation(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    int64_t bad[8];
    size_t nbad = non_activations(bad, 8);
    uint32_t codes[10];
    for (size_t i = 0; i < nbad; i++)
        codes[i] = (uint32_t)bad[i];
    codes[nbad++] = 0xFFFFFFFFu;
    for (size_t i = 0; i < nbad; i++) {
        put32(buf + 20 + 8 * 4 + 4, codes[i]);   /* layer 2's activation */
        fix_crc(buf, len);
        assert_status(load_bytes(buf, len), NODE_EFORMAT);
        char msg[NODE_MESSAGE_SIZE], want[NODE_MESSAGE_SIZE];
        node_mlp *q = NULL;
        assert_status(node__mlp_load_mem(buf, len, &q, msg), NODE_EFORMAT);
        snprintf(want, sizeof want, "acts[1] = %lu is not an activation",
                 (unsigned long)codes[i]);
        assert_string_equal(msg, want);
    }
    for (size_t i = 0; i < NACTS; i++) {
        put32(buf + 20 + 8 * 4 + 4, (uint32_t)all_acts[i]);
        fix_crc(buf, len);
        node_mlp *q = NULL;
        assert_status(node__mlp_load_mem(buf, len, &q, NULL), NODE_OK);
        assert_int_equal(node_mlp_activation(q, 1), all_acts[i]);
        node_mlp_free(q);
    }
    free(buf);
    node_mlp_free(m);
}

/* The parser reads the header twice (first to learn the length without
   allocating); a source that changes in between must not make it trust the
   second header: a source that serves a 3-layer model first and a 1-layer, or a
   larger, model next is refused. */
typedef struct two_faced {
    const unsigned char *first, *second;
    size_t first_len;
    int reads_of_offset_0;
} two_faced;

static node_status two_faced_read(const void *ctx, uint64_t pos, unsigned char *buf,
                                  size_t n, char *msg)
{
    (void)msg;
    two_faced *t = (two_faced *)(uintptr_t)ctx;
    if (pos == 0)
        t->reads_of_offset_0++;
    const unsigned char *src = t->reads_of_offset_0 > 1 ? t->second : t->first;
    memcpy(buf, src + pos, n);
    return NODE_OK;
}

static void test_a_header_that_changes_between_reads_is_refused(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    size_t len;
    unsigned char *a = model_bytes(m, &len);
    unsigned char *b = malloc(len);
    assert_non_null(b);
    static const size_t field[] = { 16, 20 + 8 };   /* L, then sizes[1] */
    static const uint64_t value[] = { 1, 6 };
    for (int i = 0; i < 2; i++) {
        memcpy(b, a, len);
        if (i == 0)
            put32(b + field[i], (uint32_t)value[i]);
        else
            put64(b + field[i], value[i]);
        two_faced t = { a, b, len, 0 };
        node__mlp_src src = { two_faced_read, &t, len, "f" };
        node_mlp *q = NULL;
        char msg[NODE_MESSAGE_SIZE];
        node_test_alloc_begin(-1);
        node_status st = node__mlp_parse(&src, &q, msg);
        node_test_alloc_end();
        assert_status(st, NODE_EIO);
        assert_string_equal(msg, "f: changed while being read");
        assert_int_equal(t.reads_of_offset_0, 2);
        assert_null(q);
        assert_int_equal(node_test_alloc_live(), 0);
    }
    free(a);
    free(b);
    node_mlp_free(m);
}

static void test_load_rejects_sizes_that_do_not_match_the_length(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    put64(buf + 20 + 8, 6);   /* hidden width 5 -> 6: more parameters than bytes */
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    put64(buf + 20 + 8, 4);   /* fewer */
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    put64(buf + 20 + 8, 0);   /* zero width */
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    put64(buf + 20 + 8, 5);
    put32(buf + 16, 0);       /* no layers */
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    put32(buf + 16, 0xFFFFFFFFu);   /* more layers than the file could describe */
    fix_crc(buf, len);
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    /* A trailing byte. */
    unsigned char *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len - 4);
    longer[len - 4] = 0;
    put32(buf + 16, 3);
    memcpy(longer, buf, len - 4);
    fix_crc(longer, len + 1);
    assert_status(load_bytes(longer, len + 1), NODE_EFORMAT);
    free(longer);
    free(buf);
    node_mlp_free(m);
}

/* A whole, valid model followed by more bytes is refused: the length must be
   exactly the header's (a CRC at the right place does not make it acceptable). */
static void test_load_rejects_a_valid_model_with_bytes_appended(void **state)
{
    (void)state;
    node_mlp *m = make_model(1);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    unsigned char *longer = malloc(len + 8);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    memset(longer + len, 0, 8);
    for (size_t extra = 1; extra <= 8; extra++) {
        assert_status(load_bytes(longer, len + extra), NODE_EFORMAT);
        char msg[NODE_MESSAGE_SIZE], want[NODE_MESSAGE_SIZE];
        node_mlp *q = NULL;
        assert_status(node__mlp_load_mem(longer, len + extra, &q, msg), NODE_EFORMAT);
        snprintf(want, sizeof want, "%zu bytes, but its header describes 3 layers needing %zu bytes",
                 len + extra, len);
        assert_string_equal(msg, want);
    }
    free(longer);
    free(buf);
    node_mlp_free(m);
}

static void test_load_rejects_absurd_sizes_without_allocating(void **state)
{
    (void)state;
    node_mlp *m = make_model(0);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    static const uint64_t absurd[] = { (uint64_t)1 << 62, UINT64_MAX, (uint64_t)1 << 32,
                                       (uint64_t)1 << 31 };
    for (size_t i = 0; i < 4; i++)
        for (size_t k = 0; k < 4; k++) {
            unsigned char *c = malloc(len);
            assert_non_null(c);
            memcpy(c, buf, len);
            put64(c + 20 + 8 * k, absurd[i]);
            fix_crc(c, len);
            node_mlp *q = NULL;
            node_test_alloc_begin(-1);
            node_status st = node__mlp_load_mem(c, len, &q, NULL);
            long n = node_test_alloc_end();
            assert_status(st, NODE_EFORMAT);
            assert_int_equal(n, 0);   /* rejected before any allocation */
            /* Products that wrap around 2^64 into the right count are caught too. */
            free(c);
        }
    free(buf);
    node_mlp_free(m);
}

static void test_load_rejects_bad_checksum(void **state)
{
    (void)state;
    node_mlp *m = make_model(1);
    size_t len;
    unsigned char *buf = model_bytes(m, &len);
    buf[len - 1] ^= 0x80;
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    buf[len - 1] ^= 0x80;
    buf[40] ^= 1;   /* a size byte, checksum left stale */
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    buf[40] ^= 1;
    buf[len - 20] ^= 4;   /* a parameter bit */
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    free(buf);
    node_mlp_free(m);
}

/* ---- corpus and mutations -------------------------------------------------------- */

static void check_load_ok_or_eformat(const unsigned char *buf, size_t len)
{
    node_test_alloc_begin(-1);
    node_mlp *q = NULL;
    node_status st = node__mlp_load_mem(buf, len, &q, NULL);
    if (st == NODE_OK)
        node_mlp_free(q);
    node_test_alloc_end();
    if (st != NODE_OK && st != NODE_EFORMAT)
        assert_status(st, NODE_EFORMAT);
    assert_int_equal(node_test_alloc_live(), 0);
}

static void test_seed_corpus_loads_or_is_rejected(void **state)
{
    (void)state;
    const char *src = getenv("LIBNODE_SOURCE_DIR");
    if (!src)
        src = ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus", src);
    DIR *d = opendir(dir);
    if (!d) {
        print_message("corpus not found at %s (set LIBNODE_SOURCE_DIR)\n", dir);
        skip();
    }
    int nvalid = 0, ninvalid = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        node_mlp *m = NULL;
        node_status st = node_mlp_load(&m, path);
        if (strncmp(e->d_name, "valid_", 6) == 0) {
            assert_status(st, NODE_OK);
            nvalid++;
            /* Saving again reproduces the file written by the independent script. */
            size_t n0, n1;
            unsigned char *orig = read_file(path, &n0), *again = model_bytes(m, &n1);
            assert_int_equal(n0, n1);
            assert_memory_equal(orig, again, n0);
            free(orig);
            free(again);
        } else if (strncmp(e->d_name, "invalid_", 8) == 0) {
            assert_status(st, NODE_EFORMAT);
            ninvalid++;
        } else {
            assert_true(st == NODE_OK || st == NODE_EFORMAT);
        }
        node_mlp_free(m);
        size_t len;
        unsigned char *buf = read_file(path, &len);
        check_load_ok_or_eformat(buf, len);
        free(buf);
    }
    closedir(d);
    assert_true(nvalid >= 3 && ninvalid >= 8);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static void test_seeded_mutations_load_or_are_rejected(void **state)
{
    (void)state;
    node_mlp *m = make_model(1);
    size_t len;
    unsigned char *good = model_bytes(m, &len);
    unsigned char *buf = malloc(len + 64);
    assert_non_null(buf);
    uint64_t s = 2024;
    int accepted = 0;
    for (int it = 0; it < 4000; it++) {
        size_t n = len;
        memcpy(buf, good, len);
        int kind = (int)(rng_next(&s) % 6);
        size_t pos = (size_t)(rng_next(&s) % len);
        switch (kind) {
        case 0:   /* bit flips */
            for (int j = 0, nf = 1 + (int)(rng_next(&s) % 3); j < nf; j++) {
                size_t q = (size_t)(rng_next(&s) % len);
                buf[q] ^= (unsigned char)(1u << (rng_next(&s) % 8));
            }
            break;
        case 1:   /* byte insertion */
            memmove(buf + pos + 1, buf + pos, n - pos);
            buf[pos] = (unsigned char)rng_next(&s);
            n++;
            break;
        case 2:   /* byte deletion */
            memmove(buf + pos, buf + pos + 1, n - pos - 1);
            n--;
            break;
        case 3:   /* truncation */
            n = pos;
            break;
        case 4: { /* a size or count field set to an edge value, checksum fixed */
            static const uint64_t edge[] = { 0, 1, 2, 5, 255, (uint64_t)1 << 32,
                                             (uint64_t)1 << 61, UINT64_MAX };
            size_t field = (size_t)(rng_next(&s) % 5);
            uint64_t v = edge[rng_next(&s) % 8];
            if (field == 4)
                put32(buf + 16, (uint32_t)v);
            else
                put64(buf + 20 + 8 * field, v);
            fix_crc(buf, n);
            break;
        }
        default:  /* random bytes anywhere, checksum fixed: exercises the checks past it */
            buf[pos] = (unsigned char)rng_next(&s);
            fix_crc(buf, n);
            break;
        }
        node_mlp *q = NULL;
        node_test_alloc_begin(-1);
        node_status st = node__mlp_load_mem(buf, n, &q, NULL);
        if (st == NODE_OK) {
            accepted++;
            node_mlp_free(q);
        }
        node_test_alloc_end();
        assert_true(st == NODE_OK || st == NODE_EFORMAT);
        assert_int_equal(node_test_alloc_live(), 0);
    }
    assert_true(accepted > 0);   /* parameter edits with a fixed checksum are fine */
    /* A few through the file loader as well. */
    memcpy(buf, good, len);
    buf[len / 2] ^= 1;
    assert_status(load_bytes(buf, len), NODE_EFORMAT);
    free(buf);
    free(good);
    node_mlp_free(m);
}

/* ---- failing allocations ------------------------------------------------------------ */

static void test_load_and_save_survive_failing_allocations(void **state)
{
    (void)state;
    node_mlp *m = make_model(1);
    /* Deep enough that the loader needs its heap arrays for sizes/activations. */
    size_t sizes[11] = { 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2 };
    node_activation acts[10] = { 1, 2, 3, 4, 5, 6, 0, 1, 2, 0 };
    node_mlp *deep;
    assert_status(node_mlp_create(&deep, 10, sizes, acts, 0), NODE_OK);
    node_mlp *models[2] = { m, deep };
    for (int which = 0; which < 2; which++) {
        bool done = false;
        for (long k = 0; !done && k < 50; k++) {
            node_test_alloc_begin(k);
            node_status st = node_mlp_save(models[which], PREFIX "alloc.mlp");
            node_test_alloc_end();
            assert_int_equal(node_test_alloc_live(), 0);
            if (st == NODE_OK)
                done = true;
            else
                assert_status(st, NODE_ENOMEM);
        }
        assert_true(done);
        done = false;
        for (long k = 0; !done && k < 50; k++) {
            node_mlp *q = NULL;
            node_test_alloc_begin(k);
            node_status st = node_mlp_load(&q, PREFIX "alloc.mlp");
            if (st == NODE_OK) {
                done = true;
                node_mlp_free(q);
            } else {
                assert_status(st, NODE_ENOMEM);
                assert_null(q);
            }
            node_test_alloc_end();
            assert_int_equal(node_test_alloc_live(), 0);
        }
        assert_true(done);
    }
    remove(PREFIX "alloc.mlp");
    assert_no_leftovers(PREFIX);
    node_mlp_free(m);
    node_mlp_free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_round_trip_preserves_every_bit),
        cmocka_unit_test(test_save_into_missing_directory_fails_and_leaves_nothing),
        cmocka_unit_test(test_save_replaces_existing_model),
        cmocka_unit_test(test_failed_save_keeps_the_old_model),
        cmocka_unit_test(test_load_missing_or_directory_is_eio),
        cmocka_unit_test(test_load_rejects_empty_file),
        cmocka_unit_test(test_load_rejects_truncation_at_every_offset),
        cmocka_unit_test(test_load_rejects_wrong_magic),
        cmocka_unit_test(test_load_rejects_unknown_version_and_flags),
        cmocka_unit_test(test_load_rejects_unknown_activation),
        cmocka_unit_test(test_a_header_that_changes_between_reads_is_refused),
        cmocka_unit_test(test_load_rejects_sizes_that_do_not_match_the_length),
        cmocka_unit_test(test_load_rejects_a_valid_model_with_bytes_appended),
        cmocka_unit_test(test_load_rejects_absurd_sizes_without_allocating),
        cmocka_unit_test(test_load_rejects_bad_checksum),
        cmocka_unit_test(test_seed_corpus_loads_or_is_rejected),
        cmocka_unit_test(test_seeded_mutations_load_or_are_rejected),
        cmocka_unit_test(test_load_and_save_survive_failing_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
