import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KeystoreReply, WorkerRequest } from "./decrypt-worker.js";
import { InvalidKeystoreError } from "./errors.js";
import { Progress } from "./progress.js";
import type { SecretKeyInput } from "./types.js";
import { WorkerPool, workerUrl } from "./worker-pool.js";

export interface KeystoreSource {
  /** The EIP-2335 keystore file. */
  file: string;
  /** Its password file: the shared one, or `<name>.txt` beside it (or in the passwords directory). */
  passwordFile: string;
}

export interface DiscoverOptions {
  /** One password file for every keystore. */
  passwordFile?: string;
  /** Where per-keystore `<name>.txt` password files are; default: the keystore directory. */
  passwordsDir?: string;
}

/**
 * The keystores in `dir`: every `*.json` file except `deposit_data*.json` (what staking-deposit-cli writes
 * beside them), sorted by name.
 */
export function discoverKeystores(dir: string, options: DiscoverOptions = {}): KeystoreSource[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw new InvalidKeystoreError(`cannot read keystore directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const files = names.filter((n) => n.endsWith(".json") && !n.startsWith("deposit_data") && !n.startsWith(".")).sort();
  if (files.length === 0) throw new InvalidKeystoreError(`no keystore (*.json) files in ${dir}`);
  return files.map((name) => ({
    file: path.join(dir, name),
    passwordFile: options.passwordFile ?? path.join(options.passwordsDir ?? dir, name.replace(/\.json$/, ".txt")),
  }));
}

/** Threads for scrypt keystores: one per core, but no more than memory allows (~256 MiB each at n=2^18). */
export function defaultImportWorkers(): number {
  const byMemory = Math.floor(os.freemem() / (320 * 1024 * 1024));
  return Math.max(1, Math.min(os.availableParallelism(), byMemory));
}

export interface DecryptOptions {
  workers?: number;
  /** Where progress goes; null for none. Default stderr. */
  progressStream?: NodeJS.WriteStream | null;
}

/**
 * Decrypts keystores in worker threads. Fails fast (InvalidKeystoreError naming the file) on the first
 * keystore that cannot be read, has the wrong password or whose secret does not match its pubkey.
 * The returned secrets belong to the caller (KeyStore.importKeys zeroes them).
 */
export async function decryptKeystores(sources: KeystoreSource[], options: DecryptOptions = {}): Promise<SecretKeyInput[]> {
  const passwords = new Map<string, string>(); // one read per distinct password file
  const readPassword = (file: string): string => {
    let pw = passwords.get(file);
    if (pw === undefined) {
      try {
        pw = fs.readFileSync(file, "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        throw new InvalidKeystoreError(`cannot read password file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
      }
      passwords.set(file, pw);
    }
    return pw;
  };
  // Read everything before starting threads, so a missing file fails in milliseconds, not after an hour of scrypt.
  const contents = sources.map((s): KeystoreContent => {
    let json: string;
    try {
      json = fs.readFileSync(s.file, "utf8");
    } catch (err) {
      throw new InvalidKeystoreError(`cannot read keystore ${s.file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    return { label: s.file, json, password: readPassword(s.passwordFile) };
  });
  return decryptKeystoreContents(contents, options);
}

/** A keystore already in memory (e.g. posted to the keymanager API); `label` names it in errors. */
export interface KeystoreContent {
  label: string;
  json: string;
  password: string;
}

/**
 * Decrypts in-memory keystores in worker threads, with the same checks as decryptKeystores: nothing is
 * written anywhere, so a password handed over an API never touches a file.
 */
export async function decryptKeystoreContents(jobs: KeystoreContent[], options: DecryptOptions = {}): Promise<SecretKeyInput[]> {
  const workers = Math.max(1, Math.min(options.workers ?? defaultImportWorkers(), jobs.length));
  const pool = new WorkerPool(workerUrl("decrypt-worker"), workers);
  const progress = new Progress("decrypting keystores", jobs.length, options.progressStream === undefined ? process.stderr : options.progressStream);
  const out: SecretKeyInput[] = [];
  let failure: InvalidKeystoreError | undefined;
  let done = 0;
  try {
    await Promise.all(
      jobs.map(async (job) => {
        let reply: KeystoreReply;
        try {
          reply = await pool.run<KeystoreReply>({ kind: "keystore", json: job.json, password: job.password } satisfies WorkerRequest);
        } catch (err) {
          failure ??= new InvalidKeystoreError(`${job.label}: ${err instanceof Error ? err.message : "failed"}`);
          void pool.close(); // stop the rest: fail fast
          return;
        }
        if (reply.declaredPubkey !== "" && reply.declaredPubkey !== reply.pubkey) {
          reply.secret.fill(0);
          failure ??= new InvalidKeystoreError(`${job.label}: secret key does not match the keystore's pubkey ${reply.declaredPubkey}`);
          void pool.close();
          return;
        }
        out.push({ secretKey: reply.secret, pubkey: reply.pubkey });
        progress.update(++done);
      }),
    );
  } finally {
    await pool.close();
  }
  if (failure) {
    for (const k of out) k.secretKey.fill(0);
    progress.abort();
    throw failure;
  }
  progress.finish();
  return out;
}
