/**
 * kubectl against a kubeconfig, and polling: what tests that drive the system through kubectl need
 * (the e2e suites; other workspaces' tests may use it too).
 */
import { execFile } from "node:child_process";

export interface Kube {
  /** Runs kubectl; never throws (the exit code is in the result). */
  run(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  ok(args: string[], input?: string): Promise<string>;
  json<T>(args: string[]): Promise<T>;
}

export function kube(kubeconfig: string, kubectlBin: string): Kube {
  const run = (args: string[], input?: string) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(kubectlBin, [`--kubeconfig=${kubeconfig}`, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
  const ok = async (args: string[], input?: string) => {
    const r = await run(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr.trim()}`);
    return r.stdout;
  };
  return { run, ok, json: async <T>(args: string[]) => JSON.parse(await ok([...args, "-o", "json"])) as T };
}

/** Polls `fn` until it returns something other than undefined/false; fails with the last error. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Waits until the named CRDs are Established. `kubectl wait --for=condition=…` fails at once, rather
 * than waiting, when it reads a CRD whose status has no conditions yet (right after it was created):
 * that answer is retried until the deadline. Then each resource is listed until it answers (a
 * freshly established CRD refuses requests with 429 for a moment).
 */
export async function waitForCrds(kubectl: (args: string[]) => Promise<unknown>, crds: string[], timeoutSeconds = 60): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    try {
      await kubectl(["wait", "--for=condition=Established", `--timeout=${timeoutSeconds}s`, ...crds.map((c) => `crd/${c}`)]);
      break;
    } catch (err) {
      if (!/accessor error/.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // A freshly established CRD answers 429 "storage is (re)initializing" for a moment: until each
  // resource lists, it is not ready for objects.
  for (const crd of crds) {
    for (;;) {
      try {
        await kubectl(["get", crd, "--all-namespaces", "--chunk-size=1", "-o", "name"]);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
