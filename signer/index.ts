// Public surface of the signer part. Other parts (cli, watchdog, lead's wiring) import only from here.
export { startSigner, type RunningSigner, type StartSignerOptions } from "./server/start.js";
export {
  loadSignerConfig,
  parseSignerConfig,
  slashingDbOfConfig,
  checkWorkersBackend,
  MAX_WORKERS,
  SignerConfigError,
  DEFAULT_LISTEN,
  type SignerConfig,
  type ClientConfig,
  type ListenAddress,
} from "./server/config.js";
export { setUpEmbedded, clientInstructions, type EmbeddedOptions, type EmbeddedSetup } from "./server/embedded.js";
export type { HealthReport } from "./server/routes/health.js";
export { DEFAULT_CLIENT_ID } from "./server/auth.js";
export type { AuditEntry } from "./server/audit-log.js";
export { DataDirLock } from "./server/data-dir-lock.js";
export { startWorkers, WorkerError, type RunningWorkers, type SupervisorOptions } from "./cluster/supervisor.js";
export { runSignerWorker, workerConfig, workerSlot } from "./cluster/worker.js";
// The built-in network names, for `vigil signer start --help`.
export { NETWORK_NAMES } from "./signing/index.js";
// The key store's operator surface, for `vigil hsm …` and `vigil keys …`.
export {
  createToken,
  decryptKeystoreContents,
  decryptKeystores,
  describePinSource,
  discoverKeystores,
  initToken,
  InvalidKeystoreError,
  KeyNotFoundError,
  KeystoreConfigError,
  loadHsmConfig,
  normalizePubkey,
  Pkcs11KeyStore,
  readPin,
  tokenStatus,
  abbreviate,
  Progress,
  type HsmConfig,
  type SecretKeyInput,
} from "./keystore/index.js";
