import type pg from "pg";
import {
  HIGH_EPOCH_SQL,
  HIGH_SLOT_SQL,
  NO_WATERMARKS,
  type AttestationSnapshot,
  type BlockSnapshot,
  type LowWatermarks,
  type RecordedAttestation,
} from "../history.js";
import { holdRegistrationShared } from "./registration-lock.js";

/**
 * The history queries of ../history.ts on PostgreSQL, building the same snapshots for the same pure rules
 * (../rules.ts). Every bigint travels as decimal text (int8 comes back as a string from node-postgres, and a
 * JS number cannot hold it); keys and roots are bytea.
 */
const big = (v: string | null): bigint | null => (v === null ? null : BigInt(v));
const stricter = (a: bigint | null, b: bigint | null): bigint | null => (a === null ? b : b === null ? a : a > b ? a : b);
const vote = (text: string | null) => {
  if (text === null) return null;
  const [source, target] = text.split(" ");
  return { source: BigInt(source!), target: BigInt(target!) };
};

/** The block snapshot of validator `id` at `slot` (SQL expressions: parameters, or columns of an unnested batch). */
const blockSnapshotSql = (id: string, slot: string) => `
  SELECT v.min_block_slot::text, w.block_slot::text AS mark_slot, b.slot IS NOT NULL AS has_block, b.signing_root AS recorded_root,
    ${HIGH_SLOT_SQL}::text AS high_slot
  FROM validators v
  LEFT JOIN low_watermarks w ON w.validator_id = v.id
  LEFT JOIN signed_blocks b ON b.validator_id = v.id AND b.slot = ${slot}
  WHERE v.id = ${id}`;

// Same shape and surround reasoning as the SQLite statement (../history.ts): a record the new vote surrounds is
// either ordinary (s < t0 < t, s0 > s) or inverted (import only, from its partial index); a surrounding one has t0 > t.
const attestationSnapshotSql = (id: string, s: string, t: string, root: string) => `
  SELECT v.min_source_epoch::text, v.min_target_epoch::text, w.source_epoch::text AS mark_source, w.target_epoch::text AS mark_target,
    EXISTS (SELECT 1 FROM signed_attestations
            WHERE validator_id = ${id} AND target_epoch = ${t} AND source_epoch = ${s} AND signing_root = ${root}) AS exact_repeat,
    (SELECT COUNT(*)::int FROM signed_attestations WHERE validator_id = ${id} AND target_epoch = ${t}) AS votes_at_target,
    (SELECT source_epoch || ' ' || target_epoch FROM (
       SELECT source_epoch, target_epoch FROM signed_attestations
         WHERE validator_id = ${id} AND target_epoch > ${s} AND target_epoch < ${t} AND source_epoch > ${s}
       UNION ALL
       SELECT source_epoch, target_epoch FROM signed_attestations
         WHERE validator_id = ${id} AND source_epoch > target_epoch AND source_epoch > ${s} AND target_epoch < ${t}
     ) inner_votes LIMIT 1) AS surrounded_by_new,
    (SELECT source_epoch || ' ' || target_epoch FROM signed_attestations
       WHERE validator_id = ${id} AND target_epoch > ${t} AND source_epoch < ${s} LIMIT 1) AS surrounding_new,
    ${HIGH_EPOCH_SQL}::text AS high_epoch
  FROM validators v LEFT JOIN low_watermarks w ON w.validator_id = v.id WHERE v.id = ${id}`;

const BLOCK_SNAPSHOT = blockSnapshotSql("$1::bigint", "$2::bigint");
const ATTESTATION_SNAPSHOT = attestationSnapshotSql("$1::bigint", "$2::bigint", "$3::bigint", "$4::bytea");
// Many validators' snapshots in one round trip (each validator at most once per call: see judgeAndRecord).
const BLOCK_SNAPSHOTS = `SELECT x.* FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS q(id, slot, ord)
  LEFT JOIN LATERAL (${blockSnapshotSql("q.id", "q.slot")}) x ON true ORDER BY q.ord`;
const ATTESTATION_SNAPSHOTS = `SELECT x.* FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[]) WITH ORDINALITY AS q(id, s, t, root, ord)
  LEFT JOIN LATERAL (${attestationSnapshotSql("q.id", "q.s", "q.t", "q.root")}) x ON true ORDER BY q.ord`;

interface BlockRow {
  min_block_slot: string | null;
  mark_slot: string | null;
  has_block: boolean | null;
  recorded_root: Buffer | null;
  high_slot: string | null;
}
interface AttestationRow {
  min_source_epoch: string | null;
  min_target_epoch: string | null;
  mark_source: string | null;
  mark_target: string | null;
  exact_repeat: boolean | null;
  votes_at_target: number | null;
  surrounded_by_new: string | null;
  surrounding_new: string | null;
  high_epoch: string | null;
}

