#!/usr/bin/env bash
# setup.sh - installs the client's dev dependencies and builds it, as the
# tests (tests/client, `make test`) need it: `npm ci` from the committed
# package-lock.json, skipped while node_modules was installed from this very
# lock file by this Node (a stamp holds the lock's hash), then `tsc` for the
# package and its tests, and `tsc --strict` for examples/readme.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NPM="${RF_NPM:-npm}"
stamp=node_modules/.racefree-lock-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup.sh: npm ci (package-lock.json changed or node_modules missing)"
  "$NPM" ci --no-audit --no-fund --ignore-scripts
  echo "$want" >"$stamp"
fi
rm -rf dist
"$NPM" run --silent build
"$NPM" run --silent typecheck-example
echo "setup.sh: built dist/ (package, tests, examples/readme.ts)"
