import { bytesToHex } from "../common/index.js";
import { sameKnownRoot } from "./codec.js";
import type { RefusalCode, RefusalConflict } from "./errors.js";
import type { AttestationSnapshot, BlockSnapshot } from "./history.js";

/**
 * The EIP-3076 "complete" strategy, as pure functions over what the database holds for one validator.
 * The database keeps every signed message; the low watermarks are the oldest recorded slot / source /
 * target, raised further by explicit watermarks. A message is
 *  - "new": safe, and must be recorded before it is signed;
 *  - "repeat": exactly a recorded message (same known signing root), safe to sign again, nothing to record;
 *  - refused, with the reason and, where there is one, the recorded message or watermark it collides with.
 */
export type Verdict = { kind: "new" } | { kind: "repeat" } | { kind: "refused"; code: RefusalCode; reason: string; existing?: RefusalConflict };

const NEW: Verdict = { kind: "new" };
const REPEAT: Verdict = { kind: "repeat" };
const refuse = (code: RefusalCode, reason: string, existing?: RefusalConflict): Verdict =>
  existing === undefined ? { kind: "refused", code, reason } : { kind: "refused", code, reason, existing };

export function judgeBlock(history: BlockSnapshot, slot: bigint, root: Buffer | null): Verdict {
  // First, even before a repeat: at a cut-over this signer must sign nothing from the high watermark on (Web3Signer).
  const high = history.highSlot;
  if (high !== null && slot >= high) {
    return refuse("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK", `slot ${slot} is at or above the high watermark slot ${high}`, {
      kind: "highWatermark",
      slot: high,
    });
  }
  const recorded = history.recordedRoot;
  if (recorded !== undefined) {
    if (sameKnownRoot(recorded, root)) return REPEAT;
    return refuse("DOUBLE_BLOCK_PROPOSAL", `a block with a different or unknown signing root was already signed at slot ${slot}`, {
      kind: "block",
      slot,
      signingRoot: recorded === null ? null : bytesToHex(recorded),
    });
  }
  const watermark = history.watermarks.blockSlot;
  if (watermark !== null && slot <= watermark) {
    return refuse("BLOCK_SLOT_AT_OR_BELOW_WATERMARK", `slot ${slot} is at or below the low watermark ${watermark}`, { kind: "watermark", slot: watermark });
  }
  return NEW;
}

export function judgeAttestation(history: AttestationSnapshot, source: bigint, target: bigint): Verdict {
  if (source > target) return refuse("SOURCE_EXCEEDS_TARGET", `source epoch ${source} is greater than target epoch ${target}`);
  const high = history.highEpoch;
  if (high !== null && target >= high) {
    // source <= target here, so this bounds both epochs, as Web3Signer does.
    return refuse("ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK", `target epoch ${target} is at or above the high watermark epoch ${high}`, {
      kind: "highWatermark",
      epoch: high,
    });
  }
  if (history.exactRepeat) return REPEAT;
  if (history.votesAtTarget > 0) {
    return refuse("DOUBLE_VOTE", `an attestation with a different or unknown signing root was already signed for target epoch ${target}`, {
      kind: "attestation",
      target,
    });
  }
  const { sourceEpoch: sourceMark, targetEpoch: targetMark } = history.watermarks;
  if (sourceMark !== null && source < sourceMark) {
    return refuse("SOURCE_BELOW_WATERMARK", `source epoch ${source} is below the low watermark ${sourceMark}`, { kind: "watermark", sourceEpoch: sourceMark });
  }
  if (targetMark !== null && target <= targetMark) {
    return refuse("TARGET_AT_OR_BELOW_WATERMARK", `target epoch ${target} is at or below the low watermark ${targetMark}`, {
      kind: "watermark",
      targetEpoch: targetMark,
    });
  }
  const inner = history.surroundedByNew;
  if (inner)
    return refuse("SURROUNDING_VOTE", `(${source}, ${target}) surrounds the recorded vote (${inner.source}, ${inner.target})`, {
      kind: "attestation",
      ...inner,
    });
  const outer = history.surroundingNew;
  if (outer)
    return refuse("SURROUNDED_VOTE", `(${source}, ${target}) is surrounded by the recorded vote (${outer.source}, ${outer.target})`, {
      kind: "attestation",
      ...outer,
    });
  return NEW;
}
