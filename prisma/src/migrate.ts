/**
 * Migrations without the native schema-engine binary (which cannot be downloaded offline): Prisma's
 * schema engine compiled to WebAssembly, talking to PostgreSQL through @prisma/adapter-pg.
 * `migrate()` does what `prisma migrate deploy` does with the same `prisma/migrations` folder and
 * the same `_prisma_migrations` bookkeeping table, so either tool can be used on a database.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter, type SqlMigrationAwareDriverAdapterFactory } from "@prisma/driver-adapter-utils";
import pg from "pg";
import type { MigrationList, SchemaEngine } from "@prisma/schema-engine-wasm";

export const prismaDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const schemaPath = path.join(prismaDir, "schema.prisma");
export const migrationsDir = path.join(prismaDir, "migrations");

const noFilters = { externalTables: [], externalEnums: [] };

/**
 * pg lets a connection string override an explicit `database`, and the adapter creates its shadow
 * database by overriding `database`: so hand it discrete fields, never a connection string.
 */
export function pgConfig(url: string): { host: string; port: number; user: string; password?: string; database: string } {
  const u = new URL(url);
  if (u.protocol !== "postgresql:" && u.protocol !== "postgres:") throw new Error(`not a PostgreSQL URL: ${u.protocol}`);
  return {
    host: decodeURIComponent(u.hostname) || "127.0.0.1",
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username) || "postgres",
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    database: decodeURIComponent(u.pathname.slice(1)) || "postgres",
  };
}

/**
 * PrismaPg's own shadow database drops the database before closing its pool (PostgreSQL refuses:
 * "being accessed by other users"). This factory closes the pool first and drops with FORCE.
 */
function migrationAdapterFactory(url: string, opened: SqlDriverAdapter[]): SqlMigrationAwareDriverAdapterFactory {
  const config = pgConfig(url);
  return {
    provider: "postgres",
    adapterName: "@prisma/adapter-pg",
    async connect() {
      const adapter = await connectAdapter(config);
      opened.push(adapter);
      return adapter;
    },
    async connectToShadowDb(): Promise<SqlDriverAdapter> {
      const name = `prisma_shadow_${crypto.randomUUID().replaceAll("-", "")}`;
      const admin = async (sql: string) => {
        const client = new pg.Client(config);
        await client.connect();
        try { await client.query(sql); } finally { await client.end(); }
      };
      await admin(`create database "${name}"`);
      const adapter = await connectAdapter({ ...config, database: name });
      const dispose = adapter.dispose.bind(adapter);
      adapter.dispose = async () => {
        await dispose();
        await admin(`drop database if exists "${name}" with (force)`);
      };
      return adapter;
    },
  };
}

/**
 * The adapter runs a migration script by splitting it on every `;`, which breaks function bodies;
 * `prisma migrate deploy` sends the script whole, and so does this (simple-query protocol).
 */
async function connectAdapter(config: pg.PoolConfig): Promise<SqlDriverAdapter> {
  const pool = catalogPool(config);
  const adapter = await new PrismaPg(pool, { disposeExternalPool: true }).connect();
  const onError = (adapter as unknown as { onError(e: unknown): never }).onError.bind(adapter);
  adapter.executeScript = async (script: string) => {
    try { await pool.query(script); } catch (err) { onError(err); }
  };
  return adapter;
}

/**
 * The engine describes a database through catalog columns of PostgreSQL's one-byte `"char"` type
 * (OID 18), which @prisma/adapter-pg does not map and rejects; its text form is what the engine
 * expects, so report those columns as text (OID 25).
 */
function catalogPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  const query = pool.query.bind(pool) as (q: unknown) => Promise<pg.QueryResult>;
  (pool as unknown as { query: (q: unknown) => Promise<pg.QueryResult> }).query = async (q: unknown) => {
    const result = await query(q);
    for (const field of result.fields ?? []) if (field.dataTypeID === 18) field.dataTypeID = 25;
    return result;
  };
  return pool;
}

/**
 * The engine arms 10 s timers (lock timeouts) that it never clears, which keep a finished process
 * alive for 10 s. While engine calls run, timers armed from the engine's glue code are unref'd.
 */
let unrefDepth = 0;
const realSetTimeout = globalThis.setTimeout;
function unrefEngineTimers(): () => void {
  if (unrefDepth++ === 0) {
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const timer = realSetTimeout(fn, ms, ...args);
      if (new Error().stack?.includes("schema_engine_bg")) timer.unref();
      return timer;
    }) as typeof setTimeout;
  }
  return () => { if (--unrefDepth === 0) globalThis.setTimeout = realSetTimeout; };
}

