/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy loader against its fixtures (tests/unit/policy/{valid,invalid}),
 * the shipped policies, and policies/schema.json.
 *
 * NK_POLICY_FIXTURES names the fixture directory and NK_POLICIES the shipped
 * policies; meson sets both. Invalid cases are loaded from inside their
 * directory so that the file name in the message is the bare case name, and
 * the message must equal <case>.expected byte for byte.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "nifkit_policy.h"
#include "policy-keys.h"

/* Paths in tests must never be cut short silently. */
#define xsnprintf(buf, ...) assert_true((size_t) snprintf(buf, sizeof buf, __VA_ARGS__) < sizeof buf)

static const char *env_dir(const char *name)
{
        const char *d = getenv(name);

        if (!d) {
                fail_msg("%s is not set: run this test through meson", name);
                abort();
        }
        return d;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf;
        long n;

        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static int json_name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The *.json files of a directory, sorted, NULL-terminated. */
static char **list_json(const char *dir, size_t *ret_n)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char **names = NULL;
        size_t n = 0;

        assert_non_null(d);
        while ((e = readdir(d))) {
                size_t len = strlen(e->d_name);

                if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
                        continue;
                names = realloc(names, sizeof(char *) * (n + 2));
                assert_non_null(names);
                names[n++] = strdup(e->d_name);
        }
        closedir(d);
        assert_true(n > 0);
        qsort(names, n, sizeof(char *), json_name_cmp);
        names[n] = NULL;
        *ret_n = n;
        return names;
}

static void free_list(char **names)
{
        for (char **p = names; *p; p++)
                free(*p);
        free(names);
}

static struct nk_policy *load_fixture(const char *kind, const char *name)
{
        struct nk_policy_error err;
        struct nk_policy *p = NULL;
        char path[PATH_MAX];
        int r;

        xsnprintf(path, "%s/%s/%s", env_dir("NK_POLICY_FIXTURES"), kind, name);
        r = nk_policy_load(path, &p, &err);
        if (r < 0)
                fail_msg("%s: %d %s", path, r, err.msg);
        assert_string_equal(p->source, path);
        return p;
}

/* ---- valid ---------------------------------------------------------------- */

static void assert_default_values(const struct nk_policy *p)
{
        assert_int_equal(p->version, 1);
        assert_int_equal(p->launcher, NK_POLICY_LAUNCHER_NATIVE);
        assert_int_equal(p->cgroup, NK_POLICY_CGROUP_REQUIRED);
        assert_int_equal(p->mode, NK_POLICY_MODE_ENFORCE);
        assert_int_equal(p->limits.memory_mb, 256);
        assert_int_equal(p->limits.pids, 16);
        assert_int_equal(p->limits.cpu_percent, 100);
        assert_int_equal(p->limits.call_timeout_ms, 5000);
        assert_int_equal(p->limits.max_result_bytes, 67108864);
        assert_int_equal(p->limits.max_new_atoms, 10000);
        assert_int_equal(p->limits.tmp_mb, 16);
        assert_int_equal(p->limits.open_files, 256);
        assert_int_equal(p->restart.max_restarts, 5);
        assert_int_equal(p->restart.period_s, 60);
        assert_int_equal(p->nfiles, 0);
        assert_int_equal(p->nconnect, 0);
        assert_int_equal(p->nlisten, 0);
        assert_int_equal(p->nresolve, 0);
        assert_int_equal(p->workers, 4);
}

static void test_valid_fixtures_load(void **state)
{
        char dir[PATH_MAX];
        size_t n;
        char **names;

        xsnprintf(dir, "%s/valid", env_dir("NK_POLICY_FIXTURES"));
        names = list_json(dir, &n);
        assert_true(n >= 5);
        for (size_t i = 0; i < n; i++)
                nk_policy_free(load_fixture("valid", names[i]));
        free_list(names);
}

