/**
 * The client state in the PostgreSQL slashing database, shared by every signer instance on it (tables
 * signer_fencing / signer_clients, slashing-db/postgres/schema.ts). The argument for why a disable acknowledged
 * through any instance holds at all of them is signer/docs/fencing-across-instances.md; in short:
 * - the release gate takes the fencing lock (a transaction-scoped advisory lock) shared, then reads the clients'
 *   rows, sends while holding the lock, and only then commits; `apply` takes the same lock exclusively (which waits
 *   for every gate holding it) and commits before it resolves, so the admin API answers either before the gate's
 *   read (which then sees "disabled") or after its send;
 * - the in-memory copy (admission, metrics, GET endpoints) follows NOTIFY vigil_fencing and is only an optimisation.
 */
import pg from "pg";
import {
  BEGIN_READ_COMMITTED,
  classifyPgFailure,
  migratePostgresSchema,
  SlashingDbUnavailableError,
  toPoolConfig,
  withStartupExitCode,
  type PostgresConnection,
} from "../../../slashing-db/index.js";
import { mergeFencing, readSqliteFencingFile } from "./carry-over.js";
import type { ClientFence, ClientFencing, FenceResult } from "./client-fencing.js";

/** The channel every instance LISTENs on; `apply` notifies it in its transaction (delivered on commit only). */
export const FENCING_CHANNEL = "vigil_fencing";
/**
 * The fencing lock: one advisory lock key for all clients (changes are rare; a gate lasts a round trip). Advisory,
 * not a row lock, so a gate transaction writes nothing: no transaction id, no WAL, no fsync at its COMMIT.
 */
export const FENCING_LOCK_KEY = 0x5649_4731; // "VIG1"
/**
 * How long the server lets a gate transaction sit idle before it aborts it (and frees the shared lock): an instance
 * that vanished mid-gate (partition, crash of its host) must not block every disable until TCP gives up (~2 h). A
 * live gate is idle only between its read's result and its COMMIT, a synchronous loop of sends (well under a
 * millisecond), so 3 s is ~1000x margin over a GC pause, and below the 5 s query timeout of the apply that waits on
 * it. The residual risk (fencing-across-instances.md): the read's result reaching the sends later than this (a
 * frozen process, the result held in TCP retransmission across a partition).
 */
export const GATE_IDLE_TIMEOUT_MS = 3000;
/** TCP keepalive on every fencing connection, so a dead peer is noticed by both ends in seconds, not hours. */
const KEEPALIVE_INITIAL_DELAY_MS = 5000;
/** The gate's first statement after BEGIN, in the same round trip: the shared lock it takes is bounded by the timeout. */
export const GATE_IDLE_TIMEOUT_SQL = `SET LOCAL idle_in_transaction_session_timeout = '${GATE_IDLE_TIMEOUT_MS}ms'; `;

export interface PostgresClientFencingOptions {
  /** Wait before reconnecting a lost LISTEN connection, or retrying a failed reload (default 1000 ms). */
  retryMs?: number;
  /** Longest a gate or apply query may take before it fails closed (default 5000 ms). */
  queryTimeoutMs?: number;
  /** Problems that do not fail a request (listener lost, reload failed): for the log. */
  onProblem?: (message: string) => void;
  /**
   * A SQLite client state file (`<dataDir>/signer-state.sqlite`) to carry over at open, if it exists
   * (./carry-over.ts): merged in the transaction that seeds the rows; the file is left as it is.
   */
  carryFrom?: string;
  /** What the carry-over changed, for the log. */
  onCarry?: (message: string) => void;
}

/** The state as one consistent read: `version` orders snapshots so a late one never replaces a newer one. */
interface Snapshot {
  version: number;
  generation: number;
  fences: Map<string, ClientFence>;
}

interface GateEntry {
  clientId: string;
  send: () => void;
  resolve: (sent: boolean) => void;
  reject: (err: unknown) => void;
}

const SNAPSHOT_SQL =
  "SELECT f.version::text AS version, f.generation::text AS generation, c.id, c.enabled, c.changed_at_generation::text AS changed " +
  "FROM signer_fencing f LEFT JOIN signer_clients c ON true";

/** One statement, so one snapshot even outside a transaction (READ COMMITTED). */
async function readSnapshot(db: pg.ClientBase | pg.Pool): Promise<Snapshot> {
  const rows = (await db.query<{ version: string; generation: string; id: string | null; enabled: boolean | null; changed: string | null }>(SNAPSHOT_SQL)).rows;
  const fences = new Map<string, ClientFence>();
  for (const r of rows) if (r.id !== null) fences.set(r.id, { enabled: r.enabled === true, changedAtGeneration: Number(r.changed) });
  return { version: Number(rows[0]!.version), generation: Number(rows[0]!.generation), fences };
}

