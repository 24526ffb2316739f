/**
 * `vigil slashing …` on PostgreSQL through the real binary and a private server: the --db-url flags, the
 * password only from a 0600 file, the agreed exit codes, migrate (also twice at once), copy both ways.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PG_SCHEMA_VERSION as V } from "../../slashing-db/postgres/schema.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { tempDir } from "../helpers/tmp.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const GVR = `0x${"55".repeat(32)}`;
const PK1 = `0x${"a1".repeat(48)}`;
const PK2 = `0x${"a2".repeat(48)}`;
const dir = tempDir();

type Result = { code: number | null; stdout: string; stderr: string };

function vigil(args: string[], env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function vigilAsync(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn("node", [VIGIL, ...args]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const history = {
  metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
  data: [
    { pubkey: PK1, signed_blocks: [{ slot: "10" }, { slot: "20" }], signed_attestations: [{ source_epoch: "1", target_epoch: "2" }] },
    { pubkey: PK2, signed_blocks: [], signed_attestations: [{ source_epoch: "3", target_epoch: "4" }] },
  ],
};
const interchangeFile = path.join(dir, "history.json");
fs.writeFileSync(interchangeFile, JSON.stringify(history));

/** An export as sets, validators in any order (SQLite exports by insertion, PostgreSQL by pubkey). */
const asSets = (json: string) => {
  const x = JSON.parse(json) as typeof history;
  return { metadata: x.metadata, data: [...x.data].sort((a, b) => a.pubkey.localeCompare(b.pubkey)) };
};

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const pg = (url: string) => ["--db-url", url, "--db-password-file", server.passwordFile];

