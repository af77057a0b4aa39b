#!/usr/bin/env node
/**
 * The deployment checklist of the security document (seed 001, "Security Checklist for
 * Deployment") run against a live system. Each item is checked by behaviour where it can be
 * (requests to the gateway, the admin API, billing's webhook; the cluster's Certificates), and an
 * item the doctor cannot see from here says so plainly instead of passing.
 *
 *   node scripts/doctor.ts --gateway URL [--admin-url URL] [--api-key KEY] [--billing-url URL]
 *        [--database-url URL] [--namespace NS] [--gateway-deployment NAME] [--kube-context CTX]
 *        [--ca-file PEM] [--skip ID]… [--json]
 *
 * Secrets come from the environment, never from flags (they would show in `ps`): ADMIN_TOKEN,
 * STRIPE_WEBHOOK_SECRET, DATABASE_URL, CROSSLOGIC_API_KEY. Kubernetes checks run when KUBECONFIG
 * is set, a --kube-context is given, or in-cluster. Exit status: 1 when any item failed, 0 otherwise.
 */
import fs from "node:fs";
import tls from "node:tls";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

export type Status = "pass" | "fail" | "warn" | "unverifiable" | "skipped";
export interface CheckResult { id: string; title: string; status: Status; details: string[] }

export interface DoctorOptions {
  gateway: string;
  adminUrl?: string;
  apiKey?: string;
  billingUrl?: string;
  stripeWebhookPath: string;
  databaseUrl?: string;
  adminToken?: string;
  stripeWebhookSecret?: string;
  namespace: string;
  gatewayDeployment: string;
  caFile?: string;
  skip: ReadonlySet<string>;
  timeoutMs: number;
  kube?: Kube;
}

/** The little the doctor reads from Kubernetes (an interface, so tests can give a fake). */
export interface Kube {
  certificates(): Promise<CertificateInfo[]>;
  gatewayEnv(namespace: string, deployment: string): Promise<Record<string, string> | undefined>;
  networkPolicies(namespace: string): Promise<string[]>;
  unlimited(): Promise<string[]>;
}
export interface CertificateInfo { name: string; namespace: string; ready: boolean; renewalTime?: string; notAfter?: string; duration?: string; algorithm?: string; size?: number }

/** The checklist, in the seed's order. */
export const CHECKLIST = [
  ["tls", "TLS certificates configured and auto-renewal enabled"],
  ["headers", "Security headers middleware enabled"],
  ["rate-limits", "Rate limiting configured at all layers"],
  ["database-credentials", "Database credentials rotated from defaults"],
  ["admin-token", "Admin token set to secure value"],
  ["webhook-secret", "Stripe webhook secret configured"],
  ["private-networking", "Private networking configured"],
  ["audit-logging", "Audit logging enabled"],
  ["backup-encryption", "Backup encryption enabled"],
  ["monitoring", "Monitoring and alerting configured"],
] as const;
export type CheckId = (typeof CHECKLIST)[number][0];

/** The seed's header list; values as the seed gives them (CSP and Permissions-Policy by their required parts). */
export const REQUIRED_HEADERS: [string, (v: string) => boolean, string][] = [
  ["strict-transport-security", (v) => /max-age=(\d+)/.test(v) && Number(/max-age=(\d+)/.exec(v)![1]) >= 31536000 && /includeSubDomains/i.test(v) && /preload/i.test(v), "max-age=31536000; includeSubDomains; preload"],
  ["x-frame-options", (v) => v.toUpperCase() === "DENY", "DENY"],
  ["x-content-type-options", (v) => v.toLowerCase() === "nosniff", "nosniff"],
  ["x-xss-protection", (v) => v.replace(/\s/g, "") === "1;mode=block", "1; mode=block"],
  ["content-security-policy", (v) => v.includes("default-src 'self'") && v.includes("frame-ancestors 'none'"), "default-src 'self'; frame-ancestors 'none'"],
  ["referrer-policy", (v) => v === "strict-origin-when-cross-origin", "strict-origin-when-cross-origin"],
  ["permissions-policy", (v) => ["geolocation=()", "microphone=()", "camera=()"].every((p) => v.replace(/\s/g, "").includes(p)), "geolocation=(), microphone=(), camera=()"],
  ["cache-control", (v) => ["no-store", "no-cache", "must-revalidate"].every((p) => v.includes(p)), "no-store, no-cache, must-revalidate"],
];

