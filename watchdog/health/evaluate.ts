// Pure judgements over probe results. No I/O here: everything is unit-tested with plain objects.
import type { MonitorConfig } from "../config.js";
import type { BeaconProbe } from "../probes/beacon.js";
import type { LivenessProbe } from "../probes/liveness.js";
import type { ServiceProbe } from "../probes/service.js";
import type { ClientView } from "../../admin-api/index.js";

export interface Verdict {
  ok: boolean;
  reasons: string[];
}

/** A beacon node fit to carry duties: reachable, healthy (200), synced within maxSyncDistance, enough peers, EL online. */
export function judgeBeacon(b: BeaconProbe, m: Pick<MonitorConfig, "minPeers" | "maxSyncDistance">): Verdict {
  const reasons: string[] = [];
  if (!b.reachable) return { ok: false, reasons: [`beacon node unreachable (${b.errors.join("; ") || "no answer"})`] };
  if (b.healthStatus !== 200)
    reasons.push(b.healthStatus === null ? "health endpoint did not answer" : `health ${b.healthStatus}${b.healthStatus === 206 ? " (syncing)" : ""}`);
  if (b.isSyncing === null) reasons.push("sync status unknown");
  else if (b.isSyncing) reasons.push(`syncing (distance ${b.syncDistance ?? "?"})`);
  if (b.syncDistance !== null && b.syncDistance > m.maxSyncDistance) reasons.push(`sync distance ${b.syncDistance} > ${m.maxSyncDistance}`);
  if (b.elOffline === true) reasons.push("execution client offline");
  if (b.peers === null) reasons.push("peer count unknown");
  else if (b.peers < m.minPeers) reasons.push(`${b.peers} peers < ${m.minPeers}`);
  return { ok: reasons.length === 0, reasons };
}

/**
 * What the signer — the strongest witness — says about a client:
 * - "signing": it sent a request within the silence window;
 * - "silent": enabled, and nothing from it for longer than the window;
 * - "fenced": disabled at the signer (someone decided it must not sign);
 * - "unknown": the signer could not be asked.
 */
export type SignerWitness = "signing" | "silent" | "fenced" | "unknown";

export function judgeSignerWitness(view: ClientView | undefined, nowMs: number, silenceMs: number, watchingSinceMs: number): SignerWitness {
  if (!view) return "unknown";
  if (!view.enabled) return "fenced";
  const last = view.lastRequestAt ? Date.parse(view.lastRequestAt) : NaN;
  // A client never seen (or not since the signer restarted) is measured from when we started watching.
  const reference = Number.isFinite(last) ? Math.max(last, watchingSinceMs) : watchingSinceMs;
  return nowMs - reference > silenceMs ? "silent" : "signing";
}

export interface StackObservation {
  service: ServiceProbe;
  beacon: BeaconProbe;
  witness: SignerWitness;
  signerError?: string;
}

export interface ActiveAssessment {
  /** This observation counts against the active stack (feeds the failover hysteresis). */
  bad: boolean;
  /** Nothing can be concluded (the signer could not be asked): resets the streak. */
  inconclusive: boolean;
  reasons: string[];
}

/**
 * Is the active stack failing its duties right now? Only the signer's silence counts: if the signer still
 * sees the client, the stack is working whatever the service or beacon probes say (we may just have lost
 * sight of the host). The other probes are added as reasons, for the operator.
 */
export function assessActive(o: StackObservation, liveness: LivenessProbe | null, m: MonitorConfig): ActiveAssessment {
  const context: string[] = [];
  if (o.service.state !== "active") context.push(`service ${o.service.state} (${o.service.detail})`);
  const bv = judgeBeacon(o.beacon, m);
  if (!bv.ok) context.push(...bv.reasons.map((r) => `beacon: ${r}`));
  if (liveness?.ok && liveness.notLive.length > 0) context.push(`not live on chain in epoch ${liveness.epoch}: ${liveness.notLive.length} validator(s)`);
  switch (o.witness) {
    case "unknown":
      return { bad: false, inconclusive: true, reasons: [`signer unreachable${o.signerError ? `: ${o.signerError}` : ""}`, ...context] };
    case "fenced":
      // Someone fenced the active client on purpose (an operator or a newer decision): never override that.
      return { bad: false, inconclusive: true, reasons: ["active client is fenced at the signer", ...context] };
    case "signing":
      return { bad: false, inconclusive: false, reasons: context };
    case "silent":
      return { bad: true, inconclusive: false, reasons: [`no request at the signer for more than ${m.signerSilenceSlots} slot(s)`, ...context] };
  }
}

/** Can this stack take over? Its beacon node must be fit; its service state does not matter (we start it). */
export function judgeStandby(beacon: BeaconProbe, m: MonitorConfig): Verdict {
  return judgeBeacon(beacon, m);
}
