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
const GVR = `0x${"42".repeat(32)}`;
const PROCESSES = 2;

export interface MultiSignerBenchResult {
  processes: number;
  blsThreadsPerProcess: number;
  ceilingPerSecond: number;
  endToEndPerSecond: number;
  ratio: number;
  perProcessPerSecond: number[];
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
    const runs = await all((j) => runChild({ ...j, mode: "closed", connections: 64, seconds: opts.seconds, warmupSeconds, firstEpoch: 100 }));
    const failed = runs.filter((r) => r.errors > 0);
    if (failed.length > 0) throw new Error(`multi-process signer bench: requests failed: ${JSON.stringify(failed.map((r) => r.statuses))}`);
    const perProcess = runs.map((r) => r.completed / r.elapsedSeconds);
    const endToEnd = perProcess.reduce((a, b) => a + b, 0);
    const rawAfter = (await runRawSigningBench({ keys: KEYS, seconds: opts.seconds })).signaturesPerSecond;
    const ceiling = Math.max(rawBefore, rawAfter);
    return {
      processes: PROCESSES,
      blsThreadsPerProcess: blsThreads,
      ceilingPerSecond: Math.round(ceiling),
      endToEndPerSecond: Math.round(endToEnd),
      ratio: round(endToEnd / ceiling, 3),
      perProcessPerSecond: perProcess.map((r) => Math.round(r)),
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
