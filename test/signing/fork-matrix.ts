/**
 * Sign requests of every type for every fork PHASE0..FULU, each with the signing root computed independently
 * of signer/signing: object roots via the SSZ types' hash_tree_root, domains by hand from the spec
 * (compute_domain = domain_type ++ sha256(fork_version padded to 32 ++ genesis_validators_root)[:28];
 * compute_signing_root = sha256(object_root ++ domain)), and the fork version picked by hand per case.
 */
import { createHash } from "node:crypto";
import type { ssz as SszTypes } from "@lodestar/types";
import type { NetworkConfig } from "../../signer/signing/index.js";

type Ssz = typeof SszTypes;
export const FORK_ORDER = ["PHASE0", "ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"] as const;
type Fork = (typeof FORK_ORDER)[number];

/** Domain types from the consensus specs (and the builder spec for DOMAIN_APPLICATION_BUILDER). */
const DOMAIN = {
  BEACON_PROPOSER: [0, 0, 0, 0],
  BEACON_ATTESTER: [1, 0, 0, 0],
  RANDAO: [2, 0, 0, 0],
  DEPOSIT: [3, 0, 0, 0],
  VOLUNTARY_EXIT: [4, 0, 0, 0],
  SELECTION_PROOF: [5, 0, 0, 0],
  AGGREGATE_AND_PROOF: [6, 0, 0, 0],
  SYNC_COMMITTEE: [7, 0, 0, 0],
  SYNC_COMMITTEE_SELECTION_PROOF: [8, 0, 0, 0],
  CONTRIBUTION_AND_PROOF: [9, 0, 0, 0],
  APPLICATION_BUILDER: [0, 0, 0, 1],
} as const;

export interface MatrixCase {
  name: string;
  body: Record<string, unknown>;
  expectedSigningRoot: string;
  expectedSlashing: { kind: "block"; slot: bigint } | { kind: "attestation"; sourceEpoch: bigint; targetEpoch: bigint } | { kind: "none" };
}

const hex = (bytes: Uint8Array) => `0x${Buffer.from(bytes).toString("hex")}`;
const unhex = (s: string) => Uint8Array.from(Buffer.from(s.slice(2), "hex"));
const sha256 = (...parts: Uint8Array[]) => new Uint8Array(createHash("sha256").update(Buffer.concat(parts)).digest());
const filled = (length: number, byte: number) => new Uint8Array(length).fill(byte);

export function domainByHand(domainType: readonly number[], forkVersion: string, genesisValidatorsRoot: Uint8Array): Uint8Array {
  const versionChunk = new Uint8Array(32);
  versionChunk.set(unhex(forkVersion));
  const forkDataRoot = sha256(versionChunk, genesisValidatorsRoot);
  const domain = new Uint8Array(32);
  domain.set(domainType);
  domain.set(forkDataRoot.subarray(0, 28), 4);
  return domain;
}

export function signingRootByHand(objectRoot: Uint8Array, domain: Uint8Array): string {
  return hex(sha256(objectRoot, domain));
}

/** hash_tree_root of a uint64: little-endian, zero-padded to a chunk. */
export function uint64RootByHand(n: bigint): Uint8Array {
  const chunk = new Uint8Array(32);
  new DataView(chunk.buffer).setBigUint64(0, n, true);
  return chunk;
}

function versionOf(network: NetworkConfig, fork: Fork): string {
  const v = fork === "PHASE0" ? network.genesisForkVersion : network.forkVersions[fork];
  if (!v) throw new Error(`network ${network.name} has no ${fork} version`);
  return v;
}

