/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A library's entitlements: the document's checks (with its positions),
 * finding it in a library's ELF section or beside it, and the intersection
 * with the operator's policy, each rule on its own.
 *   NK_TEST_NIF_ENTITLED: a NIF built with NIFKIT_ENTITLEMENTS
 *   NK_TEST_NIF_GOOD: one without
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nifkit_policy.h"

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v)
                fail_msg("%s is not set", name);
        return v;
}

static struct nk_policy *load_ent(const char *text)
{
        struct nk_policy *p = NULL;
        struct nk_policy_error err;
        int r = nk_entitlements_load_string(text, "ent", &p, &err);
        if (r < 0)
                fail_msg("%s", err.msg);
        return p;
}

static void refused(const char *text, const char *msg)
{
        struct nk_policy *p = NULL;
        struct nk_policy_error err;
        assert_int_equal(nk_entitlements_load_string(text, "lib.so[.nifkit_entitlements]", &p, &err), -EINVAL);
        assert_null(p);
        assert_string_equal(err.msg, msg);
}

static void test_document_checks(void **state)
{
        struct nk_policy *p = load_ent("{\"limits\": {\"memory_mb\": 128}}");
        assert_int_equal(p->limits.memory_mb, 128);
        assert_int_equal(p->limits.pids, UINT32_MAX);          /* not named: unset */
        assert_int_equal(p->limits.max_args_bytes, UINT64_MAX);
        assert_int_equal(p->nfiles, 0);
        nk_policy_free(p);
        p = load_ent("{\"nifkit_entitlements\": 1}");
        nk_policy_free(p);

        refused("{\"files\": [{\"path\": \"/data\", \"access\": \"write\"}]}",
                "lib.so[.nifkit_entitlements]:1:40: $.files[0].access: expected one of \"read\", \"read-write\", "
                "\"create\", got \"write\"");
        refused("{\"limits\": {\"memory_mb\": 99999999}}",
                "lib.so[.nifkit_entitlements]:1:26: $.limits.memory_mb: expected an integer from 1 to 1048576, got "
                "99999999");
        refused("{\"launcher\": \"native\"}",
                "lib.so[.nifkit_entitlements]:1:2: $.launcher: unknown key");
        refused("{\"nifkit_entitlements\": 2}",
                "lib.so[.nifkit_entitlements]:1:25: $.nifkit_entitlements: expected the integer 1, got 2");
        refused("{\"files\": [{\"path\": \"/proc/1\", \"access\": \"read\"}]}",
                "lib.so[.nifkit_entitlements]:1:21: $.files[0].path: \"/proc/1\" cannot be granted: the host reads "
                "its own /proc (its own processes); the VM's /proc is never handed to it");
        refused("{\"files\": [}",
                "lib.so[.nifkit_entitlements]:1:12: $.files[0]: unexpected token near '}'");
}

static void test_found_in_section(void **state)
{
        char *text = NULL, where[4200];
        const char *lib = need_env("NK_TEST_NIF_ENTITLED");
        assert_int_equal(nk_entitlements_find(lib, NULL, &text, where, sizeof where), 1);
        assert_non_null(strstr(where, "nk_test_nif_entitled.so[.nifkit_entitlements]"));
        struct nk_policy *p = load_ent(text);
        assert_int_equal(p->nfiles, 1);
        assert_string_equal(p->files[0].path, "/var/lib/nk-entitled");
        assert_int_equal(p->limits.memory_mb, 128);
        assert_int_equal(p->nconnect, 1);
        assert_string_equal(p->connect[0].host, "db.internal");
        nk_policy_free(p);
        free(text);

        /* A library without a section and without a sidecar has none. */
        assert_int_equal(nk_entitlements_find(need_env("NK_TEST_NIF_GOOD"), NULL, &text, where, sizeof where), 0);
        assert_null(text);
}

static void test_found_beside(void **state)
{
        char dir[] = "/tmp/nk-ent-XXXXXX", lib[64], side[80], *text = NULL, where[200];
        assert_non_null(mkdtemp(dir));
        snprintf(lib, sizeof lib, "%s/plain.so", dir);
        snprintf(side, sizeof side, "%s/plain.entitlements.json", dir);
        FILE *f = fopen(lib, "w");
        fputs("not even ELF", f);
        fclose(f);
        f = fopen(side, "w");
        fputs("{\"limits\": {\"pids\": 4}}\n", f);
        fclose(f);
        assert_int_equal(nk_entitlements_find(lib, NULL, &text, where, sizeof where), 1);
        assert_string_equal(where, side);
        assert_string_equal(text, "{\"limits\": {\"pids\": 4}}\n");
        free(text);
        unlink(side);
        unlink(lib);
        rmdir(dir);
}

static const char *const operator_policy =
        "{\n"
        "  \"nifkit_policy\": 1,\n"
        "  \"cgroup\": \"best-effort\",\n"
        "  \"limits\": {\"memory_mb\": 512, \"pids\": 32},\n"
        "  \"files\": [\n"
        "    {\"path\": \"/var/lib\", \"access\": \"read-write\"},\n"
        "    {\"path\": \"/srv/other\", \"access\": \"read\"}\n"
        "  ],\n"
        "  \"network\": {\"connect\": [\"db.internal:5432\", \"192.0.2.1:80\"], \"resolve\": [\"db.internal\"]},\n"
        "  \"workers\": 2\n"
        "}\n";

