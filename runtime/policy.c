/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON policy loader: the only code in nifkit that sees a json_t.
 *
 * jansson parses and reports syntax errors with a line and column, but keeps
 * no positions for the values it returns. Semantic errors must still point at
 * the offending value, so when one is found the loader re-scans the text (it
 * is valid JSON by then) for the JSON path of that value and reports where it
 * starts (json_where.c). The scan only runs on the error path; loading a
 * good policy costs one jansson parse and one walk of the tree.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "inet.h"
#include "json_where.h"
#include "macro.h"
#include "path.h"
#include "nifkit_policy.h"
#include "policy-keys.h"
#include "protocol.h"

/* Policies are a few hundred bytes; anything this big is a mistake. */
#define POLICY_MAX_BYTES (1024 * 1024)
/* Deep enough for every path the key tables can name ($.files[0].path). */
#define PATH_DEPTH 8
#define GOT_MAX 64

/* jansson's json_auto_t, spelt like the other cleanups. */
#define _cleanup_json_ _cleanup_(json_decrefp)

struct ctx {
        const char *text;
        size_t len;
        struct nk_policy_error *err;
        struct nk_policy *p;
        struct nk_json_comp path[PATH_DEPTH];
        size_t depth;
};

/* ---- key tables ---------------------------------------------------------- */

static const char *const launcher_values[] = { "native", "bwrap", "unsandboxed-development", NULL };
static const char *const cgroup_values[] = { "required", "best-effort", NULL };
static const char *const mode_values[] = { "enforce", "audit", NULL };
static const char *const access_values[] = { "read", "read-write", "create", NULL };
static const char *const transport_values[] = { "shm", "socket", NULL };

#define INT_KEY(n, lo, hi, d, s, f) \
        { .name = n, .type = NK_POLICY_KEY_INTEGER, .min = lo, .max = hi, .def = d, \
          .offset = offsetof(s, f), .size = sizeof(((s *) 0)->f) }
#define ENUM_KEY(n, vals, d, s, f) \
        { .name = n, .type = NK_POLICY_KEY_ENUM, .values = vals, .def = d, \
          .offset = offsetof(s, f), .size = sizeof(((s *) 0)->f) }

static const struct nk_policy_key limits_keys[] = {
        INT_KEY("memory_mb", 1, 1048576, 256, struct nk_policy, limits.memory_mb),
        INT_KEY("pids", 1, 65536, 16, struct nk_policy, limits.pids),
        INT_KEY("cpu_percent", 1, 100 * 1024, 100, struct nk_policy, limits.cpu_percent),
        INT_KEY("call_timeout_ms", 1, 86400000, 5000, struct nk_policy, limits.call_timeout_ms),
        INT_KEY("max_args_bytes", 1, UINT64_C(1) << 40, 67108864, struct nk_policy, limits.max_args_bytes),
        INT_KEY("max_result_bytes", 1, UINT64_C(1) << 40, 67108864, struct nk_policy, limits.max_result_bytes),
        INT_KEY("max_new_atoms", 0, 1000000, 10000, struct nk_policy, limits.max_new_atoms),
        INT_KEY("tmp_mb", 0, 65536, 16, struct nk_policy, limits.tmp_mb),
        INT_KEY("open_files", 16, 1048576, 256, struct nk_policy, limits.open_files),
        INT_KEY("shm_slot_kb", 4, 65536, 2048, struct nk_policy, limits.shm_slot_kb),
        {},
};

static const struct nk_policy_key restart_keys[] = {
        INT_KEY("max_restarts", 0, 1000, 5, struct nk_policy, restart.max_restarts),
        INT_KEY("period_s", 1, 86400, 60, struct nk_policy, restart.period_s),
        {},
};

static const struct nk_policy_key file_keys[] = {
        { .name = "path", .type = NK_POLICY_KEY_STRING, .required = true, .format = NK_POLICY_FORMAT_PATH,
          .offset = offsetof(struct nk_policy_file, path), .size = sizeof(char *) },
        { .name = "access", .type = NK_POLICY_KEY_ENUM, .required = true, .values = access_values,
          .offset = offsetof(struct nk_policy_file, access), .size = sizeof(enum nk_policy_access) },
        { .name = "no_symlinks", .type = NK_POLICY_KEY_BOOLEAN, .def = false,
          .offset = offsetof(struct nk_policy_file, no_symlinks), .size = sizeof(bool) },
        {},
};

