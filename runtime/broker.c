/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capability broker, runtime side (see broker.h). Per host, one thread
 * reads request datagrams from the broker socket, answers opens itself and
 * queues the rest; a few workers answer those, so a slow connect or name
 * lookup does not hold the host's other requests.
 * Answers go out in whatever order they are ready; the host matches them
 * to its waiting threads by id.
 *
 * Nothing in a request is trusted: lengths are checked against the
 * datagram, a path with a NUL is refused, a request that carries a
 * descriptor is refused (and the descriptor closed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "buf.h"
#include "fdpass.h"
#include "inet.h"
#include "log.h"
#include "macro.h"
#include "path.h"
#include "nifkit_policy.h"
#include "protocol.h"

/* Requests served at once for one host, and how many may wait: a host
 * that asks faster than that waits for room (the socket's buffer fills). */
#define WORKERS 4
#define QUEUE_MAX 256
/* How long a brokered connect may take before the NIF sees ETIMEDOUT. */
#define CONNECT_TIMEOUT_MS 10000
/* Flags a brokered open may carry. O_DIRECTORY, O_PATH and O_TMPFILE are
 * refused on their own (no directory is ever handed out); O_DIRECT and
 * O_ASYNC have no use for a NIF and are refused as unknown. */
#define OPEN_FLAGS_KNOWN (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_NONBLOCK | O_NOFOLLOW | \
                          O_CLOEXEC | O_SYNC | O_DSYNC | O_NOCTTY | O_LARGEFILE | O_NOATIME)
#define OPEN_FLAGS_WRITE (O_WRONLY | O_RDWR | O_TRUNC | O_APPEND)

struct grant {
        const struct nk_policy_file *file;
        size_t len;             /* strlen(file->path) */
        int dirfd;              /* O_PATH | O_DIRECTORY, or -1 if it could not be opened */
        int open_errno;         /* why not */
};

struct job {
        struct job *next;
        size_t len;
        uint8_t data[];
};

struct nk_broker {
        const struct nk_policy *policy;
        char *library;
        struct grant *grants;
        size_t ngrants;
        int audit_fd;           /* the audit log, or -1 */
        pthread_mutex_t log_lock;

        int sock;               /* our end of the broker socket */
        pthread_t thread;       /* the reader */
        bool running;
        pthread_t workers[WORKERS];
        size_t nworkers;

        pthread_mutex_t qlock;  /* the queue and stopping */
        pthread_cond_t work, room;
        struct job *head, *tail;
        size_t queued;
        bool stopping;
        bool openat2_missing_said;
};

bool nk_broker_needed(const struct nk_policy *p)
{
        return p && (p->nfiles || p->nconnect || p->nlisten || p->nresolve || p->mode == NK_POLICY_MODE_AUDIT);
}

