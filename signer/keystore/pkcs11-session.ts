import fs from "node:fs";
import pkcs11js from "pkcs11js";
import { HsmError, HsmModuleError, HsmPinLockedError, HsmTokenNotFoundError, HsmWrongPinError } from "./errors.js";

export type Pkcs11 = pkcs11js.PKCS11;
export type Handle = Buffer;
/** Creates the PKCS#11 binding; tests substitute a fake to simulate what SoftHSM2 cannot (a locked PIN). */
export type Pkcs11Factory = () => Pkcs11;

export const P = pkcs11js;

const defaultFactory: Pkcs11Factory = () => new pkcs11js.PKCS11();

// One binding per module path per process: a second C_Initialize fails and C_Finalize from one user
// would pull the library out from under the other.
interface ModuleEntry {
  pkcs11: Pkcs11;
  refs: number;
}
const modules = new Map<string, ModuleEntry>();

const CKR_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(pkcs11js)) {
  if (name.startsWith("CKR_") && typeof value === "number" && !CKR_NAMES.has(value)) CKR_NAMES.set(value, name);
}

/** The CKR_* code of a pkcs11js error (Pkcs11Error carries it as `code`), or undefined for anything else. */
export function ckrCode(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "number" && (err.name === "Pkcs11Error" || err.message.startsWith("CKR_"))) return code;
  const m = /CKR_[A-Z0-9_]+:(\d+)/.exec(err.message);
  return m ? Number(m[1]) : undefined;
}

export function ckrName(err: unknown): string {
  const code = ckrCode(err);
  if (code !== undefined) return CKR_NAMES.get(code) ?? `CKR 0x${code.toString(16)}`;
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

/** Wraps a PKCS#11 failure as one line naming the operation and the CKR_* code. */
export function hsmError(operation: string, err: unknown): HsmError {
  return new HsmError(`${operation} failed: ${ckrName(err)}`);
}

/** Maps a C_Login failure to the error an operator can act on. */
export function mapLoginError(err: unknown, tokenLabel: string): Error {
  const code = ckrCode(err);
  if (code === P.CKR_PIN_INCORRECT || code === P.CKR_PIN_LEN_RANGE || code === P.CKR_PIN_INVALID) return new HsmWrongPinError(tokenLabel);
  if (code === P.CKR_PIN_LOCKED) return new HsmPinLockedError(tokenLabel);
  return hsmError(`login to token ${JSON.stringify(tokenLabel)}`, err);
}

export function acquireModule(modulePath: string, factory: Pkcs11Factory): Pkcs11 {
  const existing = modules.get(modulePath);
  if (existing) {
    existing.refs++;
    return existing.pkcs11;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(modulePath);
  } catch {
    throw new HsmModuleError(`PKCS#11 module ${modulePath} not found`);
  }
  if (!st.isFile()) throw new HsmModuleError(`PKCS#11 module ${modulePath} is not a file`);
  const pkcs11 = factory();
  try {
    pkcs11.load(modulePath);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new HsmModuleError(`${modulePath} is not a PKCS#11 library (${reason})`);
  }
  try {
    // OS locking lets the async C_Decrypt variants run on several libuv threads at once.
    pkcs11.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (ckrCode(err) !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      safely(() => pkcs11.close());
      throw new HsmModuleError(`PKCS#11 module ${modulePath} failed to initialise: ${ckrName(err)}`);
    }
  }
  modules.set(modulePath, { pkcs11, refs: 1 });
  return pkcs11;
}

export function releaseModule(modulePath: string): void {
  const entry = modules.get(modulePath);
  if (!entry) return;
  if (--entry.refs > 0) return;
  modules.delete(modulePath);
  safely(() => entry.pkcs11.C_Finalize());
  safely(() => entry.pkcs11.close());
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // best effort during teardown
  }
}

export interface TokenOptions {
  module: string;
  tokenLabel: string;
  /** Read-write session (needed to create or destroy objects). */
  readWrite: boolean;
  factory?: Pkcs11Factory;
}

/** Token labels are space-padded to 32 bytes on the wire. */
function cleanLabel(label: string): string {
  return label.replace(/[\s\0]+$/, "");
}

