/* test_tseries.c — node_tseries (include/libnode/seq.h): add and get round trip with
 * every refused series, long-format CSV (interleaved series, CRLF, wide rows, every
 * malformed case with "path:line: what"), the batch on the union of times worked by
 * hand, the cap protocol, and the allocation-failure sweeps.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/libnode_tseries_XXXXXX";
static char path[4096];

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

/* Write text to dir/name; returns the path (static buffer). */
static const char *put(const char *name, const char *text)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

static void assert_message(const node_error *e, const char *want)
{
    if (!strstr(e->message, want))
        print_message("message \"%s\" lacks \"%s\"\n", e->message, want);
    assert_non_null(strstr(e->message, want));
}

/* ---- add and get ------------------------------------------------------------------ */

static void test_tseries_add_get_round_trip(void **state)
{
    (void)state;
    node_tseries *d = NULL;
    node_error e;
    assert_status(node_tseries_create(&d, 2, &e), NODE_OK);
    assert_int_equal(node_tseries_dim(d), 2);
    assert_int_equal(node_tseries_count(d), 0);
    const double t1[3] = { -1, 0.5, 2 }, x1[6] = { 1, 2, 3, 4, 5, 6 };
    const double t2[1] = { 7 }, x2[2] = { -8, 9 };
    assert_status(node_tseries_add(d, 42, 3, t1, x1, &e), NODE_OK);
    assert_status(node_tseries_add(d, -3, 1, t2, x2, NULL), NODE_OK);
    /* many series: the table grows, earlier ones stay */
    for (int i = 0; i < 40; i++)
        assert_status(node_tseries_add(d, 100 + i, 3, t1, x1, NULL), NODE_OK);
    assert_int_equal(node_tseries_count(d), 42);

    int64_t id;
    size_t n;
    const double *t, *x;
    assert_status(node_tseries_get(d, 0, &id, &n, &t, &x), NODE_OK);
    assert_true(id == 42 && n == 3);
    assert_memory_equal(t, t1, sizeof t1);
    assert_memory_equal(x, x1, sizeof x1);
    assert_true(t != t1 && x != x1);   /* copies */
    assert_status(node_tseries_get(d, 1, &id, &n, &t, &x), NODE_OK);
    assert_true(id == -3 && n == 1 && t[0] == 7 && x[0] == -8 && x[1] == 9);
    assert_status(node_tseries_get(d, 41, &id, NULL, NULL, NULL), NODE_OK);
    assert_true(id == 139);
    assert_status(node_tseries_get(d, 42, &id, &n, &t, &x), NODE_EINVAL);
    assert_status(node_tseries_get(NULL, 0, &id, &n, &t, &x), NODE_EINVAL);

    /* refused series: a message, and the set unchanged */
    const double tb[3] = { 0, 1, 1 }, tn[2] = { 0, NAN }, ti[2] = { -INFINITY, 0 };
    const double xb[6] = { 1, 2, 3, INFINITY, 5, 6 };
    assert_status(node_tseries_add(d, 1, 3, tb, x1, &e), NODE_EINVAL);
    assert_message(&e, "t[2] = 1 is not after t[1] = 1");
    assert_status(node_tseries_add(d, 1, 2, tn, x1, &e), NODE_EINVAL);
    assert_message(&e, "t[1] = nan is not finite");
    assert_status(node_tseries_add(d, 1, 2, ti, x1, &e), NODE_EINVAL);
    assert_message(&e, "t[0] = -inf is not finite");
    assert_status(node_tseries_add(d, 1, 3, t1, xb, &e), NODE_EINVAL);
    assert_message(&e, "x[3] = inf (observation 1, value 1) is not finite");
    assert_status(node_tseries_add(d, 1, 0, t1, x1, &e), NODE_EINVAL);
    assert_message(&e, "n = 0");
    assert_status(node_tseries_add(d, 1, 3, NULL, x1, &e), NODE_EINVAL);
    assert_message(&e, "t is NULL");
    assert_status(node_tseries_add(d, 1, 3, t1, NULL, &e), NODE_EINVAL);
    assert_message(&e, "x is NULL");
    assert_status(node_tseries_add(NULL, 1, 3, t1, x1, &e), NODE_EINVAL);
    assert_message(&e, "d is NULL");
    assert_status(node_tseries_add(d, 1, SIZE_MAX / 4, t1, x1, &e), NODE_EINVAL);
    assert_message(&e, "do not fit in memory");
    assert_int_equal(node_tseries_count(d), 42);
    node_tseries_free(d);

    d = (node_tseries *)&d;
    assert_status(node_tseries_create(&d, 0, &e), NODE_EINVAL);
    assert_message(&e, "dim = 0");
    assert_true(d == (node_tseries *)&d);
    assert_status(node_tseries_create(NULL, 1, &e), NODE_EINVAL);
    assert_message(&e, "out is NULL");
    assert_int_equal(node_tseries_count(NULL), 0);
    assert_int_equal(node_tseries_dim(NULL), 0);
    node_tseries_free(NULL);
}

