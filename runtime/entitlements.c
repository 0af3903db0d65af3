/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A library's entitlements (nifkit_entitlements.h): finding the document
 * that travels with the .so, and the policy a library then runs under, the
 * intersection of what it asks for and what the operator's policy grants.
 *
 * The intersection works on the policy's JSON, so that the effective
 * policy is the operator's own text with only the grants narrowed: keys the
 * entitlements do not speak of (launcher, cgroup, restart, workers, env…)
 * stay as the operator wrote them. It is checked by the policy loader
 * before it is handed out.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "path.h"
#include "nifkit_entitlements.h"
#include "nifkit_policy.h"
#include "policy-keys.h"
#include "sequencer.h"

/* An entitlements document larger than this is not one. */
#define MAX_DOCUMENT (64 * 1024)

/* jansson's json_auto_t, spelt like the other cleanups. */
#define _cleanup_json_ _cleanup_(json_decrefp)

static void policy_freep(struct nk_policy **p)
{
        nk_policy_free(*p);
}

static int read_sidecar(const char *path, char **ret)
{
        _cleanup_free_ char *buf = malloc(MAX_DOCUMENT + 1);
        FILE *f;
        size_t n;

        if (!buf)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        n = fread(buf, 1, MAX_DOCUMENT + 1, f);
        bool bad = ferror(f);
        fclose(f);
        if (bad)
                return -EIO;
        if (n > MAX_DOCUMENT)
                return -EFBIG;
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 1;
}

NK_EXPORT int nk_entitlements_find(const char *library, const char *sidecar_path, char **ret_text, char *where,
                                   size_t size)
{
        _cleanup_free_ char *sidecar = NULL;
        void *section = NULL;
        size_t len = 0;
        int r;

        *ret_text = NULL;
        if (size)
                where[0] = '\0';
        r = nk_elf_section(library, NIFKIT_ENTITLEMENTS_SECTION, &section, &len);
        if (r < 0 && r != -ENOEXEC) {
                snprintf(where, size, "%s", library);
                return r;
        }
        if (r > 0) {
                snprintf(where, size, "%s[%s]", library, NIFKIT_ENTITLEMENTS_SECTION);
                /* One string literal: the document, its NUL, nothing after
                 * (a second NIFKIT_ENTITLEMENTS elsewhere in the library
                 * would append its own). */
                size_t doc = strnlen(section, len);
                for (size_t i = doc; i < len; i++)
                        if (((char *) section)[i] != '\0') {
                                free(section);
                                return -ENOTUNIQ;
                        }
                if (len > MAX_DOCUMENT) {
                        free(section);
                        return -EFBIG;
                }
                *ret_text = section;
                return 1;
        }
        /* NAME.so → NAME.entitlements.json beside it */
        size_t n = strlen(library);
        if (n > 3 && strcmp(library + n - 3, ".so") == 0)
                n -= 3;
        if (sidecar_path)
                sidecar = strdup(sidecar_path);
        else if (asprintf(&sidecar, "%.*s.entitlements.json", (int) n, library) < 0)
                sidecar = NULL;
        if (!sidecar)
                return -ENOMEM;
        snprintf(where, size, "%s", sidecar);
        return read_sidecar(sidecar, ret_text);
}

/* ---- the intersection ----------------------------------------------------- */

struct notes {
        char *text;
        size_t len;
        FILE *f;
};

static void note(struct notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct notes *n, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfprintf(n->f, fmt, ap);
        va_end(ap);
        fputc('\n', n->f);
}

static const char *const access_names[] = { "read", "read-write", "create" };

