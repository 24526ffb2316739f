import fs from "node:fs";
import type pg from "pg";
import { SlashingDbUnavailableError } from "../errors.js";

/**
 * Where the PostgreSQL slashing database is. The password comes from a file (or a systemd credential, which
 * is a file) or from the caller's memory, never from the URL: a URL ends up in logs and on command lines.
 */
export interface PostgresConnection {
  /** postgres://user@host:port/database (a password in it is refused). */
  url: string;
  passwordFile?: string;
  password?: string;
  /** Connections in the pool (default 4): one batch commits at a time, the rest serve imports, exports, health. */
  poolSize?: number;
}

/** node-postgres's config from a connection; parsed here because pg lets an empty URL password override ours. */
export function toPoolConfig(conn: PostgresConnection): pg.PoolConfig {
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
  let password = conn.password;
  if (conn.passwordFile !== undefined) {
    try {
      password = fs.readFileSync(conn.passwordFile, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new SlashingDbUnavailableError(
        "DB_OPEN_FAILED",
        `cannot read the PostgreSQL password file ${conn.passwordFile}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
  }
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
  return config;
}
