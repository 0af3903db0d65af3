/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2 text: controller lists, event counters, and finding this
 * process's cgroup from /proc/self/cgroup and mountinfo. Pure text; the
 * real hierarchy is exercised by tests/integration/cgroup.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sandbox.h"

#define ALL (NK_CG_MEMORY | NK_CG_PIDS | NK_CG_CPU)

static unsigned controllers(const char *text)
{
        unsigned mask = 0xdead;
        assert_int_equal(nk_cgroup_parse_controllers(text, &mask), 0);
        return mask;
}

static void test_controllers(void **state)
{
        assert_int_equal(controllers(""), 0);
        assert_int_equal(controllers("\n"), 0);
        /* A full list, in the kernel's order. */
        assert_int_equal(controllers("cpuset cpu io memory hugetlb pids rdma misc\n"), ALL);
        /* This machine's v2 root: only what v1 did not take. */
        assert_int_equal(controllers("hugetlb\n"), 0);
        /* cpuset is not cpu, memory_x is not memory. */
        assert_int_equal(controllers("cpuset io\n"), 0);
        assert_int_equal(controllers("memory_x pidsy cpu0\n"), 0);
        assert_int_equal(controllers("memory"), NK_CG_MEMORY);
        assert_int_equal(controllers("  pids\tcpu  \n"), NK_CG_PIDS | NK_CG_CPU);
        assert_int_equal(controllers("memory\nmemory\n"), NK_CG_MEMORY);

        unsigned mask = 0;
        assert_int_equal(nk_cgroup_parse_controllers("Memory\n", &mask), -EINVAL);
        assert_int_equal(nk_cgroup_parse_controllers("memory+cpu\n", &mask), -EINVAL);
        assert_int_equal(nk_cgroup_parse_controllers("+memory\n", &mask), -EINVAL);
        assert_int_equal(nk_cgroup_parse_controllers(NULL, &mask), -EINVAL);
        assert_int_equal(nk_cgroup_parse_controllers("cpu", NULL), -EINVAL);
}

static const char memory_events[] =
        "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";

