/* gunzip.h — a small gzip decompressor for the examples' data files, so that they need
 * no new library: RFC 1951 inflate (stored, fixed and dynamic Huffman blocks) inside
 * RFC 1952 members (header flags, CRC-32 and ISIZE checked), concatenated members.
 */
#ifndef EX_GUNZIP_H
#define EX_GUNZIP_H

#include <stddef.h>

/* Return values: 0, or these. */
enum { EX_IDX_OK = 0, EX_IDX_ENOMEM = 1, EX_IDX_EINPUT = 2 };

/* Decompress a gzip stream (one member or several, concatenated) of n bytes.
   EX_IDX_OK and *out (malloc'ed, the caller frees) / *outn; EX_IDX_EINPUT with a
   one-line message in msg (prefixed with name, may be NULL) for a bad magic, a
   truncated header or stream, invalid deflate data, a CRC-32 or ISIZE mismatch,
   trailing bytes; EX_IDX_ENOMEM.  Nothing is returned on failure. */
int ex_gunzip(const unsigned char *in, size_t n, unsigned char **out, size_t *outn,
              const char *name, char *msg, size_t msgn);

/* "name: " and the formatted text into msg (msgn bytes; msg may be NULL). */
void ex_say(char *msg, size_t msgn, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif /* EX_GUNZIP_H */
