/** SECURITY.md's recovery targets (seed 000: "RPO and RTO defined for all components") stay true: the suites they cite exist, the defaults they quote are the components' defaults. */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { EnvSchema } from "../../../gateway/src/config.ts";
import { repoRoot } from "../helm.ts";

const doc = fs.readFileSync(path.join(repoRoot, "SECURITY.md"), "utf8");
const table = doc.slice(doc.indexOf("## Recovery targets"), doc.indexOf("## Incident runbook"));

test("the recovery table covers every component, and each suite it cites exists", () => {
  for (const component of ["gateway", "operator", "billing", "Redis", "PostgreSQL", "Kubernetes (etcd)"]) assert.match(table, new RegExp(`^\\| ${component.replace(/[()]/g, "\\$&")} \\|`, "m"), component);
  const cited = [...table.matchAll(/`([\w./-]+\.test\.ts)`/g)].map((m) => m[1]!);
  assert.ok(cited.length >= 6, `suites cited: ${cited.join(", ")}`);
  for (const file of cited) assert.ok(fs.existsSync(path.join(repoRoot, file)), `${file} is cited but does not exist`);
});

test("the defaults the recovery table quotes are the gateway's and the operator's", () => {
  assert.match(table, /≤ `USAGE_FLUSH_INTERVAL_MS` \((\d+) s\)/);
  const seconds = Number(/≤ `USAGE_FLUSH_INTERVAL_MS` \((\d+) s\)/.exec(table)![1]);
  assert.equal(EnvSchema.properties.USAGE_FLUSH_INTERVAL_MS.default, seconds * 1000);
  const lease = Number(/lease duration \((\d+) s\)/.exec(table)![1]);
  assert.match(fs.readFileSync(path.join(repoRoot, "operator/src/kube/leader.ts"), "utf8"), new RegExp(`leaseDurationMs: ${lease}_000`));
});