/* ---- CSV ------------------------------------------------------------------------------ */

static void assert_series(const node_tseries *d, size_t i, int64_t want_id, size_t want_n,
                          const double *want_t, const double *want_x)
{
    int64_t id;
    size_t n;
    const double *t, *x;
    assert_status(node_tseries_get(d, i, &id, &n, &t, &x), NODE_OK);
    assert_true(id == want_id);
    assert_int_equal(n, want_n);
    size_t D = node_tseries_dim(d);
    for (size_t k = 0; k < n; k++)
        assert_true(t[k] == want_t[k]);
    for (size_t k = 0; k < n * D; k++)
        assert_true(x[k] == want_x[k]);
}

static void test_csv_reads_interleaved_series(void **state)
{
    (void)state;
    /* CRLF endings, blanks around fields, a blank line, free value names, series in
       the order they first appear, each keeping its rows' file order */
    const char *p = put("good.csv",
                        "series,t,height,weight\r\n"
                        "7,0.5,1,2\r\n"
                        "-3, 0.1 ,10,20\r\n"
                        "\r\n"
                        "7,1.5,3,4e-3\r\n"
                        "-3,0.2,30,40\r\n"
                        "-3,0.9,-50,60\r\n"
                        "7,2.5,5,6\r\n");
    node_tseries *d = NULL;
    node_error e;
    assert_status(node_tseries_read_csv(&d, p, &e), NODE_OK);
    assert_string_equal(e.message, "");
    assert_int_equal(node_tseries_dim(d), 2);
    assert_int_equal(node_tseries_count(d), 2);
    const double t7[3] = { 0.5, 1.5, 2.5 }, x7[6] = { 1, 2, 3, 4e-3, 5, 6 };
    const double t3[3] = { 0.1, 0.2, 0.9 }, x3[6] = { 10, 20, 30, 40, -50, 60 };
    assert_series(d, 0, 7, 3, t7, x7);
    assert_series(d, 1, -3, 3, t3, x3);
    node_tseries_free(d);
    unlink(p);

    /* D = 64 values per row, no final newline */
    char *text = malloc(64 * 1024);
    assert_non_null(text);
    size_t len = (size_t)sprintf(text, "series,t");
    for (int j = 0; j < 64; j++)
        len += (size_t)sprintf(text + len, ",x%d", j);
    for (int row = 0; row < 4; row++) {
        len += (size_t)sprintf(text + len, "\n%d,%d", row % 2, row);
        for (int j = 0; j < 64; j++)
            len += (size_t)sprintf(text + len, ",%.17g", 0.1 * j + row);
    }
    p = put("wide.csv", text);
    free(text);
    assert_status(node_tseries_read_csv(&d, p, &e), NODE_OK);
    assert_int_equal(node_tseries_dim(d), 64);
    assert_int_equal(node_tseries_count(d), 2);
    const double *x;
    size_t n;
    assert_status(node_tseries_get(d, 1, NULL, &n, NULL, &x), NODE_OK);
    assert_int_equal(n, 2);
    assert_true(x[64 + 63] == 0.1 * 63 + 3);   /* series 1, its second row (row 3) */
    node_tseries_free(d);
    unlink(p);
}

