/**
 * The forks Vigil signs for, in order: the one list behind the network config's fork schedule, the BLOCK_V2 /
 * AGGREGATE_AND_PROOF_V2 `version` enum and its request types. Spelt in upper case, as Web3Signer's API writes them.
 *
 * Checked against @lodestar/params' ForkName by a type-only import (importing its values would fix Lodestar's
 * preset before consensus.ts chooses one); test/signing/forks.test.ts checks the order. Lodestar may know later
 * forks than Vigil signs for (gloas): a fork is added here only with its signing support and tests.
 */
import type { ForkName as LodestarForkName } from "@lodestar/params";

export const FORKS = ["PHASE0", "ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"] as const satisfies readonly Uppercase<`${LodestarForkName}`>[];
export type ForkName = (typeof FORKS)[number];

/** Forks whose BLOCK_V2 request carries the full block; later ones carry only the header. */
export const FULL_BLOCK_FORKS = ["PHASE0", "ALTAIR"] as const satisfies readonly ForkName[];
/** Forks whose AGGREGATE_AND_PROOF_V2 attestation carries committee_bits (EIP-7549). */
export const ELECTRA_AGGREGATE_FORKS = ["ELECTRA", "FULU"] as const satisfies readonly ForkName[];
