#!/usr/bin/env bash
# scripts/mutants.sh - the mutation harness (`make mutants`): proves that the
# tests catch the bugs racefree exists to prevent.
#
# Each tests/mutants/NN_name.patch re-introduces one bug class. For each, in
# turn: apply it to a COPY of the tree (build-mutants/tree; the checkout is
# never patched), rebuild incrementally in build-mutants/build, run the tests
# its header names on SQLite and on PostgreSQL, and revert it (also on failure
# or interrupt). A mutant is caught on a back end when at least one named test
# fails there. Prints a markdown table (also written to build-mutants/mutants.md)
# and exits non-zero if a mutant survives on a back end where it can matter,
# or if a named test fails before any mutant is applied (then "caught" would
# mean nothing).
#
# A patch's header (the text before its first "diff --git" line, which git
# apply ignores) holds one "# key: value" per line:
#   # mutant: <short name>               the table's first column
#   # bug class: <the race or bug>       the table's second column
#   # tests: <ctest names without .sqlite/.postgres, space separated>
#   # sqlite: n/a - <why it cannot matter there>      (optional)
#   # postgres: n/a - <why it cannot matter there>    (optional)
#   # pending: <tests in flight elsewhere that should catch it>  (optional, shown in the table)
#
#   scripts/mutants.sh                  every mutant
#   scripts/mutants.sh 03 retry         only patches whose file name contains one of the words
# Environment: RACEFREE_TEST_PG_URL reuses a running PostgreSQL instead of
# starting a throwaway one; RF_MUTANTS_BASELINE=0 skips the unmutated run;
# RF_MUTANTS_JOBS (default 1) is ctest -j.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/build-mutants"
TREE="$OUT/tree"
BUILD="$OUT/build"
LOGS="$OUT/logs"
JOBS="$(nproc 2>/dev/null || echo 2)"
CTEST_JOBS="${RF_MUTANTS_JOBS:-1}"
mkdir -p "$TREE" "$BUILD" "$LOGS"
# git apply inside $TREE must not find the checkout's repository above it:
# from a repository's subdirectory it would skip, silently, every path
# outside that subdirectory.
export GIT_CEILING_DIRECTORIES="$OUT"

APPLIED=""   # the patch now applied to $TREE, reverted by the EXIT trap
PG_DIR=""

revert_applied() {
  if [[ -n "$APPLIED" ]]; then
    (cd "$TREE" && git apply -R "$APPLIED") || echo "mutants.sh: could not revert $APPLIED in $TREE" >&2
    APPLIED=""
  fi
}

