// The watchdog with signers that share one slashing database (issue 12): real `vigil signer start` processes on a
// real PostgreSQL server and on real SQLite files. Two signer ids on one PostgreSQL database are proved to share it
// (a nonce written through each is read back at every instance) and continuity moves nothing; a copy of that
// database (CREATE DATABASE … TEMPLATE: the same history id, a diverging history), a copied SQLite file and two
// distinct databases are not, and continuity takes the interchange path. A fence at a two-instance signer is one
// call, read back at both; with one instance SIGKILLed it holds through the shared state, and at a SQLite signer
// whose second instance cannot be reached it is not confirmed.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SlashingDbResponse } from "../../admin-api/index.js";
import { migratePostgresSchema, openSlashingDb } from "../../slashing-db/index.js";
import { PG_MIGRATIONS } from "../../slashing-db/postgres/schema.js";
import { SLASHING_DB_MIGRATIONS } from "../../slashing-db/schema.js";
import {
  ChainClock,
  ensureContinuity,
  FailoverExecutor,
  fenceHolds,
  newLeaseHolder,
  parseWatchdogConfig,
  proveSharedDatabase,
  setClientAtEveryInstance,
  SignerAdminClient,
  WatchdogStore,
  type SignerEndpointConfig,
} from "../../watchdog/index.js";
import { Alerter } from "../../watchdog/alerts/alerter.js";
import { createLogger } from "../../watchdog/log.js";
import { freePort } from "../helpers/ports.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig, type SignerProcess } from "../signer/cli-process.js";
import { SimBeaconNode } from "./sim/beacon-node.js";
import { SimChain } from "./sim/chain.js";
import { GVR, http, interopPubkey, randaoBody, tokenWithInteropKeys, writePrivate } from "../signer/harness.js";

const work = tempDir("vigil-wd-shared-");
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const BACKUP_TOKEN = "backup-token-0123456789abcdef";
const adminTokenFile = writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN);
let server: TestPostgres;
let token: TestToken;
const procs: Record<string, SignerProcess> = {};
const urls: Record<string, string> = {};
const sqliteFile = path.join(work, "lite", "slashing.sqlite");
const sqliteCopy = path.join(work, "lite-copy", "slashing.sqlite");

function start(name: string, slashingDb: unknown): Promise<string> {
  const dir = path.join(work, name);
  const config = writeSignerConfig(token, path.join(dir, "data"), path.join(dir, "signer.json"), {
    slashingDb,
    clients: [
      { id: "primary", tokenFile: writePrivate(path.join(dir, "primary.token"), `primary-${name}-0123456789abcdef`), keys: "*" },
      { id: "backup", tokenFile: writePrivate(path.join(dir, "backup.token"), BACKUP_TOKEN), keys: "*" },
    ],
    admin: { tokenFile: writePrivate(path.join(dir, "admin.token"), ADMIN_TOKEN) },
    logLevel: "warn",
  });
  procs[name] = spawnSigner(config, "ignore");
  return procs[name]!.ready.then((u) => (urls[name] = u));
}

const pgAt = (url: string, name: string) => ({
  postgres: { url, passwordFile: writePrivate(path.join(work, name, "db.password"), fs.readFileSync(server.passwordFile, "utf8")) },
});
const endpoint = (id: string, instances: string[], slashingDbPath?: string): SignerEndpointConfig => ({
  id,
  urls: instances,
  adminTokenFile,
  timeoutMs: 1_000,
  ...(slashingDbPath ? { slashingDbPath } : {}),
});
const admin = (at: string, p: string, body?: unknown, auth = ADMIN_TOKEN) =>
  http(`${at}/admin/v1${p}`, { ...(body === undefined ? {} : { body }), headers: { authorization: `Bearer ${auth}` } });
const identityGeneration = async (at: string): Promise<number> => (await admin(at, "/fencing")).json().generation;
const identity = async (at: string): Promise<SlashingDbResponse> => (await admin(at, "/slashing-db")).json();
const continuity = (from: SignerEndpointConfig, to: SignerEndpointConfig) =>
  ensureContinuity({
    from,
    to,
    clock: new ChainClock(Date.now(), 1_000, 4),
    beaconUrl: "http://127.0.0.1:1",
    validatorIndices: ["0"],
    knownPubkeys: [],
    quietEpochs: 1,
    probeTimeoutMs: 200,
    proveShared: () => proveSharedDatabase(new SignerAdminClient(from), new SignerAdminClient(to)),
  });
