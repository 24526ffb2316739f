import type { GcmParams, Mechanism } from "pkcs11js";
import { HsmError, HsmWrappingKeyMissingError } from "./errors.js";
import { ckrName, hsmError, P, type Handle, type Pkcs11, type TokenSession } from "./pkcs11-session.js";

/**
 * Envelope encryption of BLS secret keys under an AES-256 key that never leaves the token.
 *
 * Record (CKA_VALUE of a CKO_DATA object, CKA_APPLICATION "vigil", CKA_LABEL = 0x pubkey):
 *   version (1 byte, = 1) || IV (12 bytes, from the token's RNG) || AES-GCM ciphertext (32) || tag (16)
 * AAD = version || 48-byte public key, so a record moved to another label, or re-labelled with an
 * older format, fails authentication instead of loading under the wrong identity.
 */
export const RECORD_VERSION = 1;
export const WRAPPING_KEY_LABEL = "vigil-wrapping-key-v1";
export const APPLICATION = "vigil";
export const IV_LENGTH = 12;
export const TAG_LENGTH = 16;
export const SECRET_KEY_LENGTH = 32;
export const PUBKEY_LENGTH = 48;
export const RECORD_LENGTH = 1 + IV_LENGTH + SECRET_KEY_LENGTH + TAG_LENGTH;

/** A record that cannot be opened; `reason` is safe to show (no key material). */
export class RecordError extends Error {}

function aad(pubkey: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([RECORD_VERSION]), pubkey]);
}

function gcm(iv: Buffer, pubkey: Uint8Array): Mechanism {
  // CK_GCM_PARAMS with ulIvBits (PKCS#11 2.40 errata / 3.0 layout), which SoftHSM2 and current HSMs take.
  const parameter: GcmParams = { type: P.CK_PARAMS_GCM, iv, ivBits: IV_LENGTH * 8, aad: aad(pubkey), tagBits: TAG_LENGTH * 8 };
  return { mechanism: P.CKM_AES_GCM, parameter };
}

/** The wrapping key's handle, or undefined. More than one key with the label is an error. */
export function findWrappingKey(ts: TokenSession): Handle | undefined {
  const { pkcs11, session } = ts;
  let found: Handle[];
  try {
    pkcs11.C_FindObjectsInit(session, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_LABEL, value: WRAPPING_KEY_LABEL },
    ]);
    try {
      found = pkcs11.C_FindObjects(session, 2);
    } finally {
      pkcs11.C_FindObjectsFinal(session);
    }
  } catch (err) {
    throw hsmError("searching for the wrapping key", err);
  }
  if (found.length > 1) throw new HsmError(`token ${JSON.stringify(ts.tokenLabel)} has several keys labelled ${WRAPPING_KEY_LABEL}; remove the extra one`);
  return found[0];
}

export function requireWrappingKey(ts: TokenSession): Handle {
  const key = findWrappingKey(ts);
  if (!key) throw new HsmWrappingKeyMissingError(ts.tokenLabel, WRAPPING_KEY_LABEL);
  return key;
}

/**
 * Every key record on the token (CKO_DATA objects of application "vigil"), in one enumeration: SoftHSM2's
 * searches are linear scans, so callers enumerate once and keep the handles. `operation` names the step in
 * the error if the token fails.
 */
export function findKeyRecords(pkcs11: Pkcs11, session: Handle, operation = "enumerating key records"): Handle[] {
  const handles: Handle[] = [];
  try {
    pkcs11.C_FindObjectsInit(session, [
      { type: P.CKA_CLASS, value: P.CKO_DATA },
      { type: P.CKA_APPLICATION, value: APPLICATION },
    ]);
    try {
      for (;;) {
        const batch = pkcs11.C_FindObjects(session, 1024);
        if (batch.length === 0) break;
        handles.push(...batch);
      }
    } finally {
      pkcs11.C_FindObjectsFinal(session);
    }
  } catch (err) {
    throw hsmError(operation, err);
  }
  return handles;
}

