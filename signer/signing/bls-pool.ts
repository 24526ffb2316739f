/**
 * A pool of BLS signing worker threads (one per core by default). Every worker holds every key, so any worker
 * can sign any request; requests arriving in the same event-loop turn are batched into one postMessage per
 * worker. The main thread never holds a secret key after `start`/`addKeys` return: keys are copied into
 * transferred buffers and the caller's arrays are zeroed.
 */
import fs from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import bls from "@chainsafe/bls";
import { normalizeHex, VigilError, workerScriptUrl } from "../../common/index.js";
import { assertBlstNative, SECRET_KEY_BYTES, SIGNATURE_BYTES, SIGNING_ROOT_BYTES, type FromWorker, type ToWorker, type WorkerInit } from "./bls-protocol.js";
import type { PresetName } from "./consensus.js";
import { ClientGoneError, QueueFullError, SigningError, UnknownPubkeyError } from "./errors.js";

export interface BlsPoolOptions {
  /** Pinned in every worker (the same preset as the process). */
  preset: PresetName;
  /** Worker threads; default: one per core (os.availableParallelism()). */
  threads?: number;
  /** sign() calls accepted and not yet answered; beyond it sign() rejects with QueueFullError. */
  maxQueueDepth?: number;
  /** Largest batch one postMessage carries. */
  maxBatchSize?: number;
  /** Compiled worker script; default: bls-worker.js next to this file, or in dist/ when running from source. */
  workerUrl?: URL;
  /** Nice value for the worker threads (e.g. 5: the main thread's HTTP work goes first on a saturated CPU). */
  niceness?: number;
  /** Called when a worker dies unexpectedly (its keys cannot be restored: the pool runs on with the others). */
  onWorkerFailure?: (error: Error) => void;
}

interface PendingSign {
  keyId: number;
  root: Uint8Array;
  /** True once nobody waits for this signature (the client left): it is dropped instead of signed. */
  cancelled: (() => boolean) | undefined;
  resolve: (signature: Uint8Array) => void;
  reject: (error: Error) => void;
}

interface ControlRequest {
  resolve: (message: FromWorker) => void;
  reject: (error: Error) => void;
}

interface WorkerSlot {
  readonly worker: Worker;
  alive: boolean;
  /** Signatures sent to this worker and not answered yet: the load-balancing measure. */
  inFlight: number;
  readonly batches: Map<number, PendingSign[]>;
  readonly controls: Map<number, ControlRequest>;
}

/**
 * The compiled worker script. Workers cannot run TypeScript, so when this module runs from source (vitest)
 * it points at the tsc output in dist/: run `npx tsc -p tsconfig.json` first (the npm test script does).
 */
/**
 * Work a worker may hold unanswered: enough to keep it busy while its replies wait for a busy event loop (an
 * overloaded loop turn can take tens of ms), at least 4 batches; the rest of the backlog waits on this thread, where
 * a request can still be dropped.
 */
const WORKER_BUFFER_MS = 50;
const MIN_BATCHES_PER_WORKER = 4;

export function defaultWorkerUrl(): URL {
  return workerScriptUrl(import.meta.url, "bls-worker.js");
}

export class BlsPool {
  readonly maxQueueDepth: number;
  /** Counters for metrics: batches posted to workers and signatures they carried. */
  readonly stats = { batches: 0, signatures: 0 };
  private readonly maxBatchSize: number;
  private readonly slots: WorkerSlot[];
  private readonly keyIdOfPubkey = new Map<string, number>();
  private readonly onWorkerFailure: ((error: Error) => void) | undefined;
  private pending: PendingSign[] = [];
  /** EWMA of one signature's time in a worker (ms), from the workers' own timings. */
  private signatureMs: number | undefined;
  private flushScheduled = false;
  private depth = 0;
  private nextKeyId = 1;
  private nextMessageId = 1;
  private closed = false;
  /** close() waiting for accepted requests to be answered. */
  private readonly idleWaiters: (() => void)[] = [];

  private constructor(slots: WorkerSlot[], options: BlsPoolOptions) {
    this.slots = slots;
    this.maxQueueDepth = options.maxQueueDepth ?? 10_000;
    this.maxBatchSize = options.maxBatchSize ?? 256;
    this.onWorkerFailure = options.onWorkerFailure;
  }

