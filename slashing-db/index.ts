// Public surface of the slashing-protection database. Other parts import only from here.
export { openSlashingDb, SlashingDb } from "./database.js";
export type { SlashingDbOptions, SlashingDbStats, CheckOutcome } from "./database.js";
export { SlashingDbError, SlashingProtectionError, SlashingDbInputError, SlashingDbUnavailableError, InterchangeError, classifyDbFailure } from "./errors.js";
export type { SlashingDbErrorCode, RefusalCode, RefusalConflict, RefusalDetails, DbFailureCause } from "./errors.js";
export type { SlashingProtection, SlashableCheck, ProtectionHealth } from "./protection.js";
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
