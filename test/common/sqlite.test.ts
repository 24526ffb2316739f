import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableSqliteError, openDurableSqlite, schemaVersion } from "../../common/sqlite.js";
import { SqliteClientFencing } from "../../signer/server/fencing/sqlite.js";
import { WatchdogStore } from "../../watchdog/state/store.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-sqlite-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("openDurableSqlite", () => {
  it("creates the file 0600 in WAL mode with synchronous=FULL and records the schema version", () => {
    const file = path.join(dir, "sub", "a.sqlite");
    const db = openDurableSqlite(file, { migrations: ["CREATE TABLE t (x INTEGER)", "ALTER TABLE t ADD COLUMN y TEXT"] });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("synchronous", { simple: true })).toBe(2); // FULL
    expect(schemaVersion(db)).toBe(2);
    db.close();
  });

  it("runs only the migrations a file has not seen, and each step that fails leaves the file at the last complete one", () => {
    const file = path.join(dir, "b.sqlite");
    openDurableSqlite(file, { migrations: ["CREATE TABLE t (x INTEGER)"] }).close();
    expect(() => openDurableSqlite(file, { migrations: ["CREATE TABLE t (x INTEGER)", "CREATE TABLE u (y INTEGER); SELECT * FROM missing"] })).toThrow(
      DurableSqliteError,
    );
    const raw = new Database(file);
    expect(raw.pragma("user_version", { simple: true })).toBe(1);
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'u'").get()).toBeUndefined();
    raw.close();
    const db = openDurableSqlite(file, { migrations: ["CREATE TABLE t (x INTEGER)", "CREATE TABLE u (y INTEGER)"] });
    expect(schemaVersion(db)).toBe(2);
    db.close();
  });

  it("refuses a file whose schema is newer than the migrations it is given", () => {
    const file = path.join(dir, "c.sqlite");
    openDurableSqlite(file, { migrations: ["CREATE TABLE t (x INTEGER)", "CREATE TABLE u (y INTEGER)"] }).close();
    try {
      openDurableSqlite(file, { migrations: ["CREATE TABLE t (x INTEGER)"] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DurableSqliteError);
      expect((err as DurableSqliteError).code).toBe("SQLITE_SCHEMA_TOO_NEW");
      expect((err as DurableSqliteError).details).toMatchObject({ foundVersion: 2, knownVersion: 1 });
    }
  });
});

describe("files written before the stores used user_version open unchanged", () => {
  it("a fencing store from the first layout (no decision column) keeps its state and gains the column", async () => {
    const file = path.join(dir, "signer-state.sqlite");
    const old = new Database(file);
    old.pragma("journal_mode = WAL");
    old.exec(`
      CREATE TABLE IF NOT EXISTS fencing (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
      INSERT OR IGNORE INTO fencing (id, generation) VALUES (1, 0);
      CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, enabled INTEGER NOT NULL, changed_at_generation INTEGER NOT NULL);
      UPDATE fencing SET generation = 7;
      INSERT INTO clients VALUES ('vc-1', 0, 7);
    `);
    old.close();
    const store = SqliteClientFencing.open(file);
    expect(store.generation).toBe(7);
    expect(store.fence("vc-1")).toEqual({ enabled: false, changedAtGeneration: 7 });
    expect(await store.apply("vc-1", true, 8, "failover-1")).toMatchObject({ ok: true, generation: 8 });
    await store.close();
    const reopened = SqliteClientFencing.open(file);
    expect(reopened.fence("vc-1")).toEqual({ enabled: true, changedAtGeneration: 8 });
    expect(await reopened.apply("vc-1", false, 8, "failover-2")).toMatchObject({ ok: false, reason: "GENERATION_TAKEN" });
    await reopened.close();
  });

  it("a fencing store that already had the decision column keeps its decision", async () => {
    const file = path.join(dir, "signer-state.sqlite");
    const old = new Database(file);
    old.exec(`
      CREATE TABLE fencing (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, decision TEXT);
      INSERT INTO fencing (id, generation, decision) VALUES (1, 3, 'failover-9');
      CREATE TABLE clients (id TEXT PRIMARY KEY, enabled INTEGER NOT NULL, changed_at_generation INTEGER NOT NULL);
    `);
    old.close();
    const store = SqliteClientFencing.open(file);
    expect(store.generation).toBe(3);
    expect(await store.apply("vc-1", false, 3, "failover-1")).toMatchObject({ ok: false, reason: "GENERATION_TAKEN" });
    expect(await store.apply("vc-1", false, 3, "failover-9")).toMatchObject({ ok: true });
    await store.close();
  });

  it("a watchdog state file keeps its active stack, generation and failovers", () => {
    const file = path.join(dir, "watchdog.sqlite");
    const first = new WatchdogStore(file);
    first.db.pragma("user_version = 0"); // what a file written by the store before user_version looks like
    first.db.prepare("INSERT INTO meta (key, value) VALUES ('active_stack', 'backup'), ('last_generation', '5')").run();
    first.close();
    const store = new WatchdogStore(file);
    expect(store.activeStack()).toBe("backup");
    expect(store.lastGeneration()).toBe(5);
    expect(schemaVersion(store.db)).toBe(1);
    store.close();
  });

  it("a watchdog state file whose meta names another schema is still refused", () => {
    const file = path.join(dir, "watchdog.sqlite");
    const first = new WatchdogStore(file);
    first.db.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run();
    first.close();
    expect(() => new WatchdogStore(file)).toThrow(expect.objectContaining({ code: "STATE_DB_SCHEMA" }));
  });
});
