/* fileio.c — model files on disk, for any format (internal.h: node__file_save and
 * node__file_load take a serializer and a parser; the MLP's format is io.c, the
 * latent ODE's seq/latent_io.c).  Load: only a regular file, of exactly the length its header implies, is read; a
 * FIFO, a device or a directory is refused without waiting on it.  Save: the model
 * is written to path + ".tmp" (never through a symbolic link, never into a file
 * that is not ours), flushed, given the permissions of the file it replaces and
 * renamed over path; then the folder is flushed.  POSIX where the system has it
 * (open flags, fstat, fcntl locks, fsync); plain C elsewhere, without those
 * guarantees (see the end of the file).
 */
#if (defined(__unix__) || defined(__APPLE__)) && !defined(NODE__FILES_PLAIN_C)
#  define NODE__FILES_POSIX 1
#  if defined(__linux__) && !defined(_GNU_SOURCE)
#    define _GNU_SOURCE            /* F_OFD_SETLK (Linux 3.15, glibc 2.20) */
#  endif
#  if !defined(_POSIX_C_SOURCE)
#    define _POSIX_C_SOURCE 200809L
#  endif
#  if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#    define _DARWIN_C_SOURCE
#  endif
#else
#  define NODE__FILES_POSIX 0
#endif

#include "nn/nn_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if NODE__FILES_POSIX
#  include <fcntl.h>
#  include <sys/stat.h>
#  include <sys/types.h>
#  include <unistd.h>
#  ifndef O_CLOEXEC
#    define O_CLOEXEC 0
#  endif
#endif

const int node__mlp_files_posix = NODE__FILES_POSIX;

#define say node__io_say

/* The message of errno value e for path. */
static node_status sys_error(char *msg, node_status st, const char *path, int e)
{
    return say(msg, st, path, "%s", strerror(e));
}

/* path + suffix in a new buffer with `extra` more bytes of room; NULL: no memory. */
static char *join(const char *path, const char *suffix, size_t extra)
{
    size_t n = strlen(path), k = strlen(suffix);
    if (n > SIZE_MAX - k - extra - 1)
        return NULL;
    char *s = node__malloc(n + k + extra + 1);
    if (s) {
        memcpy(s, path, n);
        memcpy(s + n, suffix, k + 1);
    }
    return s;
}

/* path + ".tmp." + 16 hex digits mixed from the clock, the time, an address on
   this thread's stack, the process and the attempt (no global state): unique
   enough for O_EXCL to settle the rest. */
static void unique_name(char *name, size_t plen, unsigned attempt, uint64_t pid)
{
    uint64_t z = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20)
               ^ (uint64_t)(uintptr_t)&z ^ ((uint64_t)attempt << 40) ^ (pid << 24);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    memcpy(name + plen, ".tmp.", 5);
    for (int i = 0; i < 16; i++)
        name[plen + 5 + i] = "0123456789abcdef"[(z >> (4 * i)) & 15u];
    name[plen + 21] = '\0';
}

#if NODE__FILES_POSIX
/* ---- POSIX: load ---------------------------------------------------------------- */

typedef struct fd_src {
    int fd;
    const char *path;
} fd_src;

