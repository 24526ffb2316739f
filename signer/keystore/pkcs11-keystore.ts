import crypto from "node:crypto";
import os from "node:os";
import bls from "@chainsafe/bls";
import type { SecretKey } from "@chainsafe/bls/types";
import { bytesToHex, EXIT_CODES, hexToBytes, isHexOfLength } from "../../common/index.js";
import type { HsmConfig } from "./config.js";
import {
  APPLICATION,
  findKeyRecords,
  openRecord,
  openRecordAsync,
  PUBKEY_LENGTH,
  RecordError,
  requireWrappingKey,
  sealSecret,
  SECRET_KEY_LENGTH,
} from "./envelope.js";
import { HsmRecordTamperedError, InvalidKeystoreError, KeyConflictError, KeyNotFoundError, KeyStoreError, type RefusedRecord } from "./errors.js";
import { readPin } from "./pin.js";
import type { PubkeysReply, WorkerRequest } from "./decrypt-worker.js";
import { hsmError, P, type Handle, type Pkcs11Factory, TokenSession } from "./pkcs11-session.js";
import { WorkerPool, workerUrl } from "./worker-pool.js";
import type { DeleteResult, ImportResult, KeyInfo, KeyStore, LoadedKeys, LoadOptions, SecretKeyInput, SignerHandle, KeyStoreHealth } from "./types.js";

/** PKCS#11 session states of a logged-in user (pkcs11js does not export the CKS_* constants). */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

export interface Pkcs11KeyStoreOptions {
  /** Test hook: a fake PKCS#11 binding. */
  factory?: Pkcs11Factory;
  /** Sessions decrypting in parallel during `load`. Default 1 (synchronous calls: fastest for a local token). */
  loadSessions?: number;
  /** Worker threads checking decrypted keys against their labels during `load`. Default: cores, at most 8. */
  loadWorkers?: number;
}

export interface ProgressOptions {
  onProgress?: (done: number, total: number) => void;
}

interface Candidate {
  label: string;
  pubkey: Uint8Array;
  value: Buffer;
}

interface Opened {
  label: string;
  pubkey: Uint8Array;
  /** Decrypted secret key: zeroed as soon as it has been used. */
  plain: Buffer;
}

const LOAD_BATCH = 256;
const WORKER_THRESHOLD = 512;

interface RecordRef {
  label: string;
  handles: Handle[];
}

class KeyHandle implements SignerHandle {
  constructor(
    readonly pubkey: string,
    readonly publicKey: Uint8Array,
    private readonly secretKey: SecretKey,
  ) {}
  sign(message: Uint8Array): Uint8Array {
    return this.secretKey.sign(message).toBytes();
  }
  /** Fresh copy of the secret bytes; see LoadedKeys.exportForWorkers. */
  exportSecret(): Uint8Array {
    return this.secretKey.toBytes();
  }
}

class LoadedKeyMap extends Map<string, KeyHandle> implements LoadedKeys {
  readonly refused: RefusedRecord[] = [];
  exportForWorkers(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [pubkey, handle] of this) out.set(pubkey, handle.exportSecret());
    return out;
  }
}

/** The first few items of a list, for one-line messages. */
export function abbreviate(items: string[], shown = 3): string {
  return items.slice(0, shown).join(", ") + (items.length > shown ? ` and ${items.length - shown} more` : "");
}

/** Parses a record label; only a 0x + 96 hex label can be a Vigil key record. */
function labelPubkey(label: string): Uint8Array | undefined {
  return isHexOfLength(label, PUBKEY_LENGTH) ? hexToBytes(label) : undefined;
}

/** Lower-case 0x pubkey; throws (exit 3) for anything that is not 48 bytes of hex. */
export function normalizePubkey(value: string): string {
  const v = value.startsWith("0x") || value.startsWith("0X") ? `0x${value.slice(2)}` : `0x${value}`;
  if (!isHexOfLength(v, PUBKEY_LENGTH))
    throw new KeyStoreError("INVALID_PUBKEY", `not a BLS public key: ${JSON.stringify(value.slice(0, 100))}`, EXIT_CODES.invalidInput);
  return v.toLowerCase();
}