function blockSnapshotOf(row: BlockRow | undefined): BlockSnapshot {
  if (!row) return { recordedRoot: undefined, watermarks: NO_WATERMARKS, highSlot: null };
  return {
    recordedRoot: row.has_block ? row.recorded_root : undefined,
    highSlot: big(row.high_slot),
    watermarks: { blockSlot: stricter(big(row.min_block_slot), big(row.mark_slot)), sourceEpoch: null, targetEpoch: null },
  };
}

function attestationSnapshotOf(row: AttestationRow | undefined): AttestationSnapshot {
  if (!row) return { exactRepeat: false, votesAtTarget: 0, watermarks: NO_WATERMARKS, surroundedByNew: null, surroundingNew: null, highEpoch: null };
  return {
    exactRepeat: row.exact_repeat === true,
    highEpoch: big(row.high_epoch),
    votesAtTarget: row.votes_at_target ?? 0,
    watermarks: {
      blockSlot: null,
      sourceEpoch: stricter(big(row.min_source_epoch), big(row.mark_source)),
      targetEpoch: stricter(big(row.min_target_epoch), big(row.mark_target)),
    },
    surroundedByNew: vote(row.surrounded_by_new),
    surroundingNew: vote(row.surrounding_new),
  };
}

export class PgHistory {
  constructor(private readonly db: pg.ClientBase) {}

  /**
   * Registers the validators that are new, then locks every given validator's row, in pubkey order: every
   * transaction that writes history takes its locks this way, so two can wait for each other but never in a
   * cycle. Returns hex pubkey -> row id.
   *
   * `known` (kept by the caller across transactions) holds validators whose rows are committed: when every
   * key is in it the INSERT is skipped, a round trip less per batch in the steady state. Only rows this
   * transaction did not insert enter it (ours may still roll back). Validator rows are never deleted; should
   * one the set knows be gone anyway, the batch fails (closed) and the set is emptied, rather than insert
   * after locking, which would break the order.
   */
  async lockValidators(pubkeys: Buffer[], known?: Set<string>): Promise<Map<string, string>> {
    const sorted = [...new Map(pubkeys.map((k) => [k.toString("hex"), k])).values()].sort(Buffer.compare);
    const insertedHere = new Set<string>();
    if (known === undefined || sorted.some((k) => !known.has(k.toString("hex")))) {
      // Before the first row lock: callers without `known` call this first in their transaction (see the lock).
      await holdRegistrationShared(this.db);
      const inserted = await this.db.query<{ pubkey: Buffer }>(
        "INSERT INTO validators (pubkey) SELECT k FROM unnest($1::bytea[]) AS k ORDER BY k ON CONFLICT (pubkey) DO NOTHING RETURNING pubkey",
        [sorted],
      );
      for (const r of inserted.rows) insertedHere.add(r.pubkey.toString("hex"));
    }
    const rows = await this.db.query<{ id: string; pubkey: Buffer }>(
      "SELECT id::text, pubkey FROM validators WHERE pubkey = ANY($1::bytea[]) ORDER BY pubkey FOR UPDATE",
      [sorted],
    );
    if (rows.rows.length !== sorted.length) {
      known?.clear();
      throw new Error("a validator row this instance had seen is gone (deleted by hand?): batch refused, the next one registers it again");
    }
    const ids = new Map<string, string>();
    for (const r of rows.rows) {
      const hex = r.pubkey.toString("hex");
      ids.set(hex, r.id);
      if (!insertedHere.has(hex)) known?.add(hex);
    }
    return ids;
  }

  async blockSnapshot(id: string, slot: bigint): Promise<BlockSnapshot> {
    return blockSnapshotOf((await this.db.query<BlockRow>(BLOCK_SNAPSHOT, [id, slot.toString()])).rows[0]);
  }

  async attestationSnapshot(id: string, source: bigint, target: bigint, root: Buffer | null): Promise<AttestationSnapshot> {
    return attestationSnapshotOf((await this.db.query<AttestationRow>(ATTESTATION_SNAPSHOT, [id, source.toString(), target.toString(), root])).rows[0]);
  }

  /** blockSnapshot for many checks in one round trip; each validator at most once (no check may see another's insert). */
  async blockSnapshots(items: { id: string; slot: bigint }[]): Promise<BlockSnapshot[]> {
    if (items.length === 0) return [];
    const rows = await this.db.query<BlockRow>(BLOCK_SNAPSHOTS, [items.map((i) => i.id), items.map((i) => i.slot.toString())]);
    return rows.rows.map(blockSnapshotOf);
  }

  /** attestationSnapshot for many checks in one round trip; each validator at most once. */
  async attestationSnapshots(items: { id: string; source: bigint; target: bigint; root: Buffer | null }[]): Promise<AttestationSnapshot[]> {
    if (items.length === 0) return [];
    const rows = await this.db.query<AttestationRow>(ATTESTATION_SNAPSHOTS, [
      items.map((i) => i.id),
      items.map((i) => i.source.toString()),
      items.map((i) => i.target.toString()),
      items.map((i) => i.root),
    ]);
    return rows.rows.map(attestationSnapshotOf);
  }

