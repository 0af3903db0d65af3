/* SPDX-License-Identifier: Apache-2.0 */
/* The bystander: a well-behaved library whose host runs beside each
 * attacker and must still answer once the attack is over. */
#include <erl_nif.h>

static ERL_NIF_TERM echo(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return argv[0];
}

static ErlNifFunc funcs[] = {
        { "echo", 1, echo, 0 },
};

ERL_NIF_INIT(nk_hostile_echo, funcs, NULL, NULL, NULL, NULL)
