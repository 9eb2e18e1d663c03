/* test_net_files.c — network files (net.h: node_net_save / node_net_load): k
 * networks round trip bit for bit (layers, parameters, outputs, the bytes again);
 * every truncation and every flipped byte is refused with NODE_EFORMAT and a
 * message; the seed corpus written by an independent script (net_valid_* load and
 * save back to the same bytes, net_invalid_* are refused); allocation failures at
 * every point of a load; refused arguments.
 */
#include "test_util.h"
#include "net/net_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#define PREFIX "test_net_files_"

static node_net *odenet_like(size_t which)
{
    node_net *n = NULL;
    switch (which) {
    case 0:   /* downsampling */
        assert_status(node_net_create(&n, 1, 9, 9, NULL), NODE_OK);
        assert_status(node_net_add_conv2d(n, 4, 3, 3, 1, 0, 1, 0, NULL), NODE_OK);
        assert_status(node_net_add_groupnorm(n, 2, NULL), NODE_OK);
        assert_status(node_net_add_act(n, NODE_ACT_RELU, NULL), NODE_OK);
        assert_status(node_net_add_conv2d(n, 4, 4, 4, 2, 1, 1, 0, NULL), NODE_OK);
        break;
    case 1:   /* the ODE block's dynamics */
        assert_status(node_net_create(&n, 4, 3, 3, NULL), NODE_OK);
        assert_status(node_net_add_groupnorm(n, 2, NULL), NODE_OK);
        assert_status(node_net_add_act(n, NODE_ACT_RELU, NULL), NODE_OK);
        assert_status(node_net_add_conv2d(n, 4, 3, 3, 1, 1, 0, 1, NULL), NODE_OK);
        assert_status(node_net_add_resblock(n, 4, NULL), NODE_OK);
        break;
    default:  /* the head */
        assert_status(node_net_create(&n, 4, 3, 3, NULL), NODE_OK);
        assert_status(node_net_add_groupnorm(n, 2, NULL), NODE_OK);
        assert_status(node_net_add_act(n, NODE_ACT_SILU, NULL), NODE_OK);
        assert_status(node_net_add_avgpool(n, NULL), NODE_OK);
        assert_status(node_net_add_flatten(n, NULL), NODE_OK);
        assert_status(node_net_add_dense(n, 10, 1, 1, NULL), NODE_OK);
        break;
    }
    node_net_init(n, 100 + which);
    return n;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void assert_same_net(node_net *a, node_net *b)
{
    size_t ca, ha, wa, cb, hb, wb;
    node_net_in_shape(a, &ca, &ha, &wa);
    node_net_in_shape(b, &cb, &hb, &wb);
    assert_true(ca == cb && ha == hb && wa == wb);
    assert_int_equal(node_net_nlayers(a), node_net_nlayers(b));
    assert_int_equal(node_net_nparams(a), node_net_nparams(b));
    assert_memory_equal(node_net_params(a), node_net_params(b),
                        node_net_nparams(a) * sizeof(double));
    size_t ni = ca * ha * wa, co, ho, wo;
    node_net_out_shape(a, &co, &ho, &wo);
    size_t no = co * ho * wo;
    double *x = calloc(3 * ni, sizeof *x), *ya = calloc(3 * no, sizeof *ya),
           *yb = calloc(3 * no, sizeof *yb);
    for (size_t i = 0; i < 3 * ni; i++)
        x[i] = sin((double)i);
    assert_status(node_net_forward(a, 3, 0.5, x, ya), NODE_OK);
    assert_status(node_net_forward(b, 3, 0.5, x, yb), NODE_OK);
    assert_memory_equal(ya, yb, 3 * no * sizeof *ya);
    free(x); free(ya); free(yb);
}

static void test_round_trip_bit_for_bit(void **state)
{
    (void)state;
    node_net *nets[3] = { odenet_like(0), odenet_like(1), odenet_like(2) };
    node_net_params(nets[2])[3] = -0.0;
    node_error e;
    assert_status(node_net_save((const node_net *const *)nets, 3, PREFIX "rt.net", &e), NODE_OK);
    assert_string_equal(e.message, "");
    node_net *got[4] = { NULL };
    size_t k = 0;
    assert_status(node_net_load(got, 4, &k, PREFIX "rt.net", &e), NODE_OK);
    assert_int_equal(k, 3);
    for (size_t i = 0; i < 3; i++)
        assert_same_net(nets[i], got[i]);
    /* saved again: the same bytes */
    size_t n0, n1;
    unsigned char *b0 = read_file(PREFIX "rt.net", &n0);
    assert_status(node_net_save((const node_net *const *)got, 3, PREFIX "rt2.net", NULL), NODE_OK);
    unsigned char *b1 = read_file(PREFIX "rt2.net", &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(b0, b1, n0);
    /* too little room: refused, nothing handed out */
    node_net *one[2] = { NULL, NULL };
    assert_status(node_net_load(one, 2, &k, PREFIX "rt.net", &e), NODE_EFORMAT);
    assert_non_null(strstr(e.message, "3 networks, room for 2"));
    assert_null(one[0]);
    for (size_t i = 0; i < 3; i++) {
        node_net_free(nets[i]);
        node_net_free(got[i]);
    }
    free(b0);
    free(b1);
    remove(PREFIX "rt.net");
    remove(PREFIX "rt2.net");
}

/* Every prefix of a valid file and every single flipped byte: NODE_EFORMAT with a
   message, nothing handed out (in memory, then one truncation through a file). */
static void test_every_truncation_and_flip_refused(void **state)
{
    (void)state;
    node_net *nets[2] = { odenet_like(1), odenet_like(2) };
    unsigned char *buf;
    size_t len;
    assert_status(node__net_save_mem((const node_net *const *)nets, 2, &buf, &len), NODE_OK);
    node_net *out[2] = { NULL, NULL };
    size_t k = 0;
    char msg[NODE_MESSAGE_SIZE];
    for (size_t n = 0; n < len; n++) {
        msg[0] = '\0';
        assert_status(node__net_load_mem(buf, n, out, 2, &k, msg), NODE_EFORMAT);
        assert_true(msg[0] != '\0');
        assert_null(out[0]);
    }
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x20;
        msg[0] = '\0';
        assert_status(node__net_load_mem(buf, len, out, 2, &k, msg), NODE_EFORMAT);
        assert_true(msg[0] != '\0');
        buf[i] ^= 0x20;
    }
    assert_status(node__net_load_mem(buf, len, out, 2, &k, msg), NODE_OK);
    assert_int_equal(k, 2);
    node_net_free(out[0]);
    node_net_free(out[1]);
    FILE *f = fopen(PREFIX "trunc.net", "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len - 1, f), len - 1);
    fclose(f);
    node_error e;
    assert_status(node_net_load(out, 2, &k, PREFIX "trunc.net", &e), NODE_EFORMAT);
    assert_non_null(strstr(e.message, PREFIX "trunc.net: "));
    remove(PREFIX "trunc.net");
    node__free(buf);
    node_net_free(nets[0]);
    node_net_free(nets[1]);
}

/* Allocation failure at every point of a load: NODE_ENOMEM, nothing leaked. */
static void test_load_allocation_failures(void **state)
{
    (void)state;
    node_net *nets[3] = { odenet_like(0), odenet_like(1), odenet_like(2) };
    unsigned char *buf;
    size_t len, k;
    assert_status(node__net_save_mem((const node_net *const *)nets, 3, &buf, &len), NODE_OK);
    node_net *out[3];
    for (long fail = 0;; fail++) {
        memset(out, 0, sizeof out);
        node_test_alloc_begin(fail);
        node_status st = node__net_load_mem(buf, len, out, 3, &k, NULL);
        long live = node_test_alloc_live();
        long count = node_test_alloc_end();
        if (st == NODE_OK) {
            assert_true(fail >= count);
            for (int i = 0; i < 3; i++)
                node_net_free(out[i]);
            break;
        }
        assert_status(st, NODE_ENOMEM);
        assert_int_equal(live, 0);
        assert_null(out[0]);
    }
    node__free(buf);
    for (int i = 0; i < 3; i++)
        node_net_free(nets[i]);
}

static void test_seed_corpus(void **state)
{
    (void)state;
    const char *root = getenv("LIBNODE_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus", root ? root : "..");
    DIR *d = opendir(dir);
    if (!d) {
        print_message("corpus not found at %s (set LIBNODE_SOURCE_DIR)\n", dir);
        skip();
    }
    int nvalid = 0, ninvalid = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "net_", 4) != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        node_net *out[8] = { NULL };
        size_t k = 0;
        node_error e;
        node_status st = node_net_load(out, 8, &k, path, &e);
        if (strncmp(de->d_name, "net_valid_", 10) == 0) {
            if (st != NODE_OK)
                print_error("%s: %s\n", de->d_name, e.message);
            assert_status(st, NODE_OK);
            size_t n0, n1;
            unsigned char *orig = read_file(path, &n0), *again;
            assert_status(node__net_save_mem((const node_net *const *)out, k, &again, &n1),
                          NODE_OK);
            assert_int_equal(n0, n1);
            assert_memory_equal(orig, again, n0);
            free(orig);
            node__free(again);
            for (size_t i = 0; i < k; i++)
                node_net_free(out[i]);
            nvalid++;
        } else {
            if (st != NODE_EFORMAT)
                print_error("%s: %s\n", de->d_name, e.message);
            assert_status(st, NODE_EFORMAT);
            assert_true(e.message[0] != '\0');
            assert_null(out[0]);
            ninvalid++;
        }
    }
    closedir(d);
    assert_true(nvalid >= 4 && ninvalid >= 15);
}

