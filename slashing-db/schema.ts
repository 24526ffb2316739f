import type { SqliteMigration } from "../common/index.js";
import { HISTORY_ID_KEY } from "./identity.js";

/**
 * Schema migrations, applied in order by openDurableSqlite; PRAGMA user_version records how many ran.
 * Never edit a shipped migration: append a new one.
 *
 * Uniqueness encodes the complete strategy's invariants: one block per (validator, slot); attestations are
 * keyed by (validator, target, source) so that an imported history that already holds two sources for one
 * target keeps both (both matter for surround checks). Roots are BLOBs, NULL when unknown.
 *
 * Write cost drives the layout: a signature's insert should dirty as few pages as possible, because every
 * dirty page is written to the WAL and fsynced in the group commit. So there is no full secondary index:
 * the per-validator lower bounds the rules need are kept as columns of `validators` (updated only when a
 * record lowers them, which normal signing never does), and only "inverted" attestations (source > target,
 * which can arrive only through an import) get a partial index for the surround check.
 */
export const SLASHING_DB_MIGRATIONS: readonly SqliteMigration[] = [
  `
  CREATE TABLE metadata (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE validators (
    id               INTEGER PRIMARY KEY,
    pubkey           BLOB NOT NULL UNIQUE CHECK (length(pubkey) = 48),
    -- Oldest recorded block slot / attestation source / target: the complete strategy's low watermarks.
    min_block_slot   INTEGER,
    min_source_epoch INTEGER,
    min_target_epoch INTEGER
  );
  CREATE TABLE signed_blocks (
    validator_id INTEGER NOT NULL REFERENCES validators(id),
    slot         INTEGER NOT NULL CHECK (slot >= 0),
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, slot)
  ) WITHOUT ROWID;
  CREATE TABLE signed_attestations (
    validator_id INTEGER NOT NULL REFERENCES validators(id),
    target_epoch INTEGER NOT NULL CHECK (target_epoch >= 0),
    source_epoch INTEGER NOT NULL CHECK (source_epoch >= 0),
    signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
    PRIMARY KEY (validator_id, target_epoch, source_epoch)
  ) WITHOUT ROWID;
  CREATE INDEX inverted_attestations ON signed_attestations (validator_id, source_epoch) WHERE source_epoch > target_epoch;
  -- Explicit low watermarks: raised by an operator (failover without full history) or left by pruning.
  CREATE TABLE low_watermarks (
    validator_id INTEGER PRIMARY KEY REFERENCES validators(id),
    block_slot   INTEGER,
    source_epoch INTEGER,
    target_epoch INTEGER
  );
  `,
  // This database's history id (admin API GET /admin/v1/slashing-db): random, made once, and carried by every
  // copy of the file. It says which history a database started as, not that two signers share one: a copied file
  // keeps it, so the watchdog also proves sharing live (identity.ts).
  `
  INSERT OR IGNORE INTO metadata (key, value) VALUES ('${HISTORY_ID_KEY}', lower(hex(randomblob(16))));
  `,
  // High watermarks (Web3Signer's, for a cut-over between two signers): nothing at or above them is signed.
  // validator_id 0 holds the one for every validator (ids start at 1), so no foreign key; a NULL bounds nothing.
  `
  CREATE TABLE high_watermarks (
    validator_id INTEGER PRIMARY KEY,
    slot         INTEGER CHECK (slot IS NULL OR slot >= 0),
    epoch        INTEGER CHECK (epoch IS NULL OR epoch >= 0)
  );
  `,
];

export const SCHEMA_VERSION = SLASHING_DB_MIGRATIONS.length;
