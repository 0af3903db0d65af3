/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parts.h"

#ifndef NK_HOST_INSTALL_PATH
#define NK_HOST_INSTALL_PATH "/usr/local/libexec/nifkit/nifkit-host"
#endif
#ifndef NK_PROXY_INSTALL_PATH
#define NK_PROXY_INSTALL_PATH "/usr/local/lib/nifkit/nifkit_proxy.so"
#endif

/* The meson build tree this executable runs from (its runtime/cli/nifkit),
 * or false: an installed nifkit never looks beside itself. */
static bool build_root(char *buf, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
                return false;
        exe[n] = '\0';
        static const char tail[] = "/runtime/cli/nifkit";
        size_t len = (size_t) n, t = sizeof tail - 1;
        if (len <= t || strcmp(exe + len - t, tail) != 0 || len - t >= size)
                return false;
        memcpy(buf, exe, len - t);
        buf[len - t] = '\0';
        char probe[PATH_MAX];
        return (size_t) snprintf(probe, sizeof probe, "%s/meson-info/intro-buildoptions.json", buf) < sizeof probe &&
               access(probe, F_OK) == 0;
}

static void find(const char *opt, const char *env_name, const char *in_build, const char *installed, char *buf,
                 size_t size)
{
        const char *env = getenv(env_name);
        char root[PATH_MAX];
        if (opt || (env && *env)) {
                snprintf(buf, size, "%s", opt ? opt : env);
        } else if (build_root(root, sizeof root) &&
                   (size_t) snprintf(buf, size, "%s/%s", root, in_build) < size && access(buf, F_OK) == 0) {
                return;
        } else {
                /* As it is: the installed name is a link that a newer
                 * version's install points at its own file (meson.build),
                 * so a wrap that records it survives an upgrade. */
                snprintf(buf, size, "%s", installed);
                return;
        }
        char real[PATH_MAX];
        if (realpath(buf, real) && strlen(real) < size)
                strcpy(buf, real);
}

void nk_cli_find_host(const char *opt, char *buf, size_t size)
{
        find(opt, "NIFKIT_HOST", "hosts/nifkit-host", NK_HOST_INSTALL_PATH, buf, size);
}

void nk_cli_find_proxy(const char *opt, char *buf, size_t size)
{
        find(opt, "NIFKIT_PROXY", "runtime/beam/nifkit_proxy.so", NK_PROXY_INSTALL_PATH, buf, size);
}
