#!/usr/bin/env bash
# bench/run.sh - throughput and latency with wrk against a real `racefree
# serve`, on SQLite (--sync full and normal) and PostgreSQL: grants at 1, 16
# and 64 connections; transfers at 64 connections between distinct accounts
# and out of one hot account. Prints one markdown row per run (with the command
# that produced it); `make bench` runs it. BENCH_SECONDS (default 10) sets
# each run's length. Only loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/racefree
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-"1 16 64"}
WORK=$(mktemp -d /tmp/rf-bench.XXXXXX)
chmod 755 "$WORK" # the postgres user must reach $WORK/pg
PG_DIR="$WORK/pg"
SERVER_PID=""

cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -d "$PG_DIR" ] && scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A port nothing listens on (bash's /dev/tcp refuses to connect).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(shuf -i 20000-40000 -n 1)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port" >&2; exit 1
}

start_server() { # db_url extra_args...
  local db=$1; shift
  PORT=$(free_port)
  "$BIN" serve --db "$db" --listen "127.0.0.1:$PORT" "$@" >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; tail -n 20 "$WORK/server.err" >&2; exit 1
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
}

# One wrk run, printed as a markdown row: label, connections, script, mode.
wrk_row() { # label conns script key mode serve_args_text
  local label=$1 c=$2 script=$3 key=$4 mode=$5 serve=$6
  local t=$(( c < 2 ? 1 : 2 ))
  local cmd="wrk -t$t -c$c -d${SECONDS_PER_RUN}s -s bench/$script http://127.0.0.1:PORT"
  local out
  out=$(RF_BENCH_KEY=$key RF_BENCH_PREFIX=$PREFIX RF_BENCH_MODE=$mode RF_BENCH_PAIRS=$PAIRS \
        wrk -t$t -c$c -d${SECONDS_PER_RUN}s -s "bench/$script" "http://127.0.0.1:$PORT" | grep '^RESULT')
  # RESULT requests=N rps=R p50_ms=A p99_ms=B non2xx=E socket_errors=S
  local rps p50 p99 non2xx
  rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$out")
  p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$out")
  p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$out")
  non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$out")
  echo "| $label | $c | $rps | $p50 | $p99 | $non2xx | \`racefree serve $serve ; $cmd\` |"
}

api() { # method path body: one setup request with the bench key
  curl -sf -X "$1" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: setup-$RANDOM$RANDOM$RANDOM" -d "$3" "http://127.0.0.1:$PORT$2" >/dev/null
}

# src-K and dst-K for K < PAIRS, and "hot"; every source funded generously.
make_accounts() {
  local k
  for k in $(seq 0 $((PAIRS - 1))); do
    api POST /v1/accounts "{\"id\":\"$PREFIX-src-$k\",\"currency\":\"USD\",\"kind\":\"user\"}"
    api POST /v1/accounts "{\"id\":\"$PREFIX-dst-$k\",\"currency\":\"USD\",\"kind\":\"user\"}"
    api POST "/v1/accounts/$PREFIX-src-$k/credits" '{"amount_minor":1000000000}'
  done
  api POST /v1/accounts "{\"id\":\"$PREFIX-hot\",\"currency\":\"USD\",\"kind\":\"user\"}"
  api POST "/v1/accounts/$PREFIX-hot/credits" '{"amount_minor":1000000000000}'
}

run_case() { # label db_url serve_args...
  local label=$1 db=$2; shift 2
  KEY=$("$BIN" keys create --db "$db" --role service --name bench | tail -n 1)
  start_server "$db" "$@"
  local c
  if [[ " $SUITES " == *" grants "* ]]; then
    for c in $CONNS; do
      PREFIX="g$c-$RANDOM$RANDOM"
      wrk_row "grants, $label" "$c" grant.lua "$KEY" - "$*" >>"$WORK/grants.md"
    done
  fi
  if [[ " $SUITES " == *" transfers "* ]]; then
    PREFIX="t$RANDOM$RANDOM"
    make_accounts
    wrk_row "transfers distinct accounts, $label" 64 transfer.lua "$KEY" distinct "$*" >>"$WORK/transfers.md"
    wrk_row "transfers one hot account, $label" 64 transfer.lua "$KEY" hot "$*" >>"$WORK/transfers.md"
  fi
  stop_server
}

SUITES=${BENCH_SUITES:-"grants transfers"}
PAIRS=${BENCH_PAIRS:-256}
: >"$WORK/grants.md"
: >"$WORK/transfers.md"
run_case "sqlite --sync full" "sqlite:$WORK/full.db" --sync full
run_case "sqlite --sync normal" "sqlite:$WORK/normal.db" --sync normal
PG_URL=$(RF_PG_DURABLE=1 scripts/pg.sh start "$PG_DIR" | tail -n 1)
run_case "postgres" "$PG_URL"
header="| case | connections | per second | p50 ms | p99 ms | non-2xx | command |
|---|---|---|---|---|---|---|"
if [ -s "$WORK/grants.md" ]; then echo "### Grants"; echo "$header"; cat "$WORK/grants.md"; echo; fi
if [ -s "$WORK/transfers.md" ]; then echo "### Transfers"; echo "$header"; cat "$WORK/transfers.md"; fi
