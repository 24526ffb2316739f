// Key-store benchmark: load time for many keys on a SoftHSM2 token, and EIP-2335 import rate.
// Standalone: `node dist/test/bench/keystore.js` (VIGIL_BENCH_KEYS=n to change the 10,000 keys).
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import bls from "@chainsafe/bls";
import { create, defaultPbkdfModule, defaultScryptModule } from "@chainsafe/bls-keystore";
import { initToken } from "../../signer/keystore/hsm-admin.js";
import { decryptKeystores, discoverKeystores } from "../../signer/keystore/keystore-import.js";
import { Pkcs11KeyStore } from "../../signer/keystore/pkcs11-keystore.js";
import { createToken } from "../helpers/softhsm.js";

/** SoftHSM2 reads SOFTHSM2_CONF at C_Initialize; give the bench its own token directory unless one is set. */
function ensureSofthsmConf(): string | undefined {
  if (process.env.SOFTHSM2_CONF && fs.existsSync(process.env.SOFTHSM2_CONF)) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-softhsm-"));
  fs.mkdirSync(path.join(dir, "tokens"), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, "softhsm2.conf"), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = path.join(dir, "softhsm2.conf");
  return dir;
}

async function writeRealKeystores(dir: string, count: number, kdf: "pbkdf2" | "scrypt", password: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const sk = bls.SecretKey.fromKeygen(crypto.randomBytes(32));
    // Default EIP-2335 parameters (c = n = 2^18): what staking-deposit-cli writes.
    const ks = await create(
      password,
      sk.toBytes(),
      sk.toPublicKey().toBytes(),
      `m/12381/3600/${i}/0/0`,
      "",
      kdf === "scrypt" ? defaultScryptModule() : defaultPbkdfModule(),
    );
    fs.writeFileSync(path.join(dir, `keystore-${kdf}-${i}.json`), JSON.stringify(ks));
  }
}

export async function runKeystoreBench(): Promise<Record<string, number | string>> {
  const confDir = ensureSofthsmConf();
  const keyCount = Number(process.env.VIGIL_BENCH_KEYS ?? 10_000);
  const cores = os.availableParallelism();
  const out: Record<string, number | string> = { "keystore.cores": cores, "keystore.hsm": "SoftHSM2 (file backend)" };
  const token = createToken(`vigil-bench-${process.pid}`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-ks-"));
  try {
    initToken(token.config);

    // EIP-2335 decrypt + store rate with the real KDF parameters, a small sample on all cores, into an
    // empty token (the operator's first import; the 10,000 keys below come after).
    const sample = 2 * cores;
    let store = Pkcs11KeyStore.open(token.config);
    try {
      for (const kdf of ["pbkdf2", "scrypt"] as const) {
        const dir = path.join(work, kdf);
        const pw = path.join(work, `${kdf}.pw`);
        fs.writeFileSync(pw, "bench password");
        await writeRealKeystores(dir, sample, kdf, "bench password");
        const t = performance.now();
        const secrets = await decryptKeystores(discoverKeystores(dir, { passwordFile: pw }), { workers: cores, progressStream: null });
        const decrypted = performance.now();
        await store.importKeys(secrets);
        const stored = performance.now();
        out[`keystore.import_${kdf}_keystores_per_s`] = round(sample / ((stored - t) / 1000));
        out[`keystore.import_${kdf}_decrypt_only_per_s`] = round(sample / ((decrypted - t) / 1000));
        out[`keystore.import_${kdf}_sample`] = sample;
      }
    } finally {
      await store.close();
    }

    // Store N more keys (generate = token RNG + OS RNG, wrap, C_CreateObject).
    store = Pkcs11KeyStore.open(token.config);
    let t = performance.now();
    await store.generate(keyCount);
    out["keystore.generate_keys_per_s"] = round(keyCount / ((performance.now() - t) / 1000));
    await store.close();

    // Start-up path: open module, find token, log in, enumerate, decrypt and check every key.
    for (let run = 1; run <= 2; run++) {
      t = performance.now();
      store = Pkcs11KeyStore.open(token.config);
      const opened = performance.now();
      const loaded = await store.load();
      const done = performance.now();
      if (loaded.size !== keyCount + 2 * sample) throw new Error(`loaded ${loaded.size} keys, expected ${keyCount + 2 * sample}`);
      out[`keystore.load_${keyCount}_keys_ms_run${run}`] = Math.round(done - t);
      out[`keystore.load_${keyCount}_keys_open_login_ms_run${run}`] = Math.round(opened - t);
      await store.close();
    }

    out["keystore.import_10000_scrypt_estimate_min"] = round(10_000 / (out["keystore.import_scrypt_keystores_per_s"] as number) / 60);
  } finally {
    token.destroy();
    fs.rmSync(work, { recursive: true, force: true });
    if (confDir) fs.rmSync(confDir, { recursive: true, force: true });
  }
  return out;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await runKeystoreBench(), null, 2));
}
