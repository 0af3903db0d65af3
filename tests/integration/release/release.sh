#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# nifkit wrap-release / unwrap-release on real releases: a rebar3 release
# (Debian's rebar3) of a small application that depends on Debian's jiffy,
# and a mix release (Debian's elixir) of one that uses it too. Each
# release's own start script boots it; its NIF must answer from a host that
# nifkit status shows; unwrap-release must give back every byte.
#
# Environment (set by meson): NIFKIT, NIFKIT_HOST, NIFKIT_PROXY (the
# tool's build finds them by itself; the variables say which they are),
# NK_TEST_NIF_GOOD, NK_TEST_NIF_NOINIT, NK_TEST_NIF_NOTELF, NK_BAD_POLICY.
# Exit 77 (skipped) when erl, jiffy, rebar3 or elixir is missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../../lib/tap.sh"
skip() { echo "ok - $1 # SKIP $2"; }

tap_need_vars NIFKIT NIFKIT_HOST NIFKIT_PROXY NK_TEST_NIF_GOOD NK_TEST_NIF_NOINIT NK_TEST_NIF_NOTELF NK_BAD_POLICY
tap_need_jiffy

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nifkit-release-test.XXXXXX")
cleanup() {
        [ -n "${rel:-}" ] && [ -x "$rel/bin/myapp" ] && "$rel/bin/myapp" stop >/dev/null 2>&1
        [ -n "${mrel:-}" ] && [ -x "$mrel/bin/nifuser" ] && "$mrel/bin/nifuser" stop >/dev/null 2>&1
        rm -rf "$tmp"
}
trap cleanup EXIT
# rebar3 and mix keep caches under HOME: this test's own, and no network.
export HOME="$tmp/home" MIX_HOME="$tmp/home/.mix" HEX_OFFLINE=1 REBAR_OFFLINE=1
export NIFKIT_STATUS_DIR="$tmp/status"
mkdir -p "$HOME"
proxy_bin=$NIFKIT_PROXY
unset NIFKIT_HOST NIFKIT_PROXY
if ! unshare -U true 2>/dev/null; then
        echo "# this machine cannot create user namespaces: hosts run unsandboxed"
        export NIFKIT_UNSANDBOXED_DEVELOPMENT=1
fi
mkdir -p "$tmp/policies"
cp "$here/../wrap/policy.json" "$tmp/policies/jiffy.json"

# Every file of a tree with its type, mode, size, inode, link target and
# content hash: two equal snapshots are the same tree, byte for byte.
snapshot() {
        (cd "$1" && find . -printf '%p %y %m %s %i %l\n' | sort && find . -type f -exec md5sum {} + | sort)
}
table_has() {
        # table_has FILE APP LIBRARY RESULT
        grep -q "^$2 *$3 .* $4\$" "$1"
}

# ---- a rebar3 release ----
if command -v rebar3 >/dev/null 2>&1; then
        app="$tmp/myapp"
        mkdir -p "$app/src" "$app/priv/native"
        cat >"$app/rebar.config" <<'EOT'
{erl_opts, [debug_info]}.
{deps, []}.
{relx, [{release, {myapp, "0.1.0"}, [myapp, jiffy, sasl]},
        {mode, prod}, {include_erts, true}, {extended_start_script, true}]}.
EOT
        cat >"$app/src/myapp.app.src" <<'EOT'
{application, myapp, [{description, "uses jiffy"}, {vsn, "0.1.0"}, {registered, []},
                      {applications, [kernel, stdlib, jiffy]}, {env, []}]}.
EOT
        cat >"$app/src/myapp.erl" <<'EOT'
-module(myapp).
-export([roundtrip/1]).
roundtrip(T) -> jiffy:decode(jiffy:encode(T), [return_maps]).
EOT
        # A release's priv/ holds more than NIFs: a library without nif_init
        # and a .so that is no ELF file are left alone and said so.
        cp "$NK_TEST_NIF_NOINIT" "$app/priv/native/helper.so"
        cp "$NK_TEST_NIF_NOTELF" "$app/priv/script.so"
        (cd "$app" && rebar3 release) >"$tmp/rebar3.log" 2>&1
        rel="$app/_build/default/rel/myapp"
        if [ ! -x "$rel/bin/myapp" ]; then
                not_ok "rebar3 release builds the release"
                sed 's/^/# rebar3: /' "$tmp/rebar3.log"
                rel=
        fi
