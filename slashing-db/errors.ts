import { EXIT_CODES, VigilError } from "../common/index.js";

/** Why slashing protection refused a message. Stable strings: logs, HTTP 412 bodies and metrics use them. */
export type RefusalCode =
  | "DOUBLE_BLOCK_PROPOSAL" // another (or an unknown) block was already signed at this slot
  | "BLOCK_SLOT_AT_OR_BELOW_WATERMARK"
  | "SOURCE_EXCEEDS_TARGET"
  | "DOUBLE_VOTE" // another (or an unknown) attestation was already signed for this target
  | "SURROUNDING_VOTE" // the new attestation surrounds a recorded one
  | "SURROUNDED_VOTE" // a recorded attestation surrounds the new one
  | "SOURCE_BELOW_WATERMARK"
  | "TARGET_AT_OR_BELOW_WATERMARK"
  | "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK" // a cut-over: the next signer takes over from this slot
  | "ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK"
  | "GENESIS_VALIDATORS_ROOT_MISMATCH"
  | "GENESIS_VALIDATORS_ROOT_UNKNOWN";

/** Why the database could not be used (see SlashingDbUnavailableError). */
export type DbUnavailableCode = "DB_CLOSED" | "DB_WRITE_FAILED" | "DB_SCHEMA_TOO_NEW" | "DB_OPEN_FAILED" | "DB_NOT_DURABLE"; // the server would acknowledge a commit before it is on disk (synchronous_commit off/local)
export type InterchangeErrorCode = "INVALID_INTERCHANGE" | "GENESIS_VALIDATORS_ROOT_MISMATCH" | "UNSUPPORTED_INTERCHANGE_VERSION";

/** Every code the slashing database (and its commands) raises. */
export type SlashingDbErrorCode = RefusalCode | DbUnavailableCode | InterchangeErrorCode | "INVALID_INPUT" | "DB_NOT_FOUND" | "FILE_NOT_READABLE";

/** The base of the slashing database's errors: only a SlashingDbErrorCode can be raised. */
export class SlashingDbError<Code extends SlashingDbErrorCode = SlashingDbErrorCode> extends VigilError<Code> {}

/**
 * What a refused message collided with, as data (the message says the same in prose): a recorded block or
 * vote, or a low watermark. `signingRoot` is 0x hex, null when the recorded root is unknown. For a double
 * vote only the target is known (the rules count the votes at it without reading them).
 */
export type RefusalConflict =
  | { kind: "block"; slot: bigint; signingRoot: string | null }
  | { kind: "attestation"; source?: bigint; target: bigint }
  | { kind: "watermark"; slot?: bigint; sourceEpoch?: bigint; targetEpoch?: bigint }
  | { kind: "highWatermark"; slot?: bigint; epoch?: bigint };

/** The refused message (the validator and its slot, or its vote) and what it collided with. */
export interface RefusalDetails {
  pubkey?: string;
  slot?: bigint;
  source?: bigint;
  target?: bigint;
  existing?: RefusalConflict;
}

/** The database said no: signing this could be slashable (or the network is wrong). Nothing was recorded. */
export class SlashingProtectionError extends SlashingDbError<RefusalCode> {
  readonly pubkey?: string;
  readonly slot?: bigint;
  readonly source?: bigint;
  readonly target?: bigint;
  readonly existing?: RefusalConflict;

  constructor(
    readonly refusal: RefusalCode,
    message: string,
    details: RefusalDetails = {},
    exitCode: number = EXIT_CODES.refused,
  ) {
    super(refusal, message, exitCode);
    if (details.pubkey !== undefined) this.pubkey = details.pubkey;
    if (details.slot !== undefined) this.slot = details.slot;
    if (details.source !== undefined) this.source = details.source;
    if (details.target !== undefined) this.target = details.target;
    if (details.existing !== undefined) this.existing = details.existing;
  }

  /** The details as JSON (HTTP bodies, logs): slots and epochs as decimal strings, as the beacon APIs write uint64. */
  detailsJson(): Record<string, unknown> {
    const json: Record<string, unknown> = {};
    if (this.pubkey !== undefined) json.pubkey = this.pubkey;
    if (this.slot !== undefined) json.slot = String(this.slot);
    if (this.source !== undefined) json.source = String(this.source);
    if (this.target !== undefined) json.target = String(this.target);
    if (this.existing !== undefined) {
      json.existing = Object.fromEntries(Object.entries(this.existing).map(([k, v]) => [k, typeof v === "bigint" ? String(v) : v]));
    }
    return json;
  }

  toWire(): WireError {
    const details: RefusalDetails = {};
    if (this.pubkey !== undefined) details.pubkey = this.pubkey;
    if (this.slot !== undefined) details.slot = this.slot;
    if (this.source !== undefined) details.source = this.source;
    if (this.target !== undefined) details.target = this.target;
    if (this.existing !== undefined) details.existing = this.existing;
    return { kind: "refused", refusal: this.refusal, message: this.message, details };
  }

