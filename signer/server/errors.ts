/**
 * How errors become HTTP replies. Bodies are `{ code, message }` (plus `field` for a malformed request),
 * codes are the stable VigilError codes. Nothing here ever carries key material.
 */
import { VigilError } from "../../common/index.js";
import { SlashingDbInputError, SlashingDbUnavailableError, SlashingProtectionError } from "../../slashing-db/index.js";
import {
  ClientGoneError,
  InvalidSignRequestError,
  QueueFullError,
  SigningRootMismatchError,
  UnknownForkVersionError,
  UnknownPubkeyError,
} from "../signing/index.js";
import { AuditLogUnavailableError } from "./audit-log.js";
import {
  ClientDisabledError,
  InvalidPubkeyIdentifierError,
  KeyNotAllowedError,
  OverloadedError,
  TooFarAheadError,
  TypeNotAllowedError,
  UnauthenticatedError,
} from "./service-errors.js";
import type { Outcome } from "./metrics.js";

/** Codes the HTTP layer raises itself (a route); domain errors are mapped in REPLY_RULES. */
export type HttpErrorCode = "NOT_ACCEPTABLE";

/** An error raised by the HTTP layer itself (a route), with its status. */
export class HttpError extends VigilError<HttpErrorCode> {
  constructor(
    readonly status: number,
    code: HttpErrorCode,
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

/** How one kind of domain error is answered. `body` defaults to `{ code, message }`. */
interface ReplyRule<E extends Error> {
  match: (err: unknown) => err is E;
  status: number;
  outcome: Outcome;
  /** Expected (a refusal, a bad request) rather than a fault worth an error log line. */
  expected: boolean;
  /** Seconds for Retry-After; every 503 has one. */
  retryAfter?: (err: E) => number;
  body?: (err: E) => Record<string, unknown>;
}

/** A rule for one error class (checked against that class's fields), stored beside the others. */
function rule<E extends VigilError>(cls: abstract new (...args: never[]) => E, r: Omit<ReplyRule<E>, "match">): ReplyRule<VigilError> {
  return { ...r, match: (err: unknown): err is E => err instanceof cls } as unknown as ReplyRule<VigilError>;
}
const retryDefault = (): number => RETRY_AFTER_SECONDS;
const withField = (err: VigilError & { field: string }) => ({ code: err.code, message: err.message, field: err.field });
const withCause = (err: VigilError & { failure: string }) => ({ code: err.code, message: err.message, cause: err.failure });

/**
 * THE table: every domain error the signer answers over HTTP, with its status, outcome (metrics) and Retry-After.
 * First match wins. Nothing outside the HTTP layer knows a status number.
 */
const REPLY_RULES: readonly ReplyRule<VigilError>[] = [
  // 400: the request is malformed.
  rule(InvalidSignRequestError, { status: 400, outcome: "invalid", expected: true, body: withField }),
  rule(InvalidPubkeyIdentifierError, { status: 400, outcome: "invalid", expected: true, body: withField }),
  rule(SlashingDbInputError, { status: 400, outcome: "invalid", expected: true, body: withField }),
  rule(SigningRootMismatchError, {
    status: 400,
    outcome: "invalid",
    expected: true,
    body: (e) => ({ code: e.code, message: e.message, field: "signingRoot" }),
  }),
  rule(UnknownForkVersionError, {
    status: 400,
    outcome: "invalid",
    expected: true,
    body: (e) => ({ code: e.code, message: e.message, field: "fork_info.fork.current_version" }),
  }),
  // 401 / 403: who is asking, and what they may do.
  rule(UnauthenticatedError, { status: 401, outcome: "not_allowed", expected: true }),
  rule(KeyNotAllowedError, { status: 403, outcome: "not_allowed", expected: true }),
  rule(TypeNotAllowedError, { status: 403, outcome: "not_allowed", expected: true }),
  rule(ClientDisabledError, { status: 403, outcome: "not_allowed", expected: true }),
  // 404
  rule(UnknownPubkeyError, { status: 404, outcome: "unknown_key", expected: true }),
  // 412: well-formed, but unsafe to sign. `reason` feeds the refusal metric.
  rule(SlashingProtectionError, {
    status: 412,
    outcome: "refused",
    expected: true,
    body: (e) => ({ code: e.code, reason: e.refusal, message: e.message, ...e.detailsJson() }),
  }),
  rule(TooFarAheadError, { status: 412, outcome: "refused", expected: true, body: (e) => ({ code: e.code, message: e.message, reason: e.code }) }),
  // 503, load: retry later.
  rule(QueueFullError, { status: 503, outcome: "overloaded", expected: true, retryAfter: retryDefault }),
  rule(OverloadedError, {
    status: 503,
    outcome: "overloaded",
    expected: true,
    retryAfter: (e) => e.retryAfterSeconds,
    body: (e) => ({ code: e.code, message: e.message, expectedWaitMs: e.expectedWaitMs, maxWaitMs: e.maxWaitMs }),
  }),
  // Nobody reads this reply (the connection is closed); counted as shed load.
  rule(ClientGoneError, { status: 503, outcome: "overloaded", expected: true, retryAfter: retryDefault }),
  // 503, faults: not overload. `cause` says which (disk full, read-only, file gone...).
  rule(SlashingDbUnavailableError, { status: 503, outcome: "db_unavailable", expected: false, retryAfter: retryDefault, body: withCause }),
  // The audit feed could not be written durably, so the signature was withheld. Same causes.
  rule(AuditLogUnavailableError, { status: 503, outcome: "audit_unavailable", expected: false, retryAfter: retryDefault, body: withCause }),
  {
    match: (err): err is VigilError =>
      err instanceof VigilError && (err.code === "POOL_CLOSED" || err.code === "BLS_POOL_DOWN" || err.code === "BLS_WORKER_DIED"),
    status: 503,
    outcome: "bls_unavailable",
    expected: false,
    retryAfter: retryDefault,
  },
];

export function errorReply(err: unknown): ErrorReply {
  if (err instanceof HttpError) return httpErrorReply(err);
  for (const r of REPLY_RULES) {
    if (!r.match(err)) continue;
    const body = r.body ? r.body(err) : { code: err.code, message: err.message };
    return { status: r.status, outcome: r.outcome, body, expected: r.expected, ...(r.retryAfter ? { retryAfter: r.retryAfter(err) } : {}) };
  }
  const fastify = fastifyClientError(err);
  if (fastify) return fastify;
  return { status: 500, outcome: "error", body: { code: "INTERNAL", message: "internal error (see the signer's log)" }, expected: false };
}

/** The HTTP layer's own errors (e.g. 406 NOT_ACCEPTABLE) carry their status. */
function httpErrorReply(err: HttpError): ErrorReply {
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
  return {
    status: err.status,
    outcome,
    body: { code: err.code, message: err.message, ...err.extra },
    expected: err.status < 500 || err.status === 503,
    ...(err.status === 503 ? { retryAfter: err.retryAfterSeconds ?? RETRY_AFTER_SECONDS } : {}),
  };
}

/** fastify's own errors on malformed input (body too large, bad JSON, bad content type) are the client's fault. */
function fastifyClientError(err: unknown): ErrorReply | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: string; statusCode?: number };
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    // 413 as Web3Signer answers, so a client knows that retrying the same body is pointless.
    return { status: 413, outcome: "invalid", body: { code: "BODY_TOO_LARGE", message: "request body is larger than the limit" }, expected: true };
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

/** The `code` of a reply a route builds from a status alone (keymanager API refusals, unknown routes). */
export function codeOfHttpStatus(status: number): string {
  switch (status) {
    case 400:
      return "INVALID_REQUEST";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 413:
      return "BODY_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    default:
      return status >= 500 ? "INTERNAL" : "BAD_REQUEST";
  }
}

/** Unknown route or method: the same `{ code, message }` body as every other refusal, not fastify's own shape. */
export function notFoundReply(method: string, url: string): { code: string; message: string } {
  return { code: "NOT_FOUND", message: `no route ${method} ${url.split("?")[0]}` };
}
