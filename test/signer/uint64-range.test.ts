// Every uint64 field of every request type takes the whole uint64 range: 2^53-1, 2^53 and 2^64-1 are signed with
// the spec's signing root, 2^64 is refused with 400 naming the field. The expected root is computed here without
// the signer's code: @lodestar/types builds the tree with a small value, and the test writes the field's leaf chunk
// (8 little-endian bytes) itself, so no JS number ever holds the big value. Real token, database and listener.
import path from "node:path";
import { LeafNode, Tree } from "@chainsafe/persistent-merkle-tree";
import { ContainerType, ListBasicType, ListCompositeType, UintBigintType, UintNumberType, VectorCompositeType, type Type } from "@chainsafe/ssz";
import bls from "@chainsafe/bls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSigner } from "../../signer/index.js";
import { loadConsensus, MINIMAL_DEVNET, type Consensus } from "../../signer/signing/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { domainByHand, signingRootByHand, uint64RootByHand } from "../signing/fork-matrix.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { http, interopPubkey, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const VALUES = [2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n];
const TOO_LARGE = 2n ** 64n;
const RECORDED_VALUES = [2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n];
/** Web3Signer's genesis_validators_root in its BLOCK_V2 example; the signer is pinned to it. */
const GVR = "0x04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673";
const ZERO32 = new Uint8Array(32);
const unhex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/^0x/, ""), "hex"));
const DOMAIN = { proposer: [0, 0, 0, 0], attester: [1, 0, 0, 0], randao: [2, 0, 0, 0], deposit: [3, 0, 0, 0], exit: [4, 0, 0, 0] } as const;
const DOMAIN_MORE = {
  selection: [5, 0, 0, 0],
  aggregate: [6, 0, 0, 0],
  sync: [7, 0, 0, 0],
  syncSelection: [8, 0, 0, 0],
  contribution: [9, 0, 0, 0],
  builder: [0, 0, 0, 1],
} as const;

const work = tempDir("vigil-signer-uint64-");
let token: TestToken;
let signer: RunningSigner;
let c: Consensus;
const KEYS = 20;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-uint64", KEYS);
  c = await loadConsensus("minimal");
  ({ signer } = await start(
    testConfig(token, path.join(work, "main"), { genesisValidatorsRoot: GVR, logLevel: "warn", defaultClient: { allowedTypes: "*" } }),
  ));
}, 120_000);

afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

// biome-ignore lint/suspicious/noExplicitAny: SSZ types of every shape are walked generically
type AnyType = Type<any> & Record<string, any>;
type Json = Record<string, unknown>;

/** A value of `type` whose every list holds one element, so that every nested uint64 field exists. */
function sample(type: AnyType): unknown {
  if (type instanceof ContainerType) {
    return Object.fromEntries(type.fieldsEntries.map((f) => [f.fieldName, sample(f.fieldType as AnyType)]));
  }
  if (type instanceof ListCompositeType || type instanceof ListBasicType) return [sample(type.elementType as AnyType)];
  if (type instanceof VectorCompositeType) return Array.from({ length: type.length }, () => sample(type.elementType as AnyType));
  return type.defaultValue();
}

interface Uint64Field {
  json: string[]; // JSON keys (snake_case) and list indices, as the signer names the field
  ssz: (string | number)[]; // the SSZ field names, for getPathInfo
}

/** Every uint64 field of `type` (lists at index 0). */
function uint64Fields(type: AnyType, json: string[] = [], ssz: (string | number)[] = []): Uint64Field[] {
  if ((type instanceof UintNumberType || type instanceof UintBigintType) && type.byteLength === 8) return [{ json, ssz }];
  if (type instanceof ContainerType) {
    return type.fieldsEntries.flatMap((f) => uint64Fields(f.fieldType as AnyType, [...json, f.jsonKey], [...ssz, f.fieldName as string]));
  }
  if (type instanceof ListCompositeType || type instanceof ListBasicType || type instanceof VectorCompositeType) {
    return uint64Fields(type.elementType as AnyType, [...json, "0"], [...ssz, 0]);
  }
  return [];
}

/** hash_tree_root of `json` with the uint64 at `field` replaced by `value`: the leaf chunk written by hand. */
function rootWith(type: AnyType, json: Json, field: Uint64Field, value: bigint): Uint8Array {
  const tree = new Tree(type.value_toTree(type.fromJson(json)));
  const { gindex } = type.getPathInfo(field.ssz);
  // A container's uint64 has a chunk of its own; a list's element 0 is the first 8 bytes of a chunk whose
  // other elements do not exist (one-element lists).
  tree.setNode(gindex, LeafNode.fromRoot(uint64RootByHand(value)));
  return tree.root;
}

