#!/usr/bin/env bash
# Installs what the project needs from Debian when it is missing (PostgreSQL, Redis, openssl),
# checks Go, makes Node.js 24 available, and installs npm dependencies when the lock file changed.
# Idempotent: a second run does nothing and says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[deps] %s\n' "$*" >&2; }
fail() { printf '[deps] error: %s\n' "$*" >&2; exit 1; }

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v ip >/dev/null || missing+=(iproute2)
if (( ${#missing[@]} )); then
  [[ $(id -u) == 0 ]] || fail "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  say "installing ${missing[*]} from Debian…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
  # Debian starts the services it installs; this project runs its own on free ports instead.
  for s in postgresql redis-server; do (service "$s" stop >/dev/null 2>&1 || true); done
fi

need_go=$(sed -n 's/^go //p' "$root/testenv/go/kube/go.mod")
command -v go >/dev/null || fail "Go $need_go or newer is required (it builds the local Kubernetes API server)"
have_go=$(go env GOVERSION | sed 's/^go//')
[[ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -1)" == "$need_go" ]] \
  || fail "Go $need_go or newer is required, found $have_go"

bash "$root/scripts/ensure-node.sh"
export PATH="$root/.tools/node/bin:$PATH"
stamp="$root/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$root/package-lock.json" -nt "$stamp" ]]; then
  say "installing npm dependencies (npm ci)…"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
fi
