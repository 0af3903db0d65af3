#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `nifkit call` and `nifkit inspect` against Debian's jiffy.so and the tool's
# own test NIF: exact stdout, stderr and exit status. jiffy's expected results
# are what the same NIF functions return inside the real BEAM (jiffy's Erlang
# module does not export them, so they were checked by loading jiffy.so under
# a module of the same name).
#
# Environment: NIFKIT (the tool), NIFKIT_HOST (the host it must find by
# itself: the variable is checked, then unset), NIFKIT_CLI_TEST_NIF
# (cli_test_nif.c built: crash, hang, raise, load failure, echo), and the
# [server] test NIFs when built: NK_TEST_NIF_GOOD, _CRASH, _LOADFAIL, _NOINIT,
# _NOTELF.
set -u

: "${NIFKIT:?NIFKIT must name the nifkit binary}"
: "${NIFKIT_HOST:?NIFKIT_HOST must name the nifkit-host binary}"
# A nifkit run from its build tree finds that build's host: every check
# below runs without the variable.
[ -x "$NIFKIT_HOST" ] || { echo "FAIL: $NIFKIT_HOST is not executable"; exit 1; }
unset NIFKIT_HOST

jiffy_dir=$(erl -noshell -eval 'case code:lib_dir(jiffy) of {error, _} -> ok; D -> io:format("~s", [D]) end, halt().')
JIFFY=$jiffy_dir/priv/jiffy.so
if [ -z "$jiffy_dir" ] || [ ! -f "$JIFFY" ]; then
        echo "SKIP: jiffy is not installed (erlang-jiffy)"
        exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
count=0

# check NAME STATUS STDOUT STDERR -- ARGS...: "*" for STDOUT or STDERR means "anything".
check() {
        local name=$1 want_rc=$2 want_out=$3 want_err=$4
        shift 5
        count=$((count + 1))
        "$NIFKIT" "$@" >"$tmp/out" 2>"$tmp/err"
        local rc=$?
        local out err
        out=$(cat "$tmp/out")
        err=$(cat "$tmp/err")
        if [ "$rc" != "$want_rc" ] || { [ "$want_out" != "*" ] && [ "$out" != "$want_out" ]; } || { [ "$want_err" != "*" ] && [ "$err" != "$want_err" ]; }; then
                failures=$((failures + 1))
                echo "FAIL: $name"
                echo "  command: nifkit $*"
                echo "  status:  $rc (want $want_rc)"
                echo "  stdout:  $out"
                echo "  want:    $want_out"
                echo "  stderr:  $err"
                [ "$want_err" != "*" ] && echo "  want:    $want_err"
        else
                echo "ok: $name"
        fi
}

check "inspect jiffy" 0 "module jiffy
nif_decode_init/2
nif_decode_iter/5
nif_encode_init/2
nif_encode_iter/3
entitlements: none declared (no .nifkit_entitlements section, no ${JIFFY%.so}.entitlements.json)" "" -- inspect "$JIFFY"

check "decode a list" 0 "[1,2]" "" -- call "$JIFFY" nif_decode_init '<<"[1,2]">>' '[]'
check "decode truncated JSON returns an error tuple" 0 "{error,{5,truncated_json}}" "" -- \
        call "$JIFFY" nif_decode_init '<<"[1,2">>' '[]'
check "decode to a map" 0 '#{<<"a">> => [true,null,1.5,<<"x">>]}' "" -- \
        call "$JIFFY" nif_decode_init '<<"{\"a\":[true,null,1.5,\"x\"]}">>' '[return_maps]'
# jiffy gives UTF-8 bytes; io_lib:print shows each byte as a Latin-1 character.
check "decode a string with a non-ASCII character" 0 '<<"Ã©">>' "" -- \
        call "$JIFFY" nif_decode_init '<<"\"\\u00e9\"">>' '[]'
check "a big number is handed back to Erlang" 0 '{partial,{bignum,<<"123456789012345678901234567890">>}}' "" -- \
        call "$JIFFY" nif_decode_init '<<"123456789012345678901234567890">>' '[]'