static void test_valid_minimal_is_default(void **state)
{
        struct nk_policy *p = load_fixture("valid", "minimal.json"), *d = NULL;

        assert_default_values(p);
        assert_int_equal(nk_policy_default(&d), 0);
        assert_default_values(d);
        assert_string_equal(d->source, "<default>");
        nk_policy_free(p);
        nk_policy_free(d);
        /* Empty sections are the defaults too, and key order does not matter. */
        p = load_fixture("valid", "empty_sections.json");
        assert_default_values(p);
        nk_policy_free(p);
        p = load_fixture("valid", "key_order.json");
        assert_int_equal(p->workers, 2);
        assert_int_equal(p->limits.pids, 3);
        assert_int_equal(p->limits.memory_mb, 256);
        nk_policy_free(p);
}

static void test_valid_full(void **state)
{
        struct nk_policy *p = load_fixture("valid", "full.json");

        assert_int_equal(p->launcher, NK_POLICY_LAUNCHER_BWRAP);
        assert_int_equal(p->cgroup, NK_POLICY_CGROUP_BEST_EFFORT);
        assert_int_equal(p->mode, NK_POLICY_MODE_AUDIT);
        assert_int_equal(p->limits.memory_mb, 1024);
        assert_int_equal(p->limits.pids, 64);
        assert_int_equal(p->limits.cpu_percent, 250);
        assert_int_equal(p->limits.call_timeout_ms, 60000);
        assert_true(p->limits.max_result_bytes == UINT64_C(1) << 40);
        assert_int_equal(p->limits.max_new_atoms, 0);
        assert_int_equal(p->limits.tmp_mb, 0);
        assert_int_equal(p->limits.open_files, 16);
        assert_int_equal(p->restart.max_restarts, 0);
        assert_int_equal(p->restart.period_s, 86400);
        assert_int_equal(p->workers, 256);

        assert_int_equal(p->nfiles, 3);
        assert_string_equal(p->files[0].path, "/var/lib/tenant-a");
        assert_int_equal(p->files[0].access, NK_POLICY_ACCESS_READ);
        assert_false(p->files[0].no_symlinks);
        assert_string_equal(p->files[1].path, "/var/lib/tenant-a/spool");
        assert_int_equal(p->files[1].access, NK_POLICY_ACCESS_READ_WRITE);
        assert_true(p->files[1].no_symlinks);
        assert_int_equal(p->files[2].access, NK_POLICY_ACCESS_CREATE);
        assert_false(p->files[2].no_symlinks);

        assert_int_equal(p->nconnect, 3);
        assert_string_equal(p->connect[0].host, "127.0.0.1");
        assert_int_equal(p->connect[0].port, 5432);
        assert_string_equal(p->connect[1].host, "::1");
        assert_int_equal(p->connect[1].port, 80);
        assert_string_equal(p->connect[2].host, "db.internal");
        assert_false(p->connect[2].udp);
        assert_int_equal(p->nlisten, 3);
        assert_false(p->listen[0].udp);
        assert_int_equal(p->listen[0].port, 8080);
        assert_true(p->listen[1].udp);
        assert_string_equal(p->listen[1].host, "127.0.0.1");
        assert_int_equal(p->listen[1].port, 5353);
        assert_true(p->listen[2].udp);
        assert_string_equal(p->listen[2].host, "::");
        assert_int_equal(p->nresolve, 1);
        assert_string_equal(p->resolve[0], "db.internal");
        nk_policy_free(p);
}

static void test_valid_normalise(void **state)
{
        struct nk_policy *p = load_fixture("valid", "normalise.json");

        assert_int_equal(p->nfiles, 4);
        assert_string_equal(p->files[0].path, "/srv/data/cache");
        assert_string_equal(p->files[1].path, "/");
        assert_string_equal(p->files[2].path, "/opt");
        assert_string_equal(p->files[3].path, "/srv/donn\xc3\xa9" "es");
        nk_policy_free(p);
}

