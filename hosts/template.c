/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit-template: starts hosts for the process that started it, so that no
 * host is a copy of that process (sandbox/template.h says why and how).
 *
 * One thread runs one epoll loop over: the listening socket; a pidfd of the
 * parent, whose exit ends the template and its hosts; and per host, the
 * connection it was asked for on and its pidfd, whose readability means it
 * ended. A launch runs the launcher the request names, as the runtime
 * would have in its own process; the host's output is drained here, and
 * the template reaps it and sends how it ended. The connection closing
 * before that kills the host: nobody is left to speak to it.
 *
 * Started by libnifkit with posix_spawn; not meant to be run by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "child.h"
#include "fdpass.h"
#include "macro.h"
#include "template.h"

/* Waits for hosts whose launcher gave no pidfd (kernels before 5.3). */
#define NO_PIDFD_POLL_MS 100

enum watch_kind { W_LISTEN, W_PARENT, W_CONN, W_EXIT };

struct host;
struct watch {
        enum watch_kind kind;
        struct host *h;
};

struct host {
        int conn;
        struct watch conn_w, exit_w;
        const struct nk_launcher *l;
        struct nk_child child;
        bool launched, watching_exit;
        bool gone;              /* freed after this batch of events */
        struct host *prev, *next;
};

static int ep = -1;
static struct host *hosts;
static struct host *graveyard;  /* forgotten, still named by this batch's events */
static size_t no_pidfd;         /* launched hosts without a pidfd */
static uint8_t buf[NK_TEMPLATE_MSG_MAX];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        char line[768];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t) n > sizeof line - 2)
                n = (int) sizeof line - 2;
        line[n++] = '\n';
        (void) !write(STDERR_FILENO, line, (size_t) n);
}

static int watch(int fd, struct watch *w)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };
        return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void host_free(struct host *h)
{
        if (h->watching_exit)
                (void) epoll_ctl(ep, EPOLL_CTL_DEL, h->child.pidfd, NULL);
        if (h->launched) {
                if (h->child.pidfd < 0)
                        no_pidfd--;
                nk_child_release(&h->child);
        }
        /* Closing drops it from the epoll set. */
        nk_closep(&h->conn);
        if (h->prev)
                h->prev->next = h->next;
        else
                hosts = h->next;
        if (h->next)
                h->next->prev = h->prev;
        h->gone = true;
        h->next = graveyard;
        graveyard = h;
}

static void bury(void)
{
        while (graveyard) {
                struct host *h = graveyard;
                graveyard = h->next;
                free(h);
        }
}

/* Kills a host nobody can speak to any more, and reaps it. */
static void host_kill(struct host *h)
{
        if (h->launched && !h->child.reaped) {
                struct nk_child_exit ex;
                (void) h->l->kill(&h->child, SIGKILL);
                (void) h->l->wait(&h->child, -1, &ex);
        }
        host_free(h);
}

static void send_msg(int fd, int r, uint8_t *msg, size_t len)
{
        if (r >= 0)
                (void) !send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        free(msg);
}

/* ---- launching -------------------------------------------------------------- */

/* What the launch's sandbox does not enforce, for LAUNCHED. */
struct notes {
        char *text[NK_TEMPLATE_NOTES_MAX];
        size_t n;
};

static void note(void *arg, const char *msg)
{
        struct notes *ns = arg;
        if (ns->n < NK_TEMPLATE_NOTES_MAX)
                ns->text[ns->n] = strdup(msg), ns->n += ns->text[ns->n] != NULL;
}

