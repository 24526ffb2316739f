/** Hex helpers for the 0x-prefixed strings used across the Ethereum APIs. */

const HEX_BODY = /^[0-9a-fA-F]*$/;

/** True if `value` is a 0x-prefixed hex string of exactly `bytes` bytes (any letter case). */
export function isHexOfLength(value: unknown, bytes: number): value is string {
  return typeof value === "string" && value.length === 2 + 2 * bytes && value.startsWith("0x") && HEX_BODY.test(value.slice(2));
}

/** Lower-cases a 0x-prefixed hex string so that keys compare equal whatever case they arrived in. */
export function normalizeHex(value: string): string {
  return value.toLowerCase();
}

export function hexToBytes(value: string): Uint8Array {
  const body = value.startsWith("0x") ? value.slice(2) : value;
  if (body.length % 2 !== 0 || !HEX_BODY.test(body)) throw new Error("not a hex string");
  return Uint8Array.from(Buffer.from(body, "hex"));
}

export function bytesToHex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}
