/**
 * What the signer must know about the chain beyond the request body: the preset, the genesis fork version
 * (builder registrations carry no fork_info) and the fork schedule's versions (EIP-7044, see domains.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { isHexOfLength, normalizeHex } from "../../common/index.js";
import { type ChainConfigFacts, readChainConfig } from "./chain-config.js";
import type { PresetName } from "./consensus.js";
import { PRESET_NAMES } from "./consensus.js";
import { FORKS, type ForkName } from "./forks.js";

// Forks in order (forks.ts). PHASE0's version is the genesis fork version.
export { FORKS, type ForkName };

export interface NetworkConfig {
  readonly name: string;
  readonly preset: PresetName;
  /** Bytes4 hex. Signs VALIDATOR_REGISTRATION (DOMAIN_APPLICATION_BUILDER, zero genesis_validators_root). */
  readonly genesisForkVersion: string;
  /**
   * Bytes4 hex versions of the forks after genesis. `CAPELLA` is the version EIP-7044 pins voluntary exits
   * to; the DENEB and later entries are how the signer recognises "Deneb or later" in fork_info.
   */
  readonly forkVersions: Readonly<Partial<Record<Exclude<ForkName, "PHASE0">, string>>>;
  /**
   * Unix seconds of slot 0, where known: the signer then refuses slashable messages implausibly far ahead of the
   * wall clock (one such record would block every later real one). Unknown for dev chains (each has its own).
   */
  readonly genesisTime?: number;
  /** Slot duration; default PRESET_SECONDS_PER_SLOT of the preset. */
  readonly secondsPerSlot?: number;
  /** Bytes32 hex, where the network fixes it (the public networks): the signer pins its database to it. */
  readonly genesisValidatorsRoot?: string;
}

/** Slot duration when a network does not say (object form): its preset's usual chain (gnosis: 5 s). */
export const PRESET_SECONDS_PER_SLOT: Readonly<Record<PresetName, number>> = { mainnet: 12, minimal: 6, gnosis: 5 };

export const MAINNET: NetworkConfig = Object.freeze({
  name: "mainnet",
  preset: "mainnet",
  genesisForkVersion: "0x00000000",
  genesisTime: 1606824023, // 2020-12-01T12:00:23Z
  secondsPerSlot: 12,
  forkVersions: Object.freeze({
    ALTAIR: "0x01000000",
    BELLATRIX: "0x02000000",
    CAPELLA: "0x03000000",
    DENEB: "0x04000000",
    ELECTRA: "0x05000000",
    FULU: "0x06000000",
  }),
});

/** Minimal-preset dev chains (Lodestar's/the spec's minimal config; the reference capture used it). */
export const MINIMAL_DEVNET: NetworkConfig = Object.freeze({
  name: "minimal-devnet",
  preset: "minimal",
  genesisForkVersion: "0x00000001",
  forkVersions: Object.freeze({
    ALTAIR: "0x01000001",
    BELLATRIX: "0x02000001",
    CAPELLA: "0x03000001",
    DENEB: "0x04000001",
    ELECTRA: "0x05000001",
    FULU: "0x06000001",
  }),
});

export const NETWORKS: Readonly<Record<string, NetworkConfig>> = { mainnet: MAINNET, "minimal-devnet": MINIMAL_DEVNET };

/**
 * The public networks built in, read from @lodestar/config (the version pinned with @lodestar/types). Ephemery,
 * which Lodestar also lists, is left out: it restarts with a new genesis every few weeks, so a pinned
 * genesis_validators_root would be wrong within a month.
 */
export const PUBLIC_NETWORK_NAMES = ["mainnet", "hoodi", "sepolia", "gnosis", "chiado"] as const;

/** Networks an operator may still name that are no longer built in, with why. */
const RETIRED_NETWORKS: Readonly<Record<string, string>> = {
  holesky:
    "holesky is not built in: it was shut down in 2025 and @lodestar/config 1.38.0 no longer defines it (use hoodi, its successor, or give holesky's config.yaml as the network)",
};

/** The names a config may give as "network" (hand-typed minimal-devnet and the public networks). */
export const NETWORK_NAMES: readonly string[] = [...PUBLIC_NETWORK_NAMES, "minimal-devnet"];

/**
 * Vigil's view of a Lodestar chain config. Forks the config leaves unscheduled (epoch Infinity) are left out, so a
 * request naming their version is refused rather than signed for a fork that does not exist; forks later than
 * Vigil signs for (forks.ts) are left out too. Genesis time: the network's own where known, else
 * MIN_GENESIS_TIME + GENESIS_DELAY, the earliest genesis the config allows (the wall-clock guard then errs on the
 * side of accepting).
 */