int nk_broker_new(const struct nk_policy *policy, const char *library, const char *audit_log,
                  struct nk_broker **ret)
{
        struct nk_broker *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->policy = policy;
        b->sock = -1;
        b->audit_fd = -1;
        pthread_mutex_init(&b->log_lock, NULL);
        pthread_mutex_init(&b->qlock, NULL);
        pthread_cond_init(&b->work, NULL);
        pthread_cond_init(&b->room, NULL);
        b->library = strdup(library ? library : "");
        b->grants = calloc(policy->nfiles ? policy->nfiles : 1, sizeof *b->grants);
        if (!b->library || !b->grants) {
                nk_broker_free(b);
                return -ENOMEM;
        }
        for (size_t i = 0; i < policy->nfiles; i++) {
                struct grant *g = &b->grants[b->ngrants++];
                g->file = &policy->files[i];
                g->len = strlen(g->file->path);
                /* Opened once: a later rename of the directory does not move
                 * the grant, and each request resolves beneath this fd. */
                g->dirfd = open(g->file->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                g->open_errno = g->dirfd < 0 ? errno : 0;
        }
        if (audit_log && *audit_log) {
                b->audit_fd = open(audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
                if (b->audit_fd < 0) {
                        int r = -errno;
                        nk_broker_free(b);
                        return r;
                }
        }
        *ret = b;
        return 0;
}

void nk_broker_free(struct nk_broker *b)
{
        if (!b)
                return;
        if (b->sock >= 0)
                /* Wakes the reader's recvmsg with end-of-file, and fails a
                 * worker's send to a host that stopped reading. */
                shutdown(b->sock, SHUT_RDWR);
        if (b->running)
                pthread_join(b->thread, NULL);
        pthread_mutex_lock(&b->qlock);
        b->stopping = true;
        pthread_cond_broadcast(&b->work);
        pthread_cond_broadcast(&b->room);
        pthread_mutex_unlock(&b->qlock);
        for (size_t i = 0; i < b->nworkers; i++)
                pthread_join(b->workers[i], NULL);
        while (b->head) {
                struct job *j = b->head;
                b->head = j->next;
                free(j);
        }
        if (b->sock >= 0)
                close(b->sock);
        for (size_t i = 0; i < b->ngrants; i++)
                if (b->grants[i].dirfd >= 0)
                        close(b->grants[i].dirfd);
        if (b->audit_fd >= 0)
                close(b->audit_fd);
        pthread_mutex_destroy(&b->log_lock);
        pthread_cond_destroy(&b->work);
        pthread_cond_destroy(&b->room);
        pthread_mutex_destroy(&b->qlock);
        free(b->grants);
        free(b->library);
        free(b);
}

/* ---- audit ----------------------------------------------------------------- */

static bool auditing(const struct nk_broker *b)
{
        return b->policy->mode == NK_POLICY_MODE_AUDIT;
}

static void audit(struct nk_broker *b, struct nk_audit_record *rec)
{
        rec->library = b->library;
        if (b->audit_fd < 0) {
                if (!auditing(b))
                        return;
                const bool net = rec->host && strcmp(rec->op, "resolve") != 0;
                nk_log_event(NK_LOG_INFO, b->library, "broker_decision", NK_LOG_STR("op", rec->op),
                             NK_LOG_STR("path", rec->path), NK_LOG_INT("flags", rec->path ? rec->flags : 0),
                             NK_LOG_STR("host", rec->host), NK_LOG_INT("port", net ? rec->port : 0),
                             NK_LOG_INT("udp", net && rec->udp), NK_LOG_STR("decision", rec->decision),
                             NK_LOG_INT("errno", rec->error));
                return;
        }
        char line[PATH_MAX + 1024];
        int n = nk_audit_format(rec, line, sizeof line);
        if (n < 0)
                return;
        line[n] = '\n';
        /* O_APPEND and one write: lines from several hosts sharing the file
         * do not interleave. */
        pthread_mutex_lock(&b->log_lock);
        ssize_t w = write(b->audit_fd, line, (size_t) n + 1);
        (void) w;
        pthread_mutex_unlock(&b->log_lock);
}

/* ---- files --------------------------------------------------------------- */

/* The grant whose directory contains the absolute path abs (by whole
 * components, longest first), and where the rest of the path starts. "."
 * components and repeated slashes were removed from abs by the caller. */
static struct grant *find_grant(struct nk_broker *b, const char *abs, const char **ret_rest)
{
        struct grant *best = NULL;
        for (size_t i = 0; i < b->ngrants; i++) {
                struct grant *g = &b->grants[i];
                if (!nk_path_beneath(abs, g->file->path))
                        continue;
                /* The grant "/" is stored as "/": what follows it is all. */
                size_t n = g->len == 1 ? 0 : g->len;
                if (!best || g->len > best->len) {
                        best = g;
                        *ret_rest = abs + n + (abs[n] == '/');
                }
        }
        return best;
}

/* Makes path absolute and drops empty and "." components. ".." is kept:
 * it is resolved by openat2 beneath the grant, never lexically, since what
 * precedes it may be a symlink. */
static int normalise(const char *path, size_t len, char *out, size_t size)
{
        size_t o = 0;
        size_t i = 0;
        while (i < len) {
                while (i < len && path[i] == '/')
                        i++;
                size_t start = i;
                while (i < len && path[i] != '/')
                        i++;
                size_t n = i - start;
                if (n == 0 || (n == 1 && path[start] == '.'))
                        continue;
                if (o + 1 + n + 1 > size)
                        return -ENAMETOOLONG;
                out[o++] = '/';
                memcpy(out + o, path + start, n);
                o += n;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = '\0';
        return 0;
}

static bool access_allows(enum nk_policy_access a, int flags)
{
        if ((flags & O_CREAT) && a != NK_POLICY_ACCESS_CREATE)
                return false;
        if ((flags & OPEN_FLAGS_WRITE) && a == NK_POLICY_ACCESS_READ)
                return false;
        return true;
}

static int sys_openat2(int dirfd, const char *path, int flags, unsigned mode, uint64_t resolve)
{
        struct open_how how = { .flags = (uint64_t) (unsigned) flags, .mode = mode, .resolve = resolve };
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        return fd < 0 ? -errno : (int) fd;
}

/* Opens and checks what was opened: a regular file, and the flags the
 * caller asked for once the broker's own O_NONBLOCK is gone. */
static int finish_open(int fd, int flags, int *ret_fd)
{
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return S_ISDIR(st.st_mode) ? -EISDIR : -EACCES;
        }
        /* The runtime's /proc is the VM's (its environment, memory, maps):
         * never handed out, however the path got there (a grant of "/", a
         * symlink, a bind mount). The host reads its own /proc. */
        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0 || sfs.f_type == PROC_SUPER_MAGIC) {
                close(fd);
                return -EACCES;
        }
        if (!(flags & O_NONBLOCK)) {
                int fl = fcntl(fd, F_GETFL);
                if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
        }
        *ret_fd = fd;
        return 0;
}

static uint64_t resolve_flags(const struct grant *g)
{
        uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        if (g->file->no_symlinks)
                resolve |= RESOLVE_NO_SYMLINKS;
        return resolve;
}

/* -EXDEV when the path leaves the grant (.., a symlink out). */
static int open_in_grant(const struct grant *g, const char *rest, int flags, unsigned mode)
{
        if (g->dirfd < 0)
                return -g->open_errno;
        if (rest[0] == '\0')
                return -EISDIR;         /* the grant's directory itself */
        /* O_NONBLOCK so that a FIFO cannot hold the broker in open();
         * finish_open refuses it and restores the caller's flags. */
        return sys_openat2(g->dirfd, rest, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode, resolve_flags(g));
}

/*
 * When the last component of rest, beneath the grant, is a symlink with an
 * absolute target, the target (NUL-terminated, in buf). Only the last
 * component: its directory is opened beneath the grant first, so nothing
 * on the way is followed outside it. The target is then judged as a new
 * request against every grant: /usr/lib/ssl/openssl.cnf → /etc/ssl/… is
 * opened when both directories are granted, and only then.
 */
/* The directory that holds rest's last component, opened beneath the
 * grant with resolve (*ret_parent, -1 when it is the grant's own: use
 * g->dirfd), and where that last component starts. */
static int open_parent(const struct grant *g, const char *rest, uint64_t resolve, int *ret_parent,
                       const char **ret_last)
{
        const char *slash = strrchr(rest, '/');
        *ret_last = slash ? slash + 1 : rest;
        *ret_parent = -1;
        if (!slash)
                return 0;
        char dir[PATH_MAX];
        size_t n = (size_t) (slash - rest);
        if (n >= sizeof dir)
                return -ENAMETOOLONG;
        memcpy(dir, rest, n);
        dir[n] = '\0';
        int fd = sys_openat2(g->dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, resolve);
        if (fd < 0)
                return fd;
        *ret_parent = fd;
        return 0;
}

static int absolute_link_target(const struct grant *g, const char *rest, char *buf, size_t size)
{
        const char *last;
        _cleanup_close_ int parent = -1;
        int r = open_parent(g, rest, resolve_flags(g), &parent, &last);
        if (r < 0)
                return r;
        if (strcmp(last, "..") == 0 || strcmp(last, ".") == 0)
                return -EXDEV;
        ssize_t n = readlinkat(parent >= 0 ? parent : g->dirfd, last, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n > 0 && buf[0] == '/' ? 0 : -EXDEV;
}

/* Symlinks followed from grant to grant, as the kernel's own limit on
 * nested links. */
#define MAX_LINK_HOPS 8

/* Opens abs (normalised; rewritten when a link is followed) beneath the
 * grants. *ret_policy says whether a refusal was the policy's (so that
 * audit mode may override it) rather than the file system's. */
static int open_granted(struct nk_broker *b, char *abs, size_t size, int flags, unsigned mode, int *ret_fd,
                        bool *ret_policy)
{
        *ret_policy = false;
        for (int hops = 0;; hops++) {
                const char *rest = NULL;
                struct grant *g = find_grant(b, abs, &rest);
                /* Outside every grant nothing exists, as far as the host
                 * can tell: libraries that probe for optional files
                 * (OpenSSL's openssl.cnf) take ENOENT in their stride and
                 * fail on anything else. Beneath a grant, the refusal is
                 * the policy's: EACCES. */
                if (!g) {
                        *ret_policy = true;
                        return -ENOENT;
                }
                if (!access_allows(g->file->access, flags)) {
                        *ret_policy = true;
                        return -EACCES;
                }
                int r = open_in_grant(g, rest, flags, mode);
                /* Linux before 5.6: fail closed, and say why once. */
                if (r == -ENOSYS && !__atomic_exchange_n(&b->openat2_missing_said, true, __ATOMIC_RELAXED))
                        nk_log_note(NK_LOG_WARNING, b->library, "broker_degraded",
                                    "openat2() is not available (Linux older than 5.6): the capability broker "
                                    "refuses every file request rather than open files unsafely",
                                    NK_LOG_STR("missing", "openat2"));
                if (r >= 0)
                        return finish_open(r, flags, ret_fd);
                if (r != -EXDEV) {
                        *ret_policy = r == -ELOOP;
                        return r;
                }
                char target[PATH_MAX];
                if ((flags & O_NOFOLLOW) || g->file->no_symlinks || hops == MAX_LINK_HOPS ||
                    absolute_link_target(g, rest, target, sizeof target) < 0 ||
                    normalise(target, strlen(target), abs, size) < 0) {
                        *ret_policy = true;
                        return -EACCES;
                }
        }
}

/* A request's path, checked and made absolute and normalised into req
 * (PATH_MAX + 2 bytes). A relative path is from the runtime's working
 * directory now, which is the VM's (file:set_cwd/1 moves it), as in BEAM. */
static int request_path(const char *path, size_t len, char *req)
{
        if (len == 0)
                return -ENOENT;
        if (memchr(path, '\0', len))
                return -EINVAL;
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        char joined[2 * PATH_MAX + 2];
        if (path[0] != '/') {
                char cwd[PATH_MAX];
                if (!getcwd(cwd, sizeof cwd))
                        return -errno;
                /* getcwd's answer holds no symlink, so a leading ".." is
                 * its parent exactly: taken off here, the grant that holds
                 * "../data/x" is found by its own name. */
                while (len >= 2 && path[0] == '.' && path[1] == '.' && (len == 2 || path[2] == '/')) {
                        char *up = strrchr(cwd, '/');
                        if (up)
                                *(up == cwd ? up + 1 : up) = '\0';
                        path += len == 2 ? 2 : 3;
                        len -= len == 2 ? 2 : 3;
                }
                int n = snprintf(joined, sizeof joined, "%s/%.*s", cwd, (int) len, path);
                if (n < 0 || (size_t) n >= PATH_MAX)
                        return -ENAMETOOLONG;
                path = joined;
                len = (size_t) n;
        }
        return normalise(path, len, req, PATH_MAX + 2);
}

int nk_broker_open(struct nk_broker *b, const char *path, size_t len, int flags, unsigned mode, int *ret_fd)
{
        char abs[PATH_MAX + 2], req[PATH_MAX + 2];
        *ret_fd = -1;
        int r = request_path(path, len, req);
        if (r < 0)
                return r;
        memcpy(abs, req, sizeof abs);

        struct nk_audit_record rec = { .op = "open", .path = req, .flags = flags };
        int refusal = 0;
        if ((flags & ~OPEN_FLAGS_KNOWN) & ~(O_DIRECTORY | O_PATH | __O_TMPFILE))
                refusal = -EINVAL;
        else if (flags & (O_DIRECTORY | O_PATH | __O_TMPFILE))
                refusal = -EACCES;      /* no directory is ever handed out, audit or not */
        if (refusal) {
                rec.decision = "deny";
                rec.error = -refusal;
                audit(b, &rec);
                return refusal;
        }
        /* Permission bits only: no set-id or sticky files. openat2, unlike
         * open, refuses a mode without O_CREAT. */
        mode = (flags & O_CREAT) ? mode & 0777 : 0;

        bool policy;
        r = open_granted(b, abs, sizeof abs, flags, mode, ret_fd, &policy);
        if (r == 0 || !policy || !auditing(b)) {
                rec.decision = r == 0 ? "allow" : "deny";
                rec.error = -r;
                audit(b, &rec);
                return r;
        }
        /* Audit mode: what the policy refused is opened with the runtime's
         * own rights, and recorded. Still a regular file only. */
        int fd = openat(AT_FDCWD, req, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
        r = fd < 0 ? -errno : finish_open(fd, flags, ret_fd);
        rec.decision = r == 0 ? "audit-allow" : "deny";
        rec.error = r < 0 ? -r : 0;
        audit(b, &rec);
        return r;
}

/* Removes a file beneath a grant that may create (what a NIF may make, it
 * may remove: bitcask releases its locks by unlinking them). The path must
 * name the file as it lies: no ".." and no symlink on the way (the parent
 * is opened beneath the grant with RESOLVE_NO_SYMLINKS), so the grant that
 * matched the path's text is the one the file is in, and a grant nested
 * in it (a read-only /data/keys inside /data) cannot be reached through
 * /data/sub/../keys. The last component is removed from that directory, a
 * symlink itself rather than its target. Never a directory. */
static int unlink_granted(struct nk_broker *b, const char *abs, bool *ret_policy)
{
        const char *rest = NULL;
        struct grant *g = find_grant(b, abs, &rest);
        *ret_policy = true;
        if (!g)
                return -ENOENT;
        if (g->file->access != NK_POLICY_ACCESS_CREATE)
                return -EACCES;
        *ret_policy = false;
        if (g->dirfd < 0)
                return -g->open_errno;
        if (rest[0] == '\0')
                return -EISDIR;
        for (const char *p = strstr(rest, ".."); p; p = strstr(p + 1, ".."))
                if ((p == rest || p[-1] == '/') && (p[2] == '/' || p[2] == '\0')) {
                        *ret_policy = true;
                        return -EACCES;
                }
        const char *last;
        _cleanup_close_ int parent = -1;
        int r = open_parent(g, rest, resolve_flags(g) | RESOLVE_NO_SYMLINKS, &parent, &last);
        if (r < 0) {
                *ret_policy = r == -EXDEV || r == -ELOOP;
                return *ret_policy ? -EACCES : r;
        }
        return unlinkat(parent >= 0 ? parent : g->dirfd, last, 0) < 0 ? -errno : 0;
}

int nk_broker_unlink(struct nk_broker *b, const char *path, size_t len)
{
        char req[PATH_MAX + 2];
        int r = request_path(path, len, req);
        if (r < 0)
                return r;
        struct nk_audit_record rec = { .op = "unlink", .path = req };
        bool policy;
        r = unlink_granted(b, req, &policy);
        if (r < 0 && policy && auditing(b)) {
                r = unlink(req) < 0 ? -errno : 0;
                rec.decision = r == 0 ? "audit-allow" : "deny";
        } else {
                rec.decision = r == 0 ? "allow" : "deny";
        }
        rec.error = -r;
        audit(b, &rec);
        return r;
}

/* ---- network ------------------------------------------------------------- */

struct peer {
        int family;
        char ip[INET6_ADDRSTRLEN];      /* canonical, as the policy stores it */
        uint16_t port;
};

static int parse_sockaddr(const struct sockaddr *sa, socklen_t len, struct peer *ret)
{
        if (len < (socklen_t) sizeof(sa_family_t))
                return -EINVAL;
        if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                ret->family = AF_INET;
                inet_ntop(AF_INET, &in->sin_addr, ret->ip, sizeof ret->ip);
                ret->port = ntohs(in->sin_port);
                return 0;
        }
        if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                ret->family = AF_INET6;
                inet_ntop(AF_INET6, &in6->sin6_addr, ret->ip, sizeof ret->ip);
                ret->port = ntohs(in6->sin6_port);
                return 0;
        }
        return sa->sa_family == AF_INET || sa->sa_family == AF_INET6 ? -EINVAL : -EAFNOSUPPORT;
}

/* Whether host (a literal or a name of the policy) denotes peer's address.
 * Names are resolved now, by the runtime, since the policy lists them. */
static bool host_matches(const char *host, const struct peer *p)
{
        if (nk_ip_is_literal(host))
                return strcmp(host, p->ip) == 0;
        struct addrinfo hints = { .ai_family = p->family, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0)
                return false;
        bool found = false;
        for (struct addrinfo *a = res; a && !found; a = a->ai_next) {
                struct peer q;
                if (parse_sockaddr(a->ai_addr, a->ai_addrlen, &q) == 0)
                        found = strcmp(q.ip, p->ip) == 0;
        }
        freeaddrinfo(res);
        return found;
}

static bool endpoint_allowed(const struct nk_policy_endpoint *e, size_t n, const struct peer *p, bool udp)
{
        for (size_t i = 0; i < n; i++)
                if (e[i].port == p->port && e[i].udp == udp && host_matches(e[i].host, p))
                        return true;
        return false;
}

/* Socket type and protocol the broker creates: TCP streams and UDP
 * datagrams only, whatever else the request names. */
static int check_socket_kind(int type, int protocol, bool *ret_udp)
{
        type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP)) {
                *ret_udp = false;
                return SOCK_STREAM;
        }
        if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP)) {
                *ret_udp = true;
                return SOCK_DGRAM;
        }
        return -EPROTONOSUPPORT;
}

