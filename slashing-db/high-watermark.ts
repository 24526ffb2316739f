/**
 * High watermarks (Web3Signer's cut-over tool): once set, no block at or above the slot and no attestation at or
 * above the epoch is signed, so the signer handing over can sign nothing the next one might sign too. One for every
 * validator (the one GET /api/v1/eth2/highWatermark shows, as Web3Signer has only that one), and optionally per key;
 * the lower bound applies. Checked inside the group commit with the rest of the rules (history.ts, rules.ts).
 * The SQLite side lives here; PostgreSQL's in postgres/high-watermark.ts.
 */
import type Database from "better-sqlite3";
import { bytesToHex } from "../common/index.js";
import { SlashingDbInputError } from "./errors.js";

/** A null bounds nothing of that kind. */
export interface HighWatermark {
  slot: bigint | null;
  epoch: bigint | null;
}

/** What `vigil slashing watermark show` prints for one validator: its effective low and high watermarks. */
export interface ValidatorWatermarks {
  pubkey: string;
  /** The oldest record or explicit watermark, whichever is stricter (null: none). */
  low: { blockSlot: bigint | null; sourceEpoch: bigint | null; targetEpoch: bigint | null };
  /** This key's own high watermark (the all-keys one is reported separately). */
  high: HighWatermark | null;
}

export interface WatermarkReport {
  /** The high watermark of every validator, or null. */
  all: HighWatermark | null;
  validators: ValidatorWatermarks[];
}

/** Set: `slot`/`epoch` replace the stored ones, an omitted one is kept. No pubkeys: the all-keys watermark. */
export interface SetHighWatermark {
  pubkeys?: string[];
  slot?: bigint;
  epoch?: bigint;
}

/** validator_id of the row that bounds every validator (ids start at 1). */
export const ALL_VALIDATORS_ID = 0;

export function requireSlotOrEpoch(opts: { slot?: bigint; epoch?: bigint }): void {
  if (opts.slot === undefined && opts.epoch === undefined) throw new SlashingDbInputError("highWatermark", "give a slot, an epoch or both");
}

/** Larger of two optional low bounds: the stricter one. */
export function stricterLow(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

const UPSERT_SQLITE = `INSERT INTO high_watermarks (validator_id, slot, epoch) VALUES (?, ?, ?)
  ON CONFLICT (validator_id) DO UPDATE SET slot = COALESCE(excluded.slot, slot), epoch = COALESCE(excluded.epoch, epoch)`;

/** The all-keys high watermark, or null. */
export function readAllHighWatermarkSqlite(db: Database.Database): HighWatermark | null {
  const row = db
    .prepare<[number], { slot: bigint | null; epoch: bigint | null }>("SELECT slot, epoch FROM high_watermarks WHERE validator_id = ?")
    .safeIntegers(true)
    .get(ALL_VALIDATORS_ID);
  return row ? { slot: row.slot, epoch: row.epoch } : null;
}

/** Sets (see SetHighWatermark) in one IMMEDIATE transaction, registering unknown keys. Returns how many keys (0: all). */
export function setHighWatermarkSqlite(db: Database.Database, keys: Buffer[] | undefined, mark: { slot?: bigint; epoch?: bigint }): number {
  requireSlotOrEpoch(mark);
  const upsert = db.prepare(UPSERT_SQLITE);
  return db
    .transaction(() => {
      if (keys === undefined) {
        upsert.run(ALL_VALIDATORS_ID, mark.slot ?? null, mark.epoch ?? null);
        return 0;
      }
      for (const id of registerSqlite(db, keys)) upsert.run(id, mark.slot ?? null, mark.epoch ?? null);
      return keys.length;
    })
    .immediate();
}

/** Removes the given keys' own high watermarks, or (no keys) every high watermark. Returns how many rows went. */
export function removeHighWatermarkSqlite(db: Database.Database, keys: Buffer[] | undefined): number {
  return db
    .transaction(() => {
      if (keys === undefined) return db.prepare("DELETE FROM high_watermarks").run().changes;
      const del = db.prepare("DELETE FROM high_watermarks WHERE validator_id = (SELECT id FROM validators WHERE pubkey = ?)");
      return keys.reduce((n, k) => n + del.run(k).changes, 0);
    })
    .immediate();
}

/** Every validator's (or the given ones') watermarks, in one read transaction. */
export function readWatermarksSqlite(db: Database.Database, keys?: Buffer[]): WatermarkReport {
  const select = db
    .prepare<[], WatermarkRow>(
      `SELECT v.pubkey, v.min_block_slot, v.min_source_epoch, v.min_target_epoch,
              w.block_slot AS mark_slot, w.source_epoch AS mark_source, w.target_epoch AS mark_target,
              h.validator_id IS NOT NULL AS has_high, h.slot AS high_slot, h.epoch AS high_epoch
       FROM validators v
       LEFT JOIN low_watermarks w ON w.validator_id = v.id
       LEFT JOIN high_watermarks h ON h.validator_id = v.id
       ORDER BY v.pubkey`,
    )
    .safeIntegers(true);
  return db
    .transaction(() => {
      const wanted = keys && new Set(keys.map((k) => k.toString("hex")));
      const rows = select.all().filter((r) => !wanted || wanted.has(r.pubkey.toString("hex")));
      return { all: readAllHighWatermarkSqlite(db), validators: rows.map(toValidatorWatermarks) };
    })
    .deferred();
}

/** One row of the watermark report, bigints as the driver gives them (PostgreSQL: text). */
export interface WatermarkRow {
  pubkey: Buffer;
  min_block_slot: bigint | string | null;
  min_source_epoch: bigint | string | null;
  min_target_epoch: bigint | string | null;
  mark_slot: bigint | string | null;
  mark_source: bigint | string | null;
  mark_target: bigint | string | null;
  has_high: bigint | boolean;
  high_slot: bigint | string | null;
  high_epoch: bigint | string | null;
}

const big = (v: bigint | string | null): bigint | null => (v === null ? null : BigInt(v));

export function toValidatorWatermarks(r: WatermarkRow): ValidatorWatermarks {
  return {
    pubkey: bytesToHex(r.pubkey),
    low: {
      blockSlot: stricterLow(big(r.min_block_slot), big(r.mark_slot)),
      sourceEpoch: stricterLow(big(r.min_source_epoch), big(r.mark_source)),
      targetEpoch: stricterLow(big(r.min_target_epoch), big(r.mark_target)),
    },
    high: r.has_high === true || r.has_high === 1n ? { slot: big(r.high_slot), epoch: big(r.high_epoch) } : null,
  };
}

function registerSqlite(db: Database.Database, keys: Buffer[]): bigint[] {
  const insert = db.prepare("INSERT OR IGNORE INTO validators (pubkey) VALUES (?)");
  const find = db.prepare<[Buffer], { id: bigint }>("SELECT id FROM validators WHERE pubkey = ?").safeIntegers(true);
  return keys.map((k) => {
    insert.run(k);
    return find.get(k)!.id;
  });
}
