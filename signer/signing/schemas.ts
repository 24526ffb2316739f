/**
 * JSON Schema (draft-07) of the body of POST /api/v1/eth2/sign/{pubkey}, Web3Signer-compatible.
 *
 * Field names follow Web3Signer's Eth2 OpenAPI (eth2/signing/schemas.yaml) and its request model: `signing_root`
 * with the alias `signingRoot`, `fork_info` on every type but DEPOSIT and VALIDATOR_REGISTRATION (Web3Signer's
 * registration request has none; the builder domain uses the genesis fork version), BLOCK_V2 `block` for
 * PHASE0/ALTAIR and `block_header` from BELLATRIX on, AGGREGATE_AND_PROOF_V2 `{version, data}` (or the bare
 * legacy object Web3Signer still reads). Unknown properties are allowed, as Web3Signer ignores them.
 *
 * The schema checks shape, decimal uint64 strings and hex lengths; preset-dependent sizes (list limits,
 * bitvector lengths) are checked when the SSZ types parse the body (signing-root.ts). It is meant both for
 * fastify's `schema.body` (no $id, local $refs only) and for `validateSignRequest`.
 */
import { ELECTRA_AGGREGATE_FORKS, FORKS, FULL_BLOCK_FORKS } from "./forks.js";

export const SIGN_TYPES = [
  "BLOCK",
  "BLOCK_V2",
  "ATTESTATION",
  "AGGREGATION_SLOT",
  "AGGREGATE_AND_PROOF",
  "AGGREGATE_AND_PROOF_V2",
  "RANDAO_REVEAL",
  "VOLUNTARY_EXIT",
  "DEPOSIT",
  "SYNC_COMMITTEE_MESSAGE",
  "SYNC_COMMITTEE_SELECTION_PROOF",
  "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
  "VALIDATOR_REGISTRATION",
] as const;
export type SignType = (typeof SIGN_TYPES)[number];

/** BLOCK_V2 / AGGREGATE_AND_PROOF_V2 versions: the fork names (forks.ts). */
export const BLOCK_VERSIONS = FORKS;
/** BLOCK_V2 versions whose request carries the full block; later ones carry only the header. */
export const FULL_BLOCK_VERSIONS = FULL_BLOCK_FORKS;
/** AGGREGATE_AND_PROOF_V2 versions whose attestation carries committee_bits (EIP-7549). */
export const ELECTRA_AGGREGATE_VERSIONS = ELECTRA_AGGREGATE_FORKS;

type Schema = Record<string, unknown>;
const ref = (name: string): Schema => ({ $ref: `#/definitions/${name}` });
const obj = (required: string[], properties: Record<string, Schema>): Schema => ({ type: "object", required, properties });
const arrayOf = (item: string): Schema => ({ type: "array", items: ref(item) });

/** 2^64-1, the largest uint64. */
export const MAX_UINT64_DECIMAL = "18446744073709551615";

/**
 * A regex for the decimal strings from 0 to `max` (leading zeros allowed, 20 characters at most): a string below
 * `max` is shorter, or shares a prefix with it and then has a smaller digit. So 2^64 fails the schema itself,
 * naming its field, before anything parses it.
 */
export function decimalAtMostPattern(max: string): string {
  const alternatives = [`[0-9]{1,${max.length - 1}}`];
  for (let i = 0; i < max.length; i++) {
    const digit = Number(max[i]);
    if (digit === 0) continue;
    const rest = max.length - i - 1;
    alternatives.push(`${max.slice(0, i)}[0-${digit - 1}]${rest > 0 ? `[0-9]{${rest}}` : ""}`);
  }
  alternatives.push(max);
  return `^(?=[0-9]{1,${max.length}}$)0*(${alternatives.join("|")})$`;
}

/**
 * Hex fields: Web3Signer accepts them without the 0x prefix (and adds it), so the schema does too;
 * validateSignRequest adds the missing prefix once the body is valid (see HEX_PROPERTIES).
 */
const hex = (digits: string): Schema => ({ type: "string", pattern: `^(0x)?${digits}$` });
export const HEX_DEFINITIONS = ["Bytes4", "Bytes20", "Bytes32", "Pubkey", "Signature", "BitsHex"] as const;

