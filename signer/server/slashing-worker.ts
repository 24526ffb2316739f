/**
 * Worker thread hosting the signer's slashing-protection connection. better-sqlite3 is synchronous, so a group
 * commit (and its fsync) run on the main thread would stall HTTP parsing and replies for its whole duration; here
 * it overlaps with them. The database's own group commit batches whatever arrives while it is busy.
 * Protocol: see slashing-client.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { classifyDbFailure, openSlashingDb, SlashingDbInputError, SlashingProtectionError, type BatchStats } from "../../slashing-db/index.js";
import { VigilError } from "../../config/index.js";
import { decodeChecks, type CheckReply, type DbWorkerData, type ToDbWorker, type FromDbWorker, type WireError } from "./slashing-protocol.js";

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

function wire(err: unknown): WireError {
  if (err instanceof SlashingProtectionError) return { kind: "refused", code: err.refusal, message: err.message };
  if (err instanceof SlashingDbInputError) return { kind: "input", code: err.code, field: err.field, message: err.message };
  if (err instanceof VigilError) return { kind: "unavailable", code: err.code, message: err.message, failure: classifyDbFailure(err) };
  return { kind: "unavailable", code: "DB_WRITE_FAILED", message: err instanceof Error ? err.message : String(err), failure: classifyDbFailure(err) };
}

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
        const done = c.block
          ? db.checkAndRecordBlock(c.pubkey, c.slot!, c.root)
          : db.checkAndRecordAttestation(c.pubkey, c.source!, c.target!, c.root);
        done.then(
          (outcome) => reply({ id: c.id, outcome }),
          (err: unknown) => reply({ id: c.id, error: wire(err) }),
        );
      }
      return;
    case "pin":
      try {
        db.pinGenesisValidatorsRoot(message.root);
        port.postMessage({ kind: "pinned", requestId: message.requestId } satisfies FromDbWorker);
      } catch (err) {
        port.postMessage({ kind: "pinned", requestId: message.requestId, error: wire(err) } satisfies FromDbWorker);
      }
      return;
    case "probe":
      db.probeWrite().then(
        () => port.postMessage({ kind: "probed", requestId: message.requestId } satisfies FromDbWorker),
        (err: unknown) => port.postMessage({ kind: "probed", requestId: message.requestId, error: wire(err) } satisfies FromDbWorker),
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

port.postMessage({ kind: "ready", genesisValidatorsRoot: db.genesisValidatorsRoot } satisfies FromDbWorker);
