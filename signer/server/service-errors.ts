/**
 * The signing service's refusals, as domain errors: a typed code, the facts as fields, no HTTP. The HTTP layer
 * maps each class to its status, outcome and Retry-After in one table (errors.ts `errorReply`). The signing core's
 * own errors (bad body, unknown key, full queue, client gone) are in ../signing/errors.ts.
 */
import { EXIT_CODES, VigilError } from "../../common/index.js";

export type ServiceErrorCode =
  | "UNAUTHENTICATED"
  | "INVALID_REQUEST"
  | "KEY_NOT_ALLOWED"
  | "TYPE_NOT_ALLOWED"
  | "CLIENT_DISABLED"
  | "OVERLOADED"
  | "SLOT_TOO_FAR_AHEAD"
  | "EPOCH_TOO_FAR_AHEAD"
  | "INVALID_CONFIG";

abstract class ServiceError extends VigilError<ServiceErrorCode> {
  constructor(code: ServiceErrorCode, message: string, exitCode: number = EXIT_CODES.failed) {
    super(code, message, exitCode);
  }
}

/** The request names no configured client: no or an unknown bearer token, no pinned certificate, no dedicated listener. */
export class UnauthenticatedError extends ServiceError {
  constructor(message: string) {
    super("UNAUTHENTICATED", message);
  }
}

/** The key in the request's path is not a 48-byte public key in hex (0x optional). `field` names the path parameter. */
export class InvalidPubkeyIdentifierError extends ServiceError {
  readonly field = "identifier";
  constructor() {
    super("INVALID_REQUEST", "identifier must be a 48-byte public key in hex (0x optional)", EXIT_CODES.invalidInput);
  }
}

/** The client's configuration does not list this key. */
export class KeyNotAllowedError extends ServiceError {
  constructor(
    readonly clientId: string,
    readonly pubkey: string,
  ) {
    super("KEY_NOT_ALLOWED", `client ${clientId} may not use key ${pubkey}`, EXIT_CODES.refused);
  }
}

/** The client's configuration (allowedTypes) does not list this request type. */
export class TypeNotAllowedError extends ServiceError {
  constructor(
    readonly clientId: string,
    readonly type: string,
  ) {
    super("TYPE_NOT_ALLOWED", `client ${clientId} may not sign ${type} (see allowedTypes in the signer's config)`, EXIT_CODES.refused);
  }
}

/** The client is fenced off (admin API). `duringSigning`: it was disabled after its request was admitted. */
export class ClientDisabledError extends ServiceError {
  constructor(
    readonly clientId: string,
    readonly duringSigning = false,
  ) {
    super(
      "CLIENT_DISABLED",
      duringSigning ? `client ${clientId} was disabled while its request was being signed` : `client ${clientId} is disabled`,
      EXIT_CODES.refused,
    );
  }
}

/** The request would wait longer than the limit for its signature (admission.ts); retry after `retryAfterSeconds`. */
export class OverloadedError extends ServiceError {
  constructor(
    readonly expectedWaitMs: number,
    readonly maxWaitMs: number,
    readonly retryAfterSeconds: number,
  ) {
    super("OVERLOADED", `the signer is overloaded: this request would wait about ${expectedWaitMs} ms for its signature (limit ${maxWaitMs} ms)`);
  }
}

/** A block slot or attestation epoch implausibly far ahead of the wall clock (wall-clock-guard.ts): unsafe to record. */
export class TooFarAheadError extends ServiceError {
  constructor(
    override readonly code: "SLOT_TOO_FAR_AHEAD" | "EPOCH_TOO_FAR_AHEAD",
    /** The slot (SLOT_TOO_FAR_AHEAD) or epoch (EPOCH_TOO_FAR_AHEAD) asked for. */
    readonly requested: bigint,
    /** The latest slot or epoch allowed now. */
    readonly latest: bigint,
    message: string,
  ) {
    super(code, message, EXIT_CODES.refused);
  }
}

/** Two clients in the signer's config share one bearer token. */
export class SharedClientTokenError extends ServiceError {
  constructor(readonly clientId: string) {
    super("INVALID_CONFIG", `client ${clientId} shares its token with another client`);
  }
}

/** Codes of the signer's start-up (its config file and the embedded default's token store). */
export type SignerSetupErrorCode = "CONFIG_NOT_FOUND" | "SOFTHSM_MISSING" | "EMBEDDED_STATE";

/** The signer cannot start: a config file missing, SoftHSM2 not installed, an embedded token store in an unknown state. */
export class SignerSetupError extends VigilError<SignerSetupErrorCode> {}
