#!/usr/bin/env bash
# What `npm start` and `npm test` need before they run: system packages (bootstrap.sh),
# node_modules (npm ci, only when the lockfile or the Node ABI changed), and a fresh build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 22 ]; then
  echo "openkvs setup: warning: Node $(node -v) is past end of life; openkvs supports Node 22 and 24" >&2
  echo "  (bash scripts/node-lts.sh prints how to use a Node 24 fetched from the npm registry)" >&2
fi

# node_modules holds native modules (better-sqlite3) built for one Node ABI: reinstall when
# the lockfile or the Node ABI changed.
stamp=node_modules/.openkvs-lock-stamp
want=$(cat package-lock.json; echo "node-abi $(node -p process.versions.modules)")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "openkvs setup: installing npm dependencies"
  npm ci --no-audit --no-fund
  printf '%s\n' "$want" > "$stamp"
fi

npm run --silent build