static void test_valid_network_canonical(void **state)
{
        struct nk_policy *p = load_fixture("valid", "network_canonical.json");

        assert_int_equal(p->nconnect, 4);
        assert_string_equal(p->connect[0].host, "::1");
        assert_int_equal(p->connect[0].port, 443);
        assert_string_equal(p->connect[1].host, "db.internal");
        assert_int_equal(p->connect[2].port, 1);
        assert_int_equal(p->connect[3].port, 65535);
        /* Same address and port, one TCP and one UDP: two entries, no duplicate. */
        assert_int_equal(p->nlisten, 3);
        assert_false(p->listen[0].udp);
        assert_true(p->listen[1].udp);
        assert_string_equal(p->listen[2].host, "localhost");
        assert_int_equal(p->nresolve, 2);
        nk_policy_free(p);

        p = load_fixture("valid", "unsandboxed.json");
        assert_int_equal(p->launcher, NK_POLICY_LAUNCHER_UNSANDBOXED);
        assert_string_equal(nk_policy_launcher_name(p->launcher), "unsandboxed-development");
        assert_int_equal(p->cgroup, NK_POLICY_CGROUP_BEST_EFFORT);
        nk_policy_free(p);
}

/* ---- invalid -------------------------------------------------------------- */

static void test_invalid_fixtures(void **state)
{
        char dir[PATH_MAX], cwd[PATH_MAX];
        size_t n;
        char **names;

        xsnprintf(dir, "%s/invalid", env_dir("NK_POLICY_FIXTURES"));
        names = list_json(dir, &n);
        assert_true(n >= 25);
        assert_non_null(getcwd(cwd, sizeof cwd));
        assert_int_equal(chdir(dir), 0);
        for (size_t i = 0; i < n; i++) {
                struct nk_policy_error err;
                struct nk_policy *p = NULL;
                char expected_path[PATH_MAX], *expected;
                size_t len;
                int r;

                xsnprintf(expected_path, "%.*s.expected",
                         (int) (strlen(names[i]) - 5), names[i]);
                if (access(expected_path, R_OK) != 0)
                        fail_msg("%s has no %s", names[i], expected_path);
                expected = read_text(expected_path);
                len = strlen(expected);
                while (len > 0 && expected[len - 1] == '\n')
                        expected[--len] = '\0';
                r = nk_policy_load(names[i], &p, &err);
                if (r != -EINVAL)
                        fail_msg("%s: loaded (%d) but must fail with\n  %s", names[i], r, expected);
                assert_null(p);
                if (strcmp(err.msg, expected) != 0)
                        fail_msg("%s:\n  got      %s\n  expected %s", names[i], err.msg, expected);
                /* The parts agree with the message. */
                assert_string_equal(err.file, names[i]);
                assert_true(err.line >= 1 && err.column >= 1);
                assert_non_null(strstr(err.msg, err.path));
                free(expected);
        }
        assert_int_equal(chdir(cwd), 0);
        free_list(names);
}

/* Every .expected has its case, so no expectation goes stale unnoticed. */
static void test_invalid_expected_have_cases(void **state)
{
        char dir[PATH_MAX];
        DIR *d;
        struct dirent *e;
        size_t n = 0;

        xsnprintf(dir, "%s/invalid", env_dir("NK_POLICY_FIXTURES"));
        d = opendir(dir);
        assert_non_null(d);
        while ((e = readdir(d))) {
                size_t len = strlen(e->d_name);
                char json[PATH_MAX];

                if (len < 10 || strcmp(e->d_name + len - 9, ".expected") != 0)
                        continue;
                xsnprintf(json, "%s/%.*s.json", dir, (int) (len - 9), e->d_name);
                if (access(json, R_OK) != 0)
                        fail_msg("%s has no case", e->d_name);
                n++;
        }
        closedir(d);
        assert_true(n >= 25);
}

/* The text at line:column (columns count characters, as jansson does). */
static const char *text_at(const char *text, int line, int column)
{
        const char *s = text;

        for (int l = 1; l < line; l++) {
                s = strchr(s, '\n');
                assert_non_null(s);
                s++;
        }
        for (int c = 1; c < column; c++) {
                assert_true(*s && *s != '\n');
                s++;
                while (((unsigned char) *s & 0xC0) == 0x80)
                        s++;
        }
        return s;
}