static const struct nk_policy_key network_keys[] = {
        { .name = "connect", .type = NK_POLICY_KEY_ARRAY, .format = NK_POLICY_FORMAT_CONNECT },
        { .name = "listen", .type = NK_POLICY_KEY_ARRAY, .format = NK_POLICY_FORMAT_LISTEN },
        { .name = "resolve", .type = NK_POLICY_KEY_ARRAY, .format = NK_POLICY_FORMAT_HOSTNAME },
        {},
};

static const struct nk_policy_key top_keys[] = {
        { .name = "nifkit_policy", .type = NK_POLICY_KEY_INTEGER, .required = true,
          .min = NK_POLICY_VERSION, .max = NK_POLICY_VERSION, .def = NK_POLICY_VERSION,
          .offset = offsetof(struct nk_policy, version), .size = sizeof(int) },
        ENUM_KEY("launcher", launcher_values, NK_POLICY_LAUNCHER_NATIVE, struct nk_policy, launcher),
        ENUM_KEY("cgroup", cgroup_values, NK_POLICY_CGROUP_REQUIRED, struct nk_policy, cgroup),
        ENUM_KEY("mode", mode_values, NK_POLICY_MODE_ENFORCE, struct nk_policy, mode),
        ENUM_KEY("transport", transport_values, NK_POLICY_TRANSPORT_SHM, struct nk_policy, transport),
        { .name = "limits", .type = NK_POLICY_KEY_OBJECT, .keys = limits_keys },
        { .name = "restart", .type = NK_POLICY_KEY_OBJECT, .keys = restart_keys },
        { .name = "files", .type = NK_POLICY_KEY_ARRAY, .keys = file_keys, .format = NK_POLICY_FORMAT_FILES },
        { .name = "network", .type = NK_POLICY_KEY_OBJECT, .keys = network_keys },
        { .name = "env", .type = NK_POLICY_KEY_ARRAY, .format = NK_POLICY_FORMAT_ENVNAME },
        INT_KEY("workers", 1, 256, 4, struct nk_policy, workers),
        {},
};

/* A library's entitlements (nifkit_entitlements.h): the policy's own keys
 * for what a library may ask, and a version of the document's own, which
 * may be left out. */
static const struct nk_policy_key entitlement_keys[] = {
        { .name = "nifkit_entitlements", .type = NK_POLICY_KEY_INTEGER, .min = NK_ENTITLEMENTS_VERSION,
          .max = NK_ENTITLEMENTS_VERSION, .def = NK_ENTITLEMENTS_VERSION,
          .offset = offsetof(struct nk_policy, version), .size = sizeof(int) },
        { .name = "limits", .type = NK_POLICY_KEY_OBJECT, .keys = limits_keys },
        { .name = "files", .type = NK_POLICY_KEY_ARRAY, .keys = file_keys, .format = NK_POLICY_FORMAT_FILES },
        { .name = "network", .type = NK_POLICY_KEY_OBJECT, .keys = network_keys },
        {},
};

const struct nk_policy_key *nk_policy_limit_keys(void)
{
        return limits_keys;
}

const struct nk_policy_key *nk_policy_keys(void)
{
        return top_keys;
}


/* ---- errors ---------------------------------------------------------------- */

static void error_init(struct nk_policy_error *err, const char *name)
{
        *err = (struct nk_policy_error) {};
        snprintf(err->file, sizeof err->file, "%s", name);
}

/* Messages longer than err->msg are cut: the place comes first, so it survives. */
static int error_finish(struct nk_policy_error *err, int r, const char *what)
{
        char full[sizeof err->file + sizeof err->path + 256 + 64];
        size_t len = 0;

        if (err->line > 0)
                snprintf(full, sizeof full, "%s:%d:%d: %s: %s", err->file, err->line, err->column, err->path,
                         what);
        else
                snprintf(full, sizeof full, "%s: %s", err->file, what);
        err->msg[0] = '\0';
        nk_text_append(err->msg, sizeof err->msg, &len, full, strlen(full));
        return r;
}

static int fail_at(struct ctx *c, bool at_key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(struct ctx *c, bool at_key, const char *fmt, ...)
{
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);

        size_t found = nk_json_locate(c->text, c->len, c->path, c->depth, at_key);
        /* The text parsed, so the path is in it; the fallback is the top. */
        nk_json_position(c->text, c->len, found != SIZE_MAX ? found : 0, &c->err->line, &c->err->column);
        nk_json_path_format(c->path, c->depth, false, c->err->path, sizeof c->err->path);
        return error_finish(c->err, -EINVAL, what);
}

#define fail(c, ...) fail_at(c, false, __VA_ARGS__)

