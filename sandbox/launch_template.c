/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting hosts through the host template (template.h): the messages, and
 * the caller's side — finding or starting the template, LAUNCH, and a
 * launcher whose kill and wait speak to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "fdpass.h"
#include "hash.h"
#include "macro.h"
#include "template.h"

extern char **environ;

/* ---- launchers by id ---------------------------------------------------------- */

static const struct nk_launcher *const by_id[] = {
        [NK_LAUNCHER_DIRECT] = &nk_launcher_direct,
        [NK_LAUNCHER_NATIVE] = &nk_launcher_native,
        [NK_LAUNCHER_BWRAP] = &nk_launcher_bwrap,
};

const struct nk_launcher *nk_launcher_by_id(uint32_t id)
{
        return id < NK_ARRAY_SIZE(by_id) ? by_id[id] : NULL;
}

int nk_launcher_id_of(const struct nk_launcher *l)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(by_id); i++)
                if (by_id[i] == l)
                        return (int) i;
        return -1;
}

/* ---- encoding ------------------------------------------------------------------- */

/* A string: its length with the NUL, then its bytes and the NUL; 0 for NULL. */
static int put_str(struct nk_buf *b, const char *s)
{
        if (!s)
                return nk_buf_put_be32(b, 0);
        size_t n = strlen(s) + 1;
        if (n > NK_TEMPLATE_MSG_MAX)
                return -E2BIG;
        int r = nk_buf_put_be32(b, (uint32_t) n);
        return r < 0 ? r : nk_buf_put(b, s, n);
}

static int put_strv(struct nk_buf *b, const char *const *v)
{
        uint32_t n = 0;
        while (v && v[n])
                n++;
        int r = nk_buf_put_be32(b, n);
        for (uint32_t i = 0; i < n && r >= 0; i++)
                r = put_str(b, v[i]);
        return r;
}

static int put_head(struct nk_buf *b, enum nk_template_msg type)
{
        int r = nk_buf_put_be32(b, NK_TEMPLATE_MAGIC);
        return r < 0 ? r : nk_buf_put_be32(b, type);
}

static int put_events(struct nk_buf *b, const struct nk_cgroup_events *e)
{
        int r = nk_buf_put_be64(b, e->oom_kill);
        if (r >= 0)
                r = nk_buf_put_be64(b, e->pids_max);
        return r < 0 ? r : nk_buf_put_be64(b, e->memory_peak);
}

/* Ends an encoding: the datagram, or -E2BIG past the limit. */
static int finish(struct nk_buf *b, int r, uint8_t **ret, size_t *ret_len)
{
        if (r >= 0 && b->len > NK_TEMPLATE_MSG_MAX)
                r = -E2BIG;
        if (r < 0) {
                nk_buf_free(b);
                return r;
        }
        *ret = nk_buf_steal(b, ret_len);
        return 0;
}

/* ---- decoding ------------------------------------------------------------------- */

/* A cursor over a datagram: any read past its end marks it bad, and the
 * decoder checks once at the end. */
struct rd {
        const uint8_t *p;
        size_t n;
        bool bad;
};

static uint32_t rd_u32(struct rd *r)
{
        if (r->n < 4) {
                r->bad = true;
                return 0;
        }
        uint32_t v = nk_get_be32(r->p);
        r->p += 4;
        r->n -= 4;
        return v;
}

static uint64_t rd_u64(struct rd *r)
{
        uint64_t hi = rd_u32(r);
        return hi << 32 | rd_u32(r);
}

/* A string of the datagram, NUL-terminated where it lies, or NULL (also
 * for a malformed one, which marks the cursor bad). */
static const char *rd_str(struct rd *r)
{
        uint32_t n = rd_u32(r);
        if (n == 0 || r->bad)
                return NULL;
        if (n > r->n || r->p[n - 1] != '\0' || memchr(r->p, '\0', n - 1)) {
                r->bad = true;
                return NULL;
        }
        const char *s = (const char *) r->p;
        r->p += n;
        r->n -= n;
        return s;
}

static char **rd_strv(struct rd *r)
{
        uint32_t n = rd_u32(r);
        /* Each entry takes at least its length word. */
        if (r->bad || n > r->n / 4) {
                r->bad = true;
                return NULL;
        }
        char **v = calloc((size_t) n + 1, sizeof *v);
        if (!v) {
                r->bad = true;
                return NULL;
        }
        for (uint32_t i = 0; i < n; i++) {
                v[i] = (char *) rd_str(r);
                if (!v[i])
                        r->bad = true;
                if (r->bad) {
                        free(v);
                        return NULL;
                }
        }
        return v;
}

