/* SPDX-License-Identifier: Apache-2.0 */
/* The NIFKIT_* environment read, the status directory and the log file
 * (operator.h); what concerns one host is in operator_host.c, so that a
 * program that starts no host links none of it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "operator.h"

static const char *var(const char *name)
{
        const char *v = secure_getenv(name);
        return v && *v ? v : NULL;
}

/* An id to run hosts as outside their user namespace: never 0 (root's
 * files), never -1 (no id). 0 when unset; *bad when set but not such an id. */
static unsigned id_var(const char *name, bool *bad)
{
        const char *s = var(name);
        if (!s)
                return 0;
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || s[0] == '-' || v == 0 || v >= 0xffffffffUL) {
                *bad = true;
                return 0;
        }
        return (unsigned) v;
}

void nk_operator_env_read(struct nk_operator_env *ret)
{
        *ret = (struct nk_operator_env) {
                .host = var("NIFKIT_HOST"),
                .policy = var("NIFKIT_POLICY"),
                .cgroup_root = var("NIFKIT_CGROUP_ROOT"),
                .audit_log = var("NIFKIT_AUDIT_LOG"),
                .log = var("NIFKIT_LOG"),
                .log_level = NK_LOG_INFO,
        };
        const char *u = var("NIFKIT_UNSANDBOXED_DEVELOPMENT");
        ret->unsandboxed = u && strcmp(u, "1") == 0;
        ret->sandbox_uid = id_var("NIFKIT_SANDBOX_UID", &ret->sandbox_ids_bad);
        ret->sandbox_gid = id_var("NIFKIT_SANDBOX_GID", &ret->sandbox_ids_bad);

        const char *dir = var("NIFKIT_STATUS_DIR"), *xdg = var("XDG_RUNTIME_DIR");
        if (dir)
                snprintf(ret->status_dir, sizeof ret->status_dir, "%s", dir);
        else if (xdg)
                snprintf(ret->status_dir, sizeof ret->status_dir, "%s/nifkit", xdg);

        const char *lvl = var("NIFKIT_LOG_LEVEL");
        if (lvl) {
                ret->log_level_bad = true;
                for (int l = NK_LOG_DEBUG; l <= NK_LOG_ERROR; l++)
                        if (strcmp(lvl, nk_log_level_name((enum nk_log_level) l)) == 0) {
                                ret->log_level = (enum nk_log_level) l;
                                ret->log_level_bad = false;
                        }
        }
}

int nk_operator_env_status(const struct nk_operator_env *e)
{
        return nk_status_set_dir(e->status_dir[0] ? e->status_dir : NULL);
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int file_fd = -1;        /* the file NIFKIT_LOG names, for the process's life */

int nk_operator_log_open(const struct nk_operator_env *e, int *ret_fd)
{
        if (!e->log)
                return 0;
        if (strcmp(e->log, "stderr") == 0) {
                *ret_fd = STDERR_FILENO;
                return 1;
        }
        pthread_mutex_lock(&log_lock);
        if (file_fd < 0)
                file_fd = open(e->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        int fd = file_fd, r = fd < 0 ? -errno : 1;
        pthread_mutex_unlock(&log_lock);
        if (r > 0)
                *ret_fd = fd;
        return r;
}

void nk_operator_log_write(int fd, const struct nk_log_record *rec)
{
        const struct iovec iov[] = { { (void *) rec->line, strlen(rec->line) }, { (void *) "\n", 1 } };
        (void) !writev(fd, iov, 2);
}

void nk_operator_setup(struct nk_operator_env *ret, int *ret_log_fd, void (*say)(const char *line))
{
        char line[4200];

        nk_operator_env_read(ret);
        *ret_log_fd = -1;
        if (ret->log_level_bad)
                say("$NIFKIT_LOG_LEVEL names no level (debug, info, warning, error): info is used");
        if (ret->sandbox_ids_bad)
                say("$NIFKIT_SANDBOX_UID or $NIFKIT_SANDBOX_GID is not an id other than 0: 65534 (nobody) is used "
                    "for it");
        if (nk_operator_env_status(ret) < 0) {
                snprintf(line, sizeof line, "the status directory '%s' is not an absolute path: the default one is used",
                         ret->status_dir);
                say(line);
        }
        int r = nk_operator_log_open(ret, ret_log_fd);
        if (r < 0) {
                snprintf(line, sizeof line, "$NIFKIT_LOG '%s': %s: events are not logged", ret->log, strerror(-r));
                say(line);
        }
}

enum nk_log_level nk_operator_sink_level(const struct nk_operator_env *e, int fd)
{
        return fd >= 0 && e->log_level < NK_LOG_WARNING ? e->log_level : NK_LOG_WARNING;
}