/**
 * Key store on a PKCS#11 token using envelope encryption (see envelope.ts). One logged-in session does
 * the enumeration, decryption and writes; `loadSessions` > 1 adds sessions that decrypt in parallel
 * (for network HSMs, where each call is a round trip).
 */
export class Pkcs11KeyStore implements KeyStore {
  private records: Map<string, RecordRef> | undefined; // cached handles, by label
  private readonly loadSessions: number;
  private readonly loadWorkers: number;

  private constructor(
    private readonly ts: TokenSession,
    private readonly wrappingKey: Handle,
    options: Pkcs11KeyStoreOptions,
  ) {
    this.loadSessions = Math.max(1, options.loadSessions ?? 1);
    this.loadWorkers = Math.max(1, options.loadWorkers ?? Math.min(os.availableParallelism(), 8));
  }

  /** Opens the token, logs in and finds the wrapping key (HsmWrappingKeyMissingError if absent). */
  static open(config: HsmConfig, options: Pkcs11KeyStoreOptions = {}): Pkcs11KeyStore {
    const ts = TokenSession.open({ module: config.module, tokenLabel: config.tokenLabel, readWrite: true, factory: options.factory }, () =>
      readPin(config.pin),
    );
    try {
      return new Pkcs11KeyStore(ts, requireWrappingKey(ts), options);
    } catch (err) {
      ts.close();
      throw err;
    }
  }

  get tokenLabel(): string {
    return this.ts.tokenLabel;
  }

  /**
   * One C_FindObjects pass over Vigil's data objects and their labels; caches label → handles. Callers
   * that must see changes made by other processes clear `this.records` first.
   */
  private enumerate(): Map<string, RecordRef> {
    if (this.records) return this.records;
    const { pkcs11, session } = this.ts;
    const handles = this.findRecordHandles();
    const records = new Map<string, RecordRef>();
    for (const handle of handles) {
      let label: string;
      try {
        const [attr] = pkcs11.C_GetAttributeValue(session, handle, [{ type: P.CKA_LABEL }]);
        label = attr?.value.toString("utf8") ?? "";
      } catch (err) {
        throw hsmError("reading a key record label", err);
      }
      const key = label.toLowerCase();
      const ref = records.get(key);
      if (ref) ref.handles.push(handle);
      else records.set(key, { label, handles: [handle] });
    }
    this.records = records;
    return records;
  }

  private readValue(handle: Handle): Buffer {
    try {
      const [attr] = this.ts.pkcs11.C_GetAttributeValue(this.ts.session, handle, [{ type: P.CKA_VALUE }]);
      return attr?.value ?? Buffer.alloc(0);
    } catch (err) {
      throw hsmError("reading a key record", err);
    }
  }

  /**
   * C_GetSessionInfo (the session is valid and logged in) and C_GetTokenInfo (the token is still there: SoftHSM2
   * answers CKR_GENERAL_ERROR once its token files are gone, while list() would quietly return no keys).
   */
  async health(): Promise<KeyStoreHealth> {
    const { pkcs11, session, slot } = this.ts;
    try {
      const info = pkcs11.C_GetSessionInfo(session);
      if (info.state !== CKS_RO_USER_FUNCTIONS && info.state !== CKS_RW_USER_FUNCTIONS) {
        return { up: false, cause: "NOT_LOGGED_IN", message: "the HSM session is no longer logged in" };
      }
    } catch (err) {
      return { up: false, cause: "SESSION_INVALID", message: `the HSM session is no longer valid: ${(err as Error).message}` };
    }
    try {
      pkcs11.C_GetTokenInfo(slot);
    } catch (err) {
      return { up: false, cause: "TOKEN_GONE", message: `the token does not answer: ${(err as Error).message}` };
    }
    return { up: true };
  }

  async list(): Promise<KeyInfo[]> {
    this.records = undefined;
    return [...this.enumerate().keys()]
      .filter((l) => labelPubkey(l))
      .sort()
      .map((pubkey) => ({ pubkey }));
  }

