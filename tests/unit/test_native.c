/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native launcher's parent-side logic: ELF dependency resolution (on
 * crafted and malformed files, since the NIF library is untrusted input
 * parsed by the runtime), the mount plan, uid_map lines and default ids,
 * rlimits, the netlink message, and the child's error text.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cmocka.h>

#include "launcher.h"
#include "sequencer.h"

static char dir[] = "/tmp/nk-native-unit.XXXXXX";

/* ---- crafted ELF files ---------------------------------------------------------- */

/* A shared object with one PT_LOAD over the whole file, a PT_DYNAMIC and
 * a string table; dynamic entries come from the caller. */
struct elf_spec {
        const char *strtab;             /* "\0"-separated, starting with "\0" */
        size_t strtab_len;
        const ElfW(Dyn) *dyn;           /* without DT_STRTAB/DT_STRSZ/DT_NULL */
        size_t ndyn;
        uint64_t strsz_override;        /* 0: the real size */
        uint64_t phoff_override;        /* 0: the real offset */
        const char *interp;
};

static char *write_elf(const char *name, const struct elf_spec *spec)
{
        uint8_t buf[4096] = { 0 };
        ElfW(Ehdr) *eh = (ElfW(Ehdr) *) buf;
        size_t nph = spec->interp ? 3 : 2;
        size_t phoff = sizeof *eh;
        size_t dynoff = phoff + nph * sizeof(ElfW(Phdr));
        size_t ndyn = spec->ndyn + 3;
        size_t stroff = dynoff + ndyn * sizeof(ElfW(Dyn));
        size_t interpoff = stroff + spec->strtab_len;
        size_t total = interpoff + (spec->interp ? strlen(spec->interp) + 1 : 0);
        assert_true(total <= sizeof buf);

        memcpy(eh->e_ident, ELFMAG, SELFMAG);
        eh->e_ident[EI_CLASS] = ELFCLASS64;
        eh->e_ident[EI_DATA] = ELFDATA2LSB;
        eh->e_ident[EI_VERSION] = EV_CURRENT;
        eh->e_type = ET_DYN;
#if defined(__x86_64__)
        eh->e_machine = EM_X86_64;
#elif defined(__aarch64__)
        eh->e_machine = EM_AARCH64;
#endif
        eh->e_phoff = spec->phoff_override ? spec->phoff_override : phoff;
        eh->e_phentsize = sizeof(ElfW(Phdr));
        eh->e_phnum = (uint16_t) nph;

        ElfW(Phdr) *ph = (ElfW(Phdr) *) (buf + phoff);
        ph[0] = (ElfW(Phdr)) { .p_type = PT_LOAD, .p_offset = 0, .p_vaddr = 0x10000, .p_filesz = total,
                               .p_memsz = total };
        ph[1] = (ElfW(Phdr)) { .p_type = PT_DYNAMIC, .p_offset = dynoff, .p_vaddr = 0x10000 + dynoff,
                               .p_filesz = ndyn * sizeof(ElfW(Dyn)) };
        if (spec->interp)
                ph[2] = (ElfW(Phdr)) { .p_type = PT_INTERP, .p_offset = interpoff,
                                       .p_filesz = strlen(spec->interp) + 1 };

        ElfW(Dyn) *d = (ElfW(Dyn) *) (buf + dynoff);
        memcpy(d, spec->dyn, spec->ndyn * sizeof *d);
        d[spec->ndyn] = (ElfW(Dyn)) { .d_tag = DT_STRTAB, .d_un.d_ptr = 0x10000 + stroff };
        d[spec->ndyn + 1] = (ElfW(Dyn)) { .d_tag = DT_STRSZ,
                                          .d_un.d_val = spec->strsz_override ? spec->strsz_override
                                                                             : spec->strtab_len };
        d[spec->ndyn + 2] = (ElfW(Dyn)) { .d_tag = DT_NULL };
        memcpy(buf + stroff, spec->strtab, spec->strtab_len);
        if (spec->interp)
                memcpy(buf + interpoff, spec->interp, strlen(spec->interp) + 1);

        char *path;
        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, total), (ssize_t) total);
        close(fd);
        return path;
}

