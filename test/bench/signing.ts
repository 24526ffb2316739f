/**
 * Raw BLS signing rate of the signer's worker pool: no HTTP, no slashing database, no signing-root work.
 * The ceiling the full sign path can approach. `npm run bench` runs it from dist/.
 */
import { BlsPool } from "../../signer/signing/bls-pool.js";
import { interopSecretKeys } from "../signing/interop-keys.js";

export interface RawSigningBenchOptions {
  keys: number;
  seconds: number;
  /** Worker threads; default one per core, as in production. */
  threads?: number;
}

export async function runRawSigningBench(opts: RawSigningBenchOptions): Promise<{ signaturesPerSecond: number }> {
  const secretKeys = interopSecretKeys(opts.keys);
  const pool = await BlsPool.start(secretKeys, { preset: "mainnet", threads: opts.threads, maxQueueDepth: 1 << 20 });
  try {
    const pubkeys = pool.publicKeys;
    // Enough outstanding requests to keep every worker busy with full batches while the previous ones travel.
    const window = 512 * Math.max(1, pool.aliveThreads);
    const deadline = performance.now() + opts.seconds * 1000;
    let signed = 0;
    let next = 0;
    const root = new Uint8Array(32);

    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const i = next++;
        new DataView(root.buffer).setUint32(0, i); // vary the message; the pool copies it when batching
        await pool.sign(pubkeys[i % pubkeys.length]!, root);
        signed++;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: window }, lane));
    const elapsed = (performance.now() - started) / 1000;
    return { signaturesPerSecond: signed / elapsed };
  } finally {
    await pool.close();
  }
}
