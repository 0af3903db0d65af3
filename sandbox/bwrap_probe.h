/* SPDX-License-Identifier: Apache-2.0 */
/* Finding bwrap, its version, and reading what it reports (bwrap_probe.c). */
#ifndef NIFKIT_BWRAP_PROBE_H
#define NIFKIT_BWRAP_PROBE_H

#include <stddef.h>
#include <sys/types.h>

#include "launcher.h"

/* Looks bwrap up in path_env (a $PATH; NULL or empty: the default search
 * path) as execvp would, never in a relative entry. 0 or -ENOENT. */
int nk_bwrap_find(const char *path_env, char *buf, size_t size);

/* "bubblewrap 0.8.0" → 800 (major × 10000 + minor × 100 + micro). */
int nk_bwrap_parse_version(const char *text, unsigned *ret_version);

/* The version of the bwrap at path, asked once per file (path and mtime). */
int nk_bwrap_version(const char *path, unsigned *ret_version);

/* The "child-pid" of what bwrap writes to --info-fd. */
int nk_bwrap_parse_child_pid(const char *text, pid_t *ret_pid);

/* The last "exit-code" bwrap's monitor wrote to --json-status-fd. */
int nk_bwrap_parse_exit_code(const char *text, int *ret_code);

/* bwrap exits 128 + N when its child died of signal N. */
void nk_bwrap_translate_exit(int status, struct nk_child_exit *ret);

#endif