else
        skip "the rebar3 release" "rebar3 is not installed (scripts/install-deps.sh)"
        rel=
fi

if [ -n "$rel" ]; then
        cp -a "$rel" "$tmp/pristine"
        before=$(snapshot "$rel")
        lib_before=$(snapshot "$rel/lib")
        inode=$(stat -c %i "$rel/lib/jiffy-1.1.1/priv/jiffy.so")

        "$NIFKIT" wrap-release --dry-run --policies "$tmp/policies" "$rel" >"$tmp/out" 2>&1
        sed 's/^/# /' "$tmp/out"
        check "--dry-run says it would wrap jiffy" table_has "$tmp/out" jiffy lib/jiffy-1.1.1/priv/jiffy.so "would wrap"
        check "and changes nothing" test "$before" = "$(snapshot "$rel")"

        "$NIFKIT" wrap-release --policies "$tmp/policies" "$rel" >"$tmp/out" 2>&1
        rc=$?
        sed 's/^/# /' "$tmp/out"
        check "wrap-release wraps the rebar3 release" test $rc -eq 0
        check "its table has jiffy, wrapped with jiffy.json" \
                grep -q "^jiffy *lib/jiffy-1.1.1/priv/jiffy.so *$tmp/policies/jiffy.json *wrapped\$" "$tmp/out"
        check "a library without nif_init is skipped and said so" \
                table_has "$tmp/out" myapp lib/myapp-0.1.0/priv/native/helper.so "skipped: not a NIF (no nif_init)"
        check "a .so that is not ELF is skipped and said so" \
                table_has "$tmp/out" myapp lib/myapp-0.1.0/priv/script.so "skipped: not an ELF file"
        check "jiffy.so is the proxy" cmp -s "$proxy_bin" "$rel/lib/jiffy-1.1.1/priv/jiffy.so"
        check "the original is jiffy.real.so, the very same file" \
                test "$(stat -c %i "$rel/lib/jiffy-1.1.1/priv/jiffy.real.so")" = "$inode"
        check "the original's bytes are jiffy.real.so's" \
                cmp -s "$tmp/pristine/lib/jiffy-1.1.1/priv/jiffy.so" "$rel/lib/jiffy-1.1.1/priv/jiffy.real.so"
        check "the policy is jiffy.json" cmp -s "$tmp/policies/jiffy.json" "$rel/lib/jiffy-1.1.1/priv/jiffy.policy.json"
        check "nothing else of the release changed" \
                sh -c "diff -r -x 'jiffy*' '$tmp/pristine' '$rel' >/dev/null"

        # The release's own start script boots it; jiffy answers from a host.
        if timeout 60 "$rel/bin/myapp" daemon >"$tmp/daemon.log" 2>&1; then
                up=no
                for _ in $(seq 1 100); do
                        if "$rel/bin/myapp" ping >/dev/null 2>&1; then up=yes; break; fi
                        sleep 0.2
                done
                check "the wrapped release boots with its start script" test $up = yes
                out=$(timeout 60 "$rel/bin/myapp" eval 'myapp:roundtrip(#{<<"tenant">> => [1, 2.5, null]}) =:= #{<<"tenant">> => [1, 2.5, null]}.' 2>&1)
                echo "# eval: $out"
                check "its NIF answers through the proxy" test "$out" = true
                vm=$("$rel/bin/myapp" pid 2>/dev/null)
                sleep 1.5       # the state files are at most a second old
                "$NIFKIT" status >"$tmp/status.txt" 2>&1
                sed 's/^/# /' "$tmp/status.txt"
                check "nifkit status shows the release VM's host for jiffy" \
                        grep -q "^$vm .*$rel/lib/jiffy-1.1.1/priv/jiffy.real.so\$" "$tmp/status.txt"
                host=$(awk -v vm="$vm" '$1 == vm { print $2 }' "$tmp/status.txt")
                check "and the host runs apart from the VM" \
                        sh -c "[ -n '$host' ] && [ '$host' != '$vm' ] && grep -q nifkit-host /proc/$host/cmdline"
                "$rel/bin/myapp" stop >/dev/null 2>&1
        else
                not_ok "the wrapped release boots with its start script"
                sed 's/^/# daemon: /' "$tmp/daemon.log"
        fi

        # Idempotent: a second run changes nothing, not even a timestamp.
        wrapped=$(snapshot "$rel")
        "$NIFKIT" wrap-release --policies "$tmp/policies" "$rel" >"$tmp/out" 2>&1
        check "a second wrap-release says unchanged" table_has "$tmp/out" jiffy lib/jiffy-1.1.1/priv/jiffy.so unchanged
        check "and changes nothing" test "$wrapped" = "$(snapshot "$rel")"

        # An edited policy is all a second run writes.
        sed 's/"memory_mb": 512/"memory_mb": 256/' "$here/../wrap/policy.json" >"$tmp/policies/jiffy.json"
        "$NIFKIT" wrap-release --policies "$tmp/policies" "$rel" >"$tmp/out" 2>&1
        sed 's/^/# /' "$tmp/out"
        check "an edited policy is updated" table_has "$tmp/out" jiffy lib/jiffy-1.1.1/priv/jiffy.so "updated: policy"
        check "to the new text" cmp -s "$tmp/policies/jiffy.json" "$rel/lib/jiffy-1.1.1/priv/jiffy.policy.json"
        check "and the proxy is left as it was" cmp -s "$proxy_bin" "$rel/lib/jiffy-1.1.1/priv/jiffy.so"

        # A release wrapped by another nifkit (here: its proxy is not this
        # build's, and its host link names another host) is brought to this
        # one, and the table says what changed.
        printf 'older' >>"$rel/lib/jiffy-1.1.1/priv/jiffy.so"
        ln -sf /bin/true "$rel/lib/jiffy-1.1.1/priv/jiffy.host"
        "$NIFKIT" wrap-release --policies "$tmp/policies" "$rel" >"$tmp/out" 2>&1
        sed 's/^/# /' "$tmp/out"
        check "a wrap by another nifkit is said" \
                table_has "$tmp/out" jiffy lib/jiffy-1.1.1/priv/jiffy.so "updated: host, proxy (from another nifkit)"
        check "and gets this nifkit's proxy" cmp -s "$proxy_bin" "$rel/lib/jiffy-1.1.1/priv/jiffy.so"
        check "and host" test "$(readlink "$rel/lib/jiffy-1.1.1/priv/jiffy.host")" != /bin/true

        # Refusals change nothing.
        wrapped=$(snapshot "$rel")
        mkdir -p "$tmp/badpol"
        cp "$NK_BAD_POLICY" "$tmp/badpol/jiffy.json"
        "$NIFKIT" wrap-release --policies "$tmp/badpol" "$rel" >/dev/null 2>"$tmp/err"
        rc=$?
        sed 's/^/# /' "$tmp/err"
        check "an invalid policy is refused" test $rc -eq 1
        check "with its file, line and column" grep -q "$tmp/badpol/jiffy.json:4:[0-9]*: " "$tmp/err"
        mkdir -p "$tmp/typo"
        cp "$here/../wrap/policy.json" "$tmp/typo/jiffyy.json"
        "$NIFKIT" wrap-release --policies "$tmp/typo" "$rel" >/dev/null 2>"$tmp/err"
        rc=$?
        sed 's/^/# /' "$tmp/err"
        check "a policy for an application the release lacks is refused" test $rc -eq 1
        check "naming the file and the application" \
                grep -q "'$tmp/typo/jiffyy.json' is a policy for the application 'jiffyy', which '$rel' does not contain (it has: .*jiffy" "$tmp/err"
        "$NIFKIT" wrap-release --exclude nosuchapp "$rel" >/dev/null 2>"$tmp/err"
        check "--exclude of an application the release lacks is refused" \
                sh -c "[ $? -eq 1 ] && grep -q 'exclude nosuchapp' '$tmp/err'"
        check "and none of these changed anything" test "$wrapped" = "$(snapshot "$rel")"

        # unwrap-release gives back every byte.
        "$NIFKIT" unwrap-release "$rel" >"$tmp/out" 2>&1
        rc=$?
        sed 's/^/# /' "$tmp/out"
        check "unwrap-release restores jiffy" sh -c "[ $rc -eq 0 ] && grep -q '^jiffy *lib/jiffy-1.1.1/priv/jiffy.so *restored\$' '$tmp/out'"
        # (The boot above added log/, the VM's own: the rest must be as it was.)
        check "the release's applications are the original, byte for byte" \
                test "$lib_before" = "$(snapshot "$rel/lib")"
        check "and diff -r finds no difference from a copy taken before" diff -r -x log "$tmp/pristine" "$rel"
        "$NIFKIT" unwrap-release "$rel" >"$tmp/out" 2>&1
        check "a second unwrap-release has nothing to restore" \
                sh -c "[ $? -eq 0 ] && grep -q 'nothing to restore' '$tmp/out'"

        # A write that fails midway undoes what came before it: here the
        # application after jiffy has a NIF whose NAME.real.so cannot be
        # written (a directory holds the name).
        cp "$NK_TEST_NIF_GOOD" "$rel/lib/myapp-0.1.0/priv/native/mynif.so"
        mkdir "$rel/lib/myapp-0.1.0/priv/native/mynif.real.so"
        before=$(snapshot "$rel")
        "$NIFKIT" wrap-release --policies "$tmp/policies" "$rel" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        sed 's/^/# /' "$tmp/err"
        check "a wrap that fails midway fails" test $rc -eq 1
        check "and says that nothing is changed" grep -q "nothing is changed" "$tmp/err"
        check "and jiffy, wrapped before it, is restored" test "$before" = "$(snapshot "$rel")"
        rm -rf "$rel/lib/myapp-0.1.0/priv/native/mynif.so" "$rel/lib/myapp-0.1.0/priv/native/mynif.real.so"

        # A proxy whose real library is gone is a damaged wrap: said, not guessed at.
        "$NIFKIT" wrap-release --policies "$tmp/policies" "$rel" >/dev/null 2>&1
        rm "$rel/lib/jiffy-1.1.1/priv/jiffy.real.so"
        "$NIFKIT" unwrap-release "$rel" >/dev/null 2>"$tmp/err"
        rc=$?
        sed 's/^/# /' "$tmp/err"
        check "a proxy without its real library is refused" \
                sh -c "[ $rc -eq 1 ] && grep -q \"'$rel/lib/jiffy-1.1.1/priv/jiffy.so' is a nifkit proxy without its real library\" '$tmp/err'"
        cp "$tmp/pristine/lib/jiffy-1.1.1/priv/jiffy.so" "$rel/lib/jiffy-1.1.1/priv/jiffy.so"
        rm -f "$rel/lib/jiffy-1.1.1/priv/jiffy.policy.json" "$rel/lib/jiffy-1.1.1/priv/jiffy.host"

        # A rebar3 dev_mode release links its applications to the build:
        # wrapping them in place would change the project itself.
        mkdir -p "$tmp/devrel/lib" "$tmp/devrel/releases"
        ln -s "$tmp/pristine/lib/jiffy-1.1.1" "$tmp/devrel/lib/jiffy-1.1.1"
        "$NIFKIT" wrap-release "$tmp/devrel" >/dev/null 2>"$tmp/err"
        rc=$?
        sed 's/^/# /' "$tmp/err"
        check "a dev_mode release (linked applications) is refused" \
                sh -c "[ $rc -eq 1 ] && grep -q 'symbolic link (a rebar3 release in dev_mode)' '$tmp/err'"
