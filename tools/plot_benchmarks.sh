#!/usr/bin/env bash
# Turns the showcase's CSV (weft_showcase --results_csv=FILE) into the PNG charts
# that docs/benchmarks.md embeds:
#   <outdir>/advantage.png   how many times better weft's figure is than each
#                            peer's, per workload (log scale; above 1: weft ahead)
#   <outdir>/times.png       the times per operation of every runtime (log scale)
# Needs gnuplot (Debian: gnuplot-nox; tools/setup.sh --bench installs it).
#
# Usage: tools/plot_benchmarks.sh RESULTS.csv OUTDIR
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 RESULTS.csv OUTDIR" >&2
  exit 2
fi
csv="$1"
outdir="$2"
if [[ ! -r "${csv}" ]]; then
  echo "plot_benchmarks: cannot read ${csv}; produce it with weft_showcase --results_csv=${csv}" >&2
  exit 2
fi
if ! command -v gnuplot >/dev/null; then
  echo "plot_benchmarks: gnuplot is not installed (apt-get install gnuplot-nox, or tools/setup.sh --bench)" >&2
  exit 3
fi
mkdir -p "${outdir}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# The network servers' peers (nginx, asio, epoll) are measured on W10-W12 only,
# redis-benchmark on W13 only.
peers=(boost.fiber boost.fiber-ws std.thread go nginx asio epoll redis-benchmark)

# advantage.dat: workload, then weft's advantage over each peer ("?" = not measured).
awk -F, -v peers="${peers[*]}" '
  NR == 1 { next }
  {
    if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
    value[$1, $2] = $3; better_high[$1] = $5
  }
  END {
    split(peers, p, " ")
    for (i = 1; i <= n; ++i) {
      w = order[i]
      if (!((w, "weft") in value) || value[w, "weft"] <= 0) continue
      line = w; any = 0
      for (j = 1; j <= length(p); ++j) {
        if ((w, p[j]) in value && value[w, p[j]] > 0) {
          a = better_high[w] ? value[w, "weft"] / value[w, p[j]] : value[w, p[j]] / value[w, "weft"]
          line = line " " a; any = 1
        } else {
          line = line " ?"
        }
      }
      if (any) print line
    }
  }' "${csv}" >"${work}/advantage.dat"

# times.dat: workloads measured as ns per operation, then each runtime's time.
awk -F, -v runtimes="weft boost.fiber boost.fiber-ws std.thread go fcontext" '
  NR == 1 { next }
  $4 ~ /^ns\// {
    if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
    value[$1, $2] = $3
  }
  END {
    split(runtimes, r, " ")
    for (i = 1; i <= n; ++i) {
      w = order[i]; line = w
      for (j = 1; j <= length(r); ++j) line = line " " (((w, r[j]) in value) ? value[w, r[j]] : "?")
      print line
    }
  }' "${csv}" >"${work}/times.dat"

common='
set terminal pngcairo size 1400,620 font "DejaVu Sans,11" noenhanced
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key top left
set xtics rotate by -30 noenhanced
'

if [[ -s "${work}/advantage.dat" ]]; then
  # A peer measured on no workload leaves an empty column: not worth a warning.
  gnuplot 2> >(grep -v "no valid points" >&2) <<GNUPLOT
${common}
set output "${outdir}/advantage.png"
set title "weft's advantage over each peer (peer's figure / weft's; for throughput, weft's / peer's)"
set ylabel "times better (log scale; above 1: weft ahead)"
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"
plot "${work}/advantage.dat" using 2:xtic(1) title "Boost.Fiber 1 thread", \
     "" using 3 title "Boost.Fiber work_stealing", \
     "" using 4 title "std::thread", \
     "" using 5 title "Go", \
     "" using 6 title "nginx", \
     "" using 7 title "Asio", \
     "" using 8 title "epoll loop", \
     "" using 9 title "redis-benchmark"
GNUPLOT
  echo "plot_benchmarks: wrote ${outdir}/advantage.png"
fi

if [[ -s "${work}/times.dat" ]]; then
  gnuplot 2> >(grep -v "no valid points" >&2) <<GNUPLOT
${common}
set output "${outdir}/times.png"
set title "Time per operation (lower is better)"
set ylabel "ns per operation (log scale)"
plot "${work}/times.dat" using 2:xtic(1) title "weft", \
     "" using 3 title "Boost.Fiber 1 thread", \
     "" using 4 title "Boost.Fiber work_stealing", \
     "" using 5 title "std::thread", \
     "" using 6 title "Go", \
     "" using 7 title "raw fcontext switch (W0, the floor)"
GNUPLOT
  echo "plot_benchmarks: wrote ${outdir}/times.png"
fi
