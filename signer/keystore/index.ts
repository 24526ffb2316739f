// Public surface of the key store. Other parts import only from here.
export type { KeyStore, KeyStoreHealth, LoadedKeys, LoadOptions, SignerHandle, KeyInfo, SecretKeyInput, ImportResult, DeleteResult } from "./types.js";
export {
  KeyStoreError,
  HsmModuleError,
  HsmTokenNotFoundError,
  HsmWrongPinError,
  HsmPinLockedError,
  HsmWrappingKeyMissingError,
  HsmRecordTamperedError,
  HsmError,
  PinSourceError,
  KeyConflictError,
  KeyNotFoundError,
  InvalidKeystoreError,
  KeystoreConfigError,
} from "./errors.js";
export type { RefusedRecord, KeyStoreErrorCode } from "./errors.js";
export { loadHsmConfig, parseHsmSection } from "./config.js";
export type { HsmConfig, HsmConfigOverrides } from "./config.js";
export { readPin, describePinSource } from "./pin.js";
export type { PinSource } from "./pin.js";
export { Pkcs11KeyStore, normalizePubkey, abbreviate } from "./pkcs11-keystore.js";
export { Progress } from "./progress.js";
export type { Pkcs11KeyStoreOptions } from "./pkcs11-keystore.js";
export { initToken, tokenStatus } from "./hsm-admin.js";
export { createToken, TokenExistsError } from "./token-create.js";
export type { CreateTokenOptions } from "./token-create.js";
export type { TokenStatus, InitResult } from "./hsm-admin.js";
export { discoverKeystores, decryptKeystores, decryptKeystoreContents, defaultImportWorkers } from "./keystore-import.js";
export type { KeystoreContent } from "./keystore-import.js";
export type { KeystoreSource } from "./keystore-import.js";

import type { HsmConfig } from "./config.js";
import { Pkcs11KeyStore, type Pkcs11KeyStoreOptions } from "./pkcs11-keystore.js";
import type { KeyStore } from "./types.js";

/** Opens the configured key store (today always the PKCS#11 envelope backend). */
export function openKeyStore(config: HsmConfig, options?: Pkcs11KeyStoreOptions): KeyStore {
  return Pkcs11KeyStore.open(config, options);
}
