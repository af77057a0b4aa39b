/**
 * scripts/doctor.ts against small fakes on loopback: a well-configured system passes the items the
 * doctor can see and says which it cannot; a misconfigured one fails exactly the items broken.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFile } from "node:child_process";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { REQUIRED_HEADERS, runDoctor, weakness, type CheckResult, type DoctorOptions, type Kube } from "../../../scripts/doctor.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const TOKEN = "Zq3vN8xK1pR7tY2wB5mC9dF4gH6jL0sA";   // 32 characters, many distinct
const KEY = "clsk_test_0123456789abcdef";
const SECURE: Record<string, string> = {
  "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "X-XSS-Protection": "1; mode=block",
  "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
  "Referrer-Policy": "strict-origin-when-cross-origin",
  "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
  "Cache-Control": "no-store, no-cache, must-revalidate",
};

interface Flaws { token?: string; dropHeader?: string; adminOnPublic?: boolean; acceptForgedWebhook?: boolean; noAudit?: boolean; noRateHeaders?: boolean }

const servers: http.Server[] = [];
after(() => { for (const s of servers) s.close(); });

async function listen(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A gateway (public + admin listeners) and billing, as the real ones behave, minus the flaws asked for. */
async function fakeSystem(flaws: Flaws = {}): Promise<{ gateway: string; admin: string; billing: string }> {
  const audit: { action: string; request_id: string; timestamp: string }[] = [];
  let n = 0;
  const json = (res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) => {
    for (const [k, v] of Object.entries(SECURE)) if (k !== flaws.dropHeader) res.setHeader(k, v);
    res.writeHead(status, { "content-type": "application/json", ...extra }).end(JSON.stringify(body));
  };
  const adminHandler: http.RequestListener = (req, res) => {
    const url = new URL(req.url!, "http://x");
    const id = `req_${++n}`;
    if (url.pathname === "/metrics") return void res.writeHead(200, { "content-type": "text/plain" }).end("# HELP gateway_requests_total x\n# TYPE gateway_requests_total counter\n");
    if (!url.pathname.startsWith("/admin/")) return json(res, 404, { error: { code: "not_found" } });
    if (req.headers["x-admin-token"] !== (flaws.token ?? TOKEN)) {
      if (!flaws.noAudit) audit.push({ action: "admin_auth_failed", request_id: id, timestamp: new Date().toISOString() });
      return json(res, 401, { error: { code: "invalid_admin_token", request_id: id } });
    }
    const action = url.searchParams.get("action");
    return json(res, 200, { object: "list", data: audit.filter((e) => !action || e.action === action) });
  };
  const gateway = await listen((req, res) => {
    const url = new URL(req.url!, "http://x");
    if (url.pathname.startsWith("/admin/") && flaws.adminOnPublic) return adminHandler(req, res);
    if (url.pathname === "/v1/models" && req.method === "GET") {
      if (req.headers.authorization !== `Bearer ${KEY}`) return json(res, 401, { error: { code: "invalid_api_key" } });
      const rate: Record<string, string> = flaws.noRateHeaders ? {} : { "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": String(Math.floor(Date.now() / 1000) + 60) };
      return json(res, 200, { object: "list", data: [] }, rate);
    }
    if (url.pathname === "/v1/chat/completions") return json(res, 415, { error: { code: "unsupported_media_type" } });
    return json(res, 404, { error: { code: "not_found" } });
  });
  const admin = await listen(adminHandler);
  const billing = await listen((req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url !== "/stripe/webhook") return void res.writeHead(404).end();
      res.writeHead(flaws.acceptForgedWebhook ? 200 : 400, { "content-type": "application/json" }).end("{}");
    });
  });
  return { gateway, admin, billing };
}

function options(sys: { gateway: string; admin: string; billing: string }, extra: Partial<DoctorOptions> = {}): DoctorOptions {
  return {
    gateway: sys.gateway, adminUrl: sys.admin, billingUrl: sys.billing, apiKey: KEY, adminToken: TOKEN,
    stripeWebhookPath: "/stripe/webhook", stripeWebhookSecret: "whsec_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6",
    databaseUrl: "postgresql://crosslogic_app:Vx9!kq2Lm7Rt4Zp8Wn3Ys6@db.internal:5432/crosslogic",
    namespace: "crosslogic-system", gatewayDeployment: "crosslogic-gateway", skip: new Set(), timeoutMs: 3000, ...extra,
  };
}

const byId = (rs: CheckResult[]) => Object.fromEntries(rs.map((r) => [r.id, r]));

const goodKube: Kube = {
  certificates: async () => [{ name: "acme-prod", namespace: "crosslogic-system", ready: true, renewalTime: "2027-01-01T00:00:00Z", duration: "2160h" }],
  gatewayEnv: async () => ({ GLOBAL_REQUESTS_PER_MINUTE: "600000" }),
  networkPolicies: async () => ["crosslogic-default-deny", "crosslogic-gateway"],
  unlimited: async () => [],
};

