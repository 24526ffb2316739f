import { STACK_NAMES, type StackName, type WatchdogConfig } from "./config.js";
import { judgeBeacon, judgeSignerWitness, type SignerWitness } from "./health/evaluate.js";
import { probeBeacon, type BeaconProbe } from "./probes/beacon.js";
import { probeService, type ServiceProbe } from "./probes/service.js";
import type { ClientView } from "../admin-api/index.js";
import type { SignerAdminClient } from "./signer-client.js";

/** One instance of a signer, as this round saw it. */
export interface InstanceObservation {
  url: string;
  reachable: boolean;
  generation?: number;
  error?: string;
}

/** A signer: reachable if any instance answered; its clients merged over the instances that answered (mergeClientViews). */
export interface SignerObservation {
  reachable: boolean;
  generation?: number;
  clients?: ClientView[];
  error?: string;
  durationMs: number;
  instances: InstanceObservation[];
}

export interface StackProbeResult {
  stack: StackName;
  clientId: string;
  signerId: string;
  service: ServiceProbe;
  beacon: BeaconProbe;
  beaconOk: boolean;
  beaconReasons: string[];
  client?: ClientView;
  signerError?: string;
  witness: SignerWitness;
}

export interface Observation {
  at: number;
  stacks: Record<StackName, StackProbeResult>;
  signers: Record<string, SignerObservation>;
}

/** One round of probes of both stacks and every signer, concurrently, each bounded by its own timeout. */
export async function observe(
  cfg: WatchdogConfig,
  signers: ReadonlyMap<string, SignerAdminClient>,
  watchingSince: (signerId: string) => number,
  silenceMs: number,
): Promise<Observation> {
  const signerEntries = [...signers.values()].map(async (s): Promise<[string, SignerObservation]> => {
    const started = Date.now();
    const all = await s.each((i) => i.clients());
    const durationMs = Date.now() - started;
    const instances = all.map(
      (r): InstanceObservation =>
        r.ok ? { url: r.url, reachable: true, generation: r.value.generation } : { url: r.url, reachable: false, error: r.error.message },
    );
    const answered = all.flatMap((r) => (r.ok ? [r.value] : []));
    if (answered.length > 0) {
      const generation = Math.max(...answered.map((a) => a.generation));
      return [s.id, { reachable: true, generation, clients: mergeClientViews(answered.map((a) => a.clients)), durationMs, instances }];
    }
    return [s.id, { reachable: false, error: all.map((r) => (r.ok ? "" : r.error.message)).join("; "), durationMs, instances }];
  });
  const stackEntries = STACK_NAMES.map(async (name) => {
    const st = cfg.stacks[name];
    const [service, beacon] = await Promise.all([probeService(st.service), probeBeacon(st.beaconNodeUrl, cfg.monitor.probeTimeoutMs)]);
    return { name, service, beacon };
  });
  const signerResults = Object.fromEntries(await Promise.all(signerEntries));
  const now = Date.now();
  const stacks = {} as Record<StackName, StackProbeResult>;
  for (const { name, service, beacon } of await Promise.all(stackEntries)) {
    const st = cfg.stacks[name];
    const so = signerResults[st.signer]!;
    const client = so.clients?.find((c) => c.id === st.clientId);
    const bv = judgeBeacon(beacon, cfg.monitor);
    const signerError = !so.reachable ? so.error : client ? undefined : `signer ${st.signer} does not know client ${st.clientId}`;
    stacks[name] = {
      stack: name,
      clientId: st.clientId,
      signerId: st.signer,
      service,
      beacon,
      beaconOk: bv.ok,
      beaconReasons: bv.reasons,
      ...(client ? { client } : {}),
      ...(signerError ? { signerError } : {}),
      witness: judgeSignerWitness(client, now, silenceMs, watchingSince(st.signer)),
    };
  }
  return { at: now, stacks, signers: signerResults };
}

/**
 * One view per client over a signer's instances. HAProxy spreads a client's requests over them, so each instance
 * sees only its share: the witness must take the newest request and signature anywhere (a client quiet at one
 * instance may be busy at another), the sums of the counters, and `enabled` if any instance says so (a standby
 * enabled anywhere is fenced; an active client is judged by its traffic).
 */
export function mergeClientViews(perInstance: readonly ClientView[][]): ClientView[] {
  const byId = new Map<string, ClientView[]>();
  for (const views of perInstance) for (const v of views) byId.set(v.id, [...(byId.get(v.id) ?? []), v]);
  const newest = (xs: (string | null)[]) => xs.reduce<string | null>((a, b) => (b !== null && (a === null || Date.parse(b) > Date.parse(a)) ? b : a), null);
  return [...byId.values()].map((views) => {
    const lastSigned = new Map<string, ClientView["lastSigned"][number]>();
    for (const e of views.flatMap((v) => v.lastSigned)) {
      const known = lastSigned.get(e.pubkey);
      if (!known || Date.parse(e.at) > Date.parse(known.at)) lastSigned.set(e.pubkey, e);
    }
    return {
      id: views[0]!.id,
      enabled: views.some((v) => v.enabled),
      changedAtGeneration: Math.max(...views.map((v) => v.changedAtGeneration)),
      inFlight: views.reduce((n, v) => n + v.inFlight, 0),
      lastRequestAt: newest(views.map((v) => v.lastRequestAt)),
      lastSignedAt: newest(views.map((v) => v.lastSignedAt)),
      signed: views.reduce((n, v) => n + v.signed, 0),
      refused: views.reduce((n, v) => n + v.refused, 0),
      lastSigned: [...lastSigned.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)),
    };
  });
}
