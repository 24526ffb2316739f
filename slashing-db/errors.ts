import { EXIT_CODES, VigilError } from "../config/index.js";

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
  | "GENESIS_VALIDATORS_ROOT_MISMATCH"
  | "GENESIS_VALIDATORS_ROOT_UNKNOWN";

/** The database said no: signing this could be slashable (or the network is wrong). Nothing was recorded. */
export class SlashingProtectionError extends VigilError {
  constructor(
    readonly refusal: RefusalCode,
    message: string,
  ) {
    super(refusal, message, EXIT_CODES.refused);
  }
}

/** An argument to the database was malformed (bad pubkey, slot, epoch or root). Nothing was recorded. */
export class SlashingDbInputError extends VigilError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("INVALID_INPUT", `${field}: ${message}`, EXIT_CODES.invalidInput);
  }
}

/**
 * The database itself failed (disk full, locked past the timeout, closed, newer schema). The check did not
 * complete, so the caller must not sign: fail closed.
 */
export class SlashingDbUnavailableError extends VigilError {
  constructor(code: "DB_CLOSED" | "DB_WRITE_FAILED" | "DB_SCHEMA_TOO_NEW" | "DB_OPEN_FAILED", message: string) {
    super(code, message, EXIT_CODES.failed);
  }
}

/** An EIP-3076 interchange could not be imported; `field` is the JSON path of the offending value. */
export class InterchangeError extends VigilError {
  constructor(
    code: "INVALID_INTERCHANGE" | "GENESIS_VALIDATORS_ROOT_MISMATCH" | "UNSUPPORTED_INTERCHANGE_VERSION",
    readonly field: string,
    message: string,
  ) {
    super(code, field ? `${field}: ${message}` : message, code === "GENESIS_VALIDATORS_ROOT_MISMATCH" ? EXIT_CODES.refused : EXIT_CODES.invalidInput);
  }
}
