// The PKCS#11 envelope key store against a real SoftHSM2 token: import, sign, reload, tamper, delete.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import bls from "@chainsafe/bls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { APPLICATION, requireWrappingKey, sealSecret } from "../../signer/keystore/envelope.js";
import { HsmRecordTamperedError, InvalidKeystoreError, KeyConflictError, KeyNotFoundError } from "../../signer/keystore/errors.js";
import { initToken, tokenStatus } from "../../signer/keystore/hsm-admin.js";
import { decryptKeystores, discoverKeystores } from "../../signer/keystore/keystore-import.js";
import { Pkcs11KeyStore } from "../../signer/keystore/pkcs11-keystore.js";
import { P, TokenSession } from "../../signer/keystore/pkcs11-session.js";
import { filesUnder, tokenDir, type TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { randomKey, readyToken, secretNeedles, writeKeystores, type TestKey } from "./fixtures.js";

const LABEL = "vigil-test-keystore";
const work = tempDir("vigil-ks-");
let token: TestToken;
const allSecrets: Uint8Array[] = [];

function remember(keys: TestKey[]): TestKey[] {
  for (const k of keys) allSecrets.push(Uint8Array.from(k.secret));
  return keys;
}

async function importDir(store: Pkcs11KeyStore, dir: string, opts: { passwordFile?: string } = {}) {
  const secrets = await decryptKeystores(discoverKeystores(dir, opts), { workers: 2, progressStream: null });
  return store.importKeys(secrets);
}

/** Runs raw PKCS#11 against the test token (to forge or tamper records as an attacker with the PIN could). */
function withRawSession<T>(fn: (ts: TokenSession) => T): T {
  const ts = TokenSession.open({ module: token.config.module, tokenLabel: LABEL, readWrite: true }, () => token.pin);
  try {
    return fn(ts);
  } finally {
    ts.close();
  }
}

function findRecord(ts: TokenSession, label: string): Buffer {
  ts.pkcs11.C_FindObjectsInit(ts.session, [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_APPLICATION, value: APPLICATION },
    { type: P.CKA_LABEL, value: label },
  ]);
  const [h] = ts.pkcs11.C_FindObjects(ts.session, 1);
  ts.pkcs11.C_FindObjectsFinal(ts.session);
  if (!h) throw new Error(`no record ${label}`);
  return h;
}

function createRecord(ts: TokenSession, label: string, value: Buffer): void {
  ts.pkcs11.C_CreateObject(ts.session, [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_APPLICATION, value: APPLICATION },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_VALUE, value },
  ]);
}

beforeAll(() => {
  token = readyToken(LABEL);
});
afterAll(() => token.destroy());

