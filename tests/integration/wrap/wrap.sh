#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# nifkit wrap, nifkit status and nifkit:stats() against a real erl and
# Debian's jiffy, whose Erlang module stays as it is.
#
# Environment (set by meson): NIFKIT (the tool), NIFKIT_HOST, NIFKIT_PROXY,
# NIFKIT_BEAM_DIR (where nifkit.beam and nifkit_stats.so are built).
# Exit 77 (skipped) when erl or jiffy is missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../../lib/tap.sh"

tap_need_vars NIFKIT NIFKIT_HOST NIFKIT_PROXY NIFKIT_BEAM_DIR
tap_need_jiffy

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nifkit-wrap-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Our own state directory: other runtimes' hosts are not this test's.
export NIFKIT_STATUS_DIR="$tmp/status"
export NK_PROM_OUT="$tmp/prom.txt"
# The tool finds its build's proxy and host by itself, and a wrapped
# library runs the host wrap recorded: neither variable is passed on.
host_bin=$(realpath "$NIFKIT_HOST")
proxy_bin=$NIFKIT_PROXY
unset NIFKIT_HOST NIFKIT_PROXY
if ! unshare -U true 2>/dev/null; then
        echo "# this machine cannot create user namespaces: hosts run unsandboxed"
        export NIFKIT_UNSANDBOXED_DEVELOPMENT=1
fi

# Runs EXPR in a fresh erl with the copied jiffy (and nifkit) on the path.
erl_eval() {
        app=$1
        expr=$2
        timeout 120 erl -noshell -pa "$app/ebin" "$NIFKIT_BEAM_DIR" -eval "$expr" 2>"$tmp/erl.err"
}

# 1. -o DIR into a copy of jiffy's application: decode, stats, status.
cp -r "$jiffy" "$tmp/jiffy"
check "wrap -o writes the proxy, the real library and the policy" \
        "$NIFKIT" wrap --policy "$here/policy.json" "$jiffy/priv/jiffy.so" -o "$tmp/jiffy/priv" >"$tmp/out" 2>&1
check "the wrapped jiffy.so is a copy of the proxy" cmp -s "$proxy_bin" "$tmp/jiffy/priv/jiffy.so"
check "jiffy.host links to this build's host" test "$(readlink "$tmp/jiffy/priv/jiffy.host")" = "$host_bin"
check "jiffy.real.so is a copy of jiffy.so" cmp -s "$jiffy/priv/jiffy.so" "$tmp/jiffy/priv/jiffy.real.so"
check "the policy is written as given" cmp -s "$here/policy.json" "$tmp/jiffy/priv/jiffy.policy.json"
out=$(erl_eval "$tmp/jiffy" '
    R = jiffy:decode(<<"{\"tenant\": [1, 2.5, null]}">>, [return_maps]),
    E = jiffy:encode(#{<<"a">> => [true]}),
    io:format("decode_ok=~w~n", [R =:= #{<<"tenant">> => [1, 2.5, null]}]),
    io:format("encode=~s~n", [E]),
    {ok, HostPid} = case os:cmd("pgrep -f -P " ++ os:getpid() ++ " nifkit-host") of
                        "" -> {ok, none}; P -> {ok, string:trim(P)}
                    end,
    io:format("host=~s~n", [HostPid]),
    io:format("threads=~s~n", [os:cmd("cat /proc/" ++ os:getpid() ++ "/task/*/comm | sort -u | tr \"\\n\" \" \"")]),
    timer:sleep(1500),     % the state files are at most a second old
    [S] = [S || S = #{library := L} <- nifkit:stats(), binary:match(L, <<"jiffy.real.so">>) =/= nomatch],
    #{calls := Calls, runtime_pid := RP, errors := Errs, restarts := Rs} = S,
    io:format("stats_calls_ok=~w~n", [Calls >= 2]),
    io:format("stats_runtime_ok=~w~n", [integer_to_list(RP) =:= os:getpid()]),
    io:format("stats_errors=~w restarts=~w~n", [Errs, Rs]),
    io:format("~s", [os:cmd(os:getenv("NIFKIT") ++ " status")]),
    io:format("~s", [os:cmd(os:getenv("NIFKIT") ++ " status --json")]),
    os:cmd(os:getenv("NIFKIT") ++ " status --format prometheus >" ++ os:getenv("NK_PROM_OUT")),
    halt().')
echo "$out" | sed 's/^/# /'
case $out in *'decode_ok=true'*) ok "an unmodified jiffy decodes through the proxy" ;;
*) not_ok "an unmodified jiffy decodes through the proxy"; sed 's/^/# erl: /' "$tmp/erl.err" ;; esac
case $out in *'encode={"a":[true]}'*) ok "and encodes" ;; *) not_ok "and encodes" ;; esac
case $out in *threads=*nk-heartbeat*nk-reader*) ok "nifkit's threads in the VM are named" ;;
*) not_ok "nifkit's threads in the VM are named" ;; esac
case $out in *'stats_calls_ok=true'*) ok "nifkit:stats() counts the calls" ;; *) not_ok "nifkit:stats() counts the calls" ;; esac
case $out in *'stats_runtime_ok=true'*) ok "nifkit:stats() names this VM as the runtime" ;;
*) not_ok "nifkit:stats() names this VM as the runtime" ;; esac
case $out in *'stats_errors=#{} restarts=0'*) ok "no errors, no restarts" ;; *) not_ok "no errors, no restarts" ;; esac
if echo "$out" | grep -q '^RUNTIME .*LIBRARY$' && echo "$out" | grep -q 'jiffy/priv/jiffy.real.so$'; then
        ok "nifkit status lists the host in its table"
