/**
 * Worker thread that checkpoints the WAL on its own connection, so the group commits on the main thread
 * never stall behind a checkpoint (which writes pages back into the database file and fsyncs it).
 * PASSIVE checkpoints never block writers; a TRUNCATE on shutdown leaves a small WAL behind.
 *
 * Shutdown is a message, never a terminate(): terminating a thread while better-sqlite3 is inside SQLite (and
 * about to throw, as it does when the disk is full or read-only) can end the whole process in a V8 fatal error.
 * On "stop" the worker runs its last checkpoint, closes its connection, reports, and lets its thread end.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import type { CheckpointerStopped } from "./checkpointer.js";

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
/** The last checkpoint waits this long at most for a writer or reader that holds the file. */
const FINAL_CHECKPOINT_BUSY_MS = 1_000;

const db = new Database(file, { timeout: 5_000 });
db.pragma("synchronous = FULL");
let lastError: string | undefined;

/** Another connection holding a lock is contention, not a failure: every commit is durable in the WAL meanwhile. */
function isContention(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
    lastError = undefined;
  } catch (err) {
    // Busy, locked or an I/O error (disk full, read-only): the next tick tries again; the main connection's
    // fallback covers a dead worker.
    if (!isContention(err)) lastError = (err as Error).message;
  }
}, intervalMs);

parentPort!.on("message", (message) => {
  if (message !== "stop") return;
  clearInterval(timer);
  const report: CheckpointerStopped = { kind: "stopped" };
  try {
    db.pragma(`busy_timeout = ${FINAL_CHECKPOINT_BUSY_MS}`);
    // A busy WAL (a reader holds a snapshot) is no failure: every commit is already durable in the WAL.
    db.pragma("wal_checkpoint(TRUNCATE)");
  } catch (err) {
    if (!isContention(err)) report.error = `final WAL checkpoint failed: ${(err as Error).message}`;
  }
  if (report.error === undefined && lastError !== undefined) report.error = `WAL checkpoints were failing: ${lastError}`;
  try {
    db.close();
  } catch (err) {
    report.error ??= `closing the checkpoint connection failed: ${(err as Error).message}`;
  }
  parentPort!.postMessage(report);
  parentPort!.close(); // nothing left to run: the thread ends on its own
});