const WEAK_SECRETS = new Set(["changeme", "change-me", "admin", "password", "secret", "token", "default", "test", "dev", "postgres", "crosslogic", "letmein", "123456", "qwerty", "root", "example"]);
const MAX_CERT_DAYS = 90;

/** Estimated bits of a secret from its length and alphabet, with repetition penalised (Shannon entropy × length). */
export function secretBits(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) { const p = n / s.length; h -= p * Math.log2(p); }
  return h * s.length;
}

/**
 * Why a secret is weak, or undefined when it is not. The entropy estimate counts symbol frequencies
 * only (so it understates random secrets): 100 bits accepts a random 32-character hex token.
 */
export function weakness(secret: string, minLength: number, minBits = 100): string | undefined {
  const lower = secret.toLowerCase();
  if (secret.length < minLength) return `${secret.length} characters, fewer than ${minLength}`;
  for (const w of WEAK_SECRETS) if (lower === w || lower.replace(/[^a-z]/g, "") === w) return "a well-known default";
  if (new Set(secret).size < 10) return "too few distinct characters";
  if (secretBits(secret) < minBits) return `about ${Math.round(secretBits(secret))} bits of entropy, fewer than ${minBits}`;
  return undefined;
}

interface Answer { status: number; headers: Headers; body: string }

