/* status.c — node_strerror, node_version, failure messages and the library's one
 * allocation path. */
#include "internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

uint32_t node_version_number(void) { return NODE_VERSION_NUMBER; }

/* ---- failure details ------------------------------------------------------- */

node_status node__msg(char *buf, node_status s, const char *fmt, ...)
{
    if (buf) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, NODE_MESSAGE_SIZE, fmt, ap);
        va_end(ap);
        if (n < 0)
            buf[0] = '\0';
    }
    return s;
}

char *node__err_begin(node_error *err)
{
    if (!err)
        return NULL;
    memset(err, 0, sizeof *err);
    return err->message;
}

node_status node__err_end(node_error *err, node_status s)
{
    if (err) {
        err->status = s;
        if (s != NODE_OK && !err->message[0])
            node__msg(err->message, s, "%s", node_strerror(s));
        if (s == NODE_OK)
            err->message[0] = '\0';
    }
    return s;
}

bool node__zero_words(const uint64_t *p, size_t n)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

node_status node__check_system_reserved(const node_system *sys, char *msg)
{
    if (!node__zero_words(sys->reserved_, sizeof sys->reserved_ / sizeof sys->reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "sys has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s, or did not zero the struct",
                         node_version());
    return NODE_OK;
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