check "encode a map" 0 '[<<"{\"a\":1}">>]' "" -- call "$JIFFY" nif_encode_init '#{a => 1}' '[]'
check "encode EJSON" 0 '[<<"{\"k\":\"v\"}">>]' "" -- call "$JIFFY" nif_encode_init '{[{<<"k">>,<<"v">>}]}' '[]'
check "encode a list" 0 '[<<"[1,2]">>]' "" -- call "$JIFFY" nif_encode_init '[1,2]' '[]'
check "options come before the library" 0 "[1,2]" "" -- \
        call --timeout 10000 --load-info '[]' "$JIFFY" nif_decode_init '<<"[1,2]">>' '[]'

check "badarg is an exception" 1 "" "** exception error: bad argument" -- call "$JIFFY" nif_decode_init 1 '[]'
check "a bad option is badarg" 1 "" "** exception error: bad argument" -- \
        call "$JIFFY" nif_decode_init '<<"[1,2]">>' '[bad_opt]'

check "wrong arity lists the arities" 64 "" "nifkit: jiffy has no function nif_decode_init/3
nifkit: available: nif_decode_init/2" -- call "$JIFFY" nif_decode_init 1 2 3
check "unknown function lists them all" 64 "" "nifkit: jiffy has no function nope/0
nifkit: available: nif_decode_init/2, nif_decode_iter/5, nif_encode_init/2, nif_encode_iter/3" -- call "$JIFFY" nope
check "bad literal names argument and column" 64 "" "nifkit: argument 2, column 3: expected ',', '|' or ']', found '}'" -- \
        call "$JIFFY" nif_decode_init '<<>>' '[a}'
check "bad --load-info" 64 "" "nifkit: --load-info, column 2: expected a term, found end of input" -- \
        call --load-info '{' "$JIFFY" nif_decode_init '<<>>' '[]'

printf '{"nifkit_policy": 1, "cgroup": "best-effort", "limits": {"pids": "x"}}\n' >"$tmp/bad-policy.json"
check "an invalid --policy is refused with file, line, column and path" 64 "" \
        "nifkit: $tmp/bad-policy.json:1:66: \$.limits.pids: expected an integer from 1 to 65536, got \"x\"" -- \
        call --policy "$tmp/bad-policy.json" "$JIFFY" nif_decode_init '<<"[1]">>' '[]'
printf '{"nifkit_policy": 1, "cgroup": "best-effort", "workers": 1}\n' >"$tmp/policy.json"
check "the host runs under --policy" 0 "[1]" "*" -- \
        call --policy "$tmp/policy.json" "$JIFFY" nif_decode_init '<<"[1]">>' '[]'
# A host with no sandbox at all is said on stderr at every start, whoever
# asked for it: the policy, or the variable.
printf '{"nifkit_policy": 1, "launcher": "unsandboxed-development", "cgroup": "best-effort"}\n' >"$tmp/unsandboxed.json"
check "a host the policy runs unsandboxed is warned about" 0 "[1]" \
        "nifkit: WARNING: the host for $JIFFY runs UNSANDBOXED (policy launcher \"unsandboxed-development\"): the NIF has every right of this process. For development only." -- \
        call --policy "$tmp/unsandboxed.json" "$JIFFY" nif_decode_init '<<"[1]">>' '[]'
export NIFKIT_UNSANDBOXED_DEVELOPMENT=1
check "NIFKIT_UNSANDBOXED_DEVELOPMENT=1 is warned about" 0 "[1]" \
        "nifkit: WARNING: the host for $JIFFY runs UNSANDBOXED (unsandboxed development allowed by the caller): the NIF has every right of this process. For development only." -- \
        call --policy "$tmp/policy.json" "$JIFFY" nif_decode_init '<<"[1]">>' '[]'
unset NIFKIT_UNSANDBOXED_DEVELOPMENT
printf '{"nifkit_policy": 1, "cgroup": "required", "limits": {"memory_mb": 64}}\n' >"$tmp/required.json"
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null | grep -w memory)" ] ||
   [ -n "$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null | grep -w memory)" ]; then
        echo "SKIP: a policy that requires cgroups is refused only where the controllers are missing"
