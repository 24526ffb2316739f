// End-to-end scenarios on fast slots (400 ms), loopback only: the real signer, simulated beacon nodes and
// validator clients, the watchdog daemon in-process. After each scenario the independent checker reads the
// signer's signature feed: no slashable pair, no key served by two clients at once.
import { afterEach, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import Fastify from "fastify";
import { startWatchdog, WatchdogStore, type WatchdogDaemon } from "../../watchdog/index.js";
import { admin, createSimEnv, sleep, SLOT_MS, waitFor, type SimEnv } from "./sim/harness.js";
import type { ClientsResponse } from "../../admin-api/index.js";

class Sink extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    done();
  }
}

let env: SimEnv | undefined;
let daemon: WatchdogDaemon | undefined;
afterEach(async () => {
  await daemon?.stop(1_000);
  daemon = undefined;
  await env?.destroy();
  env = undefined;
});

const enabledClients = async (e: SimEnv) => (await admin<ClientsResponse>(e, "/admin/v1/clients")).body.clients.filter((c) => c.enabled).map((c) => c.id);

async function expectCleanFeed(e: SimEnv) {
  const report = await e.feed();
  expect(report.slashable).toEqual([]);
  expect(report.overlaps).toEqual([]);
  return report;
}

async function startDaemon(e: SimEnv, log = new Sink()): Promise<WatchdogDaemon> {
  const d = await startWatchdog(e.config, { logDestination: log, metricsPort: 0 });
  // the watchdog fences the standby on its first look (a fresh signer enables every client)
  await waitFor("standby fenced", async () => (await enabledClients(e)).join() === "primary-vc", 5_000);
  return d;
}

