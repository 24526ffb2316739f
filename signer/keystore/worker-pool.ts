import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker, type TransferListItem } from "node:worker_threads";
import { workerScriptUrl } from "../../common/index.js";

/** URL of a compiled worker module next to this file (dist/ when running from the sources); it must exist. */
export function workerUrl(name: string): URL {
  const url = workerScriptUrl(import.meta.url, `${name}.js`);
  if (fs.existsSync(fileURLToPath(url))) return url;
  throw new Error(`worker ${name}.js not found; run \`npm run build\` first`);
}

interface Job {
  message: unknown;
  transfer: TransferListItem[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

/**
 * A fixed set of worker threads, one job each at a time. Replies are `{ ok: true, value }` or
 * `{ ok: false, error }` (a message safe to show). A worker that dies fails its job and is replaced.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(
    private readonly url: URL,
    readonly size: number,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(this.url), job: undefined };
    slot.worker.on("message", (reply: { ok: boolean; value?: unknown; error?: string }) => {
      const job = slot.job;
      slot.job = undefined;
      if (job) {
        if (reply.ok) job.resolve(reply.value);
        else job.reject(new Error(reply.error ?? "worker failed"));
      }
      this.pump();
    });
    slot.worker.on("error", (err) => this.failSlot(slot, err));
    slot.worker.on("exit", (code) => {
      if (!this.closed) this.failSlot(slot, new Error(`worker exited with code ${code}`));
    });
    return slot;
  }

  private failSlot(slot: Slot, err: Error): void {
    const job = slot.job;
    slot.job = undefined;
    job?.reject(err);
    const i = this.slots.indexOf(slot);
    if (i >= 0 && !this.closed) {
      void slot.worker.terminate();
      this.slots[i] = this.spawn();
      this.pump();
    }
  }

  run<T>(message: unknown, transfer: TransferListItem[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new Error("worker pool closed"));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ message, transfer, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.job) continue;
      const job = this.queue.shift();
      if (!job) return;
      slot.job = job;
      slot.worker.postMessage(job.message, job.transfer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error("worker pool closed"));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
