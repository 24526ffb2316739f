import { EXIT_CODES } from "../../common/index.js";
import { SlashingDbUnavailableError, SlashingProtectionError, type DbFailureCause } from "../errors.js";

/** Names why a PostgreSQL operation failed, from node's socket codes and PostgreSQL's SQLSTATE classes. */
export function classifyPgFailure(err: unknown): DbFailureCause {
  if (err instanceof SlashingDbUnavailableError) return err.failure;
  const code = String((err as { code?: unknown } | undefined)?.code ?? "");
  const message = err instanceof Error ? err.message : String(err);
  // 28000: invalid authorization (no such role, pg_hba refused it); 28P01: wrong password; 42501: the role
  // lacks a privilege it needs (signer/docs/postgres.md lists them).
  if (code === "28000" || code === "28P01" || code === "42501") return "AUTH_FAILED";
  // The server asked for a password and none was configured (pg fails before sending anything).
  if (/client password must be a string/.test(message)) return "AUTH_FAILED";
  // 08: connection exception; 57P: operator intervention (shutdown, crash recovery); socket errors.
  if (/^(08|57P)/.test(code) || /^E(CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|PIPE|TIMEDOUT|AI_AGAIN)$|^ENOTFOUND$/.test(code)) return "UNREACHABLE";
  if (/Connection terminated|timeout exceeded when trying to connect|not queryable/i.test(message)) return "UNREACHABLE";
  // TLS: the server refuses TLS, or its certificate does not verify (node's X.509 codes, e.g. DEPTH_ZERO_SELF_SIGNED_CERT).
  if (/does not support SSL|self[- ]signed|certificate|ERR_TLS_/i.test(message) || /CERT|SELF_SIGNED/.test(code)) return "UNREACHABLE";
  if (code === "53100") return "DISK_FULL";
  if (code === "25006") return "READ_ONLY"; // read-only transaction (a standby, or default_transaction_read_only)
  // A standby met otherwise: `BEGIN … READ WRITE` there fails with 0A000 "cannot set transaction read-write mode
  // during recovery" (the health probe's and every durable transaction's first statement), and a few functions
  // fail with "… during recovery". After a failover, a connection that lands on a replica is "database
  // unavailable, try the primary", not an unknown error.
  if (/during recovery/i.test(message)) return "READ_ONLY";
  if (code === "55P03" || code === "40P01") return "LOCKED";
  if (code.startsWith("58")) return "IO_ERROR";
  return "UNKNOWN";
}

/**
 * The one place an open's refusal gets its exit code (common/errors.ts, 40-44), so that scripts and systemd
 * can tell an operator which of the five things to fix. Anything else keeps its own.
 */
export function withStartupExitCode(err: unknown): unknown {
  if (err instanceof SlashingProtectionError && err.refusal === "GENESIS_VALIDATORS_ROOT_MISMATCH") {
    return new SlashingProtectionError(err.refusal, err.message, {}, EXIT_CODES.dbNetworkMismatch);
  }
  if (!(err instanceof SlashingDbUnavailableError)) return err;
  const exitCode =
    err.code === "DB_SCHEMA_TOO_NEW"
      ? EXIT_CODES.dbSchemaTooNew
      : err.code === "DB_NOT_DURABLE"
        ? EXIT_CODES.dbNotDurable
        : err.failure === "UNREACHABLE"
          ? EXIT_CODES.dbUnreachable
          : err.failure === "AUTH_FAILED"
            ? EXIT_CODES.dbAuthFailed
            : undefined;
  if (exitCode === undefined) return err;
  const message = /client password must be a string/.test(err.message)
    ? "the PostgreSQL server asks for a password and none was given: set passwordFile or passwordCredential (CLI: --db-password-file)"
    : err.message;
  return new SlashingDbUnavailableError(err.code, message, err.failure, exitCode);
}
