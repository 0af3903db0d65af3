/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cause and fix a failed host start gives when its namespaces could
 * not be made (runtime/machine.c), read from sysctl files faked in a
 * temporary directory. The whole path, with the real sysctl, runs in the
 * VM suite (tests/vm/guest-tests/doctor_userns.sh).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "machine.h"

static char dir[] = "/tmp/nk-machine-XXXXXX";

static void put(const char *name, const char *value)
{
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(value, f);
        fclose(f);
}

static void drop(const char *name)
{
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        unlink(path);
}

static void test_hints(void **state)
{
        char hint[400], sub[300];
        assert_non_null(mkdtemp(dir));
        snprintf(sub, sizeof sub, "%s/user", dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        snprintf(sub, sizeof sub, "%s/kernel", dir);
        assert_int_equal(mkdir(sub, 0700), 0);

        /* No sysctl restricts: the errno says what kind of refusal. */
        nk_machine_start_hint(dir, EPERM, hint, sizeof hint);
        assert_non_null(strstr(hint, "seccomp profile"));
        assert_non_null(strstr(hint, "nifkit doctor"));
        nk_machine_start_hint(dir, ENOSPC, hint, sizeof hint);
        assert_non_null(strstr(hint, "namespace limit is reached"));
        nk_machine_start_hint(dir, EINVAL, hint, sizeof hint);
        assert_non_null(strstr(hint, "lacks a namespace type"));
        nk_machine_start_hint(dir, E2BIG, hint, sizeof hint);
        assert_string_equal(hint, "");

        /* The sysctl that switches user namespaces off wins over the errno. */
        put("user/max_user_namespaces", "0\n");
        nk_machine_start_hint(dir, ENOSPC, hint, sizeof hint);
        assert_non_null(strstr(hint, "user.max_user_namespaces is 0"));
        assert_non_null(strstr(hint, "fix: sysctl -w user.max_user_namespaces="));
        put("user/max_user_namespaces", "15000\n");

        /* Debian's and Ubuntu's switches stop unprivileged callers only. */
        put("kernel/unprivileged_userns_clone", "0\n");
        nk_machine_start_hint(dir, EPERM, hint, sizeof hint);
        if (geteuid() == 0)
                assert_null(strstr(hint, "unprivileged_userns_clone"));
        else
                assert_non_null(strstr(hint, "kernel.unprivileged_userns_clone is 0"));
        drop("kernel/unprivileged_userns_clone");
        put("kernel/apparmor_restrict_unprivileged_userns", "1\n");
        nk_machine_start_hint(dir, EPERM, hint, sizeof hint);
        if (geteuid() == 0)
                assert_null(strstr(hint, "AppArmor"));
        else
                assert_non_null(strstr(hint, "AppArmor profile allowing"));
        drop("kernel/apparmor_restrict_unprivileged_userns");
        drop("user/max_user_namespaces");
        snprintf(sub, sizeof sub, "%s/user", dir);
        rmdir(sub);
        snprintf(sub, sizeof sub, "%s/kernel", dir);
        rmdir(sub);
        rmdir(dir);

        /* A short buffer is cut, never overrun. */
        char small[16];
        nk_machine_start_hint("/nonexistent", EPERM, small, sizeof small);
        assert_int_equal(strlen(small), sizeof small - 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hints),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
