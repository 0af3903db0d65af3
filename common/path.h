/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether one absolute, normalised path lies beneath a directory, read one
 * way by the policy loader (its refusals of /proc, its /tmp and /dev
 * grants), the broker (which grant decides a path) and the intersection
 * of a policy with a library's entitlements.
 */
#ifndef NIFKIT_PATH_H
#define NIFKIT_PATH_H

#include <stdbool.h>

/* path is dir or beneath it, by whole components ("/a/bc" is not beneath
 * "/a/b"); "/" holds every absolute path. */
bool nk_path_beneath(const char *path, const char *dir);

#endif
