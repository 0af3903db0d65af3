/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hostile-NIF suite's driver: runs one attack of nk_hostile.so in a
 * sandboxed host, beside a well-behaved host (nk_hostile_echo.so), and
 * checks that the attack failed the way the sandbox should make it fail,
 * and that the bystander still answers.
 *
 *   nk_hostile_driver ATTACK     run one attack; exit 0 stopped, 1 not
 *                                stopped (or the runtime broke), 77 skipped
 *   nk_hostile_driver --list     the attacks, what they try, what stops them
 *
 * From the environment (meson sets them): NIFKIT_HOST, NK_HOSTILE_NIF,
 * NK_HOSTILE_ECHO, NK_HOSTILE_POLICY, NK_HOSTILE_BUILD_ROOT, and
 * NIFKIT_TEST_LAUNCHER = native (default) or bwrap, which replaces the
 * policy's launcher (the variable the other integration tests use).
 *
 * Limits that only cgroup v2 controllers enforce (pids.max, memory.max) are
 * checked when the controllers are delegated to us, and skipped with the
 * reason otherwise: the same binary runs in the qemu guest, where they are.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include <ei.h>

#include "nifkit.h"
#include "operator.h"
#include "nifkit_policy.h"
#include "sandbox.h"
#include "shm.h"

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_SKIP 77
#define MAX_STEPS 64
#define MIB (1ULL << 20)
/* The RLIMIT_AS allowance above the policy's memory (sandbox/rlimits.c). */
#define AS_ALLOWANCE_MIB 512
/* shm_flip_length's real reply. */
#define FLIP_BYTES (512 * 1024)

struct step {
        char what[256];
        char outcome[MAXATOMLEN_UTF8];
        long long n;
};

/* What one call of the attack gave. */
struct outcome {
        int r;                  /* nk_host_call's return */
        nk_error err;
        nk_result res;
        struct step steps[MAX_STEPS];
        unsigned nsteps;
        bool decoded;           /* res held a step list */
};

struct ctx {
        const char *launcher;
        struct nk_policy policy;        /* the suite's, launcher replaced */
        unsigned cgroups;               /* NK_CG_* delegated to us */
        char cgroup_note[1024];
        const char *nif, *echo, *policy_path, *build_root;
        int listener;                   /* connect_tcp's */
        unsigned port;
        char probes[8][4096];           /* write_outside's targets */
        unsigned nprobes;
        char why[1024];                 /* the verdict's explanation */
        /* stdio: what the attacker's host inherits as fds 0 and 2 */
        int saved_stdin, saved_stderr;
        char log_path[64];
        /* The hosts' pids as the runtime knows them (for bwrap, its monitor) */
        int attacker_pid, bystander_pid;
};

struct attack;
typedef int (*args_fn)(struct ctx *c, ei_x_buff *x);
/* EXIT_PASS, EXIT_FAIL or EXIT_SKIP, with c->why filled. */
typedef int (*check_fn)(struct ctx *c, const struct attack *a, const struct outcome *o);

struct attack {
        const char *name;
        const char *fn;         /* the NIF function, when not name */
        const char *tried;
        const char *stops;
        args_fn args;           /* NULL: the atom [] */
        check_fn check;
        const char *errnos;     /* check_errnos: each step failed with one of these */
        const char *syscall;    /* check_seccomp: the host died trapping this call */
        unsigned needs;         /* controllers without which it is skipped */
        bool raw;               /* returns its own term, not a step list */
        bool stdio;             /* the attacker starts with a secret on stdin, a log file as stderr */
        /* The attacker's call timeout instead of the policy's, for attacks
         * that take long before a limit stops them, so that a loaded machine
         * does not turn their outcome into "timeout". */
        unsigned timeout_ms;
};

static void why(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct ctx *c, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        va_end(ap);
}

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v) {
                fprintf(stderr, "%s is not set: run this test through meson test\n", name);
                exit(EXIT_FAIL);
        }
        return v;
}

/* ---- terms ------------------------------------------------------------------ */

static int decode_steps(struct outcome *o)
{
        const char *b = (const char *) o->res.etf;
        int i = 0, version, arity;
        if (ei_decode_version(b, &i, &version) < 0 || ei_decode_list_header(b, &i, &arity) < 0 ||
            arity > MAX_STEPS)
                return -EBADMSG;
        for (int k = 0; k < arity; k++) {
                struct step *s = &o->steps[k];
                int ta, type, size;
                long len;
                if (ei_decode_tuple_header(b, &i, &ta) < 0 || ta != 3 || ei_get_type(b, &i, &type, &size) < 0 ||
                    type != ERL_BINARY_EXT || (size_t) size >= sizeof s->what ||
                    ei_decode_binary(b, &i, s->what, &len) < 0 || ei_decode_atom(b, &i, s->outcome) < 0 ||
                    ei_decode_longlong(b, &i, &s->n) < 0)
                        return -EBADMSG;
                s->what[len] = '\0';
        }
        int tail = 0;
        if (arity > 0 && (ei_decode_list_header(b, &i, &tail) < 0 || tail != 0))
                return -EBADMSG;
        o->nsteps = (unsigned) arity;
        o->decoded = true;
        return 0;
}

static void print_outcome(const struct outcome *o)
{
        if (o->r < 0) {
                printf("  host: %s error, reason \"%s\": %s\n", nk_error_kind_name(o->err.kind), o->err.reason,
                       o->err.msg);
                return;
        }
        if (!o->decoded) {
                printf("  host: returned %s that is not a step list (%zu bytes of ETF)\n",
                       o->res.exception ? "an exception" : "a term", o->res.len);
                return;
        }
        for (unsigned k = 0; k < o->nsteps; k++)
                printf("  step: %s -> %s (%lld)\n", o->steps[k].what, o->steps[k].outcome, o->steps[k].n);
}

/* ---- hosts ------------------------------------------------------------------ */

static void log_note(void *arg, const struct nk_log_record *rec)
{
        if (rec->note)
                printf("  note: %s\n", rec->note);
}

static nk_host *start(struct ctx *c, const char *lib, const char *role, unsigned timeout_ms)
{
        nk_host *h = nk_operator_host_new(NULL);
        if (!h || nk_host_set_library(h, lib) < 0) {
                fprintf(stderr, "out of memory\n");
                exit(EXIT_FAIL);
        }
        nk_host_set_policy(h, &c->policy);
        if (timeout_ms)
                nk_host_set_call_timeout(h, timeout_ms);
        nk_error err = { 0 };
        if (nk_host_start(h, NULL, 0, &err) < 0) {
                printf("  FAIL: cannot start the %s host (%s launcher): %s (%s)\n", role, c->launcher, err.msg,
                       nk_error_kind_name(err.kind));
                exit(EXIT_FAIL);
        }
        return h;
}

/* Prints ETF as Erlang text (ei's printer), so that terms compare whatever
 * encoding each side chose for atoms; NULL if it is not one whole term. */
static char *show(const uint8_t *etf, size_t len)
{
        int i = 0, version;
        char *s = NULL;
        if (ei_decode_version((const char *) etf, &i, &version) < 0 ||
            ei_s_print_term(&s, (const char *) etf, &i) < 0 || (size_t) i != len) {
                free(s);
                return NULL;
        }
        return s;
}