/* The reported place is where the offending key or value starts. */
static void test_error_positions(void **state)
{
        static const struct {
                const char *name;
                const char *at;
        } cases[] = {
                { "limits_string.json", "\"256\"" },
                { "unknown_limits_key.json", "\"memroy_mb\"" },
                { "unknown_top_key.json", "\"worker\"" },
                { "unknown_file_key.json", "\"nosymlinks\"" },
                { "relative_path.json", "\"var/lib/x\"" },
                { "duplicate_path.json", "\"/srv//data/\"" },
                { "unresolvable_connect.json", "\"db.internal:5432\"" },
                { "unicode_columns.json", "\"reed\"" },
                { "version_2.json", "2," },
                { "memory_zero.json", "0}" },
                { "negative.json", "-1}" },
                { "no_symlinks_string.json", "\"yes\"" },
                { "duplicate_connect.json", "\"[0:0::1]:80\"" },
                { "file_missing_access.json", "{\"path\"" },
                { "missing_version.json", "{" },
                { "top_array.json", "[" },
                { "huge_number.json", "123456789012345678901234567890}" },
                { "duplicate_key.json", "\"workers\": 3" },
                { "escaped_key.json", "\"x\"" },
                { "escaped_unknown_key.json", "\"w\\u00f6rkers\"" },
                { "escaped_duplicate_key.json", "\"p\\u0069ds\": 9" },
                { "nul_byte.json", "\"nat" },
                { "bad_utf8.json", "\"\xff\"" },
        };
        char dir[PATH_MAX];

        xsnprintf(dir, "%s/invalid", env_dir("NK_POLICY_FIXTURES"));
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct nk_policy_error err;
                struct nk_policy *p = NULL;
                char path[PATH_MAX], *text;
                const char *at;

                xsnprintf(path, "%s/%s", dir, cases[i].name);
                text = read_text(path);
                assert_int_equal(nk_policy_load(path, &p, &err), -EINVAL);
                at = text_at(text, err.line, err.column);
                if (strncmp(at, cases[i].at, strlen(cases[i].at)) != 0)
                        fail_msg("%s: %d:%d is at '%.20s', not '%s'", cases[i].name, err.line, err.column, at,
                                 cases[i].at);
                free(text);
        }
}

static void test_load_string_and_io_errors(void **state)
{
        struct nk_policy_error err;
        struct nk_policy *p = NULL;
        char tmpl[] = "/tmp/nk-policy-XXXXXX", big[PATH_MAX];
        char *junk;
        int fd;

        assert_int_equal(nk_policy_load_string("{\"nifkit_policy\": 1, \"workers\": 7}", "inline", &p, &err), 0);
        assert_int_equal(p->workers, 7);
        assert_string_equal(p->source, "inline");
        nk_policy_free(p);
        p = NULL;

        assert_int_equal(nk_policy_load_string("{\"workers\": 7}", NULL, &p, &err), -EINVAL);
        assert_string_equal(err.msg, "<string>:1:1: $: missing required key \"nifkit_policy\"");
        assert_null(p);

        assert_int_equal(nk_policy_load("/nonexistent/nifkit/policy.json", &p, &err), -ENOENT);
        assert_int_equal(err.line, 0);
        assert_string_equal(err.msg, "/nonexistent/nifkit/policy.json: No such file or directory");
        assert_null(p);

        assert_non_null(mkdtemp(tmpl));
        assert_int_equal(nk_policy_load(tmpl, &p, &err), -EISDIR);

        /* Larger than any policy: refused before parsing. */
        xsnprintf(big, "%s/big.json", tmpl);
        fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        junk = malloc(2 * 1024 * 1024);
        assert_non_null(junk);
        memset(junk, ' ', 2 * 1024 * 1024);
        assert_int_equal(write(fd, junk, 2 * 1024 * 1024), 2 * 1024 * 1024);
        close(fd);
        free(junk);
        assert_int_equal(nk_policy_load(big, &p, &err), -EFBIG);
        assert_non_null(strstr(err.msg, "larger than 1 MiB"));
        unlink(big);
        rmdir(tmpl);

        /* No error struct: still fails cleanly. */
        assert_int_equal(nk_policy_load_string("[]", "x", &p, NULL), -EINVAL);
}