/* A malformed file: NODE_EFORMAT (or want), a message with "name:line: " and `what`,
   *out untouched. */
static void assert_refused(const char *name, const char *text, node_status want,
                           size_t line, const char *what)
{
    const char *p = put(name, text);
    char where[4200];
    snprintf(where, sizeof where, "%s:%zu: ", p, line);
    node_tseries *d = (node_tseries *)&d;
    node_error e;
    assert_status(node_tseries_read_csv(&d, p, &e), want);
    assert_int_equal(e.status, want);
    assert_message(&e, where);
    assert_message(&e, what);
    assert_true(d == (node_tseries *)&d);
    unlink(p);
}

static void test_csv_malformed_files_are_refused(void **state)
{
    (void)state;
    const node_status F = NODE_EFORMAT;
    assert_refused("empty.csv", "", F, 1, "empty file");
    assert_refused("blank.csv", "\n  \n", F, 3, "empty file");
    assert_refused("header_only.csv", "series,t,x\n", F, 2, "no observations after the header");
    assert_refused("two_columns.csv", "series,t\n1,0\n", F, 1, "bad header: 2 columns");
    assert_refused("names.csv", "id,t,x\n1,0,1\n1,1,2\n", F, 1,
                   "bad header: the first two columns must be named series and t, found "
                   "'id' and 't'");
    assert_refused("columns.csv", "series,t,x,y\n1,0,1,2\n1,1,2\n", F, 3,
                   "3 columns, expected 4 (series, t and 2 values");
    assert_refused("columns2.csv", "series,t,x\n1,0,1\n1,1,2,3\n", F, 3, "4 columns, expected 3");
    assert_refused("number.csv", "series,t,x\n1,0,1\n1,1,abc\n", F, 3,
                   "column 3: 'abc' is not a number");
    assert_refused("trailing.csv", "series,t,x\n1,0,1\n1,1x,2\n", F, 3,
                   "column 2: '1x' is not a number");
    assert_refused("emptyfield.csv", "series,t,x\n1,0,\n1,1,2\n", F, 2, "column 3 is empty");
    assert_refused("nan.csv", "series,t,x\n1,0,1\n1,1,nan\n", F, 3,
                   "column 3: 'nan' is not finite");
    assert_refused("inf.csv", "series,t,x\n1,-Inf,1\n1,1,2\n", F, 2,
                   "column 2: '-Inf' is not finite");
    assert_refused("overflow.csv", "series,t,x\n1,0,1e999\n1,1,2\n", F, 2,
                   "column 3: '1e999' is not finite");
    assert_refused("id.csv", "series,t,x\n1,0,1\n1.5,1,2\n", F, 3,
                   "series id '1.5' is not an integer");
    assert_refused("id2.csv", "series,t,x\nabc,0,1\n", F, 2, "series id 'abc' is not an integer");
    assert_refused("id3.csv", "series,t,x\n,0,1\n", F, 2, "series id '' is not an integer");
    assert_refused("id4.csv", "series,t,x\n99999999999999999999,0,1\n", F, 2,
                   "series id '99999999999999999999' is out of range");
    /* times must increase within a series (series 2's rows are lines 3, 5, 6) */
    assert_refused("order.csv", "series,t,x\n1,0,1\n2,5,1\n1,1,2\n2,6,1\n2,5.5,1\n", F, 6,
                   "t = 5.5 of series 2 is not after its previous time 6 (line 5)");
    assert_refused("equal.csv", "series,t,x\n1,0,1\n1,0,2\n", F, 3, "is not after");
    /* the earliest bad line is reported: line 3 (one-point series 9) before line 5 */
    assert_refused("one.csv", "series,t,x\n1,0,1\n9,0,1\n1,1,2\n1,0.5,2\n", F, 3,
                   "series 9 has one observation: a series needs at least 2");
    assert_refused("one2.csv", "series,t,x\n1,0,1\n1,1,1\n4,2,2\n", F, 4,
                   "series 4 has one observation");

    /* a missing file: NODE_EIO with the system's reason */
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    node_tseries *d = NULL;
    node_error e;
    assert_status(node_tseries_read_csv(&d, path, &e), NODE_EIO);
    assert_message(&e, path);
    assert_message(&e, "No such file or directory");
    assert_null(d);
    /* a directory cannot be read as a file */
    assert_status(node_tseries_read_csv(&d, dir, &e), NODE_EIO);
    assert_null(d);

    assert_status(node_tseries_read_csv(NULL, path, &e), NODE_EINVAL);
    assert_message(&e, "out is NULL");
    assert_status(node_tseries_read_csv(&d, NULL, &e), NODE_EINVAL);
    assert_message(&e, "path is NULL");
}

