/**
 * The prune drop-in's command, run as systemd would run it (ExecStart= with %d expanded to the credentials
 * directory, VIGIL_DB_PASSWORD_FILE from Environment=), against a private PostgreSQL server: it prunes the
 * shared database, with the password read from the credential only.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { tempDir } from "../helpers/tmp.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VIGIL = path.join(ROOT, "bin/vigil.js");
const dropin = fs.readFileSync(path.join(ROOT, "systemd/dropins/prune-postgres.conf"), "utf8");
const values = (key: string) =>
  dropin
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

it("the prune drop-in's ExecStart prunes the PostgreSQL history with the password from the credential", async () => {
  const dir = tempDir();
  const url = await server.createDatabase();
  const pk = `0x${"b1".repeat(48)}`;
  const history = path.join(dir, "history.json");
  fs.writeFileSync(
    history,
    JSON.stringify({
      metadata: { interchange_format_version: "5", genesis_validators_root: `0x${"44".repeat(32)}` },
      data: [{ pubkey: pk, signed_blocks: [{ slot: "10" }, { slot: "320000" }], signed_attestations: [] }],
    }),
  );
  const imported = spawnSync("node", [VIGIL, "slashing", "import", history, "--db-url", url, "--db-password-file", server.passwordFile], {
    encoding: "utf8",
  });
  expect(imported.status, imported.stderr).toBe(0);

  // What systemd does: the credential is a read-only copy in $CREDENTIALS_DIRECTORY, %d expands to that directory.
  const credentials = path.join(dir, "credentials");
  fs.mkdirSync(credentials, { mode: 0o700 });
  const [name, source] = dropin.match(/^LoadCredential=(.+)$/m)![1]!.split(":");
  expect(source).toBe("/etc/vigil/credentials/db-password");
  fs.copyFileSync(server.passwordFile, path.join(credentials, name!));
  fs.chmodSync(path.join(credentials, name!), 0o400);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CREDENTIALS_DIRECTORY: credentials };
  for (const e of values("Environment")) {
    const [k, v] = e.split("=");
    env[k!] = v!.replace("%d", credentials);
  }
  const args = values("ExecStart")
    .at(-1)!
    .split(" ")
    .map((a) => (a.startsWith("postgres://") ? url : a));
  expect(args[0]).toBe("/opt/vigil/current/bin/vigil.js");
  const r = spawnSync("node", [VIGIL, ...args.slice(1)], { encoding: "utf8", env });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^pruned 1 validator\(s\): 1 block\(s\), 0 attestation\(s\) deleted; database \d+ -> \d+ bytes$/m);

  const c = await server.connect(url);
  const slots = await c.query("SELECT slot::text FROM signed_blocks ORDER BY slot");
  await c.end();
  expect(slots.rows.map((row) => row.slot)).toEqual(["320000"]);

  // Another password in the credential and the same command cannot log in: the password really came from it.
  fs.chmodSync(path.join(credentials, name!), 0o600);
  fs.writeFileSync(path.join(credentials, name!), "not-the-password\n");
  const wrong = spawnSync("node", [VIGIL, ...args.slice(1)], { encoding: "utf8", env });
  expect(wrong.status, wrong.stderr).toBe(41);
  expect(wrong.stderr).not.toContain("not-the-password");
  fs.rmSync(dir, { recursive: true, force: true });
});