/**
 * A logged-in session on the token found by its label. The PIN is asked for (via `pin()`) only after
 * the module and token have been found, and is not kept.
 */
export class TokenSession {
  private closed = false;
  private readonly extraSessions: Handle[] = [];

  private constructor(
    readonly pkcs11: Pkcs11,
    readonly modulePath: string,
    readonly slot: Handle,
    readonly tokenLabel: string,
    readonly session: Handle,
  ) {}

  /** Opens module + token; logs in when `pin` is given. */
  static open(options: TokenOptions, pin: (() => string) | undefined): TokenSession {
    const pkcs11 = acquireModule(options.module, options.factory ?? defaultFactory);
    let session: Handle | undefined;
    try {
      const slot = findSlot(pkcs11, options.tokenLabel);
      const info = pkcs11.C_GetTokenInfo(slot);
      if (pin && (info.flags & P.CKF_USER_PIN_LOCKED) !== 0) throw new HsmPinLockedError(options.tokenLabel);
      const flags = P.CKF_SERIAL_SESSION | (options.readWrite ? P.CKF_RW_SESSION : 0);
      try {
        session = pkcs11.C_OpenSession(slot, flags);
      } catch (err) {
        throw hsmError(`opening a session on token ${JSON.stringify(options.tokenLabel)}`, err);
      }
      if (pin) {
        const value = pin();
        try {
          pkcs11.C_Login(session, P.CKU_USER, value);
        } catch (err) {
          // Already logged in by another TokenSession of this process (login is per application).
          if (ckrCode(err) !== P.CKR_USER_ALREADY_LOGGED_IN) throw mapLoginError(err, options.tokenLabel);
        }
      }
      return new TokenSession(pkcs11, options.module, slot, options.tokenLabel, session);
    } catch (err) {
      if (session) safely(() => pkcs11.C_CloseSession(session!));
      releaseModule(options.module);
      throw err;
    }
  }

  /** Another session on the same token; login state is shared by all sessions of the application. */
  openExtraSession(): Handle {
    const s = this.pkcs11.C_OpenSession(this.slot, P.CKF_SERIAL_SESSION);
    this.extraSessions.push(s);
    return s;
  }

  tokenInfo(): pkcs11js.TokenInfo {
    return this.pkcs11.C_GetTokenInfo(this.slot);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.extraSessions) safely(() => this.pkcs11.C_CloseSession(s));
    // No C_Logout: login state belongs to the whole application, so it would also log out any other
    // TokenSession on this token in the process. Closing the application's last session logs out.
    safely(() => this.pkcs11.C_CloseSession(this.session));
    releaseModule(this.modulePath);
  }
}

export function findSlot(pkcs11: Pkcs11, tokenLabel: string): Handle {
  let slots: Handle[];
  try {
    slots = pkcs11.C_GetSlotList(true);
  } catch (err) {
    throw hsmError("listing slots", err);
  }
  const labels: string[] = [];
  const matches: Handle[] = [];
  for (const slot of slots) {
    let label: string;
    try {
      const info = pkcs11.C_GetTokenInfo(slot);
      if ((info.flags & P.CKF_TOKEN_INITIALIZED) === 0) continue;
      label = cleanLabel(info.label);
    } catch {
      continue; // a slot whose token went away between the two calls
    }
    labels.push(label);
    if (label === tokenLabel) matches.push(slot);
  }
  if (matches.length === 0) throw new HsmTokenNotFoundError(tokenLabel, labels);
  if (matches.length > 1) throw new HsmError(`${matches.length} tokens are labelled ${JSON.stringify(tokenLabel)}; labels must be unique`);
  return matches[0]!;
}

/** Names of the CKM_* mechanisms a slot supports (numbers without a known name are shown in hex). */
export function mechanismNames(pkcs11: Pkcs11, slot: Handle): string[] {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(pkcs11js)) {
    if (name.startsWith("CKM_") && typeof value === "number" && !names.has(value)) names.set(value, name);
  }
  return pkcs11.C_GetMechanismList(slot).map((m) => names.get(m) ?? `0x${m.toString(16)}`);
}
