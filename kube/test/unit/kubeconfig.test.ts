import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { inClusterCredentials, loadKubeconfig, type Credentials } from "../../src/kubeconfig.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeconfig-test-"));
const write = (name: string, doc: unknown) => { const f = path.join(dir, name); fs.writeFileSync(f, typeof doc === "string" ? doc : YAML.stringify(doc)); return f; };
const config = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: "https://10.0.0.1:6443", "certificate-authority-data": Buffer.from("CA").toString("base64") }) => ({
  apiVersion: "v1", kind: "Config", "current-context": "main",
  contexts: [{ name: "other", context: { cluster: "c2", user: "u2" } }, { name: "main", context: { cluster: "c1", user: "u1" } }],
  clusters: [{ name: "c2", cluster: { server: "https://wrong:1" } }, { name: "c1", cluster }],
  users: [{ name: "u2", user: { token: "wrong" } }, { name: "u1", user }],
});
const creds = (x: ReturnType<typeof loadKubeconfig>): Credentials => { assert.ok(!("delegate" in x), JSON.stringify(x)); return x; };

describe("kubeconfig", () => {
  it("reads the current context's cluster and client certificate (inline data)", () => {
    const c = creds(loadKubeconfig(write("inline", config({ "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key-data": Buffer.from("KEY").toString("base64") }))));
    assert.equal(c.server.href, "https://10.0.0.1:6443/");
    assert.equal(c.ca?.toString(), "CA");
    assert.equal(c.cert?.toString(), "CERT");
    assert.equal(c.key?.toString(), "KEY");
    assert.equal(c.token, undefined);
  });
  it("resolves file paths against the kubeconfig's directory, as kubectl does", () => {
    fs.mkdirSync(path.join(dir, "pki"), { recursive: true });
    fs.writeFileSync(path.join(dir, "pki/ca.crt"), "FILE-CA");
    fs.writeFileSync(path.join(dir, "pki/token"), "tok-from-file\n");
    const c = creds(loadKubeconfig(write("files", config({ tokenFile: "pki/token" }, { server: "https://api.example:443", "certificate-authority": "pki/ca.crt", "tls-server-name": "kubernetes" }))));
    assert.equal(c.ca?.toString(), "FILE-CA");
    assert.equal(c.tokenFile, path.join(dir, "pki/token"));
    assert.equal(c.tlsServerName, "kubernetes");
  });
  it("a bearer token and insecure-skip-tls-verify", () => {
    const c = creds(loadKubeconfig(write("token", config({ token: "abc" }, { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true }))));
    assert.equal(c.token, "abc");
    assert.equal(c.insecureSkipTlsVerify, true);
  });
  it("hands exec plugins and auth providers over (delegate), naming the reason", () => {
    assert.deepEqual(loadKubeconfig(write("exec", config({ exec: { command: "aws", args: ["eks", "get-token"] } }))), { delegate: "user u1 authenticates with exec" });
    assert.match((loadKubeconfig(write("ap", config({ "auth-provider": { name: "oidc" } }))) as { delegate: string }).delegate, /auth-provider/);
  });
  it("says what is wrong with a broken kubeconfig", () => {
    assert.throws(() => loadKubeconfig(write("noctx", { ...config({}), "current-context": "nope" })), /context nope not found/);
    assert.throws(() => loadKubeconfig(write("nocur", { clusters: [] })), /no current-context/);
    assert.throws(() => loadKubeconfig(write("noserver", config({}, {}))), /has no server/);
    assert.throws(() => loadKubeconfig(path.join(dir, "missing")), /ENOENT/);
  });
  it("in a pod: the service account's token file and CA, the service host and port", () => {
    const sa = path.join(dir, "sa");
    fs.mkdirSync(sa, { recursive: true });
    fs.writeFileSync(path.join(sa, "token"), "jwt");
    fs.writeFileSync(path.join(sa, "ca.crt"), "POD-CA");
    const c = inClusterCredentials({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, sa);
    assert.equal(c.server.href, "https://[fd00::1]/");
    assert.equal(c.tokenFile, path.join(sa, "token"));
    assert.equal(c.ca?.toString(), "POD-CA");
    assert.throws(() => inClusterCredentials({}, sa), /not running in a cluster/);
  });
});
