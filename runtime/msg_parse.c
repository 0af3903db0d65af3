/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "msg_parse.h"
#include "protocol.h"

#define ETF_VERSION 131

bool nk_parse_is_etf(const uint8_t *p, size_t len)
{
        /* The smallest term is two bytes (131, NIL_EXT). */
        return len >= 2 && p[0] == ETF_VERSION;
}

bool nk_parse_is_atom_text(const uint8_t *p, size_t len)
{
        size_t chars = 0;
        for (size_t i = 0; i < len; chars++) {
                uint8_t c = p[i];
                size_t n;
                uint32_t cp;
                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0)
                        n = 2, cp = c & 0x1f;
                else if ((c & 0xf0) == 0xe0)
                        n = 3, cp = c & 0x0f;
                else if ((c & 0xf8) == 0xf0)
                        n = 4, cp = c & 0x07;
                else
                        return false;
                if (len - i < n)
                        return false;
                for (size_t k = 1; k < n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
                if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n;
        }
        return len > 0 && chars <= 255;
}

void nk_discovery_free(struct nk_discovery *d)
{
        free(d->names);
        free(d->funcs);
        *d = (struct nk_discovery) {};
}

const char *nk_parse_loaded(const uint8_t *p, size_t len, struct nk_discovery *ret)
{
        struct nk_rd r = nk_rd_init(p, len);
        const uint8_t *mod, *name;
        size_t mod_len, name_len;
        uint32_t n, arity, flags;

        if (!nk_rd_str(&r, NK_PROTO_NAME_MAX, &mod, &mod_len) || !nk_parse_is_atom_text(mod, mod_len))
                return "bad module name";
        if (!nk_rd_u32(&r, &n) || n > NK_PROTO_FUNCS_MAX)
                return "bad function count";
        /* Each function takes at least 12 bytes (empty name, arity,
         * flags): a count the payload cannot hold is refused before
         * anything is allocated for it. */
        if (n > r.left / 12)
                return "bad function count";
        /* The names, NUL-terminated, fit in the payload plus one byte
         * each; len is within the transport's limit, so no overflow. */
        _cleanup_free_ char *names = malloc(mod_len + 1 + len + n);
        _cleanup_free_ nk_function *funcs = calloc(n ? n : 1, sizeof *funcs);
        if (!names || !funcs)
                return "out of memory";
        char *w = names;
        memcpy(w, mod, mod_len);
        w[mod_len] = '\0';
        char *module = w;
        w += mod_len + 1;
        for (uint32_t i = 0; i < n; i++) {
                if (!nk_rd_str(&r, NK_PROTO_NAME_MAX, &name, &name_len) ||
                    !nk_parse_is_atom_text(name, name_len))
                        return "bad function name";
                if (!nk_rd_u32(&r, &arity) || arity > NK_PROTO_ARITY_MAX)
                        return "bad arity";
                if (!nk_rd_u32(&r, &flags) || flags > 2)
                        return "bad function flags";
                memcpy(w, name, name_len);
                w[name_len] = '\0';
                funcs[i] = (nk_function) { .name = w, .arity = arity, .flags = flags };
                w += name_len + 1;
        }
        uint32_t callbacks = 0;
        if (r.left != 0 && (!nk_rd_u32(&r, &callbacks) || callbacks > (NK_CALLBACK_UPGRADE | NK_CALLBACK_UNLOAD)))
                return "bad callbacks";
        if (r.left != 0)
                return "trailing bytes";
        *ret = (struct nk_discovery) { .module = module, .names = TAKE_PTR(names), .funcs = TAKE_PTR(funcs),
                                       .nfuncs = n, .callbacks = callbacks };
        return NULL;
}

const char *nk_parse_reply(uint32_t type, uint32_t expect, const uint8_t *p, size_t len)
{
        struct nk_rd r = nk_rd_init(p, len);
        const uint8_t *rest;
        size_t rest_len;
        uint32_t v;

        if (type == NK_MSG_ERROR) {
                if (!nk_rd_u32(&r, &v) || v < NK_PERR_LOAD || v > NK_PERR_INTERNAL)
                        return "ERROR without a valid category";
                return NULL;
        }
        if (type != expect)
                return "reply of the wrong type";
        switch (expect) {
        case NK_MSG_RESULT:
                if (!nk_rd_u32(&r, &v) || (v & ~NK_RESULT_NO_HANDLES) > 1)
                        return "RESULT with a bad status";
                nk_rd_rest(&r, &rest, &rest_len);
                if (!nk_parse_is_etf(rest, rest_len))
                        return "RESULT whose term is not ETF";
                return NULL;
        case NK_MSG_PONG:
                return len == 0 ? NULL : "PONG with a payload";
        case NK_MSG_LOAD_DONE:
                return len == 0 ? NULL : "LOAD_DONE with a payload";
        }
        return "reply to an unknown request";
}

int nk_parse_send(uint64_t id, const uint8_t *p, size_t len, const uint8_t **ret_to, size_t *ret_to_len,
                  const uint8_t **ret_msg, size_t *ret_msg_len)
{
        struct nk_rd r = nk_rd_init(p, len);
        const uint8_t *to, *msg;
        size_t to_len, msg_len;

        if (id != 0 || !nk_rd_str(&r, SIZE_MAX, &to, &to_len) || !nk_parse_is_etf(to, to_len))
                return -EBADMSG;
        nk_rd_rest(&r, &msg, &msg_len);
        if (!nk_parse_is_etf(msg, msg_len))
                return -EBADMSG;
        *ret_to = to;
        *ret_to_len = to_len;
        *ret_msg = msg;
        *ret_msg_len = msg_len;
        return 0;
}
