/**
 * Standalone config source: every `*.json` file of a directory is one gateway-config document.
 * Re-read on change (fs.watch, plus a poll as a safety net on filesystems without events). The
 * first scan is synchronous (the gateway starts with its keys loaded); later scans read one file
 * per callback, so a directory of large documents never holds the event loop in one piece. A scan
 * reads only files whose inode, size, mtime or ctime changed (the poll used to re-read and hash
 * every file every 2 s: 25 MB of garbage per poll with 100 documents of 1,000 keys, and the
 * collections it caused stalled an idle gateway ~10 ms); of a file it read, only a digest is
 * remembered, not its text. A file larger than LARGE_DOCUMENT_BYTES is handed over as bytes (the
 * store reads it in pieces) and recognised by its stat alone.
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
const statMark = (st: fs.Stats) => `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

export function watchDirectory(dir: string, sink: ConfigSink, pollMs = 2000): () => void {
  /** Source → stat mark and, for small files, the digest of the text handed over. */
  const seen = new Map<string, { mark: string; digest: string | undefined }>();
  let scanning = false;
  let again = false;
  let stopped = false;

  const list = (): string[] | undefined => {
    try { return fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort(); } catch (e) {
      sink.error(`config directory ${dir} unreadable: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      return undefined;
    }
  };
  /** Hands a file over unless its text is what was handed over last. */
  const consider = (source: string, mark: string, content: string | Buffer) => {
    if (typeof content !== "string") {
      seen.set(source, { mark, digest: undefined });
      sink.document(source, content);
      return;
    }
    const d = digest(content);
    const had = seen.get(source);
    seen.set(source, { mark, digest: d });
    if (had?.digest !== d) sink.document(source, content);
  };
  const removeMissing = (present: Set<string>) => {
    for (const source of [...seen.keys()]) if (!present.has(source)) { seen.delete(source); sink.removed(source); }
  };

  // First scan: synchronous.
  const names = list() ?? [];
  for (const n of names) {
    try {
      const file = path.join(dir, n);
      const st = fs.statSync(file);
      consider(`file/${n}`, statMark(st), st.size > LARGE_DOCUMENT_BYTES ? fs.readFileSync(file) : fs.readFileSync(file, "utf8"));
    } catch { /* vanished */ }
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
            const mark = statMark(st);
            if (seen.get(source)?.mark === mark) continue;
            consider(source, mark, st.size > LARGE_DOCUMENT_BYTES ? await fs.promises.readFile(file) : await fs.promises.readFile(file, "utf8"));
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
