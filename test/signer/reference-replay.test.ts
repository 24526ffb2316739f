/**
 * Replays every request Lodestar v1.5.1 sent to its remote signer (shared/reference/lodestar-v1.5.1: the per-type
 * examples and all 7,032 signing lines of the n64 minimal-preset run) through the HTTP API of a signer whose
 * keys (interop 0..63) live on a SoftHSM2 token, with durable slashing protection: every signature must equal
 * the recorded one byte for byte. The per-type examples come from another chain (another
 * genesis_validators_root) than the n64 run, so each set gets its own signer and database: one network per signer.
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSigner } from "../../signer/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { http, interopPubkey, REFERENCE_DIR, start, testConfig, tokenWithInteropKeys } from "./harness.js";

interface Recorded {
  name: string;
  path: string;
  accept: string | undefined;
  body: unknown;
  signature: string;
}

function perTypeExamples(): Recorded[] {
  const out: Recorded[] = [];
  for (const file of fs
    .readdirSync(REFERENCE_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()) {
    const example = JSON.parse(fs.readFileSync(path.join(REFERENCE_DIR, file), "utf8"));
    if (example.request.method !== "POST") continue;
    out.push({ name: file, path: example.request.path, accept: example.request.headers.accept, body: example.body, signature: example.response.signature });
  }
  return out;
}

function runLines(): { signing: Recorded[]; gets: string[] } {
  const text = zlib.gunzipSync(fs.readFileSync(path.join(REFERENCE_DIR, "n64-minimal-requests.jsonl.gz"))).toString("utf8");
  const signing: Recorded[] = [];
  const gets: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const e = JSON.parse(line);
    if (e.type === undefined) gets.push(e.path);
    else signing.push({ name: `line ${i + 1} ${e.type}`, path: e.path, accept: e.accept, body: e.body, signature: e.signature });
  });
  return { signing, gets };
}

/** Sends requests in recorded order; up to `window` at a time except slashable ones, which go alone (order matters). */
async function replay(signer: RunningSigner, recorded: Recorded[], window = 16): Promise<{ mismatches: string[]; statuses: Map<number, number> }> {
  const mismatches: string[] = [];
  const statuses = new Map<number, number>();
  const send = async (r: Recorded) => {
    const res = await http(signer.url + r.path, { body: r.body, headers: r.accept ? { accept: r.accept } : {} });
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status !== 200) mismatches.push(`${r.name}: HTTP ${res.status} ${res.text}`);
    else if (res.json().signature !== r.signature) mismatches.push(`${r.name}: signature differs`);
  };
  let batch: Promise<void>[] = [];
  for (const r of recorded) {
    const type = (r.body as { type: string }).type;
    const slashable = type === "ATTESTATION" || type === "BLOCK" || type === "BLOCK_V2";
    if (slashable) {
      await Promise.all(batch);
      batch = [];
      await send(r);
    } else {
      batch.push(send(r));
      if (batch.length >= window) {
        await Promise.all(batch);
        batch = [];
      }
    }
  }
  await Promise.all(batch);
  return { mismatches, statuses };
}

describe("Lodestar v1.5.1 reference replay over HTTP (SoftHSM2 keys, durable slashing protection)", () => {
  let token: TestToken;
  const work = tempDir("vigil-signer-replay-");

  beforeAll(async () => {
    token = await tokenWithInteropKeys("vigil-test-signer-replay", 64);
  }, 120_000);
  afterAll(() => token?.destroy());

  it("per-type examples: every signature equals the recorded one", async () => {
    const { signer } = await start(testConfig(token, path.join(work, "examples"), { logLevel: "warn" }));
    try {
      const recorded = perTypeExamples();
      expect(recorded).toHaveLength(11);
      const { mismatches } = await replay(signer, recorded, 1);
      expect(mismatches).toEqual([]);
    } finally {
      await signer.close();
    }
  });

  it("all 7,032 signing requests of the n64 run, in order, through one slashing database", async () => {
    const { signer } = await start(testConfig(token, path.join(work, "n64"), { logLevel: "warn" }));
    try {
      const { signing, gets } = runLines();
      expect(signing).toHaveLength(7032);
      // The run's GET lines: the key list (the run's client asked for it once).
      for (const p of gets) {
        const keys = (await http(signer.url + p)).json() as string[];
        expect(keys).toHaveLength(64);
        expect(keys).toContain(interopPubkey(63));
      }
      const { mismatches, statuses } = await replay(signer, signing);
      // No request of a real run conflicts with an earlier one: all 7,032 are signed, none refused.
      expect(mismatches).toEqual([]);
      expect(statuses.get(200)).toBe(7032);

      // Replaying the run again: identical messages are "repeats" (same signing root) and are signed again,
      // byte for byte, rather than refused.
      const slashable = signing.filter((r) => ["ATTESTATION", "BLOCK_V2"].includes((r.body as { type: string }).type));
      const again = await replay(signer, slashable);
      expect(again.mismatches).toEqual([]);
    } finally {
      await signer.close();
    }
  }, 300_000);
});
