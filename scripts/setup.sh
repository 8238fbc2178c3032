#!/usr/bin/env bash
# What `npm start` and `npm test` need before they run: system packages (bootstrap.sh),
# node_modules (npm ci, only when the lockfile changed), and a fresh build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh

stamp=node_modules/.openkvs-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "openkvs setup: installing npm dependencies"
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

npm run --silent build
