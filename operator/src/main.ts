/**
 * The operator process: `node operator/src/main.ts` (KUBECONFIG outside a cluster). Validates its
 * configuration first, exits 1 on lost leadership (the Deployment restarts it as a standby), and
 * shuts down gracefully on SIGTERM/SIGINT (finishing in-flight reconciles, releasing the Lease).
 */
import { ConfigError, loadConfig } from "./config.ts";
import { startOperator } from "./manager.ts";

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

const operator = await startOperator(config);
let signalled = false;
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    if (signalled) process.exit(1);
    signalled = true;
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    void operator.stop().then(() => process.exit(0));
  });
}
const reason = await operator.stopped;
if (!signalled) process.exit(reason === "lost leadership" || reason === "start failure" ? 1 : 0);
