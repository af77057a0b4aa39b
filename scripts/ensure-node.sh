#!/usr/bin/env bash
# Makes Node.js >= 24 (the project's runtime: native TypeScript type stripping, current LTS) available
# under .tools/node/bin when the machine's node is older. The binary comes from the npm registry's
# official per-platform package, so this needs only npm, not nodejs.org.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
want=24.21.0
dir="$root/.tools/node"

have_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [[ -x "$dir/bin/node" && "$("$dir/bin/node" --version)" == "v$want" ]]; then exit 0; fi
if command -v node >/dev/null && (( $(have_major node) >= 24 )) && [[ ! -d "$dir" ]]; then exit 0; fi
command -v npm >/dev/null || { echo "[node] error: npm is needed to fetch Node.js $want; install Node.js (any version) first" >&2; exit 1; }

case "$(uname -m)" in x86_64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) echo "[node] error: unsupported CPU $(uname -m)" >&2; exit 1 ;; esac
echo "[node] fetching Node.js $want (node-linux-$arch from the npm registry)…" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-$arch@$want" >/dev/null && tar xzf node-linux-*.tgz) \
  || { echo "[node] error: could not download node-linux-$arch@$want from the npm registry" >&2; exit 1; }
rm -rf "$dir" && mkdir -p "$root/.tools" && mv "$tmp/package" "$dir"
"$dir/bin/node" --version >/dev/null || { echo "[node] error: the downloaded Node.js does not run on this machine" >&2; exit 1; }
echo "[node] Node.js $("$dir/bin/node" --version) ready in .tools/node" >&2
