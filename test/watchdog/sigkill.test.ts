// The watchdog daemon runs as a child process (`vigil watchdog start`, compiled dist/), is paused at each
// step of a failover by the test hook VIGIL_WATCHDOG_PAUSE_AT, SIGKILLed there, and restarted without the
// hook. It must then complete or roll back — and at no moment may both clients be enabled at the signer.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WatchdogStore } from "../../watchdog/index.js";
import { admin, createSimEnv, waitFor, type SimEnv } from "./sim/harness.js";
import type { ClientsResponse } from "../../admin-api/index.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");

let env: SimEnv | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await env?.destroy();
  env = undefined;
});

function startChild(e: SimEnv, pauseAt?: string): { child: ChildProcess; output: () => string } {
  let out = "";
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.VIGIL_WATCHDOG_PAUSE_AT;
  if (pauseAt) childEnv.VIGIL_WATCHDOG_PAUSE_AT = pauseAt;
  const child = spawn("node", [VIGIL, "watchdog", "start", "--config", e.configFile], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  children.push(child);
  return { child, output: () => out };
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** Polls the signer all along: the invariant must hold at every moment, not only at the end. */
function watchInvariant(e: SimEnv): { stop: () => Promise<string[]> } {
  const violations: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await admin<ClientsResponse>(e, "/admin/v1/clients");
        const enabled = r.body.clients.filter((c) => c.enabled).map((c) => c.id);
        if (enabled.length > 1) violations.push(`${new Date().toISOString()} both enabled: ${JSON.stringify(r.body)}`);
      } catch {
        /* signer busy; next round */
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return violations;
    },
  };
}

// What a restart must end in, for a kill at each point (see watchdog/docs/README.md, "Crash recovery").
const POINTS: Array<{ point: string; paused: string; outcome: "rolled back, then redone" | "resumed" }> = [
  { point: "PRECONDITIONS", paused: "PRECONDITIONS", outcome: "rolled back, then redone" },
  { point: "FENCING", paused: "FENCING", outcome: "rolled back, then redone" },
  { point: "FENCING:after", paused: "FENCING", outcome: "rolled back, then redone" },
  { point: "DRAINING", paused: "DRAINING", outcome: "resumed" },
  { point: "CONTINUITY", paused: "CONTINUITY", outcome: "resumed" },
  { point: "ACTIVATING", paused: "ACTIVATING", outcome: "resumed" },
  { point: "ACTIVATING:after", paused: "ACTIVATING", outcome: "resumed" },
  { point: "VERIFYING", paused: "VERIFYING", outcome: "resumed" },
];

describe("watchdog SIGKILLed at each step of a failover", () => {
  for (const p of POINTS) {
    it(`killed at ${p.point} → ${p.outcome}; never two clients enabled`, async () => {
      env = await createSimEnv(`kill-${p.point.replace(":", "-").toLowerCase()}`);
      env.vcs.primary.start();
      const first = startChild(env, p.point);
      await waitFor(
        "standby fenced by the watchdog",
        async () => {
          const r = await admin<ClientsResponse>(env!, "/admin/v1/clients");
          return r.body.clients.find((c) => c.id === "backup-vc")?.enabled === false;
        },
        15_000,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\n${first.output()}`);
      });
      // from the watchdog's first look on (before it, a fresh signer has every client enabled: its default)
      const invariant = watchInvariant(env);
      await waitFor("primary signing", () => env!.vcs.primary.signedCount() > 5, 5_000);
      env.vcs.primary.stop();

      const pausedFile = path.join(env.config.dataDir, "paused-at");
      await waitFor(`pause at ${p.point}`, () => fs.existsSync(pausedFile) && fs.readFileSync(pausedFile, "utf8").trim() === p.point, 15_000).catch((err) => {
        throw new Error(`${(err as Error).message}\n${first.output()}`);
      });
      const store = WatchdogStore.open(env.config.dataDir);
      try {
        const interrupted = store.openFailover()!;
        expect(interrupted.state).toBe(p.paused);
        await kill9(first.child);
        fs.rmSync(pausedFile);
        expect(store.openFailover()!.state).toBe(p.paused); // the kill left it open, as a crash would

        const second = startChild(env);
        const done = await waitFor("failover completed after restart", () => store.lastFailover()?.state === "DONE" && store.lastFailover(), 20_000).catch(
          (err) => {
            throw new Error(`${(err as Error).message}\n${second.output()}`);
          },
        );
        if (!done) throw new Error("waitFor resolved without a failover");
        const after = store.failover(interrupted.id)!;
        if (p.outcome === "resumed") {
          expect(after.state).toBe("DONE");
          expect(done.id).toBe(interrupted.id);
          expect(after.progress.resumedAt?.length).toBe(1);
        } else {
          expect(after.state).toBe("ROLLED_BACK");
          expect(after.outcomeCode).toBe("INTERRUPTED");
          if (p.point === "FENCING:after") expect(after.progress.rollback?.reEnabled).toBe(true); // it was ours to undo
          if (p.point === "FENCING") expect(after.progress.rollback?.reEnabled ?? false).toBe(false); // never disabled
          expect(done.id).toBeGreaterThan(interrupted.id);
          expect(done.generation!).toBeGreaterThan(interrupted.generation ?? 0);
        }
        await waitFor("backup signing", () => env!.vcs.backup.signedCount() > 0, 5_000);
        await kill9(second.child);
      } finally {
        store.close();
      }
      expect(await invariant.stop()).toEqual([]);
      const clients = (await admin<ClientsResponse>(env, "/admin/v1/clients")).body.clients;
      expect(clients.filter((c) => c.enabled).map((c) => c.id)).toEqual(["backup-vc"]);
      const report = await env.feed();
      expect(report.slashable).toEqual([]);
      expect(report.overlaps).toEqual([]);
    });
  }

  it("SIGTERM stops the daemon cleanly (exit 0, audited)", async () => {
    env = await createSimEnv("sigterm");
    const d = startChild(env);
    await waitFor(
      "standby fenced by the watchdog",
      async () => {
        const r = await admin<ClientsResponse>(env!, "/admin/v1/clients");
        return r.body.clients.find((c) => c.id === "backup-vc")?.enabled === false;
      },
      15_000,
    );
    const exited = new Promise<number | null>((r) => d.child.once("exit", (code) => r(code)));
    d.child.kill("SIGTERM");
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 8_000))])).toBe(0);
    const store = WatchdogStore.open(env.config.dataDir);
    try {
      expect(store.auditLog(10).map((a) => a.message)).toContain("watchdog daemon stopped");
    } finally {
      store.close();
    }
  });
});
