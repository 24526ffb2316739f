import fs from "node:fs";
import { openSlashingDb } from "../../slashing-db/index.js";
import type { ChainClock } from "../chain-clock.js";
import type { SignerEndpointConfig } from "../config.js";
import { probeLiveness } from "../probes/liveness.js";
import type { SharingProof } from "./shared-database.js";

export interface ContinuityResult {
  mode: "shared-signer" | "shared-database" | "interchange" | "watermarks";
  detail: string;
  watermarkEpoch?: number;
}

export class ContinuityError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ContinuityContext {
  from: SignerEndpointConfig;
  to: SignerEndpointConfig;
  clock: ChainClock;
  /** Beacon node asked for liveness (the new stack's: the one the failover relies on). */
  beaconUrl: string;
  validatorIndices: readonly string[];
  /** Keys the old client used (from the signer's ClientView.lastSigned), so the watermarks cover them. */
  knownPubkeys: readonly string[];
  quietEpochs: number;
  probeTimeoutMs: number;
  /**
   * The live proof that both signers use one slashing database (./shared-database.ts); with it proved there is
   * nothing to move. Not given, failed or throwing: the history is moved as if they did not.
   */
  proveShared?: () => Promise<SharingProof>;
  /** Called once the watermarks are durably raised (the executor records the epoch). */
  onWatermarks?: (epoch: number) => void;
  onLiveSeen?: (epoch: number, live: string[]) => void;
  shouldStop?: () => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Makes sure the new signer will never sign something slashable against what the old one signed, when the
 * two stacks use different signers (with one signer, or two proved live to share one database, that database
 * already covers both):
 * 1. move the old history: EIP-3076 export from the old signer's database, import into the new one's;
 * 2. if the old history cannot be read: raise the new database's low watermarks above the current epoch,
 *    wait until the chain has shown the keys not live for `quietEpochs` full epochs, and raise them again
 *    to the epoch reached, so the new signer only signs for epochs nobody can have signed in.
 * Every part is idempotent (import merges; watermarks never go down), so a resumed failover re-runs it.
 */
export async function ensureContinuity(ctx: ContinuityContext): Promise<ContinuityResult> {
  if (ctx.from.id === ctx.to.id) return { mode: "shared-signer", detail: `both stacks use signer ${ctx.from.id}; its database covers both` };
  // Never skipped on doubt: anything short of the live proof moves the history as for two databases.
  let notShared = "";
  if (ctx.proveShared) {
    const proof = await ctx.proveShared().catch((err: Error): SharingProof => ({ shared: false, reason: err.message }));
    if (proof.shared) return { mode: "shared-database", detail: proof.detail };
    notShared = `not proved one shared database (${proof.reason}); `;
  }
  const toPath = ctx.to.slashingDbPath;
  if (!toPath) {
    throw new ContinuityError("CONTINUITY_NO_TARGET_DB", `${notShared}signer ${ctx.to.id} has no slashingDbPath configured: cannot carry the history over`);
  }

  const exported = readHistory(ctx.from);
  if (exported.ok) {
    const db = openSlashingDb(toPath);
    try {
      const s = db.importInterchange(exported.interchange);
      return {
        mode: "interchange",
        detail: `${notShared}imported ${s.validators} validator(s), ${s.blocksAdded} block(s), ${s.attestationsAdded} attestation(s) from signer ${ctx.from.id}`,
      };
    } finally {
      db.close();
    }
  }

  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const firstEpoch = raiseWatermarks(toPath, ctx, ctx.clock.currentEpoch());
  ctx.onWatermarks?.(firstEpoch);
  const quiet = await waitQuietEpochs(ctx, sleep);
  const finalEpoch = raiseWatermarks(toPath, ctx, Math.max(firstEpoch, ctx.clock.currentEpoch() - 1));
  ctx.onWatermarks?.(finalEpoch);
  return {
    mode: "watermarks",
    watermarkEpoch: finalEpoch,
    detail: `${notShared}history of signer ${ctx.from.id} unreadable (${exported.reason}); watermarks raised to epoch ${finalEpoch} after ${quiet} quiet epoch(s)`,
  };
}

function readHistory(from: SignerEndpointConfig): { ok: true; interchange: object } | { ok: false; reason: string } {
  const p = from.slashingDbPath;
  if (!p) return { ok: false, reason: "no slashingDbPath configured" };
  try {
    fs.accessSync(p, fs.constants.R_OK); // never create an empty file in its place
    const db = openSlashingDb(p);
    try {
      return { ok: true, interchange: db.exportInterchange() };
    } finally {
      db.close();
    }
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Nothing at or below `epoch` (and no block at or below its last slot) will be signed by the new signer. */
function raiseWatermarks(toPath: string, ctx: ContinuityContext, epoch: number): number {
  const db = openSlashingDb(toPath);
  try {
    const slot = (epoch + 1) * ctx.clock.slotsPerEpoch - 1;
    db.raiseLowWatermarks({ epoch, slot });
    if (ctx.knownPubkeys.length > 0) db.raiseLowWatermarks({ pubkeys: [...ctx.knownPubkeys], epoch, slot });
    return epoch;
  } finally {
    db.close();
  }
}

/**
 * Waits for `quietEpochs` consecutive full epochs, after the current one, in which the beacon node reports
 * none of the validators live. A live epoch restarts the count (something still signs with these keys).
 */
async function waitQuietEpochs(ctx: ContinuityContext, sleep: (ms: number) => Promise<void>): Promise<number> {
  const clock = ctx.clock;
  let epoch = clock.currentEpoch() + 1; // the current epoch is partial: the old client may have signed in it
  let quiet = 0;
  const deadline = clock.nowMs() + (ctx.quietEpochs * 3 + 4) * clock.epochDurationMs;
  while (quiet < ctx.quietEpochs) {
    ctx.shouldStop?.();
    if (clock.nowMs() > deadline)
      throw new ContinuityError("CONTINUITY_TIMEOUT", `the validators were not seen quiet for ${ctx.quietEpochs} full epoch(s) in time`);
    const endOfEpoch = clock.epochStartMs(epoch + 1);
    if (clock.nowMs() < endOfEpoch) {
      await sleep(Math.min(endOfEpoch - clock.nowMs() + 50, 1_000));
      continue;
    }
    const r = await probeLiveness(ctx.beaconUrl, epoch, ctx.validatorIndices, ctx.probeTimeoutMs);
    if (!r.ok) {
      await sleep(Math.min(500, clock.slotDurationMs));
      continue;
    }
    if (r.live.length > 0) {
      ctx.onLiveSeen?.(epoch, r.live);
      quiet = 0;
    } else {
      quiet++;
    }
    epoch++;
  }
  return quiet;
}