async function request(url: string, opts: RequestInit & { timeoutMs: number }): Promise<Answer> {
  const res = await fetch(url, { ...opts, redirect: "manual", signal: AbortSignal.timeout(opts.timeoutMs) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const join = (base: string, p: string) => `${base.replace(/\/+$/, "")}${p}`;
const errText = (e: unknown) => (e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e));

/** Worst status of several partial verdicts: fail > warn > pass > unverifiable. */
function verdict(parts: Status[]): Status {
  if (parts.includes("fail")) return "fail";
  if (parts.includes("warn")) return "warn";
  if (parts.includes("pass")) return "pass";
  return "unverifiable";
}

async function checkTls(o: DoctorOptions): Promise<[Status, string[]]> {
  const details: string[] = [];
  const parts: Status[] = [];
  const url = new URL(o.gateway);
  if (url.protocol === "https:") {
    const ca = o.caFile ? fs.readFileSync(o.caFile) : undefined;
    const port = Number(url.port || 443);
    try {
      const info = await new Promise<{ protocol: string | null; cert: tls.PeerCertificate }>((resolve, reject) => {
        const s = tls.connect({ host: url.hostname, port, servername: url.hostname, ...(ca ? { ca } : {}), timeout: o.timeoutMs }, () => {
          resolve({ protocol: s.getProtocol(), cert: s.getPeerCertificate() });
          s.end();
        });
        s.on("error", reject);
        s.on("timeout", () => s.destroy(new Error("TLS handshake timed out")));
      });
      const days = (Date.parse(info.cert.valid_to) - Date.parse(info.cert.valid_from)) / 86_400_000;
      const left = (Date.parse(info.cert.valid_to) - Date.now()) / 86_400_000;
      const key = info.cert.asn1Curve ? `EC ${info.cert.asn1Curve}` : `RSA ${info.cert.bits}`;
      const keyOk = info.cert.asn1Curve ? ["prime256v1", "secp384r1"].includes(info.cert.asn1Curve) : (info.cert.bits ?? 0) >= 4096;
      details.push(`${url.host}: ${info.protocol}, certificate valid ${Math.round(days)} days (${Math.floor(left)} left), key ${key}`);
      parts.push(info.protocol === "TLSv1.3" || info.protocol === "TLSv1.2" ? "pass" : "fail");
      if (days > MAX_CERT_DAYS + 1) { parts.push("fail"); details.push(`certificate lifetime ${Math.round(days)} days exceeds ${MAX_CERT_DAYS}`); }
      if (left < 7) { parts.push("fail"); details.push("certificate expires within 7 days: renewal is not working"); }
      if (!keyOk) { parts.push("fail"); details.push(`key ${key}: RSA-4096 or ECDSA P-256/P-384 required`); }
    } catch (e) {
      parts.push("fail");
      details.push(`TLS handshake with ${url.host} failed: ${errText(e)}`);
    }
    try {
      await new Promise<void>((resolve, reject) => {
        const s = tls.connect({ host: url.hostname, port, servername: url.hostname, maxVersion: "TLSv1.1", minVersion: "TLSv1", rejectUnauthorized: false, timeout: o.timeoutMs }, () => { s.end(); reject(new Error("accepted")); });
        s.on("error", () => resolve());
        s.on("timeout", () => { s.destroy(); resolve(); });
      });
      details.push("TLS 1.1 and older refused");
    } catch {
      parts.push("fail");
      details.push("the gateway accepts TLS 1.1 or older");
    }
  }
  if (o.kube) {
    try {
      const certs = await o.kube.certificates();
      for (const c of certs) {
        const problems: string[] = [];
        if (!c.ready) problems.push("not Ready");
        if (!c.renewalTime) problems.push("no renewalTime (auto-renewal not scheduled)");
        if (c.duration && durationHours(c.duration) > MAX_CERT_DAYS * 24) problems.push(`duration ${c.duration} > ${MAX_CERT_DAYS}d`);
        parts.push(problems.length ? "fail" : "pass");
        details.push(`Certificate ${c.namespace}/${c.name}: ${problems.length ? problems.join(", ") : `Ready, renews at ${c.renewalTime}`}`);
      }
      if (certs.length === 0) details.push("no cert-manager Certificates for the control plane or its Environments");
      if (certs.length === 0 && url.protocol !== "https:") parts.push("fail");
    } catch (e) {
      details.push(`Certificates could not be listed: ${errText(e)}`);
    }
  }
  if (url.protocol !== "https:" && !parts.length) {
    parts.push("fail");
    details.push(`${o.gateway} is plain HTTP and no Certificate could be checked: production traffic must use TLS 1.2+`);
  } else if (url.protocol !== "https:") {
    details.push(`${o.gateway} itself was reached over plain HTTP (TLS terminates in front of it)`);
  }
  return [verdict(parts), details];
}

function durationHours(d: string): number {
  let h = 0;
  for (const [, n, u] of d.matchAll(/(\d+(?:\.\d+)?)(h|m|s)/g)) h += Number(n) / (u === "h" ? 1 : u === "m" ? 60 : 3600);
  return h;
}

async function checkHeaders(o: DoctorOptions): Promise<[Status, string[]]> {
  const probes: [string, RequestInit][] = [
    ["GET /v1/models without a key", { method: "GET" }],
    [`GET /doctor-${randomBytes(4).toString("hex")} (unknown path)`, { method: "GET" }],
    ["POST /v1/chat/completions with a text body", { method: "POST", body: "not json", headers: { "content-type": "text/plain" } }],
  ];
  const details: string[] = [];
  let failed = false;
  for (const [label, init] of probes) {
    const p = label.split(" ")[1]!;
    try {
      const r = await request(join(o.gateway, p), { ...init, timeoutMs: o.timeoutMs });
      const bad = REQUIRED_HEADERS.filter(([h, ok]) => !ok(r.headers.get(h) ?? "")).map(([h, , want]) => `${h} (want "${want}", got ${JSON.stringify(r.headers.get(h))})`);
      if (bad.length) { failed = true; details.push(`${label} → ${r.status}: missing or wrong ${bad.join("; ")}`); }
      else details.push(`${label} → ${r.status}: all ${REQUIRED_HEADERS.length} headers present`);
    } catch (e) {
      failed = true;
      details.push(`${label}: no answer (${errText(e)})`);
    }
  }
  return [failed ? "fail" : "pass", details];
}

async function checkRateLimits(o: DoctorOptions): Promise<[Status, string[]]> {
  const details: string[] = [];
  const parts: Status[] = [];
  if (o.apiKey) {
    try {
      const r = await request(join(o.gateway, "/v1/models"), { headers: { authorization: `Bearer ${o.apiKey}` }, timeoutMs: o.timeoutMs });
      const h = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"].map((n) => [n, r.headers.get(n)] as const);
      const missing = h.filter(([, v]) => v === null || !/^\d+$/.test(v)).map(([n]) => n);
      if (r.status === 401 || r.status === 403) { parts.push("fail"); details.push(`the API key was refused (${r.status}): pass a working key`); }
      else if (missing.length) { parts.push("fail"); details.push(`GET /v1/models → ${r.status} without ${missing.join(", ")}`); }
      else { parts.push("pass"); details.push(`GET /v1/models → ${r.status} with ${h.map(([n, v]) => `${n}: ${v}`).join(", ")}`); }
      if (r.status === 429 && !r.headers.get("retry-after")) { parts.push("fail"); details.push("429 without Retry-After"); }
    } catch (e) {
      parts.push("fail");
      details.push(`GET /v1/models: no answer (${errText(e)})`);
    }
  } else {
    details.push("per-request headers not checked: pass an API key (CROSSLOGIC_API_KEY or --api-key)");
  }
  if (o.kube) {
    try {
      const env = await o.kube.gatewayEnv(o.namespace, o.gatewayDeployment);
      if (env) {
        const global = Number(env.GLOBAL_REQUESTS_PER_MINUTE ?? "0");
        parts.push(global > 0 ? "pass" : "fail");
        details.push(global > 0 ? `layer 1 (global): ${global}/min` : "layer 1 (global): GLOBAL_REQUESTS_PER_MINUTE is unset or 0 (unlimited)");
      } else details.push(`Deployment ${o.namespace}/${o.gatewayDeployment} not found: global layer not checked`);
      const unlimited = await o.kube.unlimited();
      parts.push(unlimited.length ? "fail" : "pass");
      details.push(unlimited.length ? `unlimited (requestsPerMinute: 0): ${unlimited.join(", ")}` : "layers 2–4 (tenant, environment, key): no object sets requestsPerMinute to 0; plan defaults apply");
    } catch (e) {
      details.push(`limits could not be read from the cluster: ${errText(e)}`);
    }
  } else {
    details.push("configured limits per layer not checked: no Kubernetes access");
  }
  return [verdict(parts), details];
}

function checkDatabaseCredentials(o: DoctorOptions): [Status, string[]] {
  if (!o.databaseUrl) return ["unverifiable", ["the database credentials are not visible from here: set DATABASE_URL (or --database-url) to check them; their age (90-day rotation) cannot be verified"]];
  const u = new URL(o.databaseUrl);
  const password = decodeURIComponent(u.password);
  const details = [`user ${decodeURIComponent(u.username) || "(none)"} on ${u.hostname}`];
  if (!password) return ["fail", [...details, "no password in the URL"]];
  const w = weakness(password, 16, 60);
  if (w) return ["fail", [...details, `password is weak: ${w}`]];
  if (u.username === "postgres") return ["warn", [...details, "connects as the superuser postgres: use a dedicated role"]];
  return ["pass", [...details, "password is not a default and has enough entropy; rotation age cannot be verified"]];
}

async function checkAdminToken(o: DoctorOptions): Promise<[Status, string[]]> {
  const details: string[] = [];
  const parts: Status[] = [];
  if (o.adminToken) {
    const w = weakness(o.adminToken, 32);
    parts.push(w ? "fail" : "pass");
    details.push(w ? `ADMIN_TOKEN is weak: ${w}` : `ADMIN_TOKEN: ${o.adminToken.length} characters, about ${Math.round(secretBits(o.adminToken))} bits`);
  } else details.push("token strength not checked: ADMIN_TOKEN is not set for the doctor");
  if (o.adminUrl) {
    const probe = join(o.adminUrl, "/admin/audit?limit=1");
    try {
      const none = await request(probe, { timeoutMs: o.timeoutMs });
      const wrong = await request(probe, { headers: { "x-admin-token": randomBytes(24).toString("base64url") }, timeoutMs: o.timeoutMs });
      const refused = [none, wrong].every((r) => r.status === 401 || r.status === 403);
      parts.push(refused ? "pass" : "fail");
      details.push(`admin API without a token → ${none.status}, with a wrong token → ${wrong.status}${refused ? "" : " (must be 401)"}`);
      if (o.adminToken) {
        const ok = await request(probe, { headers: { "x-admin-token": o.adminToken }, timeoutMs: o.timeoutMs });
        parts.push(ok.status === 200 ? "pass" : "fail");
        details.push(`admin API with ADMIN_TOKEN → ${ok.status}`);
      }
    } catch (e) {
      parts.push("fail");
      details.push(`admin API at ${o.adminUrl}: no answer (${errText(e)})`);
    }
  } else details.push("admin API not probed: pass --admin-url");
  try {
    const pub = await request(join(o.gateway, "/admin/audit?limit=1"), { headers: o.adminToken ? { "x-admin-token": o.adminToken } : {}, timeoutMs: o.timeoutMs });
    const exposed = pub.status >= 200 && pub.status < 300;
    parts.push(exposed ? "fail" : "pass");
    details.push(exposed ? "the admin API answers on the PUBLIC URL" : `admin API not served on the public URL (→ ${pub.status})`);
  } catch (e) {
    details.push(`public URL: no answer (${errText(e)})`);
  }
  return [verdict(parts), details];
}

async function checkWebhookSecret(o: DoctorOptions): Promise<[Status, string[]]> {
  const details: string[] = [];
  const parts: Status[] = [];
  if (o.stripeWebhookSecret) {
    const ok = /^whsec_[A-Za-z0-9+/=_-]{24,}$/.test(o.stripeWebhookSecret);
    parts.push(ok ? "pass" : "fail");
    details.push(ok ? "STRIPE_WEBHOOK_SECRET has Stripe's whsec_ form" : "STRIPE_WEBHOOK_SECRET is not a Stripe signing secret (whsec_…)");
  }
  if (o.billingUrl) {
    const body = JSON.stringify({ id: `evt_doctor_${randomBytes(6).toString("hex")}`, object: "event", type: "invoice.payment_failed", data: { object: {} } });
    const sig = `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}`;
    try {
      const r = await request(join(o.billingUrl, o.stripeWebhookPath), { method: "POST", body, headers: { "content-type": "application/json", "stripe-signature": sig }, timeoutMs: o.timeoutMs });
      if (r.status >= 200 && r.status < 300) { parts.push("fail"); details.push(`an event with a forged signature was ACCEPTED (${r.status})`); }
      else if (r.status >= 500) { parts.push("fail"); details.push(`billing answered ${r.status} to a forged event: is STRIPE_WEBHOOK_SECRET set?`); }
      else if (r.status === 404) { parts.push("fail"); details.push(`no webhook endpoint at ${o.stripeWebhookPath} (404)`); }
      else { parts.push("pass"); details.push(`a forged Stripe signature is refused (${r.status})`); }
    } catch (e) {
      parts.push("fail");
      details.push(`billing at ${o.billingUrl}: no answer (${errText(e)})`);
    }
  }
  if (!parts.length) details.push("not checked: pass --billing-url (a forged event must be refused) or set STRIPE_WEBHOOK_SECRET");
  return [verdict(parts), details];
}

async function checkPrivateNetworking(o: DoctorOptions): Promise<[Status, string[]]> {
  const details = ["subnets, security groups and the load balancer's open ports belong to the provider: verify that only 443 is exposed and the database sits in a private subnet"];
  if (o.kube) {
    try {
      const policies = await o.kube.networkPolicies(o.namespace);
      details.push(policies.length ? `NetworkPolicies in ${o.namespace}: ${policies.join(", ")}` : `no NetworkPolicies in ${o.namespace}`);
      if (!policies.length) return ["fail", details];
    } catch (e) {
      details.push(`NetworkPolicies could not be listed: ${errText(e)}`);
    }
  }
  return ["unverifiable", details];
}

async function checkAudit(o: DoctorOptions): Promise<[Status, string[]]> {
  if (!o.adminUrl || !o.adminToken) return ["unverifiable", ["needs --admin-url and ADMIN_TOKEN: the doctor provokes a failed admin login and looks for its audit event"]];
  const details: string[] = [];
  const from = new Date(Date.now() - 1000).toISOString();
  let requestId: string | undefined;
  try {
    const r = await request(join(o.adminUrl, "/admin/audit?limit=1"), { headers: { "x-admin-token": `doctor-${randomBytes(24).toString("hex")}` }, timeoutMs: o.timeoutMs });
    requestId = (JSON.parse(r.body) as { error?: { request_id?: string } }).error?.request_id ?? r.headers.get("x-request-id") ?? undefined;
  } catch (e) {
    return ["fail", [`admin API: no answer (${errText(e)})`]];
  }
  let found = false;
  for (let i = 0; i < 10 && !found; i++) {
    if (i) await new Promise((r) => setTimeout(r, 300));
    const r = await request(join(o.adminUrl, `/admin/audit?action=admin_auth_failed&from=${encodeURIComponent(from)}&limit=1000`), { headers: { "x-admin-token": o.adminToken }, timeoutMs: o.timeoutMs });
    if (r.status !== 200) return ["fail", [`audit query → ${r.status}`]];
    const events = ((JSON.parse(r.body) as { data?: Record<string, unknown>[] }).data ?? []);
    found = events.some((e) => !requestId || e.request_id === requestId || e.requestId === requestId);
  }
  details.push(found ? `the failed admin login (request ${requestId}) was recorded as admin_auth_failed` : `no audit event for the failed admin login (request ${requestId})`);
  if (!found) return ["fail", details];
  if (o.databaseUrl && requestId) {
    const persisted = await auditPersisted(o.databaseUrl, requestId);
    details.push(persisted === undefined ? "persistence not checked: the database could not be queried" : persisted ? "and persisted in PostgreSQL (AuditEvent)" : "but NOT persisted in PostgreSQL within 5 s (is DATABASE_URL set on the gateway?)");
    if (persisted === false) return ["warn", details];
  }
  return ["pass", details];
}

async function auditPersisted(url: string, requestId: string): Promise<boolean | undefined> {
  let client: { connect(): Promise<unknown>; query(q: string, v: unknown[]): Promise<{ rowCount: number | null }>; end(): Promise<void> } | undefined;
  try {
    const pg = (await import("pg")).default;
    client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    await client.connect();
    for (let i = 0; i < 10; i++) {
      const r = await client.query(`SELECT 1 FROM "AuditEvent" WHERE "requestId" = $1 LIMIT 1`, [requestId]);
      if (r.rowCount) return true;
      await new Promise((res) => setTimeout(res, 500));
    }
    return false;
  } catch {
    return undefined;
  } finally {
    await client?.end().catch(() => undefined);
  }
}

async function checkMonitoring(o: DoctorOptions): Promise<[Status, string[]]> {
  const details = ["alerting rules and who receives them cannot be seen from here"];
  if (!o.adminUrl) return ["unverifiable", ["metrics not checked: pass --admin-url", ...details]];
  try {
    const r = await request(join(o.adminUrl, "/metrics"), { timeoutMs: o.timeoutMs });
    if (r.status !== 200 || !r.body.includes("# HELP")) return ["fail", [`GET /metrics on the admin port → ${r.status}, not Prometheus text`, ...details]];
    return ["unverifiable", [`Prometheus metrics served on the admin port (${r.body.split("\n").filter((l) => l.startsWith("# HELP")).length} series)`, ...details]];
  } catch (e) {
    return ["fail", [`GET /metrics: no answer (${errText(e)})`, ...details]];
  }
}

const CHECKS: Record<CheckId, (o: DoctorOptions) => Promise<[Status, string[]]> | [Status, string[]]> = {
  "tls": checkTls,
  "headers": checkHeaders,
  "rate-limits": checkRateLimits,
  "database-credentials": checkDatabaseCredentials,
  "admin-token": checkAdminToken,
  "webhook-secret": checkWebhookSecret,
  "private-networking": checkPrivateNetworking,
  "audit-logging": checkAudit,
  "backup-encryption": () => ["unverifiable", ["backups live with the database provider: verify encryption at rest and a separate region there"]],
  "monitoring": checkMonitoring,
};

export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [id, title] of CHECKLIST) {
    if (o.skip.has(id)) { results.push({ id, title, status: "skipped", details: ["skipped on request (--skip)"] }); continue; }
    try {
      const [status, details] = await CHECKS[id](o);
      results.push({ id, title, status, details });
    } catch (e) {
      results.push({ id, title, status: "fail", details: [`the check itself failed: ${errText(e)}`] });
    }
  }
  return results;
}

