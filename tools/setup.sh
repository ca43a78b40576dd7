#!/usr/bin/env bash
# Installs the Debian 12 packages that building, testing and benchmarking weft
# need, and only those that are missing. With everything present it installs
# nothing and returns in well under a second. --bench adds what only the
# side-by-side benchmarks use: Go (the goroutine peer), gnuplot (the charts), and
# for the network servers (W10-W12) wrk (the HTTP load generator), nginx (the
# HTTP peer) and standalone Asio (the echo server peer, header-only), and for
# W13 redis-tools (redis-benchmark, the peer of the hooked hiredis clients; the
# redis-server both drive and libhiredis-dev are in the base list, the hook
# tests use them), and fio (the peer of weft_file_bench).
#
# Usage: tools/setup.sh [--bench]   (as root when something is missing)
set -euo pipefail

bench=0
for argument in "$@"; do
  case "${argument}" in
    --bench) bench=1 ;;
    *)
      echo "usage: $0 [--bench]" >&2
      exit 2
      ;;
  esac
done

packages=(
  build-essential
  g++
  clang
  cmake
  ninja-build
  pkg-config
  git
  libboost-context-dev
  libboost-fiber-dev
  libhwloc-dev
  liburing-dev
  libgflags-dev
  googletest
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  gdb
  libhiredis-dev
  redis-server
  libcurl4-openssl-dev
)
if ((bench)); then
  packages+=(golang-go gnuplot-nox wrk nginx-light libasio-dev redis-tools fio)
fi

missing=()
for package in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null || true)"
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${package}")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

if ((EUID != 0)); then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run this script as root, or install them yourself:" >&2
  echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null; then
  echo "setup: apt-get not found; weft's scripts expect Debian 12." >&2
  echo "setup: install the equivalents of: ${missing[*]}" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "setup: done"