const definitions: Record<string, Schema> = {
  Uint64: { type: "string", pattern: decimalAtMostPattern(MAX_UINT64_DECIMAL) },
  Bytes4: hex("[0-9a-fA-F]{8}"),
  Bytes20: hex("[0-9a-fA-F]{40}"),
  Bytes32: hex("[0-9a-fA-F]{64}"),
  Pubkey: hex("[0-9a-fA-F]{96}"),
  Signature: hex("[0-9a-fA-F]{192}"),
  /** SSZ bitlist/bitvector as hex; never empty for a bitlist (it holds the length bit). */
  BitsHex: hex("([0-9a-fA-F]{2})+"),

  Fork: obj(["previous_version", "current_version", "epoch"], {
    previous_version: ref("Bytes4"),
    current_version: ref("Bytes4"),
    epoch: ref("Uint64"),
  }),
  ForkInfo: obj(["fork", "genesis_validators_root"], { fork: ref("Fork"), genesis_validators_root: ref("Bytes32") }),

  Checkpoint: obj(["epoch", "root"], { epoch: ref("Uint64"), root: ref("Bytes32") }),
  AttestationData: obj(["slot", "index", "beacon_block_root", "source", "target"], {
    slot: ref("Uint64"),
    index: ref("Uint64"),
    beacon_block_root: ref("Bytes32"),
    source: ref("Checkpoint"),
    target: ref("Checkpoint"),
  }),
  Attestation: obj(["aggregation_bits", "data", "signature"], {
    aggregation_bits: ref("BitsHex"),
    data: ref("AttestationData"),
    signature: ref("Signature"),
  }),
  AttestationElectra: obj(["aggregation_bits", "data", "signature", "committee_bits"], {
    aggregation_bits: ref("BitsHex"),
    data: ref("AttestationData"),
    signature: ref("Signature"),
    committee_bits: ref("BitsHex"),
  }),
  AggregateAndProof: obj(["aggregator_index", "aggregate", "selection_proof"], {
    aggregator_index: ref("Uint64"),
    aggregate: ref("Attestation"),
    selection_proof: ref("Signature"),
  }),
  AggregateAndProofElectra: obj(["aggregator_index", "aggregate", "selection_proof"], {
    aggregator_index: ref("Uint64"),
    aggregate: ref("AttestationElectra"),
    selection_proof: ref("Signature"),
  }),

  BeaconBlockHeader: obj(["slot", "proposer_index", "parent_root", "state_root", "body_root"], {
    slot: ref("Uint64"),
    proposer_index: ref("Uint64"),
    parent_root: ref("Bytes32"),
    state_root: ref("Bytes32"),
    body_root: ref("Bytes32"),
  }),
  SignedBeaconBlockHeader: obj(["message", "signature"], { message: ref("BeaconBlockHeader"), signature: ref("Signature") }),
  Eth1Data: obj(["deposit_root", "deposit_count", "block_hash"], {
    deposit_root: ref("Bytes32"),
    deposit_count: ref("Uint64"),
    block_hash: ref("Bytes32"),
  }),
  ProposerSlashing: obj(["signed_header_1", "signed_header_2"], {
    signed_header_1: ref("SignedBeaconBlockHeader"),
    signed_header_2: ref("SignedBeaconBlockHeader"),
  }),
  IndexedAttestation: obj(["attesting_indices", "data", "signature"], {
    attesting_indices: { type: "array", items: ref("Uint64") },
    data: ref("AttestationData"),
    signature: ref("Signature"),
  }),
  AttesterSlashing: obj(["attestation_1", "attestation_2"], {
    attestation_1: ref("IndexedAttestation"),
    attestation_2: ref("IndexedAttestation"),
  }),
  DepositData: obj(["pubkey", "withdrawal_credentials", "amount", "signature"], {
    pubkey: ref("Pubkey"),
    withdrawal_credentials: ref("Bytes32"),
    amount: ref("Uint64"),
    signature: ref("Signature"),
  }),
  Deposit: obj(["proof", "data"], { proof: { type: "array", items: ref("Bytes32") }, data: ref("DepositData") }),
  VoluntaryExit: obj(["epoch", "validator_index"], { epoch: ref("Uint64"), validator_index: ref("Uint64") }),
  SignedVoluntaryExit: obj(["message", "signature"], { message: ref("VoluntaryExit"), signature: ref("Signature") }),
  SyncAggregate: obj(["sync_committee_bits", "sync_committee_signature"], {
    sync_committee_bits: ref("BitsHex"),
    sync_committee_signature: ref("Signature"),
  }),
  BeaconBlockBodyPhase0: obj(
    ["randao_reveal", "eth1_data", "graffiti", "proposer_slashings", "attester_slashings", "attestations", "deposits", "voluntary_exits"],
    {
      randao_reveal: ref("Signature"),
      eth1_data: ref("Eth1Data"),
      graffiti: ref("Bytes32"),
      proposer_slashings: arrayOf("ProposerSlashing"),
      attester_slashings: arrayOf("AttesterSlashing"),
      attestations: arrayOf("Attestation"),
      deposits: arrayOf("Deposit"),
      voluntary_exits: arrayOf("SignedVoluntaryExit"),
    },
  ),
  BeaconBlockBodyAltair: {
    allOf: [ref("BeaconBlockBodyPhase0"), obj(["sync_aggregate"], { sync_aggregate: ref("SyncAggregate") })],
  },
  BeaconBlockPhase0: obj(["slot", "proposer_index", "parent_root", "state_root", "body"], {
    slot: ref("Uint64"),
    proposer_index: ref("Uint64"),
    parent_root: ref("Bytes32"),
    state_root: ref("Bytes32"),
    body: ref("BeaconBlockBodyPhase0"),
  }),
  BeaconBlockAltair: obj(["slot", "proposer_index", "parent_root", "state_root", "body"], {
    slot: ref("Uint64"),
    proposer_index: ref("Uint64"),
    parent_root: ref("Bytes32"),
    state_root: ref("Bytes32"),
    body: ref("BeaconBlockBodyAltair"),
  }),

  SyncCommitteeMessage: obj(["beacon_block_root", "slot"], { beacon_block_root: ref("Bytes32"), slot: ref("Uint64") }),
  SyncAggregatorSelectionData: obj(["slot", "subcommittee_index"], { slot: ref("Uint64"), subcommittee_index: ref("Uint64") }),
  SyncCommitteeContribution: obj(["slot", "beacon_block_root", "subcommittee_index", "aggregation_bits", "signature"], {
    slot: ref("Uint64"),
    beacon_block_root: ref("Bytes32"),
    subcommittee_index: ref("Uint64"),
    aggregation_bits: ref("BitsHex"),
    signature: ref("Signature"),
  }),
  ContributionAndProof: obj(["aggregator_index", "selection_proof", "contribution"], {
    aggregator_index: ref("Uint64"),
    selection_proof: ref("Signature"),
    contribution: ref("SyncCommitteeContribution"),
  }),
  ValidatorRegistration: obj(["fee_recipient", "gas_limit", "timestamp", "pubkey"], {
    fee_recipient: ref("Bytes20"),
    gas_limit: ref("Uint64"),
    timestamp: ref("Uint64"),
    pubkey: ref("Pubkey"),
  }),
  DepositMessage: obj(["pubkey", "withdrawal_credentials", "amount", "genesis_fork_version"], {
    pubkey: ref("Pubkey"),
    withdrawal_credentials: ref("Bytes32"),
    amount: ref("Uint64"),
    genesis_fork_version: ref("Bytes4"),
  }),

  BlockRequestV2: {
    type: "object",
    required: ["version"],
    properties: { version: { type: "string", enum: [...BLOCK_VERSIONS] } },
    allOf: [
      { if: versionIs(["PHASE0"]), then: obj(["block"], { block: ref("BeaconBlockPhase0") }) },
      { if: versionIs(["ALTAIR"]), then: obj(["block"], { block: ref("BeaconBlockAltair") }) },
      {
        if: versionIs(BLOCK_VERSIONS.filter((v) => !(FULL_BLOCK_VERSIONS as readonly string[]).includes(v))),
        then: obj(["block_header"], { block_header: ref("BeaconBlockHeader") }),
      },
    ],
  },
  AggregateAndProofV2: {
    type: "object",
    // Web3Signer reads `{version, data}`, or the whole object as a legacy AggregateAndProof.
    if: { required: ["version"] },
    then: {
      required: ["version", "data"],
      properties: { version: { type: "string", enum: [...BLOCK_VERSIONS] } },
      allOf: [
        {
          if: versionIs(BLOCK_VERSIONS.filter((v) => !(ELECTRA_AGGREGATE_VERSIONS as readonly string[]).includes(v))),
          then: { properties: { data: ref("AggregateAndProof") } },
        },
        { if: versionIs(ELECTRA_AGGREGATE_VERSIONS), then: { properties: { data: ref("AggregateAndProofElectra") } } },
      ],
    },
    else: ref("AggregateAndProof"),
  },
};