function unavailable(err: unknown, what: string): SlashingDbUnavailableError {
  if (err instanceof SlashingDbUnavailableError) return err;
  return new SlashingDbUnavailableError("DB_WRITE_FAILED", `${what}: ${(err as Error).message}`, classifyPgFailure(err));
}

/**
 * Merges a SQLite client state file into the database's (./carry-over.ts), inside the caller's transaction, which
 * holds the exclusive fencing lock. A version bump and NOTIFY when anything changed, so running instances reload.
 */
async function carryOver(client: pg.ClientBase, file: string, onCarry?: (message: string) => void): Promise<void> {
  const fromFile = readSqliteFencingFile(file);
  if (fromFile === undefined) return;
  const row = (
    await client.query<{ generation: string; decision: string | null }>("SELECT generation::text AS generation, decision FROM signer_fencing FOR UPDATE")
  ).rows[0]!;
  const clients = new Map<string, ClientFence>();
  for (const c of (
    await client.query<{ id: string; enabled: boolean; changed: string }>("SELECT id, enabled, changed_at_generation::text AS changed FROM signer_clients")
  ).rows) {
    clients.set(c.id, { enabled: c.enabled, changedAtGeneration: Number(c.changed) });
  }
  const merge = mergeFencing({ generation: Number(row.generation), decision: row.decision, clients }, fromFile);
  if (merge.fencing === undefined && merge.clients.size === 0) return;
  if (merge.fencing !== undefined) {
    await client.query("UPDATE signer_fencing SET generation = $1, decision = $2", [merge.fencing.generation, merge.fencing.decision]);
  }
  for (const [id, fence] of merge.clients) {
    await client.query(
      "INSERT INTO signer_clients (id, enabled, changed_at_generation) VALUES ($1, $2, $3) " +
        "ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, changed_at_generation = excluded.changed_at_generation",
      [id, fence.enabled, fence.changedAtGeneration],
    );
  }
  await client.query("UPDATE signer_fencing SET version = version + 1");
  await client.query(`NOTIFY ${FENCING_CHANNEL}`);
  const changes = [...merge.clients].map(([id, f]) => `${id} ${f.enabled ? "enabled" : "disabled"} at generation ${f.changedAtGeneration}`);
  onCarry?.(
    `carried the client state of ${file} into PostgreSQL: ` +
      [merge.fencing ? `generation ${row.generation} -> ${merge.fencing.generation}` : `generation stays ${row.generation}`, ...changes].join(", "),
  );
}

