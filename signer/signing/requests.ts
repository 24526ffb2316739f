/**
 * The typed request model of POST /api/v1/eth2/sign/{pubkey} and its validation against schemas.ts.
 * Values stay in their JSON form (decimal strings, 0x-hex); signing-root.ts turns them into SSZ values.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { InvalidSignRequestError } from "./errors.js";
import type { FULL_BLOCK_FORKS, ForkName } from "./forks.js";
import { HEX_PROPERTIES, MAX_UINT64_DECIMAL, signRequestBodySchema, type SignType } from "./schemas.js";

export type Uint64String = string;
export type HexString = string;
/** Nested SSZ objects (full blocks) whose shape the schema checks and the SSZ type parses. */
export type JsonObject = Record<string, unknown>;

export interface ForkInfoJson {
  fork: { previous_version: HexString; current_version: HexString; epoch: Uint64String };
  genesis_validators_root: HexString;
}
export interface CheckpointJson {
  epoch: Uint64String;
  root: HexString;
}
export interface AttestationDataJson {
  slot: Uint64String;
  index: Uint64String;
  beacon_block_root: HexString;
  source: CheckpointJson;
  target: CheckpointJson;
}
export interface AttestationJson {
  aggregation_bits: HexString;
  data: AttestationDataJson;
  signature: HexString;
  /** Electra and later (EIP-7549). */
  committee_bits?: HexString;
}
export interface AggregateAndProofJson {
  aggregator_index: Uint64String;
  aggregate: AttestationJson;
  selection_proof: HexString;
}
export interface BeaconBlockHeaderJson {
  slot: Uint64String;
  proposer_index: Uint64String;
  parent_root: HexString;
  state_root: HexString;
  body_root: HexString;
}
export interface BeaconBlockJson {
  slot: Uint64String;
  proposer_index: Uint64String;
  parent_root: HexString;
  state_root: HexString;
  body: JsonObject;
}
export type BlockVersion = ForkName;
type FullBlockVersion = (typeof FULL_BLOCK_FORKS)[number];
export type BlockRequestV2Json =
  | { version: FullBlockVersion; block: BeaconBlockJson }
  | { version: Exclude<BlockVersion, FullBlockVersion>; block_header: BeaconBlockHeaderJson };
export type AggregateAndProofV2Json = { version: BlockVersion; data: AggregateAndProofJson } | AggregateAndProofJson;

interface SignRequestBase<T extends SignType> {
  type: T;
  /** Web3Signer's canonical name is signing_root; Lodestar sends signingRoot. Both are read. */
  signingRoot?: HexString;
  signing_root?: HexString;
}
interface WithForkInfo {
  fork_info: ForkInfoJson;
}

export type BlockSignRequest = SignRequestBase<"BLOCK"> & WithForkInfo & { block: BeaconBlockJson };
export type BlockV2SignRequest = SignRequestBase<"BLOCK_V2"> & WithForkInfo & { beacon_block: BlockRequestV2Json };
export type AttestationSignRequest = SignRequestBase<"ATTESTATION"> & WithForkInfo & { attestation: AttestationDataJson };
export type AggregationSlotSignRequest = SignRequestBase<"AGGREGATION_SLOT"> & WithForkInfo & { aggregation_slot: { slot: Uint64String } };
export type AggregateAndProofSignRequest = SignRequestBase<"AGGREGATE_AND_PROOF"> & WithForkInfo & { aggregate_and_proof: AggregateAndProofJson };
export type AggregateAndProofV2SignRequest = SignRequestBase<"AGGREGATE_AND_PROOF_V2"> & WithForkInfo & { aggregate_and_proof: AggregateAndProofV2Json };
export type RandaoRevealSignRequest = SignRequestBase<"RANDAO_REVEAL"> & WithForkInfo & { randao_reveal: { epoch: Uint64String } };
export type VoluntaryExitSignRequest = SignRequestBase<"VOLUNTARY_EXIT"> &
  WithForkInfo & { voluntary_exit: { epoch: Uint64String; validator_index: Uint64String } };
export type DepositSignRequest = SignRequestBase<"DEPOSIT"> & {
  fork_info?: ForkInfoJson;
  deposit: { pubkey: HexString; withdrawal_credentials: HexString; amount: Uint64String; genesis_fork_version: HexString };
};
export type SyncCommitteeMessageSignRequest = SignRequestBase<"SYNC_COMMITTEE_MESSAGE"> &
  WithForkInfo & { sync_committee_message: { beacon_block_root: HexString; slot: Uint64String } };
export type SyncCommitteeSelectionProofSignRequest = SignRequestBase<"SYNC_COMMITTEE_SELECTION_PROOF"> &
  WithForkInfo & { sync_aggregator_selection_data: { slot: Uint64String; subcommittee_index: Uint64String } };
export type SyncCommitteeContributionAndProofSignRequest = SignRequestBase<"SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF"> &
  WithForkInfo & {
    contribution_and_proof: {
      aggregator_index: Uint64String;
      selection_proof: HexString;
      contribution: {
        slot: Uint64String;
        beacon_block_root: HexString;
        subcommittee_index: Uint64String;
        aggregation_bits: HexString;
        signature: HexString;
      };
    };
  };
