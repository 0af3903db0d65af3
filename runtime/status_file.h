/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state files through which `nifkit status` and nifkit:stats() see the
 * hosts of every runtime on the machine: one small JSON object per library
 * per runtime process, rewritten at most once a second by status.c.
 *
 * Where: the directory nk_status_set_dir chose (the proxy and the tool
 * pass $NIFKIT_STATUS_DIR, else $XDG_RUNTIME_DIR/nifkit), else /run/nifkit
 * when /run is writable (root), else /tmp/nifkit-UID (owned by UID, mode
 * 0700). Readers look in all of them, since the VM and the tool may not
 * share an environment.
 */
#ifndef NIFKIT_STATUS_FILE_H
#define NIFKIT_STATUS_FILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nifkit.h"

/* struct nk_status_record, nk_status_list and nk_status_record_format: nifkit.h. */

/* The directory the writer uses; created (0700, or 0755 under /run) when
 * create is set. 0 or -errno. */
int nk_status_dir(bool create, char *buf, size_t size);

/* The /tmp fallback's check (exposed for tests): path made with mode if
 * missing, then refused (-EPERM) unless it is a directory of ours that
 * nobody else may write into. */
int nk_status_own_dir(const char *path, mode_t mode);

/* 0, or -EINVAL when text is not a state file's JSON. */
int nk_status_record_parse(const char *text, struct nk_status_record *ret);

/* Writes rec to dir/name atomically (a temporary file, then rename). */
int nk_status_record_write(const char *dir, const char *name, const struct nk_status_record *rec);

/* p50 and p99 from a latency histogram (the bucket upper bounds, µs). */
void nk_stats_percentiles(struct nk_stats *st);

#endif
