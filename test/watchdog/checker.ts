// The independent checker: reads every signature the signer released (admin feed /admin/v1/signatures) and
// looks for (1) slashable pairs — double block proposal, double vote, surround vote — and (2) a key served to
// two clients at once (signatures of one key from two clients interleaving in time).

import { adminPaths, SIGNATURES_MAX_LIMIT, type SignatureRecord, type SignaturesResponse } from "../../admin-api/index.js";

/** The fields of a feed entry the checker judges (unit tests build them by hand). */
export type FeedSignature = Pick<SignatureRecord, "seq" | "clientId" | "pubkey" | "type" | "signingRoot" | "at"> &
  Partial<Pick<SignatureRecord, "slot" | "sourceEpoch" | "targetEpoch">>;

export interface CheckReport {
  signatures: number;
  byClient: Record<string, number>;
  slashable: string[];
  overlaps: string[];
  /** Per key: the clients that signed with it, in order of hand-over. */
  handovers: Record<string, string[]>;
}

/** Reads the whole feed, page by page. */
export async function readFeed(signerUrl: string, adminToken: string): Promise<SignatureRecord[]> {
  const out: SignatureRecord[] = [];
  let after = 0;
  for (;;) {
    const res = await fetch(`${signerUrl}${adminPaths.signatures(after, SIGNATURES_MAX_LIMIT)}`, { headers: { authorization: `Bearer ${adminToken}` } });
    if (res.status !== 200) throw new Error(`signature feed: HTTP ${res.status}`);
    const body = (await res.json()) as SignaturesResponse;
    out.push(...body.signatures);
    if (body.signatures.length === 0 || body.next <= after) return out;
    after = body.next;
  }
}

/**
 * `maxHandovers`: how many times a key may legitimately move between clients in this scenario (one per
 * failover/failback). Any more means two clients were signing with it in the same period.
 */
export function check(feed: FeedSignature[], maxHandovers: number): CheckReport {
  const slashable: string[] = [];
  const overlaps: string[] = [];
  const byClient: Record<string, number> = {};
  const byKey = new Map<string, FeedSignature[]>();
  for (const s of [...feed].sort((a, b) => a.seq - b.seq)) {
    byClient[s.clientId] = (byClient[s.clientId] ?? 0) + 1;
    let list = byKey.get(s.pubkey);
    if (!list) {
      list = [];
      byKey.set(s.pubkey, list);
    }
    list.push(s);
  }
  const handovers: Record<string, string[]> = {};
  for (const [pubkey, sigs] of byKey) {
    const short = pubkey.slice(0, 12);
    // (1) slashable pairs
    const blocks = new Map<string, FeedSignature>();
    const votes = new Map<string, FeedSignature>();
    const atts: FeedSignature[] = [];
    for (const s of sigs) {
      if (s.type === "BLOCK_V2" || s.type === "BLOCK") {
        const prev = blocks.get(String(s.slot));
        if (prev && prev.signingRoot !== s.signingRoot)
          slashable.push(`double block: ${short} slot ${s.slot} (seq ${prev.seq} by ${prev.clientId}, seq ${s.seq} by ${s.clientId})`);
        else blocks.set(String(s.slot), s);
      } else if (s.type === "ATTESTATION") {
        const prev = votes.get(String(s.targetEpoch));
        if (prev && prev.signingRoot !== s.signingRoot)
          slashable.push(`double vote: ${short} target ${s.targetEpoch} (seq ${prev.seq} by ${prev.clientId}, seq ${s.seq} by ${s.clientId})`);
        else votes.set(String(s.targetEpoch), s);
        atts.push(s);
      }
    }
    for (let i = 0; i < atts.length; i++) {
      for (let j = i + 1; j < atts.length; j++) {
        const a = atts[i]!;
        const b = atts[j]!;
        const [s1, t1, s2, t2] = [BigInt(a.sourceEpoch!), BigInt(a.targetEpoch!), BigInt(b.sourceEpoch!), BigInt(b.targetEpoch!)];
        if ((s1 < s2 && t2 < t1) || (s2 < s1 && t1 < t2)) slashable.push(`surround vote: ${short} (${s1}→${t1} seq ${a.seq}, ${s2}→${t2} seq ${b.seq})`);
      }
    }
    // (2) one client at a time: runs of the same client, in release order, and in time
    const runs: { client: string; first: FeedSignature; last: FeedSignature }[] = [];
    for (const s of sigs) {
      const run = runs[runs.length - 1];
      if (run && run.client === s.clientId) run.last = s;
      else runs.push({ client: s.clientId, first: s, last: s });
    }
    handovers[pubkey] = runs.map((r) => r.client);
    if (runs.length - 1 > maxHandovers) {
      overlaps.push(
        `${short} moved between clients ${runs.length - 1} times (allowed ${maxHandovers}): ${runs.map((r) => `${r.client}[${r.first.seq}..${r.last.seq}]`).join(" ")}`,
      );
    }
    for (let i = 1; i < runs.length; i++) {
      if (Date.parse(runs[i]!.first.at) < Date.parse(runs[i - 1]!.last.at))
        overlaps.push(`${short}: ${runs[i]!.client} signed before ${runs[i - 1]!.client}'s last signature`);
    }
  }
  return { signatures: feed.length, byClient, slashable, overlaps, handovers };
}
