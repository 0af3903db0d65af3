/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's root: a tmpfs holding only mount points, read-only at the end,
 * with read-only binds of nifkit-host, the NIF library and what the loader
 * needs for them (each at its own absolute path, so the paths ld.so and
 * the host use work unchanged), four device nodes, a fresh /proc of the
 * host's pid namespace and a size-limited /tmp.
 *
 * The new root is built on a tmpfs mounted over /tmp of the child's (private)
 * mount namespace, then made the root with pivot_root(".", "."), the old
 * root stacked on it detached. The sources were opened before that, so the
 * tmpfs hiding the real /tmp does not matter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "macro.h"
#include "sequencer.h"

#define STAGING "/tmp"
/* Mount points only: a few hundred inodes, nothing else. */
#define ROOT_OPTS "mode=0755,size=1m,nr_inodes=4096"
/* The kernel's statfs flags (ST_*) for the per-mount flags we keep. */
#define NK_ST_NOEXEC 0x0008

const char *const nk_sandbox_dev_nodes[] = { "/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", NULL };
const char *const nk_sandbox_sys_files[] = { "/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible",
                                             NULL };

static char *join(const char *a, const char *b)
{
        char *s;
        return asprintf(&s, "%s%s", a, b) < 0 ? NULL : s;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Adds every ancestor of dst below the staging directory to dirs. */
static int add_parents(struct nk_pathset *dirs, const char *dst)
{
        _cleanup_free_ char *p = strdup(dst);
        if (!p)
                return -ENOMEM;
        size_t base = strlen(STAGING);
        for (char *s = p + base + 1; (s = strchr(s, '/')); s++) {
                *s = '\0';
                int r = nk_pathset_add(dirs, p);
                *s = '/';
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_entry(struct nk_mount_plan *plan, size_t *cap, const char *src, const char *at,
                     enum nk_mount_kind kind, struct nk_sandbox_error *err)
{
        if (at[0] != '/')
                return nk_sandbox_error_set(err, -EINVAL, "'%s' is not an absolute path", at);
        for (const char *c = at; *c; c++)
                if (c[0] == '/' && c[1] == '.' && (c[2] == '/' || c[2] == '\0' ||
                                                   (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
                        return nk_sandbox_error_set(err, -EINVAL, "'%s' is not a normalised path", at);
        if (strcmp(at, "/") == 0 || (strncmp(at, "/proc", 5) == 0 && (at[5] == '/' || at[5] == '\0')))
                return nk_sandbox_error_set(err, -EINVAL, "cannot bind '%s' into the sandbox: the path is reserved",
                                            at);
        _cleanup_free_ char *dst = join(STAGING, at);
        if (!dst)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n; i++)
                if (strcmp(plan->entries[i].dst, dst) == 0)
                        return 0;
        if (plan->n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 32;
                struct nk_mount_entry *e = realloc(plan->entries, ncap * sizeof *e);
                if (!e)
                        return -ENOMEM;
                plan->entries = e;
                *cap = ncap;
        }
        char *s = strdup(src);
        if (!s)
                return -ENOMEM;
        plan->entries[plan->n++] = (struct nk_mount_entry) { .src = s, .dst = TAKE_PTR(dst), .kind = kind };
        return 0;
}

/* An entry inside a bound directory is already there, and its mount point
 * could not be created inside that read-only bind anyway. Two passes: every
 * destination must stay readable while the others are compared with it, so
 * the first pass only marks (src freed and set to NULL; src takes no part in
 * the comparison) and the second frees and compacts. */
static void drop_covered(struct nk_mount_plan *plan)
{
        for (size_t i = 0; i < plan->n; i++) {
                bool covered = false;
                for (size_t j = 0; j < plan->n && !covered; j++) {
                        size_t len = strlen(plan->entries[j].dst);
                        covered = j != i && plan->entries[j].kind == NK_MOUNT_DIR &&
                                  strncmp(plan->entries[i].dst, plan->entries[j].dst, len) == 0 &&
                                  plan->entries[i].dst[len] == '/';
                }
                if (covered) {
                        free(plan->entries[i].src);
                        plan->entries[i].src = NULL;
                }
        }
        size_t w = 0;
        for (size_t i = 0; i < plan->n; i++) {
                if (plan->entries[i].src)
                        plan->entries[w++] = plan->entries[i];
                else
                        free(plan->entries[i].dst);
        }
        plan->n = w;
}

/* A path to bind: must exist now; a directory is bound as one. */
static int add_path(struct nk_mount_plan *plan, size_t *cap, const char *path, struct nk_sandbox_error *err)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return nk_sandbox_error_set(err, -errno, "cannot bind '%s' into the sandbox: %s", path,
                                            strerror(errno));
        return add_entry(plan, cap, path, path, S_ISDIR(st.st_mode) ? NK_MOUNT_DIR : NK_MOUNT_FILE, err);
}

int nk_mount_prepare(const struct nk_sandbox_config *cfg, const struct nk_pathset *deps,
                     struct nk_mount_plan *ret, struct nk_sandbox_error *err)
{
        struct nk_mount_plan plan = {};
        struct nk_pathset dirs = {};
        size_t cap = 0;
        int r;

        snprintf(plan.staging, sizeof plan.staging, "%s", STAGING);
        snprintf(plan.root_opts, sizeof plan.root_opts, "%s", ROOT_OPTS);
        snprintf(plan.proc_dir, sizeof plan.proc_dir, "%s/proc", STAGING);
        snprintf(plan.tmp_dir, sizeof plan.tmp_dir, "%s/tmp", STAGING);
        snprintf(plan.tmp_opts, sizeof plan.tmp_opts, "mode=1777,size=%um,nr_inodes=%u",
                 cfg->tmp_mb ? cfg->tmp_mb : 1, cfg->tmp_mb ? cfg->tmp_mb * 64 : 64);

        r = add_path(&plan, &cap, cfg->host_binary, err);
        if (r >= 0)
                r = add_path(&plan, &cap, cfg->library, err);
        for (size_t i = 0; r >= 0 && i < deps->n; i++)
                r = add_path(&plan, &cap, deps->paths[i], err);
        for (size_t i = 0; r >= 0 && cfg->extra_ro && cfg->extra_ro[i]; i++)
                r = add_path(&plan, &cap, cfg->extra_ro[i], err);
        for (size_t i = 0; r >= 0 && nk_sandbox_dev_nodes[i]; i++)
                r = add_entry(&plan, &cap, nk_sandbox_dev_nodes[i], nk_sandbox_dev_nodes[i], NK_MOUNT_DEV, err);
        for (size_t i = 0; r >= 0 && nk_sandbox_sys_files[i]; i++)
                if (access(nk_sandbox_sys_files[i], R_OK) == 0)
                        r = add_path(&plan, &cap, nk_sandbox_sys_files[i], err);
        if (r >= 0)
                drop_covered(&plan);
        for (size_t i = 0; r >= 0 && i < plan.n; i++)
                r = add_parents(&dirs, plan.entries[i].dst);
        if (r >= 0)
                r = nk_pathset_add(&dirs, plan.proc_dir);
        if (r >= 0)
                r = nk_pathset_add(&dirs, plan.tmp_dir);
        if (r < 0) {
                if (r == -ENOMEM)
                        nk_sandbox_error_set(err, r, "out of memory planning the sandbox's mounts");
                nk_pathset_free(&dirs);
                nk_mount_plan_free(&plan);
                return r;
        }
        /* Sorting puts parents before their children. */
        qsort(dirs.paths, dirs.n, sizeof *dirs.paths, cmp_str);
        plan.dirs = TAKE_PTR(dirs.paths);
        plan.ndirs = dirs.n;
        *ret = plan;
        return 0;
}

void nk_mount_plan_free(struct nk_mount_plan *plan)
{
        for (size_t i = 0; i < plan->n; i++) {
                free(plan->entries[i].src);
                free(plan->entries[i].dst);
        }
        free(plan->entries);
        for (size_t i = 0; i < plan->ndirs; i++)
                free(plan->dirs[i]);
        free(plan->dirs);
        *plan = (struct nk_mount_plan) {};
}

/* ---- child steps: system calls only ------------------------------------------ */

int nk_mount_child_open(const struct nk_mount_plan *plan, int *fds, struct nk_child_err *e)
{
        /* Nothing mounted from here on may propagate back to the caller's
         * namespace, and nothing of the caller's may appear in ours. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return nk_child_fail(e, -errno, "making / private", NULL, NULL);
        for (size_t i = 0; i < plan->n; i++)
                fds[i] = -1;
        for (size_t i = 0; i < plan->n; i++) {
                fds[i] = open(plan->entries[i].src, O_PATH | O_CLOEXEC);
                if (fds[i] < 0)
                        return nk_child_fail(e, -errno, "opening '", plan->entries[i].src, "'");
        }
        return 0;
}

/* "/proc/self/fd/N" without snprintf. */
static void fd_path(char *buf, int fd)
{
        static const char prefix[] = "/proc/self/fd/";
        char digits[16];
        int n = 0;
        memcpy(buf, prefix, sizeof prefix - 1);
        do
                digits[n++] = (char) ('0' + fd % 10);
        while ((fd /= 10) > 0);
        char *w = buf + sizeof prefix - 1;
        while (n > 0)
                *w++ = digits[--n];
        *w = '\0';
}

static int make_mount_point(const struct nk_mount_entry *m, struct nk_child_err *e)
{
        if (m->kind == NK_MOUNT_DIR) {
                if (mkdir(m->dst, 0755) < 0 && errno != EEXIST)
                        return nk_child_fail(e, -errno, "creating the mount point '", m->dst, "'");
                return 0;
        }
        int fd = open(m->dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return nk_child_fail(e, -errno, "creating the mount point '", m->dst, "'");
        close(fd);
        return 0;
}

static int bind_one(const struct nk_mount_entry *m, int fd, struct nk_child_err *e)
{
        char src[32];
        int r = make_mount_point(m, e);
        if (r < 0)
                return r;
        fd_path(src, fd);
        if (mount(src, m->dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return nk_child_fail(e, -errno, "binding '", m->src, "'");

        /* A flag the source's mount has is locked in a user namespace and
         * must be repeated: of those, only noexec is not ours anyway. */
        unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID;
        struct statfs sfs;
        if (statfs(m->dst, &sfs) < 0)
                return nk_child_fail(e, -errno, "checking the mount of '", m->src, "'");
        if (sfs.f_flags & NK_ST_NOEXEC)
                flags |= MS_NOEXEC;
        if (m->kind == NK_MOUNT_DEV)
                flags |= MS_NOEXEC | (sfs.f_flags & MS_RDONLY ? MS_RDONLY : 0);
        else
                flags |= MS_RDONLY | MS_NODEV;
        if (mount(NULL, m->dst, NULL, flags, NULL) < 0)
                return nk_child_fail(e, -errno, "making '", m->src, "' read-only");
        return 0;
}

int nk_mount_child_build(const struct nk_mount_plan *plan, int *fds, struct nk_child_err *e)
{
        int r = 0;

        if (mount("tmpfs", plan->staging, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, plan->root_opts) < 0) {
                r = nk_child_fail(e, -errno, "mounting the new root on ", plan->staging, NULL);
                goto out;
        }
        /* /tmp first: a library that lives under /tmp is bound inside it. */
        if (mkdir(plan->tmp_dir, 0755) < 0 ||
            mount("tmpfs", plan->tmp_dir, "tmpfs", MS_NOSUID | MS_NODEV, plan->tmp_opts) < 0) {
                r = nk_child_fail(e, -errno, "mounting /tmp (", plan->tmp_opts, ")");
                goto out;
        }
        for (size_t i = 0; i < plan->ndirs; i++)
                if (mkdir(plan->dirs[i], 0755) < 0 && errno != EEXIST) {
                        r = nk_child_fail(e, -errno, "creating '", plan->dirs[i], "' in the new root");
                        goto out;
                }
        for (size_t i = 0; i < plan->n; i++) {
                r = bind_one(&plan->entries[i], fds[i], e);
                close(fds[i]);
                fds[i] = -1;
                if (r < 0)
                        goto out;
        }
        /* procfs of the host's own pid namespace; the kernel allows it
         * because the caller's full /proc is still visible here. */
        if (mount("proc", plan->proc_dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                r = nk_child_fail(e, -errno, "mounting /proc", NULL, NULL);
                goto out;
        }

        /* pivot_root(".", ".") stacks the old root on the new one; detaching
         * it leaves nothing of the caller's tree reachable. */
        if (chdir(plan->staging) < 0) {
                r = nk_child_fail(e, -errno, "entering the new root", NULL, NULL);
                goto out;
        }
        if (syscall(SYS_pivot_root, ".", ".") < 0) {
                r = nk_child_fail(e, -errno, "pivot_root", NULL, NULL);
                goto out;
        }
        if (umount2(".", MNT_DETACH) < 0) {
                r = nk_child_fail(e, -errno, "detaching the old root", NULL, NULL);
                goto out;
        }
        if (chdir("/") < 0) {
                r = nk_child_fail(e, -errno, "entering /", NULL, NULL);
                goto out;
        }
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                r = nk_child_fail(e, -errno, "making / read-only", NULL, NULL);
out:
        for (size_t i = 0; i < plan->n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
        return r;
}

int nk_sandbox_env(const struct nk_sandbox_config *cfg, size_t room, char ***ret, size_t *ret_n)
{
        size_t cap = room + 1, n = 0;
        for (size_t i = 0; cfg->env && cfg->env[i]; i++)
                cap++;
        char **env = calloc(cap, sizeof *env);
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; cfg->env && cfg->env[i]; i++)
                if (!(env[n++] = strdup(cfg->env[i])))
                        goto oom;
        *ret = env;
        *ret_n = n;
        return 0;
oom:
        nk_sandbox_env_free(env);
        return -ENOMEM;
}

void nk_sandbox_env_free(char **env)
{
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
}
