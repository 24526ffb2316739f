/** Malformed bodies are rejected naming the field; a client signingRoot that differs is caught. Minimal preset. */
import fs from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  computeSigningRoot,
  InvalidSignRequestError,
  loadConsensus,
  MINIMAL_DEVNET,
  SigningRootMismatchError,
  UnknownForkVersionError,
  validateSignRequest,
} from "../../signer/signing/index.js";
import { REFERENCE_DIR } from "./reference.js";

const FORK_INFO = {
  fork: { previous_version: "0x00000001", current_version: "0x01000001", epoch: "0" },
  genesis_validators_root: "0x270d43e74ce340de4bca2b1936beca0f4f5408d9e78aec4850920baf659d5b69",
};
const ROOT = `0x${"11".repeat(32)}`;
const SIG = `0x${"22".repeat(96)}`;
const attestationData = () => ({ slot: "0", index: "0", beacon_block_root: ROOT, source: { epoch: "0", root: ROOT }, target: { epoch: "0", root: ROOT } });
const attestation = () => ({ type: "ATTESTATION", fork_info: structuredClone(FORK_INFO), attestation: attestationData() });
const header = () => ({ slot: "9", proposer_index: "1", parent_root: ROOT, state_root: ROOT, body_root: ROOT });
const aggregate = (committeeBits?: string) => ({
  aggregator_index: "1",
  aggregate: { aggregation_bits: "0x03", data: attestationData(), signature: SIG, ...(committeeBits ? { committee_bits: committeeBits } : {}) },
  selection_proof: SIG,
});