function withValue(body: Json, where: string[], value: string): Json {
  const copy = structuredClone(body);
  let node = copy as Record<string, unknown>;
  for (const k of where.slice(0, -1)) node = node[k] as Record<string, unknown>;
  node[where[where.length - 1]!] = value;
  return copy;
}

function getPath(body: Json, where: string[]): unknown {
  let node: unknown = body;
  for (const k of where) node = (node as Record<string, unknown>)[k];
  return node;
}

const v = MINIMAL_DEVNET.forkVersions;
const forkInfo = (previous: string, current: string) => ({
  fork: { previous_version: previous, current_version: current, epoch: "0" },
  genesis_validators_root: GVR,
});

/**
 * One request type: the SSZ type of its object (or none: its root is the uint64 itself or a given root), where the
 * object sits in the body, its domain type, and which uint64 picks the fork (its epoch) or none (genesis domains).
 */
interface TypeCase {
  name: string;
  body: () => Json;
  objectAt: string[];
  objectType?: () => AnyType;
  /** The object root when the case has no SSZ container (AGGREGATION_SLOT, RANDAO_REVEAL, SYNC_COMMITTEE_MESSAGE)... */
  rootOf?: (body: Json) => Uint8Array;
  /** ...and its one uint64 field, under objectAt. */
  field?: string;
  domainType: readonly number[];
  /** The epoch that picks the fork version, from the body; undefined for a genesis-version domain. */
  epochOf?: (body: Json) => bigint;
  genesisDomain?: (body: Json) => { version: string; gvr: Uint8Array };
  /** A slashable type: the field that must increase on every request (slot or target epoch). */
  counter?: string[];
}

const bodyOf = (type: AnyType, extra: (json: Json) => void = () => {}) => {
  const json = type.toJson(sample(type)) as Json;
  extra(json);
  return json;
};