  /** Starts the workers and loads `secretKeys` (32-byte big-endian scalars) into each; zeroes `secretKeys`. */
  static async start(secretKeys: Uint8Array[], options: BlsPoolOptions): Promise<BlsPool> {
    try {
      assertBlstNative(bls.implementation, "the main thread");
      const threads = options.threads ?? os.availableParallelism();
      if (!Number.isInteger(threads) || threads < 1) throw new SigningError("INVALID_CONFIG", `threads must be >= 1, got ${threads}`);
      const url = options.workerUrl ?? defaultWorkerUrl();
      if (url.protocol === "file:" && !fs.existsSync(fileURLToPath(url))) {
        throw new SigningError("BLS_WORKER_MISSING", `BLS worker script ${fileURLToPath(url)} not found: run \`npx tsc -p tsconfig.json\` first`);
      }
      const started = await Promise.allSettled(Array.from({ length: threads }, () => startWorker(url, options.preset, options.niceness)));
      const slots = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      const failed = started.find((r) => r.status === "rejected");
      if (failed) {
        await Promise.all(slots.map((slot) => slot.worker.terminate()));
        throw failed.reason;
      }
      const pool = new BlsPool(slots, options);
      for (const slot of slots) pool.listen(slot);
      try {
        await pool.addKeys(secretKeys);
      } catch (e) {
        await pool.close();
        throw e;
      }
      return pool;
    } finally {
      for (const sk of secretKeys) sk.fill(0);
    }
  }

  /** Loaded public keys, 0x-prefixed lower-case hex. */
  get publicKeys(): string[] {
    return [...this.keyIdOfPubkey.keys()];
  }

  hasKey(pubkey: string): boolean {
    return this.keyIdOfPubkey.has(normalizeHex(pubkey));
  }

  /**
   * Signatures per millisecond the live workers can make, from their measured signing time; undefined before the
   * first batch. An upper bound on the whole sign path's rate.
   */
  get capacityPerMs(): number | undefined {
    const alive = this.aliveThreads;
    return this.signatureMs === undefined || alive === 0 ? undefined : alive / this.signatureMs;
  }

  /** sign() calls accepted and not yet answered (queued + being signed). */
  get queueDepth(): number {
    return this.depth;
  }

  get aliveThreads(): number {
    return this.slots.filter((s) => s.alive).length;
  }

