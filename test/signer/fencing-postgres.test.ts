// The client state shared in PostgreSQL by several signer instances (signer/docs/fencing-across-instances.md), on a
// real server: a disable acknowledged through instance A holds at instance B, for a request already in flight at B
// too; generations and decisions decided from the stored row across instances; LISTEN/NOTIFY keeping each
// instance's in-memory copy current, also after its LISTEN connection is cut; a release refused while the database
// is unreachable. Signing services run on the real PostgreSQL slashing database and real audit feeds; only the BLS
// pool is a stand-in, so a test can hold a request "in flight" for as long as it needs.
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PostgresSlashingProtection, SlashingDbUnavailableError } from "../../slashing-db/index.js";
import { AuditLog } from "../../signer/server/audit-log.js";
import { ClientState } from "../../signer/server/auth.js";
import { mergeFencing } from "../../signer/server/fencing/carry-over.js";
import { openClientFencing } from "../../signer/server/fencing/open.js";
import { FENCING_LOCK_KEY, GATE_IDLE_TIMEOUT_MS, GATE_IDLE_TIMEOUT_SQL, PostgresClientFencing } from "../../signer/server/fencing/postgres.js";
import { SqliteClientFencing } from "../../signer/server/fencing/sqlite.js";
import { SigningService } from "../../signer/server/signing-service.js";
import { loadConsensus, MINIMAL_DEVNET, type BlsPool } from "../../signer/signing/index.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, GVR, randaoBody } from "./harness.js";

const work = tempDir("vigil-fencing-pg-");
const PK = `0x${"a1".repeat(48)}`;
const CLIENTS = new Map([
  ["primary", true],
  ["standby", false],
]);
let server: TestPostgres;
const opened: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  server = await startPostgres();
  await loadConsensus("minimal");
}, 60_000);
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
});
afterAll(async () => {
  await server?.stop();
});

async function fencingOn(url: string, initial: ReadonlyMap<string, boolean> = CLIENTS, retryMs = 50): Promise<PostgresClientFencing> {
  const f = await PostgresClientFencing.open({ url, passwordFile: server.passwordFile }, initial, { retryMs });
  opened.push(f);
  return f;
}

async function until(what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const settledWithin = <T>(p: Promise<T>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

/** A signer instance's signing path: its own fencing connection, slashing connection and audit feed on one database. */
async function instance(url: string, name: string, retryMs = 50) {
  const fencing = await fencingOn(url, CLIENTS, retryMs);
  const slashing = await PostgresSlashingProtection.open({ url, passwordFile: server.passwordFile }, { genesisValidatorsRoot: GVR });
  opened.push(slashing);
  const audit = AuditLog.open(path.join(work, name, "audit"));
  opened.push(audit);
  // The BLS stand-in: each signature waits until the test lets it go (the request is then in flight, recorded).
  const held: (() => void)[] = [];
  const pool = {
    publicKeys: [PK],
    capacityPerMs: 1,
    sign: () => new Promise<Uint8Array>((resolve) => held.push(() => resolve(new Uint8Array(96).fill(7)))),
  } as unknown as BlsPool;
  const service = new SigningService({ network: MINIMAL_DEVNET, slashing, pool, fencing, audit, maxQueueDepth: 100, maxWaitMs: 60_000 });
  return { fencing, service, held, client: new ClientState("primary", undefined) };
}

describe("one client state for every instance on the database", () => {
  it("a client gets a row with its configured state once; a recorded decision wins over initiallyEnabled", async () => {
    const url = await server.createDatabase();
    const a = await fencingOn(url);
    expect(a.isEnabled("primary")).toBe(true);
    expect(a.isEnabled("standby")).toBe(false);
    expect((await a.apply("standby", true, 1)).ok).toBe(true);
    // B is configured with other initial states: the rows already there (and the decision) win.
    const b = await fencingOn(
      url,
      new Map([
        ["primary", false],
        ["standby", false],
        ["extra", false],
      ]),
    );
    expect(b.fence("standby")).toEqual({ enabled: true, changedAtGeneration: 1 });
    expect(b.isEnabled("primary")).toBe(true);
    expect(b.isEnabled("extra")).toBe(false);
    expect(b.generation).toBe(1);
  });

  it("a change through A reaches B's in-memory copy through NOTIFY", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await fencingOn(url), await fencingOn(url)];
    expect(b.isEnabled("primary")).toBe(true);
    expect(await a.apply("primary", false, 3, "failover-1")).toMatchObject({ ok: true, generation: 3 });
    await until(() => !b.isEnabled("primary"));
    expect(b.generation).toBe(3);
    expect(b.fence("primary")).toEqual({ enabled: false, changedAtGeneration: 3 });
  });

  it("stale and taken generations are decided from the stored row, whichever instance is asked", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await fencingOn(url), await fencingOn(url)];
    expect(await a.apply("primary", false, 5)).toMatchObject({ ok: true, generation: 5 });
    // Asked at once, before B could have heard of it: B's memory is not what decides.
    expect(await b.apply("primary", true, 3)).toEqual({ ok: false, currentGeneration: 5, reason: "STALE" });
    expect(b.generation).toBe(5);
    expect(b.isEnabled("primary")).toBe(false);
    expect(await a.apply("primary", false, 7, "failover-a")).toMatchObject({ ok: true });
    expect(await b.apply("primary", true, 7, "failover-b")).toEqual({ ok: false, currentGeneration: 7, reason: "GENERATION_TAKEN" });
    expect(await b.apply("primary", false, 7, "failover-a")).toMatchObject({ ok: true }); // the holder's idempotent retry
    const c = await server.connect(url);
    try {
      expect((await c.query("SELECT generation::int, decision FROM signer_fencing")).rows).toEqual([{ generation: 7, decision: "failover-a" }]);
      expect((await c.query("SELECT enabled FROM signer_clients WHERE id = 'primary'")).rows).toEqual([{ enabled: false }]);
    } finally {
      await c.end();
    }
  });

  it("B's LISTEN connection cut: B reconnects, and a change made meanwhile reaches it", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await fencingOn(url), await fencingOn(url)];
    const c = await server.connect(url);
    try {
      const cut = await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()");
      expect(cut.rowCount).toBe(2); // A's and B's
      await until(() => !b.listening);
      expect((await a.apply("primary", false, 2)).ok).toBe(true);
      await until(() => !b.isEnabled("primary"));
      await until(() => b.listening);
    } finally {
      await c.end();
    }
  });
});

