#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# A library's entitlements through the tool: nifkit inspect prints them,
# nifkit wrap shows them, writes the intersection with the operator's
# policy and lists the differences, --strict refuses, and a malformed or
# over-reaching document is refused with the library and the place.
#
# Environment (set by meson): NIFKIT, NIFKIT_HOST, NIFKIT_PROXY,
# NK_TEST_NIF_ENTITLED (declares entitlements), NK_TEST_NIF_GOOD (does not).
set -u
. "$(dirname "$0")/../../lib/tap.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nifkit-ent-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unshare -U true 2>/dev/null || export NIFKIT_UNSANDBOXED_DEVELOPMENT=1
cat >"$tmp/policy.json" <<'EOT'
{"nifkit_policy": 1, "cgroup": "best-effort",
 "limits": {"memory_mb": 512, "pids": 32},
 "files": [{"path": "/var/lib", "access": "read"}],
 "network": {"connect": ["db.internal:5432", "192.0.2.1:80"], "resolve": ["db.internal"]}}
EOT
lib=$NK_TEST_NIF_ENTITLED

# inspect
"$NIFKIT" inspect --policy "$tmp/policy.json" "$lib" >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
check "inspect succeeds (status $rc)" test $rc -eq 0
check "and prints where the entitlements are" grep -q "^entitlements ($lib\[.nifkit_entitlements\]):\$" "$tmp/out"
check "and each of them" sh -c "grep -qx '  files: /var/lib/nk-entitled (read)' '$tmp/out' &&
        grep -qx '  network.connect: db.internal:5432' '$tmp/out' && grep -qx '  limits.memory_mb: 128' '$tmp/out'"
"$NIFKIT" inspect --policy "$tmp/policy.json" "$NK_TEST_NIF_GOOD" >"$tmp/out" 2>&1
check "a library without them says none are declared" grep -q '^entitlements: none declared' "$tmp/out"

# wrap: the intersection, and the differences listed
"$NIFKIT" wrap --policy "$tmp/policy.json" "$lib" -o "$tmp/w" >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
check "wrap succeeds (status $rc)" test $rc -eq 0
check "and shows the entitlements" grep -qx '  files: /var/lib/nk-entitled (read)' "$tmp/out"
check "and lists what differs: a grant not requested" \
        grep -qx '  network.connect: 192.0.2.1:80 is granted but not requested: dropped' "$tmp/out"
check "a request above the grant" grep -qx '  limits.pids: 64 is requested but 32 granted' "$tmp/out"
check "a request below it" grep -qx '  limits.memory_mb: 128 is requested, below the 512 granted: 128' "$tmp/out"
pol=$tmp/w/nk_test_nif_entitled.policy.json
check "the written policy is valid" sh -c "'$NIFKIT' policy check '$pol' >/dev/null"
check "and is the intersection: the file grant narrowed to the request" \
        sh -c "grep -q '\"path\": \"/var/lib/nk-entitled\"' '$pol' && ! grep -q '\"path\": \"/var/lib\"' '$pol'"
check "the endpoint not requested dropped" sh -c "! grep -q '192.0.2.1' '$pol' && grep -q 'db.internal:5432' '$pol'"
check "the lower memory ceiling, the operator's pids" \
        sh -c "grep -q '\"memory_mb\": 128' '$pol' && grep -q '\"pids\": 32' '$pol'"
check "the operator's other choices kept" grep -q '"cgroup": "best-effort"' "$pol"
"$NIFKIT" call --policy "$pol" "$tmp/w/nk_test_nif_entitled.real.so" hello >"$tmp/out" 2>&1
check "a host runs under it" grep -qx entitled "$tmp/out"

# --strict
"$NIFKIT" wrap --strict --policy "$tmp/policy.json" "$lib" -o "$tmp/strict" >"$tmp/out" 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/err"
check "--strict refuses when they differ (status $rc)" test $rc -eq 1
check "and says so" grep -q "^nifkit wrap: --strict: '$lib' asks for what $tmp/policy.json does not grant" "$tmp/err"
check "and writes nothing" test ! -e "$tmp/strict"
cat >"$tmp/exact.json" <<'EOT'
{"nifkit_policy": 1, "cgroup": "best-effort", "limits": {"memory_mb": 128, "pids": 64},
 "files": [{"path": "/var/lib/nk-entitled", "access": "read"}],
 "network": {"connect": ["db.internal:5432"], "resolve": ["db.internal"]}}
EOT
"$NIFKIT" wrap --strict --policy "$tmp/exact.json" "$lib" -o "$tmp/exact" >"$tmp/out" 2>&1
check "--strict wraps when the policy grants exactly what is asked" \
        sh -c "[ $? -eq 0 ] && grep -q 'the policy grants exactly that' '$tmp/out'"

# a sidecar for a library that cannot be rebuilt; malformed and over-reaching documents
cp "$NK_TEST_NIF_GOOD" "$tmp/side.so"
echo '{"files": [{"path": "/var/lib/side", "access": "read"}]}' >"$tmp/side.entitlements.json"
"$NIFKIT" inspect --policy "$tmp/policy.json" "$tmp/side.so" >"$tmp/out" 2>&1
check "a sidecar NAME.entitlements.json is read" \
        sh -c "grep -q '^entitlements ($tmp/side.entitlements.json):' '$tmp/out' && grep -qx '  files: /var/lib/side (read)' '$tmp/out'"
