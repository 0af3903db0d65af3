/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libc entry points nifkit-host exports to the NIFs it loads, so that an
 * unmodified NIF's fopen() or connect() goes through the capability broker.
 * The executable's definitions come first in the global symbol scope, so a
 * NIF's (or its libraries') references to open, fopen, connect… bind here;
 * glibc's own internal calls (the dynamic loader, getaddrinfo reading
 * /etc/hosts) do not, and the seccomp filter keeps those read-only.
 *
 * Paths under /tmp and /dev are the host's own (a private tmpfs and a tiny
 * /dev in the sandbox) and are opened directly, except beneath a grant the
 * policy makes there; so are /proc (its own pid namespace's) and the two
 * CPU lists under /sys that thread pools read. Every other path is asked
 * of the broker, and a relative one is sent as it is: the runtime resolves
 * it against its working directory, the VM's, as BEAM would; getcwd()
 * answers that directory too. Without a broker (the policy grants nothing)
 * no such path exists (ENOENT) and every socket is refused (EACCES).
 *
 * Sockets: socket() of an IPv4/IPv6 family returns a placeholder (the read
 * end of a pipe) and remembers its family, type and protocol; connect(),
 * bind() of a datagram socket, or listen() of a stream socket asks the
 * broker, which creates the real socket, and dup3() puts it over the
 * placeholder's number, so the NIF's descriptor stays what it was.
 *
 * Descriptors from the broker are always close-on-exec.
 */
/* Each entry point is defined under its own name: with 64-bit offsets
 * requested, glibc's headers would rename open to open64 and the two
 * definitions would collide. On LP64 they are the same functions. */
#undef _FILE_OFFSET_BITS
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker_client.h"
#include "inet.h"
#include "macro.h"
#include "nifkit_broker.h"

#define EXPORT __attribute__((visibility("default")))

static int set_errno(int r)
{
        if (r >= 0)
                return r;
        errno = -r;
        return -1;
}

static bool has_prefix_dir(const char *path, const char *dir)
{
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The host's own files: its tmpfs and its /dev (but not what a grant
 * covers there), its /proc, and the CPU lists the sandbox binds. A relative
 * path is the VM's, and a path with ".." is never local, so
 * "/tmp/../etc/passwd" goes to the broker and is judged there. */
static bool is_local(const char *path)
{
        if (path[0] != '/')
                return false;
        for (const char *p = strstr(path, ".."); p; p = strstr(p + 1, ".."))
                if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
                        return false;
        if (has_prefix_dir(path, "/proc") || strcmp(path, "/sys/devices/system/cpu/online") == 0 ||
            strcmp(path, "/sys/devices/system/cpu/possible") == 0)
                return true;
        if (!has_prefix_dir(path, "/tmp") && !has_prefix_dir(path, "/dev"))
                return false;
        return !nk_broker_client_granted(path);
}

/* open()'s answer for path: local paths with the system call itself (the
 * seccomp filter judges them), the rest from the broker. */
static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
        if (!path)
                return -EFAULT;
        if (path[0] != '/' && dirfd != AT_FDCWD) {
                /* Relative to a directory the NIF already holds: the broker
                 * never hands one out, so it is one of the host's own. */
                long fd = syscall(SYS_openat, dirfd, path, flags, mode);
                return fd < 0 ? -errno : (int) fd;
        }
        if (is_local(path)) {
                long fd = syscall(SYS_openat, AT_FDCWD, path, flags, mode);
                return fd < 0 ? -errno : (int) fd;
        }
        return nk_broker_client_open(path, flags & ~O_CLOEXEC, (unsigned) mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
        return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? (mode_t) va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return set_errno(do_open(AT_FDCWD, path, flags, mode));
}

EXPORT int open64(const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return set_errno(do_open(AT_FDCWD, path, flags, mode));
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return set_errno(do_open(dirfd, path, flags, mode));
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return set_errno(do_open(dirfd, path, flags, mode));
}

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* _FORTIFY_SOURCE turns open() with flags that are not a constant into
 * these; they never take a mode (O_CREAT without one is the bug they trap). */
EXPORT int __open_2(const char *path, int flags)
{
        return set_errno(do_open(AT_FDCWD, path, flags, 0));
}

EXPORT int __open64_2(const char *path, int flags)
{
        return set_errno(do_open(AT_FDCWD, path, flags, 0));
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
        return set_errno(do_open(dirfd, path, flags, 0));
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
        return set_errno(do_open(dirfd, path, flags, 0));
}

EXPORT int creat(const char *path, mode_t mode)
{
        return set_errno(do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode));
}

