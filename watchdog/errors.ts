import { EXIT_CODES, VigilError } from "../common/index.js";

// Typed watchdog errors. Messages name the field, stack, client or state involved; never a token.

/** Every code the watchdog raises itself. */
export type WatchdogErrorCode =
  | "WATCHDOG_CONFIG"
  | "CONFIRMATION_REQUIRED"
  | "NOT_CONFIRMED"
  | "UNKNOWN_CLIENT"
  | "UNKNOWN_SIGNER"
  | "FAILOVER_IN_PROGRESS"
  | "PRECONDITIONS_FAILED"
  | "REFUSED"
  | "FAILED"
  | "FENCE_NOT_CONFIRMED"
  | "ADMIN_TOKEN_UNREADABLE"
  | "SIGNER_UNREACHABLE"
  | "SIGNER_UNAUTHORIZED"
  | "SIGNER_NOT_FOUND"
  | "SIGNER_BAD_RESPONSE"
  | "SIGNER_ERROR"
  | "STALE_GENERATION"
  | "STATE_DB_OPEN_FAILED"
  | "STATE_DB_SCHEMA"
  | "LEASE_LOST";

declare const relayed: unique symbol;
/**
 * A code the watchdog passes on rather than chooses: the signer's `code` in an admin reply, or a failover's
 * recorded outcome code (which may be any Vigil code). Made only by relayCode, so a literal cannot slip in.
 */
export type RelayedCode = string & { readonly [relayed]: true };
export function relayCode(code: string): RelayedCode {
  return code as RelayedCode;
}

/** The base of the watchdog's errors: a WatchdogErrorCode, or a code relayed on purpose. */
export class WatchdogError extends VigilError<WatchdogErrorCode | RelayedCode> {
  constructor(code: WatchdogErrorCode | RelayedCode, message: string, exitCode: number = EXIT_CODES.failed) {
    super(code, message, exitCode);
  }
}

/** The watchdog config file is missing, unreadable or invalid; `field` is the dotted path at fault. */
export class WatchdogConfigError extends WatchdogError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("WATCHDOG_CONFIG", field ? `watchdog config: ${field} ${message}` : `watchdog config: ${message}`, EXIT_CODES.invalidInput);
  }
}

/** A failover (or failback) was not started: a precondition failed, another one is open, or nobody confirmed. */
export class FailoverRefusedError extends WatchdogError {
  constructor(code: WatchdogErrorCode | RelayedCode, message: string) {
    super(code, message, EXIT_CODES.failoverRefused);
  }
}

/** A failover started and did not complete (rolled back or failed); see `vigil history`. */
export class FailoverFailedError extends WatchdogError {
  constructor(code: WatchdogErrorCode | RelayedCode, message: string) {
    super(code, message, EXIT_CODES.failoverFailed);
  }
}

/** The signer's admin API could not be reached or answered something unexpected. */
export class SignerAdminError extends WatchdogError {
  constructor(
    code: WatchdogErrorCode | RelayedCode,
    message: string,
    readonly status?: number,
  ) {
    super(code, message, EXIT_CODES.failed);
  }
}

/** The signer refused a fence/activate call: a newer generation (a newer decision) exists. */
export class StaleGenerationError extends SignerAdminError {
  constructor(
    readonly attempted: number,
    readonly currentGeneration: number,
  ) {
    super("STALE_GENERATION", `generation ${attempted} is older than the signer's ${currentGeneration}: a newer decision exists`, 409);
  }
}

/** The watchdog's own state database cannot be opened or is from an unknown schema. */
export class WatchdogStateError extends WatchdogError {
  constructor(code: "STATE_DB_OPEN_FAILED" | "STATE_DB_SCHEMA" | "LEASE_LOST", message: string) {
    super(code, message, EXIT_CODES.failed);
  }
}
