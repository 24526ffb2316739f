/**
 * The IPC messages between the primary of a `--workers N` signer (./supervisor.ts) and its workers
 * (./worker.ts), over node:cluster's channel. Every message carries `vigil` (node's own internal messages
 * share the channel). Nothing secret ever crosses it: pubkeys, counts and metrics only.
 */
import type { ClientView } from "../../admin-api/index.js";

/** The environment variable that tells a forked process which worker slot it is (0…N-1). */
export const WORKER_SLOT_ENV = "VIGIL_SIGNER_WORKER";

export interface WorkerStats {
  keys: number;
  signed: number;
  refused: number;
  inFlight: number;
}

/**
 * A key change through one worker's keymanager API, for its siblings; or `sync` (POST /reload, SIGHUP): every
 * worker, the asking one included, re-enumerates the key store.
 */
export type KeyChange = { kind: "retire"; pubkeys: string[] } | { kind: "reload" } | { kind: "sync" };

export type FromWorker =
  /** Listening, keys loaded, database open. */
  | { vigil: "ready"; url: string; metricsUrl: string | undefined; stats: WorkerStats }
  /** Every HEARTBEAT_MS while running: the primary's liveness and STATUS= come from these. */
  | { vigil: "heartbeat"; healthy: true | string; stats: WorkerStats }
  /** /metrics was asked of this worker: the primary answers with the whole group's. */
  | { vigil: "metrics"; id: number }
  /** The answer to metrics-collect: this worker's registry (prom-client's getMetricsAsJSON). */
  | { vigil: "metrics-json"; id: number; metrics: unknown[] }
  /** This worker's keymanager changes keys: the primary passes it to every sibling and answers once all are done. */
  | { vigil: "keys-changed"; id: number; change: KeyChange }
  /** The change is complete (a retire: the keys are off the token): siblings may load keys again. */
  | { vigil: "keys-change-end"; id: number }
  /** This worker applied a sibling's change (`error` when it could not: the primary then restarts it). */
  | { vigil: "keys-applied"; id: number; error?: string }
  /** The admin API's client views were asked of this worker: the primary answers with every worker's. */
  | { vigil: "client-views"; id: number }
  /** The answer to client-views-collect: this worker's own views of its clients (its share of their requests). */
  | { vigil: "client-views-json"; id: number; views: ClientView[] };

export type ToWorker =
  | { vigil: "stop" }
  | { vigil: "metrics-text"; id: number; body?: string; error?: string }
  | { vigil: "metrics-collect"; id: number }
  | { vigil: "apply-keys"; id: number; change: KeyChange }
  | { vigil: "keys-changed-done"; id: number }
  | { vigil: "client-views-collect"; id: number }
  /** Every ready worker's views, or `error` when one did not answer (a partial answer could show a busy client silent). */
  | { vigil: "client-views-all"; id: number; views?: ClientView[][]; error?: string };

export const HEARTBEAT_MS = 1_000;

export function isVigilMessage<T extends { vigil: string }>(m: unknown): m is T {
  return typeof m === "object" && m !== null && typeof (m as { vigil?: unknown }).vigil === "string";
}
