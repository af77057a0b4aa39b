import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fs from "node:fs";
import { decide, lockfileProblems, type AuditReport, type Lockfile } from "../../audit-deps.ts";

const report = (vulns: AuditReport["vulnerabilities"]): AuditReport => ({ auditReportVersion: 2, vulnerabilities: vulns, metadata: { vulnerabilities: { critical: 0 } } });

describe("dependency audit decision", () => {
  it("fails on a critical vulnerability, listing it", () => {
    const d = decide(report({ lodash: { severity: "critical", range: "<4.17.21" }, debug: { severity: "low" } }), "critical");
    assert.deepEqual(d, { outcome: "fail", offending: [{ name: "lodash", severity: "critical", range: "<4.17.21" }] });
  });

  it("passes when only lower severities are known", () => {
    assert.equal(decide(report({ debug: { severity: "high" } }), "critical").outcome, "pass");
  });

  it("applies a stricter level, worst first", () => {
    const d = decide(report({ a: { severity: "moderate" }, b: { severity: "critical" }, c: { severity: "low" } }), "moderate");
    assert.ok(d.outcome === "fail");
    assert.deepEqual(d.offending.map((o) => o.name), ["b", "a"]);
  });

  it("never calls an unreachable advisory database a pass", () => {
    const d = decide({ statusCode: 405, message: "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk" }, "critical");
    assert.equal(d.outcome, "unchecked");
    assert.ok(d.outcome === "unchecked" && d.reason.startsWith("405"));
  });
});

describe("lockfile integrity (offline)", () => {
  const lock = (packages: Lockfile["packages"]): Lockfile => ({ lockfileVersion: 3, packages: { "": {}, ...packages } });
  it("accepts registry packages pinned by sha512 and workspace links", () => {
    assert.deepEqual(lockfileProblems(lock({
      "node_modules/express": { version: "5.1.0", integrity: "sha512-abc" },
      "node_modules/a/node_modules/b": { version: "1.0.0", resolved: "https://registry.npmjs.org/b/-/b-1.0.0.tgz", integrity: "sha512-def" },
      "node_modules/@crosslogic/kube": { resolved: "kube", link: true },
    })), []);
  });
  it("refuses unpinned, weakly pinned and non-registry packages, naming each", () => {
    assert.deepEqual(lockfileProblems(lock({
      "node_modules/left-pad": { version: "1.3.0" },
      "node_modules/old": { version: "0.1.0", integrity: "sha1-xyz" },
      "node_modules/forked": { version: "1.0.0", resolved: "git+ssh://git@github.com/x/forked.git#abc", integrity: "sha512-x" },
      "node_modules/tarball": { version: "2.0.0", resolved: "https://example.com/t.tgz", integrity: "sha512-y" },
    })), [
      "left-pad@1.3.0: no sha512 integrity hash",
      "old@0.1.0: no sha512 integrity hash",
      "forked: resolved from git+ssh://git@github.com/x/forked.git#abc, not the registry",
      "tarball: resolved from https://example.com/t.tgz, not the registry",
    ]);
    assert.equal(lockfileProblems({ lockfileVersion: 1 }).length, 1);
  });
  it("the repository's own lockfile passes", () => {
    const own = JSON.parse(fs.readFileSync(new URL("../../../package-lock.json", import.meta.url), "utf8")) as Lockfile;
    assert.deepEqual(lockfileProblems(own), []);
  });
});
