#!/usr/bin/env bash
# Builds cert-manager's certificate controllers (testenv/go/cert-manager: the controller code of
# cert-manager's own `controller` binary, whose nested module the Go proxy does not serve) into a
# cache keyed by version, once. Prints the binary's path on stdout; progress goes to stderr.
#
#   CROSSLOGIC_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^require github.com\/cert-manager\/cert-manager v//p' "$here/go/cert-manager/go.mod")
cache_root=${CROSSLOGIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic}
source_hash=$(cat "$here/go/cert-manager/go.mod" "$here/go/cert-manager/main.go" | sha256sum | cut -c1-12)
out="$cache_root/cert-manager/v$version-$source_hash"
bin="$out/cert-manager-controller"

say() { printf '[cert-manager] %s\n' "$*" >&2; }
fail() { printf '[cert-manager] error: %s\n' "$*" >&2; exit 1; }

[[ -x $bin ]] && { echo "$bin"; exit 0; }
command -v go >/dev/null || fail "Go is not installed (cert-manager's controller is built from its Go module)"
mkdir -p "$cache_root/cert-manager"
# One build at a time (tests and make targets may call this concurrently).
exec 9>"$cache_root/cert-manager/.build.lock"
if ! flock -n 9; then say "waiting for another build of cert-manager's controller to finish…"; flock 9; fi
[[ -x $bin ]] && { echo "$bin"; exit 0; }
say "building cert-manager v$version's certificate controllers (first run only; a few minutes on 2 cores)…"
start=$(date +%s)
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
(cd "$here/go/cert-manager" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o "$out.tmp/cert-manager-controller" .) \
  || fail "building cert-manager's controller failed (see the Go output above)"
rm -rf "$out" && mv "$out.tmp" "$out"
say "built in $(( $(date +%s) - start ))s into $out"
echo "$bin"