export function forkMatrix(ssz: Ssz, network: NetworkConfig, slotsPerEpoch: number): MatrixCase[] {
  const spe = BigInt(slotsPerEpoch);
  const gvr = filled(32, 0x5a);
  const cases: MatrixCase[] = [];
  const FORK_EPOCH = 10n;

  FORK_ORDER.forEach((fork, k) => {
    const current = versionOf(network, fork);
    const previous = versionOf(network, FORK_ORDER[Math.max(0, k - 1)]!);
    const fork_info = {
      fork: { previous_version: previous, current_version: current, epoch: FORK_EPOCH.toString() },
      genesis_validators_root: hex(gvr),
    };
    const forkIndex = (f: Fork) => FORK_ORDER.indexOf(f);

    for (const [when, epoch, version] of [
      ["before fork epoch", FORK_EPOCH - 1n, previous],
      ["at fork epoch", FORK_EPOCH, current],
      ["after fork epoch", FORK_EPOCH + 3n, current],
    ] as const) {
      const label = (type: string) => `${fork} ${type} ${when}`;
      const dom = (type: readonly number[], v: string = version) => domainByHand(type, v, gvr);
      const push = (type: string, body: Record<string, unknown>, objectRoot: Uint8Array, domain: Uint8Array, slashing: MatrixCase["expectedSlashing"]) =>
        cases.push({
          name: label(type),
          body: { type, fork_info, ...body },
          expectedSigningRoot: signingRootByHand(objectRoot, domain),
          expectedSlashing: slashing,
        });

      // Blocks: BLOCK (phase0 body) and BLOCK_V2 (full block up to Altair, header after).
      const slot = epoch * spe + 3n;
      const phase0Block = ssz.phase0.BeaconBlock.defaultValue();
      phase0Block.slot = Number(slot);
      phase0Block.proposerIndex = 7;
      phase0Block.parentRoot = filled(32, 1);
      push("BLOCK", { block: ssz.phase0.BeaconBlock.toJson(phase0Block) }, ssz.phase0.BeaconBlock.hashTreeRoot(phase0Block), dom(DOMAIN.BEACON_PROPOSER), {
        kind: "block",
        slot,
      });
      if (fork === "PHASE0") {
        push(
          "BLOCK_V2",
          { beacon_block: { version: fork, block: ssz.phase0.BeaconBlock.toJson(phase0Block) } },
          ssz.phase0.BeaconBlock.hashTreeRoot(phase0Block),
          dom(DOMAIN.BEACON_PROPOSER),
          { kind: "block", slot },
        );
      } else if (fork === "ALTAIR") {
        const block = ssz.altair.BeaconBlock.defaultValue();
        block.slot = Number(slot);
        block.proposerIndex = 9;
        block.stateRoot = filled(32, 2);
        push(
          "BLOCK_V2",
          { beacon_block: { version: fork, block: ssz.altair.BeaconBlock.toJson(block) } },
          ssz.altair.BeaconBlock.hashTreeRoot(block),
          dom(DOMAIN.BEACON_PROPOSER),
          { kind: "block", slot },
        );
      } else {
        const header = { slot: Number(slot), proposerIndex: 11, parentRoot: filled(32, 3), stateRoot: filled(32, 4), bodyRoot: filled(32, 5 + k) };
        push(
          "BLOCK_V2",
          { beacon_block: { version: fork, block_header: ssz.phase0.BeaconBlockHeader.toJson(header) } },
          ssz.phase0.BeaconBlockHeader.hashTreeRoot(header),
          dom(DOMAIN.BEACON_PROPOSER),
          { kind: "block", slot },
        );
      }

      // Attestation: the target epoch picks the fork version, so put the slot in the *next* epoch.
      // Fresh objects each time: AttestationData caches its root on the value, so never spread a hashed one.
      const attestationData = (slot: bigint) => ({
        slot: Number(slot),
        index: 1,
        beaconBlockRoot: filled(32, 6),
        source: { epoch: Number(epoch - 1n), root: filled(32, 7) },
        target: { epoch: Number(epoch), root: filled(32, 8) },
      });
      const attestation = attestationData((epoch + 1n) * spe);
      push(
        "ATTESTATION",
        { attestation: ssz.phase0.AttestationData.toJson(attestation) },
        ssz.phase0.AttestationData.hashTreeRoot(attestation),
        dom(DOMAIN.BEACON_ATTESTER),
        { kind: "attestation", sourceEpoch: epoch - 1n, targetEpoch: epoch },
      );

      const aggSlot = epoch * spe + 1n;
      push("AGGREGATION_SLOT", { aggregation_slot: { slot: aggSlot.toString() } }, uint64RootByHand(aggSlot), dom(DOMAIN.SELECTION_PROOF), { kind: "none" });

      // Aggregates: the epoch of aggregate.data.slot picks the version.
      const phase0Aggregate = ssz.phase0.AggregateAndProof.defaultValue();
      phase0Aggregate.aggregatorIndex = 5;
      phase0Aggregate.aggregate.data = attestationData(epoch * spe + 2n);
      phase0Aggregate.selectionProof = filled(96, 9);
      const phase0AggregateJson = ssz.phase0.AggregateAndProof.toJson(phase0Aggregate);
      push(
        "AGGREGATE_AND_PROOF",
        { aggregate_and_proof: phase0AggregateJson },
        ssz.phase0.AggregateAndProof.hashTreeRoot(phase0Aggregate),
        dom(DOMAIN.AGGREGATE_AND_PROOF),
        { kind: "none" },
      );
      if (forkIndex(fork) >= forkIndex("ELECTRA")) {
        const electra = ssz.electra.AggregateAndProof.defaultValue();
        electra.aggregatorIndex = 5;
        electra.aggregate.data = attestationData(epoch * spe + 2n);
        electra.aggregate.committeeBits.set(1, true);
        electra.selectionProof = filled(96, 9);
        const json = ssz.electra.AggregateAndProof.toJson(electra);
        const root = ssz.electra.AggregateAndProof.hashTreeRoot(electra);
        push("AGGREGATE_AND_PROOF_V2", { aggregate_and_proof: { version: fork, data: json } }, root, dom(DOMAIN.AGGREGATE_AND_PROOF), { kind: "none" });
        cases.push({
          ...cases[cases.length - 1]!,
          name: label("AGGREGATE_AND_PROOF_V2 (bare legacy form)"),
          body: { type: "AGGREGATE_AND_PROOF_V2", fork_info, aggregate_and_proof: json },
        });
      } else {
        push(
          "AGGREGATE_AND_PROOF_V2",
          { aggregate_and_proof: { version: fork, data: phase0AggregateJson } },
          ssz.phase0.AggregateAndProof.hashTreeRoot(phase0Aggregate),
          dom(DOMAIN.AGGREGATE_AND_PROOF),
          { kind: "none" },
        );
      }

      push("RANDAO_REVEAL", { randao_reveal: { epoch: epoch.toString() } }, uint64RootByHand(epoch), dom(DOMAIN.RANDAO), { kind: "none" });

      // EIP-7044: from Deneb on, exits are signed with the Capella fork version whatever their epoch.
      const exit = { epoch: Number(epoch), validatorIndex: 42 };
      const exitVersion = forkIndex(fork) >= forkIndex("DENEB") ? versionOf(network, "CAPELLA") : version;
      push(
        "VOLUNTARY_EXIT",
        { voluntary_exit: ssz.phase0.VoluntaryExit.toJson(exit) },
        ssz.phase0.VoluntaryExit.hashTreeRoot(exit),
        dom(DOMAIN.VOLUNTARY_EXIT, exitVersion),
        { kind: "none" },
      );

      const syncSlot = epoch * spe + 4n;
      const blockRoot = filled(32, 10 + k);
      push(
        "SYNC_COMMITTEE_MESSAGE",
        { sync_committee_message: { beacon_block_root: hex(blockRoot), slot: syncSlot.toString() } },
        blockRoot,
        dom(DOMAIN.SYNC_COMMITTEE),
        { kind: "none" },
      );

      const selection = { slot: Number(syncSlot), subcommitteeIndex: 2 };
      push(
        "SYNC_COMMITTEE_SELECTION_PROOF",
        { sync_aggregator_selection_data: ssz.altair.SyncAggregatorSelectionData.toJson(selection) },
        ssz.altair.SyncAggregatorSelectionData.hashTreeRoot(selection),
        dom(DOMAIN.SYNC_COMMITTEE_SELECTION_PROOF),
        { kind: "none" },
      );

      const contribution = ssz.altair.ContributionAndProof.defaultValue();
      contribution.aggregatorIndex = 3;
      contribution.contribution.slot = Number(syncSlot);
      contribution.contribution.beaconBlockRoot = blockRoot;
      contribution.contribution.subcommitteeIndex = 1;
      contribution.contribution.aggregationBits.set(0, true);
      push(
        "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
        { contribution_and_proof: ssz.altair.ContributionAndProof.toJson(contribution) },
        ssz.altair.ContributionAndProof.hashTreeRoot(contribution),
        dom(DOMAIN.CONTRIBUTION_AND_PROOF),
        { kind: "none" },
      );
    }
  });

  // Genesis-version domains with a zero genesis_validators_root.
  const zero = new Uint8Array(32);
  const depositMessage = { pubkey: filled(48, 0xaa), withdrawalCredentials: filled(32, 0xbb), amount: 32_000_000_000 };
  const depositForkVersion = "0x10000910";
  cases.push({
    name: "DEPOSIT (genesis_fork_version from the body)",
    body: { type: "DEPOSIT", deposit: { ...(ssz.phase0.DepositMessage.toJson(depositMessage) as object), genesis_fork_version: depositForkVersion } },
    expectedSigningRoot: signingRootByHand(ssz.phase0.DepositMessage.hashTreeRoot(depositMessage), domainByHand(DOMAIN.DEPOSIT, depositForkVersion, zero)),
    expectedSlashing: { kind: "none" },
  });
  const registration = { feeRecipient: filled(20, 0xcc), gasLimit: 30_000_000, timestamp: 1_700_000_000, pubkey: filled(48, 0xdd) };
  cases.push({
    name: "VALIDATOR_REGISTRATION (network genesis fork version)",
    body: { type: "VALIDATOR_REGISTRATION", validator_registration: ssz.bellatrix.ValidatorRegistrationV1.toJson(registration) },
    expectedSigningRoot: signingRootByHand(
      ssz.bellatrix.ValidatorRegistrationV1.hashTreeRoot(registration),
      domainByHand(DOMAIN.APPLICATION_BUILDER, network.genesisForkVersion, zero),
    ),
    expectedSlashing: { kind: "none" },
  });
  return cases;
}
