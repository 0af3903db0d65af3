/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit wrap-release DIR / nifkit unwrap-release DIR
 *
 * An OTP release, as rebar3 (relx) and mix assemble it, is DIR/releases/VSN/
 * and DIR/lib/APP-VSN/ for every application, a NIF library being some
 * DIR/lib/APP-VSN/priv/…/NAME.so that defines nif_init. wrap-release wraps
 * each one in place (wrap.h) under the policy of its application; unwrap-
 * release renames every NAME.real.so back, so the release is again the very
 * files it was.
 *
 * Both work in two passes: the first reads the whole release and checks
 * every policy, library and name, changing nothing; only when all of it can
 * be done does the second write, and a write that fails undoes the ones
 * before it. A second wrap-release finds the proxies it wrote and changes
 * only what differs (a policy edited since, another host or proxy), so it
 * is idempotent.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_release.h"
#include "macro.h"
#include "nifkit.h"
#include "wrap.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 64
/* priv/ trees deeper than this are not what a release ships. */
#define MAX_DEPTH 16
#define MAX_EXCLUDES 64
#define MAX(a, b) ((a) > (b) ? (a) : (b))

struct app {
        char *dir;              /* lib/APP-VSN, relative to the release */
        char *name;             /* APP */
        const char *policy;     /* the policy file, or NULL: the default */
        char *policy_text;
        size_t policy_len;
        bool excluded;
        bool has_nif;
};

enum action {
        ACT_WRAP,               /* a NIF, not yet wrapped */
        ACT_REFRESH,            /* wrapped already: bring it to this policy, host and proxy */
        ACT_RESTORE,            /* unwrap-release: give back the original */
        ACT_SKIP,               /* left as it is, for the reason in why */
};

struct lib {
        size_t app;
        char *rel;              /* lib/APP-VSN/priv/…/NAME.so */
        char *path;             /* DIR/rel */
        enum action action;
        const char *why;
        struct nk_wrap_names names;
        unsigned changed;
        bool done;
        /* The policy cut down to the library's entitlements, if it has any. */
        char *entitled_text;
        size_t entitled_len;
        bool entitled;
        /* What a refresh replaces, to put back if a later write fails. */
        uint8_t *old_policy, *old_proxy;
        size_t old_policy_len, old_proxy_len;
        char old_host[PATH_MAX];
};

struct release {
        const char *who;
        const char *dir;
        bool unwrap;
        bool dry_run;
        bool strict;
        const char *policies;
        const char *excludes[MAX_EXCLUDES];
        size_t nexcludes;
        struct app *apps;
        size_t napps;
        struct lib *libs;
        size_t nlibs, libs_cap;
        char *default_text;     /* the built-in default or DIR/default.json */
        size_t default_len;
        const char *default_policy;
        struct nk_wrap_parts parts;
        bool have_parts;
};

static void release_free(struct release *rel)
{
        for (size_t i = 0; i < rel->napps; i++) {
                free(rel->apps[i].dir);
                free(rel->apps[i].name);
                free((char *) rel->apps[i].policy);
                free(rel->apps[i].policy_text);
        }
        for (size_t i = 0; i < rel->nlibs; i++) {
                free(rel->libs[i].rel);
                free(rel->libs[i].path);
                free(rel->libs[i].old_policy);
                free(rel->libs[i].old_proxy);
                free(rel->libs[i].entitled_text);
                nk_wrap_names_free(&rel->libs[i].names);
        }
        free(rel->apps);
        free(rel->libs);
        free(rel->default_text);
        free((char *) rel->default_policy);
        if (rel->have_parts)
                nk_wrap_parts_free(&rel->parts);
}