static void rd_events(struct rd *r, struct nk_cgroup_events *e)
{
        e->oom_kill = rd_u64(r);
        e->pids_max = rd_u64(r);
        e->memory_peak = rd_u64(r);
}

int nk_template_msg_type(const uint8_t *p, size_t n)
{
        struct rd r = { p, n, false };
        uint32_t magic = rd_u32(&r), type = rd_u32(&r);
        if (r.bad || magic != NK_TEMPLATE_MAGIC || type < NK_TEMPLATE_LAUNCH || type > NK_TEMPLATE_EXITED)
                return -EBADMSG;
        return (int) type;
}

static int rd_start(struct rd *r, const uint8_t *p, size_t n, enum nk_template_msg type)
{
        *r = (struct rd) { p, n, false };
        if (nk_template_msg_type(p, n) != (int) type)
                return -EBADMSG;
        (void) rd_u64(r);       /* the magic and the type, checked */
        return 0;
}

/* ---- LAUNCH ------------------------------------------------------------------------ */

int nk_template_launch_encode(uint32_t launcher, const struct nk_launch_config *cfg, uint8_t **ret, size_t *ret_len)
{
        static const struct nk_sandbox_config none;
        const struct nk_sandbox_config *sc = cfg->sandbox ? cfg->sandbox : &none;
        struct nk_buf b = {};
        int r = put_head(&b, NK_TEMPLATE_LAUNCH);
        const uint32_t words[] = { launcher, cfg->sandbox != NULL, sc->cgroup_required, sc->outside_uid,
                                   sc->outside_gid, sc->inside_uid, sc->inside_gid, sc->pids, sc->cpu_percent,
                                   sc->tmp_mb, sc->open_files };
        for (size_t i = 0; i < NK_ARRAY_SIZE(words) && r >= 0; i++)
                r = nk_buf_put_be32(&b, words[i]);
        if (r >= 0)
                r = nk_buf_put_be64(&b, sc->memory_bytes);
        const char *const strs[] = { cfg->host_binary, cfg->library, sc->cgroup_root, sc->search_path };
        for (size_t i = 0; i < NK_ARRAY_SIZE(strs) && r >= 0; i++)
                r = put_str(&b, strs[i]);
        const char *const *caller_env = NULL;
        if (launcher == NK_LAUNCHER_DIRECT)
                caller_env = (const char *const *) (cfg->env ? cfg->env : environ);
        const char *const *const vecs[] = { sc->env, sc->scope, sc->extra_ro, caller_env };
        for (size_t i = 0; i < NK_ARRAY_SIZE(vecs) && r >= 0; i++)
                r = put_strv(&b, vecs[i]);
        return finish(&b, r, ret, ret_len);
}

int nk_template_launch_decode(const uint8_t *p, size_t n, struct nk_template_launch *ret)
{
        struct rd r;
        *ret = (struct nk_template_launch) {};
        if (rd_start(&r, p, n, NK_TEMPLATE_LAUNCH) < 0)
                return -EBADMSG;
        struct nk_sandbox_config *sc = &ret->sc;
        ret->launcher = rd_u32(&r);
        ret->have_sandbox = rd_u32(&r) != 0;
        sc->cgroup_required = rd_u32(&r) != 0;
        sc->outside_uid = rd_u32(&r);
        sc->outside_gid = rd_u32(&r);
        sc->inside_uid = rd_u32(&r);
        sc->inside_gid = rd_u32(&r);
        sc->pids = rd_u32(&r);
        sc->cpu_percent = rd_u32(&r);
        sc->tmp_mb = rd_u32(&r);
        sc->open_files = rd_u32(&r);
        sc->memory_bytes = rd_u64(&r);
        ret->host_binary = rd_str(&r);
        ret->library = rd_str(&r);
        sc->cgroup_root = rd_str(&r);
        sc->search_path = rd_str(&r);
        ret->env = rd_strv(&r);
        ret->scope = rd_strv(&r);
        ret->extra_ro = rd_strv(&r);
        ret->caller_env = rd_strv(&r);
        sc->env = (const char *const *) ret->env;
        sc->scope = (const char *const *) ret->scope;
        sc->extra_ro = (const char *const *) ret->extra_ro;
        if (r.bad || r.n || !ret->host_binary || !ret->library || !nk_launcher_by_id(ret->launcher)) {
                nk_template_launch_free(ret);
                return -EBADMSG;
        }
        return 0;
}

