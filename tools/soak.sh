#!/usr/bin/env bash
# Soak test: builds the release kind and runs weft_soak, a mixed workload of
# spawns, sync primitives, timers and futures, for the given number of minutes.
# It fails if a round breaks an invariant or resident memory keeps growing after
# warm-up.
#
# Usage: tools/soak.sh [MINUTES (default 10)] [weft_soak arguments...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
minutes="${1:-10}"
(($# > 0)) && shift
if ! [[ "${minutes}" =~ ^[0-9]+$ ]] || ((minutes < 1 || minutes > 1440)); then
  echo "usage: $0 [MINUTES 1..1440] [weft_soak arguments...]" >&2
  exit 2
fi

bash "${root}/tools/setup.sh"
bash "${root}/tools/build.sh" release
exec "${root}/build/release/test/soak/weft_soak" --seconds=$((minutes * 60)) "$@"
