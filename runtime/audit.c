/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit records of the capability broker, and the policy they suggest.
 *
 * A record is one JSON object per line:
 *   {"ts":1764000000.123,"library":"/x/y.so","op":"open","path":"/data/a",
 *    "flags":65,"decision":"audit-allow"}
 * with "host"/"port"/"udp" in place of "path"/"flags" for connect and
 * listen, "host" alone for resolve, and "errno" when a request failed.
 * Reading the log back is the only place besides the policy loader that
 * parses JSON; it uses jansson too, and hands out no json_t.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "macro.h"
#include "nifkit_policy.h"

struct out {
        char *p;
        size_t left;
        bool overflow;
};

__attribute__((format(printf, 2, 3)))
static void emit(struct out *o, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p, o->left, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= o->left) {
                o->overflow = true;
                o->left = 0;
                return;
        }
        o->p += n;
        o->left -= (size_t) n;
}

/* A JSON string. Control characters are escaped; other bytes pass as they
 * are, so a UTF-8 path reads back unchanged, and a path that is not UTF-8
 * makes its line unreadable to `nifkit policy suggest` (which then names
 * the line) rather than silently becoming another path. */
static void emit_string(struct out *o, const char *s)
{
        emit(o, "\"");
        for (const unsigned char *c = (const unsigned char *) s; *c && !o->overflow; c++) {
                if (*c == '"' || *c == '\\')
                        emit(o, "\\%c", *c);
                else if (*c < 0x20 || *c == 0x7f)
                        emit(o, "\\u%04x", *c);
                else
                        emit(o, "%c", *c);
        }
        emit(o, "\"");
}

int nk_audit_format(const struct nk_audit_record *rec, char *buf, size_t size)
{
        struct out o = { .p = buf, .left = size };
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        emit(&o, "{\"ts\":%lld.%03ld,\"library\":", (long long) ts.tv_sec, ts.tv_nsec / 1000000);
        emit_string(&o, rec->library ? rec->library : "");
        emit(&o, ",\"op\":");
        emit_string(&o, rec->op);
        if (rec->path) {
                emit(&o, ",\"path\":");
                emit_string(&o, rec->path);
                emit(&o, ",\"flags\":%d", rec->flags);
        }
        if (rec->host) {
                emit(&o, ",\"host\":");
                emit_string(&o, rec->host);
                if (strcmp(rec->op, "resolve") != 0)
                        emit(&o, ",\"port\":%d,\"udp\":%s", rec->port, rec->udp ? "true" : "false");
        }
        emit(&o, ",\"decision\":");
        emit_string(&o, rec->decision);
        if (rec->error)
                emit(&o, ",\"errno\":%d", rec->error);
        emit(&o, "}");
        return o.overflow ? -ENOBUFS : (int) (o.p - buf);
}

/* ---- nifkit policy suggest ------------------------------------------------ */

struct dir {
        char *path;
        int access;             /* enum nk_policy_access */
};

struct names {
        char **v;
        size_t n, cap;
};

struct suggestion {
        struct dir *dirs;
        size_t ndirs, capdirs;
        struct names connect, listen, resolve;
};

static int names_add(struct names *s, const char *name)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], name) == 0)
                        return 0;
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 8;
                char **v = realloc(s->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n] = strdup(name);
        if (!s->v[s->n])
                return -ENOMEM;
        s->n++;
        return 0;
}

