#!/usr/bin/env bash
# Installs what is missing, builds build/<kind>, and runs weft's whole test
# suite with CTest.
#
# Usage: tools/test.sh [release|address|thread|chaos|thread-safety] [ctest arguments...]
#   e.g. tools/test.sh thread -R FiberMutex
# `chaos` runs the release build's suite with WEFT_CHAOS_MIGRATION=1: every
# fiber made ready resumes on another worker (RuntimeOptions::chaos_migration).
# WEFT_SCHEDULING_POLICY=<name> in the environment runs any of them under that
# scheduling policy (RuntimeOptions::scheduling_policy) instead of weft's.
# `thread-safety` builds with clang and -Wthread-safety -Werror (a lock
# annotation broken anywhere in the library fails the build) and runs the
# annotation tests, the negative compile tests among them, and the layering
# check.
# Sanitizer options set below are defaults: values already in ASAN_OPTIONS,
# UBSAN_OPTIONS or TSAN_OPTIONS are appended and so take precedence.
set -euo pipefail

kind="${1:-release}"
(($# > 0)) && shift
case "${kind}" in
  release | address | thread | chaos | thread-safety) ;;
  *)
    echo "usage: $0 [release|address|thread|chaos|thread-safety] [ctest arguments...]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "${root}/tools/setup.sh"
build="${kind}"
if [[ "${kind}" == release || "${kind}" == chaos ]]; then
  build=release
  bash "${root}/tools/build.sh" release
elif [[ "${kind}" == thread-safety ]]; then
  bash "${root}/tools/build.sh" thread-safety -DWEFT_BUILD_BENCHMARKS=OFF
  set -- -R 'thread_safety|ThreadSafety|layering' "$@"
else
  # The benchmarks register no tests; building them under a sanitizer only
  # costs CI time.
  bash "${root}/tools/build.sh" "${kind}" -DWEFT_BUILD_BENCHMARKS=OFF
fi

case "${kind}" in
  address)
    # Leak checking stays on. Fiber stacks come from mmap, which LeakSanitizer
    # does not scan, but TerminateRuntime() finishes every fiber before it
    # returns, so nothing is live on a fiber stack when the check runs at exit:
    # leaks made inside fibers are reported and there are no false positives.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:${ASAN_OPTIONS}}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:${UBSAN_OPTIONS}}"
    ;;
  thread)
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:${TSAN_OPTIONS}}"
    ;;
  chaos)
    export WEFT_CHAOS_MIGRATION=1
    ;;
esac

ctest --test-dir "${root}/build/${build}" --output-on-failure --no-tests=error \
  -j2 --timeout 600 "$@"
