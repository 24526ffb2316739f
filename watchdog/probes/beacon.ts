import { httpJson } from "./http.js";

/** A beacon node as the Beacon API shows it. Fields are null when the call failed. */
export interface BeaconProbe {
  reachable: boolean;
  /** /eth/v1/node/health: 200 ready, 206 syncing, 503 not initialised; null if unreachable. */
  healthStatus: number | null;
  isSyncing: boolean | null;
  syncDistance: number | null;
  headSlot: number | null;
  isOptimistic: boolean | null;
  elOffline: boolean | null;
  peers: number | null;
  errors: string[];
  durationMs: number;
}

interface SyncingBody {
  data?: { head_slot?: string; sync_distance?: string; is_syncing?: boolean; is_optimistic?: boolean; el_offline?: boolean };
}
interface PeerCountBody {
  data?: { connected?: string };
}

export async function probeBeacon(baseUrl: string, timeoutMs: number): Promise<BeaconProbe> {
  const started = Date.now();
  const [health, syncing, peers] = await Promise.all([
    // health answers with status codes only; 206 and 503 are answers, not failures
    fetchStatus(`${baseUrl}/eth/v1/node/health`, timeoutMs),
    httpJson<SyncingBody>(`${baseUrl}/eth/v1/node/syncing`, { timeoutMs }),
    httpJson<PeerCountBody>(`${baseUrl}/eth/v1/node/peer_count`, { timeoutMs }),
  ]);
  const errors: string[] = [];
  if (health.error) errors.push(`health: ${health.error}`);
  if (!syncing.ok) errors.push(`syncing: ${syncing.error}`);
  if (!peers.ok) errors.push(`peer_count: ${peers.error}`);
  const s = syncing.ok ? syncing.body?.data : undefined;
  const connected = peers.ok ? Number(peers.body?.data?.connected) : NaN;
  const num = (v: string | undefined) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : null);
  return {
    reachable: health.status !== null || syncing.ok || peers.ok,
    healthStatus: health.status,
    isSyncing: typeof s?.is_syncing === "boolean" ? s.is_syncing : null,
    syncDistance: num(s?.sync_distance),
    headSlot: num(s?.head_slot),
    isOptimistic: typeof s?.is_optimistic === "boolean" ? s.is_optimistic : null,
    elOffline: typeof s?.el_offline === "boolean" ? s.el_offline : null,
    peers: Number.isFinite(connected) ? connected : null,
    errors,
    durationMs: Date.now() - started,
  };
}

async function fetchStatus(url: string, timeoutMs: number): Promise<{ status: number | null; error?: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return { status: res.status };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { status: null, error: e.name === "TimeoutError" ? `timed out after ${timeoutMs} ms` : (e.cause?.code ?? e.message) };
  }
}

/** Reads genesis_time (unix seconds) from /eth/v1/beacon/genesis. */
export async function fetchGenesisTime(baseUrl: string, timeoutMs: number): Promise<number | null> {
  const r = await httpJson<{ data?: { genesis_time?: string } }>(`${baseUrl}/eth/v1/beacon/genesis`, { timeoutMs });
  if (!r.ok) return null;
  const t = Number(r.body?.data?.genesis_time);
  return Number.isFinite(t) ? t : null;
}
