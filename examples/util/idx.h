/* idx.h — read IDX files (LeCun's MNIST format: a magic, big-endian dimensions, then
 * the items) as Debian ships them, gzip-compressed (dataset-fashion-mnist; inflated by
 * gunzip.h, no new dependency), or plain.  Every malformed, truncated or missing file
 * gets a one-line message naming it.  Return values as gunzip.h's.
 */
#ifndef EX_IDX_H
#define EX_IDX_H

#include <stddef.h>

#include "gunzip.h"

#define EX_IDX_MAXDIM 8

/* An IDX array of unsigned bytes (type 0x08): dims[0] × ... × dims[ndim-1] values. */
typedef struct ex_idx {
    size_t ndim;
    size_t dims[EX_IDX_MAXDIM];
    size_t size;             /* the product of the dims: bytes in data */
    unsigned char *data;     /* owned (free with ex_idx_free) */
} ex_idx;

/* Parse an IDX image in memory (plain, or gzip-compressed: told by its first two
   bytes).  Only unsigned bytes (type 0x08); 1 to EX_IDX_MAXDIM dimensions, each
   > 0; the data must be exactly the size the dimensions give.  Returns as above. */
int ex_idx_parse(const unsigned char *buf, size_t n, const char *name, ex_idx *out,
                 char *msg, size_t msgn);

/* Read and parse the file at path (messages name it).  Returns as above. */
int ex_idx_read(const char *path, ex_idx *out, char *msg, size_t msgn);

void ex_idx_free(ex_idx *x);   /* NULL-safe; leaves x zeroed */

/* An image classification set: count images of rows × cols bytes, one label each. */
typedef struct ex_imageset {
    size_t count, rows, cols;
    unsigned char *pixels;   /* count × rows × cols */
    unsigned char *labels;   /* count, each < the nclass asked for */
} ex_imageset;

/* DIR/PREFIX-images-idx3-ubyte.gz and DIR/PREFIX-labels-idx1-ubyte.gz (or the same
   names without .gz), MNIST's naming ("train", "t10k"): images 3-D, labels 1-D, the
   same count, every label < nclass.  Returns as above; msg names the file. */
int ex_imageset_read(const char *dir, const char *prefix, size_t nclass, ex_imageset *out,
                     char *msg, size_t msgn);

void ex_imageset_free(ex_imageset *s);   /* NULL-safe; leaves s zeroed */

#endif /* EX_IDX_H */
