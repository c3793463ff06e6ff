#!/usr/bin/env bash
# scripts/fuzz.sh - builds the libFuzzer targets of tests/fuzz with clang
# (RF_FUZZ=ON: -fsanitize=fuzzer,address,undefined) in build-fuzz/, then for
# each target:
#   1. replays every kept regression input (tests/fuzz/regressions/<target>/):
#      a crash found once must stay fixed;
#   2. fuzzes for FUZZ_SECONDS, starting from the seed corpus
#      (tests/fuzz/corpus/<target>/, read only) and from what earlier runs
#      found (build-fuzz/corpus/<target>/, where new inputs are written),
#      with tests/fuzz/<target>.dict as its dictionary when there is one.
# A crash, a sanitizer report or a broken invariant fails the target; its
# input is left in build-fuzz/crashes/<target>/. Prints one line per target
# (seconds, executions) and the total, and exits non-zero if any failed.
#
#   FUZZ_SECONDS  seconds of fuzzing per target (default 60; `make test`: 10)
#   FUZZ_TARGETS  the targets to run (default: every tests/fuzz/fuzz_*.c)
#   FUZZ_BUILD    the build directory (default build-fuzz)
# `make fuzz` runs it; scripts/test.sh runs it as its "fuzz" variant.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_EACH="${FUZZ_SECONDS:-60}"
BUILD="${FUZZ_BUILD:-build-fuzz}"
JOBS="$(nproc 2>/dev/null || echo 2)"
if [ -z "${FUZZ_TARGETS:-}" ]; then
  FUZZ_TARGETS="$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')"
fi
case "$SECONDS_EACH" in
  ''|*[!0-9]*|0) echo "fuzz.sh: FUZZ_SECONDS must be a positive integer" >&2; exit 2 ;;
esac
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang is needed (libFuzzer); scripts/deps.sh installs it" >&2
  exit 2
fi

mkdir -p "$BUILD"
started="$(date +%s)"
echo "== fuzz: building the targets with clang in $BUILD/"
if ! { cmake -S . -B "$BUILD" -DRF_FUZZ=ON -DCMAKE_C_COMPILER=clang &&
       cmake --build "$BUILD" -j "$JOBS" --target fuzz_targets; } >"$BUILD/fuzz-build.log" 2>&1; then
  tail -n 60 "$BUILD/fuzz-build.log" >&2
  echo "fuzz.sh: the build failed (log: $BUILD/fuzz-build.log)" >&2
  exit 1
fi

built="$(date +%s)"

# ASan's leak check and UBSan's stop on the first report (the build already
# makes UBSan fatal); libFuzzer's own -timeout bounds one input.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=0
total=0
rows=()
for t in $FUZZ_TARGETS; do
  bin="$BUILD/tests/fuzz/$t"
  log="$BUILD/fuzz-$t.log"
  reg="tests/fuzz/regressions/$t"
  mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t"
  if [ ! -x "$bin" ]; then
    rows+=("$(printf '%-18s %s' "$t" 'FAILED: not built')"); failed=1; continue
  fi
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    if ! "$bin" -artifact_prefix="$BUILD/crashes/$t/" "$reg"/* >"$log.regressions" 2>&1; then
      tail -n 40 "$log.regressions" >&2
      rows+=("$(printf '%-18s %s' "$t" "FAILED: a kept regression input crashes ($log.regressions)")")
      failed=1
      continue
    fi
  fi
  echo "== fuzz: $t for ${SECONDS_EACH}s"
  dict=()  # tests/fuzz/<target>.dict: tokens worth trying (JSON, field names)
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  rc=0
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$BUILD/crashes/$t/" "$BUILD/corpus/$t" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  runs="${runs:-0}"
  total=$((total + runs))
  if [ "$rc" -eq 0 ]; then
    rows+=("$(printf '%-18s ok      %4ss %12s executions' "$t" "$SECONDS_EACH" "$runs")")
  else
    grep -E 'ERROR|invariant broken|assertion failed|runtime error|Test unit written' "$log" | head -n 20 >&2 || true
    rows+=("$(printf '%-18s FAILED  %4ss %12s executions (log: %s; input in %s)' \
      "$t" "$SECONDS_EACH" "$runs" "$log" "$BUILD/crashes/$t/")")
    failed=1
  fi
done

echo
echo "== fuzz summary (${SECONDS_EACH}s per target; build $((built - started))s," \
  "all $(( $(date +%s) - started ))s)"
printf '%s\n' "${rows[@]}"
echo "total: $total fuzz executions"
if [ "$failed" -ne 0 ]; then
  echo "fuzz.sh: a target failed; once fixed, keep its input in tests/fuzz/regressions/<target>/" >&2
fi
exit "$failed"