/* An absurd key cannot overflow the error struct, and the place survives. */
static void test_long_key_truncated(void **state)
{
        struct nk_policy_error err;
        struct nk_policy *p = NULL;
        char text[1200];

        xsnprintf(text, "{\"nifkit_policy\": 1,\n \"%0900d\": 1}", 0);
        assert_int_equal(nk_policy_load_string(text, "long.json", &p, &err), -EINVAL);
        assert_true(strlen(err.msg) < sizeof err.msg);
        assert_true(strlen(err.path) < sizeof err.path);
        assert_int_equal(err.line, 2);
        assert_int_equal(err.column, 2);
        assert_true(strncmp(err.msg, "long.json:2:2: $.000", 20) == 0);
}

static void test_launcher_names(void **state)
{
        assert_string_equal(nk_policy_launcher_name(NK_POLICY_LAUNCHER_NATIVE), "native");
        assert_string_equal(nk_policy_launcher_name(NK_POLICY_LAUNCHER_BWRAP), "bwrap");
        assert_string_equal(nk_policy_launcher_name(NK_POLICY_LAUNCHER_UNSANDBOXED), "unsandboxed-development");
        assert_null(nk_policy_launcher_name((enum nk_policy_launcher) 3));
        assert_null(nk_policy_launcher_name((enum nk_policy_launcher) -1));
        nk_policy_free(NULL);
}

/* ---- shipped policies ----------------------------------------------------- */

static void test_shipped_policies_load(void **state)
{
        const char *dir = env_dir("NK_POLICIES");
        static const char *const required[] = {
                "default.json", "jiffy.json", "fast_yaml.json", "fxml.json", "stringprep.json", "crypto.json",
        };
        size_t n, loaded = 0;
        char **names = list_json(dir, &n);

        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
                char path[PATH_MAX];

                xsnprintf(path, "%s/%s", dir, required[i]);
                if (access(path, R_OK) != 0)
                        fail_msg("policies/%s is missing", required[i]);
        }
        for (size_t i = 0; i < n; i++) {
                struct nk_policy_error err;
                struct nk_policy *p = NULL;
                char path[PATH_MAX];

                if (strcmp(names[i], "schema.json") == 0)
                        continue;
                xsnprintf(path, "%s/%s", dir, names[i]);
                if (nk_policy_load(path, &p, &err) < 0)
                        fail_msg("shipped policy does not load: %s", err.msg);
                /* Shipped policies sandbox: none may opt out, none opens the network. */
                assert_int_not_equal(p->launcher, NK_POLICY_LAUNCHER_UNSANDBOXED);
                assert_int_equal(p->nconnect + p->nlisten + p->nresolve, 0);
                assert_int_equal(p->mode, NK_POLICY_MODE_ENFORCE);
                if (strcmp(names[i], "default.json") == 0)
                        assert_default_values(p);
                if (strcmp(names[i], "crypto.json") == 0) {
                        assert_int_equal(p->nfiles, 2);
                        assert_string_equal(p->files[0].path, "/etc/ssl");
                        assert_int_equal(p->files[0].access, NK_POLICY_ACCESS_READ);
                }
                nk_policy_free(p);
                loaded++;
        }
        assert_true(loaded >= 6);
        free_list(names);
}

/* ---- schema.json against the loader's key tables -------------------------- */