cleanup() {
  local rc=$?
  revert_applied
  if [[ -n "$PG_DIR" ]]; then
    scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Copies every tracked (and untracked, not ignored) file into $TREE when it
# differs, so an unchanged file keeps its mtime and the rebuild stays
# incremental; a file left patched by a killed run is restored here too.
sync_tree() {
  local f
  while IFS= read -r f; do
    [[ -f "$f" ]] || continue
    if ! cmp -s "$f" "$TREE/$f"; then
      mkdir -p "$TREE/$(dirname "$f")"
      cp "$f" "$TREE/$f"
    fi
  done < <(git ls-files --cached --others --exclude-standard)
}

# header_field FILE KEY: the value of "# KEY: value", empty if absent.
header_field() {
  sed -n '/^diff --git/q; s/^# '"$2"': *//p' "$1" | head -n 1
}

build() {
  cmake --build "$BUILD" -j "$JOBS" >"$LOGS/build.log" 2>&1
}

# run_tests BACKEND NAMES...: runs NAME.BACKEND for each name; prints the
# names that failed (without the suffix). Exit 2 if a named test is missing.
run_tests() {
  local backend=$1 log re
  shift
  re="^($(IFS='|'; echo "$*"))\\.$backend\$"
  log="$LOGS/ctest.$backend.log"
  local listed
  listed=$(cd "$BUILD" && ctest -N -R "$re" | sed -n 's/^ *Test *#[0-9]*: //p' | wc -l)
  # A test may exist on one back end only (rf_sqlite_test, rf_postgres_test):
  # those of the list registered for this back end run; none at all is an error.
  if ((listed == 0)); then
    echo "mutants.sh: $backend: none of these tests is registered: $*" >&2
    return 2
  fi
  (cd "$BUILD" && ctest -R "$re" -j "$CTEST_JOBS" --output-on-failure >"$log" 2>&1) || true
  sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\)\.'"$backend"' (.*/\1/p' "$log" | sort -u | tr '\n' ' ' | sed 's/ $//'
}

echo "== syncing the tree copy in $TREE"
sync_tree

if [[ -z "${RACEFREE_TEST_PG_URL:-}" ]]; then
  PG_DIR="$(mktemp -d /tmp/rf-mutants-pg.XXXXXX)"
  echo "== starting a throwaway PostgreSQL in $PG_DIR"
  RACEFREE_TEST_PG_URL="$(scripts/pg.sh start "$PG_DIR" | tail -n 1)"
fi
echo "== PostgreSQL at $RACEFREE_TEST_PG_URL"
cmake -S "$TREE" -B "$BUILD" -DRF_TEST_PG_URL="$RACEFREE_TEST_PG_URL" >"$LOGS/cmake.log" 2>&1 \
  || { cat "$LOGS/cmake.log" >&2; exit 1; }

PATCHES=()
for p in tests/mutants/*.patch; do
  if (($# == 0)); then PATCHES+=("$p"); continue; fi
  for w in "$@"; do [[ "$(basename "$p")" == *"$w"* ]] && { PATCHES+=("$p"); break; }; done
done
((${#PATCHES[@]} > 0)) || { echo "mutants.sh: no patch matches: $*" >&2; exit 2; }

# Every test any mutant names, on both back ends, without a mutant: a test
# that fails already would "catch" every mutant.
echo "== building the unmutated tree"
build || { tail -n 40 "$LOGS/build.log" >&2; exit 1; }
if [[ "${RF_MUTANTS_BASELINE:-1}" != 0 ]]; then
  all=$(for p in "${PATCHES[@]}"; do header_field "$p" tests; done | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
  for backend in sqlite postgres; do
    echo "== baseline on $backend: $all"
    # shellcheck disable=SC2086
    failed=$(run_tests "$backend" $all) || exit 1
    if [[ -n "$failed" ]]; then
      echo "mutants.sh: failing without any mutant on $backend: $failed (log: $LOGS/ctest.$backend.log)" >&2
      exit 1
    fi
  done
fi

# One cell: "caught", "n/a: why", or "**SURVIVED**".
cell() {
  local na=$1 failed=$2
  if [[ -n "$na" ]]; then echo "n/a: ${na#n/a - }"
  elif [[ -n "$failed" ]]; then echo "caught"
  else echo "**SURVIVED**"; fi
}

ROWS=()
survivors=0
for p in "${PATCHES[@]}"; do
  name=$(basename "$p" .patch)
  tests=$(header_field "$p" tests)
  [[ -n "$tests" ]] || { echo "mutants.sh: $p names no tests" >&2; exit 2; }
  echo "== [$name] apply, build, run: $tests"
  (cd "$TREE" && git apply "$ROOT/$p") || { echo "mutants.sh: $p does not apply" >&2; exit 1; }
  APPLIED="$ROOT/$p"
  while IFS= read -r f; do
    ! cmp -s "$f" "$TREE/$f" || { echo "mutants.sh: $p left $f unchanged in $TREE" >&2; exit 1; }
  done < <(sed -n 's|^+++ b/||p' "$p")
  declare -A got=([sqlite]="" [postgres]="")
  declare -A na=([sqlite]="$(header_field "$p" sqlite)" [postgres]="$(header_field "$p" postgres)")
  if ! build; then
    tail -n 30 "$LOGS/build.log" >&2
    revert_applied
    ROWS+=("| $name | $(header_field "$p" 'bug class') | build failed | - | - |")
    survivors=$((survivors + 1))
    continue
  fi
  for backend in sqlite postgres; do
    [[ -z "${na[$backend]}" ]] || continue
    # shellcheck disable=SC2086
    got[$backend]=$(run_tests "$backend" $tests) || exit 1
    cp "$LOGS/ctest.$backend.log" "$LOGS/$name.$backend.log"
    echo "   $backend: ${got[$backend]:-nothing failed}"
  done
  revert_applied
  by=$(echo "${got[sqlite]} ${got[postgres]}" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
  s=$(cell "${na[sqlite]}" "${got[sqlite]}")
  g=$(cell "${na[postgres]}" "${got[postgres]}")
  [[ "$s" != "**SURVIVED**" && "$g" != "**SURVIVED**" ]] || survivors=$((survivors + 1))
  pending=$(header_field "$p" pending)
  by=${by% }
  [[ -n "$by" ]] || by="none"
  [[ -z "$pending" ]] || by="$by (pending: $pending)"
  ROWS+=("| $name | $(header_field "$p" 'bug class') | $by | $s | $g |")
done

# The tree copy back to the checkout's state: nothing of a mutant remains.
sync_tree
{
  echo "| mutant | bug class | caught by (failing tests) | sqlite | postgres |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/mutants.md"
echo
if ((survivors > 0)); then
  echo "mutants.sh: $survivors mutant(s) survived where they can matter (logs: $LOGS)"
  exit 1
fi
echo "mutants.sh: every mutant caught where it can matter"
