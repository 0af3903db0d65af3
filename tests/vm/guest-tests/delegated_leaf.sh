#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# As an unprivileged user (uid 1000 in the guest) with a delegated subtree
# (NIFKIT_CGROUP_ROOT), the way nifkit runs under systemd's Delegate=yes:
# leaves can be created, limited and entered inside the subtree, and every
# attempt to act outside it fails.
set -u
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -eq 0 ] || [ -z "${NIFKIT_CGROUP_ROOT:-}" ]; then
        echo "SKIP: needs a non-root user and NIFKIT_CGROUP_ROOT (the guest's user run)"
        exit 77
fi
base=$NIFKIT_CGROUP_ROOT
me=$(id -u)
echo "uid $me, delegated subtree $base, in $(cat /proc/self/cgroup)"
check "the subtree belongs to uid $me" [ "$(stat -c %u "$base")" = "$me" ]

leaf=$(new_leaf "$base" "nkvm-deleg-$$") || { echo "FAIL: cannot create a leaf in $base"; exit 1; }
ok "created $leaf"
check "set memory.max" sh -c "echo 64M >'$leaf/memory.max'"
check "set pids.max" sh -c "echo 16 >'$leaf/pids.max'"
check "set cpu.max" sh -c "echo '50000 100000' >'$leaf/cpu.max'"
where=$(in_leaf "$leaf" cat /proc/self/cgroup)
check "a process moved itself into the leaf ($where)" [ "$where" = "0::${leaf#/sys/fs/cgroup}" ]
# A nested level, as the runtime's <root>/nifkit/<leaf> layout needs.
check "enable controllers for a nested level" sh -c "echo '+memory +pids +cpu' >'$leaf/cgroup.subtree_control'"
inner=$(new_leaf "$leaf" inner)
check "create a nested leaf with memory.max" sh -c "echo 16M >'$inner/memory.max'"

# Escape attempts: each must fail.
echo "escape attempts (each must be refused):"
check "refused: writing the root's cgroup.subtree_control" \
        sh -c '! echo "-memory" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null'
check "refused: creating a cgroup beside the subtree" sh -c '! mkdir /sys/fs/cgroup/nkvm-escape 2>/dev/null'
check "refused: moving a process to the root cgroup" \
        sh -c '! echo $$ >/sys/fs/cgroup/cgroup.procs 2>/dev/null'
check "refused: raising the subtree's own memory.max" \
        sh -c "! echo max >'$base/memory.max' 2>/dev/null"

finish
