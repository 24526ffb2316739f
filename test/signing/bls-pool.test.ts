/** The BLS worker pool: correctness against @chainsafe/bls, batching, queue limits, key changes, close. */
import { fileURLToPath } from "node:url";
import bls from "@chainsafe/bls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex } from "../../common/index.js";
import { BlsPool, QueueFullError, UnknownPubkeyError } from "../../signer/signing/index.js";
import { interopSecretKey, interopSecretKeys } from "./interop-keys.js";

const root = (byte: number) => new Uint8Array(32).fill(byte);
const pubkeyOf = (index: number) => bytesToHex(bls.SecretKey.fromBytes(interopSecretKey(index)).toPublicKey().toBytes());
const expectedSignature = (index: number, message: Uint8Array) => bytesToHex(bls.SecretKey.fromBytes(interopSecretKey(index)).sign(message).toBytes());

describe("BlsPool", () => {
  let pool: BlsPool;

  beforeAll(async () => {
    pool = await BlsPool.start(interopSecretKeys(4), { preset: "minimal", threads: 2, maxQueueDepth: 1000 });
  }, 30_000);
  afterAll(async () => {
    await pool?.close();
  });

  it("runs on blst-native", () => {
    expect(bls.implementation).toBe("blst-native");
  });

  it("signs like @chainsafe/bls, for any accepted spelling of the pubkey", async () => {
    const signature = await pool.sign(pubkeyOf(2).toUpperCase().replace("0X", "0x"), root(7));
    expect(bytesToHex(signature)).toBe(expectedSignature(2, root(7)));
    expect(signature).toHaveLength(96);
  });

  it("batches requests of the same tick into one message per worker", async () => {
    const before = { ...pool.stats };
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => pool.sign(pubkeyOf(i % 4), root(i))));
    for (const [i, sig] of results.entries()) expect(bytesToHex(sig)).toBe(expectedSignature(i % 4, root(i)));
    expect(pool.stats.signatures - before.signatures).toBe(100);
    expect(pool.stats.batches - before.batches).toBe(2);
    expect(pool.queueDepth).toBe(0);
  });

  it("rejects unknown keys and bad roots", async () => {
    await expect(pool.sign(`0x${"ab".repeat(48)}`, root(1))).rejects.toBeInstanceOf(UnknownPubkeyError);
    await expect(pool.sign(pubkeyOf(0), new Uint8Array(31))).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });

  it("adds and removes keys at run time, zeroing the caller's key bytes", async () => {
    const keys = [interopSecretKey(10), interopSecretKey(11), interopSecretKey(0)]; // key 0 is already loaded
    const added = await pool.addKeys(keys);
    expect(added).toEqual([pubkeyOf(10), pubkeyOf(11), pubkeyOf(0)]);
    for (const key of keys) expect(key.every((b) => b === 0)).toBe(true);
    expect(pool.publicKeys).toHaveLength(6);
    expect(bytesToHex(await pool.sign(pubkeyOf(11), root(3)))).toBe(expectedSignature(11, root(3)));

    const inFlight = pool.sign(pubkeyOf(10), root(4)); // accepted before the removal: still signed
    await pool.removeKeys([pubkeyOf(10), `0x${"cd".repeat(48)}`]);
    expect(bytesToHex(await inFlight)).toBe(expectedSignature(10, root(4)));
    await expect(pool.sign(pubkeyOf(10), root(4))).rejects.toBeInstanceOf(UnknownPubkeyError);
    expect(pool.hasKey(pubkeyOf(11))).toBe(true);
    expect(pool.publicKeys).toHaveLength(5);
  });

  it("refuses an invalid secret key and keeps working", async () => {
    await expect(pool.addKeys([new Uint8Array(32)])).rejects.toMatchObject({ code: "INVALID_SECRET_KEY" });
    await expect(pool.addKeys([new Uint8Array(32).fill(0xff)])).rejects.toMatchObject({ code: "INVALID_SECRET_KEY" });
    expect(bytesToHex(await pool.sign(pubkeyOf(1), root(9)))).toBe(expectedSignature(1, root(9)));
  });
});

describe("BlsPool limits and lifecycle", () => {
  it("answers QueueFullError beyond maxQueueDepth and recovers once drained", async () => {
    const pool = await BlsPool.start(interopSecretKeys(1), { preset: "minimal", threads: 1, maxQueueDepth: 5 });
    try {
      const accepted = Array.from({ length: 5 }, (_, i) => pool.sign(pubkeyOf(0), root(i)));
      expect(pool.queueDepth).toBe(5);
      await expect(pool.sign(pubkeyOf(0), root(9))).rejects.toBeInstanceOf(QueueFullError);
      await Promise.all(accepted);
      expect(pool.queueDepth).toBe(0);
      await expect(pool.sign(pubkeyOf(0), root(9))).resolves.toHaveLength(96);
    } finally {
      await pool.close();
    }
  });

  it("close() answers accepted requests first, then refuses new ones", async () => {
    const pool = await BlsPool.start(interopSecretKeys(2), { preset: "minimal", threads: 2 });
    const accepted = Array.from({ length: 50 }, (_, i) => pool.sign(pubkeyOf(i % 2), root(i)));
    await pool.close();
    const signatures = await Promise.all(accepted);
    expect(bytesToHex(signatures[49]!)).toBe(expectedSignature(1, root(49)));
    await expect(pool.sign(pubkeyOf(0), root(1))).rejects.toMatchObject({ code: "POOL_CLOSED" });
  });

  it("keeps signing with the other threads when one dies", async () => {
    const failures: Error[] = [];
    const pool = await BlsPool.start(interopSecretKeys(1), { preset: "minimal", threads: 2, onWorkerFailure: (e) => failures.push(e) });
    try {
      // Reach into the pool to kill one worker, as a crash would.
      const slots = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots;
      await slots[0]!.worker.terminate();
      await new Promise((r) => setTimeout(r, 20));
      expect(pool.aliveThreads).toBe(1);
      expect(failures).toHaveLength(1);
      const signatures = await Promise.all(Array.from({ length: 10 }, (_, i) => pool.sign(pubkeyOf(0), root(i))));
      expect(bytesToHex(signatures[3]!)).toBe(expectedSignature(0, root(3)));
    } finally {
      await pool.close();
    }
  });

  it("zeroes the start-up keys and fails clearly without the compiled worker", async () => {
    const keys = interopSecretKeys(1);
    const missing = new URL("file:///nonexistent/bls-worker.js");
    await expect(BlsPool.start(keys, { preset: "minimal", threads: 1, workerUrl: missing })).rejects.toThrow(/not found: run `npx tsc/);
    expect(keys[0]!.every((b) => b === 0)).toBe(true);
    expect(fileURLToPath(missing)).toContain("nonexistent");
  });
});
