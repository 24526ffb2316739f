/**
 * Refuses a slashable message (block, attestation) implausibly far ahead of the network's wall clock, before
 * anything is recorded. Slashing protection records what it signs and refuses what conflicts with it, so one
 * recorded message far in the future (an attestation with target 2^63−1, say) would make every later real one
 * a surround vote or a slot below the watermark: refused for good. An honest validator client never asks for
 * more than its clock's current epoch (plus clock skew), so a small margin costs nothing.
 *
 * Only where the network's genesis time is known (network.genesisTime; built in for mainnet): without it there is
 * no wall clock to compare with and the guard is off.
 */
import type { SignRequest } from "../signing/index.js";
import { TooFarAheadError } from "./service-errors.js";

export interface WallClockSettings {
  genesisTime: number;
  secondsPerSlot: number;
  slotsPerEpoch: number;
  /**
   * How many epochs ahead of the wall clock's epoch a block's slot or an attestation's epochs may be. The default
   * (2) covers clock skew between hosts and validator clients that prepare the next epoch's duties early, and
   * bounds the harm of a bad request to about two epochs of refused attestations.
   */
  maxEpochsAhead: number;
}

export class WallClockGuard {
  private readonly genesisMs: number;
  private readonly slotMs: number;
  private readonly slotsPerEpoch: bigint;
  private readonly margin: bigint;

  constructor(
    settings: WallClockSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.genesisMs = settings.genesisTime * 1000;
    this.slotMs = settings.secondsPerSlot * 1000;
    this.slotsPerEpoch = BigInt(settings.slotsPerEpoch);
    this.margin = BigInt(settings.maxEpochsAhead);
  }

  /** The wall clock's epoch (0 before genesis). */
  currentEpoch(): bigint {
    const slot = Math.max(0, Math.floor((this.now() - this.genesisMs) / this.slotMs));
    return BigInt(slot) / this.slotsPerEpoch;
  }

  /** Throws TooFarAheadError (SLOT_TOO_FAR_AHEAD / EPOCH_TOO_FAR_AHEAD); other types pass. Call on a validated request. */
  check(request: SignRequest): void {
    if (request.type === "ATTESTATION") {
      const { source, target } = request.attestation;
      const latest = this.currentEpoch() + this.margin;
      for (const [what, epoch] of [
        ["target", target.epoch],
        ["source", source.epoch],
      ] as const) {
        if (BigInt(epoch) > latest) {
          throw new TooFarAheadError(
            "EPOCH_TOO_FAR_AHEAD",
            BigInt(epoch),
            latest,
            `attestation ${what} epoch ${epoch} is beyond epoch ${latest} (the wall clock's epoch + limits.maxEpochsAhead)`,
          );
        }
      }
      return;
    }
    if (request.type === "BLOCK" || request.type === "BLOCK_V2") {
      const slot = BigInt(blockSlot(request));
      const latestEpoch = this.currentEpoch() + this.margin;
      if (slot / this.slotsPerEpoch > latestEpoch) {
        const latestSlot = (latestEpoch + 1n) * this.slotsPerEpoch - 1n;
        throw new TooFarAheadError(
          "SLOT_TOO_FAR_AHEAD",
          slot,
          latestSlot,
          `block slot ${slot} is beyond slot ${latestSlot} (the end of the wall clock's epoch + limits.maxEpochsAhead)`,
        );
      }
    }
  }
}

function blockSlot(request: SignRequest & { type: "BLOCK" | "BLOCK_V2" }): string {
  if (request.type === "BLOCK") return request.block.slot;
  const b = request.beacon_block;
  return "block" in b ? b.block.slot : b.block_header.slot;
}
