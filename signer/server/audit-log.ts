/**
 * The signatures audit feed: every signature released, numbered in release order. Recent entries are served
 * from memory; all of them go to `<dataDir>/audit/signatures.jsonl` (0600), from which older ones are read and
 * the numbering resumes after a restart. The file is appended asynchronously (the slashing database is the
 * durable record; this is a witness), and rotated to `signatures.jsonl.1` past `rotateBytes`.
 */
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { ensurePrivateDir, PRIVATE_FILE_MODE } from "../../config/index.js";

export interface AuditEntry {
  seq: number;
  clientId: string;
  pubkey: string;
  type: string;
  slot: string | null;
  sourceEpoch: string | null;
  targetEpoch: string | null;
  signingRoot: string;
  signature: string;
  at: string;
}

export interface AuditLogOptions {
  /** Entries kept in memory (older ones are read back from the file). */
  memoryEntries?: number;
  rotateBytes?: number;
}

export class AuditLog {
  private readonly file: string;
  /** Recent entries as their JSON lines: one string each keeps garbage-collection work low at thousands per second. */
  private recent: string[] = [];
  private recentFirstSeq = 1;
  private readonly memoryEntries: number;
  private readonly rotateBytes: number;
  private stream: fs.WriteStream;
  private bytes: number;
  private lastSeq: number;
  /** Lines waiting for the next write: one write per ~20 ms instead of one per signature. */
  private pendingLines: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  private constructor(dir: string, opts: AuditLogOptions) {
    ensurePrivateDir(dir);
    this.file = path.join(dir, "signatures.jsonl");
    this.memoryEntries = opts.memoryEntries ?? 20_000;
    this.rotateBytes = opts.rotateBytes ?? 256 * 1024 * 1024;
    this.lastSeq = Math.max(lastSeqIn(this.file), lastSeqIn(this.file + ".1"));
    this.bytes = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0;
    this.stream = this.openStream();
    this.recentFirstSeq = this.lastSeq + 1;
  }

  static open(dir: string, opts: AuditLogOptions = {}): AuditLog {
    return new AuditLog(dir, opts);
  }

  get lastSequence(): number {
    return this.lastSeq;
  }

  append(entry: Omit<AuditEntry, "seq">): void {
    const line = JSON.stringify({ seq: ++this.lastSeq, ...entry }) + "\n";
    this.recent.push(line);
    if (this.recent.length > this.memoryEntries * 2) {
      const drop = this.recent.length - this.memoryEntries;
      this.recent = this.recent.slice(drop);
      this.recentFirstSeq += drop;
    }
    this.bytes += line.length;
    this.pendingLines.push(line);
    if (this.pendingLines.length >= 512) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), 20).unref();
  }

  /** Entries with seq > after, oldest first, at most `limit`; `next` is the `after` to ask with next time. */
  async list(after: number, limit: number): Promise<{ signatures: AuditEntry[]; next: number }> {
    let out: AuditEntry[];
    if (this.recent.length === 0 || after >= this.recentFirstSeq - 1) {
      const start = Math.max(0, after - this.recentFirstSeq + 1);
      out = this.recent.slice(start, start + limit).map((line) => JSON.parse(line) as AuditEntry);
    } else {
      out = await this.readFiles(after, limit);
    }
    const last = out[out.length - 1];
    return { signatures: out, next: last === undefined ? Math.max(after, 0) : last.seq };
  }

  async close(): Promise<void> {
    this.flush();
    await new Promise<void>((resolve) => this.stream.end(resolve));
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingLines.length === 0) return;
    this.stream.write(this.pendingLines.join(""));
    this.pendingLines = [];
    if (this.bytes > this.rotateBytes) this.rotate();
  }

  private openStream(): fs.WriteStream {
    const stream = fs.createWriteStream(this.file, { flags: "a", mode: PRIVATE_FILE_MODE });
    stream.on("error", () => {
      /* a full disk must not crash the signer; the in-memory feed keeps working */
    });
    return stream;
  }

  private rotate(): void {
    const old = this.stream;
    old.end();
    try {
      fs.renameSync(this.file, this.file + ".1");
    } catch {
      /* keep appending to the same file */
    }
    this.bytes = 0;
    this.stream = this.openStream();
    this.recentFirstSeq = this.lastSeq + 1;
  }

  /** Older entries than memory holds: scan the rotated file, then the current one. */
  private async readFiles(after: number, limit: number): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (const file of [this.file + ".1", this.file]) {
      if (!fs.existsSync(file)) continue;
      const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
      for await (const line of lines) {
        if (line === "") continue;
        let entry: AuditEntry;
        try {
          entry = JSON.parse(line) as AuditEntry;
        } catch {
          continue; // a torn last line after a crash
        }
        if (entry.seq > after && (out.length === 0 || entry.seq > out[out.length - 1]!.seq)) out.push(entry);
        if (out.length >= limit) {
          lines.close();
          return out;
        }
      }
    }
    // Entries written but not yet flushed to the file are in memory.
    for (let i = 0; i < this.recent.length && out.length < limit; i++) {
      if (this.recentFirstSeq + i > (out[out.length - 1]?.seq ?? after)) out.push(JSON.parse(this.recent[i]!) as AuditEntry);
    }
    return out;
  }
}

/** The seq of the last complete line of a file (0 if none). */
function lastSeqIn(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return 0;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    fs.readSync(fd, buf, 0, length, size - length);
    const lines = buf.toString("utf8").split("\n");
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const seq = (JSON.parse(lines[i]!) as { seq?: unknown }).seq;
        if (typeof seq === "number") return seq;
      } catch {
        /* partial line */
      }
    }
    return 0;
  } finally {
    fs.closeSync(fd);
  }
}