else
        check "a policy that requires missing cgroup controllers is refused" 2 "" "*" -- \
                call --policy "$tmp/required.json" "$JIFFY" nif_decode_init '<<"[1]">>' '[]'
        if ! grep -q "cgroup v2 controllers missing" "$tmp/err"; then
                failures=$((failures + 1))
                echo "FAIL: the refusal does not say the controllers are missing: $(cat "$tmp/err")"
        fi
fi

missing=$tmp/no-such-library.so
check "a missing library exits 2 naming it" 2 "" "*" -- call "$missing" f
if ! grep -qF "$missing" "$tmp/err"; then
        failures=$((failures + 1))
        echo "FAIL: the missing library's message does not name it: $(cat "$tmp/err")"
fi
check "inspect of a missing library exits 2" 2 "" "*" -- inspect "$missing"
check "a missing host binary exits 2" 2 "" "*" -- call --host "$tmp/no-such-host" "$JIFFY" nif_decode_init '<<>>' '[]'

check "no command" 64 "" "*" --
check "unknown command" 64 "" "nifkit: unknown command 'frobnicate'
Try 'nifkit --help'." -- frobnicate
check "call without a function" 64 "" "*" -- call "$JIFFY"
check "inspect with two libraries" 64 "" "*" -- inspect "$JIFFY" "$JIFFY"
check "bad --timeout" 64 "" "nifkit: --timeout wants milliseconds, not 'soon'
usage: nifkit call [OPTION]... LIBRARY FUNCTION [ARG]...
Try 'nifkit call --help'." -- call --timeout soon "$JIFFY" f
check "--timeout without its value" 64 "" "nifkit: option '--timeout' needs a value
usage: nifkit call [OPTION]... LIBRARY FUNCTION [ARG]...
Try 'nifkit call --help'." -- call --timeout
check "unknown option" 64 "" "*" -- call --frob "$JIFFY" f
"$NIFKIT" --help >"$tmp/help" 2>&1
for c in call inspect help; do
        count=$((count + 1))
        if ! grep -q "^  $c " "$tmp/help"; then
                failures=$((failures + 1))
                echo "FAIL: nifkit --help does not list '$c'"
        fi
done
check "help call" 0 "*" "" -- help call
count=$((count + 1))
if ! "$NIFKIT" help call | grep -q -- "--load-info TERM"; then
        failures=$((failures + 1))
        echo "FAIL: nifkit help call does not describe --load-info"
fi

# The tool's own test NIF: one function per outcome.
T=${NIFKIT_CLI_TEST_NIF:-}
if [ -n "$T" ] && [ -f "$T" ]; then
        check "inspect shows dirty flags" 0 "module nk_cli_test
echo/1
raise/1
badarg/0
crash/0
sleep/1 dirty_io
load_info/0
add/2 dirty_cpu
add/3
entitlements: none declared (no .nifkit_entitlements section, no ${T%.so}.entitlements.json)" "" -- inspect "$T"
        check "add" 0 "3" "" -- call "$T" add 1 2
        check "a negative argument is a term, not an option" 0 "-1" "" -- call "$T" add -3 2
        check "choose the arity by the argument count" 0 "5" "" -- call "$T" add 2 3 4
        check "badarg" 1 "" "** exception error: bad argument" -- call "$T" badarg
        check "a raised reason with words" 1 "" "** exception error: no match of right hand side value 1" -- \
                call "$T" raise '{badmatch,1}'
        check "a raised reason without words" 1 "" '** exception error: {my_error,"text",<<1,2>>}' -- \
                call "$T" raise '{my_error,"text",<<1,2>>}'
        check "a crash exits 2" 2 "" "nifkit: host for $T killed by signal 11 (SIGSEGV)" -- call "$T" crash
        check "a timeout exits 2" 2 "" "nifkit: host for $T killed: call to sleep/1 timed out after 200 ms" -- \
                call --timeout 200 "$T" sleep 5000
        check "within the timeout" 0 "slept" "" -- call --timeout 5000 "$T" sleep 1
        check "load failure exits 2" 2 "" "nifkit: $T: load() returned 7" -- call --load-info fail "$T" badarg
        check "load info reaches load()" 0 '{a,"b",#{1 => 2.5}}' "" -- \
                call --load-info '{a, "b", #{1 => 2.5}}' "$T" load_info
        check "default load info is []" 0 "[]" "" -- call "$T" load_info

        # Terms through the host and back: literal in, erl's text out (each
        # expectation is what io_lib:print/4 gives for the same literal).
        while IFS=$'\t' read -r lit want; do
                check "echo $lit" 0 "$want" "" -- call "$T" echo "$lit"
        done <<'TERMS'
