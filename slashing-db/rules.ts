import { sameKnownRoot } from "./codec.js";
import type { RefusalCode } from "./errors.js";
import type { HistoryQueries } from "./history.js";

/**
 * The EIP-3076 "complete" strategy: the database keeps every signed message and the low watermarks are
 * the oldest recorded slot / source / target (raised further by explicit watermarks). A message is
 *  - "new": safe, and must be recorded before it is signed;
 *  - "repeat": exactly a recorded message (same known signing root), safe to sign again, nothing to record;
 *  - refused, with the reason.
 */
export type Verdict = { kind: "new" } | { kind: "repeat" } | { kind: "refused"; code: RefusalCode; reason: string };

const NEW: Verdict = { kind: "new" };
const REPEAT: Verdict = { kind: "repeat" };
const refuse = (code: RefusalCode, reason: string): Verdict => ({ kind: "refused", code, reason });

/** Larger of two optional bounds: the effective watermark is the stricter of the explicit one and the history's. */
function stricter(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

export function judgeBlock(history: HistoryQueries, validatorId: bigint | null, slot: bigint, root: Buffer | null): Verdict {
  if (validatorId === null) return NEW; // never signed anything, no watermark
  const recordedRoot = history.blockRootAt(validatorId, slot);
  if (recordedRoot !== undefined) {
    if (sameKnownRoot(recordedRoot, root)) return REPEAT;
    return refuse("DOUBLE_BLOCK_PROPOSAL", `a different${recordedRoot === null ? " (unknown)" : ""} block was already signed at slot ${slot}`);
  }
  const watermark = stricter(history.explicitWatermarks(validatorId).blockSlot, history.minBlockSlot(validatorId));
  if (watermark !== null && slot <= watermark) {
    return refuse("BLOCK_SLOT_AT_OR_BELOW_WATERMARK", `slot ${slot} is at or below the low watermark ${watermark}`);
  }
  return NEW;
}

export function judgeAttestation(
  history: HistoryQueries,
  validatorId: bigint | null,
  source: bigint,
  target: bigint,
  root: Buffer | null,
): Verdict {
  if (source > target) return refuse("SOURCE_EXCEEDS_TARGET", `source epoch ${source} is greater than target epoch ${target}`);
  if (validatorId === null) return NEW;

  const atTarget = history.attestationsAtTarget(validatorId, target);
  if (atTarget.some((rec) => rec.source === source && sameKnownRoot(rec.signingRoot, root))) return REPEAT;
  if (atTarget.length > 0) {
    return refuse("DOUBLE_VOTE", `a different${atTarget[0]!.signingRoot === null ? " (unknown)" : ""} attestation was already signed for target epoch ${target}`);
  }

  const explicit = history.explicitWatermarks(validatorId);
  const sourceMark = stricter(explicit.sourceEpoch, history.minSourceEpoch(validatorId));
  if (sourceMark !== null && source < sourceMark) {
    return refuse("SOURCE_BELOW_WATERMARK", `source epoch ${source} is below the low watermark ${sourceMark}`);
  }
  const targetMark = stricter(explicit.targetEpoch, history.minTargetEpoch(validatorId));
  if (targetMark !== null && target <= targetMark) {
    return refuse("TARGET_AT_OR_BELOW_WATERMARK", `target epoch ${target} is at or below the low watermark ${targetMark}`);
  }

  const surrounded = history.findSurroundedBy(validatorId, source, target);
  if (surrounded) {
    return refuse("SURROUNDING_VOTE", `(${source}, ${target}) surrounds the recorded vote (${surrounded.source}, ${surrounded.target})`);
  }
  const surrounding = history.findSurrounding(validatorId, source, target);
  if (surrounding) {
    return refuse("SURROUNDED_VOTE", `(${source}, ${target}) is surrounded by the recorded vote (${surrounding.source}, ${surrounding.target})`);
  }
  return NEW;
}
