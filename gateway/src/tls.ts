/**
 * Optional TLS termination with the environments' certificates (cert-manager Secrets mounted under
 * TLS_CERT_DIR, one folder per certificate holding tls.crt and tls.key). The certificate is chosen
 * by SNI from its SAN DNS names (wildcards included); files are re-read when they change, so a
 * renewal takes effect without a restart. TLS 1.3 by default; TLSv1.2 only when allowed, and then
 * with AEAD ciphers only (ECDHE with AES-GCM or ChaCha20-Poly1305).
 */
import fs from "node:fs";
import path from "node:path";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";

export const TLS12_AEAD_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");
export const TLS13_CIPHERS = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";

interface Entry { dir: string; names: string[]; context: tls.SecureContext; cert: string; key: string }

export class CertificateStore {
  readonly #dir: string;
  readonly #minVersion: tls.SecureVersion;
  #entries: Entry[] = [];
  #signature = "";
  #timer: NodeJS.Timeout | undefined;
  #watcher: fs.FSWatcher | undefined;

  readonly #log: (msg: string) => void;

  constructor(dir: string, minVersion: tls.SecureVersion, log: (msg: string) => void = () => undefined) {
    this.#dir = dir;
    this.#minVersion = minVersion;
    this.#log = log;
    this.reload();
  }

  get count(): number { return this.#entries.length; }

  serverOptions(): tls.TlsOptions {
    const first = this.#entries[0];
    return {
      minVersion: this.#minVersion, maxVersion: "TLSv1.3", ciphers: `${TLS13_CIPHERS}:${TLS12_AEAD_CIPHERS}`, honorCipherOrder: true,
      ...(first ? { cert: first.cert, key: first.key } : {}),
      SNICallback: (servername, cb) => cb(null, this.contextFor(servername)),
    };
  }

  contextFor(servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase();
    for (const e of this.#entries) if (e.names.some((n) => n === name || (n.startsWith("*.") && name.endsWith(n.slice(1)) && name.split(".").length === n.split(".").length))) return e.context;
    return this.#entries[0]?.context;
  }

  /** Re-reads the directory when any file changed; a broken pair keeps its previous certificate. */
  reload(): boolean {
    const pairs: Array<{ dir: string; crt: string; key: string; sig: string }> = [];
    let dirs: string[];
    try { dirs = fs.readdirSync(this.#dir).filter((d) => !d.startsWith(".")).sort(); } catch { this.#log(`TLS_CERT_DIR ${this.#dir} unreadable`); return false; }
    for (const d of dirs) {
      const crt = path.join(this.#dir, d, "tls.crt");
      const key = path.join(this.#dir, d, "tls.key");
      try { pairs.push({ dir: d, crt, key, sig: `${d}:${fs.statSync(crt).mtimeMs}:${fs.statSync(key).mtimeMs}:${fs.statSync(crt).size}` }); } catch { /* not a certificate folder */ }
    }
    const signature = pairs.map((p) => p.sig).join("|");
    if (signature === this.#signature) return false;
    const next: Entry[] = [];
    for (const p of pairs) {
      try {
        const cert = fs.readFileSync(p.crt, "utf8");
        const key = fs.readFileSync(p.key, "utf8");
        const x = new X509Certificate(cert);
        const names = (x.subjectAltName ?? "").split(",").map((s) => s.trim()).filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4).toLowerCase());
        const context = tls.createSecureContext({ cert, key, minVersion: this.#minVersion, maxVersion: "TLSv1.3", ciphers: `${TLS13_CIPHERS}:${TLS12_AEAD_CIPHERS}`, honorCipherOrder: true });
        next.push({ dir: p.dir, names, context, cert, key });
      } catch (e) {
        const old = this.#entries.find((x) => x.dir === p.dir);
        this.#log(`certificate ${p.dir} rejected: ${(e as Error).message}`);
        if (old) next.push(old);
      }
    }
    this.#entries = next;
    this.#signature = signature;
    return true;
  }

  watch(pollMs = 5000): void {
    const check = () => { if (this.reload()) this.#log("certificates reloaded"); };
    try { this.#watcher = fs.watch(this.#dir, { recursive: true }, () => setTimeout(check, 100)); this.#watcher.on("error", () => undefined); } catch { /* poll only */ }
    this.#timer = setInterval(check, pollMs);
    this.#timer.unref();
  }

  close(): void { clearInterval(this.#timer); this.#watcher?.close(); }
}
