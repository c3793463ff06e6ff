#!/usr/bin/env bash
# scripts/test.sh - the whole test suite, as `make test` runs it.
#
# Starts a throwaway PostgreSQL (scripts/pg.sh) that is stopped on any exit,
# then for each variant in RF_TEST_VARIANTS (default "plain asan tsan"):
#   plain -> build/       every test (SQLite and PostgreSQL)
#   asan  -> build-asan/  every test, built with ASan+UBSan
#   tsan  -> build-tsan/  the library and black-box tests (ctest -L 'core|http'), TSan:
#                         the servers the black-box tests start are TSan builds too;
#                         without the labels restart and memory (see run_variant)
#   fuzz  -> build-fuzz/  the libFuzzer targets of tests/fuzz (clang, ASan+UBSan):
#                         their kept regression inputs, then RF_FUZZ_TEST_SECONDS
#                         (default 10) of fuzzing each (scripts/fuzz.sh)
# Prints one summary line per variant and exits non-zero if any failed.
# Dependencies are installed by the Makefile's `deps` target beforehand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VARIANTS="${RF_TEST_VARIANTS:-plain asan tsan fuzz}"
JOBS="$(nproc 2>/dev/null || echo 2)"
CTEST_JOBS="${RF_CTEST_JOBS:-2}"
CTEST_TIMEOUT="${RF_CTEST_TIMEOUT:-300}"

for v in $VARIANTS; do
  case "$v" in
    plain|asan|tsan|fuzz) ;;
    *) echo "test.sh: unknown variant '$v' (plain, asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
done

# ---- throwaway PostgreSQL -------------------------------------------------
PG_DIR="$(mktemp -d /tmp/rf-test-pg.XXXXXX)"
LOG_DIR="$(mktemp -d /tmp/rf-test-logs.XXXXXX)"
cleanup() {
  local rc=$?
  scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every variant but fuzz (which needs no store) runs the PostgreSQL tests.
need_pg=0
for v in $VARIANTS; do
  [ "$v" = fuzz ] || need_pg=1
done
if [ "$need_pg" -eq 1 ]; then
  echo "== starting a throwaway PostgreSQL in $PG_DIR"
  PG_URL="$(scripts/pg.sh start "$PG_DIR" | tail -n 1)"
  if [ -z "$PG_URL" ]; then
    echo "test.sh: scripts/pg.sh start printed no URL" >&2
    exit 1
  fi
  export RACEFREE_TEST_PG_URL="$PG_URL"
  echo "== PostgreSQL at $PG_URL"
fi

# ---- variants -------------------------------------------------------------
declare -A SUMMARY=()
failed=0

run_variant() {
  local v="$1" dir sanitize ctest_args=()
  case "$v" in
    plain) dir=build;      sanitize="" ;;
    asan)  dir=build-asan; sanitize=address ;;
    # TSan leaves out the tests labelled restart (servers killed or their
    # PostgreSQL restarted, round after round): they are about processes
    # dying, the plain and ASan runs cover them, and under TSan they would
    # cost ~90 s of test time for no thread checked that others miss; and
    # the label memory (a process's peak size, which TSan's shadow memory
    # would swamp).
    tsan)  dir=build-tsan; sanitize=thread; ctest_args=(-L 'core|http' -LE 'restart|memory') ;;
  esac
  local log="$LOG_DIR/$v.ctest.log"

  echo "== [$v] configure and build in $dir/"
  if ! cmake -S . -B "$dir" -DRF_SANITIZE="$sanitize" -DRF_TEST_PG_URL="$PG_URL" >"$LOG_DIR/$v.cmake.log" 2>&1; then
    cat "$LOG_DIR/$v.cmake.log" >&2
    SUMMARY[$v]="configure FAILED"
    return 1
  fi
  if ! cmake --build "$dir" -j "$JOBS" >"$LOG_DIR/$v.build.log" 2>&1; then
    tail -n 80 "$LOG_DIR/$v.build.log" >&2
    SUMMARY[$v]="build FAILED (log: $LOG_DIR/$v.build.log)"
    return 1
  fi

  # The PostgreSQL variants must be part of the run (see the guard test in
  # tests/CMakeLists.txt): a run without them is not complete.
  local pg_tests
  pg_tests="$(cd "$dir" && ctest -N -L postgres | sed -n 's/^Total Tests: //p')"
  if [ "${pg_tests:-0}" -eq 0 ]; then
    SUMMARY[$v]="FAILED: no test labelled postgres registered in $dir/"
    return 1
  fi

  echo "== [$v] ctest ${ctest_args[*]:-(all)} ($pg_tests on PostgreSQL)"
  local rc=0
  (
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
    cd "$dir"
    ctest --output-on-failure --no-tests=error -j "$CTEST_JOBS" --timeout "$CTEST_TIMEOUT" "${ctest_args[@]}"
  ) 2>&1 | tee "$log" || rc=$?   # pipefail: ctest's status, tee's is 0
  local line
  line="$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1 || true)"
  if [ "$rc" -eq 0 ]; then
    SUMMARY[$v]="ok: ${line:-ctest passed}"
  else
    SUMMARY[$v]="FAILED: ${line:-ctest exited $rc}"
    return 1
  fi
}

# The fuzz step: bounded by time, not by tests (7 targets x 10 s, plus the
# clang build); fails on any crash, sanitizer report or broken invariant.
run_fuzz() {
  local log="$LOG_DIR/fuzz.log" rc=0
  echo "== [fuzz] the libFuzzer targets, ${RF_FUZZ_TEST_SECONDS:-10}s each, in build-fuzz/"
  FUZZ_SECONDS="${RF_FUZZ_TEST_SECONDS:-10}" FUZZ_BUILD=build-fuzz scripts/fuzz.sh 2>&1 |
    tee "$log" || rc=$?
  local line
  line="$(grep -E '^total: ' "$log" | tail -n 1 || true)"
  if [ "$rc" -eq 0 ]; then
    SUMMARY[fuzz]="ok: ${line:-fuzz.sh passed}"
  else
    SUMMARY[fuzz]="FAILED: ${line:-fuzz.sh exited $rc} (log: $log)"
    return 1
  fi
}

start="$(date +%s)"
for v in $VARIANTS; do
  if [ "$v" = fuzz ]; then
    run_fuzz || failed=1
    continue
  fi
  if ! run_variant "$v"; then
    failed=1
  fi
done

echo
echo "== summary ($(( $(date +%s) - start ))s, logs in $LOG_DIR)"
for v in $VARIANTS; do
  printf '%-6s %s\n' "$v" "${SUMMARY[$v]:-not run}"
done
exit "$failed"