void nk_template_launch_free(struct nk_template_launch *l)
{
        free(l->env);
        free(l->scope);
        free(l->extra_ro);
        free(l->caller_env);
        *l = (struct nk_template_launch) {};
}

/* ---- LAUNCHED, EXITED, KILL --------------------------------------------------------- */

int nk_template_launched_encode(const struct nk_template_launched *m, uint8_t **ret, size_t *ret_len)
{
        struct nk_buf b = {};
        int r = put_head(&b, NK_TEMPLATE_LAUNCHED);
        const uint32_t words[] = { (uint32_t) m->r, (uint32_t) m->pid, m->memory_by_rlimit, m->have_cgroup };
        for (size_t i = 0; i < NK_ARRAY_SIZE(words) && r >= 0; i++)
                r = nk_buf_put_be32(&b, words[i]);
        if (r >= 0)
                r = put_events(&b, &m->events);
        if (r >= 0)
                r = put_str(&b, m->cgroup_path);
        if (r >= 0)
                r = put_str(&b, m->msg);
        size_t nnotes = m->nnotes < NK_TEMPLATE_NOTES_MAX ? m->nnotes : NK_TEMPLATE_NOTES_MAX;
        if (r >= 0)
                r = nk_buf_put_be32(&b, (uint32_t) nnotes);
        for (size_t i = 0; i < nnotes && r >= 0; i++)
                r = put_str(&b, m->notes[i] ? m->notes[i] : "");
        return finish(&b, r, ret, ret_len);
}

int nk_template_launched_decode(const uint8_t *p, size_t n, struct nk_template_launched *ret)
{
        struct rd r;
        *ret = (struct nk_template_launched) {};
        if (rd_start(&r, p, n, NK_TEMPLATE_LAUNCHED) < 0)
                return -EBADMSG;
        ret->r = (int32_t) rd_u32(&r);
        ret->pid = (int32_t) rd_u32(&r);
        ret->memory_by_rlimit = rd_u32(&r) != 0;
        ret->have_cgroup = rd_u32(&r) != 0;
        rd_events(&r, &ret->events);
        ret->cgroup_path = rd_str(&r);
        ret->msg = rd_str(&r);
        uint32_t nnotes = rd_u32(&r);
        if (nnotes > NK_TEMPLATE_NOTES_MAX)
                r.bad = true;
        for (uint32_t i = 0; i < nnotes && !r.bad; i++)
                if (!(ret->notes[ret->nnotes++] = rd_str(&r)))
                        r.bad = true;
        /* A started host has a pid; a failure a negative errno. */
        if (r.bad || r.n || ret->r > 0 || (ret->r == 0 && ret->pid <= 0) || (ret->have_cgroup && !ret->cgroup_path))
                return -EBADMSG;
        return 0;
}

int nk_template_exited_encode(const struct nk_template_exited *m, uint8_t **ret, size_t *ret_len)
{
        struct nk_buf b = {};
        int r = put_head(&b, NK_TEMPLATE_EXITED);
        const uint32_t words[] = { (uint32_t) m->r, (uint32_t) m->ex.signo, (uint32_t) m->ex.status,
                                   m->ex.core_dumped, m->have_events };
        for (size_t i = 0; i < NK_ARRAY_SIZE(words) && r >= 0; i++)
                r = nk_buf_put_be32(&b, words[i]);
        if (r >= 0)
                r = put_events(&b, &m->events);
        return finish(&b, r, ret, ret_len);
}

int nk_template_exited_decode(const uint8_t *p, size_t n, struct nk_template_exited *ret)
{
        struct rd r;
        *ret = (struct nk_template_exited) {};
        if (rd_start(&r, p, n, NK_TEMPLATE_EXITED) < 0)
                return -EBADMSG;
        ret->r = (int32_t) rd_u32(&r);
        ret->ex.signo = (int) rd_u32(&r);
        ret->ex.status = (int) rd_u32(&r);
        ret->ex.core_dumped = rd_u32(&r) != 0;
        ret->have_events = rd_u32(&r) != 0;
        rd_events(&r, &ret->events);
        if (r.bad || r.n || ret->r > 0 || ret->ex.signo < 0 || ret->ex.signo >= NSIG)
                return -EBADMSG;
        return 0;
}

