#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The guest's cgroup v2 does what the sandbox relies on, proved by effects
# rather than by the files being there: memory.max OOM-kills an allocation
# past it (memory.events oom_kill), pids.max stops a fork loop (pids.events
# max), cpu.max throttles a busy loop (cpu.stat nr_throttled). As root it
# works in the hierarchy's root; as uid 1000 in the delegated subtree
# (NIFKIT_CGROUP_ROOT), which must be enough for all three.
set -u
. "$(dirname "$0")/lib.sh"

base=${NIFKIT_CGROUP_ROOT:-/sys/fs/cgroup}
echo "uid $(id -u), cgroups under $base"
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
        echo "FAIL: /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup), not cgroup2"
        exit 1
fi
for c in memory pids cpu; do
        check "controller $c is enabled for children of $base" grep -qw "$c" "$base/cgroup.subtree_control"
done

# memory: 32 MiB, no swap; dd's 256 MiB buffer is written by read(2) from
# /dev/zero, so every page is really charged.
leaf=$(new_leaf "$base" "nkvm-mem-$$") || { echo "FAIL: cannot create a leaf in $base"; exit 1; }
echo 32M >"$leaf/memory.max"
[ -e "$leaf/memory.swap.max" ] && echo 0 >"$leaf/memory.swap.max"
before=$(event "$leaf/memory.events" oom_kill)
in_leaf "$leaf" dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null
rc=$?
after=$(event "$leaf/memory.events" oom_kill)
check "an allocation past memory.max is killed (status $rc, want 137)" [ "$rc" -eq 137 ]
check "memory.events oom_kill went from $before to $after" [ "$after" -gt "$before" ]
in_leaf "$leaf" dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null
check "an allocation under memory.max runs" [ $? -eq 0 ]
remove_leaf "$leaf"

# pids: 5 tasks. The shell counts as one, so at most 4 sleeps start.
leaf=$(new_leaf "$base" "nkvm-pids-$$") || exit 1
echo 5 >"$leaf/pids.max"
in_leaf "$leaf" sh -c 'i=0; while [ $i -lt 20 ]; do sleep 600 & i=$((i + 1)); done' 2>/dev/null
current=$(cat "$leaf/pids.current")
max=$(event "$leaf/pids.events" max)
check "pids.events max counted refused forks ($max)" [ "$max" -ge 1 ]
check "pids.current stayed within pids.max ($current <= 5)" [ "$current" -le 5 ]
check "the fork loop started some processes before the limit ($current)" [ "$current" -ge 1 ]
remove_leaf "$leaf"

# cpu: 10% of one CPU for 3 s of busy looping means throttled periods.
leaf=$(new_leaf "$base" "nkvm-cpu-$$") || exit 1
echo "10000 100000" >"$leaf/cpu.max"
timeout 3 sh -c 'echo $$ >"$0/cgroup.procs" && while :; do :; done' "$leaf"
throttled=$(event "$leaf/cpu.stat" nr_throttled)
check "cpu.stat nr_throttled counts periods ($throttled)" [ "$throttled" -ge 1 ]
remove_leaf "$leaf"

finish
