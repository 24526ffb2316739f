import { EXIT_CODES, VigilError } from "../../common/index.js";

// Typed key-store errors. Messages never contain key material, PINs or passwords: they name the token,
// the module path, the public key or the file, and say what to do next.

/** Every code the key store raises; shown to operators as `[CODE]` by the CLI. */
export type KeyStoreErrorCode =
  | "HSM_MODULE"
  | "HSM_TOKEN_NOT_FOUND"
  | "HSM_TOKEN_EXISTS"
  | "HSM_WRONG_PIN"
  | "HSM_PIN_LOCKED"
  | "HSM_WRAPPING_KEY_MISSING"
  | "HSM_RECORD_TAMPERED"
  | "HSM_ERROR"
  | "PIN_SOURCE_INSECURE"
  | "KEY_CONFLICT"
  | "KEY_NOT_FOUND"
  | "INVALID_KEYSTORE"
  | "INVALID_PUBKEY"
  | "INVALID_TOKEN_LABEL"
  | "INVALID_PIN"
  | "INVALID_CONFIG";

/** The base of the key store's errors: only a KeyStoreErrorCode can be raised. */
export class KeyStoreError extends VigilError<KeyStoreErrorCode> {}

export class HsmModuleError extends KeyStoreError {
  constructor(message: string) {
    super("HSM_MODULE", message, EXIT_CODES.hsmModule);
  }
}

export class HsmTokenNotFoundError extends KeyStoreError {
  constructor(
    readonly tokenLabel: string,
    readonly labelsPresent: string[],
  ) {
    const present = labelsPresent.length > 0 ? labelsPresent.map((l) => JSON.stringify(l)).join(", ") : "none";
    super("HSM_TOKEN_NOT_FOUND", `no token labelled ${JSON.stringify(tokenLabel)}; tokens present: ${present}`, EXIT_CODES.hsmTokenNotFound);
  }
}

export class HsmWrongPinError extends KeyStoreError {
  constructor(tokenLabel: string) {
    super("HSM_WRONG_PIN", `wrong PIN for token ${JSON.stringify(tokenLabel)}`, EXIT_CODES.hsmWrongPin);
  }
}

export class HsmPinLockedError extends KeyStoreError {
  constructor(tokenLabel: string) {
    super(
      "HSM_PIN_LOCKED",
      `the user PIN of token ${JSON.stringify(tokenLabel)} is locked; unlock it with the security officer PIN before retrying`,
      EXIT_CODES.hsmPinLocked,
    );
  }
}

export class HsmWrappingKeyMissingError extends KeyStoreError {
  constructor(tokenLabel: string, keyLabel: string) {
    super(
      "HSM_WRAPPING_KEY_MISSING",
      `token ${JSON.stringify(tokenLabel)} has no wrapping key ${JSON.stringify(keyLabel)}; run \`vigil hsm init\``,
      EXIT_CODES.hsmWrappingKeyMissing,
    );
  }
}

/** One record that failed authentication or whose decrypted key does not match its label. */
export interface RefusedRecord {
  label: string;
  reason: string;
}

export class HsmRecordTamperedError extends KeyStoreError {
  constructor(readonly refused: RefusedRecord[]) {
    const shown = refused.slice(0, 5).map((r) => `${r.label} (${r.reason})`);
    const more = refused.length > 5 ? ` and ${refused.length - 5} more` : "";
    super("HSM_RECORD_TAMPERED", `refused ${refused.length} key record(s): ${shown.join("; ")}${more}`, EXIT_CODES.hsmRecordTampered);
  }
}

export class PinSourceError extends KeyStoreError {
  constructor(message: string) {
    super("PIN_SOURCE_INSECURE", message, EXIT_CODES.pinSourceInsecure);
  }
}

/** Any other PKCS#11 failure: names the function and the CKR_* code, nothing else. */
export class HsmError extends KeyStoreError {
  constructor(message: string) {
    super("HSM_ERROR", message, EXIT_CODES.failed);
  }
}

export class KeyConflictError extends KeyStoreError {
  constructor(message: string) {
    super("KEY_CONFLICT", message, EXIT_CODES.conflict);
  }
}

export class KeyNotFoundError extends KeyStoreError {
  constructor(message: string) {
    super("KEY_NOT_FOUND", message, EXIT_CODES.notFound);
  }
}

export class InvalidKeystoreError extends KeyStoreError {
  constructor(message: string) {
    super("INVALID_KEYSTORE", message, EXIT_CODES.invalidInput);
  }
}

export class KeystoreConfigError extends KeyStoreError {
  constructor(message: string) {
    super("INVALID_CONFIG", message, EXIT_CODES.invalidInput);
  }
}
