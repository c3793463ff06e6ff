#!/usr/bin/env bash
# test_mutants_apply.sh - every patch of tests/mutants/ still applies to the
# source tree (git apply --check: nothing is changed). A refactor that moves
# a mutant's lines leaves `make mutants` stopping at that patch; this makes
# the refactor's own `make test` say so, naming the patch to regenerate.
set -euo pipefail
ROOT="${1:?usage: test_mutants_apply.sh SOURCE_DIR}"
cd "$ROOT"
bad=0
n=0
for p in tests/mutants/*.patch; do
  n=$((n + 1))
  if ! git apply --check "$p" 2>/tmp/mutant-apply.$$; then
    echo "FAIL: $p no longer applies (regenerate it: apply by hand, git diff):"
    sed 's/^/  /' /tmp/mutant-apply.$$
    bad=$((bad + 1))
  fi
done
rm -f /tmp/mutant-apply.$$
echo "$n mutant patches, $bad not applying"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