describe("moving a signer from SQLite: its signer-state.sqlite is carried over", () => {
  it("a client disabled at generation N in the file stays disabled, generations below N are stale; the file is kept; a later re-enable survives a restart", async () => {
    const url = await server.createDatabase();
    const dataDir = path.join(work, `carry-${Date.now()}`);
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, "signer-state.sqlite");
    const old = SqliteClientFencing.open(file, CLIENTS);
    expect((await old.apply("primary", false, 5, "failover-5")).ok).toBe(true);
    await old.close();
    const before = fs.readFileSync(file);
    // Another instance already on the database seeded "primary" enabled at generation 0.
    await (await fencingOn(url)).close();
    const location = { kind: "postgres" as const, connection: { url, passwordFile: server.passwordFile } };
    const logged: string[] = [];
    const moved = await openClientFencing(
      location,
      dataDir,
      [...CLIENTS].map(([id, initiallyEnabled]) => ({ id, initiallyEnabled })),
      (m) => logged.push(m),
    );
    opened.push(moved);
    expect(moved.fence("primary")).toEqual({ enabled: false, changedAtGeneration: 5 });
    expect(moved.generation).toBe(5);
    expect(await moved.releaseIfEnabled("primary", () => {})).toBe(false); // the gate reads the database
    expect(await moved.apply("primary", true, 4)).toEqual({ ok: false, currentGeneration: 5, reason: "STALE" });
    expect(await moved.apply("primary", true, 5, "someone-else")).toEqual({ ok: false, currentGeneration: 5, reason: "GENERATION_TAKEN" });
    expect(logged.join("\n")).toMatch(/generation 0 -> 5.*primary disabled at generation 5/);
    expect(fs.readFileSync(file)).toEqual(before); // read, never changed
    // Re-enabled after the move at a newer generation: the next open merges the same file and changes nothing.
    expect((await moved.apply("primary", true, 6)).ok).toBe(true);
    await moved.close();
    logged.length = 0;
    const again = await openClientFencing(location, dataDir, undefined, (m) => logged.push(m));
    opened.push(again);
    expect(again.fence("primary")).toEqual({ enabled: true, changedAtGeneration: 6 });
    expect(logged).toEqual([]);
  });

  it("the merge: the later change wins per client, a disable on a tie; the higher generation with its decision", () => {
    const state = (generation: number, decision: string | null, clients: [string, boolean, number][]) => ({
      generation,
      decision,
      clients: new Map(clients.map(([id, enabled, changedAtGeneration]) => [id, { enabled, changedAtGeneration }])),
    });
    const db = state(7, "db-7", [
      ["newer-in-db", true, 7],
      ["tie", true, 3],
      ["newer-in-file", true, 0],
    ]);
    const file = state(4, "file-4", [
      ["newer-in-db", false, 4],
      ["tie", false, 3],
      ["newer-in-file", false, 2],
      ["only-in-file", false, 1],
    ]);
    const merge = mergeFencing(db, file);
    expect(merge.fencing).toBeUndefined(); // the database's generation 7 and decision stay
    expect([...merge.clients]).toEqual([
      ["tie", { enabled: false, changedAtGeneration: 3 }],
      ["newer-in-file", { enabled: false, changedAtGeneration: 2 }],
      ["only-in-file", { enabled: false, changedAtGeneration: 1 }],
    ]);
    expect(mergeFencing(file, db).fencing).toEqual({ generation: 7, decision: "db-7" });
    // An enable on a tie does not override a disable.
    expect(mergeFencing(state(3, null, [["c", false, 3]]), state(3, null, [["c", true, 3]])).clients.size).toBe(0);
  });
});

