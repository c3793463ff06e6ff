#!/usr/bin/env bash
# install_test.sh - `cmake --install` into a temporary DESTDIR, as a user or
# a package build does, and then use what was installed, never the build
# tree:
#   - the files: the racefree binary (--version and version print the
#     version and the commit), the three headers, the
#     static library, the shared library as libracefree.so ->
#     libracefree.so.0 (its SONAME) -> libracefree.so.<version>, racefree.pc,
#     racefree(1) and racefree(3), LICENSE, CHANGELOG.md, the systemd unit
#     and examples/embed.c;
#   - the shared library exports exactly the functions racefree.h declares
#     with RF_API: every one starts with rf_, no rf_test_* hook, nothing
#     internal (nm -D --defined-only);
#   - racefree(3) lists every code of the library's error list;
#   - examples/embed.c builds with `pkg-config --cflags --libs racefree`
#     (PKG_CONFIG_PATH in the DESTDIR), links the installed libracefree.so.0
#     and prints what it did; linked again with libracefree.a and the
#     packages and libraries racefree.pc's Requires.private and Libs.private
#     name, it needs no libracefree.so at all.
# Environment (tests/install/CMakeLists.txt): RF_SOURCE_DIR, RF_BUILD_DIR,
# RF_CC, RF_LIBDIR, RF_INCLUDEDIR, RF_MANDIR, RF_DOCDIR, RF_BINDIR,
# RF_VERSION, RF_SANITIZE_FLAGS.
set -euo pipefail

fail() { echo "install_test: $*" >&2; exit 1; }

WORK="$(mktemp -d /tmp/rf-install-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/dest"
PREFIX=/usr/local
ROOT="$DEST$PREFIX"
LIB="$ROOT/$RF_LIBDIR"

DESTDIR="$DEST" cmake --install "$RF_BUILD_DIR" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log" >&2; fail "cmake --install failed"; }

# ---- the files -------------------------------------------------------------
for f in "$RF_BINDIR/racefree" "$RF_INCLUDEDIR/racefree.h" "$RF_INCLUDEDIR/racefree_errors.h" \
         "$RF_INCLUDEDIR/racefree_version.h" "$RF_LIBDIR/libracefree.a" \
         "$RF_LIBDIR/libracefree.so.$RF_VERSION" "$RF_LIBDIR/pkgconfig/racefree.pc" \
         "$RF_MANDIR/man1/racefree.1" "$RF_MANDIR/man3/racefree.3" \
         "$RF_DOCDIR/LICENSE" "$RF_DOCDIR/CHANGELOG.md" "$RF_DOCDIR/racefree.service" \
         "$RF_DOCDIR/embed.c"; do
  [ -f "$ROOT/$f" ] || fail "not installed: $PREFIX/$f"
done
MAJOR="${RF_VERSION%%.*}"
[ "$(readlink "$LIB/libracefree.so")" = "libracefree.so.$MAJOR" ] ||
  fail "libracefree.so -> $(readlink "$LIB/libracefree.so"), not libracefree.so.$MAJOR"
[ "$(readlink "$LIB/libracefree.so.$MAJOR")" = "libracefree.so.$RF_VERSION" ] ||
  fail "libracefree.so.$MAJOR -> $(readlink "$LIB/libracefree.so.$MAJOR")"
soname="$(objdump -p "$LIB/libracefree.so.$RF_VERSION" | awk '$1 == "SONAME" {print $2}')"
[ "$soname" = "libracefree.so.$MAJOR" ] || fail "SONAME is '$soname', not libracefree.so.$MAJOR"
for arg in --version version; do
  "$ROOT/$RF_BINDIR/racefree" "$arg" >"$WORK/version.out"
  grep -q "^racefree $RF_VERSION\( (git [0-9a-f]*)\)\?$" "$WORK/version.out" ||
    fail "racefree $arg printed: $(cat "$WORK/version.out")"
done

# ---- exports: exactly racefree.h's RF_API functions --------------------------
nm -D --defined-only "$LIB/libracefree.so.$RF_VERSION" | awk '{print $3}' |
  grep -v '^__\(asan\|ubsan\|odr_asan\|tsan\)' | sort -u >"$WORK/exported"
sed -n 's/^RF_API [^(]*[ *]\(rf_[a-z0-9_]*\)(.*/\1/p' "$ROOT/$RF_INCLUDEDIR/racefree.h" |
  sort -u >"$WORK/declared"
