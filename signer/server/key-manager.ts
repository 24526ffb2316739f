/**
 * Key import and deletion at run time (what the keymanager API asks for), without HTTP. Keys go to the HSM key
 * store first (durable), then into the BLS pool, then become signable; EIP-3076 slashing protection is imported
 * before any key of the request can sign. Deletions leave the service (after in-flight requests finish) and the
 * pool before the token, and return the history the next signer must import. Changes run one at a time: each
 * touches the pool, the token and the database together.
 */
import type { Logger } from "pino";
import { normalizeHex, VigilError } from "../../common/index.js";
import type { Interchange, SlashingProtection } from "../../slashing-db/index.js";
import { decryptKeystoreContents, defaultImportWorkers, type KeyStore, type SecretKeyInput } from "../keystore/index.js";
import type { BlsPool } from "../signing/index.js";
import { type DerivationPaths, keystorePath } from "./derivation-paths.js";
import type { SigningService } from "./signing-service.js";

export type ImportStatus = { status: "imported" | "duplicate" | "error"; message?: string };
export type DeleteStatus = { status: "deleted" | "not_active" | "not_found" | "error"; message?: string };

/** The slashing protection sent with an import could not be imported: no key of that request was imported. */
export class SlashingProtectionImportError extends VigilError<"INVALID_SLASHING_PROTECTION"> {
  constructor(readonly detail: string) {
    super("INVALID_SLASHING_PROTECTION", `slashing_protection: ${detail}`);
  }
}

export interface KeyManagerDeps {
  service: SigningService;
  pool: BlsPool;
  keyStore: KeyStore;
  /** Interchange imports and exports (an import into an unpinned database pins it). */
  slashing: SlashingProtection;
  logger: Logger;
  /** The configured network, for the empty interchange of a database that was never pinned. */
  genesisValidatorsRoot: string | undefined;
  /** Where the imported keystores' derivation paths are kept (undefined: none kept, all listed as ""). */
  derivationPaths?: DerivationPaths;
  /** Other signer processes holding the same keys (node:cluster workers): told of every change before it returns. */
  siblings?: KeySiblings;
  /** A key-store (HSM) operation failed, or `count` records were refused at loading (vigil_signer_keystore_errors_total). */
  onKeyStoreError?: (operation: "load" | "import" | "delete" | "reload", count: number) => void;
}

/**
 * The other workers of a `--workers N` signer. retire() resolves once none of them can sign those keys any more
 * (each retired them, or was stopped) and `whileRetired` is done; reload() once each loaded what the key store now holds (or was restarted,
 * which loads everything).
 */
export interface KeySiblings {
  /** `whileRetired` runs once every sibling retired the keys, before any sibling can load keys again. */
  retire(pubkeys: string[], whileRetired: () => Promise<void>): Promise<void>;
  reload(): Promise<void>;
}

/** What a reload changed: keys added and removed, records refused (undecryptable or mislabelled), keys signable now. */
export interface KeySync {
  added: number;
  removed: number;
  refused: string[];
  keys: number;
}

export class KeyManager {
  /** Key changes run one at a time. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: KeyManagerDeps) {}

  /** The keys that may be signed with, sorted. */
  list(): string[] {
    return [...this.deps.service.keys].sort();
  }

  /** The keys that may be signed with, sorted, each with the derivation path of the keystore it came from ("" if unknown). */
  listWithPaths(): { pubkey: string; derivationPath: string }[] {
    const paths = this.deps.derivationPaths?.all() ?? new Map<string, string>();
    return this.list().map((pubkey) => ({ pubkey, derivationPath: paths.get(pubkey) ?? "" }));
  }

  /**
   * Imports `slashingProtection` (if any: throws SlashingProtectionImportError and imports no key when it fails),
   * then each EIP-2335 keystore with its password. One status per keystore, in order.
   */
  importKeys(keystores: string[], passwords: string[], slashingProtection: string | undefined): Promise<ImportStatus[]> {
    return this.serialised(async () => {
      if (slashingProtection !== undefined) {
        try {
          // Before any key can sign: its history must already be in the database.
          const s = await this.deps.slashing.importInterchange(slashingProtection); // an import into an unpinned database pins it
          this.deps.logger.info({ validators: s.validators }, "keymanager: imported slashing protection");
        } catch (err) {
          throw new SlashingProtectionImportError((err as Error).message);
        }
      }
      return this.importAll(keystores, passwords);
    });
  }

  /** Deletes keys (lower-case 0x); returns one status per key and the interchange of their history. */
  deleteKeys(pubkeys: string[]): Promise<{ data: DeleteStatus[]; slashing_protection: string }> {
    return this.serialised(() => this.deleteAll(pubkeys));
  }

