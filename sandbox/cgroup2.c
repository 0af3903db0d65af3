/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2 leaves for hosts.
 *
 * Only the unified (v2) hierarchy is used. On hybrid machines the v1
 * controllers are mounted elsewhere (/sys/fs/cgroup/memory, …) and are never
 * touched: a v2 mount without controllers can still hold leaves, it just
 * cannot limit them, and detection says so.
 *
 * Layout. The root is the delegated subtree: NIFKIT_CGROUP_ROOT (the
 * caller's root_hint) or the cgroup this process is in. Leaves are named
 * nifkit-<pid>-<n> (unless the caller names them) and live directly in the
 * root when it has no processes of its own (detection enables memory, pids
 * and cpu in its cgroup.subtree_control if they are not yet). cgroup v2
 * forbids a non-root cgroup that holds processes to hand domain controllers
 * to its children ("no internal processes"); the hierarchy's own root is
 * exempt, so when the root is the hierarchy root and holds processes,
 * leaves always go into <root>/nifkit, whose subtree_control is enabled
 * too, keeping them apart from the processes:
 *
 *     <root>/                 subtree_control: memory pids cpu
 *       nifkit/               subtree_control: memory pids cpu (only if <root> has processes)
 *         nifkit-4242-1/      memory.max memory.swap.max pids.max cpu.max
 *
 * A delegated non-root cgroup that holds processes (the runtime's own
 * service cgroup, typically) cannot be used this way at all; detection
 * explains how to delegate a subtree without processes.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox.h"

#define NEEDED (NK_CG_MEMORY | NK_CG_PIDS | NK_CG_CPU)

struct nk_cgroup {
        int dirfd;              /* O_PATH: for CLONE_INTO_CGROUP and the *at calls */
        char path[4096];
};

static const struct {
        unsigned bit;
        const char *name;
} controllers[] = {
        { NK_CG_MEMORY, "memory" },
        { NK_CG_PIDS, "pids" },
        { NK_CG_CPU, "cpu" },
};

static void sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- small file helpers ------------------------------------------------------ */

/* Reads a (small) file into buf, NUL-terminated. Returns its length or
 * -errno; -EFBIG if it does not fit. */
static ssize_t read_at(int dirfd, const char *name, char *buf, size_t size)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t len = 0;
        for (;;) {
                if (len + 1 >= size)
                        return -EFBIG;
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        return (ssize_t) len;
}

/* One write(2) of the whole value: cgroup files take a value per write. */
static int write_at(int dirfd, const char *name, const char *value)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t len = strlen(value);
        ssize_t n;
        do
                n = write(fd, value, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : -EIO;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
        return read_at(AT_FDCWD, path, buf, size);
}

/* ---- parsers ----------------------------------------------------------------- */

int nk_cgroup_parse_controllers(const char *text, unsigned *ret_mask)
{
        if (!text || !ret_mask)
                return -EINVAL;
        unsigned mask = 0;
        const char *p = text;
        for (;;) {
                while (*p == ' ' || *p == '\t' || *p == '\n')
                        p++;
                if (!*p)
                        break;
                const char *w = p;
                while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
                        /* Controller names are [a-z0-9_]; anything else means
                         * this is not a controllers list. */
                        if (!islower((unsigned char) *p) && !isdigit((unsigned char) *p) && *p != '_')
                                return -EINVAL;
                        p++;
                }
                size_t len = (size_t) (p - w);
                for (size_t i = 0; i < NK_ARRAY_SIZE(controllers); i++)
                        if (strlen(controllers[i].name) == len && memcmp(w, controllers[i].name, len) == 0)
                                mask |= controllers[i].bit;
        }
        *ret_mask = mask;
        return 0;
}

/* A decimal u64 from p up to the end of the line; -EINVAL if anything else
 * is there, -ERANGE if it does not fit. */
