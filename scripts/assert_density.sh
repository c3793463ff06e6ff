#!/bin/sh
# assert_density.sh - assertion density of src/: lines with RF_ASSERT( or
# assert( per 1,000 non-blank lines, for the whole tree and for each file
# given as an argument (or every .c file of src/ with -a).
# Usage: scripts/assert_density.sh [-a | file...]   (run from the repository root)
set -eu
count() { # file... -> "asserts nonblank"
    cat "$@" | awk '/^[[:space:]]*$/ {next} {n++} /(RF_ASSERT|[^_[:alnum:]]assert)\(/ {a++}
                    END {printf "%d %d\n", a, n}'
}
report() { # label asserts nonblank
    awk -v l="$1" -v a="$2" -v n="$3" 'BEGIN {printf "%-34s %5d asserts %6d lines %6.2f per 1000\n", l, a, n, n ? 1000 * a / n : 0}'
}
files=$(find src -name '*.[ch]' | sort)
# shellcheck disable=SC2086
report src $(count $files)
[ "${1:-}" = -a ] && set -- $(find src -name '*.c' | sort)
for f in "$@"; do report "$f" $(count "$f"); done
