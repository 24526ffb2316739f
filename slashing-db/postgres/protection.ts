import pg from "pg";
import { bytesToHex, normalizeHex } from "../../common/index.js";
import { checkBytes, parseHexBytes, parsePubkey, parseUint64 } from "../codec.js";
import type { CheckOutcome } from "../database.js";
import { InterchangeError, SlashingDbInputError, SlashingDbUnavailableError, SlashingProtectionError, type RefusalDetails } from "../errors.js";
import type { HighWatermark } from "../high-watermark.js";
import { readAllHighWatermarkPg } from "./high-watermark.js";
import { decodeSharingNonce, encodeSharingNonce, HISTORY_ID_KEY, SHARING_NONCE_KEY, SHARING_NONCE_PATTERN, type SlashingDbIdentity } from "../identity.js";
import type { BatchStats } from "../group-commit.js";
import { buildInterchange, type Interchange, type ValidatorHistory } from "../interchange/export.js";
import type { ImportSummary } from "../interchange/import.js";
import { parseInterchange } from "../interchange/parse.js";
import type { ProtectionHealth, SlashableCheck, SlashingProtection } from "../protection.js";
import { judgeAttestation, judgeBlock, type Verdict } from "../rules.js";
import { toPoolConfig, type PostgresConnection } from "./config.js";
import { classifyPgFailure, withStartupExitCode } from "./failures.js";
import { PgGroupCommitter } from "./group-commit.js";
import { PgHistory } from "./history.js";
import { mergeInterchangePg } from "./import.js";
import { migrate } from "./schema.js";
import { preflight } from "./preflight.js";
import { assertOpen, assertUsable } from "../guards.js";
import { READ_COMMITTED_WRITE } from "./isolation.js";
import { asUnavailable, durableTransaction } from "./transaction.js";

export interface PostgresProtectionOptions {
  /** Pins the network at open (refused if the database is pinned to another). */
  genesisValidatorsRoot?: string;
  /** Most checks committed in one transaction (default 1024). */
  maxBatch?: number;
  onCommit?: (stats: BatchStats) => void;
}

/**
 * A check whose signing root may be unknown (null matches nothing, as in an interchange): what dry runs and the
 * interchange suite need. The signer always has a root.
 */
export type CheckWithAnyRoot = SlashableCheck extends infer C
  ? C extends SlashableCheck
    ? Omit<C, "signingRoot"> & { signingRoot: Uint8Array | null }
    : never
  : never;

/** A check after validation: bytes and bigints. */
type Job =
  | { kind: "block"; key: Buffer; slot: bigint; root: Buffer | null }
  | { kind: "attestation"; key: Buffer; source: bigint; target: bigint; root: Buffer | null };

const GVR_KEY = "genesis_validators_root";
/** A health probe longer than this is DOWN (UNREACHABLE): a silent network must not hang /healthcheck. */
const HEALTH_TIMEOUT_MS = 2_000;
/** After a failed batch the database stays DOWN this long even if a probe passes. */
const FAILURE_HOLD_MS = 5_000;

/**
 * SlashingProtection on PostgreSQL, shareable by any number of Vigil instances (design: ./README.md). Every
 * batch of checks is one transaction that first locks its validators' rows in pubkey order, then judges each
 * check with the pure rules (../rules.ts) over what the database holds and records the new ones; answers are
 * given only after COMMIT returns.
 */
