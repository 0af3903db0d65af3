/* SPDX-License-Identifier: Apache-2.0 */
/* Where in a JSON text a value is, for error messages (private to libnifkit). */
#ifndef NIFKIT_JSON_WHERE_H
#define NIFKIT_JSON_WHERE_H

#include <stdbool.h>
#include <stddef.h>

/* One step of a JSON path: an object key, or an array index when key is NULL. */
struct nk_json_comp {
        const char *key;
        size_t keylen;
        size_t index;
};

/* Appends n bytes of s to the NUL-terminated buf of size bytes, as far as
 * they fit; *len is buf's length. */
void nk_text_append(char *buf, size_t size, size_t *len, const char *s, size_t n);

/* "$.limits.pids", "$.files[0].path"; keys that are not plain words are
 * written ["..."]. raw: the keys are as written in the text, escapes and
 * all, and are shown decoded. */
void nk_json_path_format(const struct nk_json_comp *comps, size_t n, bool raw, char *buf, size_t size);

/* Line and column of byte offset off, as jansson counts them: from 1,
 * columns in characters. */
void nk_json_position(const char *text, size_t len, size_t off, int *ret_line, int *ret_col);

/* Where the value (at_key: the key) at path starts in a valid JSON text,
 * or SIZE_MAX. */
size_t nk_json_locate(const char *text, size_t len, const struct nk_json_comp *path, size_t depth, bool at_key);

/* The path of the place a parser stopped at (byte offset limit), and the
 * extent of the last string, number or literal before it. */
void nk_json_path_at(const char *text, size_t len, size_t limit, char *path, size_t size,
                     size_t *ret_tok_start, size_t *ret_tok_end);

#endif
