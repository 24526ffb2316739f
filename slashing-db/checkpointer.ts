import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { workerScriptUrl } from "../config/index.js";

/** SQLite's default: checkpoint once the WAL holds about this many pages. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

/**
 * Moves WAL checkpointing off the signing path: the main connection stops checkpointing on commit and a
 * worker thread does it every `intervalMs`. If the worker dies, the main connection takes checkpointing
 * back, so the WAL can never grow without bound.
 */
export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private stopping = false;

  constructor(
    db: Database.Database,
    file: string,
    intervalMs = 100,
  ) {
    this.worker = new Worker(workerScriptUrl(import.meta.url, "checkpoint-worker.js"), { workerData: { file, intervalMs } });
    this.worker.unref(); // never keeps the process alive on its own
    db.pragma("wal_autocheckpoint = 0");
    const takeBack = () => {
      if (!this.stopping && db.open) db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
    };
    this.worker.on("error", takeBack);
    this.worker.on("exit", takeBack);
  }

  /** Stops the worker after a final checkpoint. */
  async stop(): Promise<void> {
    this.stopping = true;
    const stopped = new Promise<void>((resolve) => {
      this.worker.once("message", () => resolve());
      this.worker.once("exit", () => resolve());
    });
    this.worker.postMessage("stop");
    await stopped;
    await this.worker.terminate();
  }
}