/* The bystander answers echo({ping, Tag}) with the same term. */
static bool bystander_answers(nk_host *h, const char *tag)
{
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        ei_x_encode_tuple_header(&x, 2);
        ei_x_encode_atom(&x, "ping");
        ei_x_encode_binary(&x, tag, (long) strlen(tag));
        ei_x_encode_empty_list(&x);
        ei_x_buff w;
        ei_x_new_with_version(&w);
        ei_x_encode_tuple_header(&w, 2);
        ei_x_encode_atom(&w, "ping");
        ei_x_encode_binary(&w, tag, (long) strlen(tag));
        char *want = show((const uint8_t *) w.buff, (size_t) w.index);
        ei_x_free(&w);
        if (!want)
                return false;

        int idx = nk_host_find_function(h, "echo", 1);
        nk_result res;
        nk_error err = { 0 };
        int r = idx < 0 ? idx
                        : nk_host_call(h, (unsigned) idx, NULL, 0, (const uint8_t *) x.buff, (size_t) x.index, &res,
                                       &err);
        ei_x_free(&x);
        if (r < 0) {
                printf("  bystander: no answer (%s): %s\n", nk_error_kind_name(err.kind), err.msg);
                free(want);
                return false;
        }
        char *got = res.exception ? NULL : show(res.etf, res.len);
        bool ok = got && strcmp(got, want) == 0;
        if (!ok)
                printf("  bystander: answered %s, not %s\n", got ? got : "something unreadable", want);
        free(got);
        free(want);
        nk_result_free(&res);
        return ok;
}

/* ---- processes seen from outside ------------------------------------------------ */

static bool read_small(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = '\0';
        return true;
}

static bool comm_is(int pid, const char *want)
{
        char path[64], comm[64];
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        if (!read_small(path, comm, sizeof comm))
                return false;
        comm[strcspn(comm, "\n")] = '\0';
        return strcmp(comm, want) == 0;
}

static int parent_of(int pid)
{
        char path[64], stat[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (!read_small(path, stat, sizeof stat))
                return -1;
        const char *p = strrchr(stat, ')');
        int ppid;
        return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/* The nifkit-host process at or below pid (under bwrap, the runtime's pid
 * is bwrap's monitor), or -1. */
static int host_process(int pid, int depth)
{
        if (comm_is(pid, "nifkit-host"))
                return pid;
        char path[80], kids[512];
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
        if (depth > 3 || !read_small(path, kids, sizeof kids))
                return -1;
        char *save;
        for (char *tok = strtok_r(kids, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
                int found = host_process(atoi(tok), depth + 1);
                if (found > 0)
                        return found;
        }
        return -1;
}

/* The nifkit-template that started the host at pid, or -1. */
static int template_of(int pid)
{
        for (int p = parent_of(pid), n = 0; p > 1 && n < 8; p = parent_of(p), n++)
                if (comm_is(p, "nifkit-template"))
                        return p;
        return -1;
}

/* ---- checks ------------------------------------------------------------------- */

static bool word_in(const char *word, const char *list)
{
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
                        return true;
        return false;
}

/* The host answered, and every step failed with one of a->errnos. */
static int check_errnos(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r < 0) {
                why(c, "the host died instead of failing the call with %s: %s", a->errnos, o->err.msg);
                return EXIT_FAIL;
        }
        if (!o->decoded || o->nsteps == 0) {
                why(c, "the attack returned no steps");
                return EXIT_FAIL;
        }
        for (unsigned k = 0; k < o->nsteps; k++) {
                const struct step *s = &o->steps[k];
                if (strcmp(s->outcome, "ok") == 0) {
                        why(c, "SANDBOX BUG: %s succeeded (%lld)", s->what, s->n);
                        return EXIT_FAIL;
                }
                if (!word_in(s->outcome, a->errnos)) {
                        why(c, "%s failed with %s, expected one of: %s", s->what, s->outcome, a->errnos);
                        return EXIT_FAIL;
                }
        }
        why(c, "all %u steps refused (%s)", o->nsteps, a->errnos);
        return EXIT_PASS;
}

/* The host died, and the runtime says the seccomp filter trapped a->syscall. */
static int check_seccomp(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r >= 0) {
                if (o->decoded)
                        for (unsigned k = 0; k < o->nsteps; k++)
                                if (strcmp(o->steps[k].outcome, "ok") == 0) {
                                        why(c, "SANDBOX BUG: %s succeeded (%lld)", o->steps[k].what,
                                            o->steps[k].n);
                                        return EXIT_FAIL;
                                }
                why(c, "the host survived: %s was not trapped by seccomp (its steps failed otherwise)",
                    a->syscall);
                return EXIT_FAIL;
        }
        char want[64];
        snprintf(want, sizeof want, "denied %s(2)", a->syscall);
        if (o->err.kind != NK_ERR_HOST_DIED || strcmp(o->err.reason, "seccomp") != 0 ||
            !strstr(o->err.msg, want)) {
                why(c, "expected death with reason \"seccomp\" naming %s(2), got %s, reason \"%s\": %s",
                    a->syscall, nk_error_kind_name(o->err.kind), o->err.reason, o->err.msg);
                return EXIT_FAIL;
        }
        why(c, "killed: reason \"seccomp\", %s", want);
        return EXIT_PASS;
}

static int check_timeout(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r >= 0 || o->err.kind != NK_ERR_TIMEOUT || strcmp(o->err.reason, "timeout") != 0) {
                why(c, "expected NK_ERR_TIMEOUT with reason \"timeout\", got %s",
                    o->r >= 0 ? "an answer" : o->err.msg);
                return EXIT_FAIL;
        }
        why(c, "killed after %u ms: reason \"timeout\"", c->policy.limits.call_timeout_ms);
        return EXIT_PASS;
}

static int check_protocol(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r >= 0 || o->err.kind != NK_ERR_PROTOCOL || strcmp(o->err.reason, "protocol") != 0) {
                why(c, "expected NK_ERR_PROTOCOL with reason \"protocol\", got %s%s%s",
                    o->r >= 0 ? "an answer" : o->err.msg, o->r >= 0 ? "" : ", reason ",
                    o->r >= 0 ? "" : o->err.reason);
                return EXIT_FAIL;
        }
        why(c, "killed: reason \"protocol\"");
        return EXIT_PASS;
}

/* The host's ids are not root's, it holds no capability in any set,
 * no_new_privs is set and a seccomp filter is in force (mode 2). */
/* A reply whose lengths changed while the runtime read it: either what it
 * read held together (the whole binary came), or it was refused. */
static int check_flip(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r >= 0) {
                if (o->res.exception || o->res.len != FLIP_BYTES + 6 || o->res.etf[1] != 109) {
                        why(c, "an answer of %zu bytes came through, not the %d-byte binary", o->res.len,
                            FLIP_BYTES + 6);
                        return EXIT_FAIL;
                }
                why(c, "the lengths the runtime copied held together: the whole binary came");
                return EXIT_PASS;
        }
        return check_protocol(c, a, o);
}