static int kill_encode(int signo, uint8_t buf[12])
{
        struct nk_buf b = {};
        int r = put_head(&b, NK_TEMPLATE_KILL);
        if (r >= 0)
                r = nk_buf_put_be32(&b, (uint32_t) signo);
        if (r >= 0)
                memcpy(buf, b.data, 12);
        nk_buf_free(&b);
        return r;
}

int nk_template_kill_decode(const uint8_t *p, size_t n)
{
        struct rd r;
        if (rd_start(&r, p, n, NK_TEMPLATE_KILL) < 0)
                return -EBADMSG;
        uint32_t signo = rd_u32(&r);
        return r.bad || r.n || signo == 0 || signo >= NSIG ? -EBADMSG : (int) signo;
}

/* ---- where the template is ---------------------------------------------------------- */

unsigned long long nk_process_start_time(pid_t pid)
{
        char path[64], stat[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
        if (f)
                fclose(f);
        stat[n] = '\0';
        /* starttime is field 22, the 20th after the command */
        char *p = strrchr(stat, ')');
        for (int field = 2; p && field < 22; field++)
                p = strchr(p + 1, ' ');
        return p ? strtoull(p + 1, NULL, 10) : 0;
}

int nk_template_socket_name(pid_t pid, const char *template_binary, char *buf, size_t size)
{
        /* The binary's name in it: two builds of nifkit in one process each
         * talk to their own template. */
        int n = snprintf(buf, size, "nifkit-template/%d/%llu/%016" PRIx64, (int) pid, nk_process_start_time(pid),
                         nk_fnv1a64(template_binary));
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : n;
}

static socklen_t abstract_addr(const char *name, struct sockaddr_un *a)
{
        *a = (struct sockaddr_un) { .sun_family = AF_UNIX };
        size_t n = strnlen(name, sizeof a->sun_path - 2);
        memcpy(a->sun_path + 1, name, n);
        return (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* ---- the caller's side ---------------------------------------------------------------- */

/* This copy of the runtime's last template: a new one after it is news. */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t last_started;

static int connect_to(const char *name)
{
        struct sockaddr_un a;
        socklen_t len = abstract_addr(name, &a);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &a, len) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

/* Starts the template without copying this process (posix_spawn: vfork
 * semantics), and waits until it listens. 0 when a template listens under
 * name (this one, or another copy's that won the race). */
static int start_template(const char *binary, const char *name, pid_t *ret_pid, struct nk_sandbox_error *err)
{
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return nk_sandbox_error_set(err, -errno, "cannot start the host template: %s", strerror(errno));
        _cleanup_close_ int rd = ready[0];
        _cleanup_close_ int wr = ready[1];

        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t all, none;
        sigfillset(&all);
        sigemptyset(&none);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        /* stdin from /dev/null; stdout and stderr stay ours, where the
         * hosts' output goes. Its own process group: a terminal's ^C is the
         * VM's to handle, not the template's to die of. Every signal at its
         * default, SIGCHLD above all, which BEAM ignores. */
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, wr, 3);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setpgroup(&attr, 0);
        char *const argv[] = { (char *) "nifkit-template", (char *) "--ready-fd", (char *) "3",
                               (char *) "--name", (char *) name, NULL };
        pid_t pid;
        int r = posix_spawn(&pid, binary, &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return nk_sandbox_error_set(err, -r, "cannot start the host template '%s': %s", binary, strerror(r));
        nk_closep(&wr);
        wr = -1;

        /* "R": it listens; "B": another listens already; else its reason. */
        char said[512];
        size_t n = 0;
        for (;;) {
                ssize_t k = read(rd, said + n, sizeof said - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (n == sizeof said - 1)
                        break;
        }
        said[n] = '\0';
        if (n == 1 && said[0] == 'R') {
                *ret_pid = pid;
                return 0;
        }
        /* It exits now: reap it (where SIGCHLD is ignored the kernel did). */
        (void) waitpid(pid, NULL, 0);
        if (n == 1 && said[0] == 'B')
                return 0;
        return nk_sandbox_error_set(err, -EIO, "the host template '%s' did not start: %s", binary,
                                    n ? said : "it exited without a word");
}

/* A connection to the template of this process, started if need be. */
static int template_connect(const struct nk_launch_config *cfg, const char *binary, struct nk_sandbox_error *err)
{
        char name[160];
        int r = nk_template_socket_name(getpid(), binary, name, sizeof name);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "the host template's name is too long");
        int fd = connect_to(name);
        if (fd >= 0)
                return fd;
        if (fd != -ECONNREFUSED && fd != -ENOENT)
                return nk_sandbox_error_set(err, fd, "cannot reach the host template: %s", strerror(-fd));

        pthread_mutex_lock(&start_lock);
        fd = connect_to(name);          /* another thread may have started it */
        if (fd < 0) {
                pid_t pid = 0, before = last_started;
                r = start_template(binary, name, &pid, err);
                if (r >= 0 && pid > 0) {
                        last_started = pid;
                        if (before > 0 && cfg->notice) {
                                char msg[256];
                                snprintf(msg, sizeof msg, "the host template (pid %d) is gone, and every host "
                                         "it started with it; started a new one (pid %d)", (int) before, (int) pid);
                                cfg->notice(cfg->log_arg, "template_restarted", msg);
                        }
                }
                fd = r < 0 ? r : connect_to(name);
                if (r >= 0 && fd < 0)
                        nk_sandbox_error_set(err, fd, "cannot reach the host template: %s", strerror(-fd));
        }
        pthread_mutex_unlock(&start_lock);
        return fd;
}

struct nk_remote_child {
        int fd;                         /* the connection to the template */
        atomic_bool ended;              /* EXITED read, or the template gone */
        bool have_cgroup;
        char *cgroup_path;
        struct nk_cgroup_events events;
};

void nk_remote_child_free(struct nk_remote_child *rc)
{
        if (!rc)
                return;
        nk_closep(&rc->fd);
        free(rc->cgroup_path);
        free(rc);
}

int nk_remote_child_cgroup(const struct nk_remote_child *rc, const char **ret_path, struct nk_cgroup_events *ret)
{
        if (!rc || !rc->have_cgroup)
                return -ENOENT;
        if (ret_path)
                *ret_path = rc->cgroup_path;
        if (ret)
                *ret = rc->events;
        return 0;
}

/* One datagram from the template within timeout_ms (-1: forever): its
 * length, 0 when the template is gone, -ETIMEDOUT, -errno. */
static ssize_t recv_within(int fd, uint8_t *buf, size_t cap, int timeout_ms, int *ret_fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int k;
        do
                k = poll(&p, 1, timeout_ms);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if (k == 0)
                return -ETIMEDOUT;
        ssize_t n = ret_fd ? nk_fdpass_recv(fd, buf, cap, MSG_DONTWAIT, ret_fd)
                           : recv(fd, buf, cap, MSG_DONTWAIT);
        if (n < 0 && !ret_fd)
                n = -errno;
        return n == -ECONNRESET ? 0 : n;
}

static int remote_launch(const struct nk_launcher *inner, const struct nk_launch_config *cfg, int channel_fd,
                         struct nk_child *ret_child)
{
        struct nk_sandbox_error local;
        struct nk_sandbox_error *err = cfg->err ? cfg->err : &local;
        int id = nk_launcher_id_of(inner);
        char beside[PATH_MAX];
        const char *binary = cfg->template_binary;
        if (!binary) {
                const char *slash = strrchr(cfg->host_binary, '/');
                int n = slash ? snprintf(beside, sizeof beside, "%.*s/nifkit-template",
                                         (int) (slash - cfg->host_binary), cfg->host_binary) : -1;
                if (n < 0 || (size_t) n >= sizeof beside)
                        return nk_sandbox_error_set(err, -EINVAL, "no host template beside '%s'", cfg->host_binary);
                binary = beside;
        }

        _cleanup_free_ uint8_t *req = NULL;
        size_t req_len;
        int r = nk_template_launch_encode((uint32_t) id, cfg, &req, &req_len);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "cannot ask for the host of %s: %s", cfg->library,
                                            r == -E2BIG ? "its environment and paths exceed what one request holds"
                                                        : strerror(-r));
        _cleanup_close_ int fd = template_connect(cfg, binary, err);
        if (fd < 0)
                return fd;
        const struct iovec iov = { req, req_len };
        r = nk_fdpass_send(fd, &iov, 1, channel_fd);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "cannot ask the host template for the host of %s: %s",
                                            cfg->library, strerror(-r));

        _cleanup_free_ uint8_t *buf = malloc(NK_TEMPLATE_MSG_MAX);
        if (!buf)
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        ssize_t n = recv_within(fd, buf, NK_TEMPLATE_MSG_MAX, -1, NULL);
        if (n <= 0)
                return nk_sandbox_error_set(err, n < 0 ? (int) n : -ECONNRESET, "the host template %s while starting "
                                            "the host of %s", n == 0 ? "went away" : "cannot be heard", cfg->library);
        struct nk_template_launched m;
        if (nk_template_launched_decode(buf, (size_t) n, &m) < 0)
                return nk_sandbox_error_set(err, -EPROTO, "the host template answered the start of %s's host "
                                            "with a malformed message", cfg->library);
        for (size_t i = 0; i < m.nnotes && cfg->log; i++)
                cfg->log(cfg->log_arg, m.notes[i]);
        if (m.r < 0)
                return nk_sandbox_error_set(err, m.r, "%s", m.msg ? m.msg : strerror(-m.r));

        struct nk_remote_child *rc = calloc(1, sizeof *rc);
        if (rc && m.have_cgroup && !(rc->cgroup_path = strdup(m.cgroup_path))) {
                free(rc);
                rc = NULL;
        }
        if (!rc)
                /* The template kills the host when the connection closes. */
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        rc->fd = TAKE_FD(fd);
        rc->have_cgroup = m.have_cgroup;
        rc->events = m.events;
        *ret_child = (struct nk_child) { .pid = m.pid, .pidfd = -1, .memory_by_rlimit = m.memory_by_rlimit,
                                         .remote = rc };
        return 0;
}

static int remote_kill(struct nk_child *child, int signo)
{
        struct nk_remote_child *rc = child->remote;
        if (child->reaped || !rc || atomic_load(&rc->ended))
                return -ESRCH;
        uint8_t msg[12];
        int r = kill_encode(signo, msg);
        if (r < 0)
                return r;
        if (send(rc->fd, msg, sizeof msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                return errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ? -ESRCH : -errno;
        return 0;
}

static int remote_wait(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret)
{
        struct nk_remote_child *rc = child->remote;
        if (child->reaped || !rc || atomic_load(&rc->ended))
                return -ECHILD;
        uint8_t buf[256];
        for (;;) {
                ssize_t n = recv_within(rc->fd, buf, sizeof buf, timeout_ms, NULL);
                if (n == -ETIMEDOUT || (n < 0 && n != -ECONNRESET))
                        return (int) n;
                if (n == 0) {
                        /* The template died: its hosts die with it, and how
                         * this one ended went with the template. */
                        atomic_store(&rc->ended, true);
                        child->reaped = true;
                        return -ENOLINK;
                }
                struct nk_template_exited m;
                if (nk_template_exited_decode(buf, (size_t) n, &m) < 0)
                        continue;       /* nothing else is sent after LAUNCHED */
                if (m.have_events) {
                        rc->events = m.events;
                }
                atomic_store(&rc->ended, true);
                child->reaped = true;
                if (m.r < 0)
                        return m.r;
                *ret = m.ex;
                return 0;
        }
}

/* Each launcher as the template runs it: the inner one's name and root,
 * filled in once (they live in other files). */
#define VIA(which)                                                                                     \
        static int via_##which##_launch(const struct nk_launch_config *cfg, int channel_fd,            \
                                        struct nk_child *ret_child)                                    \
        {                                                                                              \
                return remote_launch(&nk_launcher_##which, cfg, channel_fd, ret_child);                \
        }
VIA(direct)
VIA(native)
VIA(bwrap)

static struct nk_launcher via[] = {
        [NK_LAUNCHER_DIRECT] = { .launch = via_direct_launch, .kill = remote_kill, .wait = remote_wait },
        [NK_LAUNCHER_NATIVE] = { .launch = via_native_launch, .kill = remote_kill, .wait = remote_wait },
        [NK_LAUNCHER_BWRAP] = { .launch = via_bwrap_launch, .kill = remote_kill, .wait = remote_wait },
};
static pthread_once_t via_once = PTHREAD_ONCE_INIT;

static void via_fill(void)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(via); i++) {
                via[i].name = by_id[i]->name;
                via[i].own_root = by_id[i]->own_root;
        }
}

const struct nk_launcher *nk_launcher_via_template(const struct nk_launcher *inner)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(via); i++)
                if (inner == &via[i])
                        return inner;   /* already through the template */
        int id = nk_launcher_id_of(inner);
        if (id < 0)
                return NULL;
        pthread_once(&via_once, via_fill);
        return &via[id];
}
