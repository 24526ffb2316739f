// Public surface of the slashing-protection database. Other parts import only from here.
export { openSlashingDb, SlashingDb } from "./database.js";
export type { SlashingDbOptions, SlashingDbStats, CheckOutcome } from "./database.js";
export { SlashingDbError, SlashingProtectionError, SlashingDbInputError, SlashingDbUnavailableError, InterchangeError, classifyDbFailure } from "./errors.js";
export type { SlashingDbErrorCode, RefusalCode, RefusalConflict, RefusalDetails, DbFailureCause } from "./errors.js";
export type { SlashingProtection, SlashableCheck, ProtectionHealth } from "./protection.js";
export { SHARING_NONCE_PATTERN, type SlashingDbIdentity, type SlashingBackend, type SharingNonce } from "./identity.js";
export { ThreadedSlashingProtection, type ThreadedSlashingProtectionOptions } from "./threaded/client.js";
export type { Verdict } from "./rules.js";
export type { BatchStats } from "./group-commit.js";
export type { ImportSummary } from "./interchange/import.js";
export type { Interchange, InterchangeRecord } from "./interchange/export.js";
export type { PruneOptions, PruneSummary } from "./prune.js";
export { PostgresSlashingProtection, type PostgresProtectionOptions, type CheckWithAnyRoot } from "./postgres/protection.js";
export type { PostgresConnection, PostgresTls } from "./postgres/config.js";
export type { SlashingDbLocation } from "./location.js";
export { openSlashingProtection, type OpenSlashingProtectionOptions } from "./open.js";
export { probePostgres, type PostgresPreflight } from "./postgres/preflight.js";
export type { SlashingDbAdmin, SlashingDbAdminStats } from "./admin.js";
export type { HighWatermark, SetHighWatermark, WatermarkReport, ValidatorWatermarks } from "./high-watermark.js";
export { openSlashingDbAdmin } from "./admin-open.js";
export { migratePg } from "./postgres/admin.js";
export { withStartupExitCode } from "./postgres/failures.js";
export { copyHistory, type CopyResult } from "./copy.js";
// The database a PostgreSQL deployment shares with the signer's client state (signer/server/fencing/postgres.ts):
// its connection settings, failure causes and the one versioned schema, which holds the fencing tables too.
export { toPoolConfig } from "./postgres/config.js";
export { classifyPgFailure } from "./postgres/failures.js";
export { migrate as migratePostgresSchema } from "./postgres/schema.js";
export { BEGIN_READ_COMMITTED } from "./postgres/isolation.js";
