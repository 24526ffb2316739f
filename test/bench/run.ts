/**
 * `npm run bench`: every performance figure Vigil claims, measured in one run on this machine.
 * Figures are printed as a table and as JSON (last line) so they can be pasted into notes.
 */
import os from "node:os";
import { runKeystoreBench } from "./keystore.js";
import { runAuditCostBench, runSignerBench } from "./signer.js";
import { runMultiSignerBench } from "./signer-multi.js";
import { formatWorkersRow, runWorkersBench } from "./signer-workers.js";
import { runRawSigningBench } from "./signing.js";
import { runSlashingDbBench } from "./slashing-db.js";
import { runPostgresSlashingDbBench } from "./slashing-db-postgres.js";
import { round } from "./stats.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
/** `--only slashing-db`, `--only signer-multi` or `--only signer-workers`: that section alone (the others take minutes). */
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1];
if (only !== undefined && only !== "slashing-db" && only !== "signer-multi" && only !== "signer-workers") {
  throw new Error(`--only: unknown section ${only} (known: slashing-db, signer-multi, signer-workers)`);
}
const report: Record<string, unknown> = {
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
};

console.log(`# Vigil benchmarks (${seconds}s per measurement, ${os.cpus().length} cores, node ${process.version})\n`);

/** `vigil signer start --workers N` through its one port: one line per process count, as the issue asks. */
async function workersSection(): Promise<void> {
  console.log("## signer: --workers N (node:cluster) through one port, ATTESTATION over HTTP, 10,000 keys, PostgreSQL (and 1 process on SQLite)");
  const rows = await runWorkersBench({ seconds });
  for (const r of rows) {
    console.log(formatWorkersRow(r));
    const c = r.cpuMicrosPerSignature;
    console.log(
      `  per worker ${r.perWorker.join(" + ")} signed; at ${r.offeredPerSecond}/s offered open loop (half the ceiling): p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (target < 25 ms)` +
        `${r.openLoopNot200 > 0 ? `, ${r.openLoopNot200} not 200` : ""}; CPU per signature: workers ${c.workers} µs, primary ${c.primary} µs, ` +
        `${r.backend === "postgres" ? `PostgreSQL ${c.postgres} µs (${r.postgresTransactionsPerSignature} transactions per signature), ` : ""}load generators ${c.loadGenerators} µs; group commit: mean batch ${r.meanBatch}, ${r.meanCommitMs} ms`,
    );
    if (r.backend === "postgres") {
      const trips = Object.entries(r.postgresRoundTripsPerSignature);
      const total = round(
        trips.reduce((a, [, v]) => a + v, 0),
        2,
      );
      console.log(`  PostgreSQL round trips per signature: ${total} (${trips.map(([k, v]) => `${v} "${k}…"`).join(", ")})`);
    }
  }
  console.log("(the 16-core figure needs a 16-core machine: run `npm run bench -- --only signer-workers` there)\n");
  report.signerWorkers = rows;
}

if (only === "signer-workers") {
  await workersSection();
  console.log(JSON.stringify(report));
  process.exit(0);
}

if (only !== "signer-multi") {
  console.log("## slashing-db: durable check-and-record, 10,000 validators, 1,000,000 history rows, SQLite and PostgreSQL");
  console.log("(load: each caller attests for its own validators with rising epochs, as a validator client does)");
  const db = await runSlashingDbBench({ seconds, callers: [1, 16, 256] });
  const pgBench = await runPostgresSlashingDbBench({ seconds, callers: [1, 16, 256] });
  const s = pgBench.settings;
  console.log(
    `PostgreSQL ${s.server_version}, private server on this machine: fsync ${s.fsync}, synchronous_commit ${s.synchronous_commit} (as in production), ` +
      `wal_sync_method ${s.wal_sync_method}; shared_buffers ${s.shared_buffers}, wal_buffers ${s.wal_buffers}, commit_delay ${s.commit_delay}: PostgreSQL's defaults, untuned; seeded in ${pgBench.seedSeconds} s`,
  );
  const ratios: Record<string, number> = {};
  for (const [backend, rows] of [
    ["sqlite", db],
    ["postgres", pgBench.results],
  ] as const) {
    for (const r of rows) {
      console.log(
        `${backend.padEnd(8)} callers ${String(r.callers).padStart(3)}: ${String(r.checksPerSecond).padStart(7)} checks/s  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms  mean batch ${r.meanBatch} (checks ${r.meanWorkMs} ms + commit ${r.meanCommitMs} ms)`,
      );
    }
    const one = rows.find((r) => r.callers === 1)!;
    const many = rows.find((r) => r.callers === 256)!;
    ratios[backend] = round(many.checksPerSecond / one.checksPerSecond, 1);
  }
  const pg256 = pgBench.results.find((r) => r.callers === 256)!.checksPerSecond;
  console.log(`ratio 256 callers / 1 caller: SQLite ${ratios.sqlite}x (target >= 10x, aim 20x; p99 at 256 target < 5 ms)`);
  console.log(
    `PostgreSQL: ${ratios.postgres}x (target >= 10x), ${pg256} checks/s at 256 callers (target >= 10,000): targets ${ratios.postgres! >= 10 && pg256 >= 10_000 ? "met" : "NOT met"}\n`,
  );
  report.slashingDb = { results: db, ratio256to1: ratios.sqlite };
  report.slashingDbPostgres = { results: pgBench.results, ratio256to1: ratios.postgres, settings: s };
  if (only === "slashing-db") {
    console.log(JSON.stringify(report));
    process.exit(0);
  }
}