static char *write_bytes(const char *name, const void *p, size_t len)
{
        char *path;
        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, p, len), (ssize_t) len);
        close(fd);
        return path;
}

/* strtab: "\0libc.so.6\0$ORIGIN/../lib:/opt/nk:$LIB/x:rel\0" */
static const char strtab_a[] = "\0libc.so.6\0$ORIGIN/../lib:/opt/nk:$LIB/x:rel";

static void test_elf_read(void **state)
{
        (void) state;
        const ElfW(Dyn) dyn[] = {
                { .d_tag = DT_NEEDED, .d_un.d_val = 1 },
                { .d_tag = DT_RUNPATH, .d_un.d_val = 11 },
        };
        const struct elf_spec spec = { .strtab = strtab_a, .strtab_len = sizeof strtab_a, .dyn = dyn, .ndyn = 2,
                                       .interp = "/lib64/ld-test.so.2" };
        char *path = write_elf("a.so", &spec);
        struct nk_elf_info info;
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_elf_read(path, &info, &err), 0);
        assert_string_equal(info.interp, "/lib64/ld-test.so.2");
        assert_int_equal(info.needed.n, 1);
        assert_string_equal(info.needed.paths[0], "libc.so.6");
        assert_true(info.has_runpath);
        /* $ORIGIN is the file's directory; $LIB and relative entries are skipped. */
        char want[PATH_MAX + 16];
        char real[PATH_MAX];
        assert_non_null(realpath(dir, real));
        snprintf(want, sizeof want, "%s/../lib", real);
        assert_int_equal(info.search.n, 2);
        assert_string_equal(info.search.paths[0], want);
        assert_string_equal(info.search.paths[1], "/opt/nk");
        nk_elf_info_free(&info);
        free(path);
}

static void expect_malformed(const char *name, const char *path, int code, const char *in_msg)
{
        struct nk_elf_info info;
        struct nk_sandbox_error err = { 0 };
        int r = nk_elf_read(path, &info, &err);
        if (r != code || !strstr(err.msg, in_msg))
                fail_msg("%s: expected %d '%s', got %d '%s'", name, code, in_msg, r, err.msg);
}

static void test_elf_malformed(void **state)
{
        (void) state;
        char *p = write_bytes("text.so", "not an ELF file at all", 22);
        expect_malformed("text", p, -ENOEXEC, "not an ELF file");
        free(p);
        p = write_bytes("empty.so", "", 0);
        expect_malformed("empty", p, -ENOEXEC, "not an ELF file");
        free(p);
        p = write_bytes("short.so", ELFMAG, SELFMAG);
        expect_malformed("truncated header", p, -ENOEXEC, "not an ELF file");
        free(p);

        const ElfW(Dyn) needed_far[] = { { .d_tag = DT_NEEDED, .d_un.d_val = 100000 } };
        struct elf_spec spec = { .strtab = strtab_a, .strtab_len = sizeof strtab_a, .dyn = needed_far, .ndyn = 1 };
        p = write_elf("far.so", &spec);
        expect_malformed("DT_NEEDED past the string table", p, -EBADMSG, "malformed dynamic section");
        free(p);

        const ElfW(Dyn) needed_ok[] = { { .d_tag = DT_NEEDED, .d_un.d_val = 1 } };
        spec = (struct elf_spec) { .strtab = strtab_a, .strtab_len = sizeof strtab_a, .dyn = needed_ok, .ndyn = 1,
                                   .strsz_override = 1ULL << 40 };
        p = write_elf("strsz.so", &spec);
        expect_malformed("DT_STRSZ past the file", p, -EBADMSG, "malformed dynamic section");
        free(p);

        spec = (struct elf_spec) { .strtab = strtab_a, .strtab_len = sizeof strtab_a, .dyn = needed_ok, .ndyn = 1,
                                   .phoff_override = 1ULL << 40 };
        p = write_elf("phoff.so", &spec);
        expect_malformed("program headers past the file", p, -EBADMSG, "program header table");
        free(p);

        /* A string table without its terminating NUL inside DT_STRSZ. */
        static const char unterminated[] = { '\0', 'l', 'i', 'b', 'x' };
        spec = (struct elf_spec) { .strtab = unterminated, .strtab_len = sizeof unterminated, .dyn = needed_ok,
                                   .ndyn = 1 };
        p = write_elf("unterminated.so", &spec);
        struct nk_elf_info info;
        struct nk_sandbox_error err = { 0 };
        int r = nk_elf_read(p, &info, &err);
        /* The file goes on past the table, so the string may end there;
         * either way nothing is read outside the file. */
        if (r == 0)
                nk_elf_info_free(&info);
        free(p);
}