1	1
-16#ff	-255
123456789012345678901234567890	123456789012345678901234567890
-2#1_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000	-295147905179352825856
1.0e10	1.0e10
0.1	0.1
-2.5e-3	-0.0025
'Hello'	'Hello'
"abc"	"abc"
[$a,$b]	"ab"
<<"utf8 é"/utf8>>	<<"utf8 Ã©">>
<<1:3>>	<<1:3>>
[a|b]	[a|b]
{}	{}
#{b=>1,a=>[1.5,"x",<<1:3>>]}	#{a => [1.5,"x",<<1:3>>],b => 1}
'αβ'	'\x{3B1}\x{3B2}'
"αβ"	[945,946]
#{1.0=>a,1=>b}	#{1 => b,1.0 => a}
[1|[2|[3]]]	[1,2,3]
"tab\there"	"tab\there"
TERMS
else
        echo "SKIP: the tool's test NIF was not given (NIFKIT_CLI_TEST_NIF)"
fi

# The [server] test NIFs, built beside this test.
G=${NK_TEST_NIF_GOOD:-}
if [ -n "$G" ] && [ -f "$G" ]; then
        check "inspect nk_test_good" 0 "module nk_test_good
add/2
echo/1
raise/1
badarg/0
load_info/0
make_resource/1
resource_value/1
destructed/0
self/0
send_self/1
send_thread/1
yield/1
sleep/1 dirty_io
thread_type/0
thread_type_cpu/0 dirty_cpu
entitlements: none declared (no .nifkit_entitlements section, no ${G%.so}.entitlements.json)" "" -- inspect "$G"
        check "nk_test_good add" 0 "42" "" -- call "$G" add 40 2
        check "nk_test_good add of a bignum is badarg" 1 "" "** exception error: bad argument" -- \
                call "$G" add 40 99999999999999999999
        check "nk_test_good echo" 0 '{ok,[1.5,<<"x">>,#{k => "v"}]}' "" -- call "$G" echo '{ok, [1.5, <<"x">>, #{k => "v"}]}'
        check "nk_test_good raise" 1 "" "** exception error: no case clause matching 7" -- \
                call "$G" raise '{case_clause, 7}'
        check "nk_test_good load info" 0 "[{a,1}]" "" -- call --load-info '[{a,1}]' "$G" load_info
        # No calling process: enif_self() fails and the NIF says so.
        check "nk_test_good self without a caller" 0 "undefined" "" -- call "$G" self
        # ERL_NIF_THR_NORMAL_SCHEDULER is 1, ERL_NIF_THR_DIRTY_CPU_SCHEDULER 2.
        check "nk_test_good on a normal scheduler" 0 "1" "" -- call "$G" thread_type
        check "nk_test_good dirty CPU function on a dirty CPU thread" 0 "2" "" -- call "$G" thread_type_cpu
fi
if [ -n "${NK_TEST_NIF_CRASH:-}" ] && [ -f "$NK_TEST_NIF_CRASH" ]; then
        check "nk_test_crash ok" 0 "ok" "" -- call "$NK_TEST_NIF_CRASH" ok
        check "nk_test_crash crash exits 2" 2 "" "nifkit: host for $NK_TEST_NIF_CRASH killed by signal 11 (SIGSEGV)" -- \
                call "$NK_TEST_NIF_CRASH" crash
