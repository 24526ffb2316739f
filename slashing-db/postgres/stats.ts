import type pg from "pg";

export interface PgCounts {
  validators: number;
  blocks: number;
  attestations: number;
  /** pg_database_size: the whole database (tables, indexes, TOAST), what an operator sizes disks by. */
  databaseBytes: number;
}

/** What the database holds, counted in one snapshot (the SQLite stats' counts; the database's size instead of the file's). */
export async function countPg(db: pg.Pool | pg.ClientBase): Promise<PgCounts> {
  const row = (
    await db.query<{ validators: string; blocks: string; attestations: string; bytes: string }>(
      `SELECT (SELECT COUNT(*) FROM validators)::text AS validators, (SELECT COUNT(*) FROM signed_blocks)::text AS blocks,
              (SELECT COUNT(*) FROM signed_attestations)::text AS attestations, pg_database_size(current_database())::text AS bytes`,
    )
  ).rows[0]!;
  return { validators: Number(row.validators), blocks: Number(row.blocks), attestations: Number(row.attestations), databaseBytes: Number(row.bytes) };
}
