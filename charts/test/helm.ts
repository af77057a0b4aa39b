/**
 * Helm for the chart tests: the binary (fetched once by deploy/fetch-helm.sh, cached by version)
 * and a `template` helper that returns the rendered objects.
 */
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const chartDir = path.join(repoRoot, "charts/crosslogic");
export const valuesDir = path.join(repoRoot, "charts/test/values");
export const kindValues = path.join(repoRoot, "deploy/kind-values.yaml");

let cached: string | undefined;
export function helmBinary(): string {
  cached ??= execFileSync("bash", [path.join(repoRoot, "deploy/fetch-helm.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  return cached;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}

export interface HelmResult { status: number; stdout: string; stderr: string }

export function helm(args: string[]): HelmResult {
  const r = spawnSync(helmBinary(), args, { encoding: "utf8", maxBuffer: 64 << 20 });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  valuesFiles?: string[];
  set?: string[];
  kubeVersion?: string;
  includeCrds?: boolean;
}

export function templateArgs(o: TemplateOptions = {}): string[] {
  return [
    "template", o.release ?? "crosslogic", chartDir,
    "--namespace", o.namespace ?? "crosslogic-system",
    "--kube-version", o.kubeVersion ?? "1.37.0",
    ...(o.includeCrds ? ["--include-crds"] : []),
    ...(o.valuesFiles ?? []).flatMap((f) => ["-f", f]),
    ...(o.set ?? []).flatMap((s) => ["--set", s]),
  ];
}

/** Renders the chart; throws with helm's message when it refuses. */
export function template(o: TemplateOptions = {}): K8sObject[] {
  const r = helm(templateArgs(o));
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in the rendered chart (have: ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")})`);
  return o;
}

export interface Container { name: string; image: string; env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }[]; [k: string]: unknown }
export interface PodSpec { containers: Container[]; initContainers?: Container[]; securityContext?: Record<string, unknown>; volumes?: { name: string; [k: string]: unknown }[]; [k: string]: unknown }

export function podSpec(o: K8sObject): PodSpec {
  const spec = o.spec as { template?: { spec: PodSpec }; containers?: PodSpec["containers"] } & Record<string, unknown>;
  if (o.kind === "Pod") return spec as unknown as PodSpec;
  return spec.template!.spec;
}

export function envOf(c: Container): Map<string, NonNullable<Container["env"]>[number]> {
  return new Map((c.env ?? []).map((e) => [e.name, e]));
}
