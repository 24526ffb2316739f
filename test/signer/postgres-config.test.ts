/**
 * The signer on PostgreSQL, as an operator starts it (`vigil signer start` / `check-config --connect` as child
 * processes, a real server): each bad database is refused with one line, its own exit code and nothing written
 * (neither to the database nor to the data directory), the password never shown; a good one signs.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { PostgresSlashingProtection } from "../../slashing-db/index.js";
import { PG_SCHEMA_VERSION } from "../../slashing-db/postgres/schema.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig } from "./cli-process.js";
import { attestationBody, GVR, http, interopPubkey, tokenWithInteropKeys } from "./harness.js";

const run = promisify(execFile);
const OTHER_GVR = `0x${"22".repeat(32)}`;
const work = tempDir();
let server: TestPostgres;
let token: TestToken;
let password: string;
let n = 0;

beforeAll(async () => {
  [server, token] = await Promise.all([startPostgres(), tokenWithInteropKeys("vigil-test-signer-pgconfig", 1)]);
  password = fs.readFileSync(server.passwordFile, "utf8");
}, 120_000);
afterAll(async () => {
  killLeftovers();
  await server?.stop();
});

/** A config for a signer on `postgres` with a data directory that already holds one file of the operator's. */
function setUp(postgres: Record<string, unknown>, extra: Record<string, unknown> = {}): { file: string; dataDir: string } {
  const dir = path.join(work, `case-${n++}`);
  const dataDir = path.join(dir, "data");
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dataDir, "operator-notes.txt"), "kept");
  const file = writeSignerConfig(token, dataDir, path.join(dir, "signer.json"), { slashingDb: { postgres }, ...extra });
  return { file, dataDir };
}

/** `vigil signer start` until it exits; its exit code and stderr. */
async function startRefused(file: string): Promise<{ code: number | null; stderr: string }> {
  const signer = spawnSigner(file, "ignore");
  const killer = setTimeout(() => signer.child.kill("SIGKILL"), 30_000);
  const { code } = await signer.exited;
  clearTimeout(killer);
  return { code, stderr: signer.stderr() };
}

