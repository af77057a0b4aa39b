#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from Go modules (through the module proxy) into a cache
# keyed by version, once. Prints the cache directory on stdout; progress goes to stderr.
#
#   CROSSLOGIC_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
kube_version=$(sed -n 's/^require k8s.io\/kubernetes v//p' "$here/go/kube/go.mod")
etcd_version=$(sed -n 's/^require go.etcd.io\/etcd\/server\/v3 v//p' "$here/go/etcd/go.mod")
cert_manager_version=v1.21.2   # CRDs installed into the local API server (plain YAML in deploy/crds)
cache_root=${CROSSLOGIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic}
out="$cache_root/control-plane/k8s-$kube_version-etcd-$etcd_version-cm-$cert_manager_version"

say() { printf '[control-plane] %s\n' "$*" >&2; }
fail() { printf '[control-plane] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || fail "Go is not installed; install Go >= $(sed -n 's/^go //p' "$here/go/kube/go.mod") (it builds the local API server)"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" && -d "$out/cert-manager-crds" ]]; then
  echo "$out"; exit 0
fi
mkdir -p "$(dirname "$out")"
# One build at a time (tests and make targets may call this concurrently).
exec 9>"$(dirname "$out")/.build.lock"
if ! flock -n 9; then say "waiting for another build of the control plane to finish…"; flock 9; fi
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" && -d "$out/cert-manager-crds" ]]; then
  echo "$out"; exit 0
fi
mkdir -p "$out.tmp"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

start=$(date +%s)
if [[ ! -x "$out.tmp/etcd" ]]; then
  say "building etcd v$etcd_version (first run only; about a minute)…"
  (cd "$here/go/etcd" && go build -trimpath -ldflags '-s -w' -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3) \
    || fail "building etcd failed (see the Go output above)"
fi
major=${kube_version%%.*}; rest=${kube_version#*.}; minor=${rest%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$kube_version \
  -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor \
  -X k8s.io/client-go/pkg/version.gitVersion=v$kube_version \
  -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
for cmd in kube-apiserver kubectl; do
  if [[ ! -x "$out.tmp/$cmd" ]]; then
    say "building $cmd v$kube_version (first run only; several minutes on 2 cores)…"
    (cd "$here/go/kube" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd") \
      || fail "building $cmd failed (see the Go output above)"
  fi
done
if [[ ! -d "$out.tmp/cert-manager-crds" ]]; then
  say "fetching cert-manager $cert_manager_version CRDs from its Go module…"
  dir=$(cd "$here/go/etcd" && go mod download -json "github.com/cert-manager/cert-manager@$cert_manager_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d "$dir/deploy/crds" ]] || fail "cert-manager $cert_manager_version module has no deploy/crds"
  mkdir -p "$out.tmp/cert-manager-crds.part" && cp "$dir"/deploy/crds/*.yaml "$out.tmp/cert-manager-crds.part/"
  mv "$out.tmp/cert-manager-crds.part" "$out.tmp/cert-manager-crds"
fi
rm -rf "$out" && mv "$out.tmp" "$out"
say "built in $(( $(date +%s) - start ))s into $out ($(du -sh "$out" | cut -f1))"
echo "$out"