/* A reply published without the futex wake: found within a futex slice. */
static int check_no_wake(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        static const uint8_t ok[] = { 131, 119, 2, 'o', 'k' };
        if (o->r < 0 || o->res.exception || o->res.len != sizeof ok || memcmp(o->res.etf, ok, sizeof ok) != 0) {
                why(c, "expected the forged answer ok, found without a wake-up, got %s", o->r < 0 ? o->err.msg :
                    "another answer");
                return EXIT_FAIL;
        }
        why(c, "the reply was found without a wake-up, within the %llu ms futex slice",
            (unsigned long long) (NK_SHM_SLICE_NS / 1000000));
        return EXIT_PASS;
}

static int check_status(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r < 0 || !o->decoded || o->nsteps == 0) {
                why(c, "could not read /proc/self/status: %s", o->r < 0 ? o->err.msg : "no steps");
                return EXIT_FAIL;
        }
        unsigned seen = 0;
        for (unsigned k = 0; k < o->nsteps; k++) {
                const char *line = o->steps[k].what;
                const char *v = strchr(line, ':');
                if (!v)
                        continue;
                v += strspn(v + 1, " \t") + 1;
                bool bad;
                if (strncmp(line, "Uid:", 4) == 0 || strncmp(line, "Gid:", 4) == 0)
                        bad = strtoul(v, NULL, 10) == 0;        /* real id */
                else if (strncmp(line, "Cap", 3) == 0)
                        bad = strtoull(v, NULL, 16) != 0;
                else if (strncmp(line, "NoNewPrivs:", 11) == 0)
                        bad = strcmp(v, "1") != 0;
                else if (strncmp(line, "Seccomp:", 8) == 0)
                        bad = strcmp(v, "2") != 0;
                else
                        continue;
                if (bad) {
                        why(c, "SANDBOX BUG: the host runs with %s", line);
                        return EXIT_FAIL;
                }
                seen++;
        }
        if (seen != 9) {
                why(c, "expected 9 lines of /proc/self/status (ids, capability sets, NoNewPrivs, Seccomp), got %u",
                    seen);
                return EXIT_FAIL;
        }
        why(c, "unprivileged ids, no capabilities in any set, no_new_privs, seccomp filter");
        return EXIT_PASS;
}

#define STDIN_SECRET "runtime-stdin-secret\n"
#define LOG_LINE "runtime log line\n"

/* The attacker's host starts with fd 0 a pipe holding a secret and fd 2 a
 * log file of the runtime's (opened without O_APPEND, as `2>file` does). */
static int stdio_redirect(struct ctx *c)
{
        int p[2];
        snprintf(c->log_path, sizeof c->log_path, "/tmp/nk_hostile_stderr.XXXXXX");
        int log = mkostemp(c->log_path, O_CLOEXEC);
        if (log < 0)
                return -errno;
        if (write(log, LOG_LINE, strlen(LOG_LINE)) != (ssize_t) strlen(LOG_LINE) || pipe2(p, O_CLOEXEC) < 0 ||
            write(p[1], STDIN_SECRET, strlen(STDIN_SECRET)) != (ssize_t) strlen(STDIN_SECRET))
                return -EIO;
        close(p[1]);
        fflush(stderr);
        c->saved_stdin = dup(0);
        c->saved_stderr = dup(2);
        if (c->saved_stdin < 0 || c->saved_stderr < 0 || dup2(p[0], 0) < 0 || dup2(log, 2) < 0)
                return -errno;
        close(p[0]);
        close(log);
        return 0;
}

static void stdio_restore(struct ctx *c)
{
        fflush(stderr);
        (void) dup2(c->saved_stdin, 0);
        (void) dup2(c->saved_stderr, 2);
        close(c->saved_stdin);
        close(c->saved_stderr);
}

/* Whatever the host's fds 0 and 2 are, the NIF neither read the runtime's
 * stdin nor wrote over the runtime's log. */
static int check_stdio(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        char buf[256] = "";
        int fd = open(c->log_path, O_RDONLY | O_CLOEXEC);
        ssize_t k = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (fd >= 0)
                close(fd);
        (void) unlink(c->log_path);
        if (k < 0) {
                why(c, "cannot read back the log file: %s", strerror(errno));
                return EXIT_FAIL;
        }
        buf[k] = '\0';
        bool overwritten = strncmp(buf, LOG_LINE, strlen(LOG_LINE)) != 0;
        if (o->r < 0 || !o->decoded || o->nsteps != 2) {
                why(c, "%sexpected two steps, got %s",
                    overwritten ? "SANDBOX BUG: the runtime's stderr log file was overwritten; " : "",
                    o->r < 0 ? o->err.msg : "another answer");
                return EXIT_FAIL;
        }
        bool read_secret = strcmp(o->steps[0].outcome, "ok") == 0;
        if (overwritten || read_secret || strcmp(o->steps[1].outcome, "ok") == 0) {
                why(c, "SANDBOX BUG: %s%s%s", read_secret ? "the NIF read the runtime's stdin" : "",
                    read_secret && overwritten ? "; " : "",
                    overwritten ? "the NIF wrote over the start of the runtime's stderr log file" :
                    !read_secret ? "the NIF wrote to the runtime's stderr at an offset" : "");
                return EXIT_FAIL;
        }
        why(c, "stdin: %s; stderr: %s; the runtime's log is intact", o->steps[0].outcome, o->steps[1].outcome);
        return EXIT_PASS;
}

/* Only the sandbox's own processes are visible: nifkit-host, and bwrap's
 * init when bwrap runs it as pid 2. */
static int check_procs(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r < 0 || !o->decoded || o->nsteps == 0) {
                why(c, "could not list /proc: %s", o->r < 0 ? o->err.msg : "no steps");
                return EXIT_FAIL;
        }
        bool self = false;
        for (unsigned k = 0; k < o->nsteps; k++) {
                const char *comm = strchr(o->steps[k].what + 4, ' ');
                comm = comm ? comm + 1 : "";
                if (strcmp(comm, "nifkit-host") == 0)
                        self = true;
                else if (!(strcmp(comm, "bwrap") == 0 && strcmp(c->launcher, "bwrap") == 0)) {
                        why(c, "SANDBOX BUG: the host sees a process outside its sandbox: %s", o->steps[k].what);
                        return EXIT_FAIL;
                }
        }
        if (!self || o->nsteps > 2) {
                why(c, "expected the host alone (and bwrap's init) in /proc, saw %u processes", o->nsteps);
                return EXIT_FAIL;
        }
        why(c, "/proc shows %u process(es), all the sandbox's own", o->nsteps);
        return EXIT_PASS;
}

/* The listener never saw a connection, whatever stopped the attempt: the
 * broker's refusal, seccomp's trap on socket, or a network namespace with
 * nothing on the port. */
static int check_connect(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        int fd = accept4(c->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
                close(fd);
                why(c, "SANDBOX BUG: the listener on 127.0.0.1:%u outside the sandbox accepted a connection",
                    c->port);
                return EXIT_FAIL;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
                why(c, "accept on the listener: %s", strerror(errno));
                return EXIT_FAIL;
        }
        if (o->r < 0 && a->syscall)
                return check_seccomp(c, a, o);
        int v = check_errnos(c, a, o);
        if (v == EXIT_PASS)
                why(c, "refused (%s); the listener saw nothing", o->steps[o->nsteps - 1].outcome);
        return v;
}

