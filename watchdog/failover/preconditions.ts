import fs from "node:fs";
import type { MonitorConfig, StackConfig, WatchdogConfig } from "../config.js";
import { judgeStandby } from "../health/evaluate.js";
import { probeBeacon } from "../probes/beacon.js";
import type { SignerAdminClient } from "../signer-client.js";
import { sameDatabaseReported } from "./shared-database.js";

export interface Precondition {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * What must hold before the old client is touched. Read-only: safe for `--dry-run` and `vigil status`.
 * Refusing here leaves everything as it was, which is the point: a failover to a stack that cannot sign
 * turns one problem into two.
 */
export async function checkPreconditions(
  cfg: WatchdogConfig,
  from: StackConfig,
  to: StackConfig,
  signers: ReadonlyMap<string, SignerAdminClient>,
  monitor: MonitorConfig = cfg.monitor,
): Promise<Precondition[]> {
  const out: Precondition[] = [];
  const beacon = await probeBeacon(to.beaconNodeUrl, monitor.probeTimeoutMs);
  const bv = judgeStandby(beacon, monitor);
  out.push({
    name: `${to.name} beacon node healthy and synced`,
    ok: bv.ok,
    detail: bv.ok ? `health ${beacon.healthStatus}, sync distance ${beacon.syncDistance}, ${beacon.peers} peers` : bv.reasons.join("; "),
  });
  out.push(await clientKnown(signers.get(to.signer)!, to, `${to.name} client`));
  out.push(await clientKnown(signers.get(from.signer)!, from, `${from.name} client (to fence)`));
  const shared = from.signer !== to.signer ? await sameDatabaseReported(signers.get(from.signer)!, signers.get(to.signer)!) : undefined;
  if (shared) {
    // Read-only here: the live proof (a nonce through each signer) runs at CONTINUITY, and without it the history
    // is moved as for two databases, which then needs the paths below.
    out.push({
      name: "continuity plan",
      ok: true,
      detail: `signers ${from.signer} and ${to.signer} report one ${shared.backend} slashing database (history ${shared.historyId}): nothing to move once proved live at CONTINUITY`,
    });
  } else if (from.signer !== to.signer) {
    const target = cfg.signers[to.signer]!;
    const source = cfg.signers[from.signer]!;
    const targetOk = target.slashingDbPath !== undefined && canWrite(target.slashingDbPath);
    out.push({
      name: `signer ${to.signer}'s slashing database writable (history continuity)`,
      ok: targetOk,
      detail: target.slashingDbPath ? (targetOk ? target.slashingDbPath : `${target.slashingDbPath} is not writable`) : "no slashingDbPath configured for it",
    });
    const sourceOk = source.slashingDbPath !== undefined && canRead(source.slashingDbPath);
    out.push({
      name: "continuity plan",
      ok: true,
      detail: sourceOk
        ? `move history from ${source.slashingDbPath} (EIP-3076)`
        : `history of signer ${from.signer} not readable: raise watermarks and wait ${cfg.failover.livenessQuietEpochs} quiet epoch(s)`,
    });
  } else {
    out.push({ name: "continuity plan", ok: true, detail: `shared signer ${to.signer}: its slashing database covers both stacks` });
  }
  return out;
}

async function clientKnown(signer: SignerAdminClient, stack: StackConfig, label: string): Promise<Precondition> {
  try {
    const v = await signer.client(stack.clientId);
    return {
      name: `${label} ${stack.clientId} known at signer ${signer.id}`,
      ok: true,
      detail: `${v.enabled ? "enabled" : "disabled"}, last request ${v.lastRequestAt ?? "never"}`,
    };
  } catch (err) {
    return { name: `${label} ${stack.clientId} known at signer ${signer.id}`, ok: false, detail: (err as Error).message };
  }
}

function canRead(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function canWrite(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The human-readable plan `vigil failover` prints before asking for confirmation. */
export function describePlan(cfg: WatchdogConfig, from: StackConfig, to: StackConfig): string[] {
  const shared = from.signer === to.signer;
  return [
    `1. preconditions: ${to.name} beacon node healthy and synced; both clients known at their signers`,
    `2. fence ${from.name}: disable client ${from.clientId} at signer ${from.signer} with a new generation, read it back at every instance`,
    `3. drain: run \`${from.service.stopCommand.join(" ")}\`; wait until signer ${from.signer} has no request of ${from.clientId} in flight`,
    shared
      ? `4. continuity: shared signer ${from.signer}, nothing to move`
      : `4. continuity: if signers ${from.signer} and ${to.signer} prove one shared slashing database (a nonce written through each, read back at every instance), nothing to move; else move history ${from.signer} → ${to.signer} (EIP-3076), or raise watermarks and wait ${cfg.failover.livenessQuietEpochs} quiet epoch(s)`,
    `5. activate ${to.name}: enable client ${to.clientId} at signer ${to.signer}; run \`${to.service.startCommand.join(" ")}\``,
    `6. verify: ${to.clientId} signs within ${cfg.failover.verifySlots} slot(s)`,
  ];
}