function versionIs(versions: readonly string[]): Schema {
  return { properties: { version: { enum: [...versions] } }, required: ["version"] };
}

/** Per type: the property holding the message, its schema, and whether fork_info is required. */
const MESSAGE_OF_TYPE: Record<SignType, { property: string; schema: Schema; forkInfo: boolean }> = {
  BLOCK: { property: "block", schema: ref("BeaconBlockPhase0"), forkInfo: true },
  BLOCK_V2: { property: "beacon_block", schema: ref("BlockRequestV2"), forkInfo: true },
  ATTESTATION: { property: "attestation", schema: ref("AttestationData"), forkInfo: true },
  AGGREGATION_SLOT: { property: "aggregation_slot", schema: obj(["slot"], { slot: ref("Uint64") }), forkInfo: true },
  AGGREGATE_AND_PROOF: { property: "aggregate_and_proof", schema: ref("AggregateAndProof"), forkInfo: true },
  AGGREGATE_AND_PROOF_V2: { property: "aggregate_and_proof", schema: ref("AggregateAndProofV2"), forkInfo: true },
  RANDAO_REVEAL: { property: "randao_reveal", schema: obj(["epoch"], { epoch: ref("Uint64") }), forkInfo: true },
  VOLUNTARY_EXIT: { property: "voluntary_exit", schema: ref("VoluntaryExit"), forkInfo: true },
  DEPOSIT: { property: "deposit", schema: ref("DepositMessage"), forkInfo: false },
  SYNC_COMMITTEE_MESSAGE: { property: "sync_committee_message", schema: ref("SyncCommitteeMessage"), forkInfo: true },
  SYNC_COMMITTEE_SELECTION_PROOF: {
    property: "sync_aggregator_selection_data",
    schema: ref("SyncAggregatorSelectionData"),
    forkInfo: true,
  },
  SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF: {
    property: "contribution_and_proof",
    schema: ref("ContributionAndProof"),
    forkInfo: true,
  },
  VALIDATOR_REGISTRATION: { property: "validator_registration", schema: ref("ValidatorRegistration"), forkInfo: false },
};

