/* test_util.h — helpers shared by the cmocka tests: a floating-point closeness
 * assertion (Debian's cmocka 1.1.5 has no assert_double_equal) and control over
 * the library's allocations (malloc & co. are wrapped at link time, Lua-style:
 * count them, or fail the k-th one to walk every NODE_ENOMEM path).
 */
#ifndef LIBNODE_TEST_UTIL_H
#define LIBNODE_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <math.h>
#include <cmocka.h>

#include <libnode.h>

/* |got - want| <= atol + rtol * |want|, and both finite; prints the values if not. */
void node_test_assert_close(double got, double want, double rtol, double atol,
                            const char *expr, const char *file, int line);
#define assert_close(got, want, rtol, atol) \
    node_test_assert_close((got), (want), (rtol), (atol), #got, __FILE__, __LINE__)

/* Status check that prints both statuses by name. */
void node_test_assert_status(node_status got, node_status want, const char *expr,
                             const char *file, int line);
#define assert_status(got, want) \
    node_test_assert_status((got), (want), #got, __FILE__, __LINE__)

/* Allocation control.  Between begin and end, every malloc/calloc/realloc made
   by code linked statically into the test (libnode.a included) is counted, and
   the one with index fail_at (0-based) returns NULL (fail_at < 0: none fails).
   end returns the number of allocations counted. */
void node_test_alloc_begin(long fail_at);
long node_test_alloc_end(void);
/* Live blocks allocated (minus freed) since begin, to spot leaks. */
long node_test_alloc_live(void);
/* The largest single allocation (bytes) asked for since begin. */
size_t node_test_alloc_largest(void);

/* Relative difference |a-b| / max(|a|, |b|, floor). */
double node_test_reldiff(double a, double b, double floor);

#endif /* LIBNODE_TEST_UTIL_H */
