import { STACK_NAMES, type StackName, type WatchdogConfig } from "./config.js";
import { judgeBeacon, judgeSignerWitness, type SignerWitness } from "./health/evaluate.js";
import { probeBeacon, type BeaconProbe } from "./probes/beacon.js";
import { probeService, type ServiceProbe } from "./probes/service.js";
import type { ClientView } from "../admin-api/index.js";
import type { SignerAdminClient } from "./signer-client.js";

export interface SignerObservation {
  reachable: boolean;
  generation?: number;
  clients?: ClientView[];
  error?: string;
  durationMs: number;
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
    try {
      const r = await s.clients();
      return [s.id, { reachable: true, generation: r.generation, clients: r.clients, durationMs: Date.now() - started }];
    } catch (err) {
      return [s.id, { reachable: false, error: (err as Error).message, durationMs: Date.now() - started }];
    }
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
