import os from "node:os";
import path from "node:path";
import type Database from "better-sqlite3";
import { DurableSqliteError, openDurableSqlite, type SqliteMigration } from "../../common/index.js";
import type { StackName } from "../config.js";
import { FailoverRefusedError, WatchdogStateError } from "../errors.js";
import { isTerminal, type FailoverProgress, type FailoverRecord, type FailoverState, type FailoverTrigger } from "../failover/states.js";

/** The layout's version as recorded in meta.schema_version, which watchdogs before user_version check. */
const SCHEMA_VERSION = 1;
export const STATE_DB_NAME = "watchdog.sqlite";

/** Idempotent: files written before the store used user_version are at version 0 and already hold these tables. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failovers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  from_stack TEXT NOT NULL,
  to_stack TEXT NOT NULL,
  trigger TEXT NOT NULL,
  reason TEXT NOT NULL,
  state TEXT NOT NULL,
  generation INTEGER,
  progress TEXT NOT NULL DEFAULT '{}',
  outcome_code TEXT,
  outcome_message TEXT,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  ended_at INTEGER,
  lease_owner TEXT,
  lease_pid INTEGER,
  lease_host TEXT,
  lease_expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  failover_id INTEGER,
  state TEXT,
  message TEXT NOT NULL,
  data TEXT
);
CREATE TABLE IF NOT EXISTS daemon (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  snapshot TEXT NOT NULL
);
`;

const WATCHDOG_MIGRATIONS: readonly SqliteMigration[] = [SCHEMA];

interface FailoverRow {
  id: number;
  from_stack: string;
  to_stack: string;
  trigger: string;
  reason: string;
  state: string;
  generation: number | null;
  progress: string;
  outcome_code: string | null;
  outcome_message: string | null;
  started_at: number;
  updated_at: number;
  ended_at: number | null;
  lease_owner: string | null;
  lease_pid: number | null;
  lease_host: string | null;
  lease_expires_at: number | null;
}

export interface AuditEntry {
  seq: number;
  at: number;
  kind: string;
  failoverId: number | null;
  state: string | null;
  message: string;
  data: unknown;
}

export interface DaemonStatus {
  pid: number;
  host: string;
  startedAt: number;
  updatedAt: number;
  snapshot: unknown;
}

/** Who runs a failover. A lease that is not renewed (process gone) can be claimed by another executor. */
export interface LeaseHolder {
  owner: string;
  pid: number;
  host: string;
}

export function newLeaseHolder(): LeaseHolder {
  return { owner: `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`, pid: process.pid, host: os.hostname() };
}

/** The executor lost its lease (another process took the failover over): it must stop acting at once. */
export class LeaseLostError extends WatchdogStateError {
  constructor(id: number) {
    super("LEASE_LOST", `failover ${id} is now run by another executor; this one stops`);
  }
}

/**
 * The watchdog's durable state: which stack is active, the highest generation it has used, every failover
 * and its progress, and an append-only audit log. 0600, WAL, synchronous=FULL: a committed transition
 * survives a crash or power loss, which is what lets a restarted watchdog resume or roll back safely.
 */
export class WatchdogStore {
  readonly db: Database.Database;

  constructor(readonly file: string) {
    try {
      this.db = openDurableSqlite(file, { migrations: WATCHDOG_MIGRATIONS });
    } catch (err) {
      if (err instanceof DurableSqliteError && err.code === "SQLITE_SCHEMA_TOO_NEW") {
        throw new WatchdogStateError(
          "STATE_DB_SCHEMA",
          `watchdog state ${file} has schema ${err.details.foundVersion}; this Vigil knows ${err.details.knownVersion}`,
        );
      }
      const reason = err instanceof DurableSqliteError ? err.reason : (err as Error).message;
      throw new WatchdogStateError("STATE_DB_OPEN_FAILED", `cannot open watchdog state ${file}: ${reason}`);
    }
    const version = this.getMeta("schema_version");
    if (version === null) this.setMeta("schema_version", String(SCHEMA_VERSION));
    else if (Number(version) !== SCHEMA_VERSION) {
      this.db.close();
      throw new WatchdogStateError("STATE_DB_SCHEMA", `watchdog state ${file} has schema ${version}; this Vigil knows ${SCHEMA_VERSION}`);
    }
  }

