/**
 * TLS termination with certificates made by openssl at test time: the certificate is chosen by
 * SNI, a renewed certificate is served without a restart, TLS 1.3 is the default, TLS 1.2 only
 * when TLS_MIN_VERSION allows it, and then never with a non-AEAD cipher.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import { testEnv } from "@crosslogic/testenv/test-env";
import { makeDoc, makeKey } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

function makeCert(dir: string, name: string): { cert: string; fingerprint: string } {
  const folder = path.join(dir, name.split(".")[0]!);
  fs.mkdirSync(folder, { recursive: true });
  const tmpKey = path.join(folder, ".tls.key.tmp");
  const tmpCrt = path.join(folder, ".tls.crt.tmp");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", tmpKey, "-out", tmpCrt,
    "-days", "1", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`], { stdio: "ignore" });
  // Key first, then certificate, each by rename (what a Secret volume update looks like to a reader).
  fs.renameSync(tmpKey, path.join(folder, "tls.key"));
  fs.renameSync(tmpCrt, path.join(folder, "tls.crt"));
  const cert = fs.readFileSync(path.join(folder, "tls.crt"), "utf8");
  return { cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}

interface Handshake { ok: boolean; protocol?: string | null; cipher?: string; fingerprint?: string; error?: string }

function handshake(port: number, opts: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...opts }, () => {
      const peer = s.getPeerX509Certificate();
      resolve({ ok: true, protocol: s.getProtocol(), cipher: s.getCipher().standardName, fingerprint: peer?.fingerprint256 });
      s.end();
    });
    s.on("error", (e) => resolve({ ok: false, error: e.message }));
  });
}

const portOf = (url: string) => Number(new URL(url).port);

describe("TLS termination", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-tls-"));
  const certs: Record<string, { cert: string; fingerprint: string }> = {};
  const k = makeKey();
  let h13: Harness;
  let h12: Harness;

  before(async () => {
    certs.a = makeCert(dir, "a.example.test");
    certs.b = makeCert(dir, "b.example.test");
    const docs = { t: makeDoc({ keys: [k] }) };
    h13 = await startHarness({ REDIS_URL: env.REDIS_URL, TLS_CERT_DIR: dir, ENFORCE_HOSTNAMES: "false" }, docs);
    h12 = await startHarness({ REDIS_URL: env.REDIS_URL, TLS_CERT_DIR: dir, TLS_MIN_VERSION: "TLSv1.2", ENFORCE_HOSTNAMES: "false" }, docs);
  });
  after(async () => {
    await h13?.stop();
    await h12?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("serves HTTPS with the certificate chosen by SNI", async () => {
    assert.match(h13.gw.url, /^https:/);
    const a = await handshake(portOf(h13.gw.url), { servername: "a.example.test" });
    const b = await handshake(portOf(h13.gw.url), { servername: "b.example.test" });
    assert.equal(a.fingerprint, certs.a!.fingerprint);
    assert.equal(b.fingerprint, certs.b!.fingerprint);
    // A real request, verified against the certificate.
    const status = await new Promise<number>((resolve, reject) => {
      https.get(`${h13.gw.url}/v1/models`, { servername: "b.example.test", ca: certs.b!.cert, checkServerIdentity: () => undefined, headers: { authorization: `Bearer ${k.key}` } }, (res) => { res.resume(); resolve(res.statusCode!); }).on("error", reject);
    });
    assert.equal(status, 200);
  });

  it("speaks TLS 1.3 by default and refuses TLS 1.2 unless allowed", async () => {
    const d = await handshake(portOf(h13.gw.url), { servername: "a.example.test" });
    assert.equal(d.protocol, "TLSv1.3");
    const old = await handshake(portOf(h13.gw.url), { servername: "a.example.test", maxVersion: "TLSv1.2" });
    assert.equal(old.ok, false, "TLS 1.2 refused by default");
    const allowed = await handshake(portOf(h12.gw.url), { servername: "a.example.test", maxVersion: "TLSv1.2" });
    assert.equal(allowed.ok, true);
    assert.equal(allowed.protocol, "TLSv1.2");
    assert.match(allowed.cipher!, /_GCM_|_CHACHA20_POLY1305_/, "an AEAD cipher");
  });

  it("refuses non-AEAD ciphers on TLS 1.2 (which the client could otherwise negotiate)", async () => {
    const cbc = "ECDHE-ECDSA-AES128-SHA256";
    // Control: a plain TLS server with the same certificate accepts this client's offer.
    const control = tls.createServer({ cert: certs.a!.cert, key: fs.readFileSync(path.join(dir, "a", "tls.key")), ciphers: cbc, maxVersion: "TLSv1.2" }, (s) => s.end());
    await new Promise<void>((r) => control.listen(0, "127.0.0.1", () => r()));
    const c = await handshake((control.address() as { port: number }).port, { maxVersion: "TLSv1.2", ciphers: cbc });
    control.close();
    assert.equal(c.ok, true, `the client can negotiate ${cbc}: ${c.error ?? ""}`);
    const refused = await handshake(portOf(h12.gw.url), { servername: "a.example.test", maxVersion: "TLSv1.2", ciphers: cbc });
    assert.equal(refused.ok, false, "the gateway refuses it");
  });

  it("serves a renewed certificate without a restart", async () => {
    const renewed = makeCert(dir, "a.example.test");
    assert.notEqual(renewed.fingerprint, certs.a!.fingerprint);
    await eventually(async () => (await handshake(portOf(h13.gw.url), { servername: "a.example.test" })).fingerprint === renewed.fingerprint, 10_000, 100);
    assert.equal((await handshake(portOf(h13.gw.url), { servername: "b.example.test" })).fingerprint, certs.b!.fingerprint, "the other certificate stays");
  });
});
