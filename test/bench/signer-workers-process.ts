/**
 * One worker of the `--workers N` bench (./signer-workers.ts), forked by the real supervisor
 * (signer/cluster/supervisor.ts) exactly as `vigil signer start --workers N` forks its workers, and run through
 * the same worker side (runSignerWorker, workerConfig). The one difference from the CLI: the bench's in-memory
 * key store (generating and importing 10,000 keys into SoftHSM2 would measure the token). The job comes in
 * VIGIL_BENCH_WORKERS_JOB (JSON, no secret in it: the database password stays in its file).
 */
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { runSignerWorker, startSigner, workerConfig, workerSlot } from "../../signer/index.js";
import { benchSignerConfig } from "./bench-config.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { InMemoryBenchKeyStore } from "./signer.js";

export interface WorkersBenchJob {
  keys: number;
  workers: number;
  dataDir: string;
  genesisValidatorsRoot: string;
  /** Absent: the SQLite file in dataDir (one worker only). */
  postgres?: { url: string; passwordFile: string; poolSize: number };
  maxWaitMs: number;
}

export const JOB_ENV = "VIGIL_BENCH_WORKERS_JOB";

const slot = workerSlot();
if (slot !== undefined) {
  const job = JSON.parse(process.env[JOB_ENV]!) as WorkersBenchJob;
  const config = benchSignerConfig({
    dataDir: job.dataDir,
    genesisValidatorsRoot: job.genesisValidatorsRoot,
    ...(job.postgres ? { postgres: job.postgres } : {}),
    limits: { maxWaitMs: job.maxWaitMs },
    workers: job.workers,
  });
  const own = workerConfig(config, slot);
  fs.mkdirSync(own.dataDir, { recursive: true, mode: 0o700 });
  const keyStore = new InMemoryBenchKeyStore(Array.from({ length: job.keys }, (_, i) => interopSecretKey(i)));
  // Round trips to PostgreSQL by statement (its first words), counted at the driver: where the database's share of
  // a signature goes. BENCH ONLY: the driver is wrapped in this process alone.
  const roundTrips: Record<string, number> = {};
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === "string" ? first : ((first as { text?: string } | undefined)?.text ?? "?");
    const kind = text.replace(/\s+/g, " ").trim().slice(0, 40);
    roundTrips[kind] = (roundTrips[kind] ?? 0) + 1;
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
  // CPU time used so far and the round trips, for the bench's per-signature accounting.
  process.on("message", (m: unknown) => {
    if (m === "cpu") {
      const cpu = process.cpuUsage();
      process.send!({ benchCpuMs: (cpu.user + cpu.system) / 1000, roundTrips: { ...roundTrips } });
    }
  });
  runSignerWorker(slot, config.dataDir, (hooks) =>
    startSigner(own, { keyStore, cluster: hooks, logDestination: fs.createWriteStream(path.join(own.dataDir, "signer.log")) }),
  ).catch((err: unknown) => {
    process.stderr.write(`bench signer worker ${slot} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
