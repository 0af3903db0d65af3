#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Module upgrade and purge against the real BEAM: nk_upgrade_test.erl runs
# a library that records its callbacks (upgrade_nif.c) once loaded by BEAM
# itself and once wrapped; the two records must be the same, byte for
# byte. Then for the build without an upgrade callback. Then jiffy,
# wrapped, reloaded and purged while processes call it.
#
# Environment: NIFKIT_PROXY, NIFKIT_HOST, NIFKIT_WRAP, NK_UPG_NIF,
# NK_UPG_NIF_NOUPGRADE.
set -u
export ERL_CRASH_DUMP_SECONDS=0
. "$(dirname "$0")/../lib/tap.sh"
if [ -z "${NIFKIT_PROXY:-}" ] || [ ! -f "$NIFKIT_PROXY" ]; then
        echo "1..0 # SKIP no proxy NIF built"
        exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
wrap=${NIFKIT_WRAP:-$here/../../scripts/nifkit-wrap-dev}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-upgrade.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unshare -U true 2>/dev/null || export NIFKIT_UNSANDBOXED_DEVELOPMENT=1
erlc -o "$tmp" "$here/nk_upgrade_test.erl" || exit 1
policy='{"nifkit_policy": 1, "cgroup": "best-effort", "limits": {"memory_mb": 256}}'

for variant in upgrade noupgrade; do
        case $variant in
        upgrade) lib=$NK_UPG_NIF ;;
        noupgrade) lib=$NK_UPG_NIF_NOUPGRADE ;;
        esac
        mkdir -p "$tmp/$variant/real" "$tmp/$variant/wrapped"
        cp "$lib" "$tmp/$variant/real/nk_upg.so"
        "$wrap" "$NIFKIT_PROXY" "$lib" "$tmp/$variant/wrapped/nk_upg.so"
        echo "$policy" >"$tmp/$variant/wrapped/nk_upg.policy.json"
        for side in real wrapped; do
                # BEAM's warning reports (with their times) go elsewhere:
                # only the record is compared.
                timeout 120 erl -noshell -pa "$tmp" -eval \
                        "nk_upgrade_test:main([\"$tmp/$variant/$side/nk_upg\"])" \
                        >"$tmp/$variant/$side.log" 2>"$tmp/$variant/$side.err"
                echo "# $variant, $side: exit status $?"
                sed -n '/^\[{load1/,/]\.$/p' "$tmp/$variant/$side.log" >"$tmp/$variant/$side.out"
                sed 's/^/#   /' "$tmp/$variant/$side.out"
        done
        check "$variant: BEAM printed a record" grep -q 'load1' "$tmp/$variant/real.out"
        if cmp -s "$tmp/$variant/real.out" "$tmp/$variant/wrapped.out"; then
                ok "$variant: load, upgrade, purge and reload through the proxy are BEAM's, callback for callback"
        else
                not_ok "$variant: load, upgrade, purge and reload through the proxy are BEAM's, callback for callback"
                diff "$tmp/$variant/real.out" "$tmp/$variant/wrapped.out" | sed 's/^/# /'
                sed 's/^/# stderr: /' "$tmp/$variant/wrapped.err"
        fi
done
check "the upgrade ran with the old instance's priv data, and the old one's unload at its purge" \
        grep -q '{upgrade,2,1,2}' "$tmp/upgrade/real.out"
check "a library without upgrade() is refused in BEAM's words" \
        grep -q 'Upgrade not supported by this NIF library.' "$tmp/noupgrade/wrapped.out"

# jiffy reloaded under load, wrapped
jiffy=$(erl -noshell -eval 'case code:lib_dir(jiffy) of {error, _} -> ok; D -> io:format("~s", [D]) end, halt().')
if [ -n "$jiffy" ]; then
        cp -r "$jiffy" "$tmp/jiffy"
        "$wrap" "$NIFKIT_PROXY" "$jiffy/priv/jiffy.so" "$tmp/jiffy/priv/jiffy.so"
        echo "$policy" >"$tmp/jiffy/priv/jiffy.policy.json"
        timeout 120 erl -noshell -pa "$tmp/jiffy/ebin" "$tmp" -eval 'nk_upgrade_test:jiffy_reload([])' \
                >"$tmp/jiffy.out" 2>"$tmp/jiffy.err"
        sed 's/^/# /' "$tmp/jiffy.out"
        check "jiffy, wrapped, is reloaded and purged three times under load" \
                grep -qx 'reloads=\[purged,purged,purged\]' "$tmp/jiffy.out"
        check "every call answered" sh -c "grep -qx 'calls_ok=true' '$tmp/jiffy.out' && grep -qx 'errors=0' '$tmp/jiffy.out'"
        check "and it answers after" grep -qx 'after=true' "$tmp/jiffy.out"
        grep -v '^$' "$tmp/jiffy.err" | head -5 | sed 's/^/# stderr: /'
else
        ok "jiffy reloaded under load # SKIP erlang-jiffy is not installed"
fi
tap_end
