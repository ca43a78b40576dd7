#!/usr/bin/env bash
# Builds the Go peer of the benchmark workloads into OUTDIR/weft_go_peer, offline:
# the program uses only the standard library, and every Go cache lives under
# OUTDIR, so the build writes nothing under $HOME (it works as root on a clean
# machine).
#
#   benchmark/peers/go/build.sh OUTDIR
#
# Exit status: 0 built, 2 usage, 3 Go is not installed (the runner skips Go),
# anything else: the build failed.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
if ! command -v go >/dev/null 2>&1; then
  echo "go not installed (apt-get install golang-go)" >&2
  exit 3
fi

mkdir -p "$1"
outdir=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# GOENV=off: no user configuration file; GOTOOLCHAIN=local: a newer go must not
# try to download the toolchain go.mod names.
export GOCACHE="$outdir/go-build-cache"
export GOPATH="$outdir/go-path"
export GOENV=off
export GOFLAGS=-mod=mod
export GOPROXY=off
export GOSUMDB=off
export GOTOOLCHAIN=local
export CGO_ENABLED=0

cd "$source_dir"
go build -trimpath -o "$outdir/weft_go_peer" .
echo "built $outdir/weft_go_peer with $(go version)"
