/* test_status.c — status strings, version, and the allocation-wrapping harness. */
#include "test_util.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void test_strerror_never_null_and_distinct(void **state)
{
    (void)state;
    for (int s = NODE_OK; s <= NODE_EFORMAT; s++) {
        assert_non_null(node_strerror((node_status)s));
        for (int r = NODE_OK; r < s; r++)
            assert_string_not_equal(node_strerror((node_status)s), node_strerror((node_status)r));
    }
    assert_non_null(node_strerror((node_status)12345));
}

static void test_version_matches_macros(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", NODE_VERSION_MAJOR, NODE_VERSION_MINOR,
             NODE_VERSION_PATCH);
    assert_string_equal(node_version(), want);
}

static void test_alloc_wrapper_fails_kth_allocation(void **state)
{
    (void)state;
    node_test_alloc_begin(1);
    void *a = malloc(8), *b = malloc(8);
    long n = node_test_alloc_end();
    assert_non_null(a);
    assert_null(b);
    assert_int_equal(n, 2);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_never_null_and_distinct),
        cmocka_unit_test(test_version_matches_macros),
        cmocka_unit_test(test_alloc_wrapper_fails_kth_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
