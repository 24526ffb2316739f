import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { PRIVATE_FILE_MODE, ensurePrivateDir } from "../config/index.js";
import { SlashingDbUnavailableError } from "./errors.js";
import { migrate } from "./schema.js";

/** How long a writer waits for another process holding the write lock before failing closed. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating if needed) the SQLite file with the durability settings slashing protection relies on:
 * WAL so readers never block the writer, synchronous=FULL so a committed record survives power loss.
 * A new file is created 0600 before SQLite touches it; SQLite gives the -wal/-shm files the same mode.
 */
export function openSqliteFile(file: string): Database.Database {
  const resolved = path.resolve(file);
  try {
    ensurePrivateDir(path.dirname(resolved));
    fs.closeSync(fs.openSync(resolved, fs.constants.O_CREAT | fs.constants.O_RDWR, PRIVATE_FILE_MODE));
    const db = new Database(resolved, { timeout: BUSY_TIMEOUT_MS });
    // Only takes effect on a new, empty file: lets pruning hand freed pages back to the filesystem.
    db.pragma("auto_vacuum = INCREMENTAL");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    // Keep the hot part of the history in memory: every check reads one validator's pages, and the
    // default 2 MiB cache turns most of those reads into system calls.
    db.pragma("cache_size = -65536"); // KiB: 64 MiB
    db.pragma("mmap_size = 268435456"); // 256 MiB of read-only mapping
    db.defaultSafeIntegers(true); // slots and epochs come back as bigint: no silent precision loss
    migrate(db);
    return db;
  } catch (err) {
    if (err instanceof SlashingDbUnavailableError) throw err;
    throw new SlashingDbUnavailableError("DB_OPEN_FAILED", `cannot open slashing database ${resolved}: ${(err as Error).message}`);
  }
}
