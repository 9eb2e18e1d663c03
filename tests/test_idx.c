/* test_idx.c — the IDX reader of the examples (examples/util/idx.c) and its inflate:
 * gzip streams made by Python's zlib (tests/idx_fixtures.h: stored, fixed and dynamic
 * blocks, two members with every header field, codes longer than the lookup table)
 * inflate to the bytes this file computes; files written here read back, plain or
 * gzipped; every malformed input (bad magic, truncated header, data or trailer, bad
 * CRC-32 or ISIZE, invalid deflate data, wrong IDX dimensions) is refused with a
 * message naming the file; a failing allocation anywhere leaks nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idx.h"
#include "idx_fixtures.h"

/* ---- the contents the fixtures hold ----------------------------------------------------- */

static unsigned char img_byte(size_t k, size_t r, size_t c)
{
    return (unsigned char)(((r * c + k) % 7) * 30 + k);
}

/* The IDX file of the 2 × 16 × 16 images, into buf (at least 16 + 512 bytes). */
static size_t img_idx(unsigned char *buf)
{
    static const unsigned char hdr[16] = { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 16 };
    memcpy(buf, hdr, 16);
    size_t n = 16;
    for (size_t k = 0; k < 2; k++)
        for (size_t r = 0; r < 16; r++)
            for (size_t c = 0; c < 16; c++)
                buf[n++] = img_byte(k, r, c);
    return n;
}

static unsigned char rare_byte(size_t i, uint32_t *x)
{
    *x = (*x * 1103515245u + 12345u) & 0x7FFFFFFFu;
    return (unsigned char)(i % 41 == 0 ? 200 + (i / 41) % 56 : (*x >> 16) & 63);
}

static char msg[512];

static void check_images(const ex_idx *x)
{
    assert_int_equal(x->ndim, 3);
    assert_int_equal(x->dims[0], 2);
    assert_int_equal(x->dims[1], 16);
    assert_int_equal(x->dims[2], 16);
    assert_int_equal(x->size, 512);
    for (size_t k = 0, i = 0; k < 2; k++)
        for (size_t r = 0; r < 16; r++)
            for (size_t c = 0; c < 16; c++, i++)
                assert_int_equal(x->data[i], img_byte(k, r, c));
}

/* ---- well-formed streams ------------------------------------------------------------------ */

static void gunzip_equals_image(const unsigned char *gz, size_t n)
{
    unsigned char want[600], *out = NULL;
    size_t wn = img_idx(want), outn = 0;
    msg[0] = '\0';
    assert_int_equal(ex_gunzip(gz, n, &out, &outn, "x.gz", msg, sizeof msg), EX_IDX_OK);
    assert_int_equal(outn, wn);
    assert_memory_equal(out, want, wn);
    free(out);
    ex_idx x;
    assert_int_equal(ex_idx_parse(gz, n, "x.gz", &x, msg, sizeof msg), EX_IDX_OK);
    check_images(&x);
    ex_idx_free(&x);
    assert_null(x.data);
}

static void test_stored_block_inflates(void **state)
{
    (void)state;
    gunzip_equals_image(img_stored, sizeof img_stored);
}

static void test_fixed_huffman_block_inflates(void **state)
{
    (void)state;
    gunzip_equals_image(img_fixed, sizeof img_fixed);
}

static void test_dynamic_huffman_block_inflates(void **state)
{
    (void)state;
    gunzip_equals_image(img_dynamic, sizeof img_dynamic);
}

static void test_two_members_with_every_header_field_inflate(void **state)
{
    (void)state;
    gunzip_equals_image(img_two_members, sizeof img_two_members);
}

static void test_codes_longer_than_the_lookup_table_decode(void **state)
{
    (void)state;
    ex_idx x;
    assert_int_equal(ex_idx_parse(rare_dynamic, sizeof rare_dynamic, "rare.gz", &x, msg,
                                  sizeof msg), EX_IDX_OK);
    assert_int_equal(x.ndim, 1);
    assert_int_equal(x.size, 1500);
    uint32_t s = 1;
    for (size_t i = 0; i < 1500; i++)
        assert_int_equal(x.data[i], rare_byte(i, &s));
    ex_idx_free(&x);
}

