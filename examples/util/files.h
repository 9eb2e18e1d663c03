/* files.h — small file-system helpers for the examples (POSIX mkdir). */
#ifndef EX_FILES_H
#define EX_FILES_H

#include <stddef.h>

/* Create dir and its missing parents (like mkdir -p).  0, or -1 with errno set. */
int ex_mkdir_p(const char *dir);

/* buf = dir + "/" + name (just name when dir is empty or NULL).  0, or -1 if it
   does not fit in n bytes. */
int ex_path_join(char *buf, size_t n, const char *dir, const char *name);

#endif /* EX_FILES_H */