static int add_file(json_t *files, const char *path, enum nk_policy_access access, bool no_symlinks)
{
        size_t i;
        json_t *e;

        /* One entry per path (the loader refuses two). Both candidates are
         * within what the operator grants there; the narrower one stays. */
        json_array_foreach(files, i, e) {
                if (strcmp(json_string_value(json_object_get(e, "path")), path) != 0)
                        continue;
                const char *have = json_string_value(json_object_get(e, "access"));
                for (size_t a = 0; a < NK_ARRAY_SIZE(access_names); a++)
                        if (strcmp(have, access_names[a]) == 0 && a > (size_t) access)
                                json_object_set_new(e, "access", json_string(access_names[access]));
                if (no_symlinks)
                        json_object_set_new(e, "no_symlinks", json_true());
                return 0;
        }
        e = json_pack("{s:s, s:s}", "path", path, "access", access_names[access]);
        if (!e)
                return -ENOMEM;
        if (no_symlinks)
                json_object_set_new(e, "no_symlinks", json_true());
        return json_array_append_new(files, e) < 0 ? -ENOMEM : 0;
}

/* The deepest of files[0..n) whose directory holds path, as the broker
 * picks the grant for a path (the longest match); NULL if none. */
static const struct nk_policy_file *deepest(const struct nk_policy_file *files, size_t n, const char *path)
{
        const struct nk_policy_file *best = NULL;

        for (size_t i = 0; i < n; i++)
                if (nk_path_beneath(path, files[i].path) && (!best || strlen(files[i].path) > strlen(best->path)))
                        best = &files[i];
        return best;
}

static int add_narrowed(json_t *files, const char *path, const struct nk_policy_file *a,
                        const struct nk_policy_file *b)
{
        return add_file(files, path, a->access < b->access ? a->access : b->access, a->no_symlinks || b->no_symlinks);
}

/*
 * The broker gives a path the access of the deepest grant that holds it,
 * so the intersection is made of two kinds of entries, each judged by the
 * grant that would decide it: every request, with the deepest operator
 * grant above it; every operator grant beneath a request, with the
 * deepest request above it. A narrower grant of either side beneath a
 * wider one thus stays narrower.
 */
static int intersect_files(json_t *root, const struct nk_policy *p, const struct nk_policy *want, struct notes *n)
{
        _cleanup_json_ json_t *files = json_array();
        int r;

        if (!files)
                return -ENOMEM;
        for (size_t j = 0; j < want->nfiles; j++) {
                const struct nk_policy_file *w = &want->files[j];
                const struct nk_policy_file *g = deepest(p->files, p->nfiles, w->path);
                if (g && (r = add_narrowed(files, w->path, g, w)) < 0)
                        return r;
        }
        for (size_t i = 0; i < p->nfiles; i++) {
                const struct nk_policy_file *g = &p->files[i];
                const struct nk_policy_file *w = deepest(want->files, want->nfiles, g->path);
                if (w && (r = add_narrowed(files, g->path, g, w)) < 0)
                        return r;
        }
        for (size_t i = 0; i < p->nfiles; i++) {
                const struct nk_policy_file *g = &p->files[i];
                bool used = deepest(want->files, want->nfiles, g->path) != NULL;
                for (size_t j = 0; !used && j < want->nfiles; j++)
                        used = nk_path_beneath(want->files[j].path, g->path);
                if (!used)
                        note(n, "files: %s (%s) is granted but not requested: dropped", g->path,
                             access_names[g->access]);
        }
        for (size_t j = 0; j < want->nfiles; j++) {
                const struct nk_policy_file *w = &want->files[j];
                const struct nk_policy_file *g = deepest(p->files, p->nfiles, w->path);
                bool covered = g && g->access >= w->access, partly = g != NULL;
                /* A narrower operator grant beneath the request narrows it. */
                for (size_t i = 0; i < p->nfiles; i++)
                        if (nk_path_beneath(p->files[i].path, w->path) && strcmp(p->files[i].path, w->path) != 0) {
                                partly = true;
                                if (p->files[i].access < w->access)
                                        covered = false;
                        }
                if (!covered)
                        note(n, "files: %s (%s) is requested but %s", w->path, access_names[w->access],
                             partly ? "granted only in part (a narrower directory or access)" : "not granted");
        }
        if (p->nfiles || want->nfiles)
                return json_object_set(root, "files", files) < 0 ? -ENOMEM : 0;
        return 0;
}

