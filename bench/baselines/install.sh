#!/usr/bin/env bash
# bench/baselines/install.sh - what `make bench` needs beyond scripts/deps.sh,
# installed only when missing and never by `make test`: the baselines' npm
# packages (package-lock.json; better-sqlite3 compiles its addon once, which
# takes minutes) and gnuplot for the chart (bench/report.js draws the SVG
# itself when gnuplot cannot be installed).
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null && command -v npm >/dev/null || {
  echo "install.sh: the baselines need node and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
}
if ! node -e "require('better-sqlite3'); require('pg')" 2>/dev/null; then
  echo "install.sh: npm install (bench/baselines)" >&2
  npm install --no-audit --no-fund --omit-lockfile-registry-resolved >&2
fi

if ! command -v gnuplot >/dev/null; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  echo "install.sh: apt-get install gnuplot-nox" >&2
  { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox ||
    { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends gnuplot-nox; }; } >&2 ||
    echo "install.sh: no gnuplot; the chart is drawn by bench/report.js" >&2
fi
