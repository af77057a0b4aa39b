import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { createTestDatabase } from "../../src/services.ts";
import { testEnv } from "../../src/test-env.ts";

const env = testEnv();

describe("PostgreSQL and Redis for tests", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it("round-trips rows through a test's own database, isolated from others", async () => {
    const a = await createTestDatabase(env.DATABASE_URL, "roundtrip");
    const b = await createTestDatabase(env.DATABASE_URL, "roundtrip");
    cleanup.push(a.drop, b.drop);
    assert.notEqual(a.url, b.url);
    const client = new pg.Client({ connectionString: a.url });
    await client.connect();
    cleanup.push(() => client.end());
    await client.query("create table usage (id serial primary key, tokens int not null)");
    await client.query("insert into usage (tokens) values ($1), ($2)", [5, 7]);
    const { rows } = await client.query<{ sum: string }>("select sum(tokens) from usage");
    assert.equal(rows[0]?.sum, "12");

    const other = new pg.Client({ connectionString: b.url });
    await other.connect();
    cleanup.push(() => other.end());
    await assert.rejects(other.query("select * from usage"), /relation "usage" does not exist/);
  });

  it("round-trips keys and a Lua script through Redis", async () => {
    const redis = new Redis(env.REDIS_URL);
    cleanup.push(() => redis.quit());
    await redis.set("foundation:k", "v", "PX", 10_000);
    assert.equal(await redis.get("foundation:k"), "v");
    const n = await redis.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "foundation:n", 41);
    assert.equal(await redis.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "foundation:n", 1), Number(n) + 1);
  });
});
