/**
 * Where the API server is and how to authenticate to it, from a kubeconfig file or from the pod's
 * service account, read without @kubernetes/client-node (whose import alone costs a process ~85 MB
 * of memory: the gateway and the operator only need a server, a CA and a certificate or token).
 *
 * Users authenticated by an `exec` plugin, an `auth-provider` or a username/password are not
 * handled here: `loadKubeconfig` says so (`delegate`), and the client then asks client-node.
 */
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

export interface Credentials {
  server: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** A fixed bearer token. */
  token?: string;
  /** A file holding the bearer token, re-read on refresh (projected service-account tokens rotate). */
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The pod's service account (KUBERNETES_SERVICE_HOST/PORT, token and CA from the mounted volume). */
export function inClusterCredentials(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): Credentials {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error("not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no KUBECONFIG given");
  const tokenFile = path.join(dir, "token");
  if (!fs.existsSync(tokenFile)) throw new Error(`no service-account token at ${tokenFile}`);
  return {
    server: new URL(`https://${host.includes(":") ? `[${host}]` : host}:${port}`),
    ca: fs.readFileSync(path.join(dir, "ca.crt")),
    tokenFile,
  };
}

interface KubeconfigDoc {
  "current-context"?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{ name: string; cluster?: Record<string, unknown> }>;
  users?: Array<{ name: string; user?: Record<string, unknown> }>;
}

/**
 * The current context's cluster and user from a kubeconfig file. Relative file paths are resolved
 * against the file's directory, as kubectl does. `{ delegate: reason }` when the user needs a
 * plugin or provider this loader does not run.
 */
export function loadKubeconfig(file: string): Credentials | { delegate: string } {
  let doc: KubeconfigDoc;
  try {
    doc = YAML.parse(fs.readFileSync(file, "utf8")) as KubeconfigDoc;
  } catch (err) {
    throw new Error(`kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  const where = `kubeconfig ${file}`;
  const ctxName = doc?.["current-context"];
  if (!ctxName) throw new Error(`${where}: no current-context`);
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`${where}: context ${ctxName} not found`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== "string") throw new Error(`${where}: cluster ${ctx.cluster ?? "(none)"} of context ${ctxName} not found or has no server`);
  const user = (ctx.user ? doc.users?.find((u) => u.name === ctx.user)?.user : undefined) ?? {};
  for (const k of ["exec", "auth-provider", "username"]) if (user[k] !== undefined) return { delegate: `user ${ctx.user} authenticates with ${k}` };

  const dir = path.dirname(path.resolve(file));
  const fileOrData = (obj: Record<string, unknown>, fileKey: string, dataKey: string): Buffer | undefined => {
    if (typeof obj[dataKey] === "string") return Buffer.from(obj[dataKey], "base64");
    if (typeof obj[fileKey] === "string") return fs.readFileSync(path.resolve(dir, obj[fileKey]));
    return undefined;
  };
  const creds: Credentials = { server: new URL(cluster.server) };
  const ca = fileOrData(cluster, "certificate-authority", "certificate-authority-data");
  if (ca) creds.ca = ca;
  if (cluster["insecure-skip-tls-verify"] === true) creds.insecureSkipTlsVerify = true;
  if (typeof cluster["tls-server-name"] === "string") creds.tlsServerName = cluster["tls-server-name"];
  const cert = fileOrData(user, "client-certificate", "client-certificate-data");
  const key = fileOrData(user, "client-key", "client-key-data");
  if (cert) creds.cert = cert;
  if (key) creds.key = key;
  if (typeof user.token === "string") creds.token = user.token;
  if (typeof user.tokenFile === "string") creds.tokenFile = path.resolve(dir, user.tokenFile);
  return creds;
}
