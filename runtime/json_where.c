/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where in a JSON text a value is: JSON paths printed as people read them
 * ("$.files[0].path"), and a tolerant re-scan of the text that finds where
 * the value at a path starts, or the path of the place a parser stopped at.
 * The policy loader uses it on its error paths only; jansson keeps no
 * positions for the values it returns.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json_where.h"
#include "utf8.h"

/* jansson refuses nesting deeper than 2048; the re-scan stops a bit later. */
#define SCAN_MAX_LEVEL 2100
#define SCAN_STACK 64

static bool simple_key(const char *k, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) k[i]) && k[i] != '_' && k[i] != '-')
                        return false;
        return true;
}

void nk_text_append(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
        if (*len >= size - 1)
                return;
        if (n > size - 1 - *len)
                n = size - 1 - *len;
        memcpy(buf + *len, s, n);
        *len += n;
        buf[*len] = '\0';
}

static size_t next_char(const char *raw, size_t rawlen, size_t *i, char buf[static 4]);

/*
 * "$.limits.pids", "$.files[0].path"; keys that are not plain words are
 * written as ["..."] so the path stays unambiguous. Raw keys come straight
 * from the text (escapes and all), which is what a person sees in the file.
 */
void nk_json_path_format(const struct nk_json_comp *comps, size_t n, bool raw, char *buf, size_t size)
{
        size_t len = 0;
        char tmp[32], tmp_path[1100];

        buf[0] = '\0';
        nk_text_append(buf, size, &len, "$", 1);
        for (size_t i = 0; i < n; i++) {
                const struct nk_json_comp *c = &comps[i];

                if (!c->key) {
                        snprintf(tmp, sizeof tmp, "[%zu]", c->index);
                        nk_text_append(buf, size, &len, tmp, strlen(tmp));
                } else if (simple_key(c->key, c->keylen)) {
                        nk_text_append(buf, size, &len, ".", 1);
                        nk_text_append(buf, size, &len, c->key, c->keylen);
                } else if (raw) {
                        /* As written in the text: show it decoded, like the keys of other errors. */
                        char key[256];
                        size_t k = 0, klen = 0, step;
                        struct nk_json_comp decoded;

                        while (klen + 4 <= sizeof key && (step = next_char(c->key, c->keylen, &k, key + klen)) > 0)
                                klen += step;
                        decoded = (struct nk_json_comp) { .key = key, .keylen = klen };
                        nk_json_path_format(&decoded, 1, false, tmp_path, sizeof tmp_path);
                        nk_text_append(buf, size, &len, tmp_path + 1, strlen(tmp_path + 1));
                } else {
                        nk_text_append(buf, size, &len, "[\"", 2);
                        for (size_t j = 0; j < c->keylen; j++) {
                                unsigned char ch = c->key[j];

                                if (ch == '"' || ch == '\\')
                                        snprintf(tmp, sizeof tmp, "\\%c", ch);
                                else if (ch < 0x20)
                                        snprintf(tmp, sizeof tmp, "\\u%04x", ch);
                                else
                                        snprintf(tmp, sizeof tmp, "%c", ch);
                                nk_text_append(buf, size, &len, tmp, strlen(tmp));
                        }
                        nk_text_append(buf, size, &len, "\"]", 2);
                }
        }
}