static void test_events(void **state)
{
        uint64_t v = 99;
        assert_int_equal(nk_cgroup_parse_events(memory_events, "oom_kill", &v), 0);
        assert_int_equal(v, 2);
        /* "oom" is a prefix of the next two keys; only its own line counts. */
        assert_int_equal(nk_cgroup_parse_events(memory_events, "oom", &v), 0);
        assert_int_equal(v, 3);
        assert_int_equal(nk_cgroup_parse_events(memory_events, "max", &v), 0);
        assert_int_equal(v, 12);
        assert_int_equal(nk_cgroup_parse_events(memory_events, "oom_group_kill", &v), 0);
        assert_int_equal(v, 0);

        /* pids.events on 6.x kernels has max.imposed too, in either order. */
        assert_int_equal(nk_cgroup_parse_events("max 7\nmax.imposed 1\n", "max", &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(nk_cgroup_parse_events("max.imposed 1\nmax 8\n", "max", &v), 0);
        assert_int_equal(v, 8);
        assert_int_equal(nk_cgroup_parse_events("max.imposed 1\n", "max", &v), -ENOENT);

        /* cgroup.events, last line without a newline. */
        assert_int_equal(nk_cgroup_parse_events("populated 0\nfrozen 0", "frozen", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(nk_cgroup_parse_events("populated 1\nfrozen 0\n", "populated", &v), 0);
        assert_int_equal(v, 1);

        assert_int_equal(nk_cgroup_parse_events("oom_kill 18446744073709551615\n", "oom_kill", &v), 0);
        assert_int_equal(v, UINT64_MAX);
        assert_int_equal(nk_cgroup_parse_events("oom_kill 18446744073709551616\n", "oom_kill", &v), -ERANGE);
        assert_int_equal(nk_cgroup_parse_events("oom_kill x\n", "oom_kill", &v), -EINVAL);
        assert_int_equal(nk_cgroup_parse_events("oom_kill -1\n", "oom_kill", &v), -EINVAL);
        assert_int_equal(nk_cgroup_parse_events("oom_kill 5 6\n", "oom_kill", &v), -EINVAL);
        assert_int_equal(nk_cgroup_parse_events("oom_kill  5\n", "oom_kill", &v), -EINVAL);
        assert_int_equal(nk_cgroup_parse_events("oom_kill \n", "oom_kill", &v), -EINVAL);
        /* A key alone on its line carries no counter. */
        assert_int_equal(nk_cgroup_parse_events("oom_kill\n", "oom_kill", &v), -ENOENT);
        assert_int_equal(nk_cgroup_parse_events("", "oom_kill", &v), -ENOENT);
        assert_int_equal(nk_cgroup_parse_events(memory_events, "", &v), -EINVAL);
        assert_int_equal(nk_cgroup_parse_events(NULL, "max", &v), -EINVAL);
}

static void test_mask_name(void **state)
{
        char buf[64];
        assert_string_equal(nk_cgroup_mask_name(ALL, buf, sizeof buf), "memory pids cpu");
        assert_string_equal(nk_cgroup_mask_name(NK_CG_CPU | NK_CG_MEMORY, buf, sizeof buf), "memory cpu");
        assert_string_equal(nk_cgroup_mask_name(NK_CG_PIDS, buf, sizeof buf), "pids");
        assert_string_equal(nk_cgroup_mask_name(0, buf, sizeof buf), "");
        /* Bits nifkit does not know are not named. */
        assert_string_equal(nk_cgroup_mask_name(1u << 20 | NK_CG_PIDS, buf, sizeof buf), "pids");
        char small[10];
        assert_string_equal(nk_cgroup_mask_name(ALL, small, sizeof small), "memory");
        assert_null(nk_cgroup_mask_name(ALL, NULL, 0));
}

/* This machine: systemd's hybrid layout, v1 controllers elsewhere. */
static const char hybrid_cgroup[] =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/52534d85\n1:cpu:/\n0::/\n";
static const char hybrid_mountinfo[] =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const char unified_mountinfo[] =
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "26 22 0:23 / /sys rw,nosuid shared:6 - sysfs sysfs rw\n"
        "27 26 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:7 - cgroup2 cgroup2 rw,nsdelegate\n";

static int root_of(const char *cg, const char *mi, char *buf, size_t size)
{
        memset(buf, 'x', size);
        return nk_cgroup_parse_root(cg, mi, buf, size);
}

static void test_parse_root(void **state)
{
        char buf[256];
        assert_int_equal(root_of(hybrid_cgroup, hybrid_mountinfo, buf, sizeof buf), 0);
        assert_string_equal(buf, "/sys/fs/cgroup/unified");

        /* Pure v2 under systemd, optional fields before the separator. */
        assert_int_equal(root_of("0::/user.slice/user-1000.slice/session-2.scope\n", unified_mountinfo,
                                 buf, sizeof buf), 0);
        assert_string_equal(buf, "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");

        /* A container whose cgroup2 mount shows only its own subtree. */
        const char *bind = "40 30 0:30 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
        assert_int_equal(root_of("0::/docker/abc/sub\n", bind, buf, sizeof buf), 0);
        assert_string_equal(buf, "/sys/fs/cgroup/sub");
        assert_int_equal(root_of("0::/docker/abc\n", bind, buf, sizeof buf), 0);
        assert_string_equal(buf, "/sys/fs/cgroup");
        /* /docker/abcd is not inside /docker/abc. */
        assert_int_equal(root_of("0::/docker/abcd\n", bind, buf, sizeof buf), -ENOENT);

        /* cgroup2 mounted on / (a test VM's init), and escaped names. */
        assert_int_equal(root_of("0::/a\n", "1 0 0:5 / / rw - cgroup2 none rw\n", buf, sizeof buf), 0);
        assert_string_equal(buf, "/a");
        assert_int_equal(root_of("0::/\n", "1 0 0:5 / /mnt/cg\\040v2 rw - cgroup2 none rw\n", buf, sizeof buf), 0);
        assert_string_equal(buf, "/mnt/cg v2");

        /* No v2 line, no v2 mount, a v1 mount only, too small a buffer. */
        assert_int_equal(root_of("1:cpu:/\n", hybrid_mountinfo, buf, sizeof buf), -ENOENT);
        assert_int_equal(root_of("0::/\n", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
                                 buf, sizeof buf), -ENOENT);
        assert_int_equal(root_of("0::/\n", "", buf, sizeof buf), -ENOENT);
        assert_int_equal(root_of("0::/\n", hybrid_mountinfo, buf, 8), -ENAMETOOLONG);
        assert_int_equal(root_of("0::\n", hybrid_mountinfo, buf, sizeof buf), -EINVAL);
        assert_int_equal(root_of(NULL, hybrid_mountinfo, buf, sizeof buf), -EINVAL);
        /* A line cut short before its file system type is skipped. */
        assert_int_equal(root_of("0::/\n", "41 31 0:38 / /sys/fs/cgroup/unified rw\n", buf, sizeof buf), -ENOENT);
}

static void test_detect_hint_errors(void **state)
{
        struct nk_cgroup_info info;
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_cgroup_detect("relative/path", &info, &err), -EINVAL);
        assert_int_equal(err.code, -EINVAL);
        assert_string_equal(err.msg, "NIFKIT_CGROUP_ROOT \"relative/path\" is not an absolute path");
        /* /proc is no cgroup v2 hierarchy. */
        assert_int_equal(nk_cgroup_detect("/proc", &info, &err), -ENOENT);
        assert_string_equal(err.msg, "cgroup root \"/proc\" is not in a cgroup v2 hierarchy");
        assert_int_equal(nk_cgroup_detect("/nonexistent-nifkit", &info, &err), -ENOENT);
        assert_int_equal(nk_cgroup_detect(NULL, NULL, &err), -EINVAL);
}

static void test_create_arguments(void **state)
{
        struct nk_cgroup_info info = { .root = "/nonexistent-nifkit" };
        struct nk_sandbox_config cfg = { 0 };
        struct nk_cgroup *cg = (void *) 1;
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_cgroup_create(&info, "../escape", &cfg, &cg, &err), -EINVAL);
        assert_null(cg);
        assert_int_equal(nk_cgroup_create(&info, "..", &cfg, &cg, &err), -EINVAL);
        assert_int_equal(nk_cgroup_create(&info, "", &cfg, &cg, &err), -EINVAL);
        assert_int_equal(nk_cgroup_create(&info, "leaf", &cfg, &cg, &err), -ENOENT);
        assert_string_equal(err.msg, "cgroup: creating /nonexistent-nifkit/leaf: No such file or directory");
        assert_int_equal(nk_cgroup_fd(NULL), -EINVAL);
        assert_null(nk_cgroup_path(NULL));
        nk_cgroup_destroy(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_controllers),
                cmocka_unit_test(test_events),
                cmocka_unit_test(test_mask_name),
                cmocka_unit_test(test_parse_root),
                cmocka_unit_test(test_detect_hint_errors),
                cmocka_unit_test(test_create_arguments),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
