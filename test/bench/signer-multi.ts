/**
 * Two signer processes sharing one PostgreSQL slashing database, against the raw BLS ceiling of the same run
 * (issue 11): ATTESTATION requests over HTTP keep-alive, every one a durable record committed in PostgreSQL
 * (synchronous_commit=on, fsync on) before its signature leaves. The load is spread over both processes: one
 * load generator per process, each on its own half of the 10,000 keys (every process holds all of them, as
 * in a deployment behind a load balancer; a key's requests go to one process, as a validator client sticks
 * to one connection). Each process gets half the cores for its BLS threads (at least one); the ceiling is the
 * raw pool on every core, measured before and after, the higher kept (./signer.ts does the same). PostgreSQL
 * is a private server on this machine (test/helpers/postgres.ts), so it competes for the same cores.
 */
import { fork, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startPostgres } from "../helpers/postgres.js";
import type { SignerProcessJob, SignerProcessReady } from "./signer-process.js";
import type { LoadResult } from "./signer-load.js";
import { runChild } from "./signer.js";
import { runRawSigningBench } from "./signing.js";
import { round } from "./stats.js";

const KEYS = 10_000;
const GVR = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"; // mainnet's: the network pins it
const PROCESSES = 2;

export interface MultiSignerBenchResult {
  processes: number;
  blsThreadsPerProcess: number;
  ceilingPerSecond: number;
  endToEndPerSecond: number;
  ratio: number;
  perProcessPerSecond: number[];
  /**
   * CPU time per signature in the measured run (µs), where it went: both signer processes (HTTP, signing roots,
   * BLS, the PostgreSQL client), the PostgreSQL server, the two load generators (their warm-up included). With
   * `cores` cores the end-to-end rate cannot pass cores × 10^6 / their sum, however quiet the machine.
   */
  cpuMicrosPerSignature: { signers: number; postgres: number; loadGenerators: number };
  /** Checks per PostgreSQL transaction (group commit) and its mean duration, over both processes. */
  meanBatch: number;
  meanCommitMs: number;
}

/** The sum and count of a Prometheus histogram on the signer's /metrics. */
async function histogram(url: string, name: string): Promise<{ sum: number; count: number }> {
  const body = await (await fetch(`${url}/metrics`)).text();
  const value = (suffix: string) => Number(/^(\S+) (\S+)$/m.exec(body.split("\n").find((l) => l.startsWith(`${name}_${suffix} `)) ?? "")?.[2] ?? 0);
  return { sum: value("sum"), count: value("count") };
}

async function batches(signers: BenchSigner[]): Promise<{ checks: number; batches: number; seconds: number }> {
  const sizes = await Promise.all(signers.map((s) => histogram(s.ready.url, "vigil_slashing_db_commit_batch_size")));
  const durations = await Promise.all(signers.map((s) => histogram(s.ready.url, "vigil_slashing_db_commit_duration_seconds")));
  return {
    checks: sizes.reduce((a, h) => a + h.sum, 0),
    batches: sizes.reduce((a, h) => a + h.count, 0),
    seconds: durations.reduce((a, h) => a + h.sum, 0),
  };
}

/** CPU time (ms) used so far by the PostgreSQL server listening on `port`: the postmaster and its children. */
export function postgresCpuMs(port: number): number {
  const ticks = (stat: string[], from: number, count: number) => stat.slice(from, from + count).reduce((a, v) => a + Number(v), 0);
  const stats = new Map<number, string[]>();
  let postmaster: number | undefined;
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const raw = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // The fields after the command name (which may hold spaces), from the state on.
      stats.set(Number(entry), raw.slice(raw.lastIndexOf(")") + 2).split(" "));
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv[0]?.endsWith("/postgres") && argv.includes(String(port))) postmaster = Number(entry);
    } catch {
      /* gone meanwhile */
    }
  }
  if (postmaster === undefined) return 0;
  // From the state field: ppid is index 1, utime/stime 11-12, cutime/cstime 13-14 (clock ticks, 100 per second).
  let total = ticks(stats.get(postmaster)!, 11, 4);
  for (const stat of stats.values()) if (Number(stat[1]) === postmaster) total += ticks(stat, 11, 2);
  return total * 10;
}

function signerCpuMs(s: BenchSigner): Promise<number> {
  return new Promise((resolve) => {
    s.child.once("message", (m) => resolve((m as { cpuMs: number }).cpuMs));
    s.child.send("cpu");
  });
}

function compiled(name: string): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith(".ts") ? path.resolve(path.dirname(here), `../../dist/test/bench/${name}`) : path.join(path.dirname(here), name);
}

interface BenchSigner {
  child: ChildProcess;
  ready: SignerProcessReady;
}

