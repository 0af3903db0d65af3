/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The operator's NIFKIT_* environment, read where a program decides: the
 * proxy NIF, the nifkit tool and the stats NIF call these from their
 * entry points; libnifkit itself reads no variable and writes nowhere on
 * its own. Each variable maps to one explicit libnifkit call:
 *
 *   NIFKIT_HOST                       nk_host_set_host_binary
 *   NIFKIT_POLICY                     the policy file, when none is beside the library
 *   NIFKIT_CGROUP_ROOT                nk_host_set_cgroup_root
 *   NIFKIT_AUDIT_LOG                  nk_host_set_audit_log
 *   NIFKIT_UNSANDBOXED_DEVELOPMENT=1  nk_host_allow_unsandboxed_development
 *   NIFKIT_SANDBOX_UID, _GID          nk_host_set_sandbox_ids
 *   NIFKIT_STATUS_DIR, else $XDG_RUNTIME_DIR/nifkit   nk_status_set_dir
 *   NIFKIT_LOG=stderr|FILE, NIFKIT_LOG_LEVEL          the JSON-lines log
 *
 * Built as a library of its own, linked by those programs and not by
 * libnifkit. secure_getenv throughout: a setuid program gets none.
 */
#ifndef NIFKIT_OPERATOR_H
#define NIFKIT_OPERATOR_H

#include <stdbool.h>

#include "nifkit.h"

struct nk_operator_env {
        const char *host;               /* NULL when unset or empty, as every field */
        const char *policy;
        const char *cgroup_root;
        const char *audit_log;
        bool unsandboxed;
        unsigned sandbox_uid;           /* 0 when unset or not a valid id, as sandbox_gid */
        unsigned sandbox_gid;
        bool sandbox_ids_bad;           /* one is set and is not a valid id */
        char status_dir[4096];          /* "" when neither variable is set */
        const char *log;                /* "stderr" or a file */
        enum nk_log_level log_level;    /* NIFKIT_LOG_LEVEL, default info */
        bool log_level_bad;             /* NIFKIT_LOG_LEVEL names no level */
};

/* Reads the variables; the strings point into the environment. */
void nk_operator_env_read(struct nk_operator_env *ret);

/*
 * Applies what concerns one host: cgroup root, audit log, unsandboxed
 * development, the sandbox's outside ids, the process's environment (secure_getenv at each start)
 * as the source of the policy's "env", and the host binary when the variable is set and
 * override is true (the proxy lets NIFKIT_HOST override what wrap
 * recorded). 0 or -ENOMEM.
 */
int nk_operator_env_apply(const struct nk_operator_env *e, nk_host *h, bool override_host);

/*
 * nk_host_new configured wholly by the variables: the above, NIFKIT_HOST
 * overriding, and $NIFKIT_POLICY's policy (loaded once, kept for the
 * process's life) unless the caller sets another. For programs with no
 * configuration of their own: the tests and the benchmarks. NULL with
 * err->msg filled (err may be NULL) on a policy that does not load or
 * out of memory.
 */
struct nk_policy_error;
nk_host *nk_operator_host_new(struct nk_policy_error *err);

/* nk_status_set_dir with the variables' choice; 0, or -EINVAL for a
 * directory that is not an absolute path. */
int nk_operator_env_status(const struct nk_operator_env *e);

/*
 * Opens NIFKIT_LOG: 1 with *ret_fd (stderr's, or a file appended to, kept
 * open for the life of the process), 0 when unset, -errno when the file
 * cannot be opened. One fd per process whatever the number of calls.
 */
int nk_operator_log_open(const struct nk_operator_env *e, int *ret_fd);

/* Writes rec's JSON line and a newline on fd with one writev(2), so lines
 * from several processes appending to one file do not interleave. */
void nk_operator_log_write(int fd, const struct nk_log_record *rec);

/*
 * What a program that starts hosts does first: reads the variables into
 * *ret, applies the status directory, opens NIFKIT_LOG (*ret_log_fd, or
 * -1). What is wrong is said through say, one line each, and the default
 * used: a level that names none, a status directory that is not an
 * absolute path, a log that cannot be opened.
 */
void nk_operator_setup(struct nk_operator_env *ret, int *ret_log_fd, void (*say)(const char *line));

/* The level to give nk_log_set_sink: the log's when it is open and
 * chattier than warnings, else warning, the level of every note. */
enum nk_log_level nk_operator_sink_level(const struct nk_operator_env *e, int fd);

#endif
