/**
 * SlashingProtection on one SQLite file through two connections. The worker thread's runs every check-and-record,
 * batched into one message per event-loop turn (its group commits and fsyncs never block the caller's thread), with
 * WAL checkpoints on a thread of their own; the caller's thread's creates and migrates the file, pins the network
 * and serves imports, exports and liveness. Checks resolve only once recorded durably and reject with the
 * database's own error classes. If the worker dies every pending and later check fails closed.
 */
import fs from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { bytesToHex, hexToBytes, workerScriptUrl } from "../../common/index.js";
import { parseUint64 } from "../codec.js";
import { openSlashingDb, type CheckOutcome, type SlashingDb } from "../database.js";
import { errorFromWire, SlashingDbInputError, SlashingDbUnavailableError, SlashingProtectionError } from "../errors.js";
import type { BatchStats } from "../group-commit.js";
import type { Interchange } from "../interchange/export.js";
import type { ImportSummary } from "../interchange/import.js";
import type { HighWatermark } from "../high-watermark.js";
import type { SlashingDbIdentity } from "../identity.js";
import type { ProtectionHealth, SlashableCheck, SlashingProtection } from "../protection.js";
import { encodeChecks, type FromDbWorker, type NumberedCheck, type ToDbWorker } from "./protocol.js";

export interface ThreadedSlashingProtectionOptions {
  /** Pins the network at open (refused if the file is pinned to another). */
  genesisValidatorsRoot?: string;
  /** Called with each group commit's stats (metrics). */
  onCommit?: (s: BatchStats) => void;
  /** The worker's connection could not take a pin: its checks fail closed; this reports why. */
  onPinFailure?: (err: Error) => void;
}

interface Pending {
  resolve: (outcome: CheckOutcome) => void;
  reject: (err: Error) => void;
}

/** A commit's or probe's result stands for this long before the health check probes again. */
const HEALTH_MAX_AGE_MS = 1_000;

/**
 * A check that failed because the database could not record it keeps the health DOWN this long unless a later
 * commit succeeds: a small probe can fit where a real commit did not (a full disk with a little WAL room left).
 */
const FAILURE_HOLD_MS = 5_000;

/** Closing waits this long for the worker's last commits, checkpoint and connection close. */
const CLOSE_TIMEOUT_MS = 15_000;
/** After "closed", the worker's thread ends by itself within this time, or is terminated. */
const EXIT_TIMEOUT_MS = 3_000;

