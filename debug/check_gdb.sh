#!/usr/bin/env bash
# Tests the gdb commands of debug/weft.py on weft_gdb_target, with gdb in
# batch mode (the checks themselves are in check_gdb.py):
#   1. live: gdb starts the program, stops it with its fibers parked in known
#      places, checks `weft fibers`, `weft bt`, `weft select` and the error
#      messages; lets it hibernate the parked fibers and stops it again, checks
#      that they are listed as hibernated and that `weft bt` wakes them and shows
#      the same frames; writes one core with plain `gcore` (fibers hibernated)
#      and one with `weft gcore`, and lets the program finish;
#   2. the `weft gcore` core, then the plain one, loaded into a second gdb;
#   3. attach: gdb attaches to a running `weft_gdb_target --attach`, its parked
#      fibers hibernated;
#   4. a core the kernel writes when the program aborts in the same state, when
#      core_pattern is "core" (elsewhere the core's name and place are unknown),
#      and the copy of it that `weft restore-core` writes;
#   5. a program without weft.
# Where the kernel does not let the program hibernate fibers, it runs without
# and the checks expect nothing hibernated; WEFT_GDB_CHECK_NO_HIBERNATION=1
# makes it run without everywhere, to try that.
# Exits 0 when every check passed, 77 (skipped) when gdb is missing or may not
# trace processes here, 1 otherwise.
#
# Usage: debug/check_gdb.sh BUILD_DIR   (with BUILD_DIR/debug/weft_gdb_target built)
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -d "$1" ]]; then
  echo "check_gdb: no build directory $1" >&2
  exit 1
fi
target="$(cd "$1" && pwd)/debug/weft_gdb_target"
target_options=()
if [[ -n "${WEFT_GDB_CHECK_NO_HIBERNATION:-}" ]]; then
  target_options=(--no_hibernation)
fi
if ! command -v gdb >/dev/null; then
  echo "check_gdb: gdb is not installed; skipped (tools/setup.sh installs it)"
  exit 77
fi
if [[ ! -x "${target}" ]]; then
  echo "check_gdb: ${target} is missing; build the weft_gdb_target target first" >&2
  exit 1
fi

work="$(mktemp -d)"
program_pid=""
cleanup() {
  if [[ -n "${program_pid}" ]]; then
    kill -KILL "${program_pid}" 2>/dev/null || true
  fi
  rm -rf "${work}"
}
trap cleanup EXIT

# run_gdb MODE LOG GDB-ARGUMENTS...: gdb in batch mode with weft.py and the checks.
# Returns 77 when gdb may not attach to a process (mode attach); exits otherwise.
run_gdb() {
  local mode="$1" log="$2"
  shift 2
  local status=0
  WEFT_GDB_CHECK_MODE="${mode}" timeout 600 gdb -batch -nx -x "${here}/weft.py" \
    -x "${here}/check_gdb.py" "$@" >"${log}" 2>&1 </dev/null || status=$?
  if ((status != 0)); then
    local no_ptrace="ptrace: Operation not permitted|Could not trace the inferior"
    if grep -qE "${no_ptrace}|Cannot create process" "${log}"; then
      if [[ "${mode}" == attach ]]; then
        echo "check_gdb: attach skipped: gdb may not attach to processes here"
        return 77
      fi
      echo "check_gdb: gdb may not trace processes here; skipped"
      sed 's/^/  | /' "${log}"
      exit 77
    fi
    echo "check_gdb: ${mode}: FAILED (gdb exited with ${status}); its output:" >&2
    sed 's/^/  | /' "${log}" >&2
    exit 1
  fi
  grep '^check_gdb: ' "${log}" || true
}

# start_attach_target LOG: starts `weft_gdb_target --attach` in ${work} and waits
# for its "ready PID" line; sets program_pid.
start_attach_target() {
  local log="$1"
  (cd "${work}" && exec "${target}" --attach "${target_options[@]}") >"${log}" 2>&1 &
  program_pid=$!
  local deadline=$((SECONDS + 120))
  until grep -q '^ready ' "${log}"; do
    if ! kill -0 "${program_pid}" 2>/dev/null || ((SECONDS > deadline)); then
      echo "check_gdb: weft_gdb_target --attach did not get ready; its output:" >&2
      sed 's/^/  | /' "${log}" >&2
      exit 1
    fi
    sleep 0.1 # polling the log for the line above, not waiting for an event
  done
}

# 1, 2: live, then its cores.
WEFT_GDB_CHECK_CORE="${work}/weft.core" WEFT_GDB_CHECK_PLAIN_CORE="${work}/plain.core" \
  run_gdb live "${work}/live.log" "${target}"
run_gdb core "${work}/core.log" "${target}" "${work}/weft.core"
run_gdb plain-core "${work}/plain-core.log" "${target}" "${work}/plain.core"
rm -f "${work}/weft.core" "${work}/plain.core"

# 3: attach.
ptrace_scope="$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)"
if ((ptrace_scope > 0 && EUID != 0)); then
  echo "check_gdb: attach skipped: kernel.yama.ptrace_scope is ${ptrace_scope}," \
    "and we are not root"
else
  start_attach_target "${work}/attach.out"
  status=0
  WEFT_GDB_CHECK_PID="${program_pid}" run_gdb attach "${work}/attach.log" || status=$?
  if ((status == 77)); then
    kill -KILL "${program_pid}"
    wait "${program_pid}" || true
  else
    wait "${program_pid}" || status=$?
    if ((status != 0)) || ! grep -q 'weft_gdb_target: done' "${work}/attach.out"; then
      echo "check_gdb: attach: the program did not finish cleanly after the detach" \
        "(status ${status}):" >&2
      sed 's/^/  | /' "${work}/attach.out" >&2
      exit 1
    fi
  fi
  program_pid=""
fi

# 4: a core dumped by the kernel, when it lands in a file we can find.
core_pattern="$(cat /proc/sys/kernel/core_pattern 2>/dev/null || true)"
if [[ "${core_pattern}" == core ]] && (ulimit -c unlimited) 2>/dev/null; then
  # In a child shell, so that this one does not report the abort.
  bash -c 'cd "$1" && ulimit -c unlimited && shift && { "$0" --abort "$@"; exit $?; }' \
    "${target}" "${work}" "${target_options[@]}" >"${work}/kernel.out" 2>&1 || true
  cores=("${work}"/core*)
  if [[ -f "${cores[0]}" ]]; then
    WEFT_GDB_CHECK_RESTORED_CORE="${work}/restored.core" \
      run_gdb kernel-core "${work}/kernel-core.log" "${target}" "${cores[0]}"
    rm -f "${cores[@]}" "${work}/restored.core"
  else
    echo "check_gdb: kernel core skipped: the kernel wrote no core file"
  fi
else
  echo "check_gdb: kernel core skipped: core_pattern is '${core_pattern}'," \
    "or cores are disabled"
fi

# 5: no weft in the program.
run_gdb no-runtime "${work}/no-runtime.log" "$(command -v true)"

echo "check_gdb: all passed"
