#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# cgroup v2 detection and leaves on the machine the tests run on.
#
# Where the cgroup v2 root lacks memory, pids or cpu (these build machines:
# the v2 hierarchy is mounted beside v1 controllers), detection must fail
# with the exact message that tells what is missing and how to delegate;
# a leaf can still be created, entered, killed and removed there. Where
# the controllers are delegated (the VM suite), detection must succeed and
# the leaf's limits must hold: an OOM kill and a pids.max hit are counted.
#
# The expected root and controllers are computed here from /proc and the
# cgroup files, independently of cgroup2.c.
#
# Environment: NK_CGROUP_PROBE (cgroup_probe built), optional NIFKIT_CGROUP_ROOT.
set -u
probe=${NK_CGROUP_PROBE:?NK_CGROUP_PROBE must name cgroup_probe}

out=$("$probe" detect) || { echo "FAIL: cgroup_probe detect exited $?"; exit 1; }
echo "$out"
field() { printf '%s\n' "$out" | sed -n "s/^$1=//p"; }
result=$(field result)
root=$(field root)
available=$(field available)
message=$(field message)

if [ -n "${NIFKIT_CGROUP_ROOT:-}" ]; then
        want_root=${NIFKIT_CGROUP_ROOT%/}
else
        cgpath=$(sed -n 's/^0:://p' /proc/self/cgroup)
        mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2" && $4 == "/") print $5; break } }' /proc/self/mountinfo | head -n 1)
        if [ -z "$cgpath" ] || [ -z "$mnt" ]; then
                if [ "$result" != "-2" ]; then
                        echo "FAIL: no cgroup v2 here (or only a bind of a subtree), yet detect said $result"
                        exit 1
                fi
                echo "SKIP: no cgroup v2 hierarchy mounted at its root here; detect said so: $message"
                exit 77
        fi
        if [ "$cgpath" = / ]; then want_root=$mnt; elif [ "$mnt" = / ]; then want_root=$cgpath; else want_root=$mnt$cgpath; fi
fi

controllers=$(cat "$want_root/cgroup.controllers")
missing=
for c in memory pids cpu; do
        case " $controllers " in
        *" $c "*) ;;
        *) missing="$missing${missing:+ }$c" ;;
        esac
done

if [ -n "$missing" ]; then
        case "$missing" in *" "*) verb=are ;; *) verb=is ;; esac
        if [ -z "$controllers" ]; then
                why="cgroup.controllers is empty"
        else
                why="cgroup.controllers lists only \"$controllers\""
        fi
        want="cgroup v2 controllers missing for nifkit leaves under $want_root: $missing $verb not enabled ($why). Delegate them: under systemd run the runtime with Delegate=yes (e.g. systemd-run --user -p Delegate=yes …), or set NIFKIT_CGROUP_ROOT to a delegated subtree."
        fail=0
        [ "$result" = "-13" ] || { echo "FAIL: detect returned $result, want -13 (EACCES)"; fail=1; }
        # Filled even on failure, for best-effort callers.
        [ "$root" = "$want_root" ] || { echo "FAIL: root '$root', want '$want_root'"; fail=1; }
        for c in $missing; do
                case " $available " in *" $c "*) echo "FAIL: $c is missing yet reported available"; fail=1 ;; esac
        done
        if [ "$message" != "$want" ]; then
                echo "FAIL: message differs"
                echo "  got:  $message"
                echo "  want: $want"
                fail=1
        fi
        [ $fail = 0 ] || exit 1
        echo "ok: controllers missing ($missing) reported exactly"
        # Leaves without controllers: mkdir, CLONE_INTO_CGROUP, kill, rmdir.
        "$probe" lifecycle "$want_root"
        rc=$?
        leaf_root=$want_root
else
        if [ "$result" != 0 ]; then
                echo "FAIL: $want_root has memory pids cpu, yet detect failed: $message"
                exit 1
        fi
        # shellcheck disable=SC2086 # one word per controller
        "$probe" lifecycle "$root" $available
        rc=$?
        leaf_root=$root
fi
[ $rc = 1 ] && exit 1
"$probe" fallback "$leaf_root"
frc=$?
[ $frc = 1 ] && exit 1
# Skipped only if both parts were.
[ $rc = 77 ] && [ $frc = 77 ] && exit 77
exit 0