describe("watchdog scenarios (real signer, fast slots)", () => {
  it("primary crash → backup signing within the bound (alerts on the webhook, metrics on /metrics)", async () => {
    const hook = Fastify({ logger: false });
    const alerts: Array<{ event: string; level: string; message: string }> = [];
    hook.post("/hook", async (req) => {
      alerts.push(req.body as (typeof alerts)[number]);
      return {};
    });
    const hookUrl = await hook.listen({ host: "127.0.0.1", port: 0 });
    env = await createSimEnv("crash", { watchdog: (c) => (c.alerts = { webhook: { url: `${hookUrl}/hook`, timeoutMs: 1000, retries: 1 } }) });
    env.vcs.primary.start();
    daemon = await startDaemon(env);
    await waitFor("primary signing", () => env!.vcs.primary.signedCount() > 10, 5_000);
    await sleep(3 * SLOT_MS);

    const deathAt = Date.now();
    env.vcs.primary.stop();
    const store = WatchdogStore.open(env.config.dataDir);
    try {
      const rec = await waitFor(
        "failover DONE",
        () => {
          const r = store.lastFailover();
          return r && (r.state === "DONE" || r.state === "FAILED" || r.state === "ROLLED_BACK" || r.state === "REFUSED") ? r : undefined;
        },
        15_000,
      );
      expect(rec.state).toBe("DONE");
      expect(rec.trigger).toBe("auto");
      expect(store.activeStack()).toBe("backup");
    } finally {
      store.close();
    }
    const first = await waitFor("backup's first signature in the feed", async () => (await env!.feed()).raw.find((s) => s.clientId === "backup-vc"), 5_000);
    const deathToSignatureMs = Date.parse(first.at) - deathAt;
    console.log(
      `[measure] primary death → backup's first signature: ${deathToSignatureMs} ms (${(deathToSignatureMs / SLOT_MS).toFixed(1)} slots of ${SLOT_MS} ms)`,
    );
    // bound: silence window (2 slots) + 3 checks + failover steps + the next slot boundary, with margin
    expect(deathToSignatureMs).toBeLessThan(12 * SLOT_MS);
    expect(await enabledClients(env)).toEqual(["backup-vc"]);
    await sleep(4 * SLOT_MS);
    const report = await expectCleanFeed(env);
    expect(report.byClient["backup-vc"]).toBeGreaterThan(0);

    const metrics = await (await fetch(`${daemon.metricsAddress}/metrics`)).text();
    expect(metrics).toMatch(/vigil_watchdog_failovers_total\{trigger="auto",outcome="DONE"\} 1/);
    expect(metrics).toMatch(/vigil_watchdog_active_stack\{stack="backup"\} 1/);
    expect(metrics).toMatch(/vigil_watchdog_failover_state\{state="IDLE"\} 1/);
    expect(metrics).toMatch(/vigil_watchdog_probe_up\{stack="backup",probe="beacon"\} 1/);
    await daemon.context.alerter.flush();
    await hook.close();
    const events = alerts.map((a) => a.event);
    expect(events).toEqual(expect.arrayContaining(["standby_fenced", "failover_started", "failover_done"]));
    expect(alerts.find((a) => a.event === "failover_done")!.level).toBe("info");
    expect(JSON.stringify(alerts)).not.toContain(env.adminToken);
  });

  it("a flapping primary → no failover", async () => {
    env = await createSimEnv("flap");
    env.vcs.primary.start();
    daemon = await startDaemon(env);
    await waitFor("primary signing", () => env!.vcs.primary.signedCount() > 5, 5_000);
    // 8 cycles: down about one slot (its service inactive, its beacon node degraded), then back for two
    for (let i = 0; i < 8; i++) {
      env.vcs.primary.stop();
      env.beacons.primary.set({ health: 206, isSyncing: true, syncDistance: 5 });
      await sleep(i % 2 === 0 ? SLOT_MS : 1.5 * SLOT_MS);
      env.vcs.primary.start();
      env.beacons.primary.set({ health: 200, isSyncing: false, syncDistance: 0 });
      await sleep(2 * SLOT_MS);
    }
    const store = WatchdogStore.open(env.config.dataDir);
    try {
      expect(store.lastFailover()).toBeNull();
      expect(store.activeStack()).toBe("primary");
    } finally {
      store.close();
    }
    expect(await enabledClients(env)).toEqual(["primary-vc"]);
    const report = await expectCleanFeed(env);
    expect(report.byClient["backup-vc"] ?? 0).toBe(0);
  });

  it("the primary returns after the failover (zombie) → all its requests refused", async () => {
    env = await createSimEnv("zombie");
    env.vcs.primary.start();
    daemon = await startDaemon(env);
    await waitFor("primary signing", () => env!.vcs.primary.signedCount() > 10, 5_000);
    env.vcs.primary.stop();
    await waitFor("backup active", async () => (await enabledClients(env!)).join() === "backup-vc" && env!.vcs.backup.signedCount() > 0, 15_000);
    // the zombie comes back with its old view: fresh duties and conflicting re-sends of what it signed
    const zombieAt = Date.now();
    env.vcs.primary.conflictOnRestart = true;
    env.vcs.primary.start();
    await sleep(6 * SLOT_MS);
    env.vcs.primary.stop();
    const zombie = env.vcs.primary.attempts.filter((a) => a.at >= zombieAt);
    expect(zombie.length).toBeGreaterThan(10);
    expect(zombie.filter((a) => a.status === 200)).toEqual([]);
    expect(new Set(zombie.map((a) => a.code))).toEqual(new Set(["CLIENT_DISABLED"]));
    const report = await expectCleanFeed(env);
    expect(report.raw.filter((s) => s.clientId === "primary-vc" && Date.parse(s.at) >= zombieAt)).toEqual([]);
    expect(env.vcs.backup.signedCount()).toBeGreaterThan(10);
  });

  it("the watchdog loses sight of the primary while the signer sees it signing → no failover", async () => {
    env = await createSimEnv("blind");
    env.vcs.primary.start();
    daemon = await startDaemon(env);
    await waitFor("primary signing", () => env!.vcs.primary.signedCount() > 5, 5_000);
    env.vcs.primary.blindWatchdog = true; // its service status command fails (ssh unreachable)
    env.beacons.primary.set({ blindWatchdog: true }); // its beacon node does not answer the watchdog
    await sleep(12 * SLOT_MS);
    const store = WatchdogStore.open(env.config.dataDir);
    try {
      expect(store.lastFailover()).toBeNull();
      const snap = store.daemonStatus()!.snapshot as { stacks: Record<string, { service: string; beaconOk: boolean; witness: string }> };
      expect(snap.stacks.primary).toMatchObject({ service: "unknown", beaconOk: false, witness: "signing" });
    } finally {
      store.close();
    }
    expect(await enabledClients(env)).toEqual(["primary-vc"]);
    const report = await expectCleanFeed(env);
    expect(report.byClient["backup-vc"] ?? 0).toBe(0);
  });

  it("the backup is unhealthy → the primary is never fenced (and the failover runs once the backup is healthy)", async () => {
    env = await createSimEnv("unhealthy");
    env.beacons.backup.set({ health: 206, isSyncing: true, syncDistance: 64 });
    env.vcs.primary.start();
    daemon = await startDaemon(env);
    await waitFor("primary signing", () => env!.vcs.primary.signedCount() > 5, 5_000);
    const before = (await admin<ClientsResponse>(env, "/admin/v1/clients")).body.clients.find((c) => c.id === "primary-vc")!;
    env.vcs.primary.stop();
    const store = WatchdogStore.open(env.config.dataDir);
    try {
      await waitFor("refused failover", () => store.lastFailover()?.state === "REFUSED", 10_000);
      await sleep(8 * SLOT_MS); // several retries, all refused
      const primary = (await admin<ClientsResponse>(env, "/admin/v1/clients")).body.clients.find((c) => c.id === "primary-vc")!;
      expect(primary).toMatchObject({ enabled: true, changedAtGeneration: before.changedAtGeneration });
      expect(store.failovers(100).every((f) => f.state === "REFUSED" && f.generation === null)).toBe(true);
      expect(store.lastFailover()!.outcomeMessage).toMatch(/backup beacon node healthy and synced.*sync/);
      expect(env.vcs.backup.signedCount()).toBe(0);

      env.beacons.backup.set({ health: 200, isSyncing: false, syncDistance: 0 });
      await waitFor("failover done once the backup is healthy", () => store.lastFailover()?.state === "DONE", 15_000);
    } finally {
      store.close();
    }
    expect(await enabledClients(env)).toEqual(["backup-vc"]);
    await expectCleanFeed(env);
  });
});