  async load(options: LoadOptions = {}): Promise<LoadedKeys> {
    const { pkcs11, session } = this.ts;
    this.records = undefined; // a fresh view of the token
    const handles = this.findRecordHandles();
    const records = new Map<string, RecordRef>();
    const loaded = new LoadedKeyMap();
    const refuse = (label: string, reason: string): void => {
      loaded.refused.push({ label, reason });
    };
    const sessions: Handle[] = [session];
    try {
      for (let i = 1; i < this.loadSessions; i++) sessions.push(this.ts.openExtraSession());
    } catch {
      // fewer sessions than asked for (token limit): carry on with what we have
    }
    // Deriving a public key costs ~0.1 ms of CPU, more than the HSM's decrypt; above a few hundred keys
    // worker threads do it while this thread keeps the HSM busy with the next batch.
    const pool = handles.length >= WORKER_THRESHOLD ? new WorkerPool(workerUrl("decrypt-worker"), this.loadWorkers) : undefined;
    const checks: Promise<void>[] = [];
    try {
      for (let start = 0; start < handles.length; start += LOAD_BATCH) {
        const batch: Candidate[] = [];
        for (const handle of handles.slice(start, start + LOAD_BATCH)) {
          let label: string;
          let value: Buffer;
          try {
            const [l, v] = pkcs11.C_GetAttributeValue(session, handle, [{ type: P.CKA_LABEL }, { type: P.CKA_VALUE }]);
            label = l?.value.toString("utf8") ?? "";
            value = v?.value ?? Buffer.alloc(0);
          } catch (err) {
            throw hsmError("reading a key record", err);
          }
          const key = label.toLowerCase();
          const ref = records.get(key);
          if (ref) {
            ref.handles.push(handle); // duplicate record (e.g. two concurrent imports): same key, load once
            continue;
          }
          records.set(key, { label, handles: [handle] });
          const pubkey = labelPubkey(label);
          if (!pubkey) refuse(label, "label is not a BLS public key");
          else batch.push({ label, pubkey, value });
        }
        const opened = await this.decryptBatch(sessions, batch, refuse);
        if (pool) {
          checks.push(this.checkBatchInWorker(pool, loaded, opened, refuse));
          await new Promise((resolve) => setImmediate(resolve)); // let finished workers take the next batch
        } else {
          for (const c of opened) this.checkInline(loaded, c, refuse);
        }
      }
      await Promise.all(checks);
    } finally {
      await pool?.close();
    }
    this.records = records;
    if (loaded.refused.length > 0 && !options.allowRefused) throw new HsmRecordTamperedError(loaded.refused);
    return loaded;
  }

  private findRecordHandles(): Handle[] {
    return findKeyRecords(this.ts.pkcs11, this.ts.session);
  }

  /**
   * Decrypts a batch. With one session the calls are synchronous (fastest for a local token: ~30 us
   * each); with several, each session runs C_Decrypt on its own libuv thread, which pays off when every
   * call is a network round trip to the HSM.
   */
  private async decryptBatch(sessions: Handle[], batch: Candidate[], refuse: (l: string, r: string) => void): Promise<Opened[]> {
    const { pkcs11 } = this.ts;
    const opened: Opened[] = [];
    const openOne = async (c: Candidate, session: Handle): Promise<void> => {
      try {
        const plain =
          sessions.length === 1
            ? openRecord(pkcs11, session, this.wrappingKey, c.pubkey, c.value)
            : await openRecordAsync(pkcs11, session, this.wrappingKey, c.pubkey, c.value);
        opened.push({ label: c.label, pubkey: c.pubkey, plain });
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        refuse(c.label, err.message);
      }
    };
    try {
      if (sessions.length === 1) {
        for (const c of batch) await openOne(c, sessions[0]!);
      } else {
        let next = 0;
        await Promise.all(
          sessions.map(async (session) => {
            while (next < batch.length) await openOne(batch[next++]!, session);
          }),
        );
      }
    } catch (err) {
      for (const o of opened) o.plain.fill(0); // an HSM failure mid-batch: do not leave secrets behind
      throw err;
    }
    return opened;
  }

