/**
 * The PostgreSQL backend against a real server: two instances (two pools) on one database racing on
 * conflicting checks, the durability and network refusals at open, the schema's versioning, and a failed batch
 * rolling back whole. The shared behaviour (EIP-3076 suite, property test) runs on both backends elsewhere.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresSlashingProtection, SlashingDbUnavailableError, SlashingProtectionError, type CheckWithAnyRoot } from "../../slashing-db/index.js";
import { PG_SCHEMA_VERSION } from "../../slashing-db/postgres/schema.js";
import { postgresRows } from "../helpers/backends.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { tempDir } from "../helpers/tmp.js";

const GVR = `0x${"11".repeat(32)}`;
const OTHER_GVR = `0x${"22".repeat(32)}`;
const dir = tempDir();
const REFUSALS = ["DOUBLE_BLOCK_PROPOSAL", "DOUBLE_VOTE", "SURROUNDING_VOTE", "SURROUNDED_VOTE", "SOURCE_BELOW_WATERMARK", "TARGET_AT_OR_BELOW_WATERMARK"];
let server: TestPostgres;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const open = (url: string, opts: { maxBatch?: number; genesisValidatorsRoot?: string } = { genesisValidatorsRoot: GVR }) =>
  PostgresSlashingProtection.open({ url, passwordFile: server.passwordFile }, opts);

const key = (i: number) => Buffer.alloc(48, 0).fill(i + 1, 0, 4);
const root = (i: number) => Buffer.alloc(32, i + 1);
const block = (k: number, slot: bigint, r: number): CheckWithAnyRoot => ({ kind: "block", pubkey: key(k), slot, signingRoot: root(r) });
const att = (k: number, s: bigint, t: bigint, r: number): CheckWithAnyRoot => ({
  kind: "attestation",
  pubkey: key(k),
  sourceEpoch: s,
  targetEpoch: t,
  signingRoot: root(r),
});

/** "recorded", or the refusal's code; anything else (the database failing) fails the test. */
async function answer(p: Promise<unknown>): Promise<string> {
  try {
    return String(await p);
  } catch (err) {
    if (err instanceof SlashingProtectionError) return err.code;
    throw err;
  }
}

