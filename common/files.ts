import fs from "node:fs";
import path from "node:path";

/** Mode for every file Vigil creates that holds state or secrets: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Creates `dir` (and parents) owner-only if missing. Existing directories keep their mode. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Creates `file` empty with mode 0600 unless it exists, without ever opening an existing one. That matters for
 * files SQLite locks (databases, lock files): closing any descriptor of a file drops every POSIX record lock this
 * process holds on it, the locks of its open SQLite connections included; another process could then take the
 * file for unused (a CLI deleting the WAL under a running signer, a second signer taking the data directory).
 */
export function createPrivateFileIfMissing(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  }
  fs.closeSync(fd); // a file this call just created: nobody holds a lock on it yet
}

/**
 * Writes a file atomically (temp file, fsync, rename, fsync of the directory) with mode 0600, so a reader
 * never sees half a file and a crash leaves either the old or the new content.
 */
export function writeFilePrivateAtomic(file: string, content: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, "wx", PRIVATE_FILE_MODE);
  try {
    fs.writeFileSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dirFd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}