static void push_key(struct ctx *c, const char *key)
{
        if (c->depth >= PATH_DEPTH)
                abort();        /* the key tables are never this deep */
        c->path[c->depth++] = (struct nk_json_comp) { .key = key, .keylen = strlen(key) };
}

static void push_index(struct ctx *c, size_t index)
{
        if (c->depth >= PATH_DEPTH)
                abort();
        c->path[c->depth++] = (struct nk_json_comp) { .index = index };
}

static void pop(struct ctx *c)
{
        c->depth--;
}

/* What the policy said, for messages: JSON for scalars, truncated. */
static void describe(json_t *v, char *buf, size_t size)
{
        _cleanup_free_ char *s = NULL;
        size_t n;

        if (json_is_object(v)) {
                snprintf(buf, size, "an object");
                return;
        }
        if (json_is_array(v)) {
                snprintf(buf, size, "an array");
                return;
        }
        s = json_dumps(v, JSON_ENCODE_ANY);
        if (!s) {
                snprintf(buf, size, "a value");
                return;
        }
        n = strlen(s);
        if (n < GOT_MAX) {
                snprintf(buf, size, "%s", s);
                return;
        }
        n = GOT_MAX - 4;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        snprintf(buf, size, "%.*s...", (int) n, s);
}

static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), row[65];

        if (la > 64 || lb > 64)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];

                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        diag = up;
                        row[j] = best;
                }
        }
        return row[lb];
}

/* " (did you mean "x"?)" for the closest candidate within two edits, else "". */
static void suggest(const char *got, const char *const *names, size_t stride, char *buf, size_t size)
{
        const char *best = NULL;
        size_t bestd = 3;

        for (const char *const *n = names; *n; n = (const char *const *) ((const char *) n + stride)) {
                size_t d = edit_distance(got, *n);

                if (d < bestd) {
                        bestd = d;
                        best = *n;
                }
        }
        if (best)
                snprintf(buf, size, " (did you mean \"%s\"?)", best);
        else
                buf[0] = '\0';
}

/* ---- values ---------------------------------------------------------------- */

static void store(void *base, const struct nk_policy_key *key, uint64_t v)
{
        char *dst = (char *) base + key->offset;

        switch (key->size) {
        case sizeof(uint8_t): {
                uint8_t x = (uint8_t) v;
                memcpy(dst, &x, sizeof x);
                break;
        }
        case sizeof(uint32_t): {
                uint32_t x = (uint32_t) v;
                memcpy(dst, &x, sizeof x);
                break;
        }
        case sizeof(uint64_t):
                memcpy(dst, &v, sizeof v);
                break;
        default:
                abort();
        }
}

static void apply_defaults(const struct nk_policy_key *keys, void *base)
{
        for (const struct nk_policy_key *k = keys; k->name; k++) {
                if (k->type == NK_POLICY_KEY_OBJECT)
                        apply_defaults(k->keys, base);
                else if (k->type != NK_POLICY_KEY_ARRAY && k->type != NK_POLICY_KEY_STRING)
                        store(base, k, k->def);
        }
}

/* A string without NUL characters (jansson allows them so that we can say where). */
static int get_string(struct ctx *c, json_t *v, const char *expected, const char **ret)
{
        char got[GOT_MAX + 8];

        if (!json_is_string(v)) {
                describe(v, got, sizeof got);
                return fail(c, "expected %s, got %s", expected, got);
        }
        if (strlen(json_string_value(v)) != json_string_length(v))
                return fail(c, "NUL character in string");
        *ret = json_string_value(v);
        return 0;
}

static int read_integer(struct ctx *c, json_t *v, const struct nk_policy_key *key, void *base)
{
        char got[GOT_MAX + 8];
        json_int_t x;

        if (json_is_integer(v)) {
                x = json_integer_value(v);
                if (x >= 0 && (uint64_t) x >= key->min && (uint64_t) x <= key->max) {
                        store(base, key, (uint64_t) x);
                        return 0;
                }
                if (key == &top_keys[0])
                        return fail(c, "unsupported policy version %lld: this nifkit reads version %d",
                                    (long long) x, NK_POLICY_VERSION);
        }
        describe(v, got, sizeof got);
        if (key->min == key->max)
                return fail(c, "expected the integer %" PRIu64 ", got %s", key->min, got);
        return fail(c, "expected an integer from %" PRIu64 " to %" PRIu64 ", got %s", key->min, key->max, got);
}

