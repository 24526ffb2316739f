import type { PostgresConnection } from "./postgres/config.js";

/**
 * Where a slashing-protection database lives, as the signer's config and the CLI resolve it: one SQLite file
 * (the embedded default, one signer process) or a PostgreSQL database that any number of signers share.
 */
export type SlashingDbLocation = { kind: "sqlite"; path: string } | { kind: "postgres"; connection: PostgresConnection };
