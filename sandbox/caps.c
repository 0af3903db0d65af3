/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host runs with no capability at all: empty permitted, effective,
 * inheritable and ambient sets, an empty bounding set, securebits that make
 * uid 0 and setuid transitions grant nothing (locked), and no_new_privs.
 *
 * libcap-ng cannot run in the child: capng_apply() with the bounding set
 * rereads /proc/self/status through fopen() (malloc), and its state is
 * thread-local storage of a dlopen'ed library, which __tls_get_addr may
 * allocate on first use. So the child makes the raw prctl/capset calls, and
 * libcap-ng does the parent's side: it reads the started host's sets from
 * /proc/PID/status and the launch fails if anything is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/securebits.h>

#include <cap-ng.h>

#include "macro.h"
#include "sequencer.h"

static int read_last_cap(void)
{
        _cleanup_close_ int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
        char buf[16] = "";
        if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
                return CAP_LAST_CAP;
        int v = atoi(buf);
        return v > 0 && v < 64 ? v : CAP_LAST_CAP;
}

int nk_caps_prepare(struct nk_caps_plan *ret, struct nk_sandbox_error *err)
{
        *ret = (struct nk_caps_plan) { .last_cap = read_last_cap() };
        return 0;
}

int nk_caps_child(const struct nk_caps_plan *plan, struct nk_child_err *e)
{
        /* Ambient capabilities are Linux 4.3; before that there are none. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return nk_child_fail(e, -errno, "clearing the ambient capabilities", NULL, NULL);
        /* Every capability the kernel knows, whether or not the caller's
         * set has it: dropping an absent one is a no-op. */
        for (int c = 0; c <= plan->last_cap; c++)
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                        return nk_child_fail(e, -errno, "dropping the bounding set", NULL, NULL);
        unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
#ifdef SECBIT_NO_CAP_AMBIENT_RAISE
        bits |= SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
#endif
        if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
                return nk_child_fail(e, -errno, "locking the securebits", NULL, NULL);

        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
        if (syscall(SYS_capset, &hdr, data) < 0)
                return nk_child_fail(e, -errno, "dropping every capability", NULL, NULL);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return nk_child_fail(e, -errno, "setting no_new_privs", NULL, NULL);
        return 0;
}

int nk_caps_verify(pid_t pid, struct nk_sandbox_error *err)
{
        capng_setpid(pid);
        int r = capng_get_caps_process();
        capng_setpid((int) syscall(SYS_gettid));
        if (r < 0)
                return nk_sandbox_error_set(err, -ESRCH, "cannot read the capabilities of host %d", (int) pid);
        if (capng_have_capabilities(CAPNG_SELECT_BOTH) != CAPNG_NONE) {
                char *prm = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_PERMITTED);
                char *bnd = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_BOUNDING_SET);
                nk_sandbox_error_set(err, -EPERM, "host %d kept capabilities (permitted: %s; bounding set: %s)",
                                     (int) pid, prm ? prm : "?", bnd ? bnd : "?");
                free(prm);
                free(bnd);
                return -EPERM;
        }
        return 0;
}
