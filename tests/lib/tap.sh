# SPDX-License-Identifier: Apache-2.0
# TAP output for the shell tests (POSIX sh), sourced: ok, not_ok, check,
# and tap_end, which prints the plan and exits with the result.
tap_pass=0
tap_fail=0
ok() { tap_pass=$((tap_pass + 1)); echo "ok - $1"; }
not_ok() { tap_fail=$((tap_fail + 1)); echo "not ok - $1"; }
# check NAME COMMAND...: passes when COMMAND exits 0
check() {
        tap_name=$1
        shift
        if "$@"; then ok "$tap_name"; else not_ok "$tap_name"; fi
}
tap_end() {
        echo "1..$((tap_pass + tap_fail))"
        [ "$tap_fail" -eq 0 ]
        exit
}
