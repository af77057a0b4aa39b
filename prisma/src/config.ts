import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

const CliEnv = Type.Object({
  DATABASE_URL: Type.String({ pattern: "^postgres(ql)?://", description: "PostgreSQL URL the migrations are applied to" }),
});

export interface CliConfig {
  readonly databaseUrl: string;
}

/** The data CLI's configuration, from the environment; lists every problem at once. */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const raw = { DATABASE_URL: env.DATABASE_URL };
  const errors = [...Value.Errors(CliEnv, raw)].map((e) => `${e.path.slice(1) || "environment"}: ${e.message}`);
  if (errors.length) throw new Error(`invalid configuration:\n  ${errors.join("\n  ")}`);
  const parsed = raw as Static<typeof CliEnv>;
  return Object.freeze({ databaseUrl: parsed.DATABASE_URL });
}
