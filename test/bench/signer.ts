/**
 * The HTTP signer's speed against its own ceiling:
 * - ceiling: the raw blst rate of the same BLS worker pool (no HTTP, no database; runRawSigningBench);
 * - end-to-end: ATTESTATION requests over HTTP keep-alive connections from a load generator in a child
 *   process, 10,000 keys, every request a durable slashing-protection record (synchronous=FULL);
 * - ratio = end-to-end / ceiling, and p50/p99 latency at a fixed offered load of half the ceiling;
 * - overload: twice the end-to-end maximum offered open loop by clients that give up after twice the signer's
 *   limits.maxWaitMs; goodput (signatures answered in time, per second) as a ratio to the maximum, and p99 of the
 *   503 replies (targets: >= 0.90, < 50 ms).
 * The server gets its 10,000 interop keys from InMemoryBenchKeyStore (below): generating and importing 10,000
 * keys into SoftHSM2 would measure the token, not the signer. It exists only here, never in the CLI.
 */
import { fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import bls from "@chainsafe/bls";
import { bytesToHex } from "../../common/index.js";
import type { KeyInfo, KeyStore, LoadedKeys, SignerHandle } from "../../signer/keystore/index.js";
import { startSigner } from "../../signer/index.js";
import { benchSignerConfig } from "./bench-config.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import type { LoadJob, LoadResult } from "./signer-load.js";
import { runRawSigningBench } from "./signing.js";
import { percentile, round } from "./stats.js";

const KEYS = 10_000;
const GVR = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"; // mainnet's: the network pins it

export interface SignerBenchResult {
  ceilingPerSecond: number;
  endToEndPerSecond: number;
  ratio: number;
  p50Ms: number;
  p99Ms: number;
  offeredPerSecond: number;
  overload: OverloadResult;
}

export interface OverloadResult {
  offeredPerSecond: number;
  /** The signer's limits.maxWaitMs and the clients' timeout. */
  maxWaitMs: number;
  clientTimeoutMs: number;
  connections: number;
  goodputPerSecond: number;
  goodputRatio: number;
  shedPerSecond: number;
  shedP99Ms: number;
  signedP99Ms: number;
  timedOut: number;
  /** Requests due when no connection was free (counted as not served). */
  lagged: number;
  statuses: Record<string, number>;
  targetsMet: boolean;
}

const MAX_WAIT_MS = 1000; // the signer's default limits.maxWaitMs

/** The soft open-file limit of this process (Linux), to size the overload run's connections. */
function openFileLimit(): number {
  try {
    const m = /Max open files\s+(\d+)/.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : 1024;
  } catch {
    return 1024;
  }
}

/** BENCH ONLY: a KeyStore over plain in-memory secret keys. Never reachable from the CLI or a config file. */
export class InMemoryBenchKeyStore implements KeyStore {
  private readonly secrets: Uint8Array[];
  private readonly pubkeys: string[];
  constructor(secrets: Uint8Array[]) {
    this.secrets = secrets;
    this.pubkeys = secrets.map((s) => bytesToHex(bls.SecretKey.fromBytes(s).toPublicKey().toBytes()));
  }
  async load(): Promise<LoadedKeys> {
    const map = new Map<string, SignerHandle>();
    const secrets = this.secrets;
    this.pubkeys.forEach((pubkey, i) => {
      // Handles are never used by the signer (it signs in its worker pool); built lazily to keep start-up fast.
      map.set(pubkey, { pubkey, publicKey: Buffer.from(pubkey.slice(2), "hex"), sign: (m) => bls.SecretKey.fromBytes(secrets[i]!).sign(m).toBytes() });
    });
    return Object.assign(map, {
      refused: [],
      exportForWorkers: () => new Map(this.pubkeys.map((p, i) => [p, Uint8Array.from(secrets[i]!)])),
    });
  }
  async list(): Promise<KeyInfo[]> {
    return this.pubkeys.map((pubkey) => ({ pubkey }));
  }
  async importKeys(): Promise<never> {
    throw new Error("bench key store is read-only");
  }
  async generate(): Promise<never> {
    throw new Error("bench key store is read-only");
  }
  async delete(): Promise<never> {
    throw new Error("bench key store is read-only");
  }
  async close(): Promise<void> {
    for (const s of this.secrets) s.fill(0);
  }
}

function loadScript(): string {
  const here = fileURLToPath(import.meta.url);
  // The generator runs compiled (dist/), whether this module runs from dist or from source.
  return here.endsWith(".ts") ? path.resolve(path.dirname(here), "../../dist/test/bench/signer-load.js") : path.join(path.dirname(here), "signer-load.js");
}

export function runChild(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(loadScript(), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", (m) => resolve(m as LoadResult));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`load generator exited with code ${code}`));
    });
    child.send(job);
  });
}

