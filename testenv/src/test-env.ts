/**
 * What an integration test reads from the environment `make test` (testenv exec) started for it.
 * A missing variable is an error with instructions, never a silent skip.
 */
export interface TestEnv {
  KUBECONFIG: string;
  KUBECTL: string;
  DATABASE_URL: string;
  REDIS_URL: string;
  MODEL_URL: string;
}

export function testEnv(): TestEnv {
  const names = ["KUBECONFIG", "KUBECTL", "DATABASE_URL", "REDIS_URL", "MODEL_URL"] as const;
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(`integration tests need ${missing.join(", ")}: run them with \`make test-integration\` (or \`node testenv/src/cli.ts exec -- node --test FILE\`)`);
  }
  return Object.fromEntries(names.map((n) => [n, process.env[n]!])) as unknown as TestEnv;
}
