#!/bin/sh
# test_torture_finds.sh - `racefree torture` reports a race where one exists:
# against racy_racefree.js (racefree's grant API with a check-then-insert
# behind it) the grant scenario must print VIOLATION lines, count them in its
# row and exit 1. Without this, a torture whose checks could never fail
# would pass test_torture.c just the same.
# Env: RF_BIN, RF_NODE.
set -u
dir=$(dirname "$0")
tmp=$(mktemp -d)
"$RF_NODE" "$dir/racy_racefree.js" > "$tmp/srv" 2>&1 &
pid=$!
fail() { echo "FAIL: $*" >&2; kill $pid 2>/dev/null; rm -rf "$tmp"; exit 1; }
i=0
while ! grep -q '^listening on ' "$tmp/srv"; do
    i=$((i + 1)); [ $i -le 100 ] || fail "racy_racefree.js did not start: $(cat "$tmp/srv")"
    sleep 0.1
done
port=$(sed -n 's/^listening on //p' "$tmp/srv")
"$RF_BIN" torture --url "http://127.0.0.1:$port" --key admin --scenario grant --rounds 2 \
    --clients 16 --seed 7 > "$tmp/out" 2> "$tmp/err"
rc=$?
cat "$tmp/out"
[ $rc -eq 1 ] || fail "exit $rc, want 1: $(cat "$tmp/err")"
grep -q '^VIOLATION grant: .* x 201 and' "$tmp/out" || fail "no 'x 201' violation line"
grep -Eq '^VIOLATION grant: user .* holds ([2-9]|[1-9][0-9]+) entitlements' "$tmp/out" \
    || fail "no violation for the duplicate rows"
v=$(awk '$1 == "grant" { print $5 }' "$tmp/out")
[ "${v:-0}" -ge 2 ] || fail "the grant row counts $v violations, want at least 2"
grep -q '^result: VIOLATIONS FOUND' "$tmp/out" || fail "no result line"
kill $pid
rm -rf "$tmp"
echo ok
