/**
 * Static checks of the three images' Dockerfiles (no Docker engine here, and no hadolint): parsed
 * into stages and instructions, then held to what the chart and the security seed assume.
 */
import { GATEWAY_NODE_ARGS } from "../../../gateway/src/node-args.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const components = ["operator", "gateway", "billing"] as const;

interface Instruction { op: string; args: string; line: number }
interface Stage { from: string; name: string | undefined; instructions: Instruction[] }

/** Dockerfile → stages (line continuations joined, comments dropped, ARGs before FROM resolved). */
export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: Instruction[] = [];
  let buf = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!buf && (line === "" || line.startsWith("#"))) return;
    if (!buf) start = i + 1;
    if (line.startsWith("#")) return;
    buf += (buf ? " " : "") + line.replace(/\\$/, "").trim();
    if (!line.endsWith("\\")) {
      const m = /^(\S+)\s*(.*)$/.exec(buf)!;
      logical.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
      buf = "";
    }
  });
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of logical) {
    if (ins.op === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      const from = m[1]!.replace(/\$\{?(\w+)\}?/g, (_, v: string) => args.get(v) ?? `$${v}`);
      stages.push({ from, name: m[2], instructions: [] });
    } else if (stages.length === 0 && ins.op === "ARG") {
      const [k, v = ""] = ins.args.split("=");
      args.set(k!, v);
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { args, stages };
}

for (const c of components) {
  const file = path.join(root, "deploy", `${c}.Dockerfile`);
  const { stages } = parseDockerfile(fs.readFileSync(file, "utf8"));
  const final = stages.at(-1)!;

  test(`${c}: multi-stage, every stage on Node.js 24`, () => {
    assert.ok(stages.length >= 2, "a dependency stage and a runtime stage");
    for (const s of stages) assert.match(s.from, /^node:24(\.\d+)*(-[\w.-]+)?$/, `stage ${s.name}: ${s.from}`);
    assert.ok(final.instructions.some((i) => i.op === "COPY" && i.args.startsWith("--from=")), "runtime copies from the build stage");
  });

  test(`${c}: runs as a non-root numeric user`, () => {
    const users = final.instructions.filter((i) => i.op === "USER");
    assert.ok(users.length > 0, "USER set in the runtime stage");
    const user = users.at(-1)!.args.split(":")[0]!;
    assert.match(user, /^\d+$/, "numeric (runAsNonRoot can verify it)");
    assert.notEqual(Number(user), 0);
    const last = final.instructions.indexOf(users.at(-1)!);
    assert.ok(!final.instructions.slice(last).some((i) => i.op === "RUN"), "USER comes after the last RUN");
  });

  test(`${c}: installs production dependencies only, from the lock file`, () => {
    const installs = stages.flatMap((s) => s.instructions).filter((i) => i.op === "RUN" && /\bnpm\s+(ci|install|i)\b/.test(i.args));
    assert.equal(installs.length, 1, "one install");
    const cmd = installs[0]!.args;
    assert.match(cmd, /\bnpm ci\b/, "npm ci (the lock file, not a fresh resolve)");
    assert.match(cmd, /--omit=dev\b/, "no dev dependencies");
    assert.match(cmd, new RegExp(`--workspace=@crosslogic/${c}\\b`), "only this component's workspace");
    assert.ok(!final.instructions.some((i) => i.op === "RUN" && /\bnpm\b/.test(i.args) && !/rm -rf/.test(i.args)), "no npm in the runtime stage");
  });

  test(`${c}: runs its TypeScript entry point with node, and copies only paths that exist`, () => {
    const entry = final.instructions.find((i) => i.op === "ENTRYPOINT" || i.op === "CMD")!;
    const argv = JSON.parse(entry.args) as string[];
    assert.equal(argv[0], "node");
    assert.equal(argv.at(-1), `${c}/src/main.ts`);
    assert.deepEqual(argv.slice(1, -1), c === "gateway" ? GATEWAY_NODE_ARGS : [], "the V8 flags the component runs with everywhere");
    for (const ins of final.instructions.filter((i) => i.op === "COPY" && !i.args.startsWith("--from="))) {
      const parts = ins.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) assert.ok(fs.existsSync(path.join(root, src)) || src === `${c}/src` || src.startsWith("scripts/"), `COPY source ${src} exists (line ${ins.line})`);
    }
    const ignore = fs.readFileSync(`${file}.dockerignore`, "utf8");
    assert.match(ignore, /node_modules/, "host node_modules never enter the build context");
  });
}

interface Manifest { name: string; workspaces?: string[]; dependencies?: Record<string, string> }
const readJson = (f: string) => JSON.parse(fs.readFileSync(path.join(root, f), "utf8")) as Manifest;
const workspaces = readJson("package.json").workspaces ?? [];
const dirOf = new Map(workspaces.map((w) => [readJson(`${w}/package.json`).name, w]));

/** Workspace folders a workspace needs at run time: itself and its @crosslogic dependencies, transitively. */
function workspaceClosure(dir: string, seen = new Set<string>()): Set<string> {
  if (seen.has(dir)) return seen;
  seen.add(dir);
  for (const dep of Object.keys(readJson(`${dir}/package.json`).dependencies ?? {})) {
    const d = dirOf.get(dep);
    if (d) workspaceClosure(d, seen);
  }
  return seen;
}

for (const c of components) {
  test(`${c}: the build sees every workspace manifest, and the image holds the sources of every workspace it imports`, () => {
    const { stages } = parseDockerfile(fs.readFileSync(path.join(root, "deploy", `${c}.Dockerfile`), "utf8"));
    const copied = (s: Stage) => s.instructions.filter((i) => i.op === "COPY" && !i.args.startsWith("--from=")).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    const depsCopies = copied(stages[0]!);
    for (const w of workspaces) assert.ok(depsCopies.includes(`${w}/package.json`), `deps stage copies ${w}/package.json (npm ci checks the lock against every workspace)`);
    const runtimeCopies = copied(stages.at(-1)!);
    for (const w of workspaceClosure(c)) assert.ok(runtimeCopies.includes(`${w}/src`), `runtime stage copies ${w}/src (imported by ${c})`);
  });
}

test("the parser reads continuation lines, ARG substitution and stage names", () => {
  const { stages } = parseDockerfile("ARG IMG=node:24-slim\n# c\nFROM ${IMG} AS a\nRUN echo 1 \\\n  && echo 2\nFROM a\nUSER 1000\n");
  assert.equal(stages[0]!.from, "node:24-slim");
  assert.equal(stages[0]!.name, "a");
  assert.equal(stages[0]!.instructions[0]!.args, "echo 1 && echo 2");
  assert.equal(stages[1]!.instructions[0]!.op, "USER");
});
