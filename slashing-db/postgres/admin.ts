import pg from "pg";
import { EXIT_CODES, hexToBytes, normalizeHex } from "../../common/index.js";
import { addSummary, hasMarks, historiesAsInterchange, type SlashingDbAdmin, type SlashingDbAdminStats } from "../admin.js";
import { InterchangeError, SlashingDbError, SlashingDbUnavailableError } from "../errors.js";
import type { Interchange, ValidatorHistory } from "../interchange/export.js";
import type { ImportSummary } from "../interchange/import.js";
import type { PruneOptions, PruneSummary } from "../prune.js";
import { toPoolConfig, type PostgresConnection } from "./config.js";
import { bulkInsertHistories, holdsNoHistory } from "./bulk.js";
import { classifyPgFailure } from "./failures.js";
import { parsePubkey } from "../codec.js";
import { requireSlotOrEpoch, type SetHighWatermark, type WatermarkReport } from "../high-watermark.js";
import { readWatermarksPg, removeHighWatermarkPg, setHighWatermarkPg } from "./high-watermark.js";
import { PgHistory } from "./history.js";
import { mergeInterchangePg } from "./import.js";
import { loadHistories, PostgresSlashingProtection } from "./protection.js";
import { prunePg } from "./prune.js";
import { migrate, PG_SCHEMA_VERSION } from "./schema.js";
import { countPg } from "./stats.js";
import { READ_COMMITTED_WRITE } from "./isolation.js";
import { asUnavailable, durableTransaction } from "./transaction.js";

const GVR_KEY = "genesis_validators_root";

/** Whether Vigil's schema is in the database (false for a database nothing has migrated yet). */
export async function hasVigilSchema(db: pg.ClientBase | pg.Pool): Promise<boolean> {
  return (await db.query<{ t: string | null }>("SELECT to_regclass('vigil_schema')::text AS t")).rows[0]!.t !== null;
}

/**
 * SlashingDbAdmin on PostgreSQL: the signer's PostgresSlashingProtection (which checks durability, migrates and
 * holds the pin) for import and export, and a small pool of its own for prune, stats and the raw history.
 */
export class PostgresAdmin implements SlashingDbAdmin {
  readonly backend = "postgres";

  private constructor(
    private readonly protection: PostgresSlashingProtection,
    private readonly pool: pg.Pool,
    readonly location: string,
  ) {}

