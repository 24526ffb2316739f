/**
 * Signing roots of every Web3Signer request type, computed from the typed body with @lodestar/types SSZ
 * containers and the consensus-spec domains, plus the facts slashing protection needs.
 */
import { bytesToHex, hexToBytes, MAX_UINT64, parseUint } from "../../common/index.js";
import { loadedConsensus, type Consensus } from "./consensus.js";
import { domainAtEpoch, genesisDomain, signingRootOf, computeDomain, voluntaryExitForkVersion } from "./domains.js";
import { InvalidSignRequestError, SigningRootMismatchError } from "./errors.js";
import { exactUint64 } from "./exact-uint64.js";
import type { NetworkConfig } from "./network.js";
import { clientSigningRoot, type AggregateAndProofJson, type AggregateAndProofV2Json, type BlockV2SignRequest, type SignRequest } from "./requests.js";
import { ELECTRA_AGGREGATE_VERSIONS } from "./schemas.js";

/** What the slashing-protection database checks before the signature leaves the signer. */
export type SlashingFacts = { kind: "block"; slot: bigint } | { kind: "attestation"; sourceEpoch: bigint; targetEpoch: bigint } | { kind: "none" };

export interface SigningRootResult {
  signingRoot: Uint8Array;
  slashing: SlashingFacts;
}

/** Parses a decimal uint64 string (schema-checked already) and enforces the 2^64-1 bound a regex cannot. */
export function parseUint64(value: string, field: string): bigint {
  const parsed = parseUint(value, MAX_UINT64, "zero-padded");
  if (parsed.ok) return parsed.value;
  throw new InvalidSignRequestError(field, parsed.problem === "TOO_LARGE" ? "exceeds 2^64-1" : "must be a decimal uint64 string");
}

/** 2^63-1: the largest slot or epoch the slashing-protection databases store (SQLite INTEGER, PostgreSQL bigint). */
export const MAX_RECORDED_UINT64 = 2n ** 63n - 1n;

/**
 * A block's slot or an attestation's epochs: slashing protection must record them before signing, and cannot
 * above 2^63-1, so such a request is refused here, naming its field, before any work (fail closed). No real chain
 * comes near: 2^63 slots of 12 s is about 3.5e12 years.
 */
function parseRecordedUint64(value: string, field: string): bigint {
  const parsed = parseUint64(value, field);
  if (parsed > MAX_RECORDED_UINT64) throw new InvalidSignRequestError(field, `exceeds 2^63-1, the largest slot or epoch slashing protection can record`);
  return parsed;
}

/** Type.fromJson, with a parse failure reported as an invalid request naming the field. */
function fromJson<T>(type: { fromJson(json: unknown): T }, json: unknown, field: string): T {
  try {
    return type.fromJson(json);
  } catch (e) {
    throw new InvalidSignRequestError(field, e instanceof Error ? e.message : String(e));
  }
}

/** hash_tree_root of the JSON value, every uint64 in it read exactly (exact-uint64.ts), never through a JS number. */
function hashTreeRoot<T>(type: { fromJson(json: unknown): T; hashTreeRoot(value: T): Uint8Array }, json: unknown, field: string) {
  const exact = exactUint64(type);
  return exact.hashTreeRoot(fromJson(exact, json, field));
}

/**
 * Computes the signing root of a validated request and checks the client's signingRoot if it sent one.
 * Needs `await loadConsensus(network.preset)` beforehand. Throws InvalidSignRequestError,
 * SigningRootMismatchError or UnknownForkVersionError.
 */
export function computeSigningRoot(request: SignRequest, network: NetworkConfig): SigningRootResult {
  const result = computeSigningRootUnchecked(request, network, loadedConsensus(network.preset));
  const claimed = clientSigningRoot(request);
  if (claimed !== undefined) {
    const computed = bytesToHex(result.signingRoot);
    if (claimed.toLowerCase() !== computed) throw new SigningRootMismatchError(claimed, computed);
  }
  return result;
}

