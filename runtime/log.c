/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON-lines events with a pluggable sink (log.h). The sink is process-wide
 * and read under a lock, so that an application may swap it while hosts run.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "macro.h"
#include "utf8.h"

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static nk_log_sink_fn sink_fn;
static void *sink_arg;
static enum nk_log_level sink_level = NK_LOG_INFO;

NK_EXPORT void nk_log_set_sink(nk_log_sink_fn fn, void *arg, enum nk_log_level min_level)
{
        pthread_mutex_lock(&sink_lock);
        sink_fn = fn;
        sink_arg = arg;
        sink_level = min_level;
        pthread_mutex_unlock(&sink_lock);
}

NK_EXPORT const char *nk_log_level_name(enum nk_log_level l)
{
        switch (l) {
        case NK_LOG_DEBUG:
                return "debug";
        case NK_LOG_INFO:
                return "info";
        case NK_LOG_WARNING:
                return "warning";
        case NK_LOG_ERROR:
                return "error";
        }
        return "info";
}

NK_EXPORT int nk_json_escape(struct nk_buf *out, const char *str)
{
        const unsigned char *s = (const unsigned char *) str;
        size_t n = strlen(str);
        int r = nk_buf_put_u8(out, '"');

        for (size_t i = 0; r >= 0 && i < n;) {
                unsigned char c = s[i];
                char esc[8];
                uint32_t cp;
                size_t len;

                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        r = nk_buf_put(out, esc, 2);
                        i++;
                } else if (c < 0x20 || c == 0x7f) {
                        snprintf(esc, sizeof esc, "\\u%04x", c);
                        r = nk_buf_put(out, esc, 6);
                        i++;
                } else if ((len = nk_utf8_decode(s + i, n - i, &cp)) == 0) {
                        /* Bytes that are not UTF-8 would make the line invalid JSON. */
                        r = nk_buf_put(out, "\\ufffd", 6);
                        i++;
                } else {
                        r = nk_buf_put(out, s + i, len);
                        i += len;
                }
        }
        return r < 0 ? r : nk_buf_put_u8(out, '"');
}

static int put_str(struct nk_buf *b, const char *s)
{
        return nk_buf_put(b, s, strlen(s));
}

/* ,"key": */
static int put_key(struct nk_buf *b, const char *key)
{
        int r = put_str(b, ",");
        if (r >= 0)
                r = nk_json_escape(b, key);
        return r < 0 ? r : put_str(b, ":");
}

NK_EXPORT int nk_log_format(enum nk_log_level level, const char *library, const char *event,
                            const struct nk_log_field *fields, size_t nfields, const struct timespec *ts,
                            char **ret)
{
        _cleanup_(nk_buf_free) struct nk_buf b = { 0 };
        struct tm tm;
        char stamp[128];
        int r;

        if (!gmtime_r(&ts->tv_sec, &tm))
                return -EINVAL;
        snprintf(stamp, sizeof stamp, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts->tv_nsec / 1000000, nk_log_level_name(level));
        r = put_str(&b, stamp);
        if (r >= 0 && library) {
                r = put_key(&b, "library");
                if (r >= 0)
                        r = nk_json_escape(&b, library);
        }
        if (r >= 0)
                r = put_key(&b, "event");
        if (r >= 0)
                r = nk_json_escape(&b, event);
        for (size_t i = 0; r >= 0 && i < nfields; i++) {
                const struct nk_log_field *f = &fields[i];
                r = put_key(&b, f->key);
                if (r < 0)
                        break;
                if (f->type == NK_LOG_FIELD_INT) {
                        char num[32];
                        snprintf(num, sizeof num, "%" PRId64, f->i);
                        r = put_str(&b, num);
                } else if (f->s) {
                        r = nk_json_escape(&b, f->s);
                } else {
                        r = put_str(&b, "null");
                }
        }
        if (r >= 0)
                r = nk_buf_put(&b, "}", 2);     /* and the terminating NUL */
        if (r < 0)
                return r;
        *ret = (char *) nk_buf_steal(&b, NULL);
        return 0;
}

void nk_log_note_fields(enum nk_log_level level, const char *library, const char *event, const char *note,
                        const struct nk_log_field *fields, size_t nfields)
{
        _cleanup_free_ char *line = NULL;
        struct timespec ts;
        nk_log_sink_fn fn;
        void *arg;

        pthread_mutex_lock(&sink_lock);
        fn = level >= sink_level ? sink_fn : NULL;
        arg = sink_arg;
        pthread_mutex_unlock(&sink_lock);
        if (!fn)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (nk_log_format(level, library, event, fields, nfields, &ts, &line) < 0)
                return;
        const struct nk_log_record rec = {
                .level = level, .library = library, .event = event, .note = note, .line = line,
        };
        fn(arg, &rec);
}

void nk_log_fields(enum nk_log_level level, const char *library, const char *event,
                   const struct nk_log_field *fields, size_t nfields)
{
        nk_log_note_fields(level, library, event, NULL, fields, nfields);
}
