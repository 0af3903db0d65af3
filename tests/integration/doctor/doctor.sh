#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# nifkit doctor: every check is reported, on this machine and on sysctl
# values faked through --proc-sys, with the cause and the fix; exit 0 when
# hosts can start, 1 when they cannot, 64 on a usage error. NIFKIT is the
# built tool.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nk-doctor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out"; }
has() { grep -q -- "$1" "$tmp/out" && ok "$2" || not_ok "$2"; }
run() { "$NIFKIT" doctor "$@" >"$tmp/out" 2>&1; rc=$?; }

# This machine: the integration tests' hosts start here, so doctor must say so.
run
[ "$rc" -eq 0 ] && ok "doctor passes where hosts start (exit 0)" || not_ok "doctor passes where hosts start (exit $rc)"
for name in kernel "user namespaces" namespaces seccomp "cgroup v2" bubblewrap; do
        grep -Eq "^  (ok|warn|FAIL) +$name " "$tmp/out" && ok "it reports $name" || not_ok "it reports $name"
done
has '^  ok    namespaces ' "creating a host's namespaces works here"
has '^  ok    seccomp ' "installing a seccomp filter works here"
has '^Sandboxed hosts can start here' "the last line says so"

# Faked sysctls: each restriction named, with its fix.
mkdir -p "$tmp/sys/user" "$tmp/sys/kernel"
echo 0 >"$tmp/sys/user/max_user_namespaces"
run --proc-sys "$tmp/sys"
[ "$rc" -eq 1 ] && ok "user.max_user_namespaces=0 fails the run (exit 1)" || not_ok "max_user_namespaces=0: exit $rc"
has '^  FAIL  user namespaces  user.max_user_namespaces is 0' "and names the sysctl"
has 'fix: sysctl -w user.max_user_namespaces=15000' "and its fix"
has '^Sandboxed hosts cannot start here: 1 problem above.$' "and the last line counts the problem"

echo 15000 >"$tmp/sys/user/max_user_namespaces"
echo 0 >"$tmp/sys/kernel/unprivileged_userns_clone"
run --proc-sys "$tmp/sys"
if [ "$(id -u)" -eq 0 ]; then
        has '^  warn  user namespaces  kernel.unprivileged_userns_clone is 0' \
                "Debian's unprivileged_userns_clone=0 is a warning for a root runtime"
        has 'bwrap launcher runs bubblewrap' "which names the launcher it stops"
else
        has '^  FAIL  user namespaces  kernel.unprivileged_userns_clone is 0' \
                "Debian's unprivileged_userns_clone=0 fails an unprivileged runtime"
fi
has 'fix: sysctl -w kernel.unprivileged_userns_clone=1' "with its fix"

echo 1 >"$tmp/sys/kernel/unprivileged_userns_clone"
echo 1 >"$tmp/sys/kernel/apparmor_restrict_unprivileged_userns"
run --proc-sys "$tmp/sys"
has 'kernel.apparmor_restrict_unprivileged_userns is 1' "Ubuntu's AppArmor restriction is named"
has 'AppArmor profile that allows "userns,"' "with the profile it needs"

rm -f "$tmp/sys/kernel/apparmor_restrict_unprivileged_userns"
run --proc-sys "$tmp/sys"
has '^  ok    user namespaces  allowed (user.max_user_namespaces 15000)' "allowed values read as allowed"

# Usage.
run --verbose
[ "$rc" -eq 64 ] && ok "an unknown option is a usage error" || not_ok "unknown option: exit $rc"
run extra
[ "$rc" -eq 64 ] && ok "an operand is a usage error" || not_ok "operand: exit $rc"
run --proc-sys
[ "$rc" -eq 64 ] && ok "--proc-sys without a value is a usage error" || not_ok "--proc-sys: exit $rc"
"$NIFKIT" --help >"$tmp/out" 2>&1
has '^  doctor ' "nifkit --help lists doctor"

echo "1..$n"
exit $fail