function computeSigningRootUnchecked(request: SignRequest, network: NetworkConfig, c: Consensus): SigningRootResult {
  const { ssz, domains } = c;
  const spe = BigInt(c.slotsPerEpoch);
  const none: SlashingFacts = { kind: "none" };
  switch (request.type) {
    case "BLOCK": {
      const slot = parseRecordedUint64(request.block.slot, "block.slot");
      const root = hashTreeRoot(ssz.phase0.BeaconBlock, request.block, "block");
      return blockResult(c, root, slot, request.fork_info);
    }
    case "BLOCK_V2":
      return blockV2(c, request);
    case "ATTESTATION": {
      const data = request.attestation;
      const sourceEpoch = parseRecordedUint64(data.source.epoch, "attestation.source.epoch");
      const targetEpoch = parseRecordedUint64(data.target.epoch, "attestation.target.epoch");
      const root = hashTreeRoot(ssz.phase0.AttestationData, data, "attestation");
      const domain = domainAtEpoch(c, domains.beaconAttester, request.fork_info, targetEpoch);
      return { signingRoot: signingRootOf(c, root, domain), slashing: { kind: "attestation", sourceEpoch, targetEpoch } };
    }
    case "AGGREGATION_SLOT": {
      const slot = parseUint64(request.aggregation_slot.slot, "aggregation_slot.slot");
      const domain = domainAtEpoch(c, domains.selectionProof, request.fork_info, slot / spe);
      return { signingRoot: signingRootOf(c, ssz.UintBn64.hashTreeRoot(slot), domain), slashing: none };
    }
    case "AGGREGATE_AND_PROOF":
      return aggregateAndProof(c, request.aggregate_and_proof, false, "aggregate_and_proof", request.fork_info);
    case "AGGREGATE_AND_PROOF_V2": {
      const { data, electra, field } = unwrapAggregateV2(request.aggregate_and_proof);
      return aggregateAndProof(c, data, electra, field, request.fork_info);
    }
    case "RANDAO_REVEAL": {
      const epoch = parseUint64(request.randao_reveal.epoch, "randao_reveal.epoch");
      const domain = domainAtEpoch(c, domains.randao, request.fork_info, epoch);
      return { signingRoot: signingRootOf(c, ssz.UintBn64.hashTreeRoot(epoch), domain), slashing: none };
    }
    case "VOLUNTARY_EXIT": {
      const epoch = parseUint64(request.voluntary_exit.epoch, "voluntary_exit.epoch");
      const root = hashTreeRoot(ssz.phase0.VoluntaryExit, request.voluntary_exit, "voluntary_exit");
      const version = voluntaryExitForkVersion(network, request.fork_info, epoch);
      const domain = computeDomain(c, domains.voluntaryExit, hexToBytes(version), hexToBytes(request.fork_info.genesis_validators_root));
      return { signingRoot: signingRootOf(c, root, domain), slashing: none };
    }
    case "DEPOSIT": {
      // The body names its genesis fork version: deposits are signed before (or regardless of) the chain's genesis.
      const root = hashTreeRoot(ssz.phase0.DepositMessage, request.deposit, "deposit");
      const domain = genesisDomain(c, domains.deposit, request.deposit.genesis_fork_version);
      return { signingRoot: signingRootOf(c, root, domain), slashing: none };
    }
    case "SYNC_COMMITTEE_MESSAGE": {
      const message = request.sync_committee_message;
      const slot = parseUint64(message.slot, "sync_committee_message.slot");
      const root = hashTreeRoot(ssz.Root, message.beacon_block_root, "sync_committee_message.beacon_block_root");
      const domain = domainAtEpoch(c, domains.syncCommittee, request.fork_info, slot / spe);
      return { signingRoot: signingRootOf(c, root, domain), slashing: none };
    }
    case "SYNC_COMMITTEE_SELECTION_PROOF": {
      const data = request.sync_aggregator_selection_data;
      const slot = parseUint64(data.slot, "sync_aggregator_selection_data.slot");
      const root = hashTreeRoot(ssz.altair.SyncAggregatorSelectionData, data, "sync_aggregator_selection_data");
      const domain = domainAtEpoch(c, domains.syncCommitteeSelectionProof, request.fork_info, slot / spe);
      return { signingRoot: signingRootOf(c, root, domain), slashing: none };
    }
    case "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF": {
      const proof = request.contribution_and_proof;
      const slot = parseUint64(proof.contribution.slot, "contribution_and_proof.contribution.slot");
      const root = hashTreeRoot(ssz.altair.ContributionAndProof, proof, "contribution_and_proof");
      const domain = domainAtEpoch(c, domains.contributionAndProof, request.fork_info, slot / spe);
      return { signingRoot: signingRootOf(c, root, domain), slashing: none };
    }
    case "VALIDATOR_REGISTRATION": {
      // Builder API: DOMAIN_APPLICATION_BUILDER over the network's genesis fork version, zero genesis root.
      const root = hashTreeRoot(ssz.bellatrix.ValidatorRegistrationV1, request.validator_registration, "validator_registration");
      const domain = genesisDomain(c, domains.applicationBuilder, network.genesisForkVersion);
      return { signingRoot: signingRootOf(c, root, domain), slashing: none };
    }
    default: {
      const unknown: never = request;
      throw new InvalidSignRequestError("type", `unsupported type ${(unknown as { type: string }).type}`);
    }
  }
}

