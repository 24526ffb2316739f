import type Database from "better-sqlite3";
import type { HistoryQueries } from "./history.js";

export interface PruneOptions {
  /** Keep every attestation whose target is within this many epochs of the validator's newest one. */
  keepEpochs: number;
  /** Slots per epoch of the network (32 mainnet, 8 minimal): blocks keep keepEpochs × this many slots. */
  slotsPerEpoch: number;
}

export interface PruneSummary {
  validators: number;
  blocksDeleted: number;
  attestationsDeleted: number;
}

/** Validators pruned per transaction, so a running signer never waits long for the write lock. */
const VALIDATORS_PER_TRANSACTION = 256;

/**
 * Deletes old history while keeping exactly the protection it gave: the newest rows of each validator are
 * never touched (the cut-off is relative to the validator's own newest slot / target), and the explicit low
 * watermarks are raised to the largest slot, source and target deleted. Refusing everything at or below
 * those covers every double vote, surround and double proposal the deleted rows could have caught.
 * Freed pages go back to the filesystem (incremental vacuum), so the file stays bounded.
 */
export function pruneHistory(db: Database.Database, history: HistoryQueries, opts: PruneOptions): PruneSummary {
  const keepSlots = BigInt(opts.keepEpochs) * BigInt(opts.slotsPerEpoch);
  const keepEpochs = BigInt(opts.keepEpochs);
  const ids = db
    .prepare<[], { id: bigint }>("SELECT id FROM validators ORDER BY id")
    .all()
    .map((r) => r.id);
  const blockCut = db.prepare<[{ id: bigint; keep: bigint }], { n: bigint; max_slot: bigint | null }>(
    `SELECT COUNT(*) AS n, MAX(slot) AS max_slot FROM signed_blocks
     WHERE validator_id = @id AND slot < (SELECT MAX(slot) FROM signed_blocks WHERE validator_id = @id) - @keep`,
  );
  const deleteBlocks = db.prepare<[bigint, bigint]>("DELETE FROM signed_blocks WHERE validator_id = ? AND slot <= ?");
  const attCut = db.prepare<[{ id: bigint; keep: bigint }], { n: bigint; max_source: bigint | null; max_target: bigint | null }>(
    `SELECT COUNT(*) AS n, MAX(source_epoch) AS max_source, MAX(target_epoch) AS max_target FROM signed_attestations
     WHERE validator_id = @id AND target_epoch < (SELECT MAX(target_epoch) FROM signed_attestations WHERE validator_id = @id) - @keep`,
  );
  const deleteAtts = db.prepare<[bigint, bigint]>("DELETE FROM signed_attestations WHERE validator_id = ? AND target_epoch <= ?");

  const summary: PruneSummary = { validators: 0, blocksDeleted: 0, attestationsDeleted: 0 };
  for (let i = 0; i < ids.length; i += VALIDATORS_PER_TRANSACTION) {
    db.transaction(() => {
      for (const id of ids.slice(i, i + VALIDATORS_PER_TRANSACTION)) {
        const blocks = blockCut.get({ id, keep: keepSlots })!;
        const atts = attCut.get({ id, keep: keepEpochs })!;
        if (blocks.n === 0n && atts.n === 0n) continue;
        // Raise first, delete second, in one transaction: the protection never has a gap.
        history.raiseWatermarks(id, { blockSlot: blocks.max_slot, sourceEpoch: atts.max_source, targetEpoch: atts.max_target });
        if (blocks.max_slot !== null) summary.blocksDeleted += deleteBlocks.run(id, blocks.max_slot).changes;
        if (atts.max_target !== null) summary.attestationsDeleted += deleteAtts.run(id, atts.max_target).changes;
        history.recomputeBounds(id);
        summary.validators++;
      }
    }).immediate();
  }
  db.pragma("incremental_vacuum");
  db.pragma("wal_checkpoint(TRUNCATE)");
  return summary;
}
