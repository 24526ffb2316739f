import { InvalidArgumentError, type Command } from "commander";
import { EXIT_CODES, defaultSlashingDbPath, readSecretFile } from "../common/index.js";
import {
  openSlashingDbAdmin,
  SlashingDbInputError,
  withStartupExitCode,
  type PostgresTls,
  type SlashingDbAdmin,
  type SlashingDbLocation,
} from "../slashing-db/index.js";
import { loadSignerConfig } from "../signer/index.js";
import { CliError } from "./errors.js";

/** The environment variable naming the PostgreSQL password file when --db-password-file is not given. */
export const PASSWORD_FILE_ENV = "VIGIL_DB_PASSWORD_FILE";

export interface DbFlags {
  db?: string;
  dbUrl?: string;
  dbPasswordFile?: string;
  dbTls?: TlsMode;
  dbTlsCa?: string;
}

type TlsMode = "disable" | "require" | "verify-full";
const TLS_MODES: readonly TlsMode[] = ["disable", "require", "verify-full"];

/** Commander parser for a TLS mode flag (a usage error, exit 2, for anything else). */
export function tlsMode(value: string): TlsMode {
  if (!(TLS_MODES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${TLS_MODES.join(", ")}`);
  return value as TlsMode;
}

/** TLS for a PostgreSQL end: a CA alone means verify-full against it; no flag, no TLS (as in the signer's config). */
export function tlsOf(mode: TlsMode | undefined, ca: string | undefined, flag: string): PostgresTls | undefined {
  if (mode === undefined && ca === undefined) return undefined;
  if (mode !== undefined && mode !== "verify-full" && ca !== undefined) {
    throw new CliError("USAGE", `${flag}-ca is checked only with ${flag} verify-full`, EXIT_CODES.usage);
  }
  return ca === undefined ? { mode: mode! } : { mode: "verify-full", ca };
}

/** --db FILE | --db-url URL [--db-password-file F]: where every `vigil slashing` command finds its database. */
export function dbOptions(cmd: Command): Command {
  return cmd
    .option("--db <file>", `SQLite slashing-protection database (default: ${defaultSlashingDbPath()})`)
    .option("--db-url <url>", "PostgreSQL database instead: postgres://user@host:port/db (never a password in it)")
    .option("--db-password-file <file>", `file (mode 0600) holding the PostgreSQL role's password (or set ${PASSWORD_FILE_ENV})`)
    .option("--db-tls <mode>", "PostgreSQL TLS: disable (default), require (encrypt, any certificate), verify-full", tlsMode)
    .option("--db-tls-ca <file>", "PEM file of the CA that signed the server's certificate (implies --db-tls verify-full)");
}

/** --config: the database a signer's config names, for commands an operator runs against a running signer's. */
export function signerConfigOption(cmd: Command): Command {
  return cmd.option("--config <file>", "the signer's config file (JSON): its database (slashingDb, else the default file in its dataDir)");
}

/**
 * The database of --config, resolved as the signer resolves it (the same parser, relative paths against the
 * config's directory: the embedded data/signer.json works as is); else the --db/--db-url flags. Both at once
 * are refused: which database a safety change lands in must not depend on a precedence rule.
 */
export function dbLocationOrConfig(flags: DbFlags & { config?: string }): SlashingDbLocation {
  if (flags.config === undefined) return dbLocation(flags);
  if ([flags.db, flags.dbUrl, flags.dbPasswordFile, flags.dbTls, flags.dbTlsCa].some((f) => f !== undefined)) {
    throw new CliError("USAGE", "give --config (the signer's database) or --db/--db-url, not both", EXIT_CODES.usage);
  }
  return loadSignerConfig(flags.config).slashingDb;
}

/** Resolves the flags to a location: the SQLite default when neither --db nor --db-url is given. */
export function dbLocation(flags: DbFlags): SlashingDbLocation {
  if (flags.db !== undefined && flags.dbUrl !== undefined) {
    throw new CliError("USAGE", "give --db (a SQLite file) or --db-url (PostgreSQL), not both", EXIT_CODES.usage);
  }
  if (flags.dbUrl === undefined) {
    if (flags.dbPasswordFile !== undefined || flags.dbTls !== undefined || flags.dbTlsCa !== undefined) {
      throw new CliError("USAGE", "--db-password-file and --db-tls* go with --db-url", EXIT_CODES.usage);
    }
    return { kind: "sqlite", path: flags.db ?? defaultSlashingDbPath() };
  }
  const tls = tlsOf(flags.dbTls, flags.dbTlsCa, "--db-tls");
  return postgresLocation(flags.dbUrl, flags.dbPasswordFile ?? process.env[PASSWORD_FILE_ENV], "--db-url", tls);
}

/** A `copy` end: a postgres:// URL, or else a SQLite file path. */
export function fileOrUrlLocation(value: string, passwordFile: string | undefined, flag: string, tls?: PostgresTls): SlashingDbLocation {
  if (/^postgres(ql)?:\/\//i.test(value)) return postgresLocation(value, passwordFile, flag, tls);
  if (passwordFile !== undefined || tls !== undefined) {
    throw new CliError("USAGE", `${flag} names a SQLite file: a password file or TLS makes no sense for it`, EXIT_CODES.usage);
  }
  return { kind: "sqlite", path: value };
}

/**
 * Checks the URL here, before anything connects, so the operator gets a one-line usage answer (exit 3); the
 * message never repeats the URL, which may hold the very password it refuses.
 */
function postgresLocation(value: string, passwordFile: string | undefined, flag: string, tls: PostgresTls | undefined): SlashingDbLocation {
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
  return {
    kind: "postgres",
    connection: { url: value, ...(password === undefined ? {} : { password }), ...(tls === undefined ? {} : { tls }) },
  };
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