const MARK: Record<Status, string> = { pass: "PASS", fail: "FAIL", warn: "WARN", unverifiable: "CANNOT VERIFY", skipped: "SKIPPED" };

export function report(results: CheckResult[]): string {
  const lines = ["CrossLogic deployment checklist (seed 001)", ""];
  for (const r of results) {
    lines.push(`[${MARK[r.status]}] ${r.title}`);
    for (const d of r.details) lines.push(`    ${d}`);
  }
  const count = (s: Status) => results.filter((r) => r.status === s).length;
  lines.push("", `Summary: ${count("fail")} FAIL, ${count("warn")} WARN, ${count("pass")} PASS, ${count("unverifiable")} CANNOT VERIFY from here, ${count("skipped")} SKIPPED`);
  return lines.join("\n");
}

/** Kubernetes access through @kubernetes/client-node (in-cluster, KUBECONFIG, or a named context). */
async function kubeFrom(context: string | undefined, env: NodeJS.ProcessEnv): Promise<Kube | undefined> {
  if (!context && !env.KUBECONFIG && !env.KUBERNETES_SERVICE_HOST) return undefined;
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const net = kc.makeApiClient(k8s.NetworkingV1Api);
  type Obj = { metadata: { name: string; namespace?: string }; spec?: Record<string, unknown>; status?: Record<string, unknown> };
  const list = async (group: string, version: string, plural: string) => ((await custom.listClusterCustomObject({ group, version, plural })) as { items: Obj[] }).items;
  return {
    async certificates() {
      return (await list("cert-manager.io", "v1", "certificates")).map((c) => {
        const conds = (c.status?.conditions ?? []) as { type: string; status: string }[];
        const pk = (c.spec?.privateKey ?? {}) as { algorithm?: string; size?: number };
        return {
          name: c.metadata.name, namespace: c.metadata.namespace ?? "", ready: conds.some((x) => x.type === "Ready" && x.status === "True"),
          ...(c.status?.renewalTime ? { renewalTime: String(c.status.renewalTime) } : {}),
          ...(c.status?.notAfter ? { notAfter: String(c.status.notAfter) } : {}),
          ...(c.spec?.duration ? { duration: String(c.spec.duration) } : {}),
          ...(pk.algorithm ? { algorithm: pk.algorithm } : {}), ...(pk.size ? { size: pk.size } : {}),
        };
      });
    },
    async gatewayEnv(namespace, name) {
      try {
        const d = await apps.readNamespacedDeployment({ name, namespace });
        const c = d.spec?.template.spec?.containers.find((x) => x.name === "gateway") ?? d.spec?.template.spec?.containers[0];
        return Object.fromEntries((c?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
      } catch (e) {
        if ((e as { code?: number }).code === 404) return undefined;
        throw e;
      }
    },
    async networkPolicies(namespace) {
      return (await net.listNamespacedNetworkPolicy({ namespace })).items.map((p) => p.metadata?.name ?? "");
    },
    async unlimited() {
      const out: string[] = [];
      for (const [plural, kind] of [["tenants", "Tenant"], ["environments", "Environment"]] as const) {
        for (const o of await list("crosslogic.ai", "v1alpha1", plural)) {
          const limits = (o.spec?.limits ?? {}) as { requestsPerMinute?: number };
          if (limits.requestsPerMinute === 0) out.push(`${kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`);
        }
      }
      return out;
    },
  };
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "gateway": { type: "string" }, "admin-url": { type: "string" }, "api-key": { type: "string" },
      "billing-url": { type: "string" }, "stripe-webhook-path": { type: "string", default: "/stripe/webhook" },
      "database-url": { type: "string" }, "namespace": { type: "string", default: "crosslogic-system" },
      "gateway-deployment": { type: "string", default: "crosslogic-gateway" }, "kube-context": { type: "string" },
      "ca-file": { type: "string" }, "skip": { type: "string", multiple: true, default: [] },
      "timeout-ms": { type: "string", default: "5000" }, "json": { type: "boolean", default: false }, "help": { type: "boolean", default: false },
    },
  });
  if (values.help || !values.gateway) {
    console.error("usage: node scripts/doctor.ts --gateway URL [--admin-url URL] [--billing-url URL] [--namespace NS] [--kube-context CTX] [--skip ID]… [--json]\n" +
      "secrets from the environment: ADMIN_TOKEN, STRIPE_WEBHOOK_SECRET, DATABASE_URL, CROSSLOGIC_API_KEY\n" +
      `checks: ${CHECKLIST.map(([id]) => id).join(", ")}`);
    return values.help ? 0 : 64;
  }
  const unknownSkips = values.skip.filter((s) => !CHECKLIST.some(([id]) => id === s));
  if (unknownSkips.length) { console.error(`unknown check id(s) for --skip: ${unknownSkips.join(", ")}`); return 64; }
  const o: DoctorOptions = {
    gateway: values.gateway,
    ...(values["admin-url"] ? { adminUrl: values["admin-url"] } : {}),
    ...((values["api-key"] ?? env.CROSSLOGIC_API_KEY) ? { apiKey: values["api-key"] ?? env.CROSSLOGIC_API_KEY } : {}),
    ...(values["billing-url"] ? { billingUrl: values["billing-url"] } : {}),
    stripeWebhookPath: values["stripe-webhook-path"],
    ...((values["database-url"] ?? env.DATABASE_URL) ? { databaseUrl: values["database-url"] ?? env.DATABASE_URL } : {}),
    ...(env.ADMIN_TOKEN ? { adminToken: env.ADMIN_TOKEN } : {}),
    ...(env.STRIPE_WEBHOOK_SECRET ? { stripeWebhookSecret: env.STRIPE_WEBHOOK_SECRET } : {}),
    namespace: values.namespace, gatewayDeployment: values["gateway-deployment"],
    ...(values["ca-file"] ? { caFile: values["ca-file"] } : {}),
    skip: new Set(values.skip), timeoutMs: Number(values["timeout-ms"]),
  };
  const kube = await kubeFrom(values["kube-context"], env).catch((e: unknown) => { console.error(`Kubernetes access unavailable: ${errText(e)}`); return undefined; });
  if (kube) o.kube = kube;
  const results = await runDoctor(o);
  console.log(values.json ? JSON.stringify({ results }, null, 2) : report(results));
  return results.some((r) => r.status === "fail") ? 1 : 0;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
