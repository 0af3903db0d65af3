#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The project's binaries work inside the guest: `nifkit call` runs Debian's
# jiffy NIF through nifkit-host (NIFKIT and NIFKIT_HOST name them).
set -u
. "$(dirname "$0")/lib.sh"

if [ -z "${NIFKIT:-}" ] || [ ! -x "$NIFKIT" ]; then
        echo "SKIP: NIFKIT does not name a built nifkit tool"
        exit 77
fi
jiffy_dir=$(erl -noshell -eval 'case code:lib_dir(jiffy) of {error, _} -> ok; D -> io:format("~s", [D]) end, halt().')
if [ -z "$jiffy_dir" ] || [ ! -f "$jiffy_dir/priv/jiffy.so" ]; then
        echo "SKIP: jiffy is not installed (erlang-jiffy)"
        exit 77
fi
jiffy=$jiffy_dir/priv/jiffy.so
echo "uid $(id -u), $NIFKIT on $jiffy"

# call WANT ARGS...: stdout and status 0 must match.
call() {
        local want=$1 out rc
        shift
        out=$("$NIFKIT" call "$jiffy" "$@" 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then
                ok "nifkit call $* -> $out"
        else
                fail "nifkit call $*: status $rc, output: $out (want $want)"
        fi
}
call '[1,2]' nif_decode_init '<<"[1,2]">>' '[]'
call '#{<<"a">> => [true,null,1.5,<<"x">>]}' nif_decode_init '<<"{\"a\":[true,null,1.5,\"x\"]}">>' '[return_maps]'
call '[<<"{\"a\":1}">>]' nif_encode_init '#{a => 1}' '[]'
out=$("$NIFKIT" call "$jiffy" nif_decode_init 1 '[]' 2>&1)
rc=$?
check "badarg exits 1 ($rc)" [ "$rc" -eq 1 ]
check "badarg comes back as an exception: $out" [ "$out" = "** exception error: bad argument" ]

finish