printf '{"files": [{"path": "/var/lib/side",\n  "access": "write"}]}\n' >"$tmp/side.entitlements.json"
"$NIFKIT" wrap --policy "$tmp/policy.json" "$tmp/side.so" -o "$tmp/bad" >/dev/null 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/err"
check "a malformed document is refused (status $rc)" test $rc -eq 1
check "naming the document, line, column and key" \
        grep -q "invalid entitlements: $tmp/side.entitlements.json:2:13: \$.files\[0\].access: expected one of" "$tmp/err"
check "and nothing is written" test ! -e "$tmp/bad"
echo '{"limits": {"memory_mb": 4194304}}' >"$tmp/side.entitlements.json"
"$NIFKIT" wrap --policy "$tmp/policy.json" "$tmp/side.so" -o "$tmp/big" >/dev/null 2>"$tmp/err"
sed 's/^/# /' "$tmp/err"
check "a request beyond what the schema allows is refused" \
        grep -q '$.limits.memory_mb: expected an integer from 1 to 1048576, got 4194304' "$tmp/err"
echo '{"files": [' >"$tmp/side.entitlements.json"
"$NIFKIT" inspect --policy "$tmp/policy.json" "$tmp/side.so" >/dev/null 2>"$tmp/err"
check "inspect says a broken document is invalid, and fails" \
        sh -c "[ $? -eq 1 ] && grep -q 'nifkit: invalid entitlements: $tmp/side.entitlements.json:' '$tmp/err'"

# wrap-release applies them too, per library
mkdir -p "$tmp/rel/releases/1" "$tmp/rel/lib/entitled-1.0/priv" "$tmp/pols"
cp "$lib" "$tmp/rel/lib/entitled-1.0/priv/nk_test_nif_entitled.so"
cp "$tmp/policy.json" "$tmp/pols/entitled.json"
"$NIFKIT" wrap-release --strict --policies "$tmp/pols" "$tmp/rel" >"$tmp/out" 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/out" "$tmp/err"
check "wrap-release --strict refuses a library whose entitlements differ (status $rc)" \
        sh -c "[ $rc -eq 1 ] && [ ! -e '$tmp/rel/lib/entitled-1.0/priv/nk_test_nif_entitled.real.so' ]"
"$NIFKIT" wrap-release --policies "$tmp/pols" "$tmp/rel" >"$tmp/out" 2>&1
sed 's/^/# /' "$tmp/out"
check "without --strict it wraps it with its entitlements" \
        grep -q '^entitled .* wrapped (with its entitlements)$' "$tmp/out"
check "under the intersection" grep -q '"memory_mb": 128' "$tmp/rel/lib/entitled-1.0/priv/nk_test_nif_entitled.policy.json"
"$NIFKIT" wrap-release --policies "$tmp/pols" "$tmp/rel" >"$tmp/out" 2>&1
check "and a second run finds it unchanged" grep -q '^entitled .* unchanged$' "$tmp/out"
# A sidecar's entitlements are found again once the library is wrapped
# (beside NAME.so, not NAME.real.so): the second run keeps the intersection.
mkdir -p "$tmp/rel/lib/side-1.0/priv"
cp "$NK_TEST_NIF_GOOD" "$tmp/rel/lib/side-1.0/priv/side.so"
echo '{"limits": {"memory_mb": 64}}' >"$tmp/rel/lib/side-1.0/priv/side.entitlements.json"
cp "$tmp/policy.json" "$tmp/pols/side.json"
"$NIFKIT" wrap-release --policies "$tmp/pols" "$tmp/rel" >/dev/null 2>&1
"$NIFKIT" wrap-release --policies "$tmp/pols" "$tmp/rel" >"$tmp/out" 2>&1
sed 's/^/# /' "$tmp/out"
check "a wrapped library's sidecar still counts on the next run" \
        sh -c "grep -q '^side .* unchanged\$' '$tmp/out' && grep -q '\"memory_mb\": 64' '$tmp/rel/lib/side-1.0/priv/side.policy.json'"

# Two versions of one application (a release upgraded in place keeps both):
# its policy and --exclude apply to each.
mkdir -p "$tmp/rel2/releases/1" "$tmp/rel2/lib/dup-1.0/priv" "$tmp/rel2/lib/dup-1.1/priv" "$tmp/pols2"
cp "$NK_TEST_NIF_GOOD" "$tmp/rel2/lib/dup-1.0/priv/dup.so"
cp "$NK_TEST_NIF_GOOD" "$tmp/rel2/lib/dup-1.1/priv/dup.so"
cp "$tmp/policy.json" "$tmp/pols2/dup.json"
"$NIFKIT" wrap-release --dry-run --policies "$tmp/pols2" "$tmp/rel2" >"$tmp/out" 2>&1
sed 's/^/# /' "$tmp/out"
check "an application's policy applies to each of its versions" \
        test "$(grep -c "^dup .*$tmp/pols2/dup.json *would wrap\$" "$tmp/out")" -eq 2
"$NIFKIT" wrap-release --dry-run --exclude dup "$tmp/rel2" >"$tmp/out" 2>&1
check "and --exclude too" test "$(grep -c '^dup .*skipped: excluded' "$tmp/out")" -eq 2

tap_end