EXPORT int creat64(const char *path, mode_t mode)
{
        return set_errno(do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode));
}

/* fopen's mode string as open flags (glibc's letters: r w a, +, x, e;
 * b and ",ccs=" change nothing here). */
static int stdio_flags(const char *mode, int *ret)
{
        int acc, flags;
        switch (mode[0]) {
        case 'r':
                acc = O_RDONLY, flags = 0;
                break;
        case 'w':
                acc = O_WRONLY, flags = O_CREAT | O_TRUNC;
                break;
        case 'a':
                acc = O_WRONLY, flags = O_CREAT | O_APPEND;
                break;
        default:
                return -EINVAL;
        }
        for (const char *m = mode + 1; *m && *m != ','; m++)
                if (*m == '+')
                        acc = O_RDWR;
                else if (*m == 'x')
                        flags |= O_EXCL;
                else if (*m == 'e')
                        flags |= O_CLOEXEC;
        *ret = acc | flags;
        return 0;
}

static FILE *do_fopen(const char *path, const char *mode)
{
        int flags;
        int r = mode ? stdio_flags(mode, &flags) : -EINVAL;
        if (r >= 0)
                r = do_open(AT_FDCWD, path, flags, 0666);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        FILE *f = fdopen(r, mode);
        if (!f) {
                int e = errno;
                close(r);
                errno = e;
        }
        return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
        return do_fopen(path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
        return do_fopen(path, mode);
}

/* The stream keeps its FILE and its descriptor number: the new file's
 * descriptor is put over the old one. The stream's buffer mode and
 * orientation are those it had; a mode change with a NULL path is not
 * possible without reopening by name, and fails with EINVAL. */
static FILE *do_freopen(const char *path, const char *mode, FILE *stream)
{
        int flags, r;
        if (!path || !mode || !stream || stdio_flags(mode, &flags) < 0) {
                errno = EINVAL;
                return NULL;
        }
        fflush(stream);
        int old = fileno(stream);
        r = do_open(AT_FDCWD, path, flags, 0666);
        if (r >= 0 && old >= 0 && dup3(r, old, flags & O_CLOEXEC) < 0)
                r = -errno;
        else if (r >= 0) {
                close(r);
                clearerr(stream);
                rewind(stream);
                return stream;
        }
        fclose(stream);
        errno = -r;
        return NULL;
}

EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
        return do_freopen(path, mode, stream);
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
        return do_freopen(path, mode, stream);
}

/* ---- stat and access ------------------------------------------------------ */

/* A brokered path is opened (for reading, or for writing when asked) and
 * the descriptor examined: the broker's answer is the whole truth about a
 * path outside the host, and it answers only about regular files. */
static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
        if (!path)
                return -EFAULT;
        if ((path[0] == '\0' && (flags & AT_EMPTY_PATH)) || (path[0] != '/' && dirfd != AT_FDCWD)) {
                long r = syscall(SYS_newfstatat, dirfd, path, st, flags);
                return r < 0 ? -errno : 0;
        }
        if (is_local(path)) {
                long r = syscall(SYS_newfstatat, AT_FDCWD, path, st, flags);
                return r < 0 ? -errno : 0;
        }
        int fd = nk_broker_client_open(path, O_RDONLY | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
        if (fd < 0)
                return fd;
        int r = fstat(fd, st) < 0 ? -errno : 0;
        close(fd);
        return r;
}

EXPORT int stat(const char *path, struct stat *st)
{
        return set_errno(do_fstatat(AT_FDCWD, path, st, 0));
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
        return set_errno(do_fstatat(AT_FDCWD, path, (struct stat *) st, 0));
}

