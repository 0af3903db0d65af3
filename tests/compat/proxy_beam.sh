#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The proxy NIF as a production runtime, in a real BEAM: one test of
# nk_proxy_test.erl against res_nif.c wrapped by the proxy, under a policy
# made for that test (limits small enough to reach quickly).
#
#   proxy_beam.sh TEST
#
# Environment: NIFKIT_PROXY, NIFKIT_HOST, NIFKIT_WRAP, NK_RES_NIF (the test
# library built from res_nif.c).
set -eu
export ERL_CRASH_DUMP_SECONDS=0
test=${1:?usage: proxy_beam.sh TEST}

if [ -z "${NIFKIT_PROXY:-}" ] || [ ! -f "$NIFKIT_PROXY" ]; then
        echo "SKIP: no proxy NIF built"
        exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
wrap=${NIFKIT_WRAP:-$here/../../scripts/nifkit-wrap-dev}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-proxy-beam.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

launcher=native timeout=5000 args=67108864 result=67108864 atoms=10000 restarts=5 sched=
case $test in
timeout) timeout=1000 ;;
restart_limit | events) restarts=2 ;;
result_size) result=1048576 ;;
args_size) args=1048576 ;;
atom_budget) atoms=50 ;;
# Stopping the host needs a signal to itself, which the sandbox's init
# (pid 1 of its namespace) cannot receive from inside.
heartbeat | heartbeat_idle) launcher=unsandboxed-development timeout=1000 ;;
scheduler) sched="+S 1" ;;
esac

cat >"$tmp/nk_res_nif.policy.json" <<JSON
{
  "nifkit_policy": 1,
  "launcher": "$launcher",
  "cgroup": "best-effort",
  "mode": "enforce",
  "limits": {
    "memory_mb": 256, "pids": 16, "cpu_percent": 100,
    "call_timeout_ms": $timeout,
    "max_args_bytes": $args,
    "max_result_bytes": $result,
    "max_new_atoms": $atoms,
    "tmp_mb": 16, "open_files": 256
  },
  "restart": {"max_restarts": $restarts, "period_s": 60},
  "files": [],
  "network": {"connect": [], "listen": [], "resolve": []},
  "workers": 4
}
JSON
"$wrap" "$NIFKIT_PROXY" "$NK_RES_NIF" "$tmp/nk_res_nif.so"
if [ "$test" = companions ]; then
        # One shared object that is no NIF, and another wrapped NIF library.
        cp "$NIFKIT_PROXY" "$tmp/other_nif.so"
        cp "$NK_RES_NIF" "$tmp/other_nif.real.so"
        cc -shared -fPIC -o "$tmp/companion.so" -x c /dev/null
fi
erlc -o "$tmp" "$here/nk_res_nif.erl" "$here/nk_proxy_test.erl" "$here/nk_test_hosts.erl"

if [ "$test" = vm_exit ]; then
        # The VM dies (SIGKILL, no unload) while host calls are in flight:
        # the host must not outlive it.
        NK_RES_NIF_DIR=$tmp erl -noshell -pa "$tmp" -eval "
                spawn(fun() -> nk_res_nif:dirty_sleep(60000) end),
                spawn(fun() -> nk_res_nif:sleep(60000) end),
                timer:sleep(300),
                Me = os:getpid(),
                Rows = [string:lexemes(L, \" \") || L <- string:split(os:cmd(\"ps -e -o pid=,ppid=,comm=\"), \"\\n\", all)],
                Ts = [P || [P, PP, \"nifkit-template\"] <- Rows, PP =:= Me],
                Out = [[P, \" \", C, \"\\n\"] || [P, PP, C] <- Rows, lists:member(PP, [Me | Ts])],
                ok = file:write_file(\"$tmp/hosts\", Out),
                timer:sleep(60000)." 2>"$tmp/stderr" &
        vm=$!
        i=0
        until [ -s "$tmp/hosts" ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
        host=$(awk '$2 == "nifkit-host" { print $1 }' "$tmp/hosts")
        [ -n "$host" ] || { echo "FAIL: no host started" >&2; cat "$tmp/stderr" >&2; kill -9 $vm; exit 1; }
        kill -9 $vm
        wait $vm 2>/dev/null || true
        i=0
        while kill -0 "$host" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$host" 2>/dev/null; then
                echo "FAIL: host $host outlived the VM" >&2
                kill -9 "$host"
                exit 1
        fi
        echo "vm_exit: host $host exited with the VM"
        exit 0
fi

# shellcheck disable=SC2086
NK_RES_NIF_DIR=$tmp erl -noshell $sched -pa "$tmp" ${NIFKIT_BEAM_DIR:+-pa "$NIFKIT_BEAM_DIR"} \
        -run nk_proxy_test main "$test" 2>"$tmp/stderr" || {
        cat "$tmp/stderr" >&2
        exit 1
}
cat "$tmp/stderr" >&2
case $test in
heartbeat)
        grep -q "died (heartbeat)" "$tmp/stderr" || {
                echo "FAIL: the proxy did not report a death by heartbeat" >&2
                exit 1
        } ;;
esac
