import { EXIT_CODES, VigilError } from "../config/index.js";

// Typed watchdog errors. Messages name the field, stack, client or state involved; never a token.

/** The watchdog config file is missing, unreadable or invalid; `field` is the dotted path at fault. */
export class WatchdogConfigError extends VigilError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("WATCHDOG_CONFIG", field ? `watchdog config: ${field} ${message}` : `watchdog config: ${message}`, EXIT_CODES.invalidInput);
  }
}

/** A failover (or failback) was not started: a precondition failed, another one is open, or nobody confirmed. */
export class FailoverRefusedError extends VigilError {
  constructor(code: string, message: string) {
    super(code, message, EXIT_CODES.failoverRefused);
  }
}

/** A failover started and did not complete (rolled back or failed); see `vigil history`. */
export class FailoverFailedError extends VigilError {
  constructor(code: string, message: string) {
    super(code, message, EXIT_CODES.failoverFailed);
  }
}

/** The signer's admin API could not be reached or answered something unexpected. */
export class SignerAdminError extends VigilError {
  constructor(
    code: string,
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
export class WatchdogStateError extends VigilError {
  constructor(code: string, message: string) {
    super(code, message, EXIT_CODES.failed);
  }
}
