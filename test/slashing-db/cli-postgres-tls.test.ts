/** `vigil slashing …` to a PostgreSQL server that has a certificate: the --db-tls / --db-tls-ca flags and copy's --to-tls-ca. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { selfSignedCertificate } from "../helpers/tls.js";
import { tempDir } from "../helpers/tmp.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const dir = tempDir();
const cert = selfSignedCertificate(path.join(dir, "certs"), "server", "127.0.0.1", "IP:127.0.0.1");
const interchange = path.join(dir, "history.json");
fs.writeFileSync(
  interchange,
  JSON.stringify({
    metadata: { interchange_format_version: "5", genesis_validators_root: `0x${"55".repeat(32)}` },
    data: [{ pubkey: `0x${"a1".repeat(48)}`, signed_blocks: [{ slot: "10" }], signed_attestations: [{ source_epoch: "1", target_epoch: "2" }] }],
  }),
);

function vigil(...args: string[]) {
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres({ tls: cert });
});
afterAll(async () => {
  await server?.stop();
});

it("--db-tls-ca verifies the server against that CA; verify-full without it (system roots) is unreachable, 40; bad modes are usage errors", async () => {
  const url = await server.createDatabase();
  const pg = ["--db-url", url, "--db-password-file", server.passwordFile];
  expect(vigil("slashing", "import", interchange, ...pg, "--db-tls-ca", cert.cert).code).toBe(0);
  expect(JSON.parse(vigil("slashing", "stats", "--json", ...pg, "--db-tls", "verify-full", "--db-tls-ca", cert.cert).stdout)).toMatchObject({ validators: 1 });
  expect(vigil("slashing", "stats", ...pg, "--db-tls", "require").code).toBe(0);
  const unverified = vigil("slashing", "stats", ...pg, "--db-tls", "verify-full");
  expect(unverified.code).toBe(40);
  expect(unverified.stderr.trim().split("\n")).toHaveLength(1);
  expect(vigil("slashing", "stats", ...pg, "--db-tls", "sometimes").code).toBe(2);
  expect(vigil("slashing", "stats", ...pg, "--db-tls", "require", "--db-tls-ca", cert.cert).code).toBe(2);
  expect(vigil("slashing", "stats", "--db", path.join(dir, "x.sqlite"), "--db-tls-ca", cert.cert).code).toBe(2);
});

it("copy to a TLS server with --to-tls-ca", async () => {
  const sqlite = path.join(dir, "from.sqlite");
  expect(vigil("slashing", "import", interchange, "--db", sqlite).code).toBe(0);
  const url = await server.createDatabase();
  const r = vigil("slashing", "copy", "--from", sqlite, "--to", url, "--to-password-file", server.passwordFile, "--to-tls-ca", cert.cert);
  expect(r.stderr).toBe("");
  expect(r.stdout).toMatch(/verified: both databases export the same interchange/);
  expect(vigil("slashing", "copy", "--from", sqlite, "--from-tls", "require", "--to", url).code).toBe(2);
});
