// Two real `vigil signer start` processes on one PostgreSQL database, each with its own data directory and the same
// keys, share one client state (signer/docs/fencing-across-instances.md): a disable acknowledged by instance A's
// admin API holds at instance B, for a request already in flight at B and for every request B gets afterwards;
// a STALE generation is refused at B after A took a newer one. The processes, HTTP, HSM and database are real.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestPostgres } from "../helpers/postgres.js";
import { startPostgres } from "../helpers/postgres.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig, type SignerProcess } from "./cli-process.js";
import { attestationBody, http, interopPubkey, randaoBody, tokenWithInteropKeys, writePrivate } from "./harness.js";
import fs from "node:fs";

const work = tempDir("vigil-fencing-instances-");
const PRIMARY_TOKEN = "primary-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const pk = (i: number) => interopPubkey(i);
let server: TestPostgres;
let token: TestToken;
let dbUrl: string;
let a: SignerProcess;
let b: SignerProcess;
const urls: Record<string, string> = {};

const sign = (at: string, i: number, body: unknown) => http(`${at}/api/v1/eth2/sign/${pk(i)}`, { body, headers: { authorization: `Bearer ${PRIMARY_TOKEN}` } });
const admin = (at: string, p: string, body?: unknown) =>
  http(`${at}/admin/v1${p}`, { ...(body === undefined ? {} : { body }), headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });

function instance(name: string): SignerProcess {
  const dir = path.join(work, name);
  // A copy the signer's user owns (the server's own file may belong to the server's system user).
  const passwordFile = writePrivate(path.join(dir, "db.password"), fs.readFileSync(server.passwordFile, "utf8"));
  const config = writeSignerConfig(token, path.join(dir, "data"), path.join(dir, "signer.json"), {
    slashingDb: { postgres: { url: dbUrl, passwordFile } },
    clients: [{ id: "primary", tokenFile: writePrivate(path.join(dir, "primary.token"), PRIMARY_TOKEN), keys: "*" }],
    admin: { tokenFile: writePrivate(path.join(dir, "admin.token"), ADMIN_TOKEN) },
    logLevel: "warn",
  });
  return spawnSigner(config, "ignore");
}

beforeAll(async () => {
  [server, token] = await Promise.all([startPostgres(), tokenWithInteropKeys("vigil-test-fencing-instances", 2)]);
  dbUrl = await server.createDatabase();
  a = instance("a");
  urls.a = await a.ready; // A creates the schema; B then finds it
  b = instance("b");
  urls.b = await b.ready;
}, 120_000);

afterAll(async () => {
  for (const p of [a, b]) if (p) await stopWithSigterm(p);
  killLeftovers();
  token?.destroy();
  await server?.stop();
}, 60_000);