static void intersect(const char *ent, struct nk_policy **ret, char **notes)
{
        struct nk_policy *want = load_ent(ent);
        struct nk_policy_error err;
        char *text = NULL;
        int r = nk_policy_intersect(operator_policy, "op.json", want, &text, notes, &err);
        nk_policy_free(want);
        if (r < 0)
                fail_msg("%s", err.msg);
        r = nk_policy_load_string(text, "effective", ret, &err);
        free(text);
        if (r < 0)
                fail_msg("%s", err.msg);
}

static void test_intersection(void **state)
{
        struct nk_policy *eff;
        char *notes;

        intersect("{\"files\": [{\"path\": \"/var/lib/app\", \"access\": \"create\"},"
                  "             {\"path\": \"/home\", \"access\": \"read\"}],"
                  " \"network\": {\"connect\": [\"db.internal:5432\", \"198.51.100.7:443\"],"
                  "              \"resolve\": [\"db.internal\"]},"
                  " \"limits\": {\"memory_mb\": 128, \"pids\": 64}}",
                  &eff, &notes);
        /* files: the deeper directory, the lesser access; the rest dropped */
        assert_int_equal(eff->nfiles, 1);
        assert_string_equal(eff->files[0].path, "/var/lib/app");
        assert_int_equal(eff->files[0].access, NK_POLICY_ACCESS_READ_WRITE);
        /* network: what both name */
        assert_int_equal(eff->nconnect, 1);
        assert_string_equal(eff->connect[0].host, "db.internal");
        assert_int_equal(eff->nresolve, 1);
        /* limits: the lower ceiling; what the operator alone says stays */
        assert_int_equal(eff->limits.memory_mb, 128);
        assert_int_equal(eff->limits.pids, 32);
        assert_int_equal(eff->cgroup, NK_POLICY_CGROUP_BEST_EFFORT);
        assert_int_equal(eff->workers, 2);
        assert_string_equal(notes,
                            "files: /srv/other (read) is granted but not requested: dropped\n"
                            "files: /var/lib/app (create) is requested but granted only in part (a narrower "
                            "directory or access)\n"
                            "files: /home (read) is requested but not granted\n"
                            "network.connect: 192.0.2.1:80 is granted but not requested: dropped\n"
                            "network.connect: 198.51.100.7:443 is requested but not granted\n"
                            "limits.memory_mb: 128 is requested, below the 512 granted: 128\n"
                            "limits.pids: 64 is requested but 32 granted\n");
        nk_policy_free(eff);
        free(notes);

        /* A library that asks for nothing gets nothing of the grants. */
        intersect("{}", &eff, &notes);
        assert_int_equal(eff->nfiles, 0);
        assert_int_equal(eff->nconnect, 0);
        assert_int_equal(eff->limits.memory_mb, 512);
        nk_policy_free(eff);
        free(notes);

        /* A wider request than the grant gets the grant. */
        intersect("{\"files\": [{\"path\": \"/\", \"access\": \"read\"}],"
                  " \"network\": {\"connect\": [\"db.internal:5432\", \"192.0.2.1:80\"], \"resolve\": [\"db.internal\"]},"
                  " \"limits\": {\"memory_mb\": 512}}",
                  &eff, &notes);
        assert_int_equal(eff->nfiles, 2);
        assert_string_equal(eff->files[0].path, "/var/lib");
        assert_int_equal(eff->files[0].access, NK_POLICY_ACCESS_READ);
        assert_int_equal(eff->nconnect, 2);
        assert_string_equal(notes, "files: / (read) is requested but granted only in part (a narrower directory or "
                                   "access)\n");
        nk_policy_free(eff);
        free(notes);
}

/* The broker decides a path by its deepest grant: a narrower grant of the
 * operator's inside a wider one stays narrower in the intersection. */
static void test_narrower_grant_inside(void **state)
{
        static const char *const op =
                "{\"nifkit_policy\": 1, \"files\": [{\"path\": \"/a\", \"access\": \"create\"},"
                " {\"path\": \"/a/b\", \"access\": \"read\", \"no_symlinks\": true}]}";
        struct nk_policy *want = load_ent("{\"files\": [{\"path\": \"/a/b/c\", \"access\": \"create\"},"
                                          " {\"path\": \"/a\", \"access\": \"read-write\"}]}");
        struct nk_policy_error err;
        struct nk_policy *eff = NULL;
        char *text = NULL, *notes = NULL;
        assert_int_equal(nk_policy_intersect(op, "op", want, &text, &notes, &err), 0);
        assert_int_equal(nk_policy_load_string(text, "eff", &eff, &err), 0);
        /* /a/b/c: the operator's /a/b decides it, read without symlinks */
        bool seen_c = false, seen_b = false;
        for (size_t i = 0; i < eff->nfiles; i++) {
                const struct nk_policy_file *f = &eff->files[i];
                if (strcmp(f->path, "/a/b/c") == 0) {
                        seen_c = true;
                        assert_int_equal(f->access, NK_POLICY_ACCESS_READ);
                        assert_true(f->no_symlinks);
                } else if (strcmp(f->path, "/a/b") == 0) {
                        seen_b = true;
                        assert_int_equal(f->access, NK_POLICY_ACCESS_READ);
                } else {
                        assert_string_equal(f->path, "/a");
                        assert_int_equal(f->access, NK_POLICY_ACCESS_READ_WRITE);
                }
        }
        assert_true(seen_c && seen_b);
        assert_non_null(strstr(notes, "files: /a/b/c (create) is requested but granted only in part"));
        nk_policy_free(eff);
        nk_policy_free(want);
        free(text);
        free(notes);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_document_checks),
                cmocka_unit_test(test_found_in_section),
                cmocka_unit_test(test_found_beside),
                cmocka_unit_test(test_intersection),
                cmocka_unit_test(test_narrower_grant_inside),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
