/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files of a wrapped library, for nifkit wrap and nifkit wrap-release.
 *
 * A wrap of NAME.so in DIR is four files:
 *   DIR/NAME.so           a physical copy of the proxy NIF (glibc gives every
 *                         dlopen of one inode the same handle, so two
 *                         libraries wrapped by one proxy file would share its
 *                         state)
 *   DIR/NAME.real.so      the real library, where the proxy's nif_init looks
 *   DIR/NAME.policy.json  the policy the host runs under
 *   DIR/NAME.host         a symbolic link to the nifkit-host that runs it
 *
 * Each file is written under a temporary name and renamed into place, the
 * proxy last, so an interrupted wrap never leaves a proxy without its
 * library. Every function takes `who`, the command that prefixes its
 * messages on stderr.
 */
#ifndef NIFKIT_CLI_WRAP_H
#define NIFKIT_CLI_WRAP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define NK_WRAP_MARKER_SECTION ".nifkit_proxy_marker"

/* What every wrap writes besides the library: the proxy NIF and the host. */
struct nk_wrap_parts {
        uint8_t *proxy;
        size_t proxy_len;
        char proxy_path[PATH_MAX];
        char host_path[PATH_MAX];       /* absolute */
};

/* The proxy (checked to be one) and the host (absolute, executable):
 * the options, else the environment, else this build's, else installed. */
int nk_wrap_find_parts(const char *who, const char *proxy_opt, const char *host_opt, struct nk_wrap_parts *ret);
void nk_wrap_parts_free(struct nk_wrap_parts *p);

/* The text a policy file is written with: the file, once it loads (an
 * invalid one is said with its file:line:column), or with policy NULL the
 * built-in default rendered as a file. */
int nk_wrap_policy_text(const char *who, const char *policy, char **text, size_t *len);

/*
 * The policy a wrap of lib writes: when lib declares entitlements (its
 * section, else sidecar, NULL meaning NAME.entitlements.json beside it)
 * (nifkit_entitlements.h), policy_text cut down to them (*ret_text, and
 * what they are and how the two differ said on out); else *ret_text is
 * NULL and policy_text stands. An invalid document is refused, with its
 * place; strict refuses (-EPERM) when the two differ.
 */
int nk_wrap_entitled_policy(const char *who, const char *lib, const char *sidecar, const char *policy_text,
                            const char *policy_name, bool strict, FILE *out, char **ret_text, size_t *ret_len,
                            bool *ret_declared);

/* A whole regular file, at most 1 GiB: -EISDIR for anything not regular. */
int nk_wrap_read_file(const char *path, uint8_t **data, size_t *len, mode_t *mode);

/* Whether the ELF image carries the proxy's marker section (status.c).
 * -ENOEXEC when it is not an ELF file. */
int nk_elf_is_proxy(const uint8_t *image, size_t len);

/* The four paths of the wrap of library LIB (…/NAME.so) in dir. */
struct nk_wrap_names {
        char *proxy;    /* dir/NAME.so */
        char *real;     /* dir/NAME.real.so */
        char *policy;   /* dir/NAME.policy.json */
        char *host;     /* dir/NAME.host */
        char *dir;
        char *name;     /* NAME */
};

/* -EINVAL (and said) when lib does not end in .so. dir NULL: lib's own. */
int nk_wrap_names(const char *who, const char *lib, const char *dir, struct nk_wrap_names *ret);
void nk_wrap_names_free(struct nk_wrap_names *n);

/* Whether lib can be wrapped: readable, ELF, not a proxy (said if not). */
int nk_wrap_check_library(const char *who, const char *lib);

/*
 * Wraps lib into n (from nk_wrap_names): refuses a library that is not ELF
 * or is a proxy already, then writes the four files. In place (n's dir is
 * lib's), the original becomes NAME.real.so as a second name of the same
 * inode, so a VM that has it mapped is not disturbed and unwrapping gives
 * back the very file.
 */
int nk_wrap_install(const char *who, const char *lib, const struct nk_wrap_names *n, const char *policy_text,
                    size_t policy_len, const struct nk_wrap_parts *parts);

/* What nk_wrap_refresh changed (or would change, with dry_run). */
enum {
        NK_WRAP_CHANGED_POLICY = 1 << 0,
        NK_WRAP_CHANGED_HOST = 1 << 1,
        NK_WRAP_CHANGED_PROXY = 1 << 2,
};

/* Brings an existing wrap to this policy text, host and proxy, writing
 * only the files that differ, each replaced atomically. */
int nk_wrap_refresh(const char *who, const struct nk_wrap_names *n, const char *policy_text, size_t policy_len,
                    const char *host_path, const uint8_t *proxy, size_t proxy_len, bool dry_run, unsigned *changed);

/* Undoes an in-place wrap: NAME.real.so renamed back over the proxy, then
 * the policy and the host link removed. */
int nk_wrap_undo(const char *who, const struct nk_wrap_names *n);

#endif
