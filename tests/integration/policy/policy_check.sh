#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# nifkit policy check: its output and exit codes (0 valid, 1 invalid, 64 usage).
# NIFKIT is the built tool, POLICIES the shipped policies, FIXTURES the unit
# test's policy fixtures; meson sets all three.
set -u

fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect CODE DESCRIPTION -- COMMAND...: run it, keep its output, check its status.
expect() {
        code=$1 what=$2
        shift 3
        "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        if [ "$rc" -ne "$code" ]; then
                echo "FAIL: $what: exit $rc, expected $code"
                sed 's/^/  stdout: /' "$tmp/out"
                sed 's/^/  stderr: /' "$tmp/err"
                fail=1
        else
                echo "ok: $what (exit $rc)"
        fi
}

same() {
        if ! cmp -s "$1" "$2"; then
                echo "FAIL: $3"
                diff "$2" "$1" | sed 's/^/  /'
                fail=1
        fi
}

cd "$POLICIES" || exit 1
expect 0 "every shipped policy is valid" -- "$NIFKIT" policy check default.json jiffy.json fast_yaml.json \
        fxml.json stringprep.json crypto.json
printf '%s: ok\n' default.json jiffy.json fast_yaml.json fxml.json stringprep.json crypto.json >"$tmp/want"
same "$tmp/out" "$tmp/want" "shipped policies: one 'FILE: ok' line each"
same "$tmp/err" /dev/null "shipped policies: nothing on stderr"

cd "$FIXTURES/invalid" || exit 1
expect 1 "an invalid policy" -- "$NIFKIT" policy check version_2.json
same "$tmp/err" version_2.expected "the message is the loader's, with file, line, column and path"
same "$tmp/out" /dev/null "an invalid policy prints no ok line"

expect 1 "valid and invalid together: every file is checked" -- \
        "$NIFKIT" policy check unknown_limits_key.json "$POLICIES/jiffy.json" limits_string.json
printf '%s: ok\n' "$POLICIES/jiffy.json" >"$tmp/want"
same "$tmp/out" "$tmp/want" "the valid file after an invalid one is still reported ok"
cat unknown_limits_key.expected limits_string.expected >"$tmp/want"
same "$tmp/err" "$tmp/want" "both invalid files are reported, in order"

expect 1 "a file that does not exist" -- "$NIFKIT" policy check "$tmp/missing.json"
grep -q "missing.json: No such file or directory" "$tmp/err" || { echo "FAIL: no reason for a missing file"; fail=1; }

cd "$FIXTURES/valid" || exit 1
expect 0 "unsandboxed-development is valid" -- "$NIFKIT" policy check unsandboxed.json
grep -q "WITHOUT a sandbox" "$tmp/out" || { echo "FAIL: unsandboxed-development is not flagged"; fail=1; }

cp minimal.json "$tmp/-dash.json"
expect 0 "-- ends options" -- "$NIFKIT" policy check -- "$tmp/-dash.json"

expect 64 "no subcommand" -- "$NIFKIT" policy
expect 64 "an unknown subcommand" -- "$NIFKIT" policy lint minimal.json
expect 64 "no file" -- "$NIFKIT" policy check
expect 64 "an unknown option" -- "$NIFKIT" policy check --strict minimal.json
expect 0 "--help" -- "$NIFKIT" policy check --help
grep -q "usage: nifkit policy check FILE" "$tmp/out" || { echo "FAIL: --help prints no usage"; fail=1; }
expect 0 "nifkit help policy" -- "$NIFKIT" help policy

# nifkit policy explain: the policy in plain words, and this machine.
has() {
        grep -qF -- "$1" "$tmp/out" || { echo "FAIL: $2: no line with '$1'"; sed 's/^/  out: /' "$tmp/out"; fail=1; }
}
cat >"$tmp/full.json" <<'EOT'
{"nifkit_policy": 1, "launcher": "bwrap", "cgroup": "best-effort", "mode": "audit", "transport": "socket",
 "limits": {"memory_mb": 1024, "tmp_mb": 8, "max_args_bytes": 1000},
 "restart": {"max_restarts": 0},
 "files": [{"path": "/var/lib/app", "access": "read"},
           {"path": "/var/spool/app", "access": "create", "no_symlinks": true}],
 "network": {"connect": ["db.internal:5432", "[2001:db8::1]:443"], "listen": ["udp:127.0.0.1:5353"],
             "resolve": ["db.internal"]},
 "env": ["TZ", "LANG"], "workers": 2}
