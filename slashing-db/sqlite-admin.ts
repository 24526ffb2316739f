import fs from "node:fs";
import { EXIT_CODES, bytesToHex, hexToBytes, normalizeHex } from "../common/index.js";
import { hasMarks, historiesAsInterchange, type SlashingDbAdmin, type SlashingDbAdminStats } from "./admin.js";
import { openSlashingDb, type SlashingDb } from "./database.js";
import { InterchangeError, SlashingDbError } from "./errors.js";
import { HistoryQueries } from "./history.js";
import { loadHistories, type Interchange, type ValidatorHistory } from "./interchange/export.js";
import { mergeInterchange, type ImportSummary } from "./interchange/import.js";
import type { PruneOptions, PruneSummary } from "./prune.js";
import { openSqliteFile } from "./sqlite-file.js";

const GVR_KEY = "genesis_validators_root";

/** SlashingDbAdmin on a SQLite file: SlashingDb's own methods, plus a second connection for the raw history. */
export class SqliteAdmin implements SlashingDbAdmin {
  readonly backend = "sqlite";

  private constructor(private readonly db: SlashingDb) {}

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

  async readHistories(pubkeys?: Buffer[]): Promise<ValidatorHistory[]> {
    const raw = openSqliteFile(this.db.path);
    try {
      return raw.transaction(() => loadHistories(raw, pubkeys)).deferred();
    } finally {
      raw.close();
    }
  }

  async writeHistories(genesisValidatorsRoot: string, histories: ValidatorHistory[]): Promise<ImportSummary> {
    const root = normalizeHex(genesisValidatorsRoot);
    const raw = openSqliteFile(this.db.path);
    try {
      const history = new HistoryQueries(raw);
      const summary = raw
        .transaction(() => {
          const stored = raw.prepare<[string], { value: string }>("SELECT value FROM metadata WHERE key = ?").get(GVR_KEY);
          if (!stored) raw.prepare("INSERT INTO metadata (key, value) VALUES (?, ?)").run(GVR_KEY, root);
          else if (normalizeHex(stored.value) !== root) {
            throw new InterchangeError(
              "GENESIS_VALIDATORS_ROOT_MISMATCH",
              "",
              `this database belongs to the network ${normalizeHex(stored.value)}, not ${root}`,
            );
          }
          const merged = mergeInterchange(history, historiesAsInterchange(Buffer.from(hexToBytes(root)), histories));
          for (const h of histories) if (hasMarks(h)) history.raiseWatermarks(history.findValidator(h.pubkey)!, h.marks);
          return merged;
        })
        .immediate();
      // SlashingDb caches the pin it read at open.
      this.db.pinGenesisValidatorsRoot(bytesToHex(hexToBytes(root)));
      return summary;
    } finally {
      raw.close();
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
