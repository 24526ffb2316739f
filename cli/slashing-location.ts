import type { Command } from "commander";
import { EXIT_CODES, defaultSlashingDbPath, readSecretFile } from "../common/index.js";
import { openSlashingDbAdmin, SlashingDbInputError, withStartupExitCode, type SlashingDbAdmin, type SlashingDbLocation } from "../slashing-db/index.js";
import { CliError } from "./errors.js";

/** The environment variable naming the PostgreSQL password file when --db-password-file is not given. */
export const PASSWORD_FILE_ENV = "VIGIL_DB_PASSWORD_FILE";

export interface DbFlags {
  db?: string;
  dbUrl?: string;
  dbPasswordFile?: string;
}

/** --db FILE | --db-url URL [--db-password-file F]: where every `vigil slashing` command finds its database. */
export function dbOptions(cmd: Command): Command {
  return cmd
    .option("--db <file>", `SQLite slashing-protection database (default: ${defaultSlashingDbPath()})`)
    .option("--db-url <url>", "PostgreSQL database instead: postgres://user@host:port/db (never a password in it)")
    .option("--db-password-file <file>", `file (mode 0600) holding the PostgreSQL role's password (or set ${PASSWORD_FILE_ENV})`);
}

/** Resolves the flags to a location: the SQLite default when neither --db nor --db-url is given. */
export function dbLocation(flags: DbFlags): SlashingDbLocation {
  if (flags.db !== undefined && flags.dbUrl !== undefined) {
    throw new CliError("USAGE", "give --db (a SQLite file) or --db-url (PostgreSQL), not both", EXIT_CODES.usage);
  }
  if (flags.dbUrl === undefined) {
    if (flags.dbPasswordFile !== undefined) throw new CliError("USAGE", "--db-password-file goes with --db-url", EXIT_CODES.usage);
    return { kind: "sqlite", path: flags.db ?? defaultSlashingDbPath() };
  }
  return postgresLocation(flags.dbUrl, flags.dbPasswordFile ?? process.env[PASSWORD_FILE_ENV], "--db-url");
}

/** A `copy` end: a postgres:// URL, or else a SQLite file path. */
export function fileOrUrlLocation(value: string, passwordFile: string | undefined, flag: string): SlashingDbLocation {
  if (/^postgres(ql)?:\/\//i.test(value)) return postgresLocation(value, passwordFile, flag);
  if (passwordFile !== undefined) throw new CliError("USAGE", `${flag} names a SQLite file: its password file makes no sense`, EXIT_CODES.usage);
  return { kind: "sqlite", path: value };
}

/**
 * Checks the URL here, before anything connects, so the operator gets a one-line usage answer (exit 3); the
 * message never repeats the URL, which may hold the very password it refuses.
 */
function postgresLocation(value: string, passwordFile: string | undefined, flag: string): SlashingDbLocation {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SlashingDbInputError(flag, "is not a URL (expected postgres://user@host:port/db)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") throw new SlashingDbInputError(flag, "must start with postgres://");
  if (url.password) {
    throw new SlashingDbInputError(
      flag,
      "must not hold a password (it would end up in shell history and process lists): put it in a 0600 file and give that file",
    );
  }
  if (url.search) throw new SlashingDbInputError(flag, "takes no query parameters (postgres://user@host:port/db)");
  const password = passwordFile === undefined ? undefined : readSecretFile(passwordFile, { what: "PostgreSQL password" });
  return { kind: "postgres", connection: password === undefined ? { url: value } : { url: value, password } };
}

/**
 * Opens the database, runs `use`, closes it; any failure reaching the operator carries the agreed exit code
 * (40 unreachable, 41 authentication, 43 schema too new, 44 not durable: the signer's start-up mapping).
 */
export async function withAdmin(location: SlashingDbLocation, mustExist: boolean, use: (db: SlashingDbAdmin) => Promise<void>): Promise<void> {
  const db = await openSlashingDbAdmin(location, { mustExist }).catch((err: unknown) => Promise.reject(withStartupExitCode(err)));
  try {
    await use(db);
  } catch (err) {
    throw withStartupExitCode(err);
  } finally {
    await db.close();
  }
}
