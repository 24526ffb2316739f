// The audit feed across crashes: a real signer process under a load of concurrent signing requests is killed
// (SIGKILL) mid-load, several rounds. After each restart every block and attestation signature a client
// received is in the feed, no sequence number was ever used for two entries, and a reader that kept its
// cursor from before the crash sees every signature it had not seen yet.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSigner } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, blockBody, GVR, http, interopPubkey, randaoBody, tokenWithInteropKeys, writePrivate } from "./harness.js";

const KEYS = 8;
const ROUNDS = 4;
const CONCURRENCY = 32;
/** Signatures received in a round before the kill. */
const KILL_AFTER = 150;
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const work = tempDir("vigil-audit-crash-");
let token: TestToken;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-audit-crash", KEYS);
}, 120_000);
afterAll(() => token?.destroy());

interface Entry {
  seq: number;
  type: string;
  signature: string;
}

async function readFeed(url: string, after: number): Promise<{ entries: Entry[]; next: number }> {
  const entries: Entry[] = [];
  for (;;) {
    const res = await http(`${url}/admin/v1/signatures?after=${after}&limit=10000`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    const page = res.json() as { signatures: Entry[]; next: number };
    entries.push(...page.signatures);
    if (page.signatures.length === 0) return { entries, next: after };
    after = page.next;
  }
}

describe("the audit feed survives SIGKILL", () => {
  it(`${ROUNDS} rounds of SIGKILL under load: every block and attestation released is in the feed, seqs never repeat`, async () => {
    const dataDir = path.join(work, "data");
    const configFile = writePrivate(
      path.join(work, "signer.json"),
      JSON.stringify({
        network: "minimal-devnet",
        genesisValidatorsRoot: GVR,
        listen: { host: "127.0.0.1", port: 0 },
        dataDir,
        hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
        admin: { tokenFile: writePrivate(path.join(work, "admin.token"), `${ADMIN_TOKEN}\n`) },
        logLevel: "error",
      }),
    );
    const seqToSignature = new Map<number, string>(); // every entry any reader has ever been served
    const slashableReceived = new Set<string>();
    let cursor = 0; // the reader's cursor, kept across crashes
    const seenByReader = new Set<string>();
    const nextEpoch = new Array<number>(KEYS).fill(1);
    const nextSlot = new Array<number>(KEYS).fill(1);
    let lastMaxSeq = 0;

    const serve = (entries: Entry[]) => {
      for (const e of entries) {
        const before = seqToSignature.get(e.seq);
        if (before !== undefined) expect(e.signature, `seq ${e.seq} was reused`).toBe(before);
        seqToSignature.set(e.seq, e.signature);
      }
    };

    for (let round = 0; round <= ROUNDS; round++) {
      const signer = spawnSigner(configFile, "ignore");
      const url = await signer.ready;

      // After each restart: the whole feed is consistent and holds every slashable signature received.
      const all = await readFeed(url, 0);
      serve(all.entries);
      const seqs = all.entries.map((e) => e.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      const inFeed = new Set(all.entries.map((e) => e.signature));
      const missing = [...slashableReceived].filter((s) => !inFeed.has(s));
      expect(missing, `round ${round}: released signatures missing from the feed`).toEqual([]);
      // The reader that kept its cursor sees everything it had not seen.
      const fromCursor = await readFeed(url, cursor);
      serve(fromCursor.entries);
      for (const e of fromCursor.entries) {
        expect(e.seq).toBeGreaterThan(cursor);
        seenByReader.add(e.signature);
      }
      expect([...slashableReceived].filter((s) => !seenByReader.has(s))).toEqual([]);
      cursor = fromCursor.next;
      if (round === ROUNDS) {
        signer.child.kill("SIGTERM");
        await signer.exited;
        break;
      }

      // Load, with the reader polling, until KILL_AFTER signatures were received; then SIGKILL.
      let received = 0;
      let killed = false;
      let killNow!: () => void;
      const enough = new Promise<void>((r) => (killNow = r));
      const worker = async (w: number) => {
        for (let n = 0; !killed; n++) {
          const key = (w + n) % KEYS;
          const kind = n % 10 === 9 ? "block" : n % 10 === 8 ? "randao" : "attestation";
          let body: unknown;
          if (kind === "block") body = blockBody(nextSlot[key]!++);
          else if (kind === "randao") body = randaoBody(n);
          else {
            const e = nextEpoch[key]!++;
            body = attestationBody(e, e + 1);
          }
          try {
            const res = await http(`${url}/api/v1/eth2/sign/${interopPubkey(key)}`, { body });
            if (res.status === 200) {
              if (kind !== "randao") slashableReceived.add(res.json().signature as string);
              if (++received >= KILL_AFTER) killNow();
            }
          } catch {
            return; // the signer is gone
          }
        }
      };
      const reader = async () => {
        while (!killed) {
          try {
            const page = await readFeed(url, cursor);
            serve(page.entries);
            for (const e of page.entries) seenByReader.add(e.signature);
            cursor = page.next;
          } catch {
            return;
          }
        }
      };
      const load = [...Array.from({ length: CONCURRENCY }, (_, w) => worker(w)), reader()];
      await enough;
      signer.child.kill("SIGKILL");
      killed = true;
      await signer.exited;
      await Promise.all(load);
      expect(cursor).toBeGreaterThanOrEqual(lastMaxSeq);
      lastMaxSeq = Math.max(...seqToSignature.keys());
    }
    expect(slashableReceived.size).toBeGreaterThanOrEqual(ROUNDS * KILL_AFTER * 0.7);
  }, 300_000);
});