function startSignerProcess(job: SignerProcessJob): Promise<BenchSigner> {
  return new Promise((resolve, reject) => {
    const child = fork(compiled("signer-process.js"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", (m) => resolve({ child, ready: m as SignerProcessReady }));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`bench signer process exited with code ${code} before it was ready`)));
    child.send(job);
  });
}

async function stopSignerProcess(s: BenchSigner): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise((resolve) => s.child.once("exit", resolve));
  s.child.send("stop");
  const killer = setTimeout(() => s.child.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(killer);
}

export async function runMultiSignerBench(opts: { seconds: number }): Promise<MultiSignerBenchResult> {
  const cores = os.cpus().length;
  const blsThreads = Math.max(1, Math.floor(cores / PROCESSES));
  const rawBefore = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds })).signaturesPerSecond;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-multi-"));
  const server = await startPostgres();
  const signers: BenchSigner[] = [];
  try {
    const url = await server.createDatabase();
    // One after the other: the first creates the schema and pins the network (two at once would also work).
    for (let i = 0; i < PROCESSES; i++) {
      signers.push(
        await startSignerProcess({
          keys: KEYS,
          dataDir: path.join(dir, `signer-${i}`),
          genesisValidatorsRoot: GVR,
          postgres: { url, passwordFile: server.passwordFile, poolSize: 4 },
          blsThreads,
          maxWaitMs: 1000,
        }),
      );
    }
    const pubkeys = signers[0]!.ready.pubkeys;
    const jobs = signers.map((s, i) => {
      const u = new URL(s.ready.url);
      return { host: u.hostname, port: Number(u.port), pubkeys: pubkeys.filter((_, k) => k % PROCESSES === i), genesisValidatorsRoot: GVR };
    });
    const all = (run: (job: (typeof jobs)[number]) => Promise<LoadResult>) => Promise.all(jobs.map(run));
    // Warm-up (not measured): one attestation per key (a validator's first record is a heavier insert) and the JIT.
    await all((j) => runChild({ ...j, mode: "closed", connections: 32, seconds: 120, warmupSeconds: 0, stopAfter: j.pubkeys.length, firstEpoch: 10 }));
    const warmupSeconds = Math.min(2, Math.max(0.5, opts.seconds / 5));
    // 64 connections per process: the 128 of the one-process bench, split.
    const port = Number(new URL(url).port);
    const cpuBefore = { signers: await Promise.all(signers.map(signerCpuMs)), postgres: postgresCpuMs(port) };
    const batchesBefore = await batches(signers);
    const runs = await all((j) => runChild({ ...j, mode: "closed", connections: 64, seconds: opts.seconds, warmupSeconds, firstEpoch: 100 }));
    const signersCpu = (await Promise.all(signers.map(signerCpuMs))).reduce((a, v, i) => a + v - cpuBefore.signers[i]!, 0);
    const postgresCpu = postgresCpuMs(port) - cpuBefore.postgres;
    const batchesAfter = await batches(signers);
    const batchCount = batchesAfter.batches - batchesBefore.batches;
    const failed = runs.filter((r) => r.errors > 0);
    if (failed.length > 0) throw new Error(`multi-process signer bench: requests failed: ${JSON.stringify(failed.map((r) => r.statuses))}`);
    const perProcess = runs.map((r) => r.completed / r.elapsedSeconds);
    const endToEnd = perProcess.reduce((a, b) => a + b, 0);
    // About everything signed since the generators started (warm-up included), as the CPU counters span it.
    const signedInRun = endToEnd * (opts.seconds + warmupSeconds);
    const perSignature = (ms: number) => Math.round((ms * 1000) / signedInRun);
    const rawAfter = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds })).signaturesPerSecond;
    const ceiling = Math.max(rawBefore, rawAfter);
    return {
      processes: PROCESSES,
      blsThreadsPerProcess: blsThreads,
      ceilingPerSecond: Math.round(ceiling),
      endToEndPerSecond: Math.round(endToEnd),
      ratio: round(endToEnd / ceiling, 3),
      perProcessPerSecond: perProcess.map((r) => Math.round(r)),
      cpuMicrosPerSignature: {
        signers: perSignature(signersCpu),
        postgres: perSignature(postgresCpu),
        loadGenerators: perSignature(runs.reduce((a, r) => a + r.cpuMs, 0)),
      },
      meanBatch: round((batchesAfter.checks - batchesBefore.checks) / batchCount, 1),
      meanCommitMs: round(((batchesAfter.seconds - batchesBefore.seconds) * 1000) / batchCount, 2),
    };
  } finally {
    await Promise.all(signers.map(stopSignerProcess));
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// `node dist/test/bench/signer-multi.js [seconds]`: this part alone (`npm run build` first).
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const seconds = Number(process.argv[2] ?? process.env.BENCH_SECONDS ?? 5);
  console.log(JSON.stringify(await runMultiSignerBench({ seconds })));
}
