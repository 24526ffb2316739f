// The HA scenario's database, in the shape of test/helpers/patroni.ts's PatroniCluster. Until that helper is
// merged: one plain PostgreSQL server (test/helpers/postgres.ts), which cannot fail over (`canFailOver` false).
import fs from "node:fs";
import path from "node:path";
import { startPostgres } from "../helpers/postgres.js";

export interface HaDatabase {
  url: string;
  passwordFile: string;
  memberUrl(member: string): string;
  leader(): Promise<string | undefined>;
  killPrimaryPostmaster(): Promise<{ member: string; killedAtMs: number }>;
  waitForNewPrimary(old: string, timeoutMs: number): Promise<{ member: string; promotedAtMs: number; writableAtMs: number }>;
  logDir: string;
  stop(): Promise<void>;
  canFailOver: boolean;
}

export async function startHaDatabase(dir: string): Promise<HaDatabase> {
  const server = await startPostgres();
  const url = await server.createDatabase();
  const logDir = path.join(dir, "postgres");
  fs.mkdirSync(logDir, { recursive: true });
  const single = async (): Promise<never> => {
    throw new Error("a single PostgreSQL server has no standby to promote");
  };
  return {
    url,
    passwordFile: server.passwordFile,
    memberUrl: () => url,
    leader: async () => "pg1",
    killPrimaryPostmaster: single,
    waitForNewPrimary: single,
    logDir,
    stop: () => server.stop(),
    canFailOver: false,
  };
}
