// slashingDb.postgres in parts (host/port/database/user): the URL the config builds reaches a real server, over
// TCP and through the directory of its Unix socket, with names that need encoding.
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseSignerConfig } from "../../signer/index.js";
import { toPoolConfig } from "../../slashing-db/index.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
  const admin = await server.connect();
  try {
    await admin.query(`CREATE DATABASE "vigil/main db"`);
  } finally {
    await admin.end();
  }
}, 60_000);
afterAll(() => server?.stop());

async function currentDatabase(parts: Record<string, unknown>): Promise<string> {
  const base = { network: "mainnet", hsm: { module: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "t", pin: { file: "pin" } } };
  const location = parseSignerConfig({ ...base, slashingDb: { postgres: { ...parts, passwordFile: server.passwordFile } } }, "/").slashingDb;
  if (location.kind !== "postgres") throw new Error("not a PostgreSQL location");
  const client = new pg.Client(toPoolConfig(location.connection));
  await client.connect();
  try {
    return (await client.query<{ db: string }>("SELECT current_database() AS db")).rows[0]!.db;
  } finally {
    await client.end();
  }
}

it("connects by host/port/database/user over TCP and over the Unix socket directory", async () => {
  const url = new URL(server.url);
  const parts = { port: Number(url.port), database: "vigil/main db", user: decodeURIComponent(url.username) };
  expect(await currentDatabase({ ...parts, host: url.hostname })).toBe("vigil/main db");
  expect(await currentDatabase({ ...parts, host: path.dirname(server.passwordFile) })).toBe("vigil/main db");
});
