#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The call benchmark (bench/call_bench.erl), printed as markdown for
# docs/BENCHMARKS.md. Run it from the source tree on a built tree:
#
#   bench/run-call-bench.sh [BUILDDIR]          (default: build)
#
# or as `meson test -C BUILDDIR --benchmark call_bench --verbose`, which sets
# NK_BENCH_BUILD. NK_BENCH_N sets the trivial calls per case (100000),
# NK_BENCH_IDLE_S the seconds of the idle measurement (10).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${NK_BENCH_BUILD:-${1:-build}}
build=$(cd "$build" && pwd)
nifkit="$build/runtime/cli/nifkit"
export NIFKIT_HOST="$build/hosts/nifkit-host"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nifkit-call-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The state files of this run's hosts stay out of everyone else's way.
export NIFKIT_STATUS_DIR="$tmp/status"
mkdir -p "$tmp/ebin" "$tmp/wrapped" "$tmp/socket" "$tmp/status"
erlc -o "$tmp/ebin" "$src/bench/call_bench.erl" "$src/bench/trivial_nif.erl"
"$nifkit" wrap --policy "$src/demo/policy.json" "$build/bench/trivial_nif.so" -o "$tmp/wrapped" >/dev/null
# The same policy but for the transport, so that the two compare alone.
sed 's/"workers"/"transport": "socket",\n  "workers"/' "$src/demo/policy.json" >"$tmp/socket.json"
"$nifkit" wrap --policy "$tmp/socket.json" "$build/bench/trivial_nif.so" -o "$tmp/socket" >/dev/null
jiffy=$(erl -noshell -eval 'io:format("~s", [code:lib_dir(jiffy)]), halt().')
cp -r "$jiffy" "$tmp/jiffy"
"$nifkit" wrap --policy "$src/demo/policy.json" "$jiffy/priv/jiffy.so" -o "$tmp/jiffy/priv" >/dev/null

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs ($cpu), $(uname -sr)," \
        "OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo

# The peer nodes' crash dumps, if any, stay in the temporary directory.
cd "$tmp"
NK_BENCH_TRIVIAL_DIR="$build/bench" \
NK_BENCH_WRAPPED_DIR="$tmp/wrapped" \
NK_BENCH_SOCKET_DIR="$tmp/socket" \
NK_BENCH_WRAPPED_JIFFY="$tmp/jiffy/ebin" \
NK_BENCH_PORT="$build/bench/trivial_port" \
NK_BENCH_EBIN="$tmp/ebin" \
        erl -noshell -sname "nkbench$$" -pa "$tmp/ebin" -run call_bench main 2>"$tmp/stderr" || {
        cat "$tmp/stderr" >&2
        exit 1
}
