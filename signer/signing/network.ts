/**
 * What the signer must know about the chain beyond the request body: the preset, the genesis fork version
 * (builder registrations carry no fork_info) and the fork schedule's versions (EIP-7044, see domains.ts).
 */
import { isHexOfLength, normalizeHex } from "../../common/index.js";
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
  /** Slot duration; default 12 (mainnet preset) or 6 (minimal preset). */
  readonly secondsPerSlot?: number;
}

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
