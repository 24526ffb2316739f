/**
 * TLS to the PostgreSQL slashing database (slashing-db/postgres/config.ts), against a real server with a
 * certificate: verify-full connects only when the certificate chains to the configured CA, require encrypts
 * without checking, disable does not encrypt; a TLS failure at open is UNREACHABLE, exit 40.
 */
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { PostgresSlashingProtection, type PostgresConnection } from "../../slashing-db/index.js";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { selfSignedCertificate } from "../helpers/tls.js";
import { tempDir } from "../helpers/tmp.js";

const dir = tempDir();
const serverCert = selfSignedCertificate(path.join(dir, "certs"), "server", "127.0.0.1", "IP:127.0.0.1");
const strangerCert = selfSignedCertificate(path.join(dir, "certs"), "stranger", "127.0.0.1", "IP:127.0.0.1");
let tlsServer: TestPostgres;
let plainServer: TestPostgres;

beforeAll(async () => {
  [tlsServer, plainServer] = await Promise.all([startPostgres({ tls: serverCert }), startPostgres()]);
}, 120_000);
afterAll(async () => {
  await Promise.all([tlsServer?.stop(), plainServer?.stop()]);
});

/** Whether this connection's session is encrypted, as the server sees it. */
async function encrypted(conn: PostgresConnection): Promise<boolean> {
  const client = new pg.Client(toPoolConfig(conn));
  await client.connect();
  try {
    return (await client.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

it("verify-full with the server's CA connects encrypted and opens; require encrypts; disable does not", async () => {
  const conn = (tls: PostgresConnection["tls"]): PostgresConnection => ({ url: tlsServer.url, passwordFile: tlsServer.passwordFile, tls });
  expect(await encrypted(conn({ mode: "verify-full", ca: serverCert.cert }))).toBe(true);
  expect(await encrypted(conn({ mode: "require" }))).toBe(true);
  expect(await encrypted(conn({ mode: "disable" }))).toBe(false);
  expect(await encrypted(conn(undefined))).toBe(false);
  const p = await PostgresSlashingProtection.open(conn({ mode: "verify-full", ca: serverCert.cert }), { genesisValidatorsRoot: `0x${"11".repeat(32)}` });
  expect(await p.health()).toEqual({ up: true });
  await p.close();
});

it("verify-full refuses a certificate from another CA, and a server without TLS: UNREACHABLE, exit 40", async () => {
  for (const conn of [
    { url: tlsServer.url, passwordFile: tlsServer.passwordFile, tls: { mode: "verify-full", ca: strangerCert.cert } },
    { url: tlsServer.url, passwordFile: tlsServer.passwordFile, tls: { mode: "verify-full" } }, // the system's roots do not know it
    { url: plainServer.url, passwordFile: plainServer.passwordFile, tls: { mode: "require" } },
  ] as PostgresConnection[]) {
    const err = await PostgresSlashingProtection.open(conn).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DB_OPEN_FAILED", failure: "UNREACHABLE", exitCode: EXIT_CODES.dbUnreachable });
  }
});
