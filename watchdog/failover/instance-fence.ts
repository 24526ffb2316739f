import type { ClientView, SlashingDbResponse } from "../../admin-api/index.js";
import type { InstanceResult, SignerAdminClient } from "../signer-client.js";

/**
 * A fence (or an activation) at a signer with several instances (watchdog/docs/README.md, "Several instances
 * per signer"). With a PostgreSQL slashing database the instances share one fencing state: one call at any
 * instance is the change for all of them, and the release gate in the database holds even at an instance the
 * watchdog cannot reach (signer/docs/fencing-across-instances.md). Without it (SQLite: each instance keeps its
 * own state) the call goes to every instance. Either way the result is read back at every instance.
 */

/** How the change was seen at the signer's instances. */
export interface InstanceSetReport {
  /** Every instance reached reports one PostgreSQL database (one history id): one fencing state for all. */
  sharedState: boolean;
  /** Instances that report the client as asked, at this generation or a newer one. */
  confirmed: string[];
  /** Instances that answered, but with another state (after `settleMs`). */
  contrary: { url: string; enabled: boolean; changedAtGeneration: number }[];
  /** Instances that did not answer, with why. */
  unreachable: { url: string; error: string }[];
}

export interface SetClientOptions {
  /** Wraps each signer call with the executor's retry (withSignerRetry). */
  retry: <T>(fn: () => Promise<T>) => Promise<T>;
  /** How long an instance's view may lag the shared state (LISTEN/NOTIFY: milliseconds) before it counts as contrary. */
  settleMs: number;
  sleep: (ms: number) => Promise<void>;
}

/** True when every reachable instance reports one PostgreSQL database; `identities` from SignerAdminClient.each. */
export function oneSharedState(identities: readonly { ok: boolean; value?: SlashingDbResponse | null }[]): boolean {
  const known = identities.filter((r) => r.ok).map((r) => r.value);
  if (known.length === 0 || known.some((d) => d?.backend !== "postgres")) return false;
  return new Set(known.map((d) => d!.historyId)).size === 1;
}

/**
 * Enables or disables `clientId` at `generation` (StaleGenerationError if a newer decision exists) and reads it
 * back at every instance. Throws only when no instance took the call.
 */
export async function setClientAtEveryInstance(
  signer: SignerAdminClient,
  clientId: string,
  enabled: boolean,
  generation: number,
  decision: string,
  opts: SetClientOptions,
): Promise<InstanceSetReport> {
  const apply = (i: (typeof signer.instances)[number]) => (enabled ? i.enable(clientId, generation, decision) : i.disable(clientId, generation, decision));
  await opts.retry(() => (enabled ? signer.enable(clientId, generation, decision) : signer.disable(clientId, generation, decision)));
  const identities = await signer.each((i) => i.slashingDb());
  const sharedState = oneSharedState(identities);
  // Not one shared state: each instance decides for itself, so each gets the call (an idempotent retry where it
  // already has it: same generation, same decision).
  if (!sharedState && signer.instances.length > 1) await signer.each((i) => apply(i));
  return { sharedState, ...(await readBack(signer, clientId, (v) => v.enabled === enabled && v.changedAtGeneration >= generation, opts)) };
}

/**
 * Reads the client at every instance until each reachable one satisfies `want` or `settleMs` has passed:
 * NOTIFY brings a change made through another instance within milliseconds, a reconnecting listener within a second.
 */
export async function readBack(
  signer: SignerAdminClient,
  clientId: string,
  want: (view: ClientView) => boolean,
  opts: Pick<SetClientOptions, "settleMs" | "sleep">,
): Promise<Omit<InstanceSetReport, "sharedState">> {
  const deadline = Date.now() + opts.settleMs;
  for (;;) {
    const views = await signer.each((i) => i.client(clientId));
    const confirmed = views.flatMap((r) => (r.ok && want(r.value) ? [r.url] : []));
    const contrary = views.flatMap((r) =>
      r.ok && !want(r.value) ? [{ url: r.url, enabled: r.value.enabled, changedAtGeneration: r.value.changedAtGeneration }] : [],
    );
    const unreachable = views.flatMap((r) => (r.ok ? [] : [{ url: r.url, error: r.error.message }]));
    if (contrary.length === 0 || Date.now() >= deadline) return { confirmed, contrary, unreachable };
    await opts.sleep(50);
  }
}

/**
 * Whether a fence reported so holds at every instance: each one reached reports it, at least one was reached,
 * and an instance not reached shares the state of those that were (PostgreSQL: the release gate in the
 * database refuses for it too). With SQLite an unreached instance's own state is unknown: not confirmed.
 */
export function fenceHolds(r: InstanceSetReport): boolean {
  return r.confirmed.length > 0 && r.contrary.length === 0 && (r.unreachable.length === 0 || r.sharedState);
}

/** One line for notes and alerts: "confirmed at 2 of 3 instance(s); unreachable: URL (why)". */
export function describeInstances(r: Omit<InstanceSetReport, "sharedState"> & { sharedState?: boolean }): string {
  const total = r.confirmed.length + r.contrary.length + r.unreachable.length;
  const parts = [`confirmed at ${r.confirmed.length} of ${total} instance(s)`];
  if (r.contrary.length > 0)
    parts.push(`contrary at ${r.contrary.map((c) => `${c.url} (${c.enabled ? "enabled" : "disabled"}, generation ${c.changedAtGeneration})`).join(", ")}`);
  if (r.unreachable.length > 0) parts.push(`unreachable: ${r.unreachable.map((u) => `${u.url} (${u.error})`).join(", ")}`);
  if (r.sharedState !== undefined) parts.push(r.sharedState ? "one shared PostgreSQL fencing state" : "no shared fencing state");
  return parts.join("; ");
}

/**
 * The instances of one signer that report different databases, as "url → backend:historyId" (undefined when
 * they agree): a misconfiguration under which a fence through one instance does not hold at another.
 */
export function divergentDatabases(identities: readonly InstanceResult<SlashingDbResponse | null>[]): string | undefined {
  const known = identities.flatMap((r) => (r.ok && r.value ? [{ url: r.url, db: `${r.value.backend}:${r.value.historyId}` }] : []));
  if (new Set(known.map((k) => k.db)).size < 2) return undefined;
  return known.map((k) => `${k.url} → ${k.db}`).join(", ");
}