  /** A sibling retired these keys: stop signing them here too (in-flight requests finish first). */
  retireForSibling(pubkeys: string[]): Promise<void> {
    return this.serialised(async () => {
      const active = pubkeys.filter((p) => this.deps.service.keys.has(p));
      await this.deps.service.retireKeys(active);
      await this.deps.pool.removeKeys(active);
      if (active.length > 0) this.deps.logger.info({ keys: active.length }, "keymanager: keys retired by a sibling worker");
    });
  }

  /** A sibling imported keys into the key store: load the ones not signable here yet. */
  reloadForSibling(): Promise<void> {
    return this.serialised(async () => {
      const { service, keyStore, logger } = this.deps;
      const onToken = await this.keyStoreStep("reload", () => keyStore.list());
      if (onToken.every((k) => service.keys.has(normalizeHex(k.pubkey)))) return;
      const { added } = await this.loadNew(new Set(onToken.map((k) => normalizeHex(k.pubkey))));
      if (added.length > 0) logger.info({ keys: added.length }, "keymanager: keys imported by a sibling worker loaded");
    });
  }

  /**
   * POST /reload and SIGHUP: makes the signable keys what the key store holds now. Keys no longer on the token
   * stop being admitted and leave the pool once their in-flight requests finished; keys new on the token are
   * loaded and become signable. A record that cannot be decrypted is skipped (`refused`), the others load.
   */
  syncWithKeyStore(): Promise<KeySync> {
    return this.serialised(async () => {
      const { service, pool, keyStore, logger } = this.deps;
      const onToken = new Set((await this.keyStoreStep("reload", () => keyStore.list())).map((k) => normalizeHex(k.pubkey)));
      const removed = [...service.keys].filter((p) => !onToken.has(p));
      // Retired first: from here no new request is admitted for them, and those admitted finish before the pool drops them.
      await service.retireKeys(removed);
      await pool.removeKeys(removed);
      const { added, refused } = [...onToken].some((p) => !service.keys.has(p)) ? await this.loadNew(onToken) : { added: [], refused: [] };
      const sync = { added: added.length, removed: removed.length, refused, keys: service.keys.size };
      logger.info(sync, "keys reloaded from the key store");
      return sync;
    });
  }

  /** Loads the keys of `onToken` not signable yet into the pool, then makes them signable. */
  private async loadNew(onToken: Set<string>): Promise<{ added: string[]; refused: string[] }> {
    const { service, pool, keyStore } = this.deps;
    const loaded = await this.keyStoreStep("reload", () => keyStore.load({ allowRefused: true }));
    this.deps.onKeyStoreError?.("load", loaded.refused.length);
    const secrets = loaded.exportForWorkers();
    const added: string[] = [];
    const forPool: Uint8Array[] = [];
    for (const [pubkey, secret] of secrets) {
      const p = normalizeHex(pubkey);
      // Only what the listing showed: a key imported since then waits for the next reload, never half-loaded.
      if (service.keys.has(p) || !onToken.has(p)) secret.fill(0);
      else {
        added.push(p);
        forPool.push(secret);
      }
    }
    try {
      if (forPool.length > 0) await pool.addKeys(forPool); // zeroes them
      service.addKeys(added);
    } finally {
      for (const s of forPool) s.fill(0);
    }
    return { added, refused: loaded.refused.map((r) => `${r.label}: ${r.reason}`) };
  }