static void test_csv_allocation_failure_sweep(void **state)
{
    (void)state;
    /* enough rows and series to grow every buffer more than once */
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)sprintf(text, "series,t,a,b,c\n");
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(text + len, "%d,%d,%d,1.5,-2\n", i % 23, i, i * 3);
    const char *p = put("sweep.csv", text);
    free(text);
    bool done = false;
    for (long k = 0; !done; k++) {
        node_test_alloc_begin(k);
        node_tseries *d = NULL;
        node_error e;
        node_status st = node_tseries_read_csv(&d, p, &e);
        if (st == NODE_OK) {
            done = true;
            assert_int_equal(node_tseries_count(d), 23);
            node_tseries_free(d);
        } else {
            assert_status(st, NODE_ENOMEM);
            assert_null(d);
        }
        long n = node_test_alloc_end();
        assert_int_equal(node_test_alloc_live(), 0);
        if (!done)
            assert_true(k < n);   /* the k-th allocation was the one that failed */
    }
    unlink(p);

    /* add: a failed allocation leaves the set as it was */
    node_tseries *d = NULL;
    assert_status(node_tseries_create(&d, 1, NULL), NODE_OK);
    const double t[2] = { 0, 1 }, x[2] = { 3, 4 };
    for (int i = 0; i < 20; i++) {
        node_test_alloc_begin(0);
        node_status st = node_tseries_add(d, i, 2, t, x, NULL);
        node_test_alloc_end();
        assert_status(st, NODE_ENOMEM);
        assert_int_equal(node_tseries_count(d), (size_t)i);
        assert_status(node_tseries_add(d, i, 2, t, x, NULL), NODE_OK);
    }
    node_tseries_free(d);
}

/* ---- union batches --------------------------------------------------------------------- */

