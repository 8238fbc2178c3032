#!/usr/bin/env bash
# Installs the system packages openkvs needs: GStreamer 1.x (runtime, dev headers, plugins,
# tools), libcurl (OpenSSL) and OpenSSL dev headers, a C++ toolchain, cmake, pkg-config,
# ffmpeg and mkvtoolnix. Idempotent: installs only what is missing.
# On systems without apt it prints what to install and exits non-zero.
set -euo pipefail

PACKAGES=(
  build-essential g++ pkg-config cmake
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
  libcurl4-openssl-dev libssl-dev libgtest-dev nlohmann-json3-dev
  ffmpeg mkvtoolnix openssl
  python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0
  chromium
)

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "openkvs bootstrap: this system has no apt-get. Install these (or your distribution's equivalents):" >&2
  echo "  GStreamer 1.x with dev headers and the base, good, bad, ugly and libav plugins and tools;" >&2
  echo "  libcurl (OpenSSL flavour) dev, OpenSSL dev, pkg-config, cmake, a C++17 compiler, ffmpeg, mkvtoolnix." >&2
  echo "  e.g. Fedora: dnf install gstreamer1-devel gstreamer1-plugins-base-devel gstreamer1-plugins-bad-free-devel \\" >&2
  echo "       gstreamer1-plugins-good gstreamer1-plugins-ugly-free gstreamer1-libav libcurl-devel openssl-devel cmake gcc-c++ ffmpeg mkvtoolnix" >&2
  echo "  e.g. macOS: brew install gstreamer curl openssl cmake pkg-config ffmpeg mkvtoolnix" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "openkvs bootstrap: system packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "openkvs bootstrap: not root and no sudo; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "openkvs bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "openkvs bootstrap: done"
