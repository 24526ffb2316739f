/**
 * High watermarks on PostgreSQL (the SQLite side and the semantics: ../high-watermark.ts). Writes take the
 * validators' row locks, in pubkey order, as every batch of checks does: a check in flight for a locked validator
 * finishes before the watermark commits, and one after it sees it (READ COMMITTED reads per statement). The
 * all-keys one also takes the registration lock (registration-lock.ts) for keys registered but not committed.
 */
import type pg from "pg";
import {
  ALL_VALIDATORS_ID,
  requireSlotOrEpoch,
  toValidatorWatermarks,
  type HighWatermark,
  type WatermarkReport,
  type WatermarkRow,
} from "../high-watermark.js";
import { PgHistory } from "./history.js";
import { holdRegistrationExclusive } from "./registration-lock.js";

const text = (v: bigint | undefined): string | null => (v === undefined ? null : v.toString());

export async function readAllHighWatermarkPg(db: pg.Pool | pg.ClientBase): Promise<HighWatermark | null> {
  const row = (
    await db.query<{ slot: string | null; epoch: string | null }>("SELECT slot::text, epoch::text FROM high_watermarks WHERE validator_id = $1", [
      ALL_VALIDATORS_ID,
    ])
  ).rows[0];
  return row ? { slot: row.slot === null ? null : BigInt(row.slot), epoch: row.epoch === null ? null : BigInt(row.epoch) } : null;
}

/** Inside a write transaction. Returns how many keys (0: the all-keys watermark). */
export async function setHighWatermarkPg(client: pg.ClientBase, keys: Buffer[] | undefined, mark: { slot?: bigint; epoch?: bigint }): Promise<number> {
  requireSlotOrEpoch(mark);
  let ids: string[];
  if (keys === undefined) {
    // Every registered validator's row: no batch of checks is between its judgement and its commit meanwhile;
    // the registration lock first, so a batch registering a key this cannot see yet finishes first too.
    await holdRegistrationExclusive(client);
    await client.query("SELECT id FROM validators ORDER BY pubkey FOR UPDATE");
    ids = [String(ALL_VALIDATORS_ID)];
  } else {
    ids = [...(await new PgHistory(client).lockValidators(keys)).values()];
  }
  await client.query(
    `INSERT INTO high_watermarks (validator_id, slot, epoch) SELECT id, $2::bigint, $3::bigint FROM unnest($1::bigint[]) AS id
     ON CONFLICT (validator_id) DO UPDATE SET slot = COALESCE(excluded.slot, high_watermarks.slot), epoch = COALESCE(excluded.epoch, high_watermarks.epoch)`,
    [ids, text(mark.slot), text(mark.epoch)],
  );
  return keys === undefined ? 0 : ids.length;
}

/** Inside a write transaction: the given keys' own rows, or every row. Returns how many went. */
export async function removeHighWatermarkPg(client: pg.ClientBase, keys: Buffer[] | undefined): Promise<number> {
  if (keys === undefined) return (await client.query("DELETE FROM high_watermarks")).rowCount ?? 0;
  const r = await client.query("DELETE FROM high_watermarks WHERE validator_id IN (SELECT id FROM validators WHERE pubkey = ANY($1::bytea[]))", [keys]);
  return r.rowCount ?? 0;
}

/** Inside a REPEATABLE READ transaction (one snapshot). */
export async function readWatermarksPg(client: pg.ClientBase, keys?: Buffer[]): Promise<WatermarkReport> {
  const rows = await client.query<WatermarkRow>(
    `SELECT v.pubkey, v.min_block_slot::text, v.min_source_epoch::text, v.min_target_epoch::text,
            w.block_slot::text AS mark_slot, w.source_epoch::text AS mark_source, w.target_epoch::text AS mark_target,
            h.validator_id IS NOT NULL AS has_high, h.slot::text AS high_slot, h.epoch::text AS high_epoch
     FROM validators v
     LEFT JOIN low_watermarks w ON w.validator_id = v.id
     LEFT JOIN high_watermarks h ON h.validator_id = v.id
     WHERE $1::bytea[] IS NULL OR v.pubkey = ANY($1::bytea[])
     ORDER BY v.pubkey`,
    [keys ?? null],
  );
  return { all: await readAllHighWatermarkPg(client), validators: rows.rows.map(toValidatorWatermarks) };
}
