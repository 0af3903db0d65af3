#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# meson install, into a scratch destdir, installs what an operator needs,
# and the installed parts work on their own:
#   install.sh BUILD_ROOT PREFIX SOURCE_ROOT
set -u
build=$1 prefix=$2 src=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }
check() { what=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$what"; else not_ok "$what"; sed 's/^/# /' "$tmp/out"; fi; }

if ! meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >"$tmp/install.log" 2>&1; then
        not_ok "meson install"
        sed 's/^/# /' "$tmp/install.log"
        echo "1..$n"
        exit 1
fi
ok "meson install into a destdir"
root=$tmp/root$prefix
app=$(ls -d "$root"/lib/erlang/lib/nifkit-* 2>/dev/null | head -n 1)

check "the tool" test -x "$root/bin/nifkit"
check "the host in the application's priv/" test -x "$app/priv/nifkit-host" -a ! -L "$app/priv/nifkit-host"
check "the proxy in the application's priv/" test -f "$app/priv/nifkit_proxy.so" -a ! -L "$app/priv/nifkit_proxy.so"
# The stable names a wrap records: relative links into this version's priv/.
host_link=$(find "$root" -path '*/nifkit/nifkit-host' -type l)
proxy_link=$(find "$root" -path '*/nifkit/nifkit_proxy.so' -type l)
check "libexecdir/nifkit/nifkit-host is a relative link to it" sh -c \
        "case \$(readlink '$host_link') in /*|'') exit 1 ;; esac; [ '$host_link' -ef '$app/priv/nifkit-host' ]"
check "libdir/nifkit/nifkit_proxy.so is a relative link to it" sh -c \
        "case \$(readlink '$proxy_link') in /*|'') exit 1 ;; esac; [ '$proxy_link' -ef '$app/priv/nifkit_proxy.so' ]"
check "the OTP application's .app" test -f "$app/ebin/nifkit.app"
for m in nifkit nifkit_app nifkit_sup nifkit_events; do
        check "its module $m" test -f "$app/ebin/$m.beam"
done
check "its NIF in priv/" test -f "$app/priv/nifkit_stats.so"
check "the application's version is the project's" grep -q "{vsn, \"${app##*/nifkit-}\"}" "$app/ebin/nifkit.app"
for p in schema default jiffy fast_yaml fxml stringprep crypto; do
        check "policy $p.json in share/nifkit/policies" test -f "$root/share/nifkit/policies/$p.json"
done
check "the installed tool accepts the installed policies" sh -c \
        "cd '$root/share/nifkit/policies' && '$root/bin/nifkit' policy check default.json jiffy.json crypto.json"
check "nifkit(1)" grep -q '^\.TH NIFKIT 1' "$root/share/man/man1/nifkit.1"
check "nifkit-policy(5)" grep -q '^\.TH NIFKIT\\-POLICY 5' "$root/share/man/man5/nifkit-policy.5"
# Every key of the schema is in the page, as the page prints it (a.b, a[].b).
keys=$(/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
def walk(o, p):
    for k, v in o.get("properties", {}).items():
        print(p + k)
        if v.get("type") == "object": walk(v, p + k + ".")
        if v.get("type") == "array" and v.get("items", {}).get("type") == "object": walk(v["items"], p + k + "[].")
walk(s, "")' "$src/policies/schema.json")
missing=
for k in $keys; do
        grep -qxF ".B $(echo "$k" | sed 's/-/\\-/g')" "$root/share/man/man5/nifkit-policy.5" || missing="$missing $k"
done
if [ -z "$missing" ] && [ -n "$keys" ]; then ok "nifkit-policy(5) has every key of schema.json"; else not_ok "nifkit-policy(5) lacks:$missing"; fi
if command -v man >/dev/null 2>&1; then
        check "man renders nifkit-policy(5) without warnings" sh -c \
                "MANWIDTH=80 man -l '$root/share/man/man5/nifkit-policy.5' 2>&1 >/dev/null | (! grep .)"
fi
# The application from the installed tree alone: ERL_LIBS, as rebar3 and mix
# releases or a plain erl find it.
check "application:ensure_all_started(nifkit) from the installed tree" env ERL_LIBS="$root/lib/erlang/lib" \
        erl -noshell -eval '
            {ok, Apps} = application:ensure_all_started(nifkit),
            true = lists:member(nifkit, Apps),
            "'"$app"'/ebin/nifkit.beam" = code:which(nifkit),
            true = is_list(nifkit:stats()),
            ok = nifkit:subscribe(),
            true = is_pid(whereis(nifkit_events)),
            halt(0).'
# libnifkit for C embedders: a program built from the installed header,
# archive and nifkit.pc alone starts a real NIF (the statistics NIF) in a host.
pc_dir=$(dirname "$(find "$root" -name nifkit.pc | head -n 1)")
check "nifkit.pc, the header and libnifkit.a" test -f "$pc_dir/nifkit.pc" -a -f "$root/include/nifkit/nifkit.h" \
        -a -f "$pc_dir/../libnifkit.a"
if command -v pkg-config >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; then
        flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --define-variable=prefix="$root" --cflags --libs nifkit)
        check "a C program builds against them with pkg-config" \
                cc -o "$tmp/embed" "$src/tests/install/embed.c" $flags  # split on purpose
        unshare -U true 2>/dev/null || export NIFKIT_UNSANDBOXED_DEVELOPMENT=1
        check "and starts a NIF library in a host" sh -c \
                "'$tmp/embed' '$src/demo/policy.json' '$app/priv/nifkit-host' '$app/priv/nifkit_stats.so' >'$tmp/embed.out' &&
                 grep -qx 'is_nif(nif)=1 is_nif(host)=0' '$tmp/embed.out' && grep -q '^module=nifkit functions=[1-9]' '$tmp/embed.out'"
        sed 's/^/# /' "$tmp/embed.out" 2>/dev/null
fi
echo "1..$n"
exit $fail
