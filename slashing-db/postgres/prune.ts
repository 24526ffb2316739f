import type pg from "pg";
import type { PruneOptions, PruneSummary } from "../prune.js";
import { PgHistory } from "./history.js";

/** Validators pruned per transaction, as on SQLite: a running signer never waits long for a validator's row lock. */
const VALIDATORS_PER_TRANSACTION = 256;

interface Cut {
  id: string;
  blocks: number;
  max_slot: string | null;
  atts: number;
  max_source: string | null;
  max_target: string | null;
}

/**
 * What pruning would delete per validator: the rows older than keep slots / epochs behind that validator's own
 * newest block / target (../prune.ts's cut-off, unchanged), with the largest slot, source and target among them.
 */
const CUTS = `
  SELECT v.id::text, bc.n AS blocks, bc.max_slot::text, ac.n AS atts, ac.max_source::text, ac.max_target::text
  FROM unnest($1::bigint[]) AS v(id)
  CROSS JOIN LATERAL (
    SELECT COUNT(*)::int AS n, MAX(slot) AS max_slot FROM signed_blocks
    WHERE validator_id = v.id AND slot < (SELECT MAX(slot) FROM signed_blocks WHERE validator_id = v.id) - $2::bigint) bc
  CROSS JOIN LATERAL (
    SELECT COUNT(*)::int AS n, MAX(source_epoch) AS max_source, MAX(target_epoch) AS max_target FROM signed_attestations
    WHERE validator_id = v.id AND target_epoch < (SELECT MAX(target_epoch) FROM signed_attestations WHERE validator_id = v.id) - $3::bigint) ac
  WHERE bc.n > 0 OR ac.n > 0`;

/**
 * pruneHistory (../prune.ts) on PostgreSQL, with the same semantics: the newest rows of each validator are never
 * touched, the explicit low watermarks are raised to the largest slot, source and target deleted, and bounds are
 * recomputed. Each chunk of validators is one transaction that first locks their rows in pubkey order, as every
 * batch of checks does (history.ts), so it is safe while signers run: a check on a validator being pruned waits
 * for the commit, then sees the raised watermarks (raise and delete commit together: protection never has a gap).
 * `transaction` runs its work in one durable transaction (synchronous_commit on).
 */
export async function prunePg(
  pool: pg.Pool,
  transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => Promise<T>,
  opts: PruneOptions,
): Promise<PruneSummary> {
  const keepSlots = (BigInt(opts.keepEpochs) * BigInt(opts.slotsPerEpoch)).toString();
  const keepEpochs = BigInt(opts.keepEpochs).toString();
  const pubkeys = (await pool.query<{ pubkey: Buffer }>("SELECT pubkey FROM validators ORDER BY pubkey")).rows.map((r) => r.pubkey);
  const summary: PruneSummary = { validators: 0, blocksDeleted: 0, attestationsDeleted: 0 };
  for (let i = 0; i < pubkeys.length; i += VALIDATORS_PER_TRANSACTION) {
    const chunk = pubkeys.slice(i, i + VALIDATORS_PER_TRANSACTION);
    const done = await transaction(async (client) => {
      const ids = [...(await new PgHistory(client).lockValidators(chunk)).values()];
      const cuts = (await client.query<Cut>(CUTS, [ids, keepSlots, keepEpochs])).rows;
      if (cuts.length === 0) return { validators: 0, blocksDeleted: 0, attestationsDeleted: 0 };
      const cutIds = cuts.map((c) => c.id);
      // Raise first, delete second, in one transaction: the protection never has a gap.
      await client.query(
        `INSERT INTO low_watermarks (validator_id, block_slot, source_epoch, target_epoch)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
         ON CONFLICT (validator_id) DO UPDATE SET
           block_slot   = GREATEST(low_watermarks.block_slot, excluded.block_slot),
           source_epoch = GREATEST(low_watermarks.source_epoch, excluded.source_epoch),
           target_epoch = GREATEST(low_watermarks.target_epoch, excluded.target_epoch)`,
        [cutIds, cuts.map((c) => c.max_slot), cuts.map((c) => c.max_source), cuts.map((c) => c.max_target)],
      );
      const blocks = await client.query(
        `DELETE FROM signed_blocks b USING unnest($1::bigint[], $2::bigint[]) AS u(id, cut)
         WHERE u.cut IS NOT NULL AND b.validator_id = u.id AND b.slot <= u.cut`,
        [cutIds, cuts.map((c) => c.max_slot)],
      );
      const atts = await client.query(
        `DELETE FROM signed_attestations a USING unnest($1::bigint[], $2::bigint[]) AS u(id, cut)
         WHERE u.cut IS NOT NULL AND a.validator_id = u.id AND a.target_epoch <= u.cut`,
        [cutIds, cuts.map((c) => c.max_target)],
      );
      await client.query(
        `UPDATE validators v SET
           min_block_slot   = (SELECT MIN(slot) FROM signed_blocks WHERE validator_id = v.id),
           min_source_epoch = (SELECT MIN(source_epoch) FROM signed_attestations WHERE validator_id = v.id),
           min_target_epoch = (SELECT MIN(target_epoch) FROM signed_attestations WHERE validator_id = v.id)
         WHERE v.id = ANY($1::bigint[])`,
        [cutIds],
      );
      return { validators: cuts.length, blocksDeleted: blocks.rowCount ?? 0, attestationsDeleted: atts.rowCount ?? 0 };
    });
    summary.validators += done.validators;
    summary.blocksDeleted += done.blocksDeleted;
    summary.attestationsDeleted += done.attestationsDeleted;
  }
  return summary;
}