static void test_elf_resolve(void **state)
{
        (void) state;
        static const char strtab[] = "\0libc.so.6\0libnk-no-such-library.so.9";
        const ElfW(Dyn) libc[] = { { .d_tag = DT_NEEDED, .d_un.d_val = 1 } };
        struct elf_spec spec = { .strtab = strtab, .strtab_len = sizeof strtab, .dyn = libc, .ndyn = 1 };
        char *p = write_elf("needs-libc.so", &spec);
        struct nk_pathset deps = {};
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_elf_resolve(p, &deps, &err), 0);
        bool have_libc = false, have_interp = false;
        for (size_t i = 0; i < deps.n; i++) {
                size_t len = strlen(deps.paths[i]);
                assert_true(deps.paths[i][0] == '/');
                have_libc = have_libc || (len > 10 && strcmp(deps.paths[i] + len - 10, "/libc.so.6") == 0);
                /* libc's own PT_INTERP: the dynamic loader. */
                have_interp = have_interp || strstr(deps.paths[i], "ld-") != NULL;
        }
        assert_true(have_libc);
        assert_true(have_interp);
        nk_pathset_free(&deps);
        free(p);

        const ElfW(Dyn) missing[] = { { .d_tag = DT_NEEDED, .d_un.d_val = 11 } };
        spec = (struct elf_spec) { .strtab = strtab, .strtab_len = sizeof strtab, .dyn = missing, .ndyn = 1 };
        p = write_elf("needs-missing.so", &spec);
        assert_int_equal(nk_elf_resolve(p, &deps, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "cannot find 'libnk-no-such-library.so.9'"));
        assert_non_null(strstr(err.msg, "needs-missing.so"));
        nk_pathset_free(&deps);
        free(p);
}

static void test_pathset(void **state)
{
        (void) state;
        struct nk_pathset s = {};
        for (int i = 0; i < 100; i++) {
                char path[32];
                snprintf(path, sizeof path, "/p/%d", i % 40);
                assert_true(nk_pathset_add(&s, path) >= 0);
        }
        assert_int_equal(s.n, 40);
        assert_true(nk_pathset_has(&s, "/p/39"));
        assert_false(nk_pathset_has(&s, "/p/40"));
        nk_pathset_free(&s);
        assert_int_equal(s.n, 0);
}

/* ---- mounts ----------------------------------------------------------------------- */