static const char *schema_type(const struct nk_policy_key *k)
{
        switch (k->type) {
        case NK_POLICY_KEY_INTEGER: return "integer";
        case NK_POLICY_KEY_ENUM: return "string";
        case NK_POLICY_KEY_BOOLEAN: return "boolean";
        case NK_POLICY_KEY_STRING: return "string";
        case NK_POLICY_KEY_OBJECT: return "object";
        case NK_POLICY_KEY_ARRAY: return "array";
        }
        return "?";
}

static uint64_t schema_uint(json_t *o, const char *field, const char *where)
{
        json_t *v = json_object_get(o, field);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
                fail_msg("schema %s: \"%s\" missing or not a non-negative integer", where, field);
        return (uint64_t) json_integer_value(v);
}

static void check_schema_object(json_t *obj, const struct nk_policy_key *keys, const char *where);

/* A policy of nothing but the example at path ("$.limits.memory_mb"). */
static void check_example_loads(const char *path, json_t *example)
{
        char copy[256], *save = NULL;
        json_t *top = json_pack("{s:i}", "nifkit_policy", 1), *at = top;
        const char *last = NULL;

        xsnprintf(copy, "%s", path + 2);        /* after "$." */
        for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
                if (last) {
                        json_t *next = json_object();
                        json_object_set_new(at, last, next);
                        at = next;
                }
                last = part;
        }
        json_object_set(at, last, example);
        char *text = json_dumps(top, 0);
        struct nk_policy *p = NULL;
        struct nk_policy_error err;
        int r = nk_policy_load_string(text, "example", &p, &err);
        if (r < 0)
                fail_msg("schema %s: the example %s does not load: %s", path, text, err.msg);
        nk_policy_free(p);
        free(text);
        json_decref(top);
}

static void check_schema_key(json_t *prop, const struct nk_policy_key *k, const char *where)
{
        json_t *type = json_object_get(prop, "type"), *def = json_object_get(prop, "default");
        char sub[256];

        xsnprintf(sub, "%s.%s", where, k->name);
        if (!json_is_string(type) || strcmp(json_string_value(type), schema_type(k)) != 0)
                fail_msg("schema %s: type is not \"%s\"", sub, schema_type(k));
        /* Optional keys document their default; required keys have none. */
        if (k->required != !def)
                fail_msg("schema %s: default %s", sub, k->required ? "given for a required key" : "missing");
        /* Editors show a key's description and examples: every key has both,
         * and every example outside an array's items loads on its own. */
        json_t *desc = json_object_get(prop, "description"), *examples = json_object_get(prop, "examples");
        if (!json_is_string(desc) || strlen(json_string_value(desc)) < 10)
                fail_msg("schema %s: no description", sub);
        if (!json_is_array(examples) || json_array_size(examples) == 0)
                fail_msg("schema %s: no examples", sub);
        if (!strstr(sub, "[]")) {
                size_t i;
                json_t *ex;
                json_array_foreach(examples, i, ex)
                        check_example_loads(sub, ex);
        }
        switch (k->type) {
        case NK_POLICY_KEY_INTEGER:
                if (json_object_get(prop, "const")) {
                        assert_true(k->min == k->max);
                        assert_true(schema_uint(prop, "const", sub) == k->min);
                } else {
                        if (schema_uint(prop, "minimum", sub) != k->min ||
                            schema_uint(prop, "maximum", sub) != k->max)
                                fail_msg("schema %s: range differs from the loader's %ju..%ju", sub,
                                         (uintmax_t) k->min, (uintmax_t) k->max);
                }
                if (def && schema_uint(prop, "default", sub) != k->def)
                        fail_msg("schema %s: default differs from the loader's %ju", sub, (uintmax_t) k->def);
                break;
        case NK_POLICY_KEY_ENUM: {
                json_t *values = json_object_get(prop, "enum");
                size_t n = 0;

                while (k->values[n])
                        n++;
                if (!json_is_array(values) || json_array_size(values) != n)
                        fail_msg("schema %s: enum has not the loader's %zu values", sub, n);
                for (size_t i = 0; i < n; i++)
                        assert_string_equal(json_string_value(json_array_get(values, i)), k->values[i]);
                if (def)
                        assert_string_equal(json_string_value(def), k->values[k->def]);
                break;
        }
        case NK_POLICY_KEY_BOOLEAN:
                assert_true(json_is_boolean(def));
                assert_int_equal(json_is_true(def), k->def);
                break;
        case NK_POLICY_KEY_STRING:
                assert_int_equal(k->format, NK_POLICY_FORMAT_PATH);
                assert_true(json_is_string(json_object_get(prop, "pattern")));
                break;
        case NK_POLICY_KEY_OBJECT:
                check_schema_object(prop, k->keys, sub);
                break;
        case NK_POLICY_KEY_ARRAY: {
                json_t *items = json_object_get(prop, "items");

                assert_true(json_is_object(items));
                assert_true(json_is_true(json_object_get(prop, "uniqueItems")));
                if (k->keys) {
                        xsnprintf(sub, "%s.%s[]", where, k->name);
                        assert_string_equal(json_string_value(json_object_get(items, "type")), "object");
                        check_schema_object(items, k->keys, sub);
                } else {
                        assert_string_equal(json_string_value(json_object_get(items, "type")), "string");
                        assert_true(json_is_string(json_object_get(items, "pattern")));
                }
                break;
        }
        }
}

