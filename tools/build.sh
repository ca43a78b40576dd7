#!/usr/bin/env bash
# Configures and builds weft with Ninja into build/<kind>.
#
# Usage: tools/build.sh [release|address|thread|thread-safety] [extra cmake -D options...]
#   release        optimized build, -DCMAKE_BUILD_TYPE=Release (the default)
#   address        AddressSanitizer + UndefinedBehaviorSanitizer, RelWithDebInfo
#   thread         ThreadSanitizer, RelWithDebInfo
#   thread-safety  clang with -Wthread-safety -Werror: the lock annotations are
#                  checked at compile time (a failed check fails the build)
# Extra arguments are passed to the configure step, e.g.
#   tools/build.sh release -DWEFT_BUILD_BENCHMARKS=OFF
set -euo pipefail

kind="${1:-release}"
(($# > 0)) && shift

case "${kind}" in
  release) options=(-DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZER=) ;;
  address) options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZER=address) ;;
  # clang, because GCC 12's ThreadSanitizer runtime takes milliseconds to create
  # each fiber (clang 14's: microseconds), which makes fiber-heavy tests crawl.
  thread)
    options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZER=thread
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    ;;
  thread-safety)
    options=(-DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZER= -DWEFT_THREAD_SAFETY_ANALYSIS=ON
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    ;;
  *)
    echo "usage: $0 [release|address|thread|thread-safety] [cmake options...]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${root}/build/${kind}"

cache="${build_dir}/CMakeCache.txt"
if [[ -f "${cache}" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "${cache}"; then
  echo "build: ${build_dir} was configured with another generator; remove it and rerun" >&2
  exit 1
fi

cmake -S "${root}" -B "${build_dir}" -G Ninja "${options[@]}" "$@"
cmake --build "${build_dir}" -j "$(nproc)"
