import type pg from "pg";
import type { BatchStats } from "../group-commit.js";
import { SlashingDbUnavailableError } from "../errors.js";
import { classifyPgFailure } from "./failures.js";
import { BEGIN_READ_COMMITTED } from "./isolation.js";

interface Job<J, R> {
  job: J;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit on PostgreSQL (as ../group-commit.ts on SQLite): one batch transaction is in flight at a time,
 * and every check submitted meanwhile joins the next one. `run` does the batch's work inside the transaction;
 * each caller is answered only after COMMIT has returned, which with synchronous_commit=on means the commit
 * record is flushed to the server's disk. If anything fails (a query, the COMMIT, the connection) the
 * transaction is rolled back (or dies with its connection) and every job of the batch is rejected: nobody signs.
 */
export class PgGroupCommitter<J, R> {
  private pending: Job<J, R>[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  /** Why the latest batch failed; undefined once one succeeds. */
  lastFailure: SlashingDbUnavailableError | undefined;
  /** When it failed (performance.now()). */
  lastFailureAt = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly maxBatch: number,
    private readonly run: (client: pg.PoolClient, jobs: J[]) => Promise<R[]>,
    private readonly onBatch?: (stats: BatchStats) => void,
  ) {}

  get queueDepth(): number {
    return this.pending.length;
  }

  submit(job: J): Promise<R> {
    if (this.closed) return Promise.reject(new SlashingDbUnavailableError("DB_CLOSED", "the slashing database is closed"));
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      // setImmediate: what the current event-loop turn submits joins this batch.
      this.running ??= new Promise<void>((done) => setImmediate(() => void this.drain().finally(done)));
    });
  }

  /** Commits what is queued, then refuses new work. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.commitBatch(this.pending.splice(0, this.maxBatch));
    } finally {
      this.running = null;
    }
  }

  private async commitBatch(batch: Job<J, R>[]): Promise<void> {
    const started = performance.now();
    let workDone = started;
    let client: pg.PoolClient | undefined;
    let results: R[];
    try {
      client = await this.pool.connect();
      // Belt and braces: the open refused a server or role that turns it off; no session setting may either.
      // One round trip for both (a simple query may hold several statements).
      await client.query(`${BEGIN_READ_COMMITTED}; SET LOCAL synchronous_commit TO on`);
      results = await this.run(
        client,
        batch.map((j) => j.job),
      );
      workDone = performance.now();
      await client.query("COMMIT");
    } catch (err) {
      // A failed COMMIT may or may not have reached the disk: either way nobody signs, and a record without a
      // signature is safe. The connection is dropped, not reused: its state is unknown.
      await client?.query("ROLLBACK").catch(() => undefined);
      client?.release(true);
      const failure = new SlashingDbUnavailableError(
        "DB_WRITE_FAILED",
        `slashing database write failed, nothing recorded: ${(err as Error).message}`,
        classifyPgFailure(err),
      );
      this.lastFailure = failure;
      this.lastFailureAt = performance.now();
      for (const job of batch) job.reject(failure);
      return;
    }
    client.release();
    this.lastFailure = undefined;
    const finished = performance.now();
    this.onBatch?.({ size: batch.length, durationMs: finished - started, commitMs: finished - workDone });
    for (const [i, job] of batch.entries()) job.resolve(results[i]!);
  }
}
