/**
 * Durable check-and-record throughput of the slashing database at 1, 16 and 256 concurrent callers, on a
 * file holding 10,000 validators and 1,000,000 history rows. Every answer counted is a committed (fsynced)
 * record. Reports checks/s, p50/p99 latency, and the 256-caller / 1-caller ratio.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { openSlashingDb, type BatchStats } from "../../slashing-db/index.js";
import { percentile, round } from "./stats.js";

export const GVR = `0x${"77".repeat(32)}`;
export const VALIDATORS = 10_000;
export const ROWS_PER_VALIDATOR = 100; // 1,000,000 attestation rows in all

export interface SlashingBenchResult {
  callers: number;
  checksPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanBatch: number;
  /** Mean time per batch spent evaluating and inserting, and committing (WAL write + fsync). */
  meanWorkMs: number;
  meanCommitMs: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
export const pubkeyOf = (i: number) => `0x${createHash("sha256").update(`bench-${i}`).digest("hex").padEnd(96, "0")}`;

/** What one measurement saw: every answered check's latency, and how long it ran. */
export interface LoadRun {
  latenciesMs: number[];
  elapsedS: number;
}

/**
 * The load of a validator client: `callers` concurrent callers, each owning its share of the validators
 * (validator v belongs to caller v mod callers) and attesting for them in turn with rising epochs, so every
 * check is a new, valid attestation. Targets carry on from one measurement to the next.
 */
export function callerLoad(validators: number, firstTarget: number) {
  const nextTarget = new Array<number>(validators).fill(firstTarget);
  return async (callers: number, seconds: number, check: (validator: number, target: number) => Promise<unknown>): Promise<LoadRun> => {
    const latenciesMs: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    const caller = async (c: number) => {
      for (let v = c; performance.now() < deadline; v = v + callers < validators ? v + callers : c) {
        const target = nextTarget[v]!++;
        const started = performance.now();
        await check(v, target);
        latenciesMs.push(performance.now() - started);
      }
    };
    const began = performance.now();
    await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)));
    return { latenciesMs, elapsedS: (performance.now() - began) / 1000 };
  };
}

export function summarise(callers: number, run: LoadRun, batches: BatchStats[]): SlashingBenchResult {
  const latencies = [...run.latenciesMs].sort((a, b) => a - b);
  return {
    callers,
    checksPerSecond: round(latencies.length / run.elapsedS, 0),
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
    meanBatch: round(mean(batches.map((b) => b.size)), 1),
    meanWorkMs: round(mean(batches.map((b) => b.durationMs - b.commitMs)), 3),
    meanCommitMs: round(mean(batches.map((b) => b.commitMs)), 3),
  };
}

/** Fills a new database straight through SQL (seeding a million rows through the API would take minutes). */
function seed(file: string): void {
  openSlashingDb(file, { genesisValidatorsRoot: GVR }).close(); // schema + network pin
  const raw = new Database(file);
  raw.pragma("synchronous = OFF");
  // The lower-bound columns are what the database itself maintains on insert (oldest source 0, target 1).
  const addValidator = raw.prepare("INSERT INTO validators (id, pubkey, min_source_epoch, min_target_epoch) VALUES (?, ?, 0, 1)");
  const addAtt = raw.prepare("INSERT INTO signed_attestations (validator_id, target_epoch, source_epoch, signing_root) VALUES (?, ?, ?, ?)");
  raw.transaction(() => {
    const root = Buffer.alloc(32, 1);
    for (let v = 0; v < VALIDATORS; v++) {
      addValidator.run(v + 1, Buffer.from(pubkeyOf(v).slice(2), "hex"));
      for (let t = 1; t <= ROWS_PER_VALIDATOR; t++) addAtt.run(v + 1, t, t - 1, root);
    }
  })();
  raw.pragma("wal_checkpoint(TRUNCATE)");
  raw.close();
}

export async function runSlashingDbBench(opts: { seconds: number; callers: number[] }): Promise<SlashingBenchResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-bench-db-"));
  const file = path.join(dir, "bench.sqlite");
  try {
    seed(file);
    const batches: BatchStats[] = [];
    const db = openSlashingDb(file, {
      genesisValidatorsRoot: GVR,
      checkpointInBackground: true, // as the signer runs it
      onCommit: (s: BatchStats) => batches.push(s),
    });
    const results: SlashingBenchResult[] = [];
    const load = callerLoad(VALIDATORS, ROWS_PER_VALIDATOR + 1);
    for (const callers of opts.callers) {
      batches.length = 0;
      const run = await load(callers, opts.seconds, (v, target) =>
        db.checkAndRecordAttestation(pubkeyOf(v), target - 1, target, `0x${target.toString(16).padStart(64, "0")}`),
      );
      results.push(summarise(callers, run, batches));
    }
    db.close();
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
