/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's user namespace maps exactly one id, never root: inside it the
 * host is uid/gid 1000, outside an unprivileged id. Anything the host
 * creates or touches outside is owned by that id, and the capabilities it
 * holds inside its namespace (until caps.c drops them) are worth nothing
 * over files, devices or processes outside.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/securebits.h>

#include "macro.h"
#include "sequencer.h"

#define INSIDE_ID 1000
#define NOBODY 65534

void nk_userns_default_ids(uid_t *ret_outside_uid, gid_t *ret_outside_gid, uid_t *ret_inside_uid,
                           gid_t *ret_inside_gid)
{
        if (geteuid() == 0) {
                *ret_outside_uid = NOBODY;
                *ret_outside_gid = NOBODY;
        } else {
                /* An unprivileged caller may only map itself. */
                *ret_outside_uid = geteuid();
                *ret_outside_gid = getegid();
        }
        *ret_inside_uid = INSIDE_ID;
        *ret_inside_gid = INSIDE_ID;
}

void nk_sandbox_fill_defaults(struct nk_sandbox_config *sc)
{
        uid_t ou, iu;
        gid_t og, ig;
        nk_userns_default_ids(&ou, &og, &iu, &ig);
        if (sc->outside_uid == 0)
                sc->outside_uid = ou;
        if (sc->outside_gid == 0)
                sc->outside_gid = og;
        if (sc->inside_uid == 0)
                sc->inside_uid = iu;
        if (sc->inside_gid == 0)
                sc->inside_gid = ig;
        if (sc->tmp_mb == 0)
                sc->tmp_mb = 16;
}

int nk_userns_map_line(unsigned inside, unsigned outside, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%u %u 1\n", inside, outside);
        return n < 0 || (size_t) n >= size ? -ENOBUFS : n;
}

static int write_proc(pid_t pid, const char *file, const char *text, struct nk_sandbox_error *err)
{
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/%s", (int) pid, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return nk_sandbox_error_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
        size_t len = strlen(text);
        ssize_t n = write(fd, text, len);
        if (n < 0)
                return nk_sandbox_error_set(err, -errno, "cannot write '%.*s' to %s: %s", (int) strcspn(text, "\n"),
                                            text, path, strerror(errno));
        if ((size_t) n != len)
                return nk_sandbox_error_set(err, -EIO, "short write to %s", path);
        return 0;
}

int nk_userns_parent(pid_t pid, const struct nk_sandbox_config *cfg, struct nk_sandbox_error *err)
{
        char line[64];

        if (cfg->inside_uid == 0 || cfg->inside_gid == 0)
                return nk_sandbox_error_set(err, -EINVAL, "the host must not be root in its user namespace");
        if (cfg->outside_uid == 0 || cfg->outside_gid == 0)
                return nk_sandbox_error_set(err, -EINVAL, "the host must not run as root outside its namespace");
        /* setgroups must be denied before an unprivileged caller may write
         * gid_map (Linux 3.19); it also keeps the host from dropping a
         * group that denies it access. */
        int r = write_proc(pid, "setgroups", "deny", err);
        if (r < 0)
                return r;
        r = nk_userns_map_line(cfg->inside_uid, cfg->outside_uid, line, sizeof line);
        if (r >= 0)
                r = write_proc(pid, "uid_map", line, err);
        if (r < 0)
                return r;
        r = nk_userns_map_line(cfg->inside_gid, cfg->outside_gid, line, sizeof line);
        if (r >= 0)
                r = write_proc(pid, "gid_map", line, err);
        return r;
}

int nk_userns_child(uid_t uid, gid_t gid, struct nk_child_err *e)
{
        /* Keep the namespace's capabilities across the id change: the mounts
         * and the network set-up still need them. caps.c drops them all. */
        if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP | SECBIT_NOROOT, 0, 0, 0) < 0)
                return nk_child_fail(e, -errno, "setting the securebits", NULL, NULL);
        /* Raw system calls: glibc's wrappers broadcast the change to every
         * thread it knows of, and this copy of a BEAM thread has none. */
        if (syscall(SYS_setresgid, gid, gid, gid) < 0)
                return nk_child_fail(e, -errno, "setresgid to the inside id", NULL, NULL);
        if (syscall(SYS_setresuid, uid, uid, uid) < 0)
                return nk_child_fail(e, -errno, "setresuid to the inside id", NULL, NULL);
        /* The id change made the child non-dumpable, which would make its
         * /proc/self owned by an id it cannot search. */
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
                return nk_child_fail(e, -errno, "PR_SET_DUMPABLE", NULL, NULL);
        return 0;
}
