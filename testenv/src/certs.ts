import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { StartError } from "./errors.ts";

export interface ControlPlaneCerts {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === "ENOENT") throw new StartError("openssl is not installed (needed for the local control plane's throwaway certificates)");
    throw new StartError(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`);
  }
}

/**
 * Writes a throwaway CA, a serving certificate for 127.0.0.1/localhost, an admin client
 * certificate in group system:masters, and a service-account signing key pair (all ECDSA P-256).
 */
export function writeControlPlaneCerts(dir: string): ControlPlaneCerts {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => path.join(dir, f);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3", "-subj", "/CN=crosslogic-local-ca"], dir);
  const issue = (name: string, subj: string, ext: string) => {
    openssl(["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj], dir);
    fs.writeFileSync(p(`${name}.ext`), ext);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`], dir);
  };
  issue("server", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n");
  issue("admin", "/O=system:masters/CN=crosslogic-admin", "extendedKeyUsage=clientAuth\n");
  const sa = generateKeyPairSync("ec", { namedCurve: "P-256" });
  fs.writeFileSync(p("sa.key"), sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  fs.writeFileSync(p("sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" }));
  return {
    caCert: p("ca.crt"), caKey: p("ca.key"),
    serverCert: p("server.crt"), serverKey: p("server.key"),
    adminCert: p("admin.crt"), adminKey: p("admin.key"),
    serviceAccountKey: p("sa.key"), serviceAccountPub: p("sa.pub"),
  };
}