static void test_plain_idx_parses(void **state)
{
    (void)state;
    unsigned char buf[600];
    size_t n = img_idx(buf);
    ex_idx x;
    assert_int_equal(ex_idx_parse(buf, n, "plain", &x, msg, sizeof msg), EX_IDX_OK);
    check_images(&x);
    ex_idx_free(&x);
}

/* ---- files ------------------------------------------------------------------------------- */

static char dir[64];

static void write_file(const char *name, const unsigned char *b, size_t n, char *path)
{
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "test_idx_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const names[] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz",
                                         "bad.gz", "img.gz", "img.idx" };
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        remove(p);
    }
    return rmdir(dir);
}

static void test_files_read_back_gzipped_and_plain(void **state)
{
    (void)state;
    char path[256];
    unsigned char buf[600];
    ex_idx x;
    write_file("img.gz", img_dynamic, sizeof img_dynamic, path);
    assert_int_equal(ex_idx_read(path, &x, msg, sizeof msg), EX_IDX_OK);
    check_images(&x);
    ex_idx_free(&x);
    write_file("img.idx", buf, img_idx(buf), path);
    assert_int_equal(ex_idx_read(path, &x, msg, sizeof msg), EX_IDX_OK);
    check_images(&x);
    ex_idx_free(&x);
}

static void test_imageset_reads_gz_or_plain_names(void **state)
{
    (void)state;
    char path[256];
    const unsigned char labp[10] = { 0, 0, 8, 1, 0, 0, 0, 2, 3, 7 };
    write_file("train-images-idx3-ubyte.gz", img_fixed, sizeof img_fixed, path);
    write_file("train-labels-idx1-ubyte", labp, sizeof labp, path);
    ex_imageset s;
    assert_int_equal(ex_imageset_read(dir, "train", 10, &s, msg, sizeof msg), EX_IDX_OK);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.rows, 16);
    assert_int_equal(s.cols, 16);
    assert_int_equal(s.labels[0], 3);
    assert_int_equal(s.labels[1], 7);
    assert_int_equal(s.pixels[511], img_byte(1, 15, 15));
    ex_imageset_free(&s);
    assert_null(s.pixels);

    /* label 7 with 5 classes; then the gzipped labels file against plain images */
    assert_int_equal(ex_imageset_read(dir, "train", 5, &s, msg, sizeof msg), EX_IDX_EINPUT);
    assert_non_null(strstr(msg, "train-labels-idx1-ubyte: label 1 is 7, not below 5"));
    unsigned char buf[600];
    write_file("t10k-images-idx3-ubyte", buf, img_idx(buf), path);
    write_file("t10k-labels-idx1-ubyte.gz", lab_gz, sizeof lab_gz, path);
    assert_int_equal(ex_imageset_read(dir, "t10k", 10, &s, msg, sizeof msg), EX_IDX_OK);
    assert_int_equal(s.labels[1], 7);
    ex_imageset_free(&s);
}

static void test_imageset_wrong_dims_refused(void **state)
{
    (void)state;
    char path[256];
    ex_imageset s;
    /* 3 labels for 2 images */
    const unsigned char lab3[11] = { 0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3 };
    write_file("train-images-idx3-ubyte.gz", img_fixed, sizeof img_fixed, path);
    write_file("train-labels-idx1-ubyte", lab3, sizeof lab3, path);
    assert_int_equal(ex_imageset_read(dir, "train", 10, &s, msg, sizeof msg), EX_IDX_EINPUT);
    assert_non_null(strstr(msg, "train-labels-idx1-ubyte: 3 labels for 2 images"));
    /* labels 2-D (1 x 2) */
    const unsigned char lab2d[14] = { 0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2 };
    write_file("train-labels-idx1-ubyte", lab2d, sizeof lab2d, path);
    assert_int_equal(ex_imageset_read(dir, "train", 10, &s, msg, sizeof msg), EX_IDX_EINPUT);
    assert_non_null(strstr(msg, "2 dimensions, labels need 1"));
    /* images 1-D: the labels file as images */
    write_file("train-images-idx3-ubyte.gz", lab_gz, sizeof lab_gz, path);
    assert_int_equal(ex_imageset_read(dir, "train", 10, &s, msg, sizeof msg), EX_IDX_EINPUT);
    assert_non_null(strstr(msg, "train-images-idx3-ubyte: 1 dimensions, images need 3"));
}