static void test_union_by_hand(void **state)
{
    (void)state;
    node_tseries *d = NULL;
    assert_status(node_tseries_create(&d, 2, NULL), NODE_OK);
    const double ta[3] = { 0, 1, 3 }, xa[6] = { 10, -10, 11, -11, 13, -13 };
    const double tb[3] = { 1, 2, 3.5 }, xb[6] = { 21, -21, 22, -22, 23.5, -23.5 };
    const double one_up = nextafter(1.0, 2.0);
    const double tc[2] = { 0.5, one_up }, xc[4] = { 30.5, -30.5, 31, -31 };
    assert_status(node_tseries_add(d, 100, 3, ta, xa, NULL), NODE_OK);
    assert_status(node_tseries_add(d, 200, 3, tb, xb, NULL), NODE_OK);
    assert_status(node_tseries_add(d, 300, 2, tc, xc, NULL), NODE_OK);

    /* batch [B, A, C]: times 0, 0.5, 1 (A and B: merged), 1 + ulp (not merged), 2, 3,
       3.5 */
    const size_t sel[3] = { 1, 0, 2 };
    enum { U = 7, S = 3 };
    const double want_ts[U] = { 0, 0.5, 1, one_up, 2, 3, 3.5 };
    const unsigned char want_mask[U * S] = {
        0, 1, 0,   /* 0    */
        0, 0, 1,   /* 0.5  */
        1, 1, 0,   /* 1    */
        0, 0, 1,   /* 1+   */
        1, 0, 0,   /* 2    */
        0, 1, 0,   /* 3    */
        1, 0, 0,   /* 3.5  */
    };
    const double want_xs[U * S * 2] = {
        0, 0,      10, -10,   0, 0,
        0, 0,      0, 0,      30.5, -30.5,
        21, -21,   11, -11,   0, 0,
        0, 0,      0, 0,      31, -31,
        22, -22,   0, 0,      0, 0,
        0, 0,      13, -13,   0, 0,
        23.5, -23.5, 0, 0,    0, 0,
    };

    /* asking: cap 0, nothing but *nt written */
    size_t nt = 0;
    node_error e;
    assert_status(node_tseries_union(d, S, sel, 0, NULL, &nt, NULL, NULL, &e), NODE_EINVAL);
    assert_int_equal(nt, U);
    assert_message(&e, "the union has 7 times, cap is 0");

    /* too small: *nt = the size needed, the arrays untouched */
    double ts[U + 1], xs[(U + 1) * S * 2];
    unsigned char mask[(U + 1) * S];
    memset(ts, 0xA5, sizeof ts);
    memset(xs, 0xA5, sizeof xs);
    memset(mask, 0xA5, sizeof mask);
    double ts0[U + 1], xs0[(U + 1) * S * 2];
    unsigned char mask0[(U + 1) * S];
    memcpy(ts0, ts, sizeof ts);
    memcpy(xs0, xs, sizeof xs);
    memcpy(mask0, mask, sizeof mask);
    assert_status(node_tseries_union(d, S, sel, U - 1, ts, &nt, xs, mask, &e), NODE_EINVAL);
    assert_int_equal(nt, U);
    assert_memory_equal(ts, ts0, sizeof ts);
    assert_memory_equal(xs, xs0, sizeof xs);
    assert_memory_equal(mask, mask0, sizeof mask);

    /* enough room (cap U + 1: the series' 8 times fit, so the union is written without
       being counted; the spare row stays untouched), and room for the union but not for
       all the series' times (cap U = 7 < 8: counted first, then written the same);
       allocation-free either way */
    for (size_t cap = U + 1; cap >= U; cap--) {
        memcpy(ts, ts0, sizeof ts);
        memcpy(xs, xs0, sizeof xs);
        memcpy(mask, mask0, sizeof mask);
        node_test_alloc_begin(-1);
        assert_status(node_tseries_union(d, S, sel, cap, ts, &nt, xs, mask, &e), NODE_OK);
        assert_int_equal(node_test_alloc_end(), 0);
        assert_int_equal(nt, U);
        for (size_t i = 0; i < U; i++)
            assert_true(ts[i] == want_ts[i]);
        assert_memory_equal(mask, want_mask, sizeof want_mask);
        for (size_t i = 0; i < U * S * 2; i++)
            assert_true(xs[i] == want_xs[i]);
        assert_memory_equal(ts + U, ts0 + U, sizeof(double));
        assert_memory_equal(xs + U * S * 2, xs0 + U * S * 2, S * 2 * sizeof(double));
        assert_memory_equal(mask + U * S, mask0 + U * S, S);
    }

    /* one series alone: its own times; the same series twice: two equal columns */
    assert_status(node_tseries_union(d, 1, sel + 1, U, ts, &nt, xs, mask, NULL), NODE_OK);
    assert_int_equal(nt, 3);
    assert_memory_equal(ts, ta, sizeof ta);
    assert_memory_equal(xs, xa, sizeof xa);
    const size_t twice[2] = { 2, 2 };
    assert_status(node_tseries_union(d, 2, twice, U, ts, &nt, xs, mask, NULL), NODE_OK);
    assert_int_equal(nt, 2);
    assert_true(xs[0] == 30.5 && xs[2] == 30.5 && xs[5] == -31 && xs[7] == -31);
    assert_true(mask[0] && mask[1] && mask[2] && mask[3]);

    /* refused arguments */
    const node_status E = NODE_EINVAL;
    assert_status(node_tseries_union(NULL, S, sel, U, ts, &nt, xs, mask, &e), E);
    assert_message(&e, "d is NULL");
    assert_status(node_tseries_union(d, 0, sel, U, ts, &nt, xs, mask, &e), E);
    assert_message(&e, "nsel = 0");
    assert_status(node_tseries_union(d, S, NULL, U, ts, &nt, xs, mask, &e), E);
    assert_message(&e, "sel is NULL");
    assert_status(node_tseries_union(d, S, sel, U, ts, NULL, xs, mask, &e), E);
    assert_message(&e, "nt is NULL");
    assert_status(node_tseries_union(d, S, sel, U, NULL, &nt, xs, mask, &e), E);
    assert_message(&e, "ts is NULL with cap = 7 > 0");
    assert_status(node_tseries_union(d, S, sel, U, ts, &nt, NULL, mask, &e), E);
    assert_message(&e, "xs is NULL");
    assert_status(node_tseries_union(d, S, sel, U, ts, &nt, xs, NULL, &e), E);
    assert_message(&e, "mask is NULL");
    const size_t bad[2] = { 0, 3 };
    nt = 99;
    assert_status(node_tseries_union(d, 2, bad, U, ts, &nt, xs, mask, &e), E);
    assert_message(&e, "sel[1] = 3 is out of range (the set has 3 series)");
    assert_int_equal(nt, 99);
    assert_status(node_tseries_union(d, S, sel, SIZE_MAX / 8, ts, &nt, xs, mask, &e), E);
    assert_message(&e, "cannot be that large");
    node_tseries_free(d);
}