/** The property that carries the message of each type (e.g. ATTESTATION -> "attestation"). */
export const MESSAGE_PROPERTY: Readonly<Record<SignType, string>> = Object.fromEntries(SIGN_TYPES.map((t) => [t, MESSAGE_OF_TYPE[t].property])) as Record<
  SignType,
  string
>;

/** Body schema for POST /api/v1/eth2/sign/{pubkey}. Use as fastify `schema: { body: signRequestBodySchema }`. */
export const signRequestBodySchema: Schema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  title: "Eth2SigningRequestBody",
  type: "object",
  required: ["type"],
  properties: {
    type: { type: "string", enum: [...SIGN_TYPES] },
    signingRoot: ref("Bytes32"),
    signing_root: ref("Bytes32"),
    fork_info: ref("ForkInfo"),
  },
  allOf: SIGN_TYPES.map((type) => {
    const { property, schema, forkInfo } = MESSAGE_OF_TYPE[type];
    return {
      if: { properties: { type: { const: type } }, required: ["type"] },
      then: obj(forkInfo ? [property, "fork_info"] : [property], { [property]: schema }),
    };
  }),
  definitions,
};

/**
 * Every property name whose value is a hex string (or a list of them) somewhere in the schema. No name is hex in
 * one place and a uint64 in another (checked when this module loads), so the names alone say where to add 0x.
 */
export const HEX_PROPERTIES: ReadonlySet<string> = collectHexProperties();

function collectHexProperties(): Set<string> {
  const hexRefs = new Set(HEX_DEFINITIONS.map((d) => `#/definitions/${d}`));
  const hexNames = new Set<string>();
  const otherNames = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (typeof node !== "object" || node === null) return;
    const properties = (node as { properties?: Record<string, Schema> }).properties;
    for (const [name, schema] of Object.entries(properties ?? {})) {
      const target = (schema.$ref ?? (schema.items as Schema | undefined)?.$ref) as string | undefined;
      if (target !== undefined && hexRefs.has(target)) hexNames.add(name);
      else if (target === "#/definitions/Uint64") otherNames.add(name);
    }
    for (const value of Object.values(node)) visit(value);
  };
  visit(signRequestBodySchema);
  for (const name of hexNames) if (otherNames.has(name)) throw new Error(`schema property ${name} is both hex and uint64`);
  return hexNames;
}