static void test_mount_plan(void **state)
{
        (void) state;
        char *lib = write_bytes("lib.so", "x", 1);
        struct nk_pathset deps = {};
        assert_true(nk_pathset_add(&deps, "/bin/sh") >= 0);
        const struct nk_sandbox_config cfg = { .host_binary = "/bin/true", .library = lib, .tmp_mb = 8 };
        struct nk_mount_plan plan;
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_mount_prepare(&cfg, &deps, &plan, &err), 0);

        /* host, library, dep, 4 device nodes, the CPU lists this machine has */
        size_t sys = 0;
        for (size_t i = 0; nk_sandbox_sys_files[i]; i++)
                sys += access(nk_sandbox_sys_files[i], R_OK) == 0;
        assert_int_equal(plan.n, 7 + sys);
        assert_string_equal(plan.entries[0].src, "/bin/true");
        assert_string_equal(plan.entries[0].dst, "/tmp/bin/true");
        assert_int_equal(plan.entries[0].kind, NK_MOUNT_FILE);
        unsigned devs = 0;
        for (size_t i = 0; i < plan.n; i++)
                if (plan.entries[i].kind == NK_MOUNT_DEV) {
                        devs++;
                        assert_int_equal(strncmp(plan.entries[i].src, "/dev/", 5), 0);
                }
        assert_int_equal(devs, 4);
        assert_non_null(strstr(plan.tmp_opts, "size=8m"));
        assert_non_null(strstr(plan.tmp_opts, "mode=1777"));
        /* Parents before children, and every mount point's parent planned. */
        for (size_t i = 1; i < plan.ndirs; i++)
                assert_true(strcmp(plan.dirs[i - 1], plan.dirs[i]) < 0);
        bool have_bin = false, have_proc = false;
        for (size_t i = 0; i < plan.ndirs; i++) {
                have_bin = have_bin || strcmp(plan.dirs[i], "/tmp/bin") == 0;
                have_proc = have_proc || strcmp(plan.dirs[i], "/tmp/proc") == 0;
        }
        assert_true(have_bin);
        assert_true(have_proc);
        nk_mount_plan_free(&plan);

        /* Paths the sandbox must not take from anyone. */
        static const char *const bad[] = { "/proc/self/exe", "relative/lib.so", "/usr/../etc/shadow", "/./x",
                                           "/no/such/file" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                const struct nk_sandbox_config c = { .host_binary = "/bin/true", .library = bad[i], .tmp_mb = 8 };
                int r = nk_mount_prepare(&c, &deps, &plan, &err);
                if (r >= 0)
                        fail_msg("'%s' was accepted as a bind", bad[i]);
        }

        /* The library's directory bound as a whole: the library's own bind,
         * inside it, is dropped. */
        const char *const extra[] = { dir, NULL };
        const struct nk_sandbox_config with_dir = { .host_binary = "/bin/true", .library = lib, .tmp_mb = 8,
                                                    .extra_ro = extra };
        assert_int_equal(nk_mount_prepare(&with_dir, &deps, &plan, &err), 0);
        assert_int_equal(plan.n, 7 + sys);
        bool have_dir = false;
        for (size_t i = 0; i < plan.n; i++) {
                assert_string_not_equal(plan.entries[i].src, lib);
                if (strcmp(plan.entries[i].src, dir) == 0) {
                        have_dir = true;
                        assert_int_equal(plan.entries[i].kind, NK_MOUNT_DIR);
                }
        }
        assert_true(have_dir);
        nk_mount_plan_free(&plan);

        nk_pathset_free(&deps);
        unlink(lib);
        free(lib);
}

/* ---- ids, rlimits, netlink, child errors ----------------------------------------------- */

static void test_userns(void **state)
{
        (void) state;
        char buf[64];
        assert_int_equal(nk_userns_map_line(1000, 65534, buf, sizeof buf), 13);
        assert_string_equal(buf, "1000 65534 1\n");
        assert_int_equal(nk_userns_map_line(1000, 65534, buf, 8), -ENOBUFS);

        uid_t ou, iu;
        gid_t og, ig;
        /* The sandbox reads no variable: the operator's ids come through
         * nk_host_set_sandbox_ids (operator.c reads NIFKIT_SANDBOX_UID). */
        setenv("NIFKIT_SANDBOX_UID", "4242", 1);
        nk_userns_default_ids(&ou, &og, &iu, &ig);
        unsetenv("NIFKIT_SANDBOX_UID");
        assert_int_equal(iu, 1000);
        assert_int_equal(ig, 1000);
        if (geteuid() == 0) {
                assert_int_equal(ou, 65534);
                assert_int_equal(og, 65534);
        } else {
                assert_int_equal(ou, geteuid());
                assert_int_equal(og, getegid());
        }

        /* The parent step refuses root on either side before touching /proc. */
        struct nk_sandbox_config cfg = { .outside_uid = 0, .outside_gid = 65534, .inside_uid = 1000,
                                         .inside_gid = 1000 };
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_userns_parent(getpid(), &cfg, &err), -EINVAL);
        cfg = (struct nk_sandbox_config) { .outside_uid = 65534, .outside_gid = 65534, .inside_uid = 0,
                                           .inside_gid = 1000 };
        assert_int_equal(nk_userns_parent(getpid(), &cfg, &err), -EINVAL);
}

