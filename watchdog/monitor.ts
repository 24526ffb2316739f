import { STACK_NAMES, type StackName, type WatchdogConfig } from "./config.js";
import { judgeBeacon, judgeSignerWitness, type SignerWitness } from "./health/evaluate.js";
import { probeBeacon, type BeaconProbe } from "./probes/beacon.js";
import { probeService, type ServiceProbe } from "./probes/service.js";
import { mergeClientViews, type ClientView } from "../admin-api/index.js";
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
