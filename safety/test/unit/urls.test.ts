import assert from "node:assert/strict";
import { test } from "node:test";
import { checkUrl, PATH_PLACEHOLDER, sanitizeText, URL_PLACEHOLDER } from "../../src/index.ts";

test("checkUrl refuses what a model server must not fetch", async (t) => {
  const cases: [string, string, string | null][] = [
    ["public https", "https://images.example.com/cat.png", null],
    ["public http", "http://example.org/a.jpg", null],
    ["inline png", "data:image/png;base64,iVBORw0KGgo=", null],
    ["data html", "data:text/html;base64,PHNjcmlwdD4=", "url.scheme_data"],
    ["javascript", "javascript:alert(1)", "url.scheme_script"],
    ["javascript mixed case", "JaVaScRiPt:alert(1)", "url.scheme_script"],
    ["file", "file:///etc/passwd", "url.scheme_file"],
    ["gopher", "gopher://127.0.0.1:6379/_FLUSHALL", "url.scheme_other"],
    ["AWS metadata", "http://169.254.169.254/latest/meta-data/", "url.host_metadata"],
    ["GCP metadata name", "http://metadata.google.internal/computeMetadata/v1/", "url.host_metadata"],
    ["loopback", "http://127.0.0.1:8080/admin", "url.host_loopback"],
    ["loopback decimal", "http://2130706433/", "url.host_loopback"],
    ["loopback hex", "http://0x7f.0.0.1/", "url.host_loopback"],
    ["loopback octal", "http://0177.0.0.1/", "url.host_loopback"],
    ["IPv6 loopback", "http://[::1]/", "url.host_loopback"],
    ["IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]/", "url.host_loopback"],
    ["private 10/8", "http://10.1.2.3/", "url.host_private"],
    ["private 192.168", "https://192.168.1.1/", "url.host_private"],
    ["CGNAT", "http://100.64.0.1/", "url.host_private"],
    ["IPv6 ULA", "http://[fd12::1]/", "url.host_private"],
    ["link-local", "http://169.254.1.1/", "url.host_link_local"],
    ["localhost", "http://localhost:3000/", "url.host_internal_name"],
    ["cluster service", "http://redis.default.svc.cluster.local/", "url.host_internal_name"],
    ["single label", "http://intranet/", "url.host_internal_name"],
    ["rebinding helper", "http://127.0.0.1.nip.io/", "url.host_rebinding_service"],
    ["credentials", "https://user:pass@example.com/", "url.credentials"],
    ["traversal", "https://example.com/static/../../etc/passwd", "url.path_traversal"],
    ["encoded traversal", "https://example.com/%2e%2e/%2e%2e/etc/passwd", "url.path_traversal"],
    ["malformed", "http://exa mple.com/", "url.malformed"],
  ];
  for (const [name, url, rule] of cases) await t.test(name, () => {
    const r = checkUrl(url);
    assert.equal(r.ok, rule === null, JSON.stringify(r));
    assert.equal(r.ruleId, rule ?? undefined);
  });
  await t.test("https only when asked", () => assert.equal(checkUrl("http://example.org/", { allowHttp: false }).ok, false));
  await t.test("data media refused when asked", () => assert.equal(checkUrl("data:image/png;base64,AA==", { allowDataMedia: false }).ok, false));
});

test("sanitizeText returns sanitised text and verdicts", async (t) => {
  const cases: { name: string; input: string; output: string; rules: string[] }[] = [
    { name: "clean text untouched", input: "see https://example.com/docs.", output: "see https://example.com/docs.", rules: [] },
    { name: "metadata URL removed, punctuation kept", input: "fetch http://169.254.169.254/latest/.", output: `fetch ${URL_PLACEHOLDER}.`, rules: ["url.host_metadata"] },
    { name: "javascript URL removed", input: "click javascript:alert(document.cookie)", output: `click ${URL_PLACEHOLDER}`, rules: ["url.scheme_script"] },
    { name: "credentials stripped, URL kept", input: "use https://bob:hunter2@example.com/x", output: "use https://example.com/x", rules: ["url.credentials"] },
    { name: "traversal path removed", input: "open ../../../etc/shadow now", output: `open ${PATH_PLACEHOLDER} now`, rules: ["file.traversal"] },
    { name: "sensitive absolute path removed", input: "cat /etc/passwd please", output: `cat ${PATH_PLACEHOLDER} please`, rules: ["file.sensitive_path"] },
    { name: "ssh key path removed", input: "read ~/.ssh/id_rsa", output: `read ${PATH_PLACEHOLDER}`, rules: ["file.sensitive_path"] },
    { name: "UNC path removed", input: "load \\\\evil.example\\share", output: `load ${PATH_PLACEHOLDER}`, rules: ["file.unc_path"] },
    { name: "ratio: is not a URL", input: "ratio:1 and note: fine", output: "ratio:1 and note: fine", rules: [] },
  ];
  for (const c of cases) await t.test(c.name, () => {
    const r = sanitizeText(c.input);
    assert.equal(r.text, c.output);
    assert.deepEqual(r.verdicts.map((v) => v.ruleId), c.rules);
    for (const v of r.verdicts) assert.ok(!("text" in v));
  });
});
