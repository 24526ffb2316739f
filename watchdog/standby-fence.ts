import { randomUUID } from "node:crypto";
import { otherStack, type StackName } from "./config.js";
import type { WatchdogContext } from "./context.js";
import { StaleGenerationError } from "./errors.js";
import { describeInstances, fenceHolds, setClientAtEveryInstance } from "./failover/instance-fence.js";
import type { Observation } from "./monitor.js";

/**
 * The standby client must never be enabled outside a failover (a reset signer enables every client): when
 * the observation shows it enabled, disable it at its signer under a new generation, and alert.
 */
export async function fenceEnabledStandby(ctx: WatchdogContext, obs: Observation, active: StackName): Promise<void> {
  const standby = otherStack(active);
  const s = obs.stacks[standby];
  if (!s.client?.enabled) return;
  const { config: cfg, store, alerter } = ctx;
  const activeEnabled = obs.stacks[active].client?.enabled === true;
  const signer = ctx.signers.get(cfg.stacks[standby].signer)!;
  const gen = store.allocateGeneration(
    [obs.signers[signer.id]?.generation ?? 0],
    "fence",
    `standby ${standby} (${s.clientId}) found enabled at signer ${signer.id}; fencing it`,
    { stack: standby },
  );
  try {
    // At every instance of the signer, as a failover's fence (./failover/instance-fence.ts); no retry: the next round re-reads.
    const report = await setClientAtEveryInstance(signer, s.clientId, false, gen, `standby-fence-${randomUUID()}`, {
      retry: (fn) => fn(),
      settleMs: 1_000,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    });
    const where = signer.instances.length > 1 || report.unreachable.length > 0 ? `; ${describeInstances(report)}` : "";
    if (!fenceHolds(report)) throw new Error(`not confirmed at every instance${where}`);
    alerter.send({
      level: activeEnabled ? "critical" : "warning",
      event: "standby_fenced",
      message: `standby ${standby} client ${s.clientId} was enabled at signer ${signer.id}${activeEnabled ? " while the active client was too" : ""}; fenced (generation ${gen})${where}`,
      stack: standby,
    });
  } catch (err) {
    // Stale means a newer decision exists (an operator, a failover in another process): next round re-reads.
    const level = err instanceof StaleGenerationError ? "warning" : "critical";
    alerter.send({ level, event: "standby_fence_failed", message: `could not fence standby ${s.clientId}: ${(err as Error).message}`, stack: standby });
  }
}
