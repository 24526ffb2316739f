/**
 * Carrying a signer's SQLite client state (`<dataDir>/signer-state.sqlite`, ./sqlite.ts) into the PostgreSQL one
 * (./postgres.ts) when the signer moves to PostgreSQL: without it, a client disabled at generation N in the file
 * would come back enabled (its configured initial state, at generation 0), and a stale watchdog generation below N
 * would be accepted. The file is only read, never changed or deleted (it stays the record of what it held).
 */
import fs from "node:fs";
import Database from "better-sqlite3";
import type { ClientFence } from "./client-fencing.js";

export interface FencingState {
  generation: number;
  decision: string | null;
  clients: Map<string, ClientFence>;
}

/** The state in a signer-state.sqlite file, or undefined when there is no such file. Read-only. */
export function readSqliteFencingFile(file: string): FencingState | undefined {
  if (!fs.existsSync(file)) return undefined;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name));
    if (!tables.has("fencing")) return undefined; // created but never initialised: nothing was decided in it
    // Files of the first layout have no decision column (./sqlite.ts, FENCING_MIGRATIONS).
    const hasDecision = (db.prepare("PRAGMA table_info(fencing)").all() as { name: string }[]).some((c) => c.name === "decision");
    const row = db.prepare(`SELECT generation${hasDecision ? ", decision" : ""} FROM fencing WHERE id = 1`).get() as
      | { generation: number; decision?: string | null }
      | undefined;
    const clients = new Map<string, ClientFence>();
    if (tables.has("clients")) {
      for (const c of db.prepare("SELECT id, enabled, changed_at_generation FROM clients").all() as {
        id: string;
        enabled: number;
        changed_at_generation: number;
      }[]) {
        clients.set(c.id, { enabled: c.enabled === 1, changedAtGeneration: Number(c.changed_at_generation) });
      }
    }
    return { generation: Number(row?.generation ?? 0), decision: row?.decision ?? null, clients };
  } finally {
    db.close();
  }
}

/** Only what the carry changes in the database: the new generation row (if it rises) and the client rows to write. */
export interface FencingMerge {
  fencing?: { generation: number; decision: string | null };
  clients: Map<string, ClientFence>;
}

/**
 * The merge of the file's state into the database's. Generations are one numbering (the watchdog's), so:
 * - the generation is the higher of the two, with the decision that holds it (on a tie, the database's: it is
 *   the one other instances already answer from);
 * - per client, the side with the higher changed_at_generation wins (that change came later, as `apply` would
 *   have ordered them); on a tie a disable wins. So nothing either side disabled at its latest change for that
 *   client is enabled, and a re-enable made in the database after the move (at a higher generation) survives the
 *   next start, which merges the same file again.
 */
export function mergeFencing(db: FencingState, file: FencingState): FencingMerge {
  const merge: FencingMerge = { clients: new Map() };
  if (file.generation > db.generation) merge.fencing = { generation: file.generation, decision: file.decision };
  for (const [id, f] of file.clients) {
    const d = db.clients.get(id);
    const fileWins =
      d === undefined || f.changedAtGeneration > d.changedAtGeneration || (f.changedAtGeneration === d.changedAtGeneration && d.enabled && !f.enabled);
    if (fileWins) merge.clients.set(id, f);
  }
  return merge;
}
