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
#        tools/showcase.sh --policies [--quick|--smoke] [weft_showcase arguments...]
#   --quick     every workload at reduced size (about a minute on 2 CPUs)
#   --policies  weft's workloads W1-W11 only (the peers do not depend on it),
#               once under each scheduling policy (weft, v1, v2: docs/design.md,
#               "Scheduling policies") through WEFT_SCHEDULING_POLICY, then a
#               table of each workload's figure per policy and the best one,
#               also written to results/policies.md (the runs' figures to
#               results/policy-<name>.csv). The runs follow each other: on a
#               shared machine run it twice before reading a few percent into it.
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

results="${bench_dir}/results"
mkdir -p "${results}"

if [[ "${1:-}" == --policies ]]; then
  shift
  policies=(weft v1 v2)
  csvs=()
  for policy in "${policies[@]}"; do
    echo "======== policy ${policy} ========"
    WEFT_SCHEDULING_POLICY="${policy}" "${showcase}" \
      --benchmark_filter='^W([1-9]|1[01])([^/0-9][^/]*)?/weft/' \
      --results_csv="${results}/policy-${policy}.csv" "$@"
    csvs+=("${results}/policy-${policy}.csv")
  done
  awk -F, -v names="${policies[*]}" -f "${root}/tools/policy_table.awk" "${csvs[@]}" |
    tee "${results}/policies.md"
  exit 0
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

"${showcase}" "${go_args[@]}" --results_csv="${results}/results.csv" \
  --results_json="${results}/results.json" "$@"
bash "${root}/tools/plot_benchmarks.sh" "${results}/results.csv" "${results}" ||
  echo "showcase: the charts were not drawn (see above); the figures are in ${results}" >&2
