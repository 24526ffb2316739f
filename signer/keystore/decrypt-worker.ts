// Worker thread for the CPU-heavy key work: EIP-2335 keystore decryption (scrypt/pbkdf2 by design take
// ~0.1-1 s each) and public-key derivation when checking records at load. Secrets arrive and leave
// by transfer, and every buffer this thread made is zeroed before it replies.
import { parentPort } from "node:worker_threads";
import bls from "@chainsafe/bls";
import { decrypt, isValidKeystore } from "@chainsafe/bls-keystore";

export type WorkerRequest = { kind: "keystore"; json: string; password: string } | { kind: "pubkeys"; secrets: Uint8Array[] };

export interface KeystoreReply {
  secret: Uint8Array;
  /** Lower-case 0x pubkey derived from the secret. */
  pubkey: string;
  /** Lower-case 0x pubkey the keystore declares ("" when absent). */
  declaredPubkey: string;
}

/** Per secret: the 48-byte public key, or null if the bytes are not a valid secret key. */
export type PubkeysReply = (Uint8Array | null)[];

async function decryptKeystore(json: string, password: string): Promise<{ value: KeystoreReply; transfer: ArrayBuffer[] }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error("not valid JSON");
  }
  if (!isValidKeystore(parsed)) throw new Error("not an EIP-2335 keystore");
  let raw: Uint8Array;
  try {
    raw = await decrypt(parsed, password);
  } catch {
    throw new Error("wrong password (checksum mismatch)");
  }
  // Copy into a buffer of our own: `raw` may be a view into Node's shared Buffer pool, which must not be transferred.
  const secret = new Uint8Array(32);
  try {
    if (raw.length !== 32) throw new Error(`decrypted secret is ${raw.length} bytes, expected 32`);
    secret.set(raw);
  } finally {
    raw.fill(0);
  }
  let pubkey: string;
  try {
    pubkey = `0x${Buffer.from(bls.SecretKey.fromBytes(secret).toPublicKey().toBytes()).toString("hex")}`;
  } catch {
    secret.fill(0);
    throw new Error("decrypted secret is not a valid BLS secret key");
  }
  const declaredPubkey = typeof parsed.pubkey === "string" && parsed.pubkey !== "" ? `0x${parsed.pubkey.replace(/^0x/i, "").toLowerCase()}` : "";
  return { value: { secret, pubkey, declaredPubkey }, transfer: [secret.buffer as ArrayBuffer] };
}

function derivePubkeys(secrets: Uint8Array[]): PubkeysReply {
  return secrets.map((s) => {
    try {
      return bls.SecretKey.fromBytes(s).toPublicKey().toBytes();
    } catch {
      return null;
    } finally {
      s.fill(0);
    }
  });
}

parentPort?.on("message", (req: WorkerRequest) => {
  void (async () => {
    try {
      if (req.kind === "keystore") {
        const { value, transfer } = await decryptKeystore(req.json, req.password);
        parentPort!.postMessage({ ok: true, value }, transfer);
      } else {
        parentPort!.postMessage({ ok: true, value: derivePubkeys(req.secrets) });
      }
    } catch (err) {
      parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : "failed" });
    }
  })();
});
