/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "path.h"

bool nk_path_beneath(const char *path, const char *dir)
{
        /* "/" is stored as "/", and its one component is empty. */
        size_t n = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}