/* Two hosts from one template, seen from outside: no namespace in common
 * with each other or with the template, their own cgroup leaves (where
 * there are leaves), no shared writable mapping, no open file description
 * in common. What the host tried from inside (signals and /proc by pid) is
 * check_errnos's. */
static int check_siblings(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        int v = check_errnos(c, a, o);
        if (v != EXIT_PASS)
                return v;
        int h[2] = { host_process(c->attacker_pid, 0), host_process(c->bystander_pid, 0) };
        int t = template_of(h[1]);
        if (h[0] < 0 || h[1] < 0 || t < 0 || template_of(h[0]) != t) {
                why(c, "expected both hosts (pids %d, %d) to be started by one nifkit-template, found %d and %d",
                    c->attacker_pid, c->bystander_pid, template_of(h[0]), t);
                return EXIT_FAIL;
        }
        static const char *const ns[] = { "user", "mnt", "pid", "net", "ipc", "uts", "cgroup" };
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                char path[64], lnk[3][64];
                const int who[3] = { h[0], h[1], t };
                for (int k = 0; k < 3; k++) {
                        snprintf(path, sizeof path, "/proc/%d/ns/%s", who[k], ns[i]);
                        ssize_t n = readlink(path, lnk[k], sizeof lnk[k] - 1);
                        if (n < 0) {
                                why(c, "cannot read %s: %s", path, strerror(errno));
                                return errno == EACCES || errno == EPERM ? EXIT_SKIP : EXIT_FAIL;
                        }
                        lnk[k][n] = '\0';
                }
                if (strcmp(lnk[0], lnk[1]) == 0 || strcmp(lnk[0], lnk[2]) == 0 || strcmp(lnk[1], lnk[2]) == 0) {
                        why(c, "SANDBOX BUG: %s namespaces shared: attacker %s, bystander %s, template %s", ns[i],
                            lnk[0], lnk[1], lnk[2]);
                        return EXIT_FAIL;
                }
        }
        if (c->cgroups) {
                char cg[2][1024];
                for (int k = 0; k < 2; k++) {
                        char path[64];
                        snprintf(path, sizeof path, "/proc/%d/cgroup", h[k]);
                        if (!read_small(path, cg[k], sizeof cg[k])) {
                                why(c, "cannot read %s: %s", path, strerror(errno));
                                return EXIT_FAIL;
                        }
                }
                if (strcmp(cg[0], cg[1]) == 0) {
                        why(c, "SANDBOX BUG: both hosts in one cgroup: %s", cg[0]);
                        return EXIT_FAIL;
                }
        }

        /* Writable shared mappings, by device and inode. */
        unsigned long long maps[2][64][2];
        unsigned nmaps[2] = { 0, 0 };
        for (int k = 0; k < 2; k++) {
                char path[64], line[1024];
                snprintf(path, sizeof path, "/proc/%d/maps", h[k]);
                FILE *f = fopen(path, "re");
                if (!f) {
                        why(c, "cannot read %s: %s", path, strerror(errno));
                        return EXIT_FAIL;
                }
                while (fgets(line, sizeof line, f)) {
                        char perms[8];
                        unsigned maj, min;
                        unsigned long long ino;
                        if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu", perms, &maj, &min, &ino) != 4)
                                continue;
                        if (perms[1] == 'w' && perms[3] == 's' && nmaps[k] < 64) {
                                maps[k][nmaps[k]][0] = (unsigned long long) maj << 32 | min;
                                maps[k][nmaps[k]++][1] = ino;
                        }
                }
                fclose(f);
        }
        for (unsigned i = 0; i < nmaps[0]; i++)
                for (unsigned j = 0; j < nmaps[1]; j++)
                        if (maps[0][i][0] == maps[1][j][0] && maps[0][i][1] == maps[1][j][1]) {
                                why(c, "SANDBOX BUG: both hosts map one writable shared object (inode %llu)",
                                    maps[0][i][1]);
                                return EXIT_FAIL;
                        }

        /* Open file descriptions, by the kernel's own comparison. */
        int fds[2][256];
        unsigned nfds[2] = { 0, 0 };
        for (int k = 0; k < 2; k++) {
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/fd", h[k]);
                DIR *d = opendir(path);
                if (!d) {
                        why(c, "cannot list %s: %s", path, strerror(errno));
                        return EXIT_FAIL;
                }
                for (struct dirent *de; (de = readdir(d)) && nfds[k] < 256;)
                        if (de->d_name[0] != '.')
                                fds[k][nfds[k]++] = atoi(de->d_name);
                closedir(d);
        }
        /* The comparison itself works: a descriptor is its own file. */
        if (nfds[0] == 0 || syscall(SYS_kcmp, h[0], h[0], KCMP_FILE, fds[0][0], fds[0][0]) != 0) {
                why(c, "kcmp cannot compare the hosts' files: %s", nfds[0] ? strerror(errno) : "no fds listed");
                return nfds[0] && (errno == EPERM || errno == ENOSYS) ? EXIT_SKIP : EXIT_FAIL;
        }
        for (unsigned i = 0; i < nfds[0]; i++)
                for (unsigned j = 0; j < nfds[1]; j++) {
                        long r = syscall(SYS_kcmp, h[0], h[1], KCMP_FILE, fds[0][i], fds[1][j]);
                        if (r == 0) {
                                why(c, "SANDBOX BUG: the hosts share an open file: attacker's fd %d is the "
                                    "bystander's fd %d", fds[0][i], fds[1][j]);
                                return EXIT_FAIL;
                        }
                        if (r < 0 && errno != EBADF) {
                                why(c, "kcmp cannot compare the hosts' files: %s", strerror(errno));
                                return errno == EPERM || errno == ENOSYS ? EXIT_SKIP : EXIT_FAIL;
                        }
                }
        why(c, "every signal and /proc look-up refused (%s); the two hosts from template %d share no namespace, "
            "%sno writable mapping (%u and %u shared-writable), no open file (%u and %u fds)", a->errnos, t,
            c->cgroups ? "no cgroup, " : "", nmaps[0], nmaps[1], nfds[0], nfds[1]);
        return EXIT_PASS;
}

static int check_write_outside(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        int v = check_errnos(c, a, o);
        for (unsigned i = 0; i < c->nprobes; i++) {
                struct stat st;
                if (lstat(c->probes[i], &st) == 0) {
                        (void) unlink(c->probes[i]);
                        why(c, "SANDBOX BUG: %s was created outside the sandbox", c->probes[i]);
                        return EXIT_FAIL;
                }
        }
        return v;
}

/* The tmpfs limit stops the write near tmp_mb; or, with the seccomp filter
 * as it is, the host cannot create a file at all. Either way nothing leaves
 * the host's own /tmp: it is a tmpfs in the host's mount namespace, so the
 * runtime's disks cannot fill by construction. */
