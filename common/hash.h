/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FNV-1a over a C string: a name for a path or a key that is short, stable
 * across processes and builds, and cheap. Not for anything an attacker
 * chooses to collide with: it only keeps apart names this process makes.
 */
#ifndef NIFKIT_HASH_H
#define NIFKIT_HASH_H

#include <stdint.h>

static inline uint64_t nk_fnv1a64(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        return h;
}

#endif
