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

# tap_need_vars VAR...: bails out when one of them is unset or empty (the
# test was started without what meson gives it).
tap_need_vars() {
        for tap_var; do
                eval "tap_val=\${$tap_var:-}"
                if [ -z "$tap_val" ]; then
                        echo "Bail out! $tap_var is not set"
                        exit 1
                fi
        done
}

# tap_need_jiffy: skips the whole test (77) without erl or Debian's jiffy;
# else sets jiffy to jiffy's application directory.
tap_need_jiffy() {
        if ! command -v erl >/dev/null 2>&1; then
                echo "1..0 # SKIP erl is not installed"
                exit 77
        fi
        jiffy=$(erl -noshell -eval 'case code:lib_dir(jiffy) of {error, _} -> ok; D -> io:format("~s", [D]) end, halt().')
        if [ -z "$jiffy" ] || [ ! -f "$jiffy/priv/jiffy.so" ]; then
                echo "1..0 # SKIP erlang-jiffy is not installed"
                exit 77
        fi
}