static void say(const struct release *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct release *rel, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", rel->who);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static bool ends_with(const char *s, const char *tail)
{
        size_t n = strlen(s), t = strlen(tail);
        return n >= t && strcmp(s + n - t, tail) == 0;
}

static bool is_dir(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_link(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

static int check_release(const struct release *rel)
{
        _cleanup_free_ char *lib = NULL, *releases = NULL;

        if (!is_dir(rel->dir)) {
                say(rel, "'%s' is not a directory", rel->dir);
                return -ENOTDIR;
        }
        if (asprintf(&lib, "%s/lib", rel->dir) < 0 || asprintf(&releases, "%s/releases", rel->dir) < 0)
                return -ENOMEM;
        if (!is_dir(lib) || !is_dir(releases)) {
                say(rel,
                    "'%s' is not an OTP release: it has no %s directory (a release holds lib/APP-VSN/ "
                    "and releases/VSN/, as rebar3 release and mix release build them, e.g. "
                    "_build/prod/rel/NAME)",
                    rel->dir, is_dir(lib) ? "releases/" : "lib/");
                return -ENOENT;
        }
        return 0;
}

static int app_cmp(const void *a, const void *b)
{
        return strcmp(((const struct app *) a)->dir, ((const struct app *) b)->dir);
}

/* Every lib/APP-VSN, sorted. An application that is a symbolic link (a
 * rebar3 dev_mode release links them to the build) is refused: wrapping it
 * in place would change the files it points to. */
static int find_apps(struct release *rel)
{
        _cleanup_free_ char *lib = NULL;
        struct dirent *de;
        size_t cap = 0;
        DIR *d;
        int r = 0;

        if (asprintf(&lib, "%s/lib", rel->dir) < 0)
                return -ENOMEM;
        d = opendir(lib);
        if (!d) {
                r = -errno;
                say(rel, "cannot read '%s': %s", lib, strerror(-r));
                return r;
        }
        while (r == 0 && (de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                const char *dash = strrchr(de->d_name, '-');
                if (de->d_name[0] == '.' || !dash || dash == de->d_name)
                        continue;
                if (asprintf(&path, "%s/%s", lib, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (!rel->unwrap && is_link(path)) {
                        say(rel,
                            "'%s' is a symbolic link (a rebar3 release in dev_mode): wrapping it in place would "
                            "change what it points to; build the release with {mode, prod} or --mode prod",
                            path);
                        r = -ELOOP;
                        break;
                }
                if (!is_dir(path))
                        continue;
                if (rel->napps == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        struct app *a = realloc(rel->apps, ncap * sizeof *a);
                        if (!a) {
                                r = -ENOMEM;
                                break;
                        }
                        rel->apps = a;
                        cap = ncap;
                }
                struct app *a = &rel->apps[rel->napps];
                *a = (struct app) { 0 };
                if (asprintf(&a->dir, "lib/%s", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                a->name = strndup(de->d_name, (size_t) (dash - de->d_name));
                rel->napps++;
                if (!a->name)
                        r = -ENOMEM;
        }
        closedir(d);
        if (r == 0)
                qsort(rel->apps, rel->napps, sizeof *rel->apps, app_cmp);
        return r;
}

static struct app *app_named(struct release *rel, const char *name)
{
        for (size_t i = 0; i < rel->napps; i++)
                if (strcmp(rel->apps[i].name, name) == 0)
                        return &rel->apps[i];
        return NULL;
}

static void list_apps(const struct release *rel, FILE *f)
{
        for (size_t i = 0; i < rel->napps; i++)
                fprintf(f, "%s%s", i ? ", " : "", rel->apps[i].name);
}

/* --policies DIR: APP.json for application APP, default.json for every
 * other one; schema.json (the format's schema) is not a policy. Each file
 * is checked; one naming an application the release does not have is an
 * error, as it is most likely a typo. */
static int read_policies(struct release *rel)
{
        struct dirent **names = NULL;
        int n, r = 0;

        if (!rel->policies)
                return nk_wrap_policy_text(rel->who, NULL, &rel->default_text, &rel->default_len);
        n = scandir(rel->policies, &names, NULL, alphasort);
        if (n < 0) {
                r = -errno;
                say(rel, "cannot read the policies directory '%s': %s", rel->policies, strerror(-r));
                return r;
        }
        for (int i = 0; i < n; i++) {
                const char *f = names[i]->d_name;
                _cleanup_free_ char *path = NULL, *app = NULL;
                if (r < 0 || f[0] == '.' || !ends_with(f, ".json") || strcmp(f, "schema.json") == 0)
                        continue;
                app = strndup(f, strlen(f) - 5);
                if (!app || asprintf(&path, "%s/%s", rel->policies, f) < 0) {
                        r = -ENOMEM;
                        continue;
                }
                if (strcmp(app, "default") == 0) {
                        r = nk_wrap_policy_text(rel->who, path, &rel->default_text, &rel->default_len);
                        rel->default_policy = TAKE_PTR(path);
                        continue;
                }
                if (!app_named(rel, app)) {
                        fprintf(stderr, "%s: '%s' is a policy for the application '%s', which '%s' does not "
                                        "contain (it has: ", rel->who, path, app, rel->dir);
                        list_apps(rel, stderr);
                        fputs(")\n", stderr);
                        r = -ENOENT;
                        continue;
                }
                /* Every version of it the release holds (one after a
                 * release upgrade, the one before it too). */
                for (size_t k = 0; r == 0 && k < rel->napps; k++) {
                        struct app *a = &rel->apps[k];
                        if (strcmp(a->name, app) != 0)
                                continue;
                        r = nk_wrap_policy_text(rel->who, path, &a->policy_text, &a->policy_len);
                        a->policy = r == 0 ? strdup(path) : NULL;
                        if (r == 0 && !a->policy)
                                r = -ENOMEM;
                }
        }
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (r == 0 && !rel->default_text)
                r = nk_wrap_policy_text(rel->who, NULL, &rel->default_text, &rel->default_len);
        return r;
}

static int apply_excludes(struct release *rel)
{
        for (size_t i = 0; i < rel->nexcludes; i++) {
                if (!app_named(rel, rel->excludes[i])) {
                        fprintf(stderr, "%s: --exclude %s: '%s' has no such application (it has: ", rel->who,
                                rel->excludes[i], rel->dir);
                        list_apps(rel, stderr);
                        fputs(")\n", stderr);
                        return -ENOENT;
                }
                for (size_t k = 0; k < rel->napps; k++)
                        if (strcmp(rel->apps[k].name, rel->excludes[i]) == 0)
                                rel->apps[k].excluded = true;
        }
        return 0;
}

static struct lib *add_lib(struct release *rel, size_t app, char *relpath, char *path)
{
        if (rel->nlibs == rel->libs_cap) {
                size_t cap = rel->libs_cap ? rel->libs_cap * 2 : 16;
                struct lib *l = realloc(rel->libs, cap * sizeof *l);
                if (!l)
                        return NULL;
                rel->libs = l;
                rel->libs_cap = cap;
        }
        struct lib *l = &rel->libs[rel->nlibs++];
        *l = (struct lib) { .app = app, .rel = relpath, .path = path };
        return l;
}

/* Whether NAME.real.so beside a proxy NAME.so is that proxy's library. */
static bool is_wrapped_real(const char *path)
{
        _cleanup_free_ char *proxy = NULL;
        _cleanup_free_ uint8_t *img = NULL;
        size_t len;

        if (asprintf(&proxy, "%.*s.so", (int) (strlen(path) - strlen(".real.so")), path) < 0)
                return false;
        return nk_wrap_read_file(proxy, &img, &len, NULL) == 0 && nk_elf_is_proxy(img, len) > 0;
}

/* One NAME.so of application app (relpath, path: taken): what to do with it. */
static int classify(struct release *rel, size_t app, char *relpath, char *path)
{
        _cleanup_free_ uint8_t *img = NULL;
        struct app *a = &rel->apps[app];
        enum action action = ACT_SKIP;
        const char *why = NULL;
        size_t len;
        int r;

        r = nk_wrap_read_file(path, &img, &len, NULL);
        if (r < 0) {
                say(rel, "cannot read '%s': %s", path, strerror(-r));
                goto fail;
        }
        r = nk_elf_is_proxy(img, len);
        if (r > 0) {
                a->has_nif = true;
                if (rel->unwrap)
                        action = ACT_RESTORE;
                else if (a->excluded)
                        why = "excluded (--exclude), but wrapped before: unwrap-release restores it";
                else
                        action = ACT_REFRESH;
        } else if (rel->unwrap) {
                free(relpath);  /* not wrapped: nothing to say about it */
                free(path);
                return 0;
        } else if (r == -ENOEXEC || (r = nk_library_is_nif(path)) == -ENOEXEC) {
                why = "not an ELF file";
        } else if (r < 0) {
                say(rel, "cannot read the symbols of '%s': %s", path, strerror(-r));
                goto fail;
        } else if (r == 0) {
                why = "not a NIF (no nif_init)";
        } else {
                a->has_nif = true;
                if (a->excluded)
                        why = "excluded (--exclude)";
                else
                        action = ACT_WRAP;
        }

        struct lib *l = add_lib(rel, app, relpath, path);
        if (!l) {
                r = -ENOMEM;
                goto fail;
        }
        l->action = action;
        l->why = why;
        if (action == ACT_SKIP)
                return 0;
        r = nk_wrap_names(rel->who, l->path, NULL, &l->names);
        if (r < 0)
                return r;
        if (action != ACT_WRAP && access(l->names.real, F_OK) < 0) {
                say(rel,
                    "'%s' is a nifkit proxy without its real library '%s': it was not wrapped in place, or "
                    "was damaged since; put the original library back in its place",
                    l->path, l->names.real);
                return -ENOENT;
        }
        return 0;
fail:
        free(relpath);
        free(path);
        return r;
}

static int walk(struct release *rel, size_t app, const char *relpath, int depth)
{
        _cleanup_free_ char *path = NULL;
        struct dirent **names = NULL;
        int n, r = 0;

        if (asprintf(&path, "%s/%s", rel->dir, relpath) < 0)
                return -ENOMEM;
        if (depth > MAX_DEPTH) {
                say(rel, "'%s' is nested deeper than %d directories: not searched further", path, MAX_DEPTH);
                return 0;
        }
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                r = -errno;
                say(rel, "cannot read '%s': %s", path, strerror(-r));
                return r;
        }
        for (int i = 0; i < n; i++) {
                const char *f = names[i]->d_name;
                _cleanup_free_ char *child = NULL, *full = NULL;
                struct stat st;
                if (r < 0 || strcmp(f, ".") == 0 || strcmp(f, "..") == 0)
                        continue;
                if (asprintf(&child, "%s/%s", relpath, f) < 0 || asprintf(&full, "%s/%s", path, f) < 0) {
                        r = -ENOMEM;
                        continue;
                }
                /* Symbolic links are not followed: libfoo.so -> libfoo.so.1
                 * names a file found under its own name, and a link out
                 * of the release is not the release's to change. */
                if (lstat(full, &st) < 0 || S_ISLNK(st.st_mode))
                        continue;
                if (S_ISDIR(st.st_mode))
                        r = walk(rel, app, child, depth + 1);
                else if (S_ISREG(st.st_mode) && ends_with(f, ".so") && f[0] != '.' &&
                         !(ends_with(f, ".real.so") && is_wrapped_real(full)))
                        r = classify(rel, app, TAKE_PTR(child), TAKE_PTR(full));
        }
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

static int find_libs(struct release *rel)
{
        for (size_t i = 0; i < rel->napps; i++) {
                _cleanup_free_ char *priv = NULL, *full = NULL;
                if (asprintf(&priv, "%s/priv", rel->apps[i].dir) < 0 ||
                    asprintf(&full, "%s/%s", rel->dir, priv) < 0)
                        return -ENOMEM;
                if (!rel->unwrap && is_link(full)) {
                        say(rel, "'%s' is a symbolic link (a rebar3 release in dev_mode): build the release with "
                                 "{mode, prod} or --mode prod", full);
                        return -ELOOP;
                }
                if (!is_dir(full))
                        continue;
                int r = walk(rel, i, priv, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *policy_of(const struct release *rel, const struct app *a)
{
        if (a->policy)
                return a->policy;
        return rel->default_policy ? rel->default_policy : "built-in default";
}

static const char *text_of(const struct release *rel, const struct app *a, size_t *len)
{
        *len = a->policy_text ? a->policy_len : rel->default_len;
        return a->policy_text ? a->policy_text : rel->default_text;
}

/* What a library is wrapped with: its application's policy, cut down to
 * the library's entitlements when it declares any. */
static const char *text_for(const struct release *rel, const struct lib *l, size_t *len)
{
        if (l->entitled_text) {
                *len = l->entitled_len;
                return l->entitled_text;
        }
        return text_of(rel, &rel->apps[l->app], len);
}

static int plan_entitlements(struct release *rel, struct lib *l)
{
        const struct app *a = &rel->apps[l->app];
        size_t len;
        const char *text = text_of(rel, a, &len);
        /* A wrapped library's entitlements are in its real library, or
         * beside it under its own NAME, not NAME.real. */
        const char *lib = l->action == ACT_WRAP ? l->path : l->names.real;
        _cleanup_free_ char *sidecar = NULL;

        if (asprintf(&sidecar, "%s/%s.entitlements.json", l->names.dir, l->names.name) < 0)
                return -ENOMEM;
        return nk_wrap_entitled_policy(rel->who, lib, sidecar, text, policy_of(rel, a), rel->strict, stdout,
                                       &l->entitled_text, &l->entitled_len, &l->entitled);
}

/* What a refresh would change, and what it would need to put back. */
static int plan_refresh(struct release *rel, struct lib *l)
{
        size_t len;
        const char *text = text_for(rel, l, &len);
        int r = nk_wrap_refresh(rel->who, &l->names, text, len, rel->parts.host_path, rel->parts.proxy,
                                rel->parts.proxy_len, true, &l->changed);
        if (r < 0 || l->changed == 0)
                return r;
        ssize_t k = readlink(l->names.host, l->old_host, sizeof l->old_host - 1);
        l->old_host[k > 0 ? k : 0] = '\0';
        if (nk_wrap_read_file(l->names.policy, &l->old_policy, &l->old_policy_len, NULL) < 0)
                l->old_policy = NULL;
        r = nk_wrap_read_file(l->names.proxy, &l->old_proxy, &l->old_proxy_len, NULL);
        if (r < 0)
                say(rel, "cannot read '%s': %s", l->names.proxy, strerror(-r));
        return r;
}

/* Takes back what apply wrote; the number of libraries it could not. */
static size_t undo(struct release *rel)
{
        size_t failed = 0;

        for (size_t i = rel->nlibs; i-- > 0;) {
                struct lib *l = &rel->libs[i];
                unsigned ignored;
                int r = 0;
                if (!l->done)
                        continue;
                if (l->action == ACT_WRAP)
                        r = nk_wrap_undo(rel->who, &l->names);
                else if (l->action == ACT_REFRESH && l->changed)
                        r = l->old_policy && l->old_host[0]
                                ? nk_wrap_refresh(rel->who, &l->names, (const char *) l->old_policy,
                                                  l->old_policy_len, l->old_host, l->old_proxy, l->old_proxy_len,
                                                  false, &ignored)
                                : -ENOENT;
                if (r < 0)
                        failed++;
                l->done = false;
        }
        return failed;
}

static int apply(struct release *rel)
{
        for (size_t i = 0; i < rel->nlibs; i++) {
                struct lib *l = &rel->libs[i];
                size_t len;
                const char *text = text_for(rel, l, &len);
                unsigned changed;
                int r = 0;

                switch (l->action) {
                case ACT_WRAP:
                        r = nk_wrap_install(rel->who, l->path, &l->names, text, len, &rel->parts);
                        break;
                case ACT_REFRESH:
                        if (l->changed)
                                r = nk_wrap_refresh(rel->who, &l->names, text, len, rel->parts.host_path,
                                                    rel->parts.proxy, rel->parts.proxy_len, false, &changed);
                        break;
                case ACT_RESTORE:
                        r = nk_wrap_undo(rel->who, &l->names);
                        break;
                case ACT_SKIP:
                        break;
                }
                if (r < 0) {
                        if (rel->unwrap) {
                                say(rel, "stopped at '%s': the libraries before it are restored, the rest are "
                                         "still wrapped", l->path);
                        } else {
                                size_t failed = undo(rel);
                                if (failed)
                                        say(rel, "stopped at '%s'; %zu of the libraries wrapped before it could not "
                                                 "be restored (said above): run unwrap-release", l->path, failed);
                                else
                                        say(rel, "nothing is changed: what was written before '%s' is undone",
                                            l->path);
                        }
                        return r;
                }
                l->done = l->action != ACT_SKIP;
        }
        return 0;
}

static void changes(unsigned changed, char *buf, size_t size)
{
        snprintf(buf, size, "%s%s%s%s%s", changed & NK_WRAP_CHANGED_POLICY ? "policy" : "",
                 (changed & NK_WRAP_CHANGED_POLICY) && (changed & ~NK_WRAP_CHANGED_POLICY) ? ", " : "",
                 changed & NK_WRAP_CHANGED_HOST ? "host" : "",
                 (changed & NK_WRAP_CHANGED_HOST) && (changed & NK_WRAP_CHANGED_PROXY) ? ", " : "",
                 changed & NK_WRAP_CHANGED_PROXY ? "proxy (from another nifkit)" : "");
}

static void result_of(const struct release *rel, const struct lib *l, char *buf, size_t size)
{
        char what[96];

        switch (l->action) {
        case ACT_WRAP:
                snprintf(buf, size, "%s%s", rel->dry_run ? "would wrap" : "wrapped",
                         l->entitled ? " (with its entitlements)" : "");
                break;
        case ACT_REFRESH:
                if (!l->changed) {
                        snprintf(buf, size, "unchanged");
                        break;
                }
                changes(l->changed, what, sizeof what);
                snprintf(buf, size, "%s: %s", rel->dry_run ? "would update" : "updated", what);
                break;
        case ACT_RESTORE:
                snprintf(buf, size, "%s", rel->dry_run ? "would restore" : "restored");
                break;
        case ACT_SKIP:
                snprintf(buf, size, "skipped: %s", l->why);
                break;
        }
}

static void print_table(const struct release *rel)
{
        int wa = (int) strlen("APPLICATION"), wl = (int) strlen("LIBRARY"), wp = (int) strlen("POLICY");
        size_t acted = 0, unchanged = 0, skipped = 0;

        if (rel->nlibs == 0) {
                printf(rel->unwrap ? "no wrapped library in '%s': nothing to restore\n"
                                   : "no NIF library in '%s' (no lib/APP-VSN/priv/.../*.so)\n",
                       rel->dir);
                return;
        }
        for (size_t i = 0; i < rel->nlibs; i++) {
                const struct lib *l = &rel->libs[i];
                const struct app *a = &rel->apps[l->app];
                wa = MAX(wa, (int) strlen(a->name));
                wl = MAX(wl, (int) strlen(l->rel));
                if (l->action == ACT_WRAP || l->action == ACT_REFRESH)
                        wp = MAX(wp, (int) strlen(policy_of(rel, a)));
        }
        if (rel->unwrap)
                printf("%-*s  %-*s  %s\n", wa, "APPLICATION", wl, "LIBRARY", "RESULT");
        else
                printf("%-*s  %-*s  %-*s  %s\n", wa, "APPLICATION", wl, "LIBRARY", wp, "POLICY", "RESULT");
        for (size_t i = 0; i < rel->nlibs; i++) {
                const struct lib *l = &rel->libs[i];
                const struct app *a = &rel->apps[l->app];
                char result[160];
                result_of(rel, l, result, sizeof result);
                if (rel->unwrap)
                        printf("%-*s  %-*s  %s\n", wa, a->name, wl, l->rel, result);
                else
                        printf("%-*s  %-*s  %-*s  %s\n", wa, a->name, wl, l->rel, wp,
                               l->action == ACT_SKIP ? "-" : policy_of(rel, a), result);
                if (l->action == ACT_SKIP)
                        skipped++;
                else if (l->action == ACT_REFRESH && !l->changed)
                        unchanged++;
                else
                        acted++;
        }
        printf("%zu %s%s, %zu unchanged, %zu skipped\n", acted,
               rel->unwrap ? "restored" : "wrapped or updated", rel->dry_run ? " (dry run: nothing written)" : "",
               unchanged, skipped);
}

static void warn_unused(const struct release *rel)
{
        for (size_t i = 0; i < rel->napps; i++)
                if (rel->apps[i].policy && !rel->apps[i].has_nif)
                        fprintf(stderr, "%s: warning: '%s' is a policy for '%s', which has no NIF library\n",
                                rel->who, rel->apps[i].policy, rel->apps[i].name);
}

static int run(struct release *rel, const char *proxy, const char *host)
{
        int r = check_release(rel);
        if (r < 0)
                return r;
        r = find_apps(rel);
        if (r < 0)
                return r;
        if (!rel->unwrap) {
                r = apply_excludes(rel);
                if (r < 0)
                        return r;
                r = read_policies(rel);
                if (r < 0)
                        return r;
                r = nk_wrap_find_parts(rel->who, proxy, host, &rel->parts);
                if (r < 0)
                        return r;
                rel->have_parts = true;
        }
        r = find_libs(rel);
        if (r < 0)
                return r;
        for (size_t i = 0; !rel->unwrap && i < rel->nlibs; i++)
                if ((rel->libs[i].action == ACT_WRAP || rel->libs[i].action == ACT_REFRESH) &&
                    (r = plan_entitlements(rel, &rel->libs[i])) < 0)
                        return r;
        for (size_t i = 0; i < rel->nlibs; i++)
                if (rel->libs[i].action == ACT_REFRESH && (r = plan_refresh(rel, &rel->libs[i])) < 0)
                        return r;
        if (!rel->unwrap)
                warn_unused(rel);
        if (!rel->dry_run) {
                r = apply(rel);
                if (r < 0)
                        return r;
        }
        print_table(rel);
        return fflush(stdout) == 0 ? 0 : -EIO;
}

static void usage(FILE *f, bool unwrap)
{
        if (unwrap) {
                fputs("usage: nifkit unwrap-release [--dry-run] RELEASE_DIR\n"
                      "Undo nifkit wrap-release: every wrapped NIF library of the release gets its\n"
                      "original file back (NAME.real.so renamed over the proxy, the same inode and\n"
                      "bytes), and the proxy's policy and host link are removed.\n"
                      "\n"
                      "  --dry-run   say what would be restored, change nothing\n"
                      "  -h, --help  show this help\n"
                      "\n"
                      "Exit status: 0 restored (or nothing to restore), 1 refused or failed, 64 usage.\n",
                      f);
                return;
        }
        fputs("usage: nifkit wrap-release [--policies DIR] [--exclude APP]... [--dry-run] [--strict] RELEASE_DIR\n"
              "Wrap every NIF library of an OTP release (rebar3 release, mix release) in place:\n"
              "each RELEASE_DIR/lib/APP-VSN/priv/.../NAME.so that defines nif_init becomes the\n"
              "proxy, as nifkit wrap --in-place does, and runs sandboxed under its application's\n"
              "policy. Every policy and library is checked before anything is written; a run\n"
              "that fails changes nothing. A second run changes only what differs.\n"
              "\n"
              "  --policies DIR  APP.json is the policy of application APP, default.json that\n"
              "                  of the others (else the built-in default); a policy for an\n"
              "                  application the release lacks is an error\n"
              "  --exclude APP   leave APP's libraries unwrapped (repeatable)\n"
              "  --dry-run       print what would be done, change nothing\n"
              "  --strict        refuse when a library's entitlements and its policy differ\n"
              "                  (without it, each runs under what both allow)\n"
              "  --proxy FILE    the proxy NIF to copy (as for nifkit wrap)\n"
              "  --host FILE     the nifkit-host the wrapped libraries start (as for nifkit wrap)\n"
              "  -h, --help      show this help\n"
              "\n"
              "Undo with nifkit unwrap-release RELEASE_DIR.\n"
              "Exit status: 0 done, 1 refused (not a release, an invalid policy, a damaged\n"
              "wrap) or failed, nothing changed; 64 usage error.\n",
              f);
}

static int usage_error(const struct release *rel, const char *what, const char *arg)
{
        fprintf(stderr, "%s: %s%s%s\nTry 'nifkit %s --help'.\n", rel->who, what, arg ? " " : "", arg ? arg : "",
                rel->unwrap ? "unwrap-release" : "wrap-release");
        return EXIT_USAGE;
}

static int cmd(int argc, char **argv, bool unwrap)
{
        static const struct option longopts[] = {
                { "policies", required_argument, NULL, 'p' },
                { "exclude", required_argument, NULL, 'x' },
                { "dry-run", no_argument, NULL, 'n' },
                { "strict", no_argument, NULL, 's' },
                { "proxy", required_argument, NULL, 'P' },
                { "host", required_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct release rel = { .who = unwrap ? "nifkit unwrap-release" : "nifkit wrap-release", .unwrap = unwrap };
        const char *proxy = NULL, *host = NULL;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                if (unwrap && c != 'n' && c != 'h' && c != '?' && c != ':')
                        return usage_error(&rel, "unknown option", argv[optind - 1]);
                switch (c) {
                case 'p':
                        rel.policies = optarg;
                        break;
                case 'x':
                        if (rel.nexcludes == MAX_EXCLUDES)
                                return usage_error(&rel, "too many --exclude options", NULL);
                        rel.excludes[rel.nexcludes++] = optarg;
                        break;
                case 'n':
                        rel.dry_run = true;
                        break;
                case 's':
                        rel.strict = true;
                        break;
                case 'P':
                        proxy = optarg;
                        break;
                case 'H':
                        host = optarg;
                        break;
                case 'h':
                        usage(stdout, unwrap);
                        return 0;
                case ':':
                        return usage_error(&rel, "this option needs a value:", argv[optind - 1]);
                default:
                        return usage_error(&rel, "unknown option", argv[optind - 1]);
                }
        }
        if (argc - optind != 1)
                return usage_error(&rel, "give exactly one release directory", NULL);
        rel.dir = argv[optind];
        r = run(&rel, proxy, host);
        release_free(&rel);
        return r < 0 ? EXIT_FAILED : 0;
}

int nk_cmd_wrap_release(int argc, char **argv)
{
        return cmd(argc, argv, false);
}

int nk_cmd_unwrap_release(int argc, char **argv)
{
        return cmd(argc, argv, true);
}
