/**
 * `vigil signer start --workers N` (issue 12): ATTESTATION over HTTP keep-alive through the one port of N signer
 * worker processes (the real supervisor and worker code, signer/cluster/; only the key store is the bench's
 * in-memory one), every request a durable record in PostgreSQL (synchronous_commit=on, fsync on) before its
 * signature leaves. For N in {1, 2, cores} (as far as the machine has cores), and one worker on a SQLite file
 * for comparison: end to end as a ratio of the raw BLS ceiling of the same run (the pool on every core, measured
 * before and after, the higher kept), p50/p99 latency at half the ceiling offered open loop, and where the CPU
 * time per signature goes (the workers, the primary, PostgreSQL, the load generators). PostgreSQL is a private
 * server on this machine (test/helpers/postgres.ts), so it competes for the same cores.
 */
import cluster from "node:cluster";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startWorkers, type RunningWorkers } from "../../signer/index.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import type { LoadResult } from "./signer-load.js";
import { runChild } from "./signer.js";
import { postgresCpuMs } from "./signer-multi.js";
import { JOB_ENV, type WorkersBenchJob } from "./signer-workers-process.js";
import { runRawSigningBench } from "./signing.js";
import { percentile, round } from "./stats.js";

const KEYS = 10_000;
const GVR = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"; // mainnet's: the network pins it
/** Connections of the throughput run, over all workers (the one-process bench's 128). */
const CONNECTIONS = 128;

export interface WorkersBenchRow {
  backend: "postgres" | "sqlite";
  cores: number;
  processes: number;
  blsThreadsPerProcess: number;
  ceilingPerSecond: number;
  endToEndPerSecond: number;
  ratio: number;
  /** Signed per worker in the throughput run, from its metrics (how evenly node:cluster spread the connections). */
  perWorker: number[];
  offeredPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests of the open-loop run that got no 200 (503 shed when the offered rate is above what the host signs). */
  openLoopNot200: number;
  /** CPU time per signature in the throughput run (µs): the workers, the primary, PostgreSQL, the load generators. */
  cpuMicrosPerSignature: { workers: number; primary: number; postgres: number; loadGenerators: number };
  /** Transactions committed in the bench's database per signature in the throughput run (pg_stat_database: every session's). */
  postgresTransactionsPerSignature: number;
  /** Round trips to PostgreSQL per signature, by statement (its first 40 characters), counted at the workers' driver. */
  postgresRoundTripsPerSignature: Record<string, number>;
  /** Checks per group commit and its mean duration, over all workers. */
  meanBatch: number;
  meanCommitMs: number;
}

function compiled(name: string): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith(".ts") ? path.resolve(path.dirname(here), `../../dist/test/bench/${name}`) : path.join(path.dirname(here), name);
}

/** The sum over every worker of a histogram's _sum and _count on the group's /metrics. */
async function histogram(url: string, name: string): Promise<{ sum: number; count: number }> {
  const body = await (await fetch(`${url}/metrics`)).text();
  const total = (suffix: string) =>
    body
      .split("\n")
      .filter((l) => l.startsWith(`${name}_${suffix}{`) || l.startsWith(`${name}_${suffix} `))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  return { sum: total("sum"), count: total("count") };
}

async function signedPerWorker(url: string, processes: number): Promise<number[]> {
  const body = await (await fetch(`${url}/metrics`)).text();
  return Array.from({ length: processes }, (_, w) =>
    body
      .split("\n")
      .filter((l) => l.startsWith("vigil_signer_requests_total{") && l.includes('outcome="signed"') && l.includes(`worker="${w}"`))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0),
  );
}

/** CPU time (ms) every worker has used so far and their PostgreSQL round trips by statement, asked over IPC. */
async function workersCpu(): Promise<{ ms: number; roundTrips: Record<string, number> }> {
  const all = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected());
  const each = await Promise.all(
    all.map(
      (w) =>
        new Promise<{ benchCpuMs: number; roundTrips: Record<string, number> }>((resolve) => {
          const on = (m: unknown) => {
            if (typeof m === "object" && m !== null && "benchCpuMs" in m) {
              w!.off("message", on);
              resolve(m as { benchCpuMs: number; roundTrips: Record<string, number> });
            }
          };
          w!.on("message", on);
          w!.send("cpu");
        }),
    ),
  );
  const roundTrips: Record<string, number> = {};
  for (const e of each) for (const [k, n] of Object.entries(e.roundTrips)) roundTrips[k] = (roundTrips[k] ?? 0) + n;
  return { ms: each.reduce((a, e) => a + e.benchCpuMs, 0), roundTrips };
}

const ownCpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

async function measure(opts: { seconds: number; processes: number; server?: TestPostgres; dir: string }): Promise<WorkersBenchRow> {
  const cores = os.availableParallelism();
  const rawBefore = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds })).signaturesPerSecond;
  const dataDir = path.join(opts.dir, `${opts.server ? "pg" : "sqlite"}-${opts.processes}`);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const job: WorkersBenchJob = {
    keys: KEYS,
    workers: opts.processes,
    dataDir,
    genesisValidatorsRoot: GVR,
    ...(opts.server ? { postgres: { url: await opts.server.createDatabase(), passwordFile: opts.server.passwordFile, poolSize: 4 } } : {}),
    maxWaitMs: 1000,
  };
  process.env[JOB_ENV] = JSON.stringify(job);
  let gaveUp: Error | undefined;
  const workers: RunningWorkers = await startWorkers({
    workers: opts.processes,
    exec: compiled("signer-workers-process.js"),
    args: [],
    log: (level, message) => {
      if (level !== "info") process.stderr.write(`bench workers: ${message}\n`);
    },
    status: () => {},
    onGiveUp: (err) => {
      gaveUp = err;
    },
  });
  try {
    const u = new URL(workers.url);
    // One load generator per 8 cores (one does about 19,000 requests/s), each on its own share of the keys.
    const generators = Math.max(1, Math.ceil(cores / 8));
    const pubkeys = await pubkeysOf(workers.url);
    const jobs = Array.from({ length: generators }, (_, g) => ({
      host: u.hostname,
      port: Number(u.port),
      pubkeys: pubkeys.filter((_, k) => k % generators === g),
      genesisValidatorsRoot: GVR,
    }));
    const all = (run: (j: (typeof jobs)[number]) => Promise<LoadResult>) => Promise.all(jobs.map(run));
    // Warm-up (not measured): one attestation per key (a validator's first record is a heavier insert) and the JIT.
    await all((j) => runChild({ ...j, mode: "closed", connections: 32, seconds: 120, warmupSeconds: 0, stopAfter: j.pubkeys.length, firstEpoch: 10 }));
    const warmupSeconds = Math.min(2, Math.max(0.5, opts.seconds / 5));
    const port = opts.server ? Number(new URL(job.postgres!.url).port) : 0;
    const workersBefore = await workersCpu();
    const before = { workers: workersBefore.ms, primary: ownCpuMs(), postgres: opts.server ? postgresCpuMs(port) : 0 };
    const sizesBefore = await histogram(workers.url, "vigil_slashing_db_commit_batch_size");
    const durationsBefore = await histogram(workers.url, "vigil_slashing_db_commit_duration_seconds");
    const signedBefore = await signedPerWorker(workers.url, opts.processes);
    const xactsBefore = await committedTransactions(opts.server, job.postgres?.url);
    const runs = await all((j) =>
      runChild({ ...j, mode: "closed", connections: Math.ceil(CONNECTIONS / generators), seconds: opts.seconds, warmupSeconds, firstEpoch: 100 }),
    );
    const workersAfter = await workersCpu();
    const cpu = {
      workers: workersAfter.ms - before.workers,
      primary: ownCpuMs() - before.primary,
      postgres: opts.server ? postgresCpuMs(port) - before.postgres : 0,
    };
    const sizesAfter = await histogram(workers.url, "vigil_slashing_db_commit_batch_size");
    const durationsAfter = await histogram(workers.url, "vigil_slashing_db_commit_duration_seconds");
    const signedAfter = await signedPerWorker(workers.url, opts.processes);
    const xacts = (await committedTransactions(opts.server, job.postgres?.url)) - xactsBefore;
    const failed = runs.filter((r) => r.errors > 0);
    if (failed.length > 0) throw new Error(`workers bench: requests failed: ${JSON.stringify(failed.map((r) => r.statuses))}`);
    const endToEnd = runs.reduce((a, r) => a + r.completed / r.elapsedSeconds, 0);
    const rawAfter = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds })).signaturesPerSecond;
    const ceiling = Math.max(rawBefore, rawAfter);
    // Latency at half the ceiling, open loop: requests start on schedule whatever the replies.
    const offered = Math.round(ceiling / 2);
    const open = await all((j) =>
      runChild({
        ...j,
        mode: "open",
        rate: offered / generators,
        connections: Math.ceil(512 / generators),
        seconds: opts.seconds,
        warmupSeconds,
        firstEpoch: 200_000,
      }),
    );
    const latencies = open.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    const openNot200 = open.reduce((a, r) => a + Object.entries(r.statuses).reduce((b, [s, n]) => b + (s === "200" ? 0 : n), 0), 0);
    if (gaveUp) throw gaveUp;
    // About everything signed since the generators started (their warm-up included), as the CPU counters span it.
    const signedInRun = endToEnd * (opts.seconds + warmupSeconds);
    const perSignature = (ms: number) => Math.round((ms * 1000) / signedInRun);
    const batches = sizesAfter.count - sizesBefore.count;
    const signedInMeasuredRun = signedAfter.reduce((a, v, i) => a + v - signedBefore[i]!, 0);
    return {
      backend: opts.server ? "postgres" : "sqlite",
      cores,
      processes: opts.processes,
      blsThreadsPerProcess: Math.max(1, Math.ceil(cores / opts.processes)),
      ceilingPerSecond: Math.round(ceiling),
      endToEndPerSecond: Math.round(endToEnd),
      ratio: round(endToEnd / ceiling, 3),
      perWorker: signedAfter.map((v, i) => v - signedBefore[i]!),
      offeredPerSecond: offered,
      p50Ms: round(percentile(latencies, 50), 2),
      p99Ms: round(percentile(latencies, 99), 2),
      openLoopNot200: openNot200,
      cpuMicrosPerSignature: {
        workers: perSignature(cpu.workers),
        primary: perSignature(cpu.primary),
        postgres: perSignature(cpu.postgres),
        loadGenerators: perSignature(runs.reduce((a, r) => a + r.cpuMs, 0)),
      },
      postgresTransactionsPerSignature: round(xacts / signedInMeasuredRun, 3),
      postgresRoundTripsPerSignature: Object.fromEntries(
        Object.entries(workersAfter.roundTrips)
          .map(([k, n]) => [k, round((n - (workersBefore.roundTrips[k] ?? 0)) / signedInMeasuredRun, 3)] as const)
          .filter(([, v]) => v > 0)
          .sort((a, b) => b[1] - a[1]),
      ),
      meanBatch: round((sizesAfter.sum - sizesBefore.sum) / batches, 1),
      meanCommitMs: round(((durationsAfter.sum - durationsBefore.sum) * 1000) / batches, 2),
    };
  } finally {
    await workers.close();
  }
}