test("a well-configured system passes every item the doctor can check and names the ones it cannot", async () => {
  const r = byId(await runDoctor(options(await fakeSystem(), { kube: goodKube })));
  for (const id of ["tls", "headers", "rate-limits", "database-credentials", "admin-token", "webhook-secret", "audit-logging"]) {
    assert.equal(r[id]!.status, "pass", `${id}: ${r[id]!.details.join(" | ")}`);
  }
  for (const id of ["private-networking", "backup-encryption", "monitoring"]) {
    assert.equal(r[id]!.status, "unverifiable", `${id} is said to be unverifiable, never passed`);
    assert.ok(r[id]!.details.length > 0);
  }
});

test("each misconfiguration fails its own item", async () => {
  const cases: [string, Flaws, Partial<DoctorOptions>, string, RegExp][] = [
    ["a security header missing", { dropHeader: "X-Frame-Options" }, {}, "headers", /x-frame-options/],
    ["admin API on the public listener", { adminOnPublic: true }, {}, "admin-token", /PUBLIC URL/],
    ["weak admin token", { token: "changeme-changeme-changeme-change" }, { adminToken: "changeme-changeme-changeme-change" }, "admin-token", /weak/],
    ["webhook accepting forged signatures", { acceptForgedWebhook: true }, {}, "webhook-secret", /ACCEPTED/],
    ["webhook secret not Stripe's form", {}, { stripeWebhookSecret: "secret" }, "webhook-secret", /whsec_/],
    ["no audit event for a failed admin login", { noAudit: true }, {}, "audit-logging", /no audit event/],
    ["no rate-limit headers", { noRateHeaders: true }, {}, "rate-limits", /x-ratelimit-limit/],
    ["global layer unlimited", {}, { kube: { ...goodKube, gatewayEnv: async () => ({ GLOBAL_REQUESTS_PER_MINUTE: "0" }) } }, "rate-limits", /layer 1/],
    ["a tenant set to unlimited", {}, { kube: { ...goodKube, unlimited: async () => ["Tenant acme"] } }, "rate-limits", /Tenant acme/],
    ["default database password", {}, { databaseUrl: "postgresql://app:postgres@db:5432/x" }, "database-credentials", /weak/],
    ["certificate that never renews", {}, { kube: { ...goodKube, certificates: async () => [{ name: "c", namespace: "n", ready: true, duration: "8760h" }] } }, "tls", /renewalTime.*duration/],
    ["plain HTTP and no certificates", {}, { kube: { ...goodKube, certificates: async () => [] } }, "tls", /no cert-manager Certificates/],
  ];
  for (const [name, flaws, extra, id, detail] of cases) {
    const results = await runDoctor(options(await fakeSystem(flaws), { kube: goodKube, ...extra }));
    const r = byId(results)[id]!;
    assert.equal(r.status, "fail", `${name}: ${id} should fail (${r.details.join(" | ")})`);
    assert.match(r.details.join("\n"), detail, name);
    const others = results.filter((x) => x.id !== id && x.status === "fail").map((x) => x.id);
    assert.deepEqual(others, [], `${name}: only ${id} fails`);
  }
});

test("secret strength: defaults, short and repetitive secrets are weak; random ones are not", () => {
  assert.match(weakness("short", 32)!, /fewer than 32/);
  assert.equal(weakness("changeme", 8), "a well-known default");
  assert.match(weakness("a".repeat(40), 32)!, /distinct/);
  assert.match(weakness("Password1Password1Password1Password1", 32)!, /distinct/);
  assert.match(weakness("abcdefghijabcdefghijabcdefghij", 16, 120)!, /entropy/);
  assert.equal(weakness("9f86d081884c7d659a2feaa0c55ad015", 32), undefined, "a random 128-bit hex token is strong");
  assert.equal(weakness(TOKEN, 32), undefined);
  assert.equal(REQUIRED_HEADERS.length, 8, "the seed lists eight headers");
});

test("the command exits 1 on a failure, 0 when nothing failed, and reports what it cannot verify", async () => {
  const good = await fakeSystem();
  const run = (sys: { gateway: string; admin: string }, env: Record<string, string>, args: string[] = []) =>
    new Promise<{ status: number; out: string }>((resolve) => {
      // Asynchronously: a synchronous spawn would block the event loop that serves the fakes.
      execFile(process.execPath, [path.join(root, "scripts/doctor.ts"), "--gateway", sys.gateway, "--admin-url", sys.admin, ...args],
        { encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...env } }, (err, stdout) => resolve({ status: err ? Number(err.code ?? 1) : 0, out: stdout }));
    });
  const ok = await run(good, { ADMIN_TOKEN: TOKEN, CROSSLOGIC_API_KEY: KEY }, ["--skip", "tls"]);
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.out, /\[SKIPPED\] TLS/);
  assert.match(ok.out, /\[CANNOT VERIFY\] Backup encryption enabled/);
  assert.match(ok.out, /\[PASS\] Security headers middleware enabled/);
  const bad = await run(await fakeSystem({ adminOnPublic: true }), { ADMIN_TOKEN: TOKEN }, ["--skip", "tls"]);
  assert.equal(bad.status, 1, bad.out);
  assert.match(bad.out, /\[FAIL\] Admin token set to secure value/);
});
