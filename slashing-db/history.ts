import type Database from "better-sqlite3";

/** One recorded attestation, as the rules see it. */
export interface RecordedAttestation {
  source: bigint;
  target: bigint;
  signingRoot: Buffer | null;
}

export interface LowWatermarks {
  blockSlot: bigint | null;
  sourceEpoch: bigint | null;
  targetEpoch: bigint | null;
}

/**
 * Every query the slashing rules need, as prepared statements on one connection. The rules only read
 * through this class, so they can be read (and tested) without SQL in sight.
 */
export class HistoryQueries {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      validatorId: db.prepare<[Buffer], { id: bigint }>("SELECT id FROM validators WHERE pubkey = ?"),
      insertValidator: db.prepare<[Buffer]>("INSERT OR IGNORE INTO validators (pubkey) VALUES (?)"),
      blockAtSlot: db.prepare<[bigint, bigint], { signing_root: Buffer | null }>(
        "SELECT signing_root FROM signed_blocks WHERE validator_id = ? AND slot = ?",
      ),
      minBlockSlot: db.prepare<[bigint], { s: bigint | null }>("SELECT MIN(slot) AS s FROM signed_blocks WHERE validator_id = ?"),
      insertBlock: db.prepare<[bigint, bigint, Buffer | null]>(
        "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?, ?, ?)",
      ),
      forgetBlockRoot: db.prepare<[bigint, bigint]>("UPDATE signed_blocks SET signing_root = NULL WHERE validator_id = ? AND slot = ?"),
      attestationsAtTarget: db.prepare<[bigint, bigint], { source_epoch: bigint; signing_root: Buffer | null }>(
        "SELECT source_epoch, signing_root FROM signed_attestations WHERE validator_id = ? AND target_epoch = ?",
      ),
      // Recorded (s0, t0) with s < s0 and t0 < t: the new vote surrounds it. Walks the source index upward
      // from s, which only touches the validator's most recent votes.
      surroundedByNew: db.prepare<[bigint, bigint, bigint], { source_epoch: bigint; target_epoch: bigint }>(
        `SELECT source_epoch, target_epoch FROM signed_attestations INDEXED BY signed_attestations_by_source
         WHERE validator_id = ? AND source_epoch > ? AND target_epoch < ? LIMIT 1`,
      ),
      // Recorded (s0, t0) with s0 < s and t < t0: it surrounds the new vote. Walks the primary key from t up.
      surroundingNew: db.prepare<[bigint, bigint, bigint], { source_epoch: bigint; target_epoch: bigint }>(
        `SELECT source_epoch, target_epoch FROM signed_attestations
         WHERE validator_id = ? AND target_epoch > ? AND source_epoch < ? LIMIT 1`,
      ),
      minSource: db.prepare<[bigint], { s: bigint | null }>(
        "SELECT MIN(source_epoch) AS s FROM signed_attestations INDEXED BY signed_attestations_by_source WHERE validator_id = ?",
      ),
      minTarget: db.prepare<[bigint], { t: bigint | null }>("SELECT MIN(target_epoch) AS t FROM signed_attestations WHERE validator_id = ?"),
      insertAttestation: db.prepare<[bigint, bigint, bigint, Buffer | null]>(
        "INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root) VALUES (?, ?, ?, ?)",
      ),
      forgetAttestationRoot: db.prepare<[bigint, bigint, bigint]>(
        "UPDATE signed_attestations SET signing_root = NULL WHERE validator_id = ? AND target_epoch = ? AND source_epoch = ?",
      ),
      watermarks: db.prepare<[bigint], { block_slot: bigint | null; source_epoch: bigint | null; target_epoch: bigint | null }>(
        "SELECT block_slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = ?",
      ),
      raiseWatermarks: db.prepare<[bigint, bigint | null, bigint | null, bigint | null]>(
        `INSERT INTO low_watermarks (validator_id, block_slot, source_epoch, target_epoch) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (validator_id) DO UPDATE SET
           block_slot   = CASE WHEN ?2 IS NULL THEN block_slot
                               WHEN block_slot IS NULL OR ?2 > block_slot THEN ?2 ELSE block_slot END,
           source_epoch = CASE WHEN ?3 IS NULL THEN source_epoch
                               WHEN source_epoch IS NULL OR ?3 > source_epoch THEN ?3 ELSE source_epoch END,
           target_epoch = CASE WHEN ?4 IS NULL THEN target_epoch
                               WHEN target_epoch IS NULL OR ?4 > target_epoch THEN ?4 ELSE target_epoch END`,
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

  minBlockSlot(validatorId: bigint): bigint | null {
    return this.stmt.minBlockSlot.get(validatorId)?.s ?? null;
  }

  insertBlock(validatorId: bigint, slot: bigint, root: Buffer | null): void {
    this.stmt.insertBlock.run(validatorId, slot, root);
  }

  forgetBlockRoot(validatorId: bigint, slot: bigint): void {
    this.stmt.forgetBlockRoot.run(validatorId, slot);
  }

  attestationsAtTarget(validatorId: bigint, target: bigint): RecordedAttestation[] {
    return this.stmt.attestationsAtTarget
      .all(validatorId, target)
      .map((row) => ({ source: row.source_epoch, target, signingRoot: row.signing_root }));
  }

  /** A recorded vote that (source, target) would surround, if any. */
  findSurroundedBy(validatorId: bigint, source: bigint, target: bigint): RecordedAttestation | null {
    const row = this.stmt.surroundedByNew.get(validatorId, source, target);
    return row ? { source: row.source_epoch, target: row.target_epoch, signingRoot: null } : null;
  }

  /** A recorded vote that surrounds (source, target), if any. */
  findSurrounding(validatorId: bigint, source: bigint, target: bigint): RecordedAttestation | null {
    const row = this.stmt.surroundingNew.get(validatorId, target, source);
    return row ? { source: row.source_epoch, target: row.target_epoch, signingRoot: null } : null;
  }

  minSourceEpoch(validatorId: bigint): bigint | null {
    return this.stmt.minSource.get(validatorId)?.s ?? null;
  }

  minTargetEpoch(validatorId: bigint): bigint | null {
    return this.stmt.minTarget.get(validatorId)?.t ?? null;
  }

  insertAttestation(validatorId: bigint, source: bigint, target: bigint, root: Buffer | null): void {
    this.stmt.insertAttestation.run(validatorId, target, source, root);
  }

  forgetAttestationRoot(validatorId: bigint, source: bigint, target: bigint): void {
    this.stmt.forgetAttestationRoot.run(validatorId, target, source);
  }

  explicitWatermarks(validatorId: bigint): LowWatermarks {
    const row = this.stmt.watermarks.get(validatorId);
    return { blockSlot: row?.block_slot ?? null, sourceEpoch: row?.source_epoch ?? null, targetEpoch: row?.target_epoch ?? null };
  }

  /** Raises (never lowers) the explicit watermarks; a null leaves that one as it is. */
  raiseWatermarks(validatorId: bigint, marks: LowWatermarks): void {
    this.stmt.raiseWatermarks.run(validatorId, marks.blockSlot, marks.sourceEpoch, marks.targetEpoch);
  }
}
