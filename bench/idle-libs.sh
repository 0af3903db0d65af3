#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# What idle libraries cost: N distinct NIF libraries (bench/trivial_nif.c
# built once per module name) loaded in one VM, first as they are, then each
# wrapped (one host per library), and nothing called for a while. Prints,
# as markdown for docs/BENCHMARKS.md, the CPU the VM and its hosts used over
# the measured window, in CPU-seconds per second, with the threads and
# descriptors of each VM and the hosts' memory.
#
#   bench/idle-libs.sh [BUILDDIR]        (default: build)
#
# NK_IDLE_N libraries (1000), NK_IDLE_WARM_S seconds of idle before the
# window (150: the heartbeat's interval has grown to its longest by then),
# NK_IDLE_S seconds measured (128).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${NK_BENCH_BUILD:-${1:-build}}
build=$(cd "$build" && pwd)
nifkit="$build/runtime/cli/nifkit"
export NIFKIT_HOST="$build/hosts/nifkit-host"
n=${NK_IDLE_N:-1000}
warm=${NK_IDLE_WARM_S:-150}
window=${NK_IDLE_S:-128}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nifkit-idle-libs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export NIFKIT_STATUS_DIR="$tmp/status"
mkdir -p "$tmp/plain" "$tmp/wrapped" "$tmp/status" "$tmp/ebin"
# Six descriptors per library in the VM, and the hosts' own.
ulimit -n 65536 2>/dev/null || true

inc=$(erl -noshell -eval 'io:format("~s/usr/include", [code:root_dir()]), halt().')
i=0
while [ $i -lt "$n" ]; do
        echo "nk_idle_$i"
        i=$((i + 1))
done >"$tmp/modules"
xargs -P "$(nproc)" -I @ cc -shared -fPIC -O2 -I"$inc" -DNK_MODULE=@ -o "$tmp/plain/@.so" \
        "$src/bench/trivial_nif.c" <"$tmp/modules"
while read -r m; do
        "$nifkit" wrap --policy "$src/demo/policy.json" "$tmp/plain/$m.so" -o "$tmp/wrapped" >/dev/null
done <"$tmp/modules"
erlc -o "$tmp/ebin" "$src/bench/idle_libs.erl"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs ($cpu), $(uname -sr), $n libraries," \
        "${warm} s idle before a ${window} s window, load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| $n idle libraries | load s | VM CPU-s/s | hosts CPU-s/s | VM threads | VM fds | hosts | host RSS KiB (mean) | host PSS KiB (mean) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for kind in plain wrapped; do
        erl -noshell -pa "$tmp/ebin" -run idle_libs main "$kind" "$tmp/$kind" "$tmp/modules" "$warm" "$window"
done