  /** Builds the secret key, checks it against the label here, zeroes the decrypted buffer. */
  private checkInline(loaded: LoadedKeyMap, c: Opened, refuse: (l: string, r: string) => void): void {
    try {
      let sk: SecretKey;
      try {
        sk = bls.SecretKey.fromBytes(c.plain);
      } catch {
        refuse(c.label, "decrypted value is not a BLS secret key");
        return;
      }
      this.accept(loaded, c, sk, sk.toPublicKey().toBytes(), refuse);
    } finally {
      c.plain.fill(0);
    }
  }

  /**
   * Builds the secret keys here (blst copies the scalar into native memory), then moves the decrypted
   * buffers to a worker, which derives the public keys and zeroes them.
   */
  private async checkBatchInWorker(pool: WorkerPool, loaded: LoadedKeyMap, opened: Opened[], refuse: (l: string, r: string) => void): Promise<void> {
    const built: { c: Opened; sk: SecretKey }[] = [];
    const secrets: Uint8Array[] = [];
    for (const c of opened) {
      try {
        built.push({ c, sk: bls.SecretKey.fromBytes(c.plain) });
        // A private copy in a fresh ArrayBuffer: that can be transferred (moved) without touching pooled memory.
        secrets.push(new Uint8Array(c.plain));
      } catch {
        refuse(c.label, "decrypted value is not a BLS secret key");
      } finally {
        c.plain.fill(0);
      }
    }
    let pubkeys: PubkeysReply;
    try {
      pubkeys = await pool.run<PubkeysReply>(
        { kind: "pubkeys", secrets } satisfies WorkerRequest,
        secrets.map((s) => s.buffer as ArrayBuffer),
      );
    } finally {
      for (const s of secrets) if (s.byteLength > 0) s.fill(0); // transferred ones are detached (length 0); clears them if the post failed
    }
    built.forEach(({ c, sk }, i) => {
      const derived = pubkeys[i];
      if (!derived) refuse(c.label, "decrypted value is not a BLS secret key");
      else this.accept(loaded, c, sk, derived, refuse);
    });
  }

  private accept(loaded: LoadedKeyMap, c: Opened, sk: SecretKey, derived: Uint8Array, refuse: (l: string, r: string) => void): void {
    if (!Buffer.from(derived).equals(Buffer.from(c.pubkey))) {
      refuse(c.label, "decrypted key does not match its public key label");
      return;
    }
    const hex = bytesToHex(c.pubkey);
    loaded.set(hex, new KeyHandle(hex, c.pubkey, sk));
  }

  /** Decrypts the stored record for a pubkey (for re-import comparison). Caller zeroes the result. */
  private openStored(ref: RecordRef, pubkey: Uint8Array): Buffer {
    const value = this.readValue(ref.handles[0]!);
    try {
      return openRecord(this.ts.pkcs11, this.ts.session, this.wrappingKey, pubkey, value);
    } catch (err) {
      if (err instanceof RecordError) throw new HsmRecordTamperedError([{ label: ref.label, reason: err.message }]);
      throw err;
    }
  }