EXPORT int lstat(const char *path, struct stat *st)
{
        return set_errno(do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}

EXPORT int lstat64(const char *path, struct stat64 *st)
{
        return set_errno(do_fstatat(AT_FDCWD, path, (struct stat *) st, AT_SYMLINK_NOFOLLOW));
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
        return set_errno(do_fstatat(dirfd, path, st, flags));
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
        return set_errno(do_fstatat(dirfd, path, (struct stat *) st, flags));
}

static int do_access(const char *path, int amode)
{
        if (!path)
                return -EFAULT;
        if (is_local(path))
                return syscall(SYS_faccessat, AT_FDCWD, path, amode) < 0 ? -errno : 0;
        int acc = (amode & W_OK) ? ((amode & R_OK) ? O_RDWR : O_WRONLY) : O_RDONLY;
        int fd = nk_broker_client_open(path, acc, 0);
        if (fd < 0)
                return fd;
        close(fd);
        /* The broker hands out regular files only, and X_OK is not
         * checked: the host never executes what the broker opens. */
        return 0;
}

EXPORT int access(const char *path, int amode)
{
        return set_errno(do_access(path, amode));
}

/* ---- removing files ------------------------------------------------------ */

/* A brokered path is removed by the broker, beneath a grant that may
 * create. The host's own files cannot be removed: it cannot create any
 * (seccomp refuses writing opens), and its /tmp, /dev and /proc are not
 * the NIF's to change. */
static int do_unlink(int dirfd, const char *path, int flags)
{
        if (!path)
                return -EFAULT;
        if (flags & ~AT_REMOVEDIR)
                return -EINVAL;
        if (flags & AT_REMOVEDIR)
                return -EACCES;         /* no directory is ever the NIF's */
        if ((path[0] != '/' && dirfd != AT_FDCWD) || is_local(path))
                return -EACCES;
        return nk_broker_client_unlink(path);
}

EXPORT int unlink(const char *path)
{
        return set_errno(do_unlink(AT_FDCWD, path, 0));
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
        return set_errno(do_unlink(dirfd, path, flags));
}

/* glibc's remove() calls its internal unlink, which would bypass ours. */
EXPORT int remove(const char *path)
{
        return set_errno(do_unlink(AT_FDCWD, path, 0));
}

/* ---- the working directory ---------------------------------------------- */

/* The VM's working directory, which relative paths resolve against; the
 * host's own ("/") without a broker. buf NULL allocates, as glibc's does. */
EXPORT char *getcwd(char *buf, size_t size)
{
        char dir[PATH_MAX];
        int r = nk_broker_client_cwd(dir, sizeof dir);
        if (r == -ENOTCONN) {
                long n = syscall(SYS_getcwd, dir, sizeof dir);
                r = n < 0 ? -errno : 0;
        }
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        size_t need = strlen(dir) + 1;
        if (buf && size == 0) {
                errno = EINVAL;
                return NULL;
        }
        if (size != 0 && need > size) {
                errno = ERANGE;
                return NULL;
        }
        if (!buf && !(buf = malloc(size ? size : need))) {
                errno = ENOMEM;
                return NULL;
        }
        memcpy(buf, dir, need);
        return buf;
}

/* ---- sockets -------------------------------------------------------------- */

struct placeholder {
        int fd;
        dev_t dev;              /* the pipe's identity: a closed and reused */
        ino_t ino;              /* number is not mistaken for the placeholder */
        int family, type, protocol;
        bool bound;             /* a stream socket's bind() waits for listen() */
        struct sockaddr_storage addr;
        socklen_t addrlen;
};

static pthread_mutex_t ph_lock = PTHREAD_MUTEX_INITIALIZER;
static struct placeholder *phs;
static size_t nphs, capphs;

/* With ph_lock held: the placeholder fd is, or NULL. */
static struct placeholder *ph_find_locked(int fd)
{
        struct stat st;
        for (size_t i = 0; i < nphs; i++) {
                if (phs[i].fd != fd)
                        continue;
                if (fstat(fd, &st) == 0 && st.st_dev == phs[i].dev && st.st_ino == phs[i].ino)
                        return &phs[i];
                /* The NIF closed it and the number was reused. */
                phs[i] = phs[--nphs];
                return NULL;
        }
        return NULL;
}

static void ph_remove_locked(struct placeholder *p)
{
        *p = phs[--nphs];
}

EXPORT int socket(int family, int type, int protocol)
{
        if (family != AF_INET && family != AF_INET6)
                return set_errno(-EAFNOSUPPORT);
        if (!nk_broker_client_present())
                return set_errno(-EACCES);
        int fds[2];
        if (pipe2(fds, (type & SOCK_CLOEXEC) ? O_CLOEXEC : 0) < 0)
                return -1;
        close(fds[1]);
        struct stat st;
        if (fstat(fds[0], &st) < 0) {
                int e = errno;
                close(fds[0]);
                return set_errno(-e);
        }
        pthread_mutex_lock(&ph_lock);
        for (size_t i = 0; i < nphs; i++)
                if (phs[i].fd == fds[0])
                        phs[i] = phs[--nphs];       /* stale: the number was closed */
        if (nphs == capphs) {
                size_t cap = capphs ? capphs * 2 : 16;
                struct placeholder *n = realloc(phs, cap * sizeof *n);
                if (!n) {
                        pthread_mutex_unlock(&ph_lock);
                        close(fds[0]);
                        return set_errno(-ENOMEM);
                }
                phs = n;
                capphs = cap;
        }
        phs[nphs++] = (struct placeholder) { .fd = fds[0], .dev = st.st_dev, .ino = st.st_ino,
                                             .family = family, .type = type, .protocol = protocol };
        pthread_mutex_unlock(&ph_lock);
        return fds[0];
}

/* Puts the broker's socket over the placeholder's number, with the
 * placeholder's SOCK_NONBLOCK and SOCK_CLOEXEC. */
static int replace(struct placeholder *p, int real)
{
        int r = dup3(real, p->fd, (p->type & SOCK_CLOEXEC) ? O_CLOEXEC : 0);
        int e = errno;
        close(real);
        if (r < 0)
                return -e;
        if (p->type & SOCK_NONBLOCK) {
                int fl = fcntl(p->fd, F_GETFL);
                if (fl >= 0)
                        (void) fcntl(p->fd, F_SETFL, fl | O_NONBLOCK);
        }
        ph_remove_locked(p);
        return 0;
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
        pthread_mutex_lock(&ph_lock);
        struct placeholder *p = ph_find_locked(fd);
        if (!p) {
                pthread_mutex_unlock(&ph_lock);
                /* Not a socket of ours: the host makes no others. */
                return set_errno(-ENOTSOCK);
        }
        if (!sa || (len >= sizeof(sa_family_t) && sa->sa_family != p->family)) {
                pthread_mutex_unlock(&ph_lock);
                return set_errno(sa ? -EAFNOSUPPORT : -EFAULT);
        }
        struct placeholder copy = *p;
        pthread_mutex_unlock(&ph_lock);

        /* The lock is not held across the request: connects of other
         * threads proceed at once. */
        int real = nk_broker_client_connect(copy.type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), copy.protocol, sa, len);
        if (real < 0)
                return set_errno(real);
        pthread_mutex_lock(&ph_lock);
        p = ph_find_locked(fd);
        int r = p ? replace(p, real) : (close(real), -EBADF);
        pthread_mutex_unlock(&ph_lock);
        return set_errno(r);
}

