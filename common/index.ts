// Shared primitives every part may import: typed errors with exit codes, private-file helpers, hex.
export { VigilError, EXIT_CODES } from "./errors.js";
export { PRIVATE_FILE_MODE, PRIVATE_DIR_MODE, createPrivateFileIfMissing, ensurePrivateDir, writeFilePrivateAtomic } from "./files.js";
export { isHexOfLength, normalizeHex, hexToBytes, bytesToHex } from "./hex.js";
export { defaultDataDir, defaultSlashingDbPath } from "./defaults.js";
export { workerScriptUrl } from "./workers.js";
export { MAX_UINT64, MAX_SQLITE_INTEGER, parseUint, type Uint64Parse } from "./uint64.js";
export { startSystemdWatchdogPinger, SystemdNotifier, systemdWatchdogIntervalMs, type LivenessCheck, type SystemdWatchdogPinger } from "./systemd-notify.js";
export { runDaemon, type RunDaemonOptions, type RunningDaemon, type DaemonHooks } from "./daemon.js";
export {
  HttpGuard,
  installHttpGuard,
  RefusalLogThrottle,
  DEFAULT_HTTP_GUARD,
  HOST_ALLOW_ANY,
  invalidHostAllowlistEntry,
  invalidOriginEntry,
  isLoopbackAddress,
  type GuardRefusal,
  type HttpGuardSettings,
} from "./http-guard.js";
export { coreDumpLimit, disableCoreDumps } from "./core-dumps.js";
export { NonBlockingLogDestination, type LogDestinationOptions } from "./log-destination.js";
export {
  openDurableSqlite,
  schemaVersion,
  DurableSqliteError,
  DEFAULT_BUSY_TIMEOUT_MS,
  type SqliteMigration,
  type DurableSqliteOptions,
  type DurableSqliteErrorCode,
} from "./sqlite.js";
export { readSecretFile, SecretFileError, type SecretFileErrorCode, type ReadSecretFileOptions } from "./secret-file.js";
export { SettingChecks, SettingsReader, childField, type SettingError } from "./settings-reader.js";
export { buildInfo, type BuildInfo } from "./build-info.js";
export { registerBuildInfo, registerRunningTotal } from "./metrics.js";
export {
  DEFAULT_LOG_STYLE,
  LOG_FORMATS,
  LOG_TIMESTAMPS,
  daemonLogOptions,
  styledDestination,
  type LogFormat,
  type LogStyle,
  type LogTimestamp,
  type ServiceName,
} from "./log-style.js";
