import fs from "node:fs";
import type Database from "better-sqlite3";
import { EXIT_CODES, bytesToHex, hexToBytes, normalizeHex } from "../common/index.js";
import { addSummary, hasMarks, historiesAsInterchange, type SlashingDbAdmin, type SlashingDbAdminStats } from "./admin.js";
import { openSlashingDb, type SlashingDb } from "./database.js";
import { InterchangeError, SlashingDbError } from "./errors.js";
import { parsePubkey } from "./codec.js";
import { readWatermarksSqlite, removeHighWatermarkSqlite, setHighWatermarkSqlite, type SetHighWatermark, type WatermarkReport } from "./high-watermark.js";
import { HistoryQueries } from "./history.js";
import { loadHistories, type Interchange, type ValidatorHistory } from "./interchange/export.js";
import { mergeInterchange, type ImportSummary } from "./interchange/import.js";
import type { PruneOptions, PruneSummary } from "./prune.js";
import { openSqliteFile } from "./sqlite-file.js";

const GVR_KEY = "genesis_validators_root";

/** SlashingDbAdmin on a SQLite file: SlashingDb's own methods, plus a second connection for the raw history. */
export class SqliteAdmin implements SlashingDbAdmin {
  readonly backend = "sqlite";

  /** The second connection (raw history reads and writes), opened on first use. */
  private rawConnection: Database.Database | undefined;

  private constructor(private readonly db: SlashingDb) {}

  private raw(): Database.Database {
    this.rawConnection ??= openSqliteFile(this.db.path);
    return this.rawConnection;
  }

  /** mustExist: refuse (DB_NOT_FOUND, exit 5) rather than create a missing file. */
  static open(path: string, opts: { mustExist: boolean }): SqliteAdmin {
    if (opts.mustExist && !fs.existsSync(path)) {
      throw new SlashingDbError("DB_NOT_FOUND", `no slashing database at ${path} (use --db PATH)`, EXIT_CODES.notFound);
    }
    return new SqliteAdmin(openSlashingDb(path));
  }

  get location(): string {
    return this.db.path;
  }

  get genesisValidatorsRoot(): string | null {
    return this.db.genesisValidatorsRoot;
  }

  async importInterchange(interchange: object | string): Promise<ImportSummary> {
    return this.db.importInterchange(interchange);
  }

  async exportInterchange(opts: { pubkeys?: string[]; minify?: boolean } = {}): Promise<Interchange> {
    return this.db.exportInterchange(opts);
  }

  async prune(opts: PruneOptions): Promise<PruneSummary> {
    return this.db.prune(opts);
  }

  async stats(): Promise<SlashingDbAdminStats> {
    return { backend: "sqlite", ...this.db.stats() };
  }

  async raiseWatermarks(opts: { pubkeys?: string[]; slot?: bigint; epoch?: bigint }): Promise<number> {
    return this.db.raiseLowWatermarks(opts);
  }

  async watermarks(pubkeys?: string[]): Promise<WatermarkReport> {
    return readWatermarksSqlite(
      this.raw(),
      pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`)),
    );
  }

  async setHighWatermark(opts: SetHighWatermark): Promise<number> {
    return setHighWatermarkSqlite(
      this.raw(),
      opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`)),
      opts,
    );
  }

  async removeHighWatermark(opts: { pubkeys?: string[] }): Promise<number> {
    return removeHighWatermarkSqlite(
      this.raw(),
      opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`)),
    );
  }

  async readHistories(pubkeys?: Buffer[]): Promise<ValidatorHistory[]> {
    const raw = this.raw();
    return raw.transaction(() => loadHistories(raw, pubkeys)).deferred();
  }

  async listPubkeys(): Promise<Buffer[]> {
    return this.raw()
      .prepare<[], { pubkey: Buffer }>("SELECT pubkey FROM validators")
      .all()
      .map((r) => r.pubkey)
      .sort(Buffer.compare);
  }

  async writeHistories(genesisValidatorsRoot: string, chunks: AsyncIterable<ValidatorHistory[]>): Promise<ImportSummary> {
    const root = normalizeHex(genesisValidatorsRoot);
    const raw = this.raw();
    const summary: ImportSummary = { validators: 0, blocksAdded: 0, attestationsAdded: 0, conflictsMadeUnknown: 0 };
    const history = new HistoryQueries(raw);
    // Opened by hand, not with db.transaction(): the chunks arrive asynchronously. This connection is the
    // command's own, so nothing else runs inside the transaction meanwhile.
    raw.exec("BEGIN IMMEDIATE");
    try {
      const stored = raw.prepare<[string], { value: string }>("SELECT value FROM metadata WHERE key = ?").get(GVR_KEY);
      if (!stored) raw.prepare("INSERT INTO metadata (key, value) VALUES (?, ?)").run(GVR_KEY, root);
      else if (normalizeHex(stored.value) !== root) {
        throw new InterchangeError("GENESIS_VALIDATORS_ROOT_MISMATCH", "", `this database belongs to the network ${normalizeHex(stored.value)}, not ${root}`);
      }
      for await (const histories of chunks) {
        addSummary(summary, mergeInterchange(history, historiesAsInterchange(Buffer.from(hexToBytes(root)), histories)));
        for (const h of histories) if (hasMarks(h)) history.raiseWatermarks(history.findValidator(h.pubkey)!, h.marks);
      }
      raw.exec("COMMIT");
    } catch (err) {
      if (raw.inTransaction) raw.exec("ROLLBACK");
      throw err;
    }
    // SlashingDb caches the pin it read at open.
    this.db.pinGenesisValidatorsRoot(bytesToHex(hexToBytes(root)));
    return summary;
  }

  async close(): Promise<void> {
    this.rawConnection?.close();
    this.db.close();
  }
}
