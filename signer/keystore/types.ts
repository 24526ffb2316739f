import type { RefusedRecord } from "./errors.js";

/**
 * A loaded validator key. It can sign in this thread; its secret scalar stays inside the native BLS
 * object and is never kept as a JS buffer.
 */
export interface SignerHandle {
  /** Lower-case 0x-prefixed hex of the 48-byte compressed public key. */
  readonly pubkey: string;
  readonly publicKey: Uint8Array;
  /** BLS signature (96 bytes, compressed) over `message` (the signing root). */
  sign(message: Uint8Array): Uint8Array;
}

/** Every key decrypted at start-up, by lower-case 0x pubkey. */
export interface LoadedKeys extends ReadonlyMap<string, SignerHandle> {
  /** Records that were refused (failed authentication, or key does not match its label). */
  readonly refused: readonly RefusedRecord[];
  /**
   * Serialises the secret keys so they can be posted to BLS worker threads. This is the only way raw
   * secret bytes leave a handle. The CALLER OWNS the returned buffers and must zero them (`buf.fill(0)`)
   * as soon as they have been transferred or copied into the workers; never log or persist them.
   */
  exportForWorkers(): Map<string, Uint8Array>;
}

export interface LoadOptions {
  /**
   * When false (the default) a single refused record makes `load` throw HsmRecordTamperedError after
   * the whole token has been checked. When true the good keys are returned and `refused` lists the rest.
   */
  allowRefused?: boolean;
}

export interface KeyInfo {
  pubkey: string;
}

/** A decrypted secret key handed to `importKeys`. `importKeys` zeroes `secretKey` when done. */
export interface SecretKeyInput {
  secretKey: Uint8Array;
  /** Lower-case 0x pubkey; checked against the one derived from `secretKey`. */
  pubkey: string;
}

export interface ImportResult {
  imported: string[];
  /** Already stored with the same secret: a re-import is a no-op. */
  unchanged: string[];
}

export interface DeleteResult {
  deleted: string[];
}

/** KeyStore.health(): `cause` is a stable label (TOKEN_GONE, SESSION_INVALID, NOT_LOGGED_IN). */
export interface KeyStoreHealth {
  up: boolean;
  cause?: "TOKEN_GONE" | "SESSION_INVALID" | "NOT_LOGGED_IN";
  message?: string;
}

/**
 * A place validator keys live. Only the PKCS#11 envelope backend exists today; others (e.g. a remote
 * KMS) implement the same surface.
 */
export interface KeyStore {
  load(options?: LoadOptions): Promise<LoadedKeys>;
  /** Public keys stored, without decrypting anything. */
  list(): Promise<KeyInfo[]>;
  /**
   * Cheap check (no enumeration) that the store still answers: the token is present and the session logged in.
   * Keys already loaded keep signing without it; imports, deletes and the next start need it.
   */
  health?(): Promise<KeyStoreHealth>;
  /** Stores keys. Idempotent per key; a different secret under an existing pubkey is a KeyConflictError and nothing is written. */
  importKeys(keys: SecretKeyInput[]): Promise<ImportResult>;
  /** Generates and stores `count` fresh keys, returning their pubkeys. */
  generate(count: number): Promise<string[]>;
  /** Removes keys; every pubkey must exist (KeyNotFoundError otherwise, nothing removed). */
  delete(pubkeys: string[]): Promise<DeleteResult>;
  close(): Promise<void>;
}
