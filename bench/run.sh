#!/usr/bin/env bash
# bench/run.sh - racefree side by side with the seeds' hand-written fixes
# (bench/baselines/), what `make bench` runs. For each back end, suite and
# number of connections it runs every system on a fresh store, in rounds
# (A B A B: the systems alternate, so drift in the machine hits all alike):
#   sqlite:   racefree serve --sync full       vs Node + better-sqlite3
#   postgres: racefree, 1 process and 3 (--reuse-port on one port)
#             vs Node + pg, 3 cluster workers  (PostgreSQL durable: fsync on)
# Suites: grants, credits (Idempotency-Key, spread over 256 accounts),
# transfers (spread over 256 pairs of accounts), hot (transfers out of one
# account), jobs (the job queue: enqueue, claim 16 at a time, complete; its
# rps column is jobs completed per second). Then the library itself
# (rf-bench-embedded, 64 threads, with and without an Idempotency-Key).
# Every wrk run is one TSV row in the results file; bench/report.js turns
# them into the top section of docs/PERFORMANCE.md and the chart
# docs/perf/throughput.svg.
#
# Filters: BENCH_SECONDS (5) per run, BENCH_SUITES ("grants credits transfers
# hot jobs embedded"), BENCH_BACKENDS ("sqlite postgres"), BENCH_CONNS ("1 16 64"),
# BENCH_ROUNDS (2), BENCH_RESULTS (docs/perf/bench-results.tsv),
# BENCH_REPORT (1: rewrite docs/PERFORMANCE.md; 0: only the TSV),
# BENCH_RF_ARGS (extra `racefree serve` flags, to try a setting).
# Installs what the baselines need (npm packages, gnuplot) on first use.
# Only loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/racefree
SECS=${BENCH_SECONDS:-5}
SUITES=${BENCH_SUITES:-"grants credits transfers hot jobs embedded"}
BACKENDS=${BENCH_BACKENDS:-"sqlite postgres"}
CONNS=${BENCH_CONNS:-"1 16 64"}
ROUNDS=${BENCH_ROUNDS:-2}
RESULTS=${BENCH_RESULTS:-docs/perf/bench-results.tsv}
PAIRS=256
PG_PROCS=3
WRK_TIMEOUT=10s # past wrk's default 2 s, so slow answers count in p99, not as socket errors
WORK=$(mktemp -d /tmp/rf-bench.XXXXXX)
chmod 755 "$WORK" # the postgres user must reach $WORK/pg
PG_DIR="$WORK/pg"
PIDS=()
STARTED=$(date +%s)
BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
export BENCH_COMMIT # what was measured, for bench/report.js

stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_all
  [ -d "$PG_DIR" ] && scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

bench/baselines/install.sh

# A port nothing listens on (bash's /dev/tcp refuses to connect).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(shuf -i 20000-40000 -n 1)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port" >&2; exit 1
}

wait_healthy() { # log_file...: every server answers /healthz and logged that it listens
  local f
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then
      for f in "$@"; do grep -q listening "$f" || continue 2; done
      return 0
    fi
    grep -qE 'cannot listen|EADDRINUSE' "$@" && return 2 # the port was taken meanwhile
    sleep 0.1
  done
  echo "server did not start:" >&2; tail -n 20 "$@" >&2; exit 1
}

# A fresh store for one run: its URL in STORE.
fresh_store() { # backend run_id
  if [ "$1" = sqlite ]; then
    STORE="sqlite:$WORK/$2.db"
  else
    psql -q "$PG_URL" -c "CREATE DATABASE r$2" >/dev/null
    STORE="${PG_URL%/*}/r$2"
  fi
}
drop_store() { # backend run_id
  if [ "$1" = sqlite ]; then rm -f "$WORK/$2.db" "$WORK/$2.db-wal" "$WORK/$2.db-shm"
  else psql -q "$PG_URL" -c "DROP DATABASE r$2" >/dev/null; fi
}

# Starts one system on STORE; its token in TOKEN, its port in PORT. Another
# program on the machine may take the free port first: then again elsewhere.
start_system() { # system
  local try
  if [[ $1 == racefree* ]]; then
    "$BIN" migrate --db "$STORE" >/dev/null 2>&1 # keys refuses a store that does not exist
    TOKEN=$("$BIN" keys create --db "$STORE" --role service --name bench | tail -n 1)
  fi
  for try in 1 2 3 4 5; do
    start_on_free_port "$1" && return 0
    stop_all
  done
  echo "no port for $1" >&2; exit 1
}

start_on_free_port() { # system
  PORT=$(free_port)
  local logs=() i n=1
  case $1 in
  racefree*)
    if [ "$1" != racefree ]; then n=${1#racefree-}; fi
    for i in $(seq 1 "$n"); do
      local args=(serve --db "$STORE" --listen "127.0.0.1:$PORT")
      if [ "$BACKEND" = sqlite ]; then args+=(--sync full); fi
      if [ "$n" -gt 1 ]; then args+=(--reuse-port); fi
      # shellcheck disable=SC2206 # words on purpose: extra serve flags
      args+=(${BENCH_RF_ARGS:-})
      "$BIN" "${args[@]}" >"$WORK/rf$i.out" 2>"$WORK/rf$i.err" &
      PIDS+=($!); logs+=("$WORK/rf$i.err")
    done ;;
  node-*)
    TOKEN="bench-$RANDOM$RANDOM$RANDOM"
    echo listening >"$WORK/node.err" # Node says nothing; /healthz is the sign
    BASELINE_TOKEN=$TOKEN BASELINE_LISTEN="127.0.0.1:$PORT" BASELINE_DB="${STORE#sqlite:}" \
      BASELINE_PG_URL="$STORE" BASELINE_WORKERS=$PG_PROCS \
      node "bench/baselines/${1#node-}.js" >"$WORK/node.out" 2>>"$WORK/node.err" &
    PIDS+=($!); logs+=("$WORK/node.err") ;;
  esac
  wait_healthy "${logs[@]}"
}

