import type { BatchStats } from "./group-commit.js";
import type { SlashingDbLocation } from "./location.js";
import { PostgresSlashingProtection } from "./postgres/protection.js";
import type { SlashingProtection } from "./protection.js";
import { ThreadedSlashingProtection } from "./threaded/client.js";

export interface OpenSlashingProtectionOptions {
  /** Pins the network at open; a database pinned to another network is refused. */
  genesisValidatorsRoot?: string;
  /** Each group commit's stats (metrics). */
  onCommit?: (stats: BatchStats) => void;
  /** SQLite only: the worker thread's connection could not take the pin (its checks then fail closed). */
  onPinFailure?: (err: Error) => void;
}

/**
 * Opens slashing protection wherever the config says it lives: a SQLite file checked on a thread of its own
 * (one signer process), or a PostgreSQL database that any number of signers share. The caller sees only
 * `SlashingProtection`.
 */
export async function openSlashingProtection(location: SlashingDbLocation, opts: OpenSlashingProtectionOptions = {}): Promise<SlashingProtection> {
  const gvr = opts.genesisValidatorsRoot !== undefined ? { genesisValidatorsRoot: opts.genesisValidatorsRoot } : {};
  const onCommit = opts.onCommit ? { onCommit: opts.onCommit } : {};
  if (location.kind === "postgres") return PostgresSlashingProtection.open(location.connection, { ...gvr, ...onCommit });
  return ThreadedSlashingProtection.open(location.path, { ...gvr, ...onCommit, ...(opts.onPinFailure ? { onPinFailure: opts.onPinFailure } : {}) });
}