else
        not_ok "nifkit status lists the host in its table"
fi
if echo "$out" | grep '^{"runtime_pid"' | grep -q '"library":"[^"]*jiffy.real.so".*"calls":[2-9]'; then
        ok "nifkit status --json has the calls, written by the periodic writer"
else
        not_ok "nifkit status --json has the calls, written by the periodic writer"
fi
# A scrape while the VM ran jiffy, read by prometheus_client's parser.
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
        if "$here/../status/check_prometheus.py" --live "$NK_PROM_OUT" jiffy.real.so 2 >"$tmp/prom.tap" 2>&1 &&
                ! grep -q '^not ok' "$tmp/prom.tap"; then
                ok "nifkit status --format prometheus has jiffy's calls and latency, as Prometheus reads them"
        else
                not_ok "nifkit status --format prometheus has jiffy's calls and latency, as Prometheus reads them"
                sed 's/^/# /' "$tmp/prom.tap"
        fi
else
        ok "the Prometheus scrape # SKIP python3-prometheus-client is not installed (scripts/install-deps.sh)"
fi
if [ -z "$(ls -A "$NIFKIT_STATUS_DIR" 2>/dev/null)" ]; then
        ok "the state file is gone once the VM stopped its host"
else
        not_ok "the state file is gone once the VM stopped its host"
fi

# 1b. a library whose load() fails: the VM gets the error, and no state
# file stays behind for the host that was torn down.
if [ -n "${NK_TEST_NIF_LOADFAIL:-}" ]; then
        mkdir -p "$tmp/loadfail"
        "$NIFKIT" wrap --policy "$here/policy.json" "$NK_TEST_NIF_LOADFAIL" -o "$tmp/loadfail" >/dev/null
        cat >"$tmp/loadfail/nk_test_loadfail.erl" <<'EOT'
-module(nk_test_loadfail).
-export([try_load/1]).
try_load(Path) -> erlang:load_nif(Path, 0).
EOT
        erlc -o "$tmp/loadfail" "$tmp/loadfail/nk_test_loadfail.erl"
        out=$(timeout 120 erl -noshell -pa "$tmp/loadfail" -eval '
            R = nk_test_loadfail:try_load("'"$tmp/loadfail/nk_test_nif_loadfail"'"),
            io:format("load=~p~n", [element(1, R)]),
            timer:sleep(1200),
            {ok, Files} = file:list_dir(os:getenv("NIFKIT_STATUS_DIR")),
            io:format("files=~p~n", [[F || F <- Files, lists:prefix(os:getpid() ++ "-", F)]]),
            halt().' 2>"$tmp/erl.err"; echo "erl_exit=$?")
        echo "$out" | sed 's/^/# /'
        # The VM must outlive the unloaded proxy copy: a thread left behind
        # in it would run unmapped code (exit status 139, SIGSEGV).
        case $out in *'erl_exit=0'*) ok "the VM outlives the copy BEAM unloaded" ;;
        *) not_ok "the VM outlives the copy BEAM unloaded" ;; esac
        case $out in *'load=error'*) ok "a wrapped library whose load() fails fails to load" ;;
        *) not_ok "a wrapped library whose load() fails fails to load"; sed 's/^/# erl: /' "$tmp/erl.err" ;; esac
        case $out in *'files=[]'*) ok "and leaves no state file while the VM runs on" ;;
        *) not_ok "and leaves no state file while the VM runs on" ;; esac
fi

# 2. --in-place
cp -r "$jiffy" "$tmp/inplace"
check "wrap --in-place" "$NIFKIT" wrap --in-place --policy "$here/policy.json" "$tmp/inplace/priv/jiffy.so" >/dev/null
check "the original is kept as jiffy.real.so" cmp -s "$jiffy/priv/jiffy.so" "$tmp/inplace/priv/jiffy.real.so"
check "jiffy.so is now the proxy" cmp -s "$proxy_bin" "$tmp/inplace/priv/jiffy.so"
check "no temporary file is left" test "$(ls -A "$tmp/inplace/priv" | grep -c '^\.')" -eq 0
out=$(erl_eval "$tmp/inplace" 'io:format("~w~n", [jiffy:decode(<<"[\"in place\"]">>) =:= [<<"in place">>]]), halt().')
case $out in true*) ok "jiffy wrapped in place decodes" ;;
*) not_ok "jiffy wrapped in place decodes"; sed 's/^/# erl: /' "$tmp/erl.err" ;; esac

