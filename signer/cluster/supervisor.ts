/**
 * The primary of a `--workers N` signer. It opens no key and no database: it forks N complete signers
 * (./worker.ts) with node:cluster, one after another (a SoftHSM2 login rewrites the token's files; a process
 * enumerating the token meanwhile can find none), and node:cluster hands each accepted connection to one of
 * them in turn (round robin; validator clients keep connections alive, so this costs per connection, not per
 * request). It restarts a worker that dies (backoff; it gives up when one keeps failing to start), merges
 * every worker's metrics into one /metrics answer, passes keymanager changes between siblings, and stops them
 * all gracefully. Why processes and not threads or HAProxy: signer/cluster/README.md.
 */
import cluster, { type Worker } from "node:cluster";
import os from "node:os";
import client from "prom-client";
import type { ClientView } from "../../admin-api/index.js";
import { EXIT_CODES, VigilError } from "../../common/index.js";
import { trackHandoffs } from "./handoffs.js";
import { PendingRequests } from "./requests.js";
import { HEARTBEAT_MS, isVigilMessage, WORKER_SLOT_ENV, type FromWorker, type KeyChange, type ToWorker, type WorkerStats } from "./messages.js";

/** A heartbeat older than this: the worker's event loop is stuck (or it is gone). */
const HEARTBEAT_STALE_MS = 5 * HEARTBEAT_MS;
/** How long a worker may take to apply a sibling's key change before it is stopped (a restart loads every key). */
const KEY_CHANGE_TIMEOUT_MS = { retire: 30_000, reload: 120_000, sync: 120_000 };
/** How long one worker has to answer for the group's /metrics; one that does not is left out of that answer. */
const METRICS_COLLECT_TIMEOUT_MS = 3_000;

export type WorkerErrorCode = "WORKER_START_FAILED" | "WORKERS_KEEP_FAILING" | "WORKER_NOT_CLOSED_CLEANLY";

/** A worker could not start (its own error is on stderr); the exit code is the worker's, so systemd sees the same. */
export class WorkerError extends VigilError<WorkerErrorCode> {}

export interface SupervisorOptions {
  workers: number;
  /** The script each worker runs and its arguments (default: this process's own: the CLI forks itself). */
  exec?: string;
  args?: string[];
  log(level: "info" | "warn" | "error", message: string): void;
  status(text: string): void;
  /** Aborted when a stop is requested during start-up. */
  signal?: AbortSignal;
  /** After every worker was ready, one kept failing to start again: the others are stopped; the caller exits with err.exitCode. */
  onGiveUp(err: WorkerError): void;
  restart?: { firstDelayMs?: number; maxDelayMs?: number; maxFailedStarts?: number };
  /** How long workers get to finish in-flight requests and close on stop before they are killed. */
  stopTimeoutMs?: number;
}

export interface RunningWorkers {
  /** The main listener, as worker 0 reported it (all workers accept on it). */
  readonly url: string;
  readonly metricsUrl: string | undefined;
  /** true, or why not: a worker that stopped answering or reports its database or BLS threads down. */
  healthy(): true | string;
  /** Keys loaded, as the first ready worker reports them (every worker loads the same token). */
  keys(): number;
  /** For STATUS=: the workers and their counters summed. */
  statusLine(): string;
  /** SIGHUP: every worker re-enumerates the key store (in turn with key changes). Resolves when all did or were restarted. */
  reloadKeys(): Promise<void>;
  close(): Promise<void>;
}

interface Slot {
  readonly index: number;
  worker?: Worker;
  ready: boolean;
  lastHeartbeat: number;
  healthy: true | string;
  stats: WorkerStats;
  failedStarts: number;
  /** Stopped while starting because a sibling retired keys: start it again, it did not fail. */
  stoppedForKeys: boolean;
  /** Requests to the current worker waiting for its answer. */
  requests?: PendingRequests<WorkerAnswer>;
}

/** What a worker sends in answer to one of the primary's requests. */
type WorkerAnswer = Extract<FromWorker, { id: number }>;

const NO_STATS: WorkerStats = { keys: 0, signed: 0, refused: 0, inFlight: 0 };

