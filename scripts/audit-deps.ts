#!/usr/bin/env node
/**
 * Supply-chain check: fails when a locked package is not pinned by a sha512 integrity hash from
 * the registry (checked offline), or when an installed npm dependency has a known vulnerability at
 * or above a severity (default: critical), from `npm audit`'s advisory database.
 *
 *   node scripts/audit-deps.ts [--level critical|high|moderate|low] [--production]
 *
 * When the advisory endpoint cannot be reached (an offline machine: the npm registry mirror here
 * answers 405 to the bulk-advisory POST), it says so plainly and exits 0, unless
 * AUDIT_REQUIRED=1, where an unchecked tree is a failure. It never reports "no vulnerabilities"
 * for a tree it could not check.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

export const Severities = ["info", "low", "moderate", "high", "critical"] as const;
export type Severity = (typeof Severities)[number];

export interface AuditReport {
  auditReportVersion?: number;
  vulnerabilities?: Record<string, { name?: string; severity: Severity; range?: string; fixAvailable?: unknown }>;
  metadata?: { vulnerabilities?: Partial<Record<Severity | "total", number>> };
  /** npm's shape when the request itself failed. */
  statusCode?: number;
  message?: string;
}

export type Decision =
  | { outcome: "pass"; counts: Partial<Record<Severity, number>> }
  | { outcome: "fail"; offending: { name: string; severity: Severity; range: string }[] }
  | { outcome: "unchecked"; reason: string };

/** Decides from `npm audit --json` output; pure, so every case is a table test. */
export function decide(report: AuditReport, level: Severity): Decision {
  if (!report.vulnerabilities || report.auditReportVersion === undefined) {
    return { outcome: "unchecked", reason: report.message ?? "npm audit returned no report" };
  }
  const min = Severities.indexOf(level);
  const offending = Object.entries(report.vulnerabilities)
    .filter(([, v]) => Severities.indexOf(v.severity) >= min)
    .map(([name, v]) => ({ name, severity: v.severity, range: v.range ?? "*" }))
    .sort((a, b) => Severities.indexOf(b.severity) - Severities.indexOf(a.severity) || a.name.localeCompare(b.name));
  if (offending.length) return { outcome: "fail", offending };
  return { outcome: "pass", counts: report.metadata?.vulnerabilities ?? {} };
}

export interface Lockfile {
  lockfileVersion?: number;
  packages?: Record<string, { version?: string; resolved?: string; integrity?: string; link?: boolean }>;
}

/**
 * What `npm ci` cannot verify (pure; works offline): every installed package must be pinned by a
 * sha512 integrity hash and come from the registry (no git, file or remote-tarball sources, which
 * carry no registry integrity). Workspace links are the repository's own code.
 */
export function lockfileProblems(lock: Lockfile): string[] {
  if ((lock.lockfileVersion ?? 0) < 2 || !lock.packages) return ["package-lock.json is not a lockfile v2/v3 with a packages map"];
  const problems: string[] = [];
  for (const [where, p] of Object.entries(lock.packages)) {
    if (!where.includes("node_modules/") || p.link) continue;
    const name = where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length);
    if (p.resolved && !p.resolved.startsWith("https://registry.npmjs.org/")) problems.push(`${name}: resolved from ${p.resolved}, not the registry`);
    else if (!p.integrity?.startsWith("sha512-")) problems.push(`${name}@${p.version ?? "?"}: no sha512 integrity hash`);
  }
  return problems;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { level: { type: "string", default: "critical" }, production: { type: "boolean", default: false } } });
  const level = values.level as Severity;
  if (!Severities.includes(level)) { console.error(`audit: --level must be one of ${Severities.join(", ")}`); return 2; }
  // Offline first: what npm ci verifies on every install (fails regardless of the advisory database).
  const lock = JSON.parse(await readFile(new URL("../package-lock.json", import.meta.url), "utf8")) as Lockfile;
  const problems = lockfileProblems(lock);
  if (problems.length) {
    console.error(`[audit] package-lock.json: ${problems.length} package(s) npm ci cannot verify:`);
    for (const p of problems) console.error(`  ${p}`);
    return 1;
  }
  const pinned = Object.entries(lock.packages!).filter(([w, p]) => w.includes("node_modules/") && !p.link).length;
  console.log(`[audit] package-lock.json: all ${pinned} packages pinned by sha512 integrity, from the registry (npm ci verifies each tarball)`);
  const args = ["audit", "--json", ...(values.production ? ["--omit=dev"] : [])];
  const stdout = await new Promise<string>((resolve) => execFile("npm", args, { maxBuffer: 64 << 20 }, (_err, out) => resolve(out)));
  let report: AuditReport;
  try { report = JSON.parse(stdout) as AuditReport; } catch { report = { message: "npm audit printed no JSON" }; }
  const d = decide(report, level);
  switch (d.outcome) {
    case "pass":
      console.log(`[audit] no known ${level}-or-worse vulnerabilities (${Object.entries(d.counts).map(([k, v]) => `${k}: ${v}`).join(", ") || "none at all"})`);
      return 0;
    case "fail":
      console.error(`[audit] ${d.offending.length} dependencies with known ${level}-or-worse vulnerabilities:`);
      for (const o of d.offending) console.error(`  ${o.severity.padEnd(8)} ${o.name} ${o.range}`);
      return 1;
    case "unchecked":
      console.log(`[audit] NOT CHECKED: the advisory database could not be queried (${d.reason.split("\n")[0]})`);
      return process.env.AUDIT_REQUIRED === "1" ? 1 : 0;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main());