  static fromWire(w: Extract<WireError, { kind: "refused" }>): SlashingProtectionError {
    return new SlashingProtectionError(w.refusal, w.message, w.details);
  }
}

/** An argument to the database was malformed (bad pubkey, slot, epoch or root). Nothing was recorded. */
export class SlashingDbInputError extends SlashingDbError<"INVALID_INPUT"> {
  constructor(
    readonly field: string,
    /** What is wrong with it, without the field's name. */
    readonly reason: string,
  ) {
    super("INVALID_INPUT", `${field}: ${reason}`, EXIT_CODES.invalidInput);
  }

  toWire(): WireError {
    return { kind: "input", field: this.field, reason: this.reason };
  }

  static fromWire(w: Extract<WireError, { kind: "input" }>): SlashingDbInputError {
    return new SlashingDbInputError(w.field, w.reason);
  }
}

/**
 * The database itself failed (disk full, locked past the timeout, closed, newer schema). The check did not
 * complete, so the caller must not sign: fail closed.
 */
export class SlashingDbUnavailableError extends SlashingDbError<DbUnavailableCode> {
  /** Why, as a stable label for health checks, HTTP bodies and metrics. */
  readonly failure: DbFailureCause;
  constructor(code: DbUnavailableCode, message: string, failure?: DbFailureCause, exitCode: number = EXIT_CODES.failed) {
    super(code, message, exitCode);
    this.failure = failure ?? (code === "DB_CLOSED" ? "CLOSED" : "UNKNOWN");
  }

  toWire(): WireError {
    return { kind: "unavailable", code: this.code, message: this.message, failure: this.failure };
  }

  static fromWire(w: Extract<WireError, { kind: "unavailable" }>): SlashingDbUnavailableError {
    return new SlashingDbUnavailableError(w.code, w.message, w.failure);
  }
}

/**
 * A slashing-database error as plain data, for a boundary a class instance cannot cross (a worker thread's
 * messages; later a network). Each error class writes and reads its own kind.
 */
export type WireError =
  | { kind: "refused"; refusal: RefusalCode; message: string; details: RefusalDetails }
  | { kind: "input"; field: string; reason: string }
  | { kind: "unavailable"; code: DbUnavailableCode; message: string; failure: DbFailureCause };

/** Any error met while checking, as wire data: anything unexpected fails closed as DB_WRITE_FAILED. */
export function errorToWire(err: unknown): WireError {
  if (err instanceof SlashingProtectionError || err instanceof SlashingDbInputError || err instanceof SlashingDbUnavailableError) return err.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return new SlashingDbUnavailableError("DB_WRITE_FAILED", message, classifyDbFailure(err)).toWire();
}

export function errorFromWire(w: WireError): SlashingProtectionError | SlashingDbInputError | SlashingDbUnavailableError {
  if (w.kind === "refused") return SlashingProtectionError.fromWire(w);
  if (w.kind === "input") return SlashingDbInputError.fromWire(w);
  return SlashingDbUnavailableError.fromWire(w);
}

/** Why the database could not record a check. */
export type DbFailureCause =
  | "DISK_FULL" // SQLITE_FULL / ENOSPC
  | "READ_ONLY" // the file or its filesystem became read-only
  | "FILE_GONE" // the database file was deleted or replaced under the running process
  | "IO_ERROR" // any other I/O error from the disk
  | "LOCKED" // another process held the write lock past the busy timeout
  | "CLOSED"
  | "WORKER_STOPPED" // the signer's slashing-protection thread is gone
  | "UNREACHABLE" // the database server cannot be reached or dropped the connection (PostgreSQL)
  | "AUTH_FAILED" // the database server refused the role or its password (PostgreSQL)
  | "UNKNOWN";

/** Classifies a SQLite (better-sqlite3) or file-system error. */
export function classifyDbFailure(err: unknown): DbFailureCause {
  if (err instanceof SlashingDbUnavailableError) return err.failure;
  const code = String((err as { code?: unknown } | undefined)?.code ?? "");
  const message = err instanceof Error ? err.message : String(err);
  if (code === "SQLITE_FULL" || code === "ENOSPC" || /disk is full|no space left/i.test(message)) return "DISK_FULL";
  if (code.startsWith("SQLITE_READONLY") || code === "EROFS" || /read-?only/i.test(message)) return "READ_ONLY";
  if (code === "ENOENT") return "FILE_GONE";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return "LOCKED";
  if (code.startsWith("SQLITE_IOERR") || code === "EIO" || code.startsWith("SQLITE_CANTOPEN")) return "IO_ERROR";
  return "UNKNOWN";
}

/** An EIP-3076 interchange could not be imported; `field` is the JSON path of the offending value. */
export class InterchangeError extends SlashingDbError<InterchangeErrorCode> {
  constructor(
    code: InterchangeErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(code, field ? `${field}: ${message}` : message, code === "GENESIS_VALIDATORS_ROOT_MISMATCH" ? EXIT_CODES.refused : EXIT_CODES.invalidInput);
  }
}