/* connect() with a deadline, so that an unreachable peer cannot hold the
 * broker's thread for the kernel's minutes of SYN retries. */
static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        if (connect(fd, sa, len) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                int n;
                do
                        n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ETIMEDOUT;
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                        return -errno;
                if (soerr)
                        return -soerr;
        }
        return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

static int net_request(struct nk_broker *b, bool listening, int type, int protocol, int backlog,
                       const struct sockaddr *sa, socklen_t len, int *ret_fd)
{
        struct peer p;
        bool udp = false;
        *ret_fd = -1;
        int r = parse_sockaddr(sa, len, &p);
        if (r < 0)
                return r;
        int stype = check_socket_kind(type, protocol, &udp);
        if (stype < 0)
                return stype;

        struct nk_audit_record rec = { .op = listening ? "listen" : "connect", .host = p.ip, .port = p.port,
                                       .udp = udp };
        const struct nk_policy *pol = b->policy;
        /* The policy has no UDP connect entries: a connected UDP socket
         * would be a way to send anywhere, so it is never granted. */
        bool allowed = listening ? endpoint_allowed(pol->listen, pol->nlisten, &p, udp)
                                 : !udp && endpoint_allowed(pol->connect, pol->nconnect, &p, false);
        if (!allowed && !auditing(b)) {
                rec.decision = "deny";
                rec.error = EACCES;
                audit(b, &rec);
                return -EACCES;
        }

        _cleanup_close_ int fd = socket(p.family, stype | SOCK_CLOEXEC, 0);
        if (fd < 0)
                r = -errno;
        else if (listening) {
                static const int one = 1;
                if (!udp)
                        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (bind(fd, sa, p.family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0)
                        r = -errno;
                else if (!udp && listen(fd, backlog > 0 && backlog < SOMAXCONN ? backlog : SOMAXCONN) < 0)
                        r = -errno;
        } else
                r = connect_timed(fd, sa, p.family == AF_INET ? sizeof(struct sockaddr_in)
                                                              : sizeof(struct sockaddr_in6));
        rec.decision = r < 0 ? "deny" : allowed ? "allow" : "audit-allow";
        rec.error = r < 0 ? -r : 0;
        audit(b, &rec);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int nk_broker_connect(struct nk_broker *b, int type, int protocol, const struct sockaddr *sa, socklen_t len,
                      int *ret_fd)
{
        return net_request(b, false, type, protocol, 0, sa, len, ret_fd);
}

int nk_broker_listen(struct nk_broker *b, int type, int protocol, int backlog, const struct sockaddr *sa,
                     socklen_t len, int *ret_fd)
{
        return net_request(b, true, type, protocol, backlog, sa, len, ret_fd);
}

int nk_broker_resolve(struct nk_broker *b, const char *name, int family, struct sockaddr_storage *ret,
                      size_t max, size_t *ret_n)
{
        *ret_n = 0;
        if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
                return -EAFNOSUPPORT;
        struct nk_audit_record rec = { .op = "resolve", .host = name };
        bool listed = false;
        for (size_t i = 0; i < b->policy->nresolve && !listed; i++)
                listed = strcasecmp(b->policy->resolve[i], name) == 0;
        if (!listed && !auditing(b)) {
                rec.decision = "deny";
                rec.error = EACCES;
                audit(b, &rec);
                return -EACCES;
        }
        struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        int g = getaddrinfo(name, NULL, &hints, &res);
        int r = g == 0 ? 0 : g == EAI_SYSTEM ? -errno : -ENOENT;
        for (struct addrinfo *a = res; a && *ret_n < max; a = a->ai_next) {
                if (a->ai_addrlen > sizeof *ret)
                        continue;
                memset(&ret[*ret_n], 0, sizeof ret[*ret_n]);
                memcpy(&ret[*ret_n], a->ai_addr, a->ai_addrlen);
                (*ret_n)++;
        }
        if (res)
                freeaddrinfo(res);
        rec.decision = r < 0 ? "deny" : listed ? "allow" : "audit-allow";
        rec.error = r < 0 ? -r : 0;
        audit(b, &rec);
        return r;
}

/* ---- serving the host ---------------------------------------------------- */

static int reply(struct nk_broker *b, uint64_t id, int err, const void *extra, size_t extra_len, int fd)
{
        uint32_t e = (uint32_t) err;
        struct nk_msg_header h = { .type = NK_MSG_BROKER_REPLY, .id = id, .payload_len = sizeof e + extra_len };
        const struct iovec iov[] = { { &h, sizeof h }, { &e, sizeof e }, { (void *) extra, extra_len } };
        return nk_fdpass_send(b->sock, iov, extra_len ? 3 : 2, fd);
}

static int serve_resolve(struct nk_broker *b, uint64_t id, struct nk_rd *rd)
{
        uint32_t family;
        const uint8_t *name;
        size_t len;
        char host[NI_MAXHOST];
        if (!nk_rd_u32(rd, &family))
                return reply(b, id, EINVAL, NULL, 0, -1);
        nk_rd_rest(rd, &name, &len);
        if (len == 0 || len >= sizeof host || memchr(name, '\0', len))
                return reply(b, id, EINVAL, NULL, 0, -1);
        memcpy(host, name, len);
        host[len] = '\0';

        struct sockaddr_storage addrs[NK_BROKER_RESOLVE_MAX];
        size_t n = 0;
        int r = nk_broker_resolve(b, host, (int) family, addrs, NK_ARRAY_SIZE(addrs), &n);
        if (r < 0)
                return reply(b, id, -r, NULL, 0, -1);
        uint8_t out[4 + NK_BROKER_RESOLVE_MAX * (4 + sizeof(struct sockaddr_storage))];
        size_t o = 0;
        uint32_t cnt = (uint32_t) n;
        memcpy(out, &cnt, 4);
        o = 4;
        for (size_t i = 0; i < n; i++) {
                uint32_t l = addrs[i].ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
                memcpy(out + o, &l, 4);
                memcpy(out + o + 4, &addrs[i], l);
                o += 4 + l;
        }
        return reply(b, id, 0, out, o, -1);
}

static int serve_one(struct nk_broker *b, const uint8_t *buf, size_t n)
{
        struct nk_msg_header h;
        if (n < sizeof h)
                return 0;       /* cannot be answered: no id */
        memcpy(&h, buf, sizeof h);
        if (h.id == 0 || h.flags != 0 || h.payload_len != n - sizeof h)
                return h.id ? reply(b, h.id, EINVAL, NULL, 0, -1) : 0;
        struct nk_rd rd = nk_rd_init(buf + sizeof h, n - sizeof h);
        uint32_t a, c, d;
        const uint8_t *rest;
        size_t len;
        int fd = -1, r;

        switch (h.type) {
        case NK_MSG_BROKER_OPEN:
                if (!nk_rd_u32(&rd, &a) || !nk_rd_u32(&rd, &c))
                        return reply(b, h.id, EINVAL, NULL, 0, -1);
                nk_rd_rest(&rd, &rest, &len);
                r = nk_broker_open(b, (const char *) rest, len, (int) a, c, &fd);
                break;
        case NK_MSG_BROKER_CONNECT:
        case NK_MSG_BROKER_LISTEN:
                d = 0;
                if (!nk_rd_u32(&rd, &a) || !nk_rd_u32(&rd, &c) ||
                    (h.type == NK_MSG_BROKER_LISTEN && !nk_rd_u32(&rd, &d)))
                        return reply(b, h.id, EINVAL, NULL, 0, -1);
                nk_rd_rest(&rd, &rest, &len);
                struct sockaddr_storage ss = {};
                if (len > sizeof ss)
                        return reply(b, h.id, EINVAL, NULL, 0, -1);
                memcpy(&ss, rest, len);
                if (h.type == NK_MSG_BROKER_CONNECT)
                        r = nk_broker_connect(b, (int) a, (int) c, (struct sockaddr *) &ss, (socklen_t) len, &fd);
                else
                        r = nk_broker_listen(b, (int) a, (int) c, (int) d, (struct sockaddr *) &ss,
                                             (socklen_t) len, &fd);
                break;
        case NK_MSG_BROKER_RESOLVE:
                return serve_resolve(b, h.id, &rd);
        case NK_MSG_BROKER_UNLINK:
                nk_rd_rest(&rd, &rest, &len);
                return reply(b, h.id, -nk_broker_unlink(b, (const char *) rest, len), NULL, 0, -1);
        case NK_MSG_BROKER_CWD: {
                char cwd[PATH_MAX];
                if (!getcwd(cwd, sizeof cwd))
                        return reply(b, h.id, errno, NULL, 0, -1);
                return reply(b, h.id, 0, cwd, strlen(cwd), -1);
        }
        default:
                return reply(b, h.id, EINVAL, NULL, 0, -1);
        }
        if (r < 0)
                return reply(b, h.id, -r, NULL, 0, -1);
        r = reply(b, h.id, 0, NULL, 0, fd);
        /* Sent or not, our copy goes: the host holds the only one now. */
        close(fd);
        return r;
}

static void *worker_main(void *arg)
{
        pthread_setname_np(pthread_self(), "nk-broker-work");
        struct nk_broker *b = arg;
        for (;;) {
                pthread_mutex_lock(&b->qlock);
                while (!b->head && !b->stopping)
                        pthread_cond_wait(&b->work, &b->qlock);
                struct job *j = b->head;
                if (!j) {
                        pthread_mutex_unlock(&b->qlock);
                        return NULL;
                }
                b->head = j->next;
                if (!b->head)
                        b->tail = NULL;
                b->queued--;
                pthread_cond_signal(&b->room);
                pthread_mutex_unlock(&b->qlock);
                /* A failed answer means the host is gone: the reader sees
                 * it too and stops everything. */
                (void) serve_one(b, j->data, j->len);
                free(j);
        }
}

static void *broker_main(void *arg)
{
        pthread_setname_np(pthread_self(), "nk-broker");
        struct nk_broker *b = arg;
        uint8_t buf[NK_BROKER_MSG_MAX];
        for (;;) {
                int fd;
                ssize_t n = nk_fdpass_recv(b->sock, buf, sizeof buf, 0, &fd);
                if (n == 0 || (n < 0 && n != -EBADMSG && n != -ENOMEM))
                        break;          /* the host is gone, or we are stopping */
                if (fd >= 0) {
                        /* The host has nothing to give the runtime. */
                        close(fd);
                        continue;
                }
                if (n <= 0)
                        continue;
                /* Opens never wait on the network (O_NONBLOCK keeps a FIFO
                 * from holding them): answered here, without waking a
                 * worker. Connects, listens and lookups may wait. */
                struct nk_msg_header peek;
                if ((size_t) n >= sizeof peek) {
                        memcpy(&peek, buf, sizeof peek);
                        if (peek.type == NK_MSG_BROKER_OPEN) {
                                (void) serve_one(b, buf, (size_t) n);
                                continue;
                        }
                }
                struct job *j = malloc(sizeof *j + (size_t) n);
                if (!j) {
                        struct nk_msg_header h;
                        if ((size_t) n >= sizeof h) {
                                memcpy(&h, buf, sizeof h);
                                if (h.id)
                                        (void) reply(b, h.id, ENOMEM, NULL, 0, -1);
                        }
                        continue;
                }
                j->next = NULL;
                j->len = (size_t) n;
                memcpy(j->data, buf, (size_t) n);
                pthread_mutex_lock(&b->qlock);
                while (b->queued >= QUEUE_MAX && !b->stopping)
                        pthread_cond_wait(&b->room, &b->qlock);
                if (b->tail)
                        b->tail->next = j;
                else
                        b->head = j;
                b->tail = j;
                b->queued++;
                pthread_cond_signal(&b->work);
                pthread_mutex_unlock(&b->qlock);
        }
        pthread_mutex_lock(&b->qlock);
        b->stopping = true;
        pthread_cond_broadcast(&b->work);
        pthread_mutex_unlock(&b->qlock);
        return NULL;
}

/* The grants inside the host's own /tmp and /dev, for BROKER_CHANNEL: the
 * host sends paths beneath them here rather than to its private tmpfs. */
static int local_grants(const struct nk_policy *p, struct nk_buf *out)
{
        uint32_t n = 0;
        for (size_t i = 0; i < p->nfiles; i++)
                n += nk_path_beneath(p->files[i].path, "/tmp") || nk_path_beneath(p->files[i].path, "/dev");
        if (n > NK_BROKER_LOCAL_MAX)
                return -E2BIG;
        int r = nk_put_u32(out, n);
        for (size_t i = 0; r >= 0 && i < p->nfiles; i++)
                if (nk_path_beneath(p->files[i].path, "/tmp") || nk_path_beneath(p->files[i].path, "/dev"))
                        r = nk_put_str(out, p->files[i].path, strlen(p->files[i].path));
        if (r < 0)
                return r;
        return out->len > NK_BROKER_CHANNEL_MAX ? -E2BIG : 0;
}

int nk_broker_attach(struct nk_broker *b, int channel)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        b->sock = sv[0];
        _cleanup_close_ int theirs = sv[1];
        _cleanup_(nk_buf_free) struct nk_buf grants = {};
        int r = local_grants(b->policy, &grants);
        if (r < 0)
                return r;
        struct nk_msg_header h = { .type = NK_MSG_BROKER_CHANNEL, .payload_len = grants.len };
        const struct iovec iov[] = { { &h, sizeof h }, { grants.data, grants.len } };
        r = nk_fdpass_send(channel, iov, NK_ARRAY_SIZE(iov), theirs);
        if (r < 0)
                return r;
        for (; b->nworkers < WORKERS; b->nworkers++) {
                r = -pthread_create(&b->workers[b->nworkers], NULL, worker_main, b);
                if (r < 0)
                        return r;
        }
        r = -pthread_create(&b->thread, NULL, broker_main, b);
        if (r < 0)
                return r;
        b->running = true;
        return 0;
}
