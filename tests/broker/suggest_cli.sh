#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# nifkit policy suggest: an audit log in, a policy that nifkit policy check
# accepts out, with exactly the grants the log saw allowed; a malformed log
# is refused with its line number.
set -u
: "${NIFKIT:?run through meson test}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$dir/audit.log" <<'LOG'
{"ts":1.5,"library":"/l.so","op":"open","path":"/srv/data/a","flags":0,"decision":"allow"}
{"ts":1.5,"library":"/l.so","op":"open","path":"/srv/data/b","flags":1,"decision":"audit-allow"}
{"ts":1.5,"library":"/l.so","op":"open","path":"/srv/out/new","flags":577,"decision":"audit-allow"}
{"ts":1.5,"library":"/l.so","op":"open","path":"/etc/shadow","flags":0,"decision":"deny","errno":13}
{"ts":1.5,"library":"/l.so","op":"connect","host":"::1","port":6379,"udp":false,"decision":"audit-allow"}
{"ts":1.5,"library":"/l.so","op":"listen","host":"127.0.0.1","port":5353,"udp":true,"decision":"audit-allow"}
{"ts":1.5,"library":"/l.so","op":"resolve","host":"db.internal","decision":"audit-allow"}
LOG
"$NIFKIT" policy suggest "$dir/audit.log" > "$dir/policy.json" || fail "suggest exited $?"
"$NIFKIT" policy check "$dir/policy.json" > /dev/null || fail "the suggested policy does not load: $(cat "$dir/policy.json")"
for want in '{"path": "/srv/data", "access": "read-write"}' '{"path": "/srv/out", "access": "create"}' \
            '"connect": ["[::1]:6379"]' '"listen": ["udp:127.0.0.1:5353"]' '"resolve": ["db.internal"]'; do
        grep -qF "$want" "$dir/policy.json" || fail "missing $want in $(cat "$dir/policy.json")"
done
grep -q '/etc' "$dir/policy.json" && fail "a refused open became a grant"
echo "ok: suggest from a log"

printf '%s\n' '{"op":"open","path":"/a/b","flags":0,"decision":"allow"}' 'not json' > "$dir/bad.log"
"$NIFKIT" policy suggest "$dir/bad.log" > /dev/null 2> "$dir/err"
[ $? -eq 1 ] || fail "a malformed log must exit 1"
grep -q "line 2" "$dir/err" || fail "the error must name line 2: $(cat "$dir/err")"
echo "ok: a malformed log names its line"
"$NIFKIT" policy suggest > /dev/null 2>&1
[ $? -eq 64 ] || fail "suggest without a log is a usage error"
echo "ok: usage"
