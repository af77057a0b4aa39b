/**
 * Standalone config source: every `*.json` file of a directory is one gateway-config document.
 * Re-read on change (fs.watch, plus a poll as a safety net on filesystems without events).
 */
import fs from "node:fs";
import path from "node:path";

export interface ConfigSink {
  /** `version`: the Secret's resourceVersion (orders documents; stale ones are ignored). */
  document(source: string, text: string, version?: string): void;
  rejected(source: string, errors: string[]): void;
  removed(source: string): void;
  error(msg: string): void;
}

export function watchDirectory(dir: string, sink: ConfigSink, pollMs = 2000): () => void {
  const seen = new Map<string, string>();
  const scan = () => {
    let names: string[];
    try { names = fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort(); } catch (e) {
      sink.error(`config directory ${dir} unreadable: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      return;
    }
    const present = new Set<string>();
    for (const n of names) {
      const source = `file/${n}`;
      present.add(source);
      let text: string;
      try { text = fs.readFileSync(path.join(dir, n), "utf8"); } catch { continue; }
      if (seen.get(source) === text) continue;
      seen.set(source, text);
      sink.document(source, text);
    }
    for (const source of [...seen.keys()]) if (!present.has(source)) { seen.delete(source); sink.removed(source); }
  };
  scan();
  let watcher: fs.FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  try {
    watcher = fs.watch(dir, () => { clearTimeout(debounce); debounce = setTimeout(scan, 50); });
    watcher.on("error", () => undefined);
  } catch { /* the poll covers it */ }
  const poll = setInterval(scan, pollMs);
  poll.unref();
  return () => { watcher?.close(); clearInterval(poll); clearTimeout(debounce); };
}
