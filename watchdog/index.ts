// Public surface of the watchdog. Other parts (the CLI, tests) import only from here.
export { loadWatchdogConfig, parseWatchdogConfig, otherStack, STACK_NAMES } from "./config.js";
export type { WatchdogConfig, StackConfig, StackName, SignerEndpointConfig, MonitorConfig, FailoverConfig } from "./config.js";
export {
  WatchdogError,
  WatchdogConfigError,
  FailoverRefusedError,
  FailoverFailedError,
  SignerAdminError,
  StaleGenerationError,
  WatchdogStateError,
  relayCode,
} from "./errors.js";
export type { WatchdogErrorCode, RelayedCode } from "./errors.js";
export { startWatchdog, WatchdogDaemon, type DaemonOptions } from "./daemon.js";
export { createContext, type WatchdogContext } from "./context.js";
export { FailoverExecutor, type ExecutorDeps, type FailoverOutcome } from "./failover/executor.js";
export { checkPreconditions, describePlan, type Precondition } from "./failover/preconditions.js";
export { FAILOVER_STATES, TERMINAL_STATES, recoveryAction, type FailoverState, type FailoverRecord, type FailoverProgress } from "./failover/states.js";
export { ensureContinuity, type ContinuityResult } from "./failover/continuity.js";
export { proveSharedDatabase, sameDatabaseReported, type SharingProof } from "./failover/shared-database.js";
export { setClientAtEveryInstance, fenceHolds, describeInstances, type InstanceSetReport } from "./failover/instance-fence.js";
export { SignerAdminClient, SignerInstanceClient, type InstanceResult } from "./signer-client.js";
export { WatchdogStore, STATE_DB_NAME, newLeaseHolder, type LeaseHolder, type AuditEntry } from "./state/store.js";
export { Hysteresis } from "./health/hysteresis.js";
export { judgeBeacon, judgeSignerWitness, assessActive, type SignerWitness } from "./health/evaluate.js";
export { ChainClock } from "./chain-clock.js";
export { observe } from "./monitor.js";