static int parse_u64(const char *p, const char **ret_end, uint64_t *ret)
{
        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        uint64_t v = 0;
        while (isdigit((unsigned char) *p)) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
                p++;
        }
        if (*p != '\n' && *p != '\0')
                return -EINVAL;
        *ret_end = p;
        *ret = v;
        return 0;
}

int nk_cgroup_parse_events(const char *text, const char *key, uint64_t *ret)
{
        if (!text || !key || !*key || !ret)
                return -EINVAL;
        size_t klen = strlen(key);
        for (const char *line = text; *line;) {
                const char *eol = strchrnul(line, '\n');
                /* The whole first word must be the key: pids.events has both
                 * "max" and (6.x) "max.imposed". */
                if ((size_t) (eol - line) > klen && memcmp(line, key, klen) == 0 && line[klen] == ' ') {
                        const char *end;
                        return parse_u64(line + klen + 1, &end, ret);
                }
                line = *eol ? eol + 1 : eol;
        }
        return -ENOENT;
}

const char *nk_cgroup_mask_name(unsigned mask, char *buf, size_t size)
{
        if (!buf || size == 0)
                return NULL;
        size_t len = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < NK_ARRAY_SIZE(controllers); i++) {
                if (!(mask & controllers[i].bit))
                        continue;
                int n = snprintf(buf + len, size - len, "%s%s", len ? " " : "", controllers[i].name);
                if (n < 0 || (size_t) n >= size - len) {
                        /* Whole names only: drop the cut one. */
                        buf[len] = '\0';
                        break;
                }
                len += (size_t) n;
        }
        return buf;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
        char *out = s;
        for (char *p = s; *p;) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
                    p[3] >= '0' && p[3] <= '7') {
                        *out++ = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                        p += 4;
                } else {
                        *out++ = *p++;
                }
        }
        *out = '\0';
}

/* Is path inside prefix (equal, or prefix followed by '/'; "/" holds all)? */
static const char *path_under(const char *path, const char *prefix)
{
        if (strcmp(prefix, "/") == 0)
                return path;
        size_t n = strlen(prefix);
        if (strncmp(path, prefix, n) != 0 || (path[n] != '\0' && path[n] != '/'))
                return NULL;
        return path + n;
}

int nk_cgroup_parse_root(const char *proc_cgroup, const char *mountinfo, char *buf, size_t size)
{
        if (!proc_cgroup || !mountinfo || !buf || size == 0)
                return -EINVAL;

        /* The v2 line is "0::/path"; v1 lines have a hierarchy id > 0. */
        char cgpath[4096];
        bool found = false;
        for (const char *line = proc_cgroup; *line;) {
                const char *eol = strchrnul(line, '\n');
                if (strncmp(line, "0::", 3) == 0) {
                        size_t n = (size_t) (eol - line - 3);
                        if (n == 0 || n >= sizeof cgpath || line[3] != '/')
                                return -EINVAL;
                        memcpy(cgpath, line + 3, n);
                        cgpath[n] = '\0';
                        found = true;
                        break;
                }
                line = *eol ? eol + 1 : eol;
        }
        if (!found)
                return -ENOENT;

        /* Fields: id parent maj:min root mountpoint options [optional…] - fstype source super */
        for (const char *line = mountinfo; *line;) {
                const char *eol = strchrnul(line, '\n');
                size_t n = (size_t) (eol - line);
                char l[8192];
                bool fits = n < sizeof l;
                if (fits) {
                        memcpy(l, line, n);
                        l[n] = '\0';
                }
                line = *eol ? eol + 1 : eol;
                if (!fits)
                        continue;

                char *save = NULL, *f[6] = { 0 };
                char *tok = strtok_r(l, " ", &save);
                for (int i = 0; i < 6 && tok; i++, tok = strtok_r(NULL, " ", &save))
                        f[i] = tok;
                if (!f[5])
                        continue;
                /* Skip optional fields up to the separator. */
                while (tok && strcmp(tok, "-") != 0)
                        tok = strtok_r(NULL, " ", &save);
                char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
                if (!fstype || strcmp(fstype, "cgroup2") != 0)
                        continue;

                char *mroot = f[3], *mpoint = f[4];
                unescape_octal(mroot);
                unescape_octal(mpoint);
                /* A bind mount of a sub-cgroup only shows what is below its
                 * root; our cgroup must be inside it. */
                const char *rest = path_under(cgpath, mroot);
                if (!rest)
                        continue;
                if (strcmp(rest, "/") == 0)
                        rest = "";
                int w = snprintf(buf, size, "%s%s", strcmp(mpoint, "/") == 0 && *rest ? "" : mpoint, rest);
                if (w < 0 || (size_t) w >= size)
                        return -ENAMETOOLONG;
                return 0;
        }
        return -ENOENT;
}

