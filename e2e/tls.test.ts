/**
 * TLS end to end: cert-manager's real controllers (built from its Go module) issue the
 * Environment's Certificate that the operator requested, through a CA ClusterIssuer bootstrapped
 * from a SelfSigned one; the gateway terminates TLS with it (TLS_CERT_DIR, one folder per
 * certificate Secret, as the chart mounts them) and the `openai` SDK connects, verifying the chain
 * and the hostname.
 */
import assert from "node:assert/strict";
import { randomBytes, X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { startCertManager } from "@crosslogic/testenv/cert-manager";
import type { ManagedProcess } from "@crosslogic/testenv/process";
import { startProduct, type Product } from "@crosslogic/testenv/product";
import { testEnv } from "@crosslogic/testenv/test-env";
import { b64, kube, loopbackAgent, sdkFor, startLoopbackModelServer, waitFor } from "./support.ts";

const env = testEnv();
const k = kube(env.KUBECONFIG, env.KUBECTL);
const id = randomBytes(3).toString("hex");
const system = `e2e-tls-system-${id}`;
const tenant = `e2e-tls-${id}`;
const ns = `tenant-${tenant}`;
const hostname = `secure-${id}.e2e.test`;
const caNamespace = `e2e-tls-ca-${id}`;
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-tls-${id}-`));
const certDir = path.join(logDir, "certs");

type Secret = { data: Record<string, string> };

describe("TLS: cert-manager issues the Environment's certificate, the gateway serves it", { timeout: 240_000 }, () => {
  let certManager: ManagedProcess | undefined;
  let product: Product | undefined;
  let model: { url: string; process: ManagedProcess } | undefined;
  let secret: Secret;

  before(async () => {
    fs.mkdirSync(certDir, { recursive: true });
    certManager = await startCertManager({ kubeconfig: env.KUBECONFIG, logDir, clusterResourceNamespace: caNamespace });
    model = await startLoopbackModelServer(`tls-${id}`, ["llama-tls"], logDir);
    product = await startProduct({
      kubeconfig: env.KUBECONFIG, kubectl: env.KUBECTL, databaseUrl: env.DATABASE_URL, redisUrl: env.REDIS_URL,
      adminToken: randomBytes(32).toString("base64url"), systemNamespace: system, logDir, redisKeyPrefix: `e2e-tls-${id}:`,
      gatewayEnv: { TLS_CERT_DIR: certDir },
    });
    // A CA for this test: SelfSigned ClusterIssuer → CA Certificate → CA ClusterIssuer.
    await k.ok(["create", "namespace", caNamespace]);
    await k.ok(["apply", "-f", "-"], [
      { apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: `selfsigned-${id}` }, spec: { selfSigned: {} } },
      {
        apiVersion: "cert-manager.io/v1", kind: "Certificate", metadata: { name: "ca", namespace: caNamespace },
        spec: { isCA: true, commonName: `e2e CA ${id}`, secretName: "ca", privateKey: { algorithm: "ECDSA", size: 256 }, issuerRef: { name: `selfsigned-${id}`, kind: "ClusterIssuer", group: "cert-manager.io" } },
      },
      { apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: `ca-${id}` }, spec: { ca: { secretName: "ca" } } },
    ].map((o) => JSON.stringify(o)).join("\n---\n"));
    await k.ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "crosslogic.ai/v1alpha1", kind: "Tenant", metadata: { name: tenant }, spec: { displayName: "TLS", plan: "pro" } }));
    await waitFor("the tenant namespace", async () => (await k.run(["get", "namespace", ns])).code === 0);
    await k.ok(["apply", "-f", "-"], [
      {
        apiVersion: "crosslogic.ai/v1alpha1", kind: "Environment", metadata: { name: "prod", namespace: ns },
        spec: { tier: "production", hostnames: [hostname], tls: { issuerRef: { name: `ca-${id}`, kind: "ClusterIssuer" } }, routes: [{ model: "llama-tls", backend: { url: model.url } }] },
      },
      { apiVersion: "crosslogic.ai/v1alpha1", kind: "ApiKey", metadata: { name: "app", namespace: ns }, spec: { environment: "prod" } },
    ].map((o) => JSON.stringify(o)).join("\n---\n"));
  });

  after(async () => {
    await k.run(["delete", "apikeys,environments", "--all", "-n", ns, "--wait=false"]);
    await k.run(["delete", "tenant", tenant, "--timeout=20s"]);
    await product?.stop();
    await certManager?.stop();
    await model?.process.stop();
    await k.run(["delete", "clusterissuer", `selfsigned-${id}`, `ca-${id}`, "--ignore-not-found"]);
    for (const n of [system, caNamespace]) await k.run(["delete", "namespace", n, "--wait=false"]);
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it("the operator's Certificate is issued by cert-manager with the operator's key policy, and the Environment says so", async () => {
    await waitFor("Environment CertificateReady", async () => {
      const e = await k.json<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(["get", "environment", "prod", "-n", ns]);
      return e.status?.conditions?.some((c) => c.type === "CertificateReady" && c.status === "True");
    }, 60_000, 500);
    secret = await k.json<Secret>(["get", "secret", "prod-tls", "-n", ns]);
    const cert = new X509Certificate(b64(secret.data["tls.crt"]!));
    assert.match(cert.subjectAltName ?? "", new RegExp(`DNS:${hostname.replaceAll(".", "\\.")}`));
    assert.equal(cert.publicKey.asymmetricKeyType, "ec");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    assert.ok(days <= 90 && days > 89, `valid for ${days} days`);
    assert.ok(cert.checkIssued(new X509Certificate(b64(secret.data["ca.crt"]!))), "signed by the test CA");
  });

  it("the gateway serves that certificate over TLS 1.3 and the openai SDK completes a chat with full verification", async () => {
    // What the chart's Secret volume does in a cluster: the Secret's files under TLS_CERT_DIR/<name>/.
    const dir = path.join(certDir, `${ns}-prod-tls`);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ["tls.crt", "tls.key", "ca.crt"]) fs.writeFileSync(path.join(dir, f), b64(secret.data[f]!), { mode: 0o600 });
    const ca = b64(secret.data["ca.crt"]!);
    const port = Number(new URL(product!.gatewayUrl).port);
    const served = await waitFor("the gateway to load the certificate", () => new Promise<{ serial: string; protocol: string } | undefined>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port, servername: hostname, ca }, () => {
        resolve({ serial: s.getPeerX509Certificate()?.serialNumber ?? "", protocol: s.getProtocol() ?? "" });
        s.end();
      });
      s.on("error", () => resolve(undefined));
    }), 20_000, 250);
    assert.equal(served.serial, new X509Certificate(b64(secret.data["tls.crt"]!)).serialNumber);
    assert.equal(served.protocol, "TLSv1.3");

    const key = b64((await k.json<Secret>(["get", "secret", "apikey-app", "-n", ns])).data.key!);
    const agent = loopbackAgent(ca);
    try {
      const sdk = sdkFor(product!.gatewayUrl, hostname, key, agent);
      const res = await waitFor("a completion over TLS", async () => sdk.chat.completions.create({ model: "llama-tls", messages: [{ role: "user", content: "hi" }], max_tokens: 8 }), 15_000, 300);
      assert.equal(res.system_fingerprint, `tls-${id}`);
      // A client that does not trust the CA is refused at the handshake.
      const plain = loopbackAgent();
      await assert.rejects(sdkFor(product!.gatewayUrl, hostname, key, plain).models.list(), /Connection error|certificate/i);
      await plain.close();
    } finally {
      await agent.close();
    }
  });
});
