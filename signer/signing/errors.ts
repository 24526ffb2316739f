import { EXIT_CODES, VigilError } from "../../config/index.js";

/**
 * Errors of the signing core. Codes are stable; the HTTP layer maps each class to its status in one table
 * (signer/server/errors.ts).
 */

/** The request body is malformed. `field` is the dotted path of the offending field ("" = the body). */
export class InvalidSignRequestError extends VigilError {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super("INVALID_REQUEST", field ? `invalid ${field}: ${detail}` : `invalid request: ${detail}`, EXIT_CODES.invalidInput);
  }
}

/** The client sent a signingRoot that differs from the one computed from the body: never sign it. */
export class SigningRootMismatchError extends VigilError {
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
export class UnknownForkVersionError extends VigilError {
  constructor(message: string) {
    super("UNKNOWN_FORK_VERSION", message, EXIT_CODES.invalidInput);
  }
}

/** The signing queue is at its limit: the client should retry later. */
export class QueueFullError extends VigilError {
  constructor(readonly maxQueueDepth: number) {
    super("QUEUE_FULL", `signing queue is full (${maxQueueDepth} requests waiting)`, EXIT_CODES.failed);
  }
}

/** The client's connection closed before its request was signed: nobody would receive the signature, so none is made. */
export class ClientGoneError extends VigilError {
  constructor() {
    super("CLIENT_GONE", "the client closed its connection before the request was signed", EXIT_CODES.failed);
  }
}

export class UnknownPubkeyError extends VigilError {
  constructor(readonly pubkey: string) {
    super("UNKNOWN_PUBKEY", `no key loaded for public key ${pubkey}`, EXIT_CODES.notFound);
  }
}
