/**
 * The standard interop (mock-start) validator keys:
 * sk_i = int.from_bytes(sha256(i as 32-byte little-endian), "little") mod r, serialized 32-byte big-endian.
 */
import { createHash } from "node:crypto";

/** BLS12-381 subgroup order r. */
const CURVE_ORDER = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001n;

export function interopSecretKey(index: number): Uint8Array {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setBigUint64(0, BigInt(index), true); // 32-byte little-endian (high bytes zero)
  const digest = createHash("sha256").update(seed).digest();
  let n = 0n;
  for (let i = digest.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(digest[i]!); // little-endian int
  n %= CURVE_ORDER;
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

export function interopSecretKeys(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => interopSecretKey(i));
}
