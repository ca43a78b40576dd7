# The table of tools/showcase.sh --policies: reads one results CSV per
# policy (workload,runtime,value,unit,higher_is_better), in the order of
# `names` (the policies, space-separated), and prints weft's figure of each
# workload under each policy with the best policy, as a Markdown table.
BEGIN { n = split(names, policy, " ") }
FNR == 1 { file++; next }
$2 != "weft" { next }
{
  if (!($1 in unit)) order[++rows] = $1
  unit[$1] = $4
  higher[$1] = $5
  value[$1, file] = $3
}
END {
  printf "| workload | unit |"
  for (i = 1; i <= n; i++) printf " %s |", policy[i]
  printf " best |\n|---|---|"
  for (i = 1; i <= n; i++) printf "---|"
  printf "---|\n"
  for (r = 1; r <= rows; r++) {
    w = order[r]
    best = ""
    best_value = 0
    printf "| %s | %s |", w, unit[w]
    for (i = 1; i <= n; i++) {
      if (!((w, i) in value)) {
        printf " - |"
        continue
      }
      v = value[w, i] + 0
      printf " %.4g |", v
      if (best == "" || (higher[w] == 1 ? v > best_value : v < best_value)) {
        best = policy[i]
        best_value = v
      }
    }
    printf " %s |\n", best
  }
}
