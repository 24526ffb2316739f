import fs from "node:fs";
import path from "node:path";
import type { ConnectionOptions } from "node:tls";
import type pg from "pg";
import { readSecretFile } from "../../common/index.js";
import { SlashingDbUnavailableError } from "../errors.js";

/**
 * TLS to the server. "require" encrypts but accepts any certificate (protects against a passive listener only);
 * "verify-full" also checks the certificate against `ca` (or the system's roots) and the host name in the URL.
 */
export interface PostgresTls {
  mode: "disable" | "require" | "verify-full";
  /** PEM file of the CA that signed the server's certificate. */
  ca?: string;
  /** PEM files of a client certificate and its key (certificate authentication). */
  cert?: string;
  key?: string;
}

/**
 * Where the PostgreSQL slashing database is. The password comes from a file (or a systemd credential, which
 * is a file) or from the caller's memory, never from the URL: a URL ends up in logs and on command lines.
 */
export interface PostgresConnection {
  /** postgres://user@host:port/database (a password or query parameters in it are refused). */
  url: string;
  passwordFile?: string;
  /** A systemd credential's name: the password is read from $CREDENTIALS_DIRECTORY/<name> (LoadCredential=). */
  passwordCredential?: string;
  password?: string;
  tls?: PostgresTls;
  /** Connections in the pool (default 4): one batch commits at a time, the rest serve imports, exports, health. */
  poolSize?: number;
  /**
   * Accept a server, database or role whose synchronous_commit default is off or local. Safe for Vigil's own
   * writes, which set synchronous_commit=on in every transaction; refused by default because such a default
   * usually means someone traded durability for speed on purpose, and other writers of the database would not.
   */
  allowServerAsyncCommitDefault?: boolean;
}

/** node-postgres's config from a connection; parsed here because pg lets an empty URL password override ours. */
export function toPoolConfig(conn: PostgresConnection, env: NodeJS.ProcessEnv = process.env): pg.PoolConfig {
  // libpq's multi-host form (h1:5432,h2:5432 with target_session_attrs): node-postgres connects to one host only,
  // and would take "h1,h2" for one name. Say so, instead of "not a valid URL" or a DNS failure at start.
  if (/^[a-z]+:\/\/[^/?#]*,/i.test(conn.url)) {
    throw new SlashingDbUnavailableError(
      "DB_OPEN_FAILED",
      "the PostgreSQL URL names several hosts: Vigil connects to one; for a Patroni cluster give the address of the HAProxy that follows its primary (deploy/README.md, Database high availability)",
    );
  }
  let url: URL;
  try {
    url = new URL(conn.url);
  } catch {
    throw new SlashingDbUnavailableError("DB_OPEN_FAILED", "the PostgreSQL URL is not a valid URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new SlashingDbUnavailableError("DB_OPEN_FAILED", `the PostgreSQL URL must start with postgres://, not ${url.protocol}//`);
  }
  if (url.password) throw new SlashingDbUnavailableError("DB_OPEN_FAILED", "the PostgreSQL URL must not hold a password: give a password file");
  // pg would ignore them here (we pass parts, not the string): refuse rather than silently drop e.g. sslmode.
  if (url.search) throw new SlashingDbUnavailableError("DB_OPEN_FAILED", "the PostgreSQL URL must not hold query parameters: TLS and the pool are set apart");
  let password = conn.password;
  if (conn.passwordFile !== undefined) password = readPasswordFile(conn.passwordFile);
  if (conn.passwordCredential !== undefined) password = readPasswordFile(credentialFile(conn.passwordCredential, env));
  const config: pg.PoolConfig = {
    host: decodeURIComponent(url.hostname),
    port: url.port ? Number(url.port) : 5432,
    database: decodeURIComponent(url.pathname.replace(/^\//, "")) || undefined,
    user: decodeURIComponent(url.username) || undefined,
    max: conn.poolSize ?? 4,
    connectionTimeoutMillis: 10_000,
    application_name: "vigil",
  };
  if (password !== undefined) config.password = password;
  if (conn.tls !== undefined && conn.tls.mode !== "disable") config.ssl = tlsOptions(conn.tls);
  return config;
}

/** The file a systemd credential is in: $CREDENTIALS_DIRECTORY/<name> (set by LoadCredential= in the unit). */
export function credentialFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir) {
    throw new SlashingDbUnavailableError(
      "DB_OPEN_FAILED",
      `the PostgreSQL password credential ${JSON.stringify(name)} was requested but $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)`,
    );
  }
  if (!/^[A-Za-z0-9_.:-]+$/.test(name) || name.startsWith("."))
    throw new SlashingDbUnavailableError("DB_OPEN_FAILED", `invalid systemd credential name ${JSON.stringify(name)}`);
  return path.join(dir, name);
}

function readPasswordFile(file: string): string {
  return readSecretFile(file, { what: "PostgreSQL password", error: (refusal) => new SlashingDbUnavailableError("DB_OPEN_FAILED", refusal.message) });
}

function tlsOptions(tls: PostgresTls): ConnectionOptions {
  const read = (file: string, what: string) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new SlashingDbUnavailableError(
        "DB_OPEN_FAILED",
        `cannot read the PostgreSQL TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  };
  const options: ConnectionOptions = { rejectUnauthorized: tls.mode === "verify-full" };
  if (tls.ca !== undefined) options.ca = read(tls.ca, "CA file");
  if (tls.cert !== undefined) options.cert = read(tls.cert, "certificate file");
  if (tls.key !== undefined) {
    options.key = readSecretFile(tls.key, {
      what: "PostgreSQL TLS key",
      error: (refusal) => new SlashingDbUnavailableError("DB_OPEN_FAILED", refusal.message),
    });
  }
  return options;
}
