import { sameKnownRoot } from "../codec.js";
import type { HistoryQueries } from "../history.js";
import type { ParsedInterchange } from "./parse.js";

export interface ImportSummary {
  validators: number;
  blocksAdded: number;
  attestationsAdded: number;
  /** Records that clashed with history (same slot or target+source, different root): their root is now unknown. */
  conflictsMadeUnknown: number;
}

/**
 * Merges an interchange into the history (run inside one transaction by the caller).
 *
 * Merging keeps every safety fact of both sides: a record new to the database is added; an identical one is
 * skipped; one that clashes with a recorded message at the same slot (or target and source) keeps the slot
 * but forgets the root, so neither message can be signed again. Slashable data inside an interchange is
 * imported as it is (EIP-3076 asks importers to accept it); it only ever makes later checks stricter.
 */
export function mergeInterchange(history: HistoryQueries, interchange: ParsedInterchange): ImportSummary {
  const summary: ImportSummary = { validators: 0, blocksAdded: 0, attestationsAdded: 0, conflictsMadeUnknown: 0 };
  const seen = new Set<string>();
  for (const record of interchange.records) {
    const validatorId = history.registerValidator(record.pubkey);
    seen.add(record.pubkey.toString("hex"));
    for (const block of record.blocks) {
      const recorded = history.blockRootAt(validatorId, block.slot);
      if (recorded === undefined) {
        history.insertBlock(validatorId, block.slot, block.signingRoot);
        summary.blocksAdded++;
      } else if (recorded !== null && !sameKnownRoot(recorded, block.signingRoot)) {
        history.forgetBlockRoot(validatorId, block.slot);
        summary.conflictsMadeUnknown++;
      }
    }
    for (const att of record.attestations) {
      const recorded = history.attestationsAtTarget(validatorId, att.target).find((rec) => rec.source === att.source);
      if (recorded === undefined) {
        history.insertAttestation(validatorId, att.source, att.target, att.signingRoot);
        summary.attestationsAdded++;
      } else if (recorded.signingRoot !== null && !sameKnownRoot(recorded.signingRoot, att.signingRoot)) {
        history.forgetAttestationRoot(validatorId, att.source, att.target);
        summary.conflictsMadeUnknown++;
      }
    }
  }
  summary.validators = seen.size;
  return summary;
}