  /**
   * Signs a 32-byte signing root with the key of `pubkey`; resolves to the 96-byte compressed signature.
   * Rejects with UnknownPubkeyError, QueueFullError (retry later) or a VigilError if the pool is closed/broken.
   * `cancelled` is asked when the request leaves the queue for a worker: if it answers true the request is dropped
   * unsigned (ClientGoneError).
   */
  sign(pubkey: string, signingRoot: Uint8Array, cancelled?: () => boolean): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new SigningError("POOL_CLOSED", "the BLS signing pool is closed"));
    const keyId = this.keyIdOfPubkey.get(normalizeHex(pubkey));
    if (keyId === undefined) return Promise.reject(new UnknownPubkeyError(pubkey));
    if (signingRoot.length !== SIGNING_ROOT_BYTES) {
      return Promise.reject(new SigningError("INVALID_REQUEST", `signing root must be ${SIGNING_ROOT_BYTES} bytes`));
    }
    if (this.depth >= this.maxQueueDepth) return Promise.reject(new QueueFullError(this.maxQueueDepth));
    this.depth++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const done = () => {
        if (--this.depth === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      };
      this.pending.push({
        keyId,
        root: signingRoot.slice(), // the caller may reuse its buffer before the batch goes out
        cancelled,
        resolve: (sig) => {
          done();
          resolve(sig);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      this.scheduleFlush();
    });
  }

  /** Loads more keys into every worker; zeroes `secretKeys`. Resolves to their public keys (duplicates kept once). */
  async addKeys(secretKeys: Uint8Array[]): Promise<string[]> {
    try {
      if (this.closed) throw new SigningError("POOL_CLOSED", "the BLS signing pool is closed");
      if (secretKeys.length === 0) return [];
      for (const sk of secretKeys) {
        if (sk.length !== SECRET_KEY_BYTES) throw new SigningError("INVALID_SECRET_KEY", `a secret key must be ${SECRET_KEY_BYTES} bytes`);
      }
      const firstKeyId = this.nextKeyId;
      this.nextKeyId += secretKeys.length;
      const live = this.liveSlots();
      const replies = await Promise.allSettled(
        live.map((slot) => {
          // One copy per worker, transferred (detached here) so no copy stays on this thread's heap.
          const buffer = new ArrayBuffer(secretKeys.length * SECRET_KEY_BYTES);
          const view = new Uint8Array(buffer);
          for (const [i, sk] of secretKeys.entries()) view.set(sk, i * SECRET_KEY_BYTES);
          return this.control(slot, { kind: "addKeys", requestId: 0, firstKeyId, keys: buffer }, [buffer]);
        }),
      );
      const ids = secretKeys.map((_, i) => firstKeyId + i);
      const failure = replies.find((r) => r.status === "rejected");
      if (failure) {
        await this.removeKeyIds(ids);
        if (failure.reason instanceof VigilError) throw failure.reason; // e.g. BLS_WORKER_DIED
        throw new SigningError("INVALID_SECRET_KEY", `could not load secret keys: ${(failure.reason as Error).message}`);
      }
      const pubkeyLists = replies.map((r) => (r.status === "fulfilled" && r.value.kind === "keysAdded" ? r.value.pubkeys : []));
      const pubkeys = pubkeyLists[0] ?? [];
      if (pubkeyLists.some((list) => list.join() !== pubkeys.join())) {
        await this.removeKeyIds(ids);
        throw new SigningError("BLS_WORKER_DISAGREE", "BLS workers derived different public keys from the same secret keys");
      }
      const duplicates: number[] = [];
      pubkeys.forEach((pubkey, i) => {
        if (this.keyIdOfPubkey.has(pubkey)) duplicates.push(firstKeyId + i);
        else this.keyIdOfPubkey.set(pubkey, firstKeyId + i);
      });
      if (duplicates.length > 0) await this.removeKeyIds(duplicates);
      return pubkeys;
    } finally {
      for (const sk of secretKeys) sk.fill(0);
    }
  }

  /** Unloads keys from every worker. Requests already accepted for them are still signed. Unknown keys are ignored. */
  async removeKeys(pubkeys: string[]): Promise<void> {
    this.flush(true); // requests accepted before the removal go out first; workers handle messages in order
    const ids: number[] = [];
    for (const pubkey of pubkeys) {
      const normalized = normalizeHex(pubkey);
      const id = this.keyIdOfPubkey.get(normalized);
      if (id === undefined) continue;
      this.keyIdOfPubkey.delete(normalized);
      ids.push(id);
    }
    if (ids.length > 0) await this.removeKeyIds(ids);
  }

  /** Stops accepting requests, lets accepted ones finish, then terminates the workers (their keys die with them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush(true);
    if (this.depth > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await Promise.all(
      this.slots.map(async (slot) => {
        slot.alive = false;
        await slot.worker.terminate();
      }),
    );
    this.keyIdOfPubkey.clear();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate (not a microtask): every request parsed in this I/O phase joins the same batch.
    setImmediate(() => this.flush());
  }

  /**
   * Sends queued requests to the workers, at most about WORKER_BUFFER_MS of signing ahead of each (all of them when
   * `all`): the backlog stays here, where a request whose client has gone can still be dropped unsigned, instead
   * of in the workers' message queues, where it could not.
   */
  private flush(all = false): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const live = this.slots.filter((s) => s.alive); // never throw here: this runs from setImmediate
    if (live.length === 0) {
      const error = new SigningError("BLS_POOL_DOWN", "no BLS worker thread is running");
      for (const item of this.pending.splice(0)) item.reject(error);
      return;
    }
    const work = this.pending;
    let next = 0;
    const chunkSize = Math.max(1, Math.min(this.maxBatchSize, Math.ceil(work.length / live.length)));
    const perWorker = Math.max(MIN_BATCHES_PER_WORKER * this.maxBatchSize, this.signatureMs ? Math.ceil(WORKER_BUFFER_MS / this.signatureMs) : 0);
    while (next < work.length) {
      const slot = live.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      if (!all && slot.inFlight >= perWorker) break;
      const batch: PendingSign[] = [];
      while (next < work.length && batch.length < chunkSize) {
        const item = work[next++]!;
        if (item.cancelled?.()) item.reject(new ClientGoneError());
        else batch.push(item);
      }
      if (batch.length > 0) this.sendBatch(slot, batch);
    }
    this.pending = next === work.length ? [] : work.slice(next);
  }

  private sendBatch(slot: WorkerSlot, batch: PendingSign[]): void {
    const batchId = this.nextMessageId++;
    const keyIds = new Uint32Array(batch.length);
    const roots = new ArrayBuffer(batch.length * SIGNING_ROOT_BYTES);
    const rootsView = new Uint8Array(roots);
    batch.forEach((item, i) => {
      keyIds[i] = item.keyId;
      rootsView.set(item.root, i * SIGNING_ROOT_BYTES);
    });
    slot.batches.set(batchId, batch);
    slot.inFlight += batch.length;
    this.stats.batches++;
    this.stats.signatures += batch.length;
    const message: ToWorker = { kind: "sign", batchId, keyIds, roots };
    slot.worker.postMessage(message, [roots, keyIds.buffer]);
  }

  private listen(slot: WorkerSlot): void {
    slot.worker.on("message", (message: FromWorker) => this.onMessage(slot, message));
    slot.worker.on("error", (error: Error) => this.onWorkerDeath(slot, error));
    slot.worker.on("exit", (code: number) => this.onWorkerDeath(slot, new Error(`BLS worker exited with code ${code}`)));
  }

  private onMessage(slot: WorkerSlot, message: FromWorker): void {
    switch (message.kind) {
      case "signed": {
        const batch = slot.batches.get(message.batchId);
        if (!batch) return;
        slot.batches.delete(message.batchId);
        slot.inFlight -= batch.length;
        const perSignature = message.elapsedMs / batch.length;
        this.signatureMs = this.signatureMs === undefined ? perSignature : this.signatureMs + 0.05 * (perSignature - this.signatureMs);
        const signatures = new Uint8Array(message.signatures);
        batch.forEach((item, i) => {
          const failure = message.failed[i];
          if (failure) item.reject(new SigningError("SIGN_FAILED", `BLS worker could not sign: ${failure}`));
          else item.resolve(signatures.slice(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES));
        });
        if (this.pending.length > 0) this.flush(this.closed);
        return;
      }
      case "keysAdded":
      case "keysRemoved":
      case "failed": {
        const request = slot.controls.get(message.requestId);
        if (!request) return;
        slot.controls.delete(message.requestId);
        if (message.kind === "failed") request.reject(new Error(message.message));
        else request.resolve(message);
        return;
      }
      case "ready":
        return;
    }
  }

  private onWorkerDeath(slot: WorkerSlot, error: Error): void {
    if (!slot.alive) return;
    slot.alive = false;
    if (this.closed) return;
    const failure = new SigningError("BLS_WORKER_DIED", `a BLS worker thread stopped: ${error.message}`);
    for (const batch of slot.batches.values()) for (const item of batch) item.reject(failure);
    slot.batches.clear();
    slot.inFlight = 0;
    for (const request of slot.controls.values()) request.reject(failure);
    slot.controls.clear();
    this.onWorkerFailure?.(failure);
    this.flush(); // what waited for this worker goes to the others (or fails if none is left)
  }

  private liveSlots(): WorkerSlot[] {
    const live = this.slots.filter((s) => s.alive);
    if (live.length === 0) throw new SigningError("BLS_POOL_DOWN", "no BLS worker thread is running");
    return live;
  }

  private control(slot: WorkerSlot, message: ToWorker & { requestId: number }, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    const requestId = this.nextMessageId++;
    return new Promise<FromWorker>((resolve, reject) => {
      slot.controls.set(requestId, { resolve, reject });
      slot.worker.postMessage({ ...message, requestId }, transfer);
    });
  }

  private async removeKeyIds(keyIds: number[]): Promise<void> {
    await Promise.allSettled(this.slots.filter((s) => s.alive).map((slot) => this.control(slot, { kind: "removeKeys", requestId: 0, keyIds })));
  }
}

/** Starts one worker and waits for its "ready" (which it sends only after asserting blst-native). */
function startWorker(url: URL, preset: PresetName, niceness: number | undefined): Promise<WorkerSlot> {
  const init: WorkerInit = { preset, ...(niceness !== undefined ? { niceness } : {}) };
  const worker = new Worker(url, { workerData: init, env: { ...process.env, LODESTAR_PRESET: preset } });
  return new Promise<WorkerSlot>((resolve, reject) => {
    const fail = (error: Error) => {
      cleanup();
      void worker.terminate();
      reject(new SigningError("BLS_WORKER_START", `BLS worker thread failed to start: ${error.message}`));
    };
    const onExit = (code: number) => fail(new Error(`exited with code ${code}`));
    const onMessage = (message: FromWorker) => {
      if (message.kind !== "ready") return;
      cleanup();
      resolve({ worker, alive: true, inFlight: 0, batches: new Map(), controls: new Map() });
    };
    const cleanup = () => {
      worker.off("error", fail);
      worker.off("exit", onExit);
      worker.off("message", onMessage);
    };
    worker.on("error", fail);
    worker.on("exit", onExit);
    worker.on("message", onMessage);
  });
}
