import { EXIT_CODES, VigilError } from "../../config/index.js";

// Typed key-store errors. Messages never contain key material, PINs or passwords: they name the token,
// the module path, the public key or the file, and say what to do next.

export class HsmModuleError extends VigilError {
  constructor(message: string) {
    super("hsm_module", message, EXIT_CODES.hsmModule);
  }
}

export class HsmTokenNotFoundError extends VigilError {
  constructor(
    readonly tokenLabel: string,
    readonly labelsPresent: string[],
  ) {
    const present = labelsPresent.length > 0 ? labelsPresent.map((l) => JSON.stringify(l)).join(", ") : "none";
    super("hsm_token_not_found", `no token labelled ${JSON.stringify(tokenLabel)}; tokens present: ${present}`, EXIT_CODES.hsmTokenNotFound);
  }
}

export class HsmWrongPinError extends VigilError {
  constructor(tokenLabel: string) {
    super("hsm_wrong_pin", `wrong PIN for token ${JSON.stringify(tokenLabel)}`, EXIT_CODES.hsmWrongPin);
  }
}

export class HsmPinLockedError extends VigilError {
  constructor(tokenLabel: string) {
    super(
      "hsm_pin_locked",
      `the user PIN of token ${JSON.stringify(tokenLabel)} is locked; unlock it with the security officer PIN before retrying`,
      EXIT_CODES.hsmPinLocked,
    );
  }
}

export class HsmWrappingKeyMissingError extends VigilError {
  constructor(tokenLabel: string, keyLabel: string) {
    super(
      "hsm_wrapping_key_missing",
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

export class HsmRecordTamperedError extends VigilError {
  constructor(readonly refused: RefusedRecord[]) {
    const shown = refused.slice(0, 5).map((r) => `${r.label} (${r.reason})`);
    const more = refused.length > 5 ? ` and ${refused.length - 5} more` : "";
    super("hsm_record_tampered", `refused ${refused.length} key record(s): ${shown.join("; ")}${more}`, EXIT_CODES.hsmRecordTampered);
  }
}

export class PinSourceError extends VigilError {
  constructor(message: string) {
    super("pin_source_insecure", message, EXIT_CODES.pinSourceInsecure);
  }
}

/** Any other PKCS#11 failure: names the function and the CKR_* code, nothing else. */
export class HsmError extends VigilError {
  constructor(message: string) {
    super("hsm_error", message, EXIT_CODES.failed);
  }
}

export class KeyConflictError extends VigilError {
  constructor(message: string) {
    super("key_conflict", message, EXIT_CODES.conflict);
  }
}

export class KeyNotFoundError extends VigilError {
  constructor(message: string) {
    super("key_not_found", message, EXIT_CODES.notFound);
  }
}

export class InvalidKeystoreError extends VigilError {
  constructor(message: string) {
    super("invalid_keystore", message, EXIT_CODES.invalidInput);
  }
}

export class KeystoreConfigError extends VigilError {
  constructor(message: string) {
    super("invalid_config", message, EXIT_CODES.invalidInput);
  }
}
