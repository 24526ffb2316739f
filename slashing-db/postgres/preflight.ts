import pg from "pg";
import { bytesToHex, normalizeHex } from "../../common/index.js";
import { parseHexBytes } from "../codec.js";
import { SlashingDbUnavailableError, SlashingProtectionError } from "../errors.js";
import { toPoolConfig, type PostgresConnection } from "./config.js";
import { classifyPgFailure, withStartupExitCode } from "./failures.js";
import { PG_SCHEMA_VERSION } from "./schema.js";

/** Settings of synchronous_commit under which COMMIT may return before the commit is durable where it must be: off (not even on the primary's disk), local (not on the synchronous standbys). */
const NOT_DURABLE = new Set(["off", "local"]);

/** What a database looks like before Vigil writes anything to it. */
export interface PostgresPreflight {
  synchronousCommit: string;
  /** null: no Vigil schema yet (a fresh database). */
  schemaVersion: number | null;
  /** The version this Vigil migrates to. */
  supportedSchemaVersion: number;
  /** The network the database is pinned to (0x hex), null if none yet. */
  genesisValidatorsRoot: string | null;
}

/**
 * Every reason to refuse a database, found by reading only, so that a refusal writes nothing: a server or role
 * that would acknowledge commits before they are on disk (unless the connection allows it: Vigil sets
 * synchronous_commit=on in its own transactions), a schema newer than this Vigil, and a database pinned to
 * another network than `genesisValidatorsRoot`.
 */
export async function preflight(client: pg.ClientBase, conn: PostgresConnection, genesisValidatorsRoot?: string): Promise<PostgresPreflight> {
  const synchronousCommit = (await client.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]!.synchronous_commit;
  if (NOT_DURABLE.has(synchronousCommit) && conn.allowServerAsyncCommitDefault !== true) {
    throw new SlashingDbUnavailableError(
      "DB_NOT_DURABLE",
      `PostgreSQL's synchronous_commit is "${synchronousCommit}" for this role and database: a commit could be acknowledged before it is on disk, so a signed message could be forgotten; set it to on (or see allowServerAsyncCommitDefault)`,
    );
  }
  // With fsync off, synchronous_commit=on guarantees nothing: the "flushed" WAL may still be in the page cache.
  // No setting allows it (a server crash would forget acknowledged signatures).
  const fsync = (await client.query<{ fsync: string }>("SHOW fsync")).rows[0]!.fsync;
  if (fsync !== "on") {
    throw new SlashingDbUnavailableError(
      "DB_NOT_DURABLE",
      "PostgreSQL runs with fsync off: a commit is never forced to disk, so a crash could forget a signed message; turn fsync on",
    );
  }
  const tables = (
    await client.query<{ schema: boolean; metadata: boolean }>(
      "SELECT to_regclass('vigil_schema') IS NOT NULL AS schema, to_regclass('metadata') IS NOT NULL AS metadata",
    )
  ).rows[0]!;
  const schemaVersion = tables.schema ? ((await client.query<{ version: number }>("SELECT version FROM vigil_schema")).rows[0]?.version ?? null) : null;
  if (schemaVersion !== null && schemaVersion > PG_SCHEMA_VERSION) {
    throw new SlashingDbUnavailableError(
      "DB_SCHEMA_TOO_NEW",
      `the PostgreSQL slashing database has schema version ${schemaVersion}, newer than this Vigil's ${PG_SCHEMA_VERSION}: upgrade Vigil`,
    );
  }
  const pinnedRow = tables.metadata
    ? (await client.query<{ value: string }>("SELECT value FROM metadata WHERE key = 'genesis_validators_root'")).rows[0]
    : undefined;
  const pinned = pinnedRow ? normalizeHex(pinnedRow.value) : null;
  if (genesisValidatorsRoot !== undefined && pinned !== null) {
    const wanted = bytesToHex(parseHexBytes(genesisValidatorsRoot, 32, "genesisValidatorsRoot"));
    if (pinned !== wanted) {
      throw new SlashingProtectionError(
        "GENESIS_VALIDATORS_ROOT_MISMATCH",
        `this slashing database belongs to the network with genesis_validators_root ${pinned}, not ${wanted}`,
      );
    }
  }
  return { synchronousCommit, schemaVersion, supportedSchemaVersion: PG_SCHEMA_VERSION, genesisValidatorsRoot: pinned };
}

/**
 * Connects once and runs the preflight, writing nothing (`vigil signer check-config --connect`). Refusals carry
 * the same codes and exit codes (40-44) as a start.
 */
export async function probePostgres(conn: PostgresConnection, genesisValidatorsRoot?: string): Promise<PostgresPreflight> {
  const client = new pg.Client(toPoolConfig(conn));
  client.on("error", () => undefined);
  try {
    await client.connect().catch((err: unknown) => {
      throw new SlashingDbUnavailableError(
        "DB_OPEN_FAILED",
        `cannot connect to the PostgreSQL slashing database: ${(err as Error).message}`,
        classifyPgFailure(err),
      );
    });
    return await preflight(client, conn, genesisValidatorsRoot);
  } catch (err) {
    if (err instanceof SlashingDbUnavailableError || err instanceof SlashingProtectionError) throw withStartupExitCode(err);
    throw withStartupExitCode(
      new SlashingDbUnavailableError("DB_OPEN_FAILED", `checking the PostgreSQL slashing database failed: ${(err as Error).message}`, classifyPgFailure(err)),
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