static int read_enum(struct ctx *c, json_t *v, const struct nk_policy_key *key, void *base)
{
        char got[GOT_MAX + 8], list[160] = "", hint[96] = "";
        size_t len = 0;

        if (json_is_string(v)) {
                for (size_t i = 0; key->values[i]; i++)
                        if (strcmp(json_string_value(v), key->values[i]) == 0 &&
                            strlen(key->values[i]) == json_string_length(v)) {
                                store(base, key, i);
                                return 0;
                        }
                suggest(json_string_value(v), key->values, sizeof(char *), hint, sizeof hint);
        }
        for (size_t i = 0; key->values[i]; i++) {
                if (i > 0)
                        nk_text_append(list, sizeof list, &len, ", ", 2);
                nk_text_append(list, sizeof list, &len, "\"", 1);
                nk_text_append(list, sizeof list, &len, key->values[i], strlen(key->values[i]));
                nk_text_append(list, sizeof list, &len, "\"", 1);
        }
        describe(v, got, sizeof got);
        return fail(c, "expected one of %s, got %s%s", list, got, hint);
}

/*
 * Absolute, normalised: "." and empty components dropped, no trailing
 * slash. ".." is refused rather than resolved: the policy author must say
 * which directory they mean, and the broker opens beneath exactly that one.
 */
static int read_path(struct ctx *c, json_t *v, const struct nk_policy_key *key, void *base)
{
        _cleanup_free_ char *out = NULL;
        const char *s, *p;
        size_t len = 0;
        int r;

        r = get_string(c, v, "an absolute path", &s);
        if (r < 0)
                return r;
        if (s[0] != '/')
                return fail(c, "expected an absolute path, got \"%.200s\"", s);
        if (strlen(s) >= PATH_MAX)
                return fail(c, "path longer than %d bytes", PATH_MAX - 1);
        out = malloc(strlen(s) + 2);
        if (!out)
                return -ENOMEM;
        for (p = s; *p;) {
                size_t n;

                while (*p == '/')
                        p++;
                n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return fail(c, "\"..\" is not allowed in a path, got \"%.200s\"", s);
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        out[len++] = '/';
                        memcpy(out + len, p, n);
                        len += n;
                }
                p += n;
        }
        if (len == 0)
                out[len++] = '/';
        out[len] = '\0';
        memcpy((char *) base + key->offset, &out, sizeof out);
        out = NULL;
        return 0;
}

static int read_object(struct ctx *c, json_t *obj, const struct nk_policy_key *keys, void *base);
static int read_array(struct ctx *c, json_t *v, const struct nk_policy_key *key);

static int read_value(struct ctx *c, json_t *v, const struct nk_policy_key *key, void *base)
{
        char got[GOT_MAX + 8];

        switch (key->type) {
        case NK_POLICY_KEY_INTEGER:
                return read_integer(c, v, key, base);
        case NK_POLICY_KEY_ENUM:
                return read_enum(c, v, key, base);
        case NK_POLICY_KEY_BOOLEAN:
                if (!json_is_boolean(v)) {
                        describe(v, got, sizeof got);
                        return fail(c, "expected true or false, got %s", got);
                }
                store(base, key, json_is_true(v));
                return 0;
        case NK_POLICY_KEY_STRING:
                return read_path(c, v, key, base);
        case NK_POLICY_KEY_OBJECT:
                if (!json_is_object(v)) {
                        describe(v, got, sizeof got);
                        return fail(c, "expected an object, got %s", got);
                }
                return read_object(c, v, key->keys, base);
        case NK_POLICY_KEY_ARRAY:
                if (!json_is_array(v)) {
                        describe(v, got, sizeof got);
                        return fail(c, "expected an array, got %s", got);
                }
                return read_array(c, v, key);
        }
        abort();
}

static int read_object(struct ctx *c, json_t *obj, const struct nk_policy_key *keys, void *base)
{
        const char *name;
        json_t *v;
        int r;

        json_object_foreach(obj, name, v) {
                const struct nk_policy_key *key = NULL;

                for (const struct nk_policy_key *k = keys; k->name; k++)
                        if (strcmp(k->name, name) == 0)
                                key = k;
                push_key(c, name);
                if (key) {
                        r = read_value(c, v, key, base);
                } else {
                        char hint[96];

                        suggest(name, &keys[0].name, sizeof(struct nk_policy_key), hint, sizeof hint);
                        r = fail_at(c, true, "unknown key%s", hint);
                }
                if (r < 0)
                        return r;
                pop(c);
        }
        for (const struct nk_policy_key *k = keys; k->name; k++)
                if (k->required && !json_object_get(obj, k->name))
                        return fail(c, "missing required key \"%s\"", k->name);
        return 0;
}