static void names_free(struct names *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int cmp_dir(const void *a, const void *b)
{
        return strcmp(((const struct dir *) a)->path, ((const struct dir *) b)->path);
}

static int dir_add(struct suggestion *s, const char *file, int flags)
{
        const char *slash = strrchr(file, '/');
        if (file[0] != '/' || !slash)
                return -EINVAL;
        size_t len = slash == file ? 1 : (size_t) (slash - file);
        /* The weakest access that covers these flags. */
        int access = (flags & O_CREAT) ? NK_POLICY_ACCESS_CREATE
                     : (flags & (O_WRONLY | O_RDWR | O_TRUNC | O_APPEND)) ? NK_POLICY_ACCESS_READ_WRITE
                                                                          : NK_POLICY_ACCESS_READ;
        for (size_t i = 0; i < s->ndirs; i++)
                if (strlen(s->dirs[i].path) == len && strncmp(s->dirs[i].path, file, len) == 0) {
                        if (access > s->dirs[i].access)
                                s->dirs[i].access = access;
                        return 0;
                }
        if (s->ndirs == s->capdirs) {
                size_t cap = s->capdirs ? s->capdirs * 2 : 8;
                struct dir *d = realloc(s->dirs, cap * sizeof *d);
                if (!d)
                        return -ENOMEM;
                s->dirs = d;
                s->capdirs = cap;
        }
        char *p = strndup(file, len);
        if (!p)
                return -ENOMEM;
        s->dirs[s->ndirs++] = (struct dir) { .path = p, .access = access };
        return 0;
}

static int endpoint_add(struct names *s, const char *host, json_int_t port, bool udp)
{
        if (port < 1 || port > 65535)
                return -EINVAL;
        char buf[128];
        bool v6 = strchr(host, ':') != NULL;
        snprintf(buf, sizeof buf, "%s%s%s%s:%d", udp ? "udp:" : "", v6 ? "[" : "", host, v6 ? "]" : "",
                 (int) port);
        return names_add(s, buf);
}

static int take_record(struct suggestion *s, json_t *rec)
{
        const char *op = json_string_value(json_object_get(rec, "op"));
        const char *decision = json_string_value(json_object_get(rec, "decision"));
        if (!op || !decision)
                return -EINVAL;
        /* Only what actually happened: refusals were not part of the
         * library's working behaviour as observed. */
        if (strcmp(decision, "allow") != 0 && strcmp(decision, "audit-allow") != 0)
                return 0;
        const char *path = json_string_value(json_object_get(rec, "path"));
        const char *host = json_string_value(json_object_get(rec, "host"));
        json_t *flags = json_object_get(rec, "flags"), *port = json_object_get(rec, "port");
        if (strcmp(op, "open") == 0) {
                if (!path || !json_is_integer(flags))
                        return -EINVAL;
                return dir_add(s, path, (int) json_integer_value(flags));
        }
        if (strcmp(op, "resolve") == 0)
                return host ? names_add(&s->resolve, host) : -EINVAL;
        if (!host || !json_is_integer(port) || strlen(host) > 64)
                return -EINVAL;
        bool udp = json_is_true(json_object_get(rec, "udp"));
        if (strcmp(op, "connect") == 0)
                return endpoint_add(&s->connect, host, json_integer_value(port), false);
        if (strcmp(op, "listen") == 0)
                return endpoint_add(&s->listen, host, json_integer_value(port), udp);
        return -EINVAL;
}

static int write_names(FILE *out, const char *key, struct names *s, bool last)
{
        if (s->n)
                qsort(s->v, s->n, sizeof *s->v, cmp_str);
        fprintf(out, "    \"%s\": [", key);
        for (size_t i = 0; i < s->n; i++) {
                json_t *str = json_string(s->v[i]);
                char *text = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
                json_decref(str);
                if (!text)
                        return -ENOMEM;
                fprintf(out, "%s%s", i ? ", " : "", text);
                free(text);
        }
        fprintf(out, "]%s\n", last ? "" : ",");
        return 0;
}

static int write_policy(FILE *out, struct suggestion *s)
{
        static const char *const access[] = { "read", "read-write", "create" };
        if (s->ndirs)
                qsort(s->dirs, s->ndirs, sizeof *s->dirs, cmp_dir);
        fprintf(out, "{\n  \"nifkit_policy\": 1,\n  \"mode\": \"enforce\",\n  \"files\": [");
        for (size_t i = 0; i < s->ndirs; i++) {
                json_t *str = json_string(s->dirs[i].path);
                char *text = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
                json_decref(str);
                if (!text)
                        return -ENOMEM;
                fprintf(out, "%s\n    {\"path\": %s, \"access\": \"%s\"}", i ? "," : "", text,
                        access[s->dirs[i].access]);
                free(text);
        }
        fprintf(out, "%s],\n  \"network\": {\n", s->ndirs ? "\n  " : "");
        int r = write_names(out, "connect", &s->connect, false);
        if (r >= 0)
                r = write_names(out, "listen", &s->listen, false);
        if (r >= 0)
                r = write_names(out, "resolve", &s->resolve, true);
        if (r < 0)
                return r;
        fprintf(out, "  }\n}\n");
        return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}

int nk_audit_suggest(FILE *in, FILE *out, char *errbuf, size_t errlen)
{
        struct suggestion s = {};
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int r = 0;
        unsigned lineno = 0;

        while (r >= 0 && (n = getline(&line, &cap, in)) >= 0) {
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (n == 0)
                        continue;
                json_error_t jerr;
                json_t *rec = json_loadb(line, (size_t) n, JSON_REJECT_DUPLICATES, &jerr);
                if (!rec || !json_is_object(rec)) {
                        snprintf(errbuf, errlen, "line %u: not a JSON object%s%s", lineno, rec ? "" : ": ",
                                 rec ? "" : jerr.text);
                        r = -EINVAL;
                } else {
                        r = take_record(&s, rec);
                        if (r == -EINVAL)
                                snprintf(errbuf, errlen, "line %u: not an audit record of the broker", lineno);
                        else if (r < 0)
                                snprintf(errbuf, errlen, "line %u: %s", lineno, strerror(-r));
                }
                json_decref(rec);
        }
        if (r >= 0 && ferror(in)) {
                r = -EIO;
                snprintf(errbuf, errlen, "reading the log: %s", strerror(EIO));
        }
        if (r >= 0) {
                r = write_policy(out, &s);
                if (r < 0)
                        snprintf(errbuf, errlen, "writing the policy: %s", strerror(-r));
        }
        for (size_t i = 0; i < s.ndirs; i++)
                free(s.dirs[i].path);
        free(s.dirs);
        names_free(&s.connect);
        names_free(&s.listen);
        names_free(&s.resolve);
        return r;
}
