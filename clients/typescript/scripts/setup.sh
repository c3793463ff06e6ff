#!/usr/bin/env bash
# setup.sh - installs the client's dev dependencies and builds it, as the
# tests (tests/client, `make test`) need it: `npm ci` from the committed
# package-lock.json, skipped while node_modules was installed from this very
# lock file by this Node (a stamp holds the lock's hash), then one `tsc`
# (strict) for the package, its tests, examples/readme.ts and the TypeScript
# example in the repository's README.md.
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
# The README's TypeScript example, as printed there, must compile too.
mkdir -p .readme
awk '/^## TypeScript client/ {in_s=1} in_s && /^```ts$/ {in_b=1; next} in_b && /^```$/ {exit} in_b' \
  ../../README.md >.readme/snippet.ts
[ -s .readme/snippet.ts ] || { echo "setup.sh: no \`\`\`ts block under '## TypeScript client' in README.md" >&2; exit 1; }
# One tsc run (strict) for the package, its tests, examples/readme.ts and the
# README's example: "racefree" is mapped to src/, and at run time the
# package's own exports resolve it to dist/src.
rm -rf dist
node_modules/.bin/tsc -p tsconfig.test.json
echo "setup.sh: built dist/ (package, tests, examples/readme.ts)"