static void test_missing_file_named(void **state)
{
    (void)state;
    char want[300];
    ex_idx x;
    snprintf(want, sizeof want, "%s/none.gz: No such file or directory", dir);
    char path[256];
    snprintf(path, sizeof path, "%s/none.gz", dir);
    assert_int_equal(ex_idx_read(path, &x, msg, sizeof msg), EX_IDX_EINPUT);
    assert_string_equal(msg, want);
    ex_imageset s;
    assert_int_equal(ex_imageset_read("no_such_dir", "train", 10, &s, msg, sizeof msg),
                     EX_IDX_EINPUT);
    assert_string_equal(msg, "no_such_dir/train-images-idx3-ubyte.gz: No such file or directory");
}

/* ---- malformed streams ------------------------------------------------------------------ */

/* buf (n bytes) must be refused, as input, with a message that names the file and
   contains want. */
static void refused(const unsigned char *buf, size_t n, const char *want)
{
    char path[256];
    write_file("bad.gz", buf, n, path);
    ex_idx x;
    memset(&x, 0, sizeof x);
    msg[0] = '\0';
    node_test_alloc_begin(-1);
    int r = ex_idx_read(path, &x, msg, sizeof msg);
    long live = node_test_alloc_live();
    node_test_alloc_end();
    if (r != EX_IDX_EINPUT || !strstr(msg, want) || strncmp(msg, path, strlen(path)))
        print_error("got %d \"%s\", wanted 2 and \"%s: ...%s...\"\n", r, msg, path, want);
    assert_int_equal(r, EX_IDX_EINPUT);
    assert_non_null(strstr(msg, want));
    assert_int_equal(strncmp(msg, path, strlen(path)), 0);
    assert_int_equal(live, 0);   /* nothing leaked */
    assert_null(x.data);
}

static void test_bad_gzip_magic_refused(void **state)
{
    (void)state;
    unsigned char b[sizeof img_dynamic];
    memcpy(b, img_dynamic, sizeof b);
    b[1] = 0x8c;   /* then it is no gzip file, and no IDX file either */
    refused(b, sizeof b, "neither a gzip file (0x1f 0x8b ...) nor an IDX file (0x00 0x00 ...): "
                        "it starts with 0x1f 0x8c");
    memcpy(b, img_dynamic, sizeof b);
    b[2] = 9;
    refused(b, sizeof b, "compression method 9 is not deflate");
    b[2] = 8;
    b[3] = 0x20;
    refused(b, sizeof b, "reserved flag bits");
}

static void test_truncated_header_refused(void **state)
{
    (void)state;
    refused(img_dynamic, 5, "truncated gzip header (5 bytes of 10)");
    /* the second member's header cut inside its file name */
    size_t at = 0;   /* where the second member starts */
    for (size_t i = 10; i + 1 < sizeof img_two_members; i++)
        if (img_two_members[i] == 0x1f && img_two_members[i + 1] == 0x8b) {
            at = i;
            break;
        }
    assert_true(at > 0);
    refused(img_two_members, at + 20, "truncated gzip header (its file name)");
    refused(img_two_members, at + 12, "truncated gzip header (its extra field)");
    unsigned char b[sizeof img_two_members];
    memcpy(b, img_two_members, sizeof b);
    b[at + 9] ^= 1;   /* the OS byte: the header CRC no longer matches */
    refused(b, sizeof b, "gzip header CRC mismatch");
}