static void test_refused_arguments(void **state)
{
    (void)state;
    node_net *n = odenet_like(2), *out[2];
    const node_net *nets[2] = { n, NULL };
    node_error e;
    size_t k;
    assert_status(node_net_save(NULL, 1, PREFIX "x.net", &e), NODE_EINVAL);
    assert_status(node_net_save(nets, 1, NULL, &e), NODE_EINVAL);
    assert_status(node_net_save(nets, 1, "", &e), NODE_EINVAL);
    assert_status(node_net_save(nets, 0, PREFIX "x.net", &e), NODE_EINVAL);
    assert_status(node_net_save(nets, 2, PREFIX "x.net", &e), NODE_EINVAL);
    assert_non_null(strstr(e.message, "nets[1] is NULL"));
    assert_status(node_net_save(nets, 1, PREFIX "no_such_dir/x.net", &e), NODE_EIO);
    assert_status(node_net_load(NULL, 2, &k, PREFIX "x.net", &e), NODE_EINVAL);
    assert_status(node_net_load(out, 2, NULL, PREFIX "x.net", &e), NODE_EINVAL);
    assert_status(node_net_load(out, 2, &k, NULL, &e), NODE_EINVAL);
    assert_status(node_net_load(out, 2, &k, "", &e), NODE_EINVAL);
    assert_status(node_net_load(out, 0, &k, PREFIX "x.net", &e), NODE_EINVAL);
    assert_status(node_net_load(out, 2, &k, PREFIX "missing.net", &e), NODE_EIO);
    assert_non_null(strstr(e.message, "missing.net"));
    /* an MLP file is not a network file */
    node_mlp *m;
    size_t sizes[2] = { 2, 2 };
    node_activation act = NODE_ACT_TANH;
    assert_status(node_mlp_create(&m, 1, sizes, &act, 0), NODE_OK);
    assert_status(node_mlp_save(m, PREFIX "m.mlp"), NODE_OK);
    assert_status(node_net_load(out, 2, &k, PREFIX "m.mlp", &e), NODE_EFORMAT);
    assert_non_null(strstr(e.message, "not a libnode network file"));
    remove(PREFIX "m.mlp");
    node_mlp_free(m);
    node_net_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bit_for_bit),
        cmocka_unit_test(test_every_truncation_and_flip_refused),
        cmocka_unit_test(test_load_allocation_failures),
        cmocka_unit_test(test_seed_corpus),
        cmocka_unit_test(test_refused_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