export async function startWorkers(options: SupervisorOptions): Promise<RunningWorkers> {
  const firstDelayMs = options.restart?.firstDelayMs ?? 1_000;
  const maxDelayMs = options.restart?.maxDelayMs ?? 30_000;
  const maxFailedStarts = options.restart?.maxFailedStarts ?? 5;
  const stopTimeoutMs = options.stopTimeoutMs ?? 45_000;
  const { log, status } = options;

  cluster.schedulingPolicy = cluster.SCHED_RR; // the default on Linux, but not on Windows: say it
  cluster.setupPrimary({
    exec: options.exec ?? process.argv[1]!,
    args: options.args ?? process.argv.slice(2),
  });

  const slots: Slot[] = Array.from({ length: options.workers }, (_, index) => ({
    index,
    ready: false,
    lastHeartbeat: 0,
    healthy: true,
    stats: NO_STATS,
    failedStarts: 0,
    stoppedForKeys: false,
  }));
  let closing = false;
  let url = "";
  let metricsUrl: string | undefined;

  // Own metrics, merged with the workers'.
  const registry = new client.Registry();
  const restarts = new client.Counter({
    name: "vigil_signer_worker_restarts_total",
    help: "Signer worker processes restarted by the primary after they died, by worker slot",
    labelNames: ["worker"],
    registers: [registry],
  });
  new client.Gauge({
    name: "vigil_signer_workers",
    help: "Signer worker processes by state: ready (serving) or starting (forked, not yet ready, or waiting to restart)",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const ready = slots.filter((s) => s.ready).length;
      this.set({ state: "ready" }, ready);
      this.set({ state: "starting" }, slots.length - ready);
    },
  });

  // Starts run one at a time, restarts included (the SoftHSM2 token files, see above).
  let startChain: Promise<unknown> = Promise.resolve();
  // Key changes run one at a time, and no worker starts while one is in progress (a restart could load a key a
  // sibling is deleting). Holders resolve their release when done.
  let keyLock: Promise<unknown> = Promise.resolve();
  const sendTo = (w: Worker | undefined, m: ToWorker) => {
    if (w?.isConnected()) w.send(m);
  };
  /** Asks the worker of `slot` and waits for its `answer` (PendingRequests: a timeout or the worker's exit rejects). */
  const request = async (slot: Slot, make: (id: number) => ToWorker, answer: FromWorker["vigil"], timeoutMs: number): Promise<FromWorker> => {
    const w = slot.worker;
    if (!w?.isConnected() || !slot.requests) throw new Error(`worker ${slot.index} is not running`);
    const m = await slot.requests.ask((id) => w.send(make(id)), { ms: timeoutMs, message: `worker ${slot.index} did not answer in ${timeoutMs} ms` });
    if (m.vigil !== answer) throw new Error(`worker ${slot.index} answered ${m.vigil}, not ${answer}`);
    return m;
  };

  /** Asks every ready worker for its share (metrics, client views): one promise per worker, in slot order. */
  const askEveryReadyWorker = <T>(make: (id: number) => ToWorker, answer: FromWorker["vigil"], pick: (m: FromWorker) => T): Promise<T>[] =>
    slots.filter((s) => s.ready).map((s) => request(s, make, answer, METRICS_COLLECT_TIMEOUT_MS).then(pick));

  /** The whole group's metrics in Prometheus text: every ready worker's series (labelled by worker) and the primary's. */
  const groupMetrics = async (): Promise<string> => {
    const collected = await Promise.all(
      askEveryReadyWorker(
        (id) => ({ vigil: "metrics-collect", id }),
        "metrics-json",
        (m) => (m as { metrics: unknown[] }).metrics,
      ).map((share) => share.catch(() => undefined)), // one stuck worker must not blank the others' metrics; vigil_signer_workers shows it
    );
    const all = [...collected.filter((m): m is unknown[] => m !== undefined), await registry.getMetricsAsJSON()];
    return client.AggregatorRegistry.aggregate(all as Parameters<typeof client.AggregatorRegistry.aggregate>[0]).metrics();
  };

  /**
   * A sibling's key change: every other worker applies it, or is stopped (a restart loads what the token holds). A
   * sync reaches every worker, its sender (if any) included.
   */
  const applyKeyChange = async (from: Slot | undefined, change: KeyChange): Promise<void> => {
    await Promise.all(
      slots
        .filter((s) => (s !== from || change.kind === "sync") && s.worker)
        .map(async (s) => {
          if (!s.ready) {
            // Still starting: it may have loaded the token before this change. A change that can take keys away
            // (a retire, or a sync after keys left the token) must not leave one signable there: stop it (it
            // restarts once the change is complete, and loads the token then). An import it may miss: it is
            // told to reload when it is ready.
            if (change.kind === "reload") reloadWhenReady.add(s);
            else {
              s.stoppedForKeys = true;
              s.worker!.process.kill("SIGKILL");
            }
            return;
          }
          await applyAt(s, change);
        }),
    );
  };
  /** One worker applies a key change, or is stopped: its restart loads every key the key store holds. */
  const applyAt = async (s: Slot, change: KeyChange): Promise<void> => {
    try {
      const r = await request(s, (id) => ({ vigil: "apply-keys", id, change }), "keys-applied", KEY_CHANGE_TIMEOUT_MS[change.kind]);
      const error = (r as { error?: string }).error;
      if (error !== undefined) throw new Error(error);
    } catch (err) {
      log(
        "error",
        `signer worker ${s.index} could not apply a key ${change.kind} (${(err as Error).message}): stopping it; its restart loads every key the key store holds`,
      );
      s.worker?.process.kill("SIGKILL");
    }
  };
  const reloadWhenReady = new Set<Slot>();

  const onMessage = (slot: Slot, w: Worker, m: unknown) => {
    if (!isVigilMessage<FromWorker>(m)) return;
    switch (m.vigil) {
      case "heartbeat":
        slot.lastHeartbeat = Date.now();
        slot.healthy = m.healthy;
        slot.stats = m.stats;
        return;
      case "metrics":
        groupMetrics().then(
          (body) => sendTo(w, { vigil: "metrics-text", id: m.id, body }),
          (err: Error) => sendTo(w, { vigil: "metrics-text", id: m.id, error: err.message }),
        );
        return;
      case "client-views":
        // Every ready worker's share, or an error: the watchdog judges a client silent from these, and a worker
        // left out could hide the very requests that show it alive.
        Promise.all(
          askEveryReadyWorker(
            (id) => ({ vigil: "client-views-collect", id }),
            "client-views-json",
            (r) => (r as { views: ClientView[] }).views,
          ),
        ).then(
          (views) => sendTo(w, { vigil: "client-views-all", id: m.id, views }),
          (err: Error) => sendTo(w, { vigil: "client-views-all", id: m.id, error: err.message }),
        );
        return;
      case "keys-changed": {
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        const previous = keyLock;
        keyLock = held;
        void previous.then(async () => {
          await applyKeyChange(slot, m.change);
          sendTo(w, { vigil: "keys-changed-done", id: m.id });
          if (m.change.kind !== "retire") return release();
          // A retire holds the lock until the originator removed the keys from the token (or died).
          if (w.isDead()) return release();
          const end = (e: unknown) => isVigilMessage<FromWorker>(e) && e.vigil === "keys-change-end" && e.id === m.id;
          const onEnd = (e: unknown) => {
            if (!end(e)) return;
            w.off("message", onEnd);
            w.off("exit", onExit);
            release();
          };
          const onExit = () => {
            w.off("message", onEnd);
            release();
          };
          w.on("message", onEnd);
          w.once("exit", onExit);
        });
        return;
      }
      case "metrics-json":
      case "client-views-json":
      case "keys-applied":
        slot.requests?.answer(m);
        return;
    }
  };

  /** Forks the worker of `slot`; resolves when it is ready, rejects when it exits before. */
  const fork = (slot: Slot): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index) });
      const closeLostHandoffs = trackHandoffs(w);
      const requests = new PendingRequests<WorkerAnswer>();
      slot.worker = w;
      slot.requests = requests;
      slot.ready = false;
      w.on("message", (m: unknown) => {
        if (isVigilMessage<FromWorker>(m) && m.vigil === "ready") {
          slot.ready = true;
          slot.lastHeartbeat = Date.now();
          slot.healthy = true;
          slot.stats = m.stats;
          if (slot.index === 0 || url === "") {
            url = m.url;
            metricsUrl = m.metricsUrl;
          }
          if (reloadWhenReady.delete(slot)) void applyAt(slot, { kind: "reload" }); // answered like any key change
          resolve();
          return;
        }
        onMessage(slot, w, m);
      });
      w.once("exit", (code, signal) => {
        requests.failAll(new Error(`worker ${slot.index} exited`));
        const lost = closeLostHandoffs();
        if (lost > 0) log("warn", `closed ${lost} connection(s) signer worker ${slot.index} died before taking (their clients retry on new ones)`);
        const wasReady = slot.ready;
        slot.ready = false;
        if (slot.worker === w) slot.worker = undefined;
        if (!wasReady) {
          reject(
            new WorkerError(
              "WORKER_START_FAILED",
              `signer worker ${slot.index} exited before it was ready (${signal ?? `exit code ${code}`})`,
              code !== null && code > 0 ? code : EXIT_CODES.failed,
            ),
          );
          return;
        }
        if (closing) return;
        log("error", `signer worker ${slot.index} (pid ${w.process.pid}) died (${signal ?? `exit code ${code}`}): restarting it`);
        restarts.inc({ worker: String(slot.index) });
        scheduleRestart(slot, 0);
      });
    });

  /** One start at a time, none while a key change is in progress. */
  const startInTurn = (slot: Slot): Promise<void> => {
    const attempt = async (): Promise<void> => {
      await keyLock;
      if (closing) return;
      try {
        await fork(slot);
      } catch (err) {
        if (!slot.stoppedForKeys || closing) throw err;
        slot.stoppedForKeys = false;
        return attempt();
      }
    };
    const run = startChain.then(attempt);
    startChain = run.catch(() => undefined);
    return run;
  };

  const scheduleRestart = (slot: Slot, delayMs: number) => {
    setTimeout(() => {
      if (closing) return;
      startInTurn(slot).then(
        () => {
          if (closing) return;
          slot.failedStarts = 0;
          log("info", `signer worker ${slot.index} is back (pid ${slot.worker?.process.pid})`);
        },
        (err: WorkerError) => {
          if (closing) return;
          slot.failedStarts++;
          if (slot.failedStarts >= maxFailedStarts) {
            log("error", `signer worker ${slot.index} failed to start ${slot.failedStarts} times in a row: giving up, stopping every worker`);
            void closeAll().finally(() =>
              options.onGiveUp(new WorkerError("WORKERS_KEEP_FAILING", `signer worker ${slot.index} keeps failing to start: ${err.message}`, err.exitCode)),
            );
            return;
          }
          const next = Math.min(maxDelayMs, firstDelayMs * 2 ** (slot.failedStarts - 1));
          log("warn", `${err.message}; next try in ${next} ms`);
          scheduleRestart(slot, next);
        },
      );
    }, delayMs).unref();
  };

  /** Every worker: "stop" to the ready ones (in-flight requests finish), SIGKILL to those still starting or too slow. */
  let closed: Promise<void> | undefined;
  const closeAll = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const codes = await Promise.all(
        slots.map(async (s) => {
          const w = s.worker;
          if (!w || w.isDead()) return 0;
          const exited = new Promise<number>((resolve) => w.once("exit", (code) => resolve(code ?? 0)));
          if (s.ready) sendTo(w, { vigil: "stop" });
          else w.process.kill("SIGKILL"); // nothing served yet; every acknowledged write of a signer is already durable
          const killer = setTimeout(() => w.process.kill("SIGKILL"), stopTimeoutMs);
          const code = await exited;
          clearTimeout(killer);
          return code;
        }),
      );
      if (codes.includes(EXIT_CODES.dbNotClosedCleanly)) {
        throw new WorkerError(
          "WORKER_NOT_CLOSED_CLEANLY",
          "stopped, but a worker's slashing-protection database was not closed cleanly (see its log line)",
          EXIT_CODES.dbNotClosedCleanly,
        );
      }
    })();
    return closed;
  };

  options.signal?.addEventListener("abort", () => void closeAll());
  try {
    for (const slot of slots) {
      status(`starting signer worker ${slot.index + 1} of ${slots.length}`);
      await startInTurn(slot);
      if (closing) throw new Error("stopped while starting");
    }
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
  log("info", `${slots.length} signer workers ready on ${url} (${os.availableParallelism()} cores)`);

  return {
    get url() {
      return url;
    },
    get metricsUrl() {
      return metricsUrl;
    },
    healthy() {
      const problems: string[] = [];
      const now = Date.now();
      for (const s of slots) {
        // A worker being restarted does not withhold the systemd ping: the others serve, and a restart loading
        // thousands of keys outlasts WatchdogSec; systemd restarting the whole group would stop them too.
        if (!s.ready) continue;
        if (now - s.lastHeartbeat > HEARTBEAT_STALE_MS) problems.push(`worker ${s.index} not answering for ${Math.round((now - s.lastHeartbeat) / 1000)} s`);
        else if (s.healthy !== true) problems.push(`worker ${s.index}: ${s.healthy}`);
      }
      return problems.length === 0 ? true : problems.join("; ");
    },
    keys() {
      return slots.find((s) => s.ready)?.stats.keys ?? 0;
    },
    statusLine() {
      const ready = slots.filter((s) => s.ready);
      const sum = (k: keyof WorkerStats) => ready.reduce((a, s) => a + s.stats[k], 0);
      const keys = ready[0]?.stats.keys ?? 0;
      return `${ready.length} of ${slots.length} workers ready; ${keys} key(s); since start ${sum("signed")} signed, ${sum("refused")} refused; ${sum("inFlight")} in flight`;
    },
    reloadKeys() {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const previous = keyLock;
      keyLock = held;
      return previous.then(() => applyKeyChange(undefined, { kind: "sync" })).finally(release);
    },
    close: closeAll,
  };
}
