/**
 * Durable fencing state of one signer process, in `<dataDir>/signer-state.sqlite` (./client-fencing.ts). Every
 * change is committed (synchronous=FULL) before the admin API answers, and the release gate reads the in-memory
 * copy, so "disabled" holds across restarts and costs nothing per signature.
 */
import type Database from "better-sqlite3";
import { openDurableSqlite, type SqliteMigration } from "../../../common/index.js";
import type { ClientFence, ClientFencing, FenceResult } from "./client-fencing.js";

export type { ClientFence, FenceResult } from "./client-fencing.js";

/**
 * Files written before the store used user_version are at version 0 with some or all of these tables:
 * each step accepts what it finds.
 */
const FENCING_MIGRATIONS: readonly SqliteMigration[] = [
  `
  CREATE TABLE IF NOT EXISTS fencing (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
  INSERT OR IGNORE INTO fencing (id, generation) VALUES (1, 0);
  CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY, enabled INTEGER NOT NULL, changed_at_generation INTEGER NOT NULL);
  `,
  // Added after the first layout: which decision holds the current generation.
  (db) => {
    const columns = (db.prepare("PRAGMA table_info(fencing)").all() as { name: string }[]).map((c) => c.name);
    if (!columns.includes("decision")) db.exec("ALTER TABLE fencing ADD COLUMN decision TEXT");
  },
];

export class SqliteClientFencing implements ClientFencing {
  private readonly db: Database.Database;
  private current: number;
  private readonly fences = new Map<string, ClientFence>();

  private constructor(
    file: string,
    /** Per client: its state until a fence/activate call is recorded (config `initiallyEnabled`). */
    private readonly initialState: ReadonlyMap<string, boolean>,
  ) {
    this.db = openDurableSqlite(file, { migrations: FENCING_MIGRATIONS });
    this.current = 0;
    this.reload();
  }

  /** The stored generation and its decision. */
  private stored(): { generation: number; decision: string | null } {
    const row = this.db.prepare("SELECT generation, decision FROM fencing WHERE id = 1").get() as { generation: number; decision: string | null };
    return { generation: Number(row.generation), decision: row.decision };
  }

  /** Makes the in-memory copy exactly what is on disk. */
  private reload(): void {
    const row = this.stored();
    this.current = row.generation;
    this.fences.clear();
    for (const row of this.db.prepare("SELECT id, enabled, changed_at_generation FROM clients").all() as {
      id: string;
      enabled: number;
      changed_at_generation: number;
    }[]) {
      this.fences.set(row.id, { enabled: row.enabled === 1, changedAtGeneration: Number(row.changed_at_generation) });
    }
  }

  /** Opens (creating 0600) `<dataDir>/signer-state.sqlite` or the given file. */
  static open(file: string, initialState: ReadonlyMap<string, boolean> = new Map()): SqliteClientFencing {
    return new SqliteClientFencing(file, initialState);
  }

  get generation(): number {
    return this.current;
  }

  /** A client never changed has its configured initial state (enabled unless configured otherwise) at generation 0. */
  fence(clientId: string): ClientFence {
    return this.fences.get(clientId) ?? { enabled: this.initialState.get(clientId) ?? true, changedAtGeneration: 0 };
  }

  isEnabled(clientId: string): boolean {
    return this.fence(clientId).enabled;
  }

  /**
   * Enables or disables a client at `generation`. Below the current generation nothing changes (stale).
   * Above it, the change is applied and `decision` (if named) takes the new generation. At the current
   * generation the call is an idempotent retry, accepted only from the decision that holds it: two
   * watchdogs that picked the same number cannot interleave their disable/enable calls.
   * Committed to disk before returning.
   */
  async apply(clientId: string, enabled: boolean, generation: number, decision?: string): Promise<FenceResult> {
    // Decided from the stored row inside the write transaction, never from memory: another process (or a copy
    // of this store that missed a change) can then never move the generation backwards or take over a decision.
    const result = this.db
      .transaction((): FenceResult => {
        const stored = this.stored();
        if (generation < stored.generation) return { ok: false, currentGeneration: stored.generation, reason: "STALE" };
        const held = generation === stored.generation ? stored.decision : null;
        if (held !== null && decision !== undefined && held !== decision) {
          return { ok: false, currentGeneration: stored.generation, reason: "GENERATION_TAKEN" };
        }
        const owner = held ?? decision ?? null;
        this.db.prepare("UPDATE fencing SET generation = ?, decision = ? WHERE id = 1").run(generation, owner);
        this.db
          .prepare(
            "INSERT INTO clients (id, enabled, changed_at_generation) VALUES (?, ?, ?) " +
              "ON CONFLICT(id) DO UPDATE SET enabled = excluded.enabled, changed_at_generation = excluded.changed_at_generation",
          )
          .run(clientId, enabled ? 1 : 0, generation);
        return { ok: true, fence: { enabled, changedAtGeneration: generation }, generation };
      })
      .immediate();
    // Only after the commit, and whatever the outcome: the in-memory view follows the disk, never runs ahead of it.
    this.reload();
    return result;
  }

  /**
   * One process owns the file (data-dir-lock.ts) and every change goes through `apply`, so the in-memory copy is
   * the state: the check and `send` run in one synchronous step, which no disable can come between.
   */
  async releaseIfEnabled(clientId: string, send: () => void): Promise<boolean> {
    if (!this.isEnabled(clientId)) return false;
    send();
    return true;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