# One wrk run of one suite on the running system: a TSV row on stdout.
measure() { # suite system conns round
  local suite=$1 c=$3 prefix="b$RANDOM$RANDOM" script mode=distinct t=$(( $3 < 2 ? 1 : 2 ))
  case $suite in
  grants) script=grant.lua ;;
  jobs) script=jobs.lua ;;
  credits) script=credit.lua; node bench/setup.js "http://127.0.0.1:$PORT" "$TOKEN" "$prefix" $PAIRS credits ;;
  transfers|hot)
    script=transfer.lua; [ "$suite" = hot ] && mode=hot
    node bench/setup.js "http://127.0.0.1:$PORT" "$TOKEN" "$prefix" $PAIRS transfers ;;
  esac
  local out
  out=$(RF_BENCH_KEY=$TOKEN RF_BENCH_PREFIX=$prefix RF_BENCH_MODE=$mode RF_BENCH_PAIRS=$PAIRS \
        wrk -t$t -c"$c" -d"${SECS}s" --timeout "$WRK_TIMEOUT" -s "bench/$script" "http://127.0.0.1:$PORT" | grep '^RESULT')
  # RESULT requests=N rps=R p50_ms=A p99_ms=B non2xx=E socket_errors=S
  local f=() k
  for k in rps p50_ms p99_ms non2xx socket_errors requests; do
    f+=("$(sed -E "s/.*[ ]$k=([0-9.]+).*/\\1/" <<<" $out")")
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$suite" "$BACKEND" "$2" "$c" "$4" "${f[@]}" "$SECS"
}

run_backend() { # backend systems...
  BACKEND=$1; shift
  local suite c round sys id=0
  for suite in $SUITES; do
    [ "$suite" = embedded ] && continue
    for c in $CONNS; do
      for round in $(seq 1 "$ROUNDS"); do
        for sys in "$@"; do
          id=$((id + 1)); fresh_store "$BACKEND" "$id"
          start_system "$sys"
          measure "$suite" "$sys" "$c" "$round" | tee -a "$RESULTS"
          stop_all; drop_store "$BACKEND" "$id"
        done
      done
    done
  done
}

# Modes: key and nokey, 64 threads blocking in rf_credit_apply (64 calls in
# flight); submit, 4 threads keeping 256 keyed credits each in flight
# through rf_op_submit (1024). The conns column is the calls in flight.
run_embedded() {
  local mode round out args inflight
  for round in $(seq 1 "$ROUNDS"); do
    for mode in key nokey submit; do
      case $mode in
      key) args=(--threads 64); inflight=64 ;;
      nokey) args=(--threads 64 --no-key); inflight=64 ;;
      submit) args=(--threads 4 --window 256); inflight=1024 ;;
      esac
      out=$(build/rf-bench-embedded "${args[@]}" --seconds "$SECS" --dir "$WORK")
      # RESULT mode=M threads=T window=W seconds=S ops=N ops_s=R p50_ms=A p99_ms=B failed=F
      printf 'embedded-%s\tsqlite\tlibrary\t%s\t%s\t%s\t%s\t%s\t%s\t0\t%s\t%s\n' "$mode" "$inflight" "$round" \
        $(sed -E 's/.*ops=([0-9]+) ops_s=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+) failed=([0-9]+).*/\2 \3 \4 \5 \1/' <<<"$out") \
        "$SECS" | tee -a "$RESULTS"
    done
  done
}

mkdir -p "$(dirname "$RESULTS")"
printf 'suite\tbackend\tsystem\tconns\tround\trps\tp50_ms\tp99_ms\tnon2xx\tsocket_errors\trequests\tseconds\n' >"$RESULTS"
for b in $BACKENDS; do
  case $b in
  sqlite) run_backend sqlite racefree node-sqlite ;;
  postgres)
    PG_URL=$(RF_PG_DURABLE=1 scripts/pg.sh start "$PG_DIR" | tail -n 1)
    run_backend postgres "racefree-1" "racefree-$PG_PROCS" "node-pg"
    scripts/pg.sh stop "$PG_DIR" >/dev/null ;;
  *) echo "unknown back end $b" >&2; exit 1 ;;
  esac
done
[[ " $SUITES " == *" embedded "* ]] && run_embedded
echo "bench: $(( $(date +%s) - STARTED )) s, rows in $RESULTS" >&2
if [ "${BENCH_REPORT:-1}" = 1 ]; then
  node bench/report.js "$RESULTS" docs/PERFORMANCE.md docs/perf "$(( $(date +%s) - STARTED ))"
fi