static int listen_now(struct placeholder *p, int backlog)
{
        struct placeholder copy = *p;
        pthread_mutex_unlock(&ph_lock);
        int real = nk_broker_client_listen(copy.type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), copy.protocol, backlog,
                                           (struct sockaddr *) &copy.addr, copy.addrlen);
        pthread_mutex_lock(&ph_lock);
        if (real < 0)
                return real;
        p = ph_find_locked(copy.fd);
        return p ? replace(p, real) : (close(real), -EBADF);
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
        pthread_mutex_lock(&ph_lock);
        struct placeholder *p = ph_find_locked(fd);
        int r;
        if (!p)
                r = -ENOTSOCK;
        else if (!sa || len > sizeof p->addr || len < sizeof(sa_family_t) || sa->sa_family != p->family)
                r = -EINVAL;
        else if (p->bound)
                r = -EINVAL;
        else {
                memcpy(&p->addr, sa, len);
                p->addrlen = len;
                p->bound = true;
                /* A datagram socket is finished by bind; a stream socket
                 * waits for listen() and its backlog. */
                r = (p->type & 0xf) == SOCK_DGRAM ? listen_now(p, 0) : 0;
        }
        pthread_mutex_unlock(&ph_lock);
        return set_errno(r);
}

EXPORT int listen(int fd, int backlog)
{
        pthread_mutex_lock(&ph_lock);
        struct placeholder *p = ph_find_locked(fd);
        int r;
        if (p)
                r = p->bound ? listen_now(p, backlog) : -EDESTADDRREQ;
        else {
                /* Already the broker's listening socket: as listen() again
                 * on it would, succeed. */
                int on = 0;
                socklen_t sl = sizeof on;
                r = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &sl) < 0 ? -errno : on ? 0 : -EOPNOTSUPP;
        }
        pthread_mutex_unlock(&ph_lock);
        return set_errno(r);
}

