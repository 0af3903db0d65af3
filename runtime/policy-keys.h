/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy loader's key tables, for the unit test that compares them with
 * policies/schema.json so that the two cannot drift apart. Only policy.c and
 * that test include this header; everyone else reads struct nk_policy.
 */
#ifndef NIFKIT_POLICY_KEYS_H
#define NIFKIT_POLICY_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nk_policy_key_type {
        NK_POLICY_KEY_INTEGER,
        NK_POLICY_KEY_ENUM,             /* a string from .values */
        NK_POLICY_KEY_BOOLEAN,
        NK_POLICY_KEY_STRING,           /* checked as .format says */
        NK_POLICY_KEY_OBJECT,           /* keys in .keys */
        NK_POLICY_KEY_ARRAY,            /* objects with .keys, or strings in .format */
};

enum nk_policy_key_format {
        NK_POLICY_FORMAT_NONE,
        NK_POLICY_FORMAT_PATH,          /* absolute directory, normalised */
        NK_POLICY_FORMAT_FILES,         /* array of file grants */
        NK_POLICY_FORMAT_CONNECT,       /* "host:port" */
        NK_POLICY_FORMAT_LISTEN,        /* "[udp:]host:port" */
        NK_POLICY_FORMAT_HOSTNAME,      /* a DNS name */
        NK_POLICY_FORMAT_ENVNAME,       /* an environment variable's name */
};

struct nk_policy_key {
        const char *name;               /* NULL ends a table */
        enum nk_policy_key_type type;
        bool required;
        uint64_t min, max;              /* integers, inclusive */
        uint64_t def;                   /* default: integer, enum index, or boolean */
        const char *const *values;      /* enums: NULL-terminated, in the C enum's order */
        const struct nk_policy_key *keys; /* objects and arrays of objects */
        enum nk_policy_key_format format;
        size_t offset, size;            /* where a scalar lands in its struct */
};

/* The top-level object's keys; nested tables hang off .keys. */
const struct nk_policy_key *nk_policy_keys(void);

/* The keys of "limits", in the order of struct nk_policy's limits. */
const struct nk_policy_key *nk_policy_limit_keys(void);

#endif
