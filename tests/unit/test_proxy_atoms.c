/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy's count of new atoms in a result's ETF (runtime/beam/
 * proxy_atoms.c): distinct atoms only, in every place a term can hold one,
 * and malformed input refused. BEAM's atom table is played by a stub.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy.h"

/* The atoms this stand-in VM has. */
static const char *const known[] = { "ok", "existing", "nonode@nohost", "\xe9t\xe9" };

int enif_make_existing_atom_len(ErlNifEnv *env, const char *name, size_t len, ERL_NIF_TERM *atom,
                                ErlNifCharEncoding enc)
{
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                if (strlen(known[i]) == len && memcmp(known[i], name, len) == 0)
                        return 1;
        return 0;
}

#define COUNT(...)                                                                      \
        ({                                                                              \
                static const uint8_t etf_[] = { __VA_ARGS__ };                          \
                atoms_new_in_etf(NULL, etf_, sizeof etf_);                              \
        })

static void distinct_new_atoms(void **state)
{
        /* [a, b, a, existing] */
        assert_int_equal(COUNT(131, 108, 0, 0, 0, 4, 119, 1, 'a', 119, 1, 'b', 119, 1, 'a', 119, 8, 'e', 'x',
                               'i', 's', 't', 'i', 'n', 'g', 106), 2);
        /* ok, latin-1 ATOM_EXT */
        assert_int_equal(COUNT(131, 100, 0, 2, 'o', 'k'), 0);
        /* #{x => y} */
        assert_int_equal(COUNT(131, 116, 0, 0, 0, 1, 100, 0, 1, 'x', 115, 1, 'y'), 2);
        /* {<<"ab">>, 7, "hi"}: no atoms at all */
        assert_int_equal(COUNT(131, 104, 3, 109, 0, 0, 0, 2, 'a', 'b', 97, 7, 107, 0, 2, 'h', 'i'), 0);
        /* "été" in UTF-8 is the Latin-1 atom the VM has */
        assert_int_equal(COUNT(131, 119, 5, 0xc3, 0xa9, 't', 0xc3, 0xa9), 0);
}

static void atoms_inside_pids_refs_funs(void **state)
{
        /* a pid of node 'n@h' */
        assert_int_equal(COUNT(131, 88, 119, 3, 'n', '@', 'h', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), 1);
        /* a reference of the local node: nothing new */
        assert_int_equal(COUNT(131, 90, 0, 1, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's',
                               't', 0, 0, 0, 0, 0, 0, 0, 5), 0);
        /* fun m:f/1 */
        assert_int_equal(COUNT(131, 113, 119, 1, 'm', 119, 1, 'f', 97, 1), 2);
        /* an improper list [ok | tail] */
        assert_int_equal(COUNT(131, 108, 0, 0, 0, 1, 119, 2, 'o', 'k', 119, 4, 't', 'a', 'i', 'l'), 1);
}

static void malformed_refused(void **state)
{
        /* truncated atom */
        assert_int_equal(COUNT(131, 119, 5, 'a', 'b'), -EBADMSG);
        /* trailing bytes */
        assert_int_equal(COUNT(131, 106, 106), -EBADMSG);
        /* no version byte */
        assert_int_equal(COUNT(106), -EBADMSG);
        /* compressed */
        assert_int_equal(COUNT(131, 80, 0, 0, 0, 1, 0), -EBADMSG);
        /* a list claiming four billion elements in a few bytes */
        assert_int_equal(COUNT(131, 108, 0xff, 0xff, 0xff, 0xff, 106), -EBADMSG);
        /* an unknown tag */
        assert_int_equal(COUNT(131, 200), -EBADMSG);
        /* nothing at all */
        assert_int_equal(atoms_new_in_etf(NULL, (const uint8_t *) "", 0), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(distinct_new_atoms),
                cmocka_unit_test(atoms_inside_pids_refs_funs),
                cmocka_unit_test(malformed_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
