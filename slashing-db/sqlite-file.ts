import path from "node:path";
import type Database from "better-sqlite3";
import { DurableSqliteError, openDurableSqlite } from "../common/index.js";
import { SlashingDbUnavailableError } from "./errors.js";
import { SLASHING_DB_MIGRATIONS } from "./schema.js";

/**
 * Opens (creating if needed) the slashing database durably (config/sqlite.ts: 0600, WAL, synchronous=FULL,
 * migrations) with the settings slashing protection adds: incremental vacuum, foreign keys, a large page
 * cache, and integers read back as bigint.
 */
export function openSqliteFile(file: string): Database.Database {
  try {
    return openDurableSqlite(file, {
      migrations: SLASHING_DB_MIGRATIONS,
      configure: (db) => {
        // Only takes effect on a new, empty file: lets pruning hand freed pages back to the filesystem.
        db.pragma("auto_vacuum = INCREMENTAL");
        db.pragma("foreign_keys = ON");
        // Keep the hot part of the history in memory: every check reads one validator's pages, and the
        // default 2 MiB cache turns most of those reads into system calls.
        db.pragma("cache_size = -65536"); // KiB: 64 MiB
        db.pragma("mmap_size = 268435456"); // 256 MiB of read-only mapping
        db.defaultSafeIntegers(true); // slots and epochs come back as bigint: no silent precision loss
      },
    });
  } catch (err) {
    if (err instanceof DurableSqliteError && err.code === "SQLITE_SCHEMA_TOO_NEW") {
      throw new SlashingDbUnavailableError(
        "DB_SCHEMA_TOO_NEW",
        `database schema version ${err.details.foundVersion} is newer than this Vigil understands (${err.details.knownVersion}); upgrade Vigil`,
      );
    }
    const reason = err instanceof DurableSqliteError ? err.reason : (err as Error).message;
    throw new SlashingDbUnavailableError("DB_OPEN_FAILED", `cannot open slashing database ${path.resolve(file)}: ${reason}`);
  }
}
