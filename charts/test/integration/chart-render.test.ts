/**
 * The chart rendered client-side (helm lint, helm template) for several values sets: what a
 * platform engineer relies on — security contexts, least-privilege RBAC, separate public/admin
 * ports, external data services with TLS, ingress — and values the schema must refuse.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chartDir, envOf, find, helm, kindValues, podSpec, repoRoot, template, templateArgs, valuesDir, type K8sObject } from "../helm.ts";

const externalTls = path.join(valuesDir, "external-tls.yaml");
const ingressTls = path.join(valuesDir, "ingress-tls.yaml");
const valueSets: Record<string, string[]> = { defaults: [], "external-tls": [externalTls], "ingress-tls": [ingressTls], kind: [kindValues] };

const workloads = (objs: K8sObject[]) => objs.filter((o) => ["Deployment", "Job", "Pod"].includes(o.kind));

test("helm lint --strict passes for every values set", () => {
  for (const [name, files] of Object.entries(valueSets)) {
    const r = helm(["lint", chartDir, "--strict", "--kube-version", "1.37.0", ...files.flatMap((f) => ["-f", f])]);
    assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
  }
});

test("every pod runs non-root, read-only, without capabilities, with RuntimeDefault seccomp, and has resources", () => {
  for (const [name, files] of Object.entries(valueSets)) {
    const objs = template({ valuesFiles: files });
    assert.ok(workloads(objs).length >= 4, `${name}: workloads rendered`);
    for (const w of workloads(objs)) {
      const spec = podSpec(w);
      const where = `${name}: ${w.kind}/${w.metadata.name}`;
      assert.equal(spec.securityContext?.runAsNonRoot, true, `${where} pod runAsNonRoot`);
      assert.deepEqual(spec.securityContext?.seccompProfile, { type: "RuntimeDefault" }, `${where} seccomp`);
      for (const c of spec.containers) {
        const sc = c.securityContext as Record<string, unknown>;
        assert.equal(sc.readOnlyRootFilesystem, true, `${where}/${c.name} readOnlyRootFilesystem`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}/${c.name} allowPrivilegeEscalation`);
        assert.deepEqual((sc.capabilities as { drop: string[] }).drop, ["ALL"], `${where}/${c.name} capabilities`);
        assert.ok((c.resources as { requests?: object }).requests, `${where}/${c.name} resource requests`);
      }
    }
  }
});

test("defaults: gateway pods are labelled for the GPU NetworkPolicies, probed, and the admin port is on its own ClusterIP Service", () => {
  const objs = template();
  const gw = find(objs, "Deployment", "crosslogic-gateway");
  const labels = (gw.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
  assert.equal(labels["crosslogic.ai/gateway"], "true");
  const c = podSpec(gw).containers[0]!;
  for (const p of ["startupProbe", "livenessProbe", "readinessProbe"]) assert.ok(c[p], `gateway ${p}`);
  const pub = find(objs, "Service", "crosslogic-gateway").spec as { ports: { targetPort: string }[] };
  assert.deepEqual(pub.ports.map((p) => p.targetPort), ["http"], "public Service exposes only the public port");
  const admin = find(objs, "Service", "crosslogic-gateway-admin").spec as { type: string; ports: { targetPort: string }[] };
  assert.equal(admin.type, "ClusterIP");
  assert.deepEqual(admin.ports.map((p) => p.targetPort), ["admin"]);
  assert.ok(find(objs, "PodDisruptionBudget", "crosslogic-gateway"));
  assert.ok(find(objs, "HorizontalPodAutoscaler", "crosslogic-gateway"));
  for (const p of ["startupProbe", "livenessProbe", "readinessProbe"]) assert.ok(podSpec(find(objs, "Deployment", "crosslogic-operator")).containers[0]![p], `operator ${p}`);
});

test("RBAC: the gateway reads only the gateway-config Secrets' own namespace; billing only patches Tenants; the operator's Lease access is namespaced", () => {
  const objs = template();
  // The release namespace holds the Stripe keys, database credentials and admin tokens: the gateway
  // (internet-facing) may read none of them. Its config Secrets have a namespace of their own.
  const gwRoles = objs.filter((o) => o.kind === "Role" && o.metadata.name === "crosslogic-gateway");
  assert.equal(gwRoles.length, 1);
  const gwRole = gwRoles[0]!;
  assert.equal(gwRole.metadata.namespace, "crosslogic-system-gateway-config");
  assert.deepEqual(gwRole.rules, [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] }]);
  assert.equal(find(objs, "RoleBinding", "crosslogic-gateway").metadata.namespace, "crosslogic-system-gateway-config");
  assert.ok(find(objs, "Namespace", "crosslogic-system-gateway-config"), "the chart creates it");
  assert.ok(!objs.some((o) => (o.kind === "Role" || o.kind === "RoleBinding") && o.metadata.namespace === "crosslogic-system" && o.metadata.name.includes("gateway")), "no gateway grant in the release namespace");
  for (const component of ["operator", "gateway"]) {
    const env = (podSpec(find(objs, "Deployment", `crosslogic-${component}`)).containers[0]!.env as Array<{ name: string; value?: string }>);
    assert.equal(env.find((e) => e.name === "GATEWAY_CONFIG_NAMESPACE")?.value, "crosslogic-system-gateway-config", `${component} GATEWAY_CONFIG_NAMESPACE`);
  }
  const named = template({ set: ["gateway.config.namespace=gw-config", "gateway.config.createNamespace=false"] });
  assert.equal(find(named, "Role", "crosslogic-gateway").metadata.namespace, "gw-config");
  assert.ok(!named.some((o) => o.kind === "Namespace"), "createNamespace=false: expected to exist");
  const clusterScoped = objs.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding").map((o) => o.metadata.name);
  assert.ok(!clusterScoped.some((n) => n.includes("gateway")), `no cluster-wide grant for the gateway by default: ${clusterScoped}`);
  const opRole = find(objs, "ClusterRole", "crosslogic-operator").rules as { resources: string[]; verbs: string[] }[];
  assert.ok(!opRole.some((r) => r.resources.includes("leases")), "Leases only through the namespaced Role");
  assert.ok(!opRole.some((r) => r.verbs.includes("*") || r.resources.includes("*")), "no wildcards");
  const nodes = opRole.find((r) => r.resources.includes("nodes"))!;
  assert.deepEqual(nodes.verbs, ["get", "list", "watch"], "nodes read-only");

  const ext = template({ valuesFiles: [externalTls] });
  const billing = find(ext, "ClusterRole", "crosslogic-billing");
  assert.deepEqual(billing.rules, [{ apiGroups: ["crosslogic.ai"], resources: ["tenants"], verbs: ["get", "list", "watch", "patch"] }]);
  const slices = find(ext, "Role", "crosslogic-gateway-endpointslices");
  assert.equal(slices.metadata.namespace, "gpu-a100", "EndpointSlice read only in the node-pool namespace");
  assert.deepEqual(slices.rules, [{ apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] }]);
});

test("NetworkPolicies: bundled Redis/PostgreSQL admit only gateway, operator, billing and migrations; the admin port only admin clients", () => {
  const objs = template();
  for (const db of ["redis", "postgresql"]) {
    const np = find(objs, "NetworkPolicy", `crosslogic-${db}`).spec as { ingress: { from: { podSelector: { matchExpressions: { key: string; values: string[] }[] } }[] }[] };
    const exprs = np.ingress[0]!.from[0]!.podSelector.matchExpressions;
    assert.deepEqual(exprs.find((e) => e.key === "app.kubernetes.io/component")!.values, ["gateway", "operator", "billing", "migrations"]);
  }
  const gw = find(objs, "NetworkPolicy", "crosslogic-gateway").spec as { ingress: { ports: { port: number }[]; from?: unknown[] }[] };
  const adminRule = gw.ingress.find((r) => r.ports[0]!.port === 9090)!;
  assert.deepEqual(adminRule.from, [{ podSelector: { matchLabels: { "crosslogic.ai/admin-client": "true" } } }]);
  assert.ok(find(objs, "NetworkPolicy", "crosslogic-default-deny"));
});

test("external Redis/PostgreSQL with TLS: URLs from the named Secrets, private CA trusted, migrations before install, nothing bundled", () => {
  const objs = template({ valuesFiles: [externalTls] });
  assert.ok(!objs.some((o) => o.kind === "Deployment" && /redis|postgresql/.test(o.metadata.name)), "no bundled data services");
  for (const [kind, name] of [["Deployment", "crosslogic-gateway"], ["Deployment", "crosslogic-operator"], ["Deployment", "crosslogic-billing"], ["Job", "crosslogic-migrations"]] as const) {
    const spec = podSpec(find(objs, kind, name));
    const env = envOf(spec.containers[0]!);
    assert.deepEqual(env.get("DATABASE_URL")?.valueFrom?.secretKeyRef, { name: "crosslogic-postgresql", key: "url" }, `${name} DATABASE_URL`);
    assert.equal(env.get("PGSSLMODE")?.value, "verify-full", `${name} PGSSLMODE`);
    assert.equal(env.get("NODE_EXTRA_CA_CERTS")?.value, "/etc/crosslogic/external-ca/ca.crt", `${name} trusts the CA`);
    assert.ok(spec.volumes!.some((v) => v.name === "external-ca" && (v.secret as { secretName: string }).secretName === "crosslogic-external-ca"), `${name} CA volume`);
  }
  const gwEnv = envOf(podSpec(find(objs, "Deployment", "crosslogic-gateway")).containers[0]!);
  assert.deepEqual(gwEnv.get("REDIS_URL")?.valueFrom?.secretKeyRef, { name: "crosslogic-redis", key: "url" });
  assert.deepEqual(gwEnv.get("ADMIN_TOKEN")?.valueFrom?.secretKeyRef, { name: "crosslogic-admin-token", key: "token" });
  assert.equal(gwEnv.get("ADMIN_TOKEN_NEXT")?.valueFrom?.secretKeyRef?.optional, true);
  assert.ok(!objs.some((o) => o.kind === "Secret" && o.metadata.name === "crosslogic-gateway-admin"), "no generated token when a Secret is named");
  const job = find(objs, "Job", "crosslogic-migrations");
  assert.equal(job.metadata.annotations!["helm.sh/hook"], "pre-install,pre-upgrade");
  const billingEnv = envOf(podSpec(find(objs, "Deployment", "crosslogic-billing")).containers[0]!);
  assert.equal(billingEnv.get("STRIPE_WEBHOOK_SECRET")?.valueFrom?.secretKeyRef?.name, "crosslogic-stripe");
  // Bundled database: the install creates it, so migrations run after install.
  assert.equal(find(template(), "Job", "crosslogic-migrations").metadata.annotations!["helm.sh/hook"], "post-install,pre-upgrade");
});

test("ingress and TLS: the Ingress routes only to the public Service with a cert-manager certificate; the gateway mounts its TLS Secret", () => {
  const objs = template({ valuesFiles: [ingressTls] });
  const ing = find(objs, "Ingress", "crosslogic-gateway");
  assert.equal(ing.metadata.annotations!["cert-manager.io/cluster-issuer"], "crosslogic-letsencrypt");
  const spec = ing.spec as { tls: { hosts: string[]; secretName: string }[]; rules: { http: { paths: { backend: { service: { name: string } } }[] } }[] };
  assert.deepEqual(spec.tls[0]!.hosts, ["api.example.com"]);
  assert.ok(spec.rules.every((r) => r.http.paths.every((p) => p.backend.service.name === "crosslogic-gateway")));
  const issuer = find(objs, "ClusterIssuer", "crosslogic-letsencrypt").spec as { acme: { email: string } };
  assert.equal(issuer.acme.email, "ops@example.com");
  const gw = podSpec(find(objs, "Deployment", "crosslogic-gateway"));
  assert.equal(envOf(gw.containers[0]!).get("TLS_CERT_DIR")?.value, "/etc/crosslogic/tls");
  const op = envOf(podSpec(find(objs, "Deployment", "crosslogic-operator")).containers[0]!);
  assert.equal(op.get("DEFAULT_ISSUER_NAME")?.value, "crosslogic-letsencrypt", "Environments default to the chart's issuer");
  assert.equal(op.get("DEFAULT_ISSUER_KIND")?.value, "ClusterIssuer");
});

test("threat feeds: URLs and a mounted ConfigMap become THREAT_FEEDS; none by default", () => {
  const gwOf = (set: string[] = []) => podSpec(find(template({ set }), "Deployment", "crosslogic-gateway"));
  assert.equal(envOf(gwOf().containers[0]!).get("THREAT_FEEDS"), undefined, "no feed unless one is configured");
  const gw = gwOf(["gateway.threatFeeds.urls={https://www.spamhaus.org/drop/drop.txt}", "gateway.threatFeeds.configMap=threat-feeds", "gateway.threatFeeds.refreshSeconds=7200"]);
  const env = envOf(gw.containers[0]!);
  assert.equal(env.get("THREAT_FEEDS")?.value, "https://www.spamhaus.org/drop/drop.txt,/etc/crosslogic/threat-feeds");
  assert.equal(env.get("THREAT_FEED_REFRESH_SECONDS")?.value, "7200");
  assert.deepEqual(gw.volumes?.find((v) => v.name === "threat-feeds")?.configMap, { name: "threat-feeds" });
  const mounts = gw.containers[0]!.volumeMounts as Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  assert.deepEqual(mounts.find((m) => m.name === "threat-feeds"), { name: "threat-feeds", mountPath: "/etc/crosslogic/threat-feeds", readOnly: true });
});

const refused: [string, string[], RegExp][] = [
  ["admin Service made public", ["gateway.adminService.type=LoadBalancer"], /adminService/],
  ["unknown value (typo)", ["gateway.replicass=3"], /replicass/],
  ["admin port equal to the public port", ["gateway.adminPort=8080"], /must differ/],
  ["Redis failure policy not in the list", ["gateway.redisFailurePolicy=ignore"], /redisFailurePolicy/],
  ["external PostgreSQL without a Secret", ["postgresql.bundled.enabled=false"], /postgresql\/existingSecret\/name/],
  ["billing without a Stripe Secret", ["billing.enabled=true"], /stripe\/existingSecret/],
  ["root user", ["securityContext.runAsUser=0"], /runAsUser/],
  ["ingress without hosts", ["ingress.enabled=true"], /hosts/],
  ["ACME issuer without an email", ["certManager.clusterIssuer.create=true"], /email/],
  ["TLS to the bundled Redis", ["redis.tls.enabled=true"], /redis\/tls\/enabled/],
  ["PostgreSQL sslmode that does not verify", ["postgresql.bundled.enabled=false", "postgresql.existingSecret.name=pg", "postgresql.tls.enabled=true", "postgresql.tls.sslmode=disable"], /sslmode/],
  ["trusted proxy that is not a CIDR", ["gateway.trustedProxies={everyone}"], /trustedProxies/],
  ["public peer on the admin port", ["networkPolicy.adminFrom[0].ipBlock.cidr=0.0.0.0/0"], /adminFrom/],
  ["HPA min above max", ["gateway.autoscaling.minReplicas=20"], /minReplicas/],
  ["gateway TLS without a certificate Secret", ["gateway.tls.enabled=true"], /secretNames/],
  ["image tag with a space", ["image.tag=bad tag"], /tag/],
  ["threat feed over plain HTTP", ["gateway.threatFeeds.urls={http://feeds.example.com/drop.txt}"], /threatFeeds/],
];

test("values the schema or the chart refuse, each with a message naming the field", () => {
  for (const [name, set, message] of refused) {
    const r = helm(templateArgs({ set }));
    assert.notEqual(r.status, 0, `${name}: rendered although it should be refused`);
    assert.match(r.stderr, message, `${name}: ${r.stderr}`);
  }
});

/** Environment variable names each component reads (the brief's fixed list) plus the ones Node reads itself. */
const nodeEnv = ["NODE_EXTRA_CA_CERTS", "PGSSLMODE"];
const fixedEnv: Record<string, string[]> = {
  operator: ["KUBECONFIG", "SYSTEM_NAMESPACE", "POD_NAME", "LEADER_ELECTION", "HTTP_PORT", "DEFAULT_ISSUER_NAME", "DEFAULT_ISSUER_KIND", "KEY_ROTATION_GRACE_SECONDS", "REDIS_URL", "DATABASE_URL", "LOG_LEVEL"],
  gateway: ["PORT", "ADMIN_PORT", "ADMIN_TOKEN", "ADMIN_TOKEN_NEXT", "REDIS_URL", "DATABASE_URL", "CONFIG_SOURCE", "CONFIG_DIR", "SYSTEM_NAMESPACE", "KUBECONFIG", "GLOBAL_REQUESTS_PER_MINUTE", "REDIS_FAILURE_POLICY", "REDIS_TIMEOUT_MS", "TRUSTED_PROXIES", "TLS_CERT_DIR", "LOG_LEVEL"],
  billing: ["PORT", "DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "KUBECONFIG", "BILLING_GRACE_PERIOD_SECONDS", "LOG_LEVEL"],
};

/**
 * The variables a component's config.ts reads, if it exists yet: the keys of its TypeBox env
 * schema (`  NAME: Type.…` / `  NAME: Int(…)` lines; the schema need not be exported).
 */
function envSchemaOf(component: string): string[] | undefined {
  const file = path.join(repoRoot, component, "src/config.ts");
  if (!fs.existsSync(file)) return undefined;
  const names = [...fs.readFileSync(file, "utf8").matchAll(/^\s{2}([A-Z][A-Z0-9_]{2,}):\s/gm)].map((m) => m[1]!);
  return names.includes("LOG_LEVEL") ? names : undefined;
}

test("every environment variable the chart sets is one the component reads (its config.ts, or the brief's list until it exists)", (t) => {
  const objs = [...template({ valuesFiles: [externalTls] }), ...template({ valuesFiles: [ingressTls] })];
  for (const component of ["operator", "gateway", "billing"]) {
    const fromConfig = envSchemaOf(component);
    if (!fromConfig) t.diagnostic(`${component}/src/config.ts has no env schema yet: checked against the brief's list only`);
    const known = new Set([...(fromConfig ?? fixedEnv[component]!), ...nodeEnv]);
    const set = new Set<string>();
    for (const o of objs.filter((x) => x.kind === "Deployment" && x.metadata.name === `crosslogic-${component}`)) {
      for (const name of envOf(podSpec(o).containers[0]!).keys()) set.add(name);
    }
    assert.ok(set.size > 0, `${component} rendered`);
    const unknown = [...set].filter((n) => !known.has(n));
    assert.deepEqual(unknown, [], `${component}: the chart sets variables its config does not read`);
    // Every name of the brief's list the chart can set is set (KUBECONFIG is in-cluster, CONFIG_DIR/STRIPE_API_BASE optional).
    const optional = new Set(["KUBECONFIG", "CONFIG_DIR", "STRIPE_API_BASE"]);
    const missing = fixedEnv[component]!.filter((n) => !optional.has(n) && !set.has(n));
    assert.deepEqual(missing, [], `${component}: variables of the brief the chart never sets`);
  }
});

interface Rule { apiGroups: string[]; resources: string[]; verbs: string[] }

test("the operator holds every permission of the tenant Roles it creates (Kubernetes refuses RBAC escalation)", async (t) => {
  const file = path.join(repoRoot, "operator/src/controllers/tenant/desired.ts");
  if (!fs.existsSync(file)) return t.skip("operator tenant controller not there yet");
  const { roleRules } = (await import(pathToFileURL(file).href)) as { roleRules: (role: string) => Rule[] };
  const held = find(template(), "ClusterRole", "crosslogic-operator").rules as Rule[];
  const holds = (group: string, resource: string, verb: string) => held.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
  for (const role of ["admin", "developer", "read-only"]) {
    for (const rule of roleRules(role)) {
      for (const g of rule.apiGroups) for (const res of rule.resources) for (const v of rule.verbs) {
        assert.ok(holds(g, res, v), `tenant ${role} Role grants ${v} ${g || "core"}/${res}, which the operator's ClusterRole lacks`);
      }
    }
  }
});

test("the operator may bind the three shared member-role ClusterRoles by name, and may not escalate", async () => {
  const { TenantClusterRoleNames } = await import("@crosslogic/crds");
  const held = find(template(), "ClusterRole", "crosslogic-operator").rules as Array<Rule & { resourceNames?: string[] }>;
  const binds = held.filter((r) => r.verbs.includes("bind"));
  assert.deepEqual(binds.map((r) => [r.resources, [...(r.resourceNames ?? [])].sort()]), [[["clusterroles"], Object.values(TenantClusterRoleNames).sort()]],
    "bind only on the member-role ClusterRoles the operator's RoleBindings reference");
  assert.ok(!held.some((r) => r.verbs.includes("escalate") || r.verbs.includes("impersonate")), "no escalate or impersonate");
  const roles = held.find((r) => r.resources.includes("roles"))!;
  assert.deepEqual(roles.verbs, ["get", "list", "watch", "delete"], "namespaced Roles: only removing those of earlier versions");
});