  static open(dataDir: string): WatchdogStore {
    return new WatchdogStore(path.join(dataDir, STATE_DB_NAME));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // --- active stack and generations -------------------------------------------------------------------

  /** The stack the watchdog last made (or found) active; "primary" until a failover says otherwise. */
  activeStack(): StackName {
    const v = this.getMeta("active_stack");
    return v === "backup" ? "backup" : "primary";
  }

  lastGeneration(): number {
    return Number(this.getMeta("last_generation") ?? 0);
  }

  /**
   * Allocates a generation newer than any this watchdog used and any the signers reported, and commits it
   * (with an audit line) before the caller sends it anywhere.
   */
  allocateGeneration(signerGenerations: number[], kind: string, message: string, data?: unknown): number {
    return this.db
      .transaction(() => {
        const gen = Math.max(this.lastGeneration(), ...signerGenerations) + 1;
        this.setMeta("last_generation", String(gen));
        this.insertAudit(kind, message, { ...(data as object), generation: gen }, null, null);
        return gen;
      })
      .immediate();
  }

  // --- failovers ---------------------------------------------------------------------------------------

  /** Opens a failover in PRECONDITIONS, refusing if another one is still open. */
  createFailover(p: { from: StackName; to: StackName; trigger: FailoverTrigger; reason: string }, lease: LeaseHolder, leaseMs: number): FailoverRecord {
    return this.db
      .transaction(() => {
        const open = this.openFailover();
        if (open) throw new FailoverRefusedError("FAILOVER_IN_PROGRESS", `failover ${open.id} (${open.from} → ${open.to}) is still ${open.state}`);
        const now = Date.now();
        const r = this.db
          .prepare(
            `INSERT INTO failovers (from_stack, to_stack, trigger, reason, state, started_at, updated_at, lease_owner, lease_pid, lease_host, lease_expires_at)
             VALUES (?, ?, ?, ?, 'PRECONDITIONS', ?, ?, ?, ?, ?, ?)`,
          )
          .run(p.from, p.to, p.trigger, p.reason, now, now, lease.owner, lease.pid, lease.host, now + leaseMs);
        const id = Number(r.lastInsertRowid);
        this.insertAudit("failover", `${p.trigger} failover ${p.from} → ${p.to} opened: ${p.reason}`, null, id, "PRECONDITIONS");
        return this.failover(id)!;
      })
      .immediate();
  }

  failover(id: number): FailoverRecord | null {
    const row = this.db.prepare<[number], FailoverRow>("SELECT * FROM failovers WHERE id = ?").get(id);
    return row ? toRecord(row) : null;
  }

  openFailover(): FailoverRecord | null {
    const row = this.db
      .prepare<[], FailoverRow>(`SELECT * FROM failovers WHERE state NOT IN ('DONE','ROLLED_BACK','FAILED','REFUSED') ORDER BY id LIMIT 1`)
      .get();
    return row ? toRecord(row) : null;
  }

  lastFailover(): FailoverRecord | null {
    const row = this.db.prepare<[], FailoverRow>("SELECT * FROM failovers ORDER BY id DESC LIMIT 1").get();
    return row ? toRecord(row) : null;
  }

  failovers(limit: number): FailoverRecord[] {
    return this.db.prepare<[number], FailoverRow>("SELECT * FROM failovers ORDER BY id DESC LIMIT ?").all(limit).map(toRecord);
  }

  /**
   * Moves failover `id` from `from` to `to`, merging `patch` into its progress, in one durable transaction.
   * Refuses (LeaseLostError) unless `lease` still holds it and it is still in `from`: a paused or stale
   * executor can never write over a newer one.
   */
  transition(
    id: number,
    lease: LeaseHolder,
    from: FailoverState,
    to: FailoverState,
    note: string,
    patch: { progress?: FailoverProgress; generation?: number; outcome?: { code: string; message: string }; activeStack?: StackName } = {},
  ): FailoverRecord {
    return this.db
      .transaction(() => {
        const cur = this.failover(id);
        if (!cur || cur.lease.owner !== lease.owner || cur.state !== from) throw new LeaseLostError(id);
        const now = Date.now();
        const progress = { ...cur.progress, ...patch.progress };
        this.db
          .prepare(
            `UPDATE failovers SET state = ?, progress = ?, generation = COALESCE(?, generation), outcome_code = COALESCE(?, outcome_code),
               outcome_message = COALESCE(?, outcome_message), updated_at = ?, ended_at = ? WHERE id = ?`,
          )
          .run(
            to,
            JSON.stringify(progress),
            patch.generation ?? null,
            patch.outcome?.code ?? null,
            patch.outcome?.message ?? null,
            now,
            isTerminal(to) ? now : null,
            id,
          );
        if (patch.generation !== undefined && patch.generation > this.lastGeneration()) this.setMeta("last_generation", String(patch.generation));
        if (patch.activeStack) this.setMeta("active_stack", patch.activeStack);
        this.insertAudit("transition", `${from} → ${to}: ${note}`, patch.outcome ?? null, id, to);
        return this.failover(id)!;
      })
      .immediate();
  }

  /** Records progress inside the current state (no transition), under the same lease check. */
  recordProgress(id: number, lease: LeaseHolder, state: FailoverState, progress: FailoverProgress, note?: string): FailoverRecord {
    return this.db
      .transaction(() => {
        const cur = this.failover(id);
        if (!cur || cur.lease.owner !== lease.owner || cur.state !== state) throw new LeaseLostError(id);
        this.db.prepare("UPDATE failovers SET progress = ?, updated_at = ? WHERE id = ?").run(JSON.stringify({ ...cur.progress, ...progress }), Date.now(), id);
        if (note) this.insertAudit("progress", note, progress, id, state);
        return this.failover(id)!;
      })
      .immediate();
  }

  renewLease(id: number, lease: LeaseHolder, leaseMs: number): boolean {
    const r = this.db.prepare("UPDATE failovers SET lease_expires_at = ? WHERE id = ? AND lease_owner = ?").run(Date.now() + leaseMs, id, lease.owner);
    return r.changes === 1;
  }

  /**
   * Takes over an open failover whose executor is gone: its lease expired, or it ran on this host and its
   * process no longer exists. Returns the record if this holder now owns it.
   */
  claimAbandoned(lease: LeaseHolder, leaseMs: number, isAlive: (pid: number) => boolean = pidAlive): FailoverRecord | null {
    return this.db
      .transaction(() => {
        const open = this.openFailover();
        if (!open) return null;
        if (open.lease.owner === lease.owner) return open;
        const now = Date.now();
        const expired = open.lease.expiresAt === null || open.lease.expiresAt < now;
        const deadHere = open.lease.host === lease.host && open.lease.pid !== null && !isAlive(open.lease.pid);
        if (!expired && !deadHere) return null;
        this.db
          .prepare("UPDATE failovers SET lease_owner = ?, lease_pid = ?, lease_host = ?, lease_expires_at = ? WHERE id = ?")
          .run(lease.owner, lease.pid, lease.host, now + leaseMs, open.id);
        this.insertAudit(
          "recovery",
          `failover ${open.id} found in ${open.state} with its executor gone; taken over`,
          { previousOwner: open.lease.owner },
          open.id,
          open.state,
        );
        return this.failover(open.id);
      })
      .immediate();
  }

  // --- audit, daemon status ----------------------------------------------------------------------------

  audit(kind: string, message: string, data?: unknown, failoverId?: number): void {
    this.insertAudit(kind, message, data ?? null, failoverId ?? null, null);
  }

  auditLog(limit: number, afterSeq = 0): AuditEntry[] {
    return this.db
      .prepare<
        [number, number],
        { seq: number; at: number; kind: string; failover_id: number | null; state: string | null; message: string; data: string | null }
      >("SELECT * FROM (SELECT * FROM audit WHERE seq > ? ORDER BY seq DESC LIMIT ?) ORDER BY seq")
      .all(afterSeq, limit)
      .map((r) => ({
        seq: r.seq,
        at: r.at,
        kind: r.kind,
        failoverId: r.failover_id,
        state: r.state,
        message: r.message,
        data: r.data ? JSON.parse(r.data) : null,
      }));
  }

  /**
   * When the last automatic failover ended without effect: refused, or rolled back for a reason other than
   * a crash of its executor. The daemon waits refusedRetryMs after it, so a broken backup or signer does not
   * cause a failover attempt (and an alert) every few seconds.
   */
  lastUnsuccessfulAutoAt(): number | null {
    const row = this.db
      .prepare<[], { ended_at: number | null }>(
        `SELECT ended_at FROM failovers WHERE trigger = 'auto' AND (state = 'REFUSED' OR (state = 'ROLLED_BACK' AND outcome_code IS NOT 'INTERRUPTED'))
         ORDER BY id DESC LIMIT 1`,
      )
      .get();
    return row?.ended_at ?? null;
  }

  writeDaemonStatus(startedAt: number, snapshot: unknown): void {
    this.db
      .prepare(
        `INSERT INTO daemon (id, pid, host, started_at, updated_at, snapshot) VALUES (1, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, host = excluded.host, started_at = excluded.started_at, updated_at = excluded.updated_at, snapshot = excluded.snapshot`,
      )
      .run(process.pid, os.hostname(), startedAt, Date.now(), JSON.stringify(snapshot));
  }

  daemonStatus(): DaemonStatus | null {
    const r = this.db
      .prepare<[], { pid: number; host: string; started_at: number; updated_at: number; snapshot: string }>("SELECT * FROM daemon WHERE id = 1")
      .get();
    return r ? { pid: r.pid, host: r.host, startedAt: r.started_at, updatedAt: r.updated_at, snapshot: JSON.parse(r.snapshot) } : null;
  }

  private insertAudit(kind: string, message: string, data: unknown, failoverId: number | null, state: string | null): void {
    this.db
      .prepare("INSERT INTO audit (at, kind, failover_id, state, message, data) VALUES (?, ?, ?, ?, ?, ?)")
      .run(Date.now(), kind, failoverId, state, message, data === null || data === undefined ? null : JSON.stringify(data));
  }

  private getMeta(key: string): string | null {
    return this.db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?").get(key)?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }
}

function toRecord(r: FailoverRow): FailoverRecord {
  return {
    id: r.id,
    from: r.from_stack as StackName,
    to: r.to_stack as StackName,
    trigger: r.trigger as FailoverTrigger,
    reason: r.reason,
    state: r.state as FailoverState,
    generation: r.generation,
    progress: JSON.parse(r.progress) as FailoverProgress,
    outcomeCode: r.outcome_code,
    outcomeMessage: r.outcome_message,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    endedAt: r.ended_at,
    lease: { owner: r.lease_owner, pid: r.lease_pid, host: r.lease_host, expiresAt: r.lease_expires_at },
  };
}

/** True if a process with this pid exists (on this host). EPERM means it exists but is not ours. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