/* ---- files and network ----------------------------------------------------- */

/* The current path with the index at position pos replaced, for "same as" hints. */
static void sibling_path(const struct ctx *c, size_t pos, size_t index, char *buf, size_t size)
{
        struct nk_json_comp comps[PATH_DEPTH];

        memcpy(comps, c->path, sizeof(struct nk_json_comp) * c->depth);
        comps[pos].index = index;
        nk_json_path_format(comps, c->depth, false, buf, size);
}

/* Whether path lies beneath dir (or is it), by whole components. */
static int read_files(struct ctx *c, json_t *v)
{
        struct nk_policy_file *files;
        size_t n = json_array_size(v), local = 0, local_bytes = 0;
        char got[GOT_MAX + 8], other[128];
        int r;

        if (n == 0)
                return 0;
        files = calloc(n, sizeof *files);
        if (!files)
                return -ENOMEM;
        c->p->files = files;
        c->p->nfiles = n;
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(v, i);

                push_index(c, i);
                if (!json_is_object(e)) {
                        describe(e, got, sizeof got);
                        return fail(c, "expected an object, got %s", got);
                }
                apply_defaults(file_keys, &files[i]);
                r = read_object(c, e, file_keys, &files[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(files[j].path, files[i].path) == 0) {
                                push_key(c, "path");
                                sibling_path(c, c->depth - 2, j, other, sizeof other);
                                return fail(c, "duplicate path \"%.200s\" (same as %s)", files[i].path, other);
                        }
                /* The host's /proc is its own pid namespace's: the runtime's
                 * would show the VM's processes, which a host must never
                 * reach. */
                if (nk_path_beneath(files[i].path, "/proc")) {
                        push_key(c, "path");
                        return fail(c, "\"%.200s\" cannot be granted: the host reads its own /proc (its own "
                                       "processes); the VM's /proc is never handed to it", files[i].path);
                }
                if (nk_path_beneath(files[i].path, "/tmp") || nk_path_beneath(files[i].path, "/dev")) {
                        local++;
                        local_bytes += 4 + strlen(files[i].path);
                }
                if (local > NK_BROKER_LOCAL_MAX || local_bytes > NK_BROKER_CHANNEL_MAX - 4) {
                        push_key(c, "path");
                        return fail(c, "more than %d grants, or %d bytes of paths, beneath /tmp and /dev (the host "
                                       "is told each one)", NK_BROKER_LOCAL_MAX, NK_BROKER_CHANNEL_MAX - 4);
                }
                pop(c);
        }
        return 0;
}

static bool valid_hostname(const char *s, size_t n)
{
        size_t label = 0;
        bool digits = true;

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i <= n; i++) {
                char ch = i < n ? s[i] : '.';

                if (ch == '.') {
                        if (label == 0 || label > 63 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        if (i < n)
                                digits = true;
                        continue;
                }
                if (!isalnum((unsigned char) ch) && ch != '-')
                        return false;
                if (ch == '-' && label == 0)
                        return false;
                if (!isdigit((unsigned char) ch))
                        digits = false;
                label++;
        }
        /* "127.1" is an address to getaddrinfo, not a name: no numeric top label. */
        return !digits;
}