function vigil(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
const options = { retry: <T>(fn: () => Promise<T>) => fn(), settleMs: 2_000, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

beforeAll(async () => {
  [server, token] = await Promise.all([startPostgres(), tokenWithInteropKeys("vigil-test-wd-shared", 1)]);
  // Database A gets its schema (and history id) first, then B is made as a copy of it: the same id, its own future.
  const dbA = await server.createDatabase();
  const a = await server.connect(dbA);
  await migratePostgresSchema(a);
  await a.end();
  const nameA = new URL(dbA).pathname.slice(1);
  const root = await server.connect();
  await root.query(`CREATE DATABASE ${nameA}_copy TEMPLATE ${nameA}`);
  await root.end();
  const dbB = dbA.replace(/\/[^/]+$/, `/${nameA}_copy`);
  // The SQLite file, then its copy, closed in between: every page is in the main file.
  fs.mkdirSync(path.dirname(sqliteFile), { recursive: true });
  fs.mkdirSync(path.dirname(sqliteCopy), { recursive: true });
  openSlashingDb(sqliteFile, { genesisValidatorsRoot: GVR }).close();
  fs.copyFileSync(sqliteFile, sqliteCopy);
  // One after another: SoftHSM2 logins rewrite the token's files (test/helpers/signer-cluster.ts).
  await start("s0", pgAt(dbA, "s0"));
  await start("s1", pgAt(dbA, "s1"));
  await start("t", pgAt(dbA, "t"));
  await start("copy", pgAt(dbB, "copy"));
  await start("lite", { sqlite: { path: sqliteFile } });
  await start("liteCopy", { sqlite: { path: sqliteCopy } });
}, 180_000);

afterAll(async () => {
  await Promise.all(Object.values(procs).map((p) => (p.child.exitCode === null && p.child.signalCode === null ? stopWithSigterm(p) : undefined)));
  killLeftovers();
  token?.destroy();
  await server?.stop();
}, 60_000);

describe("GET /admin/v1/slashing-db: the database's identity, read from the database", () => {
  it("PostgreSQL: one history id for every instance on the database, and for a copy of it; a nonce written through one is read at the others, not at the copy", async () => {
    const ids = await Promise.all(["s0", "s1", "t", "copy"].map((n) => identity(urls[n]!)));
    for (const id of ids) expect(id).toMatchObject({ backend: "postgres", fencingShared: true, historyId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(new Set(ids.map((i) => i.historyId)).size).toBe(1);
    const nonce = "0123456789abcdef".repeat(2);
    const written = await admin(urls.s0!, "/slashing-db/sharing-nonce", { nonce });
    expect(written.status).toBe(200);
    expect(written.json().sharingNonce).toMatchObject({ nonce });
    for (const n of ["s1", "t"]) expect((await identity(urls[n]!)).sharingNonce?.nonce).toBe(nonce);
    expect((await identity(urls.copy!)).sharingNonce?.nonce).not.toBe(nonce);
  });

  it("SQLite: the history id travels with a copied file; the nonce does not", async () => {
    const [lite, copy] = await Promise.all([identity(urls.lite!), identity(urls.liteCopy!)]);
    expect(lite).toMatchObject({ backend: "sqlite", fencingShared: false, historyId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(copy.historyId).toBe(lite.historyId);
    const nonce = "fedcba9876543210".repeat(2);
    expect((await admin(urls.lite!, "/slashing-db/sharing-nonce", { nonce })).status).toBe(200);
    expect((await identity(urls.lite!)).sharingNonce?.nonce).toBe(nonce);
    expect((await identity(urls.liteCopy!)).sharingNonce?.nonce).not.toBe(nonce);
  });

  it("refuses a malformed nonce (400, the field named) and a request without the admin token (401)", async () => {
    const bad = await admin(urls.s0!, "/slashing-db/sharing-nonce", { nonce: "not-hex" });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ code: "INVALID_REQUEST", field: "nonce" });
    expect((await admin(urls.s0!, "/slashing-db", undefined, "wrong-token-0123456789abcdef")).status).toBe(401);
  });

  it("a database from before the history id gets one on upgrade (PostgreSQL schema 2, SQLite user_version 1)", async () => {
    const db = await server.createDatabase();
    const c = await server.connect(db);
    try {
      for (const m of PG_MIGRATIONS.slice(0, 2)) await c.query(m);
      await c.query("CREATE TABLE vigil_schema (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), version integer NOT NULL)");
      await c.query("INSERT INTO vigil_schema (version) VALUES (2)");
      expect((await c.query("SELECT value FROM metadata WHERE key = 'history_id'")).rows).toEqual([]);
      await migratePostgresSchema(c);
      expect((await c.query("SELECT value FROM metadata WHERE key = 'history_id'")).rows[0].value).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await c.end();
    }
    const file = path.join(work, "old.sqlite");
    const raw = new Database(file);
    raw.exec(SLASHING_DB_MIGRATIONS[0] as string);
    raw.pragma("user_version = 1");
    raw.close();
    const upgraded = openSlashingDb(file);
    try {
      expect(upgraded.historyId).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      upgraded.close();
    }
  });
});

describe("continuity: export/import skipped only for a database proved shared", () => {
  it("two signer ids on one PostgreSQL database (one of them with two instances): shared-database, nothing moved", async () => {
    const r = await continuity(endpoint("s", [urls.s0!, urls.s1!]), endpoint("t", [urls.t!]));
    expect(r.mode).toBe("shared-database");
    expect(r.detail).toMatch(/signers s and t share one postgres slashing database .*read back at every instance/);
  });

  it("a copy of that database (same history id): not skipped", async () => {
    const err = await continuity(endpoint("t", [urls.t!]), endpoint("copy", [urls.copy!])).catch((e: Error & { code?: string }) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe("CONTINUITY_NO_TARGET_DB"); // it went on to move the history, and has nowhere to put it
    expect((err as Error).message).toMatch(/not proved one shared database \(signer copy at .* does not read the nonce just written through signer t/);
  });

  it("a copied SQLite file: not skipped, the history is moved (interchange)", async () => {
    const r = await continuity(endpoint("lite", [urls.lite!], sqliteFile), endpoint("liteCopy", [urls.liteCopy!], sqliteCopy));
    expect(r.mode).toBe("interchange");
    expect(r.detail).toMatch(/^not proved one shared database \(signer liteCopy .* does not read the nonce/);
  });

  it("two distinct databases: not skipped", async () => {
    const r = await continuity(endpoint("lite", [urls.lite!], sqliteFile), endpoint("t", [urls.t!])).catch((e: Error) => e);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toMatch(/not proved one shared database \(the signers report different databases/);
  });
});

describe("a failover between two signers on one PostgreSQL database (one of them with two instances)", () => {
  it("fences at both instances, moves nothing (no slashingDbPath anywhere), activates, and the backup signs", async () => {
    const chain = new SimChain({ slotMs: 200, slotsPerEpoch: 4, validatorCount: 1 });
    const bn = await SimBeaconNode.start("b", chain);
    const svc = { statusCommand: ["true"], stopCommand: ["true"], startCommand: ["true"], timeoutMs: 1_000 };
    const cfg = parseWatchdogConfig({
      dataDir: path.join(work, "wd"),
      chain: { genesisTime: chain.genesisTime, slotDurationMs: 200, slotsPerEpoch: 4 },
      validators: { indices: ["0"] },
      signers: { s: { urls: [urls.s0, urls.s1], adminTokenFile }, t: { url: urls.t, adminTokenFile } },
      stacks: {
        primary: { clientId: "primary", signer: "s", beaconNode: { url: bn.url }, service: svc },
        backup: { clientId: "backup", signer: "t", beaconNode: { url: bn.url }, service: svc },
      },
      failover: { signerRetryMs: 2_000, drainTimeoutMs: 2_000, verifySlots: 15, leaseMs: 2_000 },
    });
    // The standby starts fenced, as the daemon keeps it.
    const gen0 = (await identityGeneration(urls.t!)) + 1;
    expect((await admin(urls.t!, "/clients/backup/disable", { generation: gen0 })).status).toBe(200);
    const store = WatchdogStore.open(cfg.dataDir);
    const log = createLogger("silent", new Writable({ write: (_c, _e, done) => done() }));
    const alerts: string[] = [];
    const alerter = new Alerter(log);
    const send = alerter.send.bind(alerter);
    alerter.send = (a) => {
      alerts.push(a.event);
      send(a);
    };
    // The backup's validator client: asks every 100 ms; refused (403) until the failover enables it.
    const backupSigns = setInterval(() => {
      void http(`${urls.t}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: randaoBody(1), headers: { authorization: `Bearer ${BACKUP_TOKEN}` } }).catch(
        () => undefined,
      );
    }, 100);
    try {
      const executor = new FailoverExecutor({
        config: cfg,
        store,
        signers: new Map(Object.values(cfg.signers).map((e) => [e.id, new SignerAdminClient(e)])),
        clock: new ChainClock(chain.genesisMs, 200, 4),
        alerter,
        log,
        lease: newLeaseHolder(),
      });
      const { record } = await executor.start("primary", "backup", "operator", "test");
      expect(record.outcomeMessage).toBe("backup is active and signing");
      expect(record.state).toBe("DONE");
      expect(record.progress.fenceInstances).toEqual({ confirmed: [urls.s0, urls.s1], unreachable: [], sharedState: true });
      expect(record.progress.continuity?.mode).toBe("shared-database");
      for (const u of [urls.s0!, urls.s1!, urls.t!])
        expect((await admin(u, "/clients/primary")).json()).toMatchObject({ enabled: false, changedAtGeneration: record.generation });
      expect(alerts).not.toContain("fence_instance_unverified");
      const p = record.progress;
      const since = (t: number | undefined) => (t === undefined ? "?" : `${t - record.startedAt} ms`);
      console.log(
        `[measure] shared-database failover: fence confirmed at 2 instances ${since(p.fenceConfirmedAt)}, continuity ${since(p.continuity?.at)}, activated ${since(p.activatedAt)}, DONE ${since(record.endedAt ?? undefined)} after start (first signature ${p.activationToSignatureMs} ms after activation; 200 ms slots)`,
      );
    } finally {
      clearInterval(backupSigns);
      store.close();
      await bn.close();
    }
  }, 30_000);
});

describe("a fence at a signer with several instances", () => {
  const signer = () => new SignerAdminClient(endpoint("s", [urls.s0!, urls.s1!]));

  it("is one call, then read back at every instance at the new generation", async () => {
    const s = signer();
    const gen = Math.max(...(await Promise.all(s.instances.map((i) => i.generation())))) + 1;
    const report = await setClientAtEveryInstance(s, "backup", false, gen, "test-fence-1", options);
    expect(report).toMatchObject({ sharedState: true, confirmed: [urls.s0, urls.s1], contrary: [], unreachable: [] });
    expect(fenceHolds(report)).toBe(true);
    for (const u of [urls.s0!, urls.s1!]) expect((await admin(u, "/clients/backup")).json()).toMatchObject({ enabled: false, changedAtGeneration: gen });
    // …and it holds where it was not sent: instance s1 refuses the client too.
    const refused = await http(`${urls.s1}/api/v1/eth2/sign/${interopPubkey(0)}`, {
      body: randaoBody(1),
      headers: { authorization: `Bearer ${BACKUP_TOKEN}` },
    });
    expect(refused.status).toBe(403);
    const back = await setClientAtEveryInstance(s, "backup", true, gen + 1, "test-fence-2", options);
    expect(back.confirmed).toEqual([urls.s0, urls.s1]);
  });

  it("with one PostgreSQL instance SIGKILLed: confirmed at the other, the dead one named (the shared gate holds for it)", async () => {
    const s = signer();
    procs.s1!.child.kill("SIGKILL");
    await procs.s1!.exited;
    const gen = (await s.generation()) + 1;
    const report = await setClientAtEveryInstance(s, "backup", false, gen, "test-fence-3", options);
    expect(report).toMatchObject({ sharedState: true, confirmed: [urls.s0], contrary: [] });
    expect(report.unreachable.map((u) => u.url)).toEqual([urls.s1]);
    expect(fenceHolds(report)).toBe(true);
  });

  it("the CLI (s1 still dead): `vigil fence` reads back where it can and says where it could not; `vigil status` lists every instance", async () => {
    const svc = { statusCommand: ["true"], stopCommand: ["true"], startCommand: ["true"] };
    const configFile = writePrivate(
      path.join(work, "wd-cli", "watchdog.json"),
      JSON.stringify({
        dataDir: path.join(work, "wd-cli"),
        validators: { indices: ["0"] },
        signers: { s: { urls: [urls.s0, urls.s1], adminTokenFile }, t: { url: urls.t, adminTokenFile } },
        stacks: {
          primary: { clientId: "primary", signer: "s", beaconNode: { url: "http://127.0.0.1:1" }, service: svc },
          backup: { clientId: "backup", signer: "t", beaconNode: { url: "http://127.0.0.1:1" }, service: svc },
        },
      }),
    );
    const fence = await vigil(["fence", "primary", "--config", configFile]);
    expect(fence.code).toBe(0);
    expect(fence.stdout).toMatch(/primary fenced at signer s \(generation \d+\)/);
    expect(fence.stdout).toContain(`confirmed at 1 of 2 instance(s); unreachable: ${urls.s1}`);
    expect(fence.stdout).toMatch(/warning: not read back at .*shared PostgreSQL release gate/);
    const status = await vigil(["status", "--json", "--config", configFile]);
    expect(status.code).toBe(0);
    const instances = JSON.parse(status.stdout).signers.s.instances;
    expect(instances).toMatchObject([
      { url: urls.s0, reachable: true, slashingDb: { backend: "postgres" } },
      { url: urls.s1, reachable: false, slashingDb: null },
    ]);
  });

  it("at a SQLite signer whose second instance cannot be reached: not confirmed (each instance keeps its own state)", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const s = new SignerAdminClient(endpoint("lite", [urls.lite!, dead]));
    const report = await setClientAtEveryInstance(s, "backup", false, (await s.generation()) + 1, "test-fence-4", options);
    expect(report).toMatchObject({ sharedState: false, confirmed: [urls.lite] });
    expect(report.unreachable.map((u) => u.url)).toEqual([dead]);
    expect(fenceHolds(report)).toBe(false);
  });
});
