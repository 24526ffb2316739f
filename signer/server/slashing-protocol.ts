/** Messages between the signer's main thread and its slashing-protection worker (slashing-worker.ts). */
import type { CheckOutcome } from "../../slashing-db/index.js";
import type { BatchStats, DbFailureCause } from "../../slashing-db/index.js";

export interface DbWorkerData {
  file: string;
}

export interface Check {
  id: number;
  pubkey: string;
  block: boolean;
  slot?: bigint;
  source?: bigint;
  target?: bigint;
  root: string;
}

export type WireError =
  | { kind: "refused"; code: string; message: string }
  | { kind: "input"; code: string; field: string; message: string }
  | { kind: "unavailable"; code: string; message: string; failure?: DbFailureCause };

export type CheckReply = { id: number; outcome: CheckOutcome; error?: undefined } | { id: number; outcome?: undefined; error: WireError };

/**
 * Checks travel as one string per batch, a line per check (`id b slot root` or `id a source target root`, space
 * separated): cloning one string costs a copy, cloning an array of objects costs far more per check.
 */
export function encodeChecks(checks: Check[]): string {
  let out = "";
  for (const c of checks) {
    out += c.block ? `${c.id} ${c.pubkey} b ${c.slot} ${c.root}\n` : `${c.id} ${c.pubkey} a ${c.source} ${c.target} ${c.root}\n`;
  }
  return out;
}

export function decodeChecks(text: string): Check[] {
  const out: Check[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const f = line.split(" ");
    if (f[2] === "b") out.push({ id: Number(f[0]), pubkey: f[1]!, block: true, slot: BigInt(f[3]!), root: f[4]! });
    else out.push({ id: Number(f[0]), pubkey: f[1]!, block: false, source: BigInt(f[3]!), target: BigInt(f[4]!), root: f[5]! });
  }
  return out;
}

export type ToDbWorker =
  | { kind: "checks"; checks: string }
  | { kind: "pin"; requestId: number; root: string }
  /** A write probe for the health check (see SlashingDb.probeWrite). */
  | { kind: "probe"; requestId: number }
  | { kind: "close" };

export type FromDbWorker =
  | { kind: "ready"; genesisValidatorsRoot: string | null }
  /** `ok`: "id r" (recorded) / "id p" (repeat) lines; `failed`: the refusals and errors. */
  | { kind: "replies"; ok: string; failed: CheckReply[]; commits: BatchStats[] }
  | { kind: "pinned"; requestId: number; error?: WireError }
  | { kind: "probed"; requestId: number; error?: WireError }
  /** `problems`: what went wrong while closing (empty: closed cleanly). */
  | { kind: "closed"; problems: string[] };