static node_status fd_read(const void *ctx, uint64_t pos, unsigned char *buf, size_t n,
                           char *msg)
{
    const fd_src *c = ctx;
    while (n > 0) {
        size_t want = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        ssize_t got = pread(c->fd, buf, want, (off_t)pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return sys_error(msg, NODE_EIO, c->path, errno);
        if (got == 0)
            return say(msg, NODE_EIO, c->path, "changed while being read (ends at byte %llu)",
                       (unsigned long long)pos);
        buf += got;
        pos += (uint64_t)got;
        n -= (size_t)got;
    }
    return NODE_OK;
}

static node_status not_regular(char *msg, const char *path, mode_t mode)
{
    const char *what = S_ISDIR(mode) ? " (a directory)" : S_ISFIFO(mode) ? " (a FIFO)"
                     : S_ISCHR(mode) ? " (a character device)"
                     : S_ISBLK(mode) ? " (a block device)" : S_ISSOCK(mode) ? " (a socket)" : "";
    return say(msg, NODE_EIO, path, "not a regular file%s", what);
}

static node_status load_file(void **out, node__parse_fn parse, const char *path, char *msg)
{
    /* Look before opening, so that a device or a FIFO is not even opened (opening
       some devices acts: a tape rewinds); then check what was opened, since the
       name may have been replaced in between.  O_NONBLOCK: a FIFO swapped in after
       the first look does not block the open. */
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sys_error(msg, NODE_EIO, path, errno);
    if (!S_ISREG(sb.st_mode))
        return not_regular(msg, path, sb.st_mode);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return sys_error(msg, NODE_EIO, path, errno);
    node_status st;
    if (fstat(fd, &sb) != 0)
        st = sys_error(msg, NODE_EIO, path, errno);
    else if (!S_ISREG(sb.st_mode))
        st = not_regular(msg, path, sb.st_mode);
    else {
        fd_src c = { fd, path };
        node__src src = { fd_read, &c, (uint64_t)sb.st_size, path };
        st = parse(&src, out, msg);
    }
    close(fd);
    return st;
}

/* ---- POSIX: save -------------------------------------------------------------------
   The temporary file has a fixed name, path + ".tmp", so that a save killed halfway
   leaves one file that the next save reuses, not one more each time.  Sharing the
   name with other savers (threads, processes, a killed save's leftover) and with
   whoever else can write the folder, it is taken only when all of this holds:
   - it is opened with O_NOFOLLOW and O_NONBLOCK, after an lstat that refuses
     anything but a regular file: a symbolic link planted there is never followed
     (the model would land in its target), a FIFO never blocks the save;
   - fstat of what was opened: a regular file with one link, owned by us (not a
     hard link to another file of ours, not someone else's file);
   - an exclusive lock (fcntl, without waiting): only one live save writes it.
     Open-file-description locks (F_OFD_SETLK) exclude the threads of one process
     too; where only F_SETLK exists, threads of one process saving to one path at
     once are not excluded from each other (processes are).  A lock that cannot be
     had, for whatever reason, sends the save to a unique name (below);
   - after locking, lstat shows that the name still refers to the inode we hold.
     This closes the race that makes locks on renamed files treacherous: saver A
     opens the temporary while saver B holds it; B renames it over path (the
     inode is now the live model) and closes, releasing the lock; A's lock then
     succeeds on the live model.  The name check fails (the name is gone or is a
     new file) and A starts over; without it A would truncate the model.
   Only then is it truncated and written.  A save that finds the temporary locked
   by a live save writes to path + ".tmp." + 16 random hex digits instead, created
   with O_EXCL (which never follows a link), so concurrent saves never wait and
   never mix; the last rename wins.  Such a unique file is left behind only when a
   save is killed while another was running.
   A temporary left by a killed save is reused as it is when path exists (its
   permissions are set from path's); when path does not, it is unlinked and made
   afresh, so that a new model gets the mode the umask gives, 0666 & ~umask.
   Before the rename the name is checked once more: only a process that can write
   the folder could swap it in between, and such a process could replace the model
   directly anyway. */

enum { TEMP_OK, TEMP_TAKEN, TEMP_FAILED };

static int lock_exclusive(int fd)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);   /* whole file; l_pid 0, as OFD locks require */
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
#if defined(F_OFD_SETLK)
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    if (errno != EINVAL)   /* EINVAL: a kernel older than OFD locks */
        return -1;
#endif
    return fcntl(fd, F_SETLK, &fl);
}

static bool ours(const struct stat *s)
{
    return S_ISREG(s->st_mode) && s->st_nlink == 1 && s->st_uid == geteuid();
}

/* Does the name still refer to the file open as fd? */
static bool still_named(int fd, const char *name)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && lstat(name, &b) == 0 && a.st_dev == b.st_dev
        && a.st_ino == b.st_ino;
}

/* Take path + ".tmp" (in tmp) as described above: *fd open, locked, empty. */
static int take_fixed_temp(const char *tmp, bool keep_mode, int *fd, char *msg)
{
    const int flags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    for (int attempt = 0; attempt < 8; attempt++) {
        struct stat sb;
        if (lstat(tmp, &sb) == 0) {
            if (!ours(&sb))
                return TEMP_TAKEN;
        } else if (errno != ENOENT) {
            sys_error(msg, NODE_EIO, tmp, errno);   /* e.g. no such folder, no access */
            return TEMP_FAILED;
        }
        bool fresh = true;
        int f = open(tmp, flags | O_CREAT | O_EXCL, 0666);
        if (f < 0 && errno == EEXIST) {
            fresh = false;
            f = open(tmp, flags);
            if (f < 0 && errno == ENOENT)   /* renamed away between the two opens */
                continue;
        }
        if (f < 0) {
            if (errno == ELOOP || errno == EMLINK || errno == ENXIO || errno == EISDIR
                || errno == EAGAIN || errno == EWOULDBLOCK || errno == ETXTBSY)
                return TEMP_TAKEN;   /* a link, a FIFO, ... planted since the lstat */
            sys_error(msg, NODE_EIO, tmp, errno);
            return TEMP_FAILED;
        }
        if (fstat(f, &sb) != 0 || !ours(&sb) || lock_exclusive(f) != 0) {
            close(f);
            return TEMP_TAKEN;
        }
        if (!still_named(f, tmp)) {
            close(f);
            continue;
        }
        if (!fresh && !keep_mode) {   /* a leftover: made afresh for the umask's mode */
            unlink(tmp);
            close(f);
            continue;
        }
        if (ftruncate(f, 0) != 0) {
            sys_error(msg, NODE_EIO, tmp, errno);
            close(f);
            return TEMP_FAILED;
        }
        *fd = f;
        return TEMP_OK;
    }
    return TEMP_TAKEN;
}