export async function runSignerBench(opts: { seconds: number; threads?: number }): Promise<SignerBenchResult> {
  // The ceiling is measured before and after the end-to-end run and the higher one kept: on a shared machine a
  // neighbour's burst during one measurement must not flatter the ratio.
  const rawBefore = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds, threads: opts.threads })).signaturesPerSecond;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-signer-"));
  const secrets = Array.from({ length: KEYS }, (_, i) => interopSecretKey(i));
  const keyStore = new InMemoryBenchKeyStore(secrets);
  const config = benchSignerConfig({ dataDir: dir, genesisValidatorsRoot: GVR, limits: { maxWaitMs: MAX_WAIT_MS, blsThreads: opts.threads } });
  const signer = await startSigner(config, { keyStore, logDestination: fs.createWriteStream(path.join(dir, "signer.log")) });
  try {
    const url = new URL(signer.url);
    const base = { host: url.hostname, port: Number(url.port), pubkeys: signer.publicKeys.slice(), genesisValidatorsRoot: GVR };
    const warmupSeconds = Math.min(2, Math.max(0.5, opts.seconds / 5));
    // Warm-up: one attestation per key (a validator's first record is a heavier insert; a running signer has
    // them all) and the JIT. Not measured.
    await runChild({ ...base, mode: "closed", connections: 64, seconds: 120, warmupSeconds: 0, stopAfter: KEYS, firstEpoch: 10 });
    // Throughput: enough connections to keep both the group commit and the BLS batches full.
    const max = await runChild({ ...base, mode: "closed", connections: 128, seconds: opts.seconds, warmupSeconds, firstEpoch: 100 });
    const endToEnd = max.completed / max.elapsedSeconds;
    const rawAfter = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds, threads: opts.threads })).signaturesPerSecond;
    const ceiling = Math.max(rawBefore, rawAfter);
    // Each run starts above the previous run's epochs and stays below mainnet's wall-clock epoch (about 490,000
    // in late 2026): the signer refuses attestations more than limits.maxEpochsAhead ahead of the clock.
    // Latency at half the ceiling, open loop (requests start on schedule whatever the replies).
    const offered = Math.round(ceiling / 2);
    const half = await runChild({ ...base, mode: "open", rate: offered, connections: 512, seconds: opts.seconds, warmupSeconds, firstEpoch: 200_000 });
    if (max.errors > 0 || half.errors > 0) {
      throw new Error(`signer bench: requests failed: ${JSON.stringify(max.statuses)} / ${JSON.stringify(half.statuses)}`);
    }
    // Overload: 2x the sustainable maximum, open loop. Enough connections for everything admitted to wait up to
    // maxWaitMs (about the maximum rate x 1 s in flight) with room to spare, within the open-file limit (each
    // connection is a descriptor here and one in the generator).
    const overloadRate = Math.round(2 * endToEnd);
    const clientTimeoutMs = 2 * MAX_WAIT_MS;
    const connections = Math.max(64, Math.min(Math.ceil((overloadRate * MAX_WAIT_MS) / 1000) + 256, openFileLimit() - 512));
    const over = await runChild({
      ...base,
      mode: "open",
      rate: overloadRate,
      connections,
      timeoutMs: clientTimeoutMs,
      seconds: opts.seconds,
      warmupSeconds,
      firstEpoch: 300_000,
    });
    const unexpected = Object.keys(over.statuses).filter((s) => s !== "200" && s !== "503");
    if (unexpected.length > 0) throw new Error(`signer bench: overload run got ${JSON.stringify(over.statuses)}`);
    const goodput = over.completed / over.elapsedSeconds;
    const shedP99 = over.shedLatenciesMs.length > 0 ? percentile(over.shedLatenciesMs, 99) : 0;
    const overload: OverloadResult = {
      offeredPerSecond: overloadRate,
      maxWaitMs: MAX_WAIT_MS,
      clientTimeoutMs,
      connections,
      goodputPerSecond: Math.round(goodput),
      goodputRatio: round(goodput / endToEnd, 3),
      shedPerSecond: Math.round(over.shedLatenciesMs.length / over.elapsedSeconds),
      shedP99Ms: round(shedP99, 2),
      signedP99Ms: round(percentile(over.latenciesMs, 99), 2),
      timedOut: over.timedOut,
      lagged: over.lagged,
      statuses: over.statuses,
      targetsMet: goodput / endToEnd >= 0.9 && shedP99 < 50,
    };
    return {
      ceilingPerSecond: Math.round(ceiling),
      endToEndPerSecond: Math.round(endToEnd),
      ratio: round(endToEnd / ceiling, 3),
      p50Ms: round(percentile(half.latenciesMs, 50), 2),
      p99Ms: round(percentile(half.latenciesMs, 99), 2),
      offeredPerSecond: offered,
      overload,
    };
  } finally {
    await signer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface AuditCostResult {
  /** Closed-loop ATTESTATION throughput with block/attestation audit entries fdatasync'd before the reply (the signer as shipped). */
  durablePerSecond: number;
  /** The same with those entries buffered like the other types (BENCH ONLY mode). */
  bufferedPerSecond: number;
  /** 1 - durable / buffered: the share of throughput the durable audit feed costs. */
  cost: number;
}

/**
 * What writing block and attestation audit entries durably before the reply costs: the same closed-loop load on
 * a signer as shipped and on one with those entries buffered, alternated (durable, buffered, twice) and the best
 * of each kept, so that a neighbour's burst on a shared machine does not decide the figure.
 */
export async function runAuditCostBench(opts: { seconds: number; keys?: number; threads?: number }): Promise<AuditCostResult> {
  const keys = opts.keys ?? 1000;
  const keyStoreSecrets = () => Array.from({ length: keys }, (_, i) => interopSecretKey(i));
  const best = { durable: 0, buffered: 0 };
  for (const buffered of [false, true, false, true]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-audit-"));
    const config = benchSignerConfig({ dataDir: dir, genesisValidatorsRoot: GVR, limits: { blsThreads: opts.threads } });
    const signer = await startSigner(config, {
      keyStore: new InMemoryBenchKeyStore(keyStoreSecrets()),
      logDestination: fs.createWriteStream(path.join(dir, "signer.log")),
      benchBufferedAudit: buffered,
    });
    try {
      const url = new URL(signer.url);
      const base = { host: url.hostname, port: Number(url.port), pubkeys: signer.publicKeys.slice(), genesisValidatorsRoot: GVR };
      await runChild({ ...base, mode: "closed", connections: 64, seconds: 120, warmupSeconds: 0, stopAfter: keys, firstEpoch: 10 });
      const run = await runChild({ ...base, mode: "closed", connections: 128, seconds: opts.seconds, warmupSeconds: 1, firstEpoch: 100 });
      if (run.errors > 0) throw new Error(`audit cost bench: requests failed: ${JSON.stringify(run.statuses)}`);
      const rate = run.completed / run.elapsedSeconds;
      if (buffered) best.buffered = Math.max(best.buffered, rate);
      else best.durable = Math.max(best.durable, rate);
    } finally {
      await signer.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return { durablePerSecond: Math.round(best.durable), bufferedPerSecond: Math.round(best.buffered), cost: round(1 - best.durable / best.buffered, 3) };
}

// `node dist/test/bench/signer.js [seconds]`: this bench alone; `... [seconds] audit`: the audit feed's cost.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const seconds = Number(process.argv[2] ?? process.env.BENCH_SECONDS ?? 5);
  console.log(JSON.stringify(process.argv[3] === "audit" ? await runAuditCostBench({ seconds }) : await runSignerBench({ seconds })));
}
