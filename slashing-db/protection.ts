/**
 * What a signer needs from slashing protection, whatever stores it: the thread-hosted SQLite database
 * (threaded/client.ts) today, PostgreSQL next. Every method is asynchronous (a backend may be across a thread
 * or a network) and nothing here names a driver's types: keys and roots are bytes, numbers are bigints.
 */
import type { CheckOutcome } from "./database.js";
import type { DbFailureCause } from "./errors.js";
import type { HighWatermark } from "./high-watermark.js";
import type { SlashingDbIdentity } from "./identity.js";
import type { Interchange } from "./interchange/export.js";
import type { ImportSummary } from "./interchange/import.js";

/** One message to check and record before it is signed. */
export type SlashableCheck =
  | { kind: "block"; pubkey: Uint8Array; slot: bigint; signingRoot: Uint8Array }
  | { kind: "attestation"; pubkey: Uint8Array; sourceEpoch: bigint; targetEpoch: bigint; signingRoot: Uint8Array };

/** Could a check be recorded now, and if not why. */
export interface ProtectionHealth {
  up: boolean;
  /** A DbFailureCause, or MAIN_CONNECTION_FAILED where a backend's second connection (imports, exports) failed. */
  cause?: DbFailureCause | "MAIN_CONNECTION_FAILED";
  message?: string;
}

export interface SlashingProtection {
  /** The network this protection is pinned to (lower-case 0x hex), or null while unpinned. The one copy of it. */
  readonly genesisValidatorsRoot: string | null;
  /** Checks sent and not yet answered (a gauge for metrics). */
  readonly queueDepth: number;

  /**
   * Refuses (SlashingProtectionError) a check that could be slashable; resolves only once it is recorded
   * durably. Fails closed (SlashingDbUnavailableError with its `failure` cause) when it cannot record.
   */
  checkAndRecord(check: SlashableCheck): Promise<CheckOutcome>;
  /**
   * Pins the network on first use, durably, before anything is signed for it; checks made after this resolves
   * are judged under the pin. Refuses another root with GENESIS_VALIDATORS_ROOT_MISMATCH.
   */
  pin(genesisValidatorsRoot: Uint8Array): Promise<void>;
  /** Imports an EIP-3076 interchange (which pins an unpinned database to its network). */
  importInterchange(interchange: object | string): Promise<ImportSummary>;
  exportInterchange(opts?: { pubkeys?: string[] }): Promise<Interchange>;

  /**
   * Which database this is (backend, history id) and the latest sharing nonce, read from the database now, never
   * from memory: the watchdog's live proof of a shared database rests on it (./identity.ts).
   */
  identity(): Promise<SlashingDbIdentity>;
  /** The high watermark of every validator, read from the database now (any instance's or CLI's write is seen); null: none. */
  highWatermark(): Promise<HighWatermark | null>;
  /** Writes a sharing nonce durably (SHARING_NONCE_PATTERN; SlashingDbInputError otherwise). */
  writeSharingNonce(nonce: string): Promise<void>;

  /**
   * Bytes the database takes on disk now (vigil_slashing_db_size_bytes): a SQLite file with its -wal, or the
   * PostgreSQL database's pg_database_size. What an operator sizes disks and alerts on.
   */
  sizeBytes(): Promise<number>;
  /** Cheap liveness (no I/O), e.g. for the systemd watchdog. */
  isAlive(): boolean;
  /** Whether a check could be recorded now (may probe with a write; results are cached briefly). */
  health(): Promise<ProtectionHealth>;
  /** Commits what is queued and closes; resolves with what went wrong while closing ([] when clean). */
  close(): Promise<string[]>;
}
