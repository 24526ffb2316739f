/**
 * Creates a token through PKCS#11 itself: C_InitToken on a free slot (sets the SO PIN and the label), then,
 * logged in as the security officer, C_InitPIN (sets the user PIN). Everything happens inside this process,
 * so neither PIN is ever on a command line or in a child's environment, where every local user could read it
 * (softhsm2-util's PIN flags did exactly that).
 */
import { EXIT_CODES } from "../../common/index.js";
import { HsmError, HsmTokenNotFoundError, KeyStoreError } from "./errors.js";
import { acquireModule, findSlot, hsmError, P, type Handle, type Pkcs11, type Pkcs11Factory, releaseModule } from "./pkcs11-session.js";

/** PKCS#11 labels are exactly 32 bytes, blank-padded. */
const LABEL_BYTES = 32;

export interface CreateTokenOptions {
  module: string;
  label: string;
  /** The user PIN, which the signer logs in with. */
  pin: string;
  /** The security officer PIN (unblocks and resets the user PIN). */
  soPin: string;
  factory?: Pkcs11Factory;
}

export class TokenExistsError extends KeyStoreError {
  constructor(label: string) {
    super("HSM_TOKEN_EXISTS", `a token labelled ${JSON.stringify(label)} already exists; choose another label or remove that token`, EXIT_CODES.conflict);
  }
}

/** Initialises a free slot as token `label` with both PINs set; refuses if a token already has that label. */
export function createToken(opts: CreateTokenOptions): void {
  const labelBytes = Buffer.byteLength(opts.label, "utf8");
  if (labelBytes === 0 || labelBytes > LABEL_BYTES || opts.label !== opts.label.trim()) {
    throw new KeyStoreError(
      "INVALID_TOKEN_LABEL",
      `token label ${JSON.stringify(opts.label)} must be 1 to ${LABEL_BYTES} bytes without surrounding spaces`,
      EXIT_CODES.invalidInput,
    );
  }
  for (const [name, value] of [
    ["user PIN", opts.pin],
    ["SO PIN", opts.soPin],
  ] as const) {
    if (value.length === 0) throw new KeyStoreError("INVALID_PIN", `the ${name} is empty`, EXIT_CODES.invalidInput);
  }
  const pkcs11 = acquireModule(opts.module, opts.factory ?? (() => new P.PKCS11()));
  try {
    if (tokenLabelled(pkcs11, opts.label)) throw new TokenExistsError(opts.label);
    const free = freeSlot(pkcs11);
    try {
      // pkcs11js hands the label buffer straight to the module, which reads exactly 32 bytes.
      pkcs11.C_InitToken(free, opts.soPin, opts.label + " ".repeat(LABEL_BYTES - labelBytes));
    } catch (err) {
      throw hsmError(`initialising token ${JSON.stringify(opts.label)}`, err);
    }
    // SoftHSM2 gives the new token another slot id (and adds a fresh free slot): find it again by label.
    setUserPin(pkcs11, findSlot(pkcs11, opts.label), opts.label, opts.soPin, opts.pin);
  } finally {
    releaseModule(opts.module);
  }
}

function tokenLabelled(pkcs11: Pkcs11, label: string): boolean {
  try {
    findSlot(pkcs11, label);
    return true;
  } catch (err) {
    if (err instanceof HsmTokenNotFoundError) return false;
    throw err;
  }
}

function freeSlot(pkcs11: Pkcs11): Handle {
  let slots: Handle[];
  try {
    slots = pkcs11.C_GetSlotList(true);
  } catch (err) {
    throw hsmError("listing slots", err);
  }
  for (const slot of slots) {
    try {
      if ((pkcs11.C_GetTokenInfo(slot).flags & P.CKF_TOKEN_INITIALIZED) === 0) return slot;
    } catch {
      // a slot that went away between the two calls
    }
  }
  throw new HsmError("the PKCS#11 module has no free slot for a new token");
}

function setUserPin(pkcs11: Pkcs11, slot: Handle, label: string, soPin: string, pin: string): void {
  let session: Handle;
  try {
    session = pkcs11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  } catch (err) {
    throw hsmError(`opening a session on token ${JSON.stringify(label)}`, err);
  }
  try {
    try {
      pkcs11.C_Login(session, P.CKU_SO, soPin);
    } catch (err) {
      throw hsmError(`security officer login to token ${JSON.stringify(label)}`, err);
    }
    try {
      pkcs11.C_InitPIN(session, pin);
    } catch (err) {
      throw hsmError(`setting the user PIN of token ${JSON.stringify(label)}`, err);
    } finally {
      try {
        pkcs11.C_Logout(session);
      } catch {
        // closing the session below ends the login anyway
      }
    }
  } finally {
    try {
      pkcs11.C_CloseSession(session);
    } catch {
      // best effort
    }
  }
}