EOT
# A directory that is no cgroup: the machine part is known whatever runs this.
mkdir "$tmp/nocg"
NIFKIT_CGROUP_ROOT="$tmp/nocg" expect 0 "explain a policy that sets every key" -- "$NIFKIT" policy explain "$tmp/full.json"
has 'Sandbox: built by bubblewrap (launcher "bwrap").' "explain: the launcher"
has '/var/lib/app (read)' "explain: a read-only directory"
has '/var/spool/app (read, write and create; symlinks refused)' "explain: a create directory without symlinks"
has 'connected to: db.internal:5432, [2001:db8::1]:443' "explain: connect endpoints, IPv6 in brackets"
has 'listening on: udp 127.0.0.1:5353' "explain: a UDP listener"
has 'names resolved for it: db.internal' "explain: resolved names"
has 'Mode: AUDIT.' "explain: audit mode is loud"
has 'and from the VM'"'"'s: TZ, LANG.' "explain: the variables passed"
has 'memory        1 GiB' "explain: memory in GiB"
has '/tmp          8 MiB, private to the host' "explain: /tmp"
has 'arguments     1000 bytes per call' "explain: an argument limit that is no round size"
has 'Calls: 2 at a time, over the control socket.' "explain: workers and transport"
has 'Restarts: none.' "explain: no restarts"
has 'is not in a cgroup v2 hierarchy' "explain: why this machine has no cgroup for the hosts"
has 'cgroup "best-effort": hosts start' "explain: best-effort starts anyway"
has 'memory is bounded only by RLIMIT_AS' "explain: what stands in for the memory limit"

NIFKIT_CGROUP_ROOT="$tmp/nocg" expect 0 "explain the default policy" -- "$NIFKIT" policy explain "$POLICIES/default.json"
has 'Files: none.' "explain default: no files"
has 'Network: none.' "explain default: no network"
has 'Mode: enforce.' "explain default: enforce"
has 'cgroup "required": hosts under this policy do NOT start here' "explain default: required and missing"
expect 0 "explain an unsandboxed policy" -- "$NIFKIT" policy explain unsandboxed.json
has 'Sandbox: NONE' "explain: no sandbox is said first"
has 'nothing is enforced' "explain: and again for the machine"

# It reads the cgroup files and changes nothing (a start would make <root>/nifkit):
# $NIFKIT_CGROUP_ROOT's, else this process's own cgroup.
if [ -n "${NIFKIT_CGROUP_ROOT:-}" ]; then
        cgdir=${NIFKIT_CGROUP_ROOT%/}
else
        root=$(sed -n 's/^0:://p' /proc/self/cgroup)
        cgdir=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
                /proc/self/mountinfo)$root
        cgdir=${cgdir%/}
fi
if [ -d "$cgdir" ] && [ ! -e "$cgdir/nifkit" ]; then
        before=$(cat "$cgdir/cgroup.subtree_control" 2>/dev/null)
        expect 0 "explain on this process's own cgroup" -- "$NIFKIT" policy explain "$POLICIES/default.json"
        has "On this machine (cgroup v2 $cgdir" "explain: names the cgroup it looked at"
        [ ! -e "$cgdir/nifkit" ] || { echo "FAIL: explain created $cgdir/nifkit"; fail=1; }
        [ "$(cat "$cgdir/cgroup.subtree_control" 2>/dev/null)" = "$before" ] ||
                { echo "FAIL: explain changed $cgdir/cgroup.subtree_control"; fail=1; }
else
        echo "skip: this process's cgroup already has a nifkit parent (or there is no cgroup v2): no-change check not run"
fi

expect 1 "explain a file that does not exist" -- "$NIFKIT" policy explain "$tmp/none.json"
grep -q "none.json" "$tmp/err" || { echo "FAIL: explain's error names no file"; fail=1; }
expect 1 "explain an invalid policy, with its place" -- "$NIFKIT" policy explain "$FIXTURES/invalid/bad_access.json"
expect 64 "explain without a file" -- "$NIFKIT" policy explain
expect 64 "explain with two files" -- "$NIFKIT" policy explain "$POLICIES/default.json" "$POLICIES/jiffy.json"

exit $fail