export class PostgresSlashingProtection implements SlashingProtection {
  private readonly committer: PgGroupCommitter<Job, Verdict>;
  private closed = false;
  private probing: Promise<ProtectionHealth> | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    private pinnedRoot: string | null,
    opts: PostgresProtectionOptions,
  ) {
    const known = new Set<string>(); // validators committed to the database: see PgHistory.lockValidators
    this.committer = new PgGroupCommitter(pool, opts.maxBatch ?? 1024, (client, jobs) => judgeAndRecord(client, jobs, known), opts.onCommit);
  }

  /**
   * Connects, refuses a server or role that would acknowledge commits before they are durable, creates or
   * migrates the schema, and pins the network if asked.
   */
  static async open(conn: PostgresConnection, opts: PostgresProtectionOptions = {}): Promise<PostgresSlashingProtection> {
    const pool = new pg.Pool(toPoolConfig(conn));
    // An idle connection's error (server restart) surfaces on the next query; it must not crash the process.
    pool.on("error", () => undefined);
    // Nor may a checked-out one's (the server crashes mid-batch): pg emits it on the client, with no listener of
    // its own, besides failing the query in flight; the batch then fails closed and discards the client.
    pool.on("connect", (client) => client.on("error", () => undefined));
    let protection: PostgresSlashingProtection | undefined;
    try {
      const client = await pool.connect().catch((err: unknown) => {
        throw new SlashingDbUnavailableError(
          "DB_OPEN_FAILED",
          `cannot connect to the PostgreSQL slashing database: ${(err as Error).message}`,
          classifyPgFailure(err),
        );
      });
      try {
        // Every refusal (not durable, schema too new, another network) is found before anything is written.
        await preflight(client, conn, opts.genesisValidatorsRoot);
        await migrate(client);
        const pinned = await readPin(client);
        protection = new PostgresSlashingProtection(pool, pinned, opts);
      } finally {
        client.release();
      }
      if (opts.genesisValidatorsRoot !== undefined) await protection.pin(parseHexBytes(opts.genesisValidatorsRoot, 32, "genesisValidatorsRoot"));
      return protection;
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw withStartupExitCode(asUnavailable(err, "cannot open the PostgreSQL slashing database"));
    }
  }

  get genesisValidatorsRoot(): string | null {
    return this.pinnedRoot;
  }

  get queueDepth(): number {
    return this.committer.queueDepth;
  }

  async checkAndRecord(check: CheckWithAnyRoot): Promise<CheckOutcome> {
    const job = toJob(check);
    this.assertUsable();
    const verdict = await this.committer.submit(job);
    return settle(verdict, job);
  }

  /** What checkAndRecord would answer now, recording nothing (dry runs, tests). */
  async judge(check: CheckWithAnyRoot): Promise<Verdict> {
    const job = toJob(check);
    this.assertOpen();
    try {
      const client = await this.pool.connect();
      try {
        const history = new PgHistory(client);
        const id = (await client.query<{ id: string }>("SELECT id::text FROM validators WHERE pubkey = $1", [job.key])).rows[0]?.id;
        return await judgeOne(history, id ?? "-1", job);
      } finally {
        client.release();
      }
    } catch (err) {
      throw asUnavailable(err, "slashing database read failed");
    }
  }

  async pin(genesisValidatorsRoot: Uint8Array): Promise<void> {
    this.assertOpen();
    const root = bytesToHex(checkBytes(genesisValidatorsRoot, 32, "genesisValidatorsRoot"));
    // Every sign request carries its network: once the database is pinned to it (here or at open), it stays pinned
    // (nothing unpins a database), so there is nothing to write or read again, as on SQLite. Without this, each
    // signature cost a durable transaction of its own (5 round trips).
    if (this.pinnedRoot === root) return;
    // In a transaction of its own, so that it commits with synchronous_commit=on whatever the server's default.
    const stored = await this.transaction("pinning the slashing database failed", async (client) => {
      await client.query("INSERT INTO metadata (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [GVR_KEY, root]);
      return readPin(client);
    });
    if (stored !== root) {
      this.pinnedRoot = stored;
      throw new SlashingProtectionError(
        "GENESIS_VALIDATORS_ROOT_MISMATCH",
        `this slashing database belongs to the network with genesis_validators_root ${stored}, not ${root}`,
      );
    }
    this.pinnedRoot = root;
  }

  /**
   * Raises the low watermarks of the given validators (never lowers), under the same row locks as a batch.
   * Returns how many validators.
   */
  async raiseLowWatermarks(opts: { pubkeys: string[]; slot?: bigint | number | string; epoch?: bigint | number | string }): Promise<number> {
    this.assertOpen();
    const slot = opts.slot === undefined ? null : parseUint64(opts.slot, "slot");
    const epoch = opts.epoch === undefined ? null : parseUint64(opts.epoch, "epoch");
    const keys = opts.pubkeys.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    return this.transaction("raising the watermarks failed", async (client) => {
      const history = new PgHistory(client);
      const ids = await history.lockValidators(keys);
      for (const id of ids.values()) await history.raiseWatermarks(id, { blockSlot: slot, sourceEpoch: epoch, targetEpoch: epoch });
      return ids.size;
    });
  }

  /** All of it in one transaction, or nothing; pins an unpinned database to the interchange's network. */
  async importInterchange(interchange: object | string): Promise<ImportSummary> {
    this.assertOpen();
    const parsed = parseInterchange(interchange);
    const root = bytesToHex(parsed.genesisValidatorsRoot);
    const summary = await this.transaction("importing the interchange failed", async (client) => {
      await client.query("INSERT INTO metadata (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [GVR_KEY, root]);
      const pinned = await readPin(client);
      if (pinned !== root) {
        throw new InterchangeError(
          "GENESIS_VALIDATORS_ROOT_MISMATCH",
          "metadata.genesis_validators_root",
          `is ${root} but this database belongs to the network ${pinned}`,
        );
      }
      const history = new PgHistory(client);
      const ids = await history.lockValidators(parsed.records.map((r) => r.pubkey));
      return mergeInterchangePg(history, ids, parsed);
    });
    this.pinnedRoot = root;
    return summary;
  }

  /** A consistent snapshot (one REPEATABLE READ transaction) even while other instances write. */
  async exportInterchange(opts: { pubkeys?: string[]; minify?: boolean } = {}): Promise<Interchange> {
    this.assertOpen();
    const root = this.pinnedRoot;
    if (root === null) throw new SlashingProtectionError("GENESIS_VALIDATORS_ROOT_UNKNOWN", "the database is not pinned to a network yet; nothing to export");
    const keys = opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    const histories = await this.transaction(
      "exporting the interchange failed",
      (client) => loadHistories(client, keys),
      "ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    );
    return buildInterchange(histories, root, opts.minify ?? false);
  }

  /** Read from the database (any instance's write is seen), outside the group commit. */
  async identity(): Promise<SlashingDbIdentity> {
    this.assertOpen();
    try {
      const rows = (
        await this.pool.query<{ key: string; value: string }>("SELECT key, value FROM metadata WHERE key IN ($1, $2)", [HISTORY_ID_KEY, SHARING_NONCE_KEY])
      ).rows;
      const value = (key: string) => rows.find((r) => r.key === key)?.value;
      return { backend: "postgres", historyId: value(HISTORY_ID_KEY) ?? "", sharingNonce: decodeSharingNonce(value(SHARING_NONCE_KEY)) };
    } catch (err) {
      throw asUnavailable(err, "reading the slashing database's identity failed");
    }
  }

  /** Read from the database now (another instance's or the CLI's write is seen), outside the group commit. */
  async highWatermark(): Promise<HighWatermark | null> {
    this.assertOpen();
    return readAllHighWatermarkPg(this.pool).catch((err: unknown) => Promise.reject(asUnavailable(err, "reading the high watermark failed")));
  }

  /** Committed with synchronous_commit=on before it resolves, like a batch: a standby promoted by Patroni has it. */
  async writeSharingNonce(nonce: string): Promise<void> {
    this.assertOpen();
    if (!SHARING_NONCE_PATTERN.test(nonce)) throw new SlashingDbInputError("nonce", "must be 32 to 64 lower-case hex digits");
    await this.transaction("writing the sharing nonce failed", (client) =>
      client.query("INSERT INTO metadata (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [
        SHARING_NONCE_KEY,
        encodeSharingNonce(nonce),
      ]),
    );
  }

  /** pg_database_size of the current database: tables, indexes and TOAST, shared by every instance on it. */
  async sizeBytes(): Promise<number> {
    this.assertOpen();
    const { rows } = await this.pool.query<{ bytes: string }>("SELECT pg_database_size(current_database())::text AS bytes");
    return Number(rows[0]!.bytes);
  }

  isAlive(): boolean {
    return !this.closed;
  }

  /**
   * Whether a batch could commit now: a write probe (callers asking meanwhile share it), and DOWN for
   * FAILURE_HOLD_MS after a batch failed even if the probe passes (a failure the probe cannot see). Not the latest
   * batch's failure alone: with no requests coming, that would stay DOWN long after the server came back.
   */
  async health(): Promise<ProtectionHealth> {
    if (this.closed) return { up: false, cause: "CLOSED", message: "the slashing database is closed" };
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  /**
   * A transaction that takes a transaction id and commits it with synchronous_commit=on: its commit record is
   * flushed to the WAL like a batch's, so it fails where a batch would (server down, disk full, a read-only
   * standby) without touching a table. Bounded by HEALTH_TIMEOUT_MS: a server that does not answer is DOWN.
   */
  private async probe(): Promise<ProtectionHealth> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`), { code: "ETIMEDOUT" })), HEALTH_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.transaction("the health probe failed", (client) => client.query("SELECT txid_current()")), timeout]);
      const failure = this.committer.lastFailure;
      if (failure && performance.now() - this.committer.lastFailureAt < FAILURE_HOLD_MS) return { up: false, cause: failure.failure, message: failure.message };
      return { up: true };
    } catch (err) {
      return { up: false, cause: classifyPgFailure(err), message: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<string[]> {
    if (this.closed) return [];
    this.closed = true;
    const problems: string[] = [];
    await this.committer.close();
    if (this.committer.lastFailure) problems.push(`the latest commit failed: ${this.committer.lastFailure.message}`);
    await this.pool.end().catch((err: Error) => problems.push(`closing the PostgreSQL pool failed: ${err.message}`));
    return problems;
  }

  private transaction<T>(what: string, work: (client: pg.PoolClient) => Promise<T>, mode = READ_COMMITTED_WRITE): Promise<T> {
    return durableTransaction(this.pool, what, work, mode);
  }

  private assertOpen(): void {
    assertOpen(this.closed);
  }

  private assertUsable(): void {
    assertUsable(this.closed, this.pinnedRoot);
  }
}

function toJob(check: CheckWithAnyRoot): Job {
  const key = checkBytes(check.pubkey, 48, "pubkey");
  const root = check.signingRoot === null ? null : checkBytes(check.signingRoot, 32, "signingRoot");
  if (check.kind === "block") return { kind: "block", key, slot: parseUint64(check.slot, "slot"), root };
  return { kind: "attestation", key, source: parseUint64(check.sourceEpoch, "sourceEpoch"), target: parseUint64(check.targetEpoch, "targetEpoch"), root };
}

/**
 * One batch, inside its transaction: lock every validator of the batch (sorted), then judge and record. A
 * validator with one check in the batch is independent of every other check (its history is locked and nothing
 * else in the batch writes it), so those are judged from snapshots read in one round trip and recorded in one
 * more; a validator with several checks has them judged and recorded one by one, in submission order, so each
 * sees what the earlier ones recorded.
 */
async function judgeAndRecord(client: pg.PoolClient, jobs: Job[], known: Set<string>): Promise<Verdict[]> {
  const history = new PgHistory(client);
  const ids = await history.lockValidators(
    jobs.map((j) => j.key),
    known,
  );
  const idOf = (job: Job) => ids.get(job.key.toString("hex"))!;
  const checksPerValidator = new Map<string, number>();
  for (const job of jobs) checksPerValidator.set(job.key.toString("hex"), (checksPerValidator.get(job.key.toString("hex")) ?? 0) + 1);
  const single = (job: Job) => checksPerValidator.get(job.key.toString("hex")) === 1;
  const verdicts: Verdict[] = new Array(jobs.length);

  const blocks = [...jobs.entries()].filter(([, j]) => j.kind === "block" && single(j)) as [number, Extract<Job, { kind: "block" }>][];
  const blockSnaps = await history.blockSnapshots(blocks.map(([, j]) => ({ id: idOf(j), slot: j.slot })));
  const newBlocks: { id: string; slot: bigint; root: Buffer | null }[] = [];
  for (const [n, [i, j]] of blocks.entries()) {
    verdicts[i] = judgeBlock(blockSnaps[n]!, j.slot, j.root);
    if (verdicts[i].kind === "new") newBlocks.push({ id: idOf(j), slot: j.slot, root: j.root });
  }
  await history.insertBlocks(newBlocks);

  const atts = [...jobs.entries()].filter(([, j]) => j.kind === "attestation" && single(j)) as [number, Extract<Job, { kind: "attestation" }>][];
  const attSnaps = await history.attestationSnapshots(atts.map(([, j]) => ({ id: idOf(j), source: j.source, target: j.target, root: j.root })));
  const newAtts: { id: string; source: bigint; target: bigint; root: Buffer | null }[] = [];
  for (const [n, [i, j]] of atts.entries()) {
    verdicts[i] = judgeAttestation(attSnaps[n]!, j.source, j.target);
    if (verdicts[i].kind === "new") newAtts.push({ id: idOf(j), source: j.source, target: j.target, root: j.root });
  }
  await history.insertAttestations(newAtts);

  for (const [i, job] of jobs.entries()) {
    if (single(job)) continue;
    const id = idOf(job);
    const verdict = await judgeOne(history, id, job);
    if (verdict.kind === "new") {
      if (job.kind === "block") await history.insertBlock(id, job.slot, job.root);
      else await history.insertAttestation(id, job.source, job.target, job.root);
    }
    verdicts[i] = verdict;
  }
  return verdicts;
}

async function judgeOne(history: PgHistory, id: string, job: Job): Promise<Verdict> {
  if (job.kind === "block") return judgeBlock(await history.blockSnapshot(id, job.slot), job.slot, job.root);
  return judgeAttestation(await history.attestationSnapshot(id, job.source, job.target, job.root), job.source, job.target);
}

function settle(verdict: Verdict, job: Job): CheckOutcome {
  if (verdict.kind === "refused") {
    const details: RefusalDetails =
      job.kind === "block" ? { pubkey: bytesToHex(job.key), slot: job.slot } : { pubkey: bytesToHex(job.key), source: job.source, target: job.target };
    throw new SlashingProtectionError(verdict.code, verdict.reason, verdict.existing ? { ...details, existing: verdict.existing } : details);
  }
  return verdict.kind === "new" ? "recorded" : "repeat";
}

async function readPin(db: pg.Pool | pg.ClientBase): Promise<string | null> {
  const row = (await db.query<{ value: string }>("SELECT value FROM metadata WHERE key = $1", [GVR_KEY])).rows[0];
  return row ? normalizeHex(row.value) : null;
}

export async function loadHistories(client: pg.ClientBase, pubkeys?: Buffer[]): Promise<ValidatorHistory[]> {
  // One query for the given keys: concurrent queries on one client are queued by pg, and deprecated.
  const found = pubkeys
    ? new Map(
        (await client.query<{ id: string; pubkey: Buffer }>("SELECT id::text, pubkey FROM validators WHERE pubkey = ANY($1::bytea[])", [pubkeys])).rows.map(
          (r) => [r.pubkey.toString("hex"), r.id],
        ),
      )
    : undefined;
  const validators: { id: string | null; pubkey: Buffer }[] = pubkeys
    ? pubkeys.map((pubkey) => ({ pubkey, id: found!.get(pubkey.toString("hex")) ?? null }))
    : (await client.query<{ id: string; pubkey: Buffer }>("SELECT id::text, pubkey FROM validators ORDER BY pubkey")).rows;
  const out: ValidatorHistory[] = [];
  for (const { id, pubkey } of validators) {
    if (id === null) {
      out.push({ pubkey, blocks: [], attestations: [], marks: { blockSlot: null, sourceEpoch: null, targetEpoch: null } });
      continue;
    }
    const blocks = await client.query<{ slot: string; signing_root: Buffer | null }>(
      "SELECT slot::text, signing_root FROM signed_blocks b WHERE validator_id = $1 ORDER BY b.slot", // qualified: a bare name would sort the text output column
      [id],
    );
    const atts = await client.query<{ source_epoch: string; target_epoch: string; signing_root: Buffer | null }>(
      "SELECT source_epoch::text, target_epoch::text, signing_root FROM signed_attestations a WHERE validator_id = $1 ORDER BY a.target_epoch, a.source_epoch",
      [id],
    );
    const marks = (
      await client.query<{ block_slot: string | null; source_epoch: string | null; target_epoch: string | null }>(
        "SELECT block_slot::text, source_epoch::text, target_epoch::text FROM low_watermarks WHERE validator_id = $1",
        [id],
      )
    ).rows[0];
    const big = (v: string | null | undefined) => (v === null || v === undefined ? null : BigInt(v));
    out.push({
      pubkey,
      blocks: blocks.rows.map((r) => ({ slot: BigInt(r.slot), root: r.signing_root })),
      attestations: atts.rows.map((r) => ({ source: BigInt(r.source_epoch), target: BigInt(r.target_epoch), root: r.signing_root })),
      marks: { blockSlot: big(marks?.block_slot), sourceEpoch: big(marks?.source_epoch), targetEpoch: big(marks?.target_epoch) },
    });
  }
  return out;
}
