# syntax=docker/dockerfile:1.7
# The CrossLogic gateway image. Build from the repository root:
#   docker build -f deploy/gateway.Dockerfile -t crosslogic/gateway:dev .
# Node.js 24 runs the TypeScript sources directly (type stripping): no compile step, no dev
# dependencies. Workspace packages are symlinks into /app, outside node_modules, so Node strips
# their types too.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# --- deps: production dependencies of the gateway workspace (and the workspaces it uses) only ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# Every workspace manifest: npm checks the lock file against all of them.
COPY package.json package-lock.json ./
COPY crds/package.json crds/
COPY kube/package.json kube/
COPY testenv/package.json testenv/
COPY model-server/package.json model-server/
COPY prisma/package.json prisma/
COPY operator/package.json operator/
COPY gateway/package.json gateway/
COPY billing/package.json billing/
COPY e2e/package.json e2e/
COPY safety/package.json safety/
# --omit=dev: no TypeScript, ESLint or test tools. --ignore-scripts: no install-time downloads
# (the Prisma client is generated into prisma/src/generated and committed).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --workspace=@crosslogic/gateway --ignore-scripts --no-audit --no-fund

# --- runtime: sources + production node_modules, unprivileged, no package manager ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# npm, npx and corepack are not needed at run time: fewer tools for an intruder.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY crds/package.json crds/
COPY crds/src crds/src
COPY kube/package.json kube/
COPY kube/src kube/src
COPY prisma/package.json prisma/schema.prisma prisma/
COPY prisma/src prisma/src
COPY prisma/migrations prisma/migrations
COPY safety/package.json safety/
COPY safety/src safety/src
COPY gateway/package.json gateway/
COPY gateway/src gateway/src
# The deployment doctor, run by `helm test` in this image.
COPY scripts/doctor.ts scripts/
# The image's own unprivileged user (node, uid/gid 1000); the chart's runAsUser matches it.
USER 1000:1000
EXPOSE 8080 9090
# V8 flags: gateway/src/node-args.ts (a test keeps the two equal).
ENTRYPOINT ["node", "--max-semi-space-size=4", "gateway/src/main.ts"]