static bool same_endpoint(const struct nk_policy_endpoint *a, const struct nk_policy_endpoint *b)
{
        return a->port == b->port && a->udp == b->udp && strcmp(a->host, b->host) == 0;
}

static void endpoint_text(const struct nk_policy_endpoint *e, char *buf, size_t size)
{
        bool v6 = strchr(e->host, ':') != NULL;
        snprintf(buf, size, "%s%s%s%s:%u", e->udp ? "udp:" : "", v6 ? "[" : "", e->host, v6 ? "]" : "",
                 (unsigned) e->port);
}

/* Keeps the entries of the policy's list (JSON array at network.key) that
 * the library asks for too. */
static int intersect_endpoints(json_t *network, const char *key, const struct nk_policy_endpoint *have,
                               size_t nhave, const struct nk_policy_endpoint *want, size_t nwant, struct notes *n)
{
        json_t *orig = network ? json_object_get(network, key) : NULL;
        _cleanup_json_ json_t *kept = json_array();
        char text[300];

        if (!kept)
                return -ENOMEM;
        for (size_t i = 0; i < nhave; i++) {
                bool asked = false;
                for (size_t j = 0; j < nwant && !asked; j++)
                        asked = same_endpoint(&have[i], &want[j]);
                endpoint_text(&have[i], text, sizeof text);
                if (!asked)
                        note(n, "network.%s: %s is granted but not requested: dropped", key, text);
                else if (json_array_append(kept, json_array_get(orig, i)) < 0)
                        return -ENOMEM;
        }
        for (size_t j = 0; j < nwant; j++) {
                bool granted = false;
                for (size_t i = 0; i < nhave && !granted; i++)
                        granted = same_endpoint(&have[i], &want[j]);
                endpoint_text(&want[j], text, sizeof text);
                if (!granted)
                        note(n, "network.%s: %s is requested but not granted", key, text);
        }
        if (network && orig)
                return json_object_set(network, key, kept) < 0 ? -ENOMEM : 0;
        return 0;
}

static int intersect_names(json_t *network, const char *const *have, size_t nhave, const char *const *want,
                           size_t nwant, struct notes *n)
{
        json_t *orig = network ? json_object_get(network, "resolve") : NULL;
        _cleanup_json_ json_t *kept = json_array();

        if (!kept)
                return -ENOMEM;
        for (size_t i = 0; i < nhave; i++) {
                bool asked = false;
                for (size_t j = 0; j < nwant && !asked; j++)
                        asked = strcmp(have[i], want[j]) == 0;
                if (!asked)
                        note(n, "network.resolve: %s is granted but not requested: dropped", have[i]);
                else if (json_array_append(kept, json_array_get(orig, i)) < 0)
                        return -ENOMEM;
        }
        for (size_t j = 0; j < nwant; j++) {
                bool granted = false;
                for (size_t i = 0; i < nhave && !granted; i++)
                        granted = strcmp(have[i], want[j]) == 0;
                if (!granted)
                        note(n, "network.resolve: %s is requested but not granted", want[j]);
        }
        if (network && orig)
                return json_object_set(network, "resolve", kept) < 0 ? -ENOMEM : 0;
        return 0;
}

static uint64_t field(const struct nk_policy *p, const struct nk_policy_key *k)
{
        const char *src = (const char *) p + k->offset;
        uint32_t v32;
        uint64_t v64;

        if (k->size == sizeof v32) {
                memcpy(&v32, src, sizeof v32);
                return v32 == UINT32_MAX ? UINT64_MAX : v32;
        }
        memcpy(&v64, src, sizeof v64);
        return v64;
}

