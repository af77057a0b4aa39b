/**
 * Standalone config source: every `*.json` file of a directory is one gateway-config document.
 * Re-read on change (fs.watch, plus a poll as a safety net on filesystems without events). The
 * first scan is synchronous (the gateway starts with its keys loaded); later scans read one file
 * per callback, so a directory of large documents never holds the event loop in one piece. Only a
 * digest of each file is remembered, not its text; a file larger than LARGE_DOCUMENT_BYTES is
 * handed over as bytes (the store parses it on a worker) and recognised by its size and mtime.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { LARGE_DOCUMENT_BYTES } from "../config-store.ts";

export interface ConfigSink {
  /** `version`: the Secret's resourceVersion (orders documents; stale ones are ignored). */
  document(source: string, text: string | Buffer, version?: string): void;
  rejected(source: string, errors: string[]): void;
  removed(source: string): void;
  error(msg: string): void;
}

const digest = (text: string) => createHash("sha256").update(text).digest("base64");

export function watchDirectory(dir: string, sink: ConfigSink, pollMs = 2000): () => void {
  const seen = new Map<string, string>();
  let scanning = false;
  let again = false;
  let stopped = false;

  const list = (): string[] | undefined => {
    try { return fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort(); } catch (e) {
      sink.error(`config directory ${dir} unreadable: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      return undefined;
    }
  };
  const consider = (source: string, text: string) => {
    const d = digest(text);
    if (seen.get(source) === d) return;
    seen.set(source, d);
    sink.document(source, text);
  };
  const removeMissing = (present: Set<string>) => {
    for (const source of [...seen.keys()]) if (!present.has(source)) { seen.delete(source); sink.removed(source); }
  };

  // First scan: synchronous.
  const names = list() ?? [];
  for (const n of names) {
    try { consider(`file/${n}`, fs.readFileSync(path.join(dir, n), "utf8")); } catch { /* vanished */ }
  }

  const scan = async () => {
    if (scanning) { again = true; return; }
    scanning = true;
    try {
      do {
        again = false;
        const current = list();
        if (!current) return;
        const present = new Set(current.map((n) => `file/${n}`));
        for (const n of current) {
          if (stopped) return;
          const source = `file/${n}`;
          const file = path.join(dir, n);
          try {
            const st = await fs.promises.stat(file);
            if (st.size > LARGE_DOCUMENT_BYTES) {
              const mark = `${st.size}:${st.mtimeMs}`;
              if (seen.get(source) === mark) continue;
              const buf = await fs.promises.readFile(file);
              seen.set(source, mark);
              sink.document(source, buf);
              continue;
            }
            consider(source, await fs.promises.readFile(file, "utf8"));
          } catch { continue; }
        }
        removeMissing(present);
      } while (again && !stopped);
    } finally {
      scanning = false;
    }
  };
  let watcher: fs.FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  try {
    watcher = fs.watch(dir, () => { clearTimeout(debounce); debounce = setTimeout(() => void scan(), 50); });
    watcher.on("error", () => undefined);
  } catch { /* the poll covers it */ }
  const poll = setInterval(() => void scan(), pollMs);
  poll.unref();
  return () => { stopped = true; watcher?.close(); clearInterval(poll); clearTimeout(debounce); };
}
