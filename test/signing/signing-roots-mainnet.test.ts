/**
 * Signing roots per type and fork under the mainnet preset (this file's process runs mainnet only), and the
 * uint64 range limits.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { bytesToHex } from "../../common/index.js";
import { computeSigningRoot, loadConsensus, MAINNET, validateSignRequest, type Consensus } from "../../signer/signing/index.js";
import { forkMatrix, type MatrixCase } from "./fork-matrix.js";

let consensus: Consensus;
let cases: MatrixCase[] = [];

beforeAll(async () => {
  consensus = await loadConsensus("mainnet");
  cases = forkMatrix(consensus.ssz, MAINNET, 32);
});

const OPENAPI_FORK_INFO = {
  fork: { previous_version: "0x00000001", current_version: "0x00000001", epoch: "1" },
  genesis_validators_root: "0x04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673",
};
const openApiHeader = (bodyRoot: string) => ({
  slot: "0",
  proposer_index: "4666673844721362956", // above 2^53: needs the full uint64 range
  parent_root: "0x367cbd40ac7318427aadb97345a91fa2e965daf3158d7f1846f1306305f41bef",
  state_root: "0xfd18cf40cc907a739be483f1ca0ee23ad65cdd3df23205eabc6d660a75d1f54e",
  body_root: bodyRoot,
});

describe("signing roots, mainnet preset", () => {
  it("runs the mainnet preset (SLOTS_PER_EPOCH 32)", () => {
    expect(consensus.preset).toBe("mainnet");
    expect(consensus.slotsPerEpoch).toBe(32);
  });

  it("matches the independently computed root for every type and fork", () => {
    expect(cases.length).toBe(7 * 3 * 11 + 2 * 3 + 2); // 11 types x 3 epochs per fork, bare V2 form for ELECTRA+, DEPOSIT, registration
    for (const c of cases) {
      const result = computeSigningRoot(validateSignRequest(structuredClone(c.body)), MAINNET);
      expect(bytesToHex(result.signingRoot), c.name).toBe(c.expectedSigningRoot);
      expect(result.slashing, c.name).toEqual(c.expectedSlashing);
    }
  });

  // Web3Signer's OpenAPI BLOCK_V2 examples use proposer_index 4666673844721362956. Lodestar types validator
  // indices as JS numbers; the signer reads every uint64 exactly (exact-uint64.ts). Roots: test/signer/uint64-range.
  it("computes the root of a validator index above 2^53-1 (Web3Signer's example proposer_index)", () => {
    const body = { type: "BLOCK_V2", fork_info: OPENAPI_FORK_INFO, beacon_block: { version: "CAPELLA", block_header: openApiHeader(`0x${"11".repeat(32)}`) } };
    const result = computeSigningRoot(validateSignRequest(body), MAINNET);
    expect(result.slashing).toEqual({ kind: "block", slot: 0n });
    expect(result.signingRoot).toHaveLength(32);
  });

  it("takes slots and epochs slashing protection records up to 2^63-1, its databases' limit, and refuses 2^63 naming the field", () => {
    const max = (2n ** 63n - 1n).toString();
    const header = { ...openApiHeader(`0x${"11".repeat(32)}`), proposer_index: "1", slot: max };
    const block = computeSigningRoot(
      validateSignRequest({ type: "BLOCK_V2", fork_info: OPENAPI_FORK_INFO, beacon_block: { version: "DENEB", block_header: header } }),
      MAINNET,
    );
    expect(block.slashing).toEqual({ kind: "block", slot: 2n ** 63n - 1n });
    const checkpoint = { epoch: max, root: `0x${"22".repeat(32)}` };
    const attestation = { slot: max, index: "0", beacon_block_root: `0x${"33".repeat(32)}`, source: checkpoint, target: checkpoint };
    const result = computeSigningRoot(validateSignRequest({ type: "ATTESTATION", fork_info: OPENAPI_FORK_INFO, attestation }), MAINNET);
    expect(result.slashing).toEqual({ kind: "attestation", sourceEpoch: 2n ** 63n - 1n, targetEpoch: 2n ** 63n - 1n });
    const tooLarge = { ...attestation, target: { ...checkpoint, epoch: (2n ** 63n).toString() } };
    expect(() => computeSigningRoot(validateSignRequest({ type: "ATTESTATION", fork_info: OPENAPI_FORK_INFO, attestation: tooLarge }), MAINNET)).toThrow(
      expect.objectContaining({ field: "attestation.target.epoch" }),
    );
  });
});
