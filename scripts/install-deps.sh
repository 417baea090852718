#!/usr/bin/env bash
# Installs what FairKV needs to build and test on Debian 12 (bookworm).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

packages=(
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools clang-22 lld g++
  libzstd-dev ninja-build cmake python3 libgtest-dev
  nlohmann-json3-dev libcli11-dev libopenblas-dev
  openmpi-bin libopenmpi-dev iproute2 libclang-rt-22-dev
  libpcre2-dev libutf8proc-dev libcpp-httplib-dev libsentencepiece-dev
  python3-venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
