import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide, type AuditReport } from "../../audit-deps.ts";

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