function cases(): TypeCase[] {
  const { ssz } = c;
  const spe = BigInt(c.slotsPerEpoch);
  const slotEpoch = (at: string[]) => (b: Json) => BigInt(getPath(b, at) as string) / spe;
  const blockCase = (name: string, version: string | undefined, type: () => AnyType, previous: string, current: string): TypeCase => {
    const key = version === undefined ? "block" : "beacon_block";
    const objectAt = version === undefined ? ["block"] : ["beacon_block", version === "PHASE0" || version === "ALTAIR" ? "block" : "block_header"];
    return {
      name,
      body: () => {
        const object = bodyOf(type());
        return {
          type: version === undefined ? "BLOCK" : "BLOCK_V2",
          fork_info: forkInfo(previous, current),
          [key]: version === undefined ? object : { version, [objectAt[1]!]: object },
        };
      },
      objectAt,
      objectType: type,
      domainType: DOMAIN.proposer,
      epochOf: slotEpoch([...objectAt, "slot"]),
      counter: [...objectAt, "slot"],
    };
  };
  const aggregate = (type: () => AnyType, version: string | undefined, previous: string, current: string): TypeCase => ({
    name: version ? `AGGREGATE_AND_PROOF_V2 ${version}` : "AGGREGATE_AND_PROOF",
    body: () => {
      const data = bodyOf(type(), (j) => {
        const agg = j.aggregate as Json;
        agg.aggregation_bits = "0x01";
        if (agg.committee_bits !== undefined) agg.committee_bits = "0x01";
      });
      return {
        type: version ? "AGGREGATE_AND_PROOF_V2" : "AGGREGATE_AND_PROOF",
        fork_info: forkInfo(previous, current),
        aggregate_and_proof: version ? { version, data } : data,
      };
    },
    objectAt: version ? ["aggregate_and_proof", "data"] : ["aggregate_and_proof"],
    objectType: type,
    domainType: DOMAIN_MORE.aggregate,
    epochOf: slotEpoch([...(version ? ["aggregate_and_proof", "data"] : ["aggregate_and_proof"]), "aggregate", "data", "slot"]),
  });
  const blockRoot = `0x${"77".repeat(32)}`;
  return [
    blockCase("BLOCK", undefined, () => ssz.phase0.BeaconBlock, MINIMAL_DEVNET.genesisForkVersion, MINIMAL_DEVNET.genesisForkVersion),
    blockCase("BLOCK_V2 PHASE0", "PHASE0", () => ssz.phase0.BeaconBlock, MINIMAL_DEVNET.genesisForkVersion, MINIMAL_DEVNET.genesisForkVersion),
    blockCase("BLOCK_V2 ALTAIR", "ALTAIR", () => ssz.altair.BeaconBlock, MINIMAL_DEVNET.genesisForkVersion, v.ALTAIR!),
    blockCase("BLOCK_V2 ELECTRA header", "ELECTRA", () => ssz.phase0.BeaconBlockHeader, v.DENEB!, v.ELECTRA!),
    {
      name: "ATTESTATION",
      body: () => ({ type: "ATTESTATION", fork_info: forkInfo(v.ALTAIR!, v.BELLATRIX!), attestation: bodyOf(ssz.phase0.AttestationData) }),
      objectAt: ["attestation"],
      objectType: () => ssz.phase0.AttestationData,
      domainType: DOMAIN.attester,
      epochOf: (b) => BigInt(getPath(b, ["attestation", "target", "epoch"]) as string),
      counter: ["attestation", "target", "epoch"],
    },
    {
      name: "AGGREGATION_SLOT",
      body: () => ({ type: "AGGREGATION_SLOT", fork_info: forkInfo(v.ALTAIR!, v.BELLATRIX!), aggregation_slot: { slot: "0" } }),
      objectAt: ["aggregation_slot"],
      rootOf: (b) => uint64RootByHand(BigInt(getPath(b, ["aggregation_slot", "slot"]) as string)),
      field: "slot",
      domainType: DOMAIN_MORE.selection,
      epochOf: slotEpoch(["aggregation_slot", "slot"]),
    },
    aggregate(() => ssz.phase0.AggregateAndProof, undefined, v.ALTAIR!, v.BELLATRIX!),
    aggregate(() => ssz.phase0.AggregateAndProof, "DENEB", v.CAPELLA!, v.DENEB!),
    aggregate(() => ssz.electra.AggregateAndProof, "ELECTRA", v.DENEB!, v.ELECTRA!),
    {
      name: "RANDAO_REVEAL",
      body: () => ({ type: "RANDAO_REVEAL", fork_info: forkInfo(v.ALTAIR!, v.BELLATRIX!), randao_reveal: { epoch: "0" } }),
      objectAt: ["randao_reveal"],
      rootOf: (b) => uint64RootByHand(BigInt(getPath(b, ["randao_reveal", "epoch"]) as string)),
      field: "epoch",
      domainType: DOMAIN.randao,
      epochOf: (b) => BigInt(getPath(b, ["randao_reveal", "epoch"]) as string),
    },
    {
      // Capella: before Deneb the exit's own epoch picks the version (EIP-7044 pins Capella only from Deneb on).
      name: "VOLUNTARY_EXIT",
      body: () => ({ type: "VOLUNTARY_EXIT", fork_info: forkInfo(v.BELLATRIX!, v.CAPELLA!), voluntary_exit: bodyOf(ssz.phase0.VoluntaryExit) }),
      objectAt: ["voluntary_exit"],
      objectType: () => ssz.phase0.VoluntaryExit,
      domainType: DOMAIN.exit,
      epochOf: (b) => BigInt(getPath(b, ["voluntary_exit", "epoch"]) as string),
    },
    {
      name: "DEPOSIT",
      body: () => ({ type: "DEPOSIT", deposit: { ...bodyOf(ssz.phase0.DepositMessage), genesis_fork_version: MINIMAL_DEVNET.genesisForkVersion } }),
      objectAt: ["deposit"],
      objectType: () => ssz.phase0.DepositMessage,
      domainType: DOMAIN.deposit,
      genesisDomain: () => ({ version: MINIMAL_DEVNET.genesisForkVersion, gvr: ZERO32 }),
    },
    {
      name: "SYNC_COMMITTEE_MESSAGE",
      body: () => ({
        type: "SYNC_COMMITTEE_MESSAGE",
        fork_info: forkInfo(v.ALTAIR!, v.BELLATRIX!),
        sync_committee_message: { beacon_block_root: blockRoot, slot: "0" },
      }),
      objectAt: ["sync_committee_message"],
      rootOf: () => unhex(blockRoot),
      field: "slot",
      domainType: DOMAIN_MORE.sync,
      epochOf: slotEpoch(["sync_committee_message", "slot"]),
    },
    {
      name: "SYNC_COMMITTEE_SELECTION_PROOF",
      body: () => ({
        type: "SYNC_COMMITTEE_SELECTION_PROOF",
        fork_info: forkInfo(v.ALTAIR!, v.BELLATRIX!),
        sync_aggregator_selection_data: bodyOf(ssz.altair.SyncAggregatorSelectionData),
      }),
      objectAt: ["sync_aggregator_selection_data"],
      objectType: () => ssz.altair.SyncAggregatorSelectionData,
      domainType: DOMAIN_MORE.syncSelection,
      epochOf: slotEpoch(["sync_aggregator_selection_data", "slot"]),
    },
    {
      name: "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
      body: () => ({
        type: "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
        fork_info: forkInfo(v.ALTAIR!, v.BELLATRIX!),
        contribution_and_proof: bodyOf(ssz.altair.ContributionAndProof),
      }),
      objectAt: ["contribution_and_proof"],
      objectType: () => ssz.altair.ContributionAndProof,
      domainType: DOMAIN_MORE.contribution,
      epochOf: slotEpoch(["contribution_and_proof", "contribution", "slot"]),
    },
    {
      name: "VALIDATOR_REGISTRATION",
      body: () => ({ type: "VALIDATOR_REGISTRATION", validator_registration: bodyOf(ssz.bellatrix.ValidatorRegistrationV1) }),
      objectAt: ["validator_registration"],
      objectType: () => ssz.bellatrix.ValidatorRegistrationV1,
      domainType: DOMAIN_MORE.builder,
      genesisDomain: () => ({ version: MINIMAL_DEVNET.genesisForkVersion, gvr: ZERO32 }),
    },
  ];
}

