import { httpJson } from "./http.js";

export interface LivenessProbe {
  epoch: number;
  ok: boolean;
  /** Indices the beacon node reports live in `epoch`. */
  live: string[];
  /** Indices it reports not live. */
  notLive: string[];
  error?: string;
}

interface LivenessBody {
  data?: Array<{ index?: string; is_live?: boolean }>;
}

/** POST /eth/v1/validator/liveness/{epoch}: were these validators seen doing anything in that epoch? */
export async function probeLiveness(baseUrl: string, epoch: number, indices: readonly string[], timeoutMs: number): Promise<LivenessProbe> {
  const r = await httpJson<LivenessBody>(`${baseUrl}/eth/v1/validator/liveness/${epoch}`, { method: "POST", body: indices, timeoutMs });
  if (!r.ok) return { epoch, ok: false, live: [], notLive: [], error: r.error };
  const rows = r.body?.data;
  if (!Array.isArray(rows)) return { epoch, ok: false, live: [], notLive: [], error: "response has no data array" };
  const live: string[] = [];
  const notLive: string[] = [];
  for (const row of rows) {
    if (typeof row?.index !== "string" || typeof row.is_live !== "boolean") continue;
    (row.is_live ? live : notLive).push(row.index);
  }
  // An index the node did not answer for is unknown, so the probe is only ok if every index is covered.
  const covered = new Set([...live, ...notLive]);
  const missing = indices.filter((i) => !covered.has(i));
  if (missing.length > 0) return { epoch, ok: false, live, notLive, error: `no answer for indices ${missing.slice(0, 5).join(", ")}` };
  return { epoch, ok: true, live, notLive };
}
