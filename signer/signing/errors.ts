import { EXIT_CODES, VigilError } from "../../common/index.js";

/**
 * Errors of the signing core. Codes are stable; the HTTP layer maps each class to its status in one table
 * (signer/server/errors.ts).
 */

/** Every code the signing core raises. */
export type SigningErrorCode =
  | "INVALID_REQUEST"
  | "SIGNING_ROOT_MISMATCH"
  | "UNKNOWN_FORK_VERSION"
  | "UNKNOWN_PUBKEY"
  | "QUEUE_FULL"
  | "CLIENT_GONE"
  | "PRESET_CONFLICT"
  | "CONSENSUS_NOT_LOADED"
  | "INVALID_CONFIG" // BLS pool options
  | "INVALID_SECRET_KEY"
  | "SIGN_FAILED"
  | "POOL_CLOSED"
  | "BLS_POOL_DOWN"
  | "BLS_IMPLEMENTATION"
  | "BLS_WORKER_MISSING"
  | "BLS_WORKER_START"
  | "BLS_WORKER_DIED"
  | "BLS_WORKER_DISAGREE";

/** The base of the signing core's errors: only a SigningErrorCode can be raised. */
export class SigningError extends VigilError<SigningErrorCode> {}

/** The request body is malformed. `field` is the dotted path of the offending field ("" = the body). */
export class InvalidSignRequestError extends SigningError {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super("INVALID_REQUEST", field ? `invalid ${field}: ${detail}` : `invalid request: ${detail}`, EXIT_CODES.invalidInput);
  }
}

/** The client sent a signingRoot that differs from the one computed from the body: never sign it. */
export class SigningRootMismatchError extends SigningError {
  constructor(
    readonly clientSigningRoot: string,
    readonly computedSigningRoot: string,
  ) {
    super(
      "SIGNING_ROOT_MISMATCH",
      `signingRoot ${clientSigningRoot} sent by the client does not match ${computedSigningRoot} computed from the body`,
      EXIT_CODES.invalidInput,
    );
  }
}

/** fork_info names a fork version the network config does not know, and the rule needs to know it. */
export class UnknownForkVersionError extends SigningError {
  constructor(message: string) {
    super("UNKNOWN_FORK_VERSION", message, EXIT_CODES.invalidInput);
  }
}

/** The signing queue is at its limit: the client should retry later. */
export class QueueFullError extends SigningError {
  constructor(readonly maxQueueDepth: number) {
    super("QUEUE_FULL", `signing queue is full (${maxQueueDepth} requests waiting)`, EXIT_CODES.failed);
  }
}

/** The client's connection closed before its request was signed: nobody would receive the signature, so none is made. */
export class ClientGoneError extends SigningError {
  constructor() {
    super("CLIENT_GONE", "the client closed its connection before the request was signed", EXIT_CODES.failed);
  }
}

export class UnknownPubkeyError extends SigningError {
  constructor(readonly pubkey: string) {
    super("UNKNOWN_PUBKEY", `no key loaded for public key ${pubkey}`, EXIT_CODES.notFound);
  }
}