static void test_truncated_data_refused(void **state)
{
    (void)state;
    refused(img_dynamic, 40, "truncated deflate data");
    refused(img_stored, 200, "truncated deflate data (inside a stored block)");
    refused(img_fixed, sizeof img_fixed - 8, "truncated gzip trailer (0 bytes of 8");
    refused(img_fixed, sizeof img_fixed - 3, "truncated gzip trailer (5 bytes of 8");
}

static void test_bad_crc_refused(void **state)
{
    (void)state;
    unsigned char b[sizeof img_dynamic];
    memcpy(b, img_dynamic, sizeof b);
    b[sizeof b - 8] ^= 0x40;
    refused(b, sizeof b, "CRC-32 mismatch");
    /* a data byte of a stored block changed: the CRC catches it */
    unsigned char s[sizeof img_stored];
    memcpy(s, img_stored, sizeof s);
    s[100] ^= 1;
    refused(s, sizeof s, "CRC-32 mismatch");
}

static void test_bad_isize_refused(void **state)
{
    (void)state;
    unsigned char b[sizeof img_dynamic];
    memcpy(b, img_dynamic, sizeof b);
    b[sizeof b - 4] ^= 1;
    refused(b, sizeof b, "528 bytes inflated, the trailer's ISIZE says 529");
}

static void test_trailing_bytes_refused(void **state)
{
    (void)state;
    unsigned char b[sizeof img_fixed + 3];
    memcpy(b, img_fixed, sizeof img_fixed);
    b[sizeof img_fixed] = 1;
    b[sizeof img_fixed + 1] = 2;
    b[sizeof img_fixed + 2] = 3;
    refused(b, sizeof b, "3 bytes of trailing data after the gzip stream");
}

/* A gzip member around raw deflate bits (LSB first), with a zero trailer. */
typedef struct bw { unsigned char b[64]; size_t n; unsigned bit; } bw;
static void put(bw *w, unsigned v, unsigned k)
{
    for (unsigned i = 0; i < k; i++, w->bit++) {
        if (w->bit % 8 == 0)
            w->b[w->n++] = 0;
        w->b[w->n - 1] |= (unsigned char)(((v >> i) & 1u) << (w->bit % 8));
    }
}
static void put_code(bw *w, unsigned code, unsigned len)   /* Huffman: MSB first */
{
    for (unsigned i = len; i-- > 0;)
        put(w, (code >> i) & 1u, 1);
}
static size_t wrap(const bw *w, unsigned char *out)
{
    static const unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
    memcpy(out, h, 10);
    memcpy(out + 10, w->b, w->n);
    memset(out + 10 + w->n, 0, 8);
    return 18 + w->n;
}

static void test_invalid_deflate_data_refused(void **state)
{
    (void)state;
    unsigned char out[128];
    bw w;
    /* block type 3 */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 3, 2);
    refused(out, wrap(&w, out), "block type 3");
    /* a fixed block whose first symbol is a match: length 3 (code 257 = 0000001),
       distance 1 (code 0, 5 bits) before any data */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    put_code(&w, 1, 7);
    put_code(&w, 0, 5);
    put_code(&w, 0, 7);
    refused(out, wrap(&w, out), "distance before the start of the data");
    /* fixed block: distance code 30 after literal 'a' (0x30 + 'a' on 8 bits) */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    put_code(&w, 0x30 + 'a', 8);
    put_code(&w, 1, 7);
    put_code(&w, 30, 5);
    refused(out, wrap(&w, out), "distance code 30 or 31");
    /* a stored block whose NLEN is not ~LEN */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 0, 2);
    put(&w, 0, 5);
    put(&w, 3, 16);
    put(&w, 3, 16);
    refused(out, wrap(&w, out), "length and its complement differ");
    /* dynamic block: a code-length code with all 19 lengths 1 (over-subscribed) */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 0, 5);
    put(&w, 0, 5);
    put(&w, 15, 4);
    for (int i = 0; i < 19; i++)
        put(&w, 1, 3);
    refused(out, wrap(&w, out), "a bad code-length code");
    /* dynamic block: HLIT 287 */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 30, 5);
    put(&w, 0, 5);
    put(&w, 0, 4);
    refused(out, wrap(&w, out), "more than 286 length or 30 distance codes");
    /* dynamic block: a repeat (16) first.  Code-length code: symbols 16 and 17 of
       length 1 (order starts 16, 17, 18): codes 0 → 16, 1 → 17. */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 0, 5);
    put(&w, 0, 5);
    put(&w, 0, 4);
    put(&w, 1, 3);
    put(&w, 1, 3);
    put(&w, 0, 3);
    put(&w, 0, 3);
    put_code(&w, 0, 1);
    refused(out, wrap(&w, out), "a repeat with no length before it");
}

