/**
 * Reads a consensus chain config with @lodestar/config in a thread of its own (chain-config.ts explains why) and
 * posts back plain facts: hex fork versions, numbers, no Lodestar types.
 */
import { type MessagePort, workerData } from "node:worker_threads";
import type { ChainConfigFacts, ChainConfigRequest, ChainConfigReply } from "./chain-config.js";

interface Init {
  request: ChainConfigRequest;
  port: MessagePort;
  signal: SharedArrayBuffer;
}

const FORK_PREFIXES = ["ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU", "GLOAS"] as const;

const hex = (bytes: unknown, field: string): string => {
  if (!(bytes instanceof Uint8Array)) throw new Error(`${field} is missing`);
  return `0x${Buffer.from(bytes).toString("hex")}`;
};
const num = (value: unknown, field: string): number => {
  if (typeof value !== "number" || Number.isNaN(value)) throw new Error(`${field} is missing`);
  return value;
};

function factsOf(config: Record<string, unknown>, genesis: { genesisTime: number; genesisValidatorsRoot: string } | undefined): ChainConfigFacts {
  if (typeof config.PRESET_BASE !== "string") throw new Error("PRESET_BASE is missing");
  const forks: ChainConfigFacts["forks"] = {};
  for (const fork of FORK_PREFIXES) {
    const version = config[`${fork}_FORK_VERSION`];
    if (version === undefined) continue;
    const epoch = num(config[`${fork}_FORK_EPOCH`], `${fork}_FORK_EPOCH`);
    forks[fork] = { version: hex(version, `${fork}_FORK_VERSION`), epoch: Number.isFinite(epoch) ? epoch : null };
  }
  const slotMs = typeof config.SLOT_DURATION_MS === "number" ? config.SLOT_DURATION_MS : num(config.SECONDS_PER_SLOT, "SECONDS_PER_SLOT") * 1000;
  return {
    configName: typeof config.CONFIG_NAME === "string" ? config.CONFIG_NAME : undefined,
    presetBase: config.PRESET_BASE,
    genesisForkVersion: hex(config.GENESIS_FORK_VERSION, "GENESIS_FORK_VERSION"),
    forks,
    minGenesisTime: num(config.MIN_GENESIS_TIME, "MIN_GENESIS_TIME"),
    genesisDelay: num(config.GENESIS_DELAY, "GENESIS_DELAY"),
    slotDurationMs: slotMs,
    genesis,
  };
}

async function read(request: ChainConfigRequest): Promise<ChainConfigFacts> {
  if (request.kind === "public") {
    const { networksChainConfig, genesisData } = await import("@lodestar/config/networks");
    const name = request.name as keyof typeof networksChainConfig;
    const config = networksChainConfig[name];
    if (config === undefined) throw new Error(`@lodestar/config has no network "${request.name}"`);
    return factsOf(config as unknown as Record<string, unknown>, genesisData[name]);
  }
  // FAILSAFE: every scalar stays a string (0x00000000 must not become the number 0); chainConfigFromJson types them.
  const yaml = await import("js-yaml");
  const json = yaml.load(request.text, { schema: yaml.FAILSAFE_SCHEMA, filename: request.file });
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new Error("is not a YAML mapping of config keys");
  const { chainConfigFromJson } = await import("@lodestar/config");
  return factsOf(chainConfigFromJson(json as Record<string, unknown>) as unknown as Record<string, unknown>, undefined);
}

const { request, port, signal } = workerData as Init;
let reply: ChainConfigReply;
try {
  reply = { ok: true, facts: await read(request) };
} catch (err) {
  reply = { ok: false, message: (err as Error).message };
}
port.postMessage(reply);
const flag = new Int32Array(signal);
Atomics.store(flag, 0, 1);
Atomics.notify(flag, 0);
