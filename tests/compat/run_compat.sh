#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Runs one compatibility suite: the corpus tests/compat/corpus/SUITE.terms
# through the library loaded normally (expected), then through the same
# library wrapped by the proxy NIF (actual), and compares the two.
#
#   run_compat.sh SUITE                 expected vs actual
#   run_compat.sh --selftest SUITE      the harness alone: two expected runs
#                                       must agree, a tampered one must not
#   run_compat.sh --vm FUN SUITE        runs nk_compat:FUN/0 in a VM with the
#                                       suite's library wrapped: crash (a NIF
#                                       crash costs an exception, not the VM),
#                                       lifecycle (reload, purge, load again)
#
# Environment: NIFKIT_PROXY (the built proxy NIF), NIFKIT_HOST (the built
# host, read by the proxy), NIFKIT_WRAP (scripts/nifkit-wrap-dev),
# NK_COMPAT_PARALLEL (run the corpus that many times at once behind the
# proxy; every run must agree). Without a proxy the expected side still
# runs and the test is skipped (exit 77).
#
# The library's application directory is copied to a temporary directory
# named like the original (so code:priv_dir/1 and p1_nif_utils find it
# first on the code path); there each wrapped .so becomes a proxy copy with
# the real library beside it. The Erlang modules are copied byte for byte.
set -eu
# A VM that fails writes no crash dump into the working directory.
export ERL_CRASH_DUMP_SECONDS=0

mode=compare
case ${1:-} in
--selftest) mode=selftest; shift ;;
--vm) mode=vm; fun=${2:?--vm needs a function}; shift 2 ;;
esac
suite=${1:?usage: run_compat.sh [--selftest | --vm FUN] SUITE}
data_grant=

# module whose application is wrapped, and the NIF libraries wrapped in it
case $suite in
jiffy) mod=jiffy; sos="jiffy.so"; mods="jiffy" ;;
fast_yaml) mod=fast_yaml; sos="fast_yaml.so"; mods="fast_yaml" ;;
fxml | fxml_stream) mod=$suite; sos="fxml.so fxml_stream.so"; mods="fxml fxml_stream" ;;
stringprep) mod=stringprep; sos="stringprep.so"; mods="stringprep" ;;
crypto | crypto_pk) mod=crypto; sos="crypto.so"; mods="crypto" ;;
ezlib) mod=ezlib; sos="ezlib.so"; mods="ezlib" ;;
iconv) mod=iconv; sos="iconv.so"; mods="iconv" ;;
mqtree) mod=mqtree; sos="mqtree.so"; mods="mqtree" ;;
xmpp) mod=jid; sos="jid.so xmpp_uri.so xmpp_lang.so"; mods="jid xmpp_uri xmpp_lang" ;;
p1_sha) mod=p1_sha; sos="p1_sha.so"; mods="p1_sha" ;;
fast_tls) mod=fast_tls; sos="fast_tls.so"; mods="fast_tls"; data_grant=read ;;
asn1rt_nif) mod=asn1rt_nif; sos="asn1rt_nif.so"; mods="asn1rt_nif" ;;
bitcask) mod=bitcask; sos="bitcask.so"; mods="bitcask_nifs"; data_grant=create ;;
*) echo "run_compat.sh: unknown suite '$suite'" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus/$suite.terms
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-compat-$suite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/harness" "$tmp/data"
erlc -o "$tmp/harness" "$here/nk_compat.erl" "$here/nk_compat_apps.erl" "$here/nk_test_hosts.erl"
# Where nk_compat_apps keeps stores and certificates, for both runs; the
# wrapped run's policy grants it to suites that need it (data_grant).
export NK_COMPAT_DATA="$tmp/data"

run() { # out [env…] — one VM running the corpus
        out=$1
        shift
        env "$@" erl -noshell -pa "$tmp/harness" ${codepath:-} -run nk_compat run "$corpus" "$out"
}
check() { # expected actual
        erl -noshell -pa "$tmp/harness" -run nk_compat check "$corpus" "$1" "$2"
}