describe("the release gate and a disable exclude each other (the fencing lock)", () => {
  it("a disable in progress (holding the fencing lock, not yet committed) holds B's release; once it commits B refuses, though B's memory says enabled", async () => {
    const url = await server.createDatabase();
    const b = await fencingOn(url);
    const c = await server.connect(url);
    try {
      // A disable written directly as apply() does it, but without NOTIFY: B's in-memory copy stays "enabled" throughout.
      await c.query("BEGIN");
      await c.query(`SELECT pg_advisory_xact_lock(${FENCING_LOCK_KEY})`);
      await c.query("UPDATE signer_clients SET enabled = false WHERE id = 'primary'");
      let sent = false;
      const release = b.releaseIfEnabled("primary", () => {
        sent = true;
      });
      expect(await settledWithin(release, 300)).toBe(false);
      await c.query("COMMIT");
      expect(await release).toBe(false);
      expect(sent).toBe(false);
      expect(b.isEnabled("primary")).toBe(true); // the gate, not the memory, refused
    } finally {
      await c.end();
    }
  });

  it("a gate holding the fencing lock (a send in progress) holds A's disable: its answer comes after the send", async () => {
    const url = await server.createDatabase();
    const a = await fencingOn(url);
    const c = await server.connect(url);
    try {
      await c.query("BEGIN");
      await c.query(`SELECT pg_advisory_xact_lock_shared(${FENCING_LOCK_KEY})`); // as a gate does, before its read and sends
      const disable = a.apply("primary", false, 1);
      expect(await settledWithin(disable, 300)).toBe(false);
      await c.query("COMMIT");
      expect((await disable).ok).toBe(true);
    } finally {
      await c.end();
    }
  });

  it("racing releases at B against a disable through A: every release is refused or sent before A's answer", async () => {
    const url = await server.createDatabase();
    const [a, b] = [await fencingOn(url), await fencingOn(url)];
    for (let round = 1; round <= 30; round++) {
      expect((await a.apply("primary", true, 2 * round - 1)).ok).toBe(true);
      const events: string[] = [];
      const releases = Array.from({ length: 20 }, (_, i) =>
        new Promise((r) => setTimeout(r, Math.random() * 4)).then(() => b.releaseIfEnabled("primary", () => events.push(`sent ${i}`))),
      );
      await new Promise((r) => setTimeout(r, Math.random() * 4));
      await a.apply("primary", false, 2 * round).then(() => events.push("acknowledged"));
      const outcomes = await Promise.all(releases);
      const ack = events.indexOf("acknowledged");
      expect(events.slice(ack + 1)).toEqual([]); // nothing sent after the disable was answered
      expect(outcomes.filter((o) => o)).toHaveLength(ack);
    }
  });

  it("a request in flight at B (recorded, being signed) when A acknowledges a disable is refused at release", async () => {
    const url = await server.createDatabase();
    const a = await instance(url, "a");
    const b = await instance(url, "b", 600_000); // B does not reconnect its LISTEN during the test
    // B's LISTEN connection cut (and A's): B's in-memory copy never hears of the disable, so only the gate can refuse.
    const c = await server.connect(url);
    try {
      const cut = await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()");
      expect(cut.rowCount).toBe(2);
    } finally {
      await c.end();
    }
    await until(() => !b.fencing.listening);
    const signing = b.service.sign(b.client, PK, attestationBody(1, 2));
    await until(() => b.held.length === 1); // recorded in PostgreSQL, now in B's BLS pool
    expect((await a.fencing.apply("primary", false, 1)).ok).toBe(true); // A's admin API answers here
    expect(b.fencing.isEnabled("primary")).toBe(true); // B's memory: still enabled
    b.held[0]!();
    const signed = await signing;
    const sent: string[] = [];
    const refusal = await b.service
      .release(b.client, signed, (s) => sent.push(s))
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refusal).toMatchObject({ code: "CLIENT_DISABLED", duringSigning: true });
    expect(sent).toEqual([]);
    expect(b.client.inFlight).toBe(0);
    // And a release through A itself, enabled again at a newer generation, goes out.
    expect((await a.fencing.apply("primary", true, 2)).ok).toBe(true);
    const next = a.service.sign(a.client, PK, randaoBody(4));
    await until(() => a.held.length === 1);
    a.held[0]!();
    await a.service.release(a.client, await next, (s) => sent.push(s));
    expect(sent).toHaveLength(1);
  });
});

