/** Messages between BlsPool (main thread) and bls-worker. Keys travel as raw bytes, transferred, never cloned. */
import { SigningError } from "./errors.js";
import type { PresetName } from "./consensus.js";

export const SECRET_KEY_BYTES = 32;
export const SIGNING_ROOT_BYTES = 32;
export const SIGNATURE_BYTES = 96;

export interface WorkerInit {
  /** Pinned in the worker before anything else, so any @lodestar import there sees the same preset. */
  preset: PresetName;
  /** Nice value of the worker thread (higher: lower priority than the main thread), if set. */
  niceness?: number;
}

export type ToWorker =
  /** `keys` holds n secret keys of 32 bytes; the worker owns them as `firstKeyId + i` and zeroes the buffer. */
  | { kind: "addKeys"; requestId: number; firstKeyId: number; keys: ArrayBuffer }
  | { kind: "removeKeys"; requestId: number; keyIds: number[] }
  /** `roots` holds keyIds.length signing roots of 32 bytes. */
  | { kind: "sign"; batchId: number; keyIds: Uint32Array; roots: ArrayBuffer };

export type FromWorker =
  | { kind: "ready"; implementation: string }
  | { kind: "keysAdded"; requestId: number; pubkeys: string[] }
  | { kind: "keysRemoved"; requestId: number }
  /** Signature i at bytes [96 i, 96 i + 96); failed[i] is a message when item i could not be signed. */
  | { kind: "signed"; batchId: number; signatures: ArrayBuffer; failed: (string | null)[]; elapsedMs: number }
  | { kind: "failed"; requestId: number; message: string };

/** Start-up refuses any BLS backend but the native blst one (herumi/wasm is slower and not what we audited). */
export function assertBlstNative(implementation: string, where: string): void {
  if (implementation !== "blst-native") {
    throw new SigningError(
      "BLS_IMPLEMENTATION",
      `@chainsafe/bls loaded the "${implementation}" backend in ${where}; Vigil requires "blst-native" ` +
        `(is @chainsafe/blst installed with a prebuilt binary for this platform?)`,
    );
  }
}
