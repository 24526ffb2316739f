/**
 * `vigil keys import --interchange` and `vigil keys delete` against a private PostgreSQL server (--db-url):
 * the history goes into and comes out of PostgreSQL, a key is never deleted without its history exported, and
 * each database failure keeps the agreed exit code with the token and the files untouched.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { createToken, type TestToken } from "../helpers/softhsm.js";
import { randomKey, writeKeystores } from "./fixtures.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const LABEL = "vigil-test-cli-pg";
const GVR = `0x${"66".repeat(32)}`;
const keys = [randomKey(), randomKey()];
let token: TestToken;
let server: TestPostgres;
let hsm: string[];
let keystoreDir: string;

function vigil(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8", env: { ...process.env, VIGIL_DATA_DIR: token.dataDir, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pg = (url: string) => ["--db-url", url, "--db-password-file", server.passwordFile];
const onToken = (): string[] => JSON.parse(vigil(["keys", "list", "--json", ...hsm]).stdout);
const deletedFiles = () => fs.readdirSync(token.dataDir).filter((f) => f.startsWith("deleted-keys-"));

function interchangeFile(name: string, gvr: string): string {
  const file = path.join(token.dataDir, name);
  const data = keys.map((k, i) => ({
    pubkey: k.pubkey,
    signed_blocks: [{ slot: String(200 + i) }],
    signed_attestations: [{ source_epoch: "4", target_epoch: String(5 + i) }],
  }));
  fs.writeFileSync(file, JSON.stringify({ metadata: { interchange_format_version: "5", genesis_validators_root: gvr }, data }));
  return file;
}

beforeAll(async () => {
  token = createToken(LABEL);
  hsm = ["--module", token.config.module, "--token-label", LABEL, "--pin-file", token.pinFile];
  keystoreDir = path.join(token.dataDir, "..", `${path.basename(token.dataDir)}-keystores`);
  await writeKeystores(keystoreDir, keys, { perFilePasswords: true });
  server = await startPostgres();
  expect(vigil(["hsm", "init", ...hsm]).code).toBe(0);
});
afterAll(async () => {
  await server?.stop();
  fs.rmSync(keystoreDir, { recursive: true, force: true });
  token?.destroy();
});

describe("vigil keys on PostgreSQL (--db-url)", () => {
  it("import --interchange refuses another network's history (4, as `vigil slashing import`) before any key reaches the token", async () => {
    const url = await server.createDatabase();
    expect(vigil(["slashing", "import", interchangeFile("other.json", `0x${"99".repeat(32)}`), ...pg(url)]).code).toBe(0);
    const r = vigil(["keys", "import", "--keystores", keystoreDir, "--interchange", interchangeFile("h.json", GVR), ...pg(url), ...hsm]);
    expect(r.code, r.stderr).toBe(EXIT_CODES.refused);
    expect(r.stderr).toMatch(/^vigil: .*belongs to the network 0x9{64} \[GENESIS_VALIDATORS_ROOT_MISMATCH\]$/m);
    expect(onToken()).toEqual([]);
  });

  it("import --interchange writes the history to PostgreSQL; delete exports it from there, then removes the key", async () => {
    const url = await server.createDatabase();
    const imported = vigil(["keys", "import", "--keystores", keystoreDir, "--interchange", interchangeFile("h.json", GVR), ...pg(url), ...hsm]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported 2 key\(s\)/);
    expect(imported.stderr).toContain(`imported history of 2 validator(s) into ${url}`);
    expect(imported.stderr).not.toContain(fs.readFileSync(server.passwordFile, "utf8").trim());

    const c = await server.connect(url);
    const rows = await c.query("SELECT count(*)::int AS n FROM validators");
    await c.end();
    expect(rows.rows[0].n).toBe(2);

    const pk = keys[1]!.pubkey;
    const exportFile = path.join(token.dataDir, "k1.interchange.json");
    // The password from VIGIL_DB_PASSWORD_FILE, as the systemd units give it.
    const r = vigil(["keys", "delete", pk, "--yes", "--db-url", url, "--export-file", exportFile, ...hsm], {
      VIGIL_DB_PASSWORD_FILE: server.passwordFile,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`deleted ${pk}`);
    expect(r.stderr).toContain(`written to ${exportFile}`);
    expect(fs.statSync(exportFile).mode & 0o777).toBe(0o600);
    const exported = JSON.parse(fs.readFileSync(exportFile, "utf8"));
    expect(exported.metadata.genesis_validators_root).toBe(GVR);
    expect(exported.data).toEqual([{ pubkey: pk, signed_blocks: [{ slot: "201" }], signed_attestations: [{ source_epoch: "4", target_epoch: "6" }] }]);
    expect(onToken()).toEqual([keys[0]!.pubkey]);
  });

  it("delete refuses, leaving the key and writing nothing: no Vigil database (5), unreachable (40), wrong password (41), password in the URL (3)", async () => {
    const pk = keys[0]!.pubkey;
    const empty = await server.createDatabase();
    const port = Number(new URL(server.url).port);
    const wrong = path.join(token.dataDir, "wrong-password");
    fs.writeFileSync(wrong, "not-the-password", { mode: 0o600 });
    const withPassword = new URL(empty);
    withPassword.password = "hunter2secret";
    const cases: [string[], number, RegExp][] = [
      [pg(empty), EXIT_CODES.notFound, /no Vigil slashing database at .*; the keys' history must be exported before deletion/],
      [pg(`postgres://vigil@127.0.0.1:${port === 1 ? 2 : 1}/postgres`), EXIT_CODES.dbUnreachable, /./],
      [["--db-url", empty, "--db-password-file", wrong], EXIT_CODES.dbAuthFailed, /./],
      [["--db-url", withPassword.href], EXIT_CODES.invalidInput, /must not hold a password/],
      [["--db", path.join(token.dataDir, "x.sqlite"), ...pg(empty)], EXIT_CODES.usage, /not both/],
    ];
    for (const [db, code, message] of cases) {
      const r = vigil(["keys", "delete", pk, "--yes", ...db, ...hsm]);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toContain("not-the-password");
      expect(r.stderr).not.toContain("hunter2secret");
    }
    expect(onToken()).toEqual([pk]);
    expect(deletedFiles()).toEqual([]);
    // Nothing created the schema: a read never makes a database.
    const c = await server.connect(empty);
    const tables = await c.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
    await c.end();
    expect(tables.rows[0].n).toBe(0);
  });

  it("without --db/--db-url, delete exports from the database --config names (PostgreSQL via a credential), not a stale SQLite file", async () => {
    const pk = keys[0]!.pubkey;
    const url = await server.createDatabase();
    expect(vigil(["slashing", "import", interchangeFile("h.json", GVR), ...pg(url)]).code).toBe(0);
    // What a host keeps after moving to PostgreSQL: the old file where the CLI's default points, history older than the server's.
    const stale = path.join(token.dataDir, "stale.json");
    fs.writeFileSync(
      stale,
      JSON.stringify({
        metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
        data: [{ pubkey: pk, signed_blocks: [{ slot: "7" }], signed_attestations: [] }],
      }),
    );
    expect(vigil(["slashing", "import", stale, "--db", path.join(token.dataDir, "slashing-protection.sqlite")]).code).toBe(0);

    const credentials = path.join(token.dataDir, "credentials");
    fs.mkdirSync(credentials, { mode: 0o700 });
    fs.copyFileSync(server.passwordFile, path.join(credentials, "db-password"));
    fs.chmodSync(path.join(credentials, "db-password"), 0o400);
    const config = path.join(token.dataDir, "signer.json");
    fs.writeFileSync(
      config,
      JSON.stringify({
        hsm: { module: token.config.module, tokenLabel: LABEL, pin: { file: token.pinFile } },
        slashingDb: { postgres: { url, passwordCredential: "db-password" } },
      }),
    );
    const exportFile = path.join(token.dataDir, "k0.interchange.json");
    const r = vigil(["keys", "delete", pk, "--yes", "--config", config, "--export-file", exportFile], { CREDENTIALS_DIRECTORY: credentials });
    expect(r.code, r.stderr).toBe(0);
    const exported = JSON.parse(fs.readFileSync(exportFile, "utf8"));
    expect(exported.data).toEqual([{ pubkey: pk, signed_blocks: [{ slot: "200" }], signed_attestations: [{ source_epoch: "4", target_epoch: "5" }] }]);
    expect(onToken()).toEqual([]);
  });
});
