/* status.c — node_strerror, node_version and the library's one allocation path. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>

const char *node_strerror(node_status s)
{
    switch (s) {
    case NODE_OK:         return "success";
    case NODE_EINVAL:     return "invalid argument";
    case NODE_ENOMEM:     return "out of memory";
    case NODE_EMAXSTEPS:  return "maximum number of steps reached";
    case NODE_ESTEPSIZE:  return "step size underflow";
    case NODE_ENONFINITE: return "non-finite value (NaN or Inf) in the solution";
    case NODE_ECALLBACK:  return "a user callback returned non-zero";
    case NODE_EIO:        return "input/output error";
    case NODE_EFORMAT:    return "malformed model file";
    }
    return "unknown status";
}

const char *node_version(void)
{
#define NODE__STR2(x) #x
#define NODE__STR(x) NODE__STR2(x)
    return NODE__STR(NODE_VERSION_MAJOR) "." NODE__STR(NODE_VERSION_MINOR) "."
           NODE__STR(NODE_VERSION_PATCH);
}

/* ---- allocation ------------------------------------------------------------ */

void *node__malloc(size_t n) { return malloc(n ? n : 1); }
void *node__calloc(size_t count, size_t size) { return calloc(count ? count : 1, size ? size : 1); }
void *node__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
void  node__free(void *p) { free(p); }

node_status node__grow(double **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return NODE_OK;
    if (n > SIZE_MAX / sizeof(double))
        return NODE_ENOMEM;
    double *p = node__realloc(*buf, n * sizeof(double));
    if (!p)
        return NODE_ENOMEM;
    *buf = p;
    *cap = n;
    return NODE_OK;
}