static int check_fill_tmp(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r < 0 || !o->decoded || o->nsteps != 1) {
                why(c, "expected one step, got %s", o->r < 0 ? o->err.msg : "another answer");
                return EXIT_FAIL;
        }
        const struct step *s = &o->steps[0];
        unsigned long long limit = (unsigned long long) c->policy.limits.tmp_mb * MIB;
        if (strncmp(s->what, "open(", 5) == 0) {
                if (strcmp(s->outcome, "eacces") != 0) {
                        why(c, "creating a file in /tmp failed with %s, expected eacces (seccomp) or success",
                            s->outcome);
                        return EXIT_FAIL;
                }
                why(c, "cannot even create a file in /tmp: eacces (seccomp refuses opens that create or "
                       "write, so the %u MiB tmpfs limit is not reached)", c->policy.limits.tmp_mb);
                return EXIT_PASS;
        }
        if (strcmp(s->outcome, "enospc") != 0 && strcmp(s->outcome, "efbig") != 0) {
                why(c, "writing /tmp stopped with %s after %lld bytes, expected enospc", s->outcome, s->n);
                return EXIT_FAIL;
        }
        if ((unsigned long long) s->n > limit || (unsigned long long) s->n < limit / 2) {
                why(c, "the write stopped at %lld bytes, not near the %u MiB tmpfs", s->n, c->policy.limits.tmp_mb);
                return EXIT_FAIL;
        }
        why(c, "/tmp full at %lld bytes (%s; tmp_mb %u)", s->n, s->outcome, c->policy.limits.tmp_mb);
        return EXIT_PASS;
}

static int check_fds(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r < 0 || !o->decoded || o->nsteps != 1) {
                why(c, "expected one step, got %s", o->r < 0 ? o->err.msg : "another answer");
                return EXIT_FAIL;
        }
        const struct step *s = &o->steps[0];
        long long max = c->policy.limits.open_files;
        /* The host holds a few descriptors of its own (stdio, channel,
         * epoll and eventfds); it cannot get past the limit. */
        if (strcmp(s->outcome, "emfile") != 0 || s->n > max || s->n < max - 16) {
                why(c, "expected emfile after at most %lld (and at least %lld) opens, got %s after %lld", max,
                    max - 16, s->outcome, s->n);
                return EXIT_FAIL;
        }
        why(c, "emfile after %lld opens (open_files %lld)", s->n, max);
        return EXIT_PASS;
}

/* A death by memory is "oom" whichever limit stood: the cgroup's OOM killer,
 * or RLIMIT_AS, where the host's allocator fails and the host says so. */
static int check_alloc_terms(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        const char *which = c->cgroups & NK_CG_MEMORY ? "cgroup" : "RLIMIT_AS";
        if (o->r >= 0 || o->err.kind != NK_ERR_HOST_DIED || strcmp(o->err.reason, "oom") != 0 ||
            !strstr(o->err.msg, which)) {
                why(c, "expected death with reason \"oom\" naming %s, got %s (%s)", which,
                    o->r >= 0 ? "an answer" : o->err.msg, o->r >= 0 ? "" : o->err.reason);
                return EXIT_FAIL;
        }
        why(c, "killed: reason \"oom\" (%s)", o->err.msg);
        return EXIT_PASS;
}

static int check_alloc(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (c->cgroups & NK_CG_MEMORY) {
                if (o->r >= 0 || o->err.kind != NK_ERR_HOST_DIED || strcmp(o->err.reason, "oom") != 0) {
                        why(c, "expected death with reason \"oom\", got %s", o->r >= 0 ? "an answer" : o->err.msg);
                        return EXIT_FAIL;
                }
                why(c, "killed: reason \"oom\" (memory.max %llu MiB)",
                    (unsigned long long) c->policy.limits.memory_mb);
                return EXIT_PASS;
        }
        /* Without the memory controller, best-effort falls back to
         * RLIMIT_AS: the fallback must hold, but the limit reason cannot
         * be checked here. */
        unsigned long long cap = (c->policy.limits.memory_mb + AS_ALLOWANCE_MIB) * MIB;
        if (o->r < 0 || !o->decoded || o->nsteps != 1 || strcmp(o->steps[0].outcome, "enomem") != 0 ||
            (unsigned long long) o->steps[0].n > cap) {
                why(c, "RLIMIT_AS fallback did not hold: expected enomem below %llu MiB, got %s",
                    cap / MIB, o->r < 0 ? o->err.msg : o->decoded && o->nsteps ? o->steps[0].what : "no steps");
                return EXIT_FAIL;
        }
        why(c, "cgroup v2 memory controller not available here: memory.max cannot be enforced "
               "(RLIMIT_AS fallback checked: enomem after %lld MiB)", o->steps[0].n / (long long) MIB);
        return EXIT_SKIP;
}

static int check_pids(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r >= 0 || o->err.kind != NK_ERR_HOST_DIED || strcmp(o->err.reason, "pids_limit") != 0) {
                why(c, "expected death with reason \"pids_limit\", got %s", o->r >= 0 ? "an answer" : o->err.msg);
                return EXIT_FAIL;
        }
        why(c, "killed: reason \"pids_limit\" (pids.max %u)", c->policy.limits.pids);
        return EXIT_PASS;
}

/* The runtime refuses a result above max_result_bytes without taking it
 * in; the host is killed for it. */
static int check_result_size(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r >= 0) {
                why(c, "max_result_bytes is not enforced: a %zu-byte result (the policy allows %llu) reached the "
                       "runtime", o->res.len, (unsigned long long) c->policy.limits.max_result_bytes);
                return EXIT_FAIL;
        }
        if (o->err.kind != NK_ERR_PROTOCOL) {
                why(c, "expected NK_ERR_PROTOCOL (a result above max_result_bytes), got %s: %s",
                    nk_error_kind_name(o->err.kind), o->err.msg);
                return EXIT_FAIL;
        }
        why(c, "refused: %s", o->err.msg);
        return EXIT_PASS;
}

/* Each call returns fresh atoms. They threaten only BEAM's atom table,
 * which this driver does not have: the proxy NIF's budget stops them there,
 * and the compat suite's proxy-atom_budget test proves it in a real VM. */
static int check_atoms(struct ctx *c, const struct attack *a, const struct outcome *o)
{
        if (o->r < 0) {
                if (strstr(o->err.msg, "atom")) {
                        why(c, "refused past the atom budget: %s", o->err.msg);
                        return EXIT_PASS;
                }
                why(c, "the host failed for another reason: %s", o->err.msg);
                return EXIT_FAIL;
        }
        const char *b = (const char *) o->res.etf;
        int i = 0, version, arity;
        if (o->res.exception || ei_decode_version(b, &i, &version) < 0 || ei_decode_list_header(b, &i, &arity) < 0) {
                why(c, "make_atoms did not return a list");
                return EXIT_FAIL;
        }
        why(c, "atoms threaten only BEAM's atom table, guarded by the proxy NIF's budget (tested in a real VM "
               "by compat/proxy-atom_budget); %d new atoms crossed to this driver (max_new_atoms %u)",
            arity, c->policy.limits.max_new_atoms);
        return EXIT_SKIP;
}

/* ---- arguments ----------------------------------------------------------------- */

static void encode_paths(ei_x_buff *x, char paths[][4096], unsigned n)
{
        ei_x_encode_list_header(x, n);
        for (unsigned i = 0; i < n; i++)
                ei_x_encode_binary(x, paths[i], (long) strlen(paths[i]));
        ei_x_encode_empty_list(x);
}

