#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# With user namespaces switched off (user.max_user_namespaces=0, as some
# hardened distributions and container hosts ship), `nifkit doctor` says
# so, names the sysctl and its fix, and finds that creating a host's
# namespaces really fails; with the value back, it passes again. Root only:
# it changes the guest's sysctl, and puts it back.
set -u
. "$(dirname "$0")/lib.sh"

if [ -z "${NIFKIT:-}" ] || [ ! -x "$NIFKIT" ]; then
        echo "SKIP: NIFKIT does not name a built nifkit tool"
        exit 77
fi
knob=/proc/sys/user/max_user_namespaces
old=$(cat "$knob")
restore() { echo "$old" >"$knob"; }
trap restore EXIT
echo 0 >"$knob" || { echo "FAIL: cannot set $knob"; exit 1; }

out=$("$NIFKIT" doctor 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
has() { printf '%s\n' "$out" | grep -q -- "$1"; }
check "doctor exits 1 when no user namespace may be made (status $rc)" [ "$rc" -eq 1 ]
check "it names the sysctl" has 'FAIL  user namespaces  user.max_user_namespaces is 0'
check "and the fix" has 'fix: sysctl -w user.max_user_namespaces='
check "creating a host's namespaces really fails, and why" has 'FAIL  namespaces .*No space left on device'
check "the last line says hosts cannot start" has '^Sandboxed hosts cannot start here: 2 problems above.$'

# A host start meets the same wall, and its error says the cause and the fix.
jiffy_dir=$(erl -noshell -eval 'case code:lib_dir(jiffy) of {error, _} -> ok; D -> io:format("~s", [D]) end, halt().')
if [ -n "$jiffy_dir" ] && [ -f "$jiffy_dir/priv/jiffy.so" ]; then
        out=$("$NIFKIT" call "$jiffy_dir/priv/jiffy.so" nif_decode_init '<<"[1]">>' '[]' 2>&1)
        rc=$?
        echo "$out" | sed 's/^/# /'
        check "a start fails as a host failure (status $rc)" [ "$rc" -eq 2 ]
        check "its error names the sysctl" has 'user namespaces are switched off here (user.max_user_namespaces is 0)'
        check "and the fix" has 'fix: sysctl -w user.max_user_namespaces=15000'
else
        echo "skip: jiffy is not installed (erlang-jiffy): the start's message is not checked"
fi

restore
out=$("$NIFKIT" doctor 2>&1)
rc=$?
check "with the value back, doctor passes (status $rc)" [ "$rc" -eq 0 ]
finish
