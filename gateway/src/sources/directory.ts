/**
 * Standalone config source: every `*.json` file of a directory is one gateway-config document.
 * Re-read on change (fs.watch, plus a poll as a safety net on filesystems without events). The
 * first scan is synchronous (the gateway starts with its keys loaded); later scans read one file
 * per callback, so a directory of large documents never holds the event loop in one piece. A scan
 * reads only files whose inode, size, mtime or ctime changed (the poll used to re-read and hash
 * every file every 2 s: 25 MB of garbage per poll with 100 documents of 1,000 keys, and the
 * collections it caused stalled an idle gateway ~10 ms); of a file it read, only a digest is
 * remembered, not its text. A file larger than LARGE_DOCUMENT_BYTES is handed over as bytes (the
 * store reads it in pieces) and recognised by its stat alone; those bytes are read into one
 * reusable buffer (LargeFileReader), lent to the sink until it calls `done`.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { LARGE_DOCUMENT_BYTES } from "../config-store.ts";

export interface ConfigSink {
  /**
   * `version`: the Secret's resourceVersion (orders documents; stale ones are ignored). `done`,
   * when given, is called exactly once when the sink no longer needs `text` (applied, rejected or
   * replaced by a newer document): its bytes are then reused, so the sink keeps no part of them.
   */
  document(source: string, text: string | Buffer, version?: string, done?: () => void): void;
  rejected(source: string, errors: string[]): void;
  removed(source: string): void;
  error(msg: string): void;
}

/**
 * Reads large files into one buffer, reused from one reload to the next while nobody holds it.
 * Reading a 100,000-key document (~25 MB) into a fresh buffer each time cost ~40 ms of reading
 * with page faults on both cores, and V8 counts the buffer as external memory, so each reload also
 * brought on a major collection: 8–16 ms event-loop stalls while the file was read, and the old
 * buffer resident until collected (RSS after a reload 202–213 MB in half the runs). Into the reused
 * buffer the read takes ~9 ms with neither. While the buffer is lent (its document not yet
 * applied), a read gets a fresh buffer of its own. The buffer stays the size of the largest large
 * file read.
 */
export class LargeFileReader {
  #buf = Buffer.alloc(0);
  #lent = false;

  /** The file's bytes, and what to call when they are no longer needed. */
  async read(file: string): Promise<{ bytes: Buffer; done: () => void }> {
    const fh = await fs.promises.open(file, "r");
    try {
      const { size } = await fh.stat();
      const { buf, done } = this.#lend(size);
      let at = 0;
      try {
        for (let n = -1; at < size && n !== 0; at += n) n = (await fh.read(buf, at, size - at, at)).bytesRead;
      } catch (e) { done(); throw e; }
      return { bytes: buf.subarray(0, at), done };
    } finally {
      await fh.close();
    }
  }

  /** The same, synchronously (the first scan). */
  readSync(file: string): { bytes: Buffer; done: () => void } {
    const fd = fs.openSync(file, "r");
    try {
      const { size } = fs.fstatSync(fd);
      const { buf, done } = this.#lend(size);
      let at = 0;
      try {
        for (let n = -1; at < size && n !== 0; at += n) n = fs.readSync(fd, buf, at, size - at, at);
      } catch (e) { done(); throw e; }
      return { bytes: buf.subarray(0, at), done };
    } finally {
      fs.closeSync(fd);
    }
  }

  #lend(size: number): { buf: Buffer; done: () => void } {
    if (this.#lent) return { buf: Buffer.allocUnsafeSlow(size), done: () => undefined };
    if (this.#buf.length < size) this.#buf = Buffer.allocUnsafeSlow(size);
    this.#lent = true;
    let returned = false;
    return { buf: this.#buf, done: () => { if (!returned) { returned = true; this.#lent = false; } } };
  }
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
  const large = new LargeFileReader();
  /** Hands a file over unless its text is what was handed over last (large files: always). */
  const consider = (source: string, mark: string, content: string | { bytes: Buffer; done: () => void }) => {
    if (typeof content !== "string") {
      seen.set(source, { mark, digest: undefined });
      sink.document(source, content.bytes, undefined, content.done);
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
      consider(`file/${n}`, statMark(st), st.size > LARGE_DOCUMENT_BYTES ? large.readSync(file) : fs.readFileSync(file, "utf8"));
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
            consider(source, mark, st.size > LARGE_DOCUMENT_BYTES ? await large.read(file) : await fs.promises.readFile(file, "utf8"));
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
