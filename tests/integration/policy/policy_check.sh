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

exit $fail
