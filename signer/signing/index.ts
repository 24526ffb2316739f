// Public surface of the signing core for the HTTP layer: validate a body, compute its signing root and
// slashing facts, sign with the BLS worker pool. No HTTP and no database here.
export { loadConsensus, PRESET_NAMES, PresetError, type Consensus, type PresetName } from "./consensus.js";
export {
  FORKS,
  MAINNET,
  MINIMAL_DEVNET,
  NETWORKS,
  NETWORK_NAMES,
  PRESET_SECONDS_PER_SLOT,
  PUBLIC_NETWORK_NAMES,
  forkOfVersion,
  isNetworkFile,
  namedNetwork,
  networkFromYamlFile,
  validateNetworkConfig,
  type ForkName,
  type NetworkConfig,
} from "./network.js";
export { signRequestBodySchema, SIGN_TYPES, type SignType } from "./schemas.js";
export { validateSignRequest, type SignRequest, type ForkInfoJson } from "./requests.js";
export { computeSigningRoot, parseUint64, type SigningRootResult, type SlashingFacts } from "./signing-root.js";
export { BlsPool, defaultWorkerUrl, type BlsPoolOptions } from "./bls-pool.js";
export {
  ClientGoneError,
  InvalidSignRequestError,
  QueueFullError,
  SigningRootMismatchError,
  UnknownForkVersionError,
  UnknownPubkeyError,
  SigningError,
  type SigningErrorCode,
} from "./errors.js";
