#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Where cgroup v2 controllers are not delegated to nifkit (a container
# without Delegate=yes, a service whose cgroup holds its own processes),
# nifkit doctor and a start say exactly why and how to fix it; a policy with
# "cgroup": "best-effort" still runs. Root only: it builds the two situations
# as cgroups of the guest, and removes them.
#   1. NIFKIT_CGROUP_ROOT under a parent that enables no controller for its
#      children: cgroup.controllers is empty.
#   2. NIFKIT_CGROUP_ROOT with every controller, but a process of its own
#      (cgroup v2's no-internal-processes rule).
set -u
. "$(dirname "$0")/lib.sh"

if [ -z "${NIFKIT:-}" ] || [ ! -x "$NIFKIT" ] || [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root and NIFKIT naming a built nifkit tool"
        exit 77
fi
jiffy_dir=$(erl -noshell -eval 'case code:lib_dir(jiffy) of {error, _} -> ok; D -> io:format("~s", [D]) end, halt().')
if [ -z "$jiffy_dir" ] || [ ! -f "$jiffy_dir/priv/jiffy.so" ]; then
        echo "SKIP: jiffy is not installed (erlang-jiffy)"
        exit 77
fi
tmp=$(mktemp -d)
best_effort=$tmp/best-effort.json
cat >"$best_effort" <<'EOT'
{"nifkit_policy": 1, "launcher": "native", "cgroup": "best-effort", "mode": "enforce",
 "limits": {"memory_mb": 256, "pids": 16, "cpu_percent": 100, "call_timeout_ms": 30000,
            "tmp_mb": 0, "open_files": 64},
 "restart": {"max_restarts": 5, "period_s": 60},
 "files": [], "network": {"connect": [], "listen": [], "resolve": []}, "workers": 1}
EOT
has() { printf '%s\n' "$out" | grep -qF -- "$1"; }
answered() { printf '%s\n' "$out" | grep -qx '\[1\]'; }
call() { "$NIFKIT" call "$@" "$jiffy_dir/priv/jiffy.so" nif_decode_init '<<"[1]">>' '[]' 2>&1; }

# 1. no controller for nifkit's leaves
parent=$(new_leaf /sys/fs/cgroup "nkvm-undelegated-$$")
root=$(new_leaf "$parent" runtime)
check "the parent enables no controller for its children" [ -z "$(cat "$parent/cgroup.subtree_control")" ]
export NIFKIT_CGROUP_ROOT=$root
out=$("$NIFKIT" doctor 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "doctor still exits 0: a best-effort policy can start (status $rc)" [ "$rc" -eq 0 ]
check "doctor warns that no limit can be enforced" \
        has 'warn  cgroup v2        limits not enforceable by a cgroup here: policies with "cgroup": "required" refuse to start, best-effort ones start with rlimits only (none available)'
want="cgroup v2 controllers missing for nifkit leaves under $root: memory pids cpu are not enabled (cgroup.controllers is empty). Delegate them: under systemd run the runtime with Delegate=yes (e.g. systemd-run --user -p Delegate=yes …), or set NIFKIT_CGROUP_ROOT to a delegated subtree."
check "and its fix names the missing controllers and Delegate=yes" has "fix: $want"
out=$(call)
rc=$?
echo "$out" | sed 's/^/# /'
check "a start under the default policy (cgroup required) fails as a host failure (status $rc)" [ "$rc" -eq 2 ]
check "with the same message" has "$want"
out=$(call --policy "$best_effort")
rc=$?
echo "$out" | sed 's/^/# /'
check "a best-effort policy starts (status $rc)" [ "$rc" -eq 0 ]
check "and answers" answered

# 2. every controller, but the cgroup holds a process of its own
echo "+memory +pids +cpu" >"$parent/cgroup.subtree_control"
sleep 300 &
squatter=$!
echo "$squatter" >"$root/cgroup.procs"
out=$("$NIFKIT" doctor 2>&1)
echo "$out" | sed 's/^/# /'
want="cgroup v2 subtree $root holds processes of its own, so it cannot give controllers to child cgroups (cgroup v2's no-internal-processes rule). Start the runtime in a child of the delegated cgroup (systemd: DelegateSubgroup=), or set NIFKIT_CGROUP_ROOT to a delegated subtree without processes."
check "doctor names the no-internal-processes rule and its fix" has "fix: $want"
out=$(call)
rc=$?
echo "$out" | sed 's/^/# /'
check "a start under the default policy fails (status $rc)" [ "$rc" -eq 2 ]
check "with the same message" has "$want"
kill "$squatter"
wait "$squatter" 2>/dev/null

# With the process gone, the same root is a delegated subtree: all is well.
out=$("$NIFKIT" doctor 2>&1)
check "once the cgroup is empty, doctor finds memory, pids and cpu delegated" \
        has "ok    cgroup v2        memory, pids and cpu are delegated under $root"
out=$(call)
check "and the default policy starts and answers" answered
rm -rf "$tmp"
finish