[ "$(wc -l <"$WORK/declared")" -ge 70 ] || fail "read too few RF_API declarations from racefree.h"
bad="$(grep -v '^rf_' "$WORK/exported" || true)"
[ -z "$bad" ] || fail "exported symbols not starting with rf_: $(echo $bad)"
hooks="$(grep '^rf_test_' "$WORK/exported" || true)"
[ -z "$hooks" ] || fail "test hooks exported: $(echo $hooks)"
diff -u "$WORK/declared" "$WORK/exported" >"$WORK/exports.diff" ||
  { cat "$WORK/exports.diff" >&2; fail "exports differ from racefree.h's RF_API (- declared, + exported)"; }

# ---- racefree(3) lists every library error code -----------------------------
codes="$(sed -n '/RF_ERRORS_LIBRARY(X)/,/RF_ERRORS_HTTP(X)/p' "$ROOT/$RF_INCLUDEDIR/racefree_errors.h" |
  sed -n 's/.*X(\(RF_[A-Z_]*\), "\([a-z_]*\)".*/\1 \2/p')"
[ "$(echo "$codes" | wc -l)" -ge 30 ] || fail "read too few codes from racefree_errors.h"
while read -r name code; do
  grep -q "^\.BR $name \" ($code)\"" "$ROOT/$RF_MANDIR/man3/racefree.3" ||
    fail "racefree(3) does not list $name ($code)"
done <<<"$codes"

# ---- embed.c against the installed tree, with pkg-config ---------------------
# First in the search path (the system's .pc files, which Requires.private
# names, stay after it).
export PKG_CONFIG_PATH="$LIB/pkgconfig"
[ "$(pkg-config --variable=prefix racefree)" -ef "$ROOT" ] || fail "pkg-config found another racefree.pc"
[ "$(pkg-config --modversion racefree)" = "$RF_VERSION" ] || fail "pkg-config --modversion"
cflags="$(pkg-config --cflags racefree)"
libs="$(pkg-config --libs racefree)"
# libracefree.a's own needs: the packages of Requires.private (their shared
# libraries: Debian's libpq.pc names static archives for --static that
# Debian does not ship) and Libs.private.
requires_private="$(pkg-config --print-requires-private racefree | awk '{print $1}')"
static_libs="$(pkg-config --libs $requires_private) $(sed -n 's/^Libs.private: //p' "$LIB/pkgconfig/racefree.pc")"
cd "$WORK"
# shellcheck disable=SC2086
"$RF_CC" -std=c17 -Wall -Wextra -Werror $RF_SANITIZE_FLAGS $cflags "$ROOT/$RF_DOCDIR/embed.c" \
  -o embed $libs || fail "embed.c does not build with: $cflags $libs"
readelf -d embed | grep -q "NEEDED.*\[libracefree.so.$MAJOR\]" || fail "embed does not need libracefree.so.$MAJOR"
LD_LIBRARY_PATH="$LIB" ldd embed >"$WORK/ldd.out"
grep -qF "libracefree.so.$MAJOR => $LIB/" "$WORK/ldd.out" ||
  fail "embed does not load the installed library"

expect_run() { # $1: the program; the rest: the environment
  local prog="$1"
  shift
  env "$@" "$prog" "sqlite:$WORK/$(basename "$prog").db" >"$WORK/out" 2>&1 ||
    { cat "$WORK/out" >&2; fail "$prog failed"; }
  for line in "racefree $RF_VERSION" "account alice: created" "account bob: created" \
              "1000 to alice (applied)" "1000 to alice (replayed)" \
              "250 from alice to bob, posted" "alice: available 750 EUR" "bob: available 250 EUR"; do
    grep -qF "$line" "$WORK/out" || { cat "$WORK/out" >&2; fail "$prog did not print '$line'"; }
  done
  [ "$(grep -c "to alice (" "$WORK/out")" = 2 ] || fail "$prog: not two credit lines"
}
expect_run ./embed "LD_LIBRARY_PATH=$LIB"

# ---- and libracefree.a: Requires.private and Libs.private are complete -------
# shellcheck disable=SC2086
"$RF_CC" -std=c17 $RF_SANITIZE_FLAGS $cflags "$ROOT/$RF_DOCDIR/embed.c" -o embed-static \
  -Wl,--as-needed "$LIB/libracefree.a" $static_libs ||
  fail "embed.c does not link statically with: $static_libs"
if readelf -d embed-static | grep -q "NEEDED.*libracefree"; then fail "embed-static needs libracefree.so"; fi
expect_run ./embed-static
echo "install_test: ok ($(wc -l <"$WORK/exported") functions exported)"
