/**
 * Consensus-spec domain rules (compute_domain, get_domain over fork_info, compute_signing_root) and the
 * two exceptions the signer must apply without a beacon state: genesis-version domains and EIP-7044.
 */
import { hexToBytes, normalizeHex } from "../../common/index.js";
import type { Consensus } from "./consensus.js";
import { UnknownForkVersionError } from "./errors.js";
import { forkOfVersion, isForkAtLeast, type NetworkConfig } from "./network.js";
import type { ForkInfoJson } from "./requests.js";

const ZERO_ROOT = new Uint8Array(32);

/** compute_domain(domain_type, fork_version, genesis_validators_root). */
export function computeDomain(consensus: Consensus, domainType: Uint8Array, forkVersion: Uint8Array, genesisValidatorsRoot: Uint8Array): Uint8Array {
  const forkDataRoot = consensus.ssz.phase0.ForkData.hashTreeRoot({ currentVersion: forkVersion, genesisValidatorsRoot });
  const domain = new Uint8Array(32);
  domain.set(domainType, 0);
  domain.set(forkDataRoot.subarray(0, 28), 4);
  return domain;
}

/** compute_signing_root: hash_tree_root(SigningData(object_root, domain)). */
export function signingRootOf(consensus: Consensus, objectRoot: Uint8Array, domain: Uint8Array): Uint8Array {
  return consensus.ssz.phase0.SigningData.hashTreeRoot({ objectRoot, domain });
}

/** get_domain's fork choice: the previous version before fork.epoch, the current one from it on. */
export function forkVersionAtEpoch(forkInfo: ForkInfoJson, epoch: bigint): string {
  return epoch < BigInt(forkInfo.fork.epoch) ? forkInfo.fork.previous_version : forkInfo.fork.current_version;
}

/** get_domain(state, domain_type, epoch) with the state's fork and genesis root taken from fork_info. */
export function domainAtEpoch(consensus: Consensus, domainType: Uint8Array, forkInfo: ForkInfoJson, epoch: bigint): Uint8Array {
  return computeDomain(consensus, domainType, hexToBytes(forkVersionAtEpoch(forkInfo, epoch)), hexToBytes(forkInfo.genesis_validators_root));
}

/** DEPOSIT and builder registrations: a given genesis fork version and a zero genesis_validators_root. */
export function genesisDomain(consensus: Consensus, domainType: Uint8Array, genesisForkVersion: string): Uint8Array {
  return computeDomain(consensus, domainType, hexToBytes(genesisForkVersion), ZERO_ROOT);
}

/**
 * The fork version a VOLUNTARY_EXIT is signed with.
 *
 * EIP-7044 (Deneb): exits are signed with CAPELLA_FORK_VERSION whatever the exit epoch. The signer sees only
 * fork_info, so the rule is: look fork_info.fork.current_version up in the network's fork schedule;
 * - a DENEB-or-later version of this network -> the network's CAPELLA version;
 * - an earlier version of this network -> the usual get_domain choice (previous/current by exit epoch);
 * - a version the network does not list -> refuse (UNKNOWN_FORK_VERSION): we cannot tell whether EIP-7044
 *   applies, and an exit signed with the wrong domain is silently invalid on chain.
 */
export function voluntaryExitForkVersion(network: NetworkConfig, forkInfo: ForkInfoJson, exitEpoch: bigint): string {
  const current = normalizeHex(forkInfo.fork.current_version);
  const fork = forkOfVersion(network, current);
  if (fork === undefined) {
    throw new UnknownForkVersionError(
      `fork_info.fork.current_version ${current} is not a fork version of network ${network.name}; ` +
        `cannot decide whether EIP-7044 applies to this voluntary exit`,
    );
  }
  if (!isForkAtLeast(fork, "DENEB")) return forkVersionAtEpoch(forkInfo, exitEpoch);
  const capella = network.forkVersions.CAPELLA;
  if (capella === undefined) {
    throw new UnknownForkVersionError(`network ${network.name} has ${fork} but no CAPELLA fork version (needed by EIP-7044)`);
  }
  return capella;
}