/** `p`'s value, or undefined if it has not settled within `ms`. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function healthOf(err: Error): ProtectionHealth {
  return { up: false, cause: err instanceof SlashingDbUnavailableError ? err.failure : "UNKNOWN", message: err.message };
}

export class ThreadedSlashingProtection implements SlashingProtection {
  private readonly pending = new Map<number, Pending>();
  private readonly pins = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private outbox: NumberedCheck[] = [];
  private scheduled = false;
  private nextId = 1;
  private dead: Error | undefined;
  private closedWaiter: ((problems?: string[]) => void) | undefined;
  private closeRequested = false;
  private readonly probes = new Map<number, (err?: Error) => void>();
  private writeHealthNow: { at: number; value: ProtectionHealth } | undefined;
  private lastCheckFailure: { at: number; value: ProtectionHealth } | undefined;
  private lastCommitAt = 0;
  private probing: Promise<ProtectionHealth> | undefined;
  private readonly exited: Promise<true>;
  /** The pin the worker's connection has been told of: the one copy on this thread (the file holds the other). */
  private pinnedRoot: string | null;

  private constructor(
    /** This thread's connection: pins, imports, exports, liveness. */
    private readonly main: SlashingDb,
    private readonly worker: Worker,
    private readonly opts: ThreadedSlashingProtectionOptions,
  ) {
    this.pinnedRoot = main.genesisValidatorsRoot;
    worker.on("message", (m: FromDbWorker) => this.onMessage(m));
    worker.on("error", (err) => this.fail(err));
    worker.on("exit", (code) => this.fail(new Error(`slashing-protection worker exited with code ${code}`)));
    this.exited = new Promise((resolve) => worker.once("exit", () => resolve(true)));
  }

  /**
   * Opens `file` on this thread (creating, migrating and pinning it), then starts the worker on it. Resolves once
   * the worker's connection is open too.
   */
  static async open(file: string, opts: ThreadedSlashingProtectionOptions = {}): Promise<ThreadedSlashingProtection> {
    const main = openSlashingDb(file, opts.genesisValidatorsRoot !== undefined ? { genesisValidatorsRoot: opts.genesisValidatorsRoot } : {});
    try {
      const worker = await startWorker(file);
      return new ThreadedSlashingProtection(main, worker, opts);
    } catch (err) {
      main.close();
      throw err;
    }
  }

  get genesisValidatorsRoot(): string | null {
    return this.pinnedRoot;
  }

  /** Checks sent and not yet answered. */
  get queueDepth(): number {
    return this.pending.size;
  }

  isAlive(): boolean {
    return this.dead === undefined && this.main.isHealthy();
  }

  /** The file and its -wal (committed checks live there until a checkpoint); a missing -wal counts 0. */
  async sizeBytes(): Promise<number> {
    const sizes = await Promise.all(
      [this.main.path, `${this.main.path}-wal`].map((f) =>
        fs.stat(f).then(
          (st) => st.size,
          () => 0,
        ),
      ),
    );
    return sizes[0]! + sizes[1]!;
  }

  checkAndRecord(check: SlashableCheck): Promise<CheckOutcome> {
    try {
      checkInput(check);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue({ ...check, id: 0 });
  }

  /**
   * The first root pins the file (durably, through this thread's connection) and is passed on to the worker's;
   * checks queued after this call are ordered after the pin. Another root is refused.
   */
  async pin(genesisValidatorsRoot: Uint8Array): Promise<void> {
    const root = bytesToHex(genesisValidatorsRoot);
    if (this.pinnedRoot === root) return;
    if (this.pinnedRoot === null) {
      this.main.pinGenesisValidatorsRoot(root); // durable before anything is signed for this network
      this.adoptPin();
      if (this.pinnedRoot === root) return;
    }
    throw new SlashingProtectionError(
      "GENESIS_VALIDATORS_ROOT_MISMATCH",
      `this signer serves the network with genesis_validators_root ${this.pinnedRoot}, not ${root}`,
    );
  }

  /** Imports through this thread's connection; an import into an unpinned file pins it, and the worker learns of it. */
  async importInterchange(interchange: object | string): Promise<ImportSummary> {
    const summary = this.main.importInterchange(interchange);
    this.adoptPin();
    return summary;
  }

  async exportInterchange(opts: { pubkeys?: string[] } = {}): Promise<Interchange> {
    return this.main.exportInterchange(opts);
  }

  /** Read through this thread's connection: the file, as every connection to it sees it. */
  async identity(): Promise<SlashingDbIdentity> {
    if (this.dead) throw this.dead;
    return { backend: "sqlite", historyId: this.main.historyId, sharingNonce: this.main.readSharingNonce() };
  }

  async highWatermark(): Promise<HighWatermark | null> {
    return this.main.highWatermark();
  }

  async writeSharingNonce(nonce: string): Promise<void> {
    if (this.dead) throw this.dead;
    this.main.writeSharingNonce(nonce);
  }

  /** Takes a pin made through this thread's connection and passes it to the worker's. */
  private adoptPin(): void {
    const root = this.main.genesisValidatorsRoot;
    if (root === null || root === this.pinnedRoot) return;
    this.pinnedRoot = root;
    this.tellWorkerOfPin(root).catch((err: Error) => this.opts.onPinFailure?.(err));
  }

  /** Write health of the checking connection first (it is what signing needs), then this thread's. */
  async health(): Promise<ProtectionHealth> {
    const write = await this.writeHealth();
    if (!write.up) return write;
    if (!this.main.isHealthy()) return { up: false, cause: "MAIN_CONNECTION_FAILED" };
    return write;
  }

  /**
   * Could a check be recorded now? A check that failed for the database's sake in the last 5 s with no commit
   * since says no; otherwise the latest commit's (or probe's) result while under a second old; otherwise one
   * write probe through the worker's group commit (concurrent callers share it).
   */
  private writeHealth(): Promise<ProtectionHealth> {
    if (this.dead) return Promise.resolve(healthOf(this.dead));
    const failed = this.lastCheckFailure;
    if (failed && failed.at >= this.lastCommitAt && Date.now() - failed.at < FAILURE_HOLD_MS) return Promise.resolve(failed.value);
    const known = this.writeHealthNow;
    if (known && Date.now() - known.at < HEALTH_MAX_AGE_MS) return Promise.resolve(known.value);
    this.probing ??= new Promise<ProtectionHealth>((resolve) => {
      const requestId = this.nextId++;
      this.probes.set(requestId, (err) => resolve(err ? healthOf(err) : { up: true }));
      this.post({ kind: "probe", requestId });
    })
      .then((value) => {
        this.noteHealth(value);
        return value;
      })
      .finally(() => (this.probing = undefined));
    return this.probing;
  }

  private noteHealth(value: ProtectionHealth): void {
    this.writeHealthNow = { at: Date.now(), value };
  }

  /** Tells the worker's connection the network is pinned (this thread's connection pinned it first, durably). */
  private tellWorkerOfPin(root: string): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const requestId = this.nextId++;
    this.flush(); // checks queued before the pin keep their order
    return new Promise((resolve, reject) => {
      this.pins.set(requestId, { resolve, reject });
      this.post({ kind: "pin", requestId, root: hexToBytes(root) });
    });
  }

  /**
   * Commits everything queued, then lets the worker close its connection and end its thread by itself (bounded:
   * terminate() only if it does not). Resolves with what went wrong while closing, [] when closed cleanly.
   */
  async close(timeoutMs = CLOSE_TIMEOUT_MS): Promise<string[]> {
    // The worker's connection first (it holds the queued checks), then this thread's; each reports.
    const problems = await this.closeWorker(timeoutMs);
    return [...problems, ...(await this.main.closeAndReport())];
  }

  private async closeWorker(timeoutMs: number): Promise<string[]> {
    if (this.dead) return this.closeRequested ? [] : [this.dead.message];
    this.closeRequested = true;
    this.flush();
    const closed = new Promise<string[] | undefined>((resolve) => (this.closedWaiter = resolve));
    this.post({ kind: "close" });
    const problems = (await withTimeout(closed, timeoutMs)) ?? ["the slashing-protection worker stopped or hung before it had closed the database"];
    this.dead ??= new SlashingDbUnavailableError("DB_CLOSED", "the slashing database is closed");
    this.settleAll(this.dead); // e.g. a health probe sent while closing: answered DOWN, never left hanging
    if ((await withTimeout(this.exited, EXIT_TIMEOUT_MS)) === undefined) {
      problems.push("the slashing-protection worker did not exit after closing; terminated");
      await this.worker.terminate();
    }
    return problems;
  }

  private enqueue(check: NumberedCheck): Promise<CheckOutcome> {
    if (this.dead) return Promise.reject(this.dead);
    check.id = this.nextId++;
    return new Promise<CheckOutcome>((resolve, reject) => {
      this.pending.set(check.id, { resolve, reject });
      this.outbox.push(check);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.outbox.length === 0) return;
    const checks = this.outbox;
    this.outbox = [];
    const buffer = encodeChecks(checks);
    this.worker.postMessage({ kind: "checks", checks: buffer } satisfies ToDbWorker, [buffer]);
  }

  private post(message: ToDbWorker): void {
    this.worker.postMessage(message);
  }

  private onMessage(m: FromDbWorker): void {
    switch (m.kind) {
      case "replies":
        for (const s of m.commits) this.opts.onCommit?.(s);
        if (m.commits.length > 0) {
          this.lastCommitAt = Date.now();
          this.noteHealth({ up: true });
        }
        // A failed commit in the same message wins: fail closed.
        for (const r of m.failed) {
          if (r.error?.kind !== "unavailable") continue;
          const value = healthOf(errorFromWire(r.error));
          this.lastCheckFailure = { at: Date.now(), value };
          this.noteHealth(value);
        }
        for (const line of m.ok.split("\n")) {
          if (line === "") continue;
          const space = line.indexOf(" ");
          const id = Number(line.slice(0, space));
          const p = this.pending.get(id);
          if (!p) continue;
          this.pending.delete(id);
          p.resolve(line.charCodeAt(space + 1) === 114 /* r */ ? "recorded" : "repeat");
        }
        for (const r of m.failed) {
          const p = this.pending.get(r.id);
          if (!p) continue;
          this.pending.delete(r.id);
          p.reject(r.error ? errorFromWire(r.error) : new SlashingDbUnavailableError("DB_WRITE_FAILED", "malformed reply from the slashing-protection worker"));
        }
        return;
      case "pinned": {
        const p = this.pins.get(m.requestId);
        this.pins.delete(m.requestId);
        if (m.error) p?.reject(errorFromWire(m.error));
        else p?.resolve();
        return;
      }
      case "probed": {
        const done = this.probes.get(m.requestId);
        this.probes.delete(m.requestId);
        done?.(m.error ? errorFromWire(m.error) : undefined);
        return;
      }
      case "closed":
        this.closedWaiter?.(m.problems);
        return;
      case "ready":
        return;
    }
  }

  /** Worker gone: nothing it had not answered was recorded as far as we know, so nobody signs. */
  private fail(err: Error): void {
    if (this.dead) return;
    // After close() asked it to, the worker's thread ending is the close, not a failure: its exit can be seen
    // before close() has resumed from the "closed" reply, and later checks must then still say DB_CLOSED.
    this.dead = this.closeRequested
      ? new SlashingDbUnavailableError("DB_CLOSED", "the slashing database is closed")
      : new SlashingDbUnavailableError("DB_WRITE_FAILED", `slashing-protection worker stopped: ${err.message}`, "WORKER_STOPPED");
    this.settleAll(this.dead);
    this.closedWaiter?.();
  }

  private settleAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const p of this.pins.values()) p.reject(err);
    this.pins.clear();
    for (const done of this.probes.values()) done(err);
    this.probes.clear();
    this.outbox = [];
  }
}