  /** insertBlock for many, in one round trip; each validator at most once (its bound is updated once). */
  async insertBlocks(items: { id: string; slot: bigint; root: Buffer | null }[]): Promise<void> {
    if (items.length === 0) return;
    await this.db.query(
      `WITH ins AS (INSERT INTO signed_blocks (validator_id, slot, signing_root) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]))
       UPDATE validators v SET min_block_slot = u.slot FROM unnest($1::bigint[], $2::bigint[]) AS u(id, slot)
       WHERE v.id = u.id AND (v.min_block_slot IS NULL OR v.min_block_slot > u.slot)`,
      [items.map((i) => i.id), items.map((i) => i.slot.toString()), items.map((i) => i.root)],
    );
  }

  /** insertAttestation for many, in one round trip; each validator at most once. */
  async insertAttestations(items: { id: string; source: bigint; target: bigint; root: Buffer | null }[]): Promise<void> {
    if (items.length === 0) return;
    await this.db.query(
      `WITH ins AS (INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root)
                    SELECT * FROM unnest($1::bigint[], $3::bigint[], $2::bigint[], $4::bytea[]))
       UPDATE validators v SET
         min_source_epoch = LEAST(COALESCE(v.min_source_epoch, u.s), u.s),
         min_target_epoch = LEAST(COALESCE(v.min_target_epoch, u.t), u.t)
       FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, s, t)
       WHERE v.id = u.id AND (v.min_source_epoch IS NULL OR v.min_source_epoch > u.s OR v.min_target_epoch > u.t)`,
      [items.map((i) => i.id), items.map((i) => i.source.toString()), items.map((i) => i.target.toString()), items.map((i) => i.root)],
    );
  }

  /** Inserts a block and lowers the oldest-slot bound if it is older (normal signing never is: no row changes). */
  async insertBlock(id: string, slot: bigint, root: Buffer | null): Promise<void> {
    await this.db.query(
      `WITH ins AS (INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES ($1, $2, $3))
       UPDATE validators SET min_block_slot = $2 WHERE id = $1 AND (min_block_slot IS NULL OR min_block_slot > $2)`,
      [id, slot.toString(), root],
    );
  }

  async insertAttestation(id: string, source: bigint, target: bigint, root: Buffer | null): Promise<void> {
    await this.db.query(
      `WITH ins AS (INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root) VALUES ($1, $3, $2, $4))
       UPDATE validators SET
         min_source_epoch = LEAST(COALESCE(min_source_epoch, $2), $2),
         min_target_epoch = LEAST(COALESCE(min_target_epoch, $3), $3)
       WHERE id = $1 AND (min_source_epoch IS NULL OR min_source_epoch > $2 OR min_target_epoch > $3)`,
      [id, source.toString(), target.toString(), root],
    );
  }

  /** undefined: no block at this slot; null: a block whose root is unknown; else its root. */
  async blockRootAt(id: string, slot: bigint): Promise<Buffer | null | undefined> {
    const row = (
      await this.db.query<{ signing_root: Buffer | null }>("SELECT signing_root FROM signed_blocks WHERE validator_id = $1 AND slot = $2", [
        id,
        slot.toString(),
      ])
    ).rows[0];
    return row === undefined ? undefined : row.signing_root;
  }

  async forgetBlockRoot(id: string, slot: bigint): Promise<void> {
    await this.db.query("UPDATE signed_blocks SET signing_root = NULL WHERE validator_id = $1 AND slot = $2", [id, slot.toString()]);
  }

  async attestationsAtTarget(id: string, target: bigint): Promise<RecordedAttestation[]> {
    const rows = await this.db.query<{ source_epoch: string; signing_root: Buffer | null }>(
      "SELECT source_epoch::text, signing_root FROM signed_attestations WHERE validator_id = $1 AND target_epoch = $2",
      [id, target.toString()],
    );
    return rows.rows.map((r) => ({ source: BigInt(r.source_epoch), target, signingRoot: r.signing_root }));
  }

  async forgetAttestationRoot(id: string, source: bigint, target: bigint): Promise<void> {
    await this.db.query("UPDATE signed_attestations SET signing_root = NULL WHERE validator_id = $1 AND target_epoch = $2 AND source_epoch = $3", [
      id,
      target.toString(),
      source.toString(),
    ]);
  }

  /** Raises (never lowers) the explicit watermarks; a null leaves that one as it is. */
  async raiseWatermarks(id: string, marks: LowWatermarks): Promise<void> {
    await this.db.query(
      `INSERT INTO low_watermarks (validator_id, block_slot, source_epoch, target_epoch) VALUES ($1, $2::bigint, $3::bigint, $4::bigint)
       ON CONFLICT (validator_id) DO UPDATE SET
         block_slot   = GREATEST(low_watermarks.block_slot, excluded.block_slot),
         source_epoch = GREATEST(low_watermarks.source_epoch, excluded.source_epoch),
         target_epoch = GREATEST(low_watermarks.target_epoch, excluded.target_epoch)`,
      [id, marks.blockSlot?.toString() ?? null, marks.sourceEpoch?.toString() ?? null, marks.targetEpoch?.toString() ?? null],
    );
  }
}
