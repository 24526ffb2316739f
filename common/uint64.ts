/**
 * Unsigned 64-bit integers as the Ethereum APIs write them (decimal strings), with the bound explicit at
 * every call: protocol values (slots, epochs in a signing request) may be anything up to 2^64-1, but a value
 * stored in SQLite must fit its signed INTEGER, so the slashing database stops at 2^63-1 rather than wrap.
 * Callers turn a failure into their own typed error naming the field.
 */

/** The largest uint64 (slots, epochs, gwei amounts on the wire). */
export const MAX_UINT64 = (1n << 64n) - 1n;
/** The largest value a SQLite INTEGER holds (it is signed). */
export const MAX_SQLITE_INTEGER = (1n << 63n) - 1n;

export type Uint64Parse = { ok: true; value: bigint } | { ok: false; problem: "NOT_DECIMAL" | "NEGATIVE" | "TOO_LARGE" };

/** No leading zeros: the form the slashing database and EIP-3076 interchange files use. */
const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;
/** Leading zeros allowed, at most 20 digits: what the signing-request schema accepts. */
const PADDED_DECIMAL = /^[0-9]{1,20}$/;

/**
 * Parses `value` as an unsigned integer no larger than `max` (MAX_UINT64 or MAX_SQLITE_INTEGER).
 * Strings must be decimal (`form` says whether leading zeros are allowed); bigints and safe-integer numbers
 * are accepted as they are, so callers inside the process need not stringify.
 */
export function parseUint(value: unknown, max: bigint, form: "canonical" | "zero-padded" = "canonical"): Uint64Parse {
  let parsed: bigint;
  if (typeof value === "bigint") parsed = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) parsed = BigInt(value);
  else if (typeof value === "string" && (form === "canonical" ? CANONICAL_DECIMAL : PADDED_DECIMAL).test(value)) parsed = BigInt(value);
  else return { ok: false, problem: "NOT_DECIMAL" };
  if (parsed < 0n) return { ok: false, problem: "NEGATIVE" };
  if (parsed > max) return { ok: false, problem: "TOO_LARGE" };
  return { ok: true, value: parsed };
}