/** The spec's signing root of `body`, its field `field` (if any) set to `value`; computed as described at the top. */
function expectedRoot(tc: TypeCase, body: Json, field: Uint64Field | undefined, value: bigint): string {
  const object = getPath(body, tc.objectAt) as Json;
  // lodestar's types hold these fields as JS numbers: they get 0, and the leaf gets the value (rootWith).
  const objectRoot = tc.objectType
    ? field
      ? rootWith(tc.objectType(), withValue(object, field.json, "0"), field, value)
      : tc.objectType().hashTreeRoot(tc.objectType().fromJson(object))
    : tc.rootOf!(body);
  let domain: Uint8Array;
  if (tc.genesisDomain) {
    const g = tc.genesisDomain(body);
    domain = domainByHand(tc.domainType, g.version, g.gvr);
  } else {
    const fork = (body.fork_info as { fork: { previous_version: string; current_version: string; epoch: string } }).fork;
    const version = tc.epochOf!(body) >= BigInt(fork.epoch) ? fork.current_version : fork.previous_version;
    domain = domainByHand(tc.domainType, version, unhex(GVR));
  }
  return signingRootByHand(objectRoot, domain);
}

/** ATTESTATION with source and target both `value`: two leaves written by hand. */
function expectedRootBothEpochs(tc: TypeCase, body: Json, value: bigint): string {
  const type = tc.objectType!();
  const object = withValue(withValue(getPath(body, tc.objectAt) as Json, ["source", "epoch"], "0"), ["target", "epoch"], "0");
  const tree = new Tree(type.value_toTree(type.fromJson(object)));
  for (const epoch of [
    ["source", "epoch"],
    ["target", "epoch"],
  ])
    tree.setNode(type.getPathInfo(epoch).gindex, LeafNode.fromRoot(uint64RootByHand(value)));
  const domain = domainByHand(tc.domainType, (body.fork_info as { fork: { current_version: string } }).fork.current_version, unhex(GVR));
  return signingRootByHand(tree.root, domain);
}