codepath=
if [ $mode != vm ]; then
        run "$tmp/expected.bin" NK_COMPAT_PARALLEL=1
fi

if [ $mode = selftest ]; then
        run "$tmp/again.bin" NK_COMPAT_PARALLEL=1
        check "$tmp/expected.bin" "$tmp/again.bin"
        # The checker must see a difference in the last result.
        erl -noshell -eval "
                {ok, B} = file:read_file(\"$tmp/again.bin\"),
                L = binary_to_term(B),
                T = lists:droplast(L) ++ [{ok, tampered}],
                ok = file:write_file(\"$tmp/tampered.bin\", term_to_binary(T)),
                halt()."
        if check "$tmp/expected.bin" "$tmp/tampered.bin" >"$tmp/tampered.out" 2>&1; then
                echo "FAIL: the checker accepted a tampered result" >&2
                exit 1
        fi
        grep -q "DIFFERENCE in call" "$tmp/tampered.out" || {
                echo "FAIL: the checker did not print the difference" >&2
                cat "$tmp/tampered.out" >&2
                exit 1
        }
        echo "selftest $suite: deterministic, and a tampered result is caught"
        exit 0
fi

if [ -z "${NIFKIT_PROXY:-}" ] || [ ! -f "$NIFKIT_PROXY" ]; then
        echo "SKIP: no proxy NIF built (NIFKIT_PROXY='${NIFKIT_PROXY:-}'); expected side only"
        exit 77
fi
wrap=${NIFKIT_WRAP:-$here/../../scripts/nifkit-wrap-dev}

appdir=$(erl -noshell -eval "io:format(\"~s\", [filename:dirname(filename:dirname(code:which($mod)))]), halt().")
overlay=$tmp/overlay/$(basename "$appdir")
mkdir -p "$overlay"
cp -R "$appdir/ebin" "$overlay/"
cp -R "$appdir/priv" "$overlay/"
# The host runs under the library's shipped policy, beside the proxy. This
# suite compares results, not limits (the integration suite tests those), so
# cgroup is relaxed to best-effort: where the machine has no cgroup v2
# controllers the host then falls back to rlimits, and the proxy says so.
policies=$here/../../policies
for so in $sos; do
        found=$(cd "$overlay/priv" && find . -name "$so" -type f)
        [ -n "$found" ] || { echo "run_compat.sh: no $so under $appdir/priv" >&2; exit 1; }
        "$wrap" "$NIFKIT_PROXY" "$appdir/priv/$found" "$overlay/priv/$found"
        policy=$policies/$(basename "$so" .so).json
        [ -f "$policy" ] || policy=$policies/$suite.json
        [ -f "$policy" ] || policy=$policies/default.json
        sed 's/"cgroup"[[:space:]]*:[[:space:]]*"required"/"cgroup": "best-effort"/' "$policy" \
                >"$overlay/priv/${found%.so}.policy.json"
        if [ -n "$data_grant" ]; then
                python3 - "$overlay/priv/${found%.so}.policy.json" "$NK_COMPAT_DATA" "$data_grant" <<'PY'
import json, sys
path, data, access = sys.argv[1:]
with open(path) as f:
    p = json.load(f)
p.setdefault("files", []).append({"path": data, "access": access})
with open(path, "w") as f:
    json.dump(p, f, indent=2)
PY
        fi
        echo "$so: policy $(basename "$policy"), cgroup best-effort${data_grant:+, $data_grant access to $NK_COMPAT_DATA}"
done

codepath="-pa $overlay/ebin"
if [ $mode = vm ]; then
        env NK_COMPAT_OVERLAY="$tmp/overlay" NK_COMPAT_MODULES="$mods" \
                erl -noshell -pa "$tmp/harness" $codepath -run nk_compat "$fun"
        exit $?
fi
run "$tmp/actual.bin" NK_COMPAT_OVERLAY="$tmp/overlay" NK_COMPAT_MODULES="$mods" \
        NK_COMPAT_PARALLEL="${NK_COMPAT_PARALLEL:-1}"
check "$tmp/expected.bin" "$tmp/actual.bin"
