#!/usr/bin/env bash
# Builds stripe-mock (Stripe's official API mock; OpenAPI spec embedded, works offline) from its Go
# module, once, into a cache keyed by version. Prints the binary's path on stdout.
#
#   CROSSLOGIC_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic)
#   STRIPE_MOCK_VERSION  module version (default below; "latest" resolves through the module proxy)
set -euo pipefail

version=${STRIPE_MOCK_VERSION:-v0.203.0}
cache_root=${CROSSLOGIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic}
say() { printf '[stripe-mock] %s\n' "$*" >&2; }
fail() { printf '[stripe-mock] error: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null || fail "Go is not installed (stripe-mock is built from its Go module)"

if [[ $version == latest ]]; then
  version=$(GOFLAGS=-mod=mod go list -m -json github.com/stripe/stripe-mock@latest | sed -n 's/^\t"Version": "\(.*\)",$/\1/p')
  [[ -n $version ]] || fail "could not resolve the latest stripe-mock version"
fi
out="$cache_root/stripe-mock/$version"
if [[ -x "$out/stripe-mock" ]]; then echo "$out/stripe-mock"; exit 0; fi
mkdir -p "$cache_root/stripe-mock"
exec 9>"$cache_root/stripe-mock/.build.lock"
flock 9
if [[ -x "$out/stripe-mock" ]]; then echo "$out/stripe-mock"; exit 0; fi
say "building stripe-mock $version (first run only)…"
tmp="$out.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags '-s -w' "github.com/stripe/stripe-mock@$version" \
  || fail "go install github.com/stripe/stripe-mock@$version failed"
rm -rf "$out" && mv "$tmp" "$out"
echo "$out/stripe-mock"
