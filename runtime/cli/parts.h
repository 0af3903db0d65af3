/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the tool finds the parts it works with: the host binary and the
 * proxy NIF. An explicit choice (an option, then the environment) comes
 * first; then, for a nifkit run from its meson build tree, that build's
 * own parts; else the installed ones.
 */
#ifndef NIFKIT_CLI_PARTS_H
#define NIFKIT_CLI_PARTS_H

#include <stddef.h>

/* The host: opt, $NIFKIT_HOST, the build tree's hosts/nifkit-host, the
 * installed one. Written into buf as an absolute path when it exists. */
void nk_cli_find_host(const char *opt, char *buf, size_t size);

/* The proxy: opt, $NIFKIT_PROXY, the build tree's
 * runtime/beam/nifkit_proxy.so, the installed one. */
void nk_cli_find_proxy(const char *opt, char *buf, size_t size);

#endif