async function sign(key: number, body: Json) {
  return http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(key)}`, { body });
}

function expectSignedOver(key: number, reply: { status: number; text: string; json: () => { signature: string } }, root: string, what: string) {
  expect(reply.status, `${what}: ${reply.text}`).toBe(200);
  const expected = `0x${Buffer.from(bls.SecretKey.fromBytes(interopSecretKey(key)).sign(unhex(root)).toBytes()).toString("hex")}`;
  expect(reply.json().signature, what).toBe(expected);
}

describe("every uint64 field takes the whole uint64 range", () => {
  it("the hand-written leaf gives lodestar's own root wherever lodestar can hold the value (2^53-1)", () => {
    for (const tc of cases()) {
      if (!tc.objectType) continue;
      const type = tc.objectType();
      const object = getPath(tc.body(), tc.objectAt) as Json;
      for (const field of uint64Fields(type)) {
        const asJson = withValue(object, field.json, String(2n ** 53n - 1n));
        expect(rootWith(type, object, field, 2n ** 53n - 1n), `${tc.name} ${field.json.join(".")}`).toEqual(type.hashTreeRoot(type.fromJson(asJson)));
      }
    }
  });

  it("2^53-1, 2^53 and 2^64-1 are signed over the spec's root in every field of every type; 2^64 is refused naming the field", async () => {
    let key = 0;
    let signed = 0;
    for (const tc of cases()) {
      key++;
      const base = tc.body();
      // uint64 fields of the object, then the fork epoch; the slashable types' counter field goes last, as each
      // other request raises it by one (a new slot or target each time, never a double vote).
      const objectFields = tc.objectType ? uint64Fields(tc.objectType()) : [{ json: [tc.field!], ssz: [] }];
      const wheres = objectFields.map((f) => ({ where: [...tc.objectAt, ...f.json], field: tc.objectType ? f : undefined }));
      if (base.fork_info) wheres.push({ where: ["fork_info", "fork", "epoch"], field: undefined });
      const isCounter = (w: string[]) => tc.counter !== undefined && w.join(".") === tc.counter.join(".");
      wheres.sort((a, b) => Number(isCounter(a.where)) - Number(isCounter(b.where)));
      let counter = 1n;
      for (const { where, field } of wheres) {
        // An attestation's source above its target is refused by slashing protection: that field gets target = source,
        // on a key of its own (its targets would repeat the counter field's).
        const sourceEpoch = tc.name === "ATTESTATION" && where.join(".") === "attestation.source.epoch";
        const signingKey = sourceEpoch ? KEYS - 2 : key;
        // Slots and epochs that slashing protection records stop at 2^63-1, the largest value its databases store
        // (SQLite INTEGER, PostgreSQL bigint): above it the request is refused naming the field, failing closed.
        const recorded = sourceEpoch || isCounter(where);
        for (const value of recorded ? RECORDED_VALUES : VALUES) {
          let body = withValue(base, where, value.toString());
          if (sourceEpoch) body = withValue(body, tc.counter!, value.toString());
          else if (tc.counter && !isCounter(where)) body = withValue(body, tc.counter, String(counter++));
          const root = sourceEpoch ? expectedRootBothEpochs(tc, body, value) : expectedRoot(tc, body, field, value);
          expectSignedOver(signingKey, await sign(signingKey, body), root, `${tc.name} ${where.join(".")}=${value}`);
          signed++;
        }
        if (recorded) {
          const unstorable = await sign(signingKey, withValue(base, where, (2n ** 64n - 1n).toString()));
          expect(unstorable.status, `${tc.name} ${where.join(".")}=2^64-1`).toBe(400);
          expect(unstorable.json(), `${tc.name} ${where.join(".")}=2^64-1`).toMatchObject({ code: "INVALID_REQUEST", field: where.join(".") });
        }
        const refused = await sign(signingKey, withValue(base, where, TOO_LARGE.toString()));
        expect(refused.status, `${tc.name} ${where.join(".")}=2^64`).toBe(400);
        expect(refused.json(), `${tc.name} ${where.join(".")}=2^64`).toMatchObject({ code: "INVALID_REQUEST", field: where.join(".") });
      }
    }
    expect(key).toBeLessThanOrEqual(KEYS);
    expect(signed).toBeGreaterThan(200);
  }, 120_000);

  it("signs Web3Signer's own BLOCK_V2 example (proposer_index 4666673844721362956) with the root Web3Signer gives", async () => {
    const example = {
      type: "BLOCK_V2",
      signingRoot: "0x26d0ee0b6c2261cd6010112a024de4f3d2e1e9844d11d60b057fac344c745464",
      fork_info: { fork: { previous_version: "0x00000001", current_version: "0x00000001", epoch: "1" }, genesis_validators_root: GVR },
      beacon_block: {
        version: "BELLATRIX",
        block_header: {
          slot: "0",
          proposer_index: "4666673844721362956",
          parent_root: "0x367cbd40ac7318427aadb97345a91fa2e965daf3158d7f1846f1306305f41bef",
          state_root: "0xfd18cf40cc907a739be483f1ca0ee23ad65cdd3df23205eabc6d660a75d1f54e",
          body_root: "0xe74b0fc13f19ae2077403afa03fdc155484f22d05d93eb084473951bb3a8d1ae",
        },
      },
    };
    expectSignedOver(KEYS - 1, await sign(KEYS - 1, example), example.signingRoot, "Web3Signer's example");
  });
});