static int take_unique_temp(char *name, size_t plen, int *fd, char *msg)
{
    for (unsigned attempt = 0; attempt < 32; attempt++) {
        unique_name(name, plen, attempt, (uint64_t)getpid());
        int f = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                     0666);
        if (f >= 0) {
            *fd = f;
            return TEMP_OK;
        }
        if (errno != EEXIST) {
            sys_error(msg, NODE_EIO, name, errno);
            return TEMP_FAILED;
        }
    }
    say(msg, NODE_EIO, name, "no free temporary name");
    return TEMP_FAILED;
}

typedef struct fd_sink {
    int fd;
    const char *name;
    char *msg;
} fd_sink;

static node_status fd_write(void *ctx, const unsigned char *p, size_t n)
{
    fd_sink *o = ctx;
    while (n > 0) {
        size_t want = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        ssize_t k = write(o->fd, p, want);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return sys_error(o->msg, NODE_EIO, o->name, k < 0 ? errno : ENOSPC);
        p += k;
        n -= (size_t)k;
    }
    return NODE_OK;
}

/* fsync the folder of path (name: room for it), so that the rename survives a
   power cut.  A folder we cannot open for reading, or a file system that cannot
   flush folders, leaves nothing more to do. */
static node_status sync_folder(char *name, const char *path, char *msg)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(name, ".");
    else if (slash == path)
        strcpy(name, "/");
    else {
        memcpy(name, path, (size_t)(slash - path));
        name[slash - path] = '\0';
    }
    int d = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return NODE_OK;
    int rc = fsync(d), e = errno;
    close(d);
    if (rc != 0 && e != EINVAL && e != EROFS && e != EBADF)
        return say(msg, NODE_EIO, path, "saved, but flushing its folder failed: %s",
                   strerror(e));
    return NODE_OK;
}

static node_status save_file(const void *obj, node__serialize_fn ser, const char *path,
                             char *msg)
{
    size_t plen = strlen(path);
    char *tmp = join(path, ".tmp", 24);   /* room for the unique suffix */
    if (!tmp)
        return say(msg, NODE_ENOMEM, path, "no memory for the temporary file's name");
    struct stat ps;
    bool keep_mode = lstat(path, &ps) == 0 && S_ISREG(ps.st_mode);
    int fd = -1;
    int r = take_fixed_temp(tmp, keep_mode, &fd, msg);
    if (r == TEMP_TAKEN)
        r = take_unique_temp(tmp, plen, &fd, msg);
    if (r != TEMP_OK) {
        node__free(tmp);
        return NODE_EIO;
    }
    /* From here the temporary is ours (locked, or made with O_EXCL): on failure
       it is removed, unless its name was taken over meanwhile. */
    fd_sink o = { fd, tmp, msg };
    node_status st = ser(obj, fd_write, &o);
    bool named = true;
    if (st == NODE_OK && keep_mode) {
        if (ps.st_gid != getegid() && fchown(fd, (uid_t)-1, ps.st_gid) != 0) {
            /* not a member of the file's group: the folder's default group stays */
        }
        if (fchmod(fd, ps.st_mode & 0777) != 0)
            st = sys_error(msg, NODE_EIO, tmp, errno);
    }
    if (st == NODE_OK && fsync(fd) != 0)
        st = sys_error(msg, NODE_EIO, tmp, errno);
    if (st == NODE_OK && !(named = still_named(fd, tmp)))
        st = say(msg, NODE_EIO, tmp, "replaced by another process while being written");
    if (st == NODE_OK && rename(tmp, path) != 0)
        st = say(msg, NODE_EIO, path, "cannot replace it: %s", strerror(errno));
    if (st != NODE_OK && named)
        unlink(tmp);
    close(fd);   /* after the rename: the lock covers it */
    if (st == NODE_OK)
        st = sync_folder(tmp, path, msg);
    node__free(tmp);
    return st;
}

#else
/* ---- plain C: load and save ----------------------------------------------------------
   Without POSIX the loader cannot tell a regular file from a pipe before opening
   it (a FIFO blocks fopen), and the saver cannot refuse a symbolic link or flush
   to disk: it writes a uniquely named temporary file ("wbx": exclusive where the
   C library supports it) and renames it over path. */

