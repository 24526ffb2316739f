import type pg from "pg";
import { SlashingDbUnavailableError } from "../errors.js";
import { HISTORY_ID_KEY } from "../identity.js";
import { BEGIN_READ_COMMITTED } from "./isolation.js";

/**
 * The PostgreSQL schema: the SQLite one (../schema.ts) in PostgreSQL's types, the same invariants in its
 * keys. Migrations run in order inside one transaction under a transaction-scoped advisory lock, so two
 * instances starting at once apply each migration exactly once; `vigil_schema.version` counts how many ran.
 * Never edit a shipped migration: append one.
 */
export const PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE metadata (
    key   text PRIMARY KEY,
    value text NOT NULL
  );
  CREATE TABLE validators (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pubkey           bytea NOT NULL UNIQUE CHECK (length(pubkey) = 48),
    -- Oldest recorded block slot / attestation source / target: the complete strategy's low watermarks.
    min_block_slot   bigint,
    min_source_epoch bigint,
    min_target_epoch bigint
  );
  CREATE TABLE signed_blocks (
    validator_id bigint NOT NULL REFERENCES validators(id),
    slot         bigint NOT NULL CHECK (slot >= 0),
    signing_root bytea CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, slot)
  );
  CREATE TABLE signed_attestations (
    validator_id bigint NOT NULL REFERENCES validators(id),
    target_epoch bigint NOT NULL CHECK (target_epoch >= 0),
    source_epoch bigint NOT NULL CHECK (source_epoch >= 0),
    signing_root bytea CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, target_epoch, source_epoch)
  );
  CREATE INDEX inverted_attestations ON signed_attestations (validator_id, source_epoch) WHERE source_epoch > target_epoch;
  CREATE TABLE low_watermarks (
    validator_id bigint PRIMARY KEY REFERENCES validators(id),
    block_slot   bigint,
    source_epoch bigint,
    target_epoch bigint
  );
  `,
  // The signer's client state, shared by every signer instance on this database (signer/server/fencing/postgres.ts):
  // one generation and its decision, and per client enabled + the generation of its last change. `version` counts
  // changes, so an instance never installs an older snapshot over a newer one.
  `
  CREATE TABLE signer_fencing (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint NOT NULL CHECK (generation >= 0),
    decision   text,
    version    bigint NOT NULL
  );
  INSERT INTO signer_fencing (generation, decision, version) VALUES (0, NULL, 0);
  CREATE TABLE signer_clients (
    id                    text PRIMARY KEY,
    enabled               boolean NOT NULL,
    changed_at_generation bigint NOT NULL CHECK (changed_at_generation >= 0)
  );
  `,
  // This database's history id, as on SQLite (../schema.ts): made once, replicated with the data (a Patroni
  // standby promoted keeps it), and carried by a dump restored elsewhere too, hence the live proof (../identity.ts).
  `
  INSERT INTO metadata (key, value) VALUES ('${HISTORY_ID_KEY}', replace(gen_random_uuid()::text, '-', '')) ON CONFLICT (key) DO NOTHING;
  `,
  // High watermarks, as on SQLite (../schema.ts): validator_id 0 is the one for every validator.
  `
  CREATE TABLE high_watermarks (
    validator_id bigint PRIMARY KEY,
    slot         bigint CHECK (slot IS NULL OR slot >= 0),
    epoch        bigint CHECK (epoch IS NULL OR epoch >= 0)
  );
  `,
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS.length;

/** Any constant: the advisory lock every Vigil instance takes around its migrations ("VIGILMIG"). */
const MIGRATION_LOCK = 0x5649_4749_4c4d_4947n;

/**
 * Creates or upgrades the schema; refuses a schema newer than this Vigil. Idempotent. `found` hears the version
 * the database had (read under the lock when it migrates: read before it, two concurrent runs would both see
 * the old one).
 */
export async function migrate(client: pg.ClientBase, found?: (version: number) => void): Promise<number> {
  // Already current: nothing to lock or write, so a runtime role without CREATE on the schema can open it.
  if ((await currentVersion(client)) === PG_SCHEMA_VERSION) {
    found?.(PG_SCHEMA_VERSION);
    return PG_SCHEMA_VERSION;
  }
  await client.query(BEGIN_READ_COMMITTED); // the version read after the lock must see a concurrent migration
  try {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK.toString()]);
    await client.query("CREATE TABLE IF NOT EXISTS vigil_schema (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), version integer NOT NULL)");
    const row = (await client.query<{ version: number }>("SELECT version FROM vigil_schema")).rows[0];
    const version = row?.version ?? 0;
    found?.(version);
    if (version > PG_SCHEMA_VERSION) {
      throw new SlashingDbUnavailableError(
        "DB_SCHEMA_TOO_NEW",
        `the PostgreSQL slashing database has schema version ${version}, newer than this Vigil's ${PG_SCHEMA_VERSION}: upgrade Vigil`,
      );
    }
    for (let v = version; v < PG_SCHEMA_VERSION; v++) await client.query(PG_MIGRATIONS[v]!);
    await client.query("INSERT INTO vigil_schema (version) VALUES ($1) ON CONFLICT (only_row) DO UPDATE SET version = excluded.version", [PG_SCHEMA_VERSION]);
    await client.query("COMMIT");
    return PG_SCHEMA_VERSION;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** The schema version, read only; null before the first migration. */
async function currentVersion(client: pg.ClientBase): Promise<number | null> {
  const exists = (await client.query<{ found: boolean }>("SELECT to_regclass('vigil_schema') IS NOT NULL AS found")).rows[0]!.found;
  return exists ? ((await client.query<{ version: number }>("SELECT version FROM vigil_schema")).rows[0]?.version ?? null) : null;
}
