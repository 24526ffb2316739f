/**
 * Replays every signing request Lodestar v1.5.1 sent to a remote signer on a minimal-preset dev chain
 * (shared/reference/lodestar-v1.5.1 beside the repository): our signing root must equal the one the client sent, and our
 * pool's signature must equal the recorded one byte for byte. Minimal preset: this file only.
 * The BLS workers run from dist/: run `npx tsc -p tsconfig.json` before vitest (the npm test script does).
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex, hexToBytes } from "../../common/index.js";
import { BlsPool, computeSigningRoot, loadConsensus, MINIMAL_DEVNET, validateSignRequest, type SignRequest } from "../../signer/signing/index.js";
import { interopSecretKeys } from "./interop-keys.js";
import { REFERENCE_DIR } from "./reference.js";

const SIGN_PATH = /^\/api\/v1\/eth2\/sign\/(0x[0-9a-fA-F]{96})$/;

interface Recorded {
  name: string;
  pubkey: string;
  body: unknown;
  signingRoot: string;
  signature: string;
}

function loadRecorded(): Recorded[] {
  const recorded: Recorded[] = [];
  for (const file of fs
    .readdirSync(REFERENCE_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()) {
    const example = JSON.parse(fs.readFileSync(path.join(REFERENCE_DIR, file), "utf8"));
    const match = SIGN_PATH.exec(example.request.path);
    if (!match || example.request.method !== "POST") continue; // GET_publicKeys
    recorded.push({
      name: file,
      pubkey: match[1]!,
      body: example.body,
      signingRoot: example.body.signingRoot,
      signature: example.response.signature,
    });
  }
  const lines = zlib
    .gunzipSync(fs.readFileSync(path.join(REFERENCE_DIR, "n64-minimal-requests.jsonl.gz")))
    .toString("utf8")
    .split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const entry = JSON.parse(line);
    if (entry.type === undefined) return; // GET lines
    recorded.push({
      name: `jsonl line ${i + 1} ${entry.type}`,
      pubkey: entry.pubkey,
      body: entry.body,
      signingRoot: entry.signingRoot,
      signature: entry.signature,
    });
  });
  return recorded;
}

describe("Lodestar v1.5.1 reference replay (minimal preset)", () => {
  let recorded: Recorded[];
  let pool: BlsPool;
  const requests = new Map<Recorded, SignRequest>();

  beforeAll(async () => {
    await loadConsensus("minimal");
    recorded = loadRecorded();
    pool = await BlsPool.start(interopSecretKeys(64), { preset: "minimal", threads: 2, maxQueueDepth: 20_000 });
  }, 60_000);

  afterAll(async () => {
    await pool?.close();
  });

  it("has the expected requests", () => {
    const perFile = recorded.filter((r) => r.name.endsWith(".json")).length;
    expect(perFile).toBe(11);
    expect(recorded.length - perFile).toBe(7032);
  });

  it("pool holds interop keys 0..63", () => {
    expect(pool.publicKeys).toHaveLength(64);
    expect(pool.hasKey("0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c")).toBe(true);
  });

  it("computes the client's signing root for every request", () => {
    let matched = 0;
    for (const r of recorded) {
      const request = validateSignRequest(structuredClone(r.body));
      requests.set(r, request);
      // computeSigningRoot also rejects a client signingRoot that differs; compare explicitly for a clear failure.
      const { signingRoot } = computeSigningRoot(request, MINIMAL_DEVNET);
      expect(bytesToHex(signingRoot), r.name).toBe(r.signingRoot.toLowerCase());
      matched++;
    }
    expect(matched).toBe(recorded.length);
    console.log(`signing roots matched: ${matched}/${recorded.length}`);
  });

  it("signs every request with the recorded signature, byte for byte", async () => {
    const signatures = await Promise.all(recorded.map((r) => pool.sign(r.pubkey, hexToBytes(r.signingRoot))));
    let matched = 0;
    signatures.forEach((signature, i) => {
      const r = recorded[i]!;
      expect(bytesToHex(signature), r.name).toBe(r.signature.toLowerCase());
      matched++;
    });
    expect(matched).toBe(recorded.length);
    expect(pool.queueDepth).toBe(0);
    console.log(`signatures matched: ${matched}/${recorded.length}`);
  }, 120_000);

  it("reports slashing facts for blocks and attestations", () => {
    for (const [r, request] of requests) {
      const { slashing } = computeSigningRoot(request, MINIMAL_DEVNET);
      if (request.type === "BLOCK_V2") expect(slashing.kind, r.name).toBe("block");
      else if (request.type === "ATTESTATION") {
        expect(slashing).toEqual({
          kind: "attestation",
          sourceEpoch: BigInt(request.attestation.source.epoch),
          targetEpoch: BigInt(request.attestation.target.epoch),
        });
      } else expect(slashing.kind, r.name).toBe("none");
    }
  });
});