function blockResult(c: Consensus, blockRoot: Uint8Array, slot: bigint, forkInfo: SignRequest["fork_info"]): SigningRootResult {
  if (!forkInfo) throw new InvalidSignRequestError("fork_info", "is required");
  const domain = domainAtEpoch(c, c.domains.beaconProposer, forkInfo, slot / BigInt(c.slotsPerEpoch));
  return { signingRoot: signingRootOf(c, blockRoot, domain), slashing: { kind: "block", slot } };
}

function blockV2(c: Consensus, request: BlockV2SignRequest): SigningRootResult {
  const blockRequest = request.beacon_block;
  const { ssz } = c;
  switch (blockRequest.version) {
    case "PHASE0":
    case "ALTAIR": {
      const slot = parseRecordedUint64(blockRequest.block.slot, "beacon_block.block.slot");
      const type = blockRequest.version === "PHASE0" ? ssz.phase0.BeaconBlock : ssz.altair.BeaconBlock;
      const root = hashTreeRoot(type, blockRequest.block, "beacon_block.block");
      return blockResult(c, root, slot, request.fork_info);
    }
    default: {
      // From Bellatrix on the client sends only the header; hash_tree_root(header) == hash_tree_root(block).
      const header = blockRequest.block_header;
      const slot = parseRecordedUint64(header.slot, "beacon_block.block_header.slot");
      const root = hashTreeRoot(ssz.phase0.BeaconBlockHeader, header, "beacon_block.block_header");
      return blockResult(c, root, slot, request.fork_info);
    }
  }
}

/**
 * AGGREGATE_AND_PROOF_V2 carries `{version, data}`; ELECTRA and FULU use the Electra container (committee_bits).
 * The bare legacy object Web3Signer also reads is Electra-shaped exactly when its aggregate has committee_bits.
 */
function unwrapAggregateV2(body: AggregateAndProofV2Json): { data: AggregateAndProofJson; electra: boolean; field: string } {
  if ("version" in body && "data" in body) {
    const electra = (ELECTRA_AGGREGATE_VERSIONS as readonly string[]).includes(body.version);
    return { data: body.data, electra, field: "aggregate_and_proof.data" };
  }
  const bare = body as AggregateAndProofJson;
  return { data: bare, electra: bare.aggregate.committee_bits !== undefined, field: "aggregate_and_proof" };
}

function aggregateAndProof(c: Consensus, data: AggregateAndProofJson, electra: boolean, field: string, forkInfo: SignRequest["fork_info"]): SigningRootResult {
  if (!forkInfo) throw new InvalidSignRequestError("fork_info", "is required");
  const slot = parseUint64(data.aggregate.data.slot, `${field}.aggregate.data.slot`);
  const type = electra ? c.ssz.electra.AggregateAndProof : c.ssz.phase0.AggregateAndProof;
  const root = hashTreeRoot(type, data, field);
  const domain = domainAtEpoch(c, c.domains.aggregateAndProof, forkInfo, slot / BigInt(c.slotsPerEpoch));
  return { signingRoot: signingRootOf(c, root, domain), slashing: { kind: "none" } };
}
