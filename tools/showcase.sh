#!/usr/bin/env bash
# The workload runner: installs what is missing (Go, gnuplot, and for the
# network servers wrk, nginx, Asio and redis-benchmark included), builds the
# release kind and the Go peer, runs every workload (W0-W13 and the contention
# family C1-C5, described in docs/benchmarks.md) on weft and its peers
# (Boost.Fiber, std::thread, Go; nginx, Asio and an epoll loop for W10-W12;
# redis-benchmark for W13) and prints them side by side. The figures are
# also written to build/release/benchmark/results/ as results.csv and
# results.json, with the charts advantage.png and times.png.
#
# Usage: tools/showcase.sh [--quick] [weft_showcase arguments...]
#   --quick   every workload at reduced size (about a minute on 2 CPUs)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "${root}/tools/setup.sh" --bench
bash "${root}/tools/build.sh" release

bench_dir="${root}/build/release/benchmark"
showcase="${bench_dir}/weft_showcase"
if [[ ! -x "${showcase}" ]]; then
  echo "showcase: ${showcase} was not built (is WEFT_BUILD_BENCHMARKS on?)" >&2
  exit 1
fi

go_args=()
go_status=0
bash "${root}/benchmark/peers/go/build.sh" "${bench_dir}/go" || go_status=$?
if ((go_status == 0)); then
  go_args=(--go_peer="${bench_dir}/go/weft_go_peer")
elif ((go_status == 3)); then
  echo "showcase: Go is not installed; the table has no Go column" >&2
else
  echo "showcase: building the Go peer failed (exit ${go_status})" >&2
  exit "${go_status}"
fi

results="${bench_dir}/results"
mkdir -p "${results}"
"${showcase}" "${go_args[@]}" --results_csv="${results}/results.csv" \
  --results_json="${results}/results.json" "$@"
bash "${root}/tools/plot_benchmarks.sh" "${results}/results.csv" "${results}" ||
  echo "showcase: the charts were not drawn (see above); the figures are in ${results}" >&2
