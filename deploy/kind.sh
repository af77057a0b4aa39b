#!/usr/bin/env bash
# The kind path (machines with a Docker engine):
#   deploy/kind.sh up       create the cluster from kind-config.yaml (kind from its Go module)
#   deploy/kind.sh images   build the three images and load them into the cluster
#   deploy/kind.sh deploy   cert-manager from its release manifests (kubectl), then the chart (helm)
#   deploy/kind.sh e2e      the e2e suites against the cluster
# Each step says plainly why it cannot run (no Docker engine, manifests unreachable…) and exits 2
# ("skipped") where Docker is absent, 1 on a real failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cluster=crosslogic
kind_version=${KIND_VERSION:-v0.33.0}
cert_manager_version=${CERT_MANAGER_VERSION:-v1.21.2}
cert_manager_url=${CERT_MANAGER_MANIFEST:-https://github.com/cert-manager/cert-manager/releases/download/$cert_manager_version/cert-manager.yaml}
namespace=${CROSSLOGIC_NAMESPACE:-crosslogic-system}
cache_root=${CROSSLOGIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crosslogic}

say() { printf '[kind] %s\n' "$*" >&2; }
fail() { printf '[kind] error: %s\n' "$*" >&2; exit 1; }
skip() { printf '[kind] SKIPPED: %s\n' "$*" >&2; exit 2; }

need_docker() {
  command -v docker >/dev/null || skip "no docker command on this machine; the kind path needs a Docker engine (use \`make dev\` / \`make test\` here)"
  docker info >/dev/null 2>&1 || skip "docker is installed but no Docker engine answers (\`docker info\` fails); the kind path needs one (use \`make dev\` / \`make test\` here)"
}

kind_bin() {
  if command -v kind >/dev/null; then command -v kind; return; fi
  local out="$cache_root/kind/$kind_version"
  if [[ ! -x "$out/kind" ]]; then
    command -v go >/dev/null || fail "kind is not installed and Go is not available to build it (go install sigs.k8s.io/kind@$kind_version)"
    say "building kind $kind_version from its Go module…"
    mkdir -p "$out" && GOBIN="$out" CGO_ENABLED=0 go install "sigs.k8s.io/kind@$kind_version" || fail "go install sigs.k8s.io/kind failed"
  fi
  echo "$out/kind"
}

kubectl_bin() { command -v kubectl || fail "kubectl is needed (make control-plane builds one: its directory holds kubectl)"; }
kctx() { "$(kubectl_bin)" --context "kind-$cluster" "$@"; }

case "${1:-}" in
  up)
    need_docker
    kind=$(kind_bin)
    if "$kind" get clusters 2>/dev/null | grep -qx "$cluster"; then say "cluster $cluster already exists"; exit 0; fi
    "$kind" create cluster --config "$root/kind-config.yaml" --wait 120s
    kctx create namespace gpu-a100 --dry-run=client -o yaml | kctx apply -f -
    say "cluster $cluster is up (context kind-$cluster); next: make deploy"
    ;;
  images)
    need_docker
    kind=$(kind_bin)
    for c in operator gateway billing; do
      docker build -f "$root/deploy/$c.Dockerfile" -t "crosslogic/$c:dev" "$root"
      "$kind" load docker-image --name "$cluster" "crosslogic/$c:dev"
    done
    ;;
  deploy)
    need_docker
    "$0" images
    helm=$(bash "$root/deploy/fetch-helm.sh")
    kctx get nodes >/dev/null 2>&1 || fail "no cluster kind-$cluster: run make kind-up first"
    say "installing cert-manager $cert_manager_version from its release manifest…"
    manifest=$(mktemp); trap 'rm -f "$manifest"' EXIT
    if ! curl -fsSL --max-time 60 -o "$manifest" "$cert_manager_url"; then
      fail "could not download cert-manager's release manifest from $cert_manager_url.
  cert-manager publishes it only as a GitHub release asset, which this machine cannot reach.
  Download cert-manager.yaml elsewhere and run: CERT_MANAGER_MANIFEST=file:///path/to/cert-manager.yaml make deploy"
    fi
    kctx apply --server-side -f "$manifest"
    kctx -n cert-manager rollout status deploy/cert-manager-webhook --timeout=180s
    if [[ -d "$root/charts/crosslogic/crds" ]] && ls "$root"/charts/crosslogic/crds/*.yaml >/dev/null 2>&1; then :; else
      say "warning: charts/crosslogic/crds/ has no CRDs yet (make generate); the operator will not find its API"
    fi
    "$helm" upgrade --install crosslogic "$root/charts/crosslogic" --kube-context "kind-$cluster" \
      --namespace "$namespace" --create-namespace -f "$root/deploy/kind-values.yaml" --wait --timeout 10m
    "$helm" test crosslogic --kube-context "kind-$cluster" --namespace "$namespace" --logs
    say "deployed; the gateway answers on http://localhost:8080"
    ;;
  e2e)
    need_docker
    kctx get nodes >/dev/null 2>&1 || fail "no cluster kind-$cluster: run make kind-up and make deploy first"
    "$(bash "$root/deploy/fetch-helm.sh")" test crosslogic --kube-context "kind-$cluster" --namespace "$namespace" --logs
    # The deployment checklist from outside the cluster, through the kind port mapping (the admin
    # port is reached with a port-forward: it is never mapped to the host).
    kctx -n "$namespace" port-forward svc/crosslogic-gateway-admin 19090:9090 >/dev/null 2>&1 & pf=$!
    trap 'kill "$pf" 2>/dev/null || true' EXIT
    sleep 2
    ADMIN_TOKEN=$(kctx -n "$namespace" get secret crosslogic-gateway-admin -o jsonpath='{.data.token}' | base64 -d) \
      node "$root/scripts/doctor.ts" --gateway http://localhost:8080 --admin-url http://127.0.0.1:19090 \
        --kube-context "kind-$cluster" --namespace "$namespace" --skip tls
    shopt -s nullglob; suites=("$root"/e2e/kind/*.test.ts)
    if (( ${#suites[@]} )); then
      KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}" GATEWAY_URL=http://localhost:8080 KIND_CONTEXT="kind-$cluster" \
        node --test --test-reporter=spec --test-concurrency=1 "${suites[@]}"
    else
      say "no kind e2e suites (e2e/kind/*.test.ts) yet: ran helm test and the doctor only"
    fi
    ;;
  down)
    command -v docker >/dev/null && docker info >/dev/null 2>&1 || exit 0
    "$(kind_bin)" delete cluster --name "$cluster"
    ;;
  *) echo "usage: deploy/kind.sh up|images|deploy|e2e|down" >&2; exit 64 ;;
esac
