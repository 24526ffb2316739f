/** Signing roots per type and fork under the minimal preset (this file's process runs minimal only). */
import { beforeAll, describe, expect, it } from "vitest";
import { bytesToHex } from "../../common/index.js";
import { computeSigningRoot, loadConsensus, MINIMAL_DEVNET, validateSignRequest, type Consensus } from "../../signer/signing/index.js";
import { forkMatrix, type MatrixCase } from "./fork-matrix.js";

let consensus: Consensus;
let cases: MatrixCase[] = [];

beforeAll(async () => {
  consensus = await loadConsensus("minimal");
  cases = forkMatrix(consensus.ssz, MINIMAL_DEVNET, 8);
});

describe("signing roots, minimal preset", () => {
  it("runs the minimal preset (SLOTS_PER_EPOCH 8)", () => {
    expect(consensus.preset).toBe("minimal");
    expect(consensus.slotsPerEpoch).toBe(8);
  });

  it("refuses to switch preset in the same process", () => {
    expect(() => loadConsensus("mainnet")).toThrow(/PRESET|preset/);
  });

  it("matches the independently computed root for every type and fork", () => {
    expect(cases.length).toBe(7 * 3 * 11 + 2 * 3 + 2); // 11 types x 3 epochs per fork, bare V2 form for ELECTRA+, DEPOSIT, registration
    for (const c of cases) {
      const request = validateSignRequest(structuredClone(c.body));
      const result = computeSigningRoot(request, MINIMAL_DEVNET);
      expect(bytesToHex(result.signingRoot), c.name).toBe(c.expectedSigningRoot);
      expect(result.slashing, c.name).toEqual(c.expectedSlashing);
      // The client's root, under either accepted name, is checked and accepted when right.
      expect(() => computeSigningRoot({ ...request, signingRoot: c.expectedSigningRoot }, MINIMAL_DEVNET), c.name).not.toThrow();
      expect(() => computeSigningRoot({ ...request, signing_root: c.expectedSigningRoot }, MINIMAL_DEVNET), c.name).not.toThrow();
    }
  });
});