describe("vigil slashing on PostgreSQL", () => {
  it("import, stats, export, prune with --db-url and a password file", async () => {
    const url = await server.createDatabase();
    const imported = vigil(["slashing", "import", interchangeFile, ...pg(url)]);
    expect(imported.stderr).toBe("");
    expect(imported.stdout).toMatch(/imported 2 validator\(s\): 2 block\(s\), 2 attestation\(s\)/);

    const stats = vigil(["slashing", "stats", "--json", ...pg(url)]);
    expect(stats.code).toBe(0);
    const s = JSON.parse(stats.stdout);
    expect(s).toMatchObject({ backend: "postgres", url, genesisValidatorsRoot: GVR, validators: 2, blocks: 2, attestations: 2, schemaVersion: V });
    expect(s.databaseBytes).toBeGreaterThan(1_000_000); // pg_database_size: the catalog alone is several MB

    const exported = vigil(["slashing", "export", ...pg(url)]);
    expect(exported.code).toBe(0);
    expect(asSets(exported.stdout)).toEqual(asSets(JSON.stringify(history)));

    const raised = vigil(["slashing", "raise-watermarks", "--slot", "30", "--epoch", "5", ...pg(url)]);
    expect(raised.stdout).toMatch(/raised the low watermarks of 2 validator\(s\)/);
    expect(vigil(["slashing", "raise-watermarks", ...pg(url)]).code).toBe(2);

    const pruned = vigil(["slashing", "prune", "--keep-epochs", "1", "--slots-per-epoch", "4", ...pg(url)]);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/^pruned 1 validator\(s\): 1 block\(s\), 0 attestation\(s\) deleted; database \d+ -> \d+ bytes/);
  });

  it("the password file may come from VIGIL_DB_PASSWORD_FILE", async () => {
    const url = await server.createDatabase();
    const r = vigil(["slashing", "import", interchangeFile, "--db-url", url], { VIGIL_DB_PASSWORD_FILE: server.passwordFile });
    expect(r.code).toBe(0);
  });

  it("refuses a password in the URL (exit 3, one line, the password never echoed) and both --db and --db-url (exit 2)", async () => {
    const url = (await server.createDatabase()).replace("vigil@", "vigil:hunter2secret@");
    const r = vigil(["slashing", "stats", "--db-url", url]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/must not hold a password/);
    expect(r.stderr).not.toContain("hunter2secret");

    expect(vigil(["slashing", "stats", "--db", path.join(dir, "x.sqlite"), ...pg(server.url)]).code).toBe(2);
    expect(vigil(["slashing", "stats", "--db-password", "hunter2secret", "--db-url", server.url]).code).toBe(2);
  });

  it("exit codes: 40 unreachable, 41 wrong password, 16 password file readable by others, 5 no Vigil schema, 43 schema too new", async () => {
    const url = await server.createDatabase();
    const port = Number(new URL(server.url).port);
    const unreachable = vigil(["slashing", "stats", ...pg(`postgres://vigil@127.0.0.1:${port === 1 ? 2 : 1}/postgres`)]);
    expect(unreachable.code).toBe(40);
    expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);

    const wrong = path.join(dir, "wrong-password");
    fs.writeFileSync(wrong, "not-the-password", { mode: 0o600 });
    const auth = vigil(["slashing", "stats", "--db-url", url, "--db-password-file", wrong]);
    expect(auth.code).toBe(41);
    expect(auth.stderr).not.toContain("not-the-password");
    const none = vigil(["slashing", "stats", "--db-url", url]); // the server asks for a password; none given
    expect(none.code).toBe(41);
    expect(none.stderr).toMatch(/asks for a password and none was given/);

    const open = path.join(dir, "open-password");
    fs.writeFileSync(open, fs.readFileSync(server.passwordFile), { mode: 0o644 });
    fs.chmodSync(open, 0o644);
    expect(vigil(["slashing", "stats", "--db-url", url, "--db-password-file", open]).code).toBe(16);

    expect(vigil(["slashing", "stats", ...pg(url)]).code).toBe(5); // nothing created it: not made by a read
    expect(vigil(["slashing", "migrate", ...pg(url)]).code).toBe(0);
    const c = await server.connect(url);
    await c.query("UPDATE vigil_schema SET version = 99");
    await c.end();
    for (const cmd of [["stats"], ["migrate"], ["import", interchangeFile]]) {
      const r = vigil(["slashing", ...cmd, ...pg(url)]);
      expect(r.code).toBe(43);
      expect(r.stderr).toMatch(/schema version 99/);
    }
  });

  it("migrate: prints the version before and after, is idempotent, and two at once both succeed", async () => {
    const url = await server.createDatabase();
    const [a, b] = await Promise.all([vigilAsync(["slashing", "migrate", ...pg(url)]), vigilAsync(["slashing", "migrate", ...pg(url)])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    // One of them migrated, the other found it done (the advisory lock serialises them).
    expect([a.stdout.trim(), b.stdout.trim()].sort()).toEqual([`schema version 0 -> ${V}`, `schema version ${V}: already current`]);
    expect(vigil(["slashing", "migrate", ...pg(url)]).stdout.trim()).toBe(`schema version ${V}: already current`);
    expect(vigil(["slashing", "migrate", "--db", path.join(dir, "m.sqlite")]).code).toBe(2);
  });

  it("copy SQLite -> PostgreSQL -> SQLite: a summary, verified, and the exports agree", async () => {
    const sqlite = path.join(dir, "copy-from.sqlite");
    expect(vigil(["slashing", "import", interchangeFile, "--db", sqlite]).code).toBe(0);
    const url = await server.createDatabase();

    const there = vigil(["slashing", "copy", "--from", sqlite, "--to", url, "--to-password-file", server.passwordFile]);
    expect(there.stderr).toBe("");
    expect(there.code).toBe(0);
    expect(there.stdout).toMatch(/^copied 2 validator\(s\), 2 block\(s\), 2 attestation\(s\), 0 validator\(s\) with low watermarks from .* to postgres:/);
    expect(there.stdout).toMatch(/verified: both databases export the same interchange/);

    const back = path.join(dir, "copy-back.sqlite");
    const r = vigil(["slashing", "copy", "--from", url, "--from-password-file", server.passwordFile, "--to", back]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/verified/);
    expect(asSets(vigil(["slashing", "export", "--db", back]).stdout)).toEqual(asSets(vigil(["slashing", "export", "--db", sqlite]).stdout));
  });

  it("copy is all or nothing: a destination that refuses the attestations' inserts is left without a single row", async () => {
    const sqlite = path.join(dir, "copy-atomic.sqlite");
    expect(vigil(["slashing", "import", interchangeFile, "--db", sqlite]).code).toBe(0);
    const url = await server.createDatabase();
    expect(vigil(["slashing", "migrate", ...pg(url)]).code).toBe(0);
    // A role that may do everything Vigil does except insert attestations: the copy fails after its blocks.
    const limitedPassword = path.join(dir, "limited-password");
    fs.writeFileSync(limitedPassword, "limited-secret", { mode: 0o600 });
    const admin = await server.connect(url);
    try {
      await admin.query(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'limited') THEN CREATE ROLE limited LOGIN PASSWORD 'limited-secret'; END IF; END $$",
      );
      await admin.query("GRANT CREATE, USAGE ON SCHEMA public TO limited");
      await admin.query("GRANT ALL ON ALL TABLES IN SCHEMA public TO limited");
      await admin.query("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO limited");
      await admin.query("REVOKE INSERT ON signed_attestations FROM limited");
    } finally {
      await admin.end();
    }
    const r = vigil(["slashing", "copy", "--from", sqlite, "--to", url.replace("vigil@", "limited@"), "--to-password-file", limitedPassword]);
    expect(r.code).toBe(41); // a missing privilege is the role's fault, like a wrong password (SQLSTATE 42501)
    expect(r.stderr).toMatch(/permission denied for table signed_attestations/);
    // The history id (made by the migration, before the copy) is the one row the copy did not write.
    const c = await server.connect(url);
    try {
      const counts = (
        await c.query(
          "SELECT (SELECT COUNT(*) FROM validators)::int AS v, (SELECT COUNT(*) FROM signed_blocks)::int AS b, (SELECT COUNT(*) FROM metadata WHERE key <> 'history_id')::int AS m",
        )
      ).rows[0];
      expect(counts).toEqual({ v: 0, b: 0, m: 0 });
    } finally {
      await c.end();
    }
  });

  it("copy refuses a destination of another network (exit 42, nothing written) and a missing source (exit 5)", async () => {
    const url = await server.createDatabase();
    const other = path.join(dir, "other-network.json");
    fs.writeFileSync(other, JSON.stringify({ ...history, metadata: { ...history.metadata, genesis_validators_root: `0x${"66".repeat(32)}` } }));
    expect(vigil(["slashing", "import", other, ...pg(url)]).code).toBe(0);
    const sqlite = path.join(dir, "copy-src.sqlite");
    expect(vigil(["slashing", "import", interchangeFile, "--db", sqlite]).code).toBe(0);

    const r = vigil(["slashing", "copy", "--from", sqlite, "--to", url, "--to-password-file", server.passwordFile]);
    expect(r.code).toBe(42);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(JSON.parse(vigil(["slashing", "stats", "--json", ...pg(url)]).stdout)).toMatchObject({ validators: 2, blocks: 2 });

    expect(vigil(["slashing", "copy", "--from", path.join(dir, "nope.sqlite"), "--to", url, "--to-password-file", server.passwordFile]).code).toBe(5);
  });
});