describe("PKCS#11 key store on SoftHSM2", () => {
  const pbkdf2Keys = remember(Array.from({ length: 3 }, randomKey));
  const scryptKeys = remember(Array.from({ length: 3 }, randomKey));

  it("hsm init is idempotent and never replaces the wrapping key", () => {
    expect(initToken(token.config).created).toBe(false);
    const s = tokenStatus(token.config);
    expect(s.wrappingKey.present).toBe(true);
    expect(s.requiredMechanisms).toEqual({ CKM_AES_KEY_GEN: true, CKM_AES_GCM: true });
    expect(s.keyCount).toBe(0);
  });

  it("imports EIP-2335 keystores (pbkdf2 with one password file, scrypt with per-keystore .txt)", async () => {
    const dirA = path.join(work, "ks-pbkdf2");
    const dirB = path.join(work, "ks-scrypt");
    await writeKeystores(dirA, pbkdf2Keys, { password: "correct horse", kdf: "pbkdf2" });
    await writeKeystores(dirB, scryptKeys, { perFilePasswords: true, kdf: "scrypt" });
    fs.writeFileSync(path.join(dirA, "deposit_data-123.json"), "[]"); // ignored
    const pwFile = path.join(work, "password.txt");
    fs.writeFileSync(pwFile, "correct horse\n");

    const store = Pkcs11KeyStore.open(token.config);
    try {
      const a = await importDir(store, dirA, { passwordFile: pwFile });
      expect(a.imported.sort()).toEqual(pbkdf2Keys.map((k) => k.pubkey).sort());
      const b = await importDir(store, dirB);
      expect(b.imported.sort()).toEqual(scryptKeys.map((k) => k.pubkey).sort());
      const listed = (await store.list()).map((k) => k.pubkey);
      expect(listed).toEqual([...pbkdf2Keys, ...scryptKeys].map((k) => k.pubkey).sort());
    } finally {
      await store.close();
    }
  });

  it("a wrong password fails the import naming the file, before anything is stored", async () => {
    const dir = path.join(work, "ks-wrong");
    await writeKeystores(dir, [randomKey()], { password: "right" });
    const bad = path.join(work, "bad-pw.txt");
    fs.writeFileSync(bad, "wrong");
    const err = await decryptKeystores(discoverKeystores(dir, { passwordFile: bad }), { workers: 1, progressStream: null }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidKeystoreError);
    expect((err as Error).message).toMatch(/keystore-0\.json: wrong password/);
  });

  it("re-import is a no-op; a different key under an existing label is a conflict (exit 6) and writes nothing", async () => {
    const store = Pkcs11KeyStore.open(token.config);
    try {
      const again = await importDir(store, path.join(work, "ks-pbkdf2"), { passwordFile: path.join(work, "password.txt") });
      expect(again.imported).toEqual([]);
      expect(again.unchanged.sort()).toEqual(pbkdf2Keys.map((k) => k.pubkey).sort());

      // Forge a conflicting record: an attacker-chosen key stored under a label that will be imported next.
      const victim = remember([randomKey()])[0]!;
      const other = remember([randomKey()])[0]!;
      withRawSession((ts) => {
        const rec = sealSecret(ts.pkcs11, ts.session, requireWrappingKey(ts), Buffer.from(victim.pubkey.slice(2), "hex"), other.secret);
        createRecord(ts, victim.pubkey, rec);
      });
      const fresh = randomKey();
      remember([fresh]);
      const store2 = Pkcs11KeyStore.open(token.config);
      try {
        const before = (await store2.list()).length;
        const err = await store2
          .importKeys([
            { secretKey: Uint8Array.from(fresh.secret), pubkey: fresh.pubkey },
            { secretKey: Uint8Array.from(victim.secret), pubkey: victim.pubkey },
          ])
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KeyConflictError);
        expect((err as KeyConflictError).exitCode).toBe(EXIT_CODES.conflict);
        expect((err as Error).message).toContain(victim.pubkey);
        expect((await store2.list()).length).toBe(before); // `fresh` was not stored either
        await store2.delete([victim.pubkey]);
      } finally {
        await store2.close();
      }
    } finally {
      await store.close();
    }
  });

  it("loads every key; signatures verify; exportForWorkers returns the secrets", async () => {
    const store = Pkcs11KeyStore.open(token.config);
    try {
      const loaded = await store.load();
      expect(loaded.refused).toEqual([]);
      expect([...loaded.keys()].sort()).toEqual([...pbkdf2Keys, ...scryptKeys].map((k) => k.pubkey).sort());
      const msg = crypto.randomBytes(32);
      for (const k of [...pbkdf2Keys, ...scryptKeys]) {
        const handle = loaded.get(k.pubkey)!;
        const sig = handle.sign(msg);
        expect(bls.verify(Buffer.from(k.pubkey.slice(2), "hex"), msg, sig)).toBe(true);
        expect(Buffer.from(handle.publicKey).toString("hex")).toBe(k.pubkey.slice(2));
      }
      const exported = loaded.exportForWorkers();
      for (const k of pbkdf2Keys) expect(Buffer.from(exported.get(k.pubkey)!).equals(Buffer.from(k.secret))).toBe(true);
      for (const b of exported.values()) b.fill(0);
    } finally {
      await store.close();
    }
  });

  it("generates keys from mixed randomness, stores and loads them after a restart", async () => {
    let generated: string[];
    const store = Pkcs11KeyStore.open(token.config);
    try {
      generated = await store.generate(3);
      expect(new Set(generated).size).toBe(3);
      for (const p of generated) expect(p).toMatch(/^0x[0-9a-f]{96}$/);
    } finally {
      await store.close(); // finalizes the module: the next open is a real restart
    }
    const restarted = Pkcs11KeyStore.open(token.config);
    try {
      const loaded = await restarted.load();
      for (const p of generated) expect(loaded.has(p)).toBe(true);
      expect(loaded.size).toBe(9);
      for (const b of loaded.exportForWorkers().values()) {
        allSecrets.push(Uint8Array.from(b)); // generated secrets exist only on the token: collect them for the disk scan
        b.fill(0);
      }
    } finally {
      await restarted.close();
    }
  });

  it("loads many keys through the worker-thread check path", async () => {
    const store = Pkcs11KeyStore.open(token.config, { loadWorkers: 2 });
    try {
      const batch = remember(Array.from({ length: 70 }, randomKey));
      const copy = () => batch.map((k) => ({ secretKey: Uint8Array.from(k.secret), pubkey: k.pubkey }));
      expect((await store.importKeys(copy())).imported.length).toBe(70);
      expect((await store.importKeys(copy())).unchanged.length).toBe(70);
      const n = 600 - (await store.list()).length; // above the worker threshold (512)
      await store.generate(n);
      const loaded = await store.load();
      expect(loaded.size).toBe(600);
      expect(loaded.refused).toEqual([]);
      // parallel sessions (for network HSMs) give the same result
      const store2 = Pkcs11KeyStore.open(token.config, { loadSessions: 3, loadWorkers: 1 });
      try {
        expect((await store2.load()).size).toBe(600);
      } finally {
        await store2.close();
      }
      const generated = (await store.list()).map((k) => k.pubkey).filter((p) => ![...pbkdf2Keys, ...scryptKeys].some((k) => k.pubkey === p));
      // keep the token small for the rest of the file, except the three from the previous test
      await store.delete(generated.slice(3));
    } finally {
      await store.close();
    }
  });

  describe("tampered records are refused and reported (exit 15)", () => {
    it("a flipped ciphertext byte fails authentication", async () => {
      const target = pbkdf2Keys[0]!;
      withRawSession((ts) => {
        const h = findRecord(ts, target.pubkey);
        const [attr] = ts.pkcs11.C_GetAttributeValue(ts.session, h, [{ type: P.CKA_VALUE }]);
        const value = Buffer.from(attr!.value);
        value[20]! ^= 0x01;
        ts.pkcs11.C_DestroyObject(ts.session, h);
        createRecord(ts, target.pubkey, value);
      });
      const store = Pkcs11KeyStore.open(token.config);
      try {
        const err = await store.load().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HsmRecordTamperedError);
        expect((err as HsmRecordTamperedError).exitCode).toBe(EXIT_CODES.hsmRecordTampered);
        expect((err as Error).message).toContain(target.pubkey);
        expect((err as Error).message).toMatch(/authentication failed/);
        const partial = await store.load({ allowRefused: true });
        expect(partial.has(target.pubkey)).toBe(false);
        expect(partial.size).toBe(8);
        expect(partial.refused.map((r) => r.label)).toEqual([target.pubkey]);
      } finally {
        await store.close();
      }
    });

    it("a record moved to another key's label fails authentication (pubkey is AAD)", async () => {
      const [a, b] = [pbkdf2Keys[1]!, pbkdf2Keys[2]!];
      withRawSession((ts) => {
        const ha = findRecord(ts, a.pubkey);
        const hb = findRecord(ts, b.pubkey);
        const [va] = ts.pkcs11.C_GetAttributeValue(ts.session, ha, [{ type: P.CKA_VALUE }]);
        ts.pkcs11.C_DestroyObject(ts.session, hb);
        createRecord(ts, b.pubkey, Buffer.from(va!.value)); // b's label, a's ciphertext
      });
      const store = Pkcs11KeyStore.open(token.config);
      try {
        const loaded = await store.load({ allowRefused: true });
        expect(loaded.refused.map((r) => r.label).sort()).toEqual([pbkdf2Keys[0]!.pubkey, b.pubkey].sort());
        expect(loaded.has(a.pubkey)).toBe(true);
      } finally {
        await store.close();
      }
    });

    it("a well-formed record holding a different key than its label is refused", async () => {
      const target = scryptKeys[0]!;
      const intruder = remember([randomKey()])[0]!;
      withRawSession((ts) => {
        ts.pkcs11.C_DestroyObject(ts.session, findRecord(ts, target.pubkey));
        const rec = sealSecret(ts.pkcs11, ts.session, requireWrappingKey(ts), Buffer.from(target.pubkey.slice(2), "hex"), intruder.secret);
        createRecord(ts, target.pubkey, rec);
      });
      const store = Pkcs11KeyStore.open(token.config);
      try {
        const loaded = await store.load({ allowRefused: true });
        const reason = loaded.refused.find((r) => r.label === target.pubkey)?.reason;
        expect(reason).toBe("decrypted key does not match its public key label");
        expect(loaded.has(target.pubkey)).toBe(false);
      } finally {
        await store.close();
      }
    });
  });

  it("deletes keys (and refuses unknown ones without deleting anything)", async () => {
    const store = Pkcs11KeyStore.open(token.config);
    try {
      const victims = [pbkdf2Keys[0]!.pubkey, pbkdf2Keys[2]!.pubkey, scryptKeys[0]!.pubkey]; // the tampered ones
      const unknown = randomKey().pubkey;
      await expect(store.delete([...victims, unknown])).rejects.toBeInstanceOf(KeyNotFoundError);
      expect((await store.list()).length).toBe(9);
      const { deleted } = await store.delete(victims.map((v) => v.toUpperCase().replace("0X", "0x")));
      expect(deleted.sort()).toEqual(victims.sort());
      const loaded = await store.load();
      expect(loaded.size).toBe(6);
      expect(loaded.refused).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("no file under the token directory or the data directory holds a secret key (raw, hex or base64)", () => {
    const files = [...filesUnder(tokenDir()), ...filesUnder(token.dataDir)];
    expect(files.length).toBeGreaterThan(10);
    expect(allSecrets.length).toBeGreaterThanOrEqual(10);
    for (const file of files) {
      const content = fs.readFileSync(file);
      for (const secret of allSecrets) {
        for (const needle of secretNeedles(secret)) expect(content.includes(needle), `${file} contains a secret key`).toBe(false);
      }
    }
  });
});
