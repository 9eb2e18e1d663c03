/* test_util.c — see test_util.h.  The __wrap_* functions replace malloc & co.
 * in every object linked statically into a test (ld --wrap=malloc ...). */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t c, size_t n);
void *__real_realloc(void *p, size_t n);
void  __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t c, size_t n);
void *__wrap_realloc(void *p, size_t n);
void  __wrap_free(void *p);

static bool counting;
static long count, fail_at = -1, live;
static size_t largest;

static bool should_fail(size_t n)
{
    if (!counting)
        return false;
    if (n > largest)
        largest = n;
    return count++ == fail_at;
}

void *__wrap_malloc(size_t n)
{
    if (should_fail(n))
        return NULL;
    void *p = __real_malloc(n);
    if (p && counting)
        live++;
    return p;
}

void *__wrap_calloc(size_t c, size_t n)
{
    if (should_fail(n && c > SIZE_MAX / n ? SIZE_MAX : c * n))
        return NULL;
    void *p = __real_calloc(c, n);
    if (p && counting)
        live++;
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (should_fail(n))
        return NULL;
    void *q = __real_realloc(p, n);
    if (q && !p && counting)
        live++;
    return q;
}

void __wrap_free(void *p)
{
    if (p && counting)
        live--;
    __real_free(p);
}

void node_test_alloc_begin(long k)
{
    count = 0;
    live = 0;
    largest = 0;
    fail_at = k;
    counting = true;
}

long node_test_alloc_end(void)
{
    counting = false;
    fail_at = -1;
    return count;
}

long node_test_alloc_live(void) { return live; }
size_t node_test_alloc_largest(void) { return largest; }

void node_test_assert_close(double got, double want, double rtol, double atol,
                            const char *expr, const char *file, int line)
{
    double tol = atol + rtol * fabs(want);
    if (isfinite(got) && isfinite(want) && fabs(got - want) <= tol)
        return;
    print_error("%s:%d: %s = %.17g, want %.17g (|diff| %.3g > tol %.3g)\n", file, line,
                expr, got, want, fabs(got - want), tol);
    _fail(file, line);
}

void node_test_assert_status(node_status got, node_status want, const char *expr,
                             const char *file, int line)
{
    if (got == want)
        return;
    print_error("%s:%d: %s returned %d (%s), want %d (%s)\n", file, line, expr, (int)got,
                node_strerror(got), (int)want, node_strerror(want));
    _fail(file, line);
}

double node_test_reldiff(double a, double b, double floor)
{
    double s = fmax(fmax(fabs(a), fabs(b)), floor);
    return fabs(a - b) / s;
}
