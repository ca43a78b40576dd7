#!/usr/bin/env bash
# Installs what is missing, builds the release kind, and runs the side-by-side
# benchmark table (weft vs Boost.Fiber and std::thread on the same machine, in
# the same run). Arguments are passed to the benchmark binary.
#
# Usage: tools/showcase.sh [weft_showcase arguments...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "${root}/tools/setup.sh"
bash "${root}/tools/build.sh" release

showcase="${root}/build/release/benchmark/weft_showcase"
if [[ ! -x "${showcase}" ]]; then
  echo "showcase: ${showcase} was not built (is WEFT_BUILD_BENCHMARKS on?)" >&2
  exit 1
fi
exec "${showcase}" "$@"
