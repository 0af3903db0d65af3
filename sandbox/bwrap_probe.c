/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the bubblewrap launcher learns about bwrap itself: where it is, which
 * version it is (for --size), and what it reports on --info-fd and
 * --json-status-fd. Nothing here starts a host; launch_bwrap.c does.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap_probe.h"
#include "child.h"
#include "macro.h"

/* ---- finding bwrap ----------------------------------------------------------- */

/* Looks bwrap up in path_env (a $PATH; NULL: the default search path) the
 * way execvp would: the first executable regular file. */
int nk_bwrap_find(const char *path_env, char *buf, size_t size)
{
        if (!path_env || !*path_env)
                path_env = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path_env;;) {
                const char *end = strchrnul(p, ':');
                size_t len = (size_t) (end - p);
                /* An empty entry means the current directory: never trust it. */
                if (len > 0 && p[0] == '/' && len + sizeof "/bwrap" <= size) {
                        struct stat st;
                        memcpy(buf, p, len);
                        memcpy(buf + len, "/bwrap", sizeof "/bwrap");
                        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
                                return 0;
                }
                if (!*end)
                        return -ENOENT;
                p = end + 1;
        }
}

/* "bubblewrap 0.8.0" → 800 (major × 10000 + minor × 100 + micro); a
 * missing micro counts as 0. */
int nk_bwrap_parse_version(const char *text, unsigned *ret_version)
{
        unsigned v[3] = {};
        const char *p = strstr(text, "bubblewrap ");
        if (!p)
                return -EINVAL;
        p += strlen("bubblewrap ");
        for (int i = 0; i < 3; i++) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                char *end;
                unsigned long n = strtoul(p, &end, 10);
                if (n > 99)
                        return -EINVAL;
                v[i] = (unsigned) n;
                p = end;
                if (*p != '.')
                        break;
                p++;
        }
        if (*p && !isspace((unsigned char) *p) && *p != '-')
                return -EINVAL;
        *ret_version = v[0] * 10000 + v[1] * 100 + v[2];
        return 0;
}

/* Runs `bwrap --version`: --size needs 0.7.0. */
static int run_version(const char *bwrap, unsigned *ret_version)
{
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_close_ int rd = pipefd[0];
        _cleanup_close_ int wr = pipefd[1];
        pid_t pid = nk_child_fork_quiet();
        if (pid < 0)
                return pid;
        if (pid == 0) {
                if (dup2(wr, STDOUT_FILENO) < 0)
                        _exit(127);
                char *const argv[] = { (char *) "bwrap", (char *) "--version", NULL };
                char *const envp[] = { NULL };
                execve(bwrap, argv, envp);
                _exit(127);
        }
        nk_closep(&wr);
        wr = -1;
        char buf[256];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(rd, buf + len, sizeof buf - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
                if (len == sizeof buf - 1)
                        break;
        }
        buf[len] = '\0';
        siginfo_t si;
        while (waitid(P_PID, (id_t) pid, &si, WEXITED | __WALL) < 0 && errno == EINTR)
                ;
        return nk_bwrap_parse_version(buf, ret_version);
}

/* The version of the bwrap last asked, so that only the first launch pays
 * for the extra exec (and a new bwrap at the same path is noticed). */
int nk_bwrap_version(const char *bwrap, unsigned *ret_version)
{
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        static char cached_path[PATH_MAX];
        static struct timespec cached_mtime;
        static unsigned cached;
        struct stat st;

        if (stat(bwrap, &st) < 0)
                return -errno;
        pthread_mutex_lock(&lock);
        bool hit = cached && strcmp(cached_path, bwrap) == 0 && cached_mtime.tv_sec == st.st_mtim.tv_sec &&
                   cached_mtime.tv_nsec == st.st_mtim.tv_nsec;
        unsigned v = cached;
        pthread_mutex_unlock(&lock);
        if (hit) {
                *ret_version = v;
                return 0;
        }
        int r = run_version(bwrap, &v);
        if (r < 0)
                return r;
        pthread_mutex_lock(&lock);
        snprintf(cached_path, sizeof cached_path, "%s", bwrap);
        cached_mtime = st.st_mtim;
        cached = v;
        pthread_mutex_unlock(&lock);
        *ret_version = v;
        return 0;
}

/* ---- bwrap's information and exit status --------------------------------------- */

/* The integer member `key` (quoted) of bwrap's JSON at p; the last one
 * when `last` (--json-status-fd writes one document after another). */
static int parse_member(const char *text, const char *key, bool last, long *ret)
{
        const char *p = strstr(text, key);
        if (!p)
                return -ENOENT;
        for (const char *q; last && (q = strstr(p + 1, key));)
                p = q;
        p += strlen(key);
        while (isspace((unsigned char) *p))
                p++;
        if (*p++ != ':')
                return -EINVAL;
        while (isspace((unsigned char) *p))
                p++;
        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || v > INT_MAX || !(*end == ',' || *end == '}' || isspace((unsigned char) *end)))
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The "child-pid" member of what bwrap writes to --info-fd. */
int nk_bwrap_parse_child_pid(const char *text, pid_t *ret_pid)
{
        long v;
        int r = parse_member(text, "\"child-pid\"", false, &v);
        if (r < 0)
                return r;
        if (v <= 0)
                return -EINVAL;
        *ret_pid = (pid_t) v;
        return 0;
}

/* The "exit-code" bwrap's monitor writes to --json-status-fd as it exits. */
int nk_bwrap_parse_exit_code(const char *text, int *ret_code)
{
        long v;
        int r = parse_member(text, "\"exit-code\"", true, &v);
        if (r < 0)
                return r;
        if (v > 255)
                return -EINVAL;
        *ret_code = (int) v;
        return 0;
}

/* bwrap exits 128 + N when its child died of signal N (as shells do). */
void nk_bwrap_translate_exit(int status, struct nk_child_exit *ret)
{
        *ret = (struct nk_child_exit) {};
        if (status > 128 && status < 128 + NSIG)
                ret->signo = status - 128;
        else
                ret->status = status;
}