/* ---- getaddrinfo ---------------------------------------------------------- */

/* Lists we built, so freeaddrinfo knows which free they need. */
static pthread_mutex_t ai_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addrinfo **ours;
static size_t nours, capours;

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
typedef void (*fai_fn)(struct addrinfo *);

static void *libc_next(const char *name)
{
        return dlsym(RTLD_NEXT, name);
}

static int numeric_port(const char *service, uint16_t *ret)
{
        if (!service) {
                *ret = 0;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long v = strtoul(service, &end, 10);
        if (errno || end == service || *end || v > 65535)
                return -1;
        *ret = (uint16_t) v;
        return 0;
}

static int build_list(const char *name, const struct sockaddr_storage *addrs, size_t n, uint16_t port,
                      const struct addrinfo *hints, struct addrinfo **ret)
{
        static const int kinds[][2] = { { SOCK_STREAM, IPPROTO_TCP }, { SOCK_DGRAM, IPPROTO_UDP } };
        struct addrinfo *head = NULL, **tail = &head;
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < NK_ARRAY_SIZE(kinds); k++) {
                        if (hints && hints->ai_socktype && hints->ai_socktype != kinds[k][0])
                                continue;
                        struct addrinfo *a = calloc(1, sizeof *a + sizeof(struct sockaddr_storage));
                        if (!a)
                                goto oom;
                        struct sockaddr_storage *ss = (struct sockaddr_storage *) (a + 1);
                        *ss = addrs[i];
                        bool v4 = ss->ss_family == AF_INET;
                        if (v4)
                                ((struct sockaddr_in *) ss)->sin_port = htons(port);
                        else
                                ((struct sockaddr_in6 *) ss)->sin6_port = htons(port);
                        a->ai_family = ss->ss_family;
                        a->ai_socktype = kinds[k][0];
                        a->ai_protocol = kinds[k][1];
                        a->ai_addr = (struct sockaddr *) ss;
                        a->ai_addrlen = v4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
                        if (!head && hints && (hints->ai_flags & AI_CANONNAME)) {
                                a->ai_canonname = strdup(name);
                                if (!a->ai_canonname) {
                                        free(a);
                                        goto oom;
                                }
                        }
                        *tail = a;
                        tail = &a->ai_next;
                }
        if (!head)
                return EAI_NONAME;
        pthread_mutex_lock(&ai_lock);
        if (nours == capours) {
                size_t cap = capours ? capours * 2 : 16;
                struct addrinfo **v = realloc(ours, cap * sizeof *v);
                if (!v) {
                        pthread_mutex_unlock(&ai_lock);
                        goto oom;
                }
                ours = v;
                capours = cap;
        }
        ours[nours++] = head;
        pthread_mutex_unlock(&ai_lock);
        *ret = head;
        return 0;
oom:
        while (head) {
                struct addrinfo *next = head->ai_next;
                free(head->ai_canonname);
                free(head);
                head = next;
        }
        return EAI_MEMORY;
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
        gai_fn real = (gai_fn) libc_next("getaddrinfo");
        if (!real)
                return EAI_SYSTEM;
        /* No name to look up (a numeric address, or none): glibc answers
         * from the text alone, without files or the network. */
        struct addrinfo h = hints ? *hints : (struct addrinfo) { .ai_family = AF_UNSPEC };
        if (!node || nk_ip_is_literal(node) || (h.ai_flags & AI_NUMERICHOST)) {
                h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
                uint16_t port;
                if (numeric_port(service, &port) < 0)
                        return EAI_SERVICE;
                return real(node, service, &h, res);
        }
        uint16_t port;
        if (numeric_port(service, &port) < 0)
                return EAI_SERVICE;     /* /etc/services is not the host's to read */
        struct sockaddr_storage addrs[32];
        int n = nk_broker_client_resolve(node, h.ai_family, addrs, NK_ARRAY_SIZE(addrs));
        if (n == -ENOENT)
                return EAI_NONAME;
        if (n < 0) {
                errno = -n;
                return EAI_SYSTEM;
        }
        return build_list(node, addrs, (size_t) n, port, hints, res);
}

