import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/client.ts";
import { pgConfig } from "./migrate.ts";

export interface Database {
  readonly prisma: PrismaClient;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Pool size (default 10). */
  max?: number;
  /** Milliseconds to wait for a connection before failing (default 5000), so an outage fails fast. */
  connectionTimeoutMillis?: number;
}

/** A Prisma client over node-postgres (no native query engine). */
export function createDatabase(url: string, opts: DatabaseOptions = {}): Database {
  const adapter = new PrismaPg({ ...pgConfig(url), max: opts.max ?? 10, connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5000 });
  const prisma = new PrismaClient({ adapter });
  return { prisma, close: () => prisma.$disconnect() };
}
