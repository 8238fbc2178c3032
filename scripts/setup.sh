#!/usr/bin/env bash
# What `npm start` and `npm test` need before they run: system packages (bootstrap.sh), a
# supported Node, node_modules (npm ci, only when the lockfile or the Node ABI changed), and a
# fresh build. Then runs the command given as arguments, if any, with that Node.
#
# Usage: bash scripts/setup.sh [COMMAND ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh

# Node 22.14+ or 24 first on PATH: the system's when it is one, else a Node 24 from the npm
# registry (node-lts.sh), used for the install, the build and the command.
eval "$(bash scripts/node-lts.sh)"

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

if [ "$#" -gt 0 ]; then exec "$@"; fi