fi
if [ -n "${NK_TEST_NIF_LOADFAIL:-}" ] && [ -f "$NK_TEST_NIF_LOADFAIL" ]; then
        check "nk_test_loadfail exits 2" 2 "" "nifkit: $NK_TEST_NIF_LOADFAIL: load() returned 1" -- \
                call "$NK_TEST_NIF_LOADFAIL" ok
        # inspect reads nif_init's table and runs no load() unless given its argument.
        check "inspect runs no load()" 0 "module nk_test_loadfail
ok/0
entitlements: none declared (no .nifkit_entitlements section, no ${NK_TEST_NIF_LOADFAIL%.so}.entitlements.json)" "" -- inspect "$NK_TEST_NIF_LOADFAIL"
        check "inspect --load-info runs load()" 2 "" "nifkit: $NK_TEST_NIF_LOADFAIL: load() returned 1" -- \
                inspect --load-info '[]' "$NK_TEST_NIF_LOADFAIL"
fi
if [ -n "${NK_TEST_NIF_GOOD:-}" ] && [ -f "$NK_TEST_NIF_GOOD" ]; then
        # max_args_bytes bounds a call's arguments only: a load_info far
        # above it still loads, small arguments pass, large ones are refused
        # naming the limit.
        printf '{"nifkit_policy": 1, "cgroup": "best-effort", "limits": {"max_args_bytes": 16}}\n' >"$tmp/small.json"
        check "max_args_bytes spares load_info" 0 "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]" "" -- call \
                --policy "$tmp/small.json" --load-info '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]' \
                "$NK_TEST_NIF_GOOD" load_info
        check "small arguments pass max_args_bytes" 0 "1" "" -- call --policy "$tmp/small.json" "$NK_TEST_NIF_GOOD" echo 1
        check "large arguments are refused by name" 2 "" \
                "nifkit: the arguments of echo/1 are 47 bytes as ETF, above max_args_bytes (16)" -- \
                call --policy "$tmp/small.json" "$NK_TEST_NIF_GOOD" echo '<<"a binary above sixteen bytes as ETF">>'
fi
if [ -n "${NK_TEST_NIF_UNDEFINED:-}" ] && [ -f "$NK_TEST_NIF_UNDEFINED" ]; then
        # Every missing symbol named, with the library that needs it.
        check "a library with undefined symbols exits 2" 2 "" "nifkit: $NK_TEST_NIF_UNDEFINED: undefined symbols: \
$NK_TEST_NIF_UNDEFINED needs driver_output, nk_no_such_function (a NIF finds the erl_nif API, the driver API \
outside ports and the libraries beam.smp links; nothing else)" -- call "$NK_TEST_NIF_UNDEFINED" ok
fi
if [ -n "${NK_TEST_NIF_DRIVER:-}" ] && [ -f "$NK_TEST_NIF_DRIVER" ]; then
        # What BEAM answers: erl_errno_id names errnos in lower case and
        # "unknown" otherwise; a driver binary counts its references.
        check "the driver API outside ports, and beam.smp's zlib" 0 "{{enoent,eacces,unknown},21,true,3,zlib}" "" -- \
                call "$NK_TEST_NIF_DRIVER" check
fi
if [ -n "${NK_TEST_NIF_NOINIT:-}" ] && [ -f "$NK_TEST_NIF_NOINIT" ]; then
        check "a library without nif_init exits 2" 2 "" "nifkit: $NK_TEST_NIF_NOINIT: no nif_init symbol" -- \
                call "$NK_TEST_NIF_NOINIT" f
fi
if [ -n "${NK_TEST_NIF_NOTELF:-}" ] && [ -f "$NK_TEST_NIF_NOTELF" ]; then
        check "a file that is not a library exits 2 naming it" 2 "" "*" -- inspect "$NK_TEST_NIF_NOTELF"
        count=$((count + 1))
        if ! grep -qF "$NK_TEST_NIF_NOTELF" "$tmp/err"; then
                failures=$((failures + 1))
                echo "FAIL: the message does not name $NK_TEST_NIF_NOTELF: $(cat "$tmp/err")"
        fi
fi

echo "$((count - failures))/$count passed"
[ "$failures" -eq 0 ]