static void launch(struct host *h, const uint8_t *req, size_t len, int channel)
{
        struct nk_template_launch rq;
        struct nk_template_launched m = {};
        struct nk_sandbox_error serr = {};
        struct notes ns = {};

        int r = nk_template_launch_decode(req, len, &rq);
        if (r < 0 || channel < 0) {
                m.r = -EPROTO;
                m.msg = channel < 0 && r >= 0 ? "a start request came without the host's channel"
                                             : "a malformed start request";
        } else {
                h->l = nk_launcher_by_id(rq.launcher);
                const struct nk_launch_config cfg = {
                        .host_binary = rq.host_binary,
                        .library = rq.library,
                        .sandbox = rq.have_sandbox ? &rq.sc : NULL,
                        .log = note,
                        .log_arg = &ns,
                        .err = &serr,
                        .die_with_parent = true,
                        .env = rq.launcher == NK_LAUNCHER_DIRECT ? rq.caller_env : NULL,
                };
                m.r = h->l->launch(&cfg, channel, &h->child);
                m.msg = serr.msg[0] ? serr.msg : NULL;
                nk_template_launch_free(&rq);
        }
        nk_closep(&channel);
        if (m.r == 0) {
                h->launched = true;
                m.pid = h->child.pid;
                m.memory_by_rlimit = h->child.memory_by_rlimit;
                m.cgroup_path = nk_child_cgroup_path(&h->child);
                m.have_cgroup = m.cgroup_path && nk_child_cgroup_events(&h->child, &m.events) == 0;
                if (h->child.pidfd >= 0 && watch(h->child.pidfd, &h->exit_w) == 0)
                        h->watching_exit = true;
                else if (h->child.pidfd < 0)
                        no_pidfd++;
        }
        for (size_t i = 0; i < ns.n; i++)
                m.notes[m.nnotes++] = ns.text[i];
        uint8_t *out;
        size_t out_len;
        r = nk_template_launched_encode(&m, &out, &out_len);
        send_msg(h->conn, r, out, out_len);
        for (size_t i = 0; i < ns.n; i++)
                free(ns.text[i]);
        if (m.r < 0)
                host_free(h);
}

/* ---- what happens to hosts ----------------------------------------------------- */

/* The host may have ended: if so, says how, and forgets it. */
static void maybe_ended(struct host *h)
{
        struct nk_template_exited m = {};
        int r = h->l->wait(&h->child, 0, &m.ex);
        if (r == -ETIMEDOUT)
                return;
        m.r = r < 0 ? r : 0;
        m.have_events = nk_child_cgroup_events(&h->child, &m.events) == 0;
        uint8_t *out;
        size_t out_len;
        r = nk_template_exited_encode(&m, &out, &out_len);
        send_msg(h->conn, r, out, out_len);
        host_free(h);
}

/* A datagram on a host's connection. */
static void on_conn(struct host *h)
{
        int fd = -1;
        ssize_t n = nk_fdpass_recv(h->conn, buf, sizeof buf, MSG_DONTWAIT, &fd);
        if (n == -EAGAIN || n == -EINTR)
                return;
        int type = n > 0 ? nk_template_msg_type(buf, (size_t) n) : -1;
        if (type == NK_TEMPLATE_LAUNCH && !h->launched) {
                launch(h, buf, (size_t) n, fd);
                return;
        }
        nk_closep(&fd);
        int signo = type == NK_TEMPLATE_KILL ? nk_template_kill_decode(buf, (size_t) n) : -1;
        if (signo > 0 && h->launched) {
                (void) h->l->kill(&h->child, signo);
                return;
        }
        /* Gone (n <= 0), or a message that has no place here: either way
         * nobody is left to speak for the host. */
        if (n > 0)
                say("nifkit-template: closing a connection that sent a malformed message (%zd bytes)", n);
        host_kill(h);
}

/* Only the parent may ask: anything else in this network namespace can
 * reach the name. */
static void on_listen(int lfd)
{
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid != getppid() ||
            cred.uid != getuid()) {
                say("nifkit-template: refused a connection from pid %d (uid %u): only pid %d may start hosts here",
                    (int) cred.pid, (unsigned) cred.uid, (int) getppid());
                close(fd);
                return;
        }
        struct host *h = calloc(1, sizeof *h);
        if (!h) {
                close(fd);
                return;
        }
        *h = (struct host) { .conn = fd, .conn_w = { W_CONN, h }, .exit_w = { W_EXIT, h }, .next = hosts,
                             .child = { .pidfd = -1 } };
        if (watch(fd, &h->conn_w) < 0) {
                close(fd);
                free(h);
                return;
        }
        if (hosts)
                hosts->prev = h;
        hosts = h;
}

