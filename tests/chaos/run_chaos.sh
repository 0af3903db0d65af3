#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The chaos suite: tests/chaos/nk_chaos.erl in a real VM against
# tests/compat/res_nif.c wrapped under LAUNCHER, with a call timeout of a
# day (a death must end every call by itself, not a timeout), then a check
# that no host outlives the VM.
#
#   run_chaos.sh LAUNCHER [SECONDS [CALLS [CALLERS]]]
#
# Environment: NIFKIT_PROXY, NIFKIT_HOST, NIFKIT_WRAP, NK_RES_NIF;
# NK_CHAOS_SECONDS, NK_CHAOS_CALLS, NK_CHAOS_CALLERS stand in for the
# arguments (defaults 60 s, no call limit, 16 callers).
set -eu
export ERL_CRASH_DUMP_SECONDS=0
launcher=${1:?usage: run_chaos.sh LAUNCHER [SECONDS [CALLS [CALLERS]]]}
seconds=${2:-${NK_CHAOS_SECONDS:-60}}
calls=${3:-${NK_CHAOS_CALLS:-1000000000}}
callers=${4:-${NK_CHAOS_CALLERS:-16}}

if [ -z "${NIFKIT_PROXY:-}" ] || [ ! -f "$NIFKIT_PROXY" ]; then
        echo "SKIP: no proxy NIF built"
        exit 77
fi
if [ "$launcher" = bwrap ] && ! command -v bwrap >/dev/null; then
        echo "SKIP: bubblewrap is not installed"
        exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
compat=$here/../compat
wrap=${NIFKIT_WRAP:-$here/../../scripts/nifkit-wrap-dev}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-chaos.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# bubblewrap binds the library from here as the host's unprivileged user.
chmod 755 "$tmp"

cat >"$tmp/nk_res_nif.policy.json" <<JSON
{
  "nifkit_policy": 1,
  "launcher": "$launcher",
  "cgroup": "best-effort",
  "limits": {"memory_mb": 512, "pids": 16, "call_timeout_ms": 86400000, "max_new_atoms": 100000},
  "restart": {"max_restarts": 1000, "period_s": 1},
  "workers": 4
}
JSON
"$wrap" "$NIFKIT_PROXY" "$NK_RES_NIF" "$tmp/nk_res_nif.so"
erlc -o "$tmp" "$compat/nk_res_nif.erl" "$here/nk_chaos.erl"

status=0
NK_RES_NIF_DIR=$tmp erl -noshell -pa "$tmp" -run nk_chaos main "$seconds" "$calls" "$callers" "$tmp/hosts" \
        2>"$tmp/stderr" || status=$?
# Restarts are reported on stderr, one line each: show the first and the
# last few, not thousands.
head -n 5 "$tmp/stderr"
echo "... ($(wc -l <"$tmp/stderr") lines on stderr)"
tail -n 5 "$tmp/stderr"
if [ "$status" != 0 ]; then
        # Whatever the VM said beyond the restarts: the reason it failed.
        grep -v -e 'died (crashed), host [0-9]* started' "$tmp/stderr" >&2 || true
        exit "$status"
fi

# No host outlives the VM.
i=0
while [ $i -lt 50 ]; do
        alive=
        while read -r pid; do
                if kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = nifkit-host ]; then
                        alive="$alive $pid"
                fi
        done <"$tmp/hosts"
        [ -n "$alive" ] || break
        sleep 0.1
        i=$((i + 1))
done
if [ -n "$alive" ]; then
        echo "FAIL: hosts outlived the VM:$alive" >&2
        exit 1
fi
echo "chaos $launcher: ok; $(wc -l <"$tmp/hosts") hosts seen, none left after the VM"
