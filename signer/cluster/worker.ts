/**
 * One worker of a `--workers N` signer: a complete signer (startSigner) forked by the primary
 * (./supervisor.ts) with node:cluster, so that every worker accepts on the same listening ports. This module
 * is its side of the IPC channel: it says when it is ready, sends a heartbeat (the primary's systemd
 * watchdog and STATUS= come from them), asks the primary for the group's /metrics, passes keymanager changes
 * to its siblings through the primary and applies theirs, and stops gracefully on "stop", on SIGTERM/SIGINT
 * (a terminal's Ctrl-C reaches every process of the group) or when the primary is gone.
 */
import cluster from "node:cluster";
import os from "node:os";
import path from "node:path";
import { EXIT_CODES } from "../../common/index.js";
import type { SignerConfig } from "../server/config.js";
import type { ClusterWorkerHooks, RunningSigner } from "../server/start.js";
import { DbNotClosedCleanlyError } from "../server/start.js";
import { HEARTBEAT_MS, isVigilMessage, WORKER_SLOT_ENV, type FromWorker, type KeyChange, type ToWorker } from "./messages.js";
import { PendingRequests } from "./requests.js";

/** How long a /metrics (or admin client views) request waits for the primary's merged answer. */
const METRICS_TIMEOUT_MS = 10_000;

/** This process's worker slot when it was forked by a `--workers N` primary; undefined otherwise. */
export function workerSlot(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!cluster.isWorker) return undefined;
  const slot = Number(env[WORKER_SLOT_ENV]);
  return Number.isSafeInteger(slot) && slot >= 0 ? slot : undefined;
}

/**
 * A worker's config: its own data directory under the group's (`workers/<slot>/`: its lock and audit feed; the
 * token files stay where the config names them, shared), and by default its share of the cores for BLS threads.
 */
export function workerConfig(config: SignerConfig, slot: number): SignerConfig {
  const blsThreads = config.limits.blsThreads ?? Math.max(1, Math.ceil(os.availableParallelism() / config.workers));
  return { ...config, dataDir: path.join(config.dataDir, "workers", String(slot)), limits: { ...config.limits, blsThreads } };
}

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

/**
 * Starts the signer with the cluster hooks and serves until told to stop; then exits (0, or 30 when the slashing
 * database did not close cleanly). A start that fails rejects: the caller prints the error and exits with its
 * code, which the primary passes on when it gives up.
 */
export async function runSignerWorker(slot: number, groupDataDir: string, start: (hooks: ClusterWorkerHooks) => Promise<RunningSigner>): Promise<void> {
  const primary = new PendingRequests<Extract<ToWorker, { id: number }>>();
  /** Asks the primary and waits for its answer (rejected if the primary goes away, or after `timeoutMs`). */
  const ask = async (message: (id: number) => FromWorker, timeoutMs?: number): Promise<ToWorker> => {
    if (!process.connected) throw new Error("the signer's primary process is gone");
    return primary.ask(
      (id) => send(message(id)),
      timeoutMs === undefined ? undefined : { ms: timeoutMs, message: `no answer from the primary in ${timeoutMs} ms` },
    );
  };

  let signer: RunningSigner | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(heartbeat);
    let code: number = EXIT_CODES.ok;
    try {
      await signer?.close();
    } catch (err) {
      code = err instanceof DbNotClosedCleanlyError ? EXIT_CODES.dbNotClosedCleanly : EXIT_CODES.failed;
      process.stderr.write(`vigil: worker ${slot}: ${(err as Error).message}\n`);
    }
    process.exit(code);
  };

  const applyKeys = async (id: number, change: KeyChange) => {
    try {
      if (!signer) throw new Error("not started yet");
      if (change.kind === "retire") await signer.retireKeys(change.pubkeys);
      else if (change.kind === "sync") await signer.syncKeys();
      else await signer.reloadKeys();
      send({ vigil: "keys-applied", id });
    } catch (err) {
      send({ vigil: "keys-applied", id, error: (err as Error).message });
    }
  };

  process.on("message", (m: unknown) => {
    if (!isVigilMessage<ToWorker>(m)) return;
    switch (m.vigil) {
      case "stop":
        void stop();
        return;
      case "apply-keys":
        void applyKeys(m.id, m.change);
        return;
      case "client-views-collect":
        send({ vigil: "client-views-json", id: m.id, views: signer?.localClientViews() ?? [] });
        return;
      case "metrics-collect":
        void (signer?.localMetrics() ?? Promise.resolve([])).then((metrics) => send({ vigil: "metrics-json", id: m.id, metrics }));
        return;
      case "metrics-text":
      case "client-views-all":
      case "keys-changed-done":
        primary.answer(m);
        return;
    }
  });
  // The primary is gone (crashed, SIGKILLed): nothing routes connections here any more and no sibling hears of key
  // changes; stop rather than linger.
  process.on("disconnect", () => {
    primary.failAll(new Error("the signer's primary process is gone"));
    void stop();
  });
  for (const s of ["SIGTERM", "SIGINT"] as const) process.on(s, () => void stop());
  // The primary reloads the group on SIGHUP; a SIGHUP sent to the whole process group must not kill a worker.
  process.on("SIGHUP", () => {});

  const hooks: ClusterWorkerHooks = {
    worker: slot,
    groupDataDir,
    metricsText: async () => {
      const reply = await ask((id) => ({ vigil: "metrics", id }), METRICS_TIMEOUT_MS);
      if (reply.vigil !== "metrics-text" || reply.body === undefined)
        throw new Error(`metrics of the worker group: ${(reply as { error?: string }).error ?? "no answer"}`);
      return reply.body;
    },
    clientViews: async () => {
      const reply = await ask((id) => ({ vigil: "client-views", id }), METRICS_TIMEOUT_MS);
      if (reply.vigil !== "client-views-all" || reply.views === undefined)
        throw new Error(`client views of the worker group: ${(reply as { error?: string }).error ?? "no answer"}`);
      return reply.views;
    },
    siblings: {
      // No timeout: the primary answers once every sibling retired the keys or was stopped (it never leaves one signing).
      retire: async (pubkeys, whileRetired) => {
        let id = -1; // the request's id names the change when it ends
        await ask((i) => {
          id = i;
          return { vigil: "keys-changed", id: i, change: { kind: "retire", pubkeys } };
        });
        try {
          await whileRetired();
        } finally {
          send({ vigil: "keys-change-end", id });
        }
      },
      reload: async () => {
        await ask((id) => ({ vigil: "keys-changed", id, change: { kind: "reload" } }));
      },
    },
    reloadGroup: async () => {
      await ask((id) => ({ vigil: "keys-changed", id, change: { kind: "sync" } }));
    },
  };

  const heartbeat = setInterval(() => {
    if (signer) send({ vigil: "heartbeat", healthy: signer.healthy() || "slashing database or BLS workers not answering", stats: signer.stats() });
  }, HEARTBEAT_MS);
  heartbeat.unref();
  signer = await start(hooks);
  if (stopping) return; // asked to stop while starting: stop() closes it
  send({ vigil: "ready", url: signer.url, metricsUrl: signer.metricsUrl, stats: signer.stats() });
}
