import type pg from "pg";
import type { ValidatorHistory } from "../interchange/export.js";
import type { ImportSummary } from "../interchange/import.js";

/** Rows per INSERT: large enough to make a million-row copy a few hundred round trips, small enough for one message. */
const ROWS_PER_INSERT = 10_000;

/** Whether the database holds no signed message yet (a copy into it needs no merge). */
export async function holdsNoHistory(client: pg.ClientBase): Promise<boolean> {
  const row = (
    await client.query<{ empty: boolean }>("SELECT NOT EXISTS (SELECT 1 FROM signed_blocks) AND NOT EXISTS (SELECT 1 FROM signed_attestations) AS empty")
  ).rows[0]!;
  return row.empty;
}

/**
 * Inserts whole histories into a database that holds none, in bulk (unnest, ROWS_PER_INSERT at a time), then sets
 * these validators' lower bounds from what was inserted. What mergeInterchangePg would do record by record, two
 * round trips each, for the one case where nothing can clash. The caller holds the transaction and the row locks
 * (`ids`: hex pubkey -> row id) and has checked holdsNoHistory inside that transaction, before its first chunk.
 */
export async function bulkInsertHistories(client: pg.ClientBase, ids: Map<string, string>, histories: ValidatorHistory[]): Promise<ImportSummary> {
  const blocks: [string, string, Buffer | null][] = [];
  const atts: [string, string, string, Buffer | null][] = [];
  for (const h of histories) {
    const id = ids.get(h.pubkey.toString("hex"))!;
    for (const b of h.blocks) blocks.push([id, b.slot.toString(), b.root]);
    for (const a of h.attestations) atts.push([id, a.target.toString(), a.source.toString(), a.root]);
  }
  const chunkIds = histories.map((h) => ids.get(h.pubkey.toString("hex"))!);
  for (let i = 0; i < blocks.length; i += ROWS_PER_INSERT) {
    const chunk = blocks.slice(i, i + ROWS_PER_INSERT);
    await client.query("INSERT INTO signed_blocks (validator_id, slot, signing_root) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])", [
      chunk.map((r) => r[0]),
      chunk.map((r) => r[1]),
      chunk.map((r) => r[2]),
    ]);
  }
  for (let i = 0; i < atts.length; i += ROWS_PER_INSERT) {
    const chunk = atts.slice(i, i + ROWS_PER_INSERT);
    await client.query(
      "INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[])",
      [chunk.map((r) => r[0]), chunk.map((r) => r[1]), chunk.map((r) => r[2]), chunk.map((r) => r[3])],
    );
  }
  await client.query(
    `UPDATE validators v SET min_block_slot = b.m
     FROM (SELECT validator_id, MIN(slot) AS m FROM signed_blocks WHERE validator_id = ANY($1::bigint[]) GROUP BY validator_id) b
     WHERE v.id = b.validator_id`,
    [chunkIds],
  );
  await client.query(
    `UPDATE validators v SET min_source_epoch = a.s, min_target_epoch = a.t
     FROM (SELECT validator_id, MIN(source_epoch) AS s, MIN(target_epoch) AS t FROM signed_attestations
           WHERE validator_id = ANY($1::bigint[]) GROUP BY validator_id) a
     WHERE v.id = a.validator_id`,
    [chunkIds],
  );
  return { validators: histories.length, blocksAdded: blocks.length, attestationsAdded: atts.length, conflictsMadeUnknown: 0 };
}