/** Applies `mutate` to a fresh valid body and expects INVALID_REQUEST naming `field`. */
function expectInvalid(body: unknown, field: string): void {
  let error: unknown;
  try {
    computeSigningRoot(validateSignRequest(body), MINIMAL_DEVNET);
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${field} to be rejected`).toBeInstanceOf(InvalidSignRequestError);
  expect((error as InvalidSignRequestError).code).toBe("INVALID_REQUEST");
  expect((error as InvalidSignRequestError).field).toBe(field);
  expect((error as Error).message).toContain(field);
}

function altairBlockBody() {
  const example = JSON.parse(fs.readFileSync(`${REFERENCE_DIR}/BLOCK_V2_ALTAIR.json`, "utf8"));
  return example.body;
}

beforeAll(async () => {
  await loadConsensus("minimal");
});

describe("request validation names the field at fault", () => {
  const cases: [string, () => unknown, string][] = [
    ["a body that is not an object", () => "ATTESTATION", ""],
    ["a missing type", () => ({ attestation: attestationData(), fork_info: FORK_INFO }), "type"],
    ["an unknown type", () => ({ ...attestation(), type: "BLOB_SIDECAR" }), "type"],
    ["a missing message", () => ({ type: "ATTESTATION", fork_info: FORK_INFO }), "attestation"],
    ["a missing fork_info", () => ({ type: "RANDAO_REVEAL", randao_reveal: { epoch: "1" } }), "fork_info"],
    [
      "a non-decimal epoch",
      () => {
        const b = attestation();
        b.attestation.source.epoch = "0x10";
        return b;
      },
      "attestation.source.epoch",
    ],
    [
      "a negative epoch",
      () => {
        const b = attestation();
        b.attestation.target.epoch = "-1";
        return b;
      },
      "attestation.target.epoch",
    ],
    ["a uint64 above 2^64-1", () => ({ type: "RANDAO_REVEAL", fork_info: FORK_INFO, randao_reveal: { epoch: "18446744073709551616" } }), "randao_reveal.epoch"],
    [
      "a short root",
      () => {
        const b = attestation();
        b.attestation.beacon_block_root = "0x1234";
        return b;
      },
      "attestation.beacon_block_root",
    ],
    [
      "a bad fork version",
      () => {
        const b = attestation();
        b.fork_info.fork.current_version = "0x010000";
        return b;
      },
      "fork_info.fork.current_version",
    ],
    [
      "a missing genesis_validators_root",
      () => {
        const b = attestation() as { fork_info: Partial<typeof FORK_INFO> };
        delete b.fork_info.genesis_validators_root;
        return b;
      },
      "fork_info.genesis_validators_root",
    ],
    ["a malformed signingRoot", () => ({ ...attestation(), signingRoot: "0xabc" }), "signingRoot"],
    ["signing_root and signingRoot that differ", () => ({ ...attestation(), signingRoot: ROOT, signing_root: `0x${"33".repeat(32)}` }), "signing_root"],
    [
      "an unknown BLOCK_V2 version",
      () => ({ type: "BLOCK_V2", fork_info: FORK_INFO, beacon_block: { version: "GLOAS", block_header: header() } }),
      "beacon_block.version",
    ],
    [
      "a Bellatrix block without block_header",
      () => ({ type: "BLOCK_V2", fork_info: FORK_INFO, beacon_block: { version: "BELLATRIX", block: header() } }),
      "beacon_block.block_header",
    ],
    [
      "a Phase0 block without block",
      () => ({ type: "BLOCK_V2", fork_info: FORK_INFO, beacon_block: { version: "PHASE0", block_header: header() } }),
      "beacon_block.block",
    ],
    [
      "a header without body_root",
      () => {
        const h: Partial<ReturnType<typeof header>> = header();
        delete h.body_root;
        return { type: "BLOCK_V2", fork_info: FORK_INFO, beacon_block: { version: "DENEB", block_header: h } };
      },
      "beacon_block.block_header.body_root",
    ],
    [
      "an Altair block without sync_aggregate",
      () => {
        const b = altairBlockBody();
        delete b.beacon_block.block.body.sync_aggregate;
        return b;
      },
      "beacon_block.block.body.sync_aggregate",
    ],
    [
      "an Altair block whose sync bits do not fit the preset",
      () => {
        const b = altairBlockBody();
        b.beacon_block.block.body.sync_aggregate.sync_committee_bits = `0x${"00".repeat(64)}`;
        delete b.signingRoot;
        return b;
      },
      "beacon_block.block",
    ],
    [
      "an Electra aggregate without committee_bits",
      () => ({ type: "AGGREGATE_AND_PROOF_V2", fork_info: FORK_INFO, aggregate_and_proof: { version: "ELECTRA", data: aggregate() } }),
      "aggregate_and_proof.data.aggregate.committee_bits",
    ],
    [
      "an AGGREGATE_AND_PROOF_V2 with version but no data",
      () => ({ type: "AGGREGATE_AND_PROOF_V2", fork_info: FORK_INFO, aggregate_and_proof: { version: "DENEB" } }),
      "aggregate_and_proof.data",
    ],
    [
      "a deposit without genesis_fork_version",
      () => ({ type: "DEPOSIT", deposit: { pubkey: `0x${"aa".repeat(48)}`, withdrawal_credentials: ROOT, amount: "32000000000" } }),
      "deposit.genesis_fork_version",
    ],
    [
      "a registration with a short fee_recipient",
      () => ({
        type: "VALIDATOR_REGISTRATION",
        validator_registration: { fee_recipient: "0x00", gas_limit: "1", timestamp: "1", pubkey: `0x${"aa".repeat(48)}` },
      }),
      "validator_registration.fee_recipient",
    ],
    [
      "a sync message with a bad root",
      () => ({ type: "SYNC_COMMITTEE_MESSAGE", fork_info: FORK_INFO, sync_committee_message: { beacon_block_root: "root", slot: "1" } }),
      "sync_committee_message.beacon_block_root",
    ],
    [
      "a contribution without selection_proof",
      () => ({ type: "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF", fork_info: FORK_INFO, contribution_and_proof: { aggregator_index: "1", contribution: {} } }),
      "contribution_and_proof.selection_proof",
    ],
  ];
  it.each(cases)("rejects %s", (_, body, field) => expectInvalid(body(), field));
});

describe("what validation lets through", () => {
  it("ignores unknown properties, as Web3Signer does", () => {
    const body = { ...attestation(), extra: 1, fork_info: { ...FORK_INFO, extra: true } };
    expect(() => computeSigningRoot(validateSignRequest(body), MINIMAL_DEVNET)).not.toThrow();
  });

  it("coerces bare numbers like fastify's ajv does", () => {
    const body = attestation() as { attestation: { slot: unknown } };
    body.attestation.slot = 5;
    expect(validateSignRequest(body)).toMatchObject({ attestation: { slot: "5" } });
  });

  it("needs no fork_info for DEPOSIT and VALIDATOR_REGISTRATION", () => {
    const deposit = {
      type: "DEPOSIT",
      deposit: { pubkey: `0x${"aa".repeat(48)}`, withdrawal_credentials: ROOT, amount: "32000000000", genesis_fork_version: "0x00000000" },
    };
    expect(computeSigningRoot(validateSignRequest(deposit), MINIMAL_DEVNET).slashing).toEqual({ kind: "none" });
  });

  it("accepts the legacy bare AGGREGATE_AND_PROOF_V2 object", () => {
    const body = { type: "AGGREGATE_AND_PROOF_V2", fork_info: FORK_INFO, aggregate_and_proof: aggregate() };
    const legacy = { type: "AGGREGATE_AND_PROOF", fork_info: FORK_INFO, aggregate_and_proof: aggregate() };
    expect(computeSigningRoot(validateSignRequest(body), MINIMAL_DEVNET).signingRoot).toEqual(
      computeSigningRoot(validateSignRequest(legacy), MINIMAL_DEVNET).signingRoot,
    );
  });
});

describe("client signing root", () => {
  it("is refused when it differs from the computed one, under either name", () => {
    for (const name of ["signingRoot", "signing_root"]) {
      const body = { ...attestation(), [name]: `0x${"44".repeat(32)}` };
      let error: unknown;
      try {
        computeSigningRoot(validateSignRequest(body), MINIMAL_DEVNET);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SigningRootMismatchError);
      expect((error as SigningRootMismatchError).code).toBe("SIGNING_ROOT_MISMATCH");
    }
  });

  it("is accepted in any letter case when it matches", () => {
    const { signingRoot } = computeSigningRoot(validateSignRequest(attestation()), MINIMAL_DEVNET);
    const upper = `0x${Buffer.from(signingRoot).toString("hex").toUpperCase()}`;
    expect(() => computeSigningRoot(validateSignRequest({ ...attestation(), signing_root: upper }), MINIMAL_DEVNET)).not.toThrow();
  });
});

describe("EIP-7044 needs a known fork version", () => {
  it("refuses a voluntary exit whose current_version the network does not list", () => {
    const body = {
      type: "VOLUNTARY_EXIT",
      fork_info: { ...FORK_INFO, fork: { previous_version: "0x06000001", current_version: "0x07000001", epoch: "5" } },
      voluntary_exit: { epoch: "6", validator_index: "1" },
    };
    expect(() => computeSigningRoot(validateSignRequest(body), MINIMAL_DEVNET)).toThrow(UnknownForkVersionError);
  });
});