typedef struct file_src {
    FILE *f;
    const char *path;
} file_src;

static node_status file_read(const void *ctx, uint64_t pos, unsigned char *buf, size_t n,
                             char *msg)
{
    const file_src *c = ctx;
    if (fseek(c->f, (long)pos, SEEK_SET) != 0 || fread(buf, 1, n, c->f) != n)
        return say(msg, NODE_EIO, c->path, "%s", ferror(c->f) ? "read error"
                   : "changed while being read");
    return NODE_OK;
}

static node_status load_file(void **out, node__parse_fn parse, const char *path, char *msg)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno ? sys_error(msg, NODE_EIO, path, errno)
                     : say(msg, NODE_EIO, path, "cannot open it");
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    node_status st;
    if (n < 0)
        st = say(msg, NODE_EIO, path, "cannot tell its length (not a regular file?)");
    else {
        file_src c = { f, path };
        node__src src = { file_read, &c, (uint64_t)n, path };
        st = parse(&src, out, msg);
    }
    fclose(f);
    return st;
}

typedef struct file_sink {
    FILE *f;
    const char *name;
    char *msg;
} file_sink;

static node_status file_write(void *ctx, const unsigned char *p, size_t n)
{
    file_sink *o = ctx;
    if (fwrite(p, 1, n, o->f) != n)
        return say(o->msg, NODE_EIO, o->name, "write error");
    return NODE_OK;
}

static node_status save_file(const void *obj, node__serialize_fn ser, const char *path,
                             char *msg)
{
    size_t plen = strlen(path);
    char *name = join(path, ".tmp", 24);
    if (!name)
        return say(msg, NODE_ENOMEM, path, "no memory for the temporary file's name");
    FILE *f = NULL;
    for (unsigned attempt = 0; attempt < 32 && !f; attempt++) {
        unique_name(name, plen, attempt, 0);
        FILE *probe = fopen(name, "rb");
        if (probe) {               /* taken: try another name */
            fclose(probe);
            continue;
        }
        f = fopen(name, "wbx");
        if (!f)
            f = fopen(name, "wb");
        if (!f)
            break;                 /* e.g. the folder does not exist */
    }
    node_status st;
    if (!f)
        st = say(msg, NODE_EIO, name, "cannot create it");
    else {
        file_sink o = { f, name, msg };
        st = ser(obj, file_write, &o);
        if (fflush(f) != 0 && st == NODE_OK)
            st = say(msg, NODE_EIO, name, "write error");
        if (fclose(f) != 0 && st == NODE_OK)
            st = say(msg, NODE_EIO, name, "write error");
        if (st == NODE_OK && rename(name, path) != 0)
            st = say(msg, NODE_EIO, path, "cannot replace it");
        if (st != NODE_OK)
            remove(name);
    }
    node__free(name);
    return st;
}
#endif

/* ---- the entry points ---------------------------------------------------------- */

node_status node__file_save(const void *obj, node__serialize_fn ser, const char *path,
                            char *msg)
{
    return save_file(obj, ser, path, msg);
}

node_status node__file_load(void **out, node__parse_fn parse, const char *path, char *msg)
{
    return load_file(out, parse, path, msg);
}

static node_status mlp_serialize(const void *obj, node__write_fn write, void *wctx)
{
    return node__mlp_serialize(obj, write, wctx);
}

static node_status mlp_parse(const node__src *src, void **out, char *msg)
{
    node_mlp *m = NULL;
    node_status st = node__mlp_parse(src, &m, msg);
    if (st == NODE_OK)
        *out = m;
    return st;
}

/* ---- the public calls ----------------------------------------------------------- */

node_status node_mlp_load_ex(node_mlp **out, const char *path, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!out || !path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL",
                                            out ? "path" : "out"));
    if (!*path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is empty"));
    void *m = NULL;
    node_status st = load_file(&m, mlp_parse, path, msg);
    if (st == NODE_OK)
        *out = m;
    return node__err_end(err, st);
}

node_status node_mlp_load(node_mlp **out, const char *path)
{
    return node_mlp_load_ex(out, path, NULL);
}

node_status node_mlp_save_ex(const node_mlp *m, const char *path, node_error *err)
{
    char *msg = node__err_begin(err);
    if (!m || !path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "%s is NULL", m ? "path" : "m"));
    if (!*path)
        return node__err_end(err, node__msg(msg, NODE_EINVAL, "path is empty"));
    return node__err_end(err, save_file(m, mlp_serialize, path, msg));
}

node_status node_mlp_save(const node_mlp *m, const char *path)
{
    return node_mlp_save_ex(m, path, NULL);
}
