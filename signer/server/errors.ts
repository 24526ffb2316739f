/**
 * How errors become HTTP replies. Bodies are `{ code, message }` (plus `field` for a malformed request),
 * codes are the stable VigilError codes. Nothing here ever carries key material.
 */
import { VigilError } from "../../config/index.js";
import { SlashingDbInputError, SlashingDbUnavailableError, SlashingProtectionError } from "../../slashing-db/index.js";
import { ClientGoneError, InvalidSignRequestError, QueueFullError, SigningRootMismatchError, UnknownForkVersionError, UnknownPubkeyError } from "../signing/index.js";
import { AuditLogUnavailableError } from "./audit-log.js";
import type { Outcome } from "./metrics.js";

/** An error raised by the HTTP layer itself, with its status. */
export class HttpError extends VigilError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** For 503: seconds for Retry-After (default RETRY_AFTER_SECONDS). */
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message);
  }
}

export interface ErrorReply {
  status: number;
  outcome: Outcome;
  body: Record<string, unknown>;
  /** Seconds, for 503. */
  retryAfter?: number;
  /** Expected (a refusal, a bad request) rather than a fault worth an error log line. */
  expected: boolean;
}

export const RETRY_AFTER_SECONDS = 1;

export function errorReply(err: unknown): ErrorReply {
  if (err instanceof HttpError) {
    const outcome: Outcome =
      err.status === 401 || err.status === 403
        ? "not_allowed"
        : err.status === 404
          ? "unknown_key"
          : err.status === 412
            ? "refused"
            : err.status === 503
              ? "overloaded"
              : err.status < 500
                ? "invalid"
                : "error";
    return { status: err.status, outcome, body: { code: err.code, message: err.message, ...err.extra }, expected: err.status < 500 || err.status === 503, ...(err.status === 503 ? { retryAfter: err.retryAfterSeconds ?? RETRY_AFTER_SECONDS } : {}) };
  }
  if (err instanceof InvalidSignRequestError) {
    return { status: 400, outcome: "invalid", body: { code: err.code, message: err.message, field: err.field }, expected: true };
  }
  if (err instanceof SlashingDbInputError) {
    return { status: 400, outcome: "invalid", body: { code: err.code, message: err.message, field: err.field }, expected: true };
  }
  if (err instanceof SigningRootMismatchError || err instanceof UnknownForkVersionError) {
    const field = err instanceof SigningRootMismatchError ? "signingRoot" : "fork_info.fork.current_version";
    return { status: 400, outcome: "invalid", body: { code: err.code, message: err.message, field }, expected: true };
  }
  if (err instanceof UnknownPubkeyError) return { status: 404, outcome: "unknown_key", body: { code: err.code, message: err.message }, expected: true };
  if (err instanceof SlashingProtectionError) {
    // The conflicting record as fields (pubkey, slot / source+target, existing) where the refusal carries them.
    return { status: 412, outcome: "refused", body: { code: err.code, reason: err.refusal, message: err.message, ...err.detailsJson() }, expected: true };
  }
  if (err instanceof QueueFullError) {
    return { status: 503, outcome: "overloaded", body: { code: err.code, message: err.message }, retryAfter: RETRY_AFTER_SECONDS, expected: true };
  }
  if (err instanceof ClientGoneError) {
    // Nobody reads this reply (the connection is closed); counted as shed load.
    return { status: 503, outcome: "overloaded", body: { code: err.code, message: err.message }, retryAfter: RETRY_AFTER_SECONDS, expected: true };
  }
  if (err instanceof SlashingDbUnavailableError) {
    // Not overload: the database cannot record (disk full, read-only, file gone). `cause` says which.
    return { status: 503, outcome: "db_unavailable", body: { code: err.code, message: err.message, cause: err.failure }, retryAfter: RETRY_AFTER_SECONDS, expected: false };
  }
  if (err instanceof AuditLogUnavailableError) {
    // Not overload: the audit feed could not be written durably, so the signature was withheld. Same causes.
    return { status: 503, outcome: "audit_unavailable", body: { code: err.code, message: err.message, cause: err.failure }, retryAfter: RETRY_AFTER_SECONDS, expected: false };
  }
  if (err instanceof VigilError && (err.code === "POOL_CLOSED" || err.code === "BLS_POOL_DOWN" || err.code === "BLS_WORKER_DIED")) {
    return { status: 503, outcome: "bls_unavailable", body: { code: err.code, message: err.message }, retryAfter: RETRY_AFTER_SECONDS, expected: false };
  }
  const fastify = fastifyClientError(err);
  if (fastify) return fastify;
  return { status: 500, outcome: "error", body: { code: "INTERNAL", message: "internal error (see the signer's log)" }, expected: false };
}

/** fastify's own errors on malformed input (body too large, bad JSON, bad content type) are the client's fault. */
function fastifyClientError(err: unknown): ErrorReply | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: string; statusCode?: number };
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return { status: 400, outcome: "invalid", body: { code: "BODY_TOO_LARGE", message: "request body is larger than the limit", field: "" }, expected: true };
  }
  if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return { status: 415, outcome: "invalid", body: { code: "UNSUPPORTED_MEDIA_TYPE", message: "send the body as application/json" }, expected: true };
  }
  if (e.code === "FST_ERR_VALIDATION" || (e.statusCode === 400 && e.code?.startsWith("FST_ERR_CTP"))) {
    return { status: 400, outcome: "invalid", body: { code: "INVALID_REQUEST", message: e.message, field: "" }, expected: true };
  }
  if (e instanceof SyntaxError || e.statusCode === 400) {
    return { status: 400, outcome: "invalid", body: { code: "INVALID_JSON", message: "request body is not valid JSON", field: "" }, expected: true };
  }
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, outcome: "invalid", body: { code: e.code ?? "BAD_REQUEST", message: e.message }, expected: true };
  }
  return undefined;
}