async function withEngine<T>(url: string, fn: (engine: SchemaEngine) => Promise<T>): Promise<T> {
  // Importing a .wasm module still prints an ExperimentalWarning on Node 24; it needs no flag.
  const { SchemaEngine } = await import("@prisma/schema-engine-wasm");
  const schema = fs.readFileSync(schemaPath, "utf8");
  const logs: string[] = [];
  // The engine does not close what it opened (its connection keeps holding the migration advisory
  // lock): close it here.
  const opened: SqlDriverAdapter[] = [];
  const adapter = bindMigrationAwareSqlAdapterFactory(migrationAdapterFactory(url, opened));
  const restoreTimers = unrefEngineTimers();
  let engine: SchemaEngine | undefined;
  try {
    engine = await SchemaEngine.new({ datamodels: [[schemaPath, schema]] }, (line: string) => { logs.push(line); }, adapter);
    return await fn(engine);
  } catch (err) {
    throw new Error(`schema engine: ${describe(err)}${logs.length ? `\n${logs.slice(-5).join("\n")}` : ""}`, { cause: err });
  } finally {
    engine?.free();
    await Promise.all(opened.map((a) => a.dispose().catch(() => {})));
    restoreTimers();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === "object") return JSON.stringify(err);
  return String(err);
}

/** The migrations folder in the shape the engine reads (names sorted, as Prisma does). */
export function readMigrations(dir = migrationsDir): MigrationList {
  const lockfile = path.join(dir, "migration_lock.toml");
  const names = fs.existsSync(dir)
    ? fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()
    : [];
  return {
    baseDir: dir,
    lockfile: { path: "migration_lock.toml", content: fs.existsSync(lockfile) ? fs.readFileSync(lockfile, "utf8") : null },
    shadowDbInitScript: "",
    migrationDirectories: names.map((name) => {
      const file = path.join(dir, name, "migration.sql");
      return {
        path: name,
        migrationFile: {
          path: "migration.sql",
          content: fs.existsSync(file) ? { tag: "ok" as const, value: fs.readFileSync(file, "utf8") } : { tag: "error" as const, value: `${file} is missing` },
        },
      };
    }),
  };
}

/** Applies every migration not yet applied to the database at `url` (like `prisma migrate deploy`). */
export async function migrate(url: string): Promise<{ applied: string[] }> {
  return withEngine(url, async (engine) => {
    const out = await engine.applyMigrations({ migrationsList: readMigrations(), filters: noFilters });
    return { applied: out.appliedMigrationNames };
  });
}

/**
 * SQL that would bring a database built from the migrations to what schema.prisma declares: empty
 * when they agree. Replays the migrations into a throwaway shadow database on the server at `url`.
 */
export async function schemaDrift(url: string, schema = fs.readFileSync(schemaPath, "utf8")): Promise<string> {
  return withEngine(url, async (engine) => {
    const out = await engine.diff({
      from: { tag: "migrations", ...readMigrations() },
      to: { tag: "schemaDatamodel", files: [{ path: schemaPath, content: schema }] },
      script: true, exitCode: null, filters: noFilters,
    });
    return stripComments(out.stdout ?? "");
  });
}

function stripComments(sql: string): string {
  return sql.split("\n").filter((l) => !l.startsWith("--") && l.trim() !== "").join("\n").trim();
}

/**
 * Writes `migrations/<timestamp>_<name>/migration.sql` with the SQL from the current migrations to
 * schema.prisma (needs a server for the shadow database). Returns the folder, or null when nothing changed.
 */
export async function createMigration(url: string, name: string, now = new Date()): Promise<string | null> {
  const sql = await withEngine(url, async (engine) => {
    const out = await engine.diff({
      from: { tag: "migrations", ...readMigrations() },
      to: { tag: "schemaDatamodel", files: [{ path: schemaPath, content: fs.readFileSync(schemaPath, "utf8") }] },
      script: true, exitCode: null, filters: noFilters,
    });
    return out.stdout ?? "";
  });
  if (!stripComments(sql)) return null;
  const stamp = now.toISOString().replace(/\D/g, "").slice(0, 14);
  const dir = path.join(migrationsDir, `${stamp}_${name.replace(/[^a-z0-9_]/gi, "_")}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "migration.sql"), sql);
  return dir;
}
