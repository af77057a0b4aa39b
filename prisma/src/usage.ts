import type { UsageRecord } from "@crosslogic/crds/usage";
import type { Database } from "./database.ts";

export interface UsageQuery {
  tenant: string;
  /** `{namespace}/{name}` of the Environment. */
  environment?: string;
  keyPrefix?: string;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  /** Default 1000, at most 10,000. */
  limit?: number;
}

export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface UsageStore {
  /** Inserts records; a record whose (requestId, createdAt) is already stored is skipped. */
  insertBatch(records: UsageRecord[]): Promise<{ inserted: number }>;
  /** Records of one tenant, oldest first. */
  query(q: UsageQuery): Promise<UsageRecord[]>;
  /** Sums over the same filter (no limit). */
  totals(q: Omit<UsageQuery, "limit">): Promise<UsageTotals>;
}

const CHUNK = 1000;

/** The UTC day a timestamp falls in, as YYYY-MM-DD (the partition it lives in). */
export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function createUsageStore(db: Database): UsageStore {
  const { prisma } = db;
  const knownPartitions = new Set<string>();

  async function ensurePartitions(days: Iterable<string>): Promise<void> {
    for (const day of days) {
      if (knownPartitions.has(day)) continue;
      await prisma.$queryRaw`select crosslogic_usage_partition(${day}::date)`;
      knownPartitions.add(day);
    }
  }

  function where(q: Omit<UsageQuery, "limit">) {
    return {
      tenant: q.tenant,
      ...(q.environment ? { environment: q.environment } : {}),
      ...(q.keyPrefix ? { keyPrefix: q.keyPrefix } : {}),
      ...(q.from || q.to ? { createdAt: { ...(q.from ? { gte: q.from } : {}), ...(q.to ? { lt: q.to } : {}) } } : {}),
    };
  }

  return {
    async insertBatch(records) {
      let inserted = 0;
      for (let i = 0; i < records.length; i += CHUNK) {
        const chunk = records.slice(i, i + CHUNK);
        await ensurePartitions(new Set(chunk.map((r) => utcDay(r.createdAt))));
        try {
          inserted += (await prisma.usageRecord.createMany({ data: chunk, skipDuplicates: true })).count;
        } catch (err) {
          // A partition dropped behind our back (retention, erasure tests): forget and recreate once.
          if (!String((err as Error).message).includes("no partition")) throw err;
          knownPartitions.clear();
          await ensurePartitions(new Set(chunk.map((r) => utcDay(r.createdAt))));
          inserted += (await prisma.usageRecord.createMany({ data: chunk, skipDuplicates: true })).count;
        }
      }
      return { inserted };
    },
    async query(q) {
      const limit = Math.min(Math.max(1, q.limit ?? 1000), 10_000);
      return prisma.usageRecord.findMany({ where: where(q), orderBy: [{ createdAt: "asc" }, { requestId: "asc" }], take: limit });
    },
    async totals(q) {
      const agg = await prisma.usageRecord.aggregate({
        where: where(q), _count: { _all: true }, _sum: { promptTokens: true, completionTokens: true, totalTokens: true },
      });
      return {
        requests: agg._count._all,
        promptTokens: agg._sum.promptTokens ?? 0,
        completionTokens: agg._sum.completionTokens ?? 0,
        totalTokens: agg._sum.totalTokens ?? 0,
      };
    },
  };
}