if (only !== "signer-multi") {
  console.log("## signer/keystore: SoftHSM2 token (envelope encryption)");
  const keystore = await runKeystoreBench();
  for (const [name, value] of Object.entries(keystore)) console.log(`${name}: ${value}`);
  console.log("(targets: 10,000 keys load in < 10 s, aim 5 s)\n");
  report.keystore = keystore;

  console.log("## signer/signing: raw blst signing rate of the worker pool (no HTTP, no database) — the ceiling");
  const raw = await runRawSigningBench({ keys: 1000, seconds });
  console.log(`${round(raw.signaturesPerSecond, 0)} signatures/s\n`);
  report.rawSigning = { signaturesPerSecond: round(raw.signaturesPerSecond, 0) };

  console.log("## signer: ATTESTATION over HTTP with durable slashing protection, 10,000 keys");
  const signer = await runSignerBench({ seconds });
  console.log(`ceiling (raw pool, same run): ${round(signer.ceilingPerSecond, 0)} signatures/s`);
  console.log(`end to end:                   ${round(signer.endToEndPerSecond, 0)} signatures/s`);
  console.log(`ratio:                        ${round(signer.ratio, 2)} (target >= 0.8)`);
  console.log(
    `at ${round(signer.offeredPerSecond, 0)}/s offered (half the ceiling): p50 ${round(signer.p50Ms, 2)} ms, p99 ${round(signer.p99Ms, 2)} ms (target < 25 ms)`,
  );
  const o = signer.overload;
  console.log(
    `overload, ${o.offeredPerSecond}/s offered (2x end to end), clients give up after ${o.clientTimeoutMs} ms (limits.maxWaitMs ${o.maxWaitMs}): ` +
      `goodput ${o.goodputPerSecond}/s = ${o.goodputRatio} of the maximum (target >= 0.90), ${o.shedPerSecond}/s shed with 503, ` +
      `p99 of the 503s ${o.shedP99Ms} ms (target < 50 ms), p99 signed ${o.signedP99Ms} ms, ${o.timedOut} timed out, ${o.lagged} found no free connection ` +
      `(${o.connections} connections): targets ${o.targetsMet ? "met" : "NOT met"}\n`,
  );
  report.signer = signer;
}

console.log("## signer: two signer processes sharing one PostgreSQL slashing database, ATTESTATION over HTTP, 10,000 keys");
const multi = await runMultiSignerBench({ seconds });
console.log(
  `BLS threads per process: ${multi.blsThreadsPerProcess} (half the cores each); load split over both: ${multi.perProcessPerSecond.join(" + ")} signatures/s`,
);
console.log(`ceiling (raw pool, same run): ${multi.ceilingPerSecond} signatures/s`);
console.log(`end to end, ${multi.processes} processes:     ${multi.endToEndPerSecond} signatures/s`);
console.log(`ratio:                        ${multi.ratio} (target >= 0.7)`);
const cpu = multi.cpuMicrosPerSignature;
console.log(`CPU per signature: signers ${cpu.signers} µs, PostgreSQL ${cpu.postgres} µs, load generators ${cpu.loadGenerators} µs`);
console.log(`PostgreSQL group commit: mean batch ${multi.meanBatch} checks, ${multi.meanCommitMs} ms per transaction\n`);
report.signerMultiProcess = multi;

if (only !== "signer-multi") {
  console.log("## signer: cost of the durable audit feed (block/attestation entries fdatasync'd before the reply), 1,000 keys");
  const audit = await runAuditCostBench({ seconds });
  console.log(`durable: ${audit.durablePerSecond}/s, buffered: ${audit.bufferedPerSecond}/s, cost: ${round(audit.cost * 100, 1)}% of throughput\n`);
  report.auditCost = audit;
}

if (only !== "signer-multi") await workersSection();

console.log(JSON.stringify(report));