# 3. a proxy is not wrapped again
before=$(ls -l "$tmp/inplace/priv")
"$NIFKIT" wrap --in-place "$tmp/inplace/priv/jiffy.so" >/dev/null 2>"$tmp/err"
rc=$?
check "wrapping a proxy in place is refused" test $rc -eq 1
check "and says it is a proxy" grep -q "is already a nifkit proxy" "$tmp/err"
check "and changes nothing" test "$before" = "$(ls -l "$tmp/inplace/priv")"
"$NIFKIT" wrap "$tmp/inplace/priv/jiffy.so" -o "$tmp/again" >/dev/null 2>&1
check "wrapping a proxy into a directory is refused" test $? -eq 1 -a ! -e "$tmp/again"

# 4. an invalid policy is refused with its place, and nothing is written
"$NIFKIT" wrap --policy "$here/bad_policy.json" "$jiffy/priv/jiffy.so" -o "$tmp/bad" >/dev/null 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/err"
check "an invalid policy is refused" test $rc -eq 1
check "with file:line:column and the JSON path" grep -q "bad_policy.json:4:[0-9]*: \$.limits.memory_mb" "$tmp/err"
check "and nothing is written" test ! -e "$tmp/bad"

# 5. a missing library
"$NIFKIT" wrap "$tmp/nope/jiffy.so" -o "$tmp/missing" >/dev/null 2>"$tmp/err"
rc=$?
check "a missing library is refused" test $rc -eq 1
check "naming it and why" grep -q "cannot read '$tmp/nope/jiffy.so': No such file or directory" "$tmp/err"
check "and nothing is written for it" test ! -e "$tmp/missing"

# 6. without --policy the default is written out, and is a valid policy
"$NIFKIT" wrap "$jiffy/priv/jiffy.so" -o "$tmp/default" >/dev/null
check "without --policy the default policy is written" sh -c "\"$NIFKIT\" policy check \"$tmp/default/jiffy.policy.json\" >/dev/null"
check "and denies every file and endpoint" grep -q '"files": \[\]' "$tmp/default/jiffy.policy.json"

# 7. usage errors
"$NIFKIT" wrap "$jiffy/priv/jiffy.so" >/dev/null 2>&1
check "neither -o nor --in-place is a usage error" test $? -eq 64
"$NIFKIT" wrap "$tmp/default/jiffy.policy.json" -o "$tmp/x" >/dev/null 2>&1
check "a file that is not a .so is refused" test $? -eq 1

# 8. nifkit status: stale records are skipped
mkdir -p "$NIFKIT_STATUS_DIR"
sh -c 'exit 0' &
dead=$!
wait $dead
cat >"$NIFKIT_STATUS_DIR/$dead-0.json" <<EOT
{"runtime_pid":$dead,"host_pid":1,"library":"/stale/lib.so","started":1,"updated":1,"calls":1,"errors_total":0,"errors":{},"restarts":0,"last_reason":"","p50_us":1,"p99_us":1,"memory_peak":0,"latency_us_log2":[]}
EOT
cat >"$NIFKIT_STATUS_DIR/$$-0.json" <<EOT
{"runtime_pid":$$,"host_pid":-1,"library":"/live/\"quoted\".so","started":1,"updated":1,"calls":7,"errors_total":3,"errors":{"crashed":1,"timeout":2},"restarts":2,"last_reason":"timeout","p50_us":64,"p99_us":4096,"memory_peak":1048576,"latency_us_log2":[]}
EOT
"$NIFKIT" status >"$tmp/status.txt" 2>&1
sed 's/^/# /' "$tmp/status.txt"
check "status skips a record whose runtime is gone" sh -c "! grep -q /stale/ '$tmp/status.txt'"
check "and removes it" test ! -e "$NIFKIT_STATUS_DIR/$dead-0.json"
check "but keeps a live one" test -e "$NIFKIT_STATUS_DIR/$$-0.json"
check "status shows a live one with its errors by reason" \
        grep -q "^$$ .* 7 3 (crashed=1,timeout=2) .* 2 timeout .*64 .*4096 .*1024K  /live/\"quoted\".so$" "$tmp/status.txt"
"$NIFKIT" status --json >"$tmp/status.json"
sed 's/^/# /' "$tmp/status.json"
check "status --json prints one valid object per live record" \
        erl -noshell -eval '
            {ok, B} = file:read_file("'"$tmp/status.json"'"),
            try string:split(string:trim(B), "\n", all) of
                [L] ->
                    case jiffy:decode(L, [return_maps]) of
                        #{<<"library">> := <<"/live/\"quoted\".so">>, <<"restarts">> := 2,
                          <<"errors">> := #{<<"timeout">> := 2}} -> halt(0);
                        _ -> halt(1)
                    end;
                _ -> halt(1)
            catch C:R -> io:format("# ~p:~p~n", [C, R]), halt(1)
            end.'

tap_end
