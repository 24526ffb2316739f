import type Database from "better-sqlite3";

/** One recorded attestation, as the rules see it. */
export interface RecordedAttestation {
  source: bigint;
  target: bigint;
  signingRoot: Buffer | null;
}

/** Everything the block rule needs about one validator and slot, read in one statement. */
export interface BlockSnapshot {
  /** undefined: no block at this slot; null: one with an unknown root; else its root. */
  recordedRoot: Buffer | null | undefined;
  watermarks: LowWatermarks;
  /** The lower of this validator's and every validator's high watermark slot; null: none. */
  highSlot: bigint | null;
}

/** Everything the attestation rules need about one validator and vote, read in one statement. */
export interface AttestationSnapshot {
  /** A recorded vote with the same source, target and known signing root. */
  exactRepeat: boolean;
  /** Recorded votes for the same target (any source or root). */
  votesAtTarget: number;
  watermarks: LowWatermarks;
  /** The lower of this validator's and every validator's high watermark epoch; null: none. */
  highEpoch: bigint | null;
  /** A recorded vote the new one would surround, if any. */
  surroundedByNew: { source: bigint; target: bigint } | null;
  /** A recorded vote surrounding the new one, if any. */
  surroundingNew: { source: bigint; target: bigint } | null;
}

export const NO_WATERMARKS: LowWatermarks = { blockSlot: null, sourceEpoch: null, targetEpoch: null };

export interface LowWatermarks {
  blockSlot: bigint | null;
  sourceEpoch: bigint | null;
  targetEpoch: bigint | null;
}

interface BlockSnapshotRow {
  min_block_slot: bigint | null;
  mark_slot: bigint | null;
  has_block: bigint;
  recorded_root: Buffer | null;
  high_slot: bigint | null;
}

interface AttestationSnapshotRow {
  min_source_epoch: bigint | null;
  min_target_epoch: bigint | null;
  mark_source: bigint | null;
  mark_target: bigint | null;
  exact_repeat: bigint;
  votes_at_target: bigint;
  surrounded_by_new: string | null;
  surrounding_new: string | null;
  high_epoch: bigint | null;
}

/** Row 0 of high_watermarks bounds every validator (../schema.ts); MIN ignores NULLs. */
export const HIGH_SLOT_SQL = "(SELECT MIN(slot) FROM high_watermarks WHERE validator_id IN (0, v.id))";
export const HIGH_EPOCH_SQL = "(SELECT MIN(epoch) FROM high_watermarks WHERE validator_id IN (0, v.id))";

function parseVote(text: string | null): { source: bigint; target: bigint } | null {
  if (text === null) return null;
  const [source, target] = text.split(" ");
  return { source: BigInt(source!), target: BigInt(target!) };
}

