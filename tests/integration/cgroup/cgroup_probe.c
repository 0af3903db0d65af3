/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drives cgroup2.c on the real hierarchy, for cgroup.sh.
 *
 *   cgroup_probe detect
 *       runs nk_cgroup_detect(NIFKIT_CGROUP_ROOT) and prints result=,
 *       root=, available=, writable=, message= lines.
 *   cgroup_probe lifecycle ROOT CONTROLLERS...
 *       makes a leaf under ROOT (with the given controllers as available),
 *       starts children in it with clone3(CLONE_INTO_CGROUP), checks the
 *       limit files and, where the controllers are there, that an OOM and a
 *       pids.max hit show in the events; then destroys the leaf and checks
 *       that its processes are dead and the directory gone.
 *   cgroup_probe fallback ROOT
 *       the same destroy through its pre-5.14 path (SIGKILL to each pid
 *       in cgroup.procs), forced by making cgroup.kill unwritable.
 *
 * Exit status: 0 passed, 1 failed (a line "FAIL: …" says why), 77 skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static int failures;

#define CHECK(cond, ...)                                 \
        do {                                             \
                if (!(cond)) {                           \
                        printf("FAIL: " __VA_ARGS__);    \
                        printf("\n");                    \
                        failures++;                      \
                }                                        \
        } while (0)

static int detect(void)
{
        struct nk_cgroup_info info;
        struct nk_sandbox_error err = { 0 };
        char names[64];
        int r = nk_cgroup_detect(getenv("NIFKIT_CGROUP_ROOT"), &info, &err);
        printf("result=%d\nroot=%s\navailable=%s\nwritable=%d\nmessage=%s\n", r, info.root,
               nk_cgroup_mask_name(info.available, names, sizeof names), info.writable ? 1 : 0,
               r < 0 ? err.msg : "");
        return 0;
}

/* The children: each runs one function inside the leaf. */
static void child_pause(void)
{
        for (;;)
                pause();
}

static void child_eat_memory(void)
{
        /* Touch far more than memory.max; swap is off, so the OOM killer
         * ends this. Exits 3 only if it never triggers. */
        for (int i = 0; i < 512; i++) {
                char *p = malloc(1 << 20);
                if (!p)
                        _exit(2);
                memset(p, i, 1 << 20);
        }
        _exit(3);
}

static void child_fork_bomb(void)
{
        int refused = 0;
        for (int i = 0; i < 16; i++) {
                pid_t p = fork();
                if (p == 0)
                        child_pause();
                if (p < 0 && errno == EAGAIN)
                        refused++;
        }
        /* Stay, with the children that did start, until the leaf is killed. */
        if (refused == 0)
                _exit(4);
        child_pause();
}

static pid_t spawn_in(int cgfd, void (*fn)(void))
{
        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) cgfd,
        };
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) {
                fn();
                _exit(0);
        }
        return (pid_t) pid;
}

static bool in_leaf(pid_t pid, const char *leaf_rel)
{
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        bool found = false;
        while (fgets(buf, sizeof buf, f)) {
                if (strncmp(buf, "0::", 3) == 0) {
                        buf[strcspn(buf, "\n")] = '\0';
                        size_t n = strlen(buf + 3), m = strlen(leaf_rel);
                        found = n >= m && strcmp(buf + 3 + n - m, leaf_rel) == 0;
                }
        }
        fclose(f);
        return found;
}