/** Transactions committed so far in the bench's database (pg_stat_database; 0 on SQLite). */
async function committedTransactions(server: TestPostgres | undefined, url: string | undefined): Promise<number> {
  if (!server || !url) return 0;
  const client = await server.connect(url);
  try {
    // The statistics collector reports with a delay of up to 500 ms: flush this backend's view first.
    await client.query("SELECT pg_stat_clear_snapshot()");
    const row = (await client.query<{ n: string }>("SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()")).rows[0];
    return Number(row?.n ?? 0);
  } finally {
    await client.end();
  }
}

/** The keys the workers hold, from the public Web3Signer listing. */
async function pubkeysOf(url: string): Promise<string[]> {
  return (await (await fetch(`${url}/api/v1/eth2/publicKeys`)).json()) as string[];
}

/** The process counts to measure: 1, 2 and every core, as far as the machine has them. */
export function workerCounts(cores = os.availableParallelism()): number[] {
  return [...new Set([1, 2, cores])].filter((n) => n <= cores).sort((a, b) => a - b);
}

export function formatWorkersRow(r: WorkersBenchRow): string {
  return `cores=${r.cores} processes=${r.processes} ceiling=${r.ceilingPerSecond}/s end-to-end=${r.endToEndPerSecond}/s ratio=${r.ratio} (target >= 0.8)${r.backend === "sqlite" ? " [SQLite, for comparison]" : ""}`;
}

export async function runWorkersBench(opts: { seconds: number; counts?: number[] }): Promise<WorkersBenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-workers-"));
  const server = await startPostgres();
  const rows: WorkersBenchRow[] = [];
  try {
    rows.push(await measure({ seconds: opts.seconds, processes: 1, dir }));
    for (const processes of opts.counts ?? workerCounts()) rows.push(await measure({ seconds: opts.seconds, processes, server, dir }));
    return rows;
  } finally {
    delete process.env[JOB_ENV];
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// `node dist/test/bench/signer-workers.js [seconds] [N…]`: this part alone (`npm run build` first).
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const seconds = Number(process.argv[2] ?? process.env.BENCH_SECONDS ?? 5);
  const counts = process.argv.slice(3).map(Number);
  const rows = await runWorkersBench({ seconds, ...(counts.length > 0 ? { counts } : {}) });
  for (const r of rows) console.log(formatWorkersRow(r));
  console.log(JSON.stringify(rows));
}
