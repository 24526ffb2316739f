import { MAX_SQLITE_INTEGER, parseUint } from "../common/index.js";
import { SlashingDbInputError } from "./errors.js";

/**
 * Conversions between the API's values (0x-hex strings, decimal uint64s) and what SQLite stores
 * (BLOBs, 64-bit integers). SQLite integers are signed, so uint64 values above 2^63-1 are refused
 * rather than silently wrapped — no real slot or epoch comes near that.
 */

export const MAX_STORABLE_UINT = MAX_SQLITE_INTEGER;

/** A uint64 the database can store (at most 2^63-1), as a decimal string without leading zeros, bigint or number. */
export function parseUint64(value: unknown, field: string): bigint {
  const parsed = parseUint(value, MAX_STORABLE_UINT);
  if (parsed.ok) return parsed.value;
  if (parsed.problem === "NEGATIVE") throw new SlashingDbInputError(field, "must not be negative");
  if (parsed.problem === "TOO_LARGE") throw new SlashingDbInputError(field, `exceeds the largest storable value ${MAX_STORABLE_UINT}`);
  throw new SlashingDbInputError(field, `expected an unsigned integer (decimal string), got ${describe(value)}`);
}

export function parsePubkey(value: unknown, field = "pubkey"): Buffer {
  return parseHexBytes(value, 48, field);
}

/**
 * A signing root; absent means "unknown", which never matches anything (EIP-3076). Any given value, the
 * all-zero root included, is compared byte for byte, as the interchange suite's complete-strategy cases expect.
 */
export function parseSigningRoot(value: unknown, field = "signing_root"): Buffer | null {
  if (value === undefined || value === null) return null;
  return parseHexBytes(value, 32, field);
}

export function parseHexBytes(value: unknown, length: number, field: string): Buffer {
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]*$/.test(value)) {
    throw new SlashingDbInputError(field, `expected a 0x-prefixed hex string, got ${describe(value)}`);
  }
  if (value.length !== 2 + length * 2) {
    throw new SlashingDbInputError(field, `expected ${length} bytes, got ${(value.length - 2) / 2}`);
  }
  return Buffer.from(value.slice(2), "hex");
}

/** Bytes that arrived as bytes (a worker message, a driver row): only their length is checked. No copy. */
export function checkBytes(value: Uint8Array, length: number, field: string): Buffer {
  if (!(value instanceof Uint8Array)) throw new SlashingDbInputError(field, `expected bytes, got ${describe(value)}`);
  if (value.byteLength !== length) throw new SlashingDbInputError(field, `expected ${length} bytes, got ${value.byteLength}`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Two roots are the same signed message only if both are known and byte-equal. */
export function sameKnownRoot(a: Buffer | null, b: Buffer | null): boolean {
  return a !== null && b !== null && a.equals(b);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return value === undefined ? "nothing" : typeof value;
}
