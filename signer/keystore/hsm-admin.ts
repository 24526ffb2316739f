import crypto from "node:crypto";
import type { HsmConfig } from "./config.js";
import { ensureWrappingKey, findKeyRecords, findWrappingKey, openRecord, sealSecret, WRAPPING_KEY_LABEL } from "./envelope.js";
import { HsmError } from "./errors.js";
import { readPin } from "./pin.js";
import { mechanismNames, P, type Pkcs11Factory, TokenSession } from "./pkcs11-session.js";

/** Mechanisms the envelope scheme needs. */
export const REQUIRED_MECHANISMS = ["CKM_AES_KEY_GEN", "CKM_AES_GCM"] as const;

export interface InitResult {
  created: boolean;
  tokenLabel: string;
}

function open(config: HsmConfig, factory?: Pkcs11Factory): TokenSession {
  return TokenSession.open({ module: config.module, tokenLabel: config.tokenLabel, readWrite: true, factory }, () => readPin(config.pin));
}

/**
 * Creates the wrapping key if the token has none (idempotent; an existing key is never replaced), then
 * round-trips a throw-away record to prove AES-GCM works on this token before any real key depends on it.
 */
export function initToken(config: HsmConfig, factory?: Pkcs11Factory): InitResult {
  const ts = open(config, factory);
  try {
    const mechanisms = mechanismNames(ts.pkcs11, ts.slot);
    const missing = REQUIRED_MECHANISMS.filter((m) => !mechanisms.includes(m));
    if (missing.length > 0) throw new HsmError(`token ${JSON.stringify(ts.tokenLabel)} lacks ${missing.join(", ")}, which Vigil needs`);
    const { created } = ensureWrappingKey(ts);
    selfTest(ts);
    return { created, tokenLabel: ts.tokenLabel };
  } finally {
    ts.close();
  }
}

function selfTest(ts: TokenSession): void {
  const key = findWrappingKey(ts);
  if (!key) throw new HsmError("wrapping key vanished after creation");
  const pubkey = crypto.randomBytes(48);
  const secret = crypto.randomBytes(32);
  const record = sealSecret(ts.pkcs11, ts.session, key, pubkey, secret);
  const back = openRecord(ts.pkcs11, ts.session, key, pubkey, record);
  const ok = back.equals(secret);
  back.fill(0);
  secret.fill(0);
  if (!ok) throw new HsmError("AES-GCM self-test failed: the token returned different plaintext");
}

export interface TokenStatus {
  module: { path: string; library: string; manufacturer: string; libraryVersion: string; cryptokiVersion: string };
  token: { label: string; manufacturer: string; model: string; serial: string; pinState: string };
  mechanisms: string[];
  requiredMechanisms: Record<string, boolean>;
  /** `warnings` flags a key someone created by hand with weaker attributes than `hsm init` uses. */
  wrappingKey: { label: string; present: boolean; warnings: string[] };
  keyCount: number;
}

function pinState(flags: number): string {
  if (flags & P.CKF_USER_PIN_LOCKED) return "locked";
  if (flags & P.CKF_USER_PIN_FINAL_TRY) return "final try left";
  if (flags & P.CKF_USER_PIN_COUNT_LOW) return "wrong PIN entered recently";
  if (flags & P.CKF_USER_PIN_TO_BE_CHANGED) return "must be changed";
  return "ok";
}

const version = (v: { major: number; minor: number }): string => `${v.major}.${v.minor}`;
const trim = (s: string): string => s.replace(/[\s\0]+$/, "");

function wrappingKeyStatus(ts: TokenSession): TokenStatus["wrappingKey"] {
  const key = findWrappingKey(ts);
  if (!key) return { label: WRAPPING_KEY_LABEL, present: false, warnings: [] };
  const warnings: string[] = [];
  const flag = (type: number): boolean | undefined => {
    try {
      const [a] = ts.pkcs11.C_GetAttributeValue(ts.session, key, [{ type }]);
      return a ? a.value.length > 0 && a.value[0] !== 0 : undefined;
    } catch {
      return undefined;
    }
  };
  if (flag(P.CKA_EXTRACTABLE) !== false) warnings.push("key is extractable");
  if (flag(P.CKA_SENSITIVE) !== true) warnings.push("key is not sensitive");
  if (flag(P.CKA_TOKEN) !== true) warnings.push("key is not a token object");
  return { label: WRAPPING_KEY_LABEL, present: true, warnings };
}

export function tokenStatus(config: HsmConfig, factory?: Pkcs11Factory): TokenStatus {
  const ts = open(config, factory);
  try {
    const { pkcs11, session } = ts;
    const info = pkcs11.C_GetInfo();
    const token = ts.tokenInfo();
    const mechanisms = mechanismNames(pkcs11, ts.slot).sort();
    const keyCount = findKeyRecords(pkcs11, session, "counting key records").length;
    return {
      module: {
        path: config.module,
        library: trim(info.libraryDescription),
        manufacturer: trim(info.manufacturerID),
        libraryVersion: version(info.libraryVersion),
        cryptokiVersion: version(info.cryptokiVersion),
      },
      token: {
        label: ts.tokenLabel,
        manufacturer: trim(token.manufacturerID),
        model: trim(token.model),
        serial: trim(token.serialNumber),
        pinState: pinState(token.flags),
      },
      mechanisms,
      requiredMechanisms: Object.fromEntries(REQUIRED_MECHANISMS.map((m) => [m, mechanisms.includes(m)])),
      wrappingKey: wrappingKeyStatus(ts),
      keyCount,
    };
  } finally {
    ts.close();
  }
}
