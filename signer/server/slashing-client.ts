/**
 * The main thread's side of the slashing-protection worker: checkAndRecord* with the same contract as
 * SlashingDb (resolves only once recorded durably; rejects with the same error classes), batched into one
 * message per event-loop turn. If the worker dies every pending and later check fails closed (503).
 */
import { Worker } from "node:worker_threads";
import { workerScriptUrl } from "../../config/index.js";
import {
  SlashingDbInputError,
  SlashingDbUnavailableError,
  SlashingProtectionError,
  type BatchStats,
  type CheckOutcome,
  type DbFailureCause,
  type RefusalCode,
} from "../../slashing-db/index.js";
import { encodeChecks, type Check, type FromDbWorker, type ToDbWorker, type WireError } from "./slashing-protocol.js";

interface Pending {
  resolve: (outcome: CheckOutcome) => void;
  reject: (err: Error) => void;
}

function unwire(e: WireError): Error {
  switch (e.kind) {
    case "refused":
      return new SlashingProtectionError(e.code as RefusalCode, e.message);
    case "input":
      return new SlashingDbInputError(e.field, e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message);
    default:
      return new SlashingDbUnavailableError(e.code === "DB_CLOSED" ? "DB_CLOSED" : "DB_WRITE_FAILED", e.message, e.failure);
  }
}

/** Whether a check could be recorded now, and if not why. */
export interface DbWriteHealth {
  up: boolean;
  cause?: DbFailureCause;
  message?: string;
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

function healthOf(err: Error): DbWriteHealth {
  return { up: false, cause: err instanceof SlashingDbUnavailableError ? err.failure : "UNKNOWN", message: err.message };
}

export class SlashingWorkerClient {
  private readonly pending = new Map<number, Pending>();
  private readonly pins = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private outbox: Check[] = [];
  private scheduled = false;
  private nextId = 1;
  private dead: Error | undefined;
  private closedWaiter: ((problems?: string[]) => void) | undefined;
  private closeRequested = false;
  private readonly probes = new Map<number, (err?: Error) => void>();
  private writeHealthNow: { at: number; value: DbWriteHealth } | undefined;
  private lastCheckFailure: { at: number; value: DbWriteHealth } | undefined;
  private lastCommitAt = 0;
  private probing: Promise<DbWriteHealth> | undefined;
  private readonly exited: Promise<true>;

  private constructor(
    private readonly worker: Worker,
    private readonly onCommit: (s: BatchStats) => void,
  ) {
    worker.on("message", (m: FromDbWorker) => this.onMessage(m));
    worker.on("error", (err) => this.fail(err));
    worker.on("exit", (code) => this.fail(new Error(`slashing-protection worker exited with code ${code}`)));
    this.exited = new Promise((resolve) => worker.once("exit", () => resolve(true)));
  }

  /** Starts the worker on `file` (already created, migrated and pinned by the main thread's connection). */
  static start(file: string, onCommit: (s: BatchStats) => void): Promise<SlashingWorkerClient> {
    const worker = new Worker(workerScriptUrl(import.meta.url, "slashing-worker.js"), { workerData: { file } });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new SlashingDbUnavailableError("DB_OPEN_FAILED", `slashing-protection worker failed to start: ${err.message}`));
      worker.once("error", onError);
      worker.once("message", (m: FromDbWorker) => {
        worker.off("error", onError);
        if (m.kind !== "ready") return reject(new SlashingDbUnavailableError("DB_OPEN_FAILED", "slashing-protection worker sent no ready message"));
        resolve(new SlashingWorkerClient(worker, onCommit));
      });
    });
  }

  /** Checks sent and not yet answered. */
  get queueDepth(): number {
    return this.pending.size;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  checkAndRecordBlock(pubkey: string, slot: bigint, root: string): Promise<CheckOutcome> {
    return this.enqueue({ id: 0, pubkey, block: true, slot, root });
  }

  checkAndRecordAttestation(pubkey: string, source: bigint, target: bigint, root: string): Promise<CheckOutcome> {
    return this.enqueue({ id: 0, pubkey, block: false, source, target, root });
  }

  /**
   * Could a check be recorded now? A check that failed for the database's sake in the last 5 s with no commit
   * since says no; otherwise the latest commit's (or probe's) result while under a second old; otherwise one
   * write probe through the worker's group commit (concurrent callers share it).
   */
  writeHealth(): Promise<DbWriteHealth> {
    if (this.dead) return Promise.resolve(healthOf(this.dead));
    const failed = this.lastCheckFailure;
    if (failed && failed.at >= this.lastCommitAt && Date.now() - failed.at < FAILURE_HOLD_MS) return Promise.resolve(failed.value);
    const known = this.writeHealthNow;
    if (known && Date.now() - known.at < HEALTH_MAX_AGE_MS) return Promise.resolve(known.value);
    this.probing ??= new Promise<DbWriteHealth>((resolve) => {
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

  private noteHealth(value: DbWriteHealth): void {
    this.writeHealthNow = { at: Date.now(), value };
  }

  /** Tells the worker's connection the network is pinned (the main connection pinned it first, durably). */
  pin(root: string): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const requestId = this.nextId++;
    this.flush(); // checks queued before the pin keep their order
    return new Promise((resolve, reject) => {
      this.pins.set(requestId, { resolve, reject });
      this.post({ kind: "pin", requestId, root });
    });
  }

  /**
   * Commits everything queued, then lets the worker close its connection and end its thread by itself (bounded:
   * terminate() only if it does not). Resolves with what went wrong while closing, [] when closed cleanly.
   */
  async close(timeoutMs = CLOSE_TIMEOUT_MS): Promise<string[]> {
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

  private enqueue(check: Check): Promise<CheckOutcome> {
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
    this.post({ kind: "checks", checks: encodeChecks(checks) });
  }

  private post(message: ToDbWorker): void {
    this.worker.postMessage(message);
  }

  private onMessage(m: FromDbWorker): void {
    switch (m.kind) {
      case "replies":
        for (const s of m.commits) this.onCommit(s);
        if (m.commits.length > 0) {
          this.lastCommitAt = Date.now();
          this.noteHealth({ up: true });
        }
        // A failed commit in the same message wins: fail closed.
        for (const r of m.failed) {
          if (r.error?.kind !== "unavailable") continue;
          const value = healthOf(unwire(r.error));
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
          p.reject(r.error ? unwire(r.error) : new SlashingDbUnavailableError("DB_WRITE_FAILED", "malformed reply from the slashing-protection worker"));
        }
        return;
      case "pinned": {
        const p = this.pins.get(m.requestId);
        this.pins.delete(m.requestId);
        if (m.error) p?.reject(unwire(m.error));
        else p?.resolve();
        return;
      }
      case "probed": {
        const done = this.probes.get(m.requestId);
        this.probes.delete(m.requestId);
        done?.(m.error ? unwire(m.error) : undefined);
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
    this.dead = new SlashingDbUnavailableError("DB_WRITE_FAILED", `slashing-protection worker stopped: ${err.message}`, "WORKER_STOPPED");
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
