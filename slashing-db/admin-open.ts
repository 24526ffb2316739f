import type { SlashingDbAdmin } from "./admin.js";
import type { SlashingDbLocation } from "./location.js";
import { PostgresAdmin } from "./postgres/admin.js";
import { SqliteAdmin } from "./sqlite-admin.js";

/**
 * The operator's handle on a slashing database wherever it lives. mustExist: a command that only reads or
 * prunes refuses a database that is not there (DB_NOT_FOUND) instead of creating an empty one.
 */
export async function openSlashingDbAdmin(location: SlashingDbLocation, opts: { mustExist: boolean }): Promise<SlashingDbAdmin> {
  if (location.kind === "sqlite") return SqliteAdmin.open(location.path, opts);
  return PostgresAdmin.open(location.connection, opts);
}