export class PostgresClientFencing implements ClientFencing {
  private snapshot: Snapshot;
  private readonly pending: GateEntry[] = [];
  private gateScheduled = false;
  private gateRunning: Promise<void> | undefined;
  private listener: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connecting = false;
  private closed = false;
  private readonly retryMs: number;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly clientConfig: pg.ClientConfig,
    private readonly initialState: ReadonlyMap<string, boolean>,
    snapshot: Snapshot,
    private readonly opts: PostgresClientFencingOptions,
  ) {
    this.snapshot = snapshot;
    this.retryMs = opts.retryMs ?? 1000;
  }

  /**
   * Connects, creates or migrates the schema (the same versioned migrations as the slashing database), adds a
   * row for each configured client that has none (a recorded decision wins over `initiallyEnabled`), loads the
   * state and starts listening for changes made through other instances.
   */
  static async open(
    conn: PostgresConnection,
    initialState: ReadonlyMap<string, boolean>,
    opts: PostgresClientFencingOptions = {},
  ): Promise<PostgresClientFencing> {
    // Its own small pool: a gate batch must never queue behind the slashing database's commits.
    const config = {
      ...toPoolConfig(conn),
      max: 3,
      query_timeout: opts.queryTimeoutMs ?? 5000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    };
    const pool = new pg.Pool(config);
    pool.on("error", () => undefined); // an idle connection's error (server restart) surfaces on its next use
    // Nor may a checked-out one's crash the process (pg emits it on the client, which has no listener of its own).
    pool.on("connect", (client) => client.on("error", () => undefined));
    try {
      const client = await pool.connect();
      let snapshot: Snapshot;
      try {
        await migratePostgresSchema(client);
        // One transaction under the exclusive fencing lock, as an apply: a carried disable waits for the gates in
        // progress, and no client is ever seen seeded from its initial state before the file's state is merged.
        await client.query(BEGIN_READ_COMMITTED);
        try {
          await client.query("SET LOCAL synchronous_commit = on");
          await client.query(`SELECT pg_advisory_xact_lock(${FENCING_LOCK_KEY})`);
          if (opts.carryFrom !== undefined) await carryOver(client, opts.carryFrom, opts.onCarry);
          const ids = [...initialState.keys()];
          await client.query(
            "INSERT INTO signer_clients (id, enabled, changed_at_generation) SELECT id, enabled, 0 FROM unnest($1::text[], $2::boolean[]) AS t(id, enabled) " +
              "ON CONFLICT (id) DO NOTHING",
            [ids, ids.map((id) => initialState.get(id) === true)],
          );
          snapshot = await readSnapshot(client);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw err;
        }
      } finally {
        client.release();
      }
      const fencing = new PostgresClientFencing(pool, config, initialState, snapshot, opts);
      await fencing.listen();
      return fencing;
    } catch (err) {
      await pool.end().catch(() => undefined);
      // The same exit codes as the slashing database's open (40 unreachable, 41 auth...): one diagnosis for the operator.
      if (err instanceof SlashingDbUnavailableError) throw withStartupExitCode(err);
      throw withStartupExitCode(
        new SlashingDbUnavailableError(
          "DB_OPEN_FAILED",
          `cannot open the client fencing state in PostgreSQL: ${(err as Error).message}`,
          classifyPgFailure(err),
        ),
      );
    }
  }

  get generation(): number {
    return this.snapshot.generation;
  }

  /** Whether the LISTEN connection is up (while it is not, the in-memory copy may lag; the gate does not). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  fence(clientId: string): ClientFence {
    return this.snapshot.fences.get(clientId) ?? { enabled: this.initialState.get(clientId) ?? true, changedAtGeneration: 0 };
  }

  isEnabled(clientId: string): boolean {
    return this.fence(clientId).enabled;
  }

  /** The rules of SqliteClientFencing.apply, decided from the stored row under its lock. Resolves after COMMIT. */
  async apply(clientId: string, enabled: boolean, generation: number, decision?: string): Promise<FenceResult> {
    if (this.closed) throw new SlashingDbUnavailableError("DB_CLOSED", "the client fencing state is closed");
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(err, "cannot change the client fencing state");
    }
    let broken: Error | undefined;
    try {
      await client.query(BEGIN_READ_COMMITTED);
      // Whatever the role or server says: the admin API's answer must never come before the change is durable.
      await client.query("SET LOCAL synchronous_commit = on");
      // Waits for every release gate in progress at any instance: their signatures are sent before this decides.
      await client.query(`SELECT pg_advisory_xact_lock(${FENCING_LOCK_KEY})`);
      const row = (
        await client.query<{ generation: string; decision: string | null }>("SELECT generation::text AS generation, decision FROM signer_fencing FOR UPDATE")
      ).rows[0]!;
      const stored = { generation: Number(row.generation), decision: row.decision };
      let result: FenceResult;
      if (generation < stored.generation) result = { ok: false, currentGeneration: stored.generation, reason: "STALE" };
      else {
        const held = generation === stored.generation ? stored.decision : null;
        if (held !== null && decision !== undefined && held !== decision) {
          result = { ok: false, currentGeneration: stored.generation, reason: "GENERATION_TAKEN" };
        } else {
          await client.query("UPDATE signer_fencing SET generation = $1, decision = $2, version = version + 1", [generation, held ?? decision ?? null]);
          await client.query(
            "INSERT INTO signer_clients (id, enabled, changed_at_generation) VALUES ($1, $2, $3) " +
              "ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, changed_at_generation = excluded.changed_at_generation",
            [clientId, enabled, generation],
          );
          await client.query(`NOTIFY ${FENCING_CHANNEL}`);
          result = { ok: true, fence: { enabled, changedAtGeneration: generation }, generation };
        }
      }
      const snapshot = await readSnapshot(client); // consistent with this commit: other changes wait on signer_fencing's lock
      await client.query(result.ok ? "COMMIT" : "ROLLBACK");
      // Only after the commit, and whatever the outcome: the in-memory view follows the database, never runs ahead of it.
      this.install(snapshot);
      return result;
    } catch (err) {
      broken = err as Error;
      await client.query("ROLLBACK").catch(() => undefined);
      throw unavailable(err, "cannot change the client fencing state");
    } finally {
      client.release(broken);
    }
  }

  /**
   * Joins the next gate batch: every release waiting in the same tick shares one transaction (BEGIN, the shared
   * fencing lock, the read, sends, COMMIT), as checks share a group commit.
   */
  releaseIfEnabled(clientId: string, send: () => void): Promise<boolean> {
    if (this.closed) return Promise.reject(new SlashingDbUnavailableError("DB_CLOSED", "the client fencing state is closed"));
    return new Promise((resolve, reject) => {
      this.pending.push({ clientId, send, resolve, reject });
      this.scheduleGate();
    });
  }

  private scheduleGate(): void {
    if (this.gateScheduled || this.gateRunning !== undefined || this.pending.length === 0) return;
    this.gateScheduled = true;
    setImmediate(() => {
      this.gateScheduled = false;
      if (this.closed || this.pending.length === 0) return; // close() refused what was waiting
      this.gateRunning = this.runGate(this.pending.splice(0)).finally(() => {
        this.gateRunning = undefined;
        this.scheduleGate(); // what arrived meanwhile is the next batch
      });
    });
  }

  private async runGate(batch: GateEntry[]): Promise<void> {
    let settled = 0;
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    try {
      client = await this.pool.connect();
      const ids = [...new Set(batch.map((e) => e.clientId))].sort();
      // One round trip. The read is its own statement, after the lock: READ COMMITTED then takes its snapshot once
      // a disable that held the lock has committed (in one statement the snapshot would predate the wait).
      const results = (await client.query(
        `${BEGIN_READ_COMMITTED}; ${GATE_IDLE_TIMEOUT_SQL}SELECT pg_advisory_xact_lock_shared(${FENCING_LOCK_KEY}); ` +
          `SELECT id, enabled FROM signer_clients WHERE id IN (${ids.map((id) => client!.escapeLiteral(id)).join(", ")})`,
      )) as unknown as pg.QueryResult<{ id: string; enabled: boolean }>[];
      const enabled = new Map(results[3]!.rows.map((r) => [r.id, r.enabled]));
      // Sent while the fencing lock is held: a disable of any of these clients commits only after these sends. A client
      // without a row (not configured anywhere, or deleted by hand) is refused: fail closed.
      for (const entry of batch) {
        settled++;
        if (enabled.get(entry.clientId) !== true) {
          entry.resolve(false);
          continue;
        }
        try {
          entry.send();
          entry.resolve(true);
        } catch (err) {
          entry.reject(err);
        }
      }
      // A failed COMMIT changes nothing for what was sent: the transaction wrote nothing, and its locks go with it.
      await client.query("COMMIT").catch((err: Error) => {
        broken = err;
      });
    } catch (err) {
      broken = err as Error;
      const refusal = unavailable(err, "cannot read the client fencing state before releasing a signature");
      for (const entry of batch.slice(settled)) entry.reject(refusal);
      await client?.query("ROLLBACK").catch(() => undefined);
    } finally {
      client?.release(broken);
    }
  }

  /** Installs a snapshot unless a newer one is already in place (reloads and applies can finish out of order). */
  private install(snapshot: Snapshot): void {
    if (snapshot.version >= this.snapshot.version) this.snapshot = snapshot;
  }

  /** Makes the in-memory copy what the database holds now; on failure, retries later (the gate does not depend on it). */
  private async reload(): Promise<void> {
    try {
      this.install(await readSnapshot(this.pool));
    } catch (err) {
      this.opts.onProblem?.(`reloading the client fencing state failed, retrying: ${(err as Error).message}`);
      this.retryLater();
    }
  }

  /** One timer for both repairs: without a listener, reconnect (which reloads); with one, reload. */
  private retryLater(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void (this.listener === undefined && !this.connecting ? this.listen() : this.reload());
    }, this.retryMs);
    this.retryTimer.unref();
  }

  /** A dedicated connection LISTENing for changes; after (re)connecting, a full reload catches what was missed. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.clientConfig);
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.opts.onProblem?.(`the client fencing LISTEN connection was lost${err ? `: ${err.message}` : ""}; reconnecting`);
      this.retryLater();
    };
    client.on("error", onLost);
    client.on("end", () => onLost());
    client.on("notification", () => void this.reload());
    this.connecting = true;
    try {
      await client.connect();
      await client.query(`LISTEN ${FENCING_CHANNEL}`);
    } catch (err) {
      onLost(err as Error);
      return;
    } finally {
      this.connecting = false;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    await this.reload();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.gateRunning;
    const refusal = new SlashingDbUnavailableError("DB_CLOSED", "the client fencing state is closed");
    for (const entry of this.pending.splice(0)) entry.reject(refusal);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
