/**
 * The base of every error Vigil raises on purpose. `code` is stable (tests, logs and HTTP bodies use it);
 * `exitCode` is what the CLI exits with when this error reaches it, so each failure class an operator
 * scripts against has its own number (see EXIT_CODES).
 *
 * Codes are UPPER_SNAKE. Each part declares its codes as a union and raises them through its own subclass
 * (`KeyStoreError`, `SigningError`, …), so a misspelt or new code fails to compile instead of drifting.
 */
export class VigilError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly exitCode: number = EXIT_CODES.failed,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** CLI exit codes. Documented in README ("Exit codes"); never renumber one. */
export const EXIT_CODES = {
  ok: 0,
  failed: 1, // unexpected failure
  usage: 2, // bad flags or arguments
  invalidInput: 3, // a file or value given is malformed
  refused: 4, // slashing protection (or another safety rule) said no
  notFound: 5, // a file, key or database that was named does not exist
  conflict: 6, // the action would overwrite or contradict existing state
  dataDirInUse: 7, // another signer holds the data directory's lock
  // HSM / key store
  hsmModule: 10, // PKCS#11 module missing or not a PKCS#11 library
  hsmTokenNotFound: 11,
  hsmWrongPin: 12,
  hsmPinLocked: 13,
  hsmWrappingKeyMissing: 14,
  hsmRecordTampered: 15,
  pinSourceInsecure: 16, // PIN file readable by group/others, or no PIN source configured
  // watchdog
  failoverRefused: 20,
  failoverFailed: 21,
  // signer shutdown
  dbNotClosedCleanly: 30, // stopped on request, but the slashing database reported errors while closing
  // slashing database server (PostgreSQL) at start-up or in a command
  dbUnreachable: 40, // no connection: host unknown, refused, timed out, TLS failed
  dbAuthFailed: 41, // the server refused the role or its password
  dbNetworkMismatch: 42, // the database is pinned to another network's genesis_validators_root
  dbSchemaTooNew: 43, // the database was migrated by a newer Vigil
  dbNotDurable: 44, // the server would acknowledge commits before they are on disk (synchronous_commit off/local)
} as const;
