import { SlashingDbUnavailableError, type DbFailureCause } from "../errors.js";

/** Names why a PostgreSQL operation failed, from node's socket codes and PostgreSQL's SQLSTATE classes. */
export function classifyPgFailure(err: unknown): DbFailureCause {
  if (err instanceof SlashingDbUnavailableError) return err.failure;
  const code = String((err as { code?: unknown } | undefined)?.code ?? "");
  const message = err instanceof Error ? err.message : String(err);
  // 08: connection exception; 57P: operator intervention (shutdown, crash recovery); socket errors.
  if (/^(08|57P)/.test(code) || /^E(CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|PIPE|TIMEDOUT)$|^ENOTFOUND$/.test(code)) return "UNREACHABLE";
  if (/Connection terminated|timeout exceeded when trying to connect|not queryable/i.test(message)) return "UNREACHABLE";
  if (code === "28P01" || code === "28000") return "AUTH_FAILED"; // invalid password / authorization (pg_hba)
  if (code === "53100") return "DISK_FULL";
  if (code === "25006") return "READ_ONLY"; // read-only transaction (a standby, or default_transaction_read_only)
  if (code === "55P03" || code === "40P01") return "LOCKED";
  if (code.startsWith("58")) return "IO_ERROR";
  return "UNKNOWN";
}