async function checkConfig(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, "signer", "check-config", "--connect", "--config", file]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The refusal: one `vigil: …` line naming what is wrong, never the password. */
function refusalLine(stderr: string): string {
  expect(stderr).not.toContain(password);
  const lines = stderr.split("\n").filter((l) => l.startsWith("vigil: ") && !/^vigil: (opening|loading|stopp)/.test(l));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** Every table of a database with its rows, to compare before and after a refusal. */
async function databaseState(url: string): Promise<Record<string, unknown>> {
  const c = await server.connect(url);
  try {
    const tables = (await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.t);
    const state: Record<string, unknown> = {};
    for (const t of tables) state[t] = (await c.query(`SELECT x::text AS row FROM ${t} x ORDER BY 1`)).rows.map((r) => r.row);
    return state;
  } finally {
    await c.end();
  }
}

function expectDataDirUntouched(dataDir: string): void {
  expect(fs.readdirSync(dataDir)).toEqual(["operator-notes.txt"]);
}

describe("a signer refuses a bad PostgreSQL database at start, writing nothing", () => {
  it("unreachable host: exit 40 (also from check-config --connect)", async () => {
    const { file, dataDir } = setUp({ url: "postgres://vigil@127.0.0.1:1/vigil", passwordFile: server.passwordFile });
    const { code, stderr } = await startRefused(file);
    expect(code).toBe(EXIT_CODES.dbUnreachable);
    expect(refusalLine(stderr)).toMatch(/cannot connect to the PostgreSQL slashing database: .*ECONNREFUSED.*\[DB_OPEN_FAILED\]/);
    expectDataDirUntouched(dataDir);
    const checked = await checkConfig(file);
    expect(checked.code).toBe(EXIT_CODES.dbUnreachable);
    expect(checked.stdout).toContain('"kind": "postgres"');
  });

  it("wrong password: exit 41, the password shown nowhere", async () => {
    const url = await server.createDatabase();
    const wrong = path.join(work, "wrong.password");
    fs.writeFileSync(wrong, "not-the-password", { mode: 0o600 });
    const { file, dataDir } = setUp({ url, passwordFile: wrong });
    const { code, stderr } = await startRefused(file);
    expect(code).toBe(EXIT_CODES.dbAuthFailed);
    expect(refusalLine(stderr)).toMatch(/password authentication failed for user "vigil"/);
    expect(stderr).not.toContain("not-the-password");
    expectDataDirUntouched(dataDir);
    expect(await databaseState(url)).toEqual({});
    expect((await checkConfig(file)).code).toBe(EXIT_CODES.dbAuthFailed);
  });

  it("a database of another network: exit 42, its pin and rows kept", async () => {
    const url = await server.createDatabase();
    const other = await PostgresSlashingProtection.open({ url, passwordFile: server.passwordFile }, { genesisValidatorsRoot: OTHER_GVR });
    await other.checkAndRecord({ kind: "block", pubkey: Buffer.from(interopPubkey(0).slice(2), "hex"), slot: 7n, signingRoot: Buffer.alloc(32, 1) });
    await other.close();
    const before = await databaseState(url);
    const { file, dataDir } = setUp({ url, passwordFile: server.passwordFile });
    const { code, stderr } = await startRefused(file);
    expect(code).toBe(EXIT_CODES.dbNetworkMismatch);
    expect(refusalLine(stderr)).toContain(`belongs to the network with genesis_validators_root ${OTHER_GVR}, not ${GVR}`);
    expectDataDirUntouched(dataDir);
    expect(await databaseState(url)).toEqual(before);
    expect((await checkConfig(file)).code).toBe(EXIT_CODES.dbNetworkMismatch);
  });

  it("a schema newer than this Vigil: exit 43, the database exactly as it was", async () => {
    const url = await server.createDatabase();
    await (await PostgresSlashingProtection.open({ url, passwordFile: server.passwordFile })).close();
    const c = await server.connect(url);
    await c.query("UPDATE vigil_schema SET version = 99");
    await c.end();
    const before = await databaseState(url);
    const { file, dataDir } = setUp({ url, passwordFile: server.passwordFile });
    const { code, stderr } = await startRefused(file);
    expect(code).toBe(EXIT_CODES.dbSchemaTooNew);
    expect(refusalLine(stderr)).toMatch(new RegExp(`schema version 99, newer than this Vigil's ${PG_SCHEMA_VERSION}`));
    expectDataDirUntouched(dataDir);
    expect(await databaseState(url)).toEqual(before);
    expect((await checkConfig(file)).code).toBe(EXIT_CODES.dbSchemaTooNew);
  });

  it("a role with synchronous_commit off: exit 44 and nothing created; with allowServerAsyncCommitDefault it starts and signs", async () => {
    const url = await server.createDatabase();
    const admin = await server.connect(url);
    await admin.query("CREATE ROLE lazy LOGIN PASSWORD 'lazy-role-password'");
    await admin.query("ALTER ROLE lazy SET synchronous_commit = off");
    await admin.query(`GRANT CREATE ON SCHEMA public TO lazy`);
    await admin.end();
    const lazyPassword = path.join(work, "lazy.password");
    fs.writeFileSync(lazyPassword, "lazy-role-password\n", { mode: 0o600 });
    const lazyUrl = url.replace("postgres://vigil@", "postgres://lazy@");

    const refused = setUp({ url: lazyUrl, passwordFile: lazyPassword });
    const { code, stderr } = await startRefused(refused.file);
    expect(code).toBe(EXIT_CODES.dbNotDurable);
    expect(refusalLine(stderr)).toMatch(/synchronous_commit is "off".*allowServerAsyncCommitDefault.*\[DB_NOT_DURABLE\]/);
    expect(stderr).not.toContain("lazy-role-password");
    expectDataDirUntouched(refused.dataDir);
    expect(await databaseState(url)).toEqual({});

    const allowed = setUp({ url: lazyUrl, passwordFile: lazyPassword, allowServerAsyncCommitDefault: true });
    expect((await checkConfig(allowed.file)).stderr).toContain("synchronous_commit=off");
    const signer = spawnSigner(allowed.file, "ignore");
    const base = await signer.ready;
    const reply = await http(`${base}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: attestationBody(3, 4) });
    expect(reply.status).toBe(200);
    expect((await stopWithSigterm(signer)).code).toBe(0);
    const state = await databaseState(url);
    expect(state.signed_attestations).toHaveLength(1);
    expect(state.metadata).toEqual([`(genesis_validators_root,${GVR})`, expect.stringMatching(/^\(history_id,[0-9a-f]{32}\)$/)]);
  });

  it("a password in the config is refused before anything is opened (exit 3), without echoing it", async () => {
    for (const postgres of [
      { url: "postgres://vigil:hunter2-secret@127.0.0.1:1/vigil" },
      { url: "postgres://vigil@127.0.0.1:1/vigil", password: "hunter2-secret" },
    ]) {
      const { file, dataDir } = setUp(postgres);
      const { code, stderr } = await startRefused(file);
      expect(code).toBe(EXIT_CODES.invalidInput);
      expect(stderr).not.toContain("hunter2-secret");
      expect(stderr).toMatch(/slashingDb\.postgres\.(url|password)/);
      expect(fs.readdirSync(dataDir)).toEqual(["operator-notes.txt"]);
    }
  });
});

describe("roles", () => {
  it("a runtime role with only the grants signer/docs/postgres.md lists opens a migrated database; without them: exit 41", async () => {
    const url = await server.createDatabase();
    await (await PostgresSlashingProtection.open({ url, passwordFile: server.passwordFile }, { genesisValidatorsRoot: GVR })).close();
    const admin = await server.connect(url);
    const db = new URL(url).pathname.slice(1);
    await admin.query("CREATE ROLE runtime LOGIN PASSWORD 'runtime-password'");
    await admin.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    await admin.query(`GRANT CONNECT ON DATABASE ${db} TO runtime`);
    await admin.query("GRANT USAGE ON SCHEMA public TO runtime");
    const runtimePassword = path.join(work, "runtime.password");
    fs.writeFileSync(runtimePassword, "runtime-password", { mode: 0o600 });
    const conn = { url: url.replace("postgres://vigil@", "postgres://runtime@"), passwordFile: runtimePassword };
    await expect(PostgresSlashingProtection.open(conn, { genesisValidatorsRoot: GVR })).rejects.toMatchObject({
      failure: "AUTH_FAILED",
      exitCode: EXIT_CODES.dbAuthFailed,
    });
    await admin.query("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO runtime");
    await admin.end();
    const p = await PostgresSlashingProtection.open(conn, { genesisValidatorsRoot: GVR });
    try {
      const check = { kind: "block", pubkey: Buffer.from(interopPubkey(0).slice(2), "hex"), slot: 9n, signingRoot: Buffer.alloc(32, 2) } as const;
      expect(await p.checkAndRecord(check)).toBe("recorded");
      expect(await p.health()).toEqual({ up: true });
    } finally {
      await p.close();
    }
  });
});