fi

# ---- not a release ----
mkdir -p "$tmp/notrel/lib"
"$NIFKIT" wrap-release "$tmp/notrel" >/dev/null 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/err"
check "a directory that is not a release is refused" \
        sh -c "[ $rc -eq 1 ] && grep -q \"'$tmp/notrel' is not an OTP release: it has no releases/ directory\" '$tmp/err'"
"$NIFKIT" unwrap-release "$tmp/nowhere" >/dev/null 2>"$tmp/err"
check "a missing directory is refused" sh -c "[ $? -eq 1 ] && grep -q \"'$tmp/nowhere' is not a directory\" '$tmp/err'"
"$NIFKIT" wrap-release >/dev/null 2>&1
check "no directory is a usage error" test $? -eq 64
"$NIFKIT" unwrap-release --policies x "$tmp/notrel" >/dev/null 2>&1
check "unwrap-release takes no policies" test $? -eq 64

# ---- a mix release ----
if command -v mix >/dev/null 2>&1; then
        (cd "$tmp" && mix new nifuser) >"$tmp/mix.log" 2>&1
        mixapp="$tmp/nifuser"
        sed -i 's/extra_applications: \[:logger\]/extra_applications: [:logger, :jiffy]/' "$mixapp/mix.exs"
        cat >"$mixapp/lib/nifuser.ex" <<'EOT'
