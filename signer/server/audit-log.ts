/**
 * The signatures audit feed: every signature released, numbered in release order. Recent entries are served
 * from memory; all of them go to `<dataDir>/audit/signatures.jsonl` (0600), rotated to `signatures.jsonl.1`
 * past `rotateBytes`, from which older ones are read back.
 *
 * Two promises survive a crash (SIGKILL, power loss):
 * - a sequence number is never handed out twice. Numbers are reserved in durable blocks: `seq.reserved` holds
 *   the highest number that may have been used, replaced atomically (fsync'd) before any number of a new block
 *   is handed out, and a restart continues above it. A crash leaves a gap, never a repeat, so a reader's
 *   cursor (`after`) stays valid across restarts; a clean stop hands the unused numbers back (no gap).
 * - an entry appended with `durable` (blocks and attestations) is written and fdatasync'd before its promise
 *   resolves; the caller sends the signature only then. Concurrent durable appends share one fdatasync (group
 *   commit: entries appended while a write is in progress go in the next one). Other entries are written
 *   within ~20 ms without an fsync of their own, so a crash may lose the last few of them.
 */
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { promisify } from "node:util";
import { ensurePrivateDir, PRIVATE_FILE_MODE, VigilError, writeFilePrivateAtomic } from "../../common/index.js";
import { classifyDbFailure, type DbFailureCause } from "../../slashing-db/index.js";
import type { SignatureRecord } from "../../admin-api/index.js";

const write = promisify(fs.write);
const fdatasync = promisify(fs.fdatasync);

/** One line of the feed: the admin API serves these objects as they are. */
export type AuditEntry = SignatureRecord;

export interface AuditLogOptions {
  /** Entries kept in memory (older ones are read back from the file). */
  memoryEntries?: number;
  rotateBytes?: number;
  /** Sequence numbers reserved per durable reservation (one small atomic, fsync'd write each). */
  reserveBlock?: number;
}

/**
 * The feed could not be written or its numbering could not be reserved: no signature may leave without it.
 * `failure` says why, in the same vocabulary as the slashing database's failures (DISK_FULL, READ_ONLY, …).
 */
export class AuditLogUnavailableError extends VigilError<"AUDIT_LOG_UNAVAILABLE"> {
  readonly failure: DbFailureCause;
  constructor(message: string, failure: DbFailureCause = "UNKNOWN") {
    super("AUDIT_LOG_UNAVAILABLE", message);
    this.failure = failure;
  }
}

/** Whether the last durable write (an fdatasync'd batch, or a reservation) succeeded, and if not why. */
export interface AuditLogHealth {
  up: boolean;
  cause?: DbFailureCause;
}

