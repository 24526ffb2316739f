/**
 * Worker thread that checkpoints the WAL on its own connection, so the group commits on the main thread
 * never stall behind a checkpoint (which writes pages back into the database file and fsyncs it).
 * PASSIVE checkpoints never block writers; a TRUNCATE on shutdown leaves a small WAL behind.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { timeout: 5_000 });
db.pragma("synchronous = FULL");

const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or locked: the next tick tries again; the main connection's fallback covers a dead worker.
  }
}, intervalMs);

parentPort!.on("message", (message) => {
  if (message !== "stop") return;
  clearInterval(timer);
  try {
    db.pragma("wal_checkpoint(TRUNCATE)");
  } catch {
    /* the main connection may still be closing */
  }
  db.close();
  parentPort!.postMessage("stopped");
});
