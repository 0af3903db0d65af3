#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The proxy's function table, in a real BEAM:
#  - a library with 256 functions loads, and each of the 256 trampolines
#    reaches its own function (f0x000 … f0x0ff return their index);
#  - a library with 257 functions is refused, with a message that says so;
#  - a proxy with no real library beside it is refused, with a message;
#  - a sandbox note (cgroup limits not enforced) is said once per VM, not
#    once per library.
#
# Environment: NIFKIT_PROXY, NIFKIT_HOST, NIFKIT_WRAP, NK_MANY256,
# NK_MANY256B and NK_MANY257 (the test libraries built from
# many_funcs_nif.c).
set -eu
# A VM that fails writes no crash dump into the working directory.
export ERL_CRASH_DUMP_SECONDS=0

if [ -z "${NIFKIT_PROXY:-}" ] || [ ! -f "$NIFKIT_PROXY" ]; then
        echo "SKIP: no proxy NIF built"
        exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
wrap=${NIFKIT_WRAP:-$here/../../scripts/nifkit-wrap-dev}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-proxy-limits.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One Erlang module per library: load/1 and the stubs the NIF replaces.
for n in 256 256b 257 0; do
        {
                echo "-module(nk_many$n)."
                echo "-export([load/1, call/1])."
                echo "-compile([export_all, nowarn_export_all])."
                echo "load(Path) -> erlang:load_nif(Path, 0)."
                echo "call(I) -> Name = list_to_atom(string:lowercase(io_lib:format(\"f0x~3.16.0b\", [I]))), ?MODULE:Name()."
                i=0
                while [ $i -lt 257 ]; do
                        printf 'f0x%03x() -> erlang:nif_error(not_loaded).\n' $i
                        i=$((i + 1))
                done
        } >"$tmp/nk_many$n.erl"
        erlc -o "$tmp" "$tmp/nk_many$n.erl"
done
"$wrap" "$NIFKIT_PROXY" "$NK_MANY256" "$tmp/nk_many256.so"
"$wrap" "$NIFKIT_PROXY" "$NK_MANY256B" "$tmp/nk_many256b.so"
"$wrap" "$NIFKIT_PROXY" "$NK_MANY257" "$tmp/nk_many257.so"
cp "$NIFKIT_PROXY" "$tmp/nk_many0.so"           # wraps nothing
# The default policy, but without requiring cgroup v2 controllers, which
# this test does not need (the integration suite tests the limits).
for n in 256 256b 257; do
        echo '{"nifkit_policy": 1, "cgroup": "best-effort"}' >"$tmp/nk_many$n.policy.json"
done

erl -noshell -pa "$tmp" -eval "
        Dir = \"$tmp\",
        ok = nk_many256:load(Dir ++ \"/nk_many256\"),
        Got = [nk_many256:call(I) || I <- lists:seq(0, 255)],
        Got =:= lists:seq(0, 255) orelse error({trampolines_misrouted, Got}),
        {'EXIT', {not_loaded, _}} = catch nk_many256:f0x100(),
        ok = nk_many256b:load(Dir ++ \"/nk_many256b\"),
        255 = nk_many256b:call(255),
        io:format(\"256 functions: every trampoline reaches its own function~n\"),
        {error, {bad_lib, _}} = R257 = nk_many257:load(Dir ++ \"/nk_many257\"),
        io:format(\"257 functions: ~p~n\", [R257]),
        {error, {bad_lib, _}} = R0 = nk_many0:load(Dir ++ \"/nk_many0\"),
        io:format(\"no real library: ~p~n\", [R0]),
        halt()." 2>"$tmp/stderr" || status=$?
cat "$tmp/stderr"
[ "${status:-0}" = 0 ] || exit "$status"
grep -q "has 257 functions; the proxy supports at most 256" "$tmp/stderr" || {
        echo "FAIL: no message about the 257 functions" >&2
        exit 1
}
grep -q "wraps no library" "$tmp/stderr" || {
        echo "FAIL: no message about the missing real library" >&2
        exit 1
}
# Two hosts started; whatever the machine lacks is said at most once.
notes=$(grep -c "NOT enforced" "$tmp/stderr" || true)
if [ "$notes" -gt 1 ]; then
        echo "FAIL: the same sandbox note was said $notes times in one VM" >&2
        exit 1
fi
echo "sandbox notes in one VM with two hosts: $notes"
echo "ok"
