#!/usr/bin/env bash
# Builds the kvssink GStreamer plugin and the C++ unit tests with CMake.
#   scripts/build-plugin.sh          -> cmake-build/release (libgstkvssink.so for GST_PLUGIN_PATH)
#   scripts/build-plugin.sh asan     -> cmake-build/asan (AddressSanitizer + UBSan, for the test run)
set -euo pipefail
cd "$(dirname "$0")/.."

variant=${1:-release}
case "$variant" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DOPENKVS_SANITIZE=ON) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac

dir=cmake-build/$variant
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
fi
log=$(mktemp)
if ! cmake --build "$dir" -j "$(nproc)" >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "openkvs: building the kvssink plugin failed (see above)" >&2
  exit 1
fi
grep -E 'warning:' "$log" >&2 || true
rm -f "$log"
test -f "$dir/gst-plugin/libgstkvssink.so"