export function networkFromChainConfig(name: string, facts: ChainConfigFacts): NetworkConfig {
  if (!(PRESET_NAMES as readonly string[]).includes(facts.presetBase)) {
    throw new Error(`network ${name}: PRESET_BASE "${facts.presetBase}" is not a preset Vigil signs for (${PRESET_NAMES.join(", ")})`);
  }
  const forkVersions: Partial<Record<Exclude<ForkName, "PHASE0">, string>> = {};
  for (const fork of FORKS) {
    if (fork === "PHASE0") continue;
    const entry = facts.forks[fork];
    if (entry !== undefined && entry.epoch !== null) forkVersions[fork] = entry.version;
  }
  const root = facts.genesis?.genesisValidatorsRoot;
  return validateNetworkConfig({
    name,
    preset: facts.presetBase as PresetName,
    genesisForkVersion: facts.genesisForkVersion,
    forkVersions,
    genesisTime: facts.genesis?.genesisTime ?? facts.minGenesisTime + facts.genesisDelay,
    secondsPerSlot: facts.slotDurationMs / 1000,
    ...(root !== undefined && !/^0x0{64}$/i.test(root) ? { genesisValidatorsRoot: normalizeHex(root) } : {}),
  });
}

/** A network by name: minimal-devnet, or a public network from @lodestar/config; undefined if unknown. */
export function namedNetwork(name: string): NetworkConfig | undefined {
  if (name === "minimal-devnet") return MINIMAL_DEVNET;
  const retired = RETIRED_NETWORKS[name];
  if (retired !== undefined) throw new Error(retired);
  if (!(PUBLIC_NETWORK_NAMES as readonly string[]).includes(name)) return undefined;
  return networkFromChainConfig(name, readChainConfig({ kind: "public", name }));
}

/** Whether a "network" value names a config.yaml file rather than a network. */
export function isNetworkFile(value: string): boolean {
  return value.includes("/") || value.includes(path.sep) || /\.ya?ml$/i.test(value);
}

/**
 * A custom network from a consensus-spec config.yaml (as Web3Signer's --network accepts): fork versions, preset
 * (PRESET_BASE), genesis time and slot duration. It names no genesis_validators_root: configure
 * genesisValidatorsRoot to pin one, otherwise the first request's is pinned.
 */
export function networkFromYamlFile(file: string): NetworkConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let facts: ChainConfigFacts;
  try {
    facts = readChainConfig({ kind: "yaml", file, text });
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return networkFromChainConfig(facts.configName ?? path.basename(file).replace(/\.ya?ml$/i, ""), facts);
}

/** Throws a readable Error if the config cannot be used; returns it with versions lower-cased. */
export function validateNetworkConfig(config: NetworkConfig): NetworkConfig {
  if (!(PRESET_NAMES as readonly string[]).includes(config.preset)) {
    throw new Error(`network ${config.name}: unknown preset "${config.preset}"`);
  }
  if (!isHexOfLength(config.genesisForkVersion, 4)) {
    throw new Error(`network ${config.name}: genesisForkVersion must be 0x + 8 hex digits`);
  }
  const seen = new Map<string, ForkName>([[normalizeHex(config.genesisForkVersion), "PHASE0"]]);
  const forkVersions: Partial<Record<ForkName, string>> = {};
  for (const [fork, version] of Object.entries(config.forkVersions)) {
    if (!(FORKS as readonly string[]).includes(fork) || fork === "PHASE0") {
      throw new Error(`network ${config.name}: unknown fork "${fork}" in forkVersions`);
    }
    if (!isHexOfLength(version, 4)) throw new Error(`network ${config.name}: ${fork} version must be 0x + 8 hex digits`);
    const other = seen.get(normalizeHex(version));
    if (other) throw new Error(`network ${config.name}: ${fork} and ${other} share version ${version}`);
    seen.set(normalizeHex(version), fork as ForkName);
    forkVersions[fork as ForkName] = normalizeHex(version);
  }
  const hasPostCapella = FORKS.slice(FORKS.indexOf("DENEB")).some((f) => f in forkVersions);
  if (hasPostCapella && !forkVersions.CAPELLA) {
    throw new Error(`network ${config.name}: DENEB or later is configured without CAPELLA (needed by EIP-7044)`);
  }
  if (config.genesisValidatorsRoot !== undefined && !isHexOfLength(config.genesisValidatorsRoot, 32)) {
    throw new Error(`network ${config.name}: genesisValidatorsRoot must be 0x + 64 hex digits`);
  }
  return { ...config, genesisForkVersion: normalizeHex(config.genesisForkVersion), forkVersions };
}

/** The fork whose version is `version` on this network, or undefined if the network does not list it. */
export function forkOfVersion(config: NetworkConfig, version: string): ForkName | undefined {
  const v = normalizeHex(version);
  if (normalizeHex(config.genesisForkVersion) === v) return "PHASE0";
  for (const [fork, forkVersion] of Object.entries(config.forkVersions)) {
    if (forkVersion !== undefined && normalizeHex(forkVersion) === v) return fork as ForkName;
  }
  return undefined;
}

export function isForkAtLeast(fork: ForkName, atLeast: ForkName): boolean {
  return FORKS.indexOf(fork) >= FORKS.indexOf(atLeast);
}
