/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit's one logging module: events as JSON lines, handed to a sink
 * the embedding application chooses.
 *
 *     {"ts":"2026-11-24T06:10:02.123Z","level":"info","library":"/x/jiffy.real.so",
 *      "event":"host_started","host_pid":4242}
 *
 * A library does not write to stderr on its own (the VM's stderr may be a
 * pipe somebody parses), so without a sink nothing is written; with one, lines at or above its level
 * reach it. Warnings a person must read (a sandbox not enforced, a host
 * unsandboxed) carry a one-line note beside the JSON, which is how they
 * reach the VM's stderr: the proxy's sink prints it. Every string field is escaped
 * as JSON (control characters, quotes, backslashes, and invalid UTF-8 as
 * U+FFFD), so a library path or a message from a hostile host cannot forge
 * a field or a line.
 */
#ifndef NIFKIT_LOG_H
#define NIFKIT_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nifkit.h"

enum nk_log_field_type {
        NK_LOG_FIELD_STR,
        NK_LOG_FIELD_INT,
};

struct nk_log_field {
        const char *key;        /* a literal: not escaped */
        enum nk_log_field_type type;
        const char *s;          /* NULL is written as null */
        int64_t i;
};

#define NK_LOG_STR(k, v) ((struct nk_log_field) { .key = (k), .type = NK_LOG_FIELD_STR, .s = (v) })
#define NK_LOG_INT(k, v) ((struct nk_log_field) { .key = (k), .type = NK_LOG_FIELD_INT, .i = (int64_t) (v) })

/* Writes one event line to the sink, if one is set and wants level. */
void nk_log_fields(enum nk_log_level level, const char *library, const char *event,
                   const struct nk_log_field *fields, size_t nfields);
/* The same, with a line for a person (nk_log_record.note). */
void nk_log_note_fields(enum nk_log_level level, const char *library, const char *event, const char *note,
                        const struct nk_log_field *fields, size_t nfields);

#define nk_log_event(level, library, event, ...)                                                       \
        nk_log_fields((level), (library), (event), (const struct nk_log_field[]) { __VA_ARGS__ },    \
                      sizeof((const struct nk_log_field[]) { __VA_ARGS__ }) / sizeof(struct nk_log_field))
#define nk_log_note(level, library, event, note, ...)                                                  \
        nk_log_note_fields((level), (library), (event), (note),                                        \
                           (const struct nk_log_field[]) { __VA_ARGS__ },                              \
                           sizeof((const struct nk_log_field[]) { __VA_ARGS__ }) / sizeof(struct nk_log_field))

/*
 * Formats one event line (without the newline) into a new string. Exposed
 * for the tests and for tools that write the same format. 0 or -ENOMEM.
 */
int nk_log_format(enum nk_log_level level, const char *library, const char *event,
                  const struct nk_log_field *fields, size_t nfields, const struct timespec *ts, char **ret);

/* Appends s to out as a JSON string literal (quotes included). */
struct nk_buf;
int nk_json_escape(struct nk_buf *out, const char *s);

#endif
