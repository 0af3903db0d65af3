/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The erl_nif term API: type tests, comparison and hashing, numbers, atoms,
 * strings, lists, tuples, envs, exceptions, references, unique integers and
 * the ETF entry points. Return values follow BEAM's erl_nif.c, including
 * its failure values, because NIFs test them exactly (enif_get_string's
 * negative length on truncation, enif_get_atom counting the NUL, ...).
 *
 * References made by enif_make_ref belong to the reserved node
 * 'nifkit_ref@nohost'. Their creation and third id word are random per host
 * process and their first two words carry a process-wide counter, so they
 * never equal a reference of the runtime's own node, a resource handle
 * ('nifkit_resource@nohost'), or a reference made by an earlier instance of
 * the host. The first word stays below 2^18 because BEAM refuses to decode
 * a reference whose first word is larger.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "etf.h"
#include "macro.h"
#include "nif_api.h"
#include "protocol.h"
#include "term.h"
#include "utf8.h"

/* BEAM aborts the VM here; the host ends with a status that says why
 * (protocol.h), which a memory limit made of RLIMIT_AS needs to be told
 * apart from a crash. */
_Noreturn void nk_nif_oom(const char *what)
{
        fprintf(stderr, "nifkit-host: out of memory in %s\n", what);
        _exit(NK_HOST_EXIT_OOM);
}

static ERL_NIF_TERM checked(ERL_NIF_TERM t, const char *what)
{
        if (t == NK_NONE)
                nk_nif_oom(what);
        return t;
}

/* ---- type tests ------------------------------------------------------------ */

int enif_is_atom(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_atom(term);
}

int enif_is_binary(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_kind(term, NK_BINARY) && ((const struct nk_binary *) nk_box_of(term))->bits == 0;
}

int enif_is_ref(ErlNifEnv *env, ERL_NIF_TERM term)
{
        /* A resource term is a (magic) reference in BEAM. */
        return nk_is_kind(term, NK_REF) || nk_is_kind(term, NK_RESOURCE);
}

int enif_is_fun(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_kind(term, NK_FUN);
}

int enif_is_pid(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_pid(term) || nk_is_kind(term, NK_EXTPID);
}

int enif_is_port(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_port(term) || nk_is_kind(term, NK_EXTPORT);
}

int enif_is_list(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return term == NK_NIL || nk_is_kind(term, NK_CONS);
}

int enif_is_tuple(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_kind(term, NK_TUPLE);
}

int enif_is_empty_list(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return term == NK_NIL;
}

int enif_is_number(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_integer(term) || nk_is_kind(term, NK_FLOAT);
}

int enif_is_map(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return nk_is_kind(term, NK_MAP);
}

int enif_is_exception(ErlNifEnv *env, ERL_NIF_TERM term)
{
        return env->exception != NK_NONE && term == NK_EXCEPTION;
}

ErlNifTermType enif_term_type(ErlNifEnv *env, ERL_NIF_TERM term)
{
        switch (nk_tag(term)) {
        case NK_TAG_SMALL:
                return ERL_NIF_TERM_TYPE_INTEGER;
        case NK_TAG_ATOM:
                return ERL_NIF_TERM_TYPE_ATOM;
        case NK_TAG_PID:
                return ERL_NIF_TERM_TYPE_PID;
        case NK_TAG_PORT:
                return ERL_NIF_TERM_TYPE_PORT;
        case NK_TAG_SPEC:
                if (term == NK_NIL)
                        return ERL_NIF_TERM_TYPE_LIST;
                break;
        case NK_TAG_BOX:
                if (term == NK_NONE)
                        break;
                switch ((enum nk_box_kind) nk_box_of(term)->kind) {
                case NK_BIG:
                        return ERL_NIF_TERM_TYPE_INTEGER;
                case NK_FLOAT:
                        return ERL_NIF_TERM_TYPE_FLOAT;
                case NK_TUPLE:
                        return ERL_NIF_TERM_TYPE_TUPLE;
                case NK_CONS:
                        return ERL_NIF_TERM_TYPE_LIST;
                case NK_MAP:
                        return ERL_NIF_TERM_TYPE_MAP;
                case NK_BINARY:
                        return ERL_NIF_TERM_TYPE_BITSTRING;
                case NK_REF:
                case NK_RESOURCE:
                        return ERL_NIF_TERM_TYPE_REFERENCE;
                case NK_EXTPID:
                        return ERL_NIF_TERM_TYPE_PID;
                case NK_EXTPORT:
                        return ERL_NIF_TERM_TYPE_PORT;
                case NK_FUN:
                        return ERL_NIF_TERM_TYPE_FUN;
                }
                break;
        }
        /* BEAM aborts on a non-term (the exception marker included); the
         * enum's reserved "missing default" value tells the NIF the same
         * without taking the host down. */
        return ERL_NIF_TERM_TYPE__MISSING_DEFAULT_CASE__READ_THE_MANUAL;
}

