/**
 * The public networks and consensus-spec config.yaml files, read with @lodestar/config (the pinned version).
 *
 * Why a worker thread: @lodestar/config imports @lodestar/params, which freezes the process's preset on import
 * (consensus.ts), and the preset is what we are trying to learn (PRESET_BASE). A worker has its own module graph,
 * so this thread's preset stays unset. Why synchronous (Atomics.wait): the signer's config is parsed synchronously;
 * the read happens once, at start-up or in a CLI command.
 */
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads";
import { workerScriptUrl } from "../../common/index.js";

export type ChainConfigRequest = { kind: "public"; name: string } | { kind: "yaml"; file: string; text: string };

/** What Vigil uses of a Lodestar ChainConfig, as plain data. A fork epoch of null: not scheduled (Infinity). */
export interface ChainConfigFacts {
  configName: string | undefined;
  presetBase: string;
  genesisForkVersion: string;
  forks: Partial<Record<string, { version: string; epoch: number | null }>>;
  minGenesisTime: number;
  genesisDelay: number;
  slotDurationMs: number;
  /** From @lodestar/config's genesisData (public networks only). */
  genesis: { genesisTime: number; genesisValidatorsRoot: string } | undefined;
}

export type ChainConfigReply = { ok: true; facts: ChainConfigFacts } | { ok: false; message: string };

const READ_TIMEOUT_MS = 30_000;

/** Reads the chain config in a worker thread and waits for it; throws an Error with a one-line reason. */
export function readChainConfig(request: ChainConfigRequest): ChainConfigFacts {
  const script = workerScriptUrl(import.meta.url, "chain-config-worker.js");
  // A missing script would only show as an 'error' event, which this blocked thread never sees: check first.
  if (!fs.existsSync(fileURLToPath(script))) throw new Error(`the chain config reader ${fileURLToPath(script)} is missing (build with tsc first)`);
  const { port1, port2 } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const worker = new Worker(script, {
    workerData: { request, port: port2, signal },
    transferList: [port2],
  });
  try {
    // The worker catches its own failures and signals; the deadline covers a thread that dies without signalling.
    Atomics.wait(new Int32Array(signal), 0, 0, READ_TIMEOUT_MS);
    const message = receiveMessageOnPort(port1)?.message as ChainConfigReply | undefined;
    if (message === undefined) throw new Error("the chain config reader did not answer (is @lodestar/config installed?)");
    if (!message.ok) throw new Error(message.message);
    return message.facts;
  } finally {
    void worker.terminate();
    port1.close();
  }
}