describe("two signer processes on one PostgreSQL database", () => {
  it("a request in flight at B when A acknowledges a disable is refused; so is every later one at B, and a STALE generation at B", async () => {
    expect((await sign(urls.b!, 0, attestationBody(1, 2))).status).toBe(200); // the validator's row exists from here
    // Hold B's next request inside its slashing batch: a third connection locks the validator's row.
    const c = await server.connect(dbUrl);
    try {
      await c.query("BEGIN");
      await c.query("SELECT id FROM validators WHERE pubkey = $1 FOR UPDATE", [Buffer.from(pk(0).slice(2), "hex")]);
      const inFlight = sign(urls.b!, 0, attestationBody(2, 3));
      await new Promise((r) => setTimeout(r, 300));
      const inFlightAtB = (await admin(urls.b!, "/clients/primary")).json().inFlight;
      expect(inFlightAtB).toBe(1);
      // Both LISTEN connections cut: B's in-memory copy cannot hear of the disable (B retries after 1 s), so what
      // refuses below is B's release gate reading the database, not its memory.
      const cut = await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()");
      expect(cut.rowCount).toBe(2);
      const disabled = await admin(urls.a!, "/clients/primary/disable", { generation: 5 });
      expect(disabled.status).toBe(200); // A has acknowledged
      await c.query("COMMIT"); // B's request goes on: recorded, signed, then stopped at its release gate
      const held = await inFlight;
      expect(held.status).toBe(403);
      expect(held.json().code).toBe("CLIENT_DISABLED");
      // B's memory still said enabled when it refused (it reconnects and reloads only after its 1 s retry).
      expect((await admin(urls.b!, "/clients/primary")).json().enabled).toBe(true);
    } finally {
      await c.end();
    }
    const later = await Promise.all([sign(urls.b!, 1, randaoBody(3)), sign(urls.b!, 0, attestationBody(3, 4)), sign(urls.a!, 1, randaoBody(4))]);
    expect(later.map((r) => r.status)).toEqual([403, 403, 403]);
    const stale = await admin(urls.b!, "/clients/primary/enable", { generation: 4 });
    expect(stale.status).toBe(409);
    expect(stale.json()).toMatchObject({ code: "STALE_GENERATION", reason: "STALE", currentGeneration: 5 });
    // B's views follow A's change once B's LISTEN is back (its reload on reconnecting), and an enable through B holds at A.
    const reconnected = Date.now() + 5000;
    while ((await admin(urls.b!, "/clients/primary")).json().enabled && Date.now() < reconnected) await new Promise((r) => setTimeout(r, 20));
    expect((await admin(urls.b!, "/clients/primary")).json()).toMatchObject({ enabled: false, changedAtGeneration: 5 });
    expect((await admin(urls.b!, "/clients/primary/enable", { generation: 6 })).status).toBe(200);
    // An enable reaches A's admission when A hears the NOTIFY (a disable needs no such wait: the gate reads the row).
    const deadline = Date.now() + 5000;
    while (!(await admin(urls.a!, "/clients/primary")).json().enabled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await sign(urls.a!, 1, randaoBody(5))).status).toBe(200);
  }, 60_000);

  it("under a flood of requests at B, nothing B receives after A's disable answered is signed", async () => {
    expect((await admin(urls.a!, "/clients/primary/enable", { generation: 7 })).status).toBe(200);
    let acknowledged = false;
    const startedAfterAck: Promise<number>[] = [];
    const replies: Promise<number>[] = [];
    let epoch = 100;
    const stop = Date.now() + 3000;
    const worker = async () => {
      while (Date.now() < stop) {
        const after = acknowledged;
        const status = sign(urls.b!, epoch % 2, randaoBody(epoch++)).then((r) => r.status);
        (after ? startedAfterAck : replies).push(status);
        await status;
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await new Promise((r) => setTimeout(r, 500));
    expect((await admin(urls.a!, "/clients/primary/disable", { generation: 8 })).status).toBe(200);
    acknowledged = true;
    await Promise.all(workers);
    const before = await Promise.all(replies);
    const after = await Promise.all(startedAfterAck);
    expect(before.filter((s) => s === 200).length).toBeGreaterThan(0); // the flood was signing until the disable
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((s) => s === 403)).toBe(true);
  }, 60_000);

  it("with the database gone, a release is withheld (503, Retry-After) and a fence change is not acknowledged (503)", async () => {
    expect((await admin(urls.a!, "/clients/primary/enable", { generation: 9 })).status).toBe(200);
    const deadline = Date.now() + 5000;
    while (!(await admin(urls.b!, "/clients/primary")).json().enabled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await server.stop(); // the last test: the server is gone for good
    const withheld = await sign(urls.b!, 1, randaoBody(500)); // not slashable: only the release gate needs the database
    expect(withheld.status).toBe(503);
    expect(withheld.headers.get("retry-after")).not.toBeNull();
    expect(withheld.json()).toMatchObject({ code: "DB_WRITE_FAILED", cause: "UNREACHABLE" });
    const fence = await admin(urls.a!, "/clients/primary/disable", { generation: 10 });
    expect(fence.status).toBe(503);
    expect(fence.headers.get("retry-after")).not.toBeNull();
    expect(fence.json().code).toBe("STATE_UNAVAILABLE");
  }, 60_000);
});