/* ---- comparison and hashing ------------------------------------------------- */

int enif_is_identical(ERL_NIF_TERM lhs, ERL_NIF_TERM rhs)
{
        return nk_identical(lhs, rhs);
}

int enif_compare(ERL_NIF_TERM lhs, ERL_NIF_TERM rhs)
{
        int c = nk_compare(lhs, rhs);
        return c < 0 ? -1 : c > 0;
}

ErlNifUInt64 enif_hash(ErlNifHash type, ERL_NIF_TERM term, ErlNifUInt64 salt)
{
        switch (type) {
        case ERL_NIF_INTERNAL_HASH:
                return nk_internal_hash(term, salt);
        case ERL_NIF_PHASH2:
                /* BEAM ignores the salt for phash2 and returns the value of
                 * erlang:phash2/1, i.e. reduced to 27 bits. */
                return nk_phash2(term) & ((UINT32_C(1) << 27) - 1);
        }
        return 0;
}

/* ---- integers and floats --------------------------------------------------- */

int enif_get_int(ErlNifEnv *env, ERL_NIF_TERM term, int *ip)
{
        int64_t v;
        if (!nk_get_int64(term, &v) || v < INT_MIN || v > INT_MAX)
                return 0;
        *ip = (int) v;
        return 1;
}

int enif_get_uint(ErlNifEnv *env, ERL_NIF_TERM term, unsigned *ip)
{
        uint64_t v;
        if (!nk_get_uint64(term, &v) || v > UINT_MAX)
                return 0;
        *ip = (unsigned) v;
        return 1;
}

int enif_get_long(ErlNifEnv *env, ERL_NIF_TERM term, long *ip)
{
        int64_t v;
        if (!nk_get_int64(term, &v) || v < LONG_MIN || v > LONG_MAX)
                return 0;
        *ip = (long) v;
        return 1;
}

int enif_get_ulong(ErlNifEnv *env, ERL_NIF_TERM term, unsigned long *ip)
{
        uint64_t v;
        if (!nk_get_uint64(term, &v) || v > ULONG_MAX)
                return 0;
        *ip = (unsigned long) v;
        return 1;
}

int enif_get_double(ErlNifEnv *env, ERL_NIF_TERM term, double *dp)
{
        /* Integers are not converted, as in BEAM. */
        if (!nk_is_kind(term, NK_FLOAT))
                return 0;
        *dp = ((const struct nk_float *) nk_box_of(term))->value;
        return 1;
}

ERL_NIF_TERM enif_make_int(ErlNifEnv *env, int i)
{
        return nk_make_small(i);
}

ERL_NIF_TERM enif_make_uint(ErlNifEnv *env, unsigned i)
{
        return nk_make_small(i);
}

ERL_NIF_TERM enif_make_long(ErlNifEnv *env, long i)
{
        return checked(nk_make_int64(env, i), "enif_make_long");
}

ERL_NIF_TERM enif_make_ulong(ErlNifEnv *env, unsigned long i)
{
        return checked(nk_make_uint64(env, i), "enif_make_ulong");
}

/* On LP64, erl_nif.h turns the 64-bit variants into macros over the long
 * ones, and BEAM exports no such symbols either. */