static int args_runtime(struct ctx *c, ei_x_buff *x)
{
        static char paths[5][4096];
        pid_t me = getpid();
        snprintf(paths[0], sizeof paths[0], "/proc/%d/environ", (int) me);
        snprintf(paths[1], sizeof paths[1], "/proc/%d/cmdline", (int) me);
        ssize_t k = readlink("/proc/self/exe", paths[2], sizeof paths[2] - 1);
        if (k < 0)
                return -errno;
        paths[2][k] = '\0';
        snprintf(paths[3], sizeof paths[3], "%s", c->policy_path);
        snprintf(paths[4], sizeof paths[4], "%s/meson-logs/meson-log.txt", c->build_root);
        encode_paths(x, paths, 5);
        return 0;
}

#define SECRET_ENV "NK_HOSTILE_SECRET"

static int args_env(struct ctx *c, ei_x_buff *x)
{
        /* A secret of the runtime's, as a VM's environment may hold. */
        if (setenv(SECRET_ENV, "runtime-secret-do-not-leak", 1) < 0)
                return -errno;
        ei_x_encode_list_header(x, 1);
        ei_x_encode_binary(x, SECRET_ENV, (long) strlen(SECRET_ENV));
        ei_x_encode_empty_list(x);
        return 0;
}

static int args_write(struct ctx *c, ei_x_buff *x)
{
        char dir[2048];
        snprintf(dir, sizeof dir, "%s", c->nif);
        char *slash = strrchr(dir, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        const char *name = "nk_hostile_probe";
        c->nprobes = 0;
        snprintf(c->probes[c->nprobes++], sizeof c->probes[0], "/%s", name);
        snprintf(c->probes[c->nprobes++], sizeof c->probes[0], "/usr/%s", name);
        snprintf(c->probes[c->nprobes++], sizeof c->probes[0], "/etc/%s", name);
        snprintf(c->probes[c->nprobes++], sizeof c->probes[0], "%s/%s", dir, name);
        snprintf(c->probes[c->nprobes++], sizeof c->probes[0], "%s/%s", c->build_root, name);
        for (unsigned i = 0; i < c->nprobes; i++)
                (void) unlink(c->probes[i]);
        encode_paths(x, c->probes, c->nprobes);
        return 0;
}

static int args_connect(struct ctx *c, ei_x_buff *x)
{
        c->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->listener < 0)
                return -errno;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        if (bind(c->listener, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(c->listener, 16) < 0 ||
            getsockname(c->listener, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        c->port = ntohs(sa.sin_port);
        printf("  listener: 127.0.0.1:%u, outside the sandbox\n", c->port);
        ei_x_encode_long(x, c->port);
        return 0;
}

/* The pids outside the attacker that it must not reach: the bystander's
 * host (and bwrap's monitor above it), the template, this process. */
static int args_siblings(struct ctx *c, ei_x_buff *x)
{
        int pids[4], n = 0;
        int host = host_process(c->bystander_pid, 0);
        if (host < 0)
                return -ESRCH;
        pids[n++] = host;
        if (c->bystander_pid != host)
                pids[n++] = c->bystander_pid;
        int t = template_of(host);
        if (t > 0)
                pids[n++] = t;
        pids[n++] = getpid();
        ei_x_encode_list_header(x, n);
        for (int i = 0; i < n; i++)
                ei_x_encode_long(x, pids[i]);
        ei_x_encode_empty_list(x);
        printf("  targets: the bystander host %d%s, the template %d, the runtime %d\n", host,
               c->bystander_pid != host ? " under bwrap's monitor" : "", t, (int) getpid());
        return 0;
}

static int args_huge(struct ctx *c, ei_x_buff *x)
{
        ei_x_encode_ulonglong(x, c->policy.limits.max_result_bytes * 4);
        return 0;
}

/* [Slots, SlotBytes]: the policy's region layout, and for shm_flip_length
 * the size of its real reply. */
static int args_shm(struct ctx *c, ei_x_buff *x)
{
        ei_x_encode_list_header(x, 3);
        ei_x_encode_long(x, (long) c->policy.workers);
        ei_x_encode_ulonglong(x, ((unsigned long long) c->policy.limits.shm_slot_kb * 1024 + 4095) / 4096 * 4096);
        ei_x_encode_long(x, FLIP_BYTES);
        ei_x_encode_empty_list(x);
        return 0;
}

static int args_atoms(struct ctx *c, ei_x_buff *x)
{
        /* Twenty times the suite's budget in one call. */
        ei_x_encode_long(x, (long) c->policy.limits.max_new_atoms * 20);
        return 0;
}

/* ---- the attacks ------------------------------------------------------------------ */

#define SECCOMP(n, call, what) \
        { .name = n, .tried = what, .stops = "seccomp traps " call "(2)", .check = check_seccomp, \
          .syscall = call }

static const struct attack attacks[] = {
        { .name = "read_shadow", .tried = "read /etc/shadow and /etc/gshadow",
          .stops = "minimal root: no /etc", .check = check_errnos, .errnos = "enoent eacces" },
        { .name = "read_runtime",
          .tried = "read the runtime's /proc/PID/environ and cmdline, its binary, its policy, its build log, "
                   "/proc/<getppid()>/environ",
          .stops = "pid namespace, minimal root", .args = args_runtime, .check = check_errnos,
          .errnos = "enoent eacces" },
        { .name = "read_relative",
          .tried = "read etc/passwd, ../../../../etc/passwd and ../../../../root/.profile relative to the "
                   "working directory, and /etc/passwd",
          .stops = "the working directory is inside the new root; old root detached", .check = check_errnos,
          .errnos = "enoent eacces" },
        { .name = "read_env", .tried = "find a variable of the runtime's environment in the host's",
          .stops = "the launcher passes the host no environment of the runtime's", .args = args_env,
          .check = check_errnos, .errnos = "enoent" },
        { .name = "status_privileges", .tried = "read its own ids, capabilities, NoNewPrivs, Seccomp",
          .stops = "user namespace ids, capabilities dropped, no_new_privs, seccomp",
          .check = check_status },
        { .name = "stdio",
          .tried = "read the runtime's stdin (a pipe with a secret); pwrite over its stderr (a log file)",
          .stops = "the host's stdin is not the runtime's; its stderr cannot be written at an offset",
          .check = check_stdio, .stdio = true },
        { .name = "write_outside", .tried = "create files in /, /usr, /etc, the NIF's directory, the build dir",
          .stops = "the broker: no such file outside every grant (ENOENT); seccomp refuses write opens "
                   "(EACCES); the root is read-only", .args = args_write,
          .check = check_write_outside, .errnos = "enoent eacces erofs" },
        { .name = "dev_mem", .tried = "read /dev/mem, /dev/kmem, /dev/port, /dev/kmsg",
          .stops = "tiny /dev (null, zero, random, urandom)", .check = check_errnos,
          .errnos = "enoent" },
        { .name = "proc_sys_write",
          .tried = "write /proc/sys/kernel/hostname, vm/drop_caches, kernel/core_pattern, /proc/sysrq-trigger",
          .stops = "the broker: no such file outside every grant (ENOENT); seccomp refuses write opens (EACCES)",
          .check = check_errnos, .errnos = "enoent eacces erofs" },
        { .name = "list_procs", .tried = "list /proc for the runtime's processes",
          .stops = "pid namespace, its own /proc", .check = check_procs },
        SECCOMP("kill_parent", "kill", "kill(getppid(), SIGKILL)"),
        SECCOMP("kill_all", "kill", "kill(-1, SIGKILL)"),
        { .name = "signal_siblings", .tried = "tgkill, tkill and /proc/PID of the host beside it from the same "
          "template, the template and the runtime; then, from outside, compare the two hosts",
          .stops = "own pid namespace per host (seccomp allows tgkill); own namespaces, memory and files",
          .args = args_siblings, .check = check_siblings, .errnos = "esrch enoent" },
        SECCOMP("ptrace_parent", "ptrace", "ptrace(PTRACE_ATTACH, getppid())"),
        { .name = "connect_tcp", .tried = "connect through libc to a listener on 127.0.0.1 outside the sandbox",
          .stops = "the broker refuses what the policy does not grant (EACCES)", .args = args_connect,
          .check = check_connect, .errnos = "eacces" },
        { .name = "connect_tcp_raw",
          .tried = "connect with the system calls themselves to a listener on 127.0.0.1 outside",
          .stops = "seccomp traps socket(2); net namespace with loopback only", .args = args_connect,
          .check = check_connect, .syscall = "socket", .errnos = "econnrefused enetunreach" },
        SECCOMP("mount_tmpfs", "mount", "mount a tmpfs on /tmp"),
        SECCOMP("mount_bind", "mount", "bind-mount / on /tmp"),
        SECCOMP("unshare_user", "unshare", "unshare(CLONE_NEWUSER)"),
        SECCOMP("unshare_mount", "unshare", "unshare(CLONE_NEWNS)"),
        { .name = "setns", .fn = "setns_handles", .tried = "setns on each /proc/self/ns/* handle",
          .stops = "seccomp traps setns(2)", .check = check_seccomp, .syscall = "setns" },
        SECCOMP("clone_newuser", "clone", "clone(CLONE_NEWUSER) for a new user namespace"),
        SECCOMP("setuid_root", "setuid", "setuid(0)"),
        SECCOMP("capset_raise", "capset", "capset raising every capability"),
        SECCOMP("ambient_raise", "prctl", "prctl(PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN)"),
        SECCOMP("raise_nofile", "prlimit64", "setrlimit(RLIMIT_NOFILE) back up to 2^20"),
        { .name = "forge_channel", .tried = "write a malformed datagram on the host's channel to the runtime",
          .stops = "the runtime checks every message: host killed, reason \"protocol\"",
          .check = check_protocol },
        SECCOMP("tiocsti", "ioctl", "ioctl(stderr, TIOCSTI) to type into the runtime's terminal"),
        SECCOMP("keyctl_read", "keyctl", "keyctl(KEYCTL_READ) of the user keyring"),
        SECCOMP("perf_event", "perf_event_open", "perf_event_open"),
        SECCOMP("userfaultfd", "userfaultfd", "userfaultfd"),
        SECCOMP("io_uring", "io_uring_setup", "io_uring_setup"),
        SECCOMP("bpf_load", "bpf", "bpf(BPF_PROG_LOAD)"),
        SECCOMP("fork_bomb", "clone", "fork() without end"),
        { .name = "thread_bomb", .tried = "threads without end, then crash",
          .stops = "cgroup pids.max; reason \"pids_limit\"", .check = check_pids, .needs = NK_CG_PIDS,
          .timeout_ms = 60000 },
        { .name = "alloc_unbounded", .tried = "malloc and touch 1 MiB pieces without end",
          .stops = "cgroup memory.max, reason \"oom\" (best-effort fallback: RLIMIT_AS)",
          .check = check_alloc, .timeout_ms = 60000 },
        { .name = "alloc_terms", .tried = "make 1 MiB binaries in a list without end, through enif_make_new_binary",
          .stops = "cgroup memory.max (OOM killer) or RLIMIT_AS (the host's allocator fails): reason \"oom\" either "
                   "way, the message says which", .check = check_alloc_terms, .timeout_ms = 60000 },
        { .name = "spin", .tried = "spin forever in a call",
          .stops = "call timeout: host killed, reason \"timeout\"", .check = check_timeout },
        { .name = "fill_tmp", .tried = "write /tmp until refused",
          .stops = "seccomp refuses creating files (EACCES); size-limited tmpfs /tmp (ENOSPC)",
          .check = check_fill_tmp },
        { .name = "leak_fds", .tried = "duplicate a descriptor until refused",
          .stops = "RLIMIT_NOFILE = open_files (EMFILE)", .check = check_fds },
        { .name = "huge_result", .tried = "return a binary of 4 x max_result_bytes",
          .stops = "the runtime refuses results above the policy's max_result_bytes", .args = args_huge,
          .check = check_result_size, .raw = true, .timeout_ms = 60000 },
        { .name = "shm_huge_length", .tried = "publish a reply in its shared-memory slot claiming 2^62 bytes",
          .stops = "the runtime checks a frame's header, copied once, before anything is allocated: host killed, "
                   "reason \"protocol\"", .args = args_shm, .check = check_protocol },
        { .name = "shm_bad_chunk", .tried = "publish a 64-byte reply whose chunk claims 2^40 bytes",
          .stops = "every chunk is bounded by the slot's data area and its message: reason \"protocol\"",
          .args = args_shm, .check = check_protocol },
        { .name = "shm_scribble", .tried = "write random bytes over its whole region, then publish",
          .stops = "the frame is checked before use: reason \"protocol\"", .args = args_shm,
          .check = check_protocol },
        { .name = "shm_flip_length",
          .tried = "flip a real reply's lengths and offset between the truth and lies while the runtime reads it",
          .stops = "the header is read once into private memory and only that copy is used", .args = args_shm,
          .check = check_flip, .raw = true },
        { .name = "shm_half_reply", .tried = "send the first chunk of a two-chunk reply, then never the second",
          .stops = "the call timeout: host killed, reason \"timeout\"", .args = args_shm,
          .check = check_timeout },
        { .name = "shm_no_wake", .tried = "publish a valid reply 300 ms late without waking the futex",
          .stops = "no futex wait lasts longer than a slice: the reply is found anyway", .args = args_shm,
          .check = check_no_wake, .raw = true },
        { .name = "make_atoms", .tried = "return 20 x max_new_atoms fresh atoms",
          .stops = "the proxy NIF's atom budget (compat/proxy-atom_budget)", .args = args_atoms, .check = check_atoms,
          .raw = true, .timeout_ms = 60000 },
};

/* ---- main ------------------------------------------------------------------------- */

static const struct attack *find_attack(const char *name)
{
        for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++)
                if (strcmp(attacks[i].name, name) == 0)
                        return &attacks[i];
        return NULL;
}

/* Whether bwrap can create its namespaces here, as the launcher will run
 * it (as the sandbox's outside id when we are root); why not in why. */
static bool bwrap_works(char *why_not, size_t size)
{
        const char *probe =
                "command -v bwrap >/dev/null 2>&1 || { echo 'bubblewrap (bwrap) is not installed'; exit 1; }; "
                "p='bwrap --unshare-all --unshare-user --ro-bind / / true'; "
                "if [ \"$(id -u)\" = 0 ] && command -v setpriv >/dev/null 2>&1; then "
                "p=\"setpriv --reuid ${NIFKIT_SANDBOX_UID:-65534} --regid ${NIFKIT_SANDBOX_GID:-65534} "
                "--clear-groups $p\"; fi; "
                "out=$($p 2>&1) || { echo \"bwrap cannot create its namespaces here: $out\"; exit 1; }";
        FILE *f = popen(probe, "r");
        if (!f) {
                snprintf(why_not, size, "cannot run the bwrap probe: %s", strerror(errno));
                return false;
        }
        size_t n = fread(why_not, 1, size - 1, f);
        why_not[n] = '\0';
        why_not[strcspn(why_not, "\n")] = '\0';
        int status = pclose(f);
        return status == 0;
}

/* The suite's policy with the launcher under test; 0, EXIT_SKIP or EXIT_FAIL. */
static int setup(struct ctx *c)
{
        c->launcher = getenv("NIFKIT_TEST_LAUNCHER");
        if (!c->launcher || !*c->launcher)
                c->launcher = "native";
        c->nif = need_env("NK_HOSTILE_NIF");
        c->echo = need_env("NK_HOSTILE_ECHO");
        c->policy_path = need_env("NK_HOSTILE_POLICY");
        c->build_root = need_env("NK_HOSTILE_BUILD_ROOT");
        c->listener = -1;

        struct nk_policy *p;
        struct nk_policy_error perr;
        if (nk_policy_load(c->policy_path, &p, &perr) < 0) {
                printf("  FAIL: %s\n", perr.msg);
                return EXIT_FAIL;
        }
        c->policy = *p;         /* p stays allocated: its strings are shared */
        if (strcmp(c->launcher, "native") == 0)
                c->policy.launcher = NK_POLICY_LAUNCHER_NATIVE;
        else if (strcmp(c->launcher, "bwrap") == 0) {
                c->policy.launcher = NK_POLICY_LAUNCHER_BWRAP;
                char why_not[512];
                if (!bwrap_works(why_not, sizeof why_not)) {
                        printf("  SKIP: %s\n", why_not);
                        return EXIT_SKIP;
                }
        } else {
                printf("  FAIL: NIFKIT_TEST_LAUNCHER=%s: expected native or bwrap\n", c->launcher);
                return EXIT_FAIL;
        }

        struct nk_cgroup_info info;
        struct nk_sandbox_error serr = { 0 };
        /* The subtree libnifkit puts hosts under (runtime/host.c): the
         * driver's own cgroup may hold processes and give no controllers. */
        const char *cg_root = getenv("NIFKIT_CGROUP_ROOT");
        if (nk_cgroup_detect(cg_root && cg_root[0] ? cg_root : NULL, &info, &serr) == 0) {
                c->cgroups = info.available;
                char names[64];
                snprintf(c->cgroup_note, sizeof c->cgroup_note, "controllers delegated: %s",
                         info.available ? nk_cgroup_mask_name(info.available, names, sizeof names) : "none");
        } else
                snprintf(c->cgroup_note, sizeof c->cgroup_note, "no cgroup v2 controllers: %s", serr.msg);
        return 0;
}

static int run(struct ctx *c, const struct attack *a)
{
        printf("  tried: %s\n  stopped by: %s\n  cgroup: %s\n", a->tried, a->stops, c->cgroup_note);
        if (a->needs & ~c->cgroups) {
                char names[64];
                printf("  SKIP: cgroup v2 %s controller not available here: its limit cannot be enforced "
                       "(the qemu VM suite runs this test with every controller)\n",
                       nk_cgroup_mask_name(a->needs & ~c->cgroups, names, sizeof names));
                return EXIT_SKIP;
        }

        nk_host *bystander = start(c, c->echo, "bystander", 0);
        if (!bystander_answers(bystander, "before")) {
                printf("  FAIL: the bystander did not answer before the attack\n");
                return EXIT_FAIL;
        }
        if (a->stdio) {
                int r = stdio_redirect(c);
                if (r < 0) {
                        printf("  FAIL: cannot prepare stdin and stderr: %s\n", strerror(-r));
                        return EXIT_FAIL;
                }
        }
        nk_host *attacker = start(c, c->nif, "attacker", a->timeout_ms);
        c->attacker_pid = nk_host_pid(attacker);
        c->bystander_pid = nk_host_pid(bystander);
        if (a->stdio)
                stdio_restore(c);
        const char *fn = a->fn ? a->fn : a->name;
        int idx = nk_host_find_function(attacker, fn, 1);
        if (idx < 0) {
                printf("  FAIL: nk_hostile has no function %s/1\n", fn);
                return EXIT_FAIL;
        }

        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        int r = a->args ? a->args(c, &x) : ei_x_encode_empty_list(&x);
        if (r < 0) {
                printf("  FAIL: preparing the arguments: %s\n", strerror(-r));
                return EXIT_FAIL;
        }
        ei_x_encode_empty_list(&x);

        struct outcome o = { 0 };
        o.r = nk_host_call(attacker, (unsigned) idx, NULL, 0, (const uint8_t *) x.buff, (size_t) x.index, &o.res,
                           &o.err);
        ei_x_free(&x);
        if (o.r >= 0 && a->raw)
                printf("  host: returned %zu bytes of ETF\n", o.res.len);
        else {
                if (o.r >= 0 && !o.res.exception)
                        (void) decode_steps(&o);
                print_outcome(&o);
        }

        int verdict = a->check(c, a, &o);
        printf("  outcome: %s\n", c->why);
        if (o.r >= 0)
                nk_result_free(&o.res);
        nk_host_free(attacker);

        /* The runtime (this process) is still here to ask; the host beside
         * the attacker must still answer. */
        if (!bystander_answers(bystander, "after")) {
                printf("  FAIL: the bystander stopped answering after the attack\n");
                verdict = EXIT_FAIL;
        } else
                printf("  bystander: answered after the attack\n");
        nk_host_free(bystander);
        if (c->listener >= 0)
                close(c->listener);

        printf("  %s\n", verdict == EXIT_PASS ? "PASS: the attack was stopped"
                         : verdict == EXIT_SKIP ? "SKIP: see the outcome for why"
                                                : "FAIL");
        return verdict;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        nk_log_set_sink(log_note, NULL, NK_LOG_WARNING);
        if (argc == 2 && strcmp(argv[1], "--list") == 0) {
                for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++)
                        printf("attack-%s\t%s\t%s\n", attacks[i].name, attacks[i].tried, attacks[i].stops);
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "usage: %s ATTACK | --list\n", argv[0]);
                return 2;
        }
        const struct attack *a = find_attack(argv[1]);
        if (!a) {
                fprintf(stderr, "no attack named \"%s\" (see --list)\n", argv[1]);
                return 2;
        }
        ei_init();
        const char *l = getenv("NIFKIT_TEST_LAUNCHER");
        printf("attack-%s [%s launcher]\n", a->name, l && *l ? l : "native");
        struct ctx c = { 0 };
        int r = setup(&c);
        if (r != 0)
                return r;
        return run(&c, a);
}