/** Larger of two optional bounds: the stricter watermark. */
function stricter(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

/**
 * Every query the slashing rules need, as prepared statements on one connection. The rules only read
 * through this class, so they can be read (and tested) without SQL in sight.
 */
export class HistoryQueries {
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      validatorId: db.prepare<[Buffer], { id: bigint }>("SELECT id FROM validators WHERE pubkey = ?"),
      insertValidator: db.prepare<[Buffer]>("INSERT OR IGNORE INTO validators (pubkey) VALUES (?)"),
      blockSnapshot: db.prepare<[{ id: bigint; slot: bigint }], BlockSnapshotRow>(
        `SELECT v.min_block_slot, w.block_slot AS mark_slot,
                b.slot IS NOT NULL AS has_block, b.signing_root AS recorded_root, ${HIGH_SLOT_SQL} AS high_slot
         FROM validators v
         LEFT JOIN low_watermarks w ON w.validator_id = v.id
         LEFT JOIN signed_blocks b ON b.validator_id = v.id AND b.slot = @slot
         WHERE v.id = @id`,
      ),
      // One statement for the whole attestation judgement: one call into SQLite per check instead of five.
      // Surround searches: for an ordinary record (s0 <= t0), "new surrounds it" forces s < t0 < t, a short
      // primary-key range; inverted records (s0 > t0, import only) come from their partial index. A record
      // surrounding the new vote must have t0 > t, and cannot be inverted (s0 > t0 > t >= s contradicts s0 < s).
      attestationSnapshot: db.prepare<[{ id: bigint; s: bigint; t: bigint; root: Buffer | null }], AttestationSnapshotRow>(
        `SELECT v.min_source_epoch, v.min_target_epoch, w.source_epoch AS mark_source, w.target_epoch AS mark_target,
                EXISTS (SELECT 1 FROM signed_attestations
                        WHERE validator_id = @id AND target_epoch = @t AND source_epoch = @s AND signing_root = @root) AS exact_repeat,
                (SELECT COUNT(*) FROM signed_attestations WHERE validator_id = @id AND target_epoch = @t) AS votes_at_target,
                (SELECT source_epoch || ' ' || target_epoch FROM (
                   SELECT source_epoch, target_epoch FROM signed_attestations
                     WHERE validator_id = @id AND target_epoch > @s AND target_epoch < @t AND source_epoch > @s
                   UNION ALL
                   SELECT source_epoch, target_epoch FROM signed_attestations INDEXED BY inverted_attestations
                     WHERE validator_id = @id AND source_epoch > target_epoch AND source_epoch > @s AND target_epoch < @t
                 ) LIMIT 1) AS surrounded_by_new,
                (SELECT source_epoch || ' ' || target_epoch FROM signed_attestations
                   WHERE validator_id = @id AND target_epoch > @t AND source_epoch < @s LIMIT 1) AS surrounding_new,
                ${HIGH_EPOCH_SQL} AS high_epoch
         FROM validators v LEFT JOIN low_watermarks w ON w.validator_id = v.id WHERE v.id = @id`,
      ),
      blockAtSlot: db.prepare<[bigint, bigint], { signing_root: Buffer | null }>("SELECT signing_root FROM signed_blocks WHERE validator_id = ? AND slot = ?"),
      // Normal signing never lowers a bound, so these match no row and dirty no page.
      lowerBlockBound: db.prepare<[{ id: bigint; slot: bigint }]>(
        "UPDATE validators SET min_block_slot = @slot WHERE id = @id AND (min_block_slot IS NULL OR min_block_slot > @slot)",
      ),
      lowerAttestationBounds: db.prepare<[{ id: bigint; source: bigint; target: bigint }]>(
        `UPDATE validators SET
           min_source_epoch = CASE WHEN min_source_epoch IS NULL OR min_source_epoch > @source THEN @source ELSE min_source_epoch END,
           min_target_epoch = CASE WHEN min_target_epoch IS NULL OR min_target_epoch > @target THEN @target ELSE min_target_epoch END
         WHERE id = @id AND (min_source_epoch IS NULL OR min_source_epoch > @source OR min_target_epoch > @target)`,
      ),
      recomputeBounds: db.prepare<[{ id: bigint }]>(
        `UPDATE validators SET
           min_block_slot   = (SELECT MIN(slot) FROM signed_blocks WHERE validator_id = @id),
           min_source_epoch = (SELECT MIN(source_epoch) FROM signed_attestations WHERE validator_id = @id),
           min_target_epoch = (SELECT MIN(target_epoch) FROM signed_attestations WHERE validator_id = @id)
         WHERE id = @id`,
      ),
      insertBlock: db.prepare<[bigint, bigint, Buffer | null]>("INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?, ?, ?)"),
      forgetBlockRoot: db.prepare<[bigint, bigint]>("UPDATE signed_blocks SET signing_root = NULL WHERE validator_id = ? AND slot = ?"),
      attestationsAtTarget: db.prepare<[bigint, bigint], { source_epoch: bigint; signing_root: Buffer | null }>(
        "SELECT source_epoch, signing_root FROM signed_attestations WHERE validator_id = ? AND target_epoch = ?",
      ),
      insertAttestation: db.prepare<[bigint, bigint, bigint, Buffer | null]>(
        "INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root) VALUES (?, ?, ?, ?)",
      ),
      forgetAttestationRoot: db.prepare<[bigint, bigint, bigint]>(
        "UPDATE signed_attestations SET signing_root = NULL WHERE validator_id = ? AND target_epoch = ? AND source_epoch = ?",
      ),
      raiseWatermarks: db.prepare<[{ id: bigint; slot: bigint | null; source: bigint | null; target: bigint | null }]>(
        `INSERT INTO low_watermarks (validator_id, block_slot, source_epoch, target_epoch) VALUES (@id, @slot, @source, @target)
         ON CONFLICT (validator_id) DO UPDATE SET
           block_slot   = CASE WHEN @slot IS NULL THEN block_slot
                               WHEN block_slot IS NULL OR @slot > block_slot THEN @slot ELSE block_slot END,
           source_epoch = CASE WHEN @source IS NULL THEN source_epoch
                               WHEN source_epoch IS NULL OR @source > source_epoch THEN @source ELSE source_epoch END,
           target_epoch = CASE WHEN @target IS NULL THEN target_epoch
                               WHEN target_epoch IS NULL OR @target > target_epoch THEN @target ELSE target_epoch END`,
      ),
    };
  }

  /** The validator's row id, or null if it has never been seen. */
  findValidator(pubkey: Buffer): bigint | null {
    return this.stmt.validatorId.get(pubkey)?.id ?? null;
  }

  /** The validator's row id, registering it if new (must run inside a write transaction). */
  registerValidator(pubkey: Buffer): bigint {
    this.stmt.insertValidator.run(pubkey);
    return this.stmt.validatorId.get(pubkey)!.id;
  }

  /** undefined: no block at this slot; null: a block whose root is unknown; else its root. */
  blockRootAt(validatorId: bigint, slot: bigint): Buffer | null | undefined {
    const row = this.stmt.blockAtSlot.get(validatorId, slot);
    return row === undefined ? undefined : row.signing_root;
  }

  blockSnapshot(validatorId: bigint, slot: bigint): BlockSnapshot {
    const row = this.stmt.blockSnapshot.get({ id: validatorId, slot });
    if (!row) return { recordedRoot: undefined, watermarks: NO_WATERMARKS, highSlot: null };
    return {
      recordedRoot: row.has_block ? row.recorded_root : undefined,
      watermarks: { blockSlot: stricter(row.min_block_slot, row.mark_slot), sourceEpoch: null, targetEpoch: null },
      highSlot: row.high_slot,
    };
  }

  attestationSnapshot(validatorId: bigint, source: bigint, target: bigint, root: Buffer | null): AttestationSnapshot {
    const row = this.stmt.attestationSnapshot.get({ id: validatorId, s: source, t: target, root });
    if (!row) return { exactRepeat: false, votesAtTarget: 0, watermarks: NO_WATERMARKS, surroundedByNew: null, surroundingNew: null, highEpoch: null };
    return {
      exactRepeat: row.exact_repeat === 1n,
      highEpoch: row.high_epoch,
      votesAtTarget: Number(row.votes_at_target),
      watermarks: {
        blockSlot: null,
        sourceEpoch: stricter(row.min_source_epoch, row.mark_source),
        targetEpoch: stricter(row.min_target_epoch, row.mark_target),
      },
      surroundedByNew: parseVote(row.surrounded_by_new),
      surroundingNew: parseVote(row.surrounding_new),
    };
  }

  insertBlock(validatorId: bigint, slot: bigint, root: Buffer | null): void {
    this.stmt.insertBlock.run(validatorId, slot, root);
    this.stmt.lowerBlockBound.run({ id: validatorId, slot });
  }

  /** After rows were deleted (pruning), the oldest-record bounds must be read again. */
  recomputeBounds(validatorId: bigint): void {
    this.stmt.recomputeBounds.run({ id: validatorId });
  }

  forgetBlockRoot(validatorId: bigint, slot: bigint): void {
    this.stmt.forgetBlockRoot.run(validatorId, slot);
  }

  attestationsAtTarget(validatorId: bigint, target: bigint): RecordedAttestation[] {
    return this.stmt.attestationsAtTarget.all(validatorId, target).map((row) => ({ source: row.source_epoch, target, signingRoot: row.signing_root }));
  }

  insertAttestation(validatorId: bigint, source: bigint, target: bigint, root: Buffer | null): void {
    this.stmt.insertAttestation.run(validatorId, target, source, root);
    this.stmt.lowerAttestationBounds.run({ id: validatorId, source, target });
  }

  forgetAttestationRoot(validatorId: bigint, source: bigint, target: bigint): void {
    this.stmt.forgetAttestationRoot.run(validatorId, target, source);
  }

  /** Raises (never lowers) the explicit watermarks; a null leaves that one as it is. */
  raiseWatermarks(validatorId: bigint, marks: LowWatermarks): void {
    this.stmt.raiseWatermarks.run({ id: validatorId, slot: marks.blockSlot, source: marks.sourceEpoch, target: marks.targetEpoch });
  }
}
