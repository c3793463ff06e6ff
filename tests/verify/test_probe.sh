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
fixed_pid=${pids##* }
# A first request to each compiles Node's HTTP path: under load that alone
# can take longer than the example's 50 ms database round trip, which would
# serialise the copies of the first race.
printf 'PUT /users/warm-up/grants/pro HTTP/1.1\r\nHost: x\r\n\r\n' > "$tmp/warm"
for p in "$racy" "$fixed"; do
    "$RF_BIN" probe --request "$tmp/warm" --url "http://127.0.0.1:$p" --copies 2 > /dev/null 2>&1
done

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

# A chunked answer is read whole (de-chunked), and each round's race signs
# are its own: 1 x 201 per round over 3 rounds is no race.
"$RF_NODE" -e '
let n = 0;
require("node:http").createServer((req, res) => {
  req.resume();
  res.writeHead(n++ % 8 ? 200 : 201, { "Content-Type": "text/plain" });
  res.write("chunk-"); setTimeout(() => res.end("ed"), 5);
}).listen(0, "127.0.0.1", function () { console.log(`listening on ${this.address().port}`); });
' > "$tmp/chunked.out" 2>&1 &
pids="$pids $!"
i=0
while ! grep -q '^listening on ' "$tmp/chunked.out"; do
    i=$((i + 1)); [ $i -le 100 ] || fail "chunked server did not start"
    sleep 0.1
done
chunked=$(sed -n 's/^listening on //p' "$tmp/chunked.out")
printf 'GET /c HTTP/1.1\r\nHost: x\r\n\r\n' > "$tmp/get"
"$RF_BIN" probe --request "$tmp/get" --url "http://127.0.0.1:$chunked" --copies 8 --rounds 3 \
    > "$tmp/out" 2> "$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "chunked: exit $rc, want 0: $(cat "$tmp/out" "$tmp/err")"
grep -q '^ *3 x 201  chunk-ed$' "$tmp/out" || fail "chunked: want 3 x 201 chunk-ed: $(cat "$tmp/out")"
grep -q '^ *21 x 200  chunk-ed$' "$tmp/out" || fail "chunked: want 21 x 200: $(cat "$tmp/out")"

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
kill "$fixed_pid"; wait "$fixed_pid" 2>/dev/null
refuse refused "curl http://127.0.0.1/a" "http://127.0.0.1:$fixed" "cannot connect"

for p in $pids; do kill "$p" 2>/dev/null; done
rm -rf "$tmp"
echo "ok"