describe("two instances on one database", () => {
  // Sets of 6: each instance gets 3 checks per validator (judged one by one); of 2: one each (judged in bulk). The
  // database's default isolation must not matter: Vigil names READ COMMITTED (in REPEATABLE READ a batch would judge
  // from the snapshot it took before waiting for the other's row lock, and both would record).
  it.each([
    [6, "read committed"],
    [2, "read committed"],
    [6, "repeatable read"],
    [2, "serializable"],
  ])("record exactly one message of every conflict set of %i, whichever instance gets which (database default: %s)", async (size, isolation) => {
    const url = await server.createDatabase();
    if (isolation !== "read committed") {
      const c = await server.connect(url);
      await c.query(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET default_transaction_isolation = '${isolation}'`);
      await c.end();
    }
    // Small, different batch sizes: many interleaved batch transactions from each instance.
    const [a, b] = await Promise.all([open(url, { maxBatch: 16, genesisValidatorsRoot: GVR }), open(url, { maxBatch: 7, genesisValidatorsRoot: GVR })]);
    try {
      // One conflict set per validator (a validator's low watermark would refuse older messages across sets).
      const SETS = 40;
      const sets: CheckWithAnyRoot[][] = [];
      for (let i = 0; i < SETS; i++) {
        sets.push([0, 1, 2, 3, 4, 5].map((r) => block(i, 50n, r))); // same key and slot, different roots
        sets.push([0, 1, 2, 3, 4, 5].map((r) => (r % 2 ? att(SETS + i, 5n, 10n, r) : att(SETS + i, 4n, 10n, r)))); // double votes
        const nested: [bigint, bigint][] = [
          [10n, 20n],
          [11n, 19n],
          [9n, 21n],
          [12n, 18n],
          [8n, 22n],
          [13n, 17n],
        ];
        sets.push(nested.map(([s, t], r) => att(2 * SETS + i, s, t, r))); // each surrounds or is surrounded by every other
      }
      // Registered beforehand: a first-time key would serialise the racers on its unique index anyway.
      await a.importInterchange({
        metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
        data: Array.from({ length: 3 * SETS }, (_, i) => ({ pubkey: `0x${key(i).toString("hex")}`, signed_blocks: [], signed_attestations: [] })),
      });
      const answers = await Promise.all(sets.map((set) => Promise.all(set.slice(0, size).map((check, j) => answer((j % 2 ? b : a).checkAndRecord(check))))));
      for (const [i, got] of answers.entries()) {
        expect(
          got.filter((x) => x === "recorded"),
          `set ${i}: ${got.join(", ")}`,
        ).toHaveLength(1);
        // The rest are refused as slashable, or as below the low watermark the recorded one set (complete strategy).
        for (const x of got.filter((x) => x !== "recorded")) expect(REFUSALS).toContain(x);
      }
      const rows = await postgresRows(server, url);
      expect(rows).toHaveLength(3 * SETS);
      for (const r of rows) expect(r.blocks.length + r.atts.length).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("both migrate and pin a fresh database at once", async () => {
    const url = await server.createDatabase();
    const instances = await Promise.all([open(url), open(url), open(url)]);
    expect(instances.map((p) => p.genesisValidatorsRoot)).toEqual([GVR, GVR, GVR]);
    const c = await server.connect(url);
    expect((await c.query("SELECT version FROM vigil_schema")).rows).toEqual([{ version: PG_SCHEMA_VERSION }]);
    await c.end();
    await Promise.all(instances.map((p) => p.close()));
  });
});

describe("open refuses", () => {
  it("a role whose synchronous_commit is off or local (DB_NOT_DURABLE), writing nothing", async () => {
    const url = await server.createDatabase();
    const admin = await server.connect(url);
    const passwordFile = path.join(dir, "lazy-password");
    fs.writeFileSync(passwordFile, "lazy-role-password", { mode: 0o600 });
    try {
      await admin.query("CREATE ROLE lazy LOGIN PASSWORD 'lazy-role-password'");
      for (const setting of ["off", "local"]) {
        await admin.query(`ALTER ROLE lazy SET synchronous_commit = ${setting}`);
        const lazyUrl = url.replace("postgres://vigil@", "postgres://lazy@");
        const err = await PostgresSlashingProtection.open({ url: lazyUrl, passwordFile }, { genesisValidatorsRoot: GVR }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SlashingDbUnavailableError);
        expect((err as SlashingDbUnavailableError).code).toBe("DB_NOT_DURABLE");
      }
      expect((await admin.query("SELECT to_regclass('vigil_schema') AS t")).rows[0].t).toBeNull();
    } finally {
      await admin.query("DROP OWNED BY lazy").catch(() => undefined);
      await admin.end();
    }
  });

  it("a server running with fsync off (DB_NOT_DURABLE, no setting allows it), writing nothing", async () => {
    const unsafe = await startPostgres({ fsync: "off" });
    try {
      const url = await unsafe.createDatabase();
      const err = await PostgresSlashingProtection.open(
        { url, passwordFile: unsafe.passwordFile, allowServerAsyncCommitDefault: true },
        { genesisValidatorsRoot: GVR },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlashingDbUnavailableError);
      expect((err as SlashingDbUnavailableError).code).toBe("DB_NOT_DURABLE");
      expect((err as Error).message).toMatch(/fsync off/);
      const c = await unsafe.connect(url);
      expect((await c.query("SELECT to_regclass('vigil_schema') AS t")).rows[0].t).toBeNull();
      await c.end();
    } finally {
      await unsafe.stop();
    }
  });

  it("a database pinned to another network (GENESIS_VALIDATORS_ROOT_MISMATCH)", async () => {
    const url = await server.createDatabase();
    const first = await open(url);
    expect(await first.checkAndRecord(block(0, 1n, 0))).toBe("recorded");
    await first.close();
    const err = await open(url, { genesisValidatorsRoot: OTHER_GVR }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlashingProtectionError);
    expect((err as SlashingProtectionError).code).toBe("GENESIS_VALIDATORS_ROOT_MISMATCH");
    const again = await open(url, {});
    expect(again.genesisValidatorsRoot).toBe(GVR);
    await expect(
      again.importInterchange({ metadata: { interchange_format_version: "5", genesis_validators_root: OTHER_GVR }, data: [] }),
    ).rejects.toMatchObject({
      code: "GENESIS_VALIDATORS_ROOT_MISMATCH",
    });
    await again.close();
  });

  it("pin() on an open handle: its own network again answers without writing, another network is still refused", async () => {
    const url = await server.createDatabase();
    const p = await open(url, {}); // unpinned
    expect(p.genesisValidatorsRoot).toBeNull();
    await p.pin(Buffer.from(GVR.slice(2), "hex")); // pins durably
    for (let i = 0; i < 3; i++) await p.pin(Buffer.from(GVR.slice(2), "hex")); // every sign request does this
    await expect(p.pin(Buffer.from(OTHER_GVR.slice(2), "hex"))).rejects.toMatchObject({ code: "GENESIS_VALIDATORS_ROOT_MISMATCH" });
    // Pinned through another handle: this one, opened before, still refuses the other network.
    const url2 = await server.createDatabase();
    const early = await open(url2, {});
    const pinner = await open(url2, { genesisValidatorsRoot: OTHER_GVR });
    await expect(early.pin(Buffer.from(GVR.slice(2), "hex"))).rejects.toMatchObject({ code: "GENESIS_VALIDATORS_ROOT_MISMATCH" });
    await Promise.all([p.close(), early.close(), pinner.close()]);
  });

  it("a schema newer than this Vigil (DB_SCHEMA_TOO_NEW)", async () => {
    const url = await server.createDatabase();
    await (await open(url)).close();
    const c = await server.connect(url);
    await c.query("UPDATE vigil_schema SET version = 99");
    await c.end();
    await expect(open(url)).rejects.toMatchObject({ code: "DB_SCHEMA_TOO_NEW" });
  });

  it("an unreachable server (DB_OPEN_FAILED, UNREACHABLE)", async () => {
    const err = await PostgresSlashingProtection.open({ url: "postgres://vigil@127.0.0.1:1/x", password: "unused" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DB_OPEN_FAILED", failure: "UNREACHABLE" });
  });
});

describe("a failed batch", () => {
  it("rolls back whole and rejects every check in it: nothing recorded, nobody signs; the next batch works", async () => {
    const url = await server.createDatabase();
    const p = await open(url);
    const admin = await server.connect(url);
    try {
      // A server-side failure on one specific insert, inside the batch transaction.
      await admin.query(`CREATE FUNCTION fail_at_666() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.target_epoch = 666 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`);
      await admin.query("CREATE TRIGGER fail_at_666 BEFORE INSERT ON signed_attestations FOR EACH ROW EXECUTE FUNCTION fail_at_666()");
      const results = await Promise.allSettled([p.checkAndRecord(block(0, 5n, 0)), p.checkAndRecord(att(1, 665n, 666n, 0)), p.checkAndRecord(block(2, 5n, 0))]);
      for (const r of results) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(SlashingDbUnavailableError);
        expect((r as PromiseRejectedResult).reason.code).toBe("DB_WRITE_FAILED");
      }
      expect((await p.health()).up).toBe(false);
      const counts = await admin.query("SELECT (SELECT count(*) FROM signed_blocks)::int AS b, (SELECT count(*) FROM signed_attestations)::int AS a");
      expect(counts.rows[0]).toEqual({ b: 0, a: 0 });
      expect(await p.checkAndRecord(block(0, 5n, 0))).toBe("recorded");
      expect(await p.health()).toEqual({ up: true });
    } finally {
      await admin.end();
      await p.close();
    }
  });

  it("a validator row deleted by hand after this instance saw it: that batch fails closed, the next registers it again", async () => {
    const url = await server.createDatabase();
    const p = await open(url);
    const admin = await server.connect(url);
    try {
      expect(await p.checkAndRecord(att(0, 1n, 2n, 0))).toBe("recorded");
      expect(await p.checkAndRecord(att(0, 2n, 3n, 0))).toBe("recorded"); // the row is known now: no INSERT before the lock
      await admin.query("DELETE FROM signed_attestations");
      await admin.query("DELETE FROM validators");
      const gone = await p.checkAndRecord(att(0, 3n, 4n, 0)).catch((err: unknown) => err);
      expect(gone).toBeInstanceOf(SlashingDbUnavailableError);
      expect((gone as SlashingDbUnavailableError).code).toBe("DB_WRITE_FAILED");
      expect((await admin.query("SELECT count(*)::int AS n FROM validators")).rows[0].n).toBe(0);
      expect(await p.checkAndRecord(att(0, 3n, 4n, 0))).toBe("recorded");
      expect((await admin.query("SELECT count(*)::int AS n FROM signed_attestations")).rows[0].n).toBe(1);
    } finally {
      await admin.end();
      await p.close();
    }
  });
});
