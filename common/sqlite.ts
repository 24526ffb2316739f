/**
 * The one way Vigil opens a SQLite file that holds state it must not lose (slashing history, fencing state,
 * the watchdog's failover record): created 0600 before SQLite touches it (SQLite gives the -wal/-shm files the
 * same mode), WAL so readers never block the writer, synchronous=FULL so a committed transaction survives
 * power loss, a busy timeout so a second process waits briefly instead of failing at once, and versioned
 * migrations counted by PRAGMA user_version.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { VigilError } from "./errors.js";
import { createPrivateFileIfMissing, ensurePrivateDir } from "./files.js";

/**
 * One schema step: SQL, or a function for a step that must look at the file first. Never edit a shipped
 * migration: append a new one. A file created before its store used user_version is at version 0, so a
 * store's first migration must also accept the tables it finds (CREATE ... IF NOT EXISTS).
 */
export type SqliteMigration = string | ((db: Database.Database) => void);

export interface DurableSqliteOptions {
  readonly migrations: readonly SqliteMigration[];
  /** How long a writer waits for another process holding the write lock before failing. */
  readonly busyTimeoutMs?: number;
  /**
   * Runs on the new connection before the journal mode is set and before any migration: for settings that
   * must come first (auto_vacuum only takes effect before the first table exists) or are the caller's own.
   */
  readonly configure?: (db: Database.Database) => void;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

export type DurableSqliteErrorCode = "SQLITE_OPEN_FAILED" | "SQLITE_SCHEMA_TOO_NEW";

/** Opening failed; each store maps this to its own error (codes its operators already know). */
export class DurableSqliteError extends VigilError<DurableSqliteErrorCode> {
  constructor(
    code: DurableSqliteErrorCode,
    message: string,
    /** SQLITE_SCHEMA_TOO_NEW: the file's version and the newest this build knows. */
    readonly details: { cause?: unknown; foundVersion?: number; knownVersion?: number } = {},
  ) {
    super(code, message);
  }

  /** What went wrong, without the file name: for a store that words its own message. */
  get reason(): string {
    return this.details.cause instanceof Error ? this.details.cause.message : this.message;
  }
}

/** Opens (creating if needed) `file` durably and brings its schema to `migrations.length`. */
export function openDurableSqlite(file: string, options: DurableSqliteOptions): Database.Database {
  const resolved = path.resolve(file);
  let db: Database.Database;
  try {
    ensurePrivateDir(path.dirname(resolved));
    createPrivateFileIfMissing(resolved); // 0600 before SQLite creates it; never open+close a file in use
    db = new Database(resolved, { timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new DurableSqliteError("SQLITE_OPEN_FAILED", `cannot open ${resolved}: ${(err as Error).message}`, { cause: err });
  }
  try {
    options.configure?.(db);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    migrate(db, resolved, options.migrations);
    return db;
  } catch (err) {
    db.close();
    if (err instanceof DurableSqliteError) throw err;
    throw new DurableSqliteError("SQLITE_OPEN_FAILED", `cannot open ${resolved}: ${(err as Error).message}`, { cause: err });
  }
}

/** The schema version a file is at (PRAGMA user_version). */
export function schemaVersion(db: Database.Database): number {
  return Number(db.pragma("user_version", { simple: true }));
}

/**
 * Applies the migrations the file has not seen yet, each in its own IMMEDIATE transaction that also records
 * the new version: a crash leaves the file at a version it fully holds, and the version is re-read under the
 * write lock so two processes opening one new file do not both run a step.
 */
function migrate(db: Database.Database, file: string, migrations: readonly SqliteMigration[]): void {
  const known = migrations.length;
  const refuseIfNewer = (found: number): void => {
    if (found > known) {
      throw new DurableSqliteError(
        "SQLITE_SCHEMA_TOO_NEW",
        `${file} has schema version ${found}, newer than this Vigil understands (${known}); upgrade Vigil`,
        { foundVersion: found, knownVersion: known },
      );
    }
  };
  // Checked first without a transaction: an up-to-date file (every open but the first) takes no write lock.
  while (schemaVersion(db) < known) {
    db.transaction(() => {
      const current = schemaVersion(db);
      if (current >= known) return;
      const step = migrations[current]!;
      if (typeof step === "string") db.exec(step);
      else step(db);
      db.pragma(`user_version = ${current + 1}`);
    }).immediate();
  }
  refuseIfNewer(schemaVersion(db));
}
