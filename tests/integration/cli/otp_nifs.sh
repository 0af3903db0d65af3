#!/bin/sh
# Every NIF library installed under OTP's lib directory (every .so that
# defines nif_init) loads in a host and answers `nifkit inspect` with the
# module its nif_init names: what BEAM gives a NIF beside erl_nif (the
# libraries beam.smp links, erl_errno_id, the driver API's threads and
# locks) the host gives it too. Under each launcher that can run here.
# The libraries the project promises to run must all be installed: a
# missing one is a failure, since install-deps installs them.
set -u
: "${NIFKIT:?}" "${NIFKIT_HOST:?}" "${POLICIES:?}"

libdir=$(erl -noshell -eval 'io:format("~s", [code:lib_dir()]), halt().')
fail=0
count=0
ok() { count=$((count + 1)); echo "ok $count - $*"; }
not_ok() { count=$((count + 1)); echo "not ok $count - $*"; fail=1; }

found=$(for f in $(find "$libdir" -name '*.so' -type f | sort); do
        if nm -D --defined-only "$f" 2>/dev/null | grep -q ' nif_init$'; then echo "$f"; fi
done)

for need in jiffy/priv/jiffy.so fast_yaml.so fxml.so fxml_stream.so stringprep.so fast_tls.so p1_sha.so \
            ezlib.so iconv.so mqtree.so jid.so xmpp_uri.so xmpp_lang.so bitcask.so crypto.so asn1rt_nif.so; do
        if echo "$found" | grep -q "/${need#*/}$"; then
                ok "installed: $need"
        else
                not_ok "installed: $need (is its Debian package installed? scripts/install-deps.sh installs it)"
        fi
done

launchers="native"
if command -v bwrap >/dev/null 2>&1 && bwrap --unshare-user --ro-bind / / true 2>/dev/null; then
        launchers="$launchers bwrap"
else
        echo "# bwrap cannot run here: the bwrap launcher is not tried"
fi

for launcher in $launchers; do
        policy=$(mktemp)
        sed "s/\"launcher\": \"native\"/\"launcher\": \"$launcher\"/" "$POLICIES/../tests/integration/sandbox/best-effort.json" \
                >"$policy"
        for so in $found; do
                out=$("$NIFKIT" inspect --policy "$policy" "$so" 2>&1)
                rc=$?
                module=$(echo "$out" | sed -n 's/^module //p')
                # crypto_callback.so's nif_init is a dummy with no functions.
                if [ $rc -eq 0 ] && [ -n "$module" ]; then
                        ok "$launcher: $so is module $module, $(($(echo "$out" | wc -l) - 1)) functions"
                else
                        not_ok "$launcher: $so: exit $rc: $(echo "$out" | head -3)"
                fi
        done
        rm -f "$policy"
done
echo "1..$count"
exit $fail