static void test_rlimits(void **state)
{
        (void) state;
        const struct nk_sandbox_config cfg = { .memory_bytes = 256ULL << 20, .tmp_mb = 16, .open_files = 64 };
        struct nk_rlimits_plan p;
        nk_rlimits_prepare(&cfg, false, &p);
        assert_int_equal(p.nofile, 64);
        assert_int_equal(p.as_bytes, 0);        /* the cgroup limits memory */
        assert_int_equal(p.fsize_bytes, 16ULL << 20);
        nk_rlimits_prepare(&cfg, true, &p);
        assert_int_equal(p.as_bytes, (256ULL << 20) + (512ULL << 20));
}

static void test_netlink_message(void **state)
{
        (void) state;
        struct nk_netns_plan p;
        struct nk_sandbox_error err = { 0 };
        assert_int_equal(nk_netns_prepare(&p, &err), 0);
        const struct nlmsghdr *nh = (const struct nlmsghdr *) p.msg;
        assert_int_equal(nh->nlmsg_len, p.len);
        assert_int_equal(nh->nlmsg_type, RTM_NEWLINK);
        assert_true(nh->nlmsg_flags & NLM_F_REQUEST);
        assert_true(nh->nlmsg_flags & NLM_F_ACK);
        const struct ifinfomsg *ifi = NLMSG_DATA(nh);
        assert_int_equal(ifi->ifi_index, 1);
        assert_true(ifi->ifi_flags & IFF_UP);
        assert_true(ifi->ifi_change & IFF_UP);
        nk_netns_plan_free(&p);
        assert_null(p.msg);
}

static void test_child_fail(void **state)
{
        (void) state;
        struct nk_child_err e;
        assert_int_equal(nk_child_fail(&e, -EPERM, "binding '", "/usr/lib/x.so", "'"), -EPERM);
        assert_string_equal(e.what, "binding '/usr/lib/x.so'");
        assert_int_equal(e.code, -EPERM);
        assert_int_equal(nk_child_fail(&e, -EIO, "pivot_root", NULL, "ignored"), -EIO);
        assert_string_equal(e.what, "pivot_root");
        char longer[600];
        memset(longer, 'a', sizeof longer - 1);
        longer[sizeof longer - 1] = '\0';
        nk_child_fail(&e, -E2BIG, longer, longer, NULL);
        assert_int_equal(strlen(e.what), sizeof e.what - 1);
}

static void test_exit_report(void **state)
{
        (void) state;
        struct nk_child_exit ex;
        int p[2];
        assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        int sig = 11;
        assert_int_equal(write(p[1], &sig, sizeof sig), (ssize_t) sizeof sig);
        struct nk_exit_report *r = nk_exit_report_new(p[0]);
        assert_non_null(r);
        assert_int_equal(nk_exit_report_read(r, &ex), 0);
        assert_int_equal(ex.signo, 11);
        assert_int_equal(ex.status, 0);
        assert_int_equal(nk_exit_report_read(r, &ex), -ECHILD);     /* read once */
        nk_exit_report_free(r);
        close(p[1]);

        /* Nothing written, or not a signal: nothing is claimed. */
        static const int bad[] = { 0, -1, 65, 100000 };
        for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
                assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
                if (i < sizeof bad / sizeof bad[0])
                        assert_int_equal(write(p[1], &bad[i], sizeof bad[i]), (ssize_t) sizeof bad[i]);
                r = nk_exit_report_new(p[0]);
                assert_int_equal(nk_exit_report_read(r, &ex), -ECHILD);
                nk_exit_report_free(r);
                close(p[1]);
        }
        assert_int_equal(nk_exit_report_read(NULL, &ex), -ECHILD);
}

static int setup(void **state)
{
        (void) state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
        (void) state;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_elf_read),
                cmocka_unit_test(test_elf_malformed),
                cmocka_unit_test(test_elf_resolve),
                cmocka_unit_test(test_pathset),
                cmocka_unit_test(test_mount_plan),
                cmocka_unit_test(test_userns),
                cmocka_unit_test(test_rlimits),
                cmocka_unit_test(test_netlink_message),
                cmocka_unit_test(test_child_fail),
                cmocka_unit_test(test_exit_report),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