/* The union of a CSV file's series: the reader and the batch agree. */
static void test_union_of_a_csv_file(void **state)
{
    (void)state;
    const char *p = put("u.csv", "series,t,x\n5,0,1\n6,0.5,2\n5,1,3\n6,1,4\n");
    node_tseries *d = NULL;
    assert_status(node_tseries_read_csv(&d, p, NULL), NODE_OK);
    unlink(p);
    const size_t sel[2] = { 0, 1 };
    double ts[3], xs[6];
    unsigned char mask[6];
    size_t nt;
    assert_status(node_tseries_union(d, 2, sel, 3, ts, &nt, xs, mask, NULL), NODE_OK);
    assert_int_equal(nt, 3);
    const double want_ts[3] = { 0, 0.5, 1 }, want_xs[6] = { 1, 0, 0, 2, 3, 4 };
    const unsigned char want_mask[6] = { 1, 0, 0, 1, 1, 1 };
    assert_memory_equal(ts, want_ts, sizeof ts);
    assert_memory_equal(xs, want_xs, sizeof xs);
    assert_memory_equal(mask, want_mask, sizeof mask);
    node_tseries_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tseries_add_get_round_trip),
        cmocka_unit_test(test_csv_reads_interleaved_series),
        cmocka_unit_test(test_csv_malformed_files_are_refused),
        cmocka_unit_test(test_csv_allocation_failure_sweep),
        cmocka_unit_test(test_union_by_hand),
        cmocka_unit_test(test_union_of_a_csv_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