EXPORT void freeaddrinfo(struct addrinfo *ai)
{
        if (!ai)
                return;
        pthread_mutex_lock(&ai_lock);
        bool mine = false;
        for (size_t i = 0; i < nours && !mine; i++)
                if (ours[i] == ai) {
                        ours[i] = ours[--nours];
                        mine = true;
                }
        pthread_mutex_unlock(&ai_lock);
        if (!mine) {
                fai_fn real = (fai_fn) libc_next("freeaddrinfo");
                if (real)
                        real(ai);
                return;
        }
        while (ai) {
                struct addrinfo *next = ai->ai_next;
                free(ai->ai_canonname);
                free(ai);
                ai = next;
        }
}

/* ---- the explicit API (nifkit.h) ----------------------------------------- */

EXPORT int nifkit_open(const char *path, int flags, mode_t mode)
{
        return do_open(AT_FDCWD, path, flags, mode);
}

static int endpoint(const char *host, uint16_t port, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        struct sockaddr_storage addrs[1];
        memset(ret, 0, sizeof *ret);
        struct sockaddr_in *in = (struct sockaddr_in *) ret;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;
        unsigned char addr[NK_IP_ADDR_MAX];
        int family = nk_ip_parse(host, addr);
        if (family == AF_INET) {
                memcpy(&in->sin_addr, addr, 4);
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                *ret_len = sizeof *in;
                return 0;
        }
        if (family == AF_INET6) {
                memcpy(&in6->sin6_addr, addr, 16);
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                *ret_len = sizeof *in6;
                return 0;
        }
        int n = nk_broker_client_resolve(host, AF_UNSPEC, addrs, 1);
        if (n < 0)
                return n;
        if (n == 0)
                return -ENOENT;
        *ret = addrs[0];
        if (ret->ss_family == AF_INET)
                in->sin_port = htons(port), *ret_len = sizeof *in;
        else
                in6->sin6_port = htons(port), *ret_len = sizeof *in6;
        return 0;
}

EXPORT int nifkit_connect(const char *host, uint16_t port)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int r = host ? endpoint(host, port, &ss, &len) : -EFAULT;
        return r < 0 ? r : nk_broker_client_connect(SOCK_STREAM, 0, (struct sockaddr *) &ss, len);
}

EXPORT int nifkit_listen(const char *host, uint16_t port, int type, int backlog)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int r = host ? endpoint(host, port, &ss, &len) : -EFAULT;
        return r < 0 ? r : nk_broker_client_listen(type, 0, backlog, (struct sockaddr *) &ss, len);
}
