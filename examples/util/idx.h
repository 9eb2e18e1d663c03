/* idx.h — read IDX files (LeCun's MNIST format: a magic, big-endian dimensions, then
 * the items) as Debian ships them, gzip-compressed (dataset-fashion-mnist), or plain;
 * with a small inflate of its own (RFC 1951 stored, fixed and dynamic Huffman blocks,
 * RFC 1952 members with their CRC-32 and ISIZE checked), so no new dependency.
 * Every malformed, truncated or missing file gets a one-line message naming it.
 */
#ifndef EX_IDX_H
#define EX_IDX_H

#include <stddef.h>

/* Return values: 0, or these. */
enum { EX_IDX_OK = 0, EX_IDX_ENOMEM = 1, EX_IDX_EINPUT = 2 };

#define EX_IDX_MAXDIM 8

/* An IDX array of unsigned bytes (type 0x08): dims[0] × ... × dims[ndim-1] values. */
typedef struct ex_idx {
    size_t ndim;
    size_t dims[EX_IDX_MAXDIM];
    size_t size;             /* the product of the dims: bytes in data */
    unsigned char *data;     /* owned (free with ex_idx_free) */
} ex_idx;

/* Decompress a gzip stream (one member or several, concatenated) of n bytes.
   EX_IDX_OK and *out (malloc'ed, the caller frees) / *outn; EX_IDX_EINPUT with a
   one-line message in msg (prefixed with name, may be NULL) for a bad magic, a
   truncated header or stream, invalid deflate data, a CRC-32 or ISIZE mismatch,
   trailing bytes; EX_IDX_ENOMEM.  Nothing is returned on failure. */
int ex_gunzip(const unsigned char *in, size_t n, unsigned char **out, size_t *outn,
              const char *name, char *msg, size_t msgn);

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
