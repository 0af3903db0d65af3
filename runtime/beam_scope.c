/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beam_scope.h"
#include "sequencer.h"

#ifndef NK_BEAM_PATH
#define NK_BEAM_PATH ""
#endif

static struct nk_pathset scope;
static char source[PATH_MAX];
static const char *const empty[] = { NULL };
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The running program, when it is a BEAM emulator (beam.smp, beam.debug.smp …). */
static bool self_is_beam(char *buf, size_t size)
{
        ssize_t n = readlink("/proc/self/exe", buf, size - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        const char *base = strrchr(buf, '/');
        return base && strncmp(base + 1, "beam", 4) == 0;
}

static void read_scope(void)
{
        char path[PATH_MAX];
        if (!self_is_beam(path, sizeof path)) {
                if (!NK_BEAM_PATH[0] || strlen(NK_BEAM_PATH) >= sizeof path)
                        return;
                strcpy(path, NK_BEAM_PATH);
        }
        struct nk_sandbox_error err;
        if (access(path, R_OK) != 0 || nk_elf_needed_paths(path, &scope, &err) < 0 ||
            nk_pathset_add(&scope, "") < 0) {
                nk_pathset_free(&scope);
                scope = (struct nk_pathset) {};
                return;
        }
        /* The terminating NULL in place of the "" just added. */
        free(scope.paths[--scope.n]);
        scope.paths[scope.n] = NULL;
        strcpy(source, path);
}

const char *const *nk_beam_scope(void)
{
        pthread_once(&once, read_scope);
        return scope.paths ? (const char *const *) scope.paths : empty;
}

const char *nk_beam_scope_source(void)
{
        pthread_once(&once, read_scope);
        return source[0] ? source : NULL;
}

__attribute__((format(printf, 4, 5)))
static void append(char *out, size_t outlen, size_t *used, const char *fmt, ...)
{
        if (*used >= outlen)
                return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(out + *used, outlen - *used, fmt, ap);
        va_end(ap);
        *used = n < 0 ? outlen : *used + (size_t) n;
}

static int by_name(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Adds to set file's dependencies (when they resolve) and file itself. */
static void add_closure(struct nk_pathset *set, const char *file)
{
        struct nk_sandbox_error ignored;
        (void) nk_elf_resolve(file, set, &ignored);
        (void) nk_pathset_add(set, file);
}

int nk_scope_missing(const char *host_binary, const char *library, char *out, size_t outlen)
{
        /* Who provides: the host (its exported API), the scope with what it
         * needs, the library and its own dependencies; who needs: the
         * library and those of its dependencies the host side does not
         * already load. */
        struct nk_pathset providers = {}, base = {}, users = {};
        size_t used = 0;
        int listed = 0;
        add_closure(&base, host_binary);
        for (const char *const *s = nk_beam_scope(); *s; s++)
                add_closure(&base, *s);
        for (size_t i = 0; i < base.n; i++)
                (void) nk_pathset_add(&providers, base.paths[i]);
        add_closure(&users, library);
        for (size_t i = 0; i < users.n; i++)
                (void) nk_pathset_add(&providers, users.paths[i]);
        out[0] = '\0';
        for (size_t u = 0; u < users.n; u++) {
                if (nk_pathset_has(&base, users.paths[u]))
                        continue;
                struct nk_pathset undef = {};
                bool *found = NULL;
                if (nk_elf_undefined(users.paths[u], &undef) >= 0 && undef.n > 0) {
                        qsort(undef.paths, undef.n, sizeof *undef.paths, by_name);
                        found = calloc(undef.n, sizeof *found);
                }
                for (size_t p = 0; found && p < providers.n; p++)
                        (void) nk_elf_mark_defined(providers.paths[p], &undef, found);
                bool first = true;
                for (size_t i = 0; found && i < undef.n; i++) {
                        if (found[i])
                                continue;
                        if (first)
                                append(out, outlen, &used, "%s%s needs ", listed ? "; " : "", users.paths[u]);
                        append(out, outlen, &used, "%s%s", first ? "" : ", ", undef.paths[i]);
                        first = false;
                        listed++;
                }
                free(found);
                nk_pathset_free(&undef);
        }
        nk_pathset_free(&providers);
        nk_pathset_free(&base);
        nk_pathset_free(&users);
        return listed;
}
