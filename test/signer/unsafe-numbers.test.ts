// A uint64 sent as a JSON number above 2^53-1 is rounded by the JSON parser: the signer must answer 400 naming the
// field and record nothing, never sign the rounded value. Real token, database and loopback listener.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSigner } from "../../signer/index.js";
import { openSlashingDb } from "../../slashing-db/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, blockBody, GVR, http, interopPubkey, sqliteFile, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const work = tempDir("vigil-signer-unsafe-");
let token: TestToken;
let signer: RunningSigner;
let slashingDb: string;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-unsafe", 2);
  const config = testConfig(token, path.join(work, "main"), { genesisValidatorsRoot: GVR, logLevel: "warn" });
  slashingDb = sqliteFile(config);
  ({ signer } = await start(config));
}, 120_000);

afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

/** JSON text of `body` with the string at `field` (dotted) replaced by a bare number literal. */
function rawWithNumber(body: unknown, field: string, literal: string): string {
  const copy = structuredClone(body) as Record<string, unknown>;
  const keys = field.split(".");
  let node = copy;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
  node[keys[keys.length - 1]!] = "@@N@@";
  return JSON.stringify(copy).replace(`"@@N@@"`, literal);
}

function recorded(pubkey: string): { blocks: string[]; attestations: [string, string][] } {
  const db = openSlashingDb(slashingDb);
  try {
    const v = db.exportInterchange({ pubkeys: [pubkey] }).data[0];
    return {
      blocks: (v?.signed_blocks ?? []).map((b) => b.slot),
      attestations: (v?.signed_attestations ?? []).map((a) => [a.source_epoch, a.target_epoch]),
    };
  } finally {
    db.close();
  }
}

describe("uint64 values sent as unsafe JSON numbers", () => {
  const url = (i: number) => `${signer.url}/api/v1/eth2/sign/${interopPubkey(i)}`;

  it("attestation source 9007199254740993 → 400 naming attestation.source.epoch, nothing recorded", async () => {
    // biome-ignore lint/correctness/noPrecisionLoss: a target the JSON parser must not round is the point of this test
    const raw = rawWithNumber(attestationBody(1, 9007199254740995), "attestation.source.epoch", "9007199254740993");
    const res = await http(url(0), { rawBody: raw });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: "INVALID_REQUEST", field: "attestation.source.epoch" });
    expect(recorded(interopPubkey(0)).attestations).toEqual([]);
  });

  it("block slot 9007199254740993 → 400 naming beacon_block.block_header.slot, nothing recorded", async () => {
    const raw = rawWithNumber(blockBody(1), "beacon_block.block_header.slot", "9007199254740993");
    const res = await http(url(0), { rawBody: raw });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: "INVALID_REQUEST", field: "beacon_block.block_header.slot" });
    expect(recorded(interopPubkey(0)).blocks).toEqual([]);
  });

  it("2^53-1 as a number is signed and recorded exactly, the same signature as the decimal string", async () => {
    const body = attestationBody(9007199254740990, 9007199254740991);
    const asNumber = await http(url(1), { rawBody: rawWithNumber(body, "attestation.target.epoch", "9007199254740991") });
    expect(asNumber.status).toBe(200);
    expect(recorded(interopPubkey(1)).attestations).toEqual([["9007199254740990", "9007199254740991"]]);
    // the same attestation as strings is an exact repeat (same signing root) and gets the same signature
    const asString = await http(url(1), { body });
    expect(asString.status).toBe(200);
    expect(asString.json()).toEqual(asNumber.json());
  });
});