defmodule Nifuser do
  def parse(text), do: :jiffy.decode(text, [:return_maps])
end
EOT
        (cd "$mixapp" && MIX_ENV=prod mix release --quiet) >>"$tmp/mix.log" 2>&1
        mrel="$mixapp/_build/prod/rel/nifuser"
        if [ -x "$mrel/bin/nifuser" ]; then
                mbefore=$(snapshot "$mrel/lib")
                "$NIFKIT" wrap-release --policies "$tmp/policies" "$mrel" >"$tmp/out" 2>&1
                rc=$?
                sed 's/^/# /' "$tmp/out"
                check "wrap-release wraps the mix release" \
                        sh -c "[ $rc -eq 0 ] && grep -q '^jiffy *lib/jiffy-1.1.1/priv/jiffy.so .* wrapped\$' '$tmp/out'"
                # Booted as operators do: its start script's daemon, then rpc.
                if timeout 60 "$mrel/bin/nifuser" daemon >"$tmp/mdaemon.log" 2>&1; then
                        mvm=
                        for _ in $(seq 1 100); do
                                mvm=$("$mrel/bin/nifuser" pid 2>/dev/null) && break
                                sleep 0.2
                        done
                        check "the wrapped mix release boots with its start script" test -n "$mvm"
                        timeout 60 "$mrel/bin/nifuser" rpc \
                                'IO.puts(Nifuser.parse(~s({"elixir": [1, 2]})) == %{"elixir" => [1, 2]})' \
                                >"$tmp/rpc.txt" 2>&1
                        sed 's/^/# rpc: /' "$tmp/rpc.txt"
                        check "the mix release's NIF answers through the proxy" grep -qx true "$tmp/rpc.txt"
                        "$NIFKIT" status >"$tmp/status.txt" 2>&1
                        sed 's/^/# /' "$tmp/status.txt"
                        check "from a host of the release's VM that nifkit status shows" \
                                grep -q "^$mvm .* $mrel/lib/jiffy-1.1.1/priv/jiffy.real.so\$" "$tmp/status.txt"
                        "$mrel/bin/nifuser" stop >/dev/null 2>&1
                else
                        not_ok "the wrapped mix release boots with its start script"
                        sed 's/^/# daemon: /' "$tmp/mdaemon.log"
                fi
                "$NIFKIT" unwrap-release "$mrel" >/dev/null 2>&1
                check "unwrap-release restores the mix release's applications byte for byte" \
                        test "$mbefore" = "$(snapshot "$mrel/lib")"
        else
                not_ok "mix release builds the release"
                sed 's/^/# mix: /' "$tmp/mix.log"
        fi
else
        skip "the mix release" "elixir is not installed (scripts/install-deps.sh)"
fi

tap_end
