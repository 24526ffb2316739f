/**
 * A public key as the HTTP APIs take it: 48 bytes of hex, with or without `0x` (Web3Signer adds it), any letter case.
 * Every route keys its lookups by the canonical form: `0x` and lower case.
 */
import { normalizeHex } from "../../common/index.js";

export const PUBKEY_PARAM = /^(0x)?[0-9a-fA-F]{96}$/;

/** The canonical form of a value PUBKEY_PARAM accepted. */
export function canonicalPubkey(value: string): string {
  return normalizeHex(value.startsWith("0x") ? value : `0x${value}`);
}
