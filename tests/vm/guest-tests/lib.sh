# SPDX-License-Identifier: Apache-2.0
# Shared by the guest tests (POSIX sh): results as "ok:"/"FAIL:" lines, and
# cgroup leaves that are emptied and removed whatever happens.

failures=0
leaves=

ok() { echo "ok: $*"; }
fail() {
        echo "FAIL: $*"
        failures=$((failures + 1))
}

# check DESCRIPTION COMMAND...: the command's status decides.
check() {
        local what=$1
        shift
        if "$@"; then ok "$what"; else fail "$what"; fi
}

# new_leaf PARENT NAME: prints the new cgroup's path, removed at exit.
new_leaf() {
        mkdir "$1/$2" || return 1
        leaves="$1/$2 $leaves"
        echo "$1/$2"
}

# remove_leaf PATH: kills what is left inside, waits until the kernel says
# it is empty, removes it.
remove_leaf() {
        local i=0
        [ -d "$1" ] || return 0
        echo 1 >"$1/cgroup.kill" 2>/dev/null
        while grep -q '^populated 1' "$1/cgroup.events" 2>/dev/null && [ $i -lt 50 ]; do
                sleep 0.1
                i=$((i + 1))
        done
        rmdir "$1"
}

cleanup_leaves() {
        local l
        for l in $leaves; do
                remove_leaf "$l" 2>/dev/null
        done
}
trap cleanup_leaves EXIT

# event FILE KEY: the counter KEY of a flat-keyed cgroup file (memory.events…).
event() {
        awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print -1 }' "$1"
}

# in_leaf LEAF COMMAND...: runs COMMAND as a process of LEAF (a shell moves
# itself there first, then becomes the command).
in_leaf() {
        local leaf=$1
        shift
        sh -c 'echo $$ >"$0/cgroup.procs" || exit 126; exec "$@"' "$leaf" "$@"
}

finish() {
        if [ "$failures" -ne 0 ]; then
                echo "$failures check(s) failed"
                exit 1
        fi
        echo "all checks passed"
        exit 0
}