/** Creates the wrapping key unless one exists; never replaces an existing key (that would orphan every record). */
export function ensureWrappingKey(ts: TokenSession): { created: boolean } {
  if (findWrappingKey(ts)) return { created: false };
  try {
    ts.pkcs11.C_GenerateKey(ts.session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true },
      { type: P.CKA_WRAP, value: false },
      { type: P.CKA_UNWRAP, value: false },
      { type: P.CKA_MODIFIABLE, value: false },
      { type: P.CKA_LABEL, value: WRAPPING_KEY_LABEL },
    ]);
  } catch (err) {
    throw hsmError("creating the wrapping key", err);
  }
  return { created: true };
}

/** Encrypts a 32-byte secret key for `pubkey`. The IV comes from the token's RNG. */
export function sealSecret(pkcs11: Pkcs11, session: Handle, key: Handle, pubkey: Uint8Array, secret: Uint8Array): Buffer {
  if (secret.length !== SECRET_KEY_LENGTH || pubkey.length !== PUBKEY_LENGTH) throw new Error("bad key lengths");
  const out = Buffer.alloc(SECRET_KEY_LENGTH + TAG_LENGTH + 16);
  const plain = Buffer.from(secret); // pkcs11js wants a Buffer; zeroed below
  try {
    const iv = pkcs11.C_GenerateRandom(session, Buffer.alloc(IV_LENGTH));
    pkcs11.C_EncryptInit(session, gcm(iv, pubkey), key);
    const ct = pkcs11.C_Encrypt(session, plain, out);
    if (ct.length !== SECRET_KEY_LENGTH + TAG_LENGTH) throw new HsmError(`AES-GCM returned ${ct.length} bytes, expected ${SECRET_KEY_LENGTH + TAG_LENGTH}`);
    return Buffer.concat([Buffer.from([RECORD_VERSION]), iv, ct]);
  } catch (err) {
    if (err instanceof HsmError) throw err;
    throw hsmError("encrypting a key record", err);
  } finally {
    plain.fill(0);
    out.fill(0);
  }
}

function parseRecord(record: Uint8Array): { iv: Buffer; ct: Buffer } {
  if (record.length < 1) throw new RecordError("empty record");
  if (record[0] !== RECORD_VERSION) throw new RecordError(`unknown record version ${record[0]}`);
  if (record.length !== RECORD_LENGTH) throw new RecordError(`record is ${record.length} bytes, expected ${RECORD_LENGTH}`);
  const buf = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  return { iv: buf.subarray(1, 1 + IV_LENGTH), ct: buf.subarray(1 + IV_LENGTH) };
}

/**
 * Decrypts a record for `pubkey`. Returns a buffer holding the 32-byte secret key: THE CALLER ZEROES IT.
 * Any decryption failure is reported as a RecordError (authentication failed); GCM gives no other signal.
 */
export function openRecord(pkcs11: Pkcs11, session: Handle, key: Handle, pubkey: Uint8Array, record: Uint8Array): Buffer {
  const { iv, ct } = parseRecord(record);
  const out = Buffer.alloc(ct.length);
  let plain: Buffer;
  try {
    pkcs11.C_DecryptInit(session, gcm(iv, pubkey), key);
    plain = pkcs11.C_Decrypt(session, ct, out);
  } catch (err) {
    out.fill(0);
    throw new RecordError(`authentication failed (${ckrName(err)})`);
  }
  return checkPlain(out, plain);
}

/** Like openRecord, but the token does the work on a libuv thread so several sessions can run at once. */
export async function openRecordAsync(pkcs11: Pkcs11, session: Handle, key: Handle, pubkey: Uint8Array, record: Uint8Array): Promise<Buffer> {
  const { iv, ct } = parseRecord(record);
  const out = Buffer.alloc(ct.length);
  let plain: Buffer;
  try {
    pkcs11.C_DecryptInit(session, gcm(iv, pubkey), key);
    plain = await pkcs11.C_DecryptAsync(session, ct, out);
  } catch (err) {
    out.fill(0);
    throw new RecordError(`authentication failed (${ckrName(err)})`);
  }
  return checkPlain(out, plain);
}

function checkPlain(out: Buffer, plain: Buffer): Buffer {
  if (plain.length !== SECRET_KEY_LENGTH) {
    out.fill(0);
    throw new RecordError(`decrypted ${plain.length} bytes, expected ${SECRET_KEY_LENGTH}`);
  }
  // `plain` is a view of `out`; zeroing either clears the secret.
  return plain;
}