static int hex4(const char *s, size_t n)
{
        int v = 0;

        if (n < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                int c = (unsigned char) s[i], d;

                if (c >= '0' && c <= '9')
                        d = c - '0';
                else if (c >= 'a' && c <= 'f')
                        d = c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        d = c - 'A' + 10;
                else
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

/*
 * Decodes the character of a key as written in the text (escapes and all)
 * that starts at *i into buf. Returns its length in bytes, 0 when the text
 * ends or the escape is malformed.
 */
static size_t next_char(const char *raw, size_t rawlen, size_t *i, char buf[static 4])
{
        int hi, lo;
        uint32_t cp;
        char e;

        if (*i >= rawlen)
                return 0;
        if (raw[*i] != '\\') {
                buf[0] = raw[(*i)++];
                return 1;
        }
        if (*i + 1 >= rawlen)
                return 0;
        e = raw[*i + 1];
        *i += 2;
        switch (e) {
        case 'b': buf[0] = '\b'; return 1;
        case 'f': buf[0] = '\f'; return 1;
        case 'n': buf[0] = '\n'; return 1;
        case 'r': buf[0] = '\r'; return 1;
        case 't': buf[0] = '\t'; return 1;
        case 'u': break;
        default: buf[0] = e; return 1;
        }
        hi = hex4(raw + *i, rawlen - *i);
        if (hi < 0)
                return 0;
        *i += 4;
        cp = (uint32_t) hi;
        if (hi >= 0xD800 && hi < 0xDC00 && *i + 6 <= rawlen && raw[*i] == '\\' && raw[*i + 1] == 'u') {
                lo = hex4(raw + *i + 2, rawlen - *i - 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + (((uint32_t) hi - 0xD800) << 10) + ((uint32_t) lo - 0xDC00);
                        *i += 6;
                }
        }
        return nk_utf8_encode(cp, buf);
}

/* Does the key as written in the text equal the decoded key? */
static bool raw_key_equals(const char *raw, size_t rawlen, const char *key, size_t keylen)
{
        size_t i = 0, j = 0;

        while (i < rawlen) {
                char buf[4];
                size_t blen = next_char(raw, rawlen, &i, buf);

                if (blen == 0 || j + blen > keylen || memcmp(key + j, buf, blen) != 0)
                        return false;
                j += blen;
        }
        return j == keylen;
}

/*
 * A tolerant walk over JSON text that keeps the JSON path of where it is.
 * Two uses: find where the value (or key) at a given path starts, and find
 * the path of the place where jansson stopped on a syntax error (limit).
 */
struct scanner {
        const char *s;
        size_t n, i;
        size_t limit;                   /* stop at the first token at or after it */
        const struct nk_json_comp *target;      /* locate this path... */
        size_t ntarget;
        bool at_key;                    /* ...its key rather than its value */
        struct nk_json_comp stack[SCAN_STACK];
        size_t depth, level;
        bool stop;
        size_t found;
        size_t tok_start, tok_end;      /* the last string, number or literal */
};

static bool scan_token(struct scanner *sc)
{
        while (sc->i < sc->n && strchr(" \t\r\n", sc->s[sc->i]) && sc->s[sc->i])
                sc->i++;
        if (sc->i >= sc->limit || sc->i >= sc->n)
                sc->stop = true;
        return !sc->stop;
}

static bool scan_matches(const struct scanner *sc)
{
        if (!sc->target || sc->depth != sc->ntarget)
                return false;
        for (size_t k = 0; k < sc->depth; k++) {
                const struct nk_json_comp *a = &sc->stack[k], *b = &sc->target[k];

                if (!a->key != !b->key)
                        return false;
                if (!a->key ? a->index != b->index : !raw_key_equals(a->key, a->keylen, b->key, b->keylen))
                        return false;
        }
        return true;
}

static void scan_push(struct scanner *sc, const char *key, size_t keylen, size_t index)
{
        if (sc->depth < SCAN_STACK)
                sc->stack[sc->depth] = (struct nk_json_comp) { .key = key, .keylen = keylen, .index = index };
        sc->depth++;
}

static void scan_string(struct scanner *sc)
{
        sc->tok_start = sc->i++;
        while (sc->i < sc->n) {
                char c = sc->s[sc->i++];

                if (c == '\\' && sc->i < sc->n)
                        sc->i++;
                else if (c == '"')
                        break;
        }
        sc->tok_end = sc->i;
}

static void scan_value(struct scanner *sc);

static void scan_object(struct scanner *sc)
{
        sc->i++;
        for (;;) {
                size_t start;

                if (!scan_token(sc))
                        return;
                if (sc->s[sc->i] == '}') {
                        sc->i++;
                        return;
                }
                if (sc->s[sc->i] == ',') {
                        sc->i++;
                        continue;
                }
                if (sc->s[sc->i] != '"') {
                        sc->stop = true;
                        return;
                }
                start = sc->i;
                scan_string(sc);
                scan_push(sc, sc->s + start + 1,
                          sc->i - start - (sc->s[sc->i - 1] == '"' && sc->i - start >= 2 ? 2 : 1), 0);
                if (sc->at_key && scan_matches(sc)) {
                        sc->found = start;
                        sc->stop = true;
                        return;
                }
                if (!scan_token(sc))
                        return;
                if (sc->s[sc->i] != ':') {
                        sc->stop = true;
                        return;
                }
                sc->i++;
                scan_value(sc);
                /* An error right after a value is still about that member. */
                if (sc->stop || !scan_token(sc))
                        return;
                sc->depth--;
        }
}

static void scan_array(struct scanner *sc)
{
        size_t index = 0;

        sc->i++;
        for (;;) {
                if (!scan_token(sc))
                        return;
                if (sc->s[sc->i] == ']') {
                        sc->i++;
                        return;
                }
                if (sc->s[sc->i] == ',') {
                        sc->i++;
                        index++;
                        continue;
                }
                scan_push(sc, NULL, 0, index);
                scan_value(sc);
                if (sc->stop || !scan_token(sc))
                        return;
                sc->depth--;
        }
}

static void scan_value(struct scanner *sc)
{
        if (!scan_token(sc))
                return;
        if (!sc->at_key && scan_matches(sc)) {
                sc->found = sc->i;
                sc->stop = true;
                return;
        }
        if (++sc->level > SCAN_MAX_LEVEL) {
                sc->stop = true;
                return;
        }
        switch (sc->s[sc->i]) {
        case '{':
                scan_object(sc);
                break;
        case '[':
                scan_array(sc);
                break;
        case '"':
                scan_string(sc);
                break;
        default:
                if (!strchr(",:]}", sc->s[sc->i])) {
                        sc->tok_start = sc->i;
                        while (sc->i < sc->n && !strchr(" \t\r\n,:]}", sc->s[sc->i]))
                                sc->i++;
                        sc->tok_end = sc->i;
                } else {
                        sc->stop = true;
                }
                break;
        }
        sc->level--;
}

/* Line and column as jansson counts them: from 1, columns in characters. */
void nk_json_position(const char *s, size_t n, size_t off, int *line, int *col)
{
        size_t linestart = 0;
        int l = 1, c = 0;

        if (off > n)
                off = n;
        for (size_t i = 0; i < off; i++)
                if (s[i] == '\n') {
                        l++;
                        linestart = i + 1;
                }
        for (size_t i = linestart; i <= off && i < n; i++)
                if (((unsigned char) s[i] & 0xC0) != 0x80)
                        c++;
        if (off >= n)
                c++;
        *line = l;
        *col = c > 0 ? c : 1;
}

size_t nk_json_locate(const char *text, size_t len, const struct nk_json_comp *path, size_t depth, bool at_key)
{
        struct scanner sc = {
                .s = text, .n = len, .limit = SIZE_MAX,
                .target = path, .ntarget = depth, .at_key = at_key, .found = SIZE_MAX,
        };

        scan_value(&sc);
        return sc.found;
}

void nk_json_path_at(const char *text, size_t len, size_t limit, char *path, size_t size,
                     size_t *ret_tok_start, size_t *ret_tok_end)
{
        struct scanner sc = { .s = text, .n = len, .limit = limit, .found = SIZE_MAX };

        scan_value(&sc);
        nk_json_path_format(sc.stack, sc.depth < SCAN_STACK ? sc.depth : SCAN_STACK, true, path, size);
        *ret_tok_start = sc.tok_start;
        *ret_tok_end = sc.tok_end;
}