const RESERVED_FILE = "seq.reserved";
const DEFAULT_RESERVE_BLOCK = 16_384;

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class AuditLog {
  private readonly dir: string;
  private readonly file: string;
  private readonly reservedFile: string;
  /** Recent entries as their JSON lines (consecutive seqs from recentFirstSeq): one string each keeps GC work low. */
  private recent: string[] = [];
  private recentFirstSeq = 1;
  private readonly memoryEntries: number;
  private readonly rotateBytes: number;
  private readonly reserveBlock: number;
  private fd: number;
  private bytes: number;
  private lastSeq: number;
  /** Every seq up to this one is durably reserved; none above it has been handed out. */
  private reservedUpTo: number;
  /** Lines not yet given to the file, and the durable appends waiting for them. */
  private pendingLines: string[] = [];
  private pendingWaiters: Waiter[] = [];
  /** A write loop is running (set and cleared inside it, so no append can fall between its last check and its end). */
  private writing = false;
  private idle: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  /** A write failed part-way: the next one starts on a fresh line so the torn one cannot swallow it. */
  private tornTail = false;
  /** The result of the last durable write (a reservation's failure counts); only a synced batch clears a failure. */
  private lastDurable: AuditLogHealth = { up: true };
  /** Writes (append, fdatasync, reservation) that failed since open: vigil_signer_audit_log_write_failures_total. */
  writeFailures = 0;

  private constructor(dir: string, opts: AuditLogOptions) {
    ensurePrivateDir(dir);
    this.dir = dir;
    this.file = path.join(dir, "signatures.jsonl");
    this.reservedFile = path.join(dir, RESERVED_FILE);
    this.memoryEntries = opts.memoryEntries ?? 20_000;
    this.rotateBytes = opts.rotateBytes ?? 256 * 1024 * 1024;
    this.reserveBlock = opts.reserveBlock ?? DEFAULT_RESERVE_BLOCK;
    removeStaleTempFiles(dir);
    this.reservedUpTo = readReserved(this.reservedFile);
    // Above everything that may have been handed out before (the reservation), and above what the files hold
    // (a directory from before reservations existed).
    this.lastSeq = Math.max(this.reservedUpTo, lastSeqIn(this.file), lastSeqIn(`${this.file}.1`));
    this.reservedUpTo = this.lastSeq;
    this.fd = this.openFile();
    this.bytes = fs.fstatSync(this.fd).size;
    this.tornTail = this.bytes > 0 && !endsWithNewline(this.fd, this.bytes); // a line cut by a crash
    this.recentFirstSeq = this.lastSeq + 1;
  }

  static open(dir: string, opts: AuditLogOptions = {}): AuditLog {
    return new AuditLog(dir, opts);
  }

  /**
   * DOWN (with the cause) while the last durable write failed: a block or attestation would be withheld now.
   * Up again after the next durable write that succeeds.
   */
  health(): AuditLogHealth {
    return this.lastDurable;
  }

  /**
   * Numbers and appends an entry. With `durable`, returns a promise that resolves once the entry is on disk
   * (rejects with AuditLogUnavailableError if it cannot be written); otherwise the write is buffered.
   * Throws AuditLogUnavailableError if no sequence number can be reserved.
   */
  append(entry: Omit<AuditEntry, "seq">, opts: { durable: boolean }): Promise<void> | undefined {
    if (this.lastSeq + 1 > this.reservedUpTo) this.reserve();
    const line = `${JSON.stringify({ seq: ++this.lastSeq, ...entry })}\n`;
    this.recent.push(line);
    if (this.recent.length > this.memoryEntries * 2) {
      const drop = this.recent.length - this.memoryEntries;
      this.recent = this.recent.slice(drop);
      this.recentFirstSeq += drop;
    }
    this.pendingLines.push(line);
    if (opts.durable) {
      const done = new Promise<void>((resolve, reject) => this.pendingWaiters.push({ resolve, reject }));
      this.startWriting();
      return done;
    }
    if (this.pendingLines.length >= 512) this.startWriting();
    else this.flushTimer ??= setTimeout(() => this.startWriting(), 20).unref();
    return undefined;
  }

  /** Entries with seq > after, oldest first, at most `limit`; `next` is the `after` to ask with next time. */
  async list(after: number, limit: number): Promise<{ signatures: AuditEntry[]; next: number }> {
    let out: AuditEntry[];
    // Memory holds every entry from recentFirstSeq on (none yet just after a start: older ones are in the files).
    if (after >= this.recentFirstSeq - 1) {
      const start = Math.max(0, after - this.recentFirstSeq + 1);
      out = this.recent.slice(start, start + limit).map((line) => JSON.parse(line) as AuditEntry);
    } else {
      out = await this.readFiles(after, limit);
    }
    const last = out[out.length - 1];
    return { signatures: out, next: last === undefined ? Math.max(after, 0) : last.seq };
  }

  /** Writes and syncs everything appended, then closes the file. */
  async close(): Promise<void> {
    if (this.fd < 0) return;
    this.pendingWaiters.push({ resolve: () => {}, reject: () => {} }); // one last fdatasync for buffered entries
    this.startWriting();
    while (this.writing) await this.idle;
    fs.closeSync(this.fd);
    this.fd = -1;
    // A clean stop gives back the unused part of the block: the next start continues without a gap.
    try {
      if (this.reservedUpTo > this.lastSeq) writeFilePrivateAtomic(this.reservedFile, `${this.lastSeq}\n`);
    } catch {
      /* the larger reservation stays: a gap, never a repeat */
    }
  }

  /** Durably reserves the next block of numbers before any of them is handed out. */
  private reserve(): void {
    const upTo = this.lastSeq + this.reserveBlock;
    try {
      writeFilePrivateAtomic(this.reservedFile, `${upTo}\n`);
    } catch (err) {
      this.writeFailures++;
      const cause = classifyDbFailure(err);
      this.lastDurable = { up: false, cause };
      throw new AuditLogUnavailableError(`cannot reserve audit sequence numbers in ${this.reservedFile}: ${(err as Error).message}`, cause);
    }
    this.reservedUpTo = upTo;
  }

  private startWriting(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.writing) return; // the running loop takes what was appended before it ends
    this.writing = true;
    this.idle = this.writeLoop();
  }

  /**
   * One batch at a time: everything appended while a batch is written and synced goes in the next one. The
   * loop's last emptiness check and the clearing of `writing` run in one synchronous step, so an append never
   * finds `writing` set by a loop that has already decided to stop.
   */
  private async writeLoop(): Promise<void> {
    try {
      while (this.pendingLines.length > 0 || this.pendingWaiters.length > 0) {
        const lines = this.pendingLines;
        const waiters = this.pendingWaiters;
        this.pendingLines = [];
        this.pendingWaiters = [];
        try {
          const buf = Buffer.from((this.tornTail ? "\n" : "") + lines.join(""), "utf8");
          let off = 0;
          while (off < buf.length) {
            this.tornTail = true;
            const { bytesWritten } = await write(this.fd, buf, off, buf.length - off);
            off += bytesWritten;
            this.bytes += bytesWritten;
          }
          this.tornTail = false;
          if (waiters.length > 0) {
            await fdatasync(this.fd);
            this.lastDurable = { up: true };
          }
          for (const w of waiters) w.resolve();
        } catch (err) {
          this.writeFailures++;
          // A full or failing disk: the durable appends of this batch fail (their signatures are not sent); the
          // entries stay in the in-memory feed. Classified as the database's failures are (ENOSPC → DISK_FULL).
          const cause = classifyDbFailure(err);
          if (waiters.length > 0) this.lastDurable = { up: false, cause };
          const failure = new AuditLogUnavailableError(`cannot write the audit feed ${this.file}: ${(err as Error).message}`, cause);
          for (const w of waiters) w.reject(failure);
        }
        if (this.bytes > this.rotateBytes) this.rotate();
      }
    } finally {
      this.writing = false;
    }
  }

  private openFile(): number {
    const existed = fs.existsSync(this.file);
    const fd = fs.openSync(this.file, fs.constants.O_CREAT | fs.constants.O_RDWR | fs.constants.O_APPEND, PRIVATE_FILE_MODE);
    if (!existed) syncDir(this.dir); // the new file's name must survive a crash, or its synced entries would not
    return fd;
  }

  private rotate(): void {
    try {
      fs.renameSync(this.file, `${this.file}.1`);
      const fd = this.openFile();
      fs.closeSync(this.fd);
      this.fd = fd;
      this.bytes = 0;
    } catch {
      /* keep appending to the same file */
    }
  }

  /** Older entries than memory holds: scan the rotated file, then the current one, then memory. */
  private async readFiles(after: number, limit: number): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (const file of [`${this.file}.1`, this.file]) {
      if (!fs.existsSync(file)) continue;
      const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
      for await (const line of lines) {
        if (line === "") continue;
        let entry: AuditEntry;
        try {
          entry = JSON.parse(line) as AuditEntry;
        } catch {
          continue; // a line torn by a crash
        }
        if (typeof entry.seq !== "number") continue;
        if (entry.seq > after && (out.length === 0 || entry.seq > out[out.length - 1]!.seq)) out.push(entry);
        if (out.length >= limit) {
          lines.close();
          return out;
        }
      }
    }
    // Entries not yet written to the file are in memory.
    for (let i = 0; i < this.recent.length && out.length < limit; i++) {
      if (this.recentFirstSeq + i > (out[out.length - 1]?.seq ?? after)) out.push(JSON.parse(this.recent[i]!) as AuditEntry);
    }
    return out;
  }
}

/** The reserved ceiling (0 when no reservation was ever made); a file that is not a number stops the start. */
function readReserved(file: string): number {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  const n = Number(text.trim());
  if (!/^\d+\s*$/.test(text) || !Number.isSafeInteger(n)) {
    throw new AuditLogUnavailableError(`${file} does not hold a sequence number; the audit numbering cannot resume safely`);
  }
  return n;
}

/** Temp files of an atomic replacement cut short by a crash. */
function removeStaleTempFiles(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith(`.${RESERVED_FILE}.`) && name.endsWith(".tmp")) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function endsWithNewline(fd: number, size: number): boolean {
  const buf = Buffer.alloc(1);
  fs.readSync(fd, buf, 0, 1, size - 1);
  return buf[0] === 0x0a;
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
