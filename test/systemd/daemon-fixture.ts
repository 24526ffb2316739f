// A stand-in daemon for test/systemd/daemon.test.ts: runs runDaemon() around a real slashing database, the way
// `vigil signer start` does, with knobs to make it slow to close, wedged or unhealthy. Run from dist/.
//   FIXTURE_DB=<path>        slashing database file
//   FIXTURE_INFLIGHT_MS=<n>  a request in flight at shutdown that commits after n ms (default 300)
//   FIXTURE_HANG_CLOSE=1     close() never finishes (for the second-signal test)
// SIGUSR1 closes the database behind the daemon's back (liveness check fails); SIGUSR2 blocks the event loop.
import { runDaemon } from "../../common/index.js";
import { openSlashingDb } from "../../slashing-db/index.js";

const dbPath = process.env.FIXTURE_DB;
if (!dbPath) throw new Error("FIXTURE_DB is required");
const inflightMs = Number(process.env.FIXTURE_INFLIGHT_MS ?? 300);
const pubkey = `0x${"a1".repeat(48)}`;
const out = (line: string) => process.stdout.write(`${line}\n`);

await runDaemon({
  name: "fixture",
  log: (level, message) => out(`log ${level} ${message}`),
  statusIntervalMs: 200,
  async start(hooks) {
    hooks.status("loading keys 0/2");
    await new Promise((r) => setTimeout(r, 100));
    hooks.status("loading keys 2/2");
    const db = openSlashingDb(dbPath, { genesisValidatorsRoot: `0x${"11".repeat(32)}` });
    let accepting = true;
    const inFlight = new Set<Promise<unknown>>();
    let nextSlot = 1;
    // One "request" per 50 ms, each recorded after inflightMs, like a signing request waiting on its commit.
    const requests = setInterval(() => {
      if (!accepting) return;
      const slot = nextSlot++;
      const p = new Promise((r) => setTimeout(r, inflightMs))
        .then(() => db.checkAndRecordBlock(pubkey, slot))
        .then(() => out(`committed ${slot}`))
        .catch((err: Error) => out(`failed ${slot}: ${err.message}`));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }, 50);
    process.on("SIGUSR1", () => db.close());
    process.on("SIGUSR2", () => {
      const until = Date.now() + 3_000;
      while (Date.now() < until); // a wedged event loop
    });
    out("started");
    return {
      db,
      get inFlight() {
        return inFlight.size;
      },
      async close() {
        accepting = false;
        clearInterval(requests);
        out(`closing with ${inFlight.size} in flight`);
        if (process.env.FIXTURE_HANG_CLOSE === "1") await new Promise(() => {});
        await Promise.all(inFlight);
        db.close();
        out("closed");
      },
    };
  },
  liveness: (d) => d.db.isHealthy(),
  readyStatus: () => "fixture ready: 2 keys",
  runningStatus: (d) => `fixture running: ${d.inFlight} in flight`,
});
