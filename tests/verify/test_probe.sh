#!/bin/sh
# test_probe.sh - `racefree probe` against the two example servers of
# examples/probe: it must find the check-then-insert race in grant_racy.js
# (exit 1, more than one 201 in a round) and none in grant_fixed.js (exit 0,
# exactly one 201), from the raw request file and from the curl line; and it
# must refuse what it cannot do with exit 2 and a reason (https, an
# unsupported curl option, no server listening).
# Env: RF_BIN (racefree), RF_SOURCE_DIR, RF_NODE.
set -u
ex="$RF_SOURCE_DIR/examples/probe"
tmp=$(mktemp -d)
pids=""
fail() { echo "FAIL: $*" >&2; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; exit 1; }

# Starts an example server on a free port; its port into the variable named $2.
start() {
    "$RF_NODE" "$ex/$1" 0 > "$tmp/$1.out" 2>&1 &
    pids="$pids $!"
    i=0
    while ! grep -q '^listening on ' "$tmp/$1.out"; do
        i=$((i + 1)); [ $i -le 100 ] || fail "$1 did not start: $(cat "$tmp/$1.out")"
        sleep 0.1
    done
    eval "$2=\$(sed -n 's/^listening on //p' \"\$tmp/\$1.out\")"
}
start grant_racy.js racy
start grant_fixed.js fixed

# probe FILE PORT USER -> output in $tmp/out, exit code in $rc. USER makes a
# fresh grant per run (each run is its own check-then-insert).
probe() {
    sed "s#/users/[a-z0-9-]*/#/users/$3/#" "$ex/$1" > "$tmp/req"
    "$RF_BIN" probe --request "$tmp/req" --url "http://127.0.0.1:$2" --copies 16 \
        > "$tmp/out" 2> "$tmp/err"
    rc=$?
}
created() { sed -n 's/^ *\([0-9]*\) x 201 .*/\1/p' "$tmp/out" | head -1; }

for f in grant.http grant.curl; do
    probe $f "$racy" "racy-$f"
    [ $rc -eq 1 ] || fail "$f vs racy: exit $rc, want 1: $(cat "$tmp/out" "$tmp/err")"
    n=$(created)
    [ "${n:-0}" -gt 1 ] || fail "$f vs racy: $n x 201, want more than one: $(cat "$tmp/out")"
    grep -q 'RACE SIGN in 1 of 1 round ' "$tmp/out" || fail "$f vs racy: no verdict line"

    probe $f "$fixed" "fixed-$f"
    [ $rc -eq 0 ] || fail "$f vs fixed: exit $rc, want 0: $(cat "$tmp/out" "$tmp/err")"
    [ "$(created)" = 1 ] || fail "$f vs fixed: want exactly 1 x 201: $(cat "$tmp/out")"
    grep -q '^ *15 x 200 ' "$tmp/out" || fail "$f vs fixed: want 15 x 200: $(cat "$tmp/out")"
done

# What it refuses: exit 2 with the reason on stderr.
refuse() { # WHAT FILE-CONTENT URL EXPECTED-TEXT
    printf '%s' "$2" > "$tmp/bad"
    "$RF_BIN" probe --request "$tmp/bad" --url "$3" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    [ $rc -eq 2 ] || fail "$1: exit $rc, want 2"
    grep -q -- "$4" "$tmp/err" || fail "$1: stderr lacks '$4': $(cat "$tmp/err")"
}
refuse https "curl http://x/a" "https://127.0.0.1:$fixed" "no TLS here"
refuse option "curl -F a=b http://127.0.0.1/a" "http://127.0.0.1:$fixed" "'-F' is not supported"
refuse datafile "curl -d @body.json http://127.0.0.1/a" "http://127.0.0.1:$fixed" "data from a file"
refuse shellvar 'curl -H "Authorization: Bearer $KEY" http://127.0.0.1/a' \
    "http://127.0.0.1:$fixed" "needs a shell to expand it"
refuse rawline "GIVE ME /a" "http://127.0.0.1:$fixed" "is not 'METHOD TARGET HTTP/1.x'"
# A port nothing listens on: the port of a server just stopped.
kill "${pids##* }"; wait "${pids##* }" 2>/dev/null
refuse refused "curl http://127.0.0.1/a" "http://127.0.0.1:$fixed" "cannot connect"

for p in $pids; do kill "$p" 2>/dev/null; done
rm -rf "$tmp"
echo "ok"
