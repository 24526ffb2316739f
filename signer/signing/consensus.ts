/**
 * One place that decides the consensus preset of this process.
 *
 * @lodestar/params fixes its preset (SLOTS_PER_EPOCH, list limits, bitvector lengths) the first time it is
 * imported, and @lodestar/types builds its SSZ types from it. So nothing in Vigil imports either package
 * statically (only `import type`, which is erased): code obtains them from `loadConsensus`, which pins the
 * preset first. Only "@lodestar/params/setPreset" is imported statically, because it does not freeze the preset.
 */
import { PresetName as LodestarPresetName, setActivePreset } from "@lodestar/params/setPreset";
import type { ssz as SszTypes } from "@lodestar/types";
import { EXIT_CODES } from "../../common/index.js";
import { SigningError } from "./errors.js";

/** Lodestar's presets; gnosis (and chiado) run their own: 16 slots per epoch, other list limits. */
export type PresetName = "mainnet" | "minimal" | "gnosis";
export const PRESET_NAMES: readonly PresetName[] = ["mainnet", "minimal", "gnosis"];

/** The preset-dependent pieces the signing core uses. */
export interface Consensus {
  readonly preset: PresetName;
  readonly ssz: typeof SszTypes;
  readonly slotsPerEpoch: number;
  readonly domains: DomainTypes;
}

export interface DomainTypes {
  readonly beaconProposer: Uint8Array;
  readonly beaconAttester: Uint8Array;
  readonly randao: Uint8Array;
  readonly deposit: Uint8Array;
  readonly voluntaryExit: Uint8Array;
  readonly selectionProof: Uint8Array;
  readonly aggregateAndProof: Uint8Array;
  readonly syncCommittee: Uint8Array;
  readonly syncCommitteeSelectionProof: Uint8Array;
  readonly contributionAndProof: Uint8Array;
  readonly applicationBuilder: Uint8Array;
}

export class PresetError extends SigningError {
  constructor(message: string) {
    super("PRESET_CONFLICT", message, EXIT_CODES.usage);
  }
}

let pinnedPreset: PresetName | undefined;
let loading: Promise<Consensus> | undefined;
let loaded: Consensus | undefined;

function checkPresetName(preset: string): asserts preset is PresetName {
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) {
    throw new PresetError(`unknown consensus preset "${preset}" (expected ${PRESET_NAMES.join(" or ")})`);
  }
}

/**
 * Pins the preset of this thread without loading the SSZ types (cheap; the BLS workers call it).
 * Idempotent for the same preset; a different preset later is a programming or configuration error.
 */
export function pinPreset(preset: PresetName): void {
  checkPresetName(preset);
  if (pinnedPreset !== undefined) {
    if (pinnedPreset !== preset) {
      throw new PresetError(`consensus preset already set to "${pinnedPreset}" in this process; cannot switch to "${preset}" (one preset per process)`);
    }
    return;
  }
  try {
    setActivePreset(LodestarPresetName[preset]);
  } catch {
    // Something imported @lodestar/params before us. Acceptable only if it chose the same preset;
    // loadConsensus checks ACTIVE_PRESET once the module is loaded.
  }
  pinnedPreset = preset;
}

/**
 * Sets the preset (once per process) and returns the SSZ types and constants built for it.
 * Call it at start-up, before anything else imports @lodestar/*; calling it again with the same preset
 * returns the same object, with another preset it throws PRESET_CONFLICT.
 */
export function loadConsensus(preset: PresetName): Promise<Consensus> {
  pinPreset(preset);
  loading ??= importConsensus(preset);
  return loading;
}

async function importConsensus(preset: PresetName): Promise<Consensus> {
  const params = await import("@lodestar/params");
  if (params.ACTIVE_PRESET !== preset) {
    throw new PresetError(
      `@lodestar/params was loaded with preset "${params.ACTIVE_PRESET}" before Vigil could set "${preset}" ` +
        `(something imported @lodestar/* too early, or LODESTAR_PRESET disagrees)`,
    );
  }
  const { ssz } = await import("@lodestar/types");
  loaded = {
    preset,
    ssz,
    slotsPerEpoch: params.SLOTS_PER_EPOCH,
    domains: {
      beaconProposer: params.DOMAIN_BEACON_PROPOSER,
      beaconAttester: params.DOMAIN_BEACON_ATTESTER,
      randao: params.DOMAIN_RANDAO,
      deposit: params.DOMAIN_DEPOSIT,
      voluntaryExit: params.DOMAIN_VOLUNTARY_EXIT,
      selectionProof: params.DOMAIN_SELECTION_PROOF,
      aggregateAndProof: params.DOMAIN_AGGREGATE_AND_PROOF,
      syncCommittee: params.DOMAIN_SYNC_COMMITTEE,
      syncCommitteeSelectionProof: params.DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
      contributionAndProof: params.DOMAIN_CONTRIBUTION_AND_PROOF,
      applicationBuilder: params.DOMAIN_APPLICATION_BUILDER,
    },
  };
  return loaded;
}

/** The consensus loaded for `preset`; synchronous so the per-request path never awaits an import. */
export function loadedConsensus(preset: PresetName): Consensus {
  if (loaded === undefined) {
    throw new SigningError("CONSENSUS_NOT_LOADED", `call and await loadConsensus("${preset}") at start-up before signing`);
  }
  if (loaded.preset !== preset) {
    throw new PresetError(`network uses preset "${preset}" but this process runs preset "${loaded.preset}"`);
  }
  return loaded;
}
