#!/usr/bin/env bash
# Builds the N-API addon (native/ + kvssink compiled in) with node-gyp into build/Release,
# incrementally. (node-gyp owns build/; the CMake builds live in cmake-build/.)
set -euo pipefail
cd "$(dirname "$0")/.."
# binding.gyp lists the sources when configured: configure again when a file is added or removed.
sources=$(ls -1 native/*.cpp gst-plugin/src/kvs/*.cpp 2>/dev/null)
if [ ! -f build/Makefile ] || [ binding.gyp -nt build/Makefile ] || [ "$sources" != "$(cat build/sources.list 2>/dev/null)" ]; then
  npx --no-install node-gyp configure >/dev/null
  printf '%s' "$sources" >build/sources.list
fi
log=$(mktemp)
if ! npx --no-install node-gyp build -j "$(nproc)" >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "openkvs: building the native addon failed (see above)" >&2
  exit 1
fi
grep -E 'warning:' "$log" >&2 || true
rm -f "$log"
