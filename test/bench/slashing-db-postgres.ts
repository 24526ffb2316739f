/**
 * The durable check-and-record benchmark of ./slashing-db.ts on PostgreSQL: a private server started for the
 * run (test/helpers/postgres.ts: fsync on, synchronous_commit on, as in production; every other setting at
 * PostgreSQL's defaults, printed with the figures), a database seeded straight through SQL with the same
 * 10,000 validators and 1,000,000 history rows, and the same validator-client load. Every answer counted is a
 * committed record: the batch's COMMIT returned, so its commit record is flushed to the server's WAL.
 */
import { hexToBytes } from "../../common/index.js";
import { PostgresSlashingProtection, type BatchStats } from "../../slashing-db/index.js";
import { startPostgres } from "../helpers/postgres.js";
import type pg from "pg";
import { GVR, ROWS_PER_VALIDATOR, VALIDATORS, callerLoad, pubkeyOf, summarise, type SlashingBenchResult } from "./slashing-db.js";

export interface PostgresBenchResult {
  results: SlashingBenchResult[];
  /** The server settings the figures depend on, as the server reports them. */
  settings: Record<string, string>;
  seedSeconds: number;
}

const SETTINGS = ["server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers", "wal_buffers", "commit_delay", "max_connections"];

export async function runPostgresSlashingDbBench(opts: { seconds: number; callers: number[]; poolSize?: number }): Promise<PostgresBenchResult> {
  const server = await startPostgres();
  try {
    const url = await server.createDatabase();
    const connection = { url, passwordFile: server.passwordFile, poolSize: opts.poolSize };
    await (await PostgresSlashingProtection.open(connection, { genesisValidatorsRoot: GVR })).close(); // schema + network pin

    const admin = await server.connect(url);
    const settings: Record<string, string> = {};
    let seedSeconds: number;
    try {
      for (const name of SETTINGS) settings[name] = (await admin.query(`SHOW ${name}`)).rows[0][name];
      const began = performance.now();
      await seed(admin);
      seedSeconds = (performance.now() - began) / 1000;
    } finally {
      await admin.end();
    }

    const batches: BatchStats[] = [];
    const db = await PostgresSlashingProtection.open(connection, { genesisValidatorsRoot: GVR, onCommit: (s) => batches.push(s) });
    try {
      const keys = Array.from({ length: VALIDATORS }, (_, v) => hexToBytes(pubkeyOf(v)));
      const rootOf = (target: number) => hexToBytes(`0x${target.toString(16).padStart(64, "0")}`);
      const load = callerLoad(VALIDATORS, ROWS_PER_VALIDATOR + 1);
      const results: SlashingBenchResult[] = [];
      for (const callers of opts.callers) {
        batches.length = 0;
        const run = await load(callers, opts.seconds, (v, target) =>
          db.checkAndRecord({
            kind: "attestation",
            pubkey: keys[v]!,
            sourceEpoch: BigInt(target - 1),
            targetEpoch: BigInt(target),
            signingRoot: rootOf(target),
          }),
        );
        results.push(summarise(callers, run, batches));
      }
      return { results, settings, seedSeconds: Math.round(seedSeconds) };
    } finally {
      await db.close();
    }
  } finally {
    await server.stop();
  }
}

/** The same keys as ./slashing-db.ts's pubkeyOf, computed by the server: sha256("bench-<i>") padded to 48 bytes. */
const PUBKEY_SQL = (i: string) => `decode(rpad(encode(sha256(convert_to('bench-' || ${i}, 'UTF8')), 'hex'), 96, '0'), 'hex')`;

/**
 * 10,000 validators and 100 attestations each, in two statements (seconds, not the minutes the API would take),
 * then VACUUM ANALYZE so the planner knows the table's size, as autovacuum would soon after a real import.
 */
export async function seed(db: pg.ClientBase): Promise<void> {
  // The lower-bound columns are what the database itself maintains on insert (oldest source 0, target 1).
  await db.query(
    `INSERT INTO validators (pubkey, min_source_epoch, min_target_epoch) SELECT ${PUBKEY_SQL("i")}, 0, 1 FROM generate_series(0, $1::int - 1) AS i ORDER BY i`,
    [VALIDATORS],
  );
  await db.query(
    `INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root)
     SELECT v.id, t, t - 1, decode(repeat('01', 32), 'hex') FROM validators v, generate_series(1, $1::int) AS t ORDER BY v.id, t`,
    [ROWS_PER_VALIDATOR],
  );
  await db.query("VACUUM ANALYZE");
  const first = (await db.query<{ pubkey: Buffer }>("SELECT pubkey FROM validators ORDER BY id LIMIT 1")).rows[0]?.pubkey;
  if (!first?.equals(hexToBytes(pubkeyOf(0)))) throw new Error("seeding: the server's pubkeys differ from the bench's");
}