  async importKeys(keys: SecretKeyInput[], options: ProgressOptions = {}): Promise<ImportResult> {
    try {
      // Check everything first: a bad key or a conflict must leave the token untouched.
      const toStore = new Map<string, { pubkey: Uint8Array; secret: Uint8Array }>();
      const unchanged = new Set<string>();
      const conflicts: string[] = [];
      // One fresh pass (another process may have imported since). Not one C_FindObjects per label:
      // SoftHSM2 scans every object for each search, so N lookups cost N full scans.
      this.records = undefined;
      const records = this.enumerate();
      for (const input of keys) {
        if (input.secretKey.length !== SECRET_KEY_LENGTH) throw new InvalidKeystoreError("secret key must be 32 bytes");
        let pubkey: Uint8Array;
        try {
          pubkey = bls.SecretKey.fromBytes(input.secretKey).toPublicKey().toBytes();
        } catch {
          throw new InvalidKeystoreError(`secret key for ${input.pubkey} is not a valid BLS secret key`);
        }
        const hex = bytesToHex(pubkey);
        if (normalizePubkey(input.pubkey) !== hex) throw new InvalidKeystoreError(`secret key does not match public key ${input.pubkey}`);
        const ref = records.get(hex);
        if (ref) {
          const stored = this.openStored(ref, pubkey);
          const same = crypto.timingSafeEqual(stored, input.secretKey);
          stored.fill(0);
          if (same) unchanged.add(hex);
          else conflicts.push(hex);
        } else {
          toStore.set(hex, { pubkey, secret: input.secretKey });
        }
      }
      if (conflicts.length > 0) {
        throw new KeyConflictError(`a different key is already stored under ${conflicts.length} label(s): ${abbreviate(conflicts)}`);
      }
      const imported: string[] = [];
      let done = 0;
      for (const [hex, { pubkey, secret }] of toStore) {
        this.store(hex, pubkey, secret);
        imported.push(hex);
        options.onProgress?.(++done, toStore.size);
      }
      return { imported, unchanged: [...unchanged] };
    } finally {
      for (const k of keys) k.secretKey.fill(0);
    }
  }

  private store(hex: string, pubkey: Uint8Array, secret: Uint8Array): void {
    const { pkcs11, session } = this.ts;
    const record = sealSecret(pkcs11, session, this.wrappingKey, pubkey, secret);
    let handle: Handle;
    try {
      handle = pkcs11.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_DATA },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_MODIFIABLE, value: false },
        { type: P.CKA_APPLICATION, value: APPLICATION },
        { type: P.CKA_LABEL, value: hex },
        { type: P.CKA_VALUE, value: record },
      ]);
    } catch (err) {
      throw hsmError(`storing key ${hex}`, err);
    }
    this.records?.set(hex, { label: hex, handles: [handle] });
  }

  async generate(count: number, options: ProgressOptions = {}): Promise<string[]> {
    if (!Number.isSafeInteger(count) || count < 1) throw new InvalidKeystoreError("count must be a positive integer");
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      // IKM = 32 bytes from the token's RNG || 32 from the OS; KeyGen's HKDF makes the key as strong as the better one.
      let hsmRandom: Buffer;
      try {
        hsmRandom = this.ts.pkcs11.C_GenerateRandom(this.ts.session, Buffer.alloc(32));
      } catch (err) {
        throw hsmError("C_GenerateRandom", err);
      }
      const ikm = Buffer.concat([hsmRandom, crypto.randomBytes(32)]);
      hsmRandom.fill(0);
      const sk = bls.SecretKey.fromKeygen(ikm);
      ikm.fill(0);
      const pubkey = sk.toPublicKey().toBytes();
      const hex = bytesToHex(pubkey);
      const secret = sk.toBytes();
      try {
        this.store(hex, pubkey, secret);
      } finally {
        secret.fill(0);
      }
      out.push(hex);
      options.onProgress?.(i + 1, count);
    }
    return out;
  }

  async delete(pubkeys: string[]): Promise<DeleteResult> {
    const wanted = [...new Set(pubkeys.map(normalizePubkey))];
    this.records = undefined;
    const records = this.enumerate();
    const missing = wanted.filter((p) => !records.has(p));
    if (missing.length > 0) throw new KeyNotFoundError(`${missing.length} key(s) not on token ${JSON.stringify(this.ts.tokenLabel)}: ${abbreviate(missing)}`);
    const deleted: string[] = [];
    for (const pubkey of wanted) {
      for (const handle of records.get(pubkey)!.handles) {
        try {
          this.ts.pkcs11.C_DestroyObject(this.ts.session, handle);
        } catch (err) {
          throw hsmError(`deleting key ${pubkey}`, err);
        }
      }
      records.delete(pubkey);
      deleted.push(pubkey);
    }
    return { deleted };
  }

  async close(): Promise<void> {
    this.records = undefined;
    this.ts.close();
  }
}