/* An IP literal in its canonical form, or a lower-cased host name. */
static int canonical_host(const char *h, size_t n, bool v6, char **ret)
{
        char tmp[256], out[NK_IP_TEXT_MAX];

        if (n >= sizeof tmp)
                return -EINVAL;
        memcpy(tmp, h, n);
        tmp[n] = '\0';
        /* Bracketed: IPv6 only; bare: IPv4 or a name (an IPv6 literal
         * needs brackets beside a port). */
        int family = nk_ip_canonical(tmp, out);
        if (v6 ? family != AF_INET6 : family == AF_INET6)
                return -EINVAL;
        if (!family) {
                if (!valid_hostname(tmp, n))
                        return -EINVAL;
                for (size_t i = 0; i < n; i++)
                        tmp[i] = (char) tolower((unsigned char) tmp[i]);
                *ret = strdup(tmp);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = strdup(out);
        return *ret ? 0 : -ENOMEM;
}

static int parse_endpoint(struct ctx *c, const char *orig, bool listen, struct nk_policy_endpoint *ret)
{
        const char *s = orig, *host, *port, *end;
        size_t hostlen;
        unsigned long v = 0;
        bool v6 = false;
        char *h = NULL;
        int r;

        if (strncmp(s, "udp:", 4) == 0) {
                if (!listen)
                        return fail(c, "\"udp:\" is only allowed in listen entries, got \"%.200s\"", orig);
                ret->udp = true;
                s += 4;
        }
        if (s[0] == '[') {
                end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return fail(c, "expected [IPV6]:PORT, got \"%.200s\"", orig);
                host = s + 1;
                hostlen = (size_t) (end - host);
                port = end + 2;
                v6 = true;
        } else {
                end = strrchr(s, ':');
                if (!end || end == s)
                        return fail(c, "expected HOST:PORT, got \"%.200s\"", orig);
                host = s;
                hostlen = (size_t) (end - s);
                port = end + 1;
                if (memchr(host, ':', hostlen))
                        return fail(c, "an IPv6 address must be in brackets, as in \"[::1]:80\", got \"%.200s\"",
                                    orig);
        }
        if (port[0] == '\0' || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
            (v = strtoul(port, NULL, 10)) < 1 || v > 65535)
                return fail(c, "expected a port from 1 to 65535, got \"%.200s\"", orig);
        r = canonical_host(host, hostlen, v6, &h);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(c, "invalid %s \"%.*s\"",
                            v6 ? "IPv6 address" : strspn(host, "0123456789.") >= hostlen ? "IPv4 address" : "host name",
                            (int) (hostlen > 200 ? 200 : hostlen), host);
        ret->host = h;
        ret->port = (uint16_t) v;
        return 0;
}

static int read_endpoints(struct ctx *c, json_t *v, bool listen)
{
        struct nk_policy_endpoint *eps;
        size_t n = json_array_size(v);
        char other[128];
        const char *s;
        int r;

        if (n == 0)
                return 0;
        eps = calloc(n, sizeof *eps);
        if (!eps)
                return -ENOMEM;
        if (listen) {
                c->p->listen = eps;
                c->p->nlisten = n;
        } else {
                c->p->connect = eps;
                c->p->nconnect = n;
        }
        for (size_t i = 0; i < n; i++) {
                push_index(c, i);
                r = get_string(c, json_array_get(v, i), listen ? "\"[udp:]HOST:PORT\"" : "\"HOST:PORT\"", &s);
                if (r < 0)
                        return r;
                r = parse_endpoint(c, s, listen, &eps[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (eps[j].port == eps[i].port && eps[j].udp == eps[i].udp &&
                            strcmp(eps[j].host, eps[i].host) == 0) {
                                sibling_path(c, c->depth - 1, j, other, sizeof other);
                                return fail(c, "duplicate entry \"%.200s\" (same as %s)", s, other);
                        }
                pop(c);
        }
        return 0;
}

/* An array of distinct strings, each checked (and made canonical) by
 * check, which returns a new copy or fails. */
static int read_strings(struct ctx *c, json_t *v, const char *what,
                        int (*check)(struct ctx *c, const char *s, char **ret), const char *const **ret,
                        size_t *ret_n)
{
        size_t n = json_array_size(v);
        char other[128], *copy = NULL;
        const char **list;
        const char *s;
        int r;

        if (n == 0)
                return 0;
        list = calloc(n, sizeof *list);
        if (!list)
                return -ENOMEM;
        *ret = list;
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                push_index(c, i);
                r = get_string(c, json_array_get(v, i), what, &s);
                if (r < 0)
                        return r;
                r = check(c, s, &copy);
                if (r < 0)
                        return r;
                list[i] = copy;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(list[j], copy) == 0) {
                                sibling_path(c, c->depth - 1, j, other, sizeof other);
                                return fail(c, "duplicate name \"%.200s\" (same as %s)", s, other);
                        }
                pop(c);
        }
        return 0;
}

static int check_host_name(struct ctx *c, const char *s, char **ret)
{
        if (nk_ip_is_literal(s) || (s[0] == '[' && strchr(s, ']')))
                return fail(c, "expected a host name, got the IP address \"%.200s\": addresses need no resolving",
                            s);
        int r = canonical_host(s, strlen(s), false, ret);
        if (r == -ENOMEM)
                return r;
        return r < 0 ? fail(c, "invalid host name \"%.200s\"", s) : 0;
}

/* Names the host's environment may take from the VM's: POSIX names only,
 * and none that steers the host's loader or nifkit itself. */
static int check_env_name(struct ctx *c, const char *s, char **ret)
{
        bool valid = s[0] && !isdigit((unsigned char) s[0]) && strlen(s) <= 128;
        for (const char *p = s; valid && *p; p++)
                valid = isalnum((unsigned char) *p) || *p == '_';
        if (!valid)
                return fail(c, "invalid environment variable name \"%.200s\": letters, digits and _, not starting "
                               "with a digit", s);
        if (strncmp(s, "LD_", 3) == 0 || strncmp(s, "NIFKIT_", 7) == 0)
                return fail(c, "\"%.200s\" cannot be passed: %s", s,
                            s[0] == 'L' ? "LD_ variables steer the host's dynamic loader"
                                        : "NIFKIT_ variables are nifkit's own");
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int read_array(struct ctx *c, json_t *v, const struct nk_policy_key *key)
{
        switch (key->format) {
        case NK_POLICY_FORMAT_FILES:
                return read_files(c, v);
        case NK_POLICY_FORMAT_CONNECT:
                return read_endpoints(c, v, false);
        case NK_POLICY_FORMAT_LISTEN:
                return read_endpoints(c, v, true);
        case NK_POLICY_FORMAT_HOSTNAME:
                return read_strings(c, v, "a host name", check_host_name, &c->p->resolve, &c->p->nresolve);
        case NK_POLICY_FORMAT_ENVNAME:
                return read_strings(c, v, "an environment variable's name", check_env_name, &c->p->env,
                                    &c->p->nenv);
        default:
                abort();
        }
}

static bool resolvable(const struct nk_policy *p, const char *host)
{
        for (size_t i = 0; i < p->nresolve; i++)
                if (strcmp(p->resolve[i], host) == 0)
                        return true;
        return false;
}

/*
 * The runtime resolves names on the host's behalf and only the ones listed,
 * so an endpoint naming any other host could never be reached: say so now
 * rather than at the first connect.
 */
static int check_names(struct ctx *c, const char *list, const struct nk_policy_endpoint *eps, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (nk_ip_is_literal(eps[i].host) || resolvable(c->p, eps[i].host))
                        continue;
                push_key(c, "network");
                push_key(c, list);
                push_index(c, i);
                return fail(c, "host \"%s\" is not listed in $.network.resolve", eps[i].host);
        }
        return 0;
}

/* ---- loading --------------------------------------------------------------- */

static void policy_freep(struct nk_policy **p)
{
        nk_policy_free(*p);
}

static int syntax_error(const char *text, size_t len, const json_error_t *jerr, struct nk_policy_error *err)
{
        size_t tok_start, tok_end;

        if (json_error_code(jerr) == json_error_out_of_memory)
                return error_finish(err, -ENOMEM, "out of memory");
        nk_json_path_at(text, len, (size_t) jerr->position, err->path, sizeof err->path, &tok_start, &tok_end);
        /*
         * jansson's place is the last character it read; when that is inside
         * or at the end of a token ("too big integer", a bad string), point
         * at the token's start instead, as for every other error.
         */
        if (tok_end > 0 && (size_t) jerr->position > tok_start && (size_t) jerr->position <= tok_end) {
                nk_json_position(text, len, tok_start, &err->line, &err->column);
        } else {
                err->line = jerr->line > 0 ? jerr->line : 1;
                err->column = jerr->column > 0 ? jerr->column : 1;
        }
        return error_finish(err, -EINVAL, jerr->text);
}

/* What a document is: a policy, or a library's entitlements. */
struct doc_kind {
        const struct nk_policy_key *top;
        const char *what;               /* "a policy object" */
        bool entitlements;              /* no version required; limits left unset */
};

static const struct doc_kind policy_kind = { top_keys, "a policy object", false };
static const struct doc_kind entitlements_kind = { entitlement_keys, "an entitlements object", true };

static int load_doc(const char *text, size_t len, const char *name, const struct doc_kind *kind,
                    struct nk_policy **ret, struct nk_policy_error *err)
{
        _cleanup_(policy_freep) struct nk_policy *p = NULL;
        _cleanup_json_ json_t *root = NULL;
        json_error_t jerr;
        struct ctx c;
        char got[GOT_MAX + 8];
        json_t *v;
        int r;

        error_init(err, name);
        /* strspn stops at a NUL byte: such a file goes on to jansson, which says where. */
        if (strspn(text, " \t\r\n") >= len) {
                /* jansson's "unexpected token near end of file" does not say the file is empty. */
                nk_json_position(text, len, len, &err->line, &err->column);
                snprintf(err->path, sizeof err->path, "$");
                char what[64];
                snprintf(what, sizeof what, "empty file, expected %s", kind->what);
                return error_finish(err, -EINVAL, what);
        }
        root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!root)
                return syntax_error(text, len, &jerr, err);

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->source = strdup(name);
        if (!p->source)
                return -ENOMEM;
        c = (struct ctx) { .text = text, .len = len, .err = err, .p = p };

        if (!json_is_object(root)) {
                describe(root, got, sizeof got);
                return fail(&c, "expected an object, got %s", got);
        }
        /* The version decides what the rest means, so it is checked first. */
        v = json_object_get(root, kind->top[0].name);
        if (!v && !kind->entitlements)
                return fail(&c, "missing required key \"%s\"", kind->top[0].name);
        if (v) {
                push_key(&c, kind->top[0].name);
                r = read_integer(&c, v, &kind->top[0], p);
                if (r < 0)
                        return r;
                pop(&c);
        }
        if (kind->entitlements) {
                /* A limit the library does not ask about stays unset:
                 * every byte one (NK_ENTITLEMENT_UNSET). */
                memset(&p->limits, 0xff, sizeof p->limits);
                p->version = NK_ENTITLEMENTS_VERSION;
        } else {
                apply_defaults(top_keys, p);
        }
        r = read_object(&c, root, kind->top, p);
        if (r < 0)
                return r;
        r = check_names(&c, "connect", p->connect, p->nconnect);
        if (r < 0)
                return r;
        r = check_names(&c, "listen", p->listen, p->nlisten);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

NK_EXPORT int nk_policy_load_string(const char *text, const char *name, struct nk_policy **ret,
                                    struct nk_policy_error *err)
{
        struct nk_policy_error scratch;

        if (!err)
                err = &scratch;
        if (!name)
                name = "<string>";
        if (!text || !ret) {
                error_init(err, name);
                return error_finish(err, -EINVAL, "no policy text");
        }
        return load_doc(text, strlen(text), name, &policy_kind, ret, err);
}

NK_EXPORT int nk_entitlements_load_string(const char *text, const char *name, struct nk_policy **ret,
                                          struct nk_policy_error *err)
{
        struct nk_policy_error scratch;

        if (!err)
                err = &scratch;
        if (!name)
                name = "<entitlements>";
        if (!text || !ret) {
                error_init(err, name);
                return error_finish(err, -EINVAL, "no entitlements text");
        }
        return load_doc(text, strlen(text), name, &entitlements_kind, ret, err);
}

NK_EXPORT int nk_policy_load(const char *path, struct nk_policy **ret, struct nk_policy_error *err)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct nk_policy_error scratch;
        struct stat st;
        size_t len = 0;

        if (!err)
                err = &scratch;
        error_init(err, path ? path : "<null>");
        if (!path || !ret)
                return error_finish(err, -EINVAL, "no policy file");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                return error_finish(err, r, strerror(-r));
        }
        if (S_ISDIR(st.st_mode))
                return error_finish(err, -EISDIR, strerror(EISDIR));
        buf = malloc(POLICY_MAX_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, POLICY_MAX_BYTES + 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        return error_finish(err, r, strerror(-r));
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > POLICY_MAX_BYTES)
                        return error_finish(err, -EFBIG, "larger than 1 MiB, not a policy");
        }
        buf[len] = '\0';
        return load_doc(buf, len, path, &policy_kind, ret, err);
}

