/**
 * The slashing-protection backends the shared tests run against: SQLite (SlashingDb on a temporary file,
 * exactly as before) and PostgreSQL (PostgresSlashingProtection on a fresh database of a private server
 * started for the test file). Each gives fresh locations, which a test opens here (./backend-handle.ts) or
 * hands to a child process that opens it the same way.
 */
import { afterAll, beforeAll } from "vitest";
import { openSlashingDbAdmin, type SlashingDbAdmin, type SlashingDbLocation } from "../../slashing-db/index.js";
import { openHandle, readPostgresRows, type BackendHandle, type RecordedRows } from "./backend-handle.js";
import { startPostgres, type TestPostgres } from "./postgres.js";
import { freshDbPath, tempDir } from "./tmp.js";

export type { BackendHandle, RecordedRows } from "./backend-handle.js";

export interface Backend {
  name: "sqlite" | "postgres";
  /** A new, empty database (nothing created in it yet). */
  freshLocation(): Promise<SlashingDbLocation>;
  /** Opens `location` (default: a fresh one), pinned to the network. */
  open(genesisValidatorsRoot: string, location?: SlashingDbLocation): Promise<BackendHandle>;
  /** The operator's handle on a new, empty, unpinned database. */
  freshAdmin(): Promise<SlashingDbAdmin>;
}

function sqliteBackend(): Backend {
  const dir = tempDir();
  const freshLocation = async (): Promise<SlashingDbLocation> => ({ kind: "sqlite", path: freshDbPath(dir) });
  return {
    name: "sqlite",
    freshLocation,
    open: async (gvr, location) => openHandle(location ?? (await freshLocation()), gvr),
    freshAdmin: async () => openSlashingDbAdmin(await freshLocation(), { mustExist: false }),
  };
}

/** Reads the rows of one PostgreSQL database through a separate connection. */
export async function postgresRows(server: TestPostgres, url: string): Promise<RecordedRows[]> {
  const c = await server.connect(url);
  try {
    return await readPostgresRows(c);
  } finally {
    await c.end();
  }
}

function postgresBackend(): Backend {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const freshLocation = async (): Promise<SlashingDbLocation> => ({
    kind: "postgres",
    connection: { url: await server!.createDatabase(), passwordFile: server!.passwordFile, poolSize: 2 },
  });
  return {
    name: "postgres",
    freshLocation,
    open: async (gvr, location) => openHandle(location ?? (await freshLocation()), gvr),
    freshAdmin: async () => openSlashingDbAdmin(await freshLocation(), { mustExist: false }),
  };
}

/** Both backends; call at the top level of a test file (PostgreSQL's server starts in beforeAll). */
export function testBackends(): Backend[] {
  return [sqliteBackend(), postgresBackend()];
}
