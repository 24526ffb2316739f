// The mainnet preset by configuration (this file's process runs mainnet; the others run minimal).
import path from "node:path";
import bls from "@chainsafe/bls";
import { afterAll, beforeAll, expect, it } from "vitest";
import { hexToBytes } from "../../common/index.js";
import type { RunningSigner } from "../../signer/index.js";
import { computeSigningRoot, MAINNET, validateSignRequest } from "../../signer/signing/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { http, interopPubkey, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const work = tempDir("vigil-signer-mainnet-");
const GVR = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"; // mainnet
let token: TestToken;
let signer: RunningSigner;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-mainnet", 2);
  ({ signer } = await start(testConfig(token, path.join(work, "s"), { network: "mainnet", genesisValidatorsRoot: GVR, logLevel: "warn" })));
}, 120_000);
afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

it("signs mainnet attestations and sync-committee messages with mainnet domains", async () => {
  const fork_info = { fork: { previous_version: "0x04000000", current_version: "0x05000000", epoch: "364032" }, genesis_validators_root: GVR };
  const bodies = [
    {
      type: "ATTESTATION",
      fork_info,
      attestation: {
        slot: "11649024",
        index: "0",
        beacon_block_root: `0x${"aa".repeat(32)}`,
        source: { epoch: "364030", root: `0x${"bb".repeat(32)}` },
        target: { epoch: "364032", root: `0x${"cc".repeat(32)}` },
      },
    },
    { type: "SYNC_COMMITTEE_MESSAGE", fork_info, sync_committee_message: { beacon_block_root: `0x${"dd".repeat(32)}`, slot: "11649025" } },
  ];
  for (const body of bodies) {
    const res = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(1)}`, { body });
    expect(res.status).toBe(200);
    const root = computeSigningRoot(validateSignRequest(structuredClone(body)), MAINNET).signingRoot;
    expect(bls.verify(hexToBytes(interopPubkey(1)), root, hexToBytes(res.json().signature))).toBe(true);
  }
  // The pinned mainnet root: a request for another network is refused.
  const other = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(1)}`, {
    body: { ...bodies[1], fork_info: { ...fork_info, genesis_validators_root: `0x${"00".repeat(32)}` } },
  });
  expect(other.status).toBe(412);
});
