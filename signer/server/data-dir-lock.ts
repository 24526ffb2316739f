/**
 * One signer per data directory. Two signers on one directory would each trust their own in-memory fencing
 * state and audit numbering: a client disabled through one keeps signing through the other. The lock is an
 * exclusive SQLite lock (a POSIX record lock on `<dataDir>/signer.lock`) held for the process's lifetime: the
 * kernel drops it when the process dies, even by SIGKILL, so there is never a stale lock to clean up by hand.
 * `signer.lock.pid` names the holder for the error message only; the lock itself is the authority.
 */
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { createPrivateFileIfMissing, ensurePrivateDir, EXIT_CODES, PRIVATE_FILE_MODE, VigilError } from "../../common/index.js";

export const LOCK_FILE = "signer.lock";
const PID_FILE = "signer.lock.pid";

export class DataDirInUseError extends VigilError<"DATA_DIR_IN_USE"> {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      "DATA_DIR_IN_USE",
      `data directory ${dataDir} is in use by another signer${holderPid !== undefined ? ` (pid ${holderPid})` : ""}; stop it first, or give this one its own dataDir`,
      EXIT_CODES.dataDirInUse,
    );
  }
}

export class DataDirLock {
  private constructor(
    readonly dataDir: string,
    private readonly db: Database.Database,
  ) {}

  /** Takes the lock at once or throws DataDirInUseError; it never waits for the holder. */
  static acquire(dataDir: string): DataDirLock {
    const dir = path.resolve(dataDir);
    ensurePrivateDir(dir);
    const file = path.join(dir, LOCK_FILE);
    createPrivateFileIfMissing(file); // never open+close it: that would drop a lock this process holds on it
    const db = new Database(file, { timeout: 0 });
    try {
      // No journal file beside it; in EXCLUSIVE locking mode the lock taken by BEGIN EXCLUSIVE is never released
      // until the connection closes (or the process dies).
      db.pragma("journal_mode = MEMORY");
      db.pragma("locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE");
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === "SQLITE_BUSY") throw new DataDirInUseError(dir, readPid(path.join(dir, PID_FILE)));
      throw err;
    }
    try {
      fs.writeFileSync(path.join(dir, PID_FILE), `${process.pid}\n`, { mode: PRIVATE_FILE_MODE });
    } catch {
      /* informational only */
    }
    return new DataDirLock(dir, db);
  }

  get held(): boolean {
    return this.db.open;
  }

  /** Releases the lock (idempotent). Call it last, once everything in the directory is closed. */
  release(): void {
    if (!this.db.open) return;
    try {
      fs.rmSync(path.join(this.dataDir, PID_FILE), { force: true });
    } catch {
      /* informational only */
    }
    this.db.close();
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