static void check_schema_object(json_t *obj, const struct nk_policy_key *keys, const char *where)
{
        json_t *props = json_object_get(obj, "properties"), *required = json_object_get(obj, "required");
        size_t nkeys = 0, nrequired = 0;
        const char *name;
        json_t *prop;

        if (!json_is_false(json_object_get(obj, "additionalProperties")))
                fail_msg("schema %s: additionalProperties must be false", where);
        assert_true(json_is_object(props));
        for (const struct nk_policy_key *k = keys; k->name; k++) {
                nkeys++;
                prop = json_object_get(props, k->name);
                if (!json_is_object(prop))
                        fail_msg("schema %s: the loader accepts \"%s\", the schema does not", where, k->name);
                check_schema_key(prop, k, where);
                if (k->required) {
                        bool listed = false;

                        nrequired++;
                        for (size_t i = 0; i < json_array_size(required); i++)
                                if (strcmp(json_string_value(json_array_get(required, i)), k->name) == 0)
                                        listed = true;
                        if (!listed)
                                fail_msg("schema %s: \"%s\" is required by the loader", where, k->name);
                }
        }
        json_object_foreach(props, name, prop) {
                bool known = false;

                for (const struct nk_policy_key *k = keys; k->name; k++)
                        if (strcmp(k->name, name) == 0)
                                known = true;
                if (!known)
                        fail_msg("schema %s: lists \"%s\", which the loader refuses", where, name);
        }
        assert_int_equal(json_object_size(props), nkeys);
        assert_int_equal(json_array_size(required), nrequired);
}

static void test_schema_matches_loader(void **state)
{
        char path[PATH_MAX];
        json_error_t jerr;
        json_t *schema;

        xsnprintf(path, "%s/schema.json", env_dir("NK_POLICIES"));
        schema = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!schema)
                fail_msg("schema.json is not JSON: %d:%d: %s", jerr.line, jerr.column, jerr.text);
        assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
        check_schema_object(schema, nk_policy_keys(), "$");
        json_decref(schema);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_fixtures_load),
                cmocka_unit_test(test_valid_minimal_is_default),
                cmocka_unit_test(test_valid_full),
                cmocka_unit_test(test_valid_normalise),
                cmocka_unit_test(test_valid_network_canonical),
                cmocka_unit_test(test_invalid_fixtures),
                cmocka_unit_test(test_invalid_expected_have_cases),
                cmocka_unit_test(test_error_positions),
                cmocka_unit_test(test_load_string_and_io_errors),
                cmocka_unit_test(test_long_key_truncated),
                cmocka_unit_test(test_launcher_names),
                cmocka_unit_test(test_shipped_policies_load),
                cmocka_unit_test(test_schema_matches_loader),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
