#!/usr/bin/env node
/**
 * The local environment from the command line (what the Makefile calls):
 *
 *   cli.ts up   [--dir .dev]      start everything detached; writes .dev/env, .dev/kubeconfig, .dev/logs/
 *   cli.ts down [--dir .dev]      stop what `up` started and free its ports
 *   cli.ts dev  [--dir .dev]      start everything in the foreground; Ctrl-C stops it all
 *   cli.ts exec -- CMD [ARGS…]    start a throwaway environment, run CMD with its variables, tear down
 *   cli.ts build                  build (or find cached) control-plane binaries; prints their directory
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ensureControlPlaneBinaries } from "./control-plane.ts";
import { startEnvironment, stopDetached, type LocalEnvironment } from "./environment.ts";
import { StartError } from "./errors.ts";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { dir: { type: "string", default: ".dev" } } });
const [command, ...rest] = positionals;
const dir = path.resolve(values.dir!);
const log = (msg: string) => process.stderr.write(`[dev] ${msg}\n`);

function summary(env: LocalEnvironment): string {
  const v = env.vars;
  const s = env.sample;
  const lines = [
    "",
    "The local CrossLogic environment is up:",
    `  Kubernetes API  ${env.controlPlane.server}   (KUBECONFIG=${v.KUBECONFIG})`,
    `  PostgreSQL      ${v.DATABASE_URL}`,
    `  Redis           ${v.REDIS_URL}`,
    `  Model server    ${v.MODEL_URL}`,
  ];
  if (env.product) {
    lines.push(
      `  Operator        ${env.product.operatorUrl}/metrics`,
      `  Gateway         ${v.GATEWAY_URL}   (admin ${v.ADMIN_URL}, X-Admin-Token: $ADMIN_TOKEN from the variables file)`,
    );
    if (v.BILLING_URL) {
      lines.push(`  Billing         ${v.BILLING_URL}/stripe/webhook   (Stripe events signed with $STRIPE_WEBHOOK_SECRET; usage reporting ${
        process.env.STRIPE_SECRET_KEY ? "on" : "off until STRIPE_SECRET_KEY is exported"})`);
    }
  }
  lines.push(`  Variables       ${path.join(dir, "env")}   logs in ${path.join(dir, "logs")}/`, "");
  if (s) {
    lines.push(
      `Sample tenant "${s.tenant}" (config/samples/quickstart.yaml): Environment ${s.environment}, ApiKey ${s.apiKey}. A chat completion through the gateway:`,
      "",
      `  ${curlCommand(v.GATEWAY_URL!, s.key, s.model)}`,
      "",
      "The same with the openai SDK (run from the repository root):",
      "",
      ...sdkSnippet(v.GATEWAY_URL!, s.key, s.model).map((l) => `  ${l}`),
      "",
      "More:",
      `  export KUBECONFIG=${v.KUBECONFIG}`,
      "  kubectl get tenants,environments,apikeys -A",
      `  kubectl get secret apikey-${s.apiKey} -n tenant-${s.tenant} -o jsonpath='{.data.key}' | base64 -d`,
      "",
    );
  } else {
    lines.push("Try:", `  KUBECONFIG=${v.KUBECONFIG} kubectl get --raw /readyz`, `  curl -s ${v.MODEL_URL}/v1/models`, "");
  }
  return lines.join("\n");
}

/** One line, so it can be pasted as is. */
function curlCommand(gatewayUrl: string, key: string, model: string): string {
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "Hello!" }] });
  return `curl -s ${gatewayUrl}/v1/chat/completions -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '${body}'`;
}

function sdkSnippet(gatewayUrl: string, key: string, model: string): string[] {
  return [
    "node --input-type=module -e '",
    'import OpenAI from "openai";',
    `const client = new OpenAI({ baseURL: "${gatewayUrl}/v1", apiKey: "${key}" });`,
    `const r = await client.chat.completions.create({ model: "${model}", messages: [{ role: "user", content: "Hello!" }] });`,
    "console.log(r.choices[0].message.content);'",
  ];
}

async function main(): Promise<number> {
  switch (command) {
    case "build":
      console.log(ensureControlPlaneBinaries());
      return 0;
    case "up": {
      if (fs.existsSync(path.join(dir, "state.json"))) {
        log(`already up (state in ${dir}/state.json); run \`make dev-down\` first to restart`);
        return 0;
      }
      fs.mkdirSync(dir, { recursive: true });
      const env = await startEnvironment({ dir, detached: true, product: true, log });
      console.log(summary(env));
      return 0;
    }
    case "down": {
      const stopped = await stopDetached(dir);
      log(stopped.length ? `stopped ${stopped.join(", ")}` : "nothing was running");
      return 0;
    }
    case "dev": {
      if (fs.existsSync(path.join(dir, "state.json"))) await stopDetached(dir);
      fs.mkdirSync(dir, { recursive: true });
      const env = await startEnvironment({ dir, product: true, log });
      fs.rmSync(path.join(dir, "state.json"), { force: true }); // owned by this process, not by `down`
      console.log(summary(env));
      log("running; press Ctrl-C to stop everything");
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      log("stopping…");
      await env.stop();
      log("stopped");
      return 0;
    }
    case "exec": {
      if (rest.length === 0) throw new StartError("exec needs a command: cli.ts exec -- CMD [ARGS…]");
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-test-"));
      const env = await startEnvironment({ dir: tmp, log });
      let code = 1;
      try {
        const child = spawn(rest[0]!, rest.slice(1), { stdio: "inherit", env: { ...process.env, ...env.vars, CROSSLOGIC_ENV_DIR: tmp } });
        const forward = (sig: NodeJS.Signals) => child.kill(sig);
        process.on("SIGINT", forward);
        process.on("SIGTERM", forward);
        code = await new Promise<number>((resolve) => child.on("exit", (c, sig) => resolve(c ?? (sig ? 128 + os.constants.signals[sig] : 1))));
      } finally {
        await env.stop();
        if (code === 0) fs.rmSync(tmp, { recursive: true, force: true });
        else log(`logs kept in ${path.join(tmp, "logs")}`);
      }
      return code;
    }
    default:
      console.error("usage: cli.ts up|down|dev|build [--dir DIR] | exec -- CMD [ARGS…]");
      return 2;
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  if (err instanceof StartError) console.error(`[dev] error: ${err.message}`);
  else console.error(`[dev] error: ${(err as Error).message ?? String(err)}`);
  process.exit(1);
});
