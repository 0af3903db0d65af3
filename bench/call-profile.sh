#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Where a trivial wrapped call's time goes: one VM calls the wrapped
# trivial_nif:add(1, 2) in a loop while perf samples the whole machine;
# the samples of the VM and of its host are grouped by the step of the
# call path their function belongs to and turned into nanoseconds per call
# (their share of the samples times the loop's wall time, per call).
#
#   bench/call-profile.sh [BUILDDIR]       (default: build; needs perf)
#
# NK_PROFILE_CALLS sets the calls (default 2000000); NK_PROFILE_TOP=N also
# lists the N functions with the most samples.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
calls=${NK_PROFILE_CALLS:-2000000}
command -v perf >/dev/null || { echo "call-profile: perf is not installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nifkit-call-profile.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export NIFKIT_STATUS_DIR="$tmp/status"
mkdir -p "$tmp/ebin" "$tmp/wrapped" "$tmp/status"
erlc -o "$tmp/ebin" "$src/bench/trivial_nif.erl"
"$build/runtime/cli/nifkit" wrap --policy "$src/demo/policy.json" "$build/bench/trivial_nif.so" \
        -o "$tmp/wrapped" >/dev/null

cat >"$tmp/ebin/loop.erl" <<'EOF'
-module(loop).
-export([run/1]).
run([N]) ->
    Calls = list_to_integer(N),
    3 = trivial_nif:add(1, 2),
    go(100000),
    T0 = erlang:monotonic_time(nanosecond),
    go(Calls),
    T1 = erlang:monotonic_time(nanosecond),
    io:format("~b ~b~n", [Calls, T1 - T0]),
    halt().
go(0) -> ok;
go(N) -> 3 = trivial_nif:add(1, 2), go(N - 1).
EOF
erlc -o "$tmp/ebin" "$tmp/ebin/loop.erl"

NK_BENCH_TRIVIAL_DIR="$tmp/wrapped" perf record -q -a -g -o "$tmp/perf.data" -- \
        erl -noshell -pa "$tmp/ebin" -run loop run "$calls" >"$tmp/loop.out" 2>"$tmp/perf.err"
read -r n wall <"$tmp/loop.out"

perf report -i "$tmp/perf.data" --no-children --sort comm,sym --stdio -q -g none 2>/dev/null >"$tmp/report"
NK_CPUS=$(nproc) awk -v n="$n" -v wall="$wall" -f "$src/bench/call-profile.awk" "$tmp/report"
if [ -n "${NK_PROFILE_TOP:-}" ]; then
        echo
        grep '%' "$tmp/report" | head -n "$NK_PROFILE_TOP"
fi
