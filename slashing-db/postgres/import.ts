import { sameKnownRoot } from "../codec.js";
import type { ImportSummary } from "../interchange/import.js";
import type { ParsedInterchange } from "../interchange/parse.js";
import type { PgHistory } from "./history.js";

/**
 * mergeInterchange (../interchange/import.ts) over PostgreSQL: the same merge, step for step (new records
 * added, identical ones skipped, a clash keeps the slot or vote and forgets its root), awaited. The caller runs
 * it inside one transaction holding the validators' row locks (`ids`: hex pubkey -> row id).
 */
export async function mergeInterchangePg(history: PgHistory, ids: Map<string, string>, interchange: ParsedInterchange): Promise<ImportSummary> {
  const summary: ImportSummary = { validators: 0, blocksAdded: 0, attestationsAdded: 0, conflictsMadeUnknown: 0 };
  const seen = new Set<string>();
  for (const record of interchange.records) {
    const hex = record.pubkey.toString("hex");
    const validatorId = ids.get(hex)!;
    seen.add(hex);
    for (const block of record.blocks) {
      const recorded = await history.blockRootAt(validatorId, block.slot);
      if (recorded === undefined) {
        await history.insertBlock(validatorId, block.slot, block.signingRoot);
        summary.blocksAdded++;
      } else if (recorded !== null && !sameKnownRoot(recorded, block.signingRoot)) {
        await history.forgetBlockRoot(validatorId, block.slot);
        summary.conflictsMadeUnknown++;
      }
    }
    for (const att of record.attestations) {
      const recorded = (await history.attestationsAtTarget(validatorId, att.target)).find((rec) => rec.source === att.source);
      if (recorded === undefined) {
        await history.insertAttestation(validatorId, att.source, att.target, att.signingRoot);
        summary.attestationsAdded++;
      } else if (recorded.signingRoot !== null && !sameKnownRoot(recorded.signingRoot, att.signingRoot)) {
        await history.forgetAttestationRoot(validatorId, att.source, att.target);
        summary.conflictsMadeUnknown++;
      }
    }
  }
  summary.validators = seen.size;
  return summary;
}
