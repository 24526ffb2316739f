/**
 * Which slashing database a signer uses, as the admin API reports it (GET /admin/v1/slashing-db) for the
 * watchdog: the backend, the history id made once by the schema migration, and the last sharing nonce written
 * into it. The id alone cannot tell one shared database from a copy of it (a copied SQLite file, a PostgreSQL
 * restored from a dump keep it while their histories diverge), so the watchdog writes a fresh nonce through one
 * signer and reads it back through the other: only one database holds what was written a moment ago.
 */

/** metadata row holding the history id (both backends). */
export const HISTORY_ID_KEY = "history_id";
/** metadata row holding the latest sharing nonce and when it was written ("<nonce> <ISO time>"). */
export const SHARING_NONCE_KEY = "sharing_nonce";
/** A nonce: 32 to 64 lower-case hex digits (the watchdog sends 128 random bits). */
export const SHARING_NONCE_PATTERN = /^[0-9a-f]{32,64}$/;

export type SlashingBackend = "sqlite" | "postgres";

export interface SharingNonce {
  nonce: string;
  writtenAt: string;
}

export interface SlashingDbIdentity {
  backend: SlashingBackend;
  /** 32 hex digits, made once per database by the migration that introduced it. */
  historyId: string;
  /** The latest nonce written into this database (by any signer on it), or null. */
  sharingNonce: SharingNonce | null;
}

export function encodeSharingNonce(nonce: string, at = new Date()): string {
  return `${nonce} ${at.toISOString()}`;
}

export function decodeSharingNonce(value: string | undefined): SharingNonce | null {
  if (value === undefined) return null;
  const [nonce, writtenAt] = value.split(" ");
  return nonce && writtenAt ? { nonce, writtenAt } : null;
}