static void read_into(const char *dir, const char *file, char *buf, size_t size)
{
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        buf[0] = '\0';
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        if (!fgets(buf, (int) size, f))
                buf[0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
}

static int lifecycle(const char *root, int argc, char **argv)
{
        struct nk_cgroup_info info = { .writable = true };
        snprintf(info.root, sizeof info.root, "%s", root);
        for (int i = 0; i < argc; i++) {
                unsigned m = 0;
                if (nk_cgroup_parse_controllers(argv[i], &m) < 0 || m == 0) {
                        printf("FAIL: unknown controller %s\n", argv[i]);
                        return 1;
                }
                info.available |= m;
        }
        struct nk_sandbox_config cfg = {
                .memory_bytes = 32u << 20,
                .pids = 4,
                .cpu_percent = 50,
        };
        struct nk_sandbox_error err = { 0 };
        struct nk_cgroup *cg = NULL;
        int r = nk_cgroup_create(&info, NULL, &cfg, &cg, &err);
        if (r == -EACCES || r == -EPERM || r == -EROFS) {
                printf("SKIP: cannot create a leaf under %s: %s\n", root, err.msg);
                return 77;
        }
        if (r < 0) {
                printf("FAIL: nk_cgroup_create: %s\n", err.msg);
                return 1;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s", nk_cgroup_path(cg));
        const char *leaf = strrchr(path, '/');
        printf("leaf %s\n", path);
        CHECK(strncmp(leaf, "/nifkit-", 8) == 0, "leaf name %s", leaf);
        struct stat st;
        CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "leaf %s is not a directory", path);

        char v[128];
        if (info.available & NK_CG_MEMORY) {
                read_into(path, "memory.max", v, sizeof v);
                CHECK(strcmp(v, "33554432") == 0, "memory.max is \"%s\"", v);
                read_into(path, "memory.swap.max", v, sizeof v);
                CHECK(v[0] == '\0' || strcmp(v, "0") == 0, "memory.swap.max is \"%s\"", v);
        }
        if (info.available & NK_CG_PIDS) {
                read_into(path, "pids.max", v, sizeof v);
                CHECK(strcmp(v, "4") == 0, "pids.max is \"%s\"", v);
        }
        if (info.available & NK_CG_CPU) {
                read_into(path, "cpu.max", v, sizeof v);
                CHECK(strcmp(v, "50000 100000") == 0, "cpu.max is \"%s\"", v);
        }

        /* A process placed with CLONE_INTO_CGROUP is in the leaf from its
         * first instruction. */
        pid_t sleeper = spawn_in(nk_cgroup_fd(cg), child_pause);
        CHECK(sleeper > 0, "clone3(CLONE_INTO_CGROUP): %s", strerror(errno));
        if (sleeper > 0)
                CHECK(in_leaf(sleeper, leaf), "pid %d is not in %s", (int) sleeper, path);

        struct nk_cgroup_events ev;
        if (info.available & NK_CG_MEMORY) {
                int status;
                pid_t eater = spawn_in(nk_cgroup_fd(cg), child_eat_memory);
                CHECK(eater > 0 && waitpid(eater, &status, 0) == eater && WIFSIGNALED(status) &&
                      WTERMSIG(status) == SIGKILL, "memory.max did not OOM-kill the eater");
        }
        if (info.available & NK_CG_PIDS) {
                pid_t bomb = spawn_in(nk_cgroup_fd(cg), child_fork_bomb);
                CHECK(bomb > 0, "clone3 for the fork bomb: %s", strerror(errno));
                /* Give it time to hit pids.max; it then waits to be killed. */
                for (int i = 0; i < 200; i++) {
                        if (nk_cgroup_events(cg, &ev) == 0 && ev.pids_max > 0)
                                break;
                        usleep(10000);
                }
        }
        CHECK(nk_cgroup_events(cg, &ev) == 0, "nk_cgroup_events failed");
        printf("events oom_kill=%llu pids_max=%llu memory_peak=%llu\n", (unsigned long long) ev.oom_kill,
               (unsigned long long) ev.pids_max, (unsigned long long) ev.memory_peak);
        if (info.available & NK_CG_MEMORY)
                CHECK(ev.oom_kill >= 1, "memory.events shows no oom_kill");
        else
                CHECK(ev.oom_kill == 0 && ev.memory_peak == 0, "events without a memory controller");
        if (info.available & NK_CG_PIDS)
                CHECK(ev.pids_max >= 1, "pids.events shows no max");

        nk_cgroup_destroy(cg);
        CHECK(stat(path, &st) < 0 && errno == ENOENT, "%s still exists after destroy", path);
        if (sleeper > 0) {
                int status;
                CHECK(waitpid(sleeper, &status, 0) == sleeper && WIFSIGNALED(status) &&
                      WTERMSIG(status) == SIGKILL, "the leaf's process was not killed");
        }
        /* Reap whatever else was started (the fork bomb). */
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        printf("%s\n", failures ? "lifecycle FAILED" : "lifecycle ok");
        return failures ? 1 : 0;
}

/* Removes CAP_DAC_OVERRIDE from the effective set: file modes then bind
 * even for uid 0. */
static int drop_dac_override(void)
{
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2];
        if (syscall(SYS_capget, &hdr, data) < 0)
                return -errno;
        data[CAP_DAC_OVERRIDE / 32].effective &= ~(1u << (CAP_DAC_OVERRIDE % 32));
        if (syscall(SYS_capset, &hdr, data) < 0)
                return -errno;
        return 0;
}