  /** Runs one key-store call; a failure is counted under `operation` and passed on. */
  private async keyStoreStep<T>(operation: "import" | "delete" | "reload", call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      this.deps.onKeyStoreError?.(operation, 1);
      throw err;
    }
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async importAll(keystores: string[], passwords: string[]): Promise<ImportStatus[]> {
    const { service, pool, keyStore, logger } = this.deps;
    const statuses: ImportStatus[] = new Array(keystores.length);
    const concurrency = Math.max(1, Math.min(defaultImportWorkers(), keystores.length));
    let next = 0;
    const decrypted: (SecretKeyInput | undefined)[] = new Array(keystores.length);
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < keystores.length) {
          const i = next++;
          try {
            decrypted[i] = await decryptOne(keystores[i]!, passwords[i]!);
          } catch (err) {
            statuses[i] = { status: "error", message: (err as Error).message.replace(/^.*?: /, "") };
          }
        }
      }),
    );
    const importedPaths = new Map<string, string>();
    // Storing and loading run in request order so duplicates inside one request are reported as such.
    for (let i = 0; i < keystores.length; i++) {
      const key = decrypted[i];
      if (!key) continue;
      const pubkey = normalizeHex(key.pubkey);
      if (service.keys.has(pubkey)) {
        key.secretKey.fill(0);
        statuses[i] = { status: "duplicate" };
        continue;
      }
      const forPool = Uint8Array.from(key.secretKey);
      try {
        await this.keyStoreStep("import", () => keyStore.importKeys([key])); // zeroes key.secretKey
        await pool.addKeys([forPool]); // zeroes forPool
        service.addKeys([pubkey]);
        statuses[i] = { status: "imported" };
        importedPaths.set(pubkey, keystorePath(keystores[i]!));
        logger.info({ pubkey }, "keymanager: key imported");
      } catch (err) {
        statuses[i] = { status: "error", message: (err as Error).message };
      } finally {
        key.secretKey.fill(0);
        forPool.fill(0);
      }
    }
    try {
      this.deps.derivationPaths?.update(importedPaths);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'keymanager: could not record the derivation paths of imported keys; they list as ""');
    }
    // Before the reply: a validator client may send its next request for the new key to any worker.
    if (this.deps.siblings && statuses.some((s) => s.status === "imported")) await this.deps.siblings.reload();
    return statuses;
  }

  private async deleteAll(pubkeys: string[]): Promise<{ data: DeleteStatus[]; slashing_protection: string }> {
    const { service, pool, keyStore, logger } = this.deps;
    const statuses: DeleteStatus[] = [];
    const active = pubkeys.filter((p) => service.keys.has(p));
    // No new request is admitted for these keys from here; those already admitted finish (and are recorded) first.
    await service.retireKeys(active);
    await pool.removeKeys(active);
    const storeFailures = new Map<string, string>();
    const deleteFromStore = async () => {
      const onToken = new Set((await this.keyStoreStep("delete", () => keyStore.list())).map((k) => k.pubkey));
      const toDelete = [...new Set(active)].filter((p) => onToken.has(p));
      if (toDelete.length === 0) return;
      try {
        await this.keyStoreStep("delete", () => keyStore.delete(toDelete));
      } catch (err) {
        for (const p of toDelete) storeFailures.set(p, (err as Error).message);
      }
    };
    // Siblings retire the keys before the history is exported: one still signing afterwards would release a message
    // the exported interchange does not hold, and the next signer could sign a conflicting one. The token deletion
    // runs while they hold still, so that no sibling restarting meanwhile loads the keys again.
    if (this.deps.siblings) await this.deps.siblings.retire(pubkeys, deleteFromStore);
    else await deleteFromStore();
    const interchange = await this.exportHistory(pubkeys);
    const withHistory = new Set(interchange.data.filter((r) => r.signed_blocks.length + r.signed_attestations.length > 0).map((r) => normalizeHex(r.pubkey)));
    for (const p of pubkeys) {
      if (active.includes(p)) {
        const failure = storeFailures.get(p);
        statuses.push(failure ? { status: "error", message: `removed from the signer but not from the key store: ${failure}` } : { status: "deleted" });
      } else if (withHistory.has(p)) statuses.push({ status: "not_active" });
      else statuses.push({ status: "not_found" });
    }
    for (const p of active) if (!storeFailures.has(p)) logger.info({ pubkey: p }, "keymanager: key deleted");
    try {
      this.deps.derivationPaths?.update(new Map(active.filter((p) => !storeFailures.has(p)).map((p) => [p, ""])));
    } catch {
      /* informative only: a stale path is listed only if the key is imported again without one */
    }
    // The history of every key that was (or had been) active here: what the next signer must import.
    const exported = {
      ...interchange,
      data: interchange.data.filter((r) => active.includes(normalizeHex(r.pubkey)) || withHistory.has(normalizeHex(r.pubkey))),
    };
    return { data: statuses, slashing_protection: JSON.stringify(exported) };
  }

  private async exportHistory(pubkeys: string[]): Promise<Interchange> {
    const { slashing } = this.deps;
    const root = slashing.genesisValidatorsRoot;
    if (root === null) {
      // Nothing was ever signed: an empty interchange for the configured network (or an unknown one).
      return {
        metadata: { interchange_format_version: "5", genesis_validators_root: this.deps.genesisValidatorsRoot ?? `0x${"00".repeat(32)}` },
        data: [] as Interchange["data"],
      };
    }
    return slashing.exportInterchange({ pubkeys });
  }
}

/** Decrypts one EIP-2335 keystore in a worker thread (scrypt off the event loop), entirely in memory. */
async function decryptOne(json: string, password: string): Promise<SecretKeyInput> {
  const [key] = await decryptKeystoreContents([{ label: "keystore", json, password }], { workers: 1, progressStream: null });
  if (!key) throw new Error("keystore could not be decrypted");
  return key;
}
