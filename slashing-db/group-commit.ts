import type Database from "better-sqlite3";
import { classifyDbFailure, SlashingDbUnavailableError, type DbFailureCause } from "./errors.js";

export interface BatchStats {
  size: number;
  /** Whole transaction: checks, inserts and the durable commit. */
  durationMs: number;
  /** Of which the commit itself (WAL write and fsync). */
  commitMs: number;
}

interface Job<T> {
  work: () => T;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: every check submitted while the event loop is busy joins one write transaction, and each
 * caller is answered only after that transaction has committed (and so, with synchronous=FULL, is on disk).
 * One fsync then serves a whole batch instead of one signature.
 *
 * The jobs of a batch run in submission order inside the transaction, so a later job sees what an earlier
 * one recorded: of N conflicting requests exactly one is recorded. If the transaction itself fails
 * (disk full, lock timeout), it rolls back and every job of the batch is rejected: nobody signs.
 */
export class GroupCommitter {
  private pending: Job<unknown>[] = [];
  private scheduled = false;
  private closed = false;
  /** Why the latest commit attempt failed; undefined once one succeeds (for health and shutdown reports). */
  lastFailure: SlashingDbUnavailableError | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly maxBatch: number,
    private readonly onBatch?: (stats: BatchStats) => void,
    /** Runs before each batch; throwing fails the batch (e.g. the database file is gone). */
    private readonly beforeBatch?: () => void,
    /** Names why a batch failed (default: from the SQLite error code). */
    private readonly diagnose: (err: unknown) => DbFailureCause = classifyDbFailure,
  ) {}

  get queueDepth(): number {
    return this.pending.length;
  }

  submit<T>(work: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new SlashingDbUnavailableError("DB_CLOSED", "the slashing database is closed"));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve, reject } as Job<unknown>);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Commits everything still queued, then refuses new work. Used on shutdown so no caller is left hanging.
   * Returns how many queued checks failed (their callers were rejected: nobody signs them).
   */
  drainAndClose(): number {
    let failed = 0;
    while (this.pending.length > 0) {
      const size = Math.min(this.pending.length, this.maxBatch);
      if (!this.commitBatch()) failed += size;
    }
    this.closed = true;
    return failed;
  }

  private flush(): void {
    this.scheduled = false;
    this.commitBatch();
    if (this.pending.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private commitBatch(): boolean {
    const batch = this.pending.splice(0, this.maxBatch);
    if (batch.length === 0) return true;
    const started = performance.now();
    let workDone = started;
    const results: unknown[] = [];
    try {
      this.beforeBatch?.();
      this.db
        .transaction(() => {
          for (const job of batch) results.push(job.work());
          workDone = performance.now();
        })
        .immediate();
    } catch (err) {
      const failure = new SlashingDbUnavailableError(
        "DB_WRITE_FAILED",
        `slashing database write failed, nothing recorded: ${(err as Error).message}`,
        this.diagnose(err),
      );
      this.lastFailure = failure;
      for (const job of batch) job.reject(failure);
      return false;
    }
    this.lastFailure = undefined;
    const finished = performance.now();
    this.onBatch?.({ size: batch.length, durationMs: finished - started, commitMs: finished - workDone });
    for (const [i, job] of batch.entries()) job.resolve(results[i]);
    return true;
  }
}