/* ---- detection --------------------------------------------------------------- */

static bool has_processes(const char *root)
{
        char buf[64];
        _cleanup_close_ int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return false;
        /* One pid is enough to know; the file may be long. */
        _cleanup_close_ int pfd = openat(fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (pfd < 0)
                return false;
        ssize_t n = read(pfd, buf, sizeof buf);
        return n > 0;
}

static int missing_message(const char *root, unsigned missing, const char *ctrl_text,
                           struct nk_sandbox_error *err)
{
        char names[64], listed[256];
        nk_cgroup_mask_name(missing, names, sizeof names);
        /* Show what the file does list, trimmed, so the reader sees it is
         * the v2 side that lacks them. */
        size_t n = strcspn(ctrl_text, "\n");
        if (n >= sizeof listed)
                n = sizeof listed - 1;
        memcpy(listed, ctrl_text, n);
        listed[n] = '\0';
        bool several = strchr(names, ' ') != NULL;

        char why[300];
        if (n == 0)
                snprintf(why, sizeof why, "cgroup.controllers is empty");
        else
                snprintf(why, sizeof why, "cgroup.controllers lists only \"%s\"", listed);
        return nk_sandbox_error_set(err, -EACCES,
                "cgroup v2 controllers missing for nifkit leaves under %s: %s %s not enabled (%s). "
                "Delegate them: under systemd run the runtime with Delegate=yes "
                "(e.g. systemd-run --user -p Delegate=yes …), or set NIFKIT_CGROUP_ROOT to a delegated subtree.",
                root, names, several ? "are" : "is", why);
}

/* Writes "+name" for each controller of mask to dir's subtree_control, one
 * at a time so that one refusal does not hide the others. Returns the mask
 * that is enabled afterwards. */
static unsigned enable_controllers(const char *dir, unsigned mask, int *ret_err)
{
        unsigned enabled = 0;
        char path[4200], word[32];
        snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
        *ret_err = 0;
        for (size_t i = 0; i < NK_ARRAY_SIZE(controllers); i++) {
                if (!(mask & controllers[i].bit))
                        continue;
                snprintf(word, sizeof word, "+%s", controllers[i].name);
                int r = write_at(AT_FDCWD, path, word);
                if (r < 0 && *ret_err == 0)
                        *ret_err = r;
                if (r == 0)
                        enabled |= controllers[i].bit;
        }
        return enabled;
}

static int enable_failed(const struct nk_cgroup_info *info, int e, struct nk_sandbox_error *err)
{
        char names[64];
        nk_cgroup_mask_name(NEEDED & ~info->available, names, sizeof names);
        return nk_sandbox_error_set(err, e, "cgroup v2: enabling %s for nifkit leaves under %s failed: %s",
                                    names, info->root, strerror(-e));
}

/* <root>/nifkit, made once, with the controllers enabled for its children. */
static int use_parent(const char *root, struct nk_cgroup_info *ret, struct nk_sandbox_error *err)
{
        char parent[4200], text[512];
        size_t plen = (size_t) snprintf(parent, sizeof parent, "%s/nifkit", root);
        if (plen >= sizeof ret->root)
                return nk_sandbox_error_set(err, -ENAMETOOLONG, "cgroup: %s/nifkit is too long", root);
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                return nk_sandbox_error_set(err, -errno, "cgroup: creating %s: %m", parent);
        memcpy(ret->root, parent, plen + 1);
        ret->writable = faccessat(AT_FDCWD, parent, W_OK | X_OK, AT_EACCESS) == 0;

        _cleanup_close_ int fd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return nk_sandbox_error_set(err, -errno, "cgroup: opening %s: %m", parent);
        ssize_t n = read_at(fd, "cgroup.subtree_control", text, sizeof text);
        unsigned sub = 0;
        if (n < 0 || nk_cgroup_parse_controllers(text, &sub) < 0)
                return nk_sandbox_error_set(err, n < 0 ? (int) n : -EBADMSG,
                                            "cgroup: reading %s/cgroup.subtree_control failed", parent);
        int e = 0;
        ret->available = (sub | enable_controllers(parent, NEEDED & ~sub, &e)) & NEEDED;
        return e < 0 ? enable_failed(ret, e, err) : 0;
}

static int find_root(const char *root_hint, char *buf, size_t size, struct nk_sandbox_error *err)
{
        if (root_hint && *root_hint) {
                struct statfs sfs;
                if (root_hint[0] != '/')
                        return nk_sandbox_error_set(err, -EINVAL,
                                                    "NIFKIT_CGROUP_ROOT \"%s\" is not an absolute path", root_hint);
                if (statfs(root_hint, &sfs) < 0)
                        return nk_sandbox_error_set(err, -errno, "cgroup root \"%s\": %m", root_hint);
                if (sfs.f_type != CGROUP2_SUPER_MAGIC)
                        return nk_sandbox_error_set(err, -ENOENT,
                                                    "cgroup root \"%s\" is not in a cgroup v2 hierarchy", root_hint);
                if ((size_t) snprintf(buf, size, "%s", root_hint) >= size)
                        return nk_sandbox_error_set(err, -ENAMETOOLONG, "cgroup root \"%s\" is too long", root_hint);
                /* A trailing slash would double up in leaf paths. */
                size_t n = strlen(buf);
                while (n > 1 && buf[n - 1] == '/')
                        buf[--n] = '\0';
                return 0;
        }

        char cg[8192];
        _cleanup_free_ char *mi = malloc(1 << 20);
        if (!mi)
                return nk_sandbox_error_set(err, -ENOMEM, "cgroup: out of memory");
        ssize_t r = read_file("/proc/self/cgroup", cg, sizeof cg);
        if (r < 0)
                return nk_sandbox_error_set(err, (int) r, "cgroup: reading /proc/self/cgroup: %s", strerror((int) -r));
        r = read_file("/proc/self/mountinfo", mi, 1 << 20);
        if (r < 0)
                return nk_sandbox_error_set(err, (int) r, "cgroup: reading /proc/self/mountinfo: %s",
                                            strerror((int) -r));
        int q = nk_cgroup_parse_root(cg, mi, buf, size);
        if (q == -ENOENT)
                return nk_sandbox_error_set(err, -ENOENT,
                                            "no cgroup v2 hierarchy: /proc/self/cgroup has no \"0::\" line "
                                            "or no cgroup2 file system holding it is mounted");
        if (q < 0)
                return nk_sandbox_error_set(err, q, "cgroup: cannot tell this process's cgroup v2 path: %s",
                                            strerror(-q));
        return 0;
}

/* change: enable controllers and make <root>/nifkit where needed, as a
 * start does; else only say what a start would get. */
static int detect(const char *root_hint, bool change, struct nk_cgroup_info *ret, struct nk_sandbox_error *err)
{
        if (!ret)
                return nk_sandbox_error_set(err, -EINVAL, "cgroup: nothing to fill");
        *ret = (struct nk_cgroup_info) { 0 };

        char root[sizeof ret->root];
        int r = find_root(root_hint, root, sizeof root, err);
        if (r < 0)
                return r;
        /* Filled from here on even when detection fails: a best-effort
         * policy can still make leaves without limits, or fall back. */
        snprintf(ret->root, sizeof ret->root, "%s", root);

        char path[sizeof root + 64], ctrl_text[512], sub_text[512];
        snprintf(path, sizeof path, "%s/cgroup.controllers", root);
        ssize_t n = read_file(path, ctrl_text, sizeof ctrl_text);
        if (n < 0)
                return nk_sandbox_error_set(err, n == -ENOENT ? -ENOENT : (int) n,
                                            "%s is not a cgroup v2 directory: reading %s: %s", root, path,
                                            strerror((int) -n));
        snprintf(path, sizeof path, "%s/cgroup.subtree_control", root);
        n = read_file(path, sub_text, sizeof sub_text);
        if (n < 0)
                return nk_sandbox_error_set(err, (int) n, "reading %s: %s", path, strerror((int) -n));

        unsigned ctrl = 0, sub = 0;
        if (nk_cgroup_parse_controllers(ctrl_text, &ctrl) < 0 || nk_cgroup_parse_controllers(sub_text, &sub) < 0)
                return nk_sandbox_error_set(err, -EBADMSG, "%s: unreadable cgroup.controllers or subtree_control",
                                            root);
        /* Writable means we may create leaves and set their limits there. */
        ret->writable = faccessat(AT_FDCWD, root, W_OK | X_OK, AT_EACCESS) == 0;
        ret->available = sub & NEEDED;

        unsigned missing = NEEDED & ~ctrl;
        if (missing)
                return missing_message(root, missing, ctrl_text, err);

        snprintf(path, sizeof path, "%s/cgroup.type", root);
        /* Only the hierarchy's root lacks cgroup.type. */
        bool hierarchy_root = access(path, F_OK) < 0 && errno == ENOENT;
        bool procs = has_processes(root);
        if ((sub & NEEDED) == NEEDED && !(procs && hierarchy_root))
                return 0;
        if (procs && !hierarchy_root)
                return nk_sandbox_error_set(err, -EACCES,
                        "cgroup v2 subtree %s holds processes of its own, so it cannot give controllers to "
                        "child cgroups (cgroup v2's no-internal-processes rule). Start the runtime in a child "
                        "of the delegated cgroup (systemd: DelegateSubgroup=), or set NIFKIT_CGROUP_ROOT to a "
                        "delegated subtree without processes.", root);

        if ((sub & NEEDED) != NEEDED) {
                snprintf(path, sizeof path, "%s/cgroup.subtree_control", root);
                if (!ret->writable || faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0)
                        return nk_sandbox_error_set(err, -EACCES,
                                "cgroup v2 subtree %s is not writable by this process, so nifkit cannot enable "
                                "memory pids cpu for its leaves. Delegate it: under systemd run the runtime with "
                                "Delegate=yes, or set NIFKIT_CGROUP_ROOT to a delegated subtree.", root);
                if (!change) {
                        ret->available = ctrl & NEEDED;         /* a start enables them */
                        return 0;
                }
                int e;
                ret->available = (sub | enable_controllers(root, NEEDED & ~sub, &e)) & NEEDED;
                if (e < 0)
                        return enable_failed(ret, e, err);
        }
        /* The hierarchy root with processes of its own: keep nifkit's
         * leaves together under a parent without any, every time. */
        if (procs && !change) {
                ret->available = ctrl & NEEDED;                 /* a start makes <root>/nifkit */
                return 0;
        }
        return procs ? use_parent(root, ret, err) : 0;
}

int nk_cgroup_detect(const char *root_hint, struct nk_cgroup_info *ret, struct nk_sandbox_error *err)
{
        return detect(root_hint, true, ret, err);
}

int nk_cgroup_inspect(const char *root_hint, struct nk_cgroup_info *ret, struct nk_sandbox_error *err)
{
        return detect(root_hint, false, ret, err);
}

/* ---- leaves ------------------------------------------------------------------ */

static int set_limits(struct nk_cgroup *cg, unsigned available, const struct nk_sandbox_config *cfg,
                      struct nk_sandbox_error *err)
{
        char v[64];
        int r;

        if (available & NK_CG_MEMORY) {
                if (cfg->memory_bytes) {
                        snprintf(v, sizeof v, "%" PRIu64, cfg->memory_bytes);
                        r = write_at(cg->dirfd, "memory.max", v);
                        if (r < 0)
                                return nk_sandbox_error_set(err, r, "%s/memory.max: %s", cg->path, strerror(-r));
                }
                /* Swap would let a host exceed memory.max unnoticed. The
                 * file is missing where swap accounting is off (then there
                 * is nothing to limit). */
                r = write_at(cg->dirfd, "memory.swap.max", "0");
                if (r < 0 && r != -ENOENT)
                        return nk_sandbox_error_set(err, r, "%s/memory.swap.max: %s", cg->path, strerror(-r));
        }
        if ((available & NK_CG_PIDS) && cfg->pids) {
                snprintf(v, sizeof v, "%" PRIu32, cfg->pids);
                r = write_at(cg->dirfd, "pids.max", v);
                if (r < 0)
                        return nk_sandbox_error_set(err, r, "%s/pids.max: %s", cg->path, strerror(-r));
        }
        if ((available & NK_CG_CPU) && cfg->cpu_percent) {
                /* percent of one CPU per 100 ms period; above 100 spans CPUs. */
                snprintf(v, sizeof v, "%" PRIu64 " 100000", (uint64_t) cfg->cpu_percent * 1000);
                r = write_at(cg->dirfd, "cpu.max", v);
                if (r < 0)
                        return nk_sandbox_error_set(err, r, "%s/cpu.max: %s", cg->path, strerror(-r));
        }
        return 0;
}

static bool valid_leaf_name(const char *name)
{
        size_t n = strlen(name);
        return n > 0 && n < 256 && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
               strcmp(name, "..") != 0;
}

int nk_cgroup_create(const struct nk_cgroup_info *info, const char *name,
                     const struct nk_sandbox_config *cfg, struct nk_cgroup **ret,
                     struct nk_sandbox_error *err)
{
        static atomic_uint counter;
        char generated[64];

        if (!info || !cfg || !ret || !info->root[0])
                return nk_sandbox_error_set(err, -EINVAL, "cgroup: no root to create a leaf in");
        *ret = NULL;
        if (!name) {
                /* Unique among the runtime's hosts, and tells whose it is. */
                snprintf(generated, sizeof generated, "nifkit-%d-%u", (int) getpid(),
                         atomic_fetch_add(&counter, 1) + 1);
                name = generated;
        }
        if (!valid_leaf_name(name))
                return nk_sandbox_error_set(err, -EINVAL, "cgroup: invalid leaf name \"%s\"", name);

        _cleanup_free_ struct nk_cgroup *cg = calloc(1, sizeof *cg);
        if (!cg)
                return nk_sandbox_error_set(err, -ENOMEM, "cgroup: out of memory");
        cg->dirfd = -1;
        if ((size_t) snprintf(cg->path, sizeof cg->path, "%s/%s", info->root, name) >= sizeof cg->path)
                return nk_sandbox_error_set(err, -ENAMETOOLONG, "cgroup: leaf path too long");

        if (mkdir(cg->path, 0755) < 0)
                return nk_sandbox_error_set(err, -errno, "cgroup: creating %s: %m", cg->path);
        cg->dirfd = open(cg->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cg->dirfd < 0) {
                int r = nk_sandbox_error_set(err, -errno, "cgroup: opening %s: %m", cg->path);
                rmdir(cg->path);
                return r;
        }
        int r = set_limits(cg, info->available, cfg, err);
        if (r < 0) {
                close(cg->dirfd);
                rmdir(cg->path);
                return r;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

int nk_cgroup_fd(const struct nk_cgroup *cg)
{
        return cg ? cg->dirfd : -EINVAL;
}

const char *nk_cgroup_path(const struct nk_cgroup *cg)
{
        return cg ? cg->path : NULL;
}

/* A counter from a file of cg; 0 when the file is absent (its controller
 * is not enabled, or the kernel predates it). */
static int read_counter(const struct nk_cgroup *cg, const char *file, const char *key, uint64_t *ret)
{
        char buf[1024];
        *ret = 0;
        ssize_t n = read_at(cg->dirfd, file, buf, sizeof buf);
        if (n == -ENOENT)
                return 0;
        if (n < 0)
                return (int) n;
        if (!key) {
                const char *end;
                return parse_u64(buf, &end, ret);
        }
        int r = nk_cgroup_parse_events(buf, key, ret);
        return r == -ENOENT ? 0 : r;
}

int nk_cgroup_events(const struct nk_cgroup *cg, struct nk_cgroup_events *ret)
{
        if (!cg || !ret)
                return -EINVAL;
        *ret = (struct nk_cgroup_events) { 0 };
        int r = read_counter(cg, "memory.events", "oom_kill", &ret->oom_kill);
        if (r < 0)
                return r;
        r = read_counter(cg, "pids.events", "max", &ret->pids_max);
        if (r < 0)
                return r;
        /* memory.peak is Linux 6.1+. */
        return read_counter(cg, "memory.peak", NULL, &ret->memory_peak);
}

static bool populated(const struct nk_cgroup *cg)
{
        char buf[256];
        uint64_t v;
        if (read_at(cg->dirfd, "cgroup.events", buf, sizeof buf) < 0)
                return true;
        return nk_cgroup_parse_events(buf, "populated", &v) < 0 || v != 0;
}

/* Sends SIGKILL to every pid cgroup.procs lists; returns how many. Reads in
 * chunks, carrying a number cut at a chunk's end into the next. */
static int kill_listed(const struct nk_cgroup *cg)
{
        _cleanup_close_ int fd = openat(cg->dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        char buf[4096];
        long pid = 0;
        bool digits = false;
        int count = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                for (ssize_t i = 0; i < n; i++) {
                        if (isdigit((unsigned char) buf[i]) && pid < 100000000) {
                                pid = pid * 10 + (buf[i] - '0');
                                digits = true;
                        } else {
                                if (digits && pid > 0 && kill((pid_t) pid, SIGKILL) == 0)
                                        count++;
                                pid = 0;
                                digits = false;
                        }
                }
                if (n <= 0)
                        break;
        }
        if (digits && pid > 0 && kill((pid_t) pid, SIGKILL) == 0)
                count++;
        return count;
}

/* Before cgroup.kill (Linux 5.14): SIGKILL whatever cgroup.procs lists
 * until it lists nothing. A process that forks meanwhile is caught by the
 * next round; bounded at about a second. */
static void kill_by_procs(const struct nk_cgroup *cg)
{
        for (int round = 0; round < 100 && kill_listed(cg) > 0; round++)
                sleep_ms(10);
}

void nk_cgroup_destroy(struct nk_cgroup *cg)
{
        if (!cg)
                return;
        if (cg->dirfd >= 0) {
                if (write_at(cg->dirfd, "cgroup.kill", "1") < 0)
                        kill_by_procs(cg);
                /* Killed processes leave the cgroup asynchronously; rmdir
                 * fails with EBUSY until they have. Bounded: about 2 s. */
                for (int i = 0; i < 200 && populated(cg); i++)
                        sleep_ms(10);
                close(cg->dirfd);
        }
        for (int i = 0; i < 100; i++) {
                if (rmdir(cg->path) == 0 || errno != EBUSY)
                        break;
                sleep_ms(10);
        }
        free(cg);
}
