/**
 * Worker thread hosting ThreadedSlashingProtection's checking connection. better-sqlite3 is synchronous, so a
 * group commit (and its fsync) run on the caller's thread would stall HTTP parsing and replies for its whole
 * duration; here it overlaps with them. The database's own group commit batches whatever arrives while it is busy.
 * Protocol: see protocol.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openSlashingDb } from "../database.js";
import { errorToWire } from "../errors.js";
import type { BatchStats } from "../group-commit.js";
import { bytesToHex } from "../../common/index.js";
import { decodeChecks, type CheckReply, type DbWorkerData, type ToDbWorker, type FromDbWorker } from "./protocol.js";

const { file } = workerData as DbWorkerData;
/** How long closing waits for the checkpoint thread's last checkpoint and exit. */
const CHECKPOINTER_STOP_MS = 5_000;
const port = parentPort!;
let commits: BatchStats[] = [];
let ok = "";
let failed: CheckReply[] = [];
let scheduled = false;

const db = openSlashingDb(file, {
  checkpointInBackground: true, // WAL checkpoints on yet another thread: never in the commit path
  onCommit: (s) => commits.push(s),
});

function takeReplies(): FromDbWorker {
  const message: FromDbWorker = { kind: "replies", ok, failed, commits };
  ok = "";
  failed = [];
  commits = [];
  return message;
}

/** Replies of one event-loop turn go back in one message. */
function reply(r: CheckReply): void {
  if (r.error) failed.push(r);
  else ok += `${r.id} ${r.outcome === "recorded" ? "r" : "p"}\n`;
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    port.postMessage(takeReplies());
  });
}

port.on("message", (message: ToDbWorker) => {
  switch (message.kind) {
    case "checks":
      for (const c of decodeChecks(message.checks)) {
        db.checkAndRecord(c).then(
          (outcome) => reply({ id: c.id, outcome }),
          (err: unknown) => reply({ id: c.id, error: errorToWire(err) }),
        );
      }
      return;
    case "pin":
      try {
        db.pinGenesisValidatorsRoot(bytesToHex(message.root));
        port.postMessage({ kind: "pinned", requestId: message.requestId } satisfies FromDbWorker);
      } catch (err) {
        port.postMessage({ kind: "pinned", requestId: message.requestId, error: errorToWire(err) } satisfies FromDbWorker);
      }
      return;
    case "probe":
      db.probeWrite().then(
        () => port.postMessage({ kind: "probed", requestId: message.requestId } satisfies FromDbWorker),
        (err: unknown) => port.postMessage({ kind: "probed", requestId: message.requestId, error: errorToWire(err) } satisfies FromDbWorker),
      );
      return;
    case "close":
      // Commits everything still queued (their replies are scheduled), stops the checkpoint thread by message
      // and waits for it, closes the connection; then this thread ends by itself: the main thread never has to
      // terminate() it in the middle of a SQLite call.
      void db.closeAndReport(CHECKPOINTER_STOP_MS).then((problems) => {
        setImmediate(() => {
          if (ok !== "" || failed.length > 0 || commits.length > 0) port.postMessage(takeReplies());
          port.postMessage({ kind: "closed", problems } satisfies FromDbWorker);
          port.close();
        });
      });
      return;
  }
});

port.postMessage({ kind: "ready" } satisfies FromDbWorker);