/* ---- set-up ------------------------------------------------------------------------ */

static int parse_fd(const char *s)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        return errno || end == s || *end || v < 0 || v > INT_MAX ? -1 : (int) v;
}

static _Noreturn void refuse(int ready, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void refuse(int ready, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (n > 0)
                (void) !write(ready >= 0 ? ready : STDERR_FILENO, msg, strnlen(msg, sizeof msg));
        _exit(1);
}

int main(int argc, char **argv)
{
        int ready = -1;
        const char *name = NULL;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--ready-fd") == 0)
                        ready = parse_fd(argv[i + 1]);
                else if (strcmp(argv[i], "--name") == 0)
                        name = argv[i + 1];
        }
        if (ready < 0 || !name || argc != 5) {
                fprintf(stderr, "usage: nifkit-template --ready-fd N --name NAME\n"
                                "Starts nifkit hosts for the process that started it. Not meant to be run by hand.\n");
                return 2;
        }
        /* Nothing of the parent's but 0-2 and the ready pipe. */
        nk_child_close_from(ready + 1);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGCHLD, SIG_DFL);

        pid_t parent = getppid();
        int parent_fd = nk_child_pidfd_open(parent);
        if (parent_fd < 0)
                refuse(ready, "cannot watch the process that started it: %s", strerror(-parent_fd));
        /* It may have gone between the spawn and the pidfd. */
        if (getppid() != parent)
                _exit(0);

        struct sockaddr_un a = { .sun_family = AF_UNIX };
        size_t n = strlen(name);
        if (n > sizeof a.sun_path - 2)
                refuse(ready, "socket name too long");
        memcpy(a.sun_path + 1, name, n);
        int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (lfd < 0)
                refuse(ready, "cannot create its socket: %s", strerror(errno));
        if (bind(lfd, (struct sockaddr *) &a, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
                if (errno == EADDRINUSE) {
                        /* Another copy's template won: it serves. */
                        (void) !write(ready, "B", 1);
                        _exit(0);
                }
                refuse(ready, "cannot bind its socket: %s", strerror(errno));
        }
        if (listen(lfd, SOMAXCONN) < 0)
                refuse(ready, "cannot listen: %s", strerror(errno));
        ep = epoll_create1(EPOLL_CLOEXEC);
        static struct watch listen_w = { W_LISTEN, NULL }, parent_w = { W_PARENT, NULL };
        if (ep < 0 || watch(lfd, &listen_w) < 0 || watch(parent_fd, &parent_w) < 0)
                refuse(ready, "cannot watch its descriptors: %s", strerror(errno));
        (void) !write(ready, "R", 1);
        close(ready);

        for (;;) {
                struct epoll_event evs[64];
                int k = epoll_wait(ep, evs, NK_ARRAY_SIZE(evs), no_pidfd ? NO_PIDFD_POLL_MS : -1);
                if (k < 0 && errno != EINTR)
                        refuse(-1, "nifkit-template: epoll_wait: %s\n", strerror(errno));
                for (int i = 0; i < k; i++) {
                        struct watch *w = evs[i].data.ptr;
                        if (w->h && w->h->gone)
                                continue;
                        switch (w->kind) {
                        case W_LISTEN:
                                on_listen(lfd);
                                break;
                        case W_PARENT:
                                /* The process it served is gone: so are its hosts. */
                                while (hosts)
                                        host_kill(hosts);
                                _exit(0);
                        case W_CONN:
                                on_conn(w->h);
                                break;
                        case W_EXIT:
                                maybe_ended(w->h);
                                break;
                        }
                }
                if (no_pidfd)
                        for (struct host *h = hosts, *next; h; h = next) {
                                next = h->next;
                                if (h->launched && h->child.pidfd < 0)
                                        maybe_ended(h);
                        }
                bury();
        }
}