NK_EXPORT int nk_policy_default(struct nk_policy **ret)
{
        struct nk_policy_error err;

        /* policies/default.json says the same; a unit test holds them equal. */
        return load_doc("{\"nifkit_policy\": 1}", strlen("{\"nifkit_policy\": 1}"), "<default>", &policy_kind, ret,
                        &err);
}

NK_EXPORT void nk_policy_free(struct nk_policy *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->nfiles; i++)
                free((char *) p->files[i].path);
        free((void *) p->files);
        for (size_t i = 0; i < p->nconnect; i++)
                free((char *) p->connect[i].host);
        free((void *) p->connect);
        for (size_t i = 0; i < p->nlisten; i++)
                free((char *) p->listen[i].host);
        free((void *) p->listen);
        for (size_t i = 0; i < p->nresolve; i++)
                free((char *) p->resolve[i]);
        free((void *) p->resolve);
        for (size_t i = 0; i < p->nenv; i++)
                free((char *) p->env[i]);
        free((void *) p->env);
        free((char *) p->source);
        free(p);
}

NK_EXPORT const char *nk_policy_launcher_name(enum nk_policy_launcher l)
{
        if ((unsigned) l < NK_ARRAY_SIZE(launcher_values) - 1)
                return launcher_values[l];
        return NULL;
}