#if SIZEOF_LONG != 8
int enif_get_int64(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifSInt64 *ip)
{
        int64_t v;
        if (!nk_get_int64(term, &v))
                return 0;
        *ip = v;
        return 1;
}

int enif_get_uint64(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifUInt64 *ip)
{
        uint64_t v;
        if (!nk_get_uint64(term, &v))
                return 0;
        *ip = v;
        return 1;
}

ERL_NIF_TERM enif_make_int64(ErlNifEnv *env, ErlNifSInt64 i)
{
        return checked(nk_make_int64(env, i), "enif_make_int64");
}

ERL_NIF_TERM enif_make_uint64(ErlNifEnv *env, ErlNifUInt64 i)
{
        return checked(nk_make_uint64(env, i), "enif_make_uint64");
}
#endif

ERL_NIF_TERM enif_make_double(ErlNifEnv *env, double d)
{
        /* Erlang has no NaN or infinities: BEAM raises badarg. */
        if (!isfinite(d))
                return enif_make_badarg(env);
        return checked(nk_make_float(env, d), "enif_make_double");
}

/*
 * BEAM's unique integers: a monotonic counter, offset so that without
 * ERL_NIF_UNIQUE_POSITIVE the values start at the most negative small
 * integer of a 64-bit BEAM, and with it at 1. Unique within this host.
 */
#define UNIQUE_NEGATIVE_BASE (-(INT64_C(1) << 59))
static atomic_uint_fast64_t unique_counter;

ERL_NIF_TERM enif_make_unique_integer(ErlNifEnv *env, ErlNifUniqueInteger properties)
{
        uint64_t raw = atomic_fetch_add(&unique_counter, 1);
        int64_t v;

        if (properties & ERL_NIF_UNIQUE_POSITIVE)
                v = (int64_t) (raw + 1);
        else
                v = UNIQUE_NEGATIVE_BASE + (int64_t) raw;
        return checked(nk_make_int64(env, v), "enif_make_unique_integer");
}

/* ---- UTF-8 helpers ------------------------------------------------------------ */

