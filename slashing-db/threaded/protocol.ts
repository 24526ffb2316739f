/** Messages between ThreadedSlashingProtection (client.ts, the caller's thread) and its worker (worker.ts). */
import type { CheckOutcome } from "../database.js";
import type { WireError } from "../errors.js";
import type { BatchStats } from "../group-commit.js";
import type { SlashableCheck } from "../protection.js";

export interface DbWorkerData {
  file: string;
}

/** A check and the number its reply will carry. */
export type NumberedCheck = SlashableCheck & { id: number };

export type CheckReply = { id: number; outcome: CheckOutcome; error?: undefined } | { id: number; outcome?: undefined; error: WireError };

/**
 * Checks travel as one ArrayBuffer per batch, transferred (not copied), a fixed-size record per check: keys and
 * roots stay bytes from the signing root's computation to the database row, and cloning one buffer costs far
 * less than cloning an array of objects.
 *
 *   0  id        float64 (ids count up from 1; exact far beyond any uptime)
 *   8  kind      uint8: 0 block, 1 attestation
 *  16  a         uint64: slot (block) or source epoch (attestation)
 *  24  b         uint64: target epoch (attestation), 0 for a block
 *  32  pubkey    48 bytes
 *  80  root      32 bytes
 */
const RECORD = 112;
const KIND_BLOCK = 0;
const KIND_ATTESTATION = 1;

export function encodeChecks(checks: NumberedCheck[]): ArrayBuffer {
  const buffer = new ArrayBuffer(checks.length * RECORD);
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  checks.forEach((c, i) => {
    const at = i * RECORD;
    view.setFloat64(at, c.id);
    view.setUint8(at + 8, c.kind === "block" ? KIND_BLOCK : KIND_ATTESTATION);
    // The client checked lengths and ranges before queueing (checkInput): nothing here truncates or wraps.
    view.setBigUint64(at + 16, c.kind === "block" ? c.slot : c.sourceEpoch);
    view.setBigUint64(at + 24, c.kind === "block" ? 0n : c.targetEpoch);
    bytes.set(c.pubkey, at + 32);
    bytes.set(c.signingRoot, at + 80);
  });
  return buffer;
}

/** The checks of one batch; keys and roots are views on `buffer`, not copies. */
export function decodeChecks(buffer: ArrayBuffer): NumberedCheck[] {
  const view = new DataView(buffer);
  const out: NumberedCheck[] = [];
  for (let at = 0; at + RECORD <= buffer.byteLength; at += RECORD) {
    const id = view.getFloat64(at);
    const pubkey = new Uint8Array(buffer, at + 32, 48);
    const signingRoot = new Uint8Array(buffer, at + 80, 32);
    const a = view.getBigUint64(at + 16);
    if (view.getUint8(at + 8) === KIND_BLOCK) out.push({ id, kind: "block", pubkey, slot: a, signingRoot });
    else out.push({ id, kind: "attestation", pubkey, sourceEpoch: a, targetEpoch: view.getBigUint64(at + 24), signingRoot });
  }
  return out;
}

export type ToDbWorker =
  | { kind: "checks"; checks: ArrayBuffer }
  /** The caller's connection pinned the network durably; the worker's connection reads the pin. */
  | { kind: "pin"; requestId: number; root: Uint8Array }
  /** A write probe for the health check (see SlashingDb.probeWrite). */
  | { kind: "probe"; requestId: number }
  | { kind: "close" };

export type FromDbWorker =
  | { kind: "ready" }
  /** `ok`: "id r" (recorded) / "id p" (repeat) lines; `failed`: the refusals and errors. */
  | { kind: "replies"; ok: string; failed: CheckReply[]; commits: BatchStats[] }
  | { kind: "pinned"; requestId: number; error?: WireError }
  | { kind: "probed"; requestId: number; error?: WireError }
  /** `problems`: what went wrong while closing (empty: closed cleanly). */
  | { kind: "closed"; problems: string[] };