/* The pre-5.14 path of nk_cgroup_destroy: where cgroup.kill cannot be
 * written, every pid in cgroup.procs gets SIGKILL. Made to happen on any
 * kernel by taking write permission on the leaf's cgroup.kill away (as
 * uid 0 without CAP_DAC_OVERRIDE, so that the mode binds). Runs in a child
 * so the capability is dropped only there. */
static int fallback_child(const char *parent)
{
        struct nk_cgroup_info info = { .writable = true };
        struct nk_sandbox_config cfg = { 0 };
        struct nk_sandbox_error err = { 0 };
        struct nk_cgroup *cg = NULL;
        memcpy(info.root, parent, strlen(parent) + 1);
        if (nk_cgroup_create(&info, "nifkit-fallback", &cfg, &cg, &err) < 0) {
                printf("FAIL: nk_cgroup_create: %s\n", err.msg);
                return 1;
        }
        char path[4200], kill_file[4300];
        snprintf(path, sizeof path, "%s", nk_cgroup_path(cg));
        snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", path);
        pid_t a = spawn_in(nk_cgroup_fd(cg), child_pause);
        pid_t b = spawn_in(nk_cgroup_fd(cg), child_pause);
        CHECK(a > 0 && b > 0, "clone3(CLONE_INTO_CGROUP): %s", strerror(errno));
        if (access(kill_file, F_OK) == 0) {
                CHECK(chmod(kill_file, 0444) == 0, "chmod %s: %s", kill_file, strerror(errno));
                CHECK(drop_dac_override() == 0, "capset: %s", strerror(errno));
                int fd = open(kill_file, O_WRONLY | O_CLOEXEC);
                CHECK(fd < 0 && errno == EACCES, "cgroup.kill is still writable");
                if (fd >= 0)
                        close(fd);
        }
        nk_cgroup_destroy(cg);
        struct stat st;
        CHECK(stat(path, &st) < 0 && errno == ENOENT, "%s still exists after destroy", path);
        pid_t kids[] = { a, b };
        for (int i = 0; i < 2; i++) {
                int status;
                if (kids[i] <= 0)
                        continue;
                CHECK(waitpid(kids[i], &status, 0) == kids[i] && WIFSIGNALED(status) &&
                      WTERMSIG(status) == SIGKILL, "pid %d in the leaf was not killed", (int) kids[i]);
        }
        return failures ? 1 : 0;
}

static int fallback(const char *root)
{
        if (geteuid() != 0) {
                printf("SKIP: the cgroup.procs fallback test needs uid 0 (it drops CAP_DAC_OVERRIDE)\n");
                return 77;
        }
        char parent[sizeof ((struct nk_cgroup_info *) 0)->root];
        if ((size_t) snprintf(parent, sizeof parent, "%s/nifkit-test-%d", root, (int) getpid()) >= sizeof parent) {
                printf("FAIL: %s is too long\n", root);
                return 1;
        }
        if (mkdir(parent, 0755) < 0) {
                printf("SKIP: cannot create %s: %s\n", parent, strerror(errno));
                return 77;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
                _exit(fallback_child(parent));
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(rmdir(parent) == 0, "rmdir %s: %s", parent, strerror(errno));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fallback destroy failed");
        printf("%s\n", failures ? "fallback FAILED" : "fallback (cgroup.procs) ok");
        return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "fallback") == 0)
                return fallback(argv[2]);
        if (argc >= 2 && strcmp(argv[1], "detect") == 0)
                return detect();
        if (argc >= 3 && strcmp(argv[1], "lifecycle") == 0)
                return lifecycle(argv[2], argc - 3, argv + 3);
        fprintf(stderr, "usage: %s detect | lifecycle ROOT [memory|pids|cpu]... | fallback ROOT\n", argv[0]);
        return 2;
}