/* A list element that is a Unicode code point Erlang accepts in a string. */
static bool code_point_of(ERL_NIF_TERM t, uint32_t *ret)
{
        if (!nk_is_small(t))
                return false;
        int64_t v = nk_small_value(t);
        if (v < 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                return false;
        *ret = (uint32_t) v;
        return true;
}

/* ---- atoms ------------------------------------------------------------------ */

ERL_NIF_TERM enif_make_atom(ErlNifEnv *env, const char *name)
{
        return enif_make_atom_len(env, name, strlen(name));
}

ERL_NIF_TERM enif_make_atom_len(ErlNifEnv *env, const char *name, size_t len)
{
        ERL_NIF_TERM atom;

        if (!enif_make_new_atom_len(env, name, len, &atom, ERL_NIF_LATIN1))
                return enif_make_badarg(env);
        return atom;
}

int enif_make_new_atom(ErlNifEnv *env, const char *name, ERL_NIF_TERM *atom,
                       ErlNifCharEncoding encoding)
{
        return enif_make_new_atom_len(env, name, strlen(name), atom, encoding);
}

int enif_make_new_atom_len(ErlNifEnv *env, const char *name, size_t len, ERL_NIF_TERM *atom,
                           ErlNifCharEncoding encoding)
{
        ERL_NIF_TERM t;

        switch ((int) encoding) {
        case ERL_NIF_LATIN1:
                if (len > NK_ATOM_MAX_CHARS)
                        return 0;
                t = nk_atom_latin1(name, len);
                break;
        case ERL_NIF_UTF8:
                /* nk_atom_utf8 checks the encoding and the 255-character limit */
                t = nk_atom_utf8(name, len);
                break;
        default:
                return 0;
        }
        if (t == NK_NONE)
                return 0;
        *atom = t;
        return 1;
}

int enif_make_existing_atom(ErlNifEnv *env, const char *name, ERL_NIF_TERM *atom,
                            ErlNifCharEncoding encoding)
{
        return enif_make_existing_atom_len(env, name, strlen(name), atom, encoding);
}

int enif_make_existing_atom_len(ErlNifEnv *env, const char *name, size_t len, ERL_NIF_TERM *atom,
                                ErlNifCharEncoding encoding)
{
        ERL_NIF_TERM t;

        switch ((int) encoding) {
        case ERL_NIF_LATIN1: {
                /* Atom text is kept as UTF-8: at most two bytes per Latin-1 character. */
                uint8_t utf8[NK_ATOM_MAX_CHARS * 2];
                size_t n = 0;

                if (len > NK_ATOM_MAX_CHARS)
                        return 0;
                for (size_t i = 0; i < len; i++) {
                        nk_utf8_encode((uint8_t) name[i], utf8 + n);
                        n += nk_utf8_size((uint8_t) name[i]);
                }
                t = nk_atom_find_utf8((const char *) utf8, n);
                break;
        }
        case ERL_NIF_UTF8:
                if (len > NK_ATOM_MAX_CHARS * 4)
                        return 0;
                t = nk_atom_find_utf8(name, len);
                break;
        default:
                return 0;
        }
        if (t == NK_NONE)
                return 0;
        *atom = t;
        return 1;
}

int enif_get_atom_length(ErlNifEnv *env, ERL_NIF_TERM atom, unsigned *len,
                         ErlNifCharEncoding encoding)
{
        if (!nk_is_atom(atom))
                return 0;
        switch ((int) encoding) {
        case ERL_NIF_LATIN1: {
                bool latin1;
                size_t chars = nk_atom_chars(atom, &latin1);
                if (!latin1)
                        return 0;
                *len = (unsigned) chars;
                return 1;
        }
        case ERL_NIF_UTF8: {
                size_t bytes;
                nk_atom_text(atom, &bytes);
                *len = (unsigned) bytes;
                return 1;
        }
        default:
                return 0;
        }
}

/* Returns the characters copied plus the NUL, or 0 if the text does not fit
 * in len bytes with its NUL or (Latin-1) has a character above 255. */
int enif_get_atom(ErlNifEnv *env, ERL_NIF_TERM atom, char *buf, unsigned len,
                  ErlNifCharEncoding encoding)
{
        size_t bytes;
        const char *text;

        if (!nk_is_atom(atom) || len == 0)
                return 0;
        text = nk_atom_text(atom, &bytes);
        switch ((int) encoding) {
        case ERL_NIF_LATIN1: {
                bool latin1;
                size_t chars = nk_atom_chars(atom, &latin1);
                if (!latin1 || chars >= len)
                        return 0;
                for (size_t i = 0, o = 0; i < bytes; o++) {
                        uint32_t cp = 0;
                        i += nk_utf8_decode((const uint8_t *) text + i, bytes - i, &cp);
                        buf[o] = (char) cp;
                }
                buf[chars] = '\0';
                return (int) chars + 1;
        }
        case ERL_NIF_UTF8:
                if (bytes >= len)
                        return 0;
                memcpy(buf, text, bytes);
                buf[bytes] = '\0';
                return (int) bytes + 1;
        default:
                return 0;
        }
}

/* ---- strings ------------------------------------------------------------------ */

ERL_NIF_TERM enif_make_string(ErlNifEnv *env, const char *string, ErlNifCharEncoding encoding)
{
        return enif_make_string_len(env, string, strlen(string), encoding);
}

ERL_NIF_TERM enif_make_string_len(ErlNifEnv *env, const char *string, size_t len,
                                  ErlNifCharEncoding encoding)
{
        const uint8_t *s = (const uint8_t *) string;
        ERL_NIF_TERM list = NK_NIL;

        switch ((int) encoding) {
        case ERL_NIF_LATIN1:
                for (size_t i = len; i-- > 0;)
                        list = checked(nk_make_cons(env, nk_make_small(s[i]), list), "enif_make_string");
                return list;
        case ERL_NIF_UTF8: {
                /* Validate everything first: BEAM builds nothing for bad input. */
                for (size_t i = 0; i < len;) {
                        uint32_t cp;
                        size_t n = nk_utf8_decode(s + i, len - i, &cp);
                        if (n == 0)
                                return enif_make_badarg(env);
                        i += n;
                }
                /* Build front to back: tails are patched as cells are made. */
                ERL_NIF_TERM *tailp = &list;
                for (size_t i = 0; i < len;) {
                        uint32_t cp = 0;
                        i += nk_utf8_decode(s + i, len - i, &cp);
                        ERL_NIF_TERM cell = checked(nk_make_cons(env, nk_make_small(cp), NK_NIL),
                                                    "enif_make_string");
                        *tailp = cell;
                        tailp = &((struct nk_cons *) nk_box_of(cell))->tail;
                }
                return list;
        }
        default:
                return enif_make_badarg(env);
        }
}

static int get_string_latin1(ERL_NIF_TERM list, char *buf, unsigned len)
{
        unsigned n = 0;

        while (list != NK_NIL) {
                if (!nk_is_kind(list, NK_CONS)) {
                        buf[n] = '\0';
                        return 0;
                }
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(list);
                if (!nk_is_small(c->head) || nk_small_value(c->head) < 0 || nk_small_value(c->head) > 255) {
                        buf[n] = '\0';
                        return 0;
                }
                buf[n++] = (char) nk_small_value(c->head);
                if (n >= len) {
                        /* Truncated: BEAM reports it before looking further. */
                        buf[n - 1] = '\0';
                        return -(int) len;
                }
                list = c->tail;
        }
        buf[n] = '\0';
        return (int) n + 1;
}

static int get_string_utf8(ERL_NIF_TERM list, char *buf, unsigned len)
{
        size_t written = 0, room = (size_t) len - 1;

        while (list != NK_NIL) {
                uint32_t cp;
                if (!nk_is_kind(list, NK_CONS))
                        goto fail;
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(list);
                if (!code_point_of(c->head, &cp))
                        goto fail;
                if (nk_utf8_size(cp) > room - written) {
                        buf[written] = '\0';
                        return -(int) (written + 1);
                }
                nk_utf8_encode(cp, (uint8_t *) buf + written);
                written += nk_utf8_size(cp);
                list = c->tail;
        }
        buf[written] = '\0';
        return (int) written + 1;
fail:
        buf[0] = '\0';
        return 0;
}

int enif_get_string(ErlNifEnv *env, ERL_NIF_TERM list, char *buf, unsigned len,
                    ErlNifCharEncoding encoding)
{
        if (len < 1)
                return 0;
        switch ((int) encoding) {
        case ERL_NIF_LATIN1:
                return get_string_latin1(list, buf, len);
        case ERL_NIF_UTF8:
                return get_string_utf8(list, buf, len);
        default:
                return 0;
        }
}

int enif_get_string_length(ErlNifEnv *env, ERL_NIF_TERM list, unsigned *len,
                           ErlNifCharEncoding encoding)
{
        size_t n = 0;

        if (encoding != ERL_NIF_LATIN1 && encoding != ERL_NIF_UTF8)
                return 0;
        while (list != NK_NIL) {
                uint32_t cp;
                if (!nk_is_kind(list, NK_CONS))
                        return 0;
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(list);
                if (!code_point_of(c->head, &cp))
                        return 0;
                if (encoding == ERL_NIF_LATIN1) {
                        if (cp > 255)
                                return 0;
                        n++;
                } else
                        n += nk_utf8_size(cp);
                list = c->tail;
        }
        if (n > UINT_MAX)
                return 0;
        *len = (unsigned) n;
        return 1;
}

/* ---- lists and tuples ---------------------------------------------------------- */

static ERL_NIF_TERM list_from_array(ErlNifEnv *env, const ERL_NIF_TERM *arr, size_t cnt)
{
        ERL_NIF_TERM list = NK_NIL;

        for (size_t i = cnt; i-- > 0;)
                list = checked(nk_make_cons(env, arr[i], list), "enif_make_list");
        return list;
}

ERL_NIF_TERM enif_make_list(ErlNifEnv *env, unsigned cnt, ...)
{
        ERL_NIF_TERM small[16], *arr = small;
        va_list ap;

        if (cnt > NK_ARRAY_SIZE(small)) {
                arr = malloc(cnt * sizeof(*arr));
                if (!arr)
                        nk_nif_oom("enif_make_list");
        }
        va_start(ap, cnt);
        for (unsigned i = 0; i < cnt; i++)
                arr[i] = va_arg(ap, ERL_NIF_TERM);
        va_end(ap);
        ERL_NIF_TERM list = list_from_array(env, arr, cnt);
        if (arr != small)
                free(arr);
        return list;
}

ERL_NIF_TERM enif_make_list_from_array(ErlNifEnv *env, const ERL_NIF_TERM arr[], unsigned cnt)
{
        return list_from_array(env, arr, cnt);
}

ERL_NIF_TERM enif_make_list_cell(ErlNifEnv *env, ERL_NIF_TERM car, ERL_NIF_TERM cdr)
{
        return checked(nk_make_cons(env, car, cdr), "enif_make_list_cell");
}

int enif_get_list_cell(ErlNifEnv *env, ERL_NIF_TERM term, ERL_NIF_TERM *head, ERL_NIF_TERM *tail)
{
        if (!nk_is_kind(term, NK_CONS))
                return 0;
        const struct nk_cons *c = (const struct nk_cons *) nk_box_of(term);
        *head = c->head;
        *tail = c->tail;
        return 1;
}

int enif_get_list_length(ErlNifEnv *env, ERL_NIF_TERM term, unsigned *len)
{
        size_t n = 0;

        while (term != NK_NIL) {
                if (!nk_is_kind(term, NK_CONS))
                        return 0;       /* not a list, or an improper one */
                term = ((const struct nk_cons *) nk_box_of(term))->tail;
                n++;
        }
        if (n > UINT_MAX)
                return 0;
        *len = (unsigned) n;
        return 1;
}

int enif_make_reverse_list(ErlNifEnv *env, ERL_NIF_TERM term, ERL_NIF_TERM *list)
{
        ERL_NIF_TERM ret = NK_NIL;

        while (term != NK_NIL) {
                if (!nk_is_kind(term, NK_CONS))
                        return 0;
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(term);
                ret = checked(nk_make_cons(env, c->head, ret), "enif_make_reverse_list");
                term = c->tail;
        }
        *list = ret;
        return 1;
}

ERL_NIF_TERM enif_make_tuple(ErlNifEnv *env, unsigned cnt, ...)
{
        va_list ap;
        ERL_NIF_TERM t = checked(nk_make_tuple_n(env, cnt, NULL), "enif_make_tuple");
        struct nk_tuple *tp = (struct nk_tuple *) nk_box_of(t);

        va_start(ap, cnt);
        for (unsigned i = 0; i < cnt; i++)
                tp->elems[i] = va_arg(ap, ERL_NIF_TERM);
        va_end(ap);
        return t;
}

ERL_NIF_TERM enif_make_tuple_from_array(ErlNifEnv *env, const ERL_NIF_TERM arr[], unsigned cnt)
{
        return checked(nk_make_tuple_n(env, cnt, arr), "enif_make_tuple_from_array");
}

int enif_get_tuple(ErlNifEnv *env, ERL_NIF_TERM tpl, int *arity, const ERL_NIF_TERM **array)
{
        if (!nk_is_kind(tpl, NK_TUPLE))
                return 0;
        const struct nk_tuple *t = (const struct nk_tuple *) nk_box_of(tpl);
        *arity = (int) t->h.n;
        *array = t->elems;
        return 1;
}

/* ---- envs and exceptions -------------------------------------------------------- */

ErlNifEnv *enif_alloc_env(void)
{
        ErlNifEnv *env = malloc(sizeof(*env));
        if (!env)
                return NULL;
        nk_env_init(env);
        return env;
}

void enif_free_env(ErlNifEnv *env)
{
        if (!env)
                return;
        nk_env_destroy(env);
        free(env);
}

void enif_clear_env(ErlNifEnv *env)
{
        nk_env_reset(env);
}

ERL_NIF_TERM enif_make_copy(ErlNifEnv *dst_env, ERL_NIF_TERM src_term)
{
        return checked(nk_copy_term(dst_env, src_term), "enif_make_copy");
}

ERL_NIF_TERM enif_raise_exception(ErlNifEnv *env, ERL_NIF_TERM reason)
{
        env->exception = reason;
        return NK_EXCEPTION;
}

ERL_NIF_TERM enif_make_badarg(ErlNifEnv *env)
{
        return enif_raise_exception(env, nk_am_badarg);
}

int enif_has_pending_exception(ErlNifEnv *env, ERL_NIF_TERM *reason)
{
        if (env->exception == NK_NONE)
                return 0;
        if (reason)
                *reason = env->exception;
        return 1;
}

/* ---- references ------------------------------------------------------------------ */

static pthread_once_t ref_once = PTHREAD_ONCE_INIT;
static ERL_NIF_TERM ref_node;
static uint32_t ref_creation, ref_salt;
static atomic_uint_fast64_t ref_counter;

static void ref_init(void)
{
        uint32_t r[2];

        if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t) sizeof(r)) {
                /* Early boot or a filter that refuses getrandom: time and pid
                 * still make a clash with an earlier host unlikely. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                r[0] = (uint32_t) ts.tv_nsec ^ (uint32_t) getpid() << 16;
                r[1] = (uint32_t) ts.tv_sec;
        }
        ref_creation = r[0] ? r[0] : 1;
        ref_salt = r[1];
        ref_node = nk_atom_utf8("nifkit_ref@nohost", strlen("nifkit_ref@nohost"));
}

ERL_NIF_TERM enif_make_ref(ErlNifEnv *env)
{
        pthread_once(&ref_once, ref_init);
        if (ref_node == NK_NONE)
                nk_nif_oom("enif_make_ref");

        uint64_t n = atomic_fetch_add(&ref_counter, 1);
        struct nk_ref *r = nk_env_alloc(env, sizeof(*r));
        if (!r)
                nk_nif_oom("enif_make_ref");
        memset(r, 0, sizeof(*r));
        r->h.kind = NK_REF;
        r->h.n = 3;
        r->node = ref_node;
        r->creation = ref_creation;
        r->ids[0] = (uint32_t) (n & 0x3ffff);
        r->ids[1] = (uint32_t) (n >> 18);
        r->ids[2] = ref_salt ^ (uint32_t) (n >> 50);
        return nk_box_term(r);
}

/* ---- External Term Format -------------------------------------------------------- */

static void free_buf_data(void *p)
{
        free(p);
}

int enif_term_to_binary(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifBinary *bin)
{
        struct nk_buf out = { 0 };
        size_t len;
        uint8_t *data;

        if (nk_etf_encode(term, &out) < 0) {
                nk_buf_free(&out);
                return 0;
        }
        data = nk_buf_steal(&out, &len);
        /* The encoder's buffer becomes the binary's storage: no copy. */
        struct nk_binobj *obj = nk_binobj_external(data, len, free_buf_data, data);
        if (!obj) {
                free(data);
                return 0;
        }
        bin->size = len;
        bin->data = data;
        bin->ref_bin = obj;
        return 1;
}

size_t enif_binary_to_term(ErlNifEnv *env, const unsigned char *data, size_t sz, ERL_NIF_TERM *term,
                           unsigned int opts)
{
        struct nk_etf_error err;
        ERL_NIF_TERM t;
        size_t used;
        unsigned flags;

        switch (opts) {
        case 0:
                flags = 0;
                break;
        case ERL_NIF_BIN2TERM_SAFE:
                flags = NK_ETF_SAFE;
                break;
        default:
                return 0;
        }
        if (nk_etf_decode(env, data, sz, flags, &t, &used, &err) < 0)
                return 0;
        *term = t;
        return used;
}