function startWorker(file: string): Promise<Worker> {
  const worker = new Worker(workerScriptUrl(import.meta.url, "worker.js"), { workerData: { file } });
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new SlashingDbUnavailableError("DB_OPEN_FAILED", `slashing-protection worker failed to start: ${err.message}`));
    worker.once("error", onError);
    worker.once("message", (m: FromDbWorker) => {
      worker.off("error", onError);
      if (m.kind !== "ready") return reject(new SlashingDbUnavailableError("DB_OPEN_FAILED", "slashing-protection worker sent no ready message"));
      resolve(worker);
    });
  });
}

/**
 * What the database would refuse as input, refused before it is packed into a fixed-size record (which would
 * otherwise truncate a long key or wrap a huge slot): the same error class and message the database gives.
 */
function checkInput(check: SlashableCheck): void {
  if (!(check.pubkey instanceof Uint8Array) || check.pubkey.byteLength !== 48) throw lengthError("pubkey", 48, check.pubkey);
  if (!(check.signingRoot instanceof Uint8Array) || check.signingRoot.byteLength !== 32) throw lengthError("signingRoot", 32, check.signingRoot);
  if (check.kind === "block") parseUint64(check.slot, "slot");
  else {
    parseUint64(check.sourceEpoch, "sourceEpoch");
    parseUint64(check.targetEpoch, "targetEpoch");
  }
}

function lengthError(field: string, length: number, value: unknown): SlashingDbInputError {
  const got = value instanceof Uint8Array ? `${value.byteLength}` : typeof value;
  return new SlashingDbInputError(field, `expected ${length} bytes, got ${got}`);
}