  /** mustExist: refuse (DB_NOT_FOUND, exit 5) a database without Vigil's schema rather than create it. */
  static async open(conn: PostgresConnection, opts: { mustExist: boolean }): Promise<PostgresAdmin> {
    const pool = new pg.Pool({ ...toPoolConfig(conn), max: 2 });
    pool.on("error", () => undefined);
    try {
      if (opts.mustExist && !(await hasVigilSchema(pool).catch((err: unknown) => Promise.reject(connectFailed(err))))) {
        throw new SlashingDbError("DB_NOT_FOUND", `no Vigil slashing database at ${conn.url} (run vigil slashing migrate, or import)`, EXIT_CODES.notFound);
      }
      const protection = await PostgresSlashingProtection.open({ ...conn, poolSize: 2 });
      return new PostgresAdmin(protection, pool, conn.url);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  get genesisValidatorsRoot(): string | null {
    return this.protection.genesisValidatorsRoot;
  }

  importInterchange(interchange: object | string): Promise<ImportSummary> {
    return this.protection.importInterchange(interchange);
  }

  exportInterchange(opts: { pubkeys?: string[]; minify?: boolean } = {}): Promise<Interchange> {
    return this.protection.exportInterchange(opts);
  }

  prune(opts: PruneOptions): Promise<PruneSummary> {
    return prunePg(this.pool, (work) => this.transaction("pruning failed", work), opts).catch((err: unknown) =>
      Promise.reject(asUnavailable(err, "pruning failed")),
    );
  }

  async stats(): Promise<SlashingDbAdminStats> {
    const counts = await this.transaction("reading the statistics failed", countPg, "ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    return {
      backend: "postgres",
      url: this.location,
      schemaVersion: PG_SCHEMA_VERSION,
      genesisValidatorsRoot: this.genesisValidatorsRoot,
      validators: counts.validators,
      blocks: counts.blocks,
      attestations: counts.attestations,
      databaseBytes: counts.databaseBytes,
    };
  }

  async raiseWatermarks(opts: { pubkeys?: string[]; slot?: bigint; epoch?: bigint }): Promise<number> {
    // "Every known validator", as on SQLite: those registered now (a signer registering one meanwhile gets none).
    let pubkeys = opts.pubkeys;
    if (pubkeys === undefined) {
      const rows = await this.pool
        .query<{ pubkey: Buffer }>("SELECT pubkey FROM validators ORDER BY pubkey")
        .catch((err: unknown) => Promise.reject(asUnavailable(err, "raising the watermarks failed")));
      pubkeys = rows.rows.map((row) => `0x${row.pubkey.toString("hex")}`);
    }
    return this.protection.raiseLowWatermarks({ pubkeys, slot: opts.slot, epoch: opts.epoch });
  }

  async watermarks(pubkeys?: string[]): Promise<WatermarkReport> {
    const keys = pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    return this.transaction("reading the watermarks failed", (client) => readWatermarksPg(client, keys), "ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  }

  async setHighWatermark(opts: SetHighWatermark): Promise<number> {
    const keys = opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    requireSlotOrEpoch(opts);
    return this.transaction("setting the high watermark failed", (client) => setHighWatermarkPg(client, keys, opts));
  }

  async removeHighWatermark(opts: { pubkeys?: string[] }): Promise<number> {
    const keys = opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    return this.transaction("removing the high watermark failed", (client) => removeHighWatermarkPg(client, keys));
  }

  readHistories(pubkeys?: Buffer[]): Promise<ValidatorHistory[]> {
    return this.transaction("reading the history failed", (client) => loadHistories(client, pubkeys), "ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  }

  async listPubkeys(): Promise<Buffer[]> {
    const rows = await this.pool
      .query<{ pubkey: Buffer }>("SELECT pubkey FROM validators ORDER BY pubkey")
      .catch((err: unknown) => Promise.reject(asUnavailable(err, "listing the validators failed")));
    return rows.rows.map((r) => r.pubkey);
  }

  async writeHistories(genesisValidatorsRoot: string, chunks: AsyncIterable<ValidatorHistory[]>): Promise<ImportSummary> {
    const root = normalizeHex(genesisValidatorsRoot);
    const summary = await this.transaction("writing the history failed", async (client) => {
      await client.query("INSERT INTO metadata (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [GVR_KEY, root]);
      const stored = normalizeHex((await client.query<{ value: string }>("SELECT value FROM metadata WHERE key = $1", [GVR_KEY])).rows[0]!.value);
      if (stored !== root) throw new InterchangeError("GENESIS_VALIDATORS_ROOT_MISMATCH", "", `this database belongs to the network ${stored}, not ${root}`);
      const history = new PgHistory(client);
      // Into a database without history nothing can clash: bulk inserts instead of two round trips per record.
      const empty = await holdsNoHistory(client);
      const total: ImportSummary = { validators: 0, blocksAdded: 0, attestationsAdded: 0, conflictsMadeUnknown: 0 };
      for await (const histories of chunks) {
        const ids = await history.lockValidators(histories.map((h) => h.pubkey));
        addSummary(
          total,
          empty
            ? await bulkInsertHistories(client, ids, histories)
            : await mergeInterchangePg(history, ids, historiesAsInterchange(Buffer.from(hexToBytes(root)), histories)),
        );
        for (const h of histories) if (hasMarks(h)) await history.raiseWatermarks(ids.get(h.pubkey.toString("hex"))!, h.marks);
      }
      return total;
    });
    // The protection caches the pin it read at open; pinning the same root again is a no-op that refreshes it.
    await this.protection.pin(hexToBytes(root));
    return summary;
  }

  async close(): Promise<void> {
    await this.protection.close();
    await this.pool.end().catch(() => undefined);
  }

  private transaction<T>(what: string, work: (client: pg.PoolClient) => Promise<T>, mode = READ_COMMITTED_WRITE): Promise<T> {
    return durableTransaction(this.pool, what, work, mode);
  }
}

/**
 * `vigil slashing migrate`: creates or upgrades the schema and returns the version before and after. Safe to run
 * twice at once (schema.ts migrates under an advisory lock); refuses a schema newer than this Vigil.
 */
export async function migratePg(conn: PostgresConnection): Promise<{ before: number; after: number }> {
  const client = new pg.Client(toPoolConfig(conn));
  client.on("error", () => undefined);
  await client.connect().catch((err: unknown) => Promise.reject(connectFailed(err)));
  try {
    let before = 0;
    const after = await migrate(client, (version) => {
      before = version;
    });
    return { before, after };
  } catch (err) {
    throw asUnavailable(err, "migrating the schema failed");
  } finally {
    await client.end().catch(() => undefined);
  }
}

function connectFailed(err: unknown): Error {
  return new SlashingDbUnavailableError(
    "DB_OPEN_FAILED",
    `cannot connect to the PostgreSQL slashing database: ${(err as Error).message}`,
    classifyPgFailure(err),
  );
}
