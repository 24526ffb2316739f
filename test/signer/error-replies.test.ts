// The one table from domain errors to HTTP replies (signer/server/errors.ts): statuses, outcomes, Retry-After and
// the exact bodies the signing service's refusals are answered with.
import { describe, expect, it } from "vitest";
import { errorReply } from "../../signer/server/errors.js";
import {
  ClientDisabledError,
  InvalidPubkeyIdentifierError,
  KeyNotAllowedError,
  OverloadedError,
  TooFarAheadError,
  TypeNotAllowedError,
  UnauthenticatedError,
} from "../../signer/server/service-errors.js";
import { ClientGoneError, QueueFullError, UnknownPubkeyError } from "../../signer/signing/index.js";

const PK = `0x${"a1".repeat(48)}`;

describe("domain errors become HTTP replies in one table", () => {
  it("admission refusals", () => {
    expect(errorReply(new InvalidPubkeyIdentifierError())).toEqual({
      status: 400,
      outcome: "invalid",
      body: { code: "INVALID_REQUEST", message: "identifier must be a 48-byte public key in hex (0x optional)", field: "identifier" },
      expected: true,
    });
    expect(errorReply(new UnauthenticatedError("no client"))).toEqual({
      status: 401,
      outcome: "not_allowed",
      body: { code: "UNAUTHENTICATED", message: "no client" },
      expected: true,
    });
    expect(errorReply(new KeyNotAllowedError("vc1", PK))).toEqual({
      status: 403,
      outcome: "not_allowed",
      body: { code: "KEY_NOT_ALLOWED", message: `client vc1 may not use key ${PK}` },
      expected: true,
    });
    expect(errorReply(new TypeNotAllowedError("vc1", "BLOCK_V2")).body).toEqual({
      code: "TYPE_NOT_ALLOWED",
      message: "client vc1 may not sign BLOCK_V2 (see allowedTypes in the signer's config)",
    });
    expect(errorReply(new ClientDisabledError("vc1")).body).toEqual({ code: "CLIENT_DISABLED", message: "client vc1 is disabled" });
    expect(errorReply(new ClientDisabledError("vc1", true))).toMatchObject({
      status: 403,
      body: { message: "client vc1 was disabled while its request was being signed" },
    });
    expect(errorReply(new UnknownPubkeyError(PK))).toEqual({
      status: 404,
      outcome: "unknown_key",
      body: { code: "UNKNOWN_PUBKEY", message: `no key loaded for public key ${PK}` },
      expected: true,
    });
  });

  it("load: 503 with Retry-After, counted as overloaded", () => {
    expect(errorReply(new QueueFullError(10))).toEqual({
      status: 503,
      outcome: "overloaded",
      body: { code: "QUEUE_FULL", message: "signing queue is full (10 requests waiting)" },
      retryAfter: 1,
      expected: true,
    });
    const overloaded = errorReply(new OverloadedError(1500, 20, 2));
    expect(overloaded).toMatchObject({ status: 503, outcome: "overloaded", retryAfter: 2, expected: true });
    expect(JSON.stringify(overloaded.body)).toBe(
      '{"code":"OVERLOADED","message":"the signer is overloaded: this request would wait about 1500 ms for its signature (limit 20 ms)","expectedWaitMs":1500,"maxWaitMs":20}',
    );
    expect(errorReply(new ClientGoneError())).toMatchObject({ status: 503, outcome: "overloaded", retryAfter: 1 });
  });

  it("the wall-clock guard's refusals are 412 with the code as reason, after the message", () => {
    const r = errorReply(new TooFarAheadError("SLOT_TOO_FAR_AHEAD", 999n, 23n, "block slot 999 is beyond slot 23"));
    expect(r).toMatchObject({ status: 412, outcome: "refused", expected: true });
    expect(JSON.stringify(r.body)).toBe('{"code":"SLOT_TOO_FAR_AHEAD","message":"block slot 999 is beyond slot 23","reason":"SLOT_TOO_FAR_AHEAD"}');
  });

  it("anything else is a 500 that names no detail", () => {
    expect(errorReply(new Error("secret detail"))).toEqual({
      status: 500,
      outcome: "error",
      body: { code: "INTERNAL", message: "internal error (see the signer's log)" },
      expected: false,
    });
  });
});
