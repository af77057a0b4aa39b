/**
 * The Prisma client is generated from schema.prisma into src/generated and committed, so a fresh
 * clone runs without a generate step. `prisma generate` needs no schema engine, but refuses to start
 * without one; pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file stops it downloading one.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { prismaDir, schemaPath } from "./migrate.ts";

const generatedDir = path.join(prismaDir, "src", "generated");

function prismaCli(): string {
  return createRequire(import.meta.url).resolve("prisma/build/index.js");
}

/** Runs `prisma generate` for a copy of schema.prisma placed in `root`; returns the output folder. */
function generateInto(root: string): string {
  fs.copyFileSync(schemaPath, path.join(root, "schema.prisma"));
  execFileSync(process.execPath, [prismaCli(), "generate", "--schema", path.join(root, "schema.prisma")], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" },
  });
  return path.join(root, "src", "generated");
}

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile()).map((d) => path.relative(dir, path.join(d.parentPath, d.name))).sort();
}

/** Files of src/generated that differ from a fresh generation (empty: up to date). */
export function generatedClientDrift(): string[] {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-prisma-"));
  try {
    const fresh = generateInto(root);
    const names = [...new Set([...listFiles(fresh), ...listFiles(generatedDir)])].sort();
    return names.filter((n) => {
      const a = path.join(fresh, n), b = path.join(generatedDir, n);
      return !fs.existsSync(a) || !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b));
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Regenerates src/generated in place. */
export function generateClient(): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-prisma-"));
  try {
    const fresh = generateInto(root);
    fs.rmSync(generatedDir, { recursive: true, force: true });
    fs.cpSync(fresh, generatedDir, { recursive: true });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
