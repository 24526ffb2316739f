// The failover executor against a fake admin API (faults on demand) and a simulated beacon node.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Alerter } from "../../watchdog/alerts/alerter.js";
import { createLogger } from "../../watchdog/log.js";
import {
  ChainClock,
  FailoverExecutor,
  newLeaseHolder,
  parseWatchdogConfig,
  SignerAdminClient,
  WatchdogStore,
  type WatchdogConfig,
} from "../../watchdog/index.js";
import { openSlashingDb } from "../../slashing-db/index.js";
import { SimBeaconNode } from "./sim/beacon-node.js";
import { SimChain } from "./sim/chain.js";
import { FakeSigner } from "./sim/fake-signer.js";

const TOKEN = "admin-token-for-tests-0123456789";
let dir: string;
let signer: FakeSigner;
let chain: SimChain;
let bn: { primary: SimBeaconNode; backup: SimBeaconNode };
let store: WatchdogStore;
let signingTimer: NodeJS.Timeout | undefined;
const sink = new Writable({ write: (_c, _e, done) => done() });

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-wd-exec-"));
  fs.writeFileSync(path.join(dir, "admin.token"), TOKEN, { mode: 0o600 });
  signer = await FakeSigner.start(TOKEN, ["p", "b"]);
  chain = new SimChain({ slotMs: 200, slotsPerEpoch: 4, validatorCount: 2 });
  bn = { primary: await SimBeaconNode.start("p", chain), backup: await SimBeaconNode.start("b", chain) };
  signer.client("b").enabled = false; // the standby starts fenced, as the daemon keeps it
  signer.generation = 3;
  signer.client("b").changedAtGeneration = 3;
});
afterEach(async () => {
  if (signingTimer) clearInterval(signingTimer);
  store?.close();
  await signer.close();
  await bn.primary.close();
  await bn.backup.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function config(over: Record<string, unknown> = {}): WatchdogConfig {
  const svc = { statusCommand: ["true"], stopCommand: ["true"], startCommand: ["true"], timeoutMs: 1000 };
  return parseWatchdogConfig(
    {
      dataDir: path.join(dir, "wd"),
      chain: { genesisTime: chain.genesisTime, slotDurationMs: 200, slotsPerEpoch: 4 },
      validators: { indices: ["0", "1"] },
      signers: { s: { url: signer.url, adminTokenFile: path.join(dir, "admin.token"), timeoutMs: 500 } },
      stacks: {
        primary: { clientId: "p", signer: "s", beaconNode: { url: bn.primary.url }, service: svc },
        backup: { clientId: "b", signer: "s", beaconNode: { url: bn.backup.url }, service: svc },
      },
      failover: { signerRetryMs: 300, drainTimeoutMs: 400, verifySlots: 3, leaseMs: 1000 },
      ...over,
    },
    dir,
  );
}

function executor(cfg: WatchdogConfig, lease = newLeaseHolder()): FailoverExecutor {
  if (!store?.db.open) store = WatchdogStore.open(cfg.dataDir);
  const log = createLogger("silent", sink);
  return new FailoverExecutor({
    config: cfg,
    store,
    signers: new Map([["s", new SignerAdminClient(cfg.signers.s!)]]),
    clock: new ChainClock(chain.genesisMs, 200, 4),
    alerter: new Alerter(log),
    log,
    lease,
  });
}

/** The backup "signs" every 50 ms — only while enabled, like the real signer would release. */
function backupSigns(): void {
  signingTimer = setInterval(() => signer.sign("b"), 50);
}

const states = () =>
  store
    .auditLog(100)
    .filter((a) => a.kind === "transition")
    .map((a) => a.state);

describe("failover executor", () => {
  it("happy path: fence before activate, generation above everything, every transition recorded", async () => {
    backupSigns();
    const { record } = await executor(config()).start("primary", "backup", "operator", "test");
    expect(record.state).toBe("DONE");
    expect(record.generation).toBe(4);
    expect(signer.calls).toEqual(["disable p 4", "enable b 4"]);
    expect(states()).toEqual(["FENCING", "DRAINING", "CONTINUITY", "ACTIVATING", "VERIFYING", "DONE"]);
    expect(store.activeStack()).toBe("backup");
    expect(store.lastGeneration()).toBe(4);
    expect(record.progress.continuity?.mode).toBe("shared-signer");
    expect(record.progress.activationToSignatureMs).toBeGreaterThanOrEqual(0);
    expect((fs.statSync(path.join(dir, "wd", "watchdog.sqlite")).mode & 0o777).toString(8)).toBe("600");
  });

  it("backup beacon node not synced → REFUSED, the primary untouched", async () => {
    bn.backup.set({ isSyncing: true, syncDistance: 40, health: 206 });
    const { record, preconditions } = await executor(config()).start("primary", "backup", "auto", "test");
    expect(record.state).toBe("REFUSED");
    expect(record.generation).toBeNull();
    expect(preconditions!.find((p) => !p.ok)!.detail).toMatch(/syncing/);
    expect(signer.calls).toEqual([]);
  });

  it("a fence that does not read back → ROLLED_BACK, the backup never enabled", async () => {
    signer.ignoreDisable = true;
    const { record } = await executor(config()).start("primary", "backup", "auto", "test");
    expect(record.state).toBe("ROLLED_BACK");
    expect(record.outcomeCode).toBe("FENCE_NOT_CONFIRMED");
    expect(signer.calls.filter((c) => c.startsWith("enable"))).toEqual([]);
  });

  it("a newer generation at fence time (another decision) → ROLLED_BACK, nothing undone", async () => {
    signer.onCall = (action) => {
      if (action === "disable") signer.generation = 99;
    };
    const { record } = await executor(config()).start("primary", "backup", "auto", "test");
    expect(record.state).toBe("ROLLED_BACK");
    expect(record.outcomeCode).toBe("STALE_GENERATION");
    expect(signer.client("p").enabled).toBe(true);
    expect(signer.calls).toEqual(["disable p 4"]);
  });

  it("superseded after the fence → FAILED, the primary stays fenced, the backup never enabled", async () => {
    signer.onCall = (action) => {
      if (action === "disable") setTimeout(() => (signer.generation = 50), 0);
    };
    const { record } = await executor(config()).start("primary", "backup", "auto", "test");
    expect(record.state).toBe("FAILED");
    expect(record.outcomeCode).toBe("SUPERSEDED");
    expect(signer.client("p").enabled).toBe(false);
    expect(signer.client("b").enabled).toBe(false);
  });

  it("requests of the old client stuck in flight → FAILED after drainTimeoutMs, no activation", async () => {
    signer.client("p").inFlight = 2;
    const { record } = await executor(config()).start("primary", "backup", "auto", "test");
    expect(record.state).toBe("FAILED");
    expect(record.outcomeCode).toBe("DRAIN_TIMEOUT");
    expect(signer.client("b").enabled).toBe(false);
  });

  it("the new client does not sign in time → FAILED (VERIFY_TIMEOUT), the old one stays fenced", async () => {
    const { record } = await executor(config()).start("primary", "backup", "auto", "test");
    expect(record.state).toBe("FAILED");
    expect(record.outcomeCode).toBe("VERIFY_TIMEOUT");
    expect(signer.client("p").enabled).toBe(false);
    expect(store.activeStack()).toBe("backup");
  });

  it("recovery in FENCING: waits while the signer is unreachable, then re-enables only what it disabled", async () => {
    const cfg = config();
    const crashed = newLeaseHolder();
    store = WatchdogStore.open(cfg.dataDir);
    let rec = store.createFailover({ from: "primary", to: "backup", trigger: "auto", reason: "test" }, crashed, 1000);
    rec = store.transition(rec.id, crashed, "PRECONDITIONS", "FENCING", "test", { generation: 7 });
    signer.generation = 7;
    signer.client("p").enabled = false; // the crashed executor's disable went through
    signer.client("p").changedAtGeneration = 7;

    const successor = newLeaseHolder();
    const claimed = store.claimAbandoned(successor, 1000, () => false)!; // its process is gone
    expect(claimed.id).toBe(rec.id);
    signer.unreachable = true;
    await expect(executor(cfg, successor).recover(claimed)).rejects.toThrow(/unreachable/);
    expect(store.failover(rec.id)!.state).toBe("FENCING"); // nothing decided without the signer
    signer.unreachable = false;
    const { record } = await executor(cfg, successor).recover(store.failover(rec.id)!);
    expect(record.state).toBe("ROLLED_BACK");
    expect(record.progress.rollback).toMatchObject({ reEnabled: true });
    expect(signer.calls).toEqual(["enable p 7"]);
  });

  it("recovery in FENCING leaves a client fenced by a newer decision alone", async () => {
    const cfg = config();
    const crashed = newLeaseHolder();
    store = WatchdogStore.open(cfg.dataDir);
    let rec = store.createFailover({ from: "primary", to: "backup", trigger: "auto", reason: "test" }, crashed, 1000);
    rec = store.transition(rec.id, crashed, "PRECONDITIONS", "FENCING", "test", { generation: 7 });
    signer.generation = 9;
    signer.client("p").enabled = false; // an operator fenced it at 9
    signer.client("p").changedAtGeneration = 9;
    const successor = newLeaseHolder();
    const { record } = await executor(cfg, successor).recover(store.claimAbandoned(successor, 1000, () => false)!);
    expect(record.state).toBe("ROLLED_BACK");
    expect(record.progress.rollback?.reEnabled).toBe(false);
    expect(signer.calls).toEqual([]);
  });

  it("a live executor's failover is not taken over; a stale executor cannot write after a takeover", () => {
    const cfg = config();
    store = WatchdogStore.open(cfg.dataDir);
    const a = newLeaseHolder();
    const rec = store.createFailover({ from: "primary", to: "backup", trigger: "auto", reason: "test" }, a, 60_000);
    const b = { ...newLeaseHolder(), pid: 999_999 };
    expect(store.claimAbandoned(b, 1000)).toBeNull(); // same host, a's pid (ours) alive, lease fresh
    expect(() => store.createFailover({ from: "primary", to: "backup", trigger: "operator", reason: "again" }, b, 1000)).toThrow(/still PRECONDITIONS/);
    const c = newLeaseHolder();
    expect(store.claimAbandoned(c, 1000, () => false)!.lease.owner).toBe(c.owner);
    expect(() => store.transition(rec.id, a, "PRECONDITIONS", "FENCING", "stale")).toThrow(/another executor/);
  });

  describe("two signers (continuity)", () => {
    const GVR = `0x${"ab".repeat(32)}`;
    const PK = `0x${"b2".repeat(48)}`;
    let other: FakeSigner;
    beforeEach(async () => {
      other = await FakeSigner.start(TOKEN, ["b"]);
      other.client("b").enabled = false;
      signer.client("b").enabled = true; // on signer s, "b" is not the backup here
    });
    afterEach(async () => {
      await other.close();
    });

    function twoSignerConfig(fromDb: string | undefined, toDb: string): WatchdogConfig {
      const c = config({
        failover: { signerRetryMs: 300, drainTimeoutMs: 400, verifySlots: 3, leaseMs: 1000, livenessQuietEpochs: 1 },
        validators: { indices: ["0"] },
      });
      c.signers.s = { ...c.signers.s!, ...(fromDb ? { slashingDbPath: fromDb } : {}) };
      c.signers.t = { ...c.signers.s, id: "t", urls: [other.url], slashingDbPath: toDb };
      if (!fromDb) delete c.signers.s.slashingDbPath;
      c.stacks.backup = { ...c.stacks.backup, signer: "t" };
      return c;
    }

    function twoSignerExecutor(cfg: WatchdogConfig): FailoverExecutor {
      if (!store?.db.open) store = WatchdogStore.open(cfg.dataDir);
      const log = createLogger("silent", sink);
      return new FailoverExecutor({
        config: cfg,
        store,
        signers: new Map([
          ["s", new SignerAdminClient(cfg.signers.s!)],
          ["t", new SignerAdminClient(cfg.signers.t!)],
        ]),
        clock: new ChainClock(chain.genesisMs, 200, 4),
        alerter: new Alerter(log),
        log,
        lease: newLeaseHolder(),
      });
    }

    it("moves the history (EIP-3076) before the new signer's client is enabled; one generation on both signers", async () => {
      const fromDb = path.join(dir, "from.sqlite");
      const toDb = path.join(dir, "to.sqlite");
      const old = openSlashingDb(fromDb, { genesisValidatorsRoot: GVR });
      await old.checkAndRecordAttestation(PK, 2, 3, `0x${"11".repeat(32)}`);
      old.close();
      openSlashingDb(toDb, { genesisValidatorsRoot: GVR }).close(); // the new signer's own database exists
      other.generation = 10;
      signingTimer = setInterval(() => other.sign("b"), 50);
      const { record } = await twoSignerExecutor(twoSignerConfig(fromDb, toDb)).start("primary", "backup", "operator", "test");
      expect(record.state).toBe("DONE");
      expect(record.progress.continuity?.mode).toBe("interchange");
      expect(record.generation).toBe(11);
      expect(signer.calls).toEqual(["disable p 11"]);
      expect(other.calls).toEqual(["enable b 11"]);
      const db = openSlashingDb(toDb);
      expect(db.judgeAttestation(PK, 2, 3, `0x${"22".repeat(32)}`).kind).toBe("refused");
      db.close();
    });

    it("old history unreadable: watermarks, then the keys must be quiet on chain before activation", async () => {
      const toDb = path.join(dir, "to2.sqlite");
      openSlashingDb(toDb, { genesisValidatorsRoot: GVR }).close();
      signingTimer = setInterval(() => other.sign("b"), 50);
      const started = Date.now();
      const { record } = await twoSignerExecutor(twoSignerConfig(undefined, toDb)).start("primary", "backup", "operator", "test");
      expect(record.state).toBe("DONE");
      expect(record.progress.continuity?.mode).toBe("watermarks");
      expect(record.progress.watermarkEpoch).toBeGreaterThanOrEqual(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(800); // at least one full epoch of 4 × 200 ms
    });
  });
});
