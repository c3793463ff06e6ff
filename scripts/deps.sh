#!/usr/bin/env bash
# scripts/deps.sh - install the Debian 12 packages racefree needs to build,
# test and benchmark, but only those that are missing.
#
# Fast no-op when everything is present (one dpkg-query call). Otherwise runs
# `apt-get update` once and installs the missing packages, as root directly or
# through sudo. The sanitizer runtimes (libasan8, libubsan1, libtsan2) come
# with gcc 12 itself (libgcc-12-dev depends on them); clang is for the
# libFuzzer targets alone (scripts/fuzz.sh: libFuzzer and clang's sanitizer
# runtimes come with it, through libclang-rt-14-dev).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libsqlite3-dev libpq-dev postgresql
  libjansson-dev libsodium-dev libcmocka-dev
  wrk curl git
  clang
)

missing=()
# dpkg-query prints one "<name> <status>" line per known package; unknown
# packages only produce an error on stderr, so they count as missing too.
installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)"
for p in "${PACKAGES[@]}"; do
  if ! grep -qx "$p install ok installed" <<<"$installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm: the TypeScript client's tests (tests/client) build and run
# it, with its dev packages from npm. Asked for by command, not by package: a
# Node.js installed otherwise (NodeSource's nodejs carries npm itself and
# conflicts with Debian's npm) is used as it is.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "deps.sh: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps.sh: not root and no sudo; please install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
