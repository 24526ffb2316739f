import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { workerScriptUrl } from "../common/index.js";

/** SQLite's default: checkpoint once the WAL holds about this many pages. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;
/** How long stop() waits for the worker's last checkpoint and exit before it gives up on it. */
const DEFAULT_STOP_TIMEOUT_MS = 5_000;

/** The worker's answer to "stop"; `error` when its last checkpoint (or the ones before) failed. */
export interface CheckpointerStopped {
  kind: "stopped";
  error?: string;
}

/**
 * Moves WAL checkpointing off the signing path: the main connection stops checkpointing on commit and a
 * worker thread does it every `intervalMs`. If the worker dies, the main connection takes checkpointing
 * back, so the WAL can never grow without bound.
 */
export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private stopping: Promise<string | undefined> | undefined;
  private readonly exited: Promise<void>;

  constructor(db: Database.Database, file: string, intervalMs = 100) {
    this.worker = new Worker(workerScriptUrl(import.meta.url, "checkpoint-worker.js"), { workerData: { file, intervalMs } });
    this.worker.unref(); // never keeps the process alive on its own
    this.exited = new Promise((resolve) => this.worker.once("exit", () => resolve()));
    db.pragma("wal_autocheckpoint = 0");
    const takeBack = () => {
      if (!this.stopping && db.open) db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
    };
    this.worker.on("error", takeBack);
    this.worker.on("exit", takeBack);
  }

  /**
   * Asks the worker for a last checkpoint, then waits (at most `timeoutMs`) until its thread has ended by itself.
   * Resolves with what went wrong, if anything; terminate() is the last resort for a worker that never answers.
   */
  stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<string | undefined> {
    this.stopping ??= (async () => {
      let error: string | undefined = "checkpoint worker had stopped before its final checkpoint";
      const answered = new Promise<void>((resolve) => {
        this.worker.once("message", (m: CheckpointerStopped) => {
          error = m.error;
          resolve();
        });
        this.worker.once("error", (err) => {
          error = `checkpoint worker failed: ${err.message}`;
          resolve();
        });
        void this.exited.then(() => resolve());
      });
      this.worker.postMessage("stop");
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)));
      const late = await Promise.race([answered.then(() => this.exited).then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        await this.worker.terminate();
        return `checkpoint worker did not stop within ${timeoutMs} ms`;
      }
      return error;
    })();
    return this.stopping;
  }
}