export type ValidatorRegistrationSignRequest = SignRequestBase<"VALIDATOR_REGISTRATION"> & {
  fork_info?: ForkInfoJson;
  validator_registration: { fee_recipient: HexString; gas_limit: Uint64String; timestamp: Uint64String; pubkey: HexString };
};

export type SignRequest =
  | BlockSignRequest
  | BlockV2SignRequest
  | AttestationSignRequest
  | AggregationSlotSignRequest
  | AggregateAndProofSignRequest
  | AggregateAndProofV2SignRequest
  | RandaoRevealSignRequest
  | VoluntaryExitSignRequest
  | DepositSignRequest
  | SyncCommitteeMessageSignRequest
  | SyncCommitteeSelectionProofSignRequest
  | SyncCommitteeContributionAndProofSignRequest
  | ValidatorRegistrationSignRequest;

/**
 * The options fastify's default ajv uses (coerceTypes "array", useDefaults, removeAdditional, allErrors false),
 * so a body accepted here is accepted by the HTTP route and vice versa. Like fastify, validation may coerce
 * values in place (a bare number becomes a decimal string).
 */
const FASTIFY_AJV_OPTIONS = { coerceTypes: "array", useDefaults: true, removeAdditional: true, allErrors: false } as const;

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  compiled ??= new Ajv({ ...FASTIFY_AJV_OPTIONS }).compile(signRequestBodySchema);
  return compiled;
}

/** Turns ajv's first error into the dotted path of the field at fault, e.g. "attestation.source.epoch". */
export function fieldOfSchemaError(error: ErrorObject): string {
  const path = error.instancePath
    .split("/")
    .slice(1)
    .map((segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~"));
  const missing = error.keyword === "required" ? (error.params as { missingProperty?: string }).missingProperty : undefined;
  if (missing !== undefined) path.push(missing);
  return path.join(".");
}

/**
 * Checks `body` against the sign request schema and returns it typed. Throws InvalidSignRequestError naming the
 * first field at fault. Cross-field rules a schema cannot say are checked here too.
 */
export function validateSignRequest(body: unknown): SignRequest {
  rejectUnsafeNumbers(body, "");
  const validate = validator();
  if (!validate(body)) {
    const error = validate.errors?.[0];
    if (!error) throw new InvalidSignRequestError("", "rejected by schema");
    throw new InvalidSignRequestError(fieldOfSchemaError(error), messageOfSchemaError(error));
  }
  addHexPrefixes(body);
  const request = body as SignRequest;
  if (request.signingRoot !== undefined && request.signing_root !== undefined && request.signingRoot.toLowerCase() !== request.signing_root.toLowerCase()) {
    throw new InvalidSignRequestError("signing_root", "signing_root and signingRoot are both present and differ");
  }
  return request;
}

/** ajv's message, except for a uint64 whose pattern (a long regex) says nothing to a reader. */
function messageOfSchemaError(error: ErrorObject): string {
  if (error.keyword === "pattern" && error.schemaPath.endsWith("/Uint64/pattern"))
    return `must be a decimal uint64 string from 0 to ${MAX_UINT64_DECIMAL} (2^64-1)`;
  return error.message ?? "rejected by schema";
}

/** Adds the 0x a client left out (Web3Signer accepts hex without it); the schema has checked the digits. */
function addHexPrefixes(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) addHexPrefixes(item);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const [key, field] of Object.entries(record)) {
    if (HEX_PROPERTIES.has(key) && typeof field === "string") record[key] = withHexPrefix(field);
    else if (HEX_PROPERTIES.has(key) && Array.isArray(field)) record[key] = field.map((item) => (typeof item === "string" ? withHexPrefix(item) : item));
    else addHexPrefixes(field); // e.g. RANDAO_REVEAL's randao_reveal is an object, not the block body's signature
  }
}

function withHexPrefix(value: string): string {
  return value.startsWith("0x") ? value : `0x${value}`;
}

/**
 * uint64 fields may come as JSON numbers (ajv coerces them to decimal strings), but JSON.parse has already rounded
 * any integer above 2^53-1 (9007199254740993 arrives as ...992): signing that would sign a value the client never
 * sent. So every number in the body must be a safe integer; anything else is refused naming its path. Every literal
 * >= 2^53 parses to a non-safe value, so no rounded value gets through. Strings are exact and unaffected.
 */
function rejectUnsafeNumbers(value: unknown, path: string): void {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new InvalidSignRequestError(path, "a JSON number here must be a whole number from 0 to 2^53-1; send uint64 values as decimal strings");
    }
    return;
  }
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) rejectUnsafeNumbers(value[i], path ? `${path}.${i}` : String(i));
    return;
  }
  for (const key of Object.keys(value)) rejectUnsafeNumbers((value as Record<string, unknown>)[key], path ? `${path}.${key}` : key);
}

/** The client's signing root, whichever of the two accepted names carried it. */
export function clientSigningRoot(request: SignRequest): HexString | undefined {
  return request.signing_root ?? request.signingRoot;
}