static void test_bad_idx_contents_refused(void **state)
{
    (void)state;
    unsigned char b[600];
    size_t n = img_idx(b);
    refused(b, 3, "truncated IDX header (3 bytes)");
    refused(b, 10, "truncated IDX header (10 bytes, its 3 dimensions need 16)");
    refused(b, n - 1, "IDX header promises 2 x 16 x 16 = 512 bytes of data, the file has 511 "
                      "(truncated)");
    b[n] = 0;
    refused(b, n + 1, "the file has 513 (trailing bytes)");
    b[2] = 0x0B;
    refused(b, n, "IDX data type 0x0b");
    b[2] = 8;
    b[3] = 0;
    refused(b, n, "0 dimensions");
    b[3] = 9;
    refused(b, n, "9 dimensions");
    b[3] = 3;
    b[11] = 0;
    refused(b, n, "IDX dimension 2 is 0");
    b[11] = 16;
    b[0] = 8;
    refused(b, n, "it starts with 0x08 0x00");
    /* the same check after a valid inflate: a gzipped IDX one byte short */
    refused(img_short_gz, sizeof img_short_gz, "the file has 511 (truncated)");
}

/* ---- allocation failures ---------------------------------------------------------------- */

static void test_failed_allocations_leak_nothing(void **state)
{
    (void)state;
    const unsigned char *srcs[3] = { img_dynamic, img_two_members, rare_dynamic };
    const size_t ns[3] = { sizeof img_dynamic, sizeof img_two_members, sizeof rare_dynamic };
    for (int s = 0; s < 3; s++) {
        long k = 0;
        for (;; k++) {
            ex_idx x;
            memset(&x, 0, sizeof x);
            node_test_alloc_begin(k);
            int r = ex_idx_parse(srcs[s], ns[s], "m.gz", &x, msg, sizeof msg);
            long live = node_test_alloc_live();
            long count = node_test_alloc_end();
            if (r == EX_IDX_OK) {
                assert_true(count <= k);
                ex_idx_free(&x);
                break;
            }
            assert_int_equal(r, EX_IDX_ENOMEM);
            assert_string_equal(msg, "m.gz: out of memory");
            assert_int_equal(live, 0);
        }
        assert_true(k >= 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stored_block_inflates),
        cmocka_unit_test(test_fixed_huffman_block_inflates),
        cmocka_unit_test(test_dynamic_huffman_block_inflates),
        cmocka_unit_test(test_two_members_with_every_header_field_inflate),
        cmocka_unit_test(test_codes_longer_than_the_lookup_table_decode),
        cmocka_unit_test(test_plain_idx_parses),
        cmocka_unit_test(test_files_read_back_gzipped_and_plain),
        cmocka_unit_test(test_imageset_reads_gz_or_plain_names),
        cmocka_unit_test(test_imageset_wrong_dims_refused),
        cmocka_unit_test(test_missing_file_named),
        cmocka_unit_test(test_bad_gzip_magic_refused),
        cmocka_unit_test(test_truncated_header_refused),
        cmocka_unit_test(test_truncated_data_refused),
        cmocka_unit_test(test_bad_crc_refused),
        cmocka_unit_test(test_bad_isize_refused),
        cmocka_unit_test(test_trailing_bytes_refused),
        cmocka_unit_test(test_invalid_deflate_data_refused),
        cmocka_unit_test(test_bad_idx_contents_refused),
        cmocka_unit_test(test_failed_allocations_leak_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
