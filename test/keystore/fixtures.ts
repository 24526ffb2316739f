// Shared fixtures for key-store tests: cheap EIP-2335 keystores and a ready token.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import bls from "@chainsafe/bls";
import { create } from "@chainsafe/bls-keystore";
import { initToken } from "../../signer/keystore/hsm-admin.js";
import { createToken, type TestToken } from "../helpers/softhsm.js";

export interface TestKey {
  secret: Uint8Array;
  pubkey: string; // lower-case 0x
}

export function randomKey(): TestKey {
  const sk = bls.SecretKey.fromKeygen(crypto.randomBytes(32));
  return { secret: sk.toBytes(), pubkey: `0x${Buffer.from(sk.toPublicKey().toBytes()).toString("hex")}` };
}

/** Test-speed KDF parameters (real keystores use c = n = 2^18). */
export const CHEAP_PBKDF2 = () => ({
  function: "pbkdf2" as const,
  params: { dklen: 32, c: 2, prf: "hmac-sha256" as const, salt: crypto.randomBytes(32).toString("hex") },
});
export const CHEAP_SCRYPT = () => ({ function: "scrypt" as const, params: { dklen: 32, n: 16, r: 8, p: 1, salt: crypto.randomBytes(32).toString("hex") } });

/**
 * Writes keystores for `keys` into `dir` as keystore-<i>.json. With `perFilePasswords` each gets its own
 * keystore-<i>.txt password beside it; otherwise all share `password`.
 */
export async function writeKeystores(
  dir: string,
  keys: TestKey[],
  opts: { password?: string; perFilePasswords?: boolean; kdf?: "pbkdf2" | "scrypt" } = {},
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await Promise.all(
    keys.map(async (k, i) => {
      const password = opts.perFilePasswords ? `pw-${i}-${crypto.randomBytes(4).toString("hex")}` : (opts.password ?? "test password");
      const kdf = opts.kdf === "scrypt" ? CHEAP_SCRYPT() : CHEAP_PBKDF2();
      const ks = await create(password, k.secret, Buffer.from(k.pubkey.slice(2), "hex"), `m/12381/3600/${i}/0/0`, "", kdf);
      fs.writeFileSync(path.join(dir, `keystore-${i}.json`), JSON.stringify(ks));
      if (opts.perFilePasswords) fs.writeFileSync(path.join(dir, `keystore-${i}.txt`), `${password}\n`);
    }),
  );
}

/** A fresh token with the wrapping key already created. */
export function readyToken(label: string): TestToken {
  const token = createToken(label);
  initToken(token.config);
  return token;
}

/** Every representation of a secret we look for on disk. */
export function secretNeedles(secret: Uint8Array): Buffer[] {
  const hex = Buffer.from(secret).toString("hex");
  return [Buffer.from(secret), Buffer.from(hex), Buffer.from(hex.toUpperCase()), Buffer.from(Buffer.from(secret).toString("base64"))];
}
