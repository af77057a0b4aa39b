/**
 * node prisma/src/cli.ts <command>
 *   migrate              apply pending migrations to DATABASE_URL (what `make migrate` runs)
 *   check                fail when the migrations do not produce schema.prisma (needs DATABASE_URL
 *                        for a throwaway shadow database) or the committed client is stale
 *   new-migration NAME   write migrations/<timestamp>_NAME from the schema changes (needs DATABASE_URL)
 *   generate             regenerate the committed Prisma client (src/generated)
 *   audit [--tenant T] [--action A] [--since ISO] [--limit N]
 *                        print stored audit events as JSON lines (the security document's format)
 *   retention            run the retention job once (90-day usage) and print what it removed
 *   erase-tenant NAME    erase every row of a tenant (GDPR) and print what was erased
 */
import { loadCliConfig } from "./config.ts";
import { generateClient, generatedClientDrift } from "./generate.ts";
import { parseArgs } from "node:util";
import type { AuditAction } from "@crosslogic/crds/audit";
import { createAuditStore } from "./audit.ts";
import { createDatabase, type Database } from "./database.ts";
import { eraseTenant } from "./erasure.ts";
import { createMigration, migrate, schemaDrift } from "./migrate.ts";
import { runRetention } from "./retention.ts";

async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const db = createDatabase(loadCliConfig().databaseUrl);
  try { return await fn(db); } finally { await db.close(); }
}

const [command, ...args] = process.argv.slice(2);

async function main(): Promise<number> {
  switch (command) {
    case "migrate": {
      const { applied } = await migrate(loadCliConfig().databaseUrl);
      console.log(applied.length ? `Applied migrations: ${applied.join(", ")}` : "No pending migrations.");
      return 0;
    }
    case "check": {
      const stale = generatedClientDrift();
      if (stale.length) console.error(`prisma/src/generated is stale (${stale.join(", ")}): run \`node prisma/src/cli.ts generate\``);
      const drift = await schemaDrift(loadCliConfig().databaseUrl);
      if (drift) console.error(`schema.prisma and prisma/migrations disagree; a migration needs:\n${drift}\nrun \`node prisma/src/cli.ts new-migration NAME\``);
      if (!stale.length && !drift) console.log("Schema, migrations and generated client agree.");
      return stale.length || drift ? 1 : 0;
    }
    case "new-migration": {
      const name = args[0];
      if (!name) { console.error("usage: new-migration NAME"); return 2; }
      const dir = await createMigration(loadCliConfig().databaseUrl, name);
      console.log(dir ? `Wrote ${dir}/migration.sql` : "schema.prisma matches the migrations: nothing to write.");
      return 0;
    }
    case "audit": {
      const { values } = parseArgs({ args, options: { tenant: { type: "string" }, action: { type: "string" }, since: { type: "string" }, limit: { type: "string" } } });
      const events = await withDb((db) => createAuditStore(db).query({
        ...(values.tenant ? { tenant: values.tenant } : {}),
        ...(values.action ? { action: values.action as AuditAction } : {}),
        ...(values.since ? { from: new Date(values.since) } : {}),
        ...(values.limit ? { limit: Number(values.limit) } : {}),
      }));
      for (const e of events) console.log(JSON.stringify(e));
      return 0;
    }
    case "retention":
      console.log(JSON.stringify(await withDb((db) => runRetention(db))));
      return 0;
    case "erase-tenant": {
      const name = args[0];
      if (!name) { console.error("usage: erase-tenant NAME"); return 2; }
      console.log(JSON.stringify(await withDb((db) => eraseTenant(db, name, "cli"))));
      return 0;
    }
    case "generate":
      generateClient();
      console.log("Generated prisma/src/generated.");
      return 0;
    default:
      console.error("usage: node prisma/src/cli.ts migrate|check|new-migration NAME|generate|audit|retention|erase-tenant NAME");
      return 2;
  }
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  return 1;
});