describe("connections lost", () => {
  it("every connection of an instance cut (as by a server restart): its next release and apply open new ones", async () => {
    const url = await server.createDatabase();
    const b = await fencingOn(url);
    expect(await b.releaseIfEnabled("primary", () => {})).toBe(true); // the gate's pool has a connection now
    const c = await server.connect(url);
    try {
      const cut = await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
      expect(cut.rowCount).toBeGreaterThanOrEqual(2); // the gate's and the listener's at least
      await until(() => !b.listening);
      await new Promise((r) => setTimeout(r, 50)); // the idle pool connection's end is seen
      let sent = false;
      expect(
        await b.releaseIfEnabled("primary", () => {
          sent = true;
        }),
      ).toBe(true);
      expect(sent).toBe(true);
      expect((await b.apply("primary", false, 1)).ok).toBe(true);
      await until(() => b.listening);
    } finally {
      await c.end();
    }
  });
});

describe("a gate whose instance vanished", () => {
  it("a connection idle in transaction holding the shared lock (taken as a gate takes it) blocks a disable only until the server's idle timeout", async () => {
    const url = await server.createDatabase();
    const a = await fencingOn(url);
    const vanished = await server.connect(url);
    vanished.on("error", () => undefined); // the server ends it: that is the point
    await vanished.query(`BEGIN; ${GATE_IDLE_TIMEOUT_SQL}SELECT pg_advisory_xact_lock_shared(${FENCING_LOCK_KEY})`);
    const started = Date.now();
    expect((await a.apply("primary", false, 1)).ok).toBe(true); // without the timeout: held until apply's query timeout fails it
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(GATE_IDLE_TIMEOUT_MS - 100);
    expect(waited).toBeLessThan(GATE_IDLE_TIMEOUT_MS + 1500);
    await vanished.end().catch(() => undefined);
  }, 15_000);
});

describe("opening the fencing state fails: the slashing database's exit codes", () => {
  it("wrong password: exit 41; unreachable: exit 40", async () => {
    const url = await server.createDatabase();
    const wrong = path.join(work, "wrong-password");
    fs.writeFileSync(wrong, "not-the-password", { mode: 0o600 });
    await expect(PostgresClientFencing.open({ url, passwordFile: wrong }, CLIENTS)).rejects.toMatchObject({ exitCode: 41, failure: "AUTH_FAILED" });
    const nowhere = url.replace(/:\d+\//, ":1/");
    await expect(PostgresClientFencing.open({ url: nowhere, passwordFile: server.passwordFile }, CLIENTS)).rejects.toMatchObject({
      exitCode: 40,
      failure: "UNREACHABLE",
    });
  });
});

describe("the database unreachable", () => {
  it("a release is refused (503 class, nothing sent); a fence change is refused; close still works", async () => {
    // A server of its own, holding one small database: stopping it is quick.
    const own = await startPostgres();
    const b = await PostgresClientFencing.open({ url: await own.createDatabase(), passwordFile: own.passwordFile }, CLIENTS, { retryMs: 50 });
    await own.stop();
    let sent = false;
    const refusal = await b
      .releaseIfEnabled("primary", () => {
        sent = true;
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refusal).toBeInstanceOf(SlashingDbUnavailableError);
    expect(refusal).toMatchObject({ code: "DB_WRITE_FAILED", failure: "UNREACHABLE" });
    expect(sent).toBe(false);
    await expect(b.apply("primary", false, 1)).rejects.toBeInstanceOf(SlashingDbUnavailableError);
    await b.close();
  }, 30_000);
});
