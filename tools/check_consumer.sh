#!/usr/bin/env bash
# Checks that weft embeds as a package: installs a build into a temporary
# prefix, builds examples/consumer against it with find_package(weft), and runs
# the result. The consumer is copied out of the repository first, so only the
# installed headers, library and package config can satisfy it. Then loads the
# installed gdb commands (share/weft/gdb/weft.py) into gdb, when gdb is there.
#
# Usage: tools/check_consumer.sh [build dir]
#   Without an argument, installs build/release, building it first if needed
#   (tools/build.sh release when it does not exist yet).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if (($# > 0)); then
  build_dir="$(cd "$1" && pwd)"
else
  build_dir="${root}/build/release"
  # Configure only when there is no build yet: configuring a second time can
  # hide a package that is wrong after a single fresh configure (GNUInstallDirs
  # values are cached by the first run).
  if [[ -f "${build_dir}/build.ninja" ]]; then
    cmake --build "${build_dir}" -j "$(nproc)"
  else
    bash "${root}/tools/build.sh" release
  fi
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/weft-consumer.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

echo "check_consumer: installing ${build_dir} into ${tmp}/prefix"
cmake --install "${build_dir}" --prefix "${tmp}/prefix" >"${tmp}/install.log" ||
  { cat "${tmp}/install.log" >&2; exit 1; }

cp -r "${root}/examples/consumer" "${tmp}/src"
cmake -S "${tmp}/src" -B "${tmp}/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="${tmp}/prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
cmake --build "${tmp}/build"

if grep -F -- "${root}" "${tmp}/build/compile_commands.json" >/dev/null; then
  echo "check_consumer: the consumer's compile commands point into the source tree" \
    "(${root}); the installed package must be self-contained:" >&2
  grep -F -- "${root}" "${tmp}/build/compile_commands.json" >&2
  exit 1
fi

"${tmp}/build/app"

# The installed gdb commands load from the install alone: weft.py imports the
# modules of weft_gdb/ beside it.
if command -v gdb >/dev/null; then
  weft_py="$(find "${tmp}/prefix" -path '*/weft/gdb/weft.py' | head -n 1)"
  if [[ -z "${weft_py}" ]]; then
    echo "check_consumer: the install has no share/weft/gdb/weft.py" >&2
    exit 1
  fi
  gdb -batch -nx -x "${weft_py}" -ex "help weft fibers" >"${tmp}/gdb.log" 2>&1 || true
  if ! grep -q '^List weft fibers' "${tmp}/gdb.log"; then
    echo "check_consumer: the installed ${weft_py#"${tmp}/prefix/"} does not load in gdb:" >&2
    sed 's/^/  | /' "${tmp}/gdb.log" >&2
    exit 1
  fi
else
  echo "check_consumer: gdb is not installed; the installed weft.py was not loaded"
fi
echo "check_consumer: OK"