/* Each limit the library names: the lower of the two ceilings. */
static int intersect_limits(json_t *root, const struct nk_policy *p, const struct nk_policy *want, struct notes *n)
{
        json_t *limits = json_object_get(root, "limits");

        for (const struct nk_policy_key *k = nk_policy_limit_keys(); k->name; k++) {
                uint64_t w = field(want, k), g = field(p, k);
                if (w == UINT64_MAX || w == g)
                        continue;
                if (w > g) {
                        note(n, "limits.%s: %llu is requested but %llu granted", k->name, (unsigned long long) w,
                             (unsigned long long) g);
                        continue;
                }
                note(n, "limits.%s: %llu is requested, below the %llu granted: %llu", k->name,
                     (unsigned long long) w, (unsigned long long) g, (unsigned long long) w);
                if (!limits) {
                        limits = json_object();
                        if (!limits || json_object_set_new(root, "limits", limits) < 0)
                                return -ENOMEM;
                }
                if (json_object_set_new(limits, k->name, json_integer((json_int_t) w)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

NK_EXPORT int nk_policy_intersect(const char *policy_text, const char *policy_name, const struct nk_policy *want,
                                  char **ret_text, char **ret_notes, struct nk_policy_error *err)
{
        _cleanup_(policy_freep) struct nk_policy *p = NULL, *check = NULL;
        _cleanup_json_ json_t *root = NULL;
        struct notes n = { 0 };
        char *text = NULL;
        int r;

        r = nk_policy_load_string(policy_text, policy_name, &p, err);
        if (r < 0)
                return r;
        root = json_loads(policy_text, JSON_REJECT_DUPLICATES, NULL);
        if (!root)
                return -ENOMEM;         /* it loaded a moment ago */
        n.f = open_memstream(&n.text, &n.len);
        if (!n.f)
                return -errno;

        json_t *network = json_object_get(root, "network");
        r = intersect_files(root, p, want, &n);
        if (r >= 0)
                r = intersect_endpoints(network, "connect", p->connect, p->nconnect, want->connect, want->nconnect,
                                        &n);
        if (r >= 0)
                r = intersect_endpoints(network, "listen", p->listen, p->nlisten, want->listen, want->nlisten, &n);
        if (r >= 0)
                r = intersect_names(network, p->resolve, p->nresolve, want->resolve, want->nresolve, &n);
        if (r >= 0)
                r = intersect_limits(root, p, want, &n);
        if (fclose(n.f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(n.text);
                return r;
        }
        char *dump = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!dump || asprintf(&text, "%s\n", dump) < 0) {
                free(dump);
                free(n.text);
                return -ENOMEM;
        }
        free(dump);
        /* What the host will run under must be a policy the loader takes. */
        r = nk_policy_load_string(text, "<effective policy>", &check, err);
        if (r < 0) {
                free(text);
                free(n.text);
                return r;
        }
        *ret_text = text;
        *ret_notes = n.text;
        return 0;
}

NK_EXPORT void nk_entitlements_describe(const struct nk_policy *want, FILE *out)
{
        char text[300];
        bool any = false;

        for (size_t i = 0; i < want->nfiles; i++, any = true)
                fprintf(out, "  files: %s (%s%s)\n", want->files[i].path, access_names[want->files[i].access],
                        want->files[i].no_symlinks ? ", no symlinks" : "");
        for (size_t i = 0; i < want->nconnect; i++, any = true) {
                endpoint_text(&want->connect[i], text, sizeof text);
                fprintf(out, "  network.connect: %s\n", text);
        }
        for (size_t i = 0; i < want->nlisten; i++, any = true) {
                endpoint_text(&want->listen[i], text, sizeof text);
                fprintf(out, "  network.listen: %s\n", text);
        }
        for (size_t i = 0; i < want->nresolve; i++, any = true)
                fprintf(out, "  network.resolve: %s\n", want->resolve[i]);
        for (const struct nk_policy_key *k = nk_policy_limit_keys(); k->name; k++) {
                uint64_t v = field(want, k);
                if (v != UINT64_MAX) {
                        fprintf(out, "  limits.%s: %llu\n", k->name, (unsigned long long) v);
                        any = true;
                }
        }
        if (!any)
                fputs("  nothing: no files, no network, no limits of its own\n", out);
}
