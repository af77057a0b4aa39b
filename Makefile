# CrossLogic control plane — the single entry point. Every target installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Node.js 24 (fetched into .tools/ when the machine's is older) runs the TypeScript sources directly.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
NODE := node
TESTENV := $(NODE) testenv/src/cli.ts
DEV_DIR := .dev

UNIT_TESTS := '*/test/unit/**/*.test.ts'
INTEGRATION_TESTS := '*/test/integration/**/*.test.ts'
E2E_TESTS := 'e2e/**/*.test.ts'
NODE_TEST := $(NODE) --test --test-reporter=spec --test-concurrency=1 --test-timeout=300000

.PHONY: help deps control-plane dev dev-up dev-down test test-unit test-integration test-e2e fuzz lint typecheck check bench bench-gateway bench-safety audit bench-operator

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

deps: ## Install what the project needs (Debian packages, Node.js 24, npm packages, control-plane and cert-manager binaries)
	@bash scripts/install-deps.sh
	@bash testenv/scripts/build-control-plane.sh >/dev/null
	@bash testenv/scripts/build-cert-manager.sh >/dev/null

control-plane: deps ## Build (once) etcd, kube-apiserver and kubectl from Go modules; print their directory
	@bash testenv/scripts/build-control-plane.sh

dev: deps ## Run the whole system locally in the foreground; Ctrl-C stops it all
	@$(TESTENV) dev --dir $(DEV_DIR)

dev-up: deps ## Start the whole system detached (writes .dev/env, .dev/kubeconfig, .dev/logs/)
	@$(TESTENV) up --dir $(DEV_DIR)

dev-down: ## Stop what dev-up started
	@if [ -x .tools/node/bin/node ] || command -v node >/dev/null; then $(TESTENV) down --dir $(DEV_DIR); fi

typecheck: deps ## Type-check every workspace
	@npx tsc -p tsconfig.json

lint: deps ## Lint every workspace
	@npx eslint --max-warnings=0 .

check: typecheck lint ## Static checks

test-unit: deps ## Unit tests (no services)
	@$(NODE_TEST) $(UNIT_TESTS)

test-integration: deps ## Integration tests against a throwaway local API server, PostgreSQL and Redis
	@$(TESTENV) exec -- $(NODE_TEST) $(INTEGRATION_TESTS)

audit: deps ## Supply chain: fail on locked packages without sha512 integrity from the registry (offline), and on known critical vulnerabilities (says so when the advisory database is unreachable)
	@$(NODE) scripts/audit-deps.ts --level $${AUDIT_LEVEL:-critical}

fuzz: deps ## Continuous fuzzing: the adversarial suite with FUZZ_SCALE (20) times the cases from fresh seeds; a failure's FUZZ_SEED replays it
	@$(TESTENV) exec -- env FUZZ_SCALE=$${FUZZ_SCALE:-20} FUZZ_SEED=$${FUZZ_SEED:-random} $(NODE) --test --test-reporter=spec --test-timeout=0 e2e/adversarial.test.ts

test-e2e: deps ## End-to-end suites: the whole product through kubectl, curl and the openai SDK
	@$(TESTENV) exec -- $(NODE_TEST) $(E2E_TESTS)

test: deps check verify ## Every test tier (what CI runs): static checks, unit, integration, e2e
	@$(TESTENV) exec -- $(NODE_TEST) $(UNIT_TESTS) $(INTEGRATION_TESTS) $(wildcard e2e/*.test.ts)

.PHONY: migrate db-verify
migrate: deps ## Apply pending database migrations to DATABASE_URL (or .dev/env's), offline
	@if [ -z "$${DATABASE_URL:-}" ] && [ -f $(DEV_DIR)/env ]; then set -a; . ./$(DEV_DIR)/env; set +a; fi; \
	  $(NODE) --no-warnings prisma/src/cli.ts migrate

db-verify: deps ## Fail if prisma/schema.prisma, prisma/migrations and the committed Prisma client disagree
	@$(TESTENV) exec -- $(NODE) --no-warnings prisma/src/cli.ts check

.PHONY: generate verify
generate: ## Regenerate the CRD YAML (crds/generated, charts/crosslogic/crds) from the TypeBox schemas in crds/src
	@$(NODE) crds/scripts/generate.ts

verify: ## Fail if generated files (CRD YAML, chart CRDs) are stale; fix with `make generate`
	@$(NODE) crds/scripts/generate.ts --check

.PHONY: helm chart-test kind-up kind-images deploy kind-e2e kind-down doctor
helm: ## Fetch (once) the helm binary the chart checks use; print its path
	@bash deploy/fetch-helm.sh

chart-test: deps ## Chart checks only: helm lint, helm template of the values sets, server dry-run, Dockerfile lint
	@$(TESTENV) exec -- $(NODE_TEST) 'charts/test/**/*.test.ts'

# The kind path needs a Docker engine: without one these targets say so and succeed (exit 2 = skipped).
KIND := bash deploy/kind.sh
kind-skip = rc=0; $(KIND) $(1) || rc=$$?; if [ $$rc -eq 2 ]; then exit 0; else exit $$rc; fi

kind-up: ## Create the kind cluster from kind-config.yaml (control plane, CPU worker, GPU node pool); needs Docker
	@$(call kind-skip,up)

kind-images: ## Build the three images (deploy/*.Dockerfile) and load them into kind; needs Docker
	@$(call kind-skip,images)

deploy: deps ## On kind: images, cert-manager from its release manifest (kubectl), the chart (helm), helm test; needs Docker
	@$(call kind-skip,deploy)

kind-e2e: deps ## On kind: helm test, the deployment doctor, e2e/kind suites; needs Docker
	@$(call kind-skip,e2e)

kind-down: ## Delete the kind cluster
	@$(KIND) down

doctor: ## Deployment checklist against a running system (default: make dev-up's .dev/env); ARGS="--gateway URL …"
	@if [ -f $(DEV_DIR)/env ]; then set -a; . ./$(DEV_DIR)/env; set +a; fi; \
	  $(NODE) scripts/doctor.ts $${GATEWAY_URL:+--gateway $$GATEWAY_URL} $${ADMIN_URL:+--admin-url $$ADMIN_URL} $(ARGS)

bench: bench-gateway bench-safety bench-operator ## Benchmarks; results under bench/results/

bench-operator: deps ## Control plane (TARGETS.md): 1,000 Tenants/3,000 Environments/10,000 ApiKeys to Ready, gateway create/revoke latencies, steady-state writes; ARGS="--tenants N"; bench/results/operator-scale.{json,md}; then the same writes with no operator (the API server's floor), operator-write-floor.{json,md}
	@$(NODE) bench/operator/scale.ts $(ARGS)
	@$(NODE) bench/operator/write-floor.ts

bench-safety: deps ## Content-screening throughput; bench/results/safety.json
	@$(NODE) bench/safety.bench.ts

bench-gateway: deps ## Gateway vs direct, nginx, raw node:http, bare Express and Portkey (wrk, pinned cores), 100k-key memory, Redis work per request; bench/results/gateway.{json,md}, gateway-keys.json, redis-cost.json
	@command -v wrk >/dev/null && command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light; }
	@[ -d bench/gateway/portkey/node_modules/@portkey-ai/gateway ] || flock /tmp/crosslogic-npm.lock npm install --prefix bench/gateway/portkey --no-audit --no-fund --workspaces=false
	@$(NODE) bench/gateway/run.ts --seconds $${BENCH_SECONDS:-8}
	@$(NODE) bench/gateway/keys.ts
	@$(NODE) bench/gateway/redis-cost.ts
