#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run-fuzz.sh [SECONDS] [SOURCE...]
#
# Builds a fuzz target with clang's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs it for SECONDS (default 60) over a
# copy of its seed corpus. FUZZ_TARGET names it: fuzz_etf (default, the
# host's ETF codec, seeds in corpus/) or fuzz_runtime_msg (the runtime's
# parsing of what a host sends, seeds in corpus_runtime_msg/). Fails on any crash, leak, sanitizer report or
# slow input; the input that caused it is left in the work directory and
# its path printed. Exits 77 (skipped) where clang or libFuzzer is missing.
#
# SOURCE... are the host's C sources the target links (meson passes the
# exact list libnkhost is built from); without them every hosts/*.c but
# main.c and every common/*.c is used.
#
# Environment: CLANG (default clang), FUZZ_WORKDIR (default: a new
# directory under ${TMPDIR:-/tmp}, removed on success).
set -eu

seconds=${1:-60}
[ $# -gt 0 ] && shift

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
clang=${CLANG:-clang}
target=${FUZZ_TARGET:-fuzz_etf}
case $target in
fuzz_etf) seeds=$here/corpus ;;
*) seeds=$here/corpus_${target#fuzz_} ;;
esac
[ -f "$here/$target.c" ] || { echo "FAIL: no fuzz target $target"; exit 1; }

skip() {
        echo "SKIP: $*"
        exit 77
}

command -v "$clang" >/dev/null 2>&1 || skip "$clang not found (install clang for libFuzzer)"
command -v erl >/dev/null 2>&1 || skip "erl not found: erl_nif.h is located through it"

work=${FUZZ_WORKDIR:-}
if [ -z "$work" ]; then
        work=$(mktemp -d "${TMPDIR:-/tmp}/$target.XXXXXX")
        own_work=1
else
        mkdir -p "$work"
        own_work=0
fi

cat > "$work/probe.c" <<'PROBE'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void) d; (void) n; return 0; }
PROBE
if ! "$clang" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" 2>"$work/probe.log"; then
        [ "$own_work" = 1 ] && rm -rf "$work"
        skip "$clang cannot build with -fsanitize=fuzzer,address,undefined (libFuzzer/compiler-rt missing)"
fi

erl_root=$(erl -noshell -eval 'io:format("~s", [code:root_dir()]), halt().')

if [ $# -eq 0 ]; then
        set --
        for f in "$top"/hosts/*.c "$top"/common/*.c; do
                [ "$(basename "$f")" = main.c ] || set -- "$@" "$f"
        done
fi

echo "building $target in $work"
"$clang" -std=gnu11 -g -O1 -D_GNU_SOURCE \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -fno-omit-frame-pointer -pthread \
        -I"$top/hosts" -I"$top/common" -I"$top/runtime" -I"$top/runtime/include" \
        -I"$erl_root/usr/include" \
        -DNK_OTP_RELEASE='"fuzz"' \
        "$here/$target.c" "$@" -o "$work/$target" -ldl -lm

mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"

echo "fuzzing for $seconds s"
status=0
# New inputs go to the work copy: the committed seeds stay as they are.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
"$work/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" \
        "$work/corpus" > "$work/fuzz.log" 2>&1 || status=$?
tail -n 30 "$work/fuzz.log"

if [ "$status" -ne 0 ]; then
        echo "FAIL: $target exited with $status; log and reproducer in $work:"
        ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true
        exit 1
fi
[ "$own_work" = 1 ] && rm -rf "$work"
echo "PASS: no crash, leak or timeout in $seconds s"
exit 0
