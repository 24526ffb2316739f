// Overload against the real signer (token, database, loopback): a burst bigger than limits.maxWaitMs of work is
// answered 503 OVERLOADED + Retry-After at once for what cannot be served in time (nothing recorded for those), and
// requests whose client has gone are not signed. One BLS thread, so the burst outruns the pool on any machine.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSlashingDb } from "../../slashing-db/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, GVR, http, interopPubkey, randaoBody, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const KEYS = 8;
const work = tempDir("vigil-signer-overload-");
let token: TestToken;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-overload", KEYS);
}, 120_000);
afterAll(() => token?.destroy());

interface Timed {
  status: number;
  ms: number;
  retryAfter: string | null;
  code: string | undefined;
}

async function timed(url: string, body: unknown, signal?: AbortSignal): Promise<Timed> {
  const started = performance.now();
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
    const text = await res.text();
    const code = res.status === 200 ? undefined : (JSON.parse(text) as { code?: string }).code;
    return { status: res.status, ms: performance.now() - started, retryAfter: res.headers.get("retry-after"), code };
  } catch {
    return { status: 0, ms: performance.now() - started, retryAfter: null, code: undefined };
  }
}

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe("admission by expected wait", () => {
  it("a burst beyond limits.maxWaitMs of work: the excess gets 503 OVERLOADED + Retry-After at once, nothing recorded for it", async () => {
    const config = testConfig(token, path.join(work, "burst"), { genesisValidatorsRoot: GVR, logLevel: "warn", limits: { blsThreads: 1, maxWaitMs: 100, maxConnections: 4096 } });
    const { signer } = await start(config);
    try {
      const url = (i: number) => `${signer.url}/api/v1/eth2/sign/${interopPubkey(i % KEYS)}`;
      // Warm-up: the pool learns its signing time (the capacity estimate before any backlog is seen).
      for (let i = 0; i < 32; i++) expect((await timed(url(i), randaoBody(i))).status).toBe(200);

      // ~1,500 signatures on one BLS thread is several times 100 ms of work, whatever the machine. One attestation per
      // key rides at the end of the burst, where it is the likeliest to be shed.
      const burst = Array.from({ length: 1500 }, (_, i) => timed(url(i), randaoBody(1000 + i)));
      const attestations = Array.from({ length: KEYS }, (_, k) => timed(url(k), attestationBody(5, 6)));
      const replies = await Promise.all(burst);
      const attReplies = await Promise.all(attestations);

      const all = [...replies, ...attReplies];
      expect(all.filter((r) => !(r.status === 200 || (r.status === 503 && r.code === "OVERLOADED"))).map((r) => `${r.status} ${r.code}`)).toEqual([]);
      const shed = all.filter((r) => r.status === 503);
      const signed = all.filter((r) => r.status === 200);
      expect(shed.length).toBeGreaterThan(0);
      expect(signed.length).toBeGreaterThan(0);
      for (const r of shed) expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      // Shed at once, not after queueing: the median 503 comes back well before the median signature.
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      expect(median(shed.map((r) => r.ms))).toBeLessThan(median(signed.map((r) => r.ms)));

      const metrics = (await http(`${signer.url}/metrics`)).text;
      expect(metric(metrics, 'vigil_signer_requests_shed_total{reason="expected_wait"}')).toBe(shed.length);

      // A shed attestation was never recorded; a signed one was.
      const db = openSlashingDb(config.slashingDb);
      try {
        for (let k = 0; k < KEYS; k++) {
          const v = db.exportInterchange({ pubkeys: [interopPubkey(k)] }).data[0];
          expect((v?.signed_attestations ?? []).length, `key ${k}`).toBe(attReplies[k]!.status === 200 ? 1 : 0);
        }
      } finally {
        db.close();
      }
    } finally {
      await signer.close();
    }
  }, 60_000);

  it("requests whose client closed the connection while queued are not signed", async () => {
    const config = testConfig(token, path.join(work, "gone"), { genesisValidatorsRoot: GVR, logLevel: "warn", limits: { blsThreads: 1, maxWaitMs: 60_000, maxConnections: 4096 } });
    const { signer } = await start(config);
    try {
      const url = (i: number) => `${signer.url}/api/v1/eth2/sign/${interopPubkey(i % KEYS)}`;
      const kept = Array.from({ length: 300 }, (_, i) => timed(url(i), randaoBody(i)));
      const abort = new AbortController();
      const abandoned = Array.from({ length: 1200 }, (_, i) => timed(url(i), randaoBody(10_000 + i), abort.signal));
      // Give up once the first kept ones are signed: by then the abandoned ones are queued behind them.
      await Promise.race(kept);
      abort.abort();
      const keptReplies = await Promise.all(kept);
      const abandonedReplies = await Promise.all(abandoned);
      expect(keptReplies.every((r) => r.status === 200)).toBe(true);
      const answered = abandonedReplies.filter((r) => r.status === 200).length;
      expect(answered).toBeLessThan(abandonedReplies.length);

      // Let the queue drain, then count what was released: only what someone could still receive.
      const deadline = Date.now() + 20_000;
      while (signer.stats().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const metrics = (await http(`${signer.url}/metrics`)).text;
      const gone = metric(metrics, 'vigil_signer_requests_shed_total{reason="client_gone"}');
      expect(gone).toBeGreaterThan(0);
      await signer.close(); // flushes the audit feed
      const audited = fs.readFileSync(path.join(config.dataDir, "audit", "signatures.jsonl"), "utf8").trim().split("\n").length;
      // Released signatures (audited) are the kept ones, the abandoned ones answered before the abort, and at most a
      // few in a worker when it came: at least half of the unanswered abandoned requests were never signed.
      const unanswered = abandoned.length - answered;
      expect(audited).toBeLessThan(kept.length + answered + unanswered / 2);
    } finally {
      await signer.close();
    }
  }, 60_000);
});
